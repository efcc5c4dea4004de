//! The five `batch-api-v2` fixtures are tests of this server: each request
//! must get exactly the expected status and body. Fixtures are read in place
//! from `../shared`, never copied.

use crate::common;

use common::{fixture, Server, PROJECT_A};
use serde_json::Value;

fn check(server: &Server, token: &str, name: &str) {
    let f = fixture(name);
    let (status, body) = server.batch_gzip(token, &f["request"]);
    assert_eq!(
        status,
        f["expected_response"]["status_code"].as_u64().unwrap() as u16,
        "{name}: status (body {body})"
    );
    assert_eq!(body, f["expected_response"]["body"], "{name}: body");
}

#[test]
fn fixtures_01_to_04_get_exactly_the_expected_responses_in_order() {
    let server = Server::start(&["--user", "pri:pw:priivacy"]);
    let token = server.access("pri", "pw");
    check(&server, &token, "fixture_01_single_wp_status_changed.json");
    check(&server, &token, "fixture_02_mixed_batch.json");
    // 03 re-sends 01's event: a duplicate by event_id.
    check(&server, &token, "fixture_03_duplicate_event.json");
    check(&server, &token, "fixture_04_rejected_event.json");
    // 4 stored (01 + 02's three), 04's rejected event is not; 01's event twice delivered.
    let events = server.events(Some(PROJECT_A));
    assert_eq!(events.len(), 4);
    let first = events
        .iter()
        .find(|e| e["event_id"] == "01JMBY7K8N3QRVX2DPFG5HWT4E")
        .unwrap();
    assert_eq!(first["deliveries"], 2);
    assert!(events
        .iter()
        .all(|e| e["event_id"] != "01JMBYB3C4D5E6F7G8H9J0KABM"));
}

/// Rule for fixture 05: a project belongs to the team that first sent an
/// accepted event for it, or to the team given by `--project TEAM:UUID`.
/// A batch carrying an event for a project owned by another team fails as a
/// whole with 400, one `details` entry per such event, naming the caller's team.
#[test]
fn fixture_05_project_owned_by_another_team_is_a_400_with_details() {
    let server = Server::start(&[
        "--user",
        "pri:pw:priivacy",
        "--project",
        &format!("someone-else:{PROJECT_A}"),
    ]);
    let token = server.access("pri", "pw");
    check(&server, &token, "fixture_05_http_400_error.json");
    assert!(
        server.events(None).is_empty(),
        "nothing stored from a failed batch"
    );
}

#[test]
fn fixture_05_rule_also_holds_for_a_project_first_claimed_by_another_team() {
    let server = Server::start(&["--user", "pri:pw:priivacy", "--user", "eve:pw:other-team"]);
    // other-team sends first and so owns the project.
    let eve = server.access("eve", "pw");
    let f1 = fixture("fixture_01_single_wp_status_changed.json");
    let (status, body) = server.batch_gzip(&eve, &f1["request"]);
    assert_eq!(
        (status, &body["results"][0]["status"]),
        (200, &Value::from("success"))
    );
    let token = server.access("pri", "pw");
    check(&server, &token, "fixture_05_http_400_error.json");
}

#[test]
fn fixture_05_rule_with_a_claim_made_at_runtime() {
    let server = Server::start(&["--user", "pri:pw:priivacy"]);
    let (status, _) = server.post(
        "/__control/projects",
        &serde_json::json!({"project_uuid": PROJECT_A, "team_slug": "someone-else"}),
    );
    assert_eq!(status, 200);
    let token = server.access("pri", "pw");
    check(&server, &token, "fixture_05_http_400_error.json");
    // Handing the project back makes the same batch succeed.
    server.post(
        "/__control/projects",
        &serde_json::json!({"project_uuid": PROJECT_A, "team_slug": "priivacy"}),
    );
    let f = fixture("fixture_05_http_400_error.json");
    let (status, body) = server.batch_gzip(&token, &f["request"]);
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["status"], "success");
}
