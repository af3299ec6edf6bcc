//! Minimal HTTP/1.1 backend for benchmarks: answers every request with a 2-byte body.
//! Usage: bench_backend PORT [PORT...]   (one single-threaded runtime serves all ports)
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ports: Vec<u16> = std::env::args()
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect();
    let mut tasks = Vec::new();
    for port in ports {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"ok",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
