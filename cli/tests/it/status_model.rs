//! The status model's write path, end to end through the real binary in
//! temp git repositories: the files a move writes (compared with the
//! formats 2.1.3's `status/` code writes), each guard's refusal and the
//! flag that satisfies it, bootstrap of frontmatter-only features, crash
//! repair from the log, commits, and broken logs.

use crate::common;

use common::*;
use serde_json::Value;
use std::fs;

/// 2.1.3's ALLOWED_TRANSITIONS (`status/transitions.py`), for checking a
/// log the way its `agent status validate` does.
const ALLOWED: [(&str, &str); 24] = [
    ("planned", "claimed"),
    ("claimed", "in_progress"),
    ("in_progress", "for_review"),
    ("in_progress", "approved"),
    ("for_review", "approved"),
    ("for_review", "done"),
    ("approved", "done"),
    ("for_review", "in_progress"),
    ("for_review", "planned"),
    ("approved", "in_progress"),
    ("approved", "planned"),
    ("in_progress", "planned"),
    ("planned", "blocked"),
    ("claimed", "blocked"),
    ("in_progress", "blocked"),
    ("for_review", "blocked"),
    ("approved", "blocked"),
    ("blocked", "in_progress"),
    ("planned", "canceled"),
    ("claimed", "canceled"),
    ("in_progress", "canceled"),
    ("for_review", "canceled"),
    ("approved", "canceled"),
    ("blocked", "canceled"),
];

/// The log's events, each line checked as 2.1.3's validator checks it:
/// every key, sorted, Python's separators; legal or forced with a reason;
/// done with evidence or forced; for_review → in_progress with a review_ref.
fn log_events(w: &World, slug: &str) -> Vec<Value> {
    let text = w.read(
        &w.repo
            .join("kitty-specs")
            .join(slug)
            .join("status.events.jsonl"),
    );
    text.lines()
        .map(|line| {
            assert!(
                line.starts_with("{\"actor\": "),
                "sorted keys, Python separators: {line}"
            );
            let v: Value = serde_json::from_str(line).unwrap();
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            let mut want = vec![
                "actor",
                "at",
                "event_id",
                "evidence",
                "execution_mode",
                "feature_slug",
                "force",
                "from_lane",
                "policy_metadata",
                "reason",
                "review_ref",
                "to_lane",
                "wp_id",
            ];
            want.sort();
            let mut got = keys.clone();
            got.sort();
            assert_eq!(got, want, "{line}");
            assert_eq!(v["event_id"].as_str().unwrap().len(), 26, "a ULID: {line}");
            let (from, to) = (
                v["from_lane"].as_str().unwrap(),
                v["to_lane"].as_str().unwrap(),
            );
            if v["force"] == true {
                assert!(
                    v["reason"].as_str().is_some_and(|r| !r.is_empty()),
                    "forced without reason: {line}"
                );
            } else {
                assert!(
                    ALLOWED.contains(&(from, to)),
                    "illegal {from} -> {to}: {line}"
                );
                if to == "done" {
                    assert!(
                        v["evidence"]["review"]["reference"].is_string(),
                        "done without evidence: {line}"
                    );
                }
            }
            if from == "for_review" && to == "in_progress" {
                assert!(v["review_ref"].is_string(), "{line}");
            }
            v
        })
        .collect()
}

fn status_json(w: &World) -> Value {
    serde_json::from_str(&w.read(&w.feature_dir().join("status.json"))).unwrap()
}

fn write_tasks_md(w: &World, body: &str) {
    fs::write(w.feature_dir().join("tasks.md"), body).unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "tasks"]);
}

const TASKS_MD: &str = "# Tasks\n\n## Work Package WP01: Task 1\n\n- [ ] T001 first\n- [ ] T002 second\n\n## Work Package WP02: Task 2\n\n- [ ] T003 third\n";

#[test]
fn a_move_writes_the_log_status_json_tasks_block_frontmatter_and_activity_as_2_1_3() {
    let w = World::with_wps(2);
    write_tasks_md(&w, TASKS_MD);
    w.ok(&["implement", "WP01", "--agent", "claude", "--no-worktree"]);
    w.ok(&mark_status(&["T001", "T002"], "done", &[]));
    w.clear_spool();
    let out = w.json(&move_task(
        "WP01",
        "for_review",
        &[
            "--agent",
            "claude",
            "--shell-pid",
            "777",
            "--note",
            "Ready for review",
        ],
    ));
    assert_eq!(out["old_lane"], "in_progress");
    assert_eq!(out["new_lane"], "for_review");
    let evs = log_events(&w, "001-demo");
    assert_eq!(evs.len(), 2, "implement + this move");
    let e = &evs[1];
    assert_eq!(e["from_lane"], "in_progress");
    assert_eq!(e["to_lane"], "for_review");
    assert_eq!(e["actor"], "claude");
    assert_eq!(e["force"], false);
    assert_eq!(e["reason"], "Ready for review");
    assert_eq!(e["execution_mode"], "worktree");
    assert!(e["at"].as_str().unwrap().ends_with("+00:00"));
    // The wire: one WPStatusChanged with the same lanes and actor.
    let wire = w.events();
    assert_eq!(wire.len(), 1);
    assert_eq!(wire[0].payload["from_lane"], "in_progress");
    assert_eq!(wire[0].payload["to_lane"], "for_review");
    assert_eq!(wire[0].payload["actor"], "claude");
    // status.json: 2.1.3's layout (indent 2, sorted keys) and content.
    let text = w.read(&w.feature_dir().join("status.json"));
    assert!(
        text.starts_with(
            "{\n  \"event_count\": 2,\n  \"feature_slug\": \"001-demo\",\n  \"last_event_id\": "
        ),
        "{text}"
    );
    let s = status_json(&w);
    assert_eq!(s["work_packages"]["WP01"]["lane"], "for_review");
    assert_eq!(s["work_packages"]["WP01"]["last_event_id"], e["event_id"]);
    assert_eq!(
        s["work_packages"]["WP01"]["force_count"], 1,
        "implement's one forced step"
    );
    assert_eq!(s["summary"]["for_review"], 1);
    assert_eq!(s["last_event_id"], e["event_id"]);
    // tasks.md: the generated block at the end, checkboxes as ticked.
    let tasks = w.read(&w.feature_dir().join("tasks.md"));
    assert!(
        tasks.contains("- [x] T001 first\n- [x] T002 second\n"),
        "{tasks}"
    );
    assert!(tasks.ends_with("- [ ] T003 third\n\n<!-- status-model:start -->\n## Canonical Status (Generated)\n- WP01: for_review\n<!-- status-model:end -->\n"), "{tasks}");
    // Frontmatter and activity log.
    let wp = w.read(&w.wp_path("WP01"));
    assert!(wp.contains("lane: \"for_review\"\n"), "{wp}");
    assert!(
        wp.contains("agent: 'claude'\n") && wp.contains("shell_pid: '777'\n"),
        "{wp}"
    );
    let last = wp.lines().rfind(|l| l.starts_with("- 20")).unwrap();
    let (ts, rest) = last[2..].split_once(' ').unwrap();
    assert!(ts.len() == 20 && ts.ends_with('Z'), "{last}");
    assert_eq!(
        rest,
        "– claude – shell_pid=777 – lane=for_review – Ready for review"
    );
    // Committed: the WP file and the status files, 2.1.3's subject.
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "chore: Move WP01 to for_review on spec 001 [claude]"
    );
    assert_eq!(
        w.files_of("HEAD"),
        vec![
            "kitty-specs/001-demo/status.events.jsonl",
            "kitty-specs/001-demo/status.json",
            "kitty-specs/001-demo/tasks.md",
            "kitty-specs/001-demo/tasks/WP01-task-1.md",
        ]
    );
    assert_eq!(
        w.git(&["status", "--porcelain"]).trim(),
        "",
        "all committed"
    );
}

#[test]
fn review_approval_and_done_carry_evidence_and_each_move_is_one_event() {
    let w = World::with_wps(1);
    w.ok(&["implement", "WP01", "--agent", "claude"]);
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "for_review"]);
    w.clear_spool();
    w.ok(&approve("WP01", "alice", "PR#42", &[]));
    let evs = log_events(&w, "001-demo");
    let e = evs.last().unwrap();
    assert_eq!(e["to_lane"], "approved");
    assert_eq!(
        e["evidence"],
        serde_json::json!({"review": {"reviewer": "alice", "verdict": "approved", "reference": "PR#42"}})
    );
    let wp = w.read(&w.wp_path("WP01"));
    assert!(
        wp.contains("reviewed_by: 'alice'\n") && wp.contains("review_status: 'approved'\n"),
        "{wp}"
    );
    // Merge the WP branch: done passes the merge-ancestry check without an override.
    w.git(&["merge", "-q", "--no-edit", "001-demo-WP01"]);
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "done"]);
    let evs = log_events(&w, "001-demo");
    assert_eq!(evs.last().unwrap()["to_lane"], "done");
    assert_eq!(
        evs.last().unwrap()["evidence"]["review"]["reviewer"],
        "alice",
        "the recorded reviewer is kept"
    );
    let wire = w.events();
    assert!(wire.iter().all(|e| e.event_type == "WPStatusChanged"));
    assert_eq!(
        lane_moves(&wire),
        [
            ["WP01", "for_review", "approved"],
            ["WP01", "approved", "done"]
        ]
    );
    assert_eq!(status_json(&w)["summary"]["done"], 1);
}

/// Runs a refused command: exit 5, the message names the guard's fix, one
/// ErrorLogged with that message, and no file changed.
fn refused(w: &World, args: &[&str], says: &[&str]) {
    w.clear_spool();
    let before = w.snapshot();
    let head = w.git(&["rev-parse", "HEAD"]);
    let o = w.run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?} says {s:?}: {err}");
    }
    let evs = w.events();
    assert_eq!(evs.len(), 1, "{args:?}: one ErrorLogged");
    assert_eq!(evs[0].event_type, "ErrorLogged");
    let msg = evs[0].payload["error_message"].as_str().unwrap();
    assert!(
        msg.contains(says[0]) && msg != "1",
        "the real message: {msg}"
    );
    assert_eq!(w.snapshot(), before, "{args:?} changed files");
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head, "{args:?} committed");
    w.clear_spool();
}

#[test]
fn each_guard_refuses_naming_its_flag_and_the_flag_satisfies_it() {
    let w = World::with_wps(2);
    write_tasks_md(&w, TASKS_MD);
    fn emit<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["agent", "status", "emit", "WP01", "--actor", "claude"];
        v.extend_from_slice(args);
        v
    }
    // claimed: planned -> claimed needs only the actor (--actor is required).
    w.ok(&emit(&["--to", "claimed"]));
    w.ok(&emit(&["--to", "in_progress"]));
    // Unticked subtasks: review needs them ticked, or --force.
    refused(
        &w,
        &["agent", "tasks", "move-task", "WP01", "--to", "for_review"],
        &["unchecked subtasks", "T001", "mark-status", "--force"],
    );
    refused(
        &w,
        &emit(&["--to", "for_review"]),
        &["requires completed subtasks", "mark-status", "--force"],
    );
    w.ok(&emit(&["--to", "for_review", "--subtasks-complete"]));
    // Done needs review evidence.
    refused(
        &w,
        &emit(&["--to", "done"]),
        &["requires evidence", "--reviewer", "--approval-ref"],
    );
    // Sending reviewed work back needs the review feedback.
    refused(
        &w,
        &["agent", "tasks", "move-task", "WP01", "--to", "in_progress"],
        &["requires review_ref", "--review-feedback-file"],
    );
    let fb = w.tmp.path().join("feedback.md");
    fs::write(&fb, "**Issue**: tests missing\n").unwrap();
    let fb = fb.to_string_lossy().into_owned();
    let out = w.json(&move_task(
        "WP01",
        "doing",
        &["--review-feedback-file", &fb],
    ));
    let pointer = out["review_feedback"].as_str().unwrap().to_string();
    assert!(
        pointer.starts_with("feedback://001-demo/WP01/"),
        "{pointer}"
    );
    let name = pointer.rsplit('/').next().unwrap();
    let copy = w
        .repo
        .join(".git/spec-kitty/feedback/001-demo/WP01")
        .join(name);
    assert_eq!(
        w.read(&copy),
        "**Issue**: tests missing\n",
        "persisted in the git common dir"
    );
    assert_eq!(
        log_events(&w, "001-demo").last().unwrap()["review_ref"],
        pointer.as_str()
    );
    // Un-starting needs a reason (emit has no default).
    refused(
        &w,
        &emit(&["--to", "planned"]),
        &["requires reason", "--reason"],
    );
    w.ok(&emit(&["--to", "planned", "--reason", "wrong WP"]));
    // Outside the graph: --force (with a reason) only.
    refused(
        &w,
        &emit(&["--to", "done"]),
        &["Illegal transition: planned -> done", "--force"],
    );
    refused(
        &w,
        &emit(&["--to", "done", "--force"]),
        &["Force transitions require actor and reason", "--reason"],
    );
    // Done without merged branch: --done-override-reason.
    w.ok(&["agent", "tasks", "move-task", "WP02", "--to", "doing"]);
    w.ok(&["agent", "tasks", "mark-status", "T003", "--status", "done"]);
    w.ok(&["agent", "tasks", "move-task", "WP02", "--to", "for_review"]);
    refused(
        &w,
        &["agent", "tasks", "move-task", "WP02", "--to", "done"],
        &["merge ancestry", "--done-override-reason"],
    );
    w.ok(&move_task(
        "WP02",
        "done",
        &["--done-override-reason", "hotfix merged by hand"],
    ));
    let last = log_events(&w, "001-demo").pop().unwrap();
    assert_eq!(last["reason"], "Done override: hotfix merged by hand");
    // Someone else's WP: --force.
    w.ok(&["implement", "WP01", "--agent", "claude", "--no-worktree"]);
    refused(
        &w,
        &move_task("WP01", "blocked", &["--agent", "codex"]),
        &["Agent mismatch", "--force"],
    );
    w.ok(&move_task(
        "WP01",
        "blocked",
        &["--agent", "codex", "--force"],
    ));
    let last = log_events(&w, "001-demo").pop().unwrap();
    assert_eq!(
        (last["force"].clone(), last["reason"].clone()),
        (Value::Bool(true), "Force move to blocked".into())
    );
}

#[test]
fn crash_leftovers_are_repaired_from_the_log_by_the_next_command() {
    let w = World::with_wps(2);
    write_tasks_md(&w, TASKS_MD);
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    w.ok(&["agent", "tasks", "move-task", "WP02", "--to", "blocked"]);
    // As if a process died after appending to the log: views stale or gone.
    let wp1 = w.wp_path("WP01");
    fs::write(
        &wp1,
        w.read(&wp1)
            .replace("lane: \"in_progress\"", "lane: \"planned\""),
    )
    .unwrap();
    fs::remove_file(w.feature_dir().join("status.json")).unwrap();
    let tasks = w.read(&w.feature_dir().join("tasks.md"));
    let cut = tasks.find("<!-- status-model:start -->").unwrap();
    fs::write(w.feature_dir().join("tasks.md"), &tasks[..cut]).unwrap();
    w.clear_spool();
    // The next write (of another WP) rebuilds every view from the log.
    w.ok(&["agent", "tasks", "move-task", "WP02", "--to", "doing"]);
    assert!(
        w.read(&wp1).contains("lane: \"in_progress\""),
        "stale frontmatter repaired"
    );
    let s = status_json(&w);
    assert_eq!(s["work_packages"]["WP01"]["lane"], "in_progress");
    assert_eq!(s["event_count"], 3);
    assert!(w
        .read(&w.feature_dir().join("tasks.md"))
        .contains("- WP01: in_progress\n- WP02: in_progress\n"));
    assert_eq!(w.events().len(), 1, "a repair sends nothing");
    // `agent status materialize` does the same on demand.
    fs::remove_file(w.feature_dir().join("status.json")).unwrap();
    let out = w.json(&["agent", "status", "materialize"]);
    assert_eq!(out["event_count"], 3);
    assert_eq!(status_json(&w)["summary"]["in_progress"], 2);
}

#[test]
fn a_torn_log_line_is_refused_by_file_and_line_and_nothing_changes() {
    let w = World::with_wps(1);
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    let log = w.feature_dir().join("status.events.jsonl");
    let mut text = w.read(&log);
    text.push_str("{\"actor\": \"claude\", \"at\": \"2026-");
    fs::write(&log, &text).unwrap();
    w.clear_spool();
    let before = w.snapshot();
    for args in [
        &["agent", "tasks", "move-task", "WP01", "--to", "for_review"][..],
        &["agent", "status", "materialize"],
        &["implement", "WP01"],
        &["accept"],
    ] {
        let o = w.run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{}:2: not a JSON object", log.display())),
            "{args:?}: {err}"
        );
        assert_eq!(w.snapshot(), before, "{args:?} changed files");
    }
    assert!(w.events().is_empty());
}

#[test]
fn a_frontmatter_only_feature_is_bootstrapped_once_with_no_wire_events() {
    let w = World::project();
    let src = corpus_dir().join("032-identity-aware-cli-event-sync");
    let dst = w.repo.join("kitty-specs/032-identity-aware-cli-event-sync");
    copy_tree(&src, &dst);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "corpus"]);
    let wps = fs::read_dir(dst.join("tasks"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("WP"))
        .count();
    w.clear_spool();
    // A planned WP of the corpus feature.
    let target = fs::read_dir(dst.join("tasks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("WP"))
        .find(|p| w.read(p).contains("lane: \"planned\"") || w.read(p).contains("lane: planned"));
    let (slug, feature) = ("032-identity-aware-cli-event-sync", "--feature");
    let evs_before;
    {
        let o = w.run(&[
            "agent",
            "status",
            "migrate",
            feature,
            slug,
            "--dry-run",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["features"][0]["status"], "migrated");
        assert_eq!(v["features"][0]["wp_count"], wps);
        assert!(
            !dst.join("status.events.jsonl").exists(),
            "dry run writes nothing"
        );
        evs_before = w.events().len();
    }
    assert_eq!(evs_before, 0);
    let wp_id = match &target {
        Some(p) => p.file_name().unwrap().to_string_lossy()[..4].to_string(),
        None => "WP01".into(),
    };
    let to = if target.is_some() {
        "blocked"
    } else {
        "canceled"
    };
    w.ok(&move_task(&wp_id, to, &["--feature", slug, "--force"]));
    let evs = log_events(&w, slug);
    let (boot, live): (Vec<&Value>, Vec<&Value>) = evs
        .iter()
        .partition(|e| e["execution_mode"] == "direct_repo");
    assert!(!boot.is_empty(), "the history became events");
    assert!(boot.iter().all(|e| e["force"] == true));
    assert!(boot
        .iter()
        .any(|e| e["reason"] == "historical_frontmatter_to_jsonl:v1"));
    assert_eq!(live.len(), 1);
    assert_eq!(
        w.events().len(),
        1,
        "one wire event: the move, not the bootstrap"
    );
    // Every WP's lane in the snapshot is its frontmatter lane.
    let s: Value = serde_json::from_str(&w.read(&dst.join("status.json"))).unwrap();
    for p in fs::read_dir(dst.join("tasks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("WP"))
    {
        let text = w.read(&p);
        let lane = frontmatter_lane(&text)
            .unwrap()
            .replace("doing", "in_progress");
        let id = &p.file_name().unwrap().to_string_lossy()[..4];
        if lane != "planned" {
            assert_eq!(s["work_packages"][id]["lane"], lane.as_str(), "{id}");
        }
    }
    // Migrating again: skipped, nothing duplicated.
    let n = evs.len();
    let v = w.json(&["agent", "status", "migrate", "--all"]);
    assert_eq!(v["summary"]["total_skipped"], 1);
    assert_eq!(log_events(&w, slug).len(), n);
}

#[test]
fn commits_hold_only_our_files_and_follow_the_flag_and_the_config() {
    let w = World::with_wps(1);
    // The user's own work: a staged file and a dirty one.
    fs::write(w.repo.join("notes.txt"), "mine\n").unwrap();
    w.git(&["add", "notes.txt"]);
    fs::write(w.repo.join("loose.txt"), "loose\n").unwrap();
    let head = w.git(&["rev-parse", "HEAD"]);
    w.ok(&move_task("WP01", "doing", &["--no-auto-commit"]));
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head, "--no-auto-commit");
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "blocked"]);
    let files = w.git(&["show", "--name-only", "--format=%s", "HEAD"]);
    assert!(
        files.starts_with("chore: Move WP01 to blocked on spec 001\n"),
        "{files}"
    );
    assert!(
        !files.contains("notes.txt") && !files.contains("loose.txt"),
        "{files}"
    );
    assert_eq!(
        w.git(&["diff", "--cached", "--name-only"]).trim(),
        "notes.txt",
        "still staged"
    );
    // The project's config turns it off; the flag turns it back on.
    let cfg = w.repo.join(".kittify/config.yaml");
    let mut text = w.read(&cfg);
    text.push_str("agents:\n  auto_commit: false\n");
    fs::write(&cfg, text).unwrap();
    let head = w.git(&["rev-parse", "HEAD"]);
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert_eq!(
        w.git(&["rev-parse", "HEAD"]),
        head,
        "config auto_commit: false"
    );
    w.ok(&move_task("WP01", "blocked", &["--auto-commit"]));
    assert_ne!(w.git(&["rev-parse", "HEAD"]), head, "--auto-commit");
}

#[test]
fn mark_status_ticks_commits_and_names_the_right_work_package() {
    let w = World::with_wps(2);
    write_tasks_md(&w, TASKS_MD);
    let out = w.json(&mark_status(&["T003", "T009"], "done", &[]));
    assert_eq!(out["updated"], serde_json::json!(["T003"]));
    assert_eq!(out["not_found"], serde_json::json!(["T009"]));
    assert_eq!(out["count"], 1);
    let tasks = w.read(&w.feature_dir().join("tasks.md"));
    assert!(tasks.contains("- [x] T003 third"), "{tasks}");
    assert!(tasks.contains("- [ ] T001 first"), "{tasks}");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event_type, "HistoryAdded");
    assert_eq!(evs[0].payload["wp_id"], "WP02", "T003 is in WP02's section");
    assert_eq!(
        evs[0].payload["entry_content"],
        "Subtask(s) T003 marked as done"
    );
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "chore: Mark T003 as done on spec 001"
    );
    w.ok(&mark_status(&["T001", "T002"], "done", &[]));
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "chore: Mark 2 subtasks as done on spec 001"
    );
    w.clear_spool();
    let before = w.snapshot();
    let o = w.run(&["agent", "tasks", "mark-status", "T404", "--status", "done"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("No task IDs found"), "{}", stderr(&o));
    assert_eq!(w.snapshot(), before);
    assert!(w.events().is_empty());
}

#[test]
fn implement_then_python_style_history_validates_and_accept_finishes_through_the_model() {
    let w = World::with_wps(2);
    w.ok(&["implement", "WP01", "--agent", "claude"]);
    w.ok(&["implement", "WP02", "--no-worktree"]);
    for wp in ["WP01", "WP02"] {
        w.ok(&["agent", "tasks", "move-task", wp, "--to", "for_review"]);
    }
    // 2.1.3's other readiness checks: plan.md, a ticked tasks.md, a clean
    // tree (the WP metadata ones are skipped with --lenient).
    fs::write(w.feature_dir().join("plan.md"), "# Plan\n").unwrap();
    fs::write(w.feature_dir().join("tasks.md"), "- [x] T001 done\n").unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "ready"]);
    w.clear_spool();
    w.ok(&["accept", "--lenient"]);
    let evs = log_events(&w, "001-demo");
    let done: Vec<&Value> = evs.iter().filter(|e| e["to_lane"] == "done").collect();
    assert_eq!(done.len(), 2);
    for d in &done {
        assert_eq!(
            d["force"], false,
            "accept brings the evidence the guard wants"
        );
        assert_eq!(d["evidence"]["review"]["reference"], "accept:001-demo");
    }
    let wire: Vec<_> = w
        .events()
        .into_iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .collect();
    assert_eq!(wire.len(), 2, "one per WP accept finishes");
    let s = status_json(&w);
    assert_eq!(s["summary"]["done"], 2);
    for wp in ["WP01", "WP02"] {
        assert!(w.read(&w.wp_path(wp)).contains("lane: \"done\""));
    }
}

#[test]
fn parallel_moves_of_one_feature_serialise_on_the_status_lock() {
    let n = 8;
    let w = World::with_wps(n);
    let ids: Vec<String> = (1..=n).map(|i| format!("WP{i:02}")).collect();
    // Each process moves its own WP, all at once; then again.
    let all_at_once = |to: &str| {
        let children: Vec<_> = ids
            .iter()
            .map(|id| {
                let args = [
                    "agent",
                    "tasks",
                    "move-task",
                    id,
                    "--to",
                    to,
                    "--no-auto-commit",
                ];
                let mut c = w.cmd_in(&w.repo, &args);
                c.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped());
                (id.clone(), c.spawn().unwrap())
            })
            .collect();
        for (id, c) in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{id}: {}", stderr(&o));
        }
    };
    all_at_once("doing");
    all_at_once("blocked");
    let evs = log_events(&w, "001-demo");
    assert_eq!(evs.len(), 2 * n, "every move in the log exactly once");
    let unique: std::collections::HashSet<&str> = evs
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(unique.len(), 2 * n);
    let s = status_json(&w);
    assert_eq!(s["event_count"], 2 * n);
    assert_eq!(s["summary"]["blocked"], n);
    let tasks_block: Vec<String> = ids.iter().map(|id| format!("{id}: blocked")).collect();
    for id in &ids {
        assert!(w.read(&w.wp_path(id)).contains("lane: \"blocked\""), "{id}");
        assert_eq!(s["work_packages"][id]["lane"], "blocked");
    }
    assert_eq!(tasks_block.len(), n);
    assert_eq!(
        w.events()
            .iter()
            .filter(|e| e.event_type == "WPStatusChanged")
            .count(),
        2 * n,
        "one wire event per status event"
    );
}
