//! `implement` on a dependency-aware base against the real Python
//! spec-kitty-cli 2.1.3: two twin projects planned by Python (WP02 depends
//! on WP01), WP01 implemented by Python in both, then WP02 by Python in one
//! and by this CLI in the other. Both pick the same base (WP01's branch),
//! make the same sparse worktree, context file, frontmatter and JSON keys,
//! and leave the same commit subjects.
//!
//! Needs `scripts/setup-python-cli` (skipped without it, failed under
//! `SK_REQUIRE_ALL`/`CI`).

use serde_json::Value;
use spec_kitty_e2e::python::require_python;
use spec_kitty_e2e::Sandbox;
use std::path::{Path, PathBuf};

const FEATURE: &str = "001-demo";

fn git(sb: &Sandbox, dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&sb.git(dir, args).stdout)
        .trim()
        .to_string()
}

/// The last JSON object line of a command's stdout.
fn last_json(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in: {text}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn wp_file(dir: &Path, wp: &str) -> PathBuf {
    let tasks = dir.join("kitty-specs").join(FEATURE).join("tasks");
    std::fs::read_dir(&tasks)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{wp}-")))
        })
        .unwrap_or_else(|| panic!("no {wp} file in {}", tasks.display()))
}

/// A frontmatter scalar, unquoted.
fn scalar(dir: &Path, wp: &str, key: &str) -> String {
    let text = std::fs::read_to_string(wp_file(dir, wp)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {wp}:\n{text}"))
        .trim()
        .trim_matches(['"', '\''])
        .to_string()
}

/// Planned by Python (WP02 depends on WP01), WP01 implemented by Python
/// and one commit of work made in its worktree.
fn twin(sb: &Sandbox, py: &Path, name: &str) -> PathBuf {
    let dir = sb.py_project(py, name, "demo", 2);
    let wp2 = wp_file(&dir, "WP02");
    let text = std::fs::read_to_string(&wp2).unwrap();
    assert!(text.contains("dependencies: []"), "{text}");
    std::fs::write(
        &wp2,
        text.replace("dependencies: []", "dependencies:\n- WP01"),
    )
    .unwrap();
    sb.git(&dir, &["commit", "-q", "-am", "WP02 depends on WP01"]);
    sb.py(py, &dir, &["implement", "WP01", "--json"]);
    let wt = dir.join(".worktrees").join(format!("{FEATURE}-WP01"));
    std::fs::write(wt.join("wp01.txt"), "work of WP01\n").unwrap();
    sb.git(&wt, &["add", "wp01.txt"]);
    sb.git(&wt, &["commit", "-q", "-m", "WP01 work"]);
    dir
}

#[test]
fn implement_wp02_here_picks_the_base_python_picks() {
    let Some(py) = require_python("implement_wp02_here_picks_the_base_python_picks") else {
        return;
    };
    let sb = Sandbox::new();
    let theirs = twin(&sb, &py, "theirs");
    let ours = twin(&sb, &py, "ours");

    let pv = last_json(&sb.py(&py, &theirs, &["implement", "WP02", "--json"]));
    let rv = last_json(&sb.sk(&ours, &["implement", "WP02", "--json"]));
    for k in [
        "workspace",
        "workspace_path",
        "branch",
        "feature",
        "wp_id",
        "base",
        "status",
    ] {
        assert_eq!(rv[k], pv[k], "`{k}`: ours {rv}, 2.1.3's {pv}");
    }
    assert_eq!(pv["base"], "WP01", "{pv}");

    let wp01 = format!("{FEATURE}-WP01");
    let wp02 = format!("{FEATURE}-WP02");
    for dir in [&theirs, &ours] {
        // WP02's branch starts at WP01's work.
        assert_eq!(
            git(&sb, dir, &["rev-parse", &wp02]),
            git(&sb, dir, &["rev-parse", &wp01]),
            "{}",
            dir.display()
        );
        assert_eq!(scalar(dir, "WP02", "base_branch"), wp01);
        assert_eq!(
            scalar(dir, "WP02", "base_commit"),
            git(&sb, dir, &["rev-parse", &wp01])
        );
        let wt = dir.join(".worktrees").join(&wp02);
        assert!(wt.join("wp01.txt").is_file(), "{}", wt.display());
        assert!(!wt.join("kitty-specs").exists(), "{}", wt.display());
    }

    // The same sparse checkout and excludes.
    let sparse = |dir: &Path, file: &str| {
        let wt = dir.join(".worktrees").join(&wp02);
        let p = git(&sb, &wt, &["rev-parse", "--git-path", file]);
        std::fs::read_to_string(wt.join(p)).unwrap_or_default()
    };
    assert_eq!(
        sparse(&ours, "info/sparse-checkout"),
        sparse(&theirs, "info/sparse-checkout")
    );
    let exclude = |dir: &Path| {
        let wt = dir.join(".worktrees").join(&wp02);
        let gd = git(&sb, &wt, &["rev-parse", "--git-dir"]);
        std::fs::read_to_string(wt.join(gd).join("info/exclude")).unwrap_or_default()
    };
    assert_eq!(exclude(&ours), exclude(&theirs));

    // The same workspace context, apart from commit and time.
    let context = |dir: &Path| -> Value {
        let p = dir.join(".kittify/workspaces").join(format!("{wp02}.json"));
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        for k in ["base_commit", "created_at"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(context(&ours), context(&theirs));

    // The same commit subjects, step for step.
    let subjects = |dir: &Path| git(&sb, dir, &["log", "--format=%s"]);
    assert_eq!(subjects(&ours), subjects(&theirs));
    assert!(subjects(&ours).starts_with("chore: WP02 claimed for implementation\n"));
}
