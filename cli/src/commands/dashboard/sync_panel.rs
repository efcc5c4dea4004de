//! The dashboard's sync panel: what `spec-kitty-syncd` is doing for this
//! project, from its status over the local socket.
//!
//! Never starts a daemon (a dashboard watching must not change what it
//! watches): no daemon is `"daemon": "not running"`, and the spool backlog
//! says what waits for one. Counts are this project's (by `project_uuid`,
//! parked events by `project_slug`); `held` (events without a project) is
//! the daemon's total, since a held event belongs to no project.

use crate::daemon_client::{self, ClientError};
use crate::identity;
use crate::project::Project;
use serde_json::{json, Value};
use spec_kitty_protocol::ipc::{DaemonStatus, Request, Response};
use spec_kitty_protocol::Paths;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(1);

/// The panel's JSON.
pub fn status(project: &Project) -> Value {
    let id = identity::peek(project);
    let ident = json!({"uuid": id.uuid, "slug": id.slug});
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            return json!({"daemon": "unknown", "message": e.to_string(), "project": ident});
        }
    };
    let spool = crate::commands::sync::spool::spool_backlog(&paths);
    let (state, message, d) = match daemon_client::request(&paths, Request::Status, TIMEOUT) {
        Ok(Response::Status { json }) => match serde_json::from_str::<DaemonStatus>(&json) {
            Ok(d) => ("running", None, Some(d)),
            Err(e) => (
                "unreachable",
                Some(format!("unreadable daemon status: {e}")),
                None,
            ),
        },
        Ok(Response::Error { message, .. }) => ("unreachable", Some(message), None),
        Ok(_) => (
            "unreachable",
            Some("the daemon's answer is not a status".into()),
            None,
        ),
        Err(ClientError::NotRunning) => (
            "not running",
            Some("no daemon running: events wait in the spool until one starts".into()),
            None,
        ),
        Err(e) => ("unreachable", Some(e.to_string()), None),
    };
    let Some(d) = d else {
        return json!({
            "daemon": state, "message": message, "project": ident, "spool_backlog": spool,
        });
    };
    let mine = d
        .projects
        .iter()
        .find(|p| Some(&p.project_uuid) == id.uuid.as_ref());
    let parked: Vec<Value> = d
        .parked
        .iter()
        .filter(|p| p.project_slug.is_none() || p.project_slug == id.slug)
        .map(|p| {
            json!({"event_id": p.event_id, "event_type": p.event_type, "reason": p.reason, "attempts": p.attempts})
        })
        .collect();
    json!({
        "daemon": state,
        "message": message,
        "project": ident,
        "pid": d.pid,
        "version": d.version,
        "queued": mine.map_or(0, |p| p.pending),
        "sent": mine.map_or(0, |p| p.sent),
        "held": d.held,
        "parked": parked,
        "parked_total": d.parked_total,
        "spool_backlog": d.spool_backlog.max(spool),
        "connection": {
            "state": d.connection.state,
            "reason": d.connection.reason,
            "last_error": d.connection.last_error,
            "server_url": d.connection.server_url,
            "next_retry_secs": d.connection.next_retry_secs,
        },
        "auth": {
            "logged_in": d.auth.logged_in,
            "username": d.auth.username,
            "team_slug": d.auth.team_slug,
            "hint": d.auth.hint,
        },
    })
}
