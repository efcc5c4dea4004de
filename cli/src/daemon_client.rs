//! The synchronous client side of the daemon's socket protocol
//! (`daemon/README.md`, "Client contract").
//!
//! Owns: finding the socket and connecting with bounded timeouts, the
//! `Hello` handshake and version-skew rules, pipelined and one-shot
//! requests ([`connect_pipelined`], [`request`]). Starting, replacing and
//! stopping the daemon is [`launch`]'s job, built on these.
//!
//! Why everything takes a deadline: a CLI command must never hang on a
//! wedged (e.g. SIGSTOPped) daemon, a full listen backlog, a slow spawn or a
//! stuck start lock. Every blocking step (connect, each read and write, the
//! start lock, the READY line) is bounded by the caller's deadline, through
//! socket send/receive timeouts rather than extra threads or polls on the
//! happy path.
//!
//! The client never unlinks the socket and never kills a daemon: only the
//! daemon that holds the lock removes a stale socket, and a daemon is
//! stopped by asking it (`Shutdown`).

use spec_kitty_protocol::ipc::{self, Compat, Hello, HelloReply, Request, Response, Welcome};
use spec_kitty_protocol::Paths;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod launch;

/// The longest a hand-off may add to a user's command, all failure modes
/// included (README: "What is guaranteed").
pub const HANDOFF_BUDGET: Duration = Duration::from_millis(1500);

#[cfg(unix)]
type Stream = std::os::unix::net::UnixStream;

/// Why talking to the daemon failed, in words for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no file, or connection refused).
    #[error("no sync daemon is running")]
    NotRunning,
    /// The daemon accepted the connection but did not answer in time
    /// (wedged, stopped, or overloaded).
    #[error("the sync daemon did not answer within {waited_ms} ms ({during})")]
    Timeout {
        during: &'static str,
        waited_ms: u128,
    },
    /// The command's time for reaching the daemon was already used up
    /// (by earlier refused connections, a start, the start lock) before
    /// this step began: nothing was waited for here.
    #[error("the time allowed for reaching the sync daemon ran out before {during}")]
    OutOfTime { during: &'static str },
    /// The daemon speaks a newer protocol; an older CLI never restarts it.
    #[error("spec-kitty-syncd {daemon_version} (protocol {daemon_protocol}) is newer than this spec-kitty (protocol {client_protocol}); upgrade spec-kitty")]
    DaemonNewer {
        daemon_version: String,
        daemon_protocol: String,
        client_protocol: String,
        pid: u32,
    },
    /// The daemon speaks an older protocol and this process may not (or
    /// could not) replace it.
    #[error("spec-kitty-syncd {daemon_version} (pid {pid}) is older than this spec-kitty and was not replaced: {why}")]
    DaemonOlder {
        daemon_version: String,
        pid: u32,
        why: String,
    },
    /// No `spec-kitty-syncd` binary to start.
    #[error("{0}")]
    NoBinary(String),
    /// The daemon could not start; the reason is its own `ERROR` line or
    /// what went wrong while starting it.
    #[error("spec-kitty-syncd could not start: {0}")]
    Spawn(String),
    /// The daemon answered something the protocol does not allow here.
    #[error("unexpected answer from the sync daemon: {0}")]
    Protocol(String),
    /// The socket is not provably our own daemon's (its directory is not
    /// ours and private, or the listener runs as another user): nothing
    /// was sent to it.
    #[error("refusing to talk to the sync daemon socket: {0}")]
    Untrusted(String),
    /// Socket I/O failed.
    #[error("cannot talk to the sync daemon at {socket}: {source}")]
    Io {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    /// This platform has no client yet (Windows named pipes are planned).
    #[error("the sync daemon client is not available on this platform yet")]
    Unsupported,
}

/// An open, handshaken connection to a compatible daemon.
#[derive(Debug)]
pub struct Conn {
    #[cfg(unix)]
    stream: Stream,
    socket: PathBuf,
    /// Who the daemon is.
    pub welcome: Welcome,
}

/// The outcome of the handshake.
enum Handshake {
    Ready(Conn),
    /// The daemon is older; the connection stays open for one `Shutdown`.
    Older(Conn),
    Newer(Welcome),
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn our_protocol() -> String {
    format!("{}.{}", ipc::PROTOCOL_MAJOR, ipc::PROTOCOL_MINOR)
}

fn timeout_err(during: &'static str, started: Instant) -> ClientError {
    ClientError::Timeout {
        during,
        waited_ms: started.elapsed().as_millis(),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Conn {
    #[cfg(unix)]
    fn arm(&self, deadline: Instant, during: &'static str) -> Result<(), ClientError> {
        let left = remaining(deadline).ok_or(ClientError::OutOfTime { during })?;
        self.stream
            .set_read_timeout(Some(left))
            .and_then(|_| self.stream.set_write_timeout(Some(left)))
            .map_err(|e| self.io(e))
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            socket: self.socket.clone(),
            source,
        }
    }

    fn frame_err(&self, e: ipc::FrameError, during: &'static str, t0: Instant) -> ClientError {
        match e {
            ipc::FrameError::Io(io) if is_timeout(&io) => timeout_err(during, t0),
            ipc::FrameError::Io(io) => self.io(io),
            ipc::FrameError::Closed => {
                ClientError::Protocol(format!("the daemon closed the connection ({during})"))
            }
            other => ClientError::Protocol(other.to_string()),
        }
    }

    /// Sends every request in one write (pipelined) and reads the answers,
    /// which come back in request order, all before `deadline`.
    #[cfg(unix)]
    pub fn call_many(
        &mut self,
        reqs: &[Request],
        deadline: Instant,
    ) -> Result<Vec<Response>, ClientError> {
        let t0 = Instant::now();
        self.arm(deadline, "sending a request")?;
        let mut buf = Vec::new();
        for r in reqs {
            buf.extend(ipc::encode_frame(r).map_err(|e| ClientError::Protocol(e.to_string()))?);
        }
        (&self.stream).write_all(&buf).map_err(|e| {
            if is_timeout(&e) {
                timeout_err("sending a request", t0)
            } else {
                self.io(e)
            }
        })?;
        let mut out = Vec::with_capacity(reqs.len());
        for _ in reqs {
            let resp = ipc::read_frame(&mut &self.stream)
                .map_err(|e| self.frame_err(e, "waiting for the answer", t0))?;
            out.push(resp);
        }
        Ok(out)
    }

    #[cfg(not(unix))]
    pub fn call_many(
        &mut self,
        _reqs: &[Request],
        _deadline: Instant,
    ) -> Result<Vec<Response>, ClientError> {
        Err(ClientError::Unsupported)
    }

    /// One request, one answer, before `deadline`.
    pub fn call(&mut self, req: Request, deadline: Instant) -> Result<Response, ClientError> {
        let mut v = self.call_many(std::slice::from_ref(&req), deadline)?;
        Ok(v.pop().expect("one answer per request"))
    }
}

/// Checks, before a single byte is sent, that the socket's directory is a
/// real directory (`lstat`: not a symlink) owned by us and closed to group
/// and others (0700). With a long state path the socket lives under `/tmp`,
/// where another local user could create that directory first and receive
/// (or relay) every event. A missing directory means no daemon runs.
#[cfg(unix)]
pub fn check_socket_dir(socket: &Path) -> Result<(), ClientError> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    let shown = dir.display();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ClientError::NotRunning),
        Err(source) => {
            return Err(ClientError::Io {
                socket: socket.to_path_buf(),
                source,
            })
        }
    };
    let me = rustix::process::geteuid().as_raw();
    let why = if meta.file_type().is_symlink() {
        format!("its directory {shown} is a symlink")
    } else if !meta.is_dir() {
        format!("{shown} is not a directory")
    } else if meta.uid() != me {
        format!(
            "its directory {shown} belongs to uid {}, not to us (uid {me})",
            meta.uid()
        )
    } else if meta.mode() & 0o077 != 0 {
        format!(
            "its directory {shown} is open to other users (mode {:o}, must be 0700: `chmod 700` it)",
            meta.mode() & 0o777
        )
    } else {
        return Ok(());
    };
    Err(ClientError::Untrusted(why))
}

/// Connects to the socket. Send timeout is set before `connect` so that a
/// full listen backlog (wedged daemon) cannot block past the deadline.
/// The directory is checked first ([`check_socket_dir`]) and the peer's
/// credentials (SO_PEERCRED: the listener's uid, known at connect, before
/// any accept) must be our euid; otherwise nothing is written.
#[cfg(unix)]
fn connect_stream(socket: &Path, deadline: Instant) -> Result<Stream, ClientError> {
    check_socket_dir(socket)?;
    use rustix::net::{self as rnet, sockopt};
    let t0 = Instant::now();
    let left = remaining(deadline).ok_or(ClientError::OutOfTime {
        during: "connecting",
    })?;
    let io_err = |source: io::Error| ClientError::Io {
        socket: socket.to_path_buf(),
        source,
    };
    let fd = rnet::socket_with(
        rnet::AddressFamily::UNIX,
        rnet::SocketType::STREAM,
        rnet::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| io_err(e.into()))?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(left))
        .map_err(|e| io_err(e.into()))?;
    let addr = rnet::SocketAddrUnix::new(socket).map_err(|e| io_err(e.into()))?;
    match rnet::connect(&fd, &addr) {
        Ok(()) => {
            let me = rustix::process::geteuid();
            match sockopt::socket_peercred(&fd) {
                Ok(cred) if cred.uid == me => Ok(Stream::from(fd)),
                Ok(cred) => Err(ClientError::Untrusted(format!(
                    "the process listening on {} runs as uid {}, not as us (uid {})",
                    socket.display(),
                    cred.uid.as_raw(),
                    me.as_raw()
                ))),
                Err(e) => Err(ClientError::Untrusted(format!(
                    "cannot read the credentials of the process listening on {}: {e}",
                    socket.display()
                ))),
            }
        }
        Err(e) => {
            let e: io::Error = e.into();
            match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    Err(ClientError::NotRunning)
                }
                _ if is_timeout(&e) => Err(timeout_err("connecting", t0)),
                _ => Err(io_err(e)),
            }
        }
    }
}

/// Connects to `socket` with the timeouts armed for the handshake. The
/// `welcome` is a placeholder until the daemon's `HelloReply` fills it in.
#[cfg(unix)]
fn connect_for_handshake(socket: PathBuf, deadline: Instant) -> Result<Conn, ClientError> {
    let stream = connect_stream(&socket, deadline)?;
    let conn = Conn {
        stream,
        socket,
        welcome: Welcome {
            major: 0,
            minor: 0,
            version: String::new(),
            pid: 0,
        },
    };
    conn.arm(deadline, "handshake")?;
    Ok(conn)
}

/// Connects and exchanges `Hello`/`HelloReply`.
#[cfg(unix)]
fn open(paths: &Paths, deadline: Instant) -> Result<Handshake, ClientError> {
    let t0 = Instant::now();
    let mut conn = connect_for_handshake(paths.socket(), deadline)?;
    let hello = Hello::current(env!("CARGO_PKG_VERSION"));
    ipc::write_frame(&mut &conn.stream, &hello).map_err(|e| conn.frame_err(e, "handshake", t0))?;
    let reply: HelloReply =
        ipc::read_frame(&mut &conn.stream).map_err(|e| conn.frame_err(e, "handshake", t0))?;
    Ok(match reply {
        HelloReply::Welcome(w) => {
            conn.welcome = w;
            Handshake::Ready(conn)
        }
        HelloReply::Incompatible { daemon, .. } => {
            match ipc::compat((hello.major, hello.minor), (daemon.major, daemon.minor)) {
                Compat::DaemonOlder => {
                    conn.welcome = daemon;
                    Handshake::Older(conn)
                }
                // `Compatible` after `Incompatible` cannot happen between
                // honest peers; treat it like a newer daemon (never restart).
                Compat::DaemonNewer | Compat::Compatible => Handshake::Newer(daemon),
            }
        }
    })
}

#[cfg(not(unix))]
fn open(_paths: &Paths, _deadline: Instant) -> Result<Handshake, ClientError> {
    Err(ClientError::Unsupported)
}

fn newer_err(w: &Welcome) -> ClientError {
    ClientError::DaemonNewer {
        daemon_version: w.version.clone(),
        daemon_protocol: format!("{}.{}", w.major, w.minor),
        client_protocol: our_protocol(),
        pid: w.pid,
    }
}

/// The warm path in one round trip: connect, then `Hello` and `reqs` in
/// ONE write (the daemon reads requests only after its `Welcome`, and
/// answers in order). `Ok(None)`: no daemon, or it is not compatible; the
/// caller then takes the full path ([`launch::connect_or_spawn`]), which handshakes
/// first and handles spawning and skew (an older daemon takes the stray
/// request as "not a Shutdown" and just closes; a newer one closes).
/// `meanwhile` runs once the requests are written, before the wait.
///
/// One-shot: the write side is shut right after the requests, so the
/// daemon reads its end of file while it commits, answers, and closes the
/// connection itself. The short process that called this then exits
/// without waking the daemon for a hang-up (measured: about 0.1 ms off a
/// warm `add-history`, most of it the exit no longer racing the daemon's
/// wake-up for the two CPUs).
#[cfg(unix)]
pub fn connect_pipelined(
    paths: &Paths,
    reqs: &[Request],
    deadline: Instant,
    meanwhile: &mut dyn FnMut(),
) -> Result<Option<Vec<Response>>, ClientError> {
    let t0 = Instant::now();
    let conn = match connect_for_handshake(paths.socket(), deadline) {
        Ok(c) => c,
        Err(ClientError::NotRunning) => return Ok(None),
        Err(e) => return Err(e),
    };
    let hello = Hello::current(env!("CARGO_PKG_VERSION"));
    let mut buf = ipc::encode_frame(&hello).map_err(|e| ClientError::Protocol(e.to_string()))?;
    for r in reqs {
        buf.extend(ipc::encode_frame(r).map_err(|e| ClientError::Protocol(e.to_string()))?);
    }
    (&conn.stream).write_all(&buf).map_err(|e| {
        if is_timeout(&e) {
            timeout_err("handshake", t0)
        } else {
            conn.io(e)
        }
    })?;
    // Best effort: if it fails, the daemon sees the hang-up at our exit.
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    meanwhile();
    let reply: HelloReply =
        ipc::read_frame(&mut &conn.stream).map_err(|e| conn.frame_err(e, "handshake", t0))?;
    let HelloReply::Welcome(_) = reply else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(reqs.len());
    for _ in reqs {
        out.push(
            ipc::read_frame(&mut &conn.stream)
                .map_err(|e| conn.frame_err(e, "waiting for the answer", t0))?,
        );
    }
    Ok(Some(out))
}

#[cfg(not(unix))]
pub fn connect_pipelined(
    _paths: &Paths,
    _reqs: &[Request],
    _deadline: Instant,
    _meanwhile: &mut dyn FnMut(),
) -> Result<Option<Vec<Response>>, ClientError> {
    Ok(None)
}

/// Connects to a running, compatible daemon (never starts one).
pub fn connect(paths: &Paths, deadline: Instant) -> Result<Conn, ClientError> {
    match open(paths, deadline)? {
        Handshake::Ready(c) => Ok(c),
        Handshake::Newer(w) => Err(newer_err(&w)),
        Handshake::Older(c) => Err(ClientError::DaemonOlder {
            daemon_version: c.welcome.version.clone(),
            pid: c.welcome.pid,
            why: "run `spec-kitty sync restart` to replace it".into(),
        }),
    }
}

/// One request to a running daemon: connect (never spawn), handshake, send,
/// read the answer, all within `timeout`. For `Status`, `Reload`,
/// `SyncNow`, `IngestSpool`...
pub fn request(paths: &Paths, req: Request, timeout: Duration) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    connect(paths, deadline)?.call(req, deadline)
}

#[cfg(unix)]
fn connect_stream_probe(paths: &Paths, deadline: Instant) -> Result<(), ClientError> {
    connect_stream(
        &paths.socket(),
        deadline.min(Instant::now() + Duration::from_millis(100)),
    )
    .map(drop)
}

#[cfg(not(unix))]
fn connect_stream_probe(_paths: &Paths, _deadline: Instant) -> Result<(), ClientError> {
    Err(ClientError::NotRunning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_daemon_is_not_running_and_fast() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let e = request(&paths, Request::Status, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, ClientError::NotRunning), "{e}");
    }

    #[test]
    fn silent_listener_times_out_instead_of_hanging() {
        // A socket that accepts connections (kernel backlog) but never
        // answers: what a SIGSTOPped daemon looks like to a client.
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.socket_dir()).unwrap();
        // Private, as the daemon makes it: a loose directory is refused first.
        std::fs::set_permissions(
            paths.socket_dir(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let _l = std::os::unix::net::UnixListener::bind(paths.socket()).unwrap();
        let e = request(&paths, Request::Status, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
    }

    #[test]
    fn a_loose_or_foreign_socket_directory_is_refused_before_connecting() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert!(matches!(
            check_socket_dir(&paths.socket()),
            Err(ClientError::NotRunning)
        ));
        std::fs::create_dir_all(paths.socket_dir()).unwrap();
        std::fs::set_permissions(paths.socket_dir(), PermissionsExt::from_mode(0o755)).unwrap();
        let e = check_socket_dir(&paths.socket()).unwrap_err();
        assert!(e.to_string().contains("mode 755"), "{e}");
        std::fs::set_permissions(paths.socket_dir(), PermissionsExt::from_mode(0o700)).unwrap();
        check_socket_dir(&paths.socket()).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(paths.socket_dir(), &link).unwrap();
        let e = check_socket_dir(&link.join("syncd.sock")).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
    }
}
