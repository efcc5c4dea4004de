//! The event envelope: one flat JSON object per state change (CONTRACT.md).
//!
//! Two needs pull in opposite directions. Envelopes must travel *untouched*
//! — events adopted from the Python queue, unknown event types, extra keys —
//! so [`EventEnvelope`] keeps the payload as raw JSON and carries unknown
//! top-level keys in `extra`. And every envelope we mint must be exactly
//! right, so [`Payload`] gives the eight known payloads as typed structs,
//! [`EventEnvelope::build`] fills the generated fields, and
//! [`EventEnvelope::validate`] checks every rule, naming the field it broke.
//!
//! Lamport values are stamped by the daemon; an envelope built by the CLI
//! carries `lamport_clock: 0` ("not yet stamped") until then.
//!
//! The rest of the contract's vocabulary lives beside it: [`crate::lane`]
//! (lanes and their names), [`crate::payload`] (the typed payloads) and
//! [`crate::ids`] (id and slug rules), and the error all of them return
//! ([`crate::envelope_error`]). They are re-exported here, so
//! `envelope::Lane` and friends keep working; none of them imports this
//! module back.

pub use crate::envelope_error::EnvelopeError;
pub use crate::ids::{is_feature_slug, is_ulid, is_uuid, is_wp_id};
pub use crate::lane::Lane;
pub use crate::payload::{
    DependencyResolved, ErrorLogged, FeatureCompleted, FeatureCreated, HistoryAdded, Payload,
    WpAssigned, WpCreated, WpStatusChanged, KNOWN_EVENT_TYPES,
};

use crate::envelope_error::field_err;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One event, exactly as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: String,
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_type: String,
    pub payload: Value,
    pub node_id: String,
    /// `0` until the daemon stamps it; `>= 1` on the wire.
    pub lamport_clock: u64,
    pub causation_id: Option<String>,
    pub timestamp: String,
    pub team_slug: String,
    pub project_uuid: Option<String>,
    pub project_slug: Option<String>,
    #[serde(default)]
    pub git_branch: Option<String>,
    #[serde(default)]
    pub head_commit_sha: Option<String>,
    #[serde(default)]
    pub repo_slug: Option<String>,
    /// Top-level keys this version does not know, carried through untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the daemon and server need to know of an envelope without trusting it.
const FIELD_KINDS: [(&str, Kind); 15] = [
    ("event_id", Kind::Str),
    ("event_type", Kind::Str),
    ("aggregate_id", Kind::Str),
    ("aggregate_type", Kind::Str),
    ("payload", Kind::Object),
    ("node_id", Kind::Str),
    ("lamport_clock", Kind::UInt),
    ("causation_id", Kind::OptStr),
    ("timestamp", Kind::Str),
    ("team_slug", Kind::Str),
    ("project_uuid", Kind::OptStr),
    ("project_slug", Kind::OptStr),
    ("git_branch", Kind::OptStrMissingOk),
    ("head_commit_sha", Kind::OptStrMissingOk),
    ("repo_slug", Kind::OptStrMissingOk),
];

#[derive(Clone, Copy)]
enum Kind {
    Str,
    OptStr,
    OptStrMissingOk,
    UInt,
    Object,
}

impl EventEnvelope {
    /// Parses one envelope from JSON text, naming the first field whose
    /// presence or type is wrong. Does not check the value rules; call
    /// [`validate`](Self::validate) for that.
    pub fn from_json(text: &str) -> Result<EventEnvelope, EnvelopeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// As [`from_json`](Self::from_json), from an already parsed value.
    pub fn from_value(value: Value) -> Result<EventEnvelope, EnvelopeError> {
        let Value::Object(obj) = &value else {
            return Err(field_err("(envelope)", "must be a JSON object"));
        };
        for (name, kind) in FIELD_KINDS {
            let v = obj.get(name);
            let ok = match (kind, v) {
                (Kind::Str, Some(Value::String(_))) => true,
                (Kind::OptStr | Kind::OptStrMissingOk, Some(Value::String(_) | Value::Null)) => {
                    true
                }
                (Kind::OptStrMissingOk, None) => true,
                (Kind::UInt, Some(Value::Number(n))) => n.is_u64(),
                (Kind::Object, Some(Value::Object(_))) => true,
                _ => false,
            };
            if !ok {
                let want = match kind {
                    Kind::Str => "a string",
                    Kind::OptStr | Kind::OptStrMissingOk => "a string or null",
                    Kind::UInt => "a non-negative integer",
                    Kind::Object => "a JSON object",
                };
                let rule = if v.is_none() {
                    format!("is required ({want})")
                } else {
                    format!("must be {want}")
                };
                return Err(field_err(name, rule));
            }
        }
        serde_json::from_value(value).map_err(|e| EnvelopeError::Json(e.to_string()))
    }

    /// Compact JSON text, the form stored and sent.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serialises")
    }

    /// Builds a new, not yet stamped envelope for `payload`: a fresh ULID
    /// `event_id`, the current UTC timestamp, aggregate id and type derived
    /// from the payload, and the identity in `origin`. The result has passed
    /// [`validate_unstamped`](Self::validate_unstamped).
    pub fn build(
        payload: &Payload,
        origin: &Origin,
        causation_id: Option<String>,
    ) -> Result<EventEnvelope, EnvelopeError> {
        let (aggregate_id, aggregate_type) = payload.aggregate();
        let env = EventEnvelope {
            event_id: crate::identity::new_ulid(),
            event_type: payload.event_type().to_string(),
            aggregate_id,
            aggregate_type: aggregate_type.to_string(),
            payload: payload.to_value(),
            node_id: origin.node_id.clone(),
            lamport_clock: 0,
            causation_id,
            timestamp: crate::time::now_utc(),
            team_slug: origin.team_slug.clone(),
            project_uuid: origin.project_uuid.clone(),
            project_slug: origin.project_slug.clone(),
            git_branch: origin.git_branch.clone(),
            head_commit_sha: origin.head_commit_sha.clone(),
            repo_slug: origin.repo_slug.clone(),
            extra: Map::new(),
        };
        env.validate_unstamped()?;
        Ok(env)
    }

    /// Every rule of the contract, for an envelope ready for the wire
    /// (`lamport_clock >= 1`).
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.lamport_clock < 1 {
            return Err(field_err("lamport_clock", "must be >= 1"));
        }
        self.validate_unstamped()
    }

    /// Every rule except the Lamport value, which the daemon stamps later.
    pub fn validate_unstamped(&self) -> Result<(), EnvelopeError> {
        if !is_ulid(&self.event_id) {
            return Err(field_err(
                "event_id",
                "must be a ULID: 26 characters of Crockford base32, upper case",
            ));
        }
        if self.event_type.trim().is_empty() {
            return Err(field_err("event_type", "must not be empty"));
        }
        if self.aggregate_id.is_empty() {
            return Err(field_err("aggregate_id", "must not be empty"));
        }
        if !crate::identity::is_node_id(&self.node_id) {
            return Err(field_err("node_id", "must be 12 lowercase hex characters"));
        }
        if let Some(c) = &self.causation_id {
            if !is_ulid(c) {
                return Err(field_err("causation_id", "must be a ULID or null"));
            }
        }
        if crate::time::parse_micros(&self.timestamp).is_none() {
            return Err(field_err("timestamp", "must be an ISO 8601 UTC date-time with offset, e.g. 2026-02-07T08:34:22.123456+00:00"));
        }
        if self.team_slug.is_empty() {
            return Err(field_err(
                "team_slug",
                "must not be empty (\"local\" when not logged in)",
            ));
        }
        if let Some(u) = &self.project_uuid {
            if !is_uuid(u) {
                return Err(field_err(
                    "project_uuid",
                    "must be a UUID (8-4-4-4-12 hex) or null",
                ));
            }
        }
        if let Some(sha) = &self.head_commit_sha {
            if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(field_err(
                    "head_commit_sha",
                    "must be 40 hex characters or null",
                ));
            }
        }
        if KNOWN_EVENT_TYPES.contains(&self.event_type.as_str()) {
            let payload = self.typed_payload()?;
            let (_, want_type) = payload.aggregate();
            if self.aggregate_type != want_type {
                return Err(field_err(
                    "aggregate_type",
                    format!("must be {want_type} for {}", self.event_type),
                ));
            }
        } else if !matches!(
            self.aggregate_type.as_str(),
            "WorkPackage" | "Feature" | "MissionDossier"
        ) {
            // 2.1.3's emitter sends its MissionDossier* events (one per
            // feature artifact) with their own aggregate type; it accepts
            // exactly these three.
            return Err(field_err(
                "aggregate_type",
                "must be WorkPackage, Feature or MissionDossier",
            ));
        }
        Ok(())
    }

    /// The payload as its typed form; `Payload::Unknown` for event types this
    /// version does not know.
    pub fn typed_payload(&self) -> Result<Payload, EnvelopeError> {
        Payload::parse(&self.event_type, &self.payload)
    }
}

/// What the CLI knows of where an event comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub node_id: String,
    pub team_slug: String,
    pub project_uuid: Option<String>,
    pub project_slug: Option<String>,
    pub git_branch: Option<String>,
    pub head_commit_sha: Option<String>,
    pub repo_slug: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            node_id: "a1b2c3d4e5f6".into(),
            team_slug: "local".into(),
            project_uuid: Some("550e8400-e29b-41d4-a716-446655440000".into()),
            project_slug: Some("demo".into()),
            ..Origin::default()
        }
    }

    fn status(from: Lane, to: Lane) -> Payload {
        Payload::WPStatusChanged(WpStatusChanged {
            wp_id: "WP01".into(),
            from_lane: Some(from),
            to_lane: to,
            actor: "user".into(),
            feature_slug: Some("001-demo".into()),
            policy_metadata: None,
            force: None,
            reason: None,
        })
    }

    #[test]
    fn built_envelope_has_exact_generated_shapes() {
        let env = EventEnvelope::build(&status(Lane::Planned, Lane::InProgress), &origin(), None)
            .unwrap();
        assert!(is_ulid(&env.event_id));
        assert_eq!(env.aggregate_id, "WP01");
        assert_eq!(env.aggregate_type, "WorkPackage");
        assert_eq!(env.lamport_clock, 0);
        assert_eq!(
            env.payload["to_lane"], "in_progress",
            "doing goes on the wire as in_progress"
        );
        assert!(env.payload.get("policy_metadata").unwrap().is_null());
        assert!(
            env.validate().is_err(),
            "unstamped envelope is not wire-ready"
        );
        let mut stamped = env.clone();
        stamped.lamport_clock = 1;
        stamped.validate().unwrap();
    }

    #[test]
    fn errors_name_field_and_rule() {
        let mut env =
            EventEnvelope::build(&status(Lane::Planned, Lane::Done), &origin(), None).unwrap();
        env.payload["to_lane"] = "in_review".into();
        let err = env.validate_unstamped().unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::Field {
                field: "payload.to_lane".into(),
                rule: "'in_review' is not a valid Lane (planned, claimed, in_progress, for_review, approved, done, blocked, canceled; 'doing' means in_progress)".into()
            }
        );
        let bad = r#"{"event_id": 5}"#;
        assert_eq!(
            EventEnvelope::from_json(bad).unwrap_err().to_string(),
            "field `event_id`: must be a string"
        );
    }

    #[test]
    fn unknown_types_pass_through() {
        let text = r#"{"event_id":"01JMBY7K8N3QRVX2DPFG5HWT4E","event_type":"MissionStarted","aggregate_id":"m1","aggregate_type":"Feature","payload":{"x":[1,{"y":null}]},"node_id":"a1b2c3d4e5f6","lamport_clock":3,"causation_id":null,"timestamp":"2026-02-12T10:00:00+00:00","team_slug":"t","project_uuid":null,"project_slug":null,"git_branch":null,"head_commit_sha":null,"repo_slug":null,"correlation_id":"abc"}"#;
        let env = EventEnvelope::from_json(text).unwrap();
        env.validate().unwrap();
        assert_eq!(env.extra["correlation_id"], "abc");
        let a: Value = serde_json::from_str(text).unwrap();
        let b: Value = serde_json::from_str(&env.to_json()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_mission_dossier_event_of_2_1_3_is_valid_and_other_aggregates_are_not() {
        // As 2.1.3 queues it after `agent feature create-feature`.
        let text = r#"{"event_id":"01M8MB15KW5XDCJGF7FEXBWN4E","event_type":"MissionDossierArtifactIndexed","aggregate_id":"001-demo-feature:input.spec.main","aggregate_type":"MissionDossier","payload":{"feature_slug":"001-demo-feature","artifact_key":"input.spec.main","wp_id":null},"node_id":"b805cd5cee74","lamport_clock":8,"causation_id":null,"timestamp":"2026-11-29T19:03:11.228747+00:00","team_slug":"team-a","project_uuid":"e9d2e312-bcba-491f-a473-863e9fea0134","project_slug":"proj","git_branch":"main","head_commit_sha":"b74b36bf890aff206009fc69596f04e480706033","repo_slug":null}"#;
        EventEnvelope::from_json(text).unwrap().validate().unwrap();
        let other = text.replace("\"MissionDossier\"", "\"Mission\"");
        let err = EventEnvelope::from_json(&other)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("aggregate_type"), "{err}");
    }
}
