//! `agent workflow implement` then `review`, made by the real Python
//! spec-kitty-cli 2.1.3 on one repository and by this CLI on its twin (a
//! copy made before either ran): the same lanes and the same commit
//! subjects come out.
//!
//! Needs `scripts/setup-python-cli` (skipped without it, failed under
//! `SK_REQUIRE_ALL`/`CI`).

use serde_json::Value;
use spec_kitty_e2e::cmdline::{frontmatter_lane, mark_status, move_task};
use spec_kitty_e2e::python::require_python;
use spec_kitty_e2e::{run_ok, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const FEATURE: &str = "001-demo";

/// The lane of each WP: the last status event's, else the frontmatter's,
/// with 2.1.3's `doing` read as `in_progress`.
fn lanes(dir: &Path) -> BTreeMap<String, String> {
    let fdir = dir.join("kitty-specs").join(FEATURE);
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(fdir.join("tasks")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("WP") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let lane = frontmatter_lane(&text)
            .unwrap()
            .replace("doing", "in_progress");
        out.insert(name[..4].to_string(), format!("frontmatter {lane}"));
    }
    let log = std::fs::read_to_string(fdir.join("status.events.jsonl")).unwrap_or_default();
    for l in log.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        out.insert(
            v["wp_id"].as_str().unwrap().to_string(),
            format!("log {}", v["to_lane"].as_str().unwrap()),
        );
    }
    out
}

fn git(sb: &Sandbox, dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new("git");
    c.current_dir(dir).args(args);
    sb.env(&mut c);
    String::from_utf8_lossy(&run_ok(&mut c).stdout).into_owned()
}

#[test]
fn workflow_implement_then_review_leaves_pythons_lanes_and_commit_subjects() {
    let Some(py) = require_python("workflow_implement_then_review_matches_python") else {
        return;
    };
    let mut sb = Sandbox::new();
    // 2.1.3 writes the prompt files to fixed names in the temp dir.
    let tmp = sb.root().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    sb.set_env("TMPDIR", &tmp);
    let theirs = sb.py_project(&py, "theirs", "demo", 2);
    let ours = sb.root().join("repos").join("ours");
    run_ok(Command::new("cp").arg("-a").arg(&theirs).arg(&ours));
    let base = git(&sb, &theirs, &["rev-parse", "HEAD"]);

    // The same steps, each repository driven by one CLI only.
    type Run<'a> = Box<dyn Fn(&[&str]) + 'a>;
    let drivers: [(&Path, Run); 2] = [
        (
            &theirs,
            Box::new(|a: &[&str]| {
                sb.py(&py, &theirs, a);
            }),
        ),
        (
            &ours,
            Box::new(|a: &[&str]| {
                sb.sk(&ours, a);
            }),
        ),
    ];
    for (dir, run) in &drivers {
        run(&["agent", "workflow", "implement", "--agent", "claude"]);
        let ws = dir.join(".worktrees").join(format!("{FEATURE}-WP01"));
        std::fs::write(ws.join("login.txt"), "done\n").unwrap();
        git(&sb, &ws, &["add", "login.txt"]);
        git(&sb, &ws, &["commit", "-q", "-m", "feat(WP01): login"]);
        run(&mark_status(&["T001"], "done", &["--feature", FEATURE]));
        run(&move_task(
            "WP01",
            "for_review",
            &["--agent", "claude", "--note", "Ready for review"],
        ));
        run(&["agent", "workflow", "review", "--agent", "claude"]);
    }

    let subjects = |dir: &Path| {
        git(
            &sb,
            dir,
            &["log", "--format=%s", &format!("{}..HEAD", base.trim())],
        )
    };
    assert_eq!(subjects(&ours), subjects(&theirs));
    assert!(
        subjects(&ours).starts_with(
            "chore: Start WP01 review [claude]\nchore: Move WP01 to for_review on spec 001 [claude]\n"
        ),
        "{}",
        subjects(&ours)
    );
    assert!(subjects(&ours).contains(
        "chore: Start WP01 implementation [claude]\nchore: WP01 claimed for implementation\n"
    ));
    let ours_lanes = lanes(&ours);
    assert_eq!(ours_lanes, lanes(&theirs));
    assert_eq!(ours_lanes["WP01"], "log in_progress");
    assert_eq!(ours_lanes["WP02"], "frontmatter planned");
    // Both leave only the (untracked) worktree directory behind.
    for dir in [&ours, &theirs] {
        assert_eq!(
            git(&sb, dir, &["status", "--porcelain"]),
            "?? .worktrees/\n",
            "{}",
            dir.display()
        );
    }
}
