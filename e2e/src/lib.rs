//! Harness for end-to-end tests over the real binaries, and the one
//! test-support layer of the workspace: the CLI's, the daemon's and the
//! reference server's integration tests take their environment, git
//! fixture, process guards and HTTP client from here (a dev-dependency of
//! each; this crate depends only on `protocol`, so no cycle).
//!
//! Everything a test starts is torn down by a `Drop` guard, bounded in
//! time, even when the test panics: a [`Sandbox`] stops any daemon that ran
//! on its `SPEC_KITTY_SYNC_HOME` (found through the daemon's lock file, which
//! holds its pid), and a [`RefServer`] kills its server. Each sandbox has
//! its own `HOME` and `SPEC_KITTY_SYNC_HOME` in a temp dir, so tests run in
//! parallel and never touch the real home.

pub mod cmdline;
pub mod daemon;
pub mod python;
pub mod sync;

use spec_kitty_protocol::Paths;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any wait in a test may take before it fails with a message.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Path of a binary built by this workspace (`spec-kitty`, `spec-kitty-syncd`,
/// `spec-kitty-refserver`), in the profile directory of the running
/// executable: above a test's `deps/`, or beside a binary that lives in the
/// profile directory itself (the benchmark harness).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = profile_dir(&exe).join(name);
    assert!(
        path.exists(),
        "{} not built; run the tests through scripts/test or cargo from the workspace root",
        path.display()
    );
    path
}

/// `target/<profile>/` of an executable built there or in its `deps/`.
fn profile_dir(exe: &Path) -> &Path {
    let dir = exe.parent().expect("executable in a directory");
    match dir.file_name() {
        Some(n) if n == "deps" => dir.parent().expect("target profile dir"),
        _ => dir,
    }
}

/// The shared contract directory (`../shared` beside the repository).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
}

/// Headless Chromium (Debian's `chromium`, installed by
/// scripts/setup-test-deps); panics naming the fix when it is missing.
pub fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("headless Chromium is required: run scripts/setup-test-deps (installs Debian's chromium)")
}

/// Flags every test browser runs with: headless, no first-run or
/// background traffic, a fixed window (add `--user-data-dir` per browser).
pub const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// Polls `f` until it returns `Some`, or panics after [`DEADLINE`] naming `what`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether every test must really run: `SK_REQUIRE_ALL=1` (set by
/// `scripts/test`; developers can set it) or `CI` set (and not `false`/`0`).
pub fn require_all() -> bool {
    let on = |k: &str| {
        std::env::var(k)
            .ok()
            .is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
    };
    on("SK_REQUIRE_ALL") || on("CI")
}

/// A test that cannot run here (no root, no mount rights, no systemd
/// tools). Under [`require_all`] it fails with `reason`: a skip nobody sees
/// would count as a pass in CI. Otherwise it prints `SKIP test: reason` and
/// the caller returns.
pub fn skip(test: &str, reason: &str) {
    skip_unless_required(require_all(), test, reason);
}

fn skip_unless_required(required: bool, test: &str, reason: &str) {
    assert!(
        !required,
        "{test} cannot run here: {reason} (SK_REQUIRE_ALL or CI is set, so every test must run)"
    );
    eprintln!("SKIP {test}: {reason}");
}

/// The environment every test's processes run with, whichever crate's
/// tests start them: `HOME` and the state root in the test's temp dir, a
/// fixed git identity, no system or global git config (a developer's own
/// config cannot change a result), no colour, no `XDG_RUNTIME_DIR` (the
/// socket lives under the state root) and no `SPECIFY_FEATURE`.
pub fn isolated_env(cmd: &mut Command, home: &Path, state_root: &Path) {
    cmd.env("HOME", home)
        .env("SPEC_KITTY_SYNC_HOME", state_root)
        .env("NO_COLOR", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SPECIFY_FEATURE");
}

/// Makes `dir` (which must exist) a git repository on `main` with one
/// empty commit `message`; `env` gives git the test's environment.
pub fn git_init(dir: &Path, message: &str, env: impl Fn(&mut Command)) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["commit", "-q", "--allow-empty", "-m", message],
    ] {
        let mut c = Command::new("git");
        c.current_dir(dir).args(args);
        env(&mut c);
        run_ok(&mut c);
    }
}

/// An isolated user: temp `HOME` and `SPEC_KITTY_SYNC_HOME`, and the projects
/// made in it. Dropping it stops the daemon that served it, if any.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// Variables added to every command (e.g. SSL_CERT_FILE), in order.
    extra_env: Vec<(String, std::ffi::OsString)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Self::new_in(&std::env::temp_dir())
    }

    /// A sandbox in a fresh directory under `parent` rather than the
    /// system's temp dir: the benchmarks keep theirs on the file system
    /// they measure (`/tmp` may be tmpfs, where an fsync costs nothing).
    pub fn new_in(parent: &Path) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("sk-e2e-")
            .tempdir_in(parent)
            .unwrap_or_else(|e| panic!("temp dir in {}: {e}", parent.display()));
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Sandbox {
            dir,
            extra_env: Vec::new(),
        }
    }

    /// Sets `key` for every later command of the sandbox (the daemon the
    /// CLI spawns inherits it).
    pub fn set_env(&mut self, key: &str, value: impl Into<std::ffi::OsString>) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_string(), value.into()));
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME` of the sandboxed user.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `SPEC_KITTY_SYNC_HOME` of the sandboxed user.
    pub fn sk_home(&self) -> PathBuf {
        self.home().join(".spec-kitty")
    }

    pub fn paths(&self) -> Paths {
        Paths::new(self.sk_home())
    }

    /// Applies the sandbox's environment to any command.
    pub fn env(&self, cmd: &mut Command) {
        isolated_env(cmd, &self.home(), &self.sk_home());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
    }

    /// `spec-kitty` run in `cwd` with the sandbox's environment.
    pub fn cli(&self, cwd: &Path) -> Command {
        let mut c = Command::new(bin("spec-kitty"));
        c.current_dir(cwd).stdin(Stdio::null());
        self.env(&mut c);
        c
    }

    /// Runs `spec-kitty ARGS` in `cwd` and returns its output, panicking with
    /// both streams when it fails.
    pub fn sk(&self, cwd: &Path, args: &[&str]) -> Output {
        run_ok(self.cli(cwd).args(args))
    }

    /// A fresh git repository `name` with one empty commit, optionally with
    /// an `origin` remote URL.
    pub fn git_repo(&self, name: &str, origin: Option<&str>) -> PathBuf {
        let dir = self.dir.path().join("repos").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        git_init(&dir, "init", |c| self.env(c));
        if let Some(url) = origin {
            let mut c = Command::new("git");
            c.current_dir(&dir).args(["remote", "add", "origin", url]);
            self.env(&mut c);
            run_ok(&mut c);
        }
        dir
    }

    /// A project through the real CLI: `init --here`, `specify FEATURE`,
    /// one `tasks add`. Returns its directory.
    pub fn project(&self, name: &str, feature: &str) -> PathBuf {
        let dir = self.git_repo(name, None);
        self.sk(&dir, &["init", "--here"]);
        self.sk(&dir, &["specify", feature]);
        self.sk(&dir, &["tasks", "add", "First work package"]);
        dir
    }

    /// `spec-kitty auth login --server BASE -u USER --password-stdin`, the
    /// password written on stdin; returns the output (success not checked).
    pub fn login(&self, base: &str, user: &str, password: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cli(self.root())
            .args(cmdline::login(base, user))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spec-kitty auth login");
        // The CLI may refuse (bad URL) before it reads stdin: ignore EPIPE.
        let _ = child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(format!("{password}\n").as_bytes());
        child.wait_with_output().expect("wait for auth login")
    }

    /// The spooled envelopes (JSON), oldest event id first.
    pub fn spooled(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.paths().spool_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "json"));
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Everything the sandbox's daemons logged to their files, oldest file
    /// first (daily files: a later read extends an earlier one).
    pub fn daemon_log(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(self.paths().log_dir()) {
            let mut files: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for f in files {
                out.push_str(&String::from_utf8_lossy(
                    &std::fs::read(&f).unwrap_or_default(),
                ));
            }
        }
        out
    }

    /// The pid of the daemon serving this sandbox, if one holds its lock.
    pub fn daemon_pid(&self) -> Option<u32> {
        let lock = self.paths().daemon_lock();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock)
            .ok()?;
        if file.try_lock().is_ok() {
            return None; // nobody holds it
        }
        std::fs::read_to_string(&lock).ok()?.trim().parse().ok()
    }

    /// Stops the sandbox's daemon: SIGTERM, then SIGKILL after 5 s.
    pub fn stop_daemon(&self) {
        let Some(pid) = self.daemon_pid() else { return };
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.daemon_pid().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.daemon_pid().is_some() {
            signal(pid, libc::SIGKILL);
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// How many events the daemon's log says were sent without a confirmation
/// it acted on: in-flight events put back to pending (a dropped socket, a
/// failed session, a restart), batch uploads left unanswered, unacked
/// events reconciled by batch. Only these may reach the server twice.
pub fn unconfirmed_sends(log: &str) -> u64 {
    const MARKS: [&str; 3] = [
        " in-flight event(s) back to pending",
        " event(s) of a batch upload unconfirmed",
        " unacked event(s) by batch",
    ];
    log.lines()
        .flat_map(|line| {
            MARKS.iter().filter_map(move |m| {
                let before = &line[..line.find(m)?];
                before.rsplit(' ').next()?.parse::<u64>().ok()
            })
        })
        .sum()
}

/// Re-sends on the wire are bounded: the server received no more
/// duplicates than the daemon had unconfirmed sends (see
/// [`unconfirmed_sends`]) plus `extra` (events a `kill -9` caught in a
/// batch upload, which no log can show). A clean run re-sends nothing.
/// Returns the re-sends.
pub fn assert_resends_bounded(sb: &Sandbox, server: &RefServer, extra: u64) -> u64 {
    let resent = server.resends();
    let unconfirmed = unconfirmed_sends(&sb.daemon_log());
    assert!(
        resent <= unconfirmed + extra,
        "{resent} event(s) reached the server more than once, but only {unconfirmed} were sent without confirmation (+{extra} caught in a batch by kill -9): the daemon re-sends what the server already confirmed"
    );
    resent
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Sends `sig` to the process group `pgid` (a child started with
/// `process_group(0)` and everything it started).
pub fn signal_group(pgid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), sig);
    }
}

/// Runs a command, panicking with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running `spec-kitty-refserver` on a free loopback port, killed on drop.
/// The one way every crate's tests start it (the end-to-end tests and the
/// server's own tests alike).
pub struct RefServer {
    child: Child,
    pub base: String,
    pub port: u16,
    /// The CA certificate of a `--tls --ca-out PATH` server, trusted by
    /// [`RefServer::get`] and [`RefServer::post`].
    ca: Option<PathBuf>,
    /// What the server wrote to stderr, when started capturing it.
    stderr: Arc<Mutex<String>>,
}

impl RefServer {
    /// Starts the server with `args` (`--port 0` is added unless a port is
    /// given) and waits for its `listening on http://127.0.0.1:PORT` line.
    pub fn start(args: &[&str]) -> RefServer {
        Self::spawn(args, false)
    }

    /// As [`RefServer::start`], keeping everything the server writes to
    /// stderr for [`RefServer::stderr`].
    pub fn start_capturing_stderr(args: &[&str]) -> RefServer {
        Self::spawn(args, true)
    }

    /// What the server wrote to stderr so far (only when captured).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn spawn(args: &[&str], capture: bool) -> RefServer {
        let mut cmd = Command::new(bin("spec-kitty-refserver"));
        if !args.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("spawn spec-kitty-refserver");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = sink.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {} // keep the pipe drained
        });
        let Ok(line) = rx.recv_timeout(DEADLINE) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("refserver printed no `listening on` line within {DEADLINE:?}");
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .to_string();
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        let ca = args
            .iter()
            .position(|a| *a == "--ca-out")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from);
        RefServer {
            child,
            base,
            port,
            ca,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` → (status, JSON body; a non-JSON body as a JSON string).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        http_read(http_agent(self.ca.as_deref()).get(&self.url(path)).call())
    }

    /// `POST path` with a JSON body and an optional Bearer token.
    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = http_agent(self.ca.as_deref()).post(&self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        http_read(req.send_json(body))
    }

    /// Logs `user` in and returns the access token.
    pub fn access_token(&self, user: &str, password: &str) -> String {
        let (status, body) = self.post(
            "/api/v1/token/",
            None,
            &serde_json::json!({"username": user, "password": password}),
        );
        assert_eq!(status, 200, "login {user}: {body}");
        body["access"].as_str().expect("access token").to_string()
    }

    /// Every event the server stored (`GET /api/v1/events/`, unpaged), in
    /// its order.
    pub fn all_events(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/api/v1/events/?limit=100000");
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().expect("an events array").clone()
    }

    /// The server's dashboard view (`GET /api/v1/projects/`).
    pub fn projects(&self) -> serde_json::Value {
        let (status, body) = self.get("/api/v1/projects/");
        assert_eq!(status, 200, "projects view: {body}");
        body
    }

    /// Re-sends that reached the server: receipts of stored events beyond
    /// the first of each (`event_receipts - events_stored`, kept in the
    /// server's database across restarts on the same `--db`).
    pub fn resends(&self) -> u64 {
        // One snapshot: both counters from the same answer.
        let body = self.stats();
        counter(&body, "event_receipts") - counter(&body, "events_stored")
    }

    /// The server's counters (`GET /__control/stats`).
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = self.get("/__control/stats");
        assert_eq!(status, 200, "stats: {body}");
        body
    }

    /// One counter of [`RefServer::stats`].
    pub fn stat(&self, name: &str) -> u64 {
        counter(&self.stats(), name)
    }

    /// Kills the server now (as a crash would); the guard then has nothing to do.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits, at most [`DEADLINE`], for the exit status
    /// (the guard kills the server if the wait fails the test).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        let child = &mut self.child;
        wait_for("the reference server to exit after SIGTERM", || {
            child.try_wait().expect("try_wait")
        })
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asserts that a batch upload (`POST /api/v1/events/batch/`) answered 200
/// with `success` for every event.
pub fn assert_batch_stored(status: u16, body: &serde_json::Value) {
    assert_eq!(status, 200, "{body}");
    assert!(
        body["results"]
            .as_array()
            .expect("a results array")
            .iter()
            .all(|r| r["status"] == "success"),
        "{body}"
    );
}

fn counter(stats: &serde_json::Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {stats}"))
}

/// An HTTP client bounded by [`DEADLINE`] that answers every status (no
/// error for 4xx/5xx) and trusts only `ca` (a PEM file) when given.
pub fn http_agent(ca: Option<&Path>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("CA {}: {e}", ca.display()));
        let cert = ureq::tls::Certificate::from_pem(&pem)
            .unwrap_or_else(|e| panic!("CA {}: {e}", ca.display()));
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    config
        .http_status_as_error(false)
        .timeout_global(Some(DEADLINE))
        .build()
        .into()
}

/// (status, JSON body) of an answer; a body that is not JSON comes back as
/// a JSON string.
pub fn http_read(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, serde_json::Value) {
    let mut resp = r.expect("HTTP request to the reference server");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("read body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    #[should_panic(expected = "t cannot run here: needs root")]
    fn a_required_skip_fails_with_its_reason() {
        super::skip_unless_required(true, "t", "needs root");
    }

    #[test]
    fn an_optional_skip_returns() {
        super::skip_unless_required(false, "t", "needs root");
    }
}
