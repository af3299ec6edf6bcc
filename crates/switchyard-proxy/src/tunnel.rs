//! Upgraded connections (WebSocket and other `Upgrade` protocols): once both sides have
//! switched, bytes are copied both ways until either side closes, the tunnel idles past the
//! idle timeout, or shutdown forces it closed.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::app::AppState;

pub fn spawn(app: &Arc<AppState>, downstream: OnUpgrade, upstream: OnUpgrade) {
    let force = app.force.clone();
    let idle = app.config.idle_timeout;
    app.tasks.spawn(async move {
        let (Ok(down), Ok(up)) = tokio::join!(downstream, upstream) else {
            tracing::debug!("upgrade did not complete on both sides");
            return;
        };
        let mut down = crate::idle::IdleIo::new(TokioIo::new(down));
        let activity = down.activity();
        let mut up = TokioIo::new(up);
        tokio::select! {
            r = tokio::io::copy_bidirectional(&mut down, &mut up) => {
                if let Err(e) = r { tracing::debug!(error = %e, "tunnel closed with an error"); }
            }
            () = activity.idle_for(idle) => tracing::debug!("tunnel idle timeout"),
            () = force.cancelled() => {}
        }
    });
}
