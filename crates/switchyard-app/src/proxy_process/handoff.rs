//! Handing a proxy's listening sockets to the process that replaces it (a restart or an
//! upgrade), over a Unix `SOCK_SEQPACKET` socket in the state directory, with the descriptors
//! passed as `SCM_RIGHTS`.
//!
//! The sockets themselves move, not their addresses: the kernel keeps one listening socket and
//! its queue of connections, and both processes accept from it until the old one stops. No
//! connection is refused or reset on the way, which re-binding (even with `SO_REUSEPORT`) cannot
//! promise: connections queued on a closed `SO_REUSEPORT` socket are reset.
//!
//! 1. The new process connects and sends `{"takeover": true}`.
//! 2. The old one answers with messages `{"sockets": [{"app", "preview"}...], "more"}`, each
//!    carrying the descriptors of the sockets it lists, in order.
//! 3. The new process serves on them and sends `{"ready": true}`.
//! 4. The old one removes the socket file (the new process binds its own), answers
//!    `{"released": true}`, stops accepting, lets its requests finish and exits.
//!
//! A new process that fails before step 3 changes nothing: the old one keeps serving.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};
use switchyard_core::AppName;
use switchyard_proxy::host::HandedSocket;

/// File name of the handover socket in the state directory.
pub const SOCKET_FILE: &str = "handoff.sock";

/// Descriptors per message (the kernel takes at most 253).
const PER_MESSAGE: usize = 64;
/// How long either side waits for the other's next message.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message: a JSON list of up to `PER_MESSAGE` app names.
const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Message {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    takeover: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sockets: Vec<SocketLabel>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    more: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ready: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    released: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SocketLabel {
    app: AppName,
    preview: bool,
}

/// The handover socket of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

fn seqpacket(flags: SocketFlags) -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | flags,
        None,
    )?)
}

fn address(path: &Path) -> io::Result<SocketAddrUnix> {
    SocketAddrUnix::new(path).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} cannot be a socket path ({e}); use a shorter state directory",
                path.display()
            ),
        )
    })
}

fn send(fd: &OwnedFd, message: &Message, fds: &[&OwnedFd]) -> io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !borrowed.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(io::Error::other(
            "descriptors do not fit the control buffer",
        ));
    }
    rustix::net::sendmsg(
        fd,
        &[io::IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

fn receive(fd: &OwnedFd) -> io::Result<(Message, Vec<OwnedFd>)> {
    let mut bytes = vec![0u8; MAX_MESSAGE];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(PER_MESSAGE))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        fd,
        &mut [io::IoSliceMut::new(&mut bytes)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the other proxy closed the handover",
        ));
    }
    let message = serde_json::from_slice(&bytes[..got.bytes])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((message, fds))
}

/// The new process's side of a handover in progress.
#[derive(Debug)]
pub struct Takeover {
    fd: OwnedFd,
}

impl Takeover {
    /// Connects to the proxy serving from `state_dir` and receives its listening sockets.
    ///
    /// # Errors
    /// No proxy answers there, or the handover failed (the old proxy keeps serving).
    pub fn start(state_dir: &Path) -> io::Result<(Takeover, Vec<HandedSocket>)> {
        let fd = seqpacket(SocketFlags::empty())?;
        rustix::net::connect(&fd, &address(&path(state_dir))?)?;
        set_timeouts(&fd)?;
        send(
            &fd,
            &Message {
                takeover: true,
                ..Message::default()
            },
            &[],
        )?;
        let mut sockets = Vec::new();
        loop {
            let (message, fds) = receive(&fd)?;
            if message.sockets.len() != fds.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the old proxy listed {} sockets and passed {}",
                        message.sockets.len(),
                        fds.len()
                    ),
                ));
            }
            for (label, fd) in message.sockets.into_iter().zip(fds) {
                sockets.push(HandedSocket {
                    app: label.app,
                    preview: label.preview,
                    socket: std::net::TcpListener::from(fd),
                });
            }
            if !message.more {
                break;
            }
        }
        Ok((Takeover { fd }, sockets))
    }

    /// Tells the old process this one serves; returns once it let go of the handover socket.
    ///
    /// # Errors
    /// The old process did not confirm.
    pub fn ready(self) -> io::Result<()> {
        send(
            &self.fd,
            &Message {
                ready: true,
                ..Message::default()
            },
            &[],
        )?;
        let (message, _) = receive(&self.fd)?;
        if message.released {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the old proxy did not release its listeners",
            ))
        }
    }
}

fn set_timeouts(fd: &OwnedFd) -> io::Result<()> {
    use rustix::net::sockopt::{Timeout, set_socket_timeout};
    set_socket_timeout(fd, Timeout::Recv, Some(STEP_TIMEOUT))?;
    set_socket_timeout(fd, Timeout::Send, Some(STEP_TIMEOUT))?;
    Ok(())
}

/// The running process's side: takes handover requests.
#[derive(Debug)]
pub struct HandoffListener {
    fd: OwnedFd,
    path: PathBuf,
}

impl HandoffListener {
    /// Listens on the handover socket of `state_dir`, replacing a stale socket file.
    ///
    /// # Errors
    /// The socket cannot be created or bound.
    pub fn bind(state_dir: &Path) -> io::Result<Self> {
        let path = path(state_dir);
        let addr = address(&path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let fd = seqpacket(SocketFlags::NONBLOCK)?;
        rustix::net::bind(&fd, &addr)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        rustix::net::listen(&fd, 4)?;
        Ok(Self { fd, path })
    }

    /// Waits up to `timeout` for a process that asks to take over (blocking: run it off the
    /// async threads); `None` when none came or a signal interrupted the wait.
    ///
    /// # Errors
    /// Waiting or accepting failed.
    pub fn accept(&self, timeout: Duration) -> io::Result<Option<Handover>> {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let timeout = Timespec::try_from(timeout).map_err(io::Error::other)?;
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        // A signal delivered to this thread interrupts the wait (poll is never restarted): the
        // caller asks again, as after a timeout.
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
            Ok(fd) => {
                set_timeouts(&fd)?;
                Ok(Some(Handover {
                    fd,
                    path: self.path.clone(),
                }))
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the socket file (when this process stops for good).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One handover request, on the running process's side.
#[derive(Debug)]
pub struct Handover {
    fd: OwnedFd,
    path: PathBuf,
}

impl Handover {
    /// Waits for the request (blocking: run it off the async threads).
    ///
    /// # Errors
    /// The peer sent something else, or nothing in time.
    pub fn expect_takeover(&self) -> io::Result<()> {
        let (message, _) = receive(&self.fd)?;
        if message.takeover {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "expected a takeover request",
            ))
        }
    }

    /// Passes `sockets` and waits until the new process serves on them; then removes the
    /// handover socket file and confirms (blocking: run it off the async threads). After `Ok`,
    /// stop accepting.
    ///
    /// # Errors
    /// The new process failed or went away; keep serving.
    pub fn hand_over(self, sockets: Vec<HandedSocket>) -> io::Result<()> {
        let total = sockets.len();
        let mut sent = 0;
        let mut chunks = sockets.chunks(PER_MESSAGE).peekable();
        if chunks.peek().is_none() {
            send(&self.fd, &Message::default(), &[])?;
        }
        while let Some(chunk) = chunks.next() {
            let labels = chunk
                .iter()
                .map(|h| SocketLabel {
                    app: h.app.clone(),
                    preview: h.preview,
                })
                .collect();
            let fds: Vec<OwnedFd> = chunk
                .iter()
                .map(|h| h.socket.as_fd().try_clone_to_owned())
                .collect::<io::Result<_>>()?;
            let refs: Vec<&OwnedFd> = fds.iter().collect();
            let message = Message {
                sockets: labels,
                more: chunks.peek().is_some(),
                ..Message::default()
            };
            send(&self.fd, &message, &refs)?;
            sent += chunk.len();
        }
        tracing::info!(
            sockets = sent,
            of = total,
            "listening sockets passed to the new proxy"
        );
        let (message, _) = receive(&self.fd)?;
        if !message.ready {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the new proxy did not say it serves",
            ));
        }
        let _ = std::fs::remove_file(&self.path);
        send(
            &self.fd,
            &Message {
                released: true,
                ..Message::default()
            },
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::pthread::{pthread_kill, pthread_self};
    use nix::sys::signal::Signal;

    /// A signal delivered to the thread waiting for a takeover interrupts its `poll` (poll is
    /// never restarted): the wait ends as after a timeout, and the caller asks again, instead of
    /// failing for good (which left the proxy unable to hand its sockets over).
    #[test]
    fn a_signal_during_the_wait_is_no_failure() {
        // A handler for SIGUSR2 (tokio's, process-wide), so the signal interrupts, not kills.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _handler = runtime
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())
            })
            .expect("SIGUSR2 handler");
        let dir = tempfile::tempdir().expect("temporary directory");
        let listener = HandoffListener::bind(dir.path()).expect("handover socket");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            tx.send(pthread_self()).expect("thread id");
            listener
                .accept(Duration::from_secs(30))
                .map(|h| h.is_some())
        });
        let thread = rx.recv().expect("thread id");
        // Signals until the wait ends: one of them arrives while the thread is in `poll`.
        while !waiter.is_finished() {
            // ESRCH: the thread ended between the check and the signal.
            match pthread_kill(thread, Signal::SIGUSR2) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => panic!("cannot signal the waiting thread: {e}"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let waited = waiter.join().expect("the waiting thread");
        assert!(
            matches!(waited, Ok(false)),
            "an interrupted wait is an empty one, not an error: {waited:?}"
        );
    }
}
