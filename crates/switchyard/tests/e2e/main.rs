#![allow(clippy::unwrap_used)]

//! End to end: the real `switchyard` binary, its daemon, the demo service as child processes,
//! and real HTTP through the proxy.

mod support;

mod backup;
mod bad_input;
mod cli;
mod dataplane;
mod demo;
mod experiments;
mod flags;
mod gbstats;
mod judge;
mod kubernetes;
mod netns;
mod operations;
mod pipelines;
mod receiver;
mod restart;
mod rolling;
mod security;
mod stats;
mod storage;
mod tls;
mod traffic_experiment;
mod webhooks;
