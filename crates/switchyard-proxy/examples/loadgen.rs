//! Open-loop load generator (wrk2-style fixed rate, which Debian's wrk lacks).
//! Usage: loadgen ADDR RATE_PER_SEC SECONDS CONNECTIONS
//! Request i of a connection is due at start + i × (connections / rate); latency is measured
//! from the due time, not the send time, so a stalled server cannot hide queueing
//! (no coordinated omission). Prints: sent, errors, achieved rps, p50/p99/p999 in µs.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr: std::net::SocketAddr = args[1].parse().unwrap();
    let rate: f64 = args[2].parse().unwrap();
    let secs: f64 = args[3].parse().unwrap();
    let conns: usize = args[4].parse().unwrap();
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let per_conn = (secs * rate / conns as f64) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for c in 0..conns {
        // Stagger connections evenly inside one interval.
        let offset = interval.mul_f64(c as f64 / conns as f64);
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut errors = 0u64;
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            for i in 0..per_conn {
                let due = start + offset + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                let req = hyper::Request::get("/")
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let ok = match send.send_request(req).await {
                    Ok(resp) => {
                        resp.status().is_success() && resp.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    h.record(due.elapsed().as_micros() as u64).unwrap();
                } else {
                    errors += 1;
                }
            }
            (h, errors)
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.unwrap();
        all.add(&h).unwrap();
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "sent={} errors={} rps={:.0} p50_us={} p99_us={} p999_us={}",
        all.len() + errors,
        errors,
        all.len() as f64 / elapsed,
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.99),
        all.value_at_quantile(0.999)
    );
}
