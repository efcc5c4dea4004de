//! A test's daemon: the process guard ([`Syncd`]), the blocking IPC client
//! with a test's deadline and panics, and the sample envelopes every suite
//! emits.
//!
//! One copy for the daemon's own tests (`daemon/tests`), the fault and
//! bad-input suites and the end-to-end tests here; the client itself is the
//! protocol crate's ([`spec_kitty_protocol::client`]), as the benchmarks use.

use crate::{bin, Sandbox, DEADLINE};
use spec_kitty_protocol::client;
use spec_kitty_protocol::ipc::{DaemonStatus, Hello, Response};
use spec_kitty_protocol::Paths;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A handshaken connection whose every read and write waits at most
/// [`DEADLINE`]. Derefs to [`client::Client`] (`request`, `emit`, `send`,
/// `recv`, `stream`, `welcome`).
#[derive(Debug)]
pub struct Client(pub client::Client);

impl Client {
    /// Connects as a client of this build.
    pub fn connect(paths: &Paths) -> std::io::Result<Client> {
        Self::connect_with(paths, Hello::current("test"))
    }

    /// Connects with a hello of the caller's choosing (version skew).
    pub fn connect_with(paths: &Paths, hello: Hello) -> std::io::Result<Client> {
        client::Client::connect(paths, &hello, Some(DEADLINE))
            .map(Client)
            .map_err(std::io::Error::other)
    }

    /// The daemon's status, panicking when there is none.
    pub fn status(&mut self) -> DaemonStatus {
        self.0.status().expect("daemon status")
    }
}

impl std::ops::Deref for Client {
    type Target = client::Client;
    fn deref(&self) -> &client::Client {
        &self.0
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut client::Client {
        &mut self.0
    }
}

/// A `spec-kitty-syncd` a test started; SIGKILLed in Drop unless it
/// already exited.
pub struct Syncd {
    pub pid: u32,
    pub child: Option<Child>,
}

impl Syncd {
    /// Guards a daemon the test spawned itself.
    pub fn from_child(child: Child) -> Syncd {
        Syncd {
            pid: child.id(),
            child: Some(child),
        }
    }

    /// Starts the daemon and waits until it answers a Hello.
    pub fn start(sb: &Sandbox) -> Syncd {
        let d = Self::spawn(sb);
        let paths = sb.paths();
        crate::wait_for("the daemon to answer", || Client::connect(&paths).ok());
        d
    }

    /// Starts the daemon with extra environment and waits until it answers.
    pub fn start_with_env(sb: &Sandbox, env: &[(&str, &str)]) -> Syncd {
        let d = Self::spawn_with_env(sb, env);
        let paths = sb.paths();
        crate::wait_for("the daemon to answer", || Client::connect(&paths).ok());
        d
    }

    /// Starts the daemon without waiting.
    pub fn spawn(sb: &Sandbox) -> Syncd {
        Self::spawn_with_env(sb, &[])
    }

    fn spawn_with_env(sb: &Sandbox, env: &[(&str, &str)]) -> Syncd {
        let mut c = Self::command(&bin("spec-kitty-syncd"), sb, &[]);
        c.envs(env.iter().copied());
        Syncd::from_child(c.spawn().expect("spawn spec-kitty-syncd"))
    }

    /// `PROGRAM run ARGS...` in the foreground ([`foreground_run`]) with
    /// the sandbox's environment, not spawned yet: for a caller that times
    /// the start itself or passes flags (the benchmarks: `--no-group-commit`).
    /// Guard the child with [`Syncd::from_child`].
    pub fn command(program: &Path, sb: &Sandbox, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        sb.env(&mut c);
        foreground_run(&mut c).args(args);
        c
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for the exit: the log is complete
    /// (flushed) afterwards.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            crate::signal(c.id(), libc::SIGTERM);
            let deadline = Instant::now() + DEADLINE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill9();
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: libc::c_int) {
        crate::signal(self.pid, sig);
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("a running daemon");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("daemon {} did not exit within the deadline", self.pid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Exit code if it has exited (reaping it).
    pub fn try_exit(&mut self) -> Option<Option<i32>> {
        let st = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(st.code())
    }
}

impl Drop for Syncd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `run` in the foreground for a test: no idle exit, no systemd socket or
/// notify socket inherited, no stdio.
pub fn foreground_run(c: &mut Command) -> &mut Command {
    c.arg("run")
        .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// The first line of a child's stdout (trimmed), read in a helper thread
/// so the wait is bounded by [`DEADLINE`]; panics when nothing came.
pub fn read_line_with_deadline(out: std::process::ChildStdout) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(DEADLINE)
        .expect("the daemon reported nothing within the deadline")
        .trim()
        .to_string()
}

/// The daemon's status over a fresh connection, or why there is none.
pub fn status(paths: &Paths) -> Result<DaemonStatus, String> {
    let mut c = Client::connect(paths).map_err(|e| e.to_string())?;
    c.0.status().map_err(|e| e.to_string())
}

/// Emits one sample envelope over a fresh connection: `(lamport, seq,
/// duplicate)`, panicking unless the daemon accepted it (the daemon "still
/// serves").
pub fn emit_one(paths: &Paths) -> (u64, u64, bool) {
    let mut c = Client::connect(paths).expect("the daemon answers");
    accepted(c.emit(&envelope(Some(PROJECT)).1).expect("emit"))
}

/// `(lamport, seq, duplicate)` of an `Accepted`, panicking otherwise.
pub fn accepted(r: Response) -> (u64, u64, bool) {
    match r {
        Response::Accepted {
            lamport_clock,
            seq,
            duplicate,
        } => (lamport_clock, seq, duplicate),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// The project of the sample envelopes.
pub const PROJECT: &str = "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d";

/// A fresh ULID (48-bit ms time, 80 bits from a per-process counter mixed
/// with the pid and clock), so ids sort by creation time like the CLI's.
pub fn ulid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let ms = now.as_millis() & ((1 << 48) - 1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
    let salt = (std::process::id() as u128) << 40 ^ (now.subsec_nanos() as u128 & 0xff_ffff);
    let rand = ((salt << 32) ^ n) & ((1u128 << 80) - 1);
    let v = (ms << 80) | rand;
    (0..26)
        .rev()
        .map(|i| ALPHABET[((v >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// A valid unstamped `WPStatusChanged` envelope with a fresh id:
/// `(event_id, JSON text)`. Without a project it is held, never sent.
pub fn envelope(project: Option<&str>) -> (String, String) {
    let id = ulid();
    let env = envelope_with_id(&id, project);
    (id, env)
}

/// As [`envelope`], with the caller's id. The text is compact JSON with
/// sorted keys (tests edit it with `replace`).
pub fn envelope_with_id(id: &str, project: Option<&str>) -> String {
    spec_kitty_protocol::sample::envelope_json(id, project).to_string()
}
