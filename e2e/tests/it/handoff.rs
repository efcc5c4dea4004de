//! The CLI → daemon hand-off over the real binaries: emit → durable →
//! status, a 32-process cold-start race, a SIGSTOPped daemon, no daemon
//! binary, `sync.auto_start: false`, and `sync status` without a daemon.

use spec_kitty_e2e::cmdline::add_history;
use spec_kitty_e2e::sync::{
    json_out, set_auto_start, stderr, stored_events, syncd_pids, wp_envelope,
};
use spec_kitty_e2e::{run_ok, signal, wait_for, Sandbox};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

/// The deliveries a `--json` command reports: (event_id, delivery, detail).
fn deliveries(v: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    v["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {v}"))
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_string(),
                e["delivery"].as_str().unwrap().to_string(),
                e["detail"].clone(),
            )
        })
        .collect()
}

/// Lines of the hand-off's fallback reason (other hints, such as the
/// login hint, may share stderr).
fn reason_lines(err: &str) -> usize {
    err.lines().filter(|l| l.contains("event spooled")).count()
}

fn move_task(sb: &Sandbox, dir: &Path, wp: &str, to: &str) -> std::process::Output {
    sb.sk(
        dir,
        &["agent", "tasks", "move-task", wp, "--to", to, "--json"],
    )
}

#[test]
fn emit_is_durable_and_shows_in_status_for_the_projects_slug() {
    let sb = Sandbox::new();
    let dir = sb.project("alpha-repo", "first");
    assert!(
        sb.spooled().is_empty(),
        "auto_start: the set-up commands went to a daemon"
    );
    let pid = sb
        .daemon_pid()
        .expect("the first emitting command spawned a daemon");

    let o = move_task(&sb, &dir, "WP01", "doing");
    let d = deliveries(&json_out(&o));
    assert_eq!(d.len(), 1);
    let (event_id, how, lamport) = &d[0];
    assert_eq!(how, "accepted", "{}", stderr(&o));
    let lamport = lamport.as_i64().expect("lamport_clock in detail");
    assert!(
        stderr(&o).is_empty(),
        "warm path prints nothing: {}",
        stderr(&o)
    );

    // Durable: the row is in the store with the same Lamport value.
    let rows = stored_events(&sb);
    let row = rows
        .iter()
        .find(|r| &r.event_id == event_id)
        .expect("accepted event is in the store");
    assert_eq!(row.lamport_clock, lamport);
    assert_eq!(row.state, "pending");
    assert_eq!(row.origin, "ipc");
    assert_eq!(row.project_slug.as_deref(), Some("alpha-repo"));

    let st = json_out(&sb.sk(&dir, &["sync", "status", "--json"]));
    assert_eq!(st["running"], true, "{st}");
    assert_eq!(st["daemon"]["pid"], pid, "{st}");
    assert_eq!(st["daemon"]["mode"], "auto", "{st}");
    let projects = st["daemon"]["projects"].as_array().unwrap();
    let alpha = projects
        .iter()
        .find(|p| p["project_slug"] == "alpha-repo")
        .unwrap_or_else(|| panic!("alpha-repo in {st}"));
    // FeatureCreated, WPCreated, WPStatusChanged.
    assert_eq!(alpha["pending"], 3, "{st}");
    assert_eq!(st["daemon"]["queue_depth"], 3, "{st}");
    assert_eq!(st["spool_backlog"], 0, "{st}");
    assert_eq!(st["project"]["auto_start"], true, "{st}");

    let human = String::from_utf8(sb.sk(&dir, &["sync", "status"]).stdout).unwrap();
    assert!(
        human.contains(&format!("pid {pid}")) && human.contains("alpha-repo"),
        "{human}"
    );
}

#[test]
fn thirty_two_clis_racing_a_cold_start_get_one_daemon_and_every_event_once() {
    let sb = Sandbox::new();
    // Four projects with four work packages each (the set-up goes through a
    // daemon, which is then stopped: the race below is a cold start).
    let projects: Vec<_> = (0..4)
        .map(|i| {
            let dir = sb.project(&format!("race-{i}"), "feat");
            for n in 2..=4 {
                sb.sk(&dir, &["tasks", "add", &format!("wp {n}")]);
            }
            dir
        })
        .collect();
    let o = sb.sk(&projects[0], &["sync", "stop"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("stopped"));
    assert!(syncd_pids(&sb).is_empty(), "no daemon before the race");
    // A spool the next daemon ingests before it listens: its start takes a
    // while, so the racing CLIs arrive while it is starting, the window in
    // which a CLI without the start lock would spawn a second daemon.
    let preload = spool_events(&sb, 150);
    let before = stored_events(&sb).len() + preload;
    let log_before = sb.daemon_log();

    // 32 real processes: per project, four lane changes and four notes.
    let mut children = Vec::new();
    for dir in &projects {
        for wp in ["WP01", "WP02", "WP03", "WP04"] {
            for args in [
                vec!["agent", "tasks", "move-task", wp, "--to", "doing", "--json"],
                add_history(wp, "race", &["--json"]),
            ] {
                let mut c = sb.cli(dir);
                c.args(&args).stdout(Stdio::piped()).stderr(Stdio::piped());
                children.push(c.spawn().expect("spawn spec-kitty"));
            }
        }
    }
    assert_eq!(children.len(), 32);
    let mut ids = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let d = deliveries(&json_out(&o));
        assert_eq!(d.len(), 1);
        ids.push(d[0].0.clone());
    }

    // Exactly one daemon was started: every `spec-kitty-syncd` logs either
    // "ready" (it took the daemon lock) or "another spec-kitty-syncd holds"
    // (it lost); the CLI's start lock must leave no loser at all.
    let log = sb.daemon_log();
    let race = log.strip_prefix(log_before.as_str()).unwrap_or(&log);
    let ready = race.matches("ready in ").count();
    let lost = race.matches("another spec-kitty-syncd holds").count();
    assert_eq!(
        (ready, lost),
        (1, 0),
        "32 racing CLIs started {ready} daemon(s) that served and {lost} that lost the daemon lock; the start lock allows exactly one start:\n{race}"
    );

    // Anything spooled under load is picked up by the running daemon.
    run_ok(sb.cli(&projects[0]).args(["sync", "start"]));
    assert!(sb.spooled().is_empty(), "spool drained");

    // Exactly one daemon (the losers of the race, if any, have exited).
    let pids = wait_for("a single daemon", || {
        let p = syncd_pids(&sb);
        (p.len() == 1).then_some(p)
    });
    assert_eq!(Some(pids[0]), sb.daemon_pid());

    let rows = stored_events(&sb);
    assert_eq!(rows.len(), before + 32, "every event stored, nothing else");
    let mut count: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *count.entry(r.event_id.as_str()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(count.get(id.as_str()), Some(&1), "event {id} exactly once");
    }
    let lamports: HashSet<i64> = rows.iter().map(|r| r.lamport_clock).collect();
    assert_eq!(lamports.len(), rows.len(), "Lamport values unique");
    assert!(
        rows.windows(2)
            .all(|w| w[0].lamport_clock < w[1].lamport_clock),
        "Lamport values rise in seq order"
    );
}

/// Writes `n` valid envelopes into the sandbox's spool, as CLIs that found
/// no daemon would have; returns `n`.
fn spool_events(sb: &Sandbox, n: usize) -> usize {
    let paths = sb.paths();
    std::fs::create_dir_all(paths.spool_dir()).unwrap();
    for _ in 0..n {
        let env = wp_envelope(
            Some("550e8400-e29b-41d4-a716-446655440000"),
            Some("spooled"),
        );
        std::fs::write(paths.spool_file(&env.event_id), env.to_json()).unwrap();
    }
    n
}

/// Sends SIGCONT on drop, so a failing test never leaves a stopped daemon.
struct Resume(u32);
impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

#[test]
fn sigstopped_daemon_cli_spools_within_budget_and_the_event_is_ingested_later() {
    let sb = Sandbox::new();
    let dir = sb.project("frozen", "feat");
    let pid = sb.daemon_pid().expect("daemon running");
    signal(pid, libc::SIGSTOP);
    let resume = Resume(pid);

    // The 1.5 s budget is measured by the bench (`scripts/bench`, wedged
    // daemon case), not asserted here: tests check behaviour, not time.
    let o = move_task(&sb, &dir, "WP01", "doing");
    let d = deliveries(&json_out(&o));
    assert_eq!(d[0].1, "spooled", "{d:?}");
    let err = stderr(&o);
    assert_eq!(reason_lines(&err), 1, "one line of reason: {err}");
    assert!(err.contains("did not answer"), "{err}");
    let spooled = sb.spooled();
    assert_eq!(spooled.len(), 1);
    assert_eq!(spooled[0]["event_id"], d[0].0.as_str());
    // The lane change itself happened.
    // tasks/ also holds 2.1.3's README.md (with an example frontmatter).
    let wp = std::fs::read_dir(dir.join("kitty-specs/001-feat/tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("WP01"))
        .unwrap();
    let text = std::fs::read_to_string(wp).unwrap();
    let lane = text.lines().find(|l| l.starts_with("lane:")).unwrap();
    assert!(lane.contains("in_progress"), "{lane}");

    drop(resume); // SIGCONT
                  // The next command reaches the daemon, which ingests the spool first.
    let o = sb.sk(&dir, &add_history("WP01", "after", &["--json"]));
    assert_eq!(deliveries(&json_out(&o))[0].1, "accepted", "{}", stderr(&o));
    assert!(sb.spooled().is_empty(), "spool ingested");
    let rows = stored_events(&sb);
    let spooled_row = rows
        .iter()
        .find(|r| r.event_id == d[0].0)
        .expect("the spooled event is in the store");
    assert_eq!(spooled_row.origin, "spool");
    assert_eq!(sb.daemon_pid(), Some(pid), "the same daemon, resumed");
    let last = rows.last().unwrap();
    assert!(
        spooled_row.lamport_clock < last.lamport_clock,
        "spool went in first"
    );
}

#[test]
fn no_daemon_binary_spools_with_a_one_line_reason() {
    let sb = Sandbox::new();
    // spec-kitty alone in a directory, and a PATH without spec-kitty-syncd.
    let lone = sb.root().join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    let exe = lone.join("spec-kitty");
    std::fs::copy(spec_kitty_e2e::bin("spec-kitty"), &exe).unwrap();
    let dir = sb.git_repo("nobin", None);
    let run = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.current_dir(&dir).args(args).stdin(Stdio::null());
        sb.env(&mut c);
        c.env("PATH", "/usr/bin:/bin")
            .env_remove("SPEC_KITTY_SYNCD_BIN");
        run_ok(&mut c)
    };
    run(&["init", "--here"]);
    let o = run(&["specify", "feat", "--json"]);
    let d = deliveries(&json_out(&o));
    assert_eq!(d[0].1, "spooled");
    let err = stderr(&o);
    assert_eq!(reason_lines(&err), 1, "one line of reason: {err}");
    assert!(err.contains("spec-kitty-syncd not found"), "{err}");
    assert_eq!(sb.spooled().len(), 1);
    assert!(syncd_pids(&sb).is_empty(), "nothing was started");
    assert_eq!(sb.daemon_pid(), None);
}

#[test]
fn auto_start_false_never_spawns_but_a_running_daemon_takes_the_events() {
    let sb = Sandbox::new();
    let dir = sb.project("optout", "feat");
    run_ok(sb.cli(&dir).args(["sync", "stop"]));
    set_auto_start(&dir, false);

    let o = move_task(&sb, &dir, "WP01", "doing");
    let d = deliveries(&json_out(&o));
    assert_eq!(d[0].1, "spooled");
    let err = stderr(&o);
    assert!(
        err.contains("opted out") && err.contains("auto_start: false"),
        "{err}"
    );
    assert!(syncd_pids(&sb).is_empty(), "opted out: nothing spawned");

    let st = json_out(&sb.sk(&dir, &["sync", "status", "--json"]));
    assert_eq!(st["running"], false, "{st}");
    assert_eq!(st["opted_out"], true, "{st}");
    assert_eq!(st["spool_backlog"], 1, "{st}");
    let human = String::from_utf8(sb.sk(&dir, &["sync", "status"]).stdout).unwrap();
    assert!(
        human.contains("opted out") && human.contains("not running"),
        "{human}"
    );

    // A daemon the user started explicitly takes the spool and new events.
    let started = json_out(&sb.sk(&dir, &["sync", "start", "--json"]));
    assert_eq!(started["started"], true, "{started}");
    assert!(sb.spooled().is_empty());
    let o = sb.sk(&dir, &add_history("WP01", "n", &["--json"]));
    assert_eq!(deliveries(&json_out(&o))[0].1, "accepted");
    let ids: Vec<String> = stored_events(&sb).into_iter().map(|r| r.event_id).collect();
    assert!(ids.contains(&d[0].0));
}

#[test]
fn sync_status_json_when_no_daemon_runs() {
    let sb = Sandbox::new();
    let cwd = sb.root().to_path_buf();
    let st = json_out(&sb.sk(&cwd, &["sync", "status", "--json"]));
    assert_eq!(st["running"], false, "{st}");
    assert!(st["daemon"].is_null(), "{st}");
    assert_eq!(st["spool_backlog"], 0, "{st}");
    assert!(st["project"].is_null(), "not in a project: {st}");
    assert!(syncd_pids(&sb).is_empty(), "status never spawns");

    // A spooled file is counted; temp files are not.
    let spool = sb.paths().spool_dir();
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("01ARZ3NDEKTSV4RRFFQ69G5FAV.json"), "{}").unwrap();
    std::fs::write(spool.join(".01ARZ3NDEKTSV4RRFFQ69G5FAW.json.tmp"), "{").unwrap();
    let st = json_out(&sb.sk(&cwd, &["sync", "status", "--json"]));
    assert_eq!(st["spool_backlog"], 1, "{st}");
    let human = String::from_utf8(sb.sk(&cwd, &["sync", "status"]).stdout).unwrap();
    assert!(
        human.contains("not running") && human.contains("1 event file(s) waiting"),
        "{human}"
    );
}

#[test]
fn a_daemon_that_cannot_start_gives_its_reason_and_the_event_is_spooled() {
    let sb = Sandbox::new();
    let dir = sb.project("refused", "feat");
    run_ok(sb.cli(&dir).args(["sync", "stop"]));
    // A store written by a newer schema: the daemon refuses to open it and
    // says why on its READY/ERROR line.
    std::fs::remove_file(sb.paths().store()).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sb.paths().store().display()));
    }
    let db = rusqlite::Connection::open(sb.paths().store()).unwrap();
    db.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(db);

    let o = move_task(&sb, &dir, "WP01", "doing");
    assert_eq!(deliveries(&json_out(&o))[0].1, "spooled");
    let err = stderr(&o);
    assert_eq!(reason_lines(&err), 1, "{err}");
    assert!(
        err.contains("could not start") && err.contains("store.db"),
        "the daemon's own reason: {err}"
    );
    assert_eq!(sb.spooled().len(), 1);
    assert!(syncd_pids(&sb).is_empty(), "no daemon left behind");
}
