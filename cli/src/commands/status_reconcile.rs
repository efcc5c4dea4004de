//! `agent status reconcile [-f F] [--dry-run/--apply] [-t REPO]... [--json]`:
//! 2.1.3's planning-vs-implementation drift check
//! (`specify_cli/status/reconcile.py`). It scans repositories for
//! branches and commit messages that name the feature's work packages
//! (`\bWPnn\b`), and proposes the forward moves that evidence supports: a
//! commit moves a planned WP to claimed and a claimed one to in_progress;
//! a branch merged into main/master moves it up to for_review. Nothing
//! goes to approved or done (that needs a reviewer).
//!
//! A dry run (the default, as in 2.1.3) writes nothing and exits 1 when
//! there is drift. `--apply` appends the proposed events under the
//! feature's status lock, log first and fsynced, then rewrites the views
//! from the log. Unlike 2.1.3 the current lanes come from the log, not
//! from a possibly stale `status.json`.

use super::status_read::open_feature;
use crate::cli::StatusReconcileArgs;
use crate::error::{CliError, Kind};
use crate::feature::Feature;
use crate::fsutil;
use crate::output::Out;
use crate::status::current::{self, FeatureState};
use crate::status::event::StatusEvent;
use crate::status::{lock, log, reducer, transitions, views};
use crate::wpfile;
use serde_json::json;
use spec_kitty_protocol::Lane;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A commit that names a work package.
struct CommitInfo {
    sha: String,
}

/// What the scans found, over every target repository.
#[derive(Default)]
struct Evidence {
    commits: BTreeMap<String, Vec<CommitInfo>>,
    merged: BTreeSet<String>,
    repos_scanned: usize,
    errors: Vec<String>,
}

pub(crate) fn git_lines(repo: &Path, args: &[&str]) -> Vec<String> {
    Command::new("git")
        .args(args)
        .current_dir(repo)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every `WPnn` in `text` standing as a word (`\bWP(\d{2})\b`).
fn wp_ids(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(3) {
        if &b[i..i + 2] == b"WP"
            && (i == 0 || !word(b[i - 1]))
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && b.get(i + 4).is_none_or(|c| !word(*c))
        {
            out.push(text[i..i + 4].to_string());
        }
    }
    out
}

fn branch_name(line: &str) -> &str {
    line.trim().trim_start_matches(['*', '+', ' '])
}

fn scan(repo: &Path, slug: &str, ev: &mut Evidence) {
    let pattern = format!("*{slug}*");
    for line in git_lines(repo, &["branch", "-a", "--list", &pattern]) {
        let branch = branch_name(&line).to_string();
        for wp in wp_ids(&branch) {
            if let Some(sha) = git_lines(repo, &["log", "-1", "--format=%H", &branch])
                .into_iter()
                .next()
            {
                add(ev, &wp, sha);
            }
        }
    }
    let grep = format!("--grep={slug}");
    for line in git_lines(repo, &["log", "--all", &grep, "--format=%H %s"]) {
        let Some((sha, subject)) = line.split_once(' ') else {
            continue;
        };
        for wp in wp_ids(subject) {
            add(ev, &wp, sha.to_string());
        }
    }
    for base in ["main", "master"] {
        if git_lines(repo, &["rev-parse", "--verify", "--quiet", base]).is_empty() {
            continue;
        }
        for line in git_lines(repo, &["branch", "--merged", base, "--list", &pattern]) {
            ev.merged.extend(wp_ids(branch_name(&line)));
        }
        break;
    }
}

fn add(ev: &mut Evidence, wp: &str, sha: String) {
    let list = ev.commits.entry(wp.to_string()).or_default();
    if !list.iter().any(|c| c.sha == sha) {
        list.push(CommitInfo { sha });
    }
}

/// The forward chain planned → claimed → in_progress → for_review →
/// approved → done from `from` to `to`, empty when not forward.
fn chain(from: Lane, to: Lane) -> Vec<(Lane, Lane)> {
    // `Lane::ALL` lists the forward lanes first, in order.
    let p = &Lane::ALL[..6];
    let (Some(i), Some(j)) = (
        p.iter().position(|l| *l == from),
        p.iter().position(|l| *l == to),
    ) else {
        return Vec::new();
    };
    (i..j.max(i)).map(|k| (p[k], p[k + 1])).collect()
}

/// 2.1.3's `_generate_reconciliation_events`.
fn propose(slug: &str, state: &FeatureState, ev: &Evidence) -> (Vec<StatusEvent>, Vec<String>) {
    let now = spec_kitty_protocol::time::now_utc();
    let mut events = Vec::new();
    let mut details = Vec::new();
    for (wp, commits) in &ev.commits {
        let lane = state.wps.get(wp).map_or(Lane::Planned, |w| w.lane);
        let n = commits.len();
        if transitions::is_terminal(lane) {
            details.push(format!(
                "{wp}: in terminal lane {}, skipping",
                lane.as_wire()
            ));
            continue;
        }
        if lane == Lane::Blocked {
            details.push(format!(
                "{wp}: currently blocked, has {n} commit(s) -- manual review needed"
            ));
            continue;
        }
        let merged = ev.merged.contains(wp);
        let (target, summary) = match lane {
            Lane::Planned | Lane::Claimed | Lane::InProgress if merged => (
                Lane::ForReview,
                format!("branch merged to main with {n} commit(s)"),
            ),
            Lane::ForReview | Lane::Approved if merged => {
                details.push(format!("{wp}: branch merged and in {} -- may be ready for approved then done (requires reviewer approval evidence)", lane.as_wire()));
                continue;
            }
            Lane::Planned => (Lane::Claimed, format!("{n} commit(s) found")),
            Lane::Claimed => (Lane::InProgress, format!("{n} commit(s) found")),
            _ => continue,
        };
        details.push(format!(
            "{wp}: {} -> {} ({summary})",
            lane.as_wire(),
            target.as_wire()
        ));
        for (from, to) in chain(lane, target) {
            events.push(StatusEvent {
                event_id: ulid::Ulid::new().to_string(),
                feature_slug: slug.to_string(),
                wp_id: wp.clone(),
                from_lane: from,
                to_lane: to,
                at: now.clone(),
                actor: "reconcile".into(),
                force: false,
                execution_mode: "direct_repo".into(),
                reason: Some(format!("Reconciliation: {summary}")),
                review_ref: None,
                evidence: None,
                policy_metadata: None,
            });
        }
    }
    (events, details)
}

pub fn run(out: &Out, a: StatusReconcileArgs) -> Result<(), CliError> {
    let feat = open_feature(a.feature.as_deref())?;
    if !feat.dir.is_dir() {
        return Err(CliError::invalid(format!(
            "Feature directory not found: {}",
            feat.dir.display()
        )));
    }
    let apply = a.apply && !a.dry_run;
    if apply && crate::feature::resolve_phase(&feat).0 < 1 {
        return Err(CliError::refused(
            "Cannot apply reconciliation events at Phase 0 (status_phase in meta.json or status.phase in .kittify/config.yaml). Upgrade to Phase 1+ to enable event persistence. Use --dry-run to preview without persisting.",
        ));
    }
    let state = current::read(&feat)?;
    let targets: Vec<PathBuf> = if a.target_repo.is_empty() {
        vec![feat.root.clone()]
    } else {
        a.target_repo.clone()
    };
    let mut ev = Evidence::default();
    for repo in &targets {
        if !repo.exists() {
            ev.errors
                .push(format!("Target repo does not exist: {}", repo.display()));
            continue;
        }
        ev.repos_scanned += 1;
        scan(repo, &feat.slug, &mut ev);
    }
    let (events, mut details) = propose(&feat.slug, &state, &ev);
    if ev.commits.is_empty() {
        details.push("No WP-linked commits found in target repos".into());
    }
    let drift = !events.is_empty();
    if apply && drift {
        let n = apply_events(&feat, &events)?;
        details.push(format!("Applied {n} reconciliation event(s)"));
    }
    out.json(&json!({
        "drift_detected": drift,
        "suggested_events": events.iter().map(StatusEvent::to_value).collect::<Vec<_>>(),
        "details": details,
        "errors": ev.errors,
        "stats": {"target_repos_scanned": ev.repos_scanned, "wps_analyzed": ev.commits.len()},
    }));
    if !out.json {
        if !drift && ev.errors.is_empty() {
            out.line("No drift detected -- planning state matches implementation evidence.");
        }
        if drift {
            out.line(if apply {
                "Reconciliation events (applied):"
            } else {
                "Suggested reconciliation events (dry run; --apply appends them):"
            });
            for e in &events {
                out.line(&format!(
                    "  {}  {} -> {}  {}",
                    e.wp_id,
                    e.from_lane.as_wire(),
                    e.to_lane.as_wire(),
                    e.reason.as_deref().unwrap_or("")
                ));
            }
        }
        if !details.is_empty() {
            out.line("Details:");
            for d in &details {
                out.line(&format!("  {d}"));
            }
        }
        for e in &ev.errors {
            out.line(&format!("Error: {e}"));
        }
        out.line(&format!(
            "Repos scanned: {}  |  WPs analyzed: {}  |  Drift detected: {}",
            ev.repos_scanned,
            ev.commits.len(),
            if drift { "yes" } else { "no" }
        ));
    }
    if !ev.errors.is_empty() {
        // 2.1.3 exits 2 here.
        return Err(CliError::reported(Kind::Io));
    }
    if drift && !apply {
        return Err(CliError::reported(Kind::Io));
    }
    Ok(())
}

/// Appends the events under the status lock (re-checking that each WP is
/// still where the proposal assumed), then rewrites status.json, the
/// tasks.md block and the frontmatter lanes from the whole log.
fn apply_events(feat: &Feature, proposed: &[StatusEvent]) -> Result<usize, CliError> {
    let _guard = lock::acquire(&feat.root, &feat.slug)
        .map_err(|e| CliError::io_at("lock the status of", &feat.dir, &e))?;
    let state = current::read(feat)?;
    let mut lanes: BTreeMap<&str, Lane> = BTreeMap::new();
    let mut keep = Vec::new();
    for e in proposed {
        let now = *lanes
            .entry(e.wp_id.as_str())
            .or_insert_with(|| state.wps.get(&e.wp_id).map_or(Lane::Planned, |w| w.lane));
        if now == e.from_lane {
            lanes.insert(e.wp_id.as_str(), e.to_lane);
            keep.push(e.clone());
        }
    }
    log::append(&feat.dir, &keep).map_err(CliError::io_from)?;
    let events = log::read(&feat.dir)?;
    let snap = reducer::reduce(events.iter().map(|l| &l.event));
    let write = |p: &Path, text: &str| fsutil::write_repo_file(&feat.root, p, text.as_bytes());
    write(
        &feat.dir.join(reducer::SNAPSHOT_FILE),
        &snap.to_json(&spec_kitty_protocol::time::now_utc()),
    )?;
    let tasks_md = feat.dir.join("tasks.md");
    if let Some(old) = fsutil::read_repo_file(&feat.root, &tasks_md)? {
        let old = String::from_utf8_lossy(&old);
        let new = views::with_status_block(&old, &snap);
        if new != old {
            write(&tasks_md, &new)?;
        }
    }
    for wp in state.wps.values() {
        let (Some(file), Some(st)) = (&wp.file, snap.work_packages.get(&wp.wp_id)) else {
            continue;
        };
        if file.meta.lane != st.lane {
            write(&file.path, &wpfile::set_lane(file, st.lane.as_wire()))?;
        }
    }
    Ok(keep.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wp_ids_are_whole_words() {
        assert_eq!(wp_ids("001-demo-WP01"), vec!["WP01"]);
        assert_eq!(
            wp_ids("feat(WP02): x WP03, WP123 xWP04"),
            vec!["WP02", "WP03"]
        );
        assert!(wp_ids("WP1").is_empty());
    }

    #[test]
    fn chains_go_forward_only() {
        assert_eq!(
            chain(Lane::Planned, Lane::InProgress),
            vec![
                (Lane::Planned, Lane::Claimed),
                (Lane::Claimed, Lane::InProgress)
            ]
        );
        assert!(chain(Lane::ForReview, Lane::Claimed).is_empty());
    }
}
