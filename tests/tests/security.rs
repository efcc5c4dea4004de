//! Security properties as tests, over the real binaries: the socket
//! directory is private and ours (a loose one is tightened, a foreign one
//! refused — also the fixed fallback under /tmp, where anyone could plant
//! one), `auth login` writes credentials 0600 and so does the daemon's
//! token refresh, no token ever shows up in a log, an output, status, the
//! store or the daemon's argv/environment during a logged-in run, and plain
//! `http://` to a host that is not loopback is refused by `auth login`,
//! `sync server` and the daemon. (Peer-uid refusal is tested in
//! `daemon/tests/e2e.rs`.)

mod faults_common;

use faults_common::*;
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

/// `spec-kitty-syncd run --spawned` with `home` as SPEC_KITTY_HOME; returns
/// its readiness line, killing it if it stayed up.
fn spawned_line(sb: &Sandbox, home: &Path) -> String {
    let mut c = Command::new(bin("spec-kitty-syncd"));
    sb.env(&mut c);
    let mut child = c
        .env("SPEC_KITTY_HOME", home)
        .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
        .args(["run", "--spawned"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    if line.starts_with("READY") {
        // It detached into its own session; stop it through its pid.
        if let Some(pid) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pid="))
            .and_then(|p| p.parse::<u32>().ok())
        {
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

/// A SPEC_KITTY_HOME long enough that the socket falls back to the fixed
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
        &[
            "auth",
            "login",
            "--server",
            &server.base,
            "-u",
            "alice",
            "--password-stdin",
        ],
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
            &[
                "agent",
                "tasks",
                "move-task",
                "WP01",
                "--to",
                lane,
                "--json",
            ],
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
        &[
            "auth",
            "login",
            "--server",
            "http://sync.example.com",
            "-u",
            "alice",
            "--password-stdin",
        ],
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
        &[
            "auth",
            "login",
            "--server",
            "ws://sync.example.com",
            "-u",
            "alice",
            "--password-stdin",
        ],
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
            if s.connection.state == "offline" && s.connection.reason.is_some() {
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
        let (id, env) = envelope(PROJECT);
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
