//! Sample events for tests and benchmarks (feature `test-support`): one
//! typed builder, so the harness and the benchmarks emit the same event.

use crate::envelope::{EventEnvelope, Lane, Origin, Payload, WpStatusChanged};

/// A valid `WPStatusChanged` (WP01 planned → in_progress) by `actor` in
/// `feature_slug`, from `origin`, with a fresh id, as a CLI builds it.
pub fn lane_change(actor: &str, feature_slug: &str, origin: &Origin) -> EventEnvelope {
    let payload = Payload::WPStatusChanged(WpStatusChanged {
        wp_id: "WP01".into(),
        from_lane: Some(Lane::Planned),
        to_lane: Lane::InProgress,
        actor: actor.into(),
        feature_slug: Some(feature_slug.into()),
        policy_metadata: None,
        force: None,
        reason: None,
    });
    EventEnvelope::build(&payload, origin, None).expect("a valid sample envelope")
}

/// The same event as JSON, as a client sends it before the daemon stamps
/// it (node `000000000000`, Lamport 0), with the caller's `event_id`.
/// Without a project it is held, never sent. Tests edit it field by field
/// (or, as compact text with sorted keys, with `replace`).
pub fn envelope_json(event_id: &str, project: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "event_id": event_id,
        "event_type": "WPStatusChanged",
        "aggregate_id": "WP01",
        "aggregate_type": "WorkPackage",
        "payload": {"wp_id": "WP01", "from_lane": "planned", "to_lane": "in_progress",
                    "actor": "user", "feature_slug": "001-demo", "policy_metadata": null},
        "node_id": "000000000000",
        "lamport_clock": 0,
        "causation_id": null,
        "timestamp": "2026-02-07T08:34:22.123456+00:00",
        "team_slug": "local",
        "project_uuid": project,
        "project_slug": project.map(|_| "demo"),
        "git_branch": "main",
        "head_commit_sha": null,
        "repo_slug": null
    })
}
