//! `merge` of a feature with two reviewed work packages, as whole
//! processes: ours and (with `--python`) 2.1.3's on the same prepared
//! state, with how much of each run is `git` itself.
//!
//! Every sample gets a fresh repository, prepared untimed by our CLI
//! (planned, implemented in a worktree per WP, one commit of work each,
//! approved): a merge consumes its branches and worktrees, so it cannot be
//! repeated in place, and worktrees do not survive a copy. Git's share is
//! read from git's own trace (`GIT_TRACE2_EVENT`): the sum of the run times
//! (`t_abs` at exit) of the git processes the command started itself
//! (git's own children are inside their parent's time).

use crate::cli::{run, Project};
use crate::planning;
use crate::stats::{summarize, Summary};
use anyhow::{Context, Result};
use spec_kitty_e2e::cmdline;
use std::path::Path;
use std::time::{Duration, Instant};

const FEATURE: &str = "001-bench-merge";

/// p50/p99 of whole `merge` runs, of the git time inside them, and of the
/// rest (run time minus git time, per run): the command's own cost.
pub struct Timing {
    pub total: Summary,
    pub git: Summary,
    pub own: Summary,
    /// Git processes the command started, per run (the most seen).
    pub git_processes: usize,
}

/// A project whose feature has WP01 and WP02 implemented (a committed file
/// each, in their worktrees) and approved: ready to merge.
fn prepared(root: &Path, ours: &Path, name: &str) -> Result<Project> {
    let p = planning::project(root, ours, name)?;
    let sk = |args: &[&str]| run(p.command(ours).args(args)).map(drop);
    sk(&[
        "agent",
        "feature",
        "create-feature",
        "bench-merge",
        "--json",
    ])?;
    let on = ["--feature", FEATURE, "--json"];
    sk(&[&["agent", "feature", "setup-plan"][..], &on].concat())?;
    planning::write_tasks(&p.dir.join("kitty-specs").join(FEATURE))?;
    sk(&[&["agent", "feature", "finalize-tasks"][..], &on].concat())?;
    // The agent commits its spec: merge wants a clean tree.
    p.git(&["add", "-A"])?;
    p.git(&["commit", "-q", "-m", "spec"])?;
    for wp in ["WP01", "WP02"] {
        sk(&["implement", wp, "--feature", FEATURE])?;
        let wt = p.dir.join(".worktrees").join(format!("{FEATURE}-{wp}"));
        std::fs::write(wt.join(format!("{wp}.txt")), format!("work of {wp}\n"))?;
        for args in [vec!["add", "-A"], vec!["commit", "-q", "-m", "work"]] {
            run(p.command(Path::new("git")).current_dir(&wt).args(&args))?;
        }
        let feature = ["--feature", FEATURE];
        sk(&cmdline::move_task(
            wp,
            "for_review",
            &[&feature[..], &["--agent", "bench"]].concat(),
        ))?;
        sk(&cmdline::move_task(
            wp,
            "approved",
            &[&feature[..], &["--reviewer", "bench"]].concat(),
        ))?;
    }
    Ok(p)
}

/// Times `n` merges by `program`, each on a freshly prepared project
/// (prepared by `ours`); checks each left both WPs' work on main.
pub fn time_merge(root: &Path, ours: &Path, program: &Path, tag: &str, n: usize) -> Result<Timing> {
    let (mut total, mut git, mut own) = (Vec::new(), Vec::new(), Vec::new());
    let mut git_processes = 0;
    // Kept until the last run: no run pays for removing another's files.
    let mut done = Vec::with_capacity(n);
    for i in 0..n {
        let p = prepared(root, ours, &format!("{tag}-merge-{i}"))?;
        let trace = p.sandbox.home().join("git-trace2.json");
        let mut cmd = p.command(program);
        cmd.args(["merge", "--feature", FEATURE])
            .env("GIT_TRACE2_EVENT", &trace);
        let t = Instant::now();
        run(&mut cmd)?;
        let elapsed = t.elapsed();
        let (in_git, procs) = git_time(&trace)?;
        git_processes = git_processes.max(procs);
        total.push(elapsed);
        git.push(in_git);
        own.push(elapsed.saturating_sub(in_git));
        for wp in ["WP01", "WP02"] {
            anyhow::ensure!(
                p.dir.join(format!("{wp}.txt")).is_file(),
                "{tag}: merge did not bring {wp}'s work to main"
            );
        }
        done.push(p);
    }
    Ok(Timing {
        total: summarize(total),
        git: summarize(git),
        own: summarize(own),
        git_processes,
    })
}

/// The summed run time and the number of the top-level git processes in a
/// trace2 event file (a nested git's session id has its parent's as a `/`
/// prefix). Git's clock starts in its `main`: the cost of spawning it (fork,
/// exec, loading) is in "the rest".
fn git_time(trace: &Path) -> Result<(Duration, usize)> {
    let text = std::fs::read_to_string(trace).with_context(|| {
        format!(
            "{}: no git trace (did the command run git?)",
            trace.display()
        )
    })?;
    let (mut secs, mut procs) = (0.0, 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}: not JSON: {line}", trace.display()))?;
        if v["event"] == "atexit" && !v["sid"].as_str().unwrap_or("/").contains('/') {
            secs += v["t_abs"].as_f64().unwrap_or(0.0);
            procs += 1;
        }
    }
    Ok((Duration::from_secs_f64(secs), procs))
}
