//! The daemon's store deleted under it (adversarial finding 3): no event it
//! acknowledged may be lost, and the Lamport clock of the node never goes
//! back, even when the store is gone for good.

use serde_json::Value;
use spec_kitty_e2e::sync::{json_out, stored_events};
use spec_kitty_e2e::Sandbox;
use std::collections::HashSet;
use std::path::Path;

/// Moves WP01 to `to` with `--json`; returns (event id, Lamport value) of
/// the event, which the daemon must have accepted (not spooled).
fn mv(sb: &Sandbox, dir: &Path, to: &str) -> (String, u64) {
    let o = sb.sk(
        dir,
        &[
            "agent",
            "tasks",
            "move-task",
            "WP01",
            "--to",
            to,
            "--force",
            "--reason",
            "t",
            "--json",
        ],
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
