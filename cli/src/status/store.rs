//! The one write path of the status model: every lane change of every
//! command goes through [`record`], and [`materialize`] rebuilds the views.
//!
//! The order is 2.1.3's (`status/emit.py`), with its gaps closed: take the
//! feature's status lock (shared with the Python CLI) → read the log (a
//! broken line stops everything, naming file and line) → bootstrap WPs the
//! log does not know yet from their frontmatter, as `agent status migrate`
//! does → check the move against the matrix and its guards → append the
//! event(s) in one fsynced write → rewrite every view from the reduced log
//! (`status.json`, the `tasks.md` block, each WP file's `lane:`, plus the
//! moved WP's own edits). Because every view is rebuilt from the log on
//! every write, a crash between the log and the views is repaired by the
//! next command. The caller delivers its wire event while the lock is
//! still held ([`Recorded`]), so a failed delivery can undo the write and
//! the log and the event stream never disagree; it commits after.

use super::event::{DoneEvidence, ReviewApproval, StatusEvent};
use super::reducer::{self, Snapshot, SNAPSHOT_FILE};
use super::transitions::{self, Facts, Refusal};
use super::{lock, log, views};
use crate::emit::Changes;
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::fsutil::{self, Lock};
use crate::wpfile::{self, WpFile};
use serde_json::Value;
use spec_kitty_protocol::Lane;
use std::fs;
use std::path::{Path, PathBuf};

/// The reason 2.1.3's migration writes on the first event of each WP; its
/// `agent status migrate` skips a feature whose log has it.
pub const MIGRATION_MARKER: &str = "historical_frontmatter_to_jsonl:v1";

/// A lane change to record.
#[derive(Debug, Clone, Default)]
pub struct Move {
    pub wp_id: String,
    pub to: Option<Lane>,
    pub actor: String,
    /// The user's `--force` (needs actor and reason, skips the guards).
    pub force: bool,
    pub reason: Option<String>,
    pub review_ref: Option<String>,
    pub evidence: Option<DoneEvidence>,
    /// `None`: `<execution_mode>:<repo root>`, as 2.1.3's emit defaults it.
    pub workspace_context: Option<String>,
    /// `None`: inferred from the WP's section of `tasks.md`.
    pub subtasks_complete: Option<bool>,
    /// `None`: the WP has earlier events in the log.
    pub implementation_evidence_present: Option<bool>,
    /// `worktree` (default) or `direct_repo`.
    pub execution_mode: String,
    /// Accept a jump forward along planned → claimed → in_progress →
    /// for_review → approved → done as one event (what 2.1.3's move-task
    /// walks hop by hop): every skipped hop's guard is checked, and the one
    /// event is recorded as forced with a reason naming the skipped lanes,
    /// so 2.1.3's validator accepts it and the wire carries one change.
    pub walk_forward: bool,
    /// Without a reason, record 2.1.3's move-task default
    /// (`move-task: <from> -> <to>`), which also meets the reason guard.
    pub reason_default: bool,
    /// The orchestrator's `--policy` (2.1.3's `policy_metadata` key of the
    /// event and of its wire event).
    pub policy_metadata: Option<Value>,
}

impl Move {
    fn target(&self) -> Lane {
        self.to.unwrap_or(Lane::Planned)
    }
}

/// Why nothing was recorded.
#[derive(Debug)]
pub enum MoveError {
    /// A guard or the matrix said no.
    Refused(Refusal),
    /// The WP already is in the lane.
    Unchanged(Lane),
    /// Bad input or a failed read or write.
    Failed(CliError),
}

impl From<CliError> for MoveError {
    fn from(e: CliError) -> MoveError {
        MoveError::Failed(e)
    }
}

impl From<log::LogError> for CliError {
    fn from(e: log::LogError) -> CliError {
        CliError::invalid_from(e)
    }
}

/// A recorded move, the lock still held: deliver the wire event, then
/// [`Recorded::undo`] on failure or drop to release the lock.
#[derive(Debug)]
pub struct Recorded {
    pub from: Lane,
    pub event: StatusEvent,
    /// Events written before it to bootstrap WPs the log did not know.
    pub bootstrapped: usize,
    pub snapshot: Snapshot,
    /// Every status file of the feature (log, snapshot, tasks.md, the
    /// moved WP's file and any WP whose lane view was rewritten), for the
    /// commit.
    pub files: Vec<PathBuf>,
    undo: Undo,
    _lock: Lock,
}

impl Recorded {
    /// Takes the write back (the wire event could not be made durable).
    pub fn undo(self) {
        self.undo.run();
    }
}

#[derive(Debug)]
struct Undo {
    log: PathBuf,
    /// The log's length before; `None`: it did not exist.
    log_len: Option<u64>,
    changes: Changes,
}

impl Undo {
    fn run(&self) {
        self.changes.undo(self.changes.len());
        self.log();
    }

    /// Takes the appended lines back off the log.
    fn log(&self) {
        match self.log_len {
            Some(n) => {
                if let Ok(f) = fs::OpenOptions::new().write(true).open(&self.log) {
                    let _ = f.set_len(n);
                    let _ = f.sync_all();
                }
            }
            None => {
                let _ = fs::remove_file(&self.log);
            }
        }
    }
}

/// What [`load`] read under the lock.
struct Loaded {
    log_path: PathBuf,
    events: Vec<StatusEvent>,
    wps: Vec<WpFile>,
    /// Events that bring WPs unknown to the log in (no wire events).
    bootstrap: Vec<StatusEvent>,
}

fn log_path(feat: &Feature) -> Result<PathBuf, CliError> {
    Ok(fsutil::resolve_in_repo(&feat.root, &log::path(&feat.dir))?)
}

/// The feature's status lock. Where the git dir cannot hold the lock file
/// (a read-only `.git`, as for a user who may edit the specs but not the
/// repository), the feature directory itself is locked instead: our own
/// writers still serialise, and 2.1.3 could not have taken its lock there
/// either.
pub fn take_lock(feat: &Feature) -> Result<Lock, CliError> {
    let path = lock::path(&feat.root, &feat.slug);
    match lock::acquire(&feat.root, &feat.slug) {
        Ok(l) => Ok(l),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) && !path.exists() =>
        {
            fsutil::lock_path(&feat.dir).map_err(|e| CliError::io_at("lock", &feat.dir, &e))
        }
        Err(e) => Err(CliError::io_at("lock", &path, &e)),
    }
}

fn load(feat: &Feature) -> Result<Loaded, CliError> {
    let log_path = log_path(feat)?;
    let text = match fsutil::read_repo_file(&feat.root, &log_path)? {
        Some(b) => String::from_utf8(b).map_err(|e| {
            CliError::invalid(format!(
                "{}: not UTF-8 text (byte {})",
                log_path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?,
        None => String::new(),
    };
    let events: Vec<StatusEvent> = log::parse(&log::path(&feat.dir), &text)?
        .into_iter()
        .map(|l| l.event)
        .collect();
    // A WP file that cannot be read is left alone (its own commands name
    // it); it must not stop moves of the others.
    let (wps, _bad) = feature::load_wps_lenient(feat)?;
    // One microsecond in the past, so the move recorded after it sorts
    // after the bootstrap whatever the event ids.
    let t = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now()) - 1;
    let now = spec_kitty_protocol::time::format_micros(t).replace(".000000+", "+");
    let bootstrap = wps
        .iter()
        .filter(|w| !events.iter().any(|e| e.wp_id == w.meta.wp_id))
        .flat_map(|w| migration_events(&feat.slug, w, "migration", &now))
        .collect();
    Ok(Loaded {
        log_path,
        events,
        wps,
        bootstrap,
    })
}

/// Now as Python's `datetime.now(timezone.utc).isoformat()` writes it (no
/// fraction when the microseconds are zero).
pub fn now_iso() -> String {
    spec_kitty_protocol::time::now_utc().replace(".000000+", "+")
}

/// 2.1.3's `build_transition_chain` for one WP file: its frontmatter
/// `history:` entries (aliases resolved, consecutive repeats collapsed)
/// paired into transitions, then a gap-fill to the current `lane:`; each
/// one a forced event (the first with [`MIGRATION_MARKER`]), as
/// `agent status migrate` writes them. A WP still planned with no history
/// gives none.
pub fn migration_events(slug: &str, wp: &WpFile, actor: &str, now: &str) -> Vec<StatusEvent> {
    let fm: Value = crate::yamltext::parse_value(wp.frontmatter()).unwrap_or(Value::Null);
    let mut entries: Vec<(Lane, String, String)> = Vec::new();
    for e in fm
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(lane) = e
            .get("lane")
            .and_then(scalar_text)
            .and_then(|l| Lane::parse(l.trim()).ok())
        else {
            continue;
        };
        let ts = e
            .get("timestamp")
            .and_then(scalar_text)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| now.to_string());
        let who = e
            .get("agent")
            .and_then(scalar_text)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "migration".into());
        if entries.last().is_none_or(|l| l.0 != lane) {
            entries.push((lane, ts, who));
        }
    }
    let mut chain: Vec<(Lane, Lane, String, String)> = entries
        .windows(2)
        .map(|w| (w[0].0, w[1].0, w[1].1.clone(), w[1].2.clone()))
        .collect();
    let current = wp.meta.lane;
    match entries.last() {
        None if current != Lane::Planned => {
            chain.push((Lane::Planned, current, now.to_string(), "migration".into()))
        }
        Some(last) if last.0 != current => {
            chain.push((last.0, current, last.1.clone(), "migration".into()))
        }
        _ => {}
    }
    let evidence = match (
        fm.get("review_status").and_then(Value::as_str),
        fm.get("reviewed_by").and_then(scalar_text),
    ) {
        (Some("approved"), Some(r)) if !r.trim().is_empty() => Some(DoneEvidence {
            review: ReviewApproval {
                reviewer: r.trim().to_string(),
                verdict: "approved".into(),
                reference: format!("frontmatter-migration:{}", wp.meta.wp_id),
            },
            repos: vec![],
            verification: vec![],
        }),
        _ => None,
    };
    chain
        .into_iter()
        .enumerate()
        .map(|(i, (from, to, at, who))| StatusEvent {
            event_id: spec_kitty_protocol::identity::new_ulid(),
            feature_slug: slug.to_string(),
            wp_id: wp.meta.wp_id.clone(),
            from_lane: from,
            to_lane: to,
            at,
            actor: if who == "migration" {
                actor.to_string()
            } else {
                who
            },
            force: true,
            execution_mode: "direct_repo".into(),
            reason: Some(if i == 0 {
                MIGRATION_MARKER.into()
            } else {
                "historical migration".into()
            }),
            review_ref: None,
            evidence: if to == Lane::Done {
                evidence.clone()
            } else {
                None
            },
            policy_metadata: None,
        })
        .collect()
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The forward lanes 2.1.3's move-task walks through: the first six of
/// [`Lane::ALL`], planned to done.
const FORWARD: &[Lane] = Lane::ALL.split_at(6).0;

/// The hops of a forward jump of more than one lane, `None` otherwise.
pub fn forward_hops(from: Lane, to: Lane) -> Option<Vec<(Lane, Lane)>> {
    let i = FORWARD.iter().position(|l| *l == from)?;
    let j = FORWARD.iter().position(|l| *l == to)?;
    (j > i + 1).then(|| FORWARD[i..=j].windows(2).map(|w| (w[0], w[1])).collect())
}

/// Whether a move is possible without `--force`: in the matrix, or a
/// forward jump (each hop then passes its guard).
pub fn reachable(from: Lane, to: Lane) -> bool {
    transitions::allowed(from, to) || forward_hops(from, to).is_some()
}

/// Lanes reachable from `from` without `--force`, as users write them.
pub fn reachable_targets(from: Lane) -> Vec<&'static str> {
    Lane::ALL
        .into_iter()
        .filter(|to| reachable(from, *to))
        .map(Lane::as_wire)
        .collect()
}

/// 2.1.3's `_infer_subtasks_complete`: no unticked `- [ ]` line in the
/// `## ... WPnn` section of `tasks.md` (no file or no section: complete).
pub fn subtasks_complete(feature_dir: &Path, wp_id: &str) -> bool {
    unticked_subtasks(feature_dir, wp_id).is_empty()
}

/// The unticked subtask ids (or lines) of `wp_id`'s section of `tasks.md`.
pub fn unticked_subtasks(feature_dir: &Path, wp_id: &str) -> Vec<String> {
    let Ok(text) = fs::read_to_string(feature_dir.join("tasks.md")) else {
        return Vec::new();
    };
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("##") && mentions_word(line, wp_id) {
            inside = true;
            continue;
        }
        if inside && line.starts_with("##") {
            break;
        }
        if inside {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix('-') {
                let rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix('[') {
                    let after = after.trim_start();
                    if let Some(item) = after.strip_prefix(']') {
                        let item = item.trim();
                        out.push(item.split_whitespace().next().unwrap_or(t).to_string());
                    }
                }
            }
        }
    }
    out
}

fn mentions_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn check(
    feat: &Feature,
    from: Lane,
    mv: &Move,
    prior_events: bool,
) -> Result<Option<String>, Refusal> {
    let to = mv.target();
    let context = mv
        .workspace_context
        .clone()
        .unwrap_or_else(|| format!("{}:{}", mode(mv), feat.root.display()));
    let facts = |from: Lane, to: Lane| Facts {
        force: mv.force,
        actor: Some(mv.actor.as_str()),
        workspace_context: Some(context.as_str()),
        subtasks_complete: mv.subtasks_complete.or_else(|| {
            (from == Lane::InProgress && to == Lane::ForReview)
                .then(|| subtasks_complete(&feat.dir, &mv.wp_id))
        }),
        implementation_evidence_present: mv.implementation_evidence_present.or(Some(prior_events)),
        reason: mv.reason.as_deref(),
        review_ref: mv.review_ref.as_deref(),
        evidence: mv.evidence.as_ref(),
    };
    if mv.force || transitions::allowed(from, to) {
        transitions::validate(from, to, &facts(from, to))?;
        return Ok(None);
    }
    match forward_hops(from, to).filter(|_| mv.walk_forward) {
        Some(hops) => {
            for (a, b) in &hops {
                transitions::validate(*a, *b, &facts(*a, *b))?;
            }
            let skipped: Vec<&str> = hops[..hops.len() - 1]
                .iter()
                .map(|(_, b)| b.as_wire())
                .collect();
            Ok(Some(format!(
                "{} -> {} in one step (through {})",
                from.as_wire(),
                to.as_wire(),
                skipped.join(", ")
            )))
        }
        None => transitions::validate(from, to, &facts(from, to)).map(|_| None),
    }
}

fn mode(mv: &Move) -> &str {
    if mv.execution_mode.is_empty() {
        "worktree"
    } else {
        &mv.execution_mode
    }
}

/// Records one move of `mv.wp_id` (see the module docs). `edit` returns the
/// moved WP's new text from its text with the lane view already set (add
/// the activity line and frontmatter fields there).
pub fn record(
    feat: &Feature,
    mv: &Move,
    edit: &dyn Fn(&WpFile, Lane, &str) -> Result<String, CliError>,
) -> Result<Recorded, MoveError> {
    let lock = take_lock(feat)?;
    let loaded = load(feat)?;
    let wp = loaded
        .wps
        .iter()
        .find(|w| w.meta.wp_id == mv.wp_id)
        .ok_or_else(|| match feature::find_wp(feat, &mv.wp_id) {
            // Found but unreadable: that file's own error.
            Ok(p) => WpFile::read(&p).err().unwrap_or_else(|| {
                CliError::invalid(format!("{} changed while reading it", p.display()))
            }),
            Err(e) => e,
        })?;
    let all: Vec<&StatusEvent> = loaded.events.iter().chain(&loaded.bootstrap).collect();
    let before = reducer::reduce(all.iter().copied());
    let from = before
        .work_packages
        .get(&mv.wp_id)
        .map_or(Lane::Planned, |s| s.lane);
    let to = mv.target();
    if from == to {
        return Err(MoveError::Unchanged(to));
    }
    let prior = all.iter().any(|e| e.wp_id == mv.wp_id);
    let defaulted;
    let by_default = mv.reason_default && mv.reason.as_deref().is_none_or(|r| r.trim().is_empty());
    let mv = if by_default {
        defaulted = Move {
            reason: Some(format!("move-task: {} -> {}", from.as_wire(), to.as_wire())),
            ..mv.clone()
        };
        &defaulted
    } else {
        mv
    };
    let walked = check(feat, from, mv, prior).map_err(MoveError::Refused)?;
    let (force, reason) = match (&walked, mv.force) {
        (Some(w), false) => (
            true,
            Some(match &mv.reason {
                Some(r) if !by_default && !r.trim().is_empty() => format!("{}; {w}", r.trim()),
                _ => w.clone(),
            }),
        ),
        _ => (mv.force, mv.reason.clone()),
    };
    let event = StatusEvent {
        event_id: spec_kitty_protocol::identity::new_ulid(),
        feature_slug: feat.slug.clone(),
        wp_id: mv.wp_id.clone(),
        from_lane: from,
        to_lane: to,
        at: now_iso(),
        actor: mv.actor.clone(),
        force,
        execution_mode: mode(mv).to_string(),
        reason,
        review_ref: mv.review_ref.clone(),
        evidence: mv.evidence.clone(),
        policy_metadata: mv.policy_metadata.clone(),
    };
    let mut new_events = loaded.bootstrap.clone();
    new_events.push(event.clone());
    let moved_path = wp.path.clone();
    let (snapshot, undo, files) = write(feat, &loaded, &new_events, Some((&mv.wp_id, from, edit)))?;
    let mut files = files;
    if !files.contains(&moved_path) {
        files.push(moved_path);
    }
    Ok(Recorded {
        from,
        event,
        bootstrapped: loaded.bootstrap.len(),
        snapshot,
        files,
        undo,
        _lock: lock,
    })
}

type Edit<'a> = (
    &'a str,
    Lane,
    &'a dyn Fn(&WpFile, Lane, &str) -> Result<String, CliError>,
);

/// Appends `new_events` and rewrites every view from the whole log.
fn write(
    feat: &Feature,
    loaded: &Loaded,
    new_events: &[StatusEvent],
    edit: Option<Edit<'_>>,
) -> Result<(Snapshot, Undo, Vec<PathBuf>), CliError> {
    let snapshot = reducer::reduce(loaded.events.iter().chain(new_events));
    // Build every view before touching anything: an edit that fails
    // (broken frontmatter) leaves the log as it was.
    let mut changes = Changes::new(&feat.root);
    let mut files = vec![log::path(&feat.dir)];
    let status_path = feat.dir.join(SNAPSHOT_FILE);
    let status_text = snapshot.to_json(&now_iso());
    match fsutil::read_repo_file(&feat.root, &status_path)? {
        Some(old) => changes.replace(&status_path, &String::from_utf8_lossy(&old), status_text),
        None => changes.create(&status_path, status_text),
    }
    files.push(status_path);
    let tasks_md = feat.dir.join("tasks.md");
    if let Some(old) = fsutil::read_repo_file(&feat.root, &tasks_md)? {
        let old = String::from_utf8_lossy(&old).into_owned();
        let new = views::with_status_block(&old, &snapshot);
        files.push(tasks_md.clone());
        if new != old {
            changes.replace(&tasks_md, &old, new);
        }
    }
    for wp in &loaded.wps {
        let lane = snapshot.work_packages.get(&wp.meta.wp_id).map(|s| s.lane);
        let synced = match lane {
            Some(l) if l != wp.meta.lane => wpfile::set_lane(wp, l.as_wire()),
            _ => wp.text.clone(),
        };
        let new = match &edit {
            Some((id, from, f)) if *id == wp.meta.wp_id => f(wp, *from, &synced)?,
            _ => synced,
        };
        if new != wp.text {
            WpFile::parse(&wp.path, new.clone())?;
            changes.replace(&wp.path, &wp.text, new);
            files.push(wp.path.clone());
        }
    }
    let log_len = fs::metadata(&loaded.log_path).ok().map(|m| m.len());
    if !new_events.is_empty() {
        log::append_to(&loaded.log_path, new_events)?;
    }
    let undo = Undo {
        log: loaded.log_path.clone(),
        log_len,
        changes,
    };
    if let Err(e) = undo.changes.apply() {
        // `apply` put back the views it wrote; take the events back too,
        // so a failed command leaves nothing behind and sends nothing.
        undo.log();
        return Err(e);
    }
    Ok((snapshot, undo, files))
}

/// What [`materialize`] did.
#[derive(Debug)]
pub struct Materialized {
    pub snapshot: Snapshot,
    /// Bootstrap events written for WPs the log did not know.
    pub bootstrapped: usize,
    pub files: Vec<PathBuf>,
}

/// Rebuilds every view of the feature from its log, under the lock
/// (bootstrapping WPs the log does not know first).
pub fn materialize(feat: &Feature) -> Result<Materialized, CliError> {
    let _lock = take_lock(feat)?;
    let loaded = load(feat)?;
    let bootstrap = loaded.bootstrap.clone();
    let (snapshot, _undo, files) = write(feat, &loaded, &bootstrap, None)?;
    Ok(Materialized {
        snapshot,
        bootstrapped: bootstrap.len(),
        files,
    })
}

/// The current state from the log (and the frontmatter of WPs the log
/// does not know yet), read without writing anything.
pub fn snapshot(feat: &Feature) -> Result<Snapshot, CliError> {
    let loaded = load(feat)?;
    Ok(reducer::reduce(
        loaded.events.iter().chain(&loaded.bootstrap),
    ))
}

/// Whether the feature has a log file.
pub fn has_log(feat: &Feature) -> bool {
    log::path(&feat.dir).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_jumps_list_their_hops_and_single_steps_are_not_jumps() {
        use Lane::*;
        assert_eq!(
            forward_hops(Planned, InProgress),
            Some(vec![(Planned, Claimed), (Claimed, InProgress)])
        );
        assert_eq!(forward_hops(Planned, Claimed), None);
        assert_eq!(forward_hops(Done, Planned), None);
        assert_eq!(forward_hops(Blocked, Done), None);
        assert!(reachable(InProgress, Done));
        assert!(!reachable(Done, InProgress));
    }

    #[test]
    fn history_becomes_2_1_3s_migration_chain() {
        let text = "---\nwork_package_id: WP01\nlane: for_review\nreview_status: approved\nreviewed_by: rev\nhistory:\n- timestamp: '2026-02-07T00:00:00Z'\n  lane: planned\n  agent: system\n- timestamp: '2026-02-07T01:00:00Z'\n  lane: doing\n  agent: claude\n- timestamp: '2026-02-07T01:30:00Z'\n  lane: doing\n  agent: claude\n- timestamp: '2026-02-07T02:00:00Z'\n  lane: done\n  agent: ''\n---\nbody\n";
        let wp = WpFile::parse(Path::new("WP01-x.md"), text.into()).unwrap();
        let ev = migration_events("001-demo", &wp, "migration", "NOW");
        let got: Vec<(Lane, Lane, &str, &str, &str)> = ev
            .iter()
            .map(|e| {
                (
                    e.from_lane,
                    e.to_lane,
                    e.at.as_str(),
                    e.actor.as_str(),
                    e.reason.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Lane::Planned,
                    Lane::InProgress,
                    "2026-02-07T01:00:00Z",
                    "claude",
                    MIGRATION_MARKER
                ),
                (
                    Lane::InProgress,
                    Lane::Done,
                    "2026-02-07T02:00:00Z",
                    "migration",
                    "historical migration"
                ),
                (
                    Lane::Done,
                    Lane::ForReview,
                    "2026-02-07T02:00:00Z",
                    "migration",
                    "historical migration"
                ),
            ]
        );
        assert!(ev
            .iter()
            .all(|e| e.force && e.execution_mode == "direct_repo"));
        assert_eq!(
            ev[1].evidence.as_ref().unwrap().review.reference,
            "frontmatter-migration:WP01"
        );
        let planned =
            WpFile::parse(Path::new("WP02-x.md"), "---\nlane: planned\n---\n".into()).unwrap();
        assert!(migration_events("001-demo", &planned, "migration", "NOW").is_empty());
    }

    #[test]
    fn unticked_subtasks_are_read_from_the_wps_section_only() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("tasks.md"),
            "# Tasks\n\n## WP01 First\n- [x] T001 a\n- [ ] T002 b\n\n## WP02 Second\n- [ ] T003 c\n",
        )
        .unwrap();
        assert_eq!(unticked_subtasks(d.path(), "WP01"), vec!["T002"]);
        assert!(!subtasks_complete(d.path(), "WP02"));
        assert!(subtasks_complete(d.path(), "WP03"));
    }
}
