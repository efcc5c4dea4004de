//! `spec-kitty sync now [--wait] [--report FILE] [--strict]`: the SaaS side
//! of `sync` as the user drives it.
//!
//! `now` asks the daemon to send at once (skipping any backoff) and reports
//! what happened; the daemon does the sending, the CLI only watches. With
//! `--wait` on a terminal a progress bar follows the queue depth (polled
//! through `Status`), elsewhere plain lines.

use crate::cli::NowArgs;
use crate::daemon_client;
use crate::error::CliError;
use crate::output::Out;
use spec_kitty_protocol::ipc::{DaemonStatus, Request, Response, SyncSummary};
use spec_kitty_protocol::Paths;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Longest `sync now --wait` waits for the daemon.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

fn synced(resp: Response) -> Result<SyncSummary, CliError> {
    match resp {
        Response::Synced { json } => serde_json::from_str(&json)
            .map_err(|e| CliError::io(format!("unreadable sync summary from the daemon: {e}"))),
        Response::Error { message, .. } => Err(CliError::io(format!("the sync daemon: {message}"))),
        other => Err(CliError::io(format!(
            "unexpected answer from the sync daemon: {other:?}"
        ))),
    }
}

pub(super) fn run(out: &Out, a: NowArgs) -> Result<(), CliError> {
    let paths = crate::commands::state_paths(out)?;
    // Start the daemon if needed: it owns the queue and the connection.
    daemon_client::launch::start(&paths, Duration::from_secs(10)).map_err(CliError::io_from)?;
    let kick = daemon_client::request(
        &paths,
        Request::SyncNow { wait: false },
        Duration::from_secs(10),
    )
    .map_err(CliError::io_from)?;
    let wait = a.wait || a.report.is_some() || a.strict;
    let summary = if !wait {
        synced(kick)?
    } else {
        if !a.json && std::io::stderr().is_terminal() {
            progress(&paths);
        }
        synced(
            daemon_client::request(&paths, Request::SyncNow { wait: true }, WAIT_LIMIT)
                .map_err(CliError::io_from)?,
        )?
    };
    if let Some(path) = &a.report {
        report(out, path, &summary)?;
    }
    // Strict: what 2.1.3 fails on; rejected events, or a queue that did not move.
    let failed = a.strict
        && (!summary.rejected.is_empty()
            || (summary.remaining > 0 && summary.synced + summary.duplicates == 0));
    if a.json {
        out.json(&serde_json::to_value(&summary).expect("summary serialises"));
        return strict_result(failed, &summary);
    }
    if wait && summary.synced + summary.duplicates == 0 && summary.remaining == 0 {
        out.line("Queue empty: every event is delivered.");
    } else if wait {
        out.line(&format!(
            "Synced {} event(s), {} already on the server (duplicates).",
            summary.synced, summary.duplicates
        ));
    } else {
        out.line("Asked the sync daemon to send now.");
    }
    for r in &summary.rejected {
        out.line(&format!(
            "  rejected {} {} ({}): {}",
            r.event_id,
            r.event_type,
            r.project_slug.as_deref().unwrap_or("-"),
            r.reason
        ));
    }
    out.line(&format!(
        "{} event(s) remaining in the queue; {} held (no project identity, never sent).",
        summary.remaining, summary.held
    ));
    if let Some(why) = &summary.stopped_reason {
        out.line(&format!("Sending stopped: {why}"));
    }
    strict_result(failed, &summary)
}

fn strict_result(failed: bool, s: &SyncSummary) -> Result<(), CliError> {
    if !failed {
        return Ok(());
    }
    Err(CliError::io(if s.rejected.is_empty() {
        format!(
            "--strict: {} event(s) remain and none could be sent ({})",
            s.remaining,
            s.stopped_reason
                .as_deref()
                .unwrap_or("see `spec-kitty sync doctor`")
        )
    } else {
        format!(
            "--strict: the server rejected {} event(s); `spec-kitty sync diagnose` shows them",
            s.rejected.len()
        )
    }))
}

/// `--report FILE`: 2.1.3 writes it only when something failed.
fn report(out: &Out, path: &std::path::Path, s: &SyncSummary) -> Result<(), CliError> {
    if s.rejected.is_empty() {
        out.line("No failures to report.");
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&crate::commands::sync::checks::failure_report(s))
        .expect("a report serialises");
    spec_kitty_protocol::fsutil::write_atomic(path, text.as_bytes(), None)
        .map_err(|e| CliError::io_at("write", path, &e))?;
    out.line(&format!("Failure report written to {}", path.display()));
    Ok(())
}

/// A progress bar over the queue depth until it reaches 0 or sending stops.
fn progress(paths: &Paths) {
    let status = |paths: &Paths| -> Option<DaemonStatus> {
        match daemon_client::request(paths, Request::Status, Duration::from_secs(2)) {
            Ok(Response::Status { json }) => serde_json::from_str(&json).ok(),
            _ => None,
        }
    };
    let Some(first) = status(paths) else { return };
    let total = first.queue_depth;
    if total == 0 {
        return;
    }
    let bar = ProgressLine::new(total);
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut backoff_seen = 0;
    while Instant::now() < deadline {
        let Some(s) = status(paths) else { break };
        bar.draw(
            total.saturating_sub(s.queue_depth),
            &s.connection.state.to_string(),
        );
        if s.queue_depth == 0 || s.connection.state == spec_kitty_protocol::ipc::ConnState::Offline
        {
            break;
        }
        if s.connection.state == spec_kitty_protocol::ipc::ConnState::Backoff {
            backoff_seen += 1;
            if backoff_seen > 10 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.clear();
}

/// One line on stderr, redrawn in place, only when stderr is a terminal:
/// `[#####-----] 120/400 events sent (35/s) connected`. (A progress-bar
/// crate for this one line cost every command a load of `libm`, for its
/// rate smoothing.)
struct ProgressLine {
    total: u64,
    started: Instant,
    shown: bool,
}

impl ProgressLine {
    const WIDTH: u64 = 30;

    fn new(total: u64) -> ProgressLine {
        ProgressLine {
            total,
            started: Instant::now(),
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn draw(&self, done: u64, state: &str) {
        if self.shown {
            eprint!(
                "\r\x1b[2K{}",
                progress_text(done, self.total, self.started.elapsed(), state)
            );
        }
    }

    fn clear(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

fn progress_text(done: u64, total: u64, elapsed: Duration, state: &str) -> String {
    let done = done.min(total);
    let filled = (done * ProgressLine::WIDTH / total.max(1)) as usize;
    let empty = ProgressLine::WIDTH as usize - filled;
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!(
        "[{}{}] {done}/{total} events sent ({rate:.0}/s) {state}",
        "#".repeat(filled),
        "-".repeat(empty)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_fills_with_what_was_sent() {
        let t =
            |done, total, ms| progress_text(done, total, Duration::from_millis(ms), "connected");
        assert_eq!(
            t(0, 400, 0),
            format!("[{}] 0/400 events sent (0/s) connected", "-".repeat(30))
        );
        assert_eq!(
            t(200, 400, 2000),
            format!(
                "[{}{}] 200/400 events sent (100/s) connected",
                "#".repeat(15),
                "-".repeat(15)
            )
        );
        // More sent than first counted (new events arrived): a full bar.
        assert!(t(500, 400, 1000).starts_with(&format!("[{}] 400/400", "#".repeat(30))));
    }
}
