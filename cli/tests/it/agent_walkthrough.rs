//! An agent's walk from `init --ai claude` through specify, plan, tasks,
//! implement and review, done by following the command files this CLI
//! writes (`.claude/commands/spec-kitty.<step>.md`) step by step: every
//! `spec-kitty …` command of a prompt's `bash` blocks runs in order (the
//! placeholders filled in as an agent would), the content an agent writes
//! (spec.md, plan.md, tasks.md, the WP files, the code) is written by the
//! test, and after each step the repository must be what the next prompt
//! starts from. A command this CLI refuses fails the test with the prompt
//! file and the line.

use crate::common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const AGENT: &str = "claude";

/// One `spec-kitty …` line of a prompt's fenced `bash` block.
struct Step {
    file: PathBuf,
    line: usize,
    text: String,
}

/// The commands of one prompt file, in order.
fn commands(file: &Path) -> Vec<Step> {
    let text = fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut in_bash = false;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with("```") {
            in_bash = !in_bash && (t == "```bash" || t == "```sh");
            continue;
        }
        if in_bash && t.starts_with("spec-kitty ") {
            out.push(Step {
                file: file.to_path_buf(),
                line: i + 1,
                text: t.to_string(),
            });
        }
    }
    out
}

/// A command line split as a shell would (single and double quotes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in {line}");
    if any {
        out.push(cur);
    }
    out
}

struct Walk {
    w: World,
    feature: String,
    feedback: PathBuf,
}

impl Walk {
    /// Fills the placeholders an agent fills, runs the command in the
    /// project root, and fails naming the prompt file and line.
    fn run(&self, s: &Step) -> String {
        let line = s
            .text
            .replace("<feature-slug>", &self.feature)
            .replace("<slug>", "user-auth")
            .replace("<summary>", "login and logout work")
            .replace("<what you checked>", "tests and diff read")
            .replace("<feedback-file>", &self.feedback.display().to_string());
        assert!(
            !line.contains('<') && !line.contains("__AGENT__"),
            "{}:{}: a placeholder the walk does not know: {line}",
            s.file.display(),
            s.line
        );
        let argv = words(&line);
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let o = self
            .w
            .cmd_in(&self.w.repo, &args)
            .env("TMPDIR", self.w.tmp.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}:{}: `{line}` failed ({:?}):\n{}\n{}",
            s.file.display(),
            s.line,
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn prompt(&self, step: &str) -> Vec<Step> {
        let f = self
            .w
            .repo
            .join(format!(".claude/commands/spec-kitty.{step}.md"));
        assert!(f.is_file(), "init wrote no {}", f.display());
        let c = commands(&f);
        assert!(!c.is_empty(), "{} names no command to run", f.display());
        c
    }

    fn fdir(&self) -> PathBuf {
        self.w.repo.join("kitty-specs").join(&self.feature)
    }

    fn commit_all(&self, msg: &str) {
        self.w.git(&["add", "-A"]);
        self.w.git(&["commit", "-q", "-m", msg]);
    }

    fn clean(&self, after: &str) {
        assert_eq!(
            self.w.git(&["status", "--porcelain"]),
            "",
            "after {after} the tree is not clean"
        );
    }

    fn lane(&self, wp: &str) -> String {
        let v: Value =
            serde_json::from_str(&fs::read_to_string(self.fdir().join("status.json")).unwrap())
                .unwrap();
        v["work_packages"][wp]["lane"]
            .as_str()
            .unwrap_or("planned")
            .to_string()
    }
}

fn json_of(out: &str) -> Value {
    let last = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

const SPEC: &str = "# Feature Specification: User auth\n\n## Requirements\n\n\
- **FR-001**: A user can log in.\n- **FR-002**: A user can log out.\n";
const PLAN: &str = "# Implementation Plan: User auth\n\nOne module per requirement.\n";
const TASKS: &str = "# Tasks\n\n## Work Package WP01: Login\n\n**Goal**: log in.\n\
**Requirement Refs**: FR-001\n**Dependencies**: none\n\n### Included Subtasks\n\n\
- [ ] T001 Login form\n- [ ] T002 Session\n\n## Work Package WP02: Logout\n\n**Goal**: log out.\n\
**Requirement Refs**: FR-002\n**Dependencies**: Depends on WP01\n\n### Included Subtasks\n\n\
- [ ] T003 Logout button\n";

fn wp_file(id: &str, title: &str, subtasks: &str, deps: &str) -> String {
    format!(
        "---\nwork_package_id: {id}\ntitle: {title}\nlane: planned\nsubtasks: [{subtasks}]\n\
         dependencies: [{deps}]\n---\n# {id}: {title}\n\n## Objective\n\n{title}.\n\n## Activity Log\n"
    )
}

#[test]
fn the_planning_and_execution_prompts_walk_from_init_to_an_approved_work_package() {
    let w = World::bare("walk");
    w.git(&["init", "-q", "-b", "main"]);
    w.git(&["commit", "-q", "--allow-empty", "-m", "root"]);
    w.ok(&["init", "--ai", AGENT, "--non-interactive"]);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "spec-kitty init"]);
    let mut walk = Walk {
        feedback: w.tmp.path().join("feedback.md"),
        w,
        feature: String::new(),
    };

    // /spec-kitty.specify: create the feature once, then write the spec.
    let steps = walk.prompt("specify");
    assert_eq!(steps.len(), 1, "specify runs create-feature once");
    let v = json_of(&walk.run(&steps[0]));
    walk.feature = v["feature"].as_str().expect("feature in JSON").to_string();
    assert_eq!(walk.feature, "001-user-auth");
    fs::write(walk.fdir().join("spec.md"), SPEC).unwrap();
    fs::create_dir_all(walk.fdir().join("checklists")).unwrap();
    fs::write(
        walk.fdir().join("checklists/requirements.md"),
        "- [x] Every requirement testable\n",
    )
    .unwrap();
    walk.commit_all("spec for user-auth");
    walk.clean("specify");
    assert!(walk.fdir().join("meta.json").is_file());

    // /spec-kitty.plan
    for s in walk.prompt("plan") {
        let v = json_of(&walk.run(&s));
        let plan = PathBuf::from(v["plan_file"].as_str().expect("plan_file"));
        assert!(plan.is_file(), "{v}");
        fs::write(&plan, PLAN).unwrap();
    }
    walk.commit_all("plan for user-auth");
    walk.clean("plan");

    // /spec-kitty.tasks: check-prerequisites, the agent writes tasks.md
    // and the WP files, finalize. map-requirements is only for gaps
    // finalize reports; it reports none here.
    let steps = walk.prompt("tasks");
    let mut finalized: Option<Value> = None;
    for s in &steps {
        if s.text.contains("map-requirements") {
            let v = finalized
                .as_ref()
                .expect("map-requirements before finalize");
            for gap in [
                "missing_requirement_refs_wps",
                "unmapped_functional_requirements",
            ] {
                let none = v[gap].as_array().is_none_or(Vec::is_empty);
                assert!(none, "finalize reports {gap}: {v}");
            }
            continue;
        }
        let v = json_of(&walk.run(s));
        if s.text.contains("check-prerequisites") {
            let dir = v["feature_dir"].as_str().expect("feature_dir");
            assert_eq!(Path::new(dir), walk.fdir());
            fs::write(walk.fdir().join("tasks.md"), TASKS).unwrap();
            let t = walk.fdir().join("tasks");
            fs::write(
                t.join("WP01-login.md"),
                wp_file("WP01", "Login", "T001, T002", ""),
            )
            .unwrap();
            fs::write(
                t.join("WP02-logout.md"),
                wp_file("WP02", "Logout", "T003", "WP01"),
            )
            .unwrap();
        } else if s.text.contains("finalize-tasks") {
            assert_eq!(v["commit_created"], true, "{v}");
            finalized = Some(v);
        }
    }
    assert!(finalized.is_some(), "the tasks prompt never finalizes");
    walk.clean("tasks");
    let wp02 = fs::read_to_string(walk.fdir().join("tasks/WP02-logout.md")).unwrap();
    assert!(
        wp02.contains("WP01"),
        "WP02's dependency not written:\n{wp02}"
    );

    // /spec-kitty.implement: claim, the agent codes and commits in the
    // worktree, ticks its subtasks, hands over.
    let ws = walk
        .w
        .repo
        .join(".worktrees")
        .join(format!("{}-WP01", walk.feature));
    for s in walk.prompt("implement") {
        if s.text.contains("mark-status") {
            fs::write(ws.join("login.rs"), "pub fn login() {}\n").unwrap();
            walk.w.git_in(&ws, &["add", "login.rs"]);
            walk.w
                .git_in(&ws, &["commit", "-q", "-m", "feat(WP01): login"]);
        }
        walk.run(&s);
        if s.text.contains("workflow implement") {
            assert!(ws.join(".git").exists(), "no worktree after {}", s.text);
            assert_eq!(walk.lane("WP01"), "in_progress");
        }
    }
    assert_eq!(walk.lane("WP01"), "for_review");
    assert_eq!(walk.lane("WP02"), "planned");
    walk.clean("implement");

    // /spec-kitty.review: claim, approve (sending back is the other branch).
    for s in walk.prompt("review") {
        if s.text.contains("--review-feedback-file") {
            continue;
        }
        walk.run(&s);
    }
    assert_eq!(walk.lane("WP01"), "approved");
    walk.clean("review");
    let subjects = walk.w.git(&["log", "--format=%s"]);
    for s in [
        "chore: Move WP01 to approved on spec 001 [claude]",
        "chore: Start WP01 review [claude]",
        "chore: Move WP01 to for_review on spec 001 [claude]",
        "chore: Start WP01 implementation [claude]",
        "chore: WP01 claimed for implementation",
        "Add tasks for feature 001-user-auth",
    ] {
        assert!(subjects.contains(s), "no commit {s:?}:\n{subjects}");
    }
}
