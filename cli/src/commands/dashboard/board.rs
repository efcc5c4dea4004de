//! What the dashboard shows of the repository's files: each feature's work
//! packages with their current lane, and every file that could not be read.
//!
//! A feature's current lanes come from its status log when it has one
//! (2.1.3's reducer over `status.events.jsonl`: the log is the truth), and
//! from each WP file's frontmatter `lane:` otherwise, or for a WP the log
//! does not mention yet. Nothing here takes a lock or writes a file: a
//! reader racing a writer sees either the old or the new file (both CLIs
//! replace WP files by rename and append whole lines to the log), and a
//! half-appended last log line is read as "not yet written".
//!
//! A broken WP file or log never hides the rest: it becomes an entry of the
//! feature's `errors`, naming the file (and line) and what is wrong.

use crate::feature::{self, Feature};
use crate::fsutil;
use crate::project::Project;
use crate::status::log::{self, Logged};
use crate::status::reducer;
use serde_json::{json, Value};
use spec_kitty_protocol::Lane;
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The documents a feature's detail view renders, by URL name.
pub const DOCS: [(&str, &str); 3] = [
    ("spec", "spec.md"),
    ("plan", "plan.md"),
    ("tasks", "tasks.md"),
];

fn feature_of(project: &Project, slug: &str) -> Feature {
    Feature {
        slug: slug.to_string(),
        dir: project.specs_dir().join(slug),
        root: project.root.clone(),
    }
}

/// `path` relative to the project root, for people.
fn rel(project: &Project, path: &Path) -> String {
    path.strip_prefix(&project.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A cheap digest of everything a feature's card data depends on: the
/// names, inodes, sizes and modification times of its WP files, log and
/// meta.json. Both CLIs replace files by rename or append to them, so any
/// change shows here; the poller compares digests instead of reading files.
pub fn fingerprint(project: &Project, slug: &str) -> u64 {
    let dir = project.specs_dir().join(slug);
    let mut h = DefaultHasher::new();
    let mut stat = |p: &Path| {
        p.hash(&mut h);
        if let Ok(m) = fs::symlink_metadata(p) {
            (m.ino(), m.size(), m.mtime(), m.mtime_nsec()).hash(&mut h);
        }
    };
    for name in [
        "status.events.jsonl",
        "meta.json",
        "spec.md",
        "plan.md",
        "tasks.md",
    ] {
        stat(&dir.join(name));
    }
    let tasks = dir.join("tasks");
    stat(&tasks);
    let mut entries: Vec<_> = fs::read_dir(&tasks)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        stat(&p);
    }
    h.finish()
}

/// One feature as the board shows it.
pub fn feature_json(project: &Project, slug: &str) -> Value {
    let feat = feature_of(project, slug);
    let mut errors: Vec<Value> = Vec::new();
    let meta = read_meta_lenient(project, &feat, &mut errors);
    let name = meta
        .get("friendly_name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(slug)
        .to_string();

    let (wps, bad) = match feature::load_wps_lenient(&feat) {
        Ok(x) => x,
        Err(e) => {
            errors.push(json!({"file": rel(project, &feat.tasks_dir()), "message": e.message}));
            Default::default()
        }
    };
    for b in &bad {
        errors.push(json!({
            "file": rel(project, &b.path),
            "wp_id": b.wp_id,
            "message": b.error.message,
        }));
    }

    let logged = match read_log(&feat.dir) {
        Ok(l) => l,
        Err(e) => {
            errors.push(json!({
                "file": rel(project, &e.path),
                "line": e.line,
                "message": e.message,
            }));
            Vec::new()
        }
    };
    let snapshot = reducer::reduce(logged.iter().map(|l| &l.event));
    let source = if snapshot.work_packages.is_empty() {
        "frontmatter"
    } else {
        "status log"
    };

    let mut cards: Vec<Value> = Vec::with_capacity(wps.len());
    let mut counts: BTreeMap<&str, u64> = Lane::ALL.iter().map(|l| (l.as_wire(), 0)).collect();
    for wp in &wps {
        let fm: Value = crate::yamltext::from_str_sized(wp.frontmatter()).unwrap_or(Value::Null);
        let from_log = snapshot.work_packages.get(&wp.meta.wp_id);
        let lane = from_log.map_or(wp.meta.lane, |s| s.lane);
        let since = from_log
            .map(|s| s.last_transition_at.clone())
            .or_else(|| entered_lane_at(&fm, &wp.text[wp.fm.end..], lane));
        // The frontmatter's agent (set when work starts), else whoever
        // moved it last (log, else the last history entry).
        let agent = wp
            .meta
            .agent
            .clone()
            .or_else(|| from_log.map(|s| s.actor.clone()))
            .or_else(|| last_history_agent(&fm));
        *counts.entry(lane.as_wire()).or_default() += 1;
        cards.push(json!({
            "id": wp.meta.wp_id,
            "title": wp.meta.title,
            "lane": lane.as_wire(),
            "agent": agent,
            "since": since,
            "dependencies": wp.meta.dependencies,
            "review": review_state(&fm, lane),
            "file": rel(project, &wp.path),
        }));
    }
    cards.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let docs: Vec<&str> = DOCS
        .iter()
        .filter(|(_, f)| feat.dir.join(f).is_file())
        .map(|(n, _)| *n)
        .collect();
    json!({
        "slug": slug,
        "name": name,
        "mission": meta.get("mission").cloned().unwrap_or(Value::Null),
        "source": source,
        "wps": cards,
        "counts": counts,
        "errors": errors,
        "docs": docs,
        "events": logged.len(),
    })
}

/// meta.json as an object; a broken one is an error entry (the board still
/// shows the feature under its slug).
fn read_meta_lenient(
    project: &Project,
    feat: &Feature,
    errors: &mut Vec<Value>,
) -> serde_json::Map<String, Value> {
    match feature::read_meta(feat) {
        Ok((_, m)) => m,
        Err(e) => {
            errors.push(json!({"file": rel(project, &feat.meta_path()), "message": e.message}));
            Default::default()
        }
    }
}

/// The log, read without the status lock. A last line without its newline
/// that does not parse is an append in progress, not damage: it is left
/// for the next poll.
pub fn read_log(feature_dir: &Path) -> Result<Vec<Logged>, log::LogError> {
    match log::read(feature_dir) {
        Err(e) if e.line.is_some() => {
            let path = log::path(feature_dir);
            let text = fs::read_to_string(&path).unwrap_or_default();
            let last_line = text.split('\n').count();
            if !text.ends_with('\n') && e.line == Some(last_line) {
                let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
                return log::parse(&path, complete);
            }
            Err(e)
        }
        other => other,
    }
}

/// When the WP entered its current lane, for files without a log: the
/// latest frontmatter `history:` entry or body `## Activity Log` line
/// (`- <timestamp> – agent – lane=doing – note`) naming that lane.
fn entered_lane_at(fm: &Value, body: &str, lane: Lane) -> Option<String> {
    let is_lane = |l: &str| crate::wpfile::parse_lane(l).ok() == Some(lane);
    let from_history = fm
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|h| h.get("lane").and_then(Value::as_str).is_some_and(is_lane))
        .filter_map(|h| h.get("timestamp").and_then(Value::as_str));
    let from_activity = body.lines().filter_map(|l| {
        let rest = l.trim_start().strip_prefix("- ")?;
        let ts = rest.split_whitespace().next()?;
        let lane_field = rest
            .split(" – ")
            .find_map(|f| f.trim().strip_prefix("lane="))?;
        (ts.len() >= 10 && ts.as_bytes()[..4].iter().all(u8::is_ascii_digit) && is_lane(lane_field))
            .then_some(ts)
    });
    from_history.chain(from_activity).max().map(str::to_string)
}

fn last_history_agent(fm: &Value) -> Option<String> {
    fm.get("history")?
        .as_array()?
        .last()?
        .get("agent")?
        .as_str()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "system")
        .map(str::to_string)
}

/// The review state shown on a card: the frontmatter's `review_status` and
/// `reviewed_by` (2.x writes them), or "awaiting review" in for_review.
fn review_state(fm: &Value, lane: Lane) -> Value {
    let s = |k: &str| {
        fm.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match (s("review_status"), s("reviewed_by")) {
        (Some(status), by) => json!({"status": status, "by": by}),
        (None, _) if lane == Lane::ForReview => json!({"status": "awaiting review", "by": null}),
        _ => Value::Null,
    }
}

/// A feature's detail: its cards plus the status log as a timeline (or,
/// without a log, the WP files' `history:` entries).
pub fn detail_json(project: &Project, slug: &str) -> Value {
    let mut base = feature_json(project, slug);
    let feat = feature_of(project, slug);
    let mut timeline: Vec<Value> = match read_log(&feat.dir) {
        Ok(logged) => logged
            .iter()
            .map(|l| {
                let e = &l.event;
                json!({
                    "at": e.at, "wp_id": e.wp_id, "from": e.from_lane.as_wire(),
                    "to": e.to_lane.as_wire(), "actor": e.actor, "force": e.force,
                    "reason": e.reason, "review_ref": e.review_ref,
                    "verdict": e.evidence.as_ref().map(|ev| ev.review.verdict.clone()),
                    "reviewer": e.evidence.as_ref().map(|ev| ev.review.reviewer.clone()),
                    "line": l.line,
                })
            })
            .collect(),
        Err(_) => Vec::new(), // already an error card
    };
    let from_log = !timeline.is_empty();
    if !from_log {
        if let Ok((wps, _)) = feature::load_wps_lenient(&feat) {
            for wp in wps {
                let fm: Value =
                    crate::yamltext::from_str_sized(wp.frontmatter()).unwrap_or(Value::Null);
                for h in fm
                    .get("history")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let g = |k: &str| h.get(k).cloned().unwrap_or(Value::Null);
                    timeline.push(json!({
                        "at": g("timestamp"), "wp_id": wp.meta.wp_id, "from": null,
                        "to": g("lane"), "actor": g("agent"), "force": false,
                        "reason": g("action"), "review_ref": null, "verdict": null,
                        "reviewer": null, "line": null,
                    }));
                }
            }
        }
    }
    timeline.sort_by(|a, b| {
        let k = |v: &Value| v["at"].as_str().unwrap_or("").to_string();
        k(a).cmp(&k(b))
    });
    base["timeline"] = Value::Array(timeline);
    base["timeline_source"] = json!(if from_log { "status log" } else { "WP history" });
    base
}

/// A feature document rendered to HTML (`None`: no such document). The
/// link rule applies: a document that is a link out of the repository is
/// shown as an error, not read.
pub fn doc_json(project: &Project, slug: &str, doc: &str) -> Option<Value> {
    let file = DOCS.iter().find(|(n, _)| *n == doc)?.1;
    let path = project.specs_dir().join(slug).join(file);
    let shown = rel(project, &path);
    Some(match fsutil::read_repo_file(&project.root, &path) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            json!({"file": shown, "html": super::markdown::to_html(&text)})
        }
        Ok(None) => return None,
        Err(e) => json!({"file": shown, "error": e.message}),
    })
}

/// Feature slugs, in the board's order (newest number first, as 2.1.3).
pub fn slugs(project: &Project) -> Vec<String> {
    let mut all = feature::list(project);
    all.reverse();
    all
}
