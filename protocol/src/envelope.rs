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

/// Why an envelope or payload was refused: the field (dotted path) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("field `{field}`: {rule}")]
    Field { field: String, rule: String },
}

fn field_err(field: &str, rule: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Field {
        field: field.to_string(),
        rule: rule.into(),
    }
}

/// The event types of the contract; anything else is carried through as-is.
pub const KNOWN_EVENT_TYPES: [&str; 8] = [
    "WPStatusChanged",
    "WPCreated",
    "WPAssigned",
    "FeatureCreated",
    "FeatureCompleted",
    "HistoryAdded",
    "ErrorLogged",
    "DependencyResolved",
];

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
        } else if !matches!(self.aggregate_type.as_str(), "WorkPackage" | "Feature") {
            return Err(field_err(
                "aggregate_type",
                "must be WorkPackage or Feature",
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

/// Is `s` a ULID as we write them: 26 chars of Crockford base32, upper case,
/// first char <= '7' (128-bit bound)?
pub fn is_ulid(s: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    s.len() == 26 && s.as_bytes()[0] <= b'7' && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// Is `s` a hyphenated UUID (any version; the contract's are v4)?
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Is `s` a work package id (`WP` and two digits)?
pub fn is_wp_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4 && b.starts_with(b"WP") && b[2].is_ascii_digit() && b[3].is_ascii_digit()
}

/// Is `s` a feature slug (`NNN-lowercase-kebab`)?
pub fn is_feature_slug(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3] == b'-'
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

// ---------------------------------------------------------------------------
// Lanes

/// A work package's lane, as the wire knows it (the canonical set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Planned,
    Claimed,
    InProgress,
    ForReview,
    Done,
    Blocked,
    Canceled,
}

impl Lane {
    pub const ALL: [Lane; 7] = [
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::ForReview,
        Lane::Done,
        Lane::Blocked,
        Lane::Canceled,
    ];

    /// The four lanes a user sees and writes in WP files, in board order.
    pub const USER: [Lane; 4] = [Lane::Planned, Lane::InProgress, Lane::ForReview, Lane::Done];

    /// Parses a wire lane; `doing` is accepted as the alias of `in_progress`.
    pub fn parse(s: &str) -> Result<Lane, EnvelopeError> {
        Ok(match s {
            "planned" => Lane::Planned,
            "claimed" => Lane::Claimed,
            "in_progress" | "doing" => Lane::InProgress,
            "for_review" => Lane::ForReview,
            "done" => Lane::Done,
            "blocked" => Lane::Blocked,
            "canceled" => Lane::Canceled,
            other => {
                return Err(field_err(
                    "lane",
                    format!("'{other}' is not a valid Lane (planned, claimed, in_progress, for_review, done, blocked, canceled; 'doing' means in_progress)"),
                ))
            }
        })
    }

    /// The canonical wire name (`in_progress`, never `doing`).
    pub fn as_wire(self) -> &'static str {
        match self {
            Lane::Planned => "planned",
            Lane::Claimed => "claimed",
            Lane::InProgress => "in_progress",
            Lane::ForReview => "for_review",
            Lane::Done => "done",
            Lane::Blocked => "blocked",
            Lane::Canceled => "canceled",
        }
    }

    /// The name written in WP files and shown to users (`doing` for
    /// `in_progress`; the others keep their wire name).
    pub fn as_user(self) -> &'static str {
        match self {
            Lane::InProgress => "doing",
            other => other.as_wire(),
        }
    }

    /// The four-lane SyncLaneV1 view of the 2.x dashboard.
    pub fn to_sync_v1(self) -> Lane {
        match self {
            Lane::Planned | Lane::Claimed | Lane::Canceled => Lane::Planned,
            Lane::InProgress | Lane::Blocked => Lane::InProgress,
            Lane::ForReview => Lane::ForReview,
            Lane::Done => Lane::Done,
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_wire())
    }
}

impl Serialize for Lane {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

// ---------------------------------------------------------------------------
// Payloads

/// The typed payloads of the contract's eight event types.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    WPStatusChanged(WpStatusChanged),
    WPCreated(WpCreated),
    WPAssigned(WpAssigned),
    FeatureCreated(FeatureCreated),
    FeatureCompleted(FeatureCompleted),
    HistoryAdded(HistoryAdded),
    ErrorLogged(ErrorLogged),
    DependencyResolved(DependencyResolved),
    /// An event type this version does not know: never interpreted.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WpStatusChanged {
    pub wp_id: String,
    /// Optional only when reading (the events library allows omitting it);
    /// every event we build has it.
    pub from_lane: Option<Lane>,
    pub to_lane: Lane,
    pub actor: String,
    pub feature_slug: Option<String>,
    pub policy_metadata: Option<Value>,
    /// Set when a lane-graph rule was overridden; then `reason` is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WpCreated {
    pub wp_id: String,
    pub title: String,
    pub feature_slug: String,
    pub dependencies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WpAssigned {
    pub wp_id: String,
    pub agent_id: String,
    /// `implementation` or `review`.
    pub phase: String,
    pub retry_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureCreated {
    pub feature_slug: String,
    /// Three digits as a string, e.g. `"032"`.
    pub feature_number: String,
    pub target_branch: String,
    pub wp_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureCompleted {
    pub feature_slug: String,
    pub total_wps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryAdded {
    pub wp_id: String,
    /// `note`, `review`, `error` or `comment`.
    pub entry_type: String,
    pub entry_content: String,
    pub author: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorLogged {
    /// `validation`, `runtime`, `network`, `auth` or `unknown`.
    pub error_type: String,
    pub error_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wp_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DependencyResolved {
    pub wp_id: String,
    pub dependency_wp_id: String,
    /// `completed`, `skipped` or `merged`.
    pub resolution_type: String,
}

/// Reads named fields out of a payload object with errors that name them.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn path(name: &str) -> String {
        format!("payload.{name}")
    }
    fn opt_str(&self, name: &str) -> Result<Option<&'a str>, EnvelopeError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(field_err(&Self::path(name), "must be a string")),
        }
    }
    fn str(&self, name: &str) -> Result<&'a str, EnvelopeError> {
        self.opt_str(name)?
            .ok_or_else(|| field_err(&Self::path(name), "missing required field"))
    }
    fn non_empty(&self, name: &str) -> Result<&'a str, EnvelopeError> {
        let s = self.str(name)?;
        if s.trim().is_empty() {
            return Err(field_err(&Self::path(name), "must not be empty"));
        }
        Ok(s)
    }
    fn str_or(&self, name: &str, default: &str) -> Result<String, EnvelopeError> {
        Ok(self.opt_str(name)?.unwrap_or(default).to_string())
    }
    fn wp_id(&self, name: &str) -> Result<String, EnvelopeError> {
        let s = self.str(name)?;
        if !is_wp_id(s) {
            return Err(field_err(
                &Self::path(name),
                format!("'{s}' must match ^WP\\d{{2}}$"),
            ));
        }
        Ok(s.to_string())
    }
    fn one_of(
        &self,
        name: &str,
        allowed: &[&str],
        default: Option<&str>,
    ) -> Result<String, EnvelopeError> {
        let s = match (self.opt_str(name)?, default) {
            (Some(s), _) => s,
            (None, Some(d)) => d,
            (None, None) => return Err(field_err(&Self::path(name), "missing required field")),
        };
        if !allowed.contains(&s) {
            return Err(field_err(
                &Self::path(name),
                format!("'{s}' must be one of {}", allowed.join(", ")),
            ));
        }
        Ok(s.to_string())
    }
    fn uint(&self, name: &str, default: Option<u64>) -> Result<u64, EnvelopeError> {
        match (self.obj.get(name), default) {
            (None | Some(Value::Null), Some(d)) => Ok(d),
            (None, None) => Err(field_err(&Self::path(name), "missing required field")),
            (Some(Value::Number(n)), _) if n.is_u64() => Ok(n.as_u64().unwrap_or_default()),
            _ => Err(field_err(&Self::path(name), "must be an integer >= 0")),
        }
    }
    fn lane(&self, name: &str) -> Result<Option<Lane>, EnvelopeError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => Lane::parse(s).map(Some).map_err(|e| match e {
                EnvelopeError::Field { rule, .. } => field_err(&Self::path(name), rule),
                other => other,
            }),
        }
    }
}

impl Payload {
    /// Parses the payload of an `event_type` (unknown types give `Unknown`).
    pub fn parse(event_type: &str, payload: &Value) -> Result<Payload, EnvelopeError> {
        if !KNOWN_EVENT_TYPES.contains(&event_type) {
            return Ok(Payload::Unknown);
        }
        let Value::Object(obj) = payload else {
            return Err(field_err("payload", "must be a JSON object"));
        };
        let f = Fields { obj };
        Ok(match event_type {
            "WPStatusChanged" => Payload::WPStatusChanged(parse_status_changed(&f)?),
            "WPCreated" => Payload::WPCreated(WpCreated {
                wp_id: f.wp_id("wp_id")?,
                title: f.str("title")?.to_string(),
                feature_slug: f.str("feature_slug")?.to_string(),
                dependencies: match obj.get("dependencies") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|d| match d.as_str() {
                            Some(s) if is_wp_id(s) => Ok(s.to_string()),
                            _ => Err(field_err(
                                "payload.dependencies",
                                "must be a list of WP ids (WPnn)",
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(field_err(
                            "payload.dependencies",
                            "must be a list of WP ids (WPnn)",
                        ))
                    }
                },
            }),
            "WPAssigned" => Payload::WPAssigned(WpAssigned {
                wp_id: f.wp_id("wp_id")?,
                agent_id: f.non_empty("agent_id")?.to_string(),
                phase: f.one_of("phase", &["implementation", "review"], None)?,
                retry_count: f.uint("retry_count", Some(0))?,
            }),
            "FeatureCreated" => {
                let slug = f.str("feature_slug")?;
                if !is_feature_slug(slug) {
                    return Err(field_err(
                        "payload.feature_slug",
                        format!("'{slug}' must match ^\\d{{3}}-[a-z0-9-]+$"),
                    ));
                }
                let number = f.str("feature_number")?;
                if number.len() != 3 || !number.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(field_err(
                        "payload.feature_number",
                        "must be three digits as a string, e.g. \"032\"",
                    ));
                }
                Payload::FeatureCreated(FeatureCreated {
                    feature_slug: slug.to_string(),
                    feature_number: number.to_string(),
                    target_branch: f.str("target_branch")?.to_string(),
                    wp_count: f.uint("wp_count", None)?,
                    created_at: f.opt_str("created_at")?.map(str::to_string),
                })
            }
            "FeatureCompleted" => Payload::FeatureCompleted(FeatureCompleted {
                feature_slug: f.str("feature_slug")?.to_string(),
                total_wps: f.uint("total_wps", None)?,
                completed_at: f.opt_str("completed_at")?.map(str::to_string),
                total_duration: f.opt_str("total_duration")?.map(str::to_string),
            }),
            "HistoryAdded" => Payload::HistoryAdded(HistoryAdded {
                wp_id: f.wp_id("wp_id")?,
                entry_type: f.one_of(
                    "entry_type",
                    &["note", "review", "error", "comment"],
                    None,
                )?,
                entry_content: f.non_empty("entry_content")?.to_string(),
                author: f.str_or("author", "user")?,
            }),
            "ErrorLogged" => Payload::ErrorLogged(ErrorLogged {
                error_type: f.one_of(
                    "error_type",
                    &["validation", "runtime", "network", "auth", "unknown"],
                    None,
                )?,
                error_message: f.str("error_message")?.to_string(),
                wp_id: match f.opt_str("wp_id")? {
                    Some(_) => Some(f.wp_id("wp_id")?),
                    None => None,
                },
                stack_trace: f.opt_str("stack_trace")?.map(str::to_string),
                agent_id: f.opt_str("agent_id")?.map(str::to_string),
            }),
            "DependencyResolved" => Payload::DependencyResolved(DependencyResolved {
                wp_id: f.wp_id("wp_id")?,
                dependency_wp_id: f.wp_id("dependency_wp_id")?,
                resolution_type: f.one_of(
                    "resolution_type",
                    &["completed", "skipped", "merged"],
                    None,
                )?,
            }),
            _ => Payload::Unknown,
        })
    }

    /// The contract's event type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Payload::WPStatusChanged(_) => "WPStatusChanged",
            Payload::WPCreated(_) => "WPCreated",
            Payload::WPAssigned(_) => "WPAssigned",
            Payload::FeatureCreated(_) => "FeatureCreated",
            Payload::FeatureCompleted(_) => "FeatureCompleted",
            Payload::HistoryAdded(_) => "HistoryAdded",
            Payload::ErrorLogged(_) => "ErrorLogged",
            Payload::DependencyResolved(_) => "DependencyResolved",
            Payload::Unknown => "Unknown",
        }
    }

    /// `(aggregate_id, aggregate_type)`: the wp id for work-package events,
    /// the feature slug for feature events, `"error"` for an ErrorLogged
    /// without a wp id (as the Python CLI does).
    pub fn aggregate(&self) -> (String, &'static str) {
        match self {
            Payload::WPStatusChanged(p) => (p.wp_id.clone(), "WorkPackage"),
            Payload::WPCreated(p) => (p.wp_id.clone(), "WorkPackage"),
            Payload::WPAssigned(p) => (p.wp_id.clone(), "WorkPackage"),
            Payload::HistoryAdded(p) => (p.wp_id.clone(), "WorkPackage"),
            Payload::DependencyResolved(p) => (p.wp_id.clone(), "WorkPackage"),
            Payload::FeatureCreated(p) => (p.feature_slug.clone(), "Feature"),
            Payload::FeatureCompleted(p) => (p.feature_slug.clone(), "Feature"),
            Payload::ErrorLogged(p) => match &p.wp_id {
                Some(wp) => (wp.clone(), "WorkPackage"),
                None => ("error".to_string(), "Feature"),
            },
            Payload::Unknown => ("unknown".to_string(), "Feature"),
        }
    }

    /// The payload as the JSON object that goes on the wire.
    pub fn to_value(&self) -> Value {
        let v = match self {
            Payload::WPStatusChanged(p) => serde_json::to_value(p),
            Payload::WPCreated(p) => serde_json::to_value(p),
            Payload::WPAssigned(p) => serde_json::to_value(p),
            Payload::FeatureCreated(p) => serde_json::to_value(p),
            Payload::FeatureCompleted(p) => serde_json::to_value(p),
            Payload::HistoryAdded(p) => serde_json::to_value(p),
            Payload::ErrorLogged(p) => serde_json::to_value(p),
            Payload::DependencyResolved(p) => serde_json::to_value(p),
            Payload::Unknown => Ok(Value::Object(Map::new())),
        };
        v.expect("payload structs always serialise")
    }
}

fn parse_status_changed(f: &Fields<'_>) -> Result<WpStatusChanged, EnvelopeError> {
    // The 2026-02-07 form: {wp_id, previous_status, new_status, changed_by}.
    if f.obj.contains_key("new_status") && !f.obj.contains_key("to_lane") {
        let legacy_lane = |name: &str| -> Result<Option<Lane>, EnvelopeError> {
            match f.opt_str(name)? {
                None => Ok(None),
                Some(s @ ("planned" | "doing" | "for_review" | "done")) => Ok(Some(Lane::parse(s)?)),
                Some(s) => Err(field_err(
                    &Fields::path(name),
                    format!("'{s}' is not a valid Lane of the legacy form (planned, doing, for_review, done)"),
                )),
            }
        };
        return Ok(WpStatusChanged {
            wp_id: f.wp_id("wp_id")?,
            from_lane: legacy_lane("previous_status")?,
            to_lane: legacy_lane("new_status")?
                .ok_or_else(|| field_err("payload.new_status", "missing required field"))?,
            actor: f.str_or("changed_by", "user")?,
            feature_slug: f.opt_str("feature_slug")?.map(str::to_string),
            policy_metadata: None,
            force: None,
            reason: None,
        });
    }
    let force = match f.obj.get("force") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(field_err("payload.force", "must be true or false")),
    };
    let reason = f.opt_str("reason")?.map(str::to_string);
    if force == Some(true) && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(field_err(
            "payload.reason",
            "is required when force is true",
        ));
    }
    Ok(WpStatusChanged {
        wp_id: f.wp_id("wp_id")?,
        from_lane: f.lane("from_lane")?,
        to_lane: f
            .lane("to_lane")?
            .ok_or_else(|| field_err("payload.to_lane", "missing required field"))?,
        actor: f.str_or("actor", "user")?,
        feature_slug: f.opt_str("feature_slug")?.map(str::to_string),
        policy_metadata: f
            .obj
            .get("policy_metadata")
            .cloned()
            .filter(|v| !v.is_null()),
        force,
        reason,
    })
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
                rule: "'in_review' is not a valid Lane (planned, claimed, in_progress, for_review, done, blocked, canceled; 'doing' means in_progress)".into()
            }
        );
        let bad = r#"{"event_id": 5}"#;
        assert_eq!(
            EventEnvelope::from_json(bad).unwrap_err().to_string(),
            "field `event_id`: must be a string"
        );
    }

    #[test]
    fn ulid_rules() {
        assert!(is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4E"));
        assert!(!is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4"), "25 chars");
        assert!(!is_ulid("01jmby7k8n3qrvx2dpfg5hwt4e"), "lower case");
        assert!(!is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4I"), "I is not Crockford");
        assert!(!is_ulid("81JMBY7K8N3QRVX2DPFG5HWT4E"), "overflows 128 bits");
    }

    #[test]
    fn legacy_status_form_is_read() {
        let v: Value = serde_json::json!({"wp_id":"WP02","previous_status":"doing","new_status":"for_review","changed_by":"bob"});
        let Payload::WPStatusChanged(p) = Payload::parse("WPStatusChanged", &v).unwrap() else {
            panic!()
        };
        assert_eq!(p.from_lane, Some(Lane::InProgress));
        assert_eq!(p.to_lane, Lane::ForReview);
        assert_eq!(p.actor, "bob");
        let bad = serde_json::json!({"wp_id":"WP02","new_status":"claimed"});
        assert!(Payload::parse("WPStatusChanged", &bad).is_err());
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
    fn lane_user_and_wire_names() {
        assert_eq!(Lane::parse("doing").unwrap().as_wire(), "in_progress");
        assert_eq!(Lane::InProgress.as_user(), "doing");
        for l in Lane::ALL {
            assert_eq!(Lane::parse(l.as_wire()).unwrap(), l);
        }
    }
}
