//! `implement` on dependency-aware bases, in real git repositories with the
//! real binary: the base for no, one and several dependencies, `--base`,
//! the refusals and `--force`, the sparse worktree (no `kitty-specs/` in
//! it, status files in the main checkout), the commits with 2.1.3's
//! subjects and only our files, `--json`'s keys, and a re-run.

use crate::common;

use common::{stderr, World};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

/// Feature 001-demo with WP01..WP0n; `deps` gives `(wp, [its deps])`.
fn feature(n: usize, deps: &[(&str, &[&str])]) -> World {
    let w = World::project();
    fs::write(w.repo.join("README.md"), "demo\n").unwrap();
    w.git(&["add", "README.md"]);
    w.git(&["commit", "-q", "-m", "readme"]);
    w.ok(&["specify", "demo"]);
    for i in 1..=n {
        let wp = format!("WP{i:02}");
        let mut args = vec!["tasks".to_string(), "add".into(), format!("Task {i}")];
        if let Some((_, d)) = deps.iter().find(|(id, _)| *id == wp) {
            args.push("--depends".into());
            args.push(d.join(","));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        w.ok(&a);
    }
    // What a user has after planning: everything committed.
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "planning"]);
    w.clear_spool();
    w
}

fn worktree(w: &World, wp: &str) -> PathBuf {
    w.repo.join(".worktrees").join(format!("001-demo-{wp}"))
}

fn git_in(w: &World, dir: &Path, args: &[&str]) -> String {
    let mut c = std::process::Command::new("git");
    c.args(args).current_dir(dir);
    common::git_env(&mut c, &w.home);
    let o = c.output().unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    common::stdout(&o)
}

/// Commits `wpN.txt` in the WP's worktree.
fn work(w: &World, wp: &str) -> String {
    let wt = worktree(w, wp);
    fs::write(wt.join(format!("{wp}.txt")), format!("{wp}\n")).unwrap();
    git_in(w, &wt, &["add", "-A"]);
    git_in(w, &wt, &["commit", "-q", "-m", &format!("{wp} work")]);
    rev(w, &format!("001-demo-{wp}"))
}

fn rev(w: &World, r: &str) -> String {
    w.git(&["rev-parse", r]).trim().to_string()
}

fn is_ancestor(w: &World, a: &str, b: &str) -> bool {
    let mut c = std::process::Command::new("git");
    c.args(["merge-base", "--is-ancestor", a, b])
        .current_dir(&w.repo);
    common::git_env(&mut c, &w.home);
    c.status().unwrap().success()
}

fn status_changes(w: &World) -> usize {
    w.events()
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .count()
}

fn subject(w: &World) -> String {
    w.git(&["log", "-1", "--format=%s"]).trim().to_string()
}

/// Forces `wp` to done in the log (what merge/accept would record).
fn force_done(w: &World, wp: &str) {
    w.ok(&[
        "agent",
        "status",
        "emit",
        wp,
        "--to",
        "done",
        "--actor",
        "alice",
        "--force",
        "--reason",
        "test: done",
    ]);
}

#[test]
fn no_dependency_branches_from_the_current_branch_into_a_sparse_worktree() {
    let w = feature(1, &[]);
    fs::write(w.repo.join("notes.txt"), "the user's own dirty file\n").unwrap();
    let main_before = rev(&w, "main");
    let v = w.json(&["implement", "WP01"]);
    for (k, want) in [
        ("workspace", ".worktrees/001-demo-WP01"),
        ("workspace_path", ".worktrees/001-demo-WP01"),
        ("branch", "001-demo-WP01"),
        ("feature", "001-demo"),
        ("wp_id", "WP01"),
        ("base", "main"),
        ("status", "created"),
    ] {
        assert_eq!(v[k], want, "{k}: {v}");
    }
    assert_eq!(v["base_commit"], main_before.as_str(), "{v}");
    assert_eq!(rev(&w, "001-demo-WP01"), main_before);
    assert_eq!(status_changes(&w), 1);

    // Sparse: the project's files, not kitty-specs/ (the status files stay
    // in the main checkout); 2.1.3's patterns and git config.
    let wt = worktree(&w, "WP01");
    assert!(wt.join("README.md").is_file());
    assert!(!wt.join("kitty-specs").exists());
    assert!(w
        .repo
        .join("kitty-specs/001-demo/status.events.jsonl")
        .is_file());
    let sparse = git_in(
        &w,
        &wt,
        &["rev-parse", "--git-path", "info/sparse-checkout"],
    );
    assert_eq!(
        fs::read_to_string(wt.join(sparse.trim())).unwrap(),
        "/*\n!/kitty-specs/\n!/kitty-specs/**\n"
    );
    assert_eq!(w.git(&["config", "core.sparseCheckout"]).trim(), "true");
    assert_eq!(
        w.git(&["config", "core.sparseCheckoutCone"]).trim(),
        "false"
    );
    let gitdir = git_in(&w, &wt, &["rev-parse", "--git-dir"]);
    let exclude = fs::read_to_string(wt.join(gitdir.trim()).join("info/exclude")).unwrap();
    assert!(
        exclude.contains("# Excluded via sparse-checkout\nkitty-specs/\n"),
        "{exclude}"
    );
    assert_eq!(git_in(&w, &wt, &["status", "--porcelain"]), "");

    // One commit with 2.1.3's subject, of our files only.
    assert_eq!(subject(&w), "chore: WP01 claimed for implementation");
    assert_eq!(
        w.files_of("HEAD"),
        [
            "kitty-specs/001-demo/meta.json",
            "kitty-specs/001-demo/status.events.jsonl",
            "kitty-specs/001-demo/status.json",
            "kitty-specs/001-demo/tasks/WP01-task-1.md",
        ]
    );
    assert_eq!(w.git(&["rev-parse", "HEAD~1"]).trim(), main_before);
    assert!(w.git(&["status", "--porcelain"]).contains("?? notes.txt"));

    // meta.json's VCS lock, the frontmatter base, the context file.
    let meta: Value =
        serde_json::from_str(&w.read(&w.repo.join("kitty-specs/001-demo/meta.json"))).unwrap();
    assert_eq!(meta["vcs"], "git");
    assert!(meta["vcs_locked_at"].is_string());
    let fm = w.read(&w.wp_path("WP01"));
    assert!(fm.contains("base_branch: \"main\"\n"), "{fm}");
    assert!(
        fm.contains(&format!("base_commit: \"{main_before}\"\n")),
        "{fm}"
    );
    let ctx: Value =
        serde_json::from_str(&w.read(&w.repo.join(".kittify/workspaces/001-demo-WP01.json")))
            .unwrap();
    let keys: Vec<&String> = ctx.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "base_branch",
            "base_commit",
            "branch_name",
            "created_at",
            "created_by",
            "dependencies",
            "feature_slug",
            "vcs_backend",
            "worktree_path",
            "wp_id"
        ]
    );
    assert_eq!(ctx["created_by"], "implement-command");
    assert_eq!(ctx["base_branch"], "main");

    // Again: the workspace is reused; no event, no commit.
    w.clear_spool();
    let head = rev(&w, "HEAD");
    let v = w.json(&["implement", "WP01"]);
    assert_eq!(v["status"], "reused");
    assert_eq!(v["base_commit"], main_before.as_str());
    assert!(w.events().is_empty());
    assert_eq!(rev(&w, "HEAD"), head);
}

#[test]
fn uncommitted_planning_files_are_committed_first_or_refused_without_auto_commit() {
    let w = feature(1, &[]);
    let spec = w.repo.join("kitty-specs/001-demo/spec.md");
    fs::write(&spec, "# Spec\n\nchanged after planning\n").unwrap();

    let o = w.run(&["implement", "WP01", "--no-auto-commit"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("spec.md") && err.contains("auto-commit is off"),
        "{err}"
    );
    assert!(!worktree(&w, "WP01").exists());
    assert!(w.git(&["branch", "--list", "001-demo-WP01"]).is_empty());
    assert_eq!(status_changes(&w), 0);

    w.ok(&["implement", "WP01"]);
    let subjects = w.git(&["log", "-2", "--format=%s"]);
    assert_eq!(
        subjects.lines().collect::<Vec<_>>(),
        [
            "chore: WP01 claimed for implementation",
            "chore: Planning artifacts for 001-demo"
        ]
    );
    let body = w.git(&["log", "-1", "--format=%b", "HEAD~1"]);
    assert!(
        body.contains("Auto-committed by spec-kitty before creating workspace for WP01"),
        "{body}"
    );
    assert_eq!(
        w.git(&["show", "--name-only", "--format=", "HEAD~1"])
            .trim(),
        "kitty-specs/001-demo/spec.md"
    );
    // The WP branch has the committed planning files (sparse: not on disk).
    assert!(is_ancestor(&w, "HEAD~1", "001-demo-WP01"));
}

#[test]
fn one_dependency_branches_from_its_branch_after_it_started() {
    let w = feature(3, &[("WP02", &["WP01"])]);

    // WP01 not started: refused, naming it, its lane and what to run;
    // nothing made.
    let o = w.run(&["implement", "WP02"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    for part in ["WP01", "planned", "spec-kitty implement WP01"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!worktree(&w, "WP02").exists());
    assert!(w.git(&["branch", "--list", "001-demo-WP02"]).is_empty());
    assert_eq!(status_changes(&w), 0);
    assert!(w.read(&w.wp_path("WP02")).contains("lane: \"planned\""));

    w.ok(&["implement", "WP01"]);
    let wp01_tip = work(&w, "WP01");
    w.clear_spool();
    let v = w.json(&["implement", "WP02"]);
    assert_eq!(v["base"], "WP01", "{v}");
    assert_eq!(v["base_branch"], "001-demo-WP01", "{v}");
    assert_eq!(v["base_commit"], wp01_tip.as_str());
    assert_eq!(rev(&w, "001-demo-WP02"), wp01_tip);
    assert!(worktree(&w, "WP02").join("WP01.txt").is_file());
    assert_eq!(status_changes(&w), 1, "one status change per implement");
    let fm = w.read(&w.wp_path("WP02"));
    assert!(fm.contains("base_branch: \"001-demo-WP01\"\n"), "{fm}");
    assert_eq!(subject(&w), "chore: WP02 claimed for implementation");

    // WP01 moves on: a re-run reuses WP02's workspace and says to rebase.
    let fs_before = w.read(&w.wp_path("WP02"));
    fs::write(worktree(&w, "WP01").join("more.txt"), "more\n").unwrap();
    git_in(&w, &worktree(&w, "WP01"), &["add", "-A"]);
    git_in(&w, &worktree(&w, "WP01"), &["commit", "-q", "-m", "more"]);
    let o = w.run(&["implement", "WP02"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("git rebase 001-demo-WP01"),
        "{}",
        stderr(&o)
    );
    assert_eq!(rev(&w, "001-demo-WP02"), wp01_tip, "nothing rebased by us");
    assert_eq!(w.read(&w.wp_path("WP02")), fs_before);

    // --base overrides: WP03 declares nothing and starts from WP01's work.
    let v = w.json(&["implement", "WP03", "--base", "WP01"]);
    assert_eq!(v["base"], "WP01");
    assert_eq!(rev(&w, "001-demo-WP03"), rev(&w, "001-demo-WP01"));
}

#[test]
fn a_done_dependency_merged_into_the_target_gives_the_target_branch() {
    let w = feature(2, &[("WP02", &["WP01"])]);
    w.ok(&["implement", "WP01"]);
    work(&w, "WP01");
    w.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge WP01",
        "001-demo-WP01",
    ]);
    force_done(&w, "WP01");
    let v = w.json(&["implement", "WP02"]);
    assert_eq!(v["base_branch"], "main", "{v}");
    assert_eq!(v["base"], "WP01");
}

#[test]
fn several_dependencies_branch_from_a_merge_of_their_branches() {
    let w = feature(3, &[("WP03", &["WP01", "WP02"])]);
    let o = w.run(&["implement", "WP03"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("spec-kitty implement WP01"),
        "{}",
        stderr(&o)
    );
    w.ok(&["implement", "WP01"]);
    w.ok(&["implement", "WP02"]);
    let t1 = work(&w, "WP01");
    let t2 = work(&w, "WP02");
    w.clear_spool();
    let v = w.json(&["implement", "WP03"]);
    assert_eq!(v["base_branch"], "001-demo-WP03-merge-base", "{v}");
    assert_eq!(v["base"], "main", "2.1.3 names the primary branch: {v}");
    let base = rev(&w, "001-demo-WP03-merge-base");
    assert_eq!(rev(&w, "001-demo-WP03"), base);
    assert_eq!(
        w.git(&["log", "-1", "--format=%P", &base]).trim(),
        format!("{t1} {t2}")
    );
    assert_eq!(
        w.git(&["log", "-1", "--format=%s", &base]).trim(),
        "Merge 001-demo-WP02 into multi-parent base for WP03"
    );
    let wt = worktree(&w, "WP03");
    assert!(wt.join("WP01.txt").is_file() && wt.join("WP02.txt").is_file());
    assert!(!wt.join("kitty-specs").exists());
    // The user's checkout was never switched.
    assert_eq!(w.git(&["branch", "--show-current"]).trim(), "main");
    let ctx: Value =
        serde_json::from_str(&w.read(&w.repo.join(".kittify/workspaces/001-demo-WP03.json")))
            .unwrap();
    assert_eq!(ctx["created_by"], "implement-command-multi-parent-merge");
    assert_eq!(ctx["dependencies"], serde_json::json!(["WP01", "WP02"]));
    assert_eq!(status_changes(&w), 1);
}

#[test]
fn several_dependencies_all_done_are_refused_unless_forced() {
    let w = feature(3, &[("WP03", &["WP01", "WP02"])]);
    w.ok(&["implement", "WP01"]);
    w.ok(&["implement", "WP02"]);
    let t1 = work(&w, "WP01");
    let t2 = work(&w, "WP02");
    force_done(&w, "WP01");
    force_done(&w, "WP02");
    w.clear_spool();
    let o = w.run(&["implement", "WP03"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    for part in ["all done", "spec-kitty merge", "--force"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!worktree(&w, "WP03").exists());
    assert_eq!(status_changes(&w), 0);

    w.ok(&["implement", "WP03", "--force"]);
    let base = rev(&w, "001-demo-WP03");
    assert_eq!(
        w.git(&["log", "-1", "--format=%P", &base]).trim(),
        format!("{t1} {t2}")
    );
}
