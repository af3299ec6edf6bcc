//! Switchyard's proxy for benchmarks: a 90/10 stable/canary table.
//! Usage: bench_proxy LISTEN_PORT STABLE_ADDR CANARY_ADDR [WORKERS]
//!
//! Each worker is an OS thread with its own current-thread runtime and its own listener on the
//! shared port (`reuse_port`), the way nginx runs worker processes: a request and the upstream
//! connection serving it stay on one thread, with no cross-thread wake-ups. Telemetry is shared.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_proxy::{AppProxy, Backend, ProxyConfig, RoutingTable, Telemetry};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let stable: SocketAddr = args[2].parse().unwrap();
    let canary: SocketAddr = args[3].parse().unwrap();
    let workers: usize = args.get(4).map_or(1, |t| t.parse().unwrap());
    let telemetry = Arc::new(Telemetry::new());
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let telemetry = telemetry.clone();
            std::thread::spawn(move || worker(port, stable, canary, telemetry))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn worker(port: u16, stable: SocketAddr, canary: SocketAddr, telemetry: Arc<Telemetry>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let config = ProxyConfig {
            reuse_port: true,
            ..ProxyConfig::default()
        };
        let proxy = AppProxy::bind("bench", listen, config, telemetry)
            .await
            .unwrap();
        proxy.set_routes(RoutingTable {
            backends: vec![
                Backend::new("stable", 90, vec![stable]),
                Backend::new("canary", 10, vec![canary]),
            ],
            ..Default::default()
        });
        tokio::signal::ctrl_c().await.unwrap();
        proxy.shutdown(std::time::Duration::from_secs(1)).await;
    });
}
