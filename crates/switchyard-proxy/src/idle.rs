//! Idle detection for connections: an IO wrapper that counts every read and write that moved
//! bytes, and a future that resolves once none has for a given time. Used against
//! slowloris-style clients that hold connections open without sending, and for idle tunnels.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Whether the wrapped IO moved bytes: a count of the reads and writes that did, which costs
/// one store per operation and no clock read. [`Activity::idle_for`] looks at the count at a
/// fraction of the idle time, so it resolves between `idle` and `idle` + [`CHECKS`]th of it
/// after the last byte moved.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    moved: Arc<AtomicU64>,
}

/// How many times per idle period [`Activity::idle_for`] looks at the count.
const CHECKS: u32 = 8;

impl Activity {
    /// Resolves once nothing moved for `idle` (give or take one check, see [`Activity`]).
    pub async fn idle_for(&self, idle: Duration) {
        let step = (idle / CHECKS).max(Duration::from_millis(1));
        let mut seen = self.moved.load(Ordering::Relaxed);
        let mut quiet_since = Instant::now();
        loop {
            let deadline = (quiet_since + idle).min(Instant::now() + step);
            tokio::time::sleep_until(deadline).await;
            let moved = self.moved.load(Ordering::Relaxed);
            if moved != seen {
                // Bytes moved since the last look, at most a step ago.
                seen = moved;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= idle {
                return;
            }
        }
    }
}

/// Counts in [`Activity`] every read or write of `T` that moved bytes.
#[derive(Debug)]
pub struct IdleIo<T> {
    inner: T,
    activity: Activity,
    /// The count, kept here so that a stamp is a store, not an atomic increment.
    moved: u64,
}

impl<T> IdleIo<T> {
    pub fn new(inner: T) -> Self {
        IdleIo {
            inner,
            activity: Activity::default(),
            moved: 0,
        }
    }

    fn touch(&mut self) {
        self.moved = self.moved.wrapping_add(1);
        self.activity.moved.store(self.moved, Ordering::Relaxed);
    }

    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// On a paused clock: bytes at 5 s and 10 s keep the connection busy; it is idle no sooner
    /// than `idle` after the last of them and no later than one check after that.
    #[tokio::test(start_paused = true)]
    async fn idle_means_no_byte_for_the_whole_period() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = IdleIo::new(near);
        let activity = io.activity();
        let idle = Duration::from_secs(8);
        let started = Instant::now();
        let watch = tokio::spawn(async move {
            activity.idle_for(idle).await;
            Instant::now()
        });
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            far.write_all(b"x").await.unwrap();
            io.read_exact(&mut [0u8; 1]).await.unwrap();
        }
        let last = started + Duration::from_secs(10);
        let idle_at = watch.await.unwrap();
        assert!(idle_at >= last + idle, "{:?}", idle_at - started);
        assert!(
            idle_at <= last + idle + idle / CHECKS,
            "{:?}",
            idle_at - started
        );
    }
}
