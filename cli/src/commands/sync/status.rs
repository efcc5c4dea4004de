//! `spec-kitty sync status [--check] [--json]`: what the daemon, its queue,
//! the spool, the login and this project look like.
//!
//! Gathered once into [`StatusView`], which both outputs render: `--json`
//! serialises it, the text is drawn from it. Works (and says so) when no
//! daemon runs; a daemon that answers badly is "not usable", not "not running".

use super::checks::{probe, Probe};
use super::spool::spool_backlog;
use crate::daemon_client::{self, ClientError};
use crate::error::CliError;
use crate::output::Out;
use crate::{identity, project};
use serde::Serialize;
use spec_kitty_protocol::ipc::{DaemonStatus, Request, Response};
use spec_kitty_protocol::Paths;
use std::path::Path;
use std::time::Duration;

/// How long `status` (and the requests after a start) wait for the daemon.
pub(super) const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything `sync status` shows, gathered once; `--json` is this struct
/// serialised, the text is drawn from it. Keys are those of the JSON (the
/// JSON goes through a `Value`, so its keys come out sorted, as they
/// always have).
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// A daemon answered with its status.
    pub running: bool,
    /// Something answers on the socket but not usefully (wedged, another
    /// protocol version): not the same as "not running".
    pub unreachable: Option<String>,
    /// Nothing listens, and something that is not a socket sits at its path.
    pub blocked: Option<String>,
    pub socket: String,
    pub daemon: Option<DaemonStatus>,
    pub spool_backlog: u64,
    pub spool_dir: String,
    /// The project of the current directory, if any.
    pub project: Option<ProjectView>,
    /// This project has `sync.auto_start: false`.
    pub opted_out: bool,
    pub warnings: Vec<String>,
    /// The server probe (`--check`).
    pub check: Option<Probe>,
}

/// The current project as `sync status` shows it.
#[derive(Debug, Serialize)]
pub struct ProjectView {
    pub root: String,
    pub uuid: Option<String>,
    pub slug: Option<String>,
    pub auto_start: bool,
}

/// The current project's identity and `sync.auto_start`, read without
/// writing anything (status must not backfill identity).
fn current_project() -> Option<ProjectView> {
    let cwd = std::env::current_dir().ok()?;
    let p = project::locate(&cwd).ok()?;
    let id = identity::peek(&p);
    Some(ProjectView {
        root: p.root.display().to_string(),
        uuid: id.uuid,
        slug: id.slug,
        auto_start: id.auto_start,
    })
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

const OPTED_OUT: &str = "sync opted out (sync.auto_start: false): commands here never start the daemon; events go to a running daemon, else to the spool";

pub(super) fn run(out: &Out, paths: &Paths, check: bool) -> Result<(), CliError> {
    let view = gather(paths, check)?;
    if out.json {
        let value = serde_json::to_value(&view)
            .map_err(|e| CliError::io(format!("cannot render the status as JSON: {e}")))?;
        out.json(&value);
    } else {
        render(out, &view);
    }
    Ok(())
}

/// Asks the daemon (bounded by [`STATUS_TIMEOUT`]), probes the server when
/// `check`, and reads the spool and the current project.
fn gather(paths: &Paths, check: bool) -> Result<StatusView, CliError> {
    let check = check.then(|| probe(paths));
    let project = current_project();
    let opted_out = project.as_ref().is_some_and(|p| !p.auto_start);
    let mut unreachable: Option<String> = None;
    let daemon: Option<DaemonStatus> =
        match daemon_client::request(paths, Request::Status, STATUS_TIMEOUT) {
            Ok(Response::Status { json }) => {
                Some(serde_json::from_str(&json).map_err(|e| {
                    CliError::io(format!("the daemon sent an unreadable status: {e}"))
                })?)
            }
            Ok(Response::Error { message, .. }) => {
                unreachable = Some(format!(
                    "the sync daemon runs but could not report its status: {message}"
                ));
                None
            }
            Ok(_) => {
                unreachable = Some("the sync daemon gave an answer that is not a status".into());
                None
            }
            Err(ClientError::NotRunning) => None,
            Err(e) => {
                unreachable = Some(e.to_string());
                None
            }
        };
    let mut warnings = Vec::new();
    if let Some(d) = &daemon {
        if d.held > 0 {
            warnings.push(format!(
                "{} event(s) have no project_uuid and are held locally, never sent",
                d.held
            ));
        }
        if d.parked_total > 0 {
            warnings.push(format!(
                "{} event(s) were rejected by the server and are parked; `spec-kitty sync retry-parked` sends them again",
                d.parked_total
            ));
        }
    }
    // Nothing listens: say so only if nothing blocks the socket path
    // either; the daemon cannot bind over another kind of file.
    let blocked = if daemon.is_none() && unreachable.is_none() {
        blocked_socket(&paths.socket())
    } else {
        None
    };
    Ok(StatusView {
        running: daemon.is_some(),
        unreachable,
        blocked,
        socket: paths.socket().display().to_string(),
        daemon,
        spool_backlog: spool_backlog(paths),
        spool_dir: paths.spool_dir().display().to_string(),
        project,
        opted_out,
        warnings,
        check,
    })
}

/// The text form: one row per part, warnings on stderr.
fn render(out: &Out, view: &StatusView) {
    let row = |k: &str, v: String| out.line(&format!("{:<14}{v}", k));
    match &view.daemon {
        None => match (&view.unreachable, &view.blocked) {
            (Some(e), _) => row("Daemon", format!("not usable: {e}")),
            (None, Some(b)) => row("Daemon", format!("cannot start: {b}")),
            (None, None) => row(
                "Daemon",
                format!("not running (nothing answers on {})", view.socket),
            ),
        },
        Some(d) => render_daemon(out, d),
    }
    row(
        "Spool",
        format!(
            "{} event file(s) waiting in {}",
            view.spool_backlog, view.spool_dir
        ),
    );
    if let Some(p) = &view.project {
        let slug = p.slug.as_deref().unwrap_or("?");
        if view.opted_out {
            row("This project", format!("{slug}: {OPTED_OUT}"));
        } else {
            row(
                "This project",
                format!("{slug}: sync.auto_start true (commands start the daemon when needed)"),
            );
        }
    }
    if let Some(p) = &view.check {
        row(
            "Ping",
            format!("{} ({}): {}", p.state, p.server_url, p.note),
        );
    }
    for w in &view.warnings {
        out.warn(w);
    }
    if view.daemon.is_none()
        && view.unreachable.is_none()
        && view.blocked.is_none()
        && !view.opted_out
    {
        out.line(&out.dim(
            "The daemon starts with the next command that emits an event, or with `spec-kitty sync start`.",
        ));
    }
}

/// The rows of a running daemon: itself, its queue per project, held and
/// parked events, the connection and the login.
fn render_daemon(out: &Out, d: &DaemonStatus) {
    let row = |k: &str, v: String| out.line(&format!("{:<14}{v}", k));
    row(
        "Daemon",
        format!(
            "running, pid {}, spec-kitty-syncd {} (protocol {}), mode {}, up {}",
            d.pid,
            d.version,
            d.protocol,
            d.mode,
            age(d.uptime_secs)
        ),
    );
    row("Socket", d.socket.clone());
    row(
        "Queue",
        format!(
            "{} pending{}; Lamport clock {}",
            d.queue_depth,
            d.oldest_pending_age_secs
                .map_or(String::new(), |a| format!(", oldest {} old", age(a))),
            d.lamport_clock
        ),
    );
    if d.projects.is_empty() {
        row("Projects", "none yet".into());
    } else {
        row("Projects", String::new());
        let w = d
            .projects
            .iter()
            .map(|p| p.project_slug.as_deref().unwrap_or("?").len())
            .max()
            .unwrap_or(0);
        for p in &d.projects {
            out.line(&format!(
                "  {:<w$}  {:>6} pending  {:>6} sent  {}",
                p.project_slug.as_deref().unwrap_or("?"),
                p.pending,
                p.sent,
                out.dim(&p.project_uuid)
            ));
        }
    }
    row(
        "Held",
        if d.held == 0 {
            "0".into()
        } else {
            format!("{} (no project_uuid: kept locally, never sent)", d.held)
        },
    );
    row("Parked", d.parked_total.to_string());
    for p in &d.parked {
        out.line(&format!(
            "  {} {} {}: {} (attempts {})",
            p.event_id,
            p.event_type,
            p.project_slug.as_deref().unwrap_or("?"),
            p.reason,
            p.attempts
        ));
    }
    let c = &d.connection;
    let mut conn = c.state.to_string();
    if let Some(u) = &c.server_url {
        conn.push_str(&format!(" to {u}"));
    }
    if let Some(r) = &c.reason {
        conn.push_str(&format!(" ({r})"));
    }
    if let Some(n) = c.next_retry_secs {
        conn.push_str(&format!(", retry in {n}s"));
    }
    row("Connection", conn);
    if let Some(e) = &c.last_error {
        row("Last error", e.clone());
    }
    let a = &d.auth;
    let mut auth = if a.logged_in {
        format!(
            "logged in{}{}",
            a.username
                .as_ref()
                .map_or(String::new(), |u| format!(" as {u}")),
            a.team_slug
                .as_ref()
                .map_or(String::new(), |t| format!(", team {t}"))
        )
    } else {
        "not logged in".to_string()
    };
    if let Some(h) = &a.hint {
        auth.push_str(&format!(" ({h})"));
    }
    row("Auth", auth);
}

/// Why the daemon cannot bind `socket`: something other than a socket
/// (a regular file, a directory, a link) sits at that path, and the daemon
/// never removes anything but a stale socket.
fn blocked_socket(socket: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(socket).ok()?;
    let ft = meta.file_type();
    if ft.is_socket() {
        return None;
    }
    let kind = if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a socket"
    };
    Some(format!(
        "{} is {kind}, not a socket; the daemon will not remove it, so every command spools until you move it away",
        socket.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m05s");
        assert_eq!(age(7260), "2h01m");
    }
}
