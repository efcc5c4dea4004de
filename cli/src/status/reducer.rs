//! Replaying the log into the current state of every work package: the
//! snapshot that `status.json` holds (2.1.3's `status/reducer.py`).
//!
//! The rules are 2.1.3's so both CLIs derive the same lanes from the same
//! log: the first line of an `event_id` wins; events apply in `(at,
//! event_id)` order; of two events with the same `at`, a reviewer's
//! rollback (for_review → in_progress with a review reference) beats a
//! forward move. `status.json` is written as 2.1.3 writes it
//! (`indent=2, sort_keys=True`); only `materialized_at` differs between
//! two writes of the same log.

use super::event::StatusEvent;
use crate::pyjson::{self, Style};
use serde_json::{json, Map, Value};
use spec_kitty_protocol::Lane;
use std::collections::{BTreeMap, HashSet};

/// The file name of the snapshot inside `kitty-specs/<feature>/`.
pub const SNAPSHOT_FILE: &str = "status.json";

/// One work package's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WpState {
    pub lane: Lane,
    pub actor: String,
    pub last_transition_at: String,
    pub last_event_id: String,
    /// How many forced moves it has had.
    pub force_count: u64,
}

/// The reduced state of a feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Empty when the log is.
    pub feature_slug: String,
    pub event_count: usize,
    pub last_event_id: Option<String>,
    pub work_packages: BTreeMap<String, WpState>,
}

impl Snapshot {
    /// How many work packages are in each of the eight lanes.
    pub fn summary(&self) -> BTreeMap<Lane, usize> {
        let mut counts: BTreeMap<Lane, usize> = Lane::ALL.iter().map(|l| (*l, 0)).collect();
        for wp in self.work_packages.values() {
            *counts.entry(wp.lane).or_default() += 1;
        }
        counts
    }

    /// The text of `status.json`, trailing newline included.
    pub fn to_json(&self, materialized_at: &str) -> String {
        let wps: Map<String, Value> = self
            .work_packages
            .iter()
            .map(|(id, s)| {
                (
                    id.clone(),
                    json!({
                        "lane": s.lane.as_wire(),
                        "actor": s.actor,
                        "last_transition_at": s.last_transition_at,
                        "last_event_id": s.last_event_id,
                        "force_count": s.force_count,
                    }),
                )
            })
            .collect();
        let summary: Map<String, Value> = self
            .summary()
            .into_iter()
            .map(|(l, n)| (l.as_wire().to_string(), json!(n)))
            .collect();
        let v = json!({
            "feature_slug": self.feature_slug,
            "materialized_at": materialized_at,
            "event_count": self.event_count,
            "last_event_id": self.last_event_id,
            "work_packages": wps,
            "summary": summary,
        });
        pyjson::dumps(&v, Style::Pretty) + "\n"
    }
}

fn is_rollback(e: &StatusEvent) -> bool {
    e.from_lane == Lane::ForReview && e.to_lane == Lane::InProgress && e.review_ref.is_some()
}

/// Reduces events (in any order, duplicates allowed) to the snapshot.
pub fn reduce<'a>(events: impl IntoIterator<Item = &'a StatusEvent>) -> Snapshot {
    let mut seen = HashSet::new();
    let mut unique: Vec<&StatusEvent> = events
        .into_iter()
        .filter(|e| seen.insert(e.event_id.as_str()))
        .collect();
    unique.sort_by(|a, b| (&a.at, &a.event_id).cmp(&(&b.at, &b.event_id)));
    let by_id: std::collections::HashMap<&str, &StatusEvent> =
        unique.iter().map(|e| (e.event_id.as_str(), *e)).collect();
    let mut wps: BTreeMap<String, WpState> = BTreeMap::new();
    for e in &unique {
        let current = wps.get(&e.wp_id);
        let apply = match current {
            None => true,
            Some(cur) if cur.last_transition_at == e.at => {
                let setter_is_rollback = by_id
                    .get(cur.last_event_id.as_str())
                    .is_some_and(|s| is_rollback(s));
                // A forward move never beats a concurrent rollback.
                is_rollback(e) || !setter_is_rollback
            }
            Some(_) => true,
        };
        if apply {
            let prior_forces = current.map_or(0, |c| c.force_count);
            wps.insert(
                e.wp_id.clone(),
                WpState {
                    lane: e.to_lane,
                    actor: e.actor.clone(),
                    last_transition_at: e.at.clone(),
                    last_event_id: e.event_id.clone(),
                    force_count: prior_forces + u64::from(e.force),
                },
            );
        }
    }
    Snapshot {
        feature_slug: unique
            .first()
            .map(|e| e.feature_slug.clone())
            .unwrap_or_default(),
        event_count: unique.len(),
        last_event_id: unique.last().map(|e| e.event_id.clone()),
        work_packages: wps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, wp: &str, from: Lane, to: Lane, at: &str) -> StatusEvent {
        StatusEvent::sample(id, wp, from, to, at)
    }

    #[test]
    fn order_is_by_time_then_id_and_duplicates_count_once() {
        let a = ev(
            "01A",
            "WP01",
            Lane::Planned,
            Lane::Claimed,
            "2026-01-01T00:00:01+00:00",
        );
        let mut b = ev(
            "01B",
            "WP01",
            Lane::Claimed,
            Lane::InProgress,
            "2026-01-01T00:00:02+00:00",
        );
        b.force = true;
        let s = reduce([&b, &a, &b]);
        assert_eq!(s.event_count, 2);
        assert_eq!(s.last_event_id.as_deref(), Some("01B"));
        assert_eq!(s.work_packages["WP01"].lane, Lane::InProgress);
        assert_eq!(s.work_packages["WP01"].force_count, 1);
        assert_eq!(s.summary()[&Lane::InProgress], 1);
    }

    #[test]
    fn a_concurrent_rollback_beats_a_forward_move_whatever_the_ids() {
        let at = "2026-01-01T00:00:05+00:00";
        let mut back = ev("01Z", "WP01", Lane::ForReview, Lane::InProgress, at);
        back.review_ref = Some("feedback".into());
        let fwd = ev("01A", "WP01", Lane::ForReview, Lane::Done, at);
        assert_eq!(
            reduce([&fwd, &back]).work_packages["WP01"].lane,
            Lane::InProgress
        );
        let mut back2 = back.clone();
        back2.event_id = "01A".into();
        let mut fwd2 = fwd.clone();
        fwd2.event_id = "01Z".into();
        assert_eq!(
            reduce([&fwd2, &back2]).work_packages["WP01"].lane,
            Lane::InProgress
        );
    }

    #[test]
    fn status_json_is_2_1_3s_layout() {
        let s = reduce([&ev("01A", "WP01", Lane::Planned, Lane::Claimed, "T1")]);
        let text = s.to_json("NOW");
        assert!(text.starts_with("{\n  \"event_count\": 1,\n  \"feature_slug\": \"001-demo\",\n  \"last_event_id\": \"01A\",\n  \"materialized_at\": \"NOW\",\n  \"summary\": {\n    \"approved\": 0,\n    \"blocked\": 0,"), "{text}");
        assert!(text.ends_with("\"force_count\": 0,\n      \"lane\": \"claimed\",\n      \"last_event_id\": \"01A\",\n      \"last_transition_at\": \"T1\"\n    }\n  }\n}\n"), "{text}");
        let empty = reduce([]);
        assert_eq!(empty.feature_slug, "");
        assert!(empty.to_json("NOW").contains("\"last_event_id\": null"));
    }
}
