//! Body plumbing: the boxed body type of the proxy, a wrapper that lets a request body be sent
//! again when connecting failed before it was read, and a watcher that enforces idle timeouts,
//! size limits and drain cut-offs while bodies stream (nothing is buffered).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use thiserror::Error;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Every body the proxy sends, either way.
pub type ProxyBody = UnsyncBoxBody<Bytes, BodyError>;

/// Why a body stopped early.
#[derive(Debug, Error)]
pub enum BodyError {
    #[error("the peer's body failed")]
    Transport(#[from] hyper::Error),
    #[error("no body bytes moved for {0:?}")]
    IdleTimeout(Duration),
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the endpoint was removed and its drain deadline passed")]
    Drained,
    /// A mirror's copy of a request body stopped before the real body ended (it passed the
    /// mirror's byte cap, or the real body failed or was dropped).
    #[error("the copy of the request body was cut")]
    CopyCut,
}

impl From<std::convert::Infallible> for BodyError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(BodyError::from)
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(BodyError::from).boxed_unsync()
}

/// A request body that stays with the caller until the upstream connection first reads it.
/// If connecting fails, the body was never polled and [`Replayable::take_back`] returns it for a
/// retry on another instance.
#[derive(Debug)]
pub struct Replayable<B> {
    slot: Arc<Mutex<Option<B>>>,
    inner: Option<B>,
}

/// The caller's handle to a body lent to [`Replayable`].
#[derive(Debug)]
pub struct ReplaySlot<B>(Arc<Mutex<Option<B>>>);

impl<B> Replayable<B> {
    pub fn new(body: B) -> (Self, ReplaySlot<B>) {
        let slot = Arc::new(Mutex::new(Some(body)));
        (
            Replayable {
                slot: slot.clone(),
                inner: None,
            },
            ReplaySlot(slot),
        )
    }
}

impl<B> ReplaySlot<B> {
    /// The body, if the upstream never started reading it.
    pub fn take_back(&self) -> Option<B> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl<B: Body + Unpin> Body for Replayable<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        if self.inner.is_none() {
            let taken = self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            self.inner = taken;
        }
        match self.inner.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(b) => b.is_end_stream(),
            None => self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(b) => b.size_hint(),
            None => self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(Body::size_hint)
                .unwrap_or_default(),
        }
    }
}

/// Streams `inner` while enforcing an idle timeout, an optional size limit and a drain
/// cut-off, and holds `guard` (in-flight counters) until the body ends or is dropped.
pub struct Watched<B, G> {
    inner: B,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    limit: Option<u64>,
    seen: u64,
    cut: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    guard: Option<G>,
}

impl<B, G> std::fmt::Debug for Watched<B, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("idle", &self.idle)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl<B, G> Watched<B, G> {
    pub fn new(
        inner: B,
        idle: Duration,
        limit: Option<u64>,
        cut: Option<CancellationToken>,
        guard: G,
    ) -> Self {
        Watched {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            limit,
            seen: 0,
            cut: cut.map(|t| Box::pin(t.cancelled_owned())),
            guard: Some(guard),
        }
    }
}

impl<B, G> Body for Watched<B, G>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
    G: Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(cut) = this.cut.as_mut()
            && cut.as_mut().poll(cx).is_ready()
        {
            this.guard = None;
            return Poll::Ready(Some(Err(BodyError::Drained)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if let Some(limit) = this.limit.filter(|l| this.seen > *l) {
                        return Poll::Ready(Some(Err(BodyError::TooLarge { limit })));
                    }
                }
                this.sleep.as_mut().reset(Instant::now() + this.idle);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.guard = None;
                Poll::Ready(None)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::IdleTimeout(this.idle)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
