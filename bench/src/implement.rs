//! `implement WPnn` as whole processes: a sparse worktree on its base, the
//! lane move and its commit, one fresh WP per run (each run makes a new
//! worktree), ours and (with `--python`) the Python spec-kitty-cli 2.1.3 on
//! the same project layout. Most of the time is `git` itself (worktree add,
//! sparse read-tree, commit), so the same git steps are also timed alone,
//! run directly: that is git's share, which no CLI can go below.

use crate::cli::{run, run_timed, Project};
use crate::stats::{summarize, Summary};
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

/// A project made by our `init` (as `planning` does) with feature
/// `001-bench` and `n` planned WPs without dependencies, all committed.
pub fn project(root: &Path, ours: &Path, name: &str, n: usize) -> Result<Project> {
    let p = crate::planning::project(root, ours, name)?;
    let feature = p.dir.join("kitty-specs/001-bench");
    std::fs::create_dir_all(feature.join("tasks"))?;
    std::fs::write(
        feature.join("meta.json"),
        "{\n  \"created_at\": \"2026-02-07T00:00:00+00:00\",\n  \"feature_number\": \"001\",\n  \"feature_slug\": \"001-bench\",\n  \"friendly_name\": \"bench\",\n  \"mission\": \"software-dev\",\n  \"slug\": \"001-bench\",\n  \"target_branch\": \"main\"\n}\n",
    )?;
    std::fs::write(feature.join("spec.md"), "# Spec\n")?;
    std::fs::write(feature.join("tasks.md"), "# Tasks\n")?;
    std::fs::write(p.dir.join("src.txt"), "the project's code\n")?;
    for i in 1..=n {
        std::fs::write(
            feature.join(format!("tasks/WP{i:02}-bench.md")),
            format!("---\nwork_package_id: WP{i:02}\ntitle: Bench\nlane: \"planned\"\ndependencies: []\nhistory:\n- timestamp: '2026-02-07T00:00:00Z'\n  lane: planned\n  agent: system\n  action: created\n---\n# WP{i:02}\n\n## Activity Log\n"),
        )?;
    }
    p.git(&["add", "-A"])?;
    p.git(&["commit", "-q", "-m", "feature"])?;
    Ok(p)
}

/// Times `implement WPnn` for WP01..WPn with `program`.
pub fn time_implement(p: &Project, program: &Path, n: usize) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for i in 1..=n {
        let mut cmd = p.command(program);
        cmd.args(["implement", &format!("WP{i:02}"), "--feature", "001-bench"]);
        samples.push(run_timed(&mut cmd, &p.log())?);
    }
    Ok(summarize(samples))
}

/// The git steps of one implement, run directly, `n` times: worktree add
/// on a new branch, the sparse checkout (two config writes, read-tree),
/// the base's commit, and a one-file commit in the main checkout.
pub fn time_git_alone(p: &Project, n: usize) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let branch = format!("git-only-{i}");
        let wt = p.dir.join(".worktrees").join(&branch);
        let wt_s = wt.to_string_lossy().into_owned();
        let file = p.dir.join(format!("git-only-{i}.txt"));
        let t = Instant::now();
        p.git(&["worktree", "add", "-q", "-b", &branch, &wt_s, "main"])?;
        let in_wt = |args: &[&str]| run(p.command(Path::new("git")).current_dir(&wt).args(args));
        let sparse = in_wt(&["rev-parse", "--git-path", "info/sparse-checkout"])?;
        in_wt(&["config", "core.sparseCheckout", "true"])?;
        in_wt(&["config", "core.sparseCheckoutCone", "false"])?;
        let sparse = wt.join(String::from_utf8_lossy(&sparse.stdout).trim());
        std::fs::create_dir_all(sparse.parent().unwrap_or(&wt))?;
        std::fs::write(&sparse, "/*\n!/kitty-specs/\n!/kitty-specs/**\n")?;
        in_wt(&["read-tree", "-mu", "HEAD"])?;
        p.git(&["rev-parse", "main"])?;
        std::fs::write(&file, "x\n")?;
        let rel = file.file_name().unwrap().to_string_lossy().into_owned();
        p.git(&["add", "--", &rel])?;
        p.git(&["commit", "-q", "-m", "git only", "--", &rel])?;
        samples.push(t.elapsed());
    }
    Ok(summarize(samples))
}
