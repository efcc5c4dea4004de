//! `agent status validate | doctor | reconcile` and the hidden git merge
//! driver: checking the canonical status model and saying how to repair
//! it, with 2.1.3's checks, messages and JSON keys
//! (`specify_cli/status/{validate,doctor,reconcile}.py`).
//!
//! `validate` and `doctor` only read: a problem is reported with the
//! command that repairs it, never repaired on the way (2.1.3's doctor is
//! read-only too). Unlike 2.1.3, a log line that is not JSON does not
//! crash them: it is a finding naming the file and line, and the checks
//! that need the whole log are skipped with a finding saying so.

use super::status_read::open_feature;
use crate::cli::{MergeDriverArgs, StatusCheckCommand, StatusDoctorArgs, StatusValidateArgs};
use crate::error::{CliError, Kind};
use crate::feature::{self, Feature};
use crate::fsutil;
use crate::output::Out;
use crate::pyjson::py_str;
use crate::status::current::{self, FeatureState, LaneSource};
use crate::status::log::{self, LogError, Logged};
use crate::status::reducer::{self, Snapshot};
use crate::status::transitions;
use crate::status::views::{BLOCK_END, BLOCK_START};
use crate::wpfile;
use serde_json::{json, Value};
use spec_kitty_protocol::Lane;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub fn run(out: &Out, c: StatusCheckCommand) -> Result<(), CliError> {
    match c {
        StatusCheckCommand::Validate(a) => validate(out, a),
        StatusCheckCommand::Doctor(a) => doctor(out, a),
        StatusCheckCommand::Reconcile(a) => super::status_reconcile::run(out, a),
        StatusCheckCommand::MergeDriver(a) => merge_driver(a),
    }
}

/// Exit 1 with everything already printed: "problems found".
fn problems_found() -> CliError {
    CliError::reported(Kind::Io)
}

// ---------------------------------------------------------------------------
// Reading the log loosely: every line, JSON or not, with its number.

/// One non-blank line of the log.
struct RawLine {
    line: usize,
    /// The parsed JSON object, or why the line is not one.
    value: Result<serde_json::Map<String, Value>, String>,
}

/// The log's lines; `None` when there is no log file.
fn read_raw(feature_dir: &Path) -> Result<Option<Vec<RawLine>>, CliError> {
    let path = log::path(feature_dir);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io_at("read", &path, &e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| RawLine {
            line: i + 1,
            value: match serde_json::from_str::<Value>(l.trim()) {
                Ok(Value::Object(o)) => Ok(o),
                Ok(_) => Err("not a JSON object".to_string()),
                Err(e) => Err(format!("invalid JSON ({e})")),
            },
        })
        .collect();
    Ok(Some(lines))
}

fn s<'a>(e: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

fn canonical(lane: &str) -> Option<Lane> {
    Lane::parse(lane).ok().filter(|l| l.as_wire() == lane)
}

fn valid_event_id(id: &str) -> bool {
    ulid::Ulid::from_string(id).is_ok() || uuid::Uuid::parse_str(id).is_ok()
}

fn valid_time(at: &str) -> bool {
    use spec_kitty_protocol::time::parse_micros;
    parse_micros(at).is_some() || parse_micros(&format!("{at}+00:00")).is_some()
}

/// 2.1.3's `validate_event_schema`, message for message.
fn schema_findings(e: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut f = Vec::new();
    for k in [
        "event_id",
        "feature_slug",
        "wp_id",
        "from_lane",
        "to_lane",
        "at",
        "actor",
        "force",
        "execution_mode",
    ] {
        if !e.contains_key(k) {
            f.push(format!("Missing required field: {k}"));
        }
    }
    let id = e.get("event_id").map(py_str).unwrap_or_default();
    if !id.is_empty() && !valid_event_id(&id) {
        f.push(format!("Invalid event ID format: {id}"));
    }
    for k in ["from_lane", "to_lane"] {
        if let Some(v) = e.get(k).filter(|v| !v.is_null()) {
            if v.as_str().and_then(canonical).is_none() {
                f.push(format!("{k} is not canonical: {}", py_str(v)));
            }
        }
    }
    if let Some(at) = e.get("at").filter(|v| !v.is_null()) {
        if !valid_time(&py_str(at)) {
            f.push(format!(
                "Event {id}: invalid ISO 8601 timestamp: {}",
                py_str(at)
            ));
        }
    }
    if let Some(force) = e.get("force").filter(|v| !v.is_null() && !v.is_boolean()) {
        f.push(format!(
            "Event {id}: force must be boolean, got {}",
            py_type(force)
        ));
    }
    if let Some(m) = e.get("execution_mode").filter(|v| !v.is_null()) {
        if !matches!(m.as_str(), Some("worktree" | "direct_repo")) {
            f.push(format!(
                "Event {id}: execution_mode must be 'worktree' or 'direct_repo', got '{}'",
                py_str(m)
            ));
        }
    }
    let truthy = |k: &str| match e.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    if e.get("force") == Some(&Value::Bool(true)) && !truthy("reason") {
        f.push(format!("Event {id}: force=true without reason"));
    }
    if s(e, "from_lane") == Some("for_review")
        && s(e, "to_lane") == Some("in_progress")
        && !truthy("review_ref")
    {
        f.push(format!(
            "Event {id}: for_review->in_progress without review_ref"
        ));
    }
    f
}

fn py_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "str",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
        Value::Bool(_) => "bool",
        Value::Null => "NoneType",
    }
}

/// 2.1.3's `validate_transition_legality`: each unforced event's pair is
/// in the matrix, in `(at, event_id)` order.
fn legality_findings(events: &[&serde_json::Map<String, Value>]) -> Vec<String> {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| {
        (s(a, "at").unwrap_or(""), s(a, "event_id").unwrap_or(""))
            .cmp(&(s(b, "at").unwrap_or(""), s(b, "event_id").unwrap_or("")))
    });
    let mut f = Vec::new();
    for e in sorted {
        let (Some(from), Some(to)) = (s(e, "from_lane"), s(e, "to_lane")) else {
            continue;
        };
        if e.get("force").is_some_and(|v| v.as_bool() != Some(false)) {
            continue;
        }
        let legal = matches!((canonical(from), canonical(to)), (Some(a), Some(b)) if transitions::allowed(a, b));
        if !legal {
            let id = s(e, "event_id").unwrap_or("unknown");
            f.push(format!("Event {id}: illegal transition {from} -> {to}"));
        }
    }
    f
}

/// 2.1.3's `validate_done_evidence`.
fn evidence_findings(events: &[&serde_json::Map<String, Value>]) -> Vec<String> {
    let mut f = Vec::new();
    for e in events {
        if s(e, "to_lane") != Some("done") || e.get("force").is_some_and(|v| v == true) {
            continue;
        }
        let id = s(e, "event_id").unwrap_or("unknown");
        let ev = match e.get("evidence") {
            None | Some(Value::Null) => {
                f.push(format!("Event {id}: done without evidence (not forced)"));
                continue;
            }
            Some(Value::Object(o)) if o.is_empty() => {
                f.push(format!("Event {id}: done without evidence (not forced)"));
                continue;
            }
            Some(Value::Object(o)) => o,
            Some(_) => {
                f.push(format!("Event {id}: done evidence is not a dict"));
                continue;
            }
        };
        match ev.get("review") {
            None | Some(Value::Null) => {
                f.push(format!("Event {id}: done evidence missing review section"))
            }
            Some(Value::Object(r)) => {
                for (k, what) in [
                    ("reviewer", "reviewer identity"),
                    ("verdict", "verdict"),
                    ("reference", "approval reference"),
                ] {
                    if r.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                        f.push(format!("Event {id}: done evidence missing {what}"));
                    }
                }
            }
            Some(_) => f.push(format!("Event {id}: done evidence review is not a dict")),
        }
    }
    f
}

/// 2.1.3's `validate_materialization_drift`: `status.json` against the
/// reduced log (`materialized_at` aside).
fn materialization_findings(feature_dir: &Path, snapshot: Option<&Snapshot>) -> Vec<String> {
    let status_path = feature_dir.join(reducer::SNAPSHOT_FILE);
    let log_exists = log::path(feature_dir).exists();
    if !log_exists {
        if status_path.exists() {
            return vec!["status.json exists but status.events.jsonl is missing".into()];
        }
        return Vec::new();
    }
    if !status_path.exists() {
        return vec!["status.events.jsonl exists but status.json is missing (run 'spec-kitty agent status materialize' to generate)".into()];
    }
    let Some(snapshot) = snapshot else {
        return Vec::new();
    };
    let disk: Value = match fs::read(&status_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            return vec![format!(
                "Materialization drift: {} cannot be read as JSON ({e})",
                status_path.display()
            )]
        }
    };
    let expected: Value =
        serde_json::from_str(&snapshot.to_json("")).expect("our own status.json parses");
    let mut f = Vec::new();
    let empty = serde_json::Map::new();
    let disk_wps = disk
        .get("work_packages")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let exp_wps = expected["work_packages"].as_object().unwrap_or(&empty);
    let ids: std::collections::BTreeSet<&String> = disk_wps.keys().chain(exp_wps.keys()).collect();
    for id in ids {
        match (disk_wps.get(id), exp_wps.get(id)) {
            (None, Some(e)) => f.push(format!(
                "Materialization drift: {id} missing from status.json (expected lane={})",
                e["lane"].as_str().unwrap_or("?")
            )),
            (Some(_), None) => f.push(format!(
                "Materialization drift: {id} in status.json but not in reducer output"
            )),
            (Some(d), Some(e)) if d.get("lane") != e.get("lane") => f.push(format!(
                "Materialization drift: {id} lane={} in status.json but reducer says lane={}",
                d.get("lane").map(py_str).unwrap_or("None".into()),
                e["lane"].as_str().unwrap_or("?")
            )),
            (Some(d), Some(e)) if d != e => f.push(format!(
                "Materialization drift: {id} state differs between status.json and reducer output"
            )),
            _ => {}
        }
    }
    if disk.get("event_count") != Some(&expected["event_count"]) {
        f.push(format!(
            "Materialization drift: event_count={} in status.json but reducer counted {}",
            disk.get("event_count").map(py_str).unwrap_or("None".into()),
            snapshot.event_count
        ));
    }
    if disk.get("last_event_id") != Some(&expected["last_event_id"]) {
        f.push(
            "Materialization drift: last_event_id mismatch between status.json and reducer output"
                .into(),
        );
    }
    f
}

/// The first WP file of `wp_id` as 2.1.3 globs it, raw text.
fn wp_text(feat: &Feature, wp_id: &str) -> Option<String> {
    let path = feature::find_wp(feat, wp_id).ok()?;
    let bytes = spec_kitty_protocol::fsutil::read_regular(&path).ok()?;
    String::from_utf8(bytes).ok()
}

/// The frontmatter `lane:` as 2.1.3's drift check reads it: the first
/// `lane:` line of the file (quotes off).
fn raw_lane(text: &str) -> Option<String> {
    let text = text.trim_start_matches('\u{feff}');
    let fm = wpfile::split(text).map_or(text, |(r, _)| &text[r]);
    let kl = crate::yamltext::find_key(fm, "lane")?;
    let v = kl.inner(fm).trim();
    (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_string())
}

/// 2.1.3's `validate_derived_views`: frontmatter lanes and the tasks.md
/// block against the snapshot, each finding prefixed with its severity.
fn view_findings(feat: &Feature, events: &[Logged], phase: u8) -> Vec<String> {
    let sev = if phase >= 2 { "ERROR" } else { "WARNING" };
    let mut f = Vec::new();
    if !feat.tasks_dir().exists() {
        return f;
    }
    let snapshot = reducer::reduce(events.iter().map(|l| &l.event));
    let in_order = reducer_order(events);
    let wps = in_order
        .iter()
        .filter_map(|id| Some((id, snapshot.work_packages.get(id)?)));
    for (id, st) in wps.clone() {
        let lane = st.lane.as_wire();
        let Some(text) = wp_text(feat, id) else {
            f.push(format!(
                "{id}: no WP file found in tasks/ (canonical state: {lane})"
            ));
            continue;
        };
        let Some(fm_lane) = raw_lane(&text) else {
            f.push(format!(
                "{id}: no lane field in frontmatter (canonical state: {lane})"
            ));
            continue;
        };
        let fm_lane = if fm_lane == "doing" {
            "in_progress".to_string()
        } else {
            fm_lane
        };
        if fm_lane != lane {
            f.push(format!(
                "{sev}: {id} frontmatter lane={fm_lane} but canonical state={lane}"
            ));
        }
    }
    let tasks_md = feat.dir.join("tasks.md");
    let Ok(content) = fs::read_to_string(&tasks_md) else {
        return f;
    };
    let Some(lines) = block_lines(&content) else {
        f.push(format!(
            "{sev}: tasks.md is missing generated canonical status block"
        ));
        return f;
    };
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    for l in lines {
        match parse_block_line(&l) {
            Some((id, lane)) => {
                listed.insert(id, lane);
            }
            None => f.push(format!(
                "{sev}: tasks.md status block has malformed line: {l}"
            )),
        }
    }
    for (id, st) in wps {
        let lane = st.lane.as_wire();
        match listed.get(id) {
            None => f.push(format!(
                "{sev}: tasks.md status block missing {id} (canonical state: {lane})"
            )),
            Some(l) if l != lane => f.push(format!(
                "{sev}: {id} tasks.md lane={l} but canonical state={lane}"
            )),
            _ => {}
        }
    }
    for id in listed.keys() {
        if !snapshot.work_packages.contains_key(id) {
            f.push(format!(
                "{sev}: tasks.md status block includes unknown {id}"
            ));
        }
    }
    f
}

/// Work package ids in the order 2.1.3's reducer first meets them (its
/// snapshot is a dict in that order, and its findings follow it).
fn reducer_order(events: &[Logged]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<&crate::status::StatusEvent> = events
        .iter()
        .map(|l| &l.event)
        .filter(|e| seen.insert(e.event_id.as_str()))
        .collect();
    unique.sort_by(|a, b| (&a.at, &a.event_id).cmp(&(&b.at, &b.event_id)));
    let mut order: Vec<String> = Vec::new();
    for e in unique {
        if !order.contains(&e.wp_id) {
            order.push(e.wp_id.clone());
        }
    }
    order
}

/// The lines of the generated block (heading dropped); `None` without one.
fn block_lines(content: &str) -> Option<Vec<String>> {
    let start = content.find(BLOCK_START)?;
    let end = content[start..].find(BLOCK_END)? + start;
    let block = &content[start + BLOCK_START.len()..end];
    let mut lines: Vec<String> = block
        .trim()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.first().is_some_and(|l| l.starts_with("## ")) {
        lines.remove(0);
    }
    Some(lines)
}

/// `- WPnn: lane` (lane lowercase letters and `_`).
fn parse_block_line(l: &str) -> Option<(String, String)> {
    let rest = l.strip_prefix("- WP")?;
    let (num, lane) = rest.split_once(": ")?;
    let ok = num.len() == 2
        && num.bytes().all(|b| b.is_ascii_digit())
        && !lane.is_empty()
        && lane.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    ok.then(|| (format!("WP{num}"), lane.to_string()))
}

// ---------------------------------------------------------------------------
// agent status validate

fn validate(out: &Out, a: StatusValidateArgs) -> Result<(), CliError> {
    let feat = open_feature(a.feature.as_deref())?;
    if !feat.dir.is_dir() {
        return Err(CliError::invalid(format!(
            "Feature directory not found: {}",
            feat.dir.display()
        )));
    }
    let (phase, phase_source) = feature::resolve_phase(&feat);
    let raw = read_raw(&feat.dir)?.unwrap_or_default();
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    if !raw.is_empty() {
        let log_path = log::path(&feat.dir);
        for r in &raw {
            match &r.value {
                Ok(e) => errors.extend(schema_findings(e)),
                Err(why) => errors.push(format!(
                    "{}:{}: {why}; `spec-kitty agent status doctor` shows how to repair it",
                    log_path.display(),
                    r.line
                )),
            }
        }
        let objs: Vec<&serde_json::Map<String, Value>> =
            raw.iter().filter_map(|r| r.value.as_ref().ok()).collect();
        errors.extend(legality_findings(&objs));
        errors.extend(evidence_findings(&objs));
        match log::read(&feat.dir) {
            Ok(events) => {
                let snap = reducer::reduce(events.iter().map(|l| &l.event));
                let drift = materialization_findings(&feat.dir, Some(&snap));
                if phase >= 2 {
                    errors.extend(drift);
                } else {
                    warnings.extend(drift);
                }
                for v in view_findings(&feat, &events, phase) {
                    if v.starts_with("WARNING:") {
                        warnings.push(v);
                    } else {
                        errors.push(v);
                    }
                }
            }
            Err(e) => {
                // What 2.1.3 reports without reading the events.
                let drift = materialization_findings(&feat.dir, None);
                if phase >= 2 {
                    errors.extend(drift);
                } else {
                    warnings.extend(drift);
                }
                errors.push(format!("Failed to validate derived views: {e}"));
            }
        }
    }
    let passed = errors.is_empty();
    out.json(&json!({
        "feature_slug": feat.slug,
        "phase": phase,
        "phase_source": phase_source,
        "passed": passed,
        "errors": errors,
        "warnings": warnings,
        "error_count": errors.len(),
        "warning_count": warnings.len(),
    }));
    if !out.json {
        out.line(&format!(
            "Status Validation: {} (Phase {phase})",
            out.bold(&feat.slug)
        ));
        out.line(&"-".repeat(50));
        if raw.is_empty() {
            out.line("No events to validate.");
        }
        if !errors.is_empty() {
            out.line(&format!("Errors: {}", errors.len()));
            for e in &errors {
                out.line(&format!("  - {e}"));
            }
        }
        if !warnings.is_empty() {
            out.line(&format!("Warnings: {}", warnings.len()));
            for w in &warnings {
                out.line(&format!("  - {w}"));
            }
        }
        out.line("");
        out.line(&match (passed, warnings.len()) {
            (true, 0) => format!("Result: {}", out.green("PASS")),
            (true, n) => format!("Result: {} ({n} warning(s))", out.green("PASS")),
            (false, _) => "Result: FAIL".to_string(),
        });
    }
    if passed {
        Ok(())
    } else {
        Err(problems_found())
    }
}

// ---------------------------------------------------------------------------
// agent status doctor

/// One doctor finding, with 2.1.3's keys.
struct Finding {
    severity: &'static str,
    category: &'static str,
    wp_id: Option<String>,
    message: String,
    recommended_action: String,
}

/// 2.1.3's repairs for the two kinds of drift, word for word.
const REMATERIALIZE_SNAPSHOT: &str = "Run 'spec-kitty agent status materialize' to regenerate status.json from the canonical event log.";
const REMATERIALIZE_VIEWS: &str =
    "Run 'spec-kitty agent status materialize' to regenerate derived views from status.json.";

/// What repairs a log line the reader refuses.
fn log_repair(err: &LogError, text: &str) -> String {
    let Some(n) = err.line else {
        return "Make the file readable (permissions, encoding: UTF-8) and run the command again."
            .into();
    };
    let line = text.split('\n').nth(n - 1).unwrap_or("").trim_start();
    let last = text.trim_end_matches('\n').split('\n').count() == n;
    if ["<<<<<<<", "=======", ">>>>>>>", "|||||||"]
        .iter()
        .any(|m| line.starts_with(m))
    {
        return format!("Line {n} is a git conflict marker: the merge of status.events.jsonl was not resolved. Keep every event line of both sides, delete the marker lines, then run 'spec-kitty agent status materialize'. (`spec-kitty init` configures a merge driver that unions the log so this does not recur.)");
    }
    if last && !text.ends_with('\n') {
        return format!("Line {n} is a torn last line (a write interrupted by a crash): the event it held never completed. Delete line {n}, then run 'spec-kitty agent status materialize'.");
    }
    format!("Fix line {n} by hand (one JSON status event per line, canonical lanes: planned, claimed, in_progress, for_review, approved, done, blocked, canceled) or delete it if it was not written by spec-kitty; then run 'spec-kitty agent status validate'.")
}

fn days_since(at: &str, now_us: i64) -> Option<i64> {
    let t = spec_kitty_protocol::time::parse_micros(at)?;
    Some((now_us - t).div_euclid(86_400_000_000))
}

fn doctor(out: &Out, a: StatusDoctorArgs) -> Result<(), CliError> {
    let feat = open_feature(a.feature.as_deref())?;
    if !feat.dir.is_dir() {
        return Err(CliError::invalid(format!(
            "Feature directory does not exist: {}",
            feat.dir.display()
        )));
    }
    let mut findings: Vec<Finding> = Vec::new();
    let state: Option<FeatureState> = match current::read(&feat) {
        Ok(s) => Some(s),
        Err(current::ReadError::Log(e)) => {
            let text = fs::read(log::path(&feat.dir))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            findings.push(Finding {
                severity: "error",
                category: "event_log_unreadable",
                wp_id: None,
                recommended_action: log_repair(&e, &text),
                message: e.to_string(),
            });
            None
        }
        Err(current::ReadError::Feature(e)) => return Err(e),
    };
    // WP files the reader refuses, whether or not the log could be read.
    let bad = match &state {
        Some(s) => s
            .unreadable
            .iter()
            .map(|b| (b.wp_id.clone(), b.error.message.clone()))
            .collect(),
        None => feature::load_wps_lenient(&feat)?
            .1
            .into_iter()
            .map(|b| (b.wp_id, b.error.message))
            .collect::<Vec<_>>(),
    };
    for (wp_id, message) in bad {
        findings.push(Finding {
            severity: "error",
            category: "wp_file_unreadable",
            recommended_action: format!("Fix the frontmatter of {wp_id}'s file by hand: YAML between `---` lines, `lane:` one of planned, doing, for_review, approved, done, claimed, blocked, canceled. The status log is not affected; 'spec-kitty agent status materialize' rewrites the lane from it afterwards."),
            wp_id: Some(wp_id),
            message,
        });
    }
    if let Some(state) = &state {
        if !state.has_log() {
            let moved: Vec<String> = state
                .wps
                .values()
                .filter(|w| w.source == LaneSource::Frontmatter && w.lane != Lane::Planned)
                .map(|w| format!("{}={}", w.wp_id, w.lane.as_wire()))
                .collect();
            if !moved.is_empty() {
                findings.push(Finding {
                    severity: "warning",
                    category: "missing_event_log",
                    wp_id: None,
                    message: format!("No status.events.jsonl: the lanes live only in the frontmatter ({}), so the 2.1.3 CLI's validate and accept cannot see them.", moved.join(", ")),
                    recommended_action: "Run 'spec-kitty agent status migrate' to bootstrap the event log from the frontmatter (any lane-changing command also does it on first need).".into(),
                });
            }
        }
        let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
        for (id, st) in &state.snapshot.work_packages {
            let Some(age) = days_since(&st.last_transition_at, now) else {
                continue;
            };
            let (limit, action) = match st.lane {
                Lane::Claimed => (a.stale_claimed_days, format!("Either begin work on {id} (move to in_progress) or release the claim (move back to planned).")),
                Lane::InProgress => (a.stale_in_progress_days, format!("Check if {id} is blocked (move to blocked with reason) or complete the work (move to for_review).")),
                _ => continue,
            };
            if age > limit {
                findings.push(Finding {
                    severity: "warning",
                    category: "stale_claim",
                    wp_id: Some(id.clone()),
                    message: format!(
                        "{id} has been in '{}' for {age} days (threshold: {limit} days). Actor: {}",
                        st.lane.as_wire(),
                        st.actor
                    ),
                    recommended_action: action,
                });
            }
        }
        let wps = &state.snapshot.work_packages;
        if !wps.is_empty() && wps.values().all(|w| transitions::is_terminal(w.lane)) {
            let mut orphans: Vec<String> = fs::read_dir(feat.root.join(".worktrees"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.strip_prefix(&format!("{}-WP", feat.slug)).is_some())
                .collect();
            orphans.sort();
            for name in orphans {
                findings.push(Finding {
                    severity: "warning",
                    category: "orphan_workspace",
                    wp_id: None,
                    message: format!("Worktree '{name}' exists but all WPs in '{}' are terminal (canceled, done). Path: {}", feat.slug, feat.root.join(".worktrees").join(&name).display()),
                    recommended_action: format!("Remove the orphan worktree: git worktree remove {name}"),
                });
            }
        }
        let snap = state.has_log().then_some(&state.snapshot);
        for m in materialization_findings(&feat.dir, snap) {
            findings.push(Finding {
                severity: "warning",
                category: "materialization_drift",
                wp_id: None,
                message: m,
                recommended_action: REMATERIALIZE_SNAPSHOT.into(),
            });
        }
        if state.has_log() {
            let (phase, _) = feature::resolve_phase(&feat);
            for m in view_findings(&feat, &state.events, phase) {
                findings.push(Finding {
                    severity: "warning",
                    category: "derived_view_drift",
                    wp_id: None,
                    message: m,
                    recommended_action: REMATERIALIZE_VIEWS.into(),
                });
            }
        }
    }
    let healthy = findings.is_empty();
    out.json(&json!({
        "feature_slug": feat.slug,
        "healthy": healthy,
        "global_runtime": [],
        "findings": findings.iter().map(|f| json!({
            "severity": f.severity,
            "category": f.category,
            "wp_id": f.wp_id,
            "message": f.message,
            "recommended_action": f.recommended_action,
        })).collect::<Vec<_>>(),
    }));
    if !out.json {
        out.line(&format!("Feature Status: {}", out.bold(&feat.slug)));
        if healthy {
            out.line(&format!("  {}", out.green("Healthy")));
        } else {
            out.line(&format!("  Issues found: {}", findings.len()));
            for f in &findings {
                out.line("");
                out.line(&format!(
                    "  [{}] {}{}: {}",
                    f.severity,
                    f.category,
                    f.wp_id
                        .as_deref()
                        .map(|w| format!(" {w}"))
                        .unwrap_or_default(),
                    f.message
                ));
                out.line(&format!("    Repair: {}", f.recommended_action));
            }
        }
    }
    if healthy {
        Ok(())
    } else {
        Err(problems_found())
    }
}

// ---------------------------------------------------------------------------
// The git merge driver

/// `merge.<name>.driver = spec-kitty agent status merge-driver %O %A %B %P`:
/// writes the union of the three versions to %A (ours). A version that
/// does not parse leaves %A untouched and exits 1, so git reports a
/// conflict instead of a guess.
fn merge_driver(a: MergeDriverArgs) -> Result<(), CliError> {
    let read = |p: &Path| -> Result<String, CliError> {
        match fs::read(p) {
            Ok(b) => String::from_utf8(b)
                .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", p.display()))),
            // A side that deleted the file contributes no events.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(CliError::io_at("read", p, &e)),
        }
    };
    let (base, ours, theirs) = (read(&a.base)?, read(&a.ours)?, read(&a.theirs)?);
    let shown = a.path.unwrap_or_else(|| log::FILE_NAME.to_string());
    let label = |side: &str| format!("{shown} ({side})");
    let (lo, lt, lb) = (label("ours"), label("theirs"), label("base"));
    let merged = log::union(&[
        (Path::new(&lo), &ours),
        (Path::new(&lt), &theirs),
        (Path::new(&lb), &base),
    ])
    .map_err(|e| {
        CliError::invalid(format!(
            "cannot merge the status log: {e}; resolve the conflict by hand (keep every event line of both sides)"
        ))
    })?;
    fsutil::write_atomic(&a.ours, merged.as_bytes())
        .map_err(|e| CliError::io_at("write", &a.ours, &e))
}

/// The merge driver's name in `.gitattributes` and `git config`.
pub const MERGE_DRIVER: &str = "spec-kitty-status-log";

/// The driver of `status.json`: keep our side, exit 0.
pub const VIEW_MERGE_DRIVER: &str = "spec-kitty-status-view";

/// Makes git merge a feature's `status.events.jsonl` with
/// [`merge_driver`] (the union), and its `status.json` by keeping our
/// side: two snapshots cannot be merged by text, and a conflict in a
/// generated file would stop the merge for nothing, since the log is the
/// truth and `agent status materialize` (or the next move) rewrites the
/// view from the merged log; until then `agent status validate` reports
/// the drift. `.gitattributes` lines go in the project (committed, so
/// every clone names the drivers); the driver commands go in this clone's
/// git config (git never copies config: each clone runs `init`). The log
/// driver is this binary's absolute path, because `spec-kitty` on PATH
/// may be the 2.1.3 CLI, which has no merge driver.
pub fn configure_merge_driver(root: &Path) -> Result<(), CliError> {
    let attrs = root.join(".gitattributes");
    let old = fsutil::read_repo_file(root, &attrs)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut new = old.clone();
    for line in [
        format!("kitty-specs/*/{} merge={MERGE_DRIVER}", log::FILE_NAME),
        format!(
            "kitty-specs/*/{} merge={VIEW_MERGE_DRIVER}",
            reducer::SNAPSHOT_FILE
        ),
    ] {
        if !new.lines().any(|l| l.trim() == line) {
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&line);
            new.push('\n');
        }
    }
    if new != old {
        fsutil::write_repo_file(root, &attrs, new.as_bytes())?;
    }
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io(format!("cannot find this program's path: {e}")))?;
    let quoted = format!("'{}'", exe.display().to_string().replace('\'', r"'\''"));
    let settings = [
        (
            MERGE_DRIVER,
            "name",
            "spec-kitty status log: union of both sides' events".to_string(),
        ),
        (
            MERGE_DRIVER,
            "driver",
            format!("{quoted} agent status merge-driver %O %A %B %P"),
        ),
        (
            VIEW_MERGE_DRIVER,
            "name",
            "spec-kitty status.json: keep ours, rematerialize from the log".to_string(),
        ),
        (VIEW_MERGE_DRIVER, "driver", "true".to_string()),
    ];
    for (driver, key, value) in settings {
        let name = format!("merge.{driver}.{key}");
        let o = std::process::Command::new("git")
            .args(["config", &name, &value])
            .current_dir(root)
            .output()
            .map_err(|e| {
                CliError::io(format!("cannot run git config in {}: {e}", root.display()))
            })?;
        if !o.status.success() {
            return Err(CliError::io(format!(
                "git config {name} failed in {}: {}",
                root.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_findings_use_2_1_3s_messages() {
        let e: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"event_id": "nope", "from_lane": "doing", "to_lane": "in_progress", "at": "yesterday", "force": 1, "execution_mode": "cloud"}"#,
        )
        .unwrap();
        let f = schema_findings(&e);
        assert!(f.contains(&"Missing required field: wp_id".to_string()));
        assert!(f.contains(&"Invalid event ID format: nope".to_string()));
        assert!(f.contains(&"from_lane is not canonical: doing".to_string()));
        assert!(f.contains(&"Event nope: invalid ISO 8601 timestamp: yesterday".to_string()));
        assert!(f.contains(&"Event nope: force must be boolean, got int".to_string()));
        assert!(f.contains(
            &"Event nope: execution_mode must be 'worktree' or 'direct_repo', got 'cloud'"
                .to_string()
        ));
    }

    #[test]
    fn block_lines_parse_like_2_1_3() {
        let c = "x\n<!-- status-model:start -->\n## Canonical Status (Generated)\n- WP01: done\n- WP2: x\n<!-- status-model:end -->\n";
        let l = block_lines(c).unwrap();
        assert_eq!(l, vec!["- WP01: done", "- WP2: x"]);
        assert_eq!(
            parse_block_line(&l[0]),
            Some(("WP01".into(), "done".into()))
        );
        assert_eq!(parse_block_line(&l[1]), None);
        assert!(block_lines("no block").is_none());
    }
}
