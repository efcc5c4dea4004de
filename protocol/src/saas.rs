//! The SaaS wire (CONTRACT.md, "SaaS endpoints"): what the token, ws-token
//! and batch endpoints answer, and the frames of the events WebSocket.
//!
//! Why here: the daemon reads these shapes and the reference server writes
//! them; the CLI reads the login answer. One definition means the three
//! cannot drift apart. Readers are lenient where servers of the 2.x era
//! differ (lifetimes as numbers or strings, `expires_in` spellings, extra
//! keys, frame types we do not know); writers go through [`wire_json`], so
//! the bytes on the wire have their keys in sorted order, as they always had.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The server a login goes to when neither `--server` nor the config names one.
pub const DEFAULT_SERVER_URL: &str = "https://spec-kitty-dev.fly.dev";
/// Access-token lifetime when the server does not say (seconds).
pub const DEFAULT_ACCESS_LIFETIME: u64 = 900;
/// Refresh-token lifetime when the server does not say (seconds).
pub const DEFAULT_REFRESH_LIFETIME: u64 = 604_800;

/// `value` as JSON with every object's keys in sorted order (`serde_json`'s
/// map is ordered): the form every SaaS reply and frame is written in.
pub fn wire_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("wire shapes serialise to JSON")
}

/// The answer of `POST /api/v1/token/` (login) and `/token/refresh/`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenReply {
    pub access: String,
    /// Seconds.
    pub access_lifetime: u64,
    pub refresh: String,
    /// Seconds.
    pub refresh_lifetime: u64,
    pub team_slug: Option<String>,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field("access", &"<redacted>")
            .field("access_lifetime", &self.access_lifetime)
            .field("refresh", &"<redacted>")
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("team_slug", &self.team_slug)
            .finish()
    }
}

/// A lifetime in seconds: the first of `keys` that holds a number or a
/// numeric string.
fn lifetime(body: &Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| match body.get(*k) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

impl TokenReply {
    /// Reads a token answer; `None` when it holds no access or refresh
    /// token. Lifetimes may be numbers or strings, also spelled
    /// `expires_in`/`refresh_expires_in`, and default to 900 s and 7 days;
    /// an empty `team_slug` is none.
    pub fn from_json(body: &Value) -> Option<TokenReply> {
        Some(TokenReply {
            access: text(body, "access")?,
            refresh: text(body, "refresh")?,
            access_lifetime: lifetime(body, &["access_lifetime", "expires_in"])
                .unwrap_or(DEFAULT_ACCESS_LIFETIME),
            refresh_lifetime: lifetime(body, &["refresh_lifetime", "refresh_expires_in"])
                .unwrap_or(DEFAULT_REFRESH_LIFETIME),
            team_slug: text(body, "team_slug").filter(|t| !t.is_empty()),
        })
    }
    /// `(access, refresh)` expiry instants in µs since the epoch, for a
    /// reply received at `now` (µs), as the credentials file keeps them.
    pub fn expiries(&self, now: i64) -> (i64, i64) {
        let at = |secs: u64| {
            now.saturating_add(
                i64::try_from(secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000),
            )
        };
        (at(self.access_lifetime), at(self.refresh_lifetime))
    }
}

/// The answer of `POST /api/v1/ws-token/`: a single-use WebSocket token.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct WsTokenReply {
    /// Seconds the token stays valid.
    pub expires_in: u64,
    pub ws_token: String,
}

impl WsTokenReply {
    /// The token of a ws-token answer, if it holds one.
    pub fn token_of(body: &Value) -> Option<String> {
        text(body, "ws_token")
    }
}

/// One event's fate in a `200` batch answer (`{"results": [...]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// Null for an item of the batch that had no string `event_id`.
    pub event_id: Option<String>,
    /// `success`, `duplicate`, `rejected`; also `accepted`, `warning`,
    /// `skipped` from other servers. An open vocabulary: kept as text.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl BatchResult {
    /// The server's reason, under either key it may use.
    pub fn reason(&self) -> Option<&str> {
        self.error_message.as_deref().or(self.error.as_deref())
    }
}

/// The `200` answer of `POST /api/v1/events/batch/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub results: Vec<BatchResult>,
}

impl BatchReply {
    /// Reads a batch answer; `None` without a `results` list. A result
    /// that is not an object is left out (the event it was for is then
    /// retried, never counted as sent).
    pub fn from_json(body: &Value) -> Option<BatchReply> {
        let results = body.get("results")?.as_array()?;
        Some(BatchReply {
            results: results
                .iter()
                .filter_map(|r| BatchResult::deserialize(r).ok())
                .collect(),
        })
    }
}

/// A text frame of the events WebSocket, either way, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WsFrame {
    /// The server's first frame: what it knows of the team.
    Snapshot(Snapshot),
    /// The server asks for a [`WsFrame::Pong`] with the same timestamp.
    Ping {
        #[serde(default)]
        timestamp: Value,
    },
    Pong {
        #[serde(default)]
        timestamp: Value,
    },
    /// The server stored an event (or already had it).
    Ack {
        event_id: String,
        #[serde(default)]
        status: AckStatus,
    },
    /// The server refused an event, or the frame it got.
    Error(ErrorFrame),
    /// A frame type this build does not know: ignored.
    #[serde(other)]
    Unknown,
}

impl WsFrame {
    /// Reads a text frame; `None` when it is not one of ours (not JSON, no
    /// known shape).
    pub fn parse(text: &str) -> Option<WsFrame> {
        serde_json::from_str(text).ok()
    }

    /// The frame as sent.
    pub fn to_text(&self) -> String {
        wire_json(self).to_string()
    }
}

/// `status` of an [`WsFrame::Ack`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckStatus {
    #[default]
    Accepted,
    Duplicate,
    /// A status this build does not know; the event counts as delivered.
    #[serde(other)]
    Other,
}

/// `status` of an [`ErrorFrame`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorStatus {
    /// The event breaks a rule: it will never be accepted.
    Rejected,
    /// The server failed: the event is retried.
    Error,
    #[default]
    #[serde(other)]
    Other,
}

/// An error frame: about one event (`event_id`), or about a frame the
/// server could not read (`event_id` null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    #[serde(default)]
    pub status: ErrorStatus,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// Some servers say `message` instead of `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ErrorFrame {
    /// The server's reason, under either key.
    pub fn reason(&self) -> Option<&str> {
        self.error.as_deref().or(self.message.as_deref())
    }
}

/// The snapshot frame's body. Every field has a default: a server may send
/// more, less, or newer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub team_slug: Option<String>,
    pub server_time: Option<String>,
    pub projects: Vec<SnapshotProject>,
    pub work_packages: Vec<SnapshotWorkPackage>,
}

/// A project in a [`Snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotProject {
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub event_count: u64,
    pub last_event_at: Option<String>,
}

/// A work package's lane in a [`Snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotWorkPackage {
    pub project_uuid: String,
    pub feature_slug: String,
    pub wp_id: String,
    pub lane: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_reply_reads_lifetimes_leniently() {
        let t = TokenReply::from_json(&json!({
            "access": "a", "refresh": "r", "access_lifetime": "60", "team_slug": ""
        }))
        .unwrap();
        assert_eq!((t.access_lifetime, t.refresh_lifetime), (60, 604_800));
        assert_eq!(t.team_slug, None);
        let t = TokenReply::from_json(&json!({
            "access": "a", "refresh": "r", "access_lifetime": "soon", "expires_in": 30,
            "refresh_expires_in": 90
        }))
        .unwrap();
        assert_eq!((t.access_lifetime, t.refresh_lifetime), (30, 90));
        assert!(TokenReply::from_json(&json!({"access": "a"})).is_none());
        assert!(!format!("{t:?}").contains("\"a\""), "Debug hides tokens");
    }

    #[test]
    fn token_reply_is_written_with_sorted_keys() {
        let t = TokenReply {
            access: "a".into(),
            access_lifetime: 900,
            refresh: "r".into(),
            refresh_lifetime: 604_800,
            team_slug: Some("team-a".into()),
        };
        assert_eq!(
            wire_json(&t).to_string(),
            r#"{"access":"a","access_lifetime":900,"refresh":"r","refresh_lifetime":604800,"team_slug":"team-a"}"#
        );
    }

    #[test]
    fn frames_keep_their_bytes() {
        let cases = [
            (
                WsFrame::Ping {
                    timestamp: json!("2026-02-07T08:34:22.123456+00:00"),
                },
                r#"{"timestamp":"2026-02-07T08:34:22.123456+00:00","type":"ping"}"#,
            ),
            (
                WsFrame::Pong {
                    timestamp: Value::Null,
                },
                r#"{"timestamp":null,"type":"pong"}"#,
            ),
            (
                WsFrame::Ack {
                    event_id: "E1".into(),
                    status: AckStatus::Duplicate,
                },
                r#"{"event_id":"E1","status":"duplicate","type":"ack"}"#,
            ),
            (
                WsFrame::Error(ErrorFrame {
                    status: ErrorStatus::Rejected,
                    event_id: None,
                    error: Some("Invalid JSON".into()),
                    message: None,
                }),
                r#"{"error":"Invalid JSON","event_id":null,"status":"rejected","type":"error"}"#,
            ),
        ];
        for (frame, text) in cases {
            assert_eq!(frame.to_text(), text);
            assert_eq!(WsFrame::parse(text), Some(frame));
        }
    }

    #[test]
    fn frames_read_leniently() {
        assert_eq!(
            WsFrame::parse(r#"{"type":"ack","event_id":"E"}"#),
            Some(WsFrame::Ack {
                event_id: "E".into(),
                status: AckStatus::Accepted
            })
        );
        assert_eq!(
            WsFrame::parse(r#"{"type":"hello","x":1}"#),
            Some(WsFrame::Unknown)
        );
        let Some(WsFrame::Error(e)) =
            WsFrame::parse(r#"{"type":"error","event_id":"E","message":"m","status":"nope"}"#)
        else {
            panic!("error frame")
        };
        assert_eq!((e.reason(), e.status), (Some("m"), ErrorStatus::Other));
        let Some(WsFrame::Snapshot(s)) =
            WsFrame::parse(r#"{"type":"snapshot","projects":[{"project_uuid":"p","extra":1}]}"#)
        else {
            panic!("snapshot")
        };
        assert_eq!((s.projects.len(), s.team_slug), (1, None));
        assert_eq!(WsFrame::parse("not json"), None);
    }

    #[test]
    fn batch_reply_skips_results_it_cannot_read() {
        let r = BatchReply::from_json(&json!({"results": [
            {"event_id": "A", "status": "success"},
            "not an object",
            {"event_id": null, "status": "rejected", "error": "bad"},
        ]}))
        .unwrap();
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[1].reason(), Some("bad"));
        assert_eq!(
            wire_json(&r.results[1]).to_string(),
            r#"{"error":"bad","event_id":null,"status":"rejected"}"#
        );
        assert!(BatchReply::from_json(&json!({"error": "x"})).is_none());
        assert_eq!(
            wire_json(&r.results[0]).to_string(),
            r#"{"event_id":"A","status":"success"}"#
        );
    }
}
