//! The one lane move that `implement`, `agent tasks move-task`, `agent
//! status emit` and `accept` share, on top of [`crate::status::store`]:
//! record the status event and its views under the status lock, deliver
//! exactly one `WPStatusChanged` for it (plus the caller's follow-up
//! events) while the lock is held — undoing the write if no event can be
//! made durable, so files and events stay in step — then release the lock
//! and commit the status files. A refusal by a guard sends one
//! `ErrorLogged` carrying the real message.

use super::Ctx;
use crate::error::CliError;
use crate::feature::Feature;
use crate::gitcommit::{self, Committed};
use crate::handoff::Delivery;
use crate::status::store::{self, Move, MoveError};
use crate::status::StatusEvent;
use crate::wpfile::{self, WpFile};
use crate::yamltext;
use spec_kitty_protocol::envelope::{ErrorLogged, EventEnvelope, Payload, WpStatusChanged};
use spec_kitty_protocol::Lane;

/// A recorded and delivered move.
#[derive(Debug)]
pub struct Applied {
    pub from: Lane,
    pub event: StatusEvent,
    pub envs: Vec<EventEnvelope>,
    pub deliveries: Vec<Delivery>,
    /// `None`: not asked to commit.
    pub committed: Option<Committed>,
    /// The files the move wrote (what a commit of it takes).
    pub files: Vec<std::path::PathBuf>,
}

/// What went wrong, for the caller's output.
#[derive(Debug)]
pub enum Failure {
    /// The WP is already in that lane.
    Unchanged(Lane),
    Error(CliError),
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Failure {
        Failure::Error(e)
    }
}

/// Records `mv`, delivers its event and `follow_up(status envelope)`, and
/// commits with `commit_message` when given.
pub fn apply(
    ctx: &Ctx,
    feat: &Feature,
    mv: &Move,
    edit: &dyn Fn(&WpFile, Lane, &str) -> Result<String, CliError>,
    follow_up: &dyn Fn(&EventEnvelope) -> Result<Vec<EventEnvelope>, CliError>,
    commit_message: Option<&dyn Fn(Lane) -> String>,
) -> Result<Applied, Failure> {
    let rec = match store::record(feat, mv, edit) {
        Ok(r) => r,
        Err(MoveError::Unchanged(l)) => return Err(Failure::Unchanged(l)),
        Err(MoveError::Failed(e)) => return Err(Failure::Error(e)),
        Err(MoveError::Refused(r)) => {
            let message = format!("{}: {}", mv.wp_id, r);
            log_error(ctx, &message, Some(&mv.wp_id), Some(&mv.actor));
            return Err(Failure::Error(CliError::refused(message)));
        }
    };
    let built = status_envelope(ctx, &rec.event, mv.force).and_then(|env| {
        let mut envs = follow_up(&env)?;
        envs.insert(0, env);
        Ok(envs)
    });
    let envs = match built {
        Ok(e) => e,
        Err(e) => {
            rec.undo();
            return Err(e.into());
        }
    };
    let deliveries = match ctx
        .emitter
        .deliver_all(&envs, &mut ctx.warner(), &mut || {})
    {
        Ok(d) => d,
        Err(e) => {
            rec.undo();
            return Err(Failure::Error(crate::emit::rolled_back(
                e,
                "the status change was",
            )));
        }
    };
    let from = rec.from;
    let event = rec.event.clone();
    let files = rec.files.clone();
    drop(rec);
    let committed = commit_message.and_then(|m| commit(ctx, &files, &m(from)));
    Ok(Applied {
        from,
        event,
        envs,
        deliveries,
        committed,
        files,
    })
}

/// The wire event of a status event: the canonical lanes and actor as
/// recorded; `force`/`reason` only when the user forced the move (a
/// forward jump the log records as forced is one ordinary change).
pub fn status_envelope(
    ctx: &Ctx,
    e: &StatusEvent,
    user_forced: bool,
) -> Result<EventEnvelope, CliError> {
    ctx.emitter.build(
        &Payload::WPStatusChanged(WpStatusChanged {
            wp_id: e.wp_id.clone(),
            from_lane: Some(e.from_lane),
            to_lane: e.to_lane,
            actor: e.actor.clone(),
            feature_slug: Some(e.feature_slug.clone()),
            policy_metadata: e.policy_metadata.clone(),
            force: user_forced.then_some(true),
            reason: if user_forced { e.reason.clone() } else { None },
        }),
        None,
    )
}

/// Sends one `ErrorLogged` with `message` (best effort: a refusal is
/// reported to the user whether or not the event could be queued).
pub fn log_error(ctx: &Ctx, message: &str, wp_id: Option<&str>, agent: Option<&str>) {
    let env = ctx.emitter.build(
        &Payload::ErrorLogged(ErrorLogged {
            error_type: "validation".into(),
            error_message: message.to_string(),
            wp_id: wp_id.map(str::to_string),
            stack_trace: None,
            agent_id: agent.map(str::to_string),
        }),
        None,
    );
    match env {
        Ok(env) => {
            if let Err(e) =
                ctx.emitter
                    .deliver_all(std::slice::from_ref(&env), &mut ctx.warner(), &mut || {})
            {
                ctx.out
                    .warn(&format!("could not record the error event: {}", e.message));
            }
        }
        Err(e) => ctx
            .out
            .warn(&format!("could not build the error event: {}", e.message)),
    }
}

/// Commits `files` (those that exist) with `message`; a failure warns and
/// returns `None` (the files are written and right).
pub fn commit(ctx: &Ctx, files: &[std::path::PathBuf], message: &str) -> Option<Committed> {
    // The main checkout's files are the ones written, also when the
    // command runs inside a worktree: commit there, as 2.1.3 does.
    ctx.project.git_root.as_deref()?;
    let root = ctx.project.root.as_path();
    let existing: Vec<std::path::PathBuf> = files.iter().filter(|p| p.exists()).cloned().collect();
    match gitcommit::commit_paths(root, &existing, message) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.out.warn(&e.to_string());
            None
        }
    }
}

/// Whether to commit: the flag, else the project's config (2.1.3's rule).
pub fn auto_commit(ctx: &Ctx, flag: Option<bool>) -> bool {
    flag.unwrap_or_else(|| gitcommit::auto_commit_default(&ctx.project.root))
}

/// `text` (a whole WP file) with the top-level frontmatter scalar `key`
/// set to `value`: the value replaced in place (keeping its quoting and
/// comment), or `key: "value"` inserted before `history:` (else at the end
/// of the frontmatter), as 2.1.3's `set_scalar` does.
pub fn set_scalar(
    path: &std::path::Path,
    text: &str,
    key: &str,
    value: &str,
) -> Result<String, CliError> {
    let wp = WpFile::parse(path, text.to_string())?;
    let fm = wp.frontmatter();
    let new_fm = match yamltext::find_key(fm, key) {
        Some(kl) => yamltext::replace_value(fm, &kl, value),
        None => {
            let eol = yamltext::line_ending(fm);
            let quoted = if value.contains(['"', '\\']) || value.chars().any(char::is_control) {
                yamltext::scalar(value)
            } else {
                format!("\"{value}\"")
            };
            let line = format!("{key}: {quoted}{eol}");
            let at = yamltext::find_key(fm, "history").map_or(fm.len(), |k| k.line.start);
            yamltext::insert_at(fm, at, &line)
        }
    };
    Ok(format!(
        "{}{}{}",
        &text[..wp.fm.start],
        new_fm,
        &text[wp.fm.end..]
    ))
}

/// Appends 2.1.3's activity line
/// (`- <ts> – <agent> – [shell_pid=<pid> – ]lane=<lane> – <note>`) to the
/// body of `text`.
pub fn with_activity(text: &str, agent: &str, shell_pid: &str, lane: Lane, note: &str) -> String {
    let line = wpfile::activity_line(
        &wpfile::file_timestamp(),
        agent,
        shell_pid,
        lane.as_wire(),
        note,
    );
    wpfile::append_activity(text, &line)
}

/// `git config user.name`, else `unknown` (2.1.3's reviewer default).
pub fn git_user_name(root: &std::path::Path) -> String {
    std::process::Command::new("git")
        .args(["config", "user.name"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
