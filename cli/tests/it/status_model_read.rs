//! The read and repair side of the canonical status model, over the real
//! binary and real git repositories: the board and `agent tasks` reads
//! come from `status.events.jsonl`; no read writes anything, whatever
//! state the log and views are in; `agent status validate | doctor |
//! reconcile` report what 2.1.3 reports and say what repairs it; a real
//! `git merge` of two branches that both appended keeps every event.

use crate::common;

use common::{stderr, stdout, World};
use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;

/// One log line as 2.1.3 writes it (`json.dumps(sort_keys=True)`).
fn ev(id: &str, wp: &str, from: &str, to: &str, at: &str) -> String {
    let evidence = if to == "done" || to == "approved" {
        json!({"review": {"reference": "PR#1", "reviewer": "rev", "verdict": "approved"}})
    } else {
        Value::Null
    };
    let review_ref = (from == "for_review" && to == "in_progress").then_some("feedback://1");
    let v = json!({
        "actor": "claude", "at": at, "event_id": id, "evidence": evidence,
        "execution_mode": "worktree", "feature_slug": "001-demo", "force": false,
        "from_lane": from, "policy_metadata": null, "reason": null,
        "review_ref": review_ref, "to_lane": to, "wp_id": wp,
    });
    // serde_json sorts keys (no preserve_order) with compact separators;
    // the spacing does not matter to either reader.
    v.to_string()
}

fn id(n: u32) -> String {
    format!("01JA{n:022}")
}

fn at(n: u32) -> String {
    format!("2026-11-29T10:00:{n:02}+00:00")
}

/// WP01 all the way to done, WP02 claimed, in `lines` log lines.
fn log_lines() -> Vec<String> {
    let steps = [
        ("WP01", "planned", "claimed"),
        ("WP01", "claimed", "in_progress"),
        ("WP01", "in_progress", "for_review"),
        ("WP01", "for_review", "approved"),
        ("WP01", "approved", "done"),
        ("WP02", "planned", "claimed"),
    ];
    steps
        .iter()
        .enumerate()
        .map(|(i, (wp, f, t))| ev(&id(i as u32 + 1), wp, f, t, &at(i as u32 + 1)))
        .collect()
}

fn log_path(w: &World) -> PathBuf {
    w.feature_dir().join("status.events.jsonl")
}

fn write_log(w: &World, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(log_path(w), text).unwrap();
}

/// Rewrites the `lane: "planned"` of a WP file by hand.
fn set_lane(w: &World, path: &std::path::Path, lane: &str) {
    let text = w.read(path);
    assert!(text.contains("lane: \"planned\""), "{text}");
    fs::write(
        path,
        text.replace("lane: \"planned\"", &format!("lane: \"{lane}\"")),
    )
    .unwrap();
}

/// A JSON list of strings.
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect()
}

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Every read command, text and JSON.
const READS: &[&[&str]] = &[
    &["status"],
    &["status", "--json"],
    &["agent", "tasks", "status"],
    &["agent", "tasks", "status", "--json"],
    &["agent", "tasks", "list-tasks"],
    &["agent", "tasks", "list-tasks", "--lane", "done", "--json"],
    &["agent", "tasks", "list-dependents", "WP01", "--json"],
    &["agent", "tasks", "validate-workflow", "WP01", "--json"],
    &["agent", "tasks", "validate-workflow", "WP01"],
    &["agent", "status", "validate"],
    &["agent", "status", "validate", "--json"],
    &["agent", "status", "doctor"],
    &["agent", "status", "doctor", "--json"],
    &["agent", "status", "reconcile"],
    &["agent", "status", "reconcile", "--json"],
];

/// The repository's files, git's view of them (HEAD, status, the index
/// bytes) and whether a status lock file was created.
type Fingerprint = (Vec<(PathBuf, Vec<u8>)>, String, Vec<u8>, bool);

fn fingerprint(w: &World) -> Fingerprint {
    (
        w.snapshot(),
        w.git(&["rev-parse", "HEAD"]) + &w.git(&["status", "--porcelain", "--ignored"]),
        fs::read(w.repo.join(".git/index")).unwrap_or_default(),
        w.repo.join(".git/spec-kitty-locks").exists(),
    )
}

#[test]
fn no_read_writes_even_when_views_are_stale_or_the_log_is_behind_a_committed_done() {
    let w = World::with_wps(3);
    fs::write(
        w.wp_path("WP02"),
        w.read(&w.wp_path("WP02"))
            .replace("dependencies: []", "dependencies: [\"WP01\"]"),
    )
    .unwrap();
    // The log stops at for_review for WP01; the committed views say done
    // (the upstream data-loss shape: a read that re-materialised from the
    // log would regress the committed done).
    let lines = log_lines();
    write_log(&w, &lines[..3]);
    let wp1 = w.wp_path("WP01");
    set_lane(&w, &wp1, "done");
    fs::write(
        w.feature_dir().join("status.json"),
        "{\n  \"event_count\": 5,\n  \"work_packages\": {\"WP01\": {\"lane\": \"done\"}}\n}\n",
    )
    .unwrap();
    fs::write(
        w.feature_dir().join("tasks.md"),
        "# Tasks\n\n<!-- status-model:start -->\n## Canonical Status (Generated)\n- WP01: done\n<!-- status-model:end -->\n",
    )
    .unwrap();
    // A project identity the reads could be tempted to back-fill.
    fs::write(w.repo.join(".kittify/config.yaml"), "agents: {}\n").unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "stale views"]);
    let before = fingerprint(&w);
    for args in READS {
        let o = w.run(args);
        assert!(
            [0, 1].contains(&code(&o)),
            "{args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(fingerprint(&w) == before, "{args:?} changed the repository");
    }
    assert!(w.events().is_empty(), "reads emit nothing");
    // And the reads did see the log, not the stale views.
    let board = w.json(&["status"]);
    assert_eq!(board["lanes"]["for_review"][0]["wp_id"], "WP01");
    assert_eq!(board["source"], "status.events.jsonl");
}

#[test]
fn the_board_and_agent_reads_follow_the_log_with_approved_in_its_own_column() {
    let w = World::with_wps(3);
    let lines = log_lines();
    write_log(&w, &lines[..4]);
    let wp3 = w.wp_path("WP03");
    set_lane(&w, &wp3, "doing");

    let board = w.json(&["status"]);
    assert_eq!(board["lanes"]["approved"][0]["wp_id"], "WP01");
    assert_eq!(
        board["lanes"]["doing"][0]["wp_id"], "WP03",
        "frontmatter where the log has no event"
    );
    assert_eq!(board["lanes"]["planned"][0]["wp_id"], "WP02");
    assert_eq!(
        board["lanes"].as_object().unwrap().len(),
        8,
        "all eight lanes"
    );
    let text = w.ok(&["status"]);
    assert!(text.contains("APPROVED (1)\n  WP01  Task 1\n"), "{text}");

    let s = w.json(&["agent", "tasks", "status"]);
    assert_eq!(s["feature"], "001-demo");
    assert_eq!(s["total_wps"], 3);
    assert_eq!(
        s["by_lane"],
        json!({"approved": 1, "planned": 1, "in_progress": 1})
    );
    assert_eq!(s["progress_percentage"], 0.0);
    assert_eq!(s["stale_wps"], 0);
    assert_eq!(s["auto_commit"], true);
    let wp3 = &s["work_packages"][2];
    assert_eq!(wp3["id"], "WP03");
    assert_eq!(wp3["lane"], "in_progress");
    assert_eq!(wp3["worktree_exists"], false);
    assert_eq!(wp3["is_stale"], false);
    for key in ["title", "phase", "file", "agent", "shell_pid"] {
        assert!(wp3.get(key).is_some(), "2.1.3's key {key}: {wp3}");
    }

    let l = w.json(&["agent", "tasks", "list-tasks", "--lane", "doing"]);
    assert_eq!(l["count"], 1);
    assert_eq!(l["tasks"][0]["work_package_id"], "WP03");
    assert_eq!(l["tasks"][0]["lane"], "in_progress");
    assert!(l["tasks"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("WP03-task-3.md"));
    let all = w.json(&["agent", "tasks", "list-tasks"]);
    assert_eq!(all["count"], 3);
    let bad = w.run(&["agent", "tasks", "list-tasks", "--lane", "sideways"]);
    assert_eq!(code(&bad), 4);
    assert!(
        stderr(&bad).contains("unknown lane 'sideways'"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn list_dependents_and_validate_workflow_answer_with_2_1_3s_keys() {
    let w = World::project();
    w.ok(&["specify", "demo"]);
    w.ok(&["tasks", "add", "Base"]);
    w.ok(&["tasks", "add", "Left", "--depends", "WP01"]);
    w.ok(&["tasks", "add", "Right", "--depends", "WP01,WP02"]);
    let d = w.json(&["agent", "tasks", "list-dependents", "WP01"]);
    assert_eq!(
        d,
        json!({"wp_id": "WP01", "depends_on": [], "dependents": ["WP02", "WP03"]})
    );
    let d = w.json(&["agent", "tasks", "list-dependents", "WP03"]);
    assert_eq!(d["depends_on"], json!(["WP01", "WP02"]));
    assert_eq!(d["dependents"], json!([]));
    let missing = w.run(&["agent", "tasks", "list-dependents", "WP09"]);
    assert_eq!(code(&missing), 4);
    assert!(
        stderr(&missing).contains("WP09 not found"),
        "{}",
        stderr(&missing)
    );

    let v = w.json(&["agent", "tasks", "validate-workflow", "WP01"]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["task_id"], "WP01");
    assert_eq!(v["lane"], "planned");
    assert_eq!(v["errors"], json!([]));
    let p = w.wp_path("WP02");
    fs::write(
        &p,
        w.read(&p)
            .replace("lane: \"planned\"", "lane: \"sideways\"")
            .replace("title: ", "titel: "),
    )
    .unwrap();
    let v = w.json(&["agent", "tasks", "validate-workflow", "WP02"]);
    assert_eq!(v["valid"], false);
    let errors = strings(&v["errors"]);
    assert!(
        errors.contains(&"Missing required field: title"),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("Invalid lane 'sideways'")),
        "{errors:?}"
    );
    assert_eq!(v["lane"], "sideways");
}

#[test]
fn validate_reports_2_1_3s_findings_and_fails_only_on_errors() {
    let w = World::with_wps(2);
    let v = w.json(&["agent", "status", "validate"]);
    assert_eq!(v["passed"], true, "no log, nothing to validate");
    assert_eq!(v["phase"], 1);
    assert_eq!(v["phase_source"], "built-in default (Phase 1: dual-write)");

    let lines = log_lines();
    write_log(&w, &lines[..2]);
    let o = w.run(&["agent", "status", "validate", "--json"]);
    assert_eq!(code(&o), 0, "stale views are warnings in phase 1");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let warnings = strings(&v["warnings"]);
    assert!(
        warnings
            .contains(&"WARNING: WP01 frontmatter lane=planned but canonical state=in_progress"),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("status.events.jsonl exists but status.json is missing")),
        "{warnings:?}"
    );
    assert_eq!(v["warning_count"], warnings.len());

    // An illegal jump and a done without evidence are errors.
    let mut bad = lines[..2].to_vec();
    bad.push(ev(&id(9), "WP02", "planned", "for_review", &at(9)));
    let mut done = ev(&id(10), "WP01", "in_progress", "done", &at(10));
    done = done.replace(
        r#""evidence":{"review":{"reference":"PR#1","reviewer":"rev","verdict":"approved"}}"#,
        r#""evidence":null"#,
    );
    bad.push(done);
    write_log(&w, &bad);
    let o = w.run(&["agent", "status", "validate", "--json"]);
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let errors = strings(&v["errors"]);
    assert!(
        errors.contains(
            &format!("Event {}: illegal transition planned -> for_review", id(9)).as_str()
        ),
        "{errors:?}"
    );
    assert!(
        errors.contains(
            &format!("Event {}: illegal transition in_progress -> done", id(10)).as_str()
        ),
        "{errors:?}"
    );
    assert!(
        errors.contains(&format!("Event {}: done without evidence (not forced)", id(10)).as_str()),
        "{errors:?}"
    );
    assert_eq!(v["passed"], false);
    let text = w.run(&["agent", "status", "validate"]);
    assert!(stdout(&text).contains("Result: FAIL"), "{}", stdout(&text));
}

#[test]
fn doctor_names_each_problem_and_what_repairs_it() {
    let w = World::with_wps(3);
    let o = w.run(&["agent", "status", "doctor", "--json"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["healthy"], true);

    // Lanes only in frontmatter, one WP file broken.
    set_lane(&w, &w.wp_path("WP01"), "for_review");
    let p3 = w.wp_path("WP03");
    let planned = w.read(&p3);
    fs::write(&p3, planned.replace("lane: \"planned\"", "lane: [unclosed")).unwrap();
    let o = w.run(&["agent", "status", "doctor", "--json"]);
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cats: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["category"].as_str().unwrap())
        .collect();
    assert_eq!(cats, vec!["wp_file_unreadable", "missing_event_log"], "{v}");
    let f = &v["findings"][0];
    assert_eq!(f["wp_id"], "WP03");
    assert!(
        f["message"].as_str().unwrap().contains("WP03-task-3.md"),
        "{f}"
    );
    assert!(v["findings"][1]["message"]
        .as_str()
        .unwrap()
        .contains("WP01=for_review"));
    assert!(v["findings"][1]["recommended_action"]
        .as_str()
        .unwrap()
        .contains("agent status migrate"));

    // A torn last line: named with its line, the repair is to drop it.
    let lines = log_lines();
    let text = format!("{}\n{}", lines[0], &lines[1][..40]);
    fs::write(log_path(&w), &text).unwrap();
    let o = w.run(&["agent", "status", "doctor", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["category"], "event_log_unreadable");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("status.events.jsonl:2:"),
        "{f}"
    );
    assert!(
        f["recommended_action"]
            .as_str()
            .unwrap()
            .contains("torn last line"),
        "{f}"
    );
    assert_eq!(
        fs::read_to_string(log_path(&w)).unwrap(),
        text,
        "doctor repairs nothing"
    );

    // Views behind the log.
    write_log(&w, &lines[..2]);
    fs::write(&p3, &planned).unwrap();
    let v = w.json_any(&["agent", "status", "doctor"]);
    let drift: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["category"] == "derived_view_drift")
        .collect();
    assert!(
        drift.iter().any(|f| f["message"]
            == "WARNING: WP01 frontmatter lane=for_review but canonical state=in_progress"),
        "{v}"
    );
    assert!(drift.iter().all(|f| f["recommended_action"]
        .as_str()
        .unwrap()
        .contains("agent status materialize")));
}

trait JsonAny {
    fn json_any(&self, args: &[&str]) -> Value;
}

impl JsonAny for World {
    /// `--json` output whatever the exit code.
    fn json_any(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let o = self.run(&a);
        serde_json::from_str(stdout(&o).trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}{}", stdout(&o), stderr(&o)))
    }
}

#[test]
fn bad_input_is_refused_naming_the_file_and_line_and_nothing_is_rewritten() {
    let w = World::with_wps(2);
    let lines = log_lines();
    // A hand-broken line 2 and an unknown lane on line 3.
    let broken = [
        lines[0].clone(),
        "{not json".to_string(),
        lines[2].replace("\"for_review\"", "\"sideways\""),
    ];
    for (i, bad) in [
        (2, &broken[..2]),
        (
            3,
            &[broken[0].clone(), lines[1].clone(), broken[2].clone()][..],
        ),
    ] {
        write_log(&w, bad);
        let before = w.snapshot();
        for args in [
            &["status"][..],
            &["agent", "tasks", "status"],
            &["agent", "tasks", "list-tasks"],
        ] {
            let o = w.run(args);
            assert_eq!(code(&o), 4, "{args:?}: {}", stderr(&o));
            let want = format!("status.events.jsonl:{i}:");
            assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
            assert!(w.snapshot() == before, "{args:?} rewrote something");
        }
        let v = w.json_any(&["agent", "status", "validate"]);
        assert_eq!(v["passed"], false);
        assert!(w.snapshot() == before);
    }
    let o = w.run(&["agent", "tasks", "status"]);
    assert!(
        stderr(&o).contains("'sideways', not a canonical lane"),
        "{}",
        stderr(&o)
    );

    // A WP file with broken frontmatter.
    fs::remove_file(log_path(&w)).unwrap();
    let p = w.wp_path("WP02");
    fs::write(&p, "---\ntitle: [unclosed\n---\nbody\n").unwrap();
    let before = w.snapshot();
    for args in [
        &["agent", "tasks", "status"][..],
        &["agent", "tasks", "list-tasks"],
        &["agent", "tasks", "validate-workflow", "WP02"],
    ] {
        let o = w.run(args);
        assert_eq!(code(&o), 4, "{args:?}");
        assert!(
            stderr(&o).contains("WP02-task-2.md"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(w.snapshot() == before);

    // A missing feature.
    for args in [
        &["agent", "tasks", "status", "--feature", "009"][..],
        &["agent", "status", "validate", "--feature", "009-nope"],
        &["agent", "status", "doctor", "--feature", "009-nope"],
    ] {
        let o = w.run(args);
        assert_eq!(code(&o), 4, "{args:?}");
        assert!(stderr(&o).contains("not found"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_git_merge_of_two_branches_that_both_appended_keeps_every_event_in_order() {
    let w = World::with_wps(3);
    let attrs = w.read(&w.repo.join(".gitattributes"));
    assert!(
        attrs.contains("kitty-specs/*/status.events.jsonl merge=spec-kitty-status-log\n"),
        "{attrs}"
    );
    assert!(
        attrs.contains("kitty-specs/*/status.json merge=spec-kitty-status-view\n"),
        "{attrs}"
    );
    let lines = log_lines();
    write_log(&w, &lines[..1]);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "base"]);
    w.git(&["checkout", "-q", "-b", "other"]);
    // Each side also rewrote its status.json view (one line per key, so a
    // text merge of the two would conflict).
    let view = |n: usize| format!("{{\n  \"event_count\": {n},\n  \"work_packages\": {{}}\n}}\n");
    let status_json = w.feature_dir().join("status.json");
    let theirs = [lines[0].clone(), lines[5].clone()];
    write_log(&w, &theirs);
    fs::write(&status_json, view(2)).unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "WP02 claimed"]);
    w.git(&["checkout", "-q", "main"]);
    let ours = [lines[0].clone(), lines[1].clone(), lines[2].clone()];
    write_log(&w, &ours);
    fs::write(&status_json, view(3)).unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "WP01 to review"]);
    w.git(&["merge", "-q", "--no-edit", "other"]);
    assert_eq!(w.read(&status_json), view(3), "the view keeps our side");
    let v = w.json(&["agent", "status", "validate"]);
    assert!(
        strings(&v["warnings"])
            .contains(&"Materialization drift: event_count=3 in status.json but reducer counted 4"),
        "the stale view is reported until it is rematerialised: {v}"
    );
    let merged = w.read(&log_path(&w));
    let want: Vec<&str> = [&lines[0], &lines[1], &lines[2], &lines[5]]
        .map(String::as_str)
        .to_vec();
    assert_eq!(
        merged.lines().collect::<Vec<_>>(),
        want,
        "the union, by (at, event_id)"
    );
    let s = w.json(&["agent", "tasks", "status"]);
    assert_eq!(
        s["by_lane"],
        json!({"for_review": 1, "claimed": 1, "planned": 1})
    );

    // The other direction gives the same bytes.
    w.git(&["checkout", "-q", "other"]);
    w.git(&["merge", "-q", "--no-edit", "main~1"]);
    assert_eq!(w.read(&log_path(&w)), merged);

    // In a clone where the driver is not configured (git never copies
    // config) git conflicts; doctor names the marker line and the repair.
    w.git(&["checkout", "-q", "main"]);
    w.git(&["config", "--remove-section", "merge.spec-kitty-status-log"]);
    w.git(&["checkout", "-q", "-b", "third"]);
    write_log(&w, &[merged.trim_end().to_string(), lines[3].clone()]);
    w.git(&["commit", "-q", "-am", "WP01 approved"]);
    w.git(&["checkout", "-q", "main"]);
    write_log(
        &w,
        &[
            merged.trim_end().to_string(),
            ev(&id(20), "WP03", "planned", "claimed", &at(20)),
        ],
    );
    w.git(&["commit", "-q", "-am", "WP03 claimed"]);
    let mut c = std::process::Command::new("git");
    c.args(["merge", "-q", "--no-edit", "third"])
        .current_dir(&w.repo);
    common::git_env(&mut c, &w.home);
    let m = c.output().unwrap();
    assert!(!m.status.success(), "a plain git merge conflicts");
    let v = w.json_any(&["agent", "status", "doctor"]);
    let f = &v["findings"][0];
    assert_eq!(f["category"], "event_log_unreadable", "{v}");
    assert!(
        f["recommended_action"]
            .as_str()
            .unwrap()
            .contains("git conflict marker"),
        "{f}"
    );
}

#[test]
fn the_merge_driver_refuses_a_side_it_cannot_read_and_leaves_ours_alone() {
    let w = World::with_wps(1);
    let dir = w.tmp.path();
    let lines = log_lines();
    let (o, a, b) = (dir.join("O"), dir.join("A"), dir.join("B"));
    fs::write(&o, format!("{}\n", lines[0])).unwrap();
    fs::write(&a, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    fs::write(&b, format!("{}\n{{torn", lines[0])).unwrap();
    let args = [
        "agent",
        "status",
        "merge-driver",
        o.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "kitty-specs/001-demo/status.events.jsonl",
    ];
    let out = w.run(&args);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("kitty-specs/001-demo/status.events.jsonl (theirs):2:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(&a).unwrap(),
        format!("{}\n{}\n", lines[0], lines[1])
    );
    fs::write(&b, format!("{}\n{}\n", lines[0], lines[5])).unwrap();
    w.ok(&args);
    assert_eq!(
        fs::read_to_string(&a).unwrap(),
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[5])
    );
}

#[test]
fn reconcile_proposes_moves_from_commits_and_applies_them_only_when_asked() {
    let w = World::with_wps(2);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "plan"]);
    w.git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "feat(001-demo): WP01 first cut",
    ]);
    let before = w.snapshot();
    let o = w.run(&["agent", "status", "reconcile", "--json"]);
    assert_eq!(code(&o), 1, "drift in a dry run: {}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["drift_detected"], true);
    let evs = v["suggested_events"].as_array().unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["wp_id"], "WP01");
    assert_eq!(evs[0]["from_lane"], "planned");
    assert_eq!(evs[0]["to_lane"], "claimed");
    assert_eq!(evs[0]["actor"], "reconcile");
    assert_eq!(
        v["stats"],
        json!({"target_repos_scanned": 1, "wps_analyzed": 1})
    );
    assert!(w.snapshot() == before, "a dry run writes nothing");

    // Phase 0 (no event persistence) refuses --apply, as 2.1.3 does.
    let cfg = w.config();
    fs::write(
        w.repo.join(".kittify/config.yaml"),
        format!("{cfg}status:\n  phase: 0\n"),
    )
    .unwrap();
    let o = w.run(&["agent", "status", "reconcile", "--apply"]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(stderr(&o).contains("Phase 0"), "{}", stderr(&o));
    assert!(!log_path(&w).exists());
    fs::write(w.repo.join(".kittify/config.yaml"), cfg).unwrap();

    let v = w.json(&["agent", "status", "reconcile", "--apply"]);
    assert_eq!(v["drift_detected"], true);
    let log = w.read(&log_path(&w));
    assert_eq!(log.lines().count(), 1);
    assert_eq!(w.json(&["status"])["lanes"]["claimed"][0]["wp_id"], "WP01");
    assert!(w.read(&w.wp_path("WP01")).contains("lane: \"claimed\""));
    let status: Value =
        serde_json::from_str(&w.read(&w.feature_dir().join("status.json"))).unwrap();
    assert_eq!(status["event_count"], 1);
    // Applied once: the next run finds WP01 claimed and proposes in_progress, not claimed again.
    let v = w.json_any(&["agent", "status", "reconcile"]);
    assert_eq!(v["suggested_events"][0]["from_lane"], "claimed");
}

#[test]
fn validate_lists_view_drift_in_the_order_2_1_3s_reducer_meets_the_wps() {
    let w = World::with_wps(2);
    write_log(
        &w,
        &[
            ev(&id(1), "WP02", "planned", "claimed", &at(1)),
            ev(&id(2), "WP01", "planned", "claimed", &at(2)),
        ],
    );
    let v = w.json(&["agent", "status", "validate"]);
    assert_eq!(
        strings(&v["warnings"])[1..],
        [
            "WARNING: WP02 frontmatter lane=planned but canonical state=claimed",
            "WARNING: WP01 frontmatter lane=planned but canonical state=claimed",
        ]
    );
}
