//! `spec-kitty accept` as 2.1.3 does it (readiness checklist, meta.json
//! record, `Accept <feature>` commit, modes and flags), with the feature
//! rule on top: one WPStatusChanged per work package it finishes, one
//! FeatureCompleted, and a second accept that changes nothing. Real git
//! repositories in temp dirs, the real binary.

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::fs;

/// Feature 001-demo with `n` work packages in for_review (agent, assignee
/// and shell_pid set), spec.md, plan.md and a fully ticked tasks.md, all
/// committed: ready to accept.
fn ready(n: usize) -> World {
    let w = World::with_wps(n);
    let mut tasks = String::from("# Work Packages\n");
    for i in 1..=n {
        let wp = format!("WP{i:02}");
        for lane in ["doing", "for_review"] {
            w.ok(&move_task(
                &wp,
                lane,
                &[
                    "--agent",
                    "claude",
                    "--assignee",
                    "claude",
                    "--shell-pid",
                    "4242",
                ],
            ));
        }
        tasks.push_str(&format!("\n## {wp}: Task {i}\n\n- [x] T{i:03} do it\n"));
    }
    fs::write(w.feature_dir().join("plan.md"), "# Plan\n").unwrap();
    fs::write(w.feature_dir().join("tasks.md"), tasks).unwrap();
    commit_all(&w, "ready");
    w.clear_spool();
    w
}

fn commit_all(w: &World, msg: &str) {
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "--allow-empty", "-m", msg]);
}

fn head(w: &World) -> String {
    w.git(&["rev-parse", "HEAD"]).trim().to_string()
}

fn meta(w: &World) -> Value {
    serde_json::from_str(&w.read(&w.feature_dir().join("meta.json"))).unwrap()
}

fn count(w: &World, ty: &str) -> usize {
    w.events().iter().filter(|e| e.event_type == ty).count()
}

#[test]
fn accept_finishes_reviewed_wps_records_meta_json_and_commits_only_its_files() {
    let w = ready(2);
    w.ok(&approve("WP01", "alice", "PR#1", &[]));
    commit_all(&w, "approved");
    w.clear_spool();
    let parent = head(&w);
    let out = w.json(&[
        "accept",
        "--actor",
        "Jane Doe",
        "--test",
        "cargo test",
        "--test",
        "make lint",
    ]);
    // 2.1.3's result keys.
    assert_eq!(out["accepted_by"], "Jane Doe");
    assert_eq!(out["mode"], "local", "no remote: auto is local");
    assert_eq!(out["parent_commit"], json!(parent));
    assert_eq!(out["commit_created"], true);
    let sha = head(&w);
    assert_eq!(out["accept_commit"], json!(sha));
    assert_eq!(out["moved_to_done"], json!(["WP01", "WP02"]));
    assert_eq!(
        out["notes"],
        json!([
            format!("Acceptance commit: {sha}"),
            format!("Accepted from parent commit: {parent}"),
            "Validation commands:",
            "  - cargo test",
            "  - make lint"
        ])
    );
    assert_eq!(
        out["instructions"],
        json!(["Acceptance recorded directly on `main`. No merge needed."])
    );
    assert_eq!(out["summary"]["ok"], true);
    assert_eq!(out["summary"]["lanes"]["done"], json!(["WP01", "WP02"]));
    let at = out["accepted_at"].as_str().unwrap();
    assert!(at.len() == 20 && at.ends_with('Z'), "{at}");

    // The record, with 2.1.3's keys, in its bytes (sorted keys, indent 2).
    let m = meta(&w);
    assert_eq!(m["accepted_by"], "Jane Doe");
    assert_eq!(m["acceptance_mode"], "local");
    assert_eq!(m["accepted_from_commit"], json!(parent));
    assert_eq!(m["accept_commit"], json!(sha));
    let h = m["acceptance_history"].as_array().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["accepted_by"], "Jane Doe");
    assert_eq!(h[0]["acceptance_mode"], "local");
    assert_eq!(h[0]["accepted_from_commit"], json!(parent));
    assert_eq!(h[0]["accept_commit"], json!(sha));
    assert_eq!(h[0]["accepted_at"], m["accepted_at"]);
    let text = w.read(&w.feature_dir().join("meta.json"));
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  \"")?.split('"').next())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "{text}");
    assert!(text.ends_with("}\n"));

    // One commit, 2.1.3's subject, only our files.
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "Accept 001-demo"
    );
    assert_eq!(w.git(&["rev-parse", "HEAD~1"]).trim(), parent, "one commit");
    assert_eq!(
        w.files_of("HEAD"),
        vec![
            "kitty-specs/001-demo/meta.json",
            "kitty-specs/001-demo/status.events.jsonl",
            "kitty-specs/001-demo/status.json",
            "kitty-specs/001-demo/tasks.md",
            "kitty-specs/001-demo/tasks/WP01-task-1.md",
            "kitty-specs/001-demo/tasks/WP02-task-2.md",
        ]
    );
    // Only accept_commit, written after the commit (as 2.1.3), is left.
    assert_eq!(
        w.git(&["status", "--porcelain"]),
        " M kitty-specs/001-demo/meta.json\n"
    );

    // Events: one per finished WP, one FeatureCompleted.
    let evs = w.events();
    assert_eq!(
        lane_moves(&evs),
        [["WP01", "approved", "done"], ["WP02", "for_review", "done"]]
    );
    assert_eq!(count(&w, "FeatureCompleted"), 1);
    assert_eq!(evs.len(), 3);
    assert_identity(&w, &evs);

    // A second accept: nothing to do, no event, no commit.
    w.clear_spool();
    let again = w.json(&["accept"]);
    assert_eq!(again["result"], "unchanged");
    assert_eq!(again["accept_commit"], json!(sha));
    assert!(w.events().is_empty());
    assert_eq!(head(&w), sha);
    assert_eq!(meta(&w)["acceptance_history"].as_array().unwrap().len(), 1);
}

#[test]
fn each_readiness_check_refuses_with_exit_5_lists_every_issue_and_changes_nothing() {
    type Setup = fn(&World);
    let cases: Vec<(&str, Setup, Vec<&str>)> = vec![
        (
            "a planned WP",
            |w| {
                w.ok(&["tasks", "add", "Late"]);
                commit_all(w, "late");
            },
            vec![
                "not_done:\n    - WP03",
                "WP03: no canonical state found in status.events.jsonl",
                "WP03: missing agent in frontmatter",
            ],
        ),
        (
            "an unchecked task",
            |w| {
                let p = w.feature_dir().join("tasks.md");
                let t = w.read(&p) + "- [ ] T099 forgotten\n";
                fs::write(p, t).unwrap();
                commit_all(w, "unchecked");
            },
            vec!["unchecked_tasks:\n    - - [ ] T099 forgotten"],
        ),
        (
            "a clarification marker",
            |w| {
                fs::write(
                    w.feature_dir().join("spec.md"),
                    "# Spec\n[NEEDS CLARIFICATION: who?]\n",
                )
                .unwrap();
                commit_all(w, "unclear");
            },
            vec!["needs_clarification:", "spec.md"],
        ),
        (
            "no plan.md",
            |w| {
                fs::remove_file(w.feature_dir().join("plan.md")).unwrap();
                commit_all(w, "no plan");
            },
            vec!["missing_artifacts:\n    - plan.md"],
        ),
        (
            "missing metadata",
            |w| {
                let p = w.wp_path("WP02");
                fs::write(&p, w.read(&p).replace("shell_pid: '4242'", "shell_pid: ''")).unwrap();
                commit_all(w, "no pid");
            },
            vec!["WP02: missing shell_pid in frontmatter"],
        ),
        (
            "uncommitted changes",
            |w| {
                fs::write(w.repo.join("notes.txt"), "mine\n").unwrap();
                let p = w.feature_dir().join("plan.md");
                fs::write(&p, "# Plan v2\n").unwrap();
                w.git(&["add", "kitty-specs/001-demo/plan.md"]);
            },
            vec![
                "git_dirty:",
                "M  kitty-specs/001-demo/plan.md",
                "?? notes.txt",
            ],
        ),
        (
            "work in progress",
            |w| {
                w.ok(&move_task(
                    "WP02",
                    "in_progress",
                    &[
                        "--review-feedback-file",
                        "kitty-specs/001-demo/plan.md",
                        "--force",
                    ],
                ));
                commit_all(w, "back");
            },
            vec!["WP02: canonical lane is 'in_progress', expected 'done'"],
        ),
    ];
    for (what, setup, expected) in cases {
        let w = ready(2);
        setup(&w);
        w.clear_spool();
        let before = w.snapshot();
        let head_before = head(&w);
        let o = w.run(&["accept"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(5), "{what}: {err}");
        for e in &expected {
            assert!(err.contains(e), "{what}: {e:?} not in\n{err}");
        }
        assert!(err.contains("--allow-fail"), "{what}: {err}");
        let evs = w.events();
        assert_eq!(evs.len(), 1, "{what}: one ErrorLogged");
        assert_eq!(evs[0].event_type, "ErrorLogged");
        assert!(evs[0].payload["error_message"]
            .as_str()
            .unwrap()
            .contains(expected[0]));
        assert_eq!(w.snapshot(), before, "{what}: nothing changed");
        assert_eq!(head(&w), head_before, "{what}: no commit");
        assert!(meta(&w).get("accepted_at").is_none());
    }
}

#[test]
fn lenient_skips_only_the_metadata_checks() {
    let w = ready(1);
    let p = w.wp_path("WP01");
    fs::write(
        &p,
        w.read(&p)
            .replace("agent: 'claude'", "agent: ''")
            .replace("shell_pid: '4242'", "shell_pid: ''"),
    )
    .unwrap();
    commit_all(&w, "no agent");
    let o = w.run(&["accept", "--json"]);
    assert_eq!(o.status.code(), Some(5));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        v["metadata_issues"],
        json!([
            "WP01: missing agent in frontmatter",
            "WP01: missing shell_pid in frontmatter"
        ])
    );
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("metadata:"));
    assert_eq!(v["work_packages"][0]["metadata"]["agent"], "");
    let out = w.json(&["accept", "--lenient"]);
    assert_eq!(out["commit_created"], true);
    assert_eq!(out["summary"]["metadata_issues"], json!([]));
}

#[test]
fn allow_fail_returns_the_checklist_with_exit_0_and_writes_nothing() {
    let w = ready(1);
    w.ok(&["tasks", "add", "Late"]);
    commit_all(&w, "late");
    w.clear_spool();
    let before = w.snapshot();
    let v = w.json(&["accept", "--allow-fail"]);
    assert_eq!(v["ok"], false);
    assert_eq!(v["all_done"], false);
    assert_eq!(v["lanes"]["planned"], json!(["WP02"]));
    assert!(v.get("error").is_none(), "{v}");
    assert!(w.events().is_empty(), "no ErrorLogged with --allow-fail");
    assert_eq!(w.snapshot(), before);
    // In text: the lane table and the outstanding items.
    let text = w.ok(&["accept", "--allow-fail"]);
    assert!(
        text.contains("Outstanding items") && text.contains("- not_done"),
        "{text}"
    );
    assert!(text.contains("    • WP02"), "{text}");
}

#[test]
fn checklist_mode_reports_without_moving_recording_or_committing() {
    let w = ready(2);
    let before = w.snapshot();
    let head_before = head(&w);
    // The WPs are still for_review: 2.1.3's checklist lists them as not done.
    let o = w.run(&["accept", "--mode", "checklist", "--json"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["lanes"]["for_review"], json!(["WP01", "WP02"]));
    assert!(w.events().is_empty(), "checklist sends no ErrorLogged");
    assert_eq!(w.snapshot(), before);
    assert_eq!(head(&w), head_before);
    // Once accepted, the checklist is clean (the commit hash written after
    // the commit aside, which 2.1.3 leaves uncommitted too).
    w.ok(&["accept"]);
    commit_all(&w, "record accept_commit");
    let v = w.json(&["accept", "--mode", "CHECKLIST"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["lanes"]["done"], json!(["WP01", "WP02"]));
    for wp in v["work_packages"].as_array().unwrap() {
        assert_eq!(wp["latest_lane"], "done");
        assert_eq!(wp["has_lane_entry"], true);
    }
}

#[test]
fn no_commit_reports_only() {
    let w = ready(1);
    let before = w.snapshot();
    let head_before = head(&w);
    let v = w.json(&["accept", "--no-commit", "--actor", "bob"]);
    assert_eq!(v["commit_created"], false);
    assert_eq!(v["accept_commit"], Value::Null);
    assert_eq!(v["parent_commit"], Value::Null);
    assert_eq!(v["accepted_by"], "bob");
    assert_eq!(v["summary"]["ok"], true);
    assert_eq!(w.snapshot(), before, "report only");
    assert_eq!(head(&w), head_before);
    assert!(w.events().is_empty());
}

#[test]
fn auto_commit_off_in_config_records_and_finishes_without_committing() {
    let w = ready(1);
    let cfg = w.repo.join(".kittify/config.yaml");
    fs::write(&cfg, w.read(&cfg) + "auto_commit: false\n").unwrap();
    commit_all(&w, "no auto commit");
    w.clear_spool();
    let head_before = head(&w);
    let v = w.json(&["accept", "--actor", "carol"]);
    assert_eq!(v["commit_created"], false);
    assert_eq!(v["accept_commit"], Value::Null);
    assert_eq!(v["parent_commit"], json!(head_before));
    assert_eq!(head(&w), head_before, "no commit");
    let m = meta(&w);
    assert_eq!(m["accepted_by"], "carol");
    assert!(m.get("accept_commit").is_none());
    assert!(w.read(&w.wp_path("WP01")).contains("lane: \"done\"\n"));
    assert_eq!(count(&w, "WPStatusChanged"), 1);
    assert_eq!(count(&w, "FeatureCompleted"), 1);
}

#[test]
fn auto_mode_is_pr_with_a_remote_and_the_actor_defaults_to_user() {
    let w = ready(1);
    w.git(&[
        "remote",
        "add",
        "origin",
        "https://example.invalid/demo.git",
    ]);
    w.git(&["checkout", "-q", "-b", "001-demo"]);
    let o = w
        .cmd_in(&w.repo, &["accept", "--json"])
        .env("USER", "dora")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["mode"], "pr");
    assert_eq!(v["accepted_by"], "dora");
    assert_eq!(v["summary"]["branch"], "001-demo");
    assert_eq!(
        v["instructions"][1],
        "Push your branch: `git push origin 001-demo`"
    );
    assert_eq!(
        v["cleanup_instructions"],
        json!(["Delete the feature branch when done: `git branch -d 001-demo`"])
    );
    assert_eq!(meta(&w)["acceptance_mode"], "pr");
    // An explicit mode wins over the remote.
    let w2 = ready(1);
    w2.git(&[
        "remote",
        "add",
        "origin",
        "https://example.invalid/demo.git",
    ]);
    assert_eq!(w2.json(&["accept", "--mode", "local"])["mode"], "local");
    // An unknown mode is a usage error.
    assert_eq!(w2.run(&["accept", "--mode", "yolo"]).status.code(), Some(2));
}

#[test]
fn agent_feature_accept_is_accept_with_the_agent_flags() {
    let w = ready(1);
    // 2.1.3's agent wrapper has no --actor, --test or --allow-fail.
    assert_eq!(
        w.run(&["agent", "feature", "accept", "--allow-fail"])
            .status
            .code(),
        Some(2)
    );
    let v = w.json(&[
        "agent",
        "feature",
        "accept",
        "--feature",
        "001-demo",
        "--mode",
        "local",
    ]);
    assert_eq!(v["commit_created"], true);
    assert_eq!(v["moved_to_done"], json!(["WP01"]));
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "Accept 001-demo"
    );
}
