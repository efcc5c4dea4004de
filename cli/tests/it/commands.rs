//! Every command, driven as a real process in a temp git repository:
//! the exact number and shape of the events it spools, identity in each,
//! and the file changes it makes (or, on bad input, does not make).

use crate::common;

use common::*;
use serde_json::json;
use std::fs;
use std::path::Path;

#[test]
fn specify_emits_one_feature_created() {
    let w = World::project();
    w.clear_spool();
    let out = w.json(&["specify", "My Demo Feature"]);
    assert_eq!(out["feature"], "001-my-demo-feature");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e.event_type, "FeatureCreated");
    assert_eq!(e.aggregate_type, "Feature");
    assert_eq!(e.aggregate_id, "001-my-demo-feature");
    assert_eq!(e.payload["feature_number"], "001");
    assert_eq!(e.payload["target_branch"], "main");
    assert_eq!(e.payload["wp_count"], 0);
    assert_identity(&w, &evs);
    let dir = w.repo.join("kitty-specs/001-my-demo-feature");
    assert!(dir.join("spec.md").is_file() && dir.join("tasks").is_dir());
    let meta: serde_json::Value = serde_json::from_str(&w.read(&dir.join("meta.json"))).unwrap();
    assert_eq!(meta["slug"], "001-my-demo-feature");
    w.ok(&["specify", "second"]);
    assert!(
        w.repo.join("kitty-specs/002-second").is_dir(),
        "next free number"
    );
}

#[test]
fn tasks_add_emits_one_wp_created_with_dependencies() {
    let w = World::with_wps(1);
    w.json(&["tasks", "add", "Wire: the thing", "--depends", "WP01"]);
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e.event_type, "WPCreated");
    assert_eq!(e.aggregate_id, "WP02");
    assert_eq!(
        e.payload,
        json!({"wp_id": "WP02", "title": "Wire: the thing", "feature_slug": "001-demo", "dependencies": ["WP01"]})
    );
    assert_identity(&w, &evs);
    let text = w.read(&w.wp_path("WP02"));
    assert!(text.starts_with("---\nwork_package_id: WP02\ntitle: \"Wire: the thing\"\nlane: \"planned\"\ndependencies: [WP01]\n"), "{text}");
    // Unknown dependency: refused, nothing written, no event.
    w.clear_spool();
    let before = w.snapshot();
    let o = w.run(&["tasks", "add", "X", "--depends", "WP09"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("WP09 not found"), "{}", stderr(&o));
    assert_eq!(w.snapshot(), before);
    assert!(w.events().is_empty());
}

#[test]
fn finalize_announces_unannounced_wps_once_with_one_causation() {
    let w = World::with_wps(1);
    let tasks = w.feature_dir().join("tasks");
    for (id, title) in [("WP02", "Hand written"), ("WP03", "By an agent")] {
        fs::write(
            tasks.join(format!("{id}-x.md")),
            format!("---\nwork_package_id: {id}\ntitle: {title}\nlane: planned\ndependencies: [WP01]\n---\nbody\n"),
        )
        .unwrap();
    }
    let out = w.json(&["tasks", "finalize"]);
    assert_eq!(out["announced"], json!(["WP02", "WP03"]));
    let evs = w.events();
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| e.event_type == "WPCreated"));
    let cause = evs[0].causation_id.clone().expect("causation_id");
    assert!(evs
        .iter()
        .all(|e| e.causation_id.as_deref() == Some(cause.as_str())));
    assert_eq!(evs[1].payload["dependencies"], json!(["WP01"]));
    assert_identity(&w, &evs);
    w.clear_spool();
    w.ok(&["tasks", "finalize"]);
    assert!(w.events().is_empty(), "announced once");
}

#[test]
fn implement_moves_to_doing_creates_worktree_and_emits_exactly_one_status_change() {
    let w = World::with_wps(2);
    let before = w.read(&w.wp_path("WP01"));
    let out = w.json(&["implement", "WP01", "--agent", "claude"]);
    assert_eq!(out["workspace"], ".worktrees/001-demo-WP01");
    let evs = w.events();
    assert_eq!(evs.len(), 2, "{evs:#?}");
    let status: Vec<_> = evs
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .collect();
    assert_eq!(status.len(), 1, "exactly ONE WPStatusChanged");
    let s = status[0];
    assert_eq!(s.payload["from_lane"], "planned");
    assert_eq!(s.payload["to_lane"], "in_progress");
    assert_eq!(s.payload["actor"], "claude");
    assert_eq!(s.payload["feature_slug"], "001-demo");
    let a = evs.iter().find(|e| e.event_type == "WPAssigned").unwrap();
    assert_eq!(
        a.payload,
        json!({"wp_id": "WP01", "agent_id": "claude", "phase": "implementation", "retry_count": 0})
    );
    assert_eq!(a.causation_id.as_deref(), Some(s.event_id.as_str()));
    assert_identity(&w, &evs);
    // Worktree on its branch, like spec-kitty 2.x.
    let wt = w.repo.join(".worktrees/001-demo-WP01");
    assert!(wt.join(".git").is_file());
    assert!(w
        .git(&["branch", "--list", "001-demo-WP01"])
        .contains("001-demo-WP01"));
    // File: lane, agent and shell_pid set, base tracking added, one
    // activity line; no frontmatter history entry (2.1.3 keeps none).
    let after = w.read(&w.wp_path("WP01"));
    assert!(after.contains("lane: \"in_progress\"\n"), "{after}");
    assert!(after.contains("agent: "), "{after}");
    assert!(after.contains("base_branch: \"main\"\n"), "{after}");
    assert_eq!(
        after.matches("- timestamp:").count(),
        before.matches("- timestamp:").count(),
        "no history entry"
    );
    assert!(
        after.contains("– claude – shell_pid=")
            && after
                .contains("lane=in_progress – Started implementation in .worktrees/001-demo-WP01"),
        "{after}"
    );
    // One status event in the log, the jump through claimed recorded as
    // one forced step (what 2.1.3's validator accepts).
    let log = w.read(&w.feature_dir().join("status.events.jsonl"));
    assert_eq!(log.lines().count(), 1, "{log}");
    let ev: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(ev["from_lane"], "planned");
    assert_eq!(ev["to_lane"], "in_progress");
    assert_eq!(ev["force"], true);
    assert_eq!(ev["actor"], "claude");
    assert!(ev["reason"].as_str().unwrap().contains("through claimed"));
    // The workspace context file, as 2.1.3 writes it.
    let ctx: serde_json::Value =
        serde_json::from_str(&w.read(&w.repo.join(".kittify/workspaces/001-demo-WP01.json")))
            .unwrap();
    assert_eq!(ctx["branch_name"], "001-demo-WP01");
    assert_eq!(ctx["base_branch"], "main");
    assert_eq!(ctx["worktree_path"], ".worktrees/001-demo-WP01");
    assert_eq!(ctx["base_commit"].as_str().unwrap().len(), 40);
    // Committed with 2.1.3's subject; the workspace context stays out of git.
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "chore: WP01 claimed for implementation"
    );
    assert!(
        !w.git(&["status", "--porcelain"])
            .contains(".kittify/workspaces"),
        "{}",
        w.git(&["status", "--porcelain"])
    );
    // Again: already doing → no event.
    w.clear_spool();
    w.ok(&["implement", "WP01"]);
    assert!(w.events().is_empty());
    // Events from inside the worktree carry its branch and find the feature by it.
    w.clear_spool();
    let o = w.run_in(&wt, &add_history("WP01", "from the worktree", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].git_branch.as_deref(), Some("001-demo-WP01"));
    assert!(
        w.read(&w.wp_path("WP01")).contains("from the worktree"),
        "main repo's kitty-specs is the truth"
    );
}

#[test]
fn implement_without_worktree_and_without_agent() {
    let w = World::with_wps(1);
    w.ok(&["implement", "WP01", "--no-worktree"]);
    assert!(!w.repo.join(".worktrees").exists());
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event_type, "WPStatusChanged");
    assert_eq!(evs[0].payload["actor"], "user");
}

#[test]
fn move_task_emits_exactly_one_event_and_edits_only_lane_and_activity() {
    let w = World::with_wps(1);
    let path = w.wp_path("WP01");
    // A hand-edited lane line with single quotes and a trailing comment.
    let text = w.read(&path).replace(
        "lane: \"planned\"\n",
        "lane: 'planned'   # agents: edit with care\n",
    );
    fs::write(&path, &text).unwrap();
    let out = w.json(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert_eq!(out["old_lane"], "planned");
    assert_eq!(out["new_lane"], "in_progress");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e.event_type, "WPStatusChanged");
    assert_eq!(e.aggregate_id, "WP01");
    assert_eq!(
        e.payload,
        json!({"wp_id": "WP01", "from_lane": "planned", "to_lane": "in_progress", "actor": "user", "feature_slug": "001-demo", "policy_metadata": null})
    );
    assert_identity(&w, &evs);
    // The frontmatter: only the lane value changed (quotes and comment
    // kept); the body: one activity line after the last one.
    let after = w.read(&path);
    let moved = text.replace("lane: 'planned'   #", "lane: 'in_progress'   #");
    let fm_end = moved.find("---\n\n#").unwrap();
    assert_eq!(&after[..fm_end], &moved[..fm_end]);
    let added: Vec<&str> = after
        .lines()
        .filter(|l| !moved.lines().any(|m| m == *l))
        .collect();
    assert_eq!(added.len(), 1, "{after}");
    assert!(
        added[0].starts_with("- 20")
            && added[0].ends_with(" – unknown – lane=in_progress – Moved to in_progress"),
        "{added:?}"
    );

    // Next hop: still exactly one event (no re-emitted planned→in_progress).
    w.clear_spool();
    w.ok(&move_task(
        "WP01",
        "for_review",
        &["--agent", "codex", "--shell-pid", "4242"],
    ));
    let text = w.read(&path);
    assert!(text.contains("agent: 'codex'\n"), "{text}");
    assert!(text.contains("shell_pid: '4242'\n"), "{text}");
    assert!(text.contains(" – codex – shell_pid=4242 – lane=for_review – Moved to for_review"));
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].payload["from_lane"], "in_progress");
    assert_eq!(evs[0].payload["to_lane"], "for_review");
    assert_eq!(evs[0].payload["actor"], "codex");
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "chore: Move WP01 to for_review on spec 001 [codex]"
    );
}

#[test]
fn move_task_refuses_graph_violations_unless_forced() {
    let w = World::with_wps(1);
    let path = w.wp_path("WP01");
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "blocked"]);
    w.clear_spool();
    let before = w.snapshot();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "for_review"]);
    assert_eq!(o.status.code(), Some(5));
    let err = stderr(&o);
    assert!(
        err.contains("Illegal transition: blocked -> for_review") && err.contains("--force"),
        "{err}"
    );
    let evs = w.events();
    assert_eq!(evs.len(), 1, "one ErrorLogged");
    assert_eq!(evs[0].event_type, "ErrorLogged");
    assert!(evs[0].payload["error_message"]
        .as_str()
        .unwrap()
        .contains("Illegal transition: blocked -> for_review"));
    assert_eq!(w.snapshot(), before);
    // Bare --force works, as in 2.1.3: the reason defaults.
    w.clear_spool();
    w.ok(&move_task("WP01", "for_review", &["--force"]));
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].payload["force"], true);
    assert_eq!(evs[0].payload["reason"], "Force move to for_review");
    assert_eq!(evs[0].payload["to_lane"], "for_review");
    assert!(w.read(&path).contains("lane: \"for_review\"\n"));
    // Same lane: nothing to do, no event.
    w.clear_spool();
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "for_review"]);
    assert!(w.events().is_empty());
}

#[test]
fn add_history_appends_to_activity_log_and_emits_history_added() {
    let w = World::with_wps(1);
    let path = w.wp_path("WP01");
    let before = w.read(&path);
    w.ok(&add_history(
        "WP01",
        "Tests written",
        &["--agent", "gemini"],
    ));
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0].payload,
        json!({"wp_id": "WP01", "entry_type": "note", "entry_content": "Tests written", "author": "gemini"})
    );
    assert_identity(&w, &evs);
    let after = w.read(&path);
    assert!(
        after.starts_with(&before),
        "appended after the last activity entry, which ends the file"
    );
    let added = &after[before.len()..];
    assert!(
        added.starts_with("- ") && added.ends_with(" – gemini – lane=planned – Tests written\n"),
        "{added}"
    );
}

#[test]
fn sixteen_concurrent_add_history_keep_all_entries_and_events() {
    let w = World::with_wps(1);
    let children: Vec<_> = (0..16)
        .map(|i| {
            w.cmd_in(
                &w.repo,
                &add_history("WP01", &format!("note number {i}"), &[]),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
        })
        .collect();
    let mut guard = ChildGuard(children);
    for c in guard.0.iter_mut() {
        let st = c.wait().unwrap();
        assert!(st.success());
    }
    guard.0.clear();
    let text = w.read(&w.wp_path("WP01"));
    for i in 0..16 {
        assert_eq!(
            text.matches(&format!("– note number {i}\n")).count(),
            1,
            "note {i} in\n{text}"
        );
    }
    let evs = w.events();
    assert_eq!(evs.len(), 16);
    assert!(evs.iter().all(|e| e.event_type == "HistoryAdded"));
}

struct ChildGuard(Vec<std::process::Child>);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        for c in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What 2.1.3's acceptance checks want besides lanes and the WPs'
/// metadata (the tests pass `--lenient`): plan.md, a ticked tasks.md, a
/// clean working tree. The spool starts empty.
fn acceptable(w: &World) {
    fs::write(w.feature_dir().join("plan.md"), "# Plan\n").unwrap();
    fs::write(
        w.feature_dir().join("tasks.md"),
        "# Tasks\n\n- [x] T001 done\n",
    )
    .unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "ready to accept"]);
    w.clear_spool();
}

#[test]
fn accept_not_ready_lists_blockers_logs_one_error_and_changes_nothing() {
    let w = World::with_wps(3);
    w.ok(&["implement", "WP02", "--no-worktree"]);
    w.clear_spool();
    let before = w.snapshot();
    let o = w.run(&["accept"]);
    assert_eq!(o.status.code(), Some(5));
    let err = stderr(&o);
    assert!(
        err.contains("not_done:\n    - WP01\n    - WP03")
            && err.contains("WP02: canonical lane is 'in_progress', expected 'done'"),
        "{err}"
    );
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event_type, "ErrorLogged");
    assert_eq!(evs[0].aggregate_id, "error");
    assert_eq!(evs[0].payload["error_type"], "validation");
    assert!(evs[0].payload["error_message"]
        .as_str()
        .unwrap()
        .contains("WP02: canonical lane is 'in_progress'"));
    assert_identity(&w, &evs);
    assert_eq!(w.snapshot(), before, "nothing changed");
}

#[test]
fn accept_moves_each_for_review_wp_once_resolves_dependencies_and_completes() {
    let w = World::with_wps(1);
    w.ok(&["tasks", "add", "Second", "--depends", "WP01"]);
    w.ok(&["tasks", "add", "Third", "--depends", "WP01,WP02"]);
    for wp in ["WP01", "WP02", "WP03"] {
        w.ok(&["agent", "tasks", "move-task", wp, "--to", "doing"]);
        w.ok(&["agent", "tasks", "move-task", wp, "--to", "for_review"]);
    }
    // WP03 already done.
    w.ok(&move_task(
        "WP03",
        "done",
        &["--done-override-reason", "merged by hand"],
    ));
    acceptable(&w);
    let out = w.json(&["accept", "--lenient"]);
    assert_eq!(out["moved_to_done"], json!(["WP01", "WP02"]));
    let evs = w.events();
    let types: Vec<&str> = evs.iter().map(|e| e.event_type.as_str()).collect();
    let status: Vec<_> = evs
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .collect();
    assert_eq!(status.len(), 2, "{types:?}");
    for s in &status {
        assert_eq!(s.payload["from_lane"], "for_review");
        assert_eq!(s.payload["to_lane"], "done");
    }
    let deps: Vec<(String, String)> = evs
        .iter()
        .filter(|e| e.event_type == "DependencyResolved")
        .map(|e| {
            assert_eq!(e.payload["resolution_type"], "completed");
            let dep = e.payload["dependency_wp_id"].as_str().unwrap().to_string();
            let cause = status
                .iter()
                .find(|s| s.payload["wp_id"] == dep.as_str())
                .unwrap();
            assert_eq!(e.causation_id.as_deref(), Some(cause.event_id.as_str()));
            (e.payload["wp_id"].as_str().unwrap().to_string(), dep)
        })
        .collect();
    let mut deps_sorted = deps.clone();
    deps_sorted.sort();
    assert_eq!(
        deps_sorted,
        vec![
            ("WP02".to_string(), "WP01".to_string()),
            ("WP03".to_string(), "WP01".to_string()),
            ("WP03".to_string(), "WP02".to_string())
        ]
    );
    let fc: Vec<_> = evs
        .iter()
        .filter(|e| e.event_type == "FeatureCompleted")
        .collect();
    assert_eq!(fc.len(), 1);
    assert_eq!(fc[0].payload["feature_slug"], "001-demo");
    assert_eq!(fc[0].payload["total_wps"], 3);
    assert_eq!(evs.len(), 2 + 3 + 1, "{types:?}");
    assert_identity(&w, &evs);
    for wp in ["WP01", "WP02", "WP03"] {
        assert!(w.read(&w.wp_path(wp)).contains("lane: \"done\"\n"));
    }
    // Second accept: already accepted, nothing emitted.
    w.clear_spool();
    w.ok(&["accept"]);
    assert!(w.events().is_empty());
}

#[test]
fn approved_is_a_lane_of_its_own_on_the_board_and_on_the_wire() {
    let w = World::with_wps(2);
    for wp in ["WP01", "WP02"] {
        w.ok(&["agent", "tasks", "move-task", wp, "--to", "doing"]);
        w.ok(&["agent", "tasks", "move-task", wp, "--to", "for_review"]);
    }
    w.clear_spool();
    let out = w.json(&move_task("WP01", "approved", &["--note", "Review passed"]));
    assert_eq!(
        out["result"], "success",
        "an approval is not dropped as 'unchanged'"
    );
    assert_eq!(out["new_lane"], "approved");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].payload["from_lane"], "for_review");
    assert_eq!(evs[0].payload["to_lane"], "approved");
    assert!(w.read(&w.wp_path("WP01")).contains("lane: \"approved\"\n"));
    let board = w.json(&["status"]);
    assert_eq!(
        board["lanes"]["approved"],
        json!([{"wp_id": "WP01", "title": "Task 1", "dependencies": []}])
    );
    assert_eq!(board["lanes"]["for_review"].as_array().unwrap().len(), 1);
    // accept finishes approved and for_review work packages, each from its own lane.
    acceptable(&w);
    w.json(&["accept", "--lenient"]);
    assert_eq!(
        lane_moves(&w.events()),
        [["WP01", "approved", "done"], ["WP02", "for_review", "done"]]
    );
}

#[test]
fn status_shows_the_board_in_text_and_json() {
    let w = World::with_wps(3);
    w.ok(&["implement", "WP02", "--no-worktree"]);
    w.clear_spool();
    let board = w.json(&["status"]);
    assert_eq!(board["feature"], "001-demo");
    assert_eq!(board["total"], 3);
    assert_eq!(board["lanes"]["planned"].as_array().unwrap().len(), 2);
    assert_eq!(board["lanes"]["doing"][0]["wp_id"], "WP02");
    assert_eq!(board["lanes"]["for_review"], json!([]));
    let text = w.ok(&["status"]);
    let p = text.find("PLANNED (2)").unwrap();
    let d = text.find("DOING (1)").unwrap();
    assert!(p < d && text.find("DONE (0)").unwrap() > d, "{text}");
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
    assert!(w.events().is_empty(), "status emits nothing");
}

#[test]
fn bad_inputs_fail_clearly_with_no_event_and_no_change() {
    let w = World::with_wps(1);
    let path = w.wp_path("WP01");
    let before = w.snapshot();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["agent", "tasks", "move-task", "WP07", "--to", "doing"],
            4,
            "work package WP07 not found",
        ),
        (
            vec!["agent", "tasks", "move-task", "WP1", "--to", "doing"],
            4,
            "'WP1' is not a work package id",
        ),
        (
            vec!["agent", "tasks", "move-task", "wp01", "--to", "doing"],
            4,
            "not a work package id",
        ),
        (
            vec!["agent", "tasks", "move-task", "WP01", "--to", "review"],
            4,
            "unknown lane 'review'",
        ),
        (
            vec!["agent", "tasks", "add-history", "WP07", "--note", "x"],
            4,
            "WP07 not found",
        ),
        (vec!["implement", "WP07"], 4, "WP07 not found"),
        (
            move_task("WP01", "doing", &["--feature", "999-nope"]),
            4,
            "feature '999-nope' not found",
        ),
    ];
    for (args, code, msg) in cases {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
        assert!(w.events().is_empty(), "{args:?} emitted");
        assert_eq!(w.snapshot(), before, "{args:?} changed files");
    }
    // Malformed frontmatter: the error names the file; nothing changes.
    let good = w.read(&path);
    let bad = good.replace("dependencies: []\n", "dependencies: [WP02\n");
    fs::write(&path, &bad).unwrap();
    let before = w.snapshot();
    for args in [
        vec!["agent", "tasks", "move-task", "WP01", "--to", "doing"],
        vec!["agent", "tasks", "add-history", "WP01", "--note", "x"],
        vec!["status"],
        vec!["accept"],
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("malformed frontmatter in") && err.contains("WP01-task-1.md"),
            "{args:?}: {err}"
        );
        assert!(w.events().is_empty(), "{args:?} emitted");
        assert_eq!(w.snapshot(), before, "{args:?} changed files");
    }
    // An unknown lane in the file.
    fs::write(
        &path,
        good.replace("lane: \"planned\"", "lane: \"reviewing\""),
    )
    .unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("unknown lane 'reviewing'"),
        "{}",
        stderr(&o)
    );
    assert!(w.events().is_empty());
}

#[test]
fn outside_a_project_is_exit_3_with_no_event() {
    let w = World::bare("not-a-project");
    for args in [
        vec!["agent", "tasks", "move-task", "WP01", "--to", "doing"],
        vec!["status"],
        vec!["specify", "x"],
        vec!["accept"],
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        assert!(
            stderr(&o).contains("not inside a spec-kitty project"),
            "{}",
            stderr(&o)
        );
    }
    assert!(w.events().is_empty());
    assert_eq!(fs::read_dir(&w.repo).unwrap().count(), 0, "nothing created");
}

#[test]
fn feature_detection_by_flag_number_branch_and_ambiguity() {
    let w = World::with_wps(1);
    w.ok(&["specify", "other"]);
    // Two features, on main: ambiguous.
    let o = w.run(&["status"]);
    assert_eq!(o.status.code(), Some(4));
    let err = stderr(&o);
    assert!(
        err.contains("--feature") && err.contains("001-demo") && err.contains("002-other"),
        "{err}"
    );
    assert_eq!(
        w.json(&["status", "--feature", "001-demo"])["feature"],
        "001-demo"
    );
    assert_eq!(
        w.json(&["status", "--feature", "002"])["feature"],
        "002-other"
    );
    // SPECIFY_FEATURE, as spec-kitty 2.x reads it.
    let o = w
        .cmd_in(&w.repo, &["status", "--json"])
        .env("SPECIFY_FEATURE", "002-other")
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("\"feature\":\"002-other\""),
        "{}",
        stderr(&o)
    );
    // On a feature branch: that feature.
    w.git(&["checkout", "-q", "-b", "002-other"]);
    assert_eq!(w.json(&["status"])["feature"], "002-other");
    w.git(&["checkout", "-q", "-b", "001-demo-WP01"]);
    assert_eq!(w.json(&["status"])["feature"], "001-demo");
    // Inside the feature directory.
    w.git(&["checkout", "-q", "main"]);
    let o = w.run_in(&w.feature_dir().join("tasks"), &["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"feature\":\"001-demo\""));
}

#[test]
fn help_documents_exit_codes() {
    let w = World::bare("x");
    let top = stdout(&w.run(&["--help"]));
    assert!(
        top.contains("Exit codes:") && top.contains("5  refused"),
        "{top}"
    );
    let sub = stdout(&w.run(&["agent", "tasks", "move-task", "--help"]));
    assert!(
        sub.contains("Exit codes:") && sub.contains("--force"),
        "{sub}"
    );
    let o = w.run(&["agent", "tasks", "move-task"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn json_mode_reports_errors_as_json() {
    let w = World::with_wps(1);
    let o = w.run(&move_task("WP09", "doing", &["--json"]));
    assert_eq!(o.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("WP09"));
}

#[test]
fn an_event_that_cannot_be_made_durable_rolls_the_file_change_back() {
    let w = World::with_wps(1);
    // The spool directory cannot be created: a plain file sits at its path.
    fs::write(w.spool_dir(), "not a directory").unwrap();
    let before = w.snapshot();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("spool") && err.contains("rolled back"),
        "{err}"
    );
    assert_eq!(w.snapshot(), before, "the WP file is as it was");
    fs::remove_file(w.spool_dir()).unwrap();
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert_eq!(w.events().len(), 1);
    // With a log already there, its new line is taken back too.
    let log = w.feature_dir().join("status.events.jsonl");
    let log_before = w.read(&log);
    fs::rename(w.spool_dir(), w.tmp.path().join("spool-aside")).unwrap();
    fs::write(w.spool_dir(), "not a directory").unwrap();
    let before = w.snapshot();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "blocked"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(w.read(&log), log_before, "the log line was taken back");
    assert_eq!(w.snapshot(), before, "and every view");
}

#[test]
fn inside_a_worktree_with_its_own_checkout_the_main_repo_files_are_the_truth() {
    let w = World::with_wps(2);
    // Commit the spec files so the worktree checks out its own (stale) copy.
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "specs"]);
    // A worktree made by hand (implement's is sparse, without kitty-specs/).
    w.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "001-demo-WP01",
        ".worktrees/001-demo-WP01",
    ]);
    let wt = w.repo.join(".worktrees/001-demo-WP01");
    let stale = wt
        .join("kitty-specs/001-demo/tasks")
        .join(w.wp_path("WP02").file_name().unwrap());
    assert!(stale.is_file() && wt.join(".kittify/config.yaml").is_file());
    let stale_before = w.read(&stale);
    w.clear_spool();
    let o = w.run_in(
        &wt,
        &["agent", "tasks", "move-task", "WP02", "--to", "doing"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        w.read(&w.wp_path("WP02")).contains("lane: \"in_progress\""),
        "main repo file moved"
    );
    assert_eq!(
        w.git(&["log", "-1", "--format=%s"]).trim(),
        "chore: Move WP02 to in_progress on spec 001",
        "committed in the main checkout"
    );
    assert_eq!(w.read(&stale), stale_before, "worktree copy untouched");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].git_branch.as_deref(), Some("001-demo-WP01"));
    assert_eq!(
        evs[0].project_uuid.as_deref(),
        Some(w.config_uuid().as_str())
    );
    assert_eq!(
        evs[0].head_commit_sha.as_deref(),
        Some(w.git(&["rev-parse", "001-demo-WP01"]).trim())
    );
}

/// `spec-kitty status | head -1`: a reader that goes away is not a crash.
/// Each command's stdout is a pipe whose read end is closed before the
/// command starts, so its first write fails with EPIPE; it must still exit
/// 0, say nothing about it, and (for a mutating command) have done its work.
#[test]
fn printing_into_a_closed_pipe_exits_zero_quietly() {
    let w = World::with_wps(3);
    let closed_pipe = || {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        writer
    };
    for args in [&["status"][..], &["status", "--json"]] {
        let o = w
            .cmd_in(&w.repo, args)
            .stdout(closed_pipe())
            .output()
            .expect("run spec-kitty");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?} wrote to stderr");
    }
    for (i, json) in [false, true].into_iter().enumerate() {
        let note = format!("piped note {i}");
        let mut args = vec!["agent", "tasks", "add-history", "WP01", "--note", &note];
        if json {
            args.push("--json");
        }
        let o = w
            .cmd_in(&w.repo, &args)
            .stdout(closed_pipe())
            .output()
            .expect("run spec-kitty");
        // stderr carries the spool notice (no daemon here), nothing more.
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("panicked") && !stderr(&o).contains("Broken pipe"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(w.read(&w.wp_path("WP01")).contains(&note), "{args:?}");
    }
}

#[test]
fn spec_kitty_home_is_left_to_python_unless_it_already_holds_our_state() {
    // SPEC_KITTY_HOME is 2.1.3's runtime directory: with the new variable
    // unset, an event goes to $HOME/.spec-kitty, never into it.
    let w = World::with_wps(1);
    let py_home = w.tmp.path().join("kittify");
    fs::create_dir_all(&py_home).unwrap();
    let run = |extra: &[(&str, &Path)]| {
        let mut c = w.cmd_in(
            &w.repo,
            &["agent", "tasks", "add-history", "WP01", "--note", "n"],
        );
        c.env_remove("SPEC_KITTY_SYNC_HOME");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = run(&[("SPEC_KITTY_HOME", &py_home)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("SPEC_KITTY_HOME"), "{}", stderr(&o));
    assert!(
        !py_home.join("spool").exists(),
        "wrote into Python's runtime dir"
    );
    let spooled = |dir: &Path| fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(spooled(&w.home.join(".spec-kitty/spool")), 1);

    // A SPEC_KITTY_HOME that already holds our daemon's state is still
    // used, for one release, with a warning naming the new variable.
    fs::create_dir_all(py_home.join("syncd")).unwrap();
    let o = run(&[("SPEC_KITTY_HOME", &py_home)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("SPEC_KITTY_SYNC_HOME"),
        "no warning: {}",
        stderr(&o)
    );
    assert_eq!(spooled(&py_home.join("spool")), 1);

    // The new variable wins over both, silently.
    let mine = w.tmp.path().join("mine");
    let o = run(&[
        ("SPEC_KITTY_HOME", &py_home),
        ("SPEC_KITTY_SYNC_HOME", &mine),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("SPEC_KITTY_HOME"), "{}", stderr(&o));
    assert_eq!(spooled(&mine.join("spool")), 1);
}
