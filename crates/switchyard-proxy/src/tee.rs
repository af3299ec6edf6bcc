//! Copying a streaming request body to a mirror without slowing the real request down.
//!
//! [`tee`] wraps the real body: every frame the primary upstream reads is passed on at once and
//! a clone (a reference-counted `Bytes`, not a copy of the bytes) is queued for the mirror. The
//! queue is unbounded so the real request never waits for a slow mirror, and bounded in practice
//! by the mirror's byte cap: past the cap the copy is abandoned. A copy that does not end with
//! the real body's end (cap passed, real body failed or dropped) ends in an error, so the mirror
//! never receives a truncated body that looks complete.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::body::BodyError;
use crate::telemetry::ReleaseStats;
use crate::telemetry::names::MIRROR_SKIP_BODY_TOO_LARGE;

enum TeeEvent {
    Frame(Frame<Bytes>),
    End,
}

/// The real body, copying what it yields to a [`MirrorBody`].
pub struct Tee<B> {
    inner: B,
    copy: Option<mpsc::UnboundedSender<TeeEvent>>,
    cap: u64,
    copied: u64,
    /// Telemetry of the mirror release, to count a copy abandoned at the cap.
    mirror_stats: Arc<ReleaseStats>,
}

/// The mirror's copy of a body being streamed by a [`Tee`].
pub struct MirrorBody {
    events: mpsc::UnboundedReceiver<TeeEvent>,
    done: bool,
    size: SizeHint,
}

/// Splits `inner` into the body to send upstream and a copy of at most `cap` bytes.
pub fn tee<B: Body>(inner: B, cap: u64, mirror_stats: Arc<ReleaseStats>) -> (Tee<B>, MirrorBody) {
    let (tx, rx) = mpsc::unbounded_channel();
    let size = inner.size_hint();
    (
        Tee {
            inner,
            copy: Some(tx),
            cap,
            copied: 0,
            mirror_stats,
        },
        MirrorBody {
            events: rx,
            done: false,
            size,
        },
    )
}

impl<B> Tee<B> {
    fn copy_frame(&mut self, frame: &Frame<Bytes>) {
        let Some(tx) = &self.copy else { return };
        let copy = if let Some(data) = frame.data_ref() {
            self.copied += data.len() as u64;
            if self.copied > self.cap {
                // Dropping the sender cuts the copy; the mirror request fails, the real one goes on.
                self.copy = None;
                self.mirror_stats
                    .count_mirror_skipped(MIRROR_SKIP_BODY_TOO_LARGE);
                return;
            }
            Frame::data(data.clone())
        } else if let Some(trailers) = frame.trailers_ref() {
            Frame::trailers(trailers.clone())
        } else {
            return;
        };
        if tx.send(TeeEvent::Frame(copy)).is_err() {
            // The mirror gave up (failed or finished early); stop copying.
            self.copy = None;
        }
    }

    fn finish_copy(&mut self) {
        if let Some(tx) = self.copy.take() {
            let _ = tx.send(TeeEvent::End);
        }
    }
}

impl<B> Body for Tee<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.copy_frame(&frame);
                // hyper stops polling once a body reports its end, so the end is sent here too.
                if this.inner.is_end_stream() {
                    this.finish_copy();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.copy = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.finish_copy();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Body for MirrorBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(TeeEvent::Frame(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(TeeEvent::End)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(BodyError::CopyCut)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::BodyExt;

    use super::*;
    use crate::telemetry::Telemetry;

    fn stats() -> Arc<ReleaseStats> {
        Telemetry::new().release("shop", "shadow")
    }

    /// A body yielding the given chunks, one per poll.
    struct Chunks(VecDeque<&'static str>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BodyError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(Bytes::from(c)))))
        }
    }

    fn chunks(parts: &[&'static str]) -> Chunks {
        Chunks(parts.iter().copied().collect())
    }

    #[tokio::test]
    async fn copy_matches_the_real_body_within_the_cap() {
        let (real, copy) = tee(chunks(&["ab", "cd"]), 4, stats());
        let real = real.collect().await.unwrap().to_bytes();
        let copy = copy.collect().await.unwrap().to_bytes();
        assert_eq!((real.as_ref(), copy.as_ref()), (&b"abcd"[..], &b"abcd"[..]));
    }

    #[tokio::test]
    async fn copy_past_the_cap_fails_and_the_real_body_is_whole() {
        let (real, copy) = tee(chunks(&["ab", "cd", "e"]), 4, stats());
        assert_eq!(real.collect().await.unwrap().to_bytes().as_ref(), b"abcde");
        assert!(matches!(copy.collect().await, Err(BodyError::CopyCut)));
    }

    #[tokio::test]
    async fn dropped_real_body_cuts_the_copy() {
        let (real, copy) = tee(chunks(&["ab", "cd"]), 100, stats());
        drop(real);
        assert!(matches!(copy.collect().await, Err(BodyError::CopyCut)));
    }
}
