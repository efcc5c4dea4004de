//! The materialised dashboard view: projects by `project_uuid`, their
//! features, and each work package's current lane.
//!
//! The lane of a WP is the `to_lane` of its `WPStatusChanged` with the
//! greatest `(lamport_clock, node_id)`; a WP known only from `WPCreated` is
//! in `planned`. That is exactly what folding the events in
//! `(lamport_clock, node_id)` order gives ("WPCreated creates the WP in
//! planned, each status change sets the lane"), but as a maximum it does not
//! depend on arrival order, so the view is updated incrementally as events
//! arrive and never needs a re-sort.

use std::collections::BTreeMap;

use serde::Serialize;
use spec_kitty_protocol::envelope::Payload;
use spec_kitty_protocol::EventEnvelope;

/// Key of a WP's feature when a status change names none (legacy payloads)
/// and no WPCreated of this project told us the feature.
pub const NO_FEATURE: &str = "";

#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    pub projects: BTreeMap<String, ProjectView>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProjectView {
    pub project_uuid: String,
    pub project_slug: Option<String>,
    /// The team the project belongs to (the team that claimed it).
    pub team_slug: String,
    pub repo_slug: Option<String>,
    /// Greatest envelope `timestamp` seen (as sent by the client).
    pub last_event_at: Option<String>,
    /// When the server stored the most recent event.
    pub last_received_at: Option<String>,
    pub event_count: u64,
    pub event_counts: BTreeMap<String, u64>,
    pub features: BTreeMap<String, FeatureView>,
    #[serde(skip)]
    slug_clock: (u64, String),
    #[serde(skip)]
    last_event_micros: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FeatureView {
    pub feature_slug: String,
    pub wp_count: Option<u64>,
    pub target_branch: Option<String>,
    pub completed: bool,
    pub work_packages: BTreeMap<String, WpView>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WpView {
    pub wp_id: String,
    pub title: Option<String>,
    /// Canonical wire lane (`in_progress`, never `doing`).
    pub lane: String,
    /// `(lamport_clock, node_id)` of the status change that set `lane`; null when only created.
    pub lamport_clock: Option<u64>,
    pub node_id: Option<String>,
    pub actor: Option<String>,
    pub dependencies: Vec<String>,
}

impl View {
    /// Folds one stored event into the view.
    pub fn apply(&mut self, env: &EventEnvelope, team: &str, received_at: &str) {
        let Some(uuid) = env.project_uuid.clone() else {
            return;
        };
        let p = self
            .projects
            .entry(uuid.clone())
            .or_insert_with(|| ProjectView {
                project_uuid: uuid,
                team_slug: team.to_string(),
                ..ProjectView::default()
            });
        p.event_count += 1;
        *p.event_counts.entry(env.event_type.clone()).or_default() += 1;
        p.last_received_at = Some(received_at.to_string());
        let clock = (env.lamport_clock, env.node_id.clone());
        if env.project_slug.is_some() && clock >= p.slug_clock {
            p.project_slug = env.project_slug.clone();
            if env.repo_slug.is_some() {
                p.repo_slug = env.repo_slug.clone();
            }
            p.slug_clock = clock.clone();
        }
        if let Some(micros) = spec_kitty_protocol::time::parse_micros(&env.timestamp) {
            if p.last_event_at.is_none() || micros > p.last_event_micros {
                p.last_event_micros = micros;
                p.last_event_at = Some(env.timestamp.clone());
            }
        }
        let Ok(payload) = env.typed_payload() else {
            return;
        };
        match payload {
            Payload::WPCreated(c) => {
                let wp = p
                    .feature(&c.feature_slug)
                    .work_packages
                    .entry(c.wp_id.clone())
                    .or_insert_with(|| WpView::new(&c.wp_id));
                wp.title = Some(c.title);
                wp.dependencies = c.dependencies;
            }
            Payload::WPStatusChanged(s) => {
                let feature = match s.feature_slug {
                    Some(f) => f,
                    None => p.feature_of(&s.wp_id),
                };
                let wp = p
                    .feature(&feature)
                    .work_packages
                    .entry(s.wp_id.clone())
                    .or_insert_with(|| WpView::new(&s.wp_id));
                let newer = match (&wp.lamport_clock, &wp.node_id) {
                    (Some(l), Some(n)) => clock > (*l, n.clone()),
                    _ => true,
                };
                if newer {
                    wp.lane = s.to_lane.as_wire().to_string();
                    wp.lamport_clock = Some(clock.0);
                    wp.node_id = Some(clock.1);
                    wp.actor = Some(s.actor);
                }
            }
            Payload::FeatureCreated(f) => {
                let feat = p.feature(&f.feature_slug);
                feat.wp_count = Some(f.wp_count);
                feat.target_branch = Some(f.target_branch);
            }
            Payload::FeatureCompleted(f) => p.feature(&f.feature_slug).completed = true,
            _ => {}
        }
    }
}

impl ProjectView {
    fn feature(&mut self, slug: &str) -> &mut FeatureView {
        self.features
            .entry(slug.to_string())
            .or_insert_with(|| FeatureView {
                feature_slug: slug.to_string(),
                ..FeatureView::default()
            })
    }

    /// The feature that already holds `wp_id`, for status changes that name
    /// no feature; [`NO_FEATURE`] when none or ambiguous.
    fn feature_of(&self, wp_id: &str) -> String {
        let mut hits = self
            .features
            .values()
            .filter(|f| f.feature_slug != NO_FEATURE && f.work_packages.contains_key(wp_id));
        match (hits.next(), hits.next()) {
            (Some(f), None) => f.feature_slug.clone(),
            _ => NO_FEATURE.to_string(),
        }
    }
}

impl WpView {
    fn new(wp_id: &str) -> WpView {
        WpView {
            wp_id: wp_id.to_string(),
            lane: "planned".to_string(),
            ..WpView::default()
        }
    }
}

/// Projects sorted by slug then uuid, optionally filtered.
pub fn sorted_projects<'a>(
    view: &'a View,
    team: Option<&str>,
    uuid: Option<&str>,
) -> Vec<&'a ProjectView> {
    let mut v: Vec<&ProjectView> = view
        .projects
        .values()
        .filter(|p| team.is_none_or(|t| p.team_slug == t))
        .filter(|p| uuid.is_none_or(|u| p.project_uuid == u))
        .collect();
    v.sort_by(|a, b| {
        (a.project_slug.as_deref(), &a.project_uuid)
            .cmp(&(b.project_slug.as_deref(), &b.project_uuid))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(lamport: u64, node: &str, to: &str) -> EventEnvelope {
        EventEnvelope::from_value(json!({"event_id":"01JMBY7K8N3QRVX2DPFG5HWT4E","event_type":"WPStatusChanged",
            "aggregate_id":"WP01","aggregate_type":"WorkPackage",
            "payload":{"wp_id":"WP01","from_lane":"planned","to_lane":to,"feature_slug":"001-a"},
            "timestamp":"2026-02-12T12:00:00+00:00","node_id":node,"lamport_clock":lamport,
            "causation_id":null,"team_slug":"t","project_uuid":"550e8400-e29b-41d4-a716-446655440000",
            "project_slug":"p"}))
        .unwrap()
    }

    #[test]
    fn lane_is_the_greatest_clock_whatever_the_arrival_order() {
        let events = [
            ev(3, "aaaaaaaaaaaa", "for_review"),
            ev(5, "aaaaaaaaaaaa", "done"),
            ev(5, "bbbbbbbbbbbb", "blocked"),
            ev(4, "ffffffffffff", "in_progress"),
        ];
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let mut v = View::default();
            for i in order {
                v.apply(&events[i], "t", "now");
            }
            let p = &v.projects["550e8400-e29b-41d4-a716-446655440000"];
            assert_eq!(p.features["001-a"].work_packages["WP01"].lane, "blocked");
            assert_eq!(p.event_count, 4);
        }
    }
}
