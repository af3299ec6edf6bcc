//! Switchyard's proxy for benchmarks: one AppProxy with a 90/10 stable/canary table.
//! Usage: bench_proxy LISTEN_PORT STABLE_ADDR CANARY_ADDR [WORKER_THREADS]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_proxy::{AppProxy, Backend, ProxyConfig, RoutingTable, Telemetry};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let stable: SocketAddr = args[2].parse().unwrap();
    let canary: SocketAddr = args[3].parse().unwrap();
    let threads: usize = args.get(4).map_or(1, |t| t.parse().unwrap());
    // One thread: a current-thread runtime, like one nginx worker or one haproxy thread.
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    };
    rt.block_on(async move {
        let telemetry = Arc::new(Telemetry::new());
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let proxy = AppProxy::bind("bench", listen, ProxyConfig::default(), telemetry)
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
