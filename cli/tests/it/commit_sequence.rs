//! The commits of 2.1.3's lifecycle, step by step: the same steps (init
//! --ai claude, create-feature, setup-plan, finalize-tasks, implement,
//! review, merge) run by this CLI and by the real Python 2.1.3 on twin
//! repositories leave the same commit subjects in the same order; and a
//! repository with the user's own dirty, staged and untracked files keeps
//! them as they were, apart from our commits, which touch none of them.
//!
//! The Python half needs `scripts/setup-python-cli` (skipped without it,
//! failed under `SK_REQUIRE_ALL`/`CI`).

use crate::common;

use common::*;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

const FEATURE: &str = "001-user-auth";
const WPS: [&str; 2] = ["WP01", "WP02"];

/// Which CLI drives a twin.
enum Cli {
    Ours,
    Python(PathBuf),
}

struct Twin {
    w: World,
    cli: Cli,
}

impl Twin {
    /// An empty git repository (one root commit) for `cli`.
    fn new(cli: Cli) -> Twin {
        let w = World::bare("demo-repo");
        w.git(&["init", "-q", "-b", "main"]);
        w.git(&["commit", "-q", "--allow-empty", "-m", "root"]);
        Twin { w, cli }
    }

    /// Runs the twin's CLI; panics unless it succeeds.
    fn sk(&self, args: &[&str]) {
        match &self.cli {
            Cli::Ours => {
                self.w.ok(args);
            }
            Cli::Python(bin) => {
                py(&self.w, bin, args);
            }
        }
    }

    fn head(&self) -> String {
        self.w.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Runs one CLI step; returns the subjects it committed on the current
    /// branch, oldest first (first parent: the agent's work commits live on
    /// the WP branches).
    fn step(&self, args: &[&str]) -> Vec<String> {
        let before = self.head();
        self.sk(args);
        self.w
            .git(&[
                "log",
                "--first-parent",
                "--reverse",
                "--format=%s",
                &format!("{before}..HEAD"),
            ])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn feature_dir(&self) -> PathBuf {
        self.w.repo.join("kitty-specs").join(FEATURE)
    }

    fn worktree(&self, wp: &str) -> PathBuf {
        self.w
            .repo
            .join(".worktrees")
            .join(format!("{FEATURE}-{wp}"))
    }

    /// What the user and the agent do between commands, the same for both
    /// CLIs: commit the scaffolding, write and commit the spec, write the
    /// tasks, commit the work in a WP's worktree.
    fn user_commits_scaffolding(&self) {
        self.w.git(&["add", "-A"]);
        self.w.git(&["commit", "-q", "-m", "spec-kitty init"]);
    }

    fn agent_writes_spec(&self) {
        fs::write(
            self.feature_dir().join("spec.md"),
            "# Spec\n\n- **FR-001**: log in\n- **FR-002**: log out\n",
        )
        .unwrap();
        let spec = format!("kitty-specs/{FEATURE}/spec.md");
        self.w.git(&["add", &spec]);
        self.w
            .git(&["commit", "-q", "-m", "Spec for user-auth", "--", &spec]);
    }

    fn agent_writes_tasks(&self) {
        let dir = self.feature_dir();
        fs::write(
            dir.join("tasks.md"),
            "# Tasks\n\n## Work Package WP01: Login\n**Requirement Refs**: FR-001\n\n\
             ## Work Package WP02: Logout\n**Requirement Refs**: FR-002\n",
        )
        .unwrap();
        for (wp, title) in [("WP01", "Login"), ("WP02", "Logout")] {
            fs::write(
                dir.join(format!("tasks/{wp}-{}.md", title.to_lowercase())),
                format!(
                    "---\nwork_package_id: \"{wp}\"\ntitle: \"{title}\"\nlane: \"planned\"\n\
                     dependencies: []\n---\n# {wp}: {title}\n"
                ),
            )
            .unwrap();
        }
    }

    fn agent_works_in(&self, wp: &str) {
        let wt = self.worktree(wp);
        assert!(wt.is_dir(), "implement made {}", wt.display());
        fs::write(wt.join(format!("{wp}.txt")), format!("work of {wp}\n")).unwrap();
        for args in [
            vec!["add", "-A"],
            vec!["commit", "-q", "-m", &format!("{wp} work")],
        ] {
            let mut c = Command::new("git");
            c.args(&args).current_dir(&wt);
            git_env(&mut c, &self.w.home);
            let o = c.output().unwrap();
            assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        }
    }
}

const INIT: [&str; 7] = spec_kitty_e2e::cmdline::INIT_CLAUDE_HERE;

/// The lifecycle up to (not including) merge, with the user's and the
/// agent's parts between the commands; `after` runs after each CLI step.
/// Returns (step, subjects it committed) in order.
fn plan_implement_review(t: &Twin, after: &dyn Fn(&Twin)) -> Vec<(String, Vec<String>)> {
    let mut steps = Vec::new();
    let mut run = |name: &str, args: &[&str]| {
        let subjects = t.step(args);
        after(t);
        steps.push((name.to_string(), subjects));
    };
    run(
        "create-feature",
        &["agent", "feature", "create-feature", "user-auth", "--json"],
    );
    t.agent_writes_spec();
    run(
        "setup-plan",
        &[
            "agent",
            "feature",
            "setup-plan",
            "--feature",
            FEATURE,
            "--json",
        ],
    );
    t.agent_writes_tasks();
    run(
        "finalize-tasks",
        &[
            "agent",
            "feature",
            "finalize-tasks",
            "--feature",
            FEATURE,
            "--json",
        ],
    );
    for wp in WPS {
        run(
            &format!("implement {wp}"),
            &["implement", wp, "--feature", FEATURE],
        );
        t.agent_works_in(wp);
        run(
            &format!("{wp} for_review"),
            &move_task(
                wp,
                "for_review",
                &["--feature", FEATURE, "--agent", "claude"],
            ),
        );
        run(
            &format!("{wp} approved"),
            &move_task(
                wp,
                "approved",
                &["--feature", FEATURE, "--reviewer", "alice"],
            ),
        );
    }
    steps
}

/// init, then [`plan_implement_review`], then merge.
fn lifecycle(t: &Twin) -> Vec<(String, Vec<String>)> {
    let mut steps = vec![("init".to_string(), t.step(&INIT))];
    if matches!(t.cli, Cli::Python(_)) {
        spec_kitty_e2e::python::stop_python_dashboard(&t.w.repo);
    }
    t.user_commits_scaffolding();
    steps.extend(plan_implement_review(t, &|_| {}));
    steps.push((
        "merge".to_string(),
        t.step(&["merge", "--feature", FEATURE]),
    ));
    steps
}

#[test]
fn the_lifecycle_leaves_the_same_commit_subjects_as_python_2_1_3() {
    let Some(bin) = require_python("the_lifecycle_leaves_the_same_commit_subjects_as_python_2_1_3")
    else {
        return;
    };
    let (ours, theirs) = std::thread::scope(|s| {
        let ours = s.spawn(|| {
            let t = Twin::new(Cli::Ours);
            (lifecycle(&t), t)
        });
        let theirs = s.spawn(|| {
            let t = Twin::new(Cli::Python(bin.clone()));
            (lifecycle(&t), t)
        });
        (ours.join().unwrap(), theirs.join().unwrap())
    });
    let ((ours, ours_twin), (theirs, _theirs_twin)) = (ours, theirs);

    let subjects = |wp: &str, to: &str| format!("chore: Move {wp} to {to} on spec 001 [claude]");
    let mut expected = vec![
        ("init".to_string(), vec![]),
        (
            "create-feature".to_string(),
            vec![
                format!("Add spec for feature {FEATURE}"),
                format!("Add meta for feature {FEATURE}"),
            ],
        ),
        (
            "setup-plan".to_string(),
            vec![format!("Add plan for feature {FEATURE}")],
        ),
        (
            "finalize-tasks".to_string(),
            vec![format!("Add tasks for feature {FEATURE}")],
        ),
    ];
    for wp in WPS {
        expected.push((
            format!("implement {wp}"),
            vec![format!("chore: {wp} claimed for implementation")],
        ));
        expected.push((format!("{wp} for_review"), vec![subjects(wp, "for_review")]));
        expected.push((format!("{wp} approved"), vec![subjects(wp, "approved")]));
    }
    let merges: Vec<String> = WPS
        .iter()
        .map(|wp| format!("Merge {wp} from {FEATURE}"))
        .collect();

    // Every step before merge: the same subjects, in the same order.
    let before_merge = |s: &[(String, Vec<String>)]| s[..s.len() - 1].to_vec();
    assert_eq!(before_merge(&theirs), expected, "Python 2.1.3's commits");
    assert_eq!(before_merge(&ours), expected, "ours vs Python 2.1.3's");

    // merge: 2.1.3's merge commits in the same order; after each, ours
    // commits the WP's move to done, which 2.1.3 leaves uncommitted in the
    // working tree (its own `accept` then refuses the dirty tree).
    assert_eq!(theirs.last().unwrap().1, merges, "Python 2.1.3's merge");
    let ours_merge = &ours.last().unwrap().1;
    let ours_merges: Vec<String> = ours_merge
        .iter()
        .filter(|s| s.starts_with("Merge "))
        .cloned()
        .collect();
    assert_eq!(ours_merges, merges, "ours vs Python 2.1.3's merge commits");
    let mut with_status = Vec::new();
    for wp in WPS {
        with_status.push(format!("Merge {wp} from {FEATURE}"));
        with_status.push(format!("chore: Mark {wp} done after merge into main"));
    }
    assert_eq!(ours_merge, &with_status, "ours: each merge, then its done");

    // Ours ends clean: no worktree, no WP branch, nothing uncommitted; then
    // accept commits its record and leaves the tree clean.
    let w = &ours_twin.w;
    assert_eq!(
        w.git(&["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert_eq!(w.git(&["branch", "--list", "001-user-auth-*"]), "");
    assert_eq!(
        w.git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    let accepted = ours_twin.step(&["accept", "--feature", FEATURE]);
    assert_eq!(accepted.len(), 1, "one acceptance commit: {accepted:?}");
    assert_eq!(accepted[0], format!("Accept {FEATURE}"));
    // As 2.1.3 does, the commit's own sha goes into meta.json after it and
    // stays uncommitted: that line and nothing else.
    assert_eq!(
        w.git(&["status", "--porcelain", "--untracked-files=no"]),
        format!(" M kitty-specs/{FEATURE}/meta.json\n"),
        "accept left other files uncommitted"
    );
    let meta = format!("kitty-specs/{FEATURE}/meta.json");
    let committed: serde_json::Value =
        serde_json::from_str(&w.git(&["show", &format!("HEAD:{meta}")])).unwrap();
    let mut now: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.repo.join(&meta)).unwrap()).unwrap();
    let head = w.git(&["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(now["accept_commit"], serde_json::json!(head), "{now}");
    now.as_object_mut().unwrap().remove("accept_commit");
    if let Some(last) = now["acceptance_history"]
        .as_array_mut()
        .and_then(|h| h.last_mut())
    {
        last.as_object_mut().unwrap().remove("accept_commit");
    }
    assert_eq!(
        now, committed,
        "only accept_commit was added after the commit"
    );
}

/// The user's own files, none of them ours to touch.
const DIRTY: &str = "notes.txt";
const DIRTY_TEXT: &str = "my notes, edited, not staged\n";
const STAGED: &str = "staged.txt";
const UNTRACKED: &str = "scratch.txt";

fn user_files_are_as_they_were(t: &Twin) {
    let w = &t.w;
    assert_eq!(
        w.git(&["diff", "--cached", "--name-only"]),
        format!("{STAGED}\n"),
        "the index holds the user's staged file only"
    );
    assert_eq!(w.git(&["diff", "--name-only"]), format!("{DIRTY}\n"));
    assert_eq!(fs::read_to_string(w.repo.join(DIRTY)).unwrap(), DIRTY_TEXT);
    assert_eq!(
        w.git(&["ls-files", "--others", "--exclude-standard", UNTRACKED]),
        format!("{UNTRACKED}\n")
    );
    // The last commit is ours (or the agent's) and names none of them.
    let files = w.git(&["show", "--name-only", "--format=", "HEAD"]);
    for f in [DIRTY, STAGED, UNTRACKED] {
        assert!(!files.lines().any(|l| l == f), "{f} in our commit: {files}");
    }
}

#[test]
fn a_repository_with_the_users_dirty_and_staged_files_keeps_them_through_every_commit() {
    let t = Twin::new(Cli::Ours);
    t.sk(&INIT);
    fs::write(t.w.repo.join(DIRTY), "my notes\n").unwrap();
    t.user_commits_scaffolding();
    fs::write(t.w.repo.join(DIRTY), DIRTY_TEXT).unwrap();
    fs::write(t.w.repo.join(STAGED), "staged by the user\n").unwrap();
    t.w.git(&["add", STAGED]);
    fs::write(t.w.repo.join(UNTRACKED), "scratch\n").unwrap();

    let steps = plan_implement_review(&t, &user_files_are_as_they_were);
    for (name, subjects) in &steps {
        assert!(!subjects.is_empty(), "{name} committed nothing");
    }

    // merge refuses a dirty tree (as 2.1.3's does), naming the files, and
    // changes nothing.
    let head = t.head();
    let out = t.w.run(&["merge", "--feature", FEATURE]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(DIRTY) && err.contains(STAGED), "{err}");
    assert_eq!(t.head(), head);
    assert!(t.worktree("WP01").is_dir());
    user_files_are_as_they_were(&t);
}
