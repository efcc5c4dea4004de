//! Starting, replacing and stopping `spec-kitty-syncd`: finding the binary,
//! the start lock, spawning it and reading its readiness line, replacing an
//! older daemon, and waiting for one to exit.
//!
//! Kept apart from the connection ([`super`]), which it only calls: talking
//! to a running daemon is the warm path of every command, launching it the
//! cold path of a few. Every step takes the caller's deadline, like the
//! connection's; the start lock and the readiness line are polled or read
//! on a helper thread, so a wedged child cannot hang a command.

use super::{
    connect_stream_probe, newer_err, open, our_protocol, remaining, timeout_err, ClientError, Conn,
    Handshake,
};
use spec_kitty_protocol::ipc::{self, Request, Response, Welcome};
use spec_kitty_protocol::Paths;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the `spec-kitty-syncd` binary to start
/// (default: next to the `spec-kitty` executable, then `PATH`).
pub const SYNCD_BIN_ENV: &str = "SPEC_KITTY_SYNCD_BIN";

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
    fn syncd_override_must_be_a_file() {
        // Only this test touches the variable in this test binary.
        std::env::set_var(SYNCD_BIN_ENV, "/nonexistent/spec-kitty-syncd");
        let e = locate_syncd().unwrap_err();
        std::env::remove_var(SYNCD_BIN_ENV);
        assert!(e.to_string().contains(SYNCD_BIN_ENV), "{e}");
    }
}
