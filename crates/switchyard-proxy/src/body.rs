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
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::endpoint::Endpoint;

/// Every body the proxy sends, either way.
pub type ProxyBody = UnsyncBoxBody<Bytes, BodyError>;

/// Why a body stopped early.
#[derive(Debug, Error)]
pub enum BodyError {
    #[error("the peer's body failed")]
    Transport(#[from] hyper::Error),
    #[error("the instance's response body failed")]
    Upstream(#[source] std::io::Error),
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

/// A client's request body as the listener hands it over: none (the proxy's own HTTP/1.1
/// reader takes only requests without one), or hyper's stream.
#[derive(Debug)]
pub enum RequestBody {
    Empty,
    Hyper(hyper::body::Incoming),
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(BodyError::from)
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(BodyError::from).boxed_unsync()
}

/// How a client's request body failed: the client's fault, never the release's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFault {
    /// Broken framing (a chunk size that is not hex, a body shorter than declared).
    Malformed,
    /// More bytes than the limit.
    TooLarge { limit: u64 },
    /// The client stopped sending for the idle timeout.
    Idle,
    /// The client reset or closed the connection while sending.
    Aborted,
}

/// Where a request body records that the client broke it, for the request's outcome.
#[derive(Debug, Default)]
pub struct FaultCell(std::sync::OnceLock<ClientFault>);

impl FaultCell {
    /// The client's fault, if its body failed.
    pub fn get(&self) -> Option<ClientFault> {
        self.0.get().copied()
    }

    fn set(&self, error: &BodyError) {
        let fault = match error {
            BodyError::TooLarge { limit } => ClientFault::TooLarge { limit: *limit },
            BodyError::IdleTimeout(_) => ClientFault::Idle,
            BodyError::Transport(e) => transport_fault(e),
            // Not the client's: the upstream was drained, or a mirror's copy was cut.
            BodyError::Drained | BodyError::CopyCut | BodyError::Upstream(_) => return,
        };
        let _ = self.0.set(fault);
    }
}

/// How a client's body failed on the wire: bad framing or a body cut short is malformed; a
/// reset or closed connection is an abort.
fn transport_fault(e: &hyper::Error) -> ClientFault {
    if e.is_parse() || e.is_incomplete_message() {
        return ClientFault::Malformed;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::UnexpectedEof => ClientFault::Malformed,
                _ => ClientFault::Aborted,
            };
        }
        source = s.source();
    }
    ClientFault::Aborted
}

/// A client's request body that records in a [`FaultCell`] how it failed, if it does.
#[derive(Debug)]
pub struct Attributed<B> {
    inner: B,
    cell: Arc<FaultCell>,
}

impl<B> Attributed<B> {
    pub fn new(inner: B, cell: Arc<FaultCell>) -> Self {
        Self { inner, cell }
    }
}

impl<B: Body<Data = Bytes, Error = BodyError> + Unpin> Body for Attributed<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(e))) = &polled {
            this.cell.set(e);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that stays with the caller until the upstream connection first reads it.
/// If connecting fails, the body was never polled and [`ReplaySlot::take_back`] returns it for a
/// retry on another instance. [`Replayable::owned`] is the plain body, for sends that are never
/// retried.
#[derive(Debug)]
pub struct Replayable<B> {
    slot: Option<Arc<Mutex<Option<B>>>>,
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
                slot: Some(slot.clone()),
                inner: None,
            },
            ReplaySlot(slot),
        )
    }

    /// `body` with no way back to the caller.
    pub fn owned(body: B) -> Self {
        Replayable {
            slot: None,
            inner: Some(body),
        }
    }

    fn lent(&self) -> Option<std::sync::MutexGuard<'_, Option<B>>> {
        let slot = self.slot.as_ref()?;
        Some(slot.lock().unwrap_or_else(PoisonError::into_inner))
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
            let taken = self.lent().and_then(|mut lent| lent.take());
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
                .lent()
                .is_none_or(|lent| lent.as_ref().is_none_or(Body::is_end_stream)),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(b) => b.size_hint(),
            None => self
                .lent()
                .and_then(|lent| lent.as_ref().map(Body::size_hint))
                .unwrap_or_default(),
        }
    }
}

/// Streams `inner` while enforcing an idle timeout, an optional size limit and a drain
/// cut-off, and holds `guard` (in-flight counters) until the body ends or is dropped.
///
/// Cheap on the request path: the clock is read only when `inner` is not ready after a frame
/// (idleness counts from then); the idle timer is created the first time `inner` is not ready,
/// and re-armed only when it fires early (progress was made since it was set), so a body that
/// is ready at once costs no clock read and no timer at all. The drain cut-off is read
/// from an atomic flag; its wake-up is registered only while `inner` waits.
pub struct Watched<B, G> {
    inner: B,
    idle: Duration,
    /// Since when `inner` has made no progress; `None` when it moved (or the body was created)
    /// and has not been waited for since.
    last: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    limit: Option<u64>,
    seen: u64,
    cut: Option<Arc<Endpoint>>,
    cut_wait: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
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
    /// `cut`: the instance whose drain cut-off ([`Endpoint::cut`]) ends this body.
    pub fn new(
        inner: B,
        idle: Duration,
        limit: Option<u64>,
        cut: Option<Arc<Endpoint>>,
        guard: G,
    ) -> Self {
        Watched {
            inner,
            idle,
            last: None,
            sleep: None,
            limit,
            seen: 0,
            cut,
            cut_wait: None,
            guard: Some(guard),
        }
    }

    /// Called while `inner` is pending: registers for the cut-off and the idle deadline, and
    /// reports which came first, if one did.
    fn poll_waiting(&mut self, cx: &mut Context<'_>) -> Poll<BodyError> {
        if let Some(endpoint) = &self.cut {
            let wait = self
                .cut_wait
                .get_or_insert_with(|| Box::pin(endpoint.removed.clone().cancelled_owned()));
            if wait.as_mut().poll(cx).is_ready() {
                self.guard = None;
                return Poll::Ready(BodyError::Drained);
            }
        }
        let last = *self.last.get_or_insert_with(Instant::now);
        let deadline = last + self.idle;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Fired at the deadline it was armed with; frames since then moved the deadline on.
            if sleep.deadline() >= deadline {
                return Poll::Ready(BodyError::IdleTimeout(self.idle));
            }
            sleep.as_mut().reset(deadline);
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
        if this.cut.as_ref().is_some_and(|e| e.is_cut()) {
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
                this.last = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.guard = None;
                Poll::Ready(None)
            }
            Poll::Pending => this.poll_waiting(cx).map(|e| Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::SocketAddr;

    use tokio::sync::mpsc;

    use super::*;

    /// A body fed chunk by chunk through a channel.
    struct Fed(mpsc::Receiver<Bytes>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
        }
    }

    fn watched(cut: Option<Arc<Endpoint>>) -> (mpsc::Sender<Bytes>, Watched<Fed, ()>) {
        let (tx, rx) = mpsc::channel(1);
        let body = Watched::new(Fed(rx), Duration::from_millis(100), None, cut, ());
        (tx, body)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_deadline_moves_with_every_frame() {
        let (tx, mut body) = watched(None);
        // Ten frames 60 ms apart: 600 ms in all, never 100 ms without one.
        let feeder = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(60)).await;
                tx.send(Bytes::from_static(b"x")).await.unwrap();
            }
            // Then silence, with the sender kept open.
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(tx);
        });
        for _ in 0..10 {
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), "x");
        }
        let started = Instant::now();
        match body.frame().await {
            Some(Err(BodyError::IdleTimeout(d))) => assert_eq!(d, Duration::from_millis(100)),
            other => panic!("{other:?}"),
        }
        // On the paused clock the timeout fires exactly one idle period after the last frame.
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_cut_ends_a_waiting_body_and_wins_over_ready_frames() {
        let endpoint = Arc::new(Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 1))));
        let (tx, mut body) = watched(Some(endpoint.clone()));
        let cutter = {
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                endpoint.cut();
            })
        };
        assert!(matches!(body.frame().await, Some(Err(BodyError::Drained))));
        cutter.await.unwrap();

        let (tx2, mut body2) = watched(Some(endpoint));
        tx2.send(Bytes::from_static(b"ready")).await.unwrap();
        assert!(matches!(body2.frame().await, Some(Err(BodyError::Drained))));
        drop(tx);
    }
}
