//! Worker threads, as nginx runs worker processes: each thread is a current-thread runtime that
//! accepts connections on every listener by itself, so a connection, its requests and the
//! upstream connections they use stay on one thread (no hand-off between threads per request).
//! Health checks, drains and the control plane's traffic stay on the runtime that created the
//! listeners.

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// 1..=n on worker threads, 0 elsewhere.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The worker this thread is (1..=n), or 0 when it is none.
pub(crate) fn current() -> usize {
    INDEX.with(Cell::get)
}

/// A set of worker threads; they stop when the last handle is dropped.
pub struct Workers {
    handles: Vec<Handle>,
    stops: Mutex<Vec<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("threads", &self.handles.len())
            .finish()
    }
}

impl Workers {
    /// Starts `n` worker threads.
    ///
    /// # Errors
    /// A thread or its runtime cannot be created.
    pub fn start(n: usize) -> std::io::Result<WorkerPool> {
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 1..=n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("proxy-worker-{i}"))
                .spawn(move || {
                    INDEX.with(|c| c.set(i));
                    let _ = runtime.block_on(stopped);
                })?;
        }
        Ok(WorkerPool(Arc::new(Workers {
            handles,
            stops: Mutex::new(stops),
        })))
    }

    pub(crate) fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let stops = std::mem::take(&mut *self.stops.lock().unwrap_or_else(PoisonError::into_inner));
        for s in stops {
            let _ = s.send(());
        }
    }
}

/// Shared worker threads, as a listener setting ([`crate::ProxyConfig::workers`]).
#[derive(Debug, Clone)]
pub struct WorkerPool(Arc<Workers>);

impl WorkerPool {
    pub(crate) fn workers(&self) -> &Workers {
        &self.0
    }

    /// How many worker threads there are.
    pub fn len(&self) -> usize {
        self.0.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.handles.is_empty()
    }
}

impl PartialEq for WorkerPool {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
