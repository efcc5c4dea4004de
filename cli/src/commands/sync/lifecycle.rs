//! `spec-kitty sync start|stop|restart|retry-parked`: the daemon's life as
//! the user drives it (starting and stopping are [`crate::daemon_client::launch`]'s).

use super::status::STATUS_TIMEOUT;
use crate::daemon_client::{self, ClientError};
use crate::error::CliError;
use crate::output::Out;
use serde_json::json;
use spec_kitty_protocol::ipc::{Request, Response};
use spec_kitty_protocol::Paths;
use std::time::Duration;

/// How long `start` and `stop` wait for the daemon.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A failure to reach, start or stop the daemon, as the command's error (exit 1).
pub(super) fn client_err(e: ClientError) -> CliError {
    CliError::io_from(e)
}

pub(super) fn start(out: &Out, paths: &Paths) -> Result<(), CliError> {
    let s = daemon_client::launch::start(paths, START_TIMEOUT).map_err(client_err)?;
    // Anything a fallback left behind goes in now.
    let ingest = if daemon_client::request(paths, Request::IngestSpool, STATUS_TIMEOUT).is_ok() {
        "ok"
    } else {
        "failed"
    };
    out.json(&json!({
        "running": true,
        "started": !s.already,
        "pid": s.welcome.pid,
        "version": s.welcome.version,
        "socket": paths.socket().display().to_string(),
        "spool_ingest": ingest,
    }));
    out.line(&format!(
        "Sync daemon {} (pid {}, spec-kitty-syncd {}, socket {})",
        if s.already {
            "already running"
        } else {
            "started and ready"
        },
        s.welcome.pid,
        s.welcome.version,
        paths.socket().display()
    ));
    Ok(())
}

pub(super) fn stop(out: &Out, paths: &Paths) -> Result<Option<u32>, CliError> {
    let reason = format!("spec-kitty sync stop (pid {})", std::process::id());
    match daemon_client::launch::stop(paths, &reason, STOP_TIMEOUT) {
        Ok(Some(w)) => {
            out.json(&json!({"stopped": true, "pid": w.pid}));
            out.line(&format!("Sync daemon stopped (pid {})", w.pid));
            Ok(Some(w.pid))
        }
        Ok(None) => {
            out.json(&json!({"stopped": false, "running": false}));
            out.line("Sync daemon was not running");
            Ok(None)
        }
        Err(e @ ClientError::DaemonNewer { .. }) => Err(CliError::io(format!(
            "{e}; this spec-kitty does not stop a newer daemon (use the newer spec-kitty, or kill its pid)"
        ))),
        Err(e) => Err(client_err(e)),
    }
}

/// `spec-kitty sync retry-parked`: starts the daemon if needed (parked
/// events live in its store) and asks it to queue every parked event again.
pub(super) fn retry_parked(out: &Out, paths: &Paths) -> Result<(), CliError> {
    daemon_client::launch::start(paths, START_TIMEOUT).map_err(client_err)?;
    let count = match daemon_client::request(paths, Request::RetryParked, STATUS_TIMEOUT)
        .map_err(client_err)?
    {
        Response::Requeued { count } => count,
        Response::Error { message, .. } => {
            return Err(CliError::io(format!(
                "the sync daemon could not re-queue parked events: {message}"
            )))
        }
        _ => {
            return Err(CliError::io(
                "the sync daemon gave an unexpected answer to retry-parked".to_string(),
            ))
        }
    };
    out.json(&json!({"requeued": count}));
    out.line(&if count == 0 {
        "No parked events.".to_string()
    } else {
        format!("Re-queued {count} parked event(s); the daemon sends them again now.")
    });
    Ok(())
}
