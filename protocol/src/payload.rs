//! The typed payloads of the contract's eight event types, and the reader
//! that checks a raw payload object field by field, naming the field
//! (`payload.<name>`) and the rule it broke. The legacy 2.x status form
//! (`previous_status`/`new_status`) is read here too.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::envelope_error::{field_err, EnvelopeError};
use crate::ids::{is_feature_slug, is_wp_id};
use crate::lane::Lane;

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
}
