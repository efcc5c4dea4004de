//! One status event: a line of `status.events.jsonl`.
//!
//! The keys and their meaning are 2.1.3's (`specify_cli/status/models.py`):
//! all thirteen keys are always written, absent values as `null`, and the
//! line is `json.dumps(event, sort_keys=True)` so a line we append is
//! byte-for-byte what 2.1.3 would append for the same event. Reading is as
//! strict as 2.1.3's: a line 2.1.3 would refuse, we refuse, naming the key.

use crate::pyjson::{self, Style};
use serde_json::{json, Map, Value};
use spec_kitty_protocol::Lane;

/// A lane transition of one work package, as the log records it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub event_id: String,
    pub feature_slug: String,
    pub wp_id: String,
    pub from_lane: Lane,
    pub to_lane: Lane,
    /// ISO 8601 UTC, as Python's `datetime.isoformat()` writes it.
    pub at: String,
    pub actor: String,
    pub force: bool,
    /// `worktree` or `direct_repo`.
    pub execution_mode: String,
    pub reason: Option<String>,
    pub review_ref: Option<String>,
    pub evidence: Option<DoneEvidence>,
    pub policy_metadata: Option<Value>,
}

/// What a transition to approved or done carries: the review, and
/// optionally the code and the checks behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct DoneEvidence {
    pub review: ReviewApproval,
    pub repos: Vec<RepoEvidence>,
    pub verification: Vec<VerificationResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewApproval {
    pub reviewer: String,
    /// `approved` or `changes_requested`.
    pub verdict: String,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepoEvidence {
    pub repo: String,
    pub branch: String,
    pub commit: String,
    pub files_touched: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerificationResult {
    pub command: String,
    /// `pass`, `fail` or `skip`.
    pub result: String,
    pub summary: String,
}

impl StatusEvent {
    /// The event as a JSON object with 2.1.3's keys.
    pub fn to_value(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "feature_slug": self.feature_slug,
            "wp_id": self.wp_id,
            "from_lane": self.from_lane.as_wire(),
            "to_lane": self.to_lane.as_wire(),
            "at": self.at,
            "actor": self.actor,
            "force": self.force,
            "execution_mode": self.execution_mode,
            "reason": self.reason,
            "review_ref": self.review_ref,
            "evidence": self.evidence.as_ref().map(DoneEvidence::to_value),
            "policy_metadata": self.policy_metadata,
        })
    }

    /// The log line, without its newline.
    pub fn to_line(&self) -> String {
        pyjson::dumps(&self.to_value(), Style::Line)
    }

    /// Reads an event from a parsed log line. The error names the key and
    /// what it must be.
    pub fn from_value(v: &Value) -> Result<StatusEvent, String> {
        let obj = v.as_object().ok_or("an event must be a JSON object")?;
        Ok(StatusEvent {
            event_id: req_str(obj, "event_id")?,
            feature_slug: req_str(obj, "feature_slug")?,
            wp_id: req_str(obj, "wp_id")?,
            from_lane: req_lane(obj, "from_lane")?,
            to_lane: req_lane(obj, "to_lane")?,
            at: req_str(obj, "at")?,
            actor: req_str(obj, "actor")?,
            force: match obj.get("force") {
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err("`force` must be true or false".into()),
                None => return Err("`force` is required".into()),
            },
            execution_mode: req_str(obj, "execution_mode")?,
            reason: opt_str(obj, "reason")?,
            review_ref: opt_str(obj, "review_ref")?,
            evidence: match obj.get("evidence") {
                None | Some(Value::Null) => None,
                Some(e) => Some(DoneEvidence::from_value(e)?),
            },
            policy_metadata: obj.get("policy_metadata").filter(|v| !v.is_null()).cloned(),
        })
    }
}

impl StatusEvent {
    /// A plain, unforced move for tests.
    #[cfg(test)]
    pub(crate) fn sample(id: &str, wp: &str, from: Lane, to: Lane, at: &str) -> StatusEvent {
        StatusEvent {
            event_id: id.into(),
            feature_slug: "001-demo".into(),
            wp_id: wp.into(),
            from_lane: from,
            to_lane: to,
            at: at.into(),
            actor: "a".into(),
            force: false,
            execution_mode: "worktree".into(),
            reason: None,
            review_ref: None,
            evidence: None,
            policy_metadata: None,
        }
    }
}

impl DoneEvidence {
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "review".into(),
            json!({
                "reviewer": self.review.reviewer,
                "verdict": self.review.verdict,
                "reference": self.review.reference,
            }),
        );
        // 2.1.3 leaves out empty lists.
        if !self.repos.is_empty() {
            let repos = self.repos.iter().map(|r| {
                let mut o = json!({"repo": r.repo, "branch": r.branch, "commit": r.commit});
                if !r.files_touched.is_empty() {
                    o["files_touched"] = json!(r.files_touched);
                }
                o
            });
            m.insert("repos".into(), Value::Array(repos.collect()));
        }
        if !self.verification.is_empty() {
            let checks = self
                .verification
                .iter()
                .map(|v| json!({"command": v.command, "result": v.result, "summary": v.summary}));
            m.insert("verification".into(), Value::Array(checks.collect()));
        }
        Value::Object(m)
    }

    pub fn from_value(v: &Value) -> Result<DoneEvidence, String> {
        let obj = v
            .as_object()
            .ok_or("`evidence` must be an object or null")?;
        let review = obj
            .get("review")
            .and_then(Value::as_object)
            .ok_or("`evidence.review` is required (reviewer, verdict, reference)")?;
        let list = |key: &str| -> Result<Vec<&Map<String, Value>>, String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_object()
                            .ok_or(format!("`evidence.{key}` items must be objects"))
                    })
                    .collect(),
                Some(_) => Err(format!("`evidence.{key}` must be a list")),
            }
        };
        Ok(DoneEvidence {
            review: ReviewApproval {
                reviewer: req_str(review, "reviewer")
                    .map_err(|e| format!("evidence.review: {e}"))?,
                verdict: req_str(review, "verdict").map_err(|e| format!("evidence.review: {e}"))?,
                reference: req_str(review, "reference")
                    .map_err(|e| format!("evidence.review: {e}"))?,
            },
            repos: list("repos")?
                .into_iter()
                .map(|r| {
                    Ok(RepoEvidence {
                        repo: req_str(r, "repo")?,
                        branch: req_str(r, "branch")?,
                        commit: req_str(r, "commit")?,
                        files_touched: match r.get("files_touched") {
                            None | Some(Value::Null) => Vec::new(),
                            Some(Value::Array(f)) => f
                                .iter()
                                .map(|x| {
                                    x.as_str()
                                        .map(str::to_string)
                                        .ok_or("`files_touched` must list strings".to_string())
                                })
                                .collect::<Result<_, _>>()?,
                            Some(_) => return Err("`files_touched` must be a list".to_string()),
                        },
                    })
                })
                .collect::<Result<_, String>>()
                .map_err(|e| format!("evidence.repos: {e}"))?,
            verification: list("verification")?
                .into_iter()
                .map(|v| {
                    Ok(VerificationResult {
                        command: req_str(v, "command")?,
                        result: req_str(v, "result")?,
                        summary: req_str(v, "summary")?,
                    })
                })
                .collect::<Result<_, String>>()
                .map_err(|e| format!("evidence.verification: {e}"))?,
        })
    }
}

fn req_str(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("`{key}` must be a string")),
        None => Err(format!("`{key}` is required")),
    }
}

fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string or null")),
    }
}

/// A lane as the log writes it: the canonical name only (2.1.3 refuses
/// `doing` in the log, so we do too).
fn req_lane(obj: &Map<String, Value>, key: &str) -> Result<Lane, String> {
    let s = req_str(obj, key)?;
    match Lane::parse(&s) {
        Ok(lane) if lane.as_wire() == s => Ok(lane),
        _ => Err(format!(
            "`{key}` is '{s}', not a canonical lane (planned, claimed, in_progress, for_review, approved, done, blocked, canceled)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StatusEvent {
        StatusEvent {
            event_id: "01JMBY7K8N3QRVX2DPFG5HWT4E".into(),
            feature_slug: "001-demo".into(),
            wp_id: "WP01".into(),
            from_lane: Lane::ForReview,
            to_lane: Lane::Done,
            at: "2026-11-29T16:15:26.123456+00:00".into(),
            actor: "claude".into(),
            force: false,
            execution_mode: "worktree".into(),
            reason: None,
            review_ref: None,
            evidence: Some(DoneEvidence {
                review: ReviewApproval {
                    reviewer: "rev".into(),
                    verdict: "approved".into(),
                    reference: "PR#1".into(),
                },
                repos: vec![],
                verification: vec![],
            }),
            policy_metadata: None,
        }
    }

    #[test]
    fn line_has_every_key_sorted_with_pythons_separators() {
        assert_eq!(
            sample().to_line(),
            r#"{"actor": "claude", "at": "2026-11-29T16:15:26.123456+00:00", "event_id": "01JMBY7K8N3QRVX2DPFG5HWT4E", "evidence": {"review": {"reference": "PR#1", "reviewer": "rev", "verdict": "approved"}}, "execution_mode": "worktree", "feature_slug": "001-demo", "force": false, "from_lane": "for_review", "policy_metadata": null, "reason": null, "review_ref": null, "to_lane": "done", "wp_id": "WP01"}"#
        );
    }

    #[test]
    fn a_line_reads_back_as_the_same_event() {
        let e = sample();
        let v: Value = serde_json::from_str(&e.to_line()).unwrap();
        assert_eq!(StatusEvent::from_value(&v).unwrap(), e);
    }

    #[test]
    fn refusals_name_the_key() {
        let mut v = sample().to_value();
        v["to_lane"] = "doing".into();
        assert!(StatusEvent::from_value(&v)
            .unwrap_err()
            .contains("`to_lane` is 'doing'"));
        let mut v = sample().to_value();
        v.as_object_mut().unwrap().remove("force");
        assert_eq!(
            StatusEvent::from_value(&v).unwrap_err(),
            "`force` is required"
        );
        let mut v = sample().to_value();
        v["evidence"] = json!({"review": {"reviewer": "r", "verdict": "approved"}});
        assert!(StatusEvent::from_value(&v)
            .unwrap_err()
            .contains("`reference` is required"));
    }
}
