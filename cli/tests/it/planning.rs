//! The planning phase as an agent drives it, on real git repositories:
//! `specify` / `agent feature create-feature` → `plan` → a hand-written
//! tasks.md and WP files → `tasks` (finalize), with 2.1.3's files, `--json`
//! keys and commit subjects, only the command's own files in each commit,
//! `WPCreated` once per work package whichever CLI finalized first, and
//! errors on bad input that name the file and the rule.

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::fs;

const SPEC: &str = "# Feature Specification: user auth\n\n## Requirements\n\n- **FR-001**: users log in\n- **FR-002**: users log out\n- **NFR-001**: login takes under a second\n- **C-001**: no new services\n";

const TASKS_MD: &str = "# Work Packages: user auth\n\n## Work Package WP01: Login (Priority: P0)\n\n**Goal**: log in.\n**Requirement Refs**: FR-001, NFR-001\n\n### Included Subtasks\n- [ ] T001 form\n\n## Work Package WP02: Logout\n\n**Requirement Refs**: FR-002, C-001\n\n### Dependencies\n- Depends on WP01.\n";

/// A WP file as an agent writes it from 2.1.3's prompt template.
fn wp_text(id: &str, title: &str) -> String {
    format!("---\nwork_package_id: \"{id}\"\ntitle: \"{title}\"\nlane: \"planned\"  # DO NOT EDIT - use move-task\ndependencies: []\nsubtasks:\n  - \"T001\"\nphase: \"Phase 1\"\nhistory:\n  - timestamp: \"2026-01-01T00:00:00Z\"\n    lane: \"planned\"\n    agent: \"system\"\n    action: \"Prompt generated via /spec-kitty.tasks\"\n---\n\n# Work Package Prompt: {id} – {title}\n\nBody stays.\n")
}

fn subjects(w: &World) -> Vec<String> {
    w.git(&["log", "--format=%s"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// A project whose feature 001-user-auth has a spec with requirements,
/// a tasks.md and two WP files, nothing finalized yet.
fn planned() -> World {
    let w = World::project();
    w.ok(&["specify", "user auth"]);
    let dir = w.repo.join("kitty-specs/001-user-auth");
    fs::write(dir.join("spec.md"), SPEC).unwrap();
    fs::write(dir.join("tasks.md"), TASKS_MD).unwrap();
    fs::write(dir.join("tasks/WP01-login.md"), wp_text("WP01", "Login")).unwrap();
    fs::write(dir.join("tasks/WP02-logout.md"), wp_text("WP02", "Logout")).unwrap();
    w.clear_spool();
    w
}

#[test]
fn planning_phase_end_to_end_with_2_1_3_files_json_and_commits() {
    let w = World::project();
    // The user's own work in progress: one staged, one untracked file.
    fs::write(w.repo.join("notes.txt"), "mine\n").unwrap();
    w.git(&["add", "notes.txt"]);
    fs::write(w.repo.join("scratch.txt"), "loose\n").unwrap();
    let base = subjects(&w).len();

    let out = w.json(&["specify", "User Auth"]);
    let dir = w.repo.join("kitty-specs/001-user-auth");
    for k in [
        "feature_dir",
        "spec_file",
        "meta_file",
        "created_at",
        "created_files",
        "write_mode",
        "next_step",
        "target_branch",
        "planning_base_branch",
        "merge_target_branch",
        "branch_context",
        "runtime_vars",
        "spec_kitty_version",
    ] {
        assert!(out.get(k).is_some(), "specify --json lacks {k}: {out}");
    }
    assert_eq!(out["feature"], "001-user-auth");
    assert_eq!(out["branch_context"]["matches_target"], true);
    assert_eq!(out["spec_file"], dir.join("spec.md").display().to_string());
    for d in ["checklists", "research", "tasks"] {
        assert!(dir.join(d).is_dir(), "{d}/");
    }
    assert!(dir.join("tasks/README.md").is_file());
    // meta.json: 2.1.3's keys, written as its write_meta does.
    let meta_text = w.read(&dir.join("meta.json"));
    let meta: Value = serde_json::from_str(&meta_text).unwrap();
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "announced_wps",
            "created_at",
            "feature_number",
            "feature_slug",
            "friendly_name",
            "mission",
            "slug",
            "target_branch"
        ]
    );
    assert!(
        meta_text.starts_with("{\n  \"announced_wps\": [],\n  \"created_at\": \""),
        "{meta_text}"
    );
    assert_eq!(meta["friendly_name"], "user auth");
    assert_eq!(meta["mission"], "software-dev");
    assert_eq!(meta["feature_slug"], "001-user-auth");
    let created = meta["created_at"].as_str().unwrap();
    assert!(
        created.ends_with("+00:00") && created.len() == 32,
        "{created}"
    );
    // Two commits, 2.1.3's subjects, only the feature's files.
    let s = subjects(&w);
    assert_eq!(s.len(), base + 2);
    assert_eq!(s[0], "Add meta for feature 001-user-auth");
    assert_eq!(s[1], "Add spec for feature 001-user-auth");
    assert_eq!(w.files_of("HEAD"), ["kitty-specs/001-user-auth/meta.json"]);
    assert_eq!(
        w.files_of("HEAD~1"),
        [
            "kitty-specs/001-user-auth/spec.md",
            "kitty-specs/001-user-auth/tasks/.gitkeep",
            "kitty-specs/001-user-auth/tasks/README.md"
        ]
    );

    // plan: plan.md, one commit of it alone.
    let out = w.json(&["plan"]);
    assert_eq!(out["feature_slug"], "001-user-auth");
    assert_eq!(out["plan_file"], dir.join("plan.md").display().to_string());
    assert_eq!(subjects(&w)[0], "Add plan for feature 001-user-auth");
    assert_eq!(w.files_of("HEAD"), ["kitty-specs/001-user-auth/plan.md"]);

    // The agent writes the spec, tasks.md and the WP files.
    fs::write(dir.join("spec.md"), SPEC).unwrap();
    fs::write(dir.join("tasks.md"), TASKS_MD).unwrap();
    fs::write(dir.join("tasks/WP01-login.md"), wp_text("WP01", "Login")).unwrap();
    fs::write(dir.join("tasks/WP02-logout.md"), wp_text("WP02", "Logout")).unwrap();
    w.clear_spool();
    let out = w.json(&["tasks"]);
    assert_eq!(out["result"], "success");
    assert_eq!(out["wp_count"], 2);
    assert_eq!(out["updated_wp_count"], 2);
    assert_eq!(out["commit_created"], true);
    assert_eq!(out["commit_hash"], w.git(&["rev-parse", "HEAD"]).trim());
    assert_eq!(
        out["dependencies_parsed"],
        json!({"WP01": [], "WP02": ["WP01"]})
    );
    assert_eq!(
        out["requirement_refs_parsed"],
        json!({"WP01": ["FR-001", "NFR-001"], "WP02": ["FR-002", "C-001"]})
    );
    assert_eq!(out["announced"], json!(["WP01", "WP02"]));
    // The WP file: the five fields in 2.1.3's order and form; the rest
    // (quoting, the lane comment, history, body) byte for byte.
    let wp2 = w.read(&dir.join("tasks/WP02-logout.md"));
    let strategy = "Planning artifacts for this feature were generated on main. During /spec-kitty.implement this WP may branch from a dependency-specific base, but completed changes must merge back into main unless the human explicitly redirects the landing branch.";
    let want = wp_text("WP02", "Logout").replace(
        "dependencies: []\n",
        &format!("dependencies:\n- WP01\nrequirement_refs:\n- FR-002\n- C-001\nplanning_base_branch: main\nmerge_target_branch: main\nbranch_strategy: {strategy}\n"),
    );
    assert_eq!(wp2, want);
    // Committed: tasks.md, everything in tasks/, meta.json; nothing else.
    assert_eq!(subjects(&w)[0], "Add tasks for feature 001-user-auth");
    assert_eq!(
        w.files_of("HEAD"),
        [
            "kitty-specs/001-user-auth/meta.json",
            "kitty-specs/001-user-auth/tasks.md",
            "kitty-specs/001-user-auth/tasks/WP01-login.md",
            "kitty-specs/001-user-auth/tasks/WP02-logout.md"
        ]
    );
    // One WPCreated per WP, one causation.
    let evs = w.events();
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| e.event_type == "WPCreated"));
    assert_eq!(evs[0].causation_id, evs[1].causation_id);
    let wp2_ev = evs.iter().find(|e| e.aggregate_id == "WP02").unwrap();
    assert_eq!(
        wp2_ev.payload,
        json!({"wp_id": "WP02", "title": "Logout", "feature_slug": "001-user-auth", "dependencies": ["WP01"]})
    );
    assert_identity(&w, &evs);
    // The user's files: still staged, still untracked, never committed.
    assert_eq!(
        w.git(&["diff", "--cached", "--name-only"]).trim(),
        "notes.txt"
    );
    assert!(w.git(&["status", "--porcelain"]).contains("?? scratch.txt"));
    assert!(!w
        .git(&["log", "--name-only", "--format="])
        .contains("notes.txt"));

    // Again, through every name of finalize: nothing changes, no commit,
    // no second WPCreated.
    w.clear_spool();
    let n = subjects(&w).len();
    for args in [
        &["tasks"][..],
        &["agent", "feature", "finalize-tasks"],
        &["agent", "tasks", "finalize-tasks"],
        &["tasks", "finalize"],
    ] {
        let out = w.json(args);
        assert_eq!(out["result"], "success", "{args:?}");
        assert_eq!(out["announced"], json!([]), "{args:?}");
    }
    assert!(w.events().is_empty(), "announced once");
    assert_eq!(subjects(&w).len(), n, "nothing to commit");
    assert_eq!(w.read(&dir.join("tasks/WP02-logout.md")), want);
}

#[test]
fn wps_finalized_by_2_1_3_are_not_announced_again() {
    let w = planned();
    let dir = w.feature_dir().with_file_name("001-user-auth");
    // WP01 as 2.1.3's finalize leaves it (it announced it in that run);
    // meta.json written by 2.1.3 has no announced_wps.
    let strategy = "Planning artifacts for this feature were generated on main. During /spec-kitty.implement this WP may branch from a dependency-specific base, but completed changes must merge back into main unless the human explicitly redirects the landing branch.";
    fs::write(
        dir.join("tasks/WP01-login.md"),
        format!("---\nwork_package_id: WP01\ntitle: Login\nlane: planned\ndependencies: []\nrequirement_refs:\n- FR-001\n- NFR-001\nplanning_base_branch: main\nmerge_target_branch: main\nbranch_strategy: {strategy}\n---\nbody\n"),
    )
    .unwrap();
    fs::write(
        dir.join("meta.json"),
        "{\n  \"created_at\": \"2026-01-01T00:00:00+00:00\",\n  \"feature_number\": \"001\",\n  \"feature_slug\": \"001-user-auth\",\n  \"friendly_name\": \"user auth\",\n  \"mission\": \"software-dev\",\n  \"slug\": \"001-user-auth\",\n  \"target_branch\": \"main\"\n}\n",
    )
    .unwrap();
    let out = w.json(&["tasks"]);
    assert_eq!(out["announced"], json!(["WP02"]), "{out}");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].aggregate_id, "WP02");
    // `tasks finalize` (announce only) follows the same rule.
    w.clear_spool();
    assert_eq!(w.json(&["tasks", "finalize"])["announced"], json!([]));
    assert!(w.events().is_empty());
}

#[test]
fn bad_planning_input_names_the_file_and_the_rule_and_writes_nothing() {
    let w = planned();
    let dir = w.repo.join("kitty-specs/001-user-auth");
    let check = |args: &[&str], code: i32, needles: &[&str]| {
        let before = w.snapshot();
        let head = w.git(&["rev-parse", "HEAD"]);
        let o = w.run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: wanted {n:?} in {err}");
        }
        assert_eq!(w.snapshot(), before, "{args:?} wrote files");
        assert_eq!(w.git(&["rev-parse", "HEAD"]), head, "{args:?} committed");
        assert!(w.events().is_empty(), "{args:?} sent events");
    };
    // A dependency on a WP that does not exist.
    fs::write(
        dir.join("tasks.md"),
        TASKS_MD.replace("Depends on WP01", "Depends on WP09"),
    )
    .unwrap();
    check(
        &["tasks"],
        4,
        &[
            "tasks.md:11",
            "WP02 depends on WP09",
            "every dependency must be a work package",
        ],
    );
    // A cycle.
    fs::write(
        dir.join("tasks.md"),
        TASKS_MD.replace("**Goal**: log in.", "Depends on WP02"),
    )
    .unwrap();
    check(
        &["tasks"],
        4,
        &["tasks.md", "circular dependency WP01 → WP02 → WP01"],
    );
    // A WP naming no requirement; an unknown one; an FR nobody covers.
    fs::write(
        dir.join("tasks.md"),
        TASKS_MD
            .replace("**Requirement Refs**: FR-001, NFR-001\n", "")
            .replace("FR-002, C-001", "FR-002, FR-099"),
    )
    .unwrap();
    check(
        &["tasks"],
        4,
        &[
            "requirement mapping validation failed",
            "WP01",
            "FR-099",
            "spec.md",
            "FR-001",
        ],
    );
    let o = w.run(&["tasks", "--json"]);
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["missing_requirement_refs_wps"], json!(["WP01"]));
    assert_eq!(v["unknown_requirement_refs"], json!({"WP02": ["FR-099"]}));
    assert_eq!(
        v["unmapped_functional_requirements"],
        json!(["FR-001", "FR-002"])
    );
    // `agent tasks finalize-tasks` does not check the mapping (as 2.1.3),
    // but a malformed WP file stops every finalize, naming it.
    fs::write(dir.join("tasks.md"), TASKS_MD).unwrap();
    fs::write(
        dir.join("tasks/WP02-logout.md"),
        "---\ntitle: [unclosed\n---\n",
    )
    .unwrap();
    check(
        &["agent", "tasks", "finalize-tasks"],
        4,
        &["WP02-logout.md", "malformed frontmatter"],
    );
    fs::write(dir.join("tasks/WP02-logout.md"), wp_text("WP02", "Logout")).unwrap();
    // No spec: plan and finalize refuse, naming spec.md.
    fs::remove_file(dir.join("spec.md")).unwrap();
    check(
        &["tasks"],
        4,
        &[
            "spec.md not found",
            &dir.join("spec.md").display().to_string(),
        ],
    );
    check(&["plan"], 4, &["required spec not found", "spec.md"]);
    let o = w.run(&["plan", "--json"]);
    assert_eq!(o.status.code(), Some(4));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["error_code"], "SPEC_FILE_MISSING");
    assert_eq!(v["spec_file"], dir.join("spec.md").display().to_string());
    // create-feature takes only kebab-case slugs, as 2.1.3.
    check(
        &["agent", "feature", "create-feature", "User_Auth"],
        4,
        &["'User_Auth'", "kebab-case"],
    );
}

#[test]
fn map_requirements_writes_refs_commits_and_finalize_uses_them() {
    let w = planned();
    let dir = w.repo.join("kitty-specs/001-user-auth");
    // tasks.md without refs: they come from map-requirements instead.
    fs::write(
        dir.join("tasks.md"),
        TASKS_MD
            .replace("**Requirement Refs**: FR-001, NFR-001\n", "")
            .replace("**Requirement Refs**: FR-002, C-001\n", ""),
    )
    .unwrap();
    let out = w.json(&[
        "agent",
        "tasks",
        "map-requirements",
        "--wp",
        "wp01",
        "--refs",
        "fr-001, NFR-001",
    ]);
    assert_eq!(out["mapped"], json!({"WP01": ["FR-001", "NFR-001"]}));
    assert_eq!(out["coverage"]["unmapped_functional"], json!(["FR-002"]));
    assert_eq!(out["committed"], true);
    assert_eq!(
        subjects(&w)[0],
        "chore: Map requirements for WP01 on spec 001"
    );
    assert_eq!(
        w.files_of("HEAD"),
        ["kitty-specs/001-user-auth/tasks/WP01-login.md"]
    );
    let out = w.json(&[
        "agent",
        "tasks",
        "map-requirements",
        "--batch",
        r#"{"WP02": ["FR-002"]}"#,
        "--no-auto-commit",
    ]);
    assert_eq!(out["committed"], false);
    assert_eq!(out["coverage"]["unmapped_functional"], json!([]));
    assert!(w
        .read(&dir.join("tasks/WP02-logout.md"))
        .contains("requirement_refs:\n- FR-002\n"));
    // Unknown refs and unknown WPs are refused before anything is written.
    let before = w.snapshot();
    let o = w.run(&[
        "agent",
        "tasks",
        "map-requirements",
        "--wp",
        "WP01",
        "--refs",
        "FR-777",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("FR-777") && stderr(&o).contains("spec.md"),
        "{}",
        stderr(&o)
    );
    // With --json, 2.1.3's keys on stdout, the reason on stderr.
    let o = w.run(&[
        "agent",
        "tasks",
        "map-requirements",
        "--wp",
        "WP07",
        "--refs",
        "FR-001",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("WP07"), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["unknown_wps"], json!(["WP07"]));
    assert_eq!(v["hint"], "Available WPs: WP01, WP02");
    assert_eq!(w.snapshot(), before);
    let out = w.json(&["tasks"]);
    assert_eq!(
        out["requirement_refs_parsed"],
        json!({"WP01": ["FR-001", "NFR-001"], "WP02": ["FR-002"]})
    );
}

#[test]
fn no_auto_commit_flag_and_config_switch_leave_the_tree_uncommitted() {
    let w = World::project();
    let head = w.git(&["rev-parse", "HEAD"]);
    let out = w.json(&[
        "agent",
        "feature",
        "create-feature",
        "user-auth",
        "--no-auto-commit",
        "--mission",
        "research",
    ]);
    assert_eq!(out["commits"], json!([]));
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head);
    let meta: Value =
        serde_json::from_str(&w.read(&w.repo.join("kitty-specs/001-user-auth/meta.json"))).unwrap();
    assert_eq!(meta["mission"], "research");
    // 2.1.3's config switch.
    let cfg = w.config();
    fs::write(
        w.repo.join(".kittify/config.yaml"),
        format!("{cfg}agents:\n  auto_commit: false\n"),
    )
    .unwrap();
    w.ok(&["plan"]);
    assert_eq!(w.git(&["rev-parse", "HEAD"]), head);
    // The flag wins over the config.
    w.ok(&["plan", "--auto-commit"]);
    assert_eq!(subjects(&w)[0], "Add plan for feature 001-user-auth");
}

#[test]
fn prerequisites_branch_context_and_research() {
    let w = planned();
    let dir = w.repo.join("kitty-specs/001-user-auth");
    let v = w.json(&["agent", "feature", "check-prerequisites"]);
    assert_eq!(v["valid"], true);
    assert_eq!(
        v["paths"]["spec_file"],
        dir.join("spec.md").display().to_string()
    );
    assert_eq!(v["available_docs"], json!(["spec.md", "tasks.md"]));
    assert_eq!(v["FEATURE_DIR"], dir.display().to_string());
    let v = w.json(&["agent", "feature", "check-prerequisites", "--paths-only"]);
    assert_eq!(v["TASKS"], dir.join("tasks.md").display().to_string());
    assert_eq!(v["IMPL_PLAN"], "");
    fs::remove_file(dir.join("spec.md")).unwrap();
    let v = w.json(&["agent", "feature", "check-prerequisites", "--include-tasks"]);
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], json!(["Missing required file: spec.md"]));

    // Two features and nothing naming one: 2.1.3's error keys, so an agent
    // can retry with --feature.
    w.ok(&["specify", "other", "--no-auto-commit"]);
    let o = w.run(&["agent", "feature", "check-prerequisites", "--json"]);
    assert_eq!(o.status.code(), Some(4));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["error_code"], "FEATURE_CONTEXT_UNRESOLVED");
    assert_eq!(
        v["available_features"],
        json!(["001-user-auth", "002-other"])
    );
    assert_eq!(
        v["example_command"],
        "spec-kitty agent feature check-prerequisites --feature 001-user-auth --json"
    );
    let v = w.json(&[
        "agent",
        "feature",
        "branch-context",
        "--target-branch",
        "release",
    ]);
    assert_eq!(v["current_branch"], "main");
    assert_eq!(v["target_branch"], "release");
    assert_eq!(v["target_branch_source"], "cli_arg");
    assert_eq!(v["branch_matches_target"], false);
    assert_eq!(v["BRANCH_MATCHES_TARGET"], false);

    // research: the artifacts, kept on a second run unless --force.
    w.ok(&["research", "--feature", "001"]);
    for f in [
        "research.md",
        "data-model.md",
        "research/evidence-log.csv",
        "research/source-register.csv",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    fs::write(dir.join("research.md"), "mine\n").unwrap();
    assert_eq!(
        w.json(&["research", "--feature", "001"])["created"],
        json!([])
    );
    assert_eq!(w.read(&dir.join("research.md")), "mine\n");
    w.ok(&["research", "--force", "--feature", "001"]);
    assert_ne!(w.read(&dir.join("research.md")), "mine\n");
}

#[test]
fn from_inside_a_work_package_worktree_the_main_repository_is_planned_and_committed() {
    let w = planned();
    w.ok(&["tasks"]);
    w.ok(&["implement", "WP01"]);
    let wt = w.repo.join(".worktrees/001-user-auth-WP01");
    assert!(wt.join(".git").is_file());
    let dir = w.repo.join("kitty-specs/001-user-auth");
    // The feature comes from the worktree; its files are the main repo's.
    let o = w.run_in(&wt, &["agent", "feature", "check-prerequisites", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["FEATURE_DIR"], dir.display().to_string());
    // A mapping made from the worktree is committed on main, in the main
    // repository, not on the work package's branch.
    let head_of = |d: &std::path::Path| {
        let o = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(d)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let wt_head = head_of(&wt);
    let o = w.run_in(
        &wt,
        &[
            "agent",
            "tasks",
            "map-requirements",
            "--wp",
            "WP02",
            "--refs",
            "FR-001",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        subjects(&w)[0],
        "chore: Map requirements for WP02 on spec 001"
    );
    assert_eq!(
        w.git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main",
        "the main repository stays on main"
    );
    let wt_head_after = head_of(&wt);
    assert_eq!(wt_head, wt_head_after, "nothing committed in the worktree");
}
