//! Mixed use of one repository by both CLIs (issue 10, "Mixed use, tested
//! against the real Python CLI"), with the real Python `spec-kitty-cli`
//! 2.1.3 as the oracle of its own status model:
//! - Rust drives a feature planned → … → done: Python's `agent status
//!   validate` passes and its `agent tasks status --json` agrees lane by lane;
//! - Python moves work packages (to `approved` too), Rust continues them,
//!   Python still validates;
//! - 8 Rust and 8 Python processes move different work packages of one
//!   feature at the same moment: every status event once in the log, and
//!   the views (`status.json`, `tasks.md`'s block, frontmatter) agree with
//!   the log;
//! - the same transitions made by each CLI send the same wire events, field
//!   by field apart from ids, times, clocks and project identity.
//!
//! Needs `scripts/setup-python-cli` (skipped without it, failed under
//! `SK_REQUIRE_ALL`/`CI`).

use serde_json::Value;
use spec_kitty_e2e::cmdline::{frontmatter_lane, mark_status, move_task, INIT_CLAUDE_HERE};
use spec_kitty_e2e::python::require_python;
use spec_kitty_e2e::Sandbox;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

fn feature_dir(dir: &Path, feature: &str) -> PathBuf {
    dir.join("kitty-specs").join(feature)
}

/// The status events of the feature's log, in file order.
fn log_events(dir: &Path, feature: &str) -> Vec<Value> {
    let path = feature_dir(dir, feature).join("status.events.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}: {l}", path.display(), i + 1))
        })
        .collect()
}

/// The lane of each WP after the log (2.1.3's reducer: events ordered by
/// `at`, then `event_id`; the last one wins).
fn lanes_from_log(events: &[Value]) -> BTreeMap<String, String> {
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| {
        (
            e["at"].as_str().unwrap().to_string(),
            e["event_id"].as_str().unwrap().to_string(),
        )
    });
    sorted
        .into_iter()
        .map(|e| {
            (
                e["wp_id"].as_str().unwrap().to_string(),
                e["to_lane"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The `lane:` of each WP file's frontmatter.
fn frontmatter_lanes(dir: &Path, feature: &str) -> BTreeMap<String, String> {
    let tasks = feature_dir(dir, feature).join("tasks");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&tasks).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("WP") || !name.ends_with(".md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lane =
            frontmatter_lane(&text).unwrap_or_else(|| panic!("no lane in {}", path.display()));
        out.insert(name[..4].to_string(), lane);
    }
    out
}

/// `status.json`'s lane for each WP it lists.
fn status_json_lanes(dir: &Path, feature: &str) -> BTreeMap<String, String> {
    let path = feature_dir(dir, feature).join("status.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v["work_packages"]
        .as_object()
        .unwrap_or_else(|| panic!("no work_packages in {v}"))
        .iter()
        .map(|(k, w)| (k.clone(), w["lane"].as_str().unwrap().to_string()))
        .collect()
}

/// The `- WPnn: lane` lines of `tasks.md`'s generated block; `None`
/// without a `tasks.md` (2.1.3 then has no block to write either).
fn tasks_md_lanes(dir: &Path, feature: &str) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(feature_dir(dir, feature).join("tasks.md")).ok()?;
    let block = text
        .split("## Canonical Status (Generated)")
        .nth(1)
        .unwrap_or_else(|| panic!("no generated status block in tasks.md:\n{text}"));
    let lanes = block
        .lines()
        .take_while(|l| !l.contains("status-model:end"))
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split_once(": "))
        .map(|(wp, lane)| (wp.to_string(), lane.trim().to_string()))
        .collect();
    Some(lanes)
}

/// Python's `agent status validate --json` passes with no warning.
fn python_validates(sb: &Sandbox, py: &Path, dir: &Path, feature: &str) {
    let o = sb.py(
        py,
        dir,
        &[
            "agent",
            "status",
            "validate",
            "--feature",
            feature,
            "--json",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "validate --json: {e}\n{}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    assert_eq!(v["passed"], true, "Python's validate: {v}");
    assert_eq!(v["error_count"], 0, "{v}");
    assert_eq!(v["warning_count"], 0, "{v}");
}

/// Python's `agent tasks status --json`: each WP's lane.
fn python_lanes(sb: &Sandbox, py: &Path, dir: &Path, feature: &str) -> BTreeMap<String, String> {
    let o = sb.py(
        py,
        dir,
        &["agent", "tasks", "status", "--feature", feature, "--json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", String::from_utf8_lossy(&o.stdout)));
    v["work_packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no work_packages in {v}"))
        .iter()
        .map(|w| {
            (
                w["id"].as_str().unwrap().to_string(),
                w["lane"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `agent tasks move-task WP --to LANE --feature F EXTRA…`.
fn move_args<'a>(feature: &'a str, wp: &'a str, to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = move_task(wp, to, &["--feature", feature]);
    args.extend_from_slice(extra);
    args
}

fn rust_move(sb: &Sandbox, dir: &Path, feature: &str, wp: &str, to: &str, extra: &[&str]) {
    sb.sk(dir, &move_args(feature, wp, to, extra));
}

fn python_move(
    sb: &Sandbox,
    py: &Path,
    dir: &Path,
    feature: &str,
    wp: &str,
    to: &str,
    extra: &[&str],
) {
    sb.py(py, dir, &move_args(feature, wp, to, extra));
}

/// Every view agrees with the log, and each event is in it once.
fn views_match_the_log(dir: &Path, feature: &str) -> BTreeMap<String, String> {
    let events = log_events(dir, feature);
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), events.len(), "an event twice in the log");
    let lanes = lanes_from_log(&events);
    assert_eq!(
        status_json_lanes(dir, feature),
        lanes,
        "status.json vs the log"
    );
    if let Some(block) = tasks_md_lanes(dir, feature) {
        assert_eq!(block, lanes, "tasks.md block vs the log");
    }
    let fm = frontmatter_lanes(dir, feature);
    for (wp, lane) in &lanes {
        assert_eq!(fm.get(wp), Some(lane), "{wp}: frontmatter vs the log");
    }
    lanes
}

const REVIEW: [&str; 6] = [
    "--agent",
    "claude",
    "--reviewer",
    "reviewer-bot",
    "--approval-ref",
    "PR#1",
];

/// To `done` without a WP branch to check merge ancestry on (2.1.3's
/// guard): the reason goes into the event.
const DONE: [&str; 8] = [
    "--agent",
    "claude",
    "--reviewer",
    "reviewer-bot",
    "--approval-ref",
    "PR#1",
    "--done-override-reason",
    "merged on main by hand",
];

#[test]
fn a_feature_rust_drives_to_done_validates_in_python_lane_by_lane() {
    let test = "a_feature_rust_drives_to_done_validates_in_python_lane_by_lane";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.project("alpha", "first-feature");
    sb.sk(&dir, &["tasks", "add", "Second work package"]);
    let feature = "001-first-feature";
    let agent = ["--agent", "claude"];
    rust_move(&sb, &dir, feature, "WP01", "claimed", &agent);
    rust_move(&sb, &dir, feature, "WP01", "in_progress", &agent);
    rust_move(&sb, &dir, feature, "WP01", "for_review", &agent);
    rust_move(&sb, &dir, feature, "WP01", "approved", &REVIEW);
    rust_move(&sb, &dir, feature, "WP01", "done", &DONE);
    rust_move(&sb, &dir, feature, "WP02", "claimed", &agent);

    let events = log_events(&dir, feature);
    let wp01: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["wp_id"] == "WP01")
        .map(|e| {
            (
                e["from_lane"].as_str().unwrap(),
                e["to_lane"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        wp01,
        [
            ("planned", "claimed"),
            ("claimed", "in_progress"),
            ("in_progress", "for_review"),
            ("for_review", "approved"),
            ("approved", "done"),
        ],
        "one status event per move: {events:#?}"
    );
    let lanes = views_match_the_log(&dir, feature);
    python_validates(&sb, &py, &dir, feature);
    let theirs = python_lanes(&sb, &py, &dir, feature);
    assert_eq!(theirs.get("WP01").map(String::as_str), Some("done"));
    assert_eq!(theirs.get("WP02").map(String::as_str), Some("claimed"));
    for (wp, lane) in &lanes {
        assert_eq!(theirs.get(wp), Some(lane), "{wp}: Python vs Rust");
    }
}

#[test]
fn rust_continues_what_python_moved_and_python_still_validates() {
    let test = "rust_continues_what_python_moved_and_python_still_validates";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.py_project(&py, "pyproj", "demo-feature", 3);
    let feature = "001-demo-feature";
    let agent = ["--agent", "claude"];
    python_move(&sb, &py, &dir, feature, "WP01", "claimed", &agent);
    python_move(&sb, &py, &dir, feature, "WP01", "in_progress", &agent);
    sb.py(
        &py,
        &dir,
        &mark_status(&["T001"], "done", &["--feature", feature]),
    );
    python_move(&sb, &py, &dir, feature, "WP01", "for_review", &agent);
    python_move(&sb, &py, &dir, feature, "WP01", "approved", &REVIEW);
    python_move(&sb, &py, &dir, feature, "WP02", "claimed", &agent);
    let before = log_events(&dir, feature).len();
    assert_eq!(before, 5);

    // Rust reads Python's log: WP01 is approved (not for_review), WP02
    // claimed; it continues both.
    rust_move(&sb, &dir, feature, "WP01", "done", &DONE);
    rust_move(&sb, &dir, feature, "WP02", "in_progress", &agent);
    rust_move(&sb, &dir, feature, "WP03", "claimed", &agent);
    let events = log_events(&dir, feature);
    assert_eq!(events.len(), before + 3, "{events:#?}");
    let tail: Vec<(&str, &str, &str)> = events[before..]
        .iter()
        .map(|e| {
            (
                e["wp_id"].as_str().unwrap(),
                e["from_lane"].as_str().unwrap(),
                e["to_lane"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            ("WP01", "approved", "done"),
            ("WP02", "claimed", "in_progress"),
            ("WP03", "planned", "claimed"),
        ]
    );
    let lanes = views_match_the_log(&dir, feature);
    python_validates(&sb, &py, &dir, feature);
    assert_eq!(python_lanes(&sb, &py, &dir, feature), lanes);
}

#[test]
fn eight_rust_and_eight_python_processes_moving_one_feature_at_once_lose_nothing() {
    let test = "eight_rust_and_eight_python_processes_moving_one_feature_at_once_lose_nothing";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.py_project(&py, "pyproj", "busy-feature", 16);
    let feature = "001-busy-feature";
    let start = std::sync::Barrier::new(16);
    std::thread::scope(|s| {
        for i in 1..=16 {
            let (sb, py, dir, start) = (&sb, &py, &dir, &start);
            s.spawn(move || {
                let wp = format!("WP{i:02}");
                // No commits: sixteen processes committing at once would
                // only measure git's index lock.
                let args = ["--agent", "racer", "--no-auto-commit"];
                start.wait();
                if i <= 8 {
                    rust_move(sb, dir, feature, &wp, "claimed", &args);
                } else {
                    python_move(sb, py, dir, feature, &wp, "claimed", &args);
                }
            });
        }
    });
    let events = log_events(&dir, feature);
    let mut moved: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["wp_id"].as_str().unwrap().to_string(),
                e["from_lane"].as_str().unwrap().to_string(),
                e["to_lane"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    moved.sort();
    let want: Vec<(String, String, String)> = (1..=16)
        .map(|i| (format!("WP{i:02}"), "planned".into(), "claimed".into()))
        .collect();
    assert_eq!(moved, want, "each move once in the log: {events:#?}");
    let lanes = views_match_the_log(&dir, feature);
    assert!(lanes.values().all(|l| l == "claimed"), "{lanes:?}");
    python_validates(&sb, &py, &dir, feature);
    assert_eq!(python_lanes(&sb, &py, &dir, feature), lanes);
}

/// The `WPStatusChanged` envelopes in a SQLite file, oldest first: our
/// daemon's store (`events.envelope`, rows of `origin`) or Python's queue
/// (`queue.data`).
fn status_envelopes(db: &Path, sql: &str) -> Vec<Value> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    let mut stmt = conn.prepare(sql).unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.iter()
        .map(|t| serde_json::from_str::<Value>(t).unwrap())
        .filter(|v| v["event_type"] == "WPStatusChanged")
        .collect()
}

/// What must agree between the CLIs: everything but ids, times, clocks
/// and the project's own identity.
fn comparable(mut env: Value) -> Value {
    let obj = env.as_object_mut().unwrap();
    for k in [
        "event_id",
        "timestamp",
        "lamport_clock",
        "causation_id",
        "project_uuid",
        "project_slug",
        "head_commit_sha",
    ] {
        obj.remove(k);
    }
    env
}

#[test]
fn both_clis_send_the_same_wire_events_for_the_same_transitions() {
    let test = "both_clis_send_the_same_wire_events_for_the_same_transitions";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let feature = "001-same-feature";
    let ours = sb.project("ours", "same-feature");
    let theirs = sb.py_project(&py, "theirs", "same-feature", 1);
    sb.py(
        &py,
        &theirs,
        &mark_status(&["T001"], "done", &["--feature", feature]),
    );
    let agent = ["--agent", "claude"];
    let steps: [(&str, &[&str]); 5] = [
        ("claimed", &agent),
        ("in_progress", &agent),
        ("for_review", &agent),
        ("approved", &REVIEW),
        ("done", &DONE),
    ];
    for (to, extra) in steps {
        rust_move(&sb, &ours, feature, "WP01", to, extra);
        python_move(&sb, &py, &theirs, feature, "WP01", to, extra);
    }
    // Python, not logged in and without SaaS sync, keeps its events in
    // queue.db; ours are in the daemon's store.
    let python = status_envelopes(
        &sb.paths().legacy_queue_db(),
        "SELECT data FROM queue ORDER BY id",
    );
    sb.stop_daemon();
    let rust = status_envelopes(
        &sb.paths().store(),
        "SELECT envelope FROM events WHERE origin != 'legacy' ORDER BY seq",
    );
    let rust: Vec<Value> = rust.into_iter().map(comparable).collect();
    let python: Vec<Value> = python.into_iter().map(comparable).collect();
    assert_eq!(rust.len(), 5, "one event per move: {rust:#?}");
    assert_eq!(rust, python, "the same transitions, the same wire events");
}

#[test]
fn python_accepts_a_feature_rust_drove_through_implement_review_and_done() {
    // The whole path a user takes with this CLI: plan, tasks, implement
    // (agent, shell_pid, workspace), review, done. Then 2.1.3's `accept`,
    // with all its readiness checks, accepts the feature and commits.
    let test = "python_accepts_a_feature_rust_drove_through_implement_review_and_done";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.project("accepted", "shipped");
    let feature = "001-shipped";
    sb.sk(&dir, &["plan"]);
    sb.sk(&dir, &["tasks", "add", "Second work package"]);
    std::fs::write(
        feature_dir(&dir, feature).join("tasks.md"),
        "# Work Packages\n\n## WP01: First work package\n\n- [x] T001 do it\n\n\
         ## WP02: Second work package\n\n- [x] T002 do it too\n",
    )
    .unwrap();
    sb.git(&dir, &["add", "-A"]);
    sb.git(&dir, &["commit", "-q", "-m", "work packages"]);
    for wp in ["WP01", "WP02"] {
        sb.sk(
            &dir,
            &["implement", wp, "--agent", "claude", "--no-worktree"],
        );
        rust_move(&sb, &dir, feature, wp, "for_review", &["--agent", "claude"]);
        rust_move(&sb, &dir, feature, wp, "approved", &REVIEW);
        rust_move(&sb, &dir, feature, wp, "done", &DONE);
    }
    python_validates(&sb, &py, &dir, feature);
    sb.py(&py, &dir, &["accept", "--feature", feature, "--json"]);
    let subject = sb.git(&dir, &["log", "-1", "--format=%s"]);
    assert_eq!(
        String::from_utf8_lossy(&subject.stdout).trim(),
        format!("Accept {feature}"),
        "2.1.3's accept commit"
    );
}

/// Commits the agent's work in `wp`'s worktree of `feature`.
fn work_in_worktree(sb: &Sandbox, dir: &Path, feature: &str, wp: &str) {
    let wt = dir.join(".worktrees").join(format!("{feature}-{wp}"));
    assert!(wt.is_dir(), "no worktree {}", wt.display());
    std::fs::write(wt.join(format!("{wp}.txt")), format!("work of {wp}\n")).unwrap();
    sb.git(&wt, &["add", "-A"]);
    sb.git(&wt, &["commit", "-q", "-m", &format!("{wp} work")]);
}

#[test]
fn a_feature_python_planned_and_started_is_reviewed_merged_and_accepted_here() {
    // 2.1.3 plans the feature with its own commands and implements WP01 up
    // to review; this CLI reviews it, implements and reviews WP02, merges
    // and accepts. Python's validate passes on the result and sees every
    // WP done; no worktree and nothing uncommitted is left.
    let test = "a_feature_python_planned_and_started_is_reviewed_merged_and_accepted_here";
    let Some(py) = require_python(test) else {
        return;
    };
    let sb = Sandbox::new();
    let dir = sb.git_repo("handed-over", None);
    let feature = "001-user-auth";
    let fdir = feature_dir(&dir, feature);
    sb.py(&py, &dir, &INIT_CLAUDE_HERE);
    spec_kitty_e2e::python::stop_python_dashboard(&dir);
    sb.git(&dir, &["add", "-A"]);
    sb.git(&dir, &["commit", "-q", "-m", "spec-kitty init"]);
    sb.py(
        &py,
        &dir,
        &["agent", "feature", "create-feature", "user-auth", "--json"],
    );
    std::fs::write(
        fdir.join("spec.md"),
        "# Spec\n\n- **FR-001**: log in\n- **FR-002**: log out\n",
    )
    .unwrap();
    sb.git(&dir, &["add", "-A"]);
    sb.git(&dir, &["commit", "-q", "-m", "Spec for user-auth"]);
    let on_feature = ["--feature", feature, "--json"];
    let mut setup_plan = vec!["agent", "feature", "setup-plan"];
    setup_plan.extend(on_feature);
    sb.py(&py, &dir, &setup_plan);
    std::fs::write(
        fdir.join("tasks.md"),
        "# Tasks\n\n## Work Package WP01: Login\n**Requirement Refs**: FR-001\n\n\
         - [x] T001 Login form\n\n## Work Package WP02: Logout\n**Requirement Refs**: FR-002\n\n\
         - [x] T002 Logout button\n",
    )
    .unwrap();
    for (wp, title, task) in [("WP01", "Login", "T001"), ("WP02", "Logout", "T002")] {
        std::fs::write(
            fdir.join("tasks")
                .join(format!("{wp}-{}.md", title.to_lowercase())),
            format!(
                "---\nwork_package_id: \"{wp}\"\ntitle: \"{title}\"\nlane: \"planned\"\n\
                 dependencies: []\nsubtasks:\n  - \"{task}\"\n---\n# {wp}: {title}\n"
            ),
        )
        .unwrap();
    }
    let mut finalize = vec!["agent", "feature", "finalize-tasks"];
    finalize.extend(on_feature);
    sb.py(&py, &dir, &finalize);
    sb.py(&py, &dir, &["implement", "WP01", "--feature", feature]);
    work_in_worktree(&sb, &dir, feature, "WP01");
    let agent = ["--agent", "claude"];
    python_move(&sb, &py, &dir, feature, "WP01", "for_review", &agent);
    let by_python = log_events(&dir, feature).len();

    // This CLI takes over.
    rust_move(&sb, &dir, feature, "WP01", "approved", &REVIEW);
    sb.sk(&dir, &["implement", "WP02", "--feature", feature]);
    work_in_worktree(&sb, &dir, feature, "WP02");
    rust_move(&sb, &dir, feature, "WP02", "for_review", &agent);
    rust_move(&sb, &dir, feature, "WP02", "approved", &REVIEW);
    sb.sk(&dir, &["merge", "--feature", feature]);
    sb.sk(&dir, &["accept", "--feature", feature]);

    // Each of our transitions once in the log, after Python's; our
    // implement moves WP02 as 2.1.3's moved WP01.
    let events = log_events(&dir, feature);
    let moves = |from: usize, to: usize| -> Vec<(String, String, String)> {
        events[from..to]
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap().to_string();
                (s("wp_id"), s("from_lane"), s("to_lane"))
            })
            .collect()
    };
    let m = |wp: &str, from: &str, to: &str| (wp.to_string(), from.to_string(), to.to_string());
    assert_eq!(
        moves(0, by_python),
        [
            m("WP01", "planned", "in_progress"),
            m("WP01", "in_progress", "for_review")
        ],
        "2.1.3's implement and review"
    );
    let ours = moves(by_python, events.len());
    assert_eq!(
        ours,
        [
            m("WP01", "for_review", "approved"),
            m("WP02", "planned", "in_progress"),
            m("WP02", "in_progress", "for_review"),
            m("WP02", "for_review", "approved"),
            m("WP01", "approved", "done"),
            m("WP02", "approved", "done"),
        ],
        "{events:#?}"
    );
    let lanes = views_match_the_log(&dir, feature);
    python_validates(&sb, &py, &dir, feature);
    let theirs = python_lanes(&sb, &py, &dir, feature);
    assert_eq!(theirs, lanes);
    assert!(theirs.values().all(|l| l == "done"), "{theirs:?}");

    // The work landed on main, the workspaces are gone, all is committed.
    for wp in ["WP01", "WP02"] {
        assert!(
            dir.join(format!("{wp}.txt")).is_file(),
            "{wp}'s work not merged"
        );
    }
    let git_out = |args: &[&str]| String::from_utf8(sb.git(&dir, args).stdout).unwrap();
    assert_eq!(
        git_out(&["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert_eq!(git_out(&["branch", "--list", "001-user-auth-*"]), "");
    // All committed but the acceptance commit's own sha, which accept
    // writes into meta.json after committing, as 2.1.3 does.
    assert_eq!(
        git_out(&["status", "--porcelain", "--untracked-files=no"]),
        " M kitty-specs/001-user-auth/meta.json\n"
    );
    let head = git_out(&["rev-parse", "HEAD"]);
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("kitty-specs/001-user-auth/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["accept_commit"].as_str(), Some(head.trim()));
}
