//! The daemon's store: deleted under it (adversarial finding 3), no event it
//! acknowledged may be lost, and the Lamport clock of the node never goes
//! back, even when the store is gone for good; and housekeeping prunes sent
//! rows past their retention, nothing else.

use serde_json::Value;
use spec_kitty_e2e::cmdline::move_task;
use spec_kitty_e2e::sync::{json_out, stored_events};
use spec_kitty_e2e::Sandbox;
use std::collections::HashSet;
use std::path::Path;

/// Moves WP01 to `to` with `--json`; returns (event id, Lamport value) of
/// the event, which the daemon must have accepted (not spooled).
fn mv(sb: &Sandbox, dir: &Path, to: &str) -> (String, u64) {
    let o = sb.sk(
        dir,
        &move_task("WP01", to, &["--force", "--reason", "t", "--json"]),
    );
    let v = json_out(&o);
    let e: &Value = &v["events"][0];
    assert_eq!(e["delivery"], "accepted", "{v}");
    (
        e["event_id"].as_str().unwrap().to_string(),
        e["detail"].as_u64().unwrap(),
    )
}

fn remove_store_files(sb: &Sandbox) {
    let store = sb.paths().store();
    std::fs::remove_file(&store).unwrap_or_else(|e| panic!("remove {}: {e}", store.display()));
    // The WAL and shm files exist only while a daemon has the store open.
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", store.display()));
    }
}

#[test]
fn a_store_deleted_under_the_daemon_loses_no_acknowledged_event_and_no_clock() {
    let sb = Sandbox::new();
    let dir = sb.project("lost", "lost-store");
    let before: Vec<_> = stored_events(&sb);
    assert!(before.len() >= 2);
    let mut max_before = before.iter().map(|e| e.lamport_clock as u64).max().unwrap();
    assert!(sb.daemon_pid().is_some(), "the daemon runs");

    remove_store_files(&sb);
    let mut acked = Vec::new();
    for i in 0..8 {
        let (id, lamport) = mv(&sb, &dir, if i % 2 == 0 { "doing" } else { "planned" });
        assert!(
            lamport > max_before,
            "Lamport {lamport} handed out again after the store was deleted (had {max_before})"
        );
        max_before = lamport;
        acked.push(id);
    }
    sb.sk(sb.root(), &["sync", "restart"]);
    let stored: HashSet<String> = stored_events(&sb).into_iter().map(|e| e.event_id).collect();
    for id in &acked {
        assert!(
            stored.contains(id),
            "event {id} was acknowledged and then lost"
        );
    }
    for e in &before {
        assert!(
            stored.contains(&e.event_id),
            "unsent event {} lost",
            e.event_id
        );
    }
    let (_, next) = mv(&sb, &dir, "doing");
    assert!(next > max_before, "clock went back: {next} <= {max_before}");

    // Lost for good while no daemon runs: the next daemon starts above
    // every value handed out before.
    sb.stop_daemon();
    remove_store_files(&sb);
    let (_, after) = mv(&sb, &dir, "planned");
    assert!(
        after > next,
        "a new store handed out Lamport {after}, not above {next}"
    );
}

#[test]
fn housekeeping_prunes_sent_rows_past_retention_and_nothing_else() {
    let sb = Sandbox::new();
    sb.project("prune", "prune-sent");
    sb.stop_daemon();
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    let day = 86_400_000_000i64;
    let rows = [
        ("OLDSENT1", "sent", now - 8 * day),
        ("OLDSENT2", "sent", now - 30 * day),
        ("NEWSENT", "sent", now - day),
        ("OLDPENDING", "pending", now - 30 * day),
        ("OLDPARKED", "parked", now - 30 * day),
    ];
    {
        let db = rusqlite::Connection::open(sb.paths().store()).unwrap();
        for (i, (id, state, at)) in rows.iter().enumerate() {
            db.execute(
                "INSERT INTO events (event_id, lamport_clock, event_type, project_uuid, envelope,
                     state, origin, created_at, updated_at)
                 VALUES (?1, ?2, 'X', '3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d', '{}', ?3, 'ipc', ?4, ?4)",
                rusqlite::params![id, 10_000 + i as i64, state, at],
            )
            .unwrap();
        }
    }
    sb.sk(sb.root(), &["sync", "start"]);
    let left: HashSet<String> = stored_events(&sb).into_iter().map(|e| e.event_id).collect();
    assert!(
        !left.contains("OLDSENT1") && !left.contains("OLDSENT2"),
        "{left:?}"
    );
    for kept in ["NEWSENT", "OLDPENDING", "OLDPARKED"] {
        assert!(left.contains(kept), "{kept} must be kept: {left:?}");
    }
}
