//! The materialised view and the dashboard: two projects, events arriving
//! out of Lamport order, lanes reduced by (lamport_clock, node_id).

use crate::common;

use common::{assert_batch_stored, wp_created, wp_status, Server, PROJECT_A, PROJECT_B};
use serde_json::{json, Value};

fn lane(projects: &Value, uuid: &str, feature: &str, wp: &str) -> String {
    let p = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project_uuid"] == uuid)
        .unwrap_or_else(|| panic!("project {uuid} missing in {projects}"));
    let f = p["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature_slug"] == feature)
        .unwrap_or_else(|| panic!("feature {feature} missing in {p}"));
    f["work_packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["wp_id"] == wp)
        .unwrap_or_else(|| panic!("{wp} missing in {f}"))["lane"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_projects_lanes_reduced_in_lamport_order_whatever_the_arrival_order() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = server.access("alice", "secret");
    let n1 = "aaaaaaaaaaaa";
    let n2 = "bbbbbbbbbbbb";
    // Sent newest first: arrival order must not matter.
    let batch = json!({"events": [
        wp_status(6, (PROJECT_A, "alpha"), "001-a", "WP01", "done", 6, n1),
        wp_status(5, (PROJECT_A, "alpha"), "001-a", "WP01", "for_review", 5, n1),
        wp_status(4, (PROJECT_A, "alpha"), "001-a", "WP01", "doing", 4, n1),
        wp_created(1, PROJECT_A, "alpha", "001-a", "WP01", 1),
        wp_created(2, PROJECT_A, "alpha", "001-a", "WP02", 2),
        // Project B: equal Lamport values, node_id breaks the tie (n2 > n1).
        wp_status(12, (PROJECT_B, "beta"), "001-b", "WP01", "blocked", 7, n2),
        wp_status(11, (PROJECT_B, "beta"), "001-b", "WP01", "in_progress", 7, n1),
        wp_created(10, PROJECT_B, "beta", "001-b", "WP01", 3),
    ]});
    let (status, body) = server.batch_gzip(&token, &batch);
    assert_batch_stored(status, &body);
    let (status, projects) = server.get("/api/v1/projects/");
    assert_eq!(status, 200);
    assert_eq!(projects["count"], 2);
    assert_eq!(lane(&projects, PROJECT_A, "001-a", "WP01"), "done");
    assert_eq!(
        lane(&projects, PROJECT_A, "001-a", "WP02"),
        "planned",
        "created only"
    );
    assert_eq!(lane(&projects, PROJECT_B, "001-b", "WP01"), "blocked");
    let a = &projects["projects"][0];
    assert_eq!(a["project_slug"], "alpha", "sorted by slug");
    assert_eq!(a["team_slug"], "team-a");
    assert_eq!(a["event_count"], 5);
    assert_eq!(
        a["event_counts"],
        json!({"WPCreated": 2, "WPStatusChanged": 3})
    );
    assert_eq!(a["last_event_at"], "2026-02-12T10:00:00.000000+00:00");
    assert_eq!(
        a["features"][0]["work_packages"][0]["title"],
        "Title of WP01"
    );
    assert_eq!(projects["projects"][1]["project_slug"], "beta");

    // A late event with an older clock does not move the lane back.
    let late =
        json!({"events": [wp_status(3, (PROJECT_A, "alpha"), "001-a", "WP01", "planned", 3, n1)]});
    assert_eq!(server.batch_gzip(&token, &late).0, 200);
    let (_, projects) = server.get("/api/v1/projects/");
    assert_eq!(lane(&projects, PROJECT_A, "001-a", "WP01"), "done");
    // Filter by project.
    let (_, only_b) = server.get(&format!("/api/v1/projects/?project_uuid={PROJECT_B}"));
    assert_eq!(only_b["count"], 1);

    // The dashboard shows both projects with their lanes, server-rendered.
    let html = common::agent()
        .get(&server.url("/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(html.contains(&format!("data-project-uuid=\"{PROJECT_A}\"")));
    assert!(html.contains("data-project-slug=\"beta\""));
    assert!(html.contains("<div class=\"wp\" data-wp-id=\"WP01\" data-lane=\"done\">"));
    assert!(html.contains("<div class=\"wp\" data-wp-id=\"WP01\" data-lane=\"blocked\">"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    let fragment = common::agent()
        .get(&server.url("/dashboard/fragment"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(fragment.contains("data-project-slug=\"alpha\""));
}

#[test]
fn events_listing_filters_by_project_and_pages_by_seq() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = server.access("alice", "secret");
    let batch = json!({"events": [
        wp_created(1, PROJECT_A, "alpha", "001-a", "WP01", 1),
        wp_created(2, PROJECT_B, "beta", "001-b", "WP01", 2),
        wp_created(3, PROJECT_A, "alpha", "001-a", "WP02", 3),
    ]});
    assert_eq!(server.batch_gzip(&token, &batch).0, 200);
    let a = server.events(Some(PROJECT_A));
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["envelope"]["payload"]["wp_id"], "WP01");
    assert_eq!(a[0]["team_slug"], "team-a");
    let (_, page) = server.get(&format!(
        "/api/v1/events/?after_seq={}&limit=1",
        a[0]["seq"]
    ));
    assert_eq!(page["count"], 1);
    assert_eq!(page["events"][0]["project_uuid"], PROJECT_B);
}
