//! Two CLIs on one machine, one login, one connection (issue 14 part 4):
//! while our daemon runs and is logged in, the Python CLI queues events in
//! its own SQLite queue (it has no SaaS sync, or no connection); the daemon
//! takes the new rows in within a second or two, stamps them after its own
//! Lamport values, and sends each exactly once — across a restart, a
//! re-read, a row Python replaced (coalescing) or deleted after its own send
//! — and never writes to Python's files.
//!
//! The first test writes rows with sqlite in 2.1.3's exact schema (fast, no
//! Python needed); the second runs the real Python CLI 2.1.3.

use serde_json::{json, Value};
use spec_kitty_e2e::cmdline;
use spec_kitty_e2e::python::{project_uuid, require_python};
use spec_kitty_e2e::{wait_for, RefServer, Sandbox};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// 2.1.3's `queue` table (`specify_cli/sync/queue.py`).
const PYTHON_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT UNIQUE NOT NULL,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    retry_count INTEGER DEFAULT 0,
    coalesce_key TEXT
);
CREATE INDEX IF NOT EXISTS idx_timestamp ON queue(timestamp);
CREATE INDEX IF NOT EXISTS idx_retry ON queue(retry_count);
CREATE INDEX IF NOT EXISTS idx_coalesce_key ON queue(coalesce_key);";

/// Each stored event once, and no Lamport value used twice on a node.
fn assert_once_and_unique_lamports(rs: &RefServer) -> Vec<Value> {
    assert_eq!(rs.resends(), 0, "an event reached the server twice");
    let events = rs.all_events();
    let mut seen: HashMap<(String, u64), String> = HashMap::new();
    for e in &events {
        let key = (
            e["node_id"].as_str().unwrap().to_string(),
            e["lamport_clock"].as_u64().unwrap(),
        );
        let id = e["event_id"].as_str().unwrap().to_string();
        if let Some(other) = seen.insert(key.clone(), id.clone()) {
            panic!("Lamport value {key:?} used by {other} and {id}:\n{events:#?}");
        }
    }
    events
}

/// A `WPStatusChanged` as 2.1.3 queues it (its `json.dumps` spacing), on
/// this machine's node, numbered `lamport` by Python's own clock.
fn python_row(uuid: &str, lamport: u64, to: &str) -> (String, String) {
    let id = ulid::Ulid::new().to_string();
    let env = json!({
        "event_id": id, "event_type": "WPStatusChanged", "aggregate_id": "WP01",
        "aggregate_type": "WorkPackage",
        "payload": {"wp_id": "WP01", "from_lane": "planned", "to_lane": to,
                    "actor": "python", "feature_slug": "001-first-feature",
                    "policy_metadata": null},
        "node_id": spec_kitty_protocol::node_id(), "lamport_clock": lamport,
        "causation_id": null, "timestamp": "2026-11-29T10:00:00.000000+00:00",
        "team_slug": "team-a", "project_uuid": uuid, "project_slug": "alpha",
        "git_branch": "main", "head_commit_sha": null, "repo_slug": null
    });
    let data = serde_json::to_string(&env)
        .unwrap()
        .replace("\":", "\": ")
        .replace(",\"", ", \"");
    (id, data)
}

/// Queues rows as 2.1.3 does (`INSERT OR REPLACE`, one transaction each).
fn python_queue(db: &Path, rows: &[(String, String)]) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(PYTHON_SCHEMA).unwrap();
    for (id, data) in rows {
        conn.execute(
            "INSERT OR REPLACE INTO queue (event_id, event_type, data, timestamp, coalesce_key)
             VALUES (?1, 'WPStatusChanged', ?2, 1, NULL)",
            [id, data],
        )
        .unwrap();
    }
}

fn wait_at_server(rs: &RefServer, ids: &[String]) -> Vec<Value> {
    wait_for("the Python-queued events at the server", || {
        let events = rs.all_events();
        ids.iter()
            .all(|id| events.iter().any(|e| e["event_id"] == id.as_str()))
            .then_some(events)
    })
}

fn by_id<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event_id"] == id)
        .unwrap_or_else(|| panic!("{id} not at the server"))
}

fn move_task(sb: &Sandbox, dir: &Path, to: &str) -> String {
    let o = sb.sk(
        dir,
        &["agent", "tasks", "move-task", "WP01", "--to", to, "--json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["events"][0]["event_id"].as_str().unwrap().to_string()
}

#[test]
fn rows_python_queues_while_the_daemon_runs_are_sent_once_after_its_lamport_values() {
    let sb = Sandbox::new();
    let rs = RefServer::start(&["--user", "alice:secret:team-a"]);
    assert!(sb.login(&rs.base, "alice", "secret").status.success());
    let dir = sb.project("alpha", "first-feature");
    let uuid = project_uuid(&dir);
    let ours = move_task(&sb, &dir, "doing");
    let events = wait_at_server(&rs, std::slice::from_ref(&ours));
    let our_lamport = by_id(&events, &ours)["lamport_clock"].as_u64().unwrap();

    // Logged in, 2.1.3 queues in its scoped file; without a login in
    // queue.db. Python's clock.json knows nothing of ours: it numbers from 1.
    let creds = spec_kitty_protocol::credentials::read(&sb.paths())
        .unwrap()
        .unwrap();
    let scoped: PathBuf = sb.paths().python_scoped_queue_db(
        creds.server_url.as_deref().unwrap(),
        creds.username.as_deref().unwrap(),
        creds.team_slug.as_deref(),
    );
    let legacy = sb.paths().legacy_queue_db();
    let first = vec![
        python_row(&uuid, 1, "in_progress"),
        python_row(&uuid, 2, "for_review"),
    ];
    python_queue(&scoped, &first);
    let second = vec![python_row(&uuid, 3, "done")];
    python_queue(&legacy, &second);
    let ids: Vec<String> = first.iter().chain(&second).map(|r| r.0.clone()).collect();
    let before = (
        std::fs::read(&scoped).unwrap(),
        std::fs::read(&legacy).unwrap(),
    );
    let events = wait_at_server(&rs, &ids);
    for id in &ids {
        let e = by_id(&events, id);
        assert!(
            e["lamport_clock"].as_u64().unwrap() > our_lamport,
            "a Python row is stamped after the daemon's own value {our_lamport}: {e}"
        );
        assert_eq!(e["project_uuid"], uuid.as_str(), "{e}");
        assert_eq!(e["envelope"]["payload"]["actor"], "python", "{e}");
    }
    assert_eq!(
        (
            std::fs::read(&scoped).unwrap(),
            std::fs::read(&legacy).unwrap()
        ),
        before,
        "the daemon never writes Python's queue files"
    );

    // Python deletes what it sent itself, and replaces a row when it
    // coalesces (same event_id, a new row id): neither is sent again.
    let conn = rusqlite::Connection::open(&scoped).unwrap();
    conn.execute("DELETE FROM queue WHERE event_id = ?1", [&first[0].0])
        .unwrap();
    drop(conn);
    python_queue(&scoped, &first[1..]);
    let third = vec![python_row(&uuid, 4, "approved")];
    python_queue(&scoped, &third);
    let events = wait_at_server(&rs, &[third[0].0.clone()]);
    let ours_after = move_task(&sb, &dir, "for_review");
    wait_at_server(&rs, std::slice::from_ref(&ours_after));
    assert_eq!(events.len() + 1, rs.all_events().len());

    // A restart re-reads both files: nothing is adopted or sent twice. The
    // daemon sends in its own order, so once an event emitted after the
    // restart is at the server, anything re-adopted before it would be too.
    sb.stop_daemon();
    let total = rs.all_events().len();
    let last = move_task(&sb, &dir, "blocked");
    wait_at_server(&rs, std::slice::from_ref(&last));
    let all = assert_once_and_unique_lamports(&rs);
    assert_eq!(all.len(), total + 1, "{all:#?}");
    let log = sb.daemon_log();
    let adopted: u64 = log
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("adopted ")? + "adopted ".len()..];
            rest.split(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(adopted, 4, "each Python row taken in once:\n{log}");
}

#[test]
fn the_real_python_cli_without_saas_sync_is_sent_through_the_running_daemon() {
    let test = "the_real_python_cli_without_saas_sync_is_sent_through_the_running_daemon";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let rs = RefServer::start(&["--user", "alice:secret:team-a"]);
    assert!(sb.login(&rs.base, "alice", "secret").status.success());
    // Our daemon, running and connected before Python does anything.
    let ours_dir = sb.project("rustproj", "rust-feature");
    let ours = move_task(&sb, &ours_dir, "doing");
    wait_at_server(&rs, std::slice::from_ref(&ours));
    let pid = sb.daemon_pid().expect("the daemon runs");

    // Python with SaaS sync off (2.1.3's default) only queues.
    let dir = sb.py_project(&py, "pyproj", "demo-feature", 2);
    for (wp, to) in [
        ("WP01", "claimed"),
        ("WP02", "claimed"),
        ("WP01", "in_progress"),
    ] {
        sb.py(
            &py,
            &dir,
            &cmdline::move_task(wp, to, &["--agent", "claude"]),
        );
    }
    let uuid = project_uuid(&dir);
    let events = wait_for("Python's three status changes at the server", || {
        let events = rs.all_events();
        let n = events
            .iter()
            .filter(|e| e["event_type"] == "WPStatusChanged" && e["project_uuid"] == uuid.as_str())
            .count();
        (n >= 3).then_some(events)
    });
    assert_eq!(sb.daemon_pid(), Some(pid), "taken in by the running daemon");
    let mut moves: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["event_type"] == "WPStatusChanged" && e["project_uuid"] == uuid.as_str())
        .map(|e| {
            let p = &e["envelope"]["payload"];
            (
                p["wp_id"].as_str().unwrap().to_string(),
                p["from_lane"].as_str().unwrap().to_string(),
                p["to_lane"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    moves.sort();
    assert_eq!(
        moves,
        [
            ("WP01".into(), "claimed".into(), "in_progress".into()),
            ("WP01".into(), "planned".into(), "claimed".into()),
            ("WP02".into(), "planned".into(), "claimed".into()),
        ],
        "{events:#?}"
    );
    let our_lamport = by_id(&events, &ours)["lamport_clock"].as_u64().unwrap();
    for e in events.iter().filter(|e| e["project_uuid"] == uuid.as_str()) {
        assert!(e["lamport_clock"].as_u64().unwrap() > our_lamport, "{e}");
    }
    assert_once_and_unique_lamports(&rs);
}
