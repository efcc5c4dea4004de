//! `spec-kitty merge`: real git repositories, real worktrees made by
//! `implement`, the real binary; crash points through the
//! `SPEC_KITTY_TEST_CRASH_AT` hook (the process aborts itself there).

use crate::common;

use common::{approve, move_task, stderr, stdout, World};
use serde_json::Value;
use std::fs;
use std::path::PathBuf;

/// Feature 001-demo with WP01..WP03, WP01 depending on WP03; each WP
/// implemented in its worktree (one committed file `wpN.txt`, plus
/// `shared.txt` when `conflict` names it), reviewed and approved by alice.
/// The dependency is declared after the WPs started (implement would
/// branch WP01 from WP03's work otherwise): three independent branches,
/// ordered by `dependencies:` alone.
fn feature(conflicting: &[&str]) -> World {
    let w = World::project();
    w.ok(&["specify", "demo"]);
    for i in 1..=3 {
        w.ok(&["tasks", "add", &format!("Task {i}")]);
    }
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "work packages"]);
    for wp in ["WP01", "WP02", "WP03"] {
        implement_and_approve(&w, wp, conflicting.contains(&wp));
    }
    let wp1 = w.wp_path("WP01");
    let text = w
        .read(&wp1)
        .replace("dependencies: []", "dependencies: [WP03]");
    assert!(text.contains("dependencies: [WP03]"), "{text}");
    fs::write(&wp1, text).unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "WP01 depends on WP03"]);
    assert_eq!(tracked_changes(&w), "");
    w.clear_spool();
    w
}

/// `implement` (worktree and branch), one committed file `wpN.txt` (and
/// `shared.txt` when `conflict`), then for_review and approved by alice.
fn implement_and_approve(w: &World, wp: &str, conflict: bool) {
    w.ok(&["implement", wp, "--agent", "claude"]);
    let wt = worktree(w, wp);
    assert!(wt.join(".git").exists(), "implement made {}", wt.display());
    let n = &wp[3..];
    fs::write(wt.join(format!("wp{n}.txt")), format!("work of {wp}\n")).unwrap();
    if conflict {
        fs::write(wt.join("shared.txt"), format!("{wp} says so\n")).unwrap();
    }
    git_in(w, &wt, &["add", "-A"]);
    git_in(w, &wt, &["commit", "-q", "-m", &format!("{wp} work")]);
    w.ok(&["agent", "tasks", "move-task", wp, "--to", "for_review"]);
    w.ok(&approve(wp, "alice", "PR#1", &[]));
}

fn worktree(w: &World, wp: &str) -> PathBuf {
    w.repo.join(".worktrees").join(format!("001-demo-{wp}"))
}

fn git_in(w: &World, dir: &std::path::Path, args: &[&str]) -> String {
    let mut c = std::process::Command::new("git");
    c.args(args).current_dir(dir);
    common::git_env(&mut c, &w.home);
    let o = c.output().unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// `git status` of tracked files in the main checkout ("" = clean).
fn tracked_changes(w: &World) -> String {
    w.git(&["status", "--porcelain", "--untracked-files=no"])
}

fn log_events(w: &World) -> Vec<Value> {
    w.read(&w.feature_dir().join("status.events.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (wp, to_lane) of every logged event after the approvals.
fn done_events(w: &World) -> Vec<(String, String)> {
    log_events(w)
        .iter()
        .filter(|e| e["to_lane"] == "done")
        .map(|e| {
            (
                e["wp_id"].as_str().unwrap().to_string(),
                e["from_lane"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn merge_subjects(w: &World) -> Vec<String> {
    w.git(&["log", "--format=%s", "--reverse"])
        .lines()
        .filter(|l| l.starts_with("Merge WP"))
        .map(str::to_string)
        .collect()
}

/// Exactly one WPStatusChanged to done per WP on the wire.
fn assert_one_wire_event_each(w: &World) {
    let mut wire: Vec<String> = w
        .events()
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged" && e.payload["to_lane"] == "done")
        .map(|e| e.payload["wp_id"].as_str().unwrap().to_string())
        .collect();
    wire.sort();
    assert_eq!(wire, vec!["WP01", "WP02", "WP03"], "one event each");
}

/// The end state of a finished merge: every WP's work on main in
/// dependency order, each WP done once in the log and on the wire, the
/// status committed, worktrees, branches and state files gone.
fn assert_finished(w: &World) {
    assert_eq!(
        merge_subjects(w),
        vec![
            "Merge WP02 from 001-demo",
            "Merge WP03 from 001-demo",
            "Merge WP01 from 001-demo"
        ],
        "dependency order: WP01 waits for WP03"
    );
    for n in 1..=3 {
        assert!(
            w.repo.join(format!("wp{n}.txt")).exists(),
            "wp{n}.txt merged"
        );
    }
    let mut done = done_events(w);
    done.sort();
    assert_eq!(
        done,
        vec![
            ("WP01".to_string(), "approved".to_string()),
            ("WP02".to_string(), "approved".to_string()),
            ("WP03".to_string(), "approved".to_string())
        ],
        "each WP moved to done exactly once"
    );
    for e in log_events(w).iter().filter(|e| e["to_lane"] == "done") {
        assert_eq!(e["actor"], "merge");
        assert_eq!(e["evidence"]["review"]["reviewer"], "alice");
        assert_eq!(e["evidence"]["repos"][0]["branch"], "main");
        let n = &e["wp_id"].as_str().unwrap()[3..];
        assert_eq!(
            e["evidence"]["repos"][0]["files_touched"],
            serde_json::json!([format!("wp{n}.txt")]),
            "the WP's own files"
        );
    }
    let status: Value =
        serde_json::from_str(&w.read(&w.feature_dir().join("status.json"))).unwrap();
    assert_eq!(status["summary"]["done"], 3);
    for wp in ["WP01", "WP02", "WP03"] {
        assert!(
            w.read(&w.wp_path(wp)).contains("lane: \"done\""),
            "{wp} view"
        );
        assert!(!worktree(w, wp).exists(), "{wp} worktree removed");
    }
    assert_eq!(w.git(&["branch", "--list", "001-demo-WP*"]), "");
    assert_eq!(
        w.git(&["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert_eq!(tracked_changes(w), "", "status changes committed");
    assert!(!w.repo.join(".kittify/merge-state.json").exists());
    assert!(!w.repo.join(".kittify/merge-undo.json").exists());
    assert_eq!(w.git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main");
}

#[test]
fn a_feature_merges_in_dependency_order_and_ends_done_and_clean() {
    let w = feature(&[]);
    let v = w.json(&["merge"]);
    assert_eq!(v["result"], "merged");
    assert_eq!(v["merged"], serde_json::json!(["WP02", "WP03", "WP01"]));
    assert_eq!(v["pushed"], false);
    assert_finished(&w);
    assert_one_wire_event_each(&w);
    // Status commits come before the worktree removal, one per WP.
    let log = w.git(&["log", "--format=%s"]);
    assert_eq!(log.matches("chore: Mark WP").count(), 3, "{log}");
    // A second run has nothing to merge and changes nothing.
    let before = w.git(&["rev-parse", "HEAD"]);
    assert!(!w.run(&["merge"]).status.success());
    assert_eq!(w.git(&["rev-parse", "HEAD"]), before);
}

#[test]
fn agent_feature_merge_is_the_same_command() {
    let w = feature(&[]);
    w.ok(&["agent", "feature", "merge", "--feature", "001-demo"]);
    assert_finished(&w);
}

#[test]
fn dry_run_prints_2_1_3s_plan_and_changes_nothing() {
    let w = feature(&[]);
    let before = w.snapshot();
    let head = w.git(&["rev-parse", "HEAD"]);
    let v = w.json(&["merge", "--dry-run"]);
    assert_eq!(v["feature_slug"], "001-demo");
    assert_eq!(v["target_branch"], "main");
    assert_eq!(
        v["effective_wp_branches"],
        serde_json::json!(["001-demo-WP02", "001-demo-WP03", "001-demo-WP01"])
    );
    let steps: Vec<&str> = v["planned_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(steps[0], "git checkout main");
    assert_eq!(
        steps[1],
        "git merge --no-ff 001-demo-WP02 -m 'Merge WP02 from 001-demo'"
    );
    for k in [
        "spec_kitty_version",
        "all_wp_branches",
        "skipped_already_in_target",
        "skipped_ancestor_of",
        "reason_summary",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    assert_eq!(w.snapshot(), before, "no file changed");
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head);
    assert!(w.events().is_empty());
}

#[test]
fn a_conflict_stops_naming_wp_and_files_then_resumes_after_the_fix() {
    // WP02 and WP03 both add shared.txt: WP02 merges, WP03 conflicts.
    let w = feature(&["WP02", "WP03"]);
    let o = w.run(&["merge", "--json"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["result"], "conflict");
    assert_eq!(v["wp_id"], "WP03");
    assert_eq!(v["conflicted_files"], serde_json::json!(["shared.txt"]));
    let err = stderr(&o);
    assert!(err.contains("WP03") && err.contains("shared.txt"), "{err}");
    // Nothing half-merged: no merge in progress, clean tree, WP02 landed.
    assert!(w.run_in(&w.repo, &["merge", "--dry-run"]).status.success());
    assert!(!w.repo.join(".git/MERGE_HEAD").exists());
    assert_eq!(tracked_changes(&w), "");
    assert_eq!(merge_subjects(&w), vec!["Merge WP02 from 001-demo"]);
    assert_eq!(done_events(&w).len(), 1);
    let state: Value =
        serde_json::from_str(&w.read(&w.repo.join(".kittify/merge-state.json"))).unwrap();
    assert_eq!(state["current_wp"], "WP03");
    assert_eq!(state["completed_wps"], serde_json::json!(["WP02"]));
    assert!(worktree(&w, "WP03").exists(), "nothing removed yet");

    // The fix, on the WP branch in its worktree: take main, resolve, commit.
    let wt = worktree(&w, "WP03");
    let mut c = std::process::Command::new("git");
    c.args(["merge", "-q", "main"]).current_dir(&wt);
    common::git_env(&mut c, &w.home);
    let _ = c.output().unwrap(); // conflicts, by design
    fs::write(wt.join("shared.txt"), "WP02 and WP03 agree\n").unwrap();
    git_in(&w, &wt, &["add", "-A"]);
    git_in(&w, &wt, &["commit", "-q", "--no-edit"]);
    w.ok(&["merge", "--resume"]);
    assert_eq!(
        merge_subjects(&w),
        vec![
            "Merge WP02 from 001-demo",
            "Merge WP03 from 001-demo",
            "Merge WP01 from 001-demo"
        ]
    );
    assert_eq!(w.read(&w.repo.join("shared.txt")), "WP02 and WP03 agree\n");
    let mut done = done_events(&w);
    done.sort();
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(!worktree(&w, "WP03").exists());
}

/// Runs `merge` with the crash hook at `point`: the process must die there.
fn crash_at(w: &World, point: &str) {
    let o = w
        .cmd_in(&w.repo, &["merge"])
        .env("SPEC_KITTY_TEST_CRASH_AT", point)
        .output()
        .unwrap();
    assert!(
        !o.status.success() && o.status.code().is_none(),
        "{point}: killed by a signal, got {:?}: {}",
        o.status,
        stderr(&o)
    );
    assert!(
        w.repo.join(".kittify/merge-state.json").exists(),
        "{point}: state kept"
    );
}

fn crash_then_finish(point: &str, resume_flag: bool) {
    let w = feature(&[]);
    crash_at(&w, point);
    if resume_flag {
        w.ok(&["merge", "--resume"]);
    } else {
        w.ok(&["merge"]);
    }
    assert_finished(&w);
    assert_one_wire_event_each(&w);
}

#[test]
fn crash_after_a_wp_merge_resumes() {
    crash_then_finish("after-wp-merge", false);
}

#[test]
fn crash_after_a_status_write_resumes_without_recording_twice() {
    crash_then_finish("after-status-write", true);
}

#[test]
fn crash_between_two_wp_merges_resumes() {
    crash_then_finish("between-merges", false);
}

#[test]
fn crash_during_worktree_removal_resumes() {
    let w = feature(&[]);
    crash_at(&w, "during-worktree-removal");
    // Status was committed before the first worktree went.
    assert_eq!(done_events(&w).len(), 3);
    assert_eq!(tracked_changes(&w), "");
    w.ok(&["merge"]);
    assert_finished(&w);
}

#[test]
fn crash_during_branch_deletion_resumes() {
    crash_then_finish("during-branch-deletion", true);
}

#[test]
fn abort_puts_main_branches_and_worktrees_back() {
    let w = feature(&[]);
    let head = w.git(&["rev-parse", "main"]);
    let tips = w.git(&["for-each-ref", "refs/heads/001-demo-WP*"]);
    crash_at(&w, "during-worktree-removal");
    assert_ne!(w.git(&["rev-parse", "main"]), head);
    w.ok(&["merge", "--abort"]);
    // main is back where it was, plus one commit of status files only.
    assert_eq!(w.git(&["rev-parse", "main~1"]), head, "main back");
    let changed = w.git(&["diff", "--name-only", head.trim(), "main"]);
    assert!(
        changed
            .lines()
            .all(|l| l.starts_with("kitty-specs/001-demo/")),
        "{changed}"
    );
    assert_eq!(
        w.git(&["log", "-1", "--format=%s", "main"]).trim(),
        "chore: status of 001-demo after merge abort"
    );
    assert!(!w.repo.join("wp1.txt").exists(), "the WP's work left main");
    assert_eq!(w.git(&["for-each-ref", "refs/heads/001-demo-WP*"]), tips);
    for wp in ["WP01", "WP02", "WP03"] {
        assert!(worktree(&w, wp).join(".git").exists(), "{wp} worktree back");
    }
    // The log keeps its history: each done is followed by one forced move
    // back to approved, on the wire too, and the views say approved.
    let evs = log_events(&w);
    for wp in ["WP01", "WP02", "WP03"] {
        let last = evs.iter().rev().find(|e| e["wp_id"] == wp).unwrap();
        assert_eq!(
            (&last["from_lane"], &last["to_lane"], &last["force"]),
            (&"done".into(), &"approved".into(), &true.into()),
            "{wp}"
        );
        assert!(
            w.read(&w.wp_path(wp)).contains("lane: \"approved\""),
            "{wp}"
        );
    }
    let back: Vec<_> = w
        .events()
        .into_iter()
        .filter(|e| e.payload["from_lane"] == "done" && e.payload["to_lane"] == "approved")
        .collect();
    assert_eq!(back.len(), 3, "one wire event per reverted WP");
    assert!(!w.repo.join(".kittify/merge-state.json").exists());
    assert_eq!(tracked_changes(&w), "");
    // And the merge can be run again from scratch.
    w.ok(&["merge"]);
    assert_eq!(merge_subjects(&w).len(), 3);
    assert_eq!(done_events(&w).len(), 6, "done, reverted, done again");
    assert!(!worktree(&w, "WP01").exists());
}

#[test]
fn unreviewed_work_and_dirty_worktrees_are_refused_before_anything_changes() {
    let w = feature(&[]);
    let feedback = w.tmp.path().join("feedback.md");
    fs::write(&feedback, "needs another pass\n").unwrap();
    w.ok(&move_task(
        "WP02",
        "in_progress",
        &["--review-feedback-file", feedback.to_str().unwrap()],
    ));
    fs::write(worktree(&w, "WP03").join("wip.txt"), "not committed\n").unwrap();
    // WP01 back for review after changes were requested, its frontmatter
    // approval cleared: no approval on record (2.1.3's rule).
    w.ok(&move_task(
        "WP01",
        "in_progress",
        &["--review-feedback-file", feedback.to_str().unwrap()],
    ));
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "for_review"]);
    let wp1 = w.wp_path("WP01");
    let text = w.read(&wp1);
    assert!(text.contains("review_status: 'approved'"), "{text}");
    fs::write(
        &wp1,
        text.replace("review_status: 'approved'", "review_status: ''"),
    )
    .unwrap();
    w.git(&["commit", "-q", "-am", "WP01 approval withdrawn"]);
    let head = w.git(&["rev-parse", "HEAD"]);
    let o = w.run(&["merge"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("WP02: in lane in_progress"), "{err}");
    assert!(
        err.contains("WP01: in for_review with no approval"),
        "{err}"
    );
    assert!(
        err.contains("WP03: worktree") && err.contains("uncommitted"),
        "{err}"
    );
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head);
    assert!(!w.repo.join(".kittify/merge-state.json").exists());
}

#[test]
fn squash_lands_one_commit_per_wp_and_resumes_after_a_crash() {
    // A squash leaves no ancestry: the re-run must recognise the landed
    // WP by its commit subject, not merge it twice.
    let w = feature(&[]);
    let o = w
        .cmd_in(&w.repo, &["merge", "--strategy", "squash"])
        .env("SPEC_KITTY_TEST_CRASH_AT", "after-wp-merge")
        .output()
        .unwrap();
    assert!(o.status.code().is_none(), "{}", stderr(&o));
    w.ok(&["merge", "--resume"]);
    assert_finished(&w);
    assert_eq!(
        w.git(&["log", "--format=%p", "-1", "--grep=^Merge WP01 from"])
            .split_whitespace()
            .count(),
        1,
        "a squash commit has one parent"
    );
}

#[test]
fn a_stacked_branch_lands_its_base_with_it_as_2_1_3_does() {
    // WP02 depends on WP01 and was started from WP01's branch: only WP02's
    // tip is merged (2.1.3's effective tips), and both end done, WP01 first.
    let w = World::project();
    w.ok(&["specify", "demo"]);
    w.ok(&["tasks", "add", "Base"]);
    w.ok(&["tasks", "add", "On top", "--depends", "WP01"]);
    // `tasks add` does not commit its files (meta.json's announced list).
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "work packages"]);
    implement_and_approve(&w, "WP01", false);
    w.git(&["branch", "001-demo-WP02", "001-demo-WP01"]);
    implement_and_approve(&w, "WP02", false);
    w.clear_spool();
    let plan = w.json(&["merge", "--dry-run"]);
    assert_eq!(
        plan["effective_wp_branches"],
        serde_json::json!(["001-demo-WP02"])
    );
    assert_eq!(
        plan["skipped_ancestor_of"],
        serde_json::json!({"001-demo-WP01": ["001-demo-WP02"]})
    );
    w.ok(&["merge"]);
    assert_eq!(merge_subjects(&w), vec!["Merge WP02 from 001-demo"]);
    let done: Vec<String> = log_events(&w)
        .iter()
        .filter(|e| e["to_lane"] == "done")
        .map(|e| e["wp_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(done, vec!["WP01", "WP02"]);
    assert!(w.repo.join("wp1.txt").exists() && w.repo.join("wp2.txt").exists());
    assert_eq!(w.git(&["branch", "--list", "001-demo-WP*"]), "");
    assert!(!worktree(&w, "WP01").exists() && !worktree(&w, "WP02").exists());
}

#[test]
fn a_git_merge_killed_half_way_is_rolled_back_and_run_again() {
    for strategy in ["merge", "squash"] {
        let w = feature(&[]);
        let o = w
            .cmd_in(&w.repo, &["merge", "--strategy", strategy])
            .env("SPEC_KITTY_TEST_CRASH_AT", "between-merges")
            .output()
            .unwrap();
        assert!(o.status.code().is_none(), "{}", stderr(&o));
        // What a git merge killed before its commit leaves behind.
        if strategy == "squash" {
            w.git(&["merge", "--squash", "001-demo-WP03"]);
        } else {
            w.git(&["merge", "--no-ff", "--no-commit", "001-demo-WP03"]);
        }
        assert_ne!(tracked_changes(&w), "", "{strategy}: half-merged");
        let o = w.run(&["merge"]);
        assert!(o.status.success(), "{strategy}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("WP03 was interrupted"),
            "{}",
            stderr(&o)
        );
        assert_finished(&w);
    }
}
