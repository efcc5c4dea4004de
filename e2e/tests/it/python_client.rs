//! The real Python CLI 2.1.3 as a client of the reference server over TLS
//! (issue 14 part 3): the server contract checked against the client it was
//! written for. Python trusts the server's throw-away CA through
//! `SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE`, logs in, makes a project and moves
//! a work package; every event it queued is at the server once, accepted.
//! Then our CLI and daemon use the login Python wrote.
//!
//! Needs `scripts/setup-python-cli` (skipped without it, failed under
//! `SK_REQUIRE_ALL`/`CI`).

use serde_json::Value;
use spec_kitty_e2e::cmdline::move_task;
use spec_kitty_e2e::python::{project_uuid, require_python};
use spec_kitty_e2e::{wait_for, RefServer, Sandbox};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn stat(rs: &RefServer, key: &str) -> u64 {
    let (_, body) = rs.get("/__control/stats");
    body[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

/// Rows still queued in the Python CLI's queues (legacy and scoped).
fn python_queued(home: &Path) -> i64 {
    let root = home.join(".spec-kitty");
    let mut dbs = vec![root.join("queue.db")];
    if let Ok(dir) = std::fs::read_dir(root.join("queues")) {
        dbs.extend(dir.filter_map(Result::ok).map(|e| e.path()));
    }
    dbs.iter()
        .filter(|p| p.extension().is_some_and(|x| x == "db"))
        .filter_map(|p| rusqlite::Connection::open(p).ok())
        .filter_map(|c| {
            c.query_row("SELECT COUNT(*) FROM queue", [], |r| r.get::<_, i64>(0))
                .ok()
        })
        .sum()
}

#[test]
fn python_2_1_3_logs_in_over_tls_and_its_events_are_stored_once() {
    let test = "python_2_1_3_logs_in_over_tls_and_its_events_are_stored_once";
    let Some(py) = require_python(test) else {
        return;
    };
    let mut sb = Sandbox::new();
    let ca = sb.root().join("ca.pem");
    let rs = RefServer::start(&[
        "--user",
        "alice:secret:team-a",
        "--tls",
        "--ca-out",
        ca.to_str().unwrap(),
    ]);
    assert!(rs.base.starts_with("https://"), "{}", rs.base);
    sb.set_env("SSL_CERT_FILE", &ca);
    sb.set_env("REQUESTS_CA_BUNDLE", &ca);
    sb.set_env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1");

    sb.py(&py, sb.root(), &["sync", "server", &rs.base]);
    let login = sb.py(
        &py,
        sb.root(),
        &["auth", "login", "-u", "alice", "-p", "secret"],
    );
    let said = String::from_utf8_lossy(&login.stdout);
    assert!(said.contains("Login successful"), "{said}");
    let creds = sb.home().join(".spec-kitty/credentials");
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} mode {mode:o}", creds.display());
    let access = std::fs::read_to_string(&creds)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("access = ")
                .map(|v| v.trim_matches('"').to_string())
        })
        .expect("an access token in Python's credentials");
    assert!(!said.contains(&access), "the token was printed: {said}");

    let dir = sb.py_project(&py, "pyproj", "demo-feature", 1);
    let moved = sb.py(
        &py,
        &dir,
        &move_task("WP01", "claimed", &["--agent", "claude", "--json"]),
    );
    let v: Value = serde_json::from_slice(&moved.stdout).unwrap_or_else(|e| {
        panic!(
            "move-task --json: {e}\n{}",
            String::from_utf8_lossy(&moved.stdout)
        )
    });
    assert_eq!(v["new_lane"], "claimed", "{v}");
    // Whatever the exit-time upload left queued goes now (batch, gzip).
    sb.py(&py, &dir, &["sync", "now"]);
    // Its connectivity probe (no /api/v1/sync/health/ here: it falls back
    // to an empty batch) reports the server reachable and the login valid.
    let check = sb.py(&py, &dir, &["sync", "status", "--check"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("authentication valid"), "{said}");

    assert_eq!(
        python_queued(&sb.home()),
        0,
        "Python still has queued events after `sync now`"
    );
    assert_eq!(
        stat(&rs, "batch_events_rejected"),
        0,
        "{:#?}",
        rs.all_events()
    );
    assert_eq!(stat(&rs, "ws_events_rejected"), 0);
    assert_eq!(
        rs.resends(),
        0,
        "an event of Python's reached the server twice"
    );
    let stored = rs.all_events();
    let uuid = project_uuid(&dir);
    let types: Vec<&str> = stored
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"FeatureCreated"), "{types:?}");
    let status: Vec<&Value> = stored
        .iter()
        .filter(|e| e["event_type"] == "WPStatusChanged")
        .map(|e| &e["envelope"])
        .collect();
    assert_eq!(status.len(), 1, "{status:#?}");
    let p = &status[0]["payload"];
    assert_eq!(
        (
            &p["wp_id"],
            &p["from_lane"],
            &p["to_lane"],
            &p["actor"],
            &p["feature_slug"]
        ),
        (
            &Value::from("WP01"),
            &Value::from("planned"),
            &Value::from("claimed"),
            &Value::from("claude"),
            &Value::from("001-demo-feature")
        ),
        "{p}"
    );
    for e in &stored {
        assert_eq!(e["project_uuid"], uuid.as_str(), "{e}");
        assert_eq!(e["team_slug"], "team-a", "{e}");
    }

    // One login for both CLIs: our daemon sends with the tokens Python
    // wrote (and our events follow Python's on the shared node's clock).
    let before = stored.len();
    let ours = sb.project("rustproj", "rust-feature");
    let o = sb.sk(&ours, &move_task("WP01", "doing", &["--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["events"][0]["event_id"].as_str().unwrap().to_string();
    let ev = wait_for("our event at the server, sent with Python's login", || {
        rs.all_events()
            .into_iter()
            .find(|e| e["event_id"] == id.as_str())
    });
    assert_eq!(ev["team_slug"], "team-a", "{ev}");
    let max_python = stored
        .iter()
        .map(|e| e["lamport_clock"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        ev["lamport_clock"].as_u64().unwrap() > max_python,
        "our Lamport value {} is not after Python's {max_python}",
        ev["lamport_clock"]
    );
    assert!(rs.all_events().len() > before);
    assert_eq!(rs.resends(), 0);
}
