//! `spec-kitty agent tasks add-history WP01 --note TEXT`: one line in the
//! WP's `## Activity Log` (as spec-kitty writes it) → HistoryAdded. Under
//! the feature's status lock (the one lane changes take), so 16 agents
//! noting at once leave 16 lines and a lane change of the same WP never
//! loses a note, nor a note the lane change.

use super::Ctx;
use crate::cli::AddHistoryArgs;
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature;
use crate::output::Out;
use crate::wpfile::{self, WpFile};
use spec_kitty_protocol::envelope::{HistoryAdded, Payload};

pub fn run(out: &Out, a: AddHistoryArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    let note = a.note.trim().to_string();
    if note.is_empty() {
        return Err(CliError::invalid("--note must not be empty"));
    }
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let path = feature::find_wp(&feat, &a.wp_id)?;
    let _lock = crate::status::store::take_lock(&feat)?;
    let wp = WpFile::read(&path)?;
    let author = a.agent.clone().unwrap_or_else(|| "user".to_string());
    let env = ctx.emitter.build(
        &Payload::HistoryAdded(HistoryAdded {
            wp_id: a.wp_id.clone(),
            entry_type: a.entry_type.clone(),
            entry_content: note.clone(),
            author: author.clone(),
        }),
        None,
    )?;
    let agent = a
        .agent
        .clone()
        .or_else(|| wp.meta.agent.clone())
        .unwrap_or_else(|| "user".into());
    let line = wpfile::activity_line(
        &wpfile::file_timestamp(),
        &agent,
        a.shell_pid
            .as_deref()
            .or(wp.meta.shell_pid.as_deref())
            .unwrap_or(""),
        &wp.meta.lane_written,
        &note,
    );
    let new_text = wpfile::append_activity(&wp.text, &line);
    WpFile::parse(&path, new_text.clone())?;
    let mut changes = Changes::new(&ctx.project.root);
    changes.replace(&path, &wp.text, new_text);
    let deliveries = changes.commit(&ctx.emitter, std::slice::from_ref(&env), &mut ctx.warner())?;
    out.line(&format!(
        "{} Added history entry to {}",
        out.green("✓"),
        out.bold(&a.wp_id)
    ));
    out.json(&serde_json::json!({
        "result": "success",
        "task_id": a.wp_id,
        "note": note,
        "events": events_json(&[env], &deliveries),
    }));
    Ok(())
}
