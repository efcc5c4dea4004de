//! The WebSocket endpoint: snapshot first, pings and pongs, acks in ack
//! mode, silence in legacy mode, and dedupe shared with the batch endpoint.

use crate::common;

use common::{simple, Frame, Server, PROJECT_A};
use serde_json::json;

#[test]
fn snapshot_then_acks_accepted_duplicate_and_rejected() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = server.access("alice", "secret");
    // Something stored first so the snapshot has content.
    assert_eq!(
        server.batch_gzip(&token, &json!({"events": [simple(1)]})).0,
        200
    );
    let mut ws = server.ws(&token);
    let snap = ws.json();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["team_slug"], "team-a");
    assert_eq!(snap["projects"][0]["project_uuid"], PROJECT_A);
    assert_eq!(snap["work_packages"][0]["lane"], "in_progress");

    ws.send(&simple(2));
    assert_eq!(
        ws.json(),
        json!({"type": "ack", "event_id": simple(2)["event_id"], "status": "accepted"})
    );
    ws.send(&simple(2));
    assert_eq!(
        ws.json(),
        json!({"type": "ack", "event_id": simple(2)["event_id"], "status": "duplicate"})
    );
    let mut bad = simple(3);
    bad["payload"].as_object_mut().unwrap().remove("wp_id");
    ws.send(&bad);
    let err = ws.json();
    assert_eq!(err["type"], "error");
    assert_eq!(err["status"], "rejected");
    assert_eq!(err["event_id"], simple(3)["event_id"]);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("missing required field 'wp_id'"),
        "{err}"
    );
    let stored = server.events(Some(PROJECT_A));
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["received_via"], "ws");
}

#[test]
fn pings_are_sent_pongs_counted_and_silent_clients_are_closed() {
    let server = Server::start(&[
        "--user",
        "alice:secret:team-a",
        "--ping-interval-ms",
        "100",
        "--max-missed-pongs",
        "2",
    ]);
    let token = server.access("alice", "secret");
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    // Answer three pings.
    for _ in 0..3 {
        match ws.next() {
            Frame::Json(v) => {
                assert_eq!(v["type"], "ping");
                assert!(v["timestamp"].is_string());
                ws.send(&json!({"type": "pong", "timestamp": v["timestamp"]}));
            }
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    server.wait_for("3 pongs counted", || {
        (server.stat("ws_pongs_received") >= 3).then_some(())
    });
    // Now stay silent: after two unanswered pings the server closes with 1008.
    let mut pings = 0;
    let close = loop {
        match ws.next() {
            Frame::Json(v) if v["type"] == "ping" => pings += 1,
            Frame::Json(v) => panic!("unexpected frame {v}"),
            Frame::Closed(code) => break code,
        }
    };
    // Exactly 2 unless a pong crossed a ping on a loaded machine.
    assert!((2..=3).contains(&pings), "{pings} pings before the close");
    assert_eq!(close, Some(1008));
    assert_eq!(server.stat("ws_closed_missed_pongs"), 1);
}

#[test]
fn legacy_mode_stores_events_but_never_acks() {
    let server = Server::start(&[
        "--user",
        "alice:secret:team-a",
        "--legacy-ws",
        "--ping-interval-ms",
        "100",
        "--max-missed-pongs",
        "0",
    ]);
    let token = server.access("alice", "secret");
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    for n in 1..=3 {
        ws.send(&simple(n));
    }
    server.wait_for("3 events stored", || {
        (server.events(None).len() == 3).then_some(())
    });
    // An ack would be written right after storing, so it would come before
    // any ping sent after storage: read up to the first such ping.
    let pings_at_storage = server.stat("ws_pings_sent");
    let mut pings = 0;
    loop {
        match ws.next() {
            Frame::Json(v) if v["type"] == "ping" => {
                pings += 1;
                if pings > pings_at_storage {
                    break;
                }
            }
            other => panic!("legacy mode sent {other:?}"),
        }
    }
    assert_eq!(server.stat("ws_acks_sent"), 0);
    assert_eq!(server.stat("ws_frames_received"), 3);
}

#[test]
fn dedupe_spans_websocket_and_batch_and_counts_deliveries() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = server.access("alice", "secret");
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    ws.send(&simple(1));
    assert_eq!(ws.json()["status"], "accepted");
    let (status, body) = server.batch_gzip(&token, &json!({"events": [simple(1), simple(2)]}));
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["status"], "duplicate");
    assert_eq!(body["results"][1]["status"], "success");
    ws.send(&simple(2));
    assert_eq!(ws.json()["status"], "duplicate");
    let events = server.events(Some(PROJECT_A));
    assert_eq!(events.len(), 2, "each event stored exactly once");
    assert_eq!(events[0]["deliveries"], 2);
    assert_eq!(events[0]["received_via"], "ws");
    assert_eq!(events[1]["deliveries"], 2);
    assert_eq!(events[1]["received_via"], "batch");
}

#[test]
fn websocket_without_a_token_is_refused() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    match server.ws_with_token("") {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}
