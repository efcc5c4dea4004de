//! The planning phase checked against the real Python spec-kitty-cli 2.1.3,
//! both ways: a feature planned by this CLI is finalized by Python with
//! nothing left to change and passes its `agent status validate`; a feature
//! planned by Python is finalized by this CLI with no second `WPCreated`;
//! both leave the same commit subjects.
//!
//! Needs the Python CLI of `scripts/setup-python-cli` (the pinned venv in
//! `$SK_PYTHON_VENV`, else `target/pyvenv-2.1.3`, as `e2e/src/python.rs`
//! finds it). Without it each test says SKIP and passes, unless
//! `SK_REQUIRE_ALL` or `CI` is set (then it fails).

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

fn py_json(w: &World, bin: &Path, args: &[&str]) -> Value {
    let o = py(w, bin, args);
    let text = stdout(&o);
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

const SPEC: &str = "# Spec\n\n- **FR-001**: log in\n- **FR-002**: log out\n- **NFR-001**: fast\n";
const TASKS_MD: &str = "# Tasks\n\n## Work Package WP01: Login\n**Requirement Refs**: FR-001, NFR-001\n\n## Work Package WP02: Logout\n**Requirement Refs**: FR-002\n\n### Dependencies\n- Depends on WP01.\n";

fn write_tasks(w: &World) {
    let dir = w.repo.join("kitty-specs/001-user-auth");
    fs::write(dir.join("spec.md"), SPEC).unwrap();
    fs::write(dir.join("tasks.md"), TASKS_MD).unwrap();
    for (id, t) in [("WP01", "Login"), ("WP02", "Logout")] {
        fs::write(
            dir.join(format!("tasks/{id}-x.md")),
            format!("---\nwork_package_id: \"{id}\"\ntitle: \"{t}\"\nlane: \"planned\"\ndependencies: []\n---\n# {id}\n"),
        )
        .unwrap();
    }
}

fn planning_subjects(w: &World) -> Vec<String> {
    w.git(&["log", "--format=%s"])
        .lines()
        .filter(|s| s.contains("for feature"))
        .map(str::to_string)
        .collect()
}

#[test]
fn python_accepts_a_feature_planned_here_and_this_cli_does_not_reannounce_pythons() {
    let Some(bin) = require_python("python_accepts_a_feature_planned_here") else {
        return;
    };
    // Planned here, finalized again by Python: nothing to change.
    let ours = World::project();
    ours.ok(&["specify", "user-auth"]);
    ours.ok(&["plan"]);
    write_tasks(&ours);
    ours.ok(&["tasks"]);
    let v = py_json(&ours, &bin, &["tasks", "--json"]);
    assert_eq!(v["result"], "success", "{v}");
    assert_eq!(
        v["updated_wp_count"], 0,
        "Python would change our WP files: {v}"
    );
    assert_eq!(
        v["requirement_refs_parsed"],
        json!({"WP01": ["FR-001", "NFR-001"], "WP02": ["FR-002"]})
    );
    let v = py_json(
        &ours,
        &bin,
        &[
            "agent",
            "status",
            "validate",
            "--feature",
            "001-user-auth",
            "--json",
        ],
    );
    assert_eq!(v["passed"], true, "{v}");

    // Planned by Python, finalized here: no second WPCreated.
    let theirs = World::project();
    py(
        &theirs,
        &bin,
        &["agent", "feature", "create-feature", "user-auth", "--json"],
    );
    py(&theirs, &bin, &["agent", "feature", "setup-plan", "--json"]);
    write_tasks(&theirs);
    py(&theirs, &bin, &["tasks", "--json"]);
    theirs.clear_spool();
    let out = theirs.json(&["tasks"]);
    assert_eq!(out["announced"], json!([]));
    assert!(theirs.events().is_empty(), "WPCreated sent again");
    assert_eq!(
        out["updated_wp_count"], 0,
        "we would change Python's WP files"
    );

    // The same planning steps leave the same commit subjects.
    assert_eq!(planning_subjects(&ours), planning_subjects(&theirs));
    assert_eq!(
        planning_subjects(&ours),
        [
            "Add tasks for feature 001-user-auth",
            "Add plan for feature 001-user-auth",
            "Add meta for feature 001-user-auth",
            "Add spec for feature 001-user-auth"
        ]
    );
}
