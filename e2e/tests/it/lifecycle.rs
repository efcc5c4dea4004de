//! The daemon's life as `spec-kitty sync ...` drives it, over the real
//! binaries: start/stop/restart, logs and their rotation (7 files), the
//! idle exit of an auto-spawned daemon, the service unit files, and version
//! skew in both directions with two real builds (the "newer" one built with
//! `spec-kitty-protocol/skew-test-next-major`, see `spec_kitty_e2e::sync`).

use spec_kitty_e2e::cmdline::{add_history, move_task};
use spec_kitty_e2e::sync::{json_out, newer_cli, stderr, stored_events, syncd_pids};
use spec_kitty_e2e::{run_ok, wait_for, Sandbox};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn sync_start_stop_restart() {
    let sb = Sandbox::new();
    let cwd = sb.root().to_path_buf();

    let s = json_out(&sb.sk(&cwd, &["sync", "start", "--json"]));
    assert_eq!(s["started"], true, "{s}");
    let pid = s["pid"].as_u64().unwrap() as u32;
    assert_eq!(sb.daemon_pid(), Some(pid));

    let again = json_out(&sb.sk(&cwd, &["sync", "start", "--json"]));
    assert_eq!(again["started"], false, "{again}");
    assert_eq!(again["pid"], pid, "{again}");

    let r = sb.sk(&cwd, &["sync", "restart"]);
    let text = stdout(&r);
    assert!(
        text.contains(&format!("stopped (pid {pid})")) && text.contains("started and ready"),
        "{text}"
    );
    let new_pid = sb.daemon_pid().expect("running after restart");
    assert_ne!(new_pid, pid);
    assert_eq!(syncd_pids(&sb), vec![new_pid], "the old one is gone");

    let st = json_out(&sb.sk(&cwd, &["sync", "status", "--json"]));
    assert_eq!(st["daemon"]["pid"], new_pid, "{st}");

    let stop = json_out(&sb.sk(&cwd, &["sync", "stop", "--json"]));
    assert_eq!(stop["stopped"], true, "{stop}");
    assert_eq!(sb.daemon_pid(), None);
    assert!(syncd_pids(&sb).is_empty());
    assert!(
        !sb.paths().socket().exists(),
        "the daemon removed its socket"
    );
    let o = sb.sk(&cwd, &["sync", "stop"]);
    assert!(stdout(&o).contains("was not running"), "{}", stdout(&o));
}

#[test]
fn sync_logs_shows_the_newest_log_file() {
    let sb = Sandbox::new();
    let cwd = sb.root().to_path_buf();
    let o = sb.cli(&cwd).args(["sync", "logs"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "no logs yet");
    assert!(stderr(&o).contains("no daemon log files"), "{}", stderr(&o));

    sb.sk(&cwd, &["sync", "start"]);
    let text = wait_for("a log line saying ready", || {
        let t = stdout(&sb.sk(&cwd, &["sync", "logs", "--lines", "20"]));
        t.contains("ready").then_some(t)
    });
    assert!(text.lines().count() <= 20, "{text}");
    let one = stdout(&sb.sk(&cwd, &["sync", "logs", "-n", "1"]));
    assert_eq!(one.lines().count(), 1, "{one}");
}

#[test]
fn log_rotation_keeps_seven_files() {
    // Ten older daily files (oldest created first): a starting daemon
    // prunes to six and opens today's, seven in all, the newest kept.
    let sb = Sandbox::new();
    let cwd = sb.root().to_path_buf();
    let logs = sb.paths().log_dir();
    std::fs::create_dir_all(&logs).unwrap();
    let old: Vec<String> = (1..=10)
        .map(|d| format!("syncd.2020-01-{d:02}.log"))
        .collect();
    for name in &old {
        std::fs::write(logs.join(name), format!("{name}\n")).unwrap();
        // Distinct creation times: pruning goes by them.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sb.sk(&cwd, &["sync", "start"]);
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("syncd.") && n.ends_with(".log"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "log files kept: {names:?}");
    let mut want: Vec<String> = old[4..].to_vec();
    let today = names
        .iter()
        .find(|n| !old.contains(n))
        .unwrap_or_else(|| panic!("no log file of today among {names:?}"));
    want.push(today.clone());
    want.sort();
    assert_eq!(names, want, "the six newest old files and today's");
}

#[test]
fn an_idle_daemon_exits_and_the_next_command_starts_a_new_one() {
    let sb = Sandbox::new();
    let dir = sb.project("idle", "feat");
    sb.sk(&dir, &["sync", "stop"]);
    // The idle timeout (default 600 s) from the environment the CLI passes
    // to the daemon it spawns.
    let note = |n: &str| {
        let o = run_ok(
            sb.cli(&dir)
                .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "1")
                .args(add_history("WP01", n, &["--json"])),
        );
        let v = json_out(&o);
        assert_eq!(v["events"][0]["delivery"], "accepted", "{v}");
    };
    note("first");
    let first = sb.daemon_pid().expect("the command spawned a daemon");
    wait_for("the idle daemon to exit", || {
        sb.daemon_pid().is_none().then_some(())
    });
    assert!(syncd_pids(&sb).is_empty(), "the idle daemon is gone");
    assert!(
        !sb.paths().socket().exists(),
        "an idle exit removes the socket"
    );
    note("second");
    let second = sb.daemon_pid().expect("the next command spawned a daemon");
    assert_ne!(first, second, "a new daemon");
    let notes = stored_events(&sb).len();
    assert!(notes >= 2, "both events stored: {notes}");
}

#[test]
fn service_install_status_uninstall_write_user_units() {
    let sb = Sandbox::new();
    let cwd = sb.root().to_path_buf();
    let xdg = sb.root().join("xdg");
    let run = |args: &[&str]| {
        let mut c = sb.cli(&cwd);
        c.args(args).env("XDG_CONFIG_HOME", &xdg);
        run_ok(&mut c)
    };
    let st = json_out(&run(&["sync", "service", "status", "--json"]));
    assert_eq!(st["installed"], false, "{st}");

    let o = run(&["sync", "service", "install"]);
    let text = stdout(&o);
    assert!(text.contains("systemctl --user enable --now"), "{text}");
    let dir = xdg.join("systemd/user");
    let service = std::fs::read_to_string(dir.join("spec-kitty-syncd.service")).unwrap();
    let syncd = std::fs::canonicalize(spec_kitty_e2e::bin("spec-kitty-syncd")).unwrap();
    assert!(
        service.contains(&format!("ExecStart={} run", syncd.display())),
        "{service}"
    );
    assert!(!service.contains('@'), "placeholders filled: {service}");
    // The sandbox's SPEC_KITTY_SYNC_HOME is the default ($HOME/.spec-kitty).
    assert!(!service.contains("Environment="), "{service}");
    let socket = std::fs::read_to_string(dir.join("spec-kitty-syncd.socket")).unwrap();
    assert!(
        socket.contains(&format!("ListenStream={}", sb.paths().socket().display())),
        "{socket}"
    );

    let st = json_out(&run(&["sync", "service", "status", "--json"]));
    assert_eq!(st["installed"], true, "{st}");

    // A non-default home is written into the unit.
    let other = sb.root().join("elsewhere");
    let mut c = sb.cli(&cwd);
    c.args(["sync", "service", "install"])
        .env("XDG_CONFIG_HOME", &xdg)
        .env("SPEC_KITTY_SYNC_HOME", &other);
    run_ok(&mut c);
    let service = std::fs::read_to_string(dir.join("spec-kitty-syncd.service")).unwrap();
    assert!(
        service.contains(&format!(
            "Environment=SPEC_KITTY_SYNC_HOME={}",
            other.display()
        )),
        "{service}"
    );

    let o = run(&["sync", "service", "uninstall"]);
    assert!(stdout(&o).contains("Removed"), "{}", stdout(&o));
    assert!(!dir.join("spec-kitty-syncd.service").exists());
    assert!(!dir.join("spec-kitty-syncd.socket").exists());
    let st = json_out(&run(&["sync", "service", "status", "--json"]));
    assert_eq!(st["installed"], false, "{st}");
}

#[test]
fn newer_cli_replaces_an_older_daemon_then_cooldown_stops_ping_pong() {
    let sb = Sandbox::new();
    let dir = sb.project("skew-up", "feat");
    let old_pid = sb.daemon_pid().expect("older daemon running");

    // The newer CLI asks the older daemon to drain and exit, then spawns
    // the newer daemon next to itself, and its event is accepted there.
    let o = run_ok(newer_cli(&sb, &dir).args(move_task("WP01", "doing", &["--json"])));
    let v = json_out(&o);
    assert_eq!(v["events"][0]["delivery"], "accepted", "{}", stderr(&o));
    let new_pid = sb.daemon_pid().expect("newer daemon running");
    assert_ne!(new_pid, old_pid);
    assert_eq!(syncd_pids(&sb), vec![new_pid], "the older one exited");
    let st = json_out(&run_ok(
        newer_cli(&sb, &dir).args(["sync", "status", "--json"]),
    ));
    assert_eq!(
        st["daemon"]["protocol"],
        format!("2.{}", spec_kitty_protocol::ipc::PROTOCOL_MINOR),
        "{st}"
    );
    let id = v["events"][0]["event_id"].as_str().unwrap().to_string();
    assert!(stored_events(&sb).iter().any(|r| r.event_id == id));

    // Back to an older daemon (the newer CLI stops its own, the older CLI
    // starts one): within the cooldown it refuses a second skew shutdown,
    // so the newer CLI spools instead of looping.
    run_ok(newer_cli(&sb, &dir).args(["sync", "stop"]));
    sb.sk(&dir, &["sync", "start"]);
    let older_again = sb.daemon_pid().unwrap();
    let o = run_ok(newer_cli(&sb, &dir).args(add_history("WP01", "n", &["--json"])));
    let v = json_out(&o);
    assert_eq!(v["events"][0]["delivery"], "spooled", "{v}");
    assert!(stderr(&o).contains("cooldown"), "{}", stderr(&o));
    assert_eq!(sb.daemon_pid(), Some(older_again), "not restarted again");
}

#[test]
fn older_cli_never_restarts_a_newer_daemon_and_spools() {
    let sb = Sandbox::new();
    let dir = sb.project("skew-down", "feat");
    run_ok(sb.cli(&dir).args(["sync", "stop"]));
    let started = json_out(&run_ok(
        newer_cli(&sb, &dir).args(["sync", "start", "--json"]),
    ));
    let newer_pid = started["pid"].as_u64().unwrap() as u32;

    let o = sb.sk(&dir, &move_task("WP01", "doing", &["--json"]));
    let v = json_out(&o);
    assert_eq!(v["events"][0]["delivery"], "spooled", "{v}");
    let err = stderr(&o);
    assert!(
        err.contains("newer") && err.contains("upgrade spec-kitty"),
        "{err}"
    );
    assert_eq!(
        sb.daemon_pid(),
        Some(newer_pid),
        "the newer daemon keeps running"
    );
    assert_eq!(sb.spooled().len(), 1);

    // `sync status` from the older CLI says why it cannot use the daemon.
    let st = json_out(&sb.sk(&dir, &["sync", "status", "--json"]));
    assert_eq!(st["running"], false, "{st}");
    assert!(
        st["unreachable"]
            .as_str()
            .is_some_and(|e| e.contains("newer")),
        "{st}"
    );
    assert_eq!(st["spool_backlog"], 1, "{st}");

    // `sync stop` from the older CLI refuses too, with a clear error.
    let o = sb.cli(&dir).args(["sync", "stop"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not stop a newer daemon"),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.daemon_pid(), Some(newer_pid));

    // The newer CLI's next command hands the spooled event to its daemon.
    run_ok(newer_cli(&sb, &dir).args(["agent", "tasks", "add-history", "WP01", "--note", "n"]));
    assert!(sb.spooled().is_empty());
    let id = v["events"][0]["event_id"].as_str().unwrap().to_string();
    assert!(stored_events(&sb).iter().any(|r| r.event_id == id));
}
