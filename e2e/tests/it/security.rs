//! Security properties as tests, over the real binaries: the socket
//! directory is private and ours (a loose one is tightened, a foreign one
//! refused — also the fixed fallback under /tmp, where anyone could plant
//! one), `auth login` writes credentials 0600 and so does the daemon's
//! token refresh, no token ever shows up in a log, an output, status, the
//! store or the daemon's argv/environment during a logged-in run, and plain
//! `http://` to a host that is not loopback is refused by `auth login`,
//! `sync server` and the daemon. (Peer-uid refusal is tested in
//! `daemon/tests/it/ipc.rs`.)

use crate::faults_common;

use faults_common::*;
use spec_kitty_e2e::cmdline::{self, move_task};
use spec_kitty_e2e::sync::json_out;
use spec_kitty_e2e::{bin, RefServer, Sandbox};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o777
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// `spec-kitty-syncd run --spawned` with `home` as SPEC_KITTY_SYNC_HOME; returns
/// its readiness line, killing it if it stayed up.
fn spawned_line(sb: &Sandbox, home: &Path) -> String {
    let mut c = Command::new(bin("spec-kitty-syncd"));
    sb.env(&mut c);
    let mut child = c
        .env("SPEC_KITTY_SYNC_HOME", home)
        .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
        .args(["run", "--spawned"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = spec_kitty_e2e::daemon::read_line_with_deadline(child.stdout.take().unwrap());
    if let Ok(spec_kitty_protocol::ipc::Readiness::Ready { pid, .. }) = line.parse() {
        // It detached into its own session; stop it through its pid (never
        // 0, which would signal our own process group).
        if pid > 0 {
            spec_kitty_e2e::signal(pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    line.trim().to_string()
}

#[test]
fn socket_directory_is_private_and_ours() {
    let sb = Sandbox::new();
    let _d = Syncd::start(&sb);
    let dir = sb.paths().socket_dir();
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(std::fs::metadata(&dir).unwrap().uid(), euid());
}

#[test]
fn state_and_spool_directories_are_private_whatever_the_umask() {
    // The store, logs and spooled events name projects, branches and work
    // packages: other local users must not read them, even under umask 022.
    let sb = Sandbox::new();
    // SAFETY: umask only changes this process's file-creation mask; the
    // daemon and CLI inherit 022 like a default login shell gives them.
    let old = unsafe { libc::umask(0o022) };
    let _d = Syncd::start(&sb);
    let state = sb.paths().state_dir();
    assert_eq!(mode(&state), 0o700, "{}", state.display());
    let repo = sb.project("private", "demo");
    sb.sk(&repo, &["sync", "stop"]);
    // No daemon can be started: the event goes to the spool.
    let out = sb
        .cli(&repo)
        .env("SPEC_KITTY_SYNCD_BIN", "/nonexistent/spec-kitty-syncd")
        .args(["agent", "tasks", "add-history", "WP01", "--note", "spooled"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: restores the mask saved above.
    unsafe { libc::umask(old) };
    let spool = sb.paths().spool_dir();
    assert!(!sb.spooled().is_empty(), "the event was spooled");
    assert_eq!(mode(&spool), 0o700, "{}", spool.display());
}

#[test]
fn loose_socket_directory_is_tightened_to_0700_before_binding() {
    let sb = Sandbox::new();
    let dir = sb.paths().socket_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let _d = Syncd::start(&sb);
    assert_eq!(mode(&dir), 0o700, "a 0777 socket directory is tightened");
    assert!(
        daemon_log(&sb).contains("tightening to 0700"),
        "and the daemon says so:\n{}",
        daemon_log(&sb)
    );
}

/// A SPEC_KITTY_SYNC_HOME long enough that the socket falls back to the fixed
/// directory under /tmp (`/tmp/spec-kitty-<uid>-<hash>`).
fn long_home(sb: &Sandbox) -> PathBuf {
    let home = sb.root().join("x".repeat(120));
    std::fs::create_dir_all(&home).unwrap();
    let dir = spec_kitty_protocol::Paths::new(&home).socket_dir();
    assert!(
        dir.starts_with("/tmp") && !dir.starts_with(sb.root()),
        "expected the /tmp fallback, got {}",
        dir.display()
    );
    home
}

/// Removes a directory when dropped.
struct RmDir(PathBuf);
impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn fallback_socket_directory_planted_by_another_user_is_refused() {
    if euid() != 0 {
        spec_kitty_e2e::skip(
            "fallback_socket_directory_planted_by_another_user_is_refused",
            "needs root to plant a directory owned by uid 65534",
        );
        return;
    }
    let sb = Sandbox::new();
    let home = long_home(&sb);
    let dir = spec_kitty_protocol::Paths::new(&home).socket_dir();
    let _rm = RmDir(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let line = spawned_line(&sb, &home);
    assert!(
        line.starts_with("ERROR") && line.contains("65534") && line.contains(dir.to_str().unwrap()),
        "a socket directory of another uid must be refused, naming it: {line:?}"
    );
    assert!(!dir.join("syncd.sock").exists(), "nothing bound in it");
}

#[test]
fn fallback_socket_directory_that_is_ours_but_loose_is_tightened() {
    let sb = Sandbox::new();
    let home = long_home(&sb);
    let paths = spec_kitty_protocol::Paths::new(&home);
    let dir = paths.socket_dir();
    let _rm = RmDir(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A file planted where the socket goes is not removed.
    std::fs::write(dir.join("syncd.sock"), "planted").unwrap();
    let line = spawned_line(&sb, &home);
    assert!(
        line.starts_with("ERROR") && line.contains("not a socket"),
        "a non-socket at the socket path is refused: {line:?}"
    );
    assert_eq!(std::fs::read(dir.join("syncd.sock")).unwrap(), b"planted");
    assert_eq!(mode(&dir), 0o700, "tightened even when refusing");
    std::fs::remove_file(dir.join("syncd.sock")).unwrap();
    let line = spawned_line(&sb, &home);
    assert!(line.starts_with("READY"), "{line}");
    assert_eq!(mode(&dir), 0o700);
}

/// Runs a CLI command, keeping its output for the token scan.
fn run(
    sb: &Sandbox,
    cwd: &Path,
    args: &[&str],
    stdin: Option<&str>,
    outs: &mut Vec<Output>,
) -> Output {
    let mut c = sb.cli(cwd);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        let _ = input.write_all(s.as_bytes()); // it may exit before reading
    }
    drop(input);
    let o = child.wait_with_output().unwrap();
    outs.push(o.clone());
    o
}

/// Tokens currently in the credentials file, checking its mode on the way.
fn collect_tokens(sb: &Sandbox, tokens: &mut BTreeSet<String>) {
    let path = sb.paths().credentials();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    assert_eq!(mode(&path), 0o600, "credentials must stay 0600");
    // `access = "..."` / `refresh = "..."` lines (the file is TOML the
    // protocol crate wrote: one key per line, basic strings).
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if matches!(key.trim(), "access" | "refresh") {
            tokens.insert(value.trim().trim_matches('"').to_string());
        }
    }
}

#[test]
fn logged_in_run_never_shows_a_token_and_credentials_stay_0600() {
    let sb = Sandbox::new();
    // Short access tokens: the daemon refreshes (and rewrites the file)
    // during the run.
    let server = RefServer::start(&["--user", "alice:secret:team-a", "--access-lifetime", "20"]);
    let mut outs = Vec::new();
    let mut tokens = BTreeSet::new();
    let o = run(
        &sb,
        &sb.home(),
        &cmdline::login(&server.base, "alice"),
        Some("secret\n"),
        &mut outs,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    collect_tokens(&sb, &mut tokens);
    assert_eq!(tokens.len(), 2, "login wrote an access and a refresh token");

    let dir = sb.project("secure", "feat");
    for lane in ["doing", "planned", "doing"] {
        let o = run(
            &sb,
            &dir,
            &move_task("WP01", lane, &["--json"]),
            None,
            &mut outs,
        );
        // Each move really ran and emitted its event (its output is what
        // the token scan reads).
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("move-task --json is not JSON: {e}"));
        assert_eq!(v["events"].as_array().map(Vec::len), Some(1), "{v}");
        collect_tokens(&sb, &mut tokens);
    }
    let o = run(
        &sb,
        &dir,
        &["sync", "now", "--wait", "--json"],
        None,
        &mut outs,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Wait for at least one refresh by the daemon (a new token pair).
    let start = Instant::now();
    while tokens.len() < 4 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        collect_tokens(&sb, &mut tokens);
    }
    assert!(
        tokens.len() >= 4 && stat(&server, "token_refreshed") >= 1,
        "the daemon refreshed the tokens ({} seen)",
        tokens.len()
    );
    for args in [
        vec!["sync", "status"],
        vec!["sync", "status", "--json"],
        vec!["auth", "status"],
        vec!["auth", "status", "--json"],
        vec!["sync", "logs"],
        vec!["sync", "now", "--json"],
    ] {
        run(&sb, &dir, &args, None, &mut outs);
    }
    collect_tokens(&sb, &mut tokens);
    let st = json_out(&run(
        &sb,
        &dir,
        &["sync", "status", "--json"],
        None,
        &mut outs,
    ));
    assert_eq!(st["daemon"]["auth"]["logged_in"], true, "{st}");
    let ipc_status = serde_json::to_string(&status(&sb).unwrap()).unwrap();
    let pid = sb.daemon_pid().expect("daemon running");

    // Everything a user or another process could see.
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        haystacks.push((format!("command {i} stdout"), o.stdout.clone()));
        haystacks.push((format!("command {i} stderr"), o.stderr.clone()));
    }
    haystacks.push(("IPC status".into(), ipc_status.into_bytes()));
    for f in ["cmdline", "environ"] {
        haystacks.push((
            format!("/proc/{pid}/{f}"),
            std::fs::read(format!("/proc/{pid}/{f}")).unwrap_or_default(),
        ));
    }
    // Stopped first: the log file is complete once the daemon has exited.
    sb.stop_daemon();
    haystacks.push(("daemon logs".into(), daemon_log(&sb).into_bytes()));
    let state = sb.paths().state_dir();
    for name in ["store.db", "store.db-wal"] {
        haystacks.push((
            name.into(),
            std::fs::read(state.join(name)).unwrap_or_default(),
        ));
    }
    let mut leaks = Vec::new();
    for token in &tokens {
        assert!(token.len() >= 16, "tokens are long enough to grep for");
        for (what, bytes) in &haystacks {
            if bytes.windows(token.len()).any(|w| w == token.as_bytes()) {
                leaks.push(what.clone());
            }
        }
    }
    assert!(leaks.is_empty(), "a token appears in: {leaks:?}");
    // The scan works: the credentials file itself holds the current pair.
    let creds = std::fs::read_to_string(sb.paths().credentials()).unwrap();
    assert!(
        tokens.iter().filter(|t| creds.contains(t.as_str())).count() == 2,
        "the scan would have found a token"
    );
    let checked: usize = haystacks.iter().map(|h| h.1.len()).sum();
    eprintln!(
        "{} tokens, {} places ({checked} bytes) checked, none leaked",
        tokens.len(),
        haystacks.len()
    );

    // Logout: the file loses its tokens and stays private.
    let o = run(&sb, &dir, &["auth", "logout"], None, &mut outs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = sb.paths().credentials();
    if path.exists() {
        assert_eq!(mode(&path), 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "logout keeps no token");
        }
    }
}

#[test]
fn plain_http_to_a_remote_host_is_refused_everywhere() {
    let sb = Sandbox::new();
    let cwd = sb.home();
    let mut outs = Vec::new();
    // auth login: refused before any network or password prompt.
    let o = run(
        &sb,
        &cwd,
        &cmdline::login("http://sync.example.com", "alice"),
        Some("secret\n"),
        &mut outs,
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("http") && err.contains("sync.example.com"),
        "{err}"
    );
    assert!(!sb.paths().credentials().exists(), "nothing written");
    // ws:// is not a server URL either.
    let o = run(
        &sb,
        &cwd,
        &cmdline::login("ws://sync.example.com", "alice"),
        Some("secret\n"),
        &mut outs,
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // sync server: refused without --insecure, config untouched.
    let o = run(
        &sb,
        &cwd,
        &["sync", "server", "http://10.1.2.3:8000"],
        None,
        &mut outs,
    );
    assert!(!o.status.success(), "plain http to 10.1.2.3 accepted");
    assert!(
        std::fs::read_to_string(sb.paths().config_toml()).map_or(true, |t| !t.contains("10.1.2.3")),
        "the refused URL was written"
    );
    // Loopback is fine.
    let o = run(
        &sb,
        &cwd,
        &["sync", "server", "http://127.0.0.1:9"],
        None,
        &mut outs,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The daemon: credentials pointing at plain http on a remote host (as
    // a hand-edited or old file might) are not used; status says why.
    std::fs::write(
        sb.paths().credentials(),
        "[tokens]\naccess = \"tok-access-0123456789abcdef\"\nrefresh = \"tok-refresh-0123456789abcdef\"\n[user]\nusername = \"alice\"\n[server]\nurl = \"http://sync.example.com\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        sb.paths().credentials(),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let _d = Syncd::start(&sb);
    let s = wait_long(
        "status offline with the reason",
        Duration::from_secs(10),
        || {
            let s = status(&sb)?;
            if s.connection.state == spec_kitty_protocol::ipc::ConnState::Offline
                && s.connection.reason.is_some()
            {
                Ok(s)
            } else {
                Err(format!("{:?}", s.connection))
            }
        },
    );
    let reason = s.connection.reason.unwrap();
    assert!(reason.contains("refusing plain http"), "{reason}");
    let log = daemon_log(&sb);
    assert!(
        !log.contains("tok-access") && !log.contains("tok-refresh"),
        "{log}"
    );
}

#[test]
fn trace_logging_of_every_crate_shows_no_token() {
    // A user debugging with SPEC_KITTY_SYNCD_LOG=trace turns on the HTTP,
    // TLS and WebSocket libraries' own logging too: the login, a refresh,
    // ws-tokens and a WebSocket session must still leave no token (and no
    // `Bearer` header value) in the log.
    let sb = Sandbox::new();
    let server = RefServer::start(&["--user", "alice:secret:team-a", "--access-lifetime", "20"]);
    let first = login(&sb, &server, "alice", "secret");
    let mut tokens = BTreeSet::from([first.access, first.refresh]);
    let mut d = Syncd::start_with_env(&sb, &[("SPEC_KITTY_SYNCD_LOG", "trace")]);
    let mut c = Client::connect(&sb.paths()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (id, env) = envelope(Some(PROJECT));
        accepted(c.emit(&env).unwrap());
        ids.push(id);
    }
    wait_long("delivery and a refresh", Duration::from_secs(30), || {
        collect_tokens(&sb, &mut tokens);
        let (events, _) = server_events(&server);
        let have = ids.iter().filter(|i| events.contains_key(*i)).count();
        if have == ids.len() && tokens.len() >= 4 {
            Ok(())
        } else {
            Err(format!(
                "{have}/{} delivered, {} tokens seen",
                ids.len(),
                tokens.len()
            ))
        }
    });
    // Stopped first: the log file is complete once the daemon has exited.
    d.stop();
    let log = daemon_log(&sb);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging is on"
    );
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "a token is in the trace log");
    }
    for line in log.lines().filter(|l| l.contains("Bearer ")) {
        let after = line.split("Bearer ").nth(1).unwrap_or("");
        assert!(
            after.starts_with('<') || after.starts_with("***") || after.is_empty(),
            "an Authorization header value is in the trace log (shown cut to 6 characters: {:?}...); the line starts {:.120}",
            &after[..after.len().min(6)],
            line
        );
    }
    eprintln!(
        "{} bytes of trace log, {} tokens, none present",
        log.len(),
        tokens.len()
    );
}

// ---- The CLI checks who owns the daemon socket (adversarial finding 2) ----

/// A listener squatting on a daemon socket path as uid 65534, in a forked
/// child: it accepts every connection and copies whatever it receives into
/// a pipe the test reads. Killed (and reaped) on drop.
struct Squatter {
    pid: libc::pid_t,
    received: std::fs::File,
}

impl Squatter {
    /// Binds `socket` (as uid 65534 when `drop_before_bind`, else as root
    /// and drops to 65534 before `listen`, so SO_PEERCRED says 65534).
    fn start(socket: &Path, drop_before_bind: bool) -> Squatter {
        use std::os::fd::FromRawFd;
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (i, b) in socket.as_os_str().as_encoded_bytes().iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let mut fds = [0; 2];
        // SAFETY: a plain pipe(2) into a local array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (ready_r, ready_w) = {
            let mut r = [0; 2];
            assert_eq!(unsafe { libc::pipe(r.as_mut_ptr()) }, 0);
            (r[0], r[1])
        };
        // SAFETY: the child only makes raw syscalls on memory prepared
        // above (no allocation), then loops until killed or _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                let drop_ids = || libc::setgid(65534) == 0 && libc::setuid(65534) == 0;
                if drop_before_bind && !drop_ids() {
                    libc::_exit(10);
                }
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if libc::bind(
                    fd,
                    &addr as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_un>() as u32,
                ) != 0
                {
                    libc::_exit(11);
                }
                libc::chmod(addr.sun_path.as_ptr(), 0o777);
                if !drop_before_bind && !drop_ids() {
                    libc::_exit(12);
                }
                if libc::listen(fd, 16) != 0 {
                    libc::_exit(13);
                }
                libc::write(ready_w, b"r".as_ptr().cast(), 1);
                let mut buf = [0u8; 4096];
                loop {
                    let c = libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut());
                    if c < 0 {
                        continue;
                    }
                    loop {
                        let n = libc::read(c, buf.as_mut_ptr().cast(), buf.len());
                        if n <= 0 {
                            break;
                        }
                        libc::write(fds[1], buf.as_ptr().cast(), n as usize);
                    }
                    libc::close(c);
                }
            }
        }
        unsafe {
            libc::close(fds[1]);
            libc::close(ready_w);
            libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK);
        }
        // Wait (bounded) until it listens: one byte, or EOF if it failed.
        let mut ready = unsafe { std::fs::File::from_raw_fd(ready_r) };
        let mut b = [0u8; 1];
        let got = std::io::Read::read(&mut ready, &mut b).unwrap_or(0);
        let sq = Squatter {
            pid,
            received: unsafe { std::fs::File::from_raw_fd(fds[0]) },
        };
        assert_eq!(got, 1, "the squatter could not bind {}", socket.display());
        sq
    }

    /// Every byte it received so far.
    fn received(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut self.received, &mut out); // WouldBlock ends it
        out
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Runs `spec-kitty ARGS` in `dir` with `home` as SPEC_KITTY_SYNC_HOME.
fn sk_at(sb: &Sandbox, home: &Path, dir: &Path, args: &[&str]) -> Output {
    let o = sb
        .cli(dir)
        .env("SPEC_KITTY_SYNC_HOME", home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "spec-kitty {args:?} must succeed (spooling): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn spool_files(home: &Path) -> usize {
    std::fs::read_dir(spec_kitty_protocol::Paths::new(home).spool_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// A project's commands run with `home` while `squatter` listens: each
/// exits 0 and spools its event, nothing reaches the squatter. Returns the
/// one line that says why the event was spooled.
fn spools_and_sends_nothing(sb: &Sandbox, home: &Path, squatter: &mut Squatter) -> String {
    let repo = sb.git_repo("victim", None);
    sk_at(sb, home, &repo, &["init", "--here"]);
    let o = sk_at(sb, home, &repo, &["specify", "secret-plans"]);
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("spooled"))
        .unwrap_or_else(|| panic!("the command says it spooled the event: {err}"));
    assert!(spool_files(home) >= 1, "the event is in the spool");
    let got = squatter.received();
    assert!(
        got.is_empty(),
        "the squatter received {} bytes: {:?}",
        got.len(),
        String::from_utf8_lossy(&got)
    );
    line.to_string()
}

#[test]
fn the_cli_sends_nothing_to_a_socket_directory_planted_by_another_user() {
    if euid() != 0 {
        spec_kitty_e2e::skip(
            "the_cli_sends_nothing_to_a_socket_directory_planted_by_another_user",
            "needs root to plant a directory and a listener of uid 65534",
        );
        return;
    }
    let sb = Sandbox::new();
    let home = long_home(&sb);
    let paths = spec_kitty_protocol::Paths::new(&home);
    let dir = paths.socket_dir();
    let _rm = RmDir(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let mut squatter = Squatter::start(&paths.socket(), true);
    let line = spools_and_sends_nothing(&sb, &home, &mut squatter);
    assert!(
        line.contains("65534") && line.contains(dir.to_str().unwrap()),
        "the reason names the directory and its owner: {line}"
    );
    let st = sk_at(&sb, &home, sb.root(), &["sync", "status"]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        text.contains("refusing") && text.contains("65534"),
        "sync status reports the foreign socket directory: {text}"
    );
}

#[test]
fn the_cli_sends_nothing_to_a_listener_running_as_another_user() {
    if euid() != 0 {
        spec_kitty_e2e::skip(
            "the_cli_sends_nothing_to_a_listener_running_as_another_user",
            "needs root to run a listener as uid 65534",
        );
        return;
    }
    // The directory is ours and 0700: only the peer's credentials tell.
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.socket_dir()).unwrap();
    std::fs::set_permissions(paths.socket_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut squatter = Squatter::start(&paths.socket(), false);
    let home = sb.sk_home();
    let line = spools_and_sends_nothing(&sb, &home, &mut squatter);
    assert!(line.contains("runs as uid 65534"), "the reason: {line}");
}
