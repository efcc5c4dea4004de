//! `agent workflow implement|review` on real git repositories with the
//! real binary: which work package it picks, the one status event and one
//! `WPStatusChanged` per claim, 2.1.3's commit subjects, the refusals, and
//! the prompt it prints and writes to `$TMPDIR`.

use crate::common;

use common::*;
use std::fs;
use std::path::PathBuf;
use std::process::Output;

/// Two planned WPs of 001-demo, everything committed.
fn world() -> World {
    let w = World::with_wps(2);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "planned"]);
    w
}

/// The world's own temp dir, where the prompt files go (tests run in
/// parallel and 2.1.3's file names are per WP, not per project).
fn tmpdir(w: &World) -> PathBuf {
    let d = w.tmp.path().join("tmp");
    fs::create_dir_all(&d).unwrap();
    d
}

fn wf(w: &World, args: &[&str]) -> Output {
    let mut a = vec!["agent", "workflow"];
    a.extend_from_slice(args);
    w.cmd_in(&w.repo, &a)
        .env("TMPDIR", tmpdir(w))
        .output()
        .expect("run spec-kitty")
}

fn wf_ok(w: &World, args: &[&str]) -> String {
    let o = wf(w, args);
    assert!(
        o.status.success(),
        "agent workflow {args:?}: {:?}\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// (wp_id, from_lane, to_lane) of every status event.
fn log(w: &World) -> Vec<(String, String, String)> {
    let p = w.feature_dir().join("status.events.jsonl");
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("wp_id"), s("from_lane"), s("to_lane"))
        })
        .collect()
}

fn subjects(w: &World, n: usize) -> Vec<String> {
    w.git(&["log", "--format=%s", &format!("-{n}")])
        .lines()
        .map(str::to_string)
        .collect()
}

fn status_changes(w: &World) -> Vec<(String, String)> {
    w.events()
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .map(|e| {
            (
                e.payload["wp_id"].as_str().unwrap().to_string(),
                e.payload["to_lane"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn implement_picks_the_first_planned_wp_claims_it_once_and_writes_the_prompt() {
    let w = world();
    let out = wf_ok(&w, &["implement", "--agent", "claude"]);
    let ws = w.repo.join(".worktrees/001-demo-WP01");
    assert!(ws.join(".git").exists(), "no worktree: {out}");
    assert!(
        out.contains(&format!("Workspace: cd {}", ws.display())),
        "{out}"
    );
    let prompt_file = tmpdir(&w).join("spec-kitty-implement-WP01.md");
    assert!(
        out.contains(&format!("cat {}", prompt_file.display())),
        "{out}"
    );
    assert_eq!(
        log(&w),
        [("WP01".into(), "planned".into(), "in_progress".into())]
    );
    assert_eq!(status_changes(&w), [("WP01".into(), "in_progress".into())]);
    // 2.1.3's two commits: implement's claim, then the workflow's start.
    assert_eq!(
        subjects(&w, 2),
        [
            "chore: Start WP01 implementation [claude]",
            "chore: WP01 claimed for implementation"
        ]
    );
    assert_eq!(w.git(&["status", "--porcelain"]), "", "left dirty");
    let wp = w.read(&w.wp_path("WP01"));
    assert!(
        wp.lines()
            .any(|l| l.starts_with("agent:") && l.contains("claude")),
        "{wp}"
    );
    assert!(wp.contains("Assigned agent via workflow command"), "{wp}");

    let prompt = fs::read_to_string(&prompt_file).unwrap();
    for part in [
        "IMPLEMENT: WP01",
        &format!("Source: {}", w.wp_path("WP01").display()),
        &format!("Workspace: {}", ws.display()),
        "WORK PACKAGE PROMPT BEGINS",
        "# Work Package Prompt: WP01 – Task 1",
        "WORK PACKAGE PROMPT ENDS",
        "spec-kitty agent tasks move-task WP01 --to for_review --agent claude --feature 001-demo",
        "spec-kitty agent tasks add-history WP01",
    ] {
        assert!(prompt.contains(part), "prompt lacks {part:?}:\n{prompt}");
    }

    // Again: already in progress with its agent, nothing moves.
    w.clear_spool();
    let head = w.git(&["rev-parse", "HEAD"]);
    let o = wf(&w, &["implement", "WP01", "--agent", "claude"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already in lane in_progress"),
        "{}",
        stderr(&o)
    );
    assert_eq!(log(&w).len(), 1);
    assert!(w.events().is_empty());
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head);

    // The next one without a WP id is WP02 (wp-id spellings as 2.1.3's).
    wf_ok(&w, &["implement", "--agent", "codex"]);
    assert_eq!(log(&w)[1].0, "WP02");
    assert_eq!(status_changes(&w), [("WP02".into(), "in_progress".into())]);
}

#[test]
fn implement_refuses_without_an_eligible_wp_or_an_agent_and_changes_nothing() {
    let w = world();
    let o = wf(&w, &["implement", "WP01"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--agent is required"), "{}", stderr(&o));
    assert!(!w.repo.join(".worktrees").exists());
    assert!(log(&w).is_empty());

    let o = wf(&w, &["implement", "WP07", "--agent", "claude"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("WP07 not found"), "{}", stderr(&o));

    wf_ok(&w, &["implement", "wp01-task-1", "--agent", "claude"]);
    wf_ok(&w, &["implement", "02", "--agent", "claude"]);
    let head = w.git(&["rev-parse", "HEAD"]);
    let o = wf(&w, &["implement", "--agent", "claude"]);
    assert_eq!(o.status.code(), Some(5), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("001-demo: no planned work package to implement"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(log(&w).len(), 2);
}

/// WP01 implemented in its worktree (one commit) and handed to review;
/// WP02 depends on WP01.
fn in_review() -> World {
    let w = World::with_wps(2);
    let p = w.wp_path("WP02");
    let t = w
        .read(&p)
        .replace("dependencies: []", "dependencies: [WP01]");
    fs::write(&p, t).unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "planned"]);
    wf_ok(&w, &["implement", "--agent", "claude"]);
    let ws = w.repo.join(".worktrees/001-demo-WP01");
    fs::write(ws.join("login.rs"), "fn login() {}\n").unwrap();
    w.git_in(&ws, &["add", "login.rs"]);
    w.git_in(&ws, &["commit", "-q", "-m", "feat(WP01): login"]);
    w.ok(&move_task("WP01", "for_review", &["--agent", "claude"]));
    w.clear_spool();
    w
}

#[test]
fn review_claims_the_first_for_review_wp_with_its_git_context() {
    let w = in_review();
    let before = log(&w).len();
    let out = wf_ok(&w, &["review", "--agent", "reviewer"]);
    let events = fs::read_to_string(w.feature_dir().join("status.events.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(log(&w).len(), before + 1, "one event");
    assert_eq!(last["from_lane"], "for_review");
    assert_eq!(last["to_lane"], "in_progress");
    assert_eq!(last["actor"], "reviewer");
    assert_eq!(last["force"], true);
    assert_eq!(last["review_ref"], "workflow-review-claim");
    assert_eq!(last["reason"], "Started review via workflow command");
    assert_eq!(status_changes(&w), [("WP01".into(), "in_progress".into())]);
    assert_eq!(w.events().len(), 1, "one wire event");
    assert_eq!(subjects(&w, 1), ["chore: Start WP01 review [reviewer]"]);
    assert_eq!(w.git(&["status", "--porcelain"]), "");

    assert!(
        out.contains("Branch: 001-demo-WP01 (based on main, 1 commits)"),
        "{out}"
    );
    assert!(out.contains("WP02 depend on WP01"), "{out}");
    let prompt = fs::read_to_string(tmpdir(&w).join("spec-kitty-review-WP01.md")).unwrap();
    let feedback = tmpdir(&w).join("spec-kitty-review-feedback-WP01.md");
    for part in [
        "REVIEW: WP01".to_string(),
        "Base branch: main (1 commits ahead)".into(),
        "git log main..HEAD --oneline".into(),
        "WP02 depend on WP01".into(),
        "# Work Package Prompt: WP01 – Task 1".into(),
        "spec-kitty agent tasks move-task WP01 --to approved --reviewer reviewer --feature 001-demo"
            .into(),
        format!(
            "move-task WP01 --to planned --review-feedback-file {}",
            feedback.display()
        ),
    ] {
        assert!(prompt.contains(&part), "prompt lacks {part:?}:\n{prompt}");
    }

    // Nothing else waits for review; WP02 is planned, not reviewable.
    let o = wf(&w, &["review", "--agent", "reviewer"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("no work package is waiting for review"));
    let o = wf(&w, &["review", "WP02", "--agent", "reviewer"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        stderr(&o).contains("WP02 is in lane planned, not for_review"),
        "{}",
        stderr(&o)
    );
    assert_eq!(log(&w).len(), before + 1);
}

#[test]
fn implement_after_changes_requested_shows_the_review_feedback() {
    let w = in_review();
    wf_ok(&w, &["review", "WP01", "--agent", "reviewer"]);
    let fb = w.tmp.path().join("findings.md");
    fs::write(&fb, "**Issue 1**: login has no test\n").unwrap();
    w.ok(&move_task(
        "WP01",
        "planned",
        &[
            "--review-feedback-file",
            fb.to_str().unwrap(),
            "--agent",
            "reviewer",
        ],
    ));
    w.clear_spool();
    let out = wf_ok(&w, &["implement", "WP01", "--agent", "claude"]);
    assert!(
        out.contains("Review feedback to address first: feedback://001-demo/WP01/"),
        "{out}"
    );
    assert_eq!(status_changes(&w), [("WP01".into(), "in_progress".into())]);
    // The worktree exists: one claim, one commit, as 2.1.3.
    assert_eq!(
        subjects(&w, 2)[0],
        "chore: Start WP01 implementation [claude]"
    );
    assert_ne!(subjects(&w, 2)[1], "chore: WP01 claimed for implementation");
    let prompt = fs::read_to_string(tmpdir(&w).join("spec-kitty-implement-WP01.md")).unwrap();
    let line = prompt
        .lines()
        .find(|l| l.contains("Read it first: cat"))
        .unwrap_or_else(|| panic!("no feedback path:\n{prompt}"));
    let path = line.split('"').nth(1).unwrap();
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        "**Issue 1**: login has no test\n"
    );
}

#[test]
fn a_link_planted_at_the_prompt_path_is_replaced_not_followed() {
    let w = world();
    let victim = w.tmp.path().join("victim.txt");
    fs::write(&victim, "keep me\n").unwrap();
    let prompt = tmpdir(&w).join("spec-kitty-implement-WP01.md");
    std::os::unix::fs::symlink(&victim, &prompt).unwrap();
    wf_ok(&w, &["implement", "--agent", "claude"]);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(fs::symlink_metadata(&prompt).unwrap().file_type().is_file());
    assert!(fs::read_to_string(&prompt)
        .unwrap()
        .contains("IMPLEMENT: WP01"));
}

#[test]
fn a_research_feature_names_where_its_deliverables_go() {
    let w = World::project();
    w.ok(&["specify", "study", "--mission", "research"]);
    w.ok(&["tasks", "add", "Survey"]);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "planned"]);
    let out = wf_ok(&w, &["implement", "--agent", "claude"]);
    assert!(
        out.contains("Research deliverables: docs/research/001-study/"),
        "{out}"
    );
    let prompt = fs::read_to_string(tmpdir(&w).join("spec-kitty-implement-WP01.md")).unwrap();
    assert!(prompt.contains("RESEARCH MISSION"), "{prompt}");
    assert!(prompt.contains("docs/research/001-study/ in the workspace"));
    // Not for software features.
    let sw = world();
    let out = wf_ok(&sw, &["implement", "--agent", "claude"]);
    assert!(!out.contains("Research deliverables"), "{out}");
}
