//! The one lane move that `implement`, `agent tasks move-task` and `accept`
//! share: build the `WPStatusChanged` event, set the file's `lane:`, append
//! one history entry, and check that the edited text reads back with the
//! new lane. The caller adds the returned text to its [`Changes`] and
//! commits it together with the event, so a move is one file edit plus one
//! event, or neither.
//!
//! [`Changes`]: crate::emit::Changes

use crate::emit::Emitter;
use crate::error::CliError;
use crate::wpfile::{self, HistoryEntry, WpFile};
use spec_kitty_protocol::envelope::{EventEnvelope, Payload, WpStatusChanged};
use spec_kitty_protocol::Lane;

/// What one lane move records.
#[derive(Debug)]
pub struct LaneMove<'a> {
    pub wp: &'a WpFile,
    /// The id the user named (the file's), which the event carries.
    pub wp_id: &'a str,
    pub feature_slug: &'a str,
    pub to: Lane,
    /// Who moved it, as the event says.
    pub actor: String,
    /// The history entry's agent, shell pid, note and time.
    pub agent: String,
    pub shell_pid: String,
    pub action: String,
    pub timestamp: String,
    /// `Some(reason)` when the move was forced outside the lane graph.
    pub forced: Option<String>,
}

/// The agent a history entry names: the one given, else the WP's own,
/// else `user`.
pub fn history_agent(given: Option<&str>, wp: &WpFile) -> String {
    given
        .map(str::to_string)
        .or_else(|| wp.meta.agent.clone())
        .unwrap_or_else(|| "user".into())
}

/// Builds the move's event and the WP file's new text; writes nothing.
pub fn move_lane(emitter: &Emitter, m: LaneMove<'_>) -> Result<(EventEnvelope, String), CliError> {
    let env = emitter.build(
        &Payload::WPStatusChanged(WpStatusChanged {
            wp_id: m.wp_id.to_string(),
            from_lane: Some(m.wp.meta.lane),
            to_lane: m.to,
            actor: m.actor,
            feature_slug: Some(m.feature_slug.to_string()),
            policy_metadata: None,
            force: m.forced.is_some().then_some(true),
            reason: m.forced,
        }),
        None,
    )?;
    let lane = wpfile::lane_for_file(m.to);
    let moved = wpfile::set_lane(m.wp, lane);
    let new_text = wpfile::append_history(
        &m.wp.path,
        &moved,
        &HistoryEntry {
            timestamp: m.timestamp,
            lane: lane.to_string(),
            agent: m.agent,
            shell_pid: m.shell_pid,
            action: m.action,
        },
    )?;
    let check = WpFile::parse(&m.wp.path, new_text.clone())?;
    if check.meta.lane != m.to {
        return Err(CliError::invalid(format!(
            "{}: the lane edit did not read back as {}",
            m.wp.path.display(),
            m.to
        )));
    }
    Ok((env, new_text))
}
