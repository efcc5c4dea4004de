//! The batch endpoint: gzip and plain bodies, the 1000-event cap,
//! per-event results, batch-level 400s.

use crate::common;

use common::{simple, Server, PROJECT_A};
use serde_json::{json, Value};

fn server() -> (Server, String) {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = server.access("alice", "secret");
    (server, token)
}

#[test]
fn gzip_and_plain_bodies_are_both_accepted() {
    let (server, token) = server();
    let (status, body) = server.batch_gzip(&token, &json!({"events": [simple(1), simple(2)]}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"][1],
        json!({"event_id": simple(2)["event_id"], "status": "success"})
    );
    let (status, body) = server.batch_plain(&token, &json!({"events": [simple(3)]}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "success");
    assert_eq!(server.events(Some(PROJECT_A)).len(), 3);
    assert!(server
        .events(Some(PROJECT_A))
        .iter()
        .all(|e| e["received_via"] == "batch"));
}

#[test]
fn a_thousand_events_pass_and_one_more_is_a_400_with_details() {
    let (server, token) = server();
    let full: Vec<Value> = (1..=1000).map(simple).collect();
    let (status, body) = server.batch_gzip(&token, &json!({"events": full}));
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|r| r["status"] == "success"));
    let over: Vec<Value> = (2001..=3001).map(simple).collect();
    let (status, body) = server.batch_gzip(&token, &json!({"events": over}));
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Batch too large");
    assert!(body["details"].as_str().unwrap().contains("1001"), "{body}");
    assert_eq!(
        server.stat("events_stored"),
        1000,
        "nothing of the refused batch stored"
    );
}

#[test]
fn per_event_results_mix_success_duplicate_and_rejected_naming_the_field() {
    let (server, token) = server();
    let mut missing_lane = simple(2);
    missing_lane["payload"]
        .as_object_mut()
        .unwrap()
        .remove("to_lane");
    let mut bad_node = simple(3);
    bad_node["node_id"] = json!("XYZ");
    let mut no_project = simple(4);
    no_project["project_uuid"] = Value::Null;
    let events = json!({"events": [simple(1), simple(1), missing_lane, bad_node, no_project, "not an object"]});
    let (status, body) = server.batch_gzip(&token, &events);
    assert_eq!(status, 200, "{body}");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 6);
    assert_eq!(r[0]["status"], "success");
    assert_eq!(
        r[1]["status"], "duplicate",
        "same event_id twice in one batch"
    );
    assert_eq!(r[2]["status"], "rejected");
    assert_eq!(
        r[2]["error"],
        "Invalid payload for WPStatusChanged: missing required field 'to_lane'"
    );
    assert_eq!(r[3]["status"], "rejected");
    assert!(
        r[3]["error"].as_str().unwrap().contains("'node_id'"),
        "{}",
        r[3]
    );
    assert!(r[4]["error"]
        .as_str()
        .unwrap()
        .contains("missing required field 'project_uuid'"));
    assert_eq!(r[5]["event_id"], Value::Null);
    assert_eq!(r[5]["status"], "rejected");
    assert_eq!(server.events(None).len(), 1);
    assert_eq!(server.stat("batch_events_rejected"), 4);
}

#[test]
fn malformed_bodies_are_400_with_error_and_details() {
    let (server, token) = server();
    for body in [json!({"evnts": []}), json!([1, 2])] {
        let (status, reply) = server.batch_plain(&token, &body);
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"], "Invalid request body");
        assert!(reply["details"].as_str().unwrap().contains("'events'"));
    }
    let resp = common::agent()
        .post(&server.url("/api/v1/events/batch/"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Encoding", "gzip")
        .send(&b"this is not gzip"[..])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400, "undecodable gzip");
    let (status, body) = server.batch_gzip(&token, &json!({"events": []}));
    assert_eq!((status, body), (200, json!({"results": []})));
}
