//! What the dashboard shows of the repository's files: each feature's work
//! packages with their current lane, and every file that could not be read.
//!
//! A feature's current lanes are [`current::read`]'s, the one reader every
//! command uses: the status log where it has events for a WP (2.1.3's
//! reducer: the log is the truth), the WP file's frontmatter `lane:`
//! elsewhere. Nothing here takes a lock or writes a file: a reader racing
//! a writer sees the old or the new WP file (both CLIs replace them by
//! rename), and a half-appended last log line is read again, not reported.
//!
//! A broken WP file or log never hides the rest: it becomes an entry of the
//! feature's `errors`, naming the file (and line) and what is wrong.

use crate::feature::{self, Feature};
use crate::fsutil;
use crate::project::Project;
use crate::status::current::{self, CurrentWp, LaneSource, ReadError};
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

    let (wps, events, bad) = current_wps(project, &feat, &mut errors);
    for b in &bad {
        errors.push(json!({
            "file": rel(project, &b.path),
            "wp_id": b.wp_id,
            "message": b.error.message,
        }));
    }
    let source = if wps.iter().any(|w| w.source == LaneSource::Log) {
        "status log"
    } else {
        "frontmatter"
    };

    let mut cards: Vec<Value> = Vec::with_capacity(wps.len());
    let mut counts: BTreeMap<&str, u64> = Lane::ALL.iter().map(|l| (l.as_wire(), 0)).collect();
    for w in &wps {
        let fm: Value = w
            .file
            .as_ref()
            .and_then(|f| crate::yamltext::parse_value(f.frontmatter()).ok())
            .unwrap_or(Value::Null);
        let body = w.file.as_ref().map_or("", |f| &f.text[f.fm.end..]);
        let since = w
            .state
            .as_ref()
            .map(|s| s.last_transition_at.clone())
            .or_else(|| entered_lane_at(&fm, body, w.lane));
        // The frontmatter's agent (set when work starts), else whoever
        // moved it last (log, else the last history entry).
        let agent = w
            .file
            .as_ref()
            .and_then(|f| f.meta.agent.clone())
            .or_else(|| w.state.as_ref().map(|s| s.actor.clone()))
            .or_else(|| last_history_agent(&fm));
        *counts.entry(w.lane.as_wire()).or_default() += 1;
        cards.push(json!({
            "id": w.wp_id,
            "title": w.title(),
            "lane": w.lane.as_wire(),
            "agent": agent,
            "since": since,
            "dependencies": w.dependencies(),
            "review": review_state(&fm, w.lane),
            "file": w.file.as_ref().map(|f| rel(project, &f.path)),
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
        "events": events,
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

/// The feature's work packages as they stand (2.1.3's status model, see
/// [`current::read`]: log lanes where it has events, frontmatter lanes
/// elsewhere), the number of log events, and the WP files that cannot be
/// read. A broken log is an error card, and the board falls back to the
/// frontmatter lanes rather than showing nothing.
fn current_wps(
    project: &Project,
    feat: &Feature,
    errors: &mut Vec<Value>,
) -> (Vec<CurrentWp>, usize, Vec<feature::BadWp>) {
    let log_error = match current::read(feat) {
        Ok(st) => {
            return (
                st.wps.into_values().collect(),
                st.events.len(),
                st.unreadable,
            )
        }
        Err(ReadError::Feature(e)) => {
            errors.push(json!({"file": rel(project, &feat.tasks_dir()), "message": e.message}));
            return Default::default();
        }
        Err(ReadError::Log(e)) => e,
    };
    errors.push(json!({
        "file": rel(project, &log_error.path),
        "line": log_error.line,
        "message": log_error.message,
    }));
    match feature::load_wps_lenient(feat) {
        Ok((files, bad)) => {
            let wps = files
                .into_iter()
                .map(|f| CurrentWp {
                    wp_id: f.meta.wp_id.clone(),
                    lane: f.meta.lane,
                    source: LaneSource::Frontmatter,
                    file: Some(f),
                    state: None,
                })
                .collect();
            (wps, 0, bad)
        }
        Err(e) => {
            errors.push(json!({"file": rel(project, &feat.tasks_dir()), "message": e.message}));
            Default::default()
        }
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
    let mut timeline: Vec<Value> = match current::read(&feat) {
        Ok(st) => st
            .events
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
                    crate::yamltext::parse_value(wp.frontmatter()).unwrap_or(Value::Null);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{log, StatusEvent};

    fn project_with_wp(lane: &str) -> (tempfile::TempDir, Project) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let tasks = root.join("kitty-specs/001-demo/tasks");
        fs::create_dir_all(&tasks).unwrap();
        fs::write(
            tasks.join("WP01-a.md"),
            format!("---\nwork_package_id: WP01\ntitle: First\nlane: {lane}\ndependencies: []\n---\n# body\n"),
        )
        .unwrap();
        let project = Project {
            root,
            git_root: None,
        };
        (tmp, project)
    }

    #[test]
    fn lanes_come_from_the_log_and_a_broken_log_is_an_error_card_over_frontmatter_lanes() {
        let (_tmp, project) = project_with_wp("planned");
        let dir = project.specs_dir().join("001-demo");
        let mut e = StatusEvent::sample(
            "01A",
            "WP01",
            Lane::Planned,
            Lane::Claimed,
            "2026-11-29T10:00:00+00:00",
        );
        e.actor = "claude".into();
        log::append(&dir, &[e]).unwrap();
        let f = feature_json(&project, "001-demo");
        assert_eq!(f["source"], "status log", "{f}");
        assert_eq!(f["events"], 1);
        let card = &f["wps"][0];
        assert_eq!(card["lane"], "claimed", "{f}");
        assert_eq!(card["since"], "2026-11-29T10:00:00+00:00");
        assert_eq!(card["agent"], "claude");
        assert_eq!(f["counts"]["claimed"], 1);
        assert!(f["errors"].as_array().unwrap().is_empty(), "{f}");

        // A complete bad line: an error card naming file and line, and the
        // board shows the frontmatter lane instead of nothing.
        let mut text = fs::read_to_string(log::path(&dir)).unwrap();
        text.push_str("{not json}\n");
        fs::write(log::path(&dir), text).unwrap();
        let f = feature_json(&project, "001-demo");
        let err = &f["errors"][0];
        assert_eq!(
            err["file"], "kitty-specs/001-demo/status.events.jsonl",
            "{f}"
        );
        assert_eq!(err["line"], 2);
        assert_eq!(f["wps"][0]["lane"], "planned");
        assert_eq!(f["source"], "frontmatter");
    }

    #[test]
    fn without_a_log_the_time_in_lane_comes_from_history_or_the_activity_log() {
        let (_tmp, project) = project_with_wp("doing");
        let wp = project.specs_dir().join("001-demo/tasks/WP01-a.md");
        let text = fs::read_to_string(&wp).unwrap().replace(
            "dependencies: []\n",
            "dependencies: []\nhistory:\n- timestamp: '2026-01-01T00:00:00Z'\n  lane: planned\n  agent: system\n",
        ) + "\n## Activity Log\n\n- 2026-01-02T08:00:00Z – codex – shell_pid=1 – lane=doing – Started\n";
        fs::write(&wp, text).unwrap();
        let f = feature_json(&project, "001-demo");
        assert_eq!(f["wps"][0]["lane"], "in_progress", "{f}");
        assert_eq!(f["wps"][0]["since"], "2026-01-02T08:00:00Z", "{f}");
        assert_eq!(f["source"], "frontmatter");
    }
}
