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
