//! 2.1.3's sync checks: `sync status --check` (probe the server with the
//! saved login), `sync doctor` (queue, daemon, login, server, with what to
//! do about each problem), `sync diagnose` (validate the events waiting to
//! be sent), and `sync now --report FILE`'s failure report.
//!
//! Read-only: nothing here writes state, starts the daemon or refreshes a
//! token (refreshing is the daemon's job). Every network probe and daemon
//! request is bounded in time.

use crate::commands::auth::{http_agent, server_url};
use crate::daemon_client::{self, ClientError};
use crate::error::CliError;
use crate::output::Out;
use serde_json::{json, Value};
use spec_kitty_protocol::credentials;
use spec_kitty_protocol::envelope::{EventEnvelope, KNOWN_EVENT_TYPES};
use spec_kitty_protocol::ipc::{DaemonStatus, Request, Response, SyncSummary};
use spec_kitty_protocol::Paths;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// 2.1.3's error categories (`sync/batch.py`), by keyword, first match.
pub fn categorize(error: &str) -> &'static str {
    let lower = error.to_ascii_lowercase();
    const CATEGORIES: [(&str, &[&str]); 3] = [
        (
            "schema_mismatch",
            &["invalid", "schema", "field", "missing", "type"],
        ),
        ("auth_expired", &["token", "expired", "unauthorized", "401"]),
        (
            "server_error",
            &["internal", "500", "timeout", "unavailable"],
        ),
    ];
    CATEGORIES
        .iter()
        .find(|(_, words)| words.iter().any(|w| lower.contains(w)))
        .map_or("unknown", |(c, _)| c)
}

/// The outcome of probing the server with the saved login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// 2.1.3's words: Connected, Not authenticated, Session expired,
    /// Authentication failed, Permission denied, Unexpected, Unreachable.
    pub state: &'static str,
    pub note: String,
    pub server_url: String,
}

impl Probe {
    pub fn healthy(&self) -> bool {
        self.state == "Connected"
    }
}

/// `sync status --check`: 2.1.3's probe (`GET /api/v1/sync/health/`, else
/// an empty batch) with the saved access token.
pub fn probe(paths: &Paths) -> Probe {
    let creds = credentials::read(paths).ok().flatten();
    let server = creds
        .as_ref()
        .and_then(|c| c.server_url.clone())
        .unwrap_or_else(|| server_url(paths, None));
    let done = |state, note: &str| Probe {
        state,
        note: note.to_string(),
        server_url: server.clone(),
    };
    let Some(creds) = creds else {
        return done(
            "Not authenticated",
            "Run `spec-kitty auth login` to connect.",
        );
    };
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    let Some(access) = creds
        .access
        .clone()
        .filter(|_| creds.access_expires_at.is_none_or(|t| t > now))
    else {
        return if creds.refresh_expires_at.is_some_and(|t| t > now) {
            done(
                "Session expired",
                "The access token has expired; the sync daemon refreshes it on its next turn (`spec-kitty sync start`).",
            )
        } else {
            done(
                "Session expired",
                "Run `spec-kitty auth login` to re-authenticate.",
            )
        };
    };
    let agent = http_agent(PROBE_TIMEOUT, PROBE_TIMEOUT);
    let bearer = format!("Bearer {access}");
    let health = agent
        .get(&format!("{server}/api/v1/sync/health/"))
        .header("Authorization", &bearer)
        .call();
    let answer = match health {
        Ok(r) if matches!(r.status().as_u16(), 404 | 405) => agent
            .post(&format!("{server}/api/v1/events/batch/"))
            .header("Authorization", &bearer)
            .send_json(json!({"events": []}))
            .map(|mut r| {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                // An empty batch refused as empty: reachable, token good.
                let legacy_ok = r.status().as_u16() == 400 && text.contains("No events");
                (if legacy_ok { 200 } else { r.status().as_u16() }, legacy_ok)
            }),
        Ok(r) => Ok((r.status().as_u16(), false)),
        Err(e) => Err(e),
    };
    match answer {
        Ok((200, legacy)) => done(
            "Connected",
            if legacy {
                "Server reachable, authentication valid (legacy batch probe)."
            } else {
                "Server reachable, authentication valid."
            },
        ),
        Ok((401, _)) => done(
            "Authentication failed",
            "Run `spec-kitty auth login` to re-authenticate.",
        ),
        Ok((403, _)) => done(
            "Permission denied",
            "Check team membership for this project.",
        ),
        Ok((code, _)) => done("Unexpected", &format!("Server returned HTTP {code}.")),
        Err(e) => done(
            "Unreachable",
            &format!("{e}. Events stay queued locally until the server answers."),
        ),
    }
}

pub fn probe_json(p: &Probe) -> Value {
    json!({"state": p.state, "note": p.note, "server_url": p.server_url, "healthy": p.healthy()})
}

/// As [`probe_json`]: `healthy` is derived, so it is written, not stored.
impl serde::Serialize for Probe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        probe_json(self).serialize(s)
    }
}

fn daemon_status(paths: &Paths) -> Result<DaemonStatus, String> {
    match daemon_client::request(paths, Request::Status, Duration::from_secs(2)) {
        Ok(Response::Status { json }) => serde_json::from_str(&json).map_err(|e| e.to_string()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(ClientError::NotRunning) => Err("not running".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `spec-kitty sync doctor`: one row per check, then the problems found
/// with what to do about each. Exits 0 either way, as 2.1.3.
pub fn doctor(out: &Out, paths: &Paths) -> Result<(), CliError> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut issues: Vec<String> = Vec::new();
    let spool = super::spool::spool_backlog(paths);
    match daemon_status(paths) {
        Ok(d) => {
            rows.push((
                "Daemon".into(),
                format!("running, pid {}, spec-kitty-syncd {}", d.pid, d.version),
            ));
            rows.push(("Queue".into(), format!("{} pending", d.queue_depth)));
            if let Some(age) = d.oldest_pending_age_secs {
                rows.push(("Oldest event".into(), format!("{age}s old")));
            }
            rows.push(("Held".into(), d.held.to_string()));
            rows.push(("Parked".into(), d.parked_total.to_string()));
            if d.held > 0 {
                issues.push(format!("{} event(s) have no project identity and are never sent: run `spec-kitty init --here` in their project (`spec-kitty sync status` lists them).", d.held));
            }
            if d.parked_total > 0 {
                issues.push(format!("{} event(s) were rejected by the server: `spec-kitty sync diagnose` shows why; `spec-kitty sync retry-parked` sends them again once fixed.", d.parked_total));
            }
        }
        Err(why) => {
            rows.push(("Daemon".into(), why.clone()));
            issues.push(format!(
                "The sync daemon is {why}: nothing is sent until it runs; `spec-kitty sync start` starts it."
            ));
        }
    }
    rows.push((
        "Spool".into(),
        format!("{spool} event file(s) in {}", paths.spool_dir().display()),
    ));
    if spool > 0 {
        issues.push(format!("{spool} event file(s) wait in the spool for the daemon: `spec-kitty sync start` takes them in."));
    }
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    let creds = credentials::read(paths).map_err(CliError::io_from)?;
    match &creds {
        None => {
            rows.push(("Auth".into(), "no credentials".into()));
            issues.push("Not authenticated: run `spec-kitty auth login`.".into());
        }
        Some(c) => {
            let state = |t: Option<i64>, tok: &Option<String>| match (tok, t) {
                (None, _) => "missing",
                (Some(_), Some(t)) if t <= now => "expired",
                _ => "valid",
            };
            let access = state(c.access_expires_at, &c.access);
            let refresh = state(c.refresh_expires_at, &c.refresh);
            rows.push(("Access token".into(), access.into()));
            rows.push(("Refresh token".into(), refresh.into()));
            if let Some(u) = &c.username {
                rows.push(("User".into(), u.clone()));
            }
            rows.push(("Team".into(), c.team_slug_or_local().to_string()));
            if refresh != "valid" {
                issues.push(
                    "The login has expired: run `spec-kitty auth login` to re-authenticate.".into(),
                );
            } else if access != "valid" {
                issues.push("The access token has expired but the refresh token is valid: the daemon refreshes it on its next turn.".into());
            }
        }
    }
    let p = probe(paths);
    rows.push(("Server URL".into(), p.server_url.clone()));
    rows.push(("Server".into(), format!("{}: {}", p.state, p.note)));
    if matches!(p.state, "Unreachable" | "Unexpected") {
        issues.push(format!(
            "Cannot reach the server at {}: events keep queueing locally.",
            p.server_url
        ));
    }
    if out.json {
        let checks: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase().replace(' ', "_"), json!(v)))
            .collect();
        out.json(&json!({"checks": checks, "server": probe_json(&p), "issues": issues, "healthy": issues.is_empty()}));
        return Ok(());
    }
    out.line(&out.bold("Sync Doctor"));
    for (k, v) in &rows {
        out.line(&format!("  {k:<15}{v}"));
    }
    out.line("");
    if issues.is_empty() {
        out.line(&out.green("No issues detected. Sync is healthy."));
    } else {
        out.line("Issues found:");
        for i in &issues {
            out.line(&format!("  ! {i}"));
        }
    }
    Ok(())
}

/// One event checked by `diagnose` (2.1.3's `DiagnoseResult`).
#[derive(Debug, Clone)]
pub struct Checked {
    pub event_id: String,
    pub event_type: String,
    pub errors: Vec<String>,
    /// Where it waits: `spool` (a file) or `parked` (rejected by the server).
    pub source: &'static str,
}

/// The errors of one spooled envelope: the envelope rules (fields, ids,
/// payload of known types) and 2.1.3's "known event type" rule.
pub fn check_envelope(text: &str) -> (String, String, Vec<String>) {
    let raw: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let s = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()
    };
    let (id, ty) = (s("event_id"), s("event_type"));
    let mut errors = Vec::new();
    match EventEnvelope::from_json(text) {
        Ok(env) => {
            if let Err(e) = env.validate_unstamped() {
                errors.push(e.to_string());
            }
            if !KNOWN_EVENT_TYPES.contains(&env.event_type.as_str()) {
                errors.push(format!(
                    "field `event_type`: unknown event type {:?}; expected one of {}",
                    env.event_type,
                    KNOWN_EVENT_TYPES.join(", ")
                ));
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    (id, ty, errors)
}

/// `spec-kitty sync diagnose`: the spooled event files (not yet in the
/// daemon) checked against the envelope rules, and the events the server
/// rejected (parked in the daemon) with its reason. Events the daemon
/// holds as pending were checked when it accepted them and are counted.
pub fn diagnose(out: &Out, paths: &Paths) -> Result<(), CliError> {
    let mut checked = Vec::new();
    let names = super::spool::spool_files(paths);
    for path in names {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                checked.push(Checked {
                    event_id: path.display().to_string(),
                    event_type: "unknown".into(),
                    errors: vec![format!("cannot read {}: {e}", path.display())],
                    source: "spool",
                });
                continue;
            }
        };
        let (event_id, event_type, errors) = check_envelope(&text);
        checked.push(Checked {
            event_id,
            event_type,
            errors,
            source: "spool",
        });
    }
    let daemon = daemon_status(paths).ok();
    if let Some(d) = &daemon {
        for p in &d.parked {
            checked.push(Checked {
                event_id: p.event_id.clone(),
                event_type: p.event_type.clone(),
                errors: vec![format!("rejected by the server: {}", p.reason)],
                source: "parked",
            });
        }
    }
    let invalid = checked.iter().filter(|c| !c.errors.is_empty()).count();
    let pending = daemon.as_ref().map(|d| d.queue_depth);
    if out.json {
        out.json(&json!({
            "total": checked.len(),
            "valid": checked.len() - invalid,
            "invalid": invalid,
            "results": checked.iter().map(|c| json!({
                "event_id": c.event_id,
                "event_type": c.event_type,
                "valid": c.errors.is_empty(),
                "errors": c.errors,
                "error_category": c.errors.first().map_or("", |e| categorize(e)),
                "source": c.source,
            })).collect::<Vec<_>>(),
            "daemon_pending": pending,
        }));
        return Ok(());
    }
    if checked.is_empty() {
        out.line("No spooled or rejected events.");
    } else {
        out.line(&format!(
            "Validated {} event(s): {} valid, {invalid} invalid",
            checked.len(),
            checked.len() - invalid
        ));
        for c in checked.iter().filter(|c| c.errors.is_empty()) {
            out.line(&format!("  VALID   {} ({})", c.event_id, c.event_type));
        }
        for c in checked.iter().filter(|c| !c.errors.is_empty()) {
            out.line(&format!(
                "  INVALID {} ({}) [{}] ({})",
                c.event_id,
                c.event_type,
                categorize(&c.errors[0]),
                c.source
            ));
            for e in &c.errors {
                out.line(&format!("    - {e}"));
            }
        }
    }
    match pending {
        Some(n) => out.line(&format!(
            "{n} event(s) pending in the sync daemon (checked when it accepted them)."
        )),
        None => out.line("The sync daemon is not running: its queue was not consulted."),
    }
    Ok(())
}

/// 2.1.3's `--report` file: when and what was sent, and each failure with
/// its category.
pub fn failure_report(s: &SyncSummary) -> Value {
    let mut categories = serde_json::Map::new();
    for r in &s.rejected {
        let c = categorize(&r.reason);
        let n = categories.get(c).and_then(Value::as_u64).unwrap_or(0);
        categories.insert(c.to_string(), json!(n + 1));
    }
    json!({
        "generated_at": spec_kitty_protocol::time::now_utc(),
        "summary": {
            "total_events": s.synced + s.duplicates + s.rejected.len() as u64,
            "synced": s.synced,
            "duplicates": s.duplicates,
            "failed": s.rejected.len(),
            "categories": categories,
        },
        "failures": s.rejected.iter().map(|r| json!({
            "event_id": r.event_id,
            "error": r.reason,
            "category": categorize(&r.reason),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_match_2_1_3_keywords_in_order() {
        assert_eq!(categorize("field `payload`: missing"), "schema_mismatch");
        assert_eq!(categorize("Token expired"), "auth_expired");
        assert_eq!(categorize("HTTP 500"), "server_error");
        assert_eq!(categorize("who knows"), "unknown");
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let (id, ty, errs) = check_envelope(r#"{"event_id":"x","event_type":"Nope"}"#);
        assert_eq!((id.as_str(), ty.as_str()), ("x", "Nope"));
        assert!(errs[0].contains("field `"), "{errs:?}");
        let (_, _, errs) = check_envelope("not json");
        assert!(errs[0].contains("not valid JSON"), "{errs:?}");
    }
}
