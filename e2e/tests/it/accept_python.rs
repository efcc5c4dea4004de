//! `accept` against the real Python spec-kitty-cli 2.1.3, both ways: this
//! CLI accepts a feature Python drove (finishing its approved and
//! for_review work packages), and Python's own readiness checks and its
//! `accept` then read the state and the meta.json record this CLI wrote
//! without complaint; Python's `accept` after this CLI's, on a feature this
//! CLI drove, appends to the same acceptance history.
//!
//! Needs the Python CLI of `scripts/setup-python-cli` (skipped with the
//! reason otherwise, a failure under `SK_REQUIRE_ALL`/`CI`).

use serde_json::{json, Value};
use spec_kitty_e2e::cmdline::{approve, move_task};
use spec_kitty_e2e::python::require_python;
use spec_kitty_e2e::Sandbox;
use std::path::Path;

const FEATURE: &str = "001-demo";

fn git(sb: &Sandbox, dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&sb.git(dir, args).stdout)
        .trim()
        .to_string()
}

fn commit_all(sb: &Sandbox, dir: &Path, msg: &str) {
    sb.git(dir, &["add", "-A"]);
    sb.git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
}

fn meta(dir: &Path) -> Value {
    let p = dir.join("kitty-specs").join(FEATURE).join("meta.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn log_events(dir: &Path) -> Vec<Value> {
    let p = dir
        .join("kitty-specs")
        .join(FEATURE)
        .join("status.events.jsonl");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Python's checklist (`accept --mode checklist --json`): exits 0 and
/// finds nothing outstanding.
fn python_checklist_is_clean(sb: &Sandbox, py: &Path, dir: &Path) {
    let o = sb.py(
        py,
        dir,
        &[
            "accept",
            "--feature",
            FEATURE,
            "--mode",
            "checklist",
            "--json",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["activity_issues"], json!([]));
    assert_eq!(v["lanes"]["done"], json!(["WP01", "WP02"]));
}

#[test]
fn rust_accepts_a_python_driven_feature_and_python_reads_the_record_back() {
    let Some(py) =
        require_python("rust_accepts_a_python_driven_feature_and_python_reads_the_record_back")
    else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.py_project(&py, "pyfeat", "demo", 2);
    let fdir = dir.join("kitty-specs").join(FEATURE);
    // What the Python agent fills in while implementing, and plan.md.
    for entry in std::fs::read_dir(fdir.join("tasks")).unwrap().flatten() {
        let p = entry.path();
        if p.file_name().unwrap().to_string_lossy().starts_with("WP") {
            let t = std::fs::read_to_string(&p).unwrap();
            let t = t
                .replace("agent: \"\"", "agent: \"claude\"\nassignee: \"claude\"")
                .replace("shell_pid: \"\"", "shell_pid: \"4242\"");
            std::fs::write(&p, t).unwrap();
        }
    }
    let tasks = std::fs::read_to_string(fdir.join("tasks.md")).unwrap();
    std::fs::write(fdir.join("tasks.md"), tasks.replace("- [ ]", "- [x]")).unwrap();
    std::fs::write(fdir.join("plan.md"), "# Plan\n").unwrap();
    commit_all(&sb, &dir, "implemented");
    // Python: both to for_review on its canonical log, WP01 approved.
    for wp in ["WP01", "WP02"] {
        sb.py(
            &py,
            &dir,
            &[
                "agent",
                "status",
                "emit",
                wp,
                "--to",
                "for_review",
                "--force",
                "--reason",
                "implemented",
                "--actor",
                "claude",
                "--feature",
                FEATURE,
            ],
        );
    }
    sb.py(
        &py,
        &dir,
        &approve("WP01", "alice", "PR#1", &["--feature", FEATURE]),
    );
    commit_all(&sb, &dir, "python status");
    let parent = git(&sb, &dir, &["rev-parse", "HEAD"]);
    let before = log_events(&dir).len();

    let o = sb.sk(&dir, &["accept", "--actor", "rusty", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["moved_to_done"], json!(["WP01", "WP02"]), "{v:#}");
    assert_eq!(v["commit_created"], true);
    assert_eq!(v["parent_commit"], json!(parent));
    assert_eq!(
        git(&sb, &dir, &["log", "-1", "--format=%s"]),
        format!("Accept {FEATURE}")
    );
    let events = log_events(&dir);
    let added: Vec<(&str, &str)> = events[before..]
        .iter()
        .map(|e| {
            assert_eq!(e["to_lane"], "done");
            (
                e["wp_id"].as_str().unwrap(),
                e["from_lane"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(added, vec![("WP01", "approved"), ("WP02", "for_review")]);
    let m = meta(&dir);
    assert_eq!(m["accepted_by"], "rusty");
    assert_eq!(m["feature_slug"], FEATURE, "Python's keys kept");

    // Python reads it all back: its checklist is clean once the hash it
    // would also leave uncommitted is committed, its validator passes, and
    // its accept appends to the history this CLI started.
    commit_all(&sb, &dir, "record accept_commit");
    python_checklist_is_clean(&sb, &py, &dir);
    sb.py(
        &py,
        &dir,
        &["agent", "status", "validate", "--feature", FEATURE],
    );
    sb.py(&py, &dir, &["accept", "--feature", FEATURE, "--json"]);
    let h = meta(&dir)["acceptance_history"].clone();
    assert_eq!(h.as_array().unwrap().len(), 2, "{h:#}");
    assert_eq!(h[0]["accepted_by"], "rusty");
    assert_eq!(h[0]["accepted_from_commit"], json!(parent));
}

#[test]
fn python_accepts_again_after_rust_accepted_a_feature_it_drove() {
    let Some(py) = require_python("python_accepts_again_after_rust_accepted_a_feature_it_drove")
    else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.project("rsfeat", "demo");
    let fdir = dir.join("kitty-specs").join(FEATURE);
    sb.sk(&dir, &["plan"]);
    sb.sk(&dir, &["tasks", "add", "Second work package"]);
    std::fs::write(
        fdir.join("tasks.md"),
        "# Work Packages\n\n## WP01: First\n\n- [x] T001 do it\n\n## WP02: Second\n\n- [x] T002 too\n",
    )
    .unwrap();
    commit_all(&sb, &dir, "work packages");
    for wp in ["WP01", "WP02"] {
        sb.sk(
            &dir,
            &["implement", wp, "--agent", "claude", "--no-worktree"],
        );
        sb.sk(
            &dir,
            &move_task(
                wp,
                "for_review",
                &["--agent", "claude", "--feature", FEATURE],
            ),
        );
    }
    commit_all(&sb, &dir, "implemented");
    let o = sb.sk(&dir, &["accept", "--actor", "rusty", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["moved_to_done"], json!(["WP01", "WP02"]), "{v:#}");
    commit_all(&sb, &dir, "record accept_commit");
    python_checklist_is_clean(&sb, &py, &dir);
    sb.py(&py, &dir, &["accept", "--feature", FEATURE, "--json"]);
    assert_eq!(
        git(&sb, &dir, &["log", "-1", "--format=%s"]),
        format!("Accept {FEATURE}")
    );
    let h = meta(&dir)["acceptance_history"].clone();
    assert_eq!(h.as_array().unwrap().len(), 2, "{h:#}");
    assert_eq!(h[0]["accepted_by"], "rusty");
    assert_eq!(h[0]["acceptance_mode"], "local");
}
