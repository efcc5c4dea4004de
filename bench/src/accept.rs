//! `spec-kitty accept` as a whole process, ours and (with `--python`) the
//! Python spec-kitty-cli 2.1.3, each run on a fresh feature that is ready
//! (spec, plan, ticked tasks.md, both work packages done in the canonical
//! log, everything committed), so both CLIs do the same work: the readiness
//! checks (with `git status` and `git remote`), the meta.json record and the
//! `Accept <feature>` commit. Ours is also timed with `--no-commit` (checks
//! and report only): the difference is the record and the commit, most of
//! it `git add` and `git commit`.

use crate::cli::{run_timed, Project};
use crate::stats::{summarize, Summary};
use anyhow::Result;
use std::path::Path;

fn wp(id: &str) -> String {
    format!(
        "---\nwork_package_id: \"{id}\"\ntitle: \"Bench {id}\"\nlane: \"done\"\ndependencies: []\n\
         subtasks: []\nagent: \"claude\"\nassignee: \"claude\"\nshell_pid: \"4242\"\nhistory: []\n---\n# {id}\n"
    )
}

fn event(slug: &str, wp: &str, n: usize) -> String {
    format!(
        "{{\"actor\": \"claude\", \"at\": \"2026-01-01T00:00:0{n}+00:00\", \"event_id\": \"01J0000000000000000000000{n}\", \
         \"evidence\": null, \"execution_mode\": \"worktree\", \"feature_slug\": \"{slug}\", \"force\": true, \
         \"from_lane\": \"planned\", \"policy_metadata\": null, \"reason\": \"bench\", \"review_ref\": null, \
         \"to_lane\": \"done\", \"wp_id\": \"{wp}\"}}\n"
    )
}

/// Writes and commits feature `NNN-bench-accept-NNN`, ready to accept.
fn ready_feature(p: &Project) -> Result<String> {
    let n = std::fs::read_dir(p.dir.join("kitty-specs"))
        .map(|d| d.count())
        .unwrap_or(0)
        + 1;
    let slug = format!("{n:03}-bench-accept-{n}");
    let dir = p.dir.join("kitty-specs").join(&slug);
    std::fs::create_dir_all(dir.join("tasks"))?;
    std::fs::write(
        dir.join("meta.json"),
        format!(
            "{{\n  \"created_at\": \"2026-01-01T00:00:00+00:00\",\n  \"feature_number\": \"{n:03}\",\n  \
             \"feature_slug\": \"{slug}\",\n  \"friendly_name\": \"bench accept {n}\",\n  \
             \"mission\": \"software-dev\",\n  \"slug\": \"{slug}\",\n  \"target_branch\": \"main\"\n}}\n"
        ),
    )?;
    std::fs::write(dir.join("spec.md"), "# Spec\n")?;
    std::fs::write(dir.join("plan.md"), "# Plan\n")?;
    std::fs::write(
        dir.join("tasks.md"),
        "# Tasks\n\n## WP01\n\n- [x] T001 one\n\n## WP02\n\n- [x] T002 two\n",
    )?;
    let mut log = String::new();
    for (i, id) in ["WP01", "WP02"].iter().enumerate() {
        std::fs::write(dir.join(format!("tasks/{id}-bench.md")), wp(id))?;
        log.push_str(&event(&slug, id, i + 1));
    }
    std::fs::write(dir.join("status.events.jsonl"), log)?;
    p.git(&["add", "-A"])?;
    p.git(&["commit", "-q", "-m", &format!("ready {slug}")])?;
    Ok(slug)
}

/// Times `accept --feature F --json` (plus `extra`) `n` times with
/// `program`, each on a fresh ready feature; the meta.json both CLIs leave
/// modified (the commit hash) is committed between runs, untimed.
pub fn time_accept(p: &Project, program: &Path, extra: &[&str], n: usize) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let slug = ready_feature(p)?;
        let mut cmd = p.command(program);
        cmd.args(["accept", "--feature", &slug, "--json"])
            .args(extra);
        samples.push(run_timed(&mut cmd, &p.log())?);
        p.git(&["add", "-A"])?;
        p.git(&["commit", "-q", "--allow-empty", "-m", "accept_commit"])?;
    }
    Ok(summarize(samples))
}
