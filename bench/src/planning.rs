//! The planning commands as whole processes: `agent feature
//! create-feature`, `setup-plan` and `finalize-tasks` (with their git
//! commits), once per fresh feature, ours and (with `--python`) the Python
//! spec-kitty-cli 2.1.3 on the same sequence. Ours is also timed with
//! `--no-auto-commit`: the difference is the time spent in `git` itself.

use crate::cli::{run, Project};
use crate::stats::{summarize, Summary};
use anyhow::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// p50/p99 of the three steps.
pub struct Timings {
    pub create: Summary,
    pub plan: Summary,
    pub finalize: Summary,
}

const SPEC: &str = "# Spec\n\n- **FR-001**: one\n- **FR-002**: two\n";
const TASKS_MD: &str = "# Tasks\n\n## Work Package WP01: One\n**Requirement Refs**: FR-001\n\n## Work Package WP02: Two\n**Requirement Refs**: FR-002\n### Dependencies\n- Depends on WP01.\n";

fn wp(id: &str) -> String {
    format!("---\nwork_package_id: \"{id}\"\ntitle: \"Bench {id}\"\nlane: \"planned\"\ndependencies: []\nsubtasks:\n  - \"T001\"\nhistory:\n  - timestamp: \"2026-01-01T00:00:00Z\"\n    lane: \"planned\"\n    agent: \"system\"\n    action: \"Prompt generated via /spec-kitty.tasks\"\n---\n# {id}\n")
}

/// What the agent writes before `finalize-tasks` into a feature's
/// directory: the spec, tasks.md and two WP files (WP02 depends on WP01).
pub fn write_tasks(dir: &Path) -> Result<()> {
    std::fs::write(dir.join("spec.md"), SPEC)?;
    std::fs::write(dir.join("tasks.md"), TASKS_MD)?;
    for id in ["WP01", "WP02"] {
        std::fs::write(dir.join(format!("tasks/{id}-bench.md")), wp(id))?;
    }
    Ok(())
}

/// A git repository made a project by our `init` (no Python `init`: it
/// would leave a dashboard server running). Both CLIs plan in it.
pub fn project(root: &Path, ours: &Path, name: &str) -> Result<Project> {
    let p = Project::new(root, name)?;
    run(p.command(ours).args(["init", "--here"]))?;
    run(p.command(ours).args(["sync", "stop"]))?;
    let cfg = p.dir.join(".kittify/config.yaml");
    let text = std::fs::read_to_string(&cfg)?;
    std::fs::write(&cfg, text.replace("auto_start: true", "auto_start: false"))?;
    p.git(&["add", "-A"])?;
    p.git(&["commit", "-q", "-m", "project"])?;
    Ok(p)
}

/// Runs the planning sequence `n` times with `program`, each on a new
/// feature, timing each step; `extra` goes to every command.
pub fn time_planning(p: &Project, program: &Path, extra: &[&str], n: usize) -> Result<Timings> {
    let (mut c, mut pl, mut f) = (Vec::new(), Vec::new(), Vec::new());
    let timed = |args: &[&str], out: &mut Vec<Duration>| -> Result<()> {
        let mut cmd = p.command(program);
        cmd.args(args).args(extra);
        let t = Instant::now();
        run(&mut cmd)?;
        out.push(t.elapsed());
        Ok(())
    };
    for i in 0..n {
        let name = format!("bench-plan-{}", next_free(p));
        timed(
            &["agent", "feature", "create-feature", &name, "--json"],
            &mut c,
        )?;
        let slug = std::fs::read_dir(p.dir.join("kitty-specs"))?
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .find(|s| s.ends_with(&name))
            .ok_or_else(|| anyhow::anyhow!("feature {name} not created (run {i})"))?;
        timed(
            &[
                "agent",
                "feature",
                "setup-plan",
                "--feature",
                &slug,
                "--json",
            ],
            &mut pl,
        )?;
        write_tasks(&p.dir.join("kitty-specs").join(&slug))?;
        timed(
            &[
                "agent",
                "feature",
                "finalize-tasks",
                "--feature",
                &slug,
                "--json",
            ],
            &mut f,
        )?;
    }
    Ok(Timings {
        create: summarize(c),
        plan: summarize(pl),
        finalize: summarize(f),
    })
}

/// A name suffix no feature of the project uses yet.
fn next_free(p: &Project) -> usize {
    std::fs::read_dir(p.dir.join("kitty-specs"))
        .map(|d| d.count())
        .unwrap_or(0)
}
