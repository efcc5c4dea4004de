//! Whole-process timings of the command users type most: a lane change
//! (`spec-kitty agent tasks move-task`), ours and, side by side in the same
//! run, the Python `spec-kitty-cli==2.1.3` doing the same sequence.

use crate::floors::{self, DurableWrites};
use crate::stats::{summarize, Summary};
use anyhow::{bail, Context, Result};
use spec_kitty_e2e::{cmdline, Sandbox};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch project: a git repository with one empty commit in its own
/// [`Sandbox`] (`HOME`, `SPEC_KITTY_SYNC_HOME`, the tests' environment), so
/// nothing touches the real home, and whatever daemon served it is stopped
/// when it is dropped, whether its section succeeded or not.
pub struct Project {
    pub dir: PathBuf,
    pub sandbox: Sandbox,
}

impl Project {
    /// Repository `name` in a fresh sandbox under `root` (the work dir, on
    /// the file system measured).
    pub fn new(root: &Path, name: &str) -> Result<Project> {
        let sandbox = Sandbox::new_in(root);
        let dir = sandbox.git_repo(name, None);
        Ok(Project { dir, sandbox })
    }

    /// A command in this project with the sandbox's environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir);
        self.sandbox.env(&mut c);
        c
    }

    pub fn git(&self, args: &[&str]) -> Result<Output> {
        run(self.command(Path::new("git")).args(args))
    }

    /// Where [`run_timed`] puts the output of this project's commands.
    pub fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }
}

/// Runs a timed command to completion the way the floor's `/bin/true` is
/// run, and returns how long it took: stdin empty, stdout and stderr to
/// the file `log` (emptied first, untimed), not to pipes. A pipe wakes this
/// process for each write and again at the child's exit, about 0.1 ms on
/// this VM that the floor does not pay; through a file both sides are run
/// alike. A non-zero exit is an error with what the command printed.
pub fn run_timed(cmd: &mut Command, log: &Path) -> Result<Duration> {
    let out = std::fs::File::create(log).with_context(|| log.display().to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let t = Instant::now();
    let status = cmd.status().with_context(|| format!("spawning {cmd:?}"))?;
    let took = t.elapsed();
    if !status.success() {
        bail!(
            "{cmd:?} exited with {status}\noutput: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    Ok(took)
}

/// Runs a command to completion; a non-zero exit is an error with its output.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} exited with {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Sets `sync.auto_start` in the project's config (surgically, as users would).
pub fn set_auto_start(project: &Project, on: bool) -> Result<()> {
    let path = project.dir.join(".kittify/config.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let (from, to) = if on {
        ("auto_start: false", "auto_start: true")
    } else {
        ("auto_start: true", "auto_start: false")
    };
    if !text.contains(from) && !text.contains(to) {
        bail!("{} has no sync.auto_start line", path.display());
    }
    std::fs::write(&path, text.replace(from, to))?;
    Ok(())
}

/// Our project: `init --here`, `specify`, `tasks add` by our own CLI.
pub fn our_project(root: &Path, cli: &Path, name: &str) -> Result<Project> {
    let p = Project::new(root, name)?;
    run(p.command(cli).args(["init", "--here"]))?;
    run(p.command(cli).args(["specify", "bench-feature"]))?;
    run(p.command(cli).args(["tasks", "add", "Bench work package"]))?;
    Ok(p)
}

/// Stops the daemon that serves a project's home (auto-started by its
/// commands), so no benchmark leaves processes behind.
pub fn stop_daemon(p: &Project, cli: &Path) -> Result<()> {
    run(p.command(cli).args(["sync", "stop"]))?;
    Ok(())
}

/// Times `n` lane changes of WP01, planned → doing, as whole processes.
/// Before each run (untimed) the WP file is put back as it was, so every
/// run is the same real transition on a file of realistic size (its
/// history does not grow with `n`), and both CLIs accept the sequence.
pub fn time_move_task(p: &Project, program: &Path, extra: &[&str], n: usize) -> Result<Summary> {
    let args = cmdline::move_task("WP01", "doing", extra);
    Ok(time_on_wp01(p, program, &args, n, None)?.command)
}

/// A command's timings and, when asked for, its floor's, taken in turn.
pub struct Timed {
    pub command: Summary,
    /// One `/bin/true` spawn (run as the command is, [`run_timed`]) plus
    /// the command's durable writes replayed in-process
    /// ([`DurableWrites`]), sampled right before each run.
    pub floor: Option<Summary>,
}

/// Times `n` runs of `args`, a command that changes WP01, with the WP file
/// and the status files put back as they were and the page cache written
/// back before each run (untimed), as [`time_move_task`]. With `floor`,
/// each run is preceded by one sample of its floor, so that both see the
/// disk in the same state and a noisy minute moves both.
pub fn time_on_wp01(
    p: &Project,
    program: &Path,
    args: &[&str],
    n: usize,
    floor: Option<&DurableWrites>,
) -> Result<Timed> {
    let state = Wp01State::capture(p)?;
    if let Some(f) = floor {
        f.prepare().context("preparing the floor's scratch files")?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    let mut floor_samples: Vec<Duration> = Vec::with_capacity(n);
    let log = p.log();
    for i in 0..n {
        if let Some(f) = floor {
            floors::settle();
            let spawned = run_timed(&mut Command::new("/bin/true"), &log)?;
            let wrote = f.run(i).context("replaying the floor's writes")?;
            floor_samples.push(spawned + wrote);
        }
        state.restore()?;
        floors::settle();
        let mut cmd = p.command(program);
        cmd.args(args);
        samples.push(run_timed(&mut cmd, &log)?);
    }
    state.restore()?;
    Ok(Timed {
        command: summarize(samples),
        floor: floor.map(|_| summarize(floor_samples)),
    })
}

/// Where a command's event goes, for its floor: the spool (a new file and
/// its directory) or the daemon (one commit: an append and its fsync).
#[derive(Debug, Clone, Copy)]
pub enum Handoff {
    Spool,
    Daemon,
}

/// The durable writes a lane change of WP01 in `p` must make, replayed in
/// scratch files under `scratch` with the sizes of `p`'s own: the status
/// log's new line, `status.json` and the WP file (each fsynced, renamed,
/// their two directories fsynced), then the hand-off. `lane: false` keeps
/// only the WP file and its directory (`add-history`).
pub fn wp01_writes(
    p: &Project,
    scratch: &Path,
    lane: bool,
    handoff: Handoff,
) -> Result<DurableWrites> {
    use crate::floors::Durable;
    let wp = wp01_file(p)?;
    let feature = wp
        .parent()
        .and_then(Path::parent)
        .context("WP01 outside a feature")?;
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len() as usize);
    let log = std::fs::read_to_string(feature.join("status.events.jsonl"))
        .context("the floor needs the feature's status log: make one move first")?;
    let line = log.lines().last().map_or(400, |l| l.len() + 1);
    let (fdir, tdir) = (scratch.join("feature"), scratch.join("feature/tasks"));
    let mut steps = Vec::new();
    if lane {
        steps.push(Durable::Append {
            file: fdir.join("status.events.jsonl"),
            bytes: line,
        });
        steps.push(Durable::Replace {
            file: fdir.join("status.json"),
            bytes: size(&feature.join("status.json"))?,
        });
    }
    steps.push(Durable::Replace {
        file: tdir.join("WP01.md"),
        bytes: size(&wp)?,
    });
    if lane {
        steps.push(Durable::SyncDir(fdir.clone()));
    }
    steps.push(Durable::SyncDir(tdir));
    match handoff {
        Handoff::Spool => {
            let spool = scratch.join("spool");
            // An envelope as the CLI spools it (the seeding moves left
            // some): about a kilobyte of JSON.
            let spooled = std::fs::read_dir(p.sandbox.paths().spool_dir())
                .ok()
                .and_then(|d| d.flatten().find_map(|e| e.metadata().ok()))
                .map_or(1024, |m| m.len() as usize);
            steps.push(Durable::Create {
                dir: spool.clone(),
                bytes: spooled,
            });
            steps.push(Durable::SyncDir(spool));
        }
        Handoff::Daemon => steps.push(Durable::Append {
            file: scratch.join("daemon.wal"),
            bytes: 1024,
        }),
    }
    Ok(DurableWrites { steps })
}

/// Moves WP01 to doing and back (forced, with a reason), so that its
/// feature has a status log and every timed move appends to it, as all but
/// a feature's first move do.
pub fn seed_status_log(p: &Project, program: &Path) -> Result<()> {
    run(p
        .command(program)
        .args(cmdline::move_task("WP01", "doing", &["--no-auto-commit"])))?;
    run(p.command(program).args(cmdline::move_task(
        "WP01",
        "planned",
        &[
            "--force",
            "--reason",
            "bench: back to planned",
            "--no-auto-commit",
        ],
    )))?;
    Ok(())
}

/// WP01's file and its feature's status files (the event log and its
/// views) as they are now, to put back before each timed run: the log is
/// the truth of the lane, so restoring the WP file alone would make every
/// later move a no-op.
pub struct Wp01State {
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl Wp01State {
    pub fn capture(p: &Project) -> Result<Wp01State> {
        let wp = wp01_file(p)?;
        let feature = wp
            .parent()
            .and_then(Path::parent)
            .context("WP01 outside a feature")?
            .to_path_buf();
        let mut files = vec![(wp.clone(), Some(std::fs::read(&wp)?))];
        for f in ["status.events.jsonl", "status.json", "tasks.md"] {
            let path = feature.join(f);
            let bytes = std::fs::read(&path).ok();
            files.push((path, bytes));
        }
        Ok(Wp01State { files })
    }

    pub fn restore(&self) -> Result<()> {
        for (path, bytes) in &self.files {
            match bytes {
                Some(b) => std::fs::write(path, b)?,
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(())
    }
}

/// [`time_move_task`] with the project's daemon started and then
/// SIGSTOPped (SIGCONT and stopped afterwards, whatever happened); checks
/// that every move was spooled.
pub fn time_move_task_wedged(p: &Project, program: &Path, n: usize) -> Result<Summary> {
    let out = run(p.command(program).args(["sync", "start", "--json"]))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let pid = v["pid"]
        .as_u64()
        .with_context(|| format!("no pid in `sync start --json`: {v}"))?
        .to_string();
    let signal = |sig: &str| Command::new("kill").args([sig, &pid]).status();
    anyhow::ensure!(signal("-STOP")?.success(), "cannot SIGSTOP daemon {pid}");
    let before = spool_count(p);
    let timed = time_move_task(p, program, &[], n);
    let _ = signal("-CONT");
    stop_daemon(p, program)?;
    let s = timed?;
    anyhow::ensure!(
        spool_count(p) - before == n,
        "expected every move past the wedged daemon to be spooled"
    );
    Ok(s)
}

/// The WP01 file of the project's only feature.
pub fn wp01_file(p: &Project) -> Result<PathBuf> {
    for feature in std::fs::read_dir(p.dir.join("kitty-specs"))? {
        let tasks = feature?.path().join("tasks");
        for f in std::fs::read_dir(&tasks).into_iter().flatten() {
            let path = f?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("WP01"))
            {
                return Ok(path);
            }
        }
    }
    bail!("no WP01 file under {}", p.dir.join("kitty-specs").display())
}

/// Counts the spool files of a home, to check each move emitted one event.
pub fn spool_count(p: &Project) -> usize {
    std::fs::read_dir(p.sandbox.paths().spool_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// The Python CLI 2.1.3: the one pinned install the end-to-end tests use
/// too, made (or found up to date) by `scripts/setup-python-cli`, which
/// prints the venv's path (`$SK_PYTHON_VENV`, else `target/pyvenv-2.1.3`).
pub fn python_cli() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run(Command::new(root.join("scripts/setup-python-cli")).current_dir(&root))?;
    let venv = String::from_utf8(out.stdout).context("setup-python-cli output")?;
    let venv = root.join(venv.trim());
    Ok(venv.join("bin/spec-kitty"))
}

/// A project laid out for the Python CLI: its own `init`, then the same
/// feature and WP files ours would have.
pub fn python_project(root: &Path, py: &Path, name: &str, n_wps: usize) -> Result<Project> {
    let p = Project::new(root, name)?;
    run(p
        .command(py)
        .args(["init", "--here", "--ai", "claude", "--no-git", "--force"]))?;
    let feature = p.dir.join("kitty-specs/001-bench-feature");
    std::fs::create_dir_all(feature.join("tasks"))?;
    std::fs::write(
        feature.join("meta.json"),
        r#"{"feature_number":"001","slug":"001-bench-feature","friendly_name":"Bench feature","mission":"software-dev","target_branch":"main","vcs":"git","created_at":"2026-02-07T00:00:00Z"}"#,
    )?;
    std::fs::write(feature.join("spec.md"), "# Spec\n")?;
    std::fs::write(feature.join("tasks.md"), "# Tasks\n")?;
    // Python 2.1.3 keeps its own status log beside the files, so a restored
    // file does not reset its state: it gets one fresh WP per timed move.
    for i in 1..=n_wps {
        std::fs::write(
            feature.join(format!("tasks/WP{i:02}-bench-work-package.md")),
            format!("---\nwork_package_id: WP{i:02}\ntitle: Bench work package\nlane: \"planned\"\ndependencies: []\nhistory:\n- timestamp: '2026-02-07T00:00:00Z'\n  lane: planned\n  agent: system\n  action: created\n---\n# WP{i:02}\n"),
        )?;
    }
    p.git(&["add", "-A"])?;
    p.git(&["commit", "-q", "-m", "feature"])?;
    Ok(p)
}

/// Times planned → doing of WP01..WPn, one distinct WP per run (how the
/// Python CLI, whose state is not only in the files, is measured).
pub fn time_distinct_moves(
    p: &Project,
    program: &Path,
    extra: &[&str],
    n: usize,
) -> Result<Summary> {
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for i in 1..=n {
        let wp = format!("WP{i:02}");
        let mut cmd = p.command(program);
        cmd.args(cmdline::move_task(&wp, "doing", extra));
        samples.push(run_timed(&mut cmd, &p.log())?);
    }
    Ok(summarize(samples))
}

/// `init --here --ai claude --force` in a fresh git repository each time
/// (one commit, so a non-empty directory as users have): the agent command
/// files, config and `.gitignore`, commit included where the CLI makes one.
/// `cleanup` runs after each sample, untimed (Python's `init` leaves a
/// dashboard process behind).
pub fn time_init(
    root: &Path,
    program: &Path,
    tag: &str,
    n: usize,
    cleanup: &dyn Fn(&Project),
) -> Result<Summary> {
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    // Kept until the last run: no run pays for removing another's files.
    let mut done = Vec::with_capacity(n);
    for i in 0..n {
        let p = Project::new(root, &format!("{tag}-init-{i}"))?;
        let mut cmd = p.command(program);
        cmd.args(spec_kitty_e2e::cmdline::INIT_CLAUDE_HERE);
        let r = run_timed(&mut cmd, &p.log());
        cleanup(&p);
        samples.push(r?);
        anyhow::ensure!(
            p.dir
                .join(".claude/commands/spec-kitty.specify.md")
                .is_file(),
            "{tag}: init wrote no claude command files"
        );
        done.push(p);
    }
    Ok(summarize(samples))
}
