//! Events without a `project_uuid` are held: stored durably, counted in
//! `sync status`, and never sent by any path — neither the real-time
//! WebSocket nor a forced `sync now` — while events with identity sent
//! alongside them are delivered.

use serde_json::Value;
use spec_kitty_e2e::daemon::Client;
use spec_kitty_e2e::sync::wp_envelope;
use spec_kitty_e2e::{run_ok, wait_for, RefServer, Sandbox};
use spec_kitty_protocol::envelope::EventEnvelope;
use spec_kitty_protocol::ipc::Response;

fn envelope(project_uuid: Option<&str>) -> EventEnvelope {
    wp_envelope(project_uuid, project_uuid.map(|_| "with-identity"))
}

fn emit(sb: &Sandbox, env: &EventEnvelope) {
    let mut c = Client::connect(&sb.paths()).expect("daemon socket");
    let reply = c.emit(&env.to_json()).expect("emit");
    assert!(
        matches!(reply, Response::Accepted { .. }),
        "emit answered {reply:?}"
    );
}

fn server_has(rs: &RefServer, event_id: &str) -> bool {
    rs.all_events().iter().any(|e| e["event_id"] == event_id)
}

#[test]
fn events_without_project_uuid_are_held_counted_and_never_sent() {
    let rs = RefServer::start(&["--user", "alice:secret:team-a"]);
    let sb = Sandbox::new();
    let login = sb.login(&rs.base, "alice", "secret");
    assert!(
        login.status.success(),
        "login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    sb.sk(sb.root(), &["sync", "start"]);

    let held = envelope(None);
    // A slug without a uuid (an old CLI, a project never `init`ed) is no
    // identity either: held like the rest.
    let held_slug = wp_envelope(None, Some("slug-only"));
    let normal = envelope(Some("550e8400-e29b-41d4-a716-446655440000"));
    emit(&sb, &held);
    emit(&sb, &held_slug);
    emit(&sb, &normal);

    // The event with identity arrives; then force a full drain.
    wait_for("the event with identity at the server", || {
        server_has(&rs, &normal.event_id).then_some(())
    });
    run_ok(sb.cli(sb.root()).args(["sync", "now", "--wait", "--json"]));

    for e in [&held, &held_slug] {
        assert!(
            !server_has(&rs, &e.event_id),
            "an event without project_uuid (slug {:?}) reached the server",
            e.project_slug
        );
    }
    let status: Value =
        serde_json::from_slice(&sb.sk(sb.root(), &["sync", "status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["daemon"]["held"], 2,
        "sync status must count both held events (with and without a slug): {status}"
    );
    let (_, stats) = rs.get("/__control/stats");
    assert_eq!(
        stats["events_stored"], 1,
        "only the event with identity is stored: {stats}"
    );
    // Not sent at all (the server would refuse a uuid-less event, so "not
    // stored" alone would not show it was never sent).
    for k in ["ws_events_rejected", "batch_events_rejected"] {
        assert_eq!(stats[k], 0, "{k}: a held event went on the wire: {stats}");
    }
    let rows = spec_kitty_e2e::sync::stored_events(&sb);
    for e in [&held, &held_slug] {
        let row = rows
            .iter()
            .find(|r| r.event_id == e.event_id)
            .expect("the held event is stored");
        assert_eq!(row.state, "held", "{row:?}");
    }
}
