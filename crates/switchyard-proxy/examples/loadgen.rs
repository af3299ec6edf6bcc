//! Open-loop load generator (wrk2-style fixed rate, which Debian's wrk lacks).
//! Usage: loadgen ADDR RATE_PER_SEC SECONDS CONNECTIONS
//!
//! Request k is due at start + k / rate. A dedicated scheduler thread releases requests at their
//! due times with a precise clock: `std::thread::sleep` for the coarse part, then yielding in a
//! loop for the last ~200 µs (tokio's timer wheel has 1 ms resolution, which would hide
//! sub-millisecond latencies). Released requests go to whichever of the keep-alive connections
//! is free; latency is measured from the due time, not the send time, so a stalled server cannot
//! hide queueing (no coordinated omission).
//! Prints one line: sent, errors, achieved rps, p50/p90/p99/p999/max in µs, and the scheduler's
//! own lateness (p99 of release time minus due time), the floor of what can be resolved.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::sync::{Mutex, mpsc};

/// How long before a due time the scheduler stops sleeping and starts yielding: covers the
/// kernel's timer slack (50 µs by default) and wake-up latency.
const SPIN_BEFORE: Duration = Duration::from_micros(200);

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

/// Releases `total` due times at `interval` spacing from `start`; returns its lateness histogram.
fn schedule(
    start: Instant,
    interval: Duration,
    total: u64,
    tx: mpsc::UnboundedSender<Instant>,
) -> Histogram<u64> {
    let mut late = histogram();
    let mut k = 0u64;
    while k < total {
        let due = start + interval.mul_f64(k as f64);
        let now = Instant::now();
        if due > now + SPIN_BEFORE {
            std::thread::sleep(due - now - SPIN_BEFORE);
            continue;
        }
        if due > now {
            std::thread::yield_now();
            continue;
        }
        // Release everything due by now (several at once when the thread was descheduled).
        while k < total && start + interval.mul_f64(k as f64) <= now {
            let due = start + interval.mul_f64(k as f64);
            late.record(now.duration_since(due).as_micros() as u64)
                .unwrap();
            if tx.send(due).is_err() {
                return late;
            }
            k += 1;
        }
    }
    late
}

type Work = Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>;

/// One keep-alive connection taking due requests from the shared queue until it is closed.
async fn connection(addr: std::net::SocketAddr, work: Work) -> (Histogram<u64>, u64) {
    let mut h = histogram();
    let mut errors = 0u64;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    loop {
        let Some(due) = work.lock().await.recv().await else {
            return (h, errors);
        };
        let req = hyper::Request::get("/")
            .header("host", "bench")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let ok = match send.send_request(req).await {
            Ok(resp) => resp.status().is_success() && resp.into_body().collect().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            h.record(due.elapsed().as_micros() as u64).unwrap();
        } else {
            errors += 1;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: std::net::SocketAddr = args[1].parse().unwrap();
    let rate: f64 = args[2].parse().unwrap();
    let secs: f64 = args[3].parse().unwrap();
    let conns: usize = args[4].parse().unwrap();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (secs * rate) as u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let work: Work = Arc::new(Mutex::new(rx));
    let tasks: Vec<_> = (0..conns)
        .map(|_| rt.spawn(connection(addr, work.clone())))
        .collect();
    // Connections are opened before the first due time.
    let start = Instant::now() + Duration::from_millis(200);
    let scheduler = std::thread::spawn(move || schedule(start, interval, total, tx));
    let (all, errors) = rt.block_on(async {
        let mut all = histogram();
        let mut errors = 0;
        for t in tasks {
            let (h, e) = t.await.unwrap();
            all.add(&h).unwrap();
            errors += e;
        }
        (all, errors)
    });
    let late = scheduler.join().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let q = |p: f64| all.value_at_quantile(p);
    println!(
        "sent={} errors={} rps={:.0} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} sched_late_p99_us={}",
        all.len() + errors,
        errors,
        all.len() as f64 / elapsed,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        all.max(),
        late.value_at_quantile(0.99)
    );
}
