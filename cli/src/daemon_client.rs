//! The synchronous client side of the daemon's socket protocol
//! (`daemon/README.md`, "Client contract").
//!
//! Owns: finding the socket and connecting with bounded timeouts, the
//! `Hello` handshake and version-skew rules, one-shot requests
//! ([`request`]), and starting `spec-kitty-syncd` under the start lock
//! ([`connect_or_spawn`], [`start`], [`stop`]).
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
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the `spec-kitty-syncd` binary to start
/// (default: next to the `spec-kitty` executable, then `PATH`).
pub const SYNCD_BIN_ENV: &str = "SPEC_KITTY_SYNCD_BIN";

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
/// caller then takes the full path ([`connect_or_spawn`]), which handshakes
/// first and handles spawning and skew (an older daemon takes the stray
/// request as "not a Shutdown" and just closes; a newer one closes).
#[cfg(unix)]
pub fn connect_pipelined(
    paths: &Paths,
    reqs: &[Request],
    deadline: Instant,
) -> Result<Option<(Conn, Vec<Response>)>, ClientError> {
    let t0 = Instant::now();
    let mut conn = match connect_for_handshake(paths.socket(), deadline) {
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
    let reply: HelloReply =
        ipc::read_frame(&mut &conn.stream).map_err(|e| conn.frame_err(e, "handshake", t0))?;
    let HelloReply::Welcome(w) = reply else {
        return Ok(None);
    };
    conn.welcome = w;
    let mut out = Vec::with_capacity(reqs.len());
    for _ in reqs {
        out.push(
            ipc::read_frame(&mut &conn.stream)
                .map_err(|e| conn.frame_err(e, "waiting for the answer", t0))?,
        );
    }
    Ok(Some((conn, out)))
}

#[cfg(not(unix))]
pub fn connect_pipelined(
    _paths: &Paths,
    _reqs: &[Request],
    _deadline: Instant,
) -> Result<Option<(Conn, Vec<Response>)>, ClientError> {
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

/// Whether process `pid` still runs. A zombie (exited, not yet reaped by
/// its parent; common in containers whose init does not reap) has released
/// its locks and counts as gone.
pub fn alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state letter follows the parenthesised command name.
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        match rustix::process::Pid::from_raw(pid as i32) {
            Some(p) => rustix::process::test_kill_process(p).is_ok(),
            None => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Waits until the daemon `pid` is gone: its socket refuses connections and
/// the process has exited (so it no longer holds the daemon lock). A short
/// poll: this only runs on stop/restart, never on the warm path.
fn wait_gone(paths: &Paths, pid: u32, deadline: Instant) -> bool {
    loop {
        let refused = matches!(
            connect_stream_probe(paths, deadline),
            Err(ClientError::NotRunning)
        );
        if refused && !alive(pid) {
            return true;
        }
        if remaining(deadline).is_none() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
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

/// Asks an older daemon (connection right after its `Incompatible`) to
/// drain and exit, and waits until it is gone.
fn replace_older(paths: &Paths, mut conn: Conn, deadline: Instant) -> Result<(), ClientError> {
    let w = conn.welcome.clone();
    let reason = format!(
        "spec-kitty {} (protocol {}) replaces it",
        env!("CARGO_PKG_VERSION"),
        our_protocol()
    );
    let older = |why: String| ClientError::DaemonOlder {
        daemon_version: w.version.clone(),
        pid: w.pid,
        why,
    };
    match conn.call(Request::Shutdown { reason }, deadline)? {
        Response::Done { .. } => {}
        Response::Error { message, .. } if message.contains("cooldown") => {
            return Err(older(format!(
                "{message}; events are spooled until it is replaced"
            )))
        }
        other => return Err(older(format!("it refused to shut down: {other:?}"))),
    }
    drop(conn);
    if wait_gone(paths, w.pid, deadline) {
        Ok(())
    } else {
        Err(older("it was asked to exit but is still draining".into()))
    }
}

/// How to start `spec-kitty-syncd`: `SPEC_KITTY_SYNCD_BIN`, else the file
/// next to this executable, else the first on `PATH`.
pub fn locate_syncd() -> Result<PathBuf, ClientError> {
    let name = format!("spec-kitty-syncd{}", std::env::consts::EXE_SUFFIX);
    if let Some(v) = std::env::var_os(SYNCD_BIN_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ClientError::NoBinary(format!(
                "{SYNCD_BIN_ENV}={} is not a file",
                p.display()
            )))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(&name)));
    if let Some(p) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(p.clone());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(ClientError::NoBinary(format!(
        "spec-kitty-syncd not found ({} nor on PATH; set {SYNCD_BIN_ENV})",
        beside.map_or("not next to spec-kitty".to_string(), |p| format!(
            "not at {}",
            p.display()
        ))
    )))
}

/// Takes `Paths::start_lock()` before `deadline` (polling `try_lock`, so the
/// wait is bounded; this is the cold path only).
fn start_lock(paths: &Paths, deadline: Instant) -> Result<File, ClientError> {
    let t0 = Instant::now();
    let path = paths.start_lock();
    let io_err = |source| ClientError::Spawn(format!("start lock {}: {source}", path.display()));
    std::fs::create_dir_all(paths.state_dir()).map_err(io_err)?;
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err)?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        if remaining(deadline).is_none() {
            return Err(timeout_err(
                "waiting for another spec-kitty to start the daemon",
                t0,
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The first line a `--spawned` daemon prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnLine {
    Ready { pid: u32 },
    Running { pid: Option<u32> },
}

/// Reads the READY/RUNNING/ERROR line ([`ipc::Readiness`]).
pub fn parse_spawn_line(line: &str) -> Result<SpawnLine, ClientError> {
    match line.parse::<ipc::Readiness>().map_err(ClientError::Spawn)? {
        ipc::Readiness::Ready { pid, .. } => Ok(SpawnLine::Ready { pid }),
        ipc::Readiness::Running { pid } => Ok(SpawnLine::Running { pid }),
        ipc::Readiness::Error(reason) => Err(ClientError::Spawn(reason)),
    }
}

/// The first line a child prints on `stdout` (empty at EOF), read on a
/// helper thread so the wait is bounded: `None` when `timeout` passes
/// first. The thread ends with the line, or with the process.
pub fn first_line_within(
    stdout: std::process::ChildStdout,
    timeout: Duration,
) -> Option<std::io::Result<String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
    });
    rx.recv_timeout(timeout).ok()
}

/// Runs `spec-kitty-syncd run --spawned` and reads its one status line
/// within the deadline. The child detaches itself (own session, stdio to
/// /dev/null after READY); it is not waited for.
fn spawn(paths: &Paths, deadline: Instant) -> Result<SpawnLine, ClientError> {
    let t0 = Instant::now();
    let bin = locate_syncd()?;
    let mut child = Command::new(&bin)
        .args(["run", "--spawned"])
        .env(spec_kitty_protocol::paths::HOME_ENV, paths.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ClientError::Spawn(format!("cannot run {}: {e}", bin.display())))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let left = remaining(deadline).unwrap_or(Duration::from_millis(1));
    match first_line_within(stdout, left).ok_or(()) {
        Ok(Ok(line)) if line.trim().is_empty() => {
            // EOF without a line: it died during start-up; reap it if we can.
            let status = child.try_wait().ok().flatten();
            Err(ClientError::Spawn(format!(
                "{} exited during start-up without a reason{}",
                bin.display(),
                status.map_or(String::new(), |s| format!(" ({s})"))
            )))
        }
        Ok(Ok(line)) => parse_spawn_line(&line),
        Ok(Err(e)) => Err(ClientError::Spawn(format!(
            "reading its start-up line: {e}"
        ))),
        Err(_) => Err(timeout_err("starting spec-kitty-syncd", t0)),
    }
}

/// Spawns under the start lock and connects to whatever daemon then runs.
fn spawn_and_connect(paths: &Paths, deadline: Instant) -> Result<Conn, ClientError> {
    let lock = start_lock(paths, deadline)?;
    // Someone may have started it while we waited for the lock.
    match open(paths, deadline) {
        Ok(Handshake::Ready(c)) => return Ok(c),
        Ok(Handshake::Newer(w)) => return Err(newer_err(&w)),
        Ok(Handshake::Older(c)) => {
            return Err(ClientError::DaemonOlder {
                daemon_version: c.welcome.version.clone(),
                pid: c.welcome.pid,
                why: "another process started it just now".into(),
            })
        }
        Err(ClientError::NotRunning) => {}
        Err(e) => return Err(e),
    }
    let line = spawn(paths, deadline)?;
    drop(lock);
    // READY: it listens now. RUNNING: another daemon holds the daemon lock
    // (started outside the start lock, e.g. by systemd, or still draining)
    // and may not listen yet, so retry briefly.
    loop {
        match open(paths, deadline) {
            Ok(Handshake::Ready(c)) => return Ok(c),
            Ok(Handshake::Newer(w)) => return Err(newer_err(&w)),
            Ok(Handshake::Older(c)) => {
                return Err(ClientError::Spawn(format!(
                    "the daemon that answers (spec-kitty-syncd {}, pid {}) is older than this spec-kitty; check {SYNCD_BIN_ENV} and PATH",
                    c.welcome.version, c.welcome.pid
                )))
            }
            Err(ClientError::NotRunning | ClientError::OutOfTime { .. })
                if matches!(line, SpawnLine::Running { .. }) =>
            {
                if remaining(deadline).is_none() {
                    let pid = match line {
                        SpawnLine::Running { pid: Some(p) } => format!(" (pid {p})"),
                        _ => String::new(),
                    };
                    return Err(ClientError::Spawn(format!(
                        "another spec-kitty-syncd{pid} holds the daemon lock but refused connections on {} until the time ran out (it may be stopping)",
                        paths.socket().display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A connection to a compatible daemon, starting one when none runs and
/// `may_spawn`, replacing an older one when `may_spawn` (newer CLI), never
/// touching a newer one. Everything before `deadline`.
pub fn connect_or_spawn(
    paths: &Paths,
    may_spawn: bool,
    deadline: Instant,
) -> Result<Conn, ClientError> {
    match open(paths, deadline) {
        Ok(Handshake::Ready(c)) => Ok(c),
        Ok(Handshake::Newer(w)) => Err(newer_err(&w)),
        Ok(Handshake::Older(c)) if may_spawn => {
            replace_older(paths, c, deadline)?;
            spawn_and_connect(paths, deadline)
        }
        Ok(Handshake::Older(c)) => Err(ClientError::DaemonOlder {
            daemon_version: c.welcome.version.clone(),
            pid: c.welcome.pid,
            why: "sync.auto_start is false, so this command does not replace it".into(),
        }),
        Err(ClientError::NotRunning) if may_spawn => spawn_and_connect(paths, deadline),
        Err(e) => Err(e),
    }
}

/// Result of [`start`].
#[derive(Debug, Clone)]
pub struct Started {
    pub welcome: Welcome,
    /// It was already running (nothing was started).
    pub already: bool,
}

/// `spec-kitty sync start`: ensure a compatible daemon runs.
pub fn start(paths: &Paths, timeout: Duration) -> Result<Started, ClientError> {
    let deadline = Instant::now() + timeout;
    let already = match open(paths, deadline) {
        Ok(Handshake::Ready(c)) => {
            return Ok(Started {
                welcome: c.welcome,
                already: true,
            })
        }
        Ok(Handshake::Newer(w)) => return Err(newer_err(&w)),
        Ok(Handshake::Older(c)) => {
            replace_older(paths, c, deadline)?;
            false
        }
        Err(ClientError::NotRunning) => false,
        Err(e) => return Err(e),
    };
    let c = spawn_and_connect(paths, deadline)?;
    Ok(Started {
        welcome: c.welcome,
        already,
    })
}

/// `spec-kitty sync stop`: asks the daemon to drain and exit, then waits
/// until it is gone. `Ok(None)`: none was running.
pub fn stop(
    paths: &Paths,
    reason: &str,
    timeout: Duration,
) -> Result<Option<Welcome>, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut conn = match open(paths, deadline) {
        Ok(Handshake::Ready(c)) | Ok(Handshake::Older(c)) => c,
        Ok(Handshake::Newer(w)) => return Err(newer_err(&w)),
        Err(ClientError::NotRunning) => return Ok(None),
        Err(e) => return Err(e),
    };
    let w = conn.welcome.clone();
    match conn.call(
        Request::Shutdown {
            reason: reason.to_string(),
        },
        deadline,
    )? {
        Response::Done { .. } => {}
        Response::Error { message, .. } => {
            return Err(ClientError::Protocol(format!(
                "the daemon refused to stop: {message}"
            )))
        }
        other => return Err(ClientError::Protocol(format!("{other:?}"))),
    }
    drop(conn);
    if wait_gone(paths, w.pid, deadline) {
        Ok(Some(w))
    } else {
        Err(ClientError::Timeout {
            during: "waiting for the daemon to exit",
            waited_ms: timeout.as_millis(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_lines() {
        assert_eq!(
            parse_spawn_line("READY pid=42 version=0.1.0 protocol=1.0 socket=/x/y\n").unwrap(),
            SpawnLine::Ready { pid: 42 }
        );
        assert_eq!(
            parse_spawn_line("RUNNING pid=7").unwrap(),
            SpawnLine::Running { pid: Some(7) }
        );
        assert_eq!(
            parse_spawn_line("RUNNING pid=unknown").unwrap(),
            SpawnLine::Running { pid: None }
        );
        let e = parse_spawn_line("ERROR store is locked by a newer schema").unwrap_err();
        assert!(
            e.to_string().contains("store is locked by a newer schema"),
            "{e}"
        );
        assert!(parse_spawn_line("garbage").is_err());
    }

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

    #[test]
    fn syncd_override_must_be_a_file() {
        // Only this test touches the variable in this test binary.
        std::env::set_var(SYNCD_BIN_ENV, "/nonexistent/spec-kitty-syncd");
        let e = locate_syncd().unwrap_err();
        std::env::remove_var(SYNCD_BIN_ENV);
        assert!(e.to_string().contains(SYNCD_BIN_ENV), "{e}");
    }
}
