//! The SaaS's HTTP endpoints (CONTRACT.md), as blocking calls.
//!
//! One HTTP client crate (ureq, rustls) for refresh, ws-token and batch;
//! the transport runs these in `spawn_blocking`. Nothing here puts a token
//! in an error: errors carry the status, the server's `error` text and the
//! URL path, never a request header or a token-bearing body.

use crate::store::Outcome;
use serde_json::Value;
use spec_kitty_protocol::saas::{BatchReply, TokenReply, WsTokenReply};
use std::io::Write;
use std::time::Duration;

/// Most events in one batch request (the contract's cap).
pub const BATCH_MAX: usize = 1000;

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SaasError {
    /// 401: the token (or credentials) was refused.
    #[error("{what}: unauthorized (401)")]
    Unauthorized { what: &'static str },
    /// Another HTTP status.
    #[error("{what}: HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        what: &'static str,
        status: u16,
        message: Option<String>,
    },
    /// TLS handshake or certificate failure.
    #[error("{what}: TLS failure: {message}")]
    Tls { what: &'static str, message: String },
    /// Connection refused/reset, DNS, timeout.
    #[error("{what}: {message}")]
    Network { what: &'static str, message: String },
    /// The batch was refused for its size (413, or a 400 "Batch too
    /// large"): the caller splits it and sends the halves.
    #[error("{what}: the server refused the batch as too large (HTTP {status}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    TooLarge {
        what: &'static str,
        status: u16,
        message: Option<String>,
    },
    /// The server answered something that is not the contract.
    #[error("{what}: unexpected response: {message}")]
    BadResponse { what: &'static str, message: String },
}

/// The HTTP client: errors are statuses we inspect, bounded time; server
/// certificates verified against [`spec_kitty_protocol::tls::trusted_roots`]
/// (Mozilla's roots plus `SSL_CERT_FILE`). A bad `SSL_CERT_FILE` leaves
/// Mozilla's roots here; the transport reports the file at session start.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(spec_kitty_protocol::tls::ureq_tls_config())
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `host[:port]` of a base URL, for errors that must name the server.
pub fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// A TLS failure's message: the host, the reason in words, rustls's words.
pub fn tls_message(base: &str, raw: &str) -> String {
    match spec_kitty_protocol::tls::explain_certificate_error(raw) {
        Some(why) => format!("{}: {why} ({raw})", host_of(base)),
        None => format!("{}: {raw}", host_of(base)),
    }
}

fn transport_error(what: &'static str, base: &str, e: ureq::Error) -> SaasError {
    match e {
        ureq::Error::Tls(m) => SaasError::Tls {
            what,
            message: tls_message(base, m),
        },
        ureq::Error::Rustls(e) => SaasError::Tls {
            what,
            message: tls_message(base, &e.to_string()),
        },
        other => {
            let message = other.to_string();
            let m = message.to_ascii_lowercase();
            // rustls failures often arrive wrapped as I/O errors.
            if [
                "tls",
                "certificate",
                "handshake",
                "corrupt message",
                "invalidcontenttype",
            ]
            .iter()
            .any(|w| m.contains(w))
            {
                SaasError::Tls {
                    what,
                    message: tls_message(base, &message),
                }
            } else {
                SaasError::Network { what, message }
            }
        }
    }
}

/// Reads a response: `(status, JSON body or Null)`.
fn read(
    what: &'static str,
    base: &str,
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, Value), SaasError> {
    let mut resp = r.map_err(|e| transport_error(what, base, e))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| transport_error(what, base, e))?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn error_text(body: &Value) -> Option<String> {
    body.get("error")
        .or_else(|| body.get("detail"))
        .and_then(Value::as_str)
        .map(|s| s.chars().take(300).collect())
}

/// A 400 that says the request was too big ("Batch too large").
fn is_too_large(body: &Value) -> bool {
    error_text(body).is_some_and(|e| e.to_ascii_lowercase().contains("too large"))
}

fn check(what: &'static str, status: u16, body: &Value) -> Result<(), SaasError> {
    match status {
        200..=299 => Ok(()),
        401 => Err(SaasError::Unauthorized { what }),
        _ => Err(SaasError::Status {
            what,
            status,
            message: error_text(body),
        }),
    }
}

/// Parses the token/refresh answer.
pub fn parse_tokens(what: &'static str, body: &Value) -> Result<TokenReply, SaasError> {
    TokenReply::from_json(body).ok_or(SaasError::BadResponse {
        what,
        message: "no access/refresh token in the answer".into(),
    })
}

/// `POST /api/v1/token/refresh/`.
pub fn refresh(agent: &ureq::Agent, base: &str, refresh: &str) -> Result<TokenReply, SaasError> {
    const WHAT: &str = "token refresh";
    let (status, body) = read(
        WHAT,
        base,
        agent
            .post(&url(base, "/api/v1/token/refresh/"))
            .send_json(serde_json::json!({ "refresh": refresh })),
    )?;
    check(WHAT, status, &body)?;
    parse_tokens(WHAT, &body)
}

/// `POST /api/v1/ws-token/` → the single-use WebSocket token.
pub fn ws_token(agent: &ureq::Agent, base: &str, access: &str) -> Result<String, SaasError> {
    const WHAT: &str = "ws-token";
    let (status, body) = read(
        WHAT,
        base,
        agent
            .post(&url(base, "/api/v1/ws-token/"))
            .header("Authorization", &format!("Bearer {access}"))
            .send_empty(),
    )?;
    check(WHAT, status, &body)?;
    WsTokenReply::token_of(&body).ok_or(SaasError::BadResponse {
        what: WHAT,
        message: "no ws_token in the answer".into(),
    })
}

/// Maps one batch result status to what the store does with the event.
pub fn outcome(status: &str, message: Option<&str>) -> Outcome {
    match status {
        "success" | "accepted" | "warning" | "skipped" => Outcome::Delivered,
        "duplicate" => Outcome::Duplicate,
        "rejected" => Outcome::Rejected(message.unwrap_or("rejected by the server").to_string()),
        other => Outcome::Retry(format!(
            "server result {other:?}{}",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )),
    }
}

/// `POST /api/v1/events/batch/` with `envelopes` (raw JSON texts, at most
/// [`BATCH_MAX`]), gzip. Returns one outcome per event id, in order.
///
/// Only what the server says about an event decides its fate (CONTRACT.md):
/// - 200: each event's result; an event the answer leaves out was not
///   delivered and is retried (never counted as sent);
/// - 400 whose `details` list names some of our events: those rejected with
///   the server's reason, every other event retried;
/// - 413, or a 400 "Batch too large": [`SaasError::TooLarge`], the caller
///   splits the batch;
/// - any other 400 (naming no event: a proxy, a malformed-body complaint, a
///   transient fault) and any other status: an error, so the whole batch
///   stays pending and is retried with backoff. Nothing is rejected on a
///   guess.
pub fn batch(
    agent: &ureq::Agent,
    base: &str,
    access: &str,
    events: &[(String, String)],
) -> Result<Vec<(String, Outcome)>, SaasError> {
    let body = gzip_batch(events)?;
    let (status, reply) = read(
        BATCH,
        base,
        agent
            .post(&url(base, "/api/v1/events/batch/"))
            .header("Authorization", &format!("Bearer {access}"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&body[..]),
    )?;
    batch_outcomes(events, status, &reply)
}

/// What the batch calls are named in errors.
const BATCH: &str = "batch upload";

/// `{"events":[…]}` of the envelopes as they are (raw JSON texts), gzipped.
fn gzip_batch(events: &[(String, String)]) -> Result<Vec<u8>, SaasError> {
    const WHAT: &str = BATCH;
    let mut json = String::with_capacity(events.iter().map(|e| e.1.len() + 1).sum::<usize>() + 16);
    json.push_str("{\"events\":[");
    for (i, (_, env)) in events.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(env);
    }
    json.push_str("]}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json.as_bytes())
        .and_then(|_| gz.flush())
        .map_err(|e| SaasError::BadResponse {
            what: WHAT,
            message: format!("gzip: {e}"),
        })?;
    gz.finish().map_err(|e| SaasError::BadResponse {
        what: WHAT,
        message: format!("gzip: {e}"),
    })
}

/// The batch answer (`status`, JSON `reply`) as one outcome per event of
/// `events`, in order, by the rules of [`batch`].
fn batch_outcomes(
    events: &[(String, String)],
    status: u16,
    reply: &Value,
) -> Result<Vec<(String, Outcome)>, SaasError> {
    const WHAT: &str = BATCH;
    let mut by_id: std::collections::HashMap<&str, Outcome> = std::collections::HashMap::new();
    match status {
        200..=299 => {
            let results = BatchReply::from_json(reply).ok_or(SaasError::BadResponse {
                what: WHAT,
                message: "no results list".into(),
            })?;
            for r in &results.results {
                let Some(id) = r.event_id.as_deref() else {
                    continue;
                };
                if let Some((eid, _)) = events.iter().find(|(e, _)| e == id) {
                    by_id.insert(eid.as_str(), outcome(&r.status, r.reason()));
                }
            }
        }
        400 | 413 if status == 413 || is_too_large(reply) => {
            return Err(SaasError::TooLarge {
                what: WHAT,
                status,
                message: error_text(reply),
            })
        }
        400 => {
            let error = error_text(reply).unwrap_or_else(|| "HTTP 400".into());
            if let Some(Value::Array(details)) = reply.get("details") {
                for d in details {
                    let Some(id) = d.get("event_id").and_then(Value::as_str) else {
                        continue;
                    };
                    let msg = d
                        .get("error")
                        .or_else(|| d.get("error_message"))
                        .and_then(Value::as_str)
                        .unwrap_or(&error);
                    if let Some((eid, _)) = events.iter().find(|(e, _)| e == id) {
                        by_id.insert(eid.as_str(), Outcome::Rejected(msg.to_string()));
                    }
                }
            }
            if by_id.is_empty() {
                // Names none of our events: a whole-request failure.
                let detail = reply
                    .get("details")
                    .and_then(Value::as_str)
                    .map(|d| format!("{error}: {d}"))
                    .unwrap_or(error);
                return Err(SaasError::Status {
                    what: WHAT,
                    status,
                    message: Some(detail.chars().take(300).collect()),
                });
            }
            for (eid, _) in events {
                by_id.entry(eid.as_str()).or_insert_with(|| {
                    Outcome::Retry(format!("batch refused for other events: {error}"))
                });
            }
        }
        _ => check(WHAT, status, reply)?,
    }
    Ok(events
        .iter()
        .map(|(id, _)| {
            let o = by_id
                .remove(id.as_str())
                .unwrap_or_else(|| Outcome::Retry("no result for this event".into()));
            (id.clone(), o)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_decide_each_events_fate() {
        use serde_json::json;
        let events: Vec<(String, String)> = ["A", "B", "C"]
            .iter()
            .map(|id| (id.to_string(), "{}".to_string()))
            .collect();
        // 200: what the server says; an event it leaves out is retried.
        let r = batch_outcomes(
            &events,
            200,
            &json!({"results": [{"event_id": "A", "status": "success"},
                                {"event_id": "B", "status": "rejected", "error": "bad"}]}),
        )
        .unwrap();
        assert_eq!(r[0].1, Outcome::Delivered);
        assert_eq!(r[1].1, Outcome::Rejected("bad".into()));
        assert!(matches!(r[2].1, Outcome::Retry(_)));
        // 400 naming B: only B rejected, the others retried.
        let r = batch_outcomes(
            &events,
            400,
            &json!({"error": "Batch validation failed", "details": [{"event_id": "B", "error": "no lane"}]}),
        )
        .unwrap();
        assert_eq!(r[1].1, Outcome::Rejected("no lane".into()));
        assert!(matches!(r[0].1, Outcome::Retry(_)) && matches!(r[2].1, Outcome::Retry(_)));
        // 400 naming none of ours, and "too large": whole-request errors.
        assert!(matches!(
            batch_outcomes(&events, 400, &json!({"error": "proxy says no"})),
            Err(SaasError::Status { status: 400, .. })
        ));
        assert!(matches!(
            batch_outcomes(&events, 400, &json!({"error": "Batch too large"})),
            Err(SaasError::TooLarge { .. })
        ));
        assert!(matches!(
            batch_outcomes(&events, 401, &Value::Null),
            Err(SaasError::Unauthorized { .. })
        ));
    }

    #[test]
    fn result_statuses_follow_the_contract() {
        for s in ["success", "accepted", "warning", "skipped"] {
            assert_eq!(outcome(s, None), Outcome::Delivered);
        }
        assert_eq!(outcome("duplicate", None), Outcome::Duplicate);
        assert_eq!(
            outcome("rejected", Some("bad")),
            Outcome::Rejected("bad".into())
        );
        assert!(matches!(outcome("weird", None), Outcome::Retry(_)));
    }
}
