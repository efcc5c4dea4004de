//! `spec-kitty-bench`: every performance figure of the README, reproducible
//! with one command (`scripts/bench`).
//!
//! It drives release builds of the real binaries as whole processes,
//! repeats each measurement, and reports medians and p99 next to the
//! physical floors it measures in the same run (process spawn, socket round
//! trip, fsync), so a figure reads as "x times the floor" on whatever noisy
//! machine it ran on. It prints one table and writes the same as JSON.

mod accept;
mod cli;
mod daemon;
mod dashboard;
mod floors;
mod implement;
mod merge;
mod planning;
mod saas;
mod stats;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};
use spec_kitty_e2e::cmdline;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmark harness over whole processes: medians, p99 and ratios to this machine's floors"
)]
struct Args {
    /// Small repetition counts and backlogs: a smoke run of every section
    /// (seconds instead of minutes).
    #[arg(long)]
    quick: bool,
    /// Also run the Python spec-kitty-cli==2.1.3 through the same command
    /// sequence: the tests' pinned venv (`scripts/setup-python-cli`,
    /// made on first use).
    #[arg(long)]
    python: bool,
    /// Only the dashboard section (and the floors): seconds, not minutes.
    #[arg(long)]
    only_dashboard: bool,
    /// Only the floors and the CLI sections (lane change, add-history,
    /// init, planning; with `--python` beside 2.1.3): for tuning the
    /// command path without the daemon and server runs.
    #[arg(long, conflicts_with = "only_dashboard")]
    only_cli: bool,
    /// Largest daemon backlog to measure (scaling runs 10k, 100k, ... up to it).
    #[arg(long, default_value_t = 1_000_000)]
    backlog: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results/bench.json")]
    out: PathBuf,
    /// Directory for scratch projects.
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
}

/// The binaries next to this one (`target/release/`).
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("no parent dir")?.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found; run through scripts/bench, which builds it",
        path.display()
    );
    Ok(path)
}

struct Report {
    rows: Vec<(String, String, String, String)>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn add(&mut self, key: &str, label: &str, value: String, floor: String, json_value: Value) {
        println!("  {label:<52} {value:>26}  {floor}");
        self.rows
            .push((key.to_string(), label.to_string(), value, floor));
        self.json.insert(key.to_string(), json_value);
    }
}

/// The whole hand-off budget of an emitting command (README, CONTRACT):
/// daemon path and spool fallback together.
const HANDOFF_BUDGET_MS: f64 = 1500.0;

/// The dashboard's answer time target on the corpus (issue 13).
const DASHBOARD_TARGET_MS: f64 = 50.0;

fn fmt_ms(s: &stats::Summary) -> String {
    format!("p50 {:.2} ms  p99 {:.2} ms", s.p50_ms, s.p99_ms)
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    let scale = if args.quick { 10 } else { 1 };
    // Commands run with a scratch project as their current directory, so
    // every path handed to them (the Python venv's `spec-kitty` above all)
    // must be absolute: resolve the work dir once, here.
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating --work-dir {}", args.work_dir.display()))?;
    args.work_dir = std::fs::canonicalize(&args.work_dir)
        .with_context(|| format!("resolving --work-dir {}", args.work_dir.display()))?;
    let scratch = tempfile::tempdir_in(&args.work_dir)?;
    let mut r = Report {
        rows: Vec::new(),
        json: serde_json::Map::new(),
    };

    println!(
        "spec-kitty-bench {} — {} cores",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("\nfloors (this machine, this run)");
    let spawn = floors::spawn_noop(500 / scale);
    r.add(
        "floor_spawn",
        "no-op process spawn (/bin/true)",
        fmt_ms(&spawn),
        String::new(),
        json!(spawn),
    );
    let rtt = floors::socket_round_trip(20_000 / scale);
    r.add(
        "floor_socket_rtt",
        "Unix socket round trip (1 byte)",
        format!(
            "p50 {:.1} µs  p99 {:.1} µs",
            rtt.p50_ms * 1e3,
            rtt.p99_ms * 1e3
        ),
        String::new(),
        json!(rtt),
    );
    let fsync = floors::fsync(500 / scale, scratch.path());
    r.add(
        "floor_fsync",
        "4 KiB write + fsync",
        fmt_ms(&fsync),
        String::new(),
        json!(fsync),
    );
    if args.only_dashboard {
        dashboard_section(&mut r, scratch.path(), &sibling("spec-kitty")?, scale)?;
        write_json(&args.out, &r)?;
        println!("\nwritten to {}", args.out.display());
        return Ok(());
    }
    let x_spawn = |s: &stats::Summary| format!("{:.1}x spawn floor", s.p50_ms / spawn.p50_ms);
    // A durable command cannot beat one process spawn plus the durable
    // writes its path must make. Its floor is exactly that: `/bin/true`
    // spawned, then those writes replayed in-process on files of the same
    // sizes, sampled right before each run of the command (so a noisy
    // minute moves both). The `x fsync probe` figure beside it is the
    // older, looser floor: the same count of 4 KiB appends.
    let x_floor = |t: &cli::Timed, w: &floors::DurableWrites| {
        let f = t.floor.as_ref().expect("timed with its floor");
        let probe = spawn.p50_ms + w.fsyncs() as f64 * fsync.p50_ms;
        format!(
            "{:.2}x floor (spawn + its {} fsyncs = {:.2} ms; {:.1}x the fsync probe's {probe:.2} ms)",
            t.command.p50_ms / f.p50_ms,
            w.fsyncs(),
            f.p50_ms,
            t.command.p50_ms / probe,
        )
    };
    let timed_json = |t: &cli::Timed| json!({"summary": t.command, "floor": t.floor});

    println!("\nCLI: one emitting command (agent tasks move-task: a lane change; add-history)");
    let cli_bin = sibling("spec-kitty")?;
    let ours = cli::our_project(scratch.path(), &cli_bin, "ours-spool")?;
    // Setting the project up auto-started a daemon; this figure is the
    // no-daemon path, so stop it and opt the project out of auto-start.
    cli::stop_daemon(&ours, &cli_bin)?;
    cli::set_auto_start(&ours, false)?;
    cli::seed_status_log(&ours, &cli_bin)?;
    let before = cli::spool_count(&ours);
    let n_moves = 300 / scale;
    let spool_writes = cli::wp01_writes(
        &ours,
        &scratch.path().join("floor-spool"),
        true,
        cli::Handoff::Spool,
    )?;
    let no_commit = cmdline::move_task("WP01", "doing", &["--no-auto-commit"]);
    let spool = cli::time_on_wp01(&ours, &cli_bin, &no_commit, n_moves, Some(&spool_writes))?;
    anyhow::ensure!(
        cli::spool_count(&ours) - before == n_moves,
        "expected exactly one spooled event per move"
    );
    r.add(
        "cli_move_task_no_daemon",
        "ours, no daemon (event spooled, fsynced)",
        fmt_ms(&spool.command),
        // The status log; status.json, the WP file and their two
        // directories; the spool file and its directory.
        x_floor(&spool, &spool_writes),
        timed_json(&spool),
    );
    // The same with the git commit of the status files (2.1.3's default).
    let committed = cli::time_move_task(&ours, &cli_bin, &[], n_moves)?;
    r.add(
        "cli_move_task_commit_no_daemon",
        "ours, no daemon, with the auto-commit",
        fmt_ms(&committed),
        format!(
            "the commit costs {:.2} ms at p50",
            committed.p50_ms - spool.command.p50_ms
        ),
        json!(committed),
    );

    let syncd = sibling("spec-kitty-syncd")?;
    let (warm, warm_note, warm_writes, note_writes) = {
        // Setting the project up auto-started the daemon: it is warm.
        let p = cli::our_project(scratch.path(), &cli_bin, "ours-warm")?;
        cli::run(p.command(&cli_bin).args(["sync", "start"]))?;
        let s = cli::seed_status_log(&p, &cli_bin).and_then(|()| {
            let floor_dir = scratch.path().join("floor-warm");
            let lane = cli::wp01_writes(&p, &floor_dir, true, cli::Handoff::Daemon)?;
            let note = cli::wp01_writes(&p, &floor_dir, false, cli::Handoff::Daemon)?;
            let m = cli::time_on_wp01(&p, &cli_bin, &no_commit, n_moves, Some(&lane))?;
            let args = cmdline::add_history("WP01", "bench", &[]);
            let h = cli::time_on_wp01(&p, &cli_bin, &args, n_moves, Some(&note))?;
            Ok((m, h, lane, note))
        });
        cli::stop_daemon(&p, &cli_bin)?;
        let s = s?;
        anyhow::ensure!(
            cli::spool_count(&p) == 0,
            "warm run spooled events instead of handing them to the daemon"
        );
        s
    };
    r.add(
        "cli_move_task_warm_daemon",
        "ours, warm daemon (durable ack)",
        fmt_ms(&warm.command),
        // The status log, status.json and the WP file (+ their
        // directories), the daemon's commit.
        x_floor(&warm, &warm_writes),
        timed_json(&warm),
    );
    r.add(
        "cli_add_history_warm_daemon",
        "ours, add-history, warm daemon (durable ack)",
        fmt_ms(&warm_note.command),
        // The WP file, its directory, the daemon's commit.
        x_floor(&warm_note, &note_writes),
        timed_json(&warm_note),
    );

    // A wedged daemon (SIGSTOPped: it holds its socket and lock but never
    // answers): the command must still finish within the hand-off budget,
    // spooling the event after the daemon's share of the wait. Tests check
    // the behaviour (e2e/tests/it/handoff.rs); the time is measured here.
    let n_wedged = (20 / scale).max(5);
    let wedged = cli::time_move_task_wedged(
        &cli::our_project(scratch.path(), &cli_bin, "ours-wedged")?,
        &cli_bin,
        n_wedged,
    )?;
    r.add(
        "cli_move_task_wedged_daemon",
        "ours, SIGSTOPped daemon (spooled after the wait)",
        fmt_ms(&wedged),
        format!(
            "budget {HANDOFF_BUDGET_MS:.0} ms: p99 {}",
            if wedged.p99_ms <= HANDOFF_BUDGET_MS {
                "within"
            } else {
                "OVER"
            }
        ),
        json!({"summary": wedged, "budget_ms": HANDOFF_BUDGET_MS}),
    );

    let init = cli::time_init(
        scratch.path(),
        &cli_bin,
        "ours",
        (30 / scale).max(5),
        &|_| {},
    )?;
    r.add(
        "init_ai_claude",
        "init --here --ai claude (15 command files)",
        fmt_ms(&init),
        x_spawn(&init),
        json!(init),
    );

    if args.python {
        let py = cli::python_cli()?;
        // Python's `init` starts a dashboard: stop it by the pid it records.
        let stop_dashboard = |p: &cli::Project| {
            let record =
                std::fs::read_to_string(p.dir.join(".kittify/.dashboard")).unwrap_or_default();
            // Lines: url, port, [token], [pid]: the pid is a last line
            // after the port, never the port itself.
            let lines: Vec<&str> = record.lines().collect();
            if let Some(pid) = lines
                .get(2..)
                .and_then(|l| l.last())
                .and_then(|l| l.trim().parse::<u32>().ok())
            {
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
        };
        let py_init = cli::time_init(
            scratch.path(),
            &py,
            "python",
            (10 / scale).max(3),
            &stop_dashboard,
        )?;
        r.add(
            "python_init_ai_claude",
            "Python 2.1.3 init --here --ai claude",
            fmt_ms(&py_init),
            x_spawn(&py_init),
            json!(py_init),
        );
        let ratio = py_init.p50_ms / init.p50_ms;
        r.add(
            "python_over_ours_init",
            "ratio Python / ours (init --ai), p50",
            format!("{ratio:.0}x"),
            String::new(),
            json!(ratio),
        );
        let n_py = (40 / scale).max(5);
        let pp = cli::python_project(scratch.path(), &py, "python", n_py)?;

        let py_s = cli::time_distinct_moves(
            &pp,
            &py,
            &["--no-auto-commit", "--feature", "001-bench-feature"],
            n_py,
        );
        // Python's `init` leaves a dashboard server running for the project.
        let _ = std::process::Command::new("pkill")
            .arg("-f")
            .arg(&pp.dir)
            .status();
        let py_s = py_s?;
        r.add(
            "python_move_task",
            "Python spec-kitty-cli 2.1.3",
            fmt_ms(&py_s),
            x_spawn(&py_s),
            json!(py_s),
        );
        let ratio = py_s.p50_ms / spool.command.p50_ms;
        r.add(
            "python_over_ours_no_daemon",
            "ratio Python / ours (no daemon), p50",
            format!("{ratio:.0}x"),
            String::new(),
            json!(ratio),
        );
        let ratio_w = py_s.p50_ms / warm.command.p50_ms;
        r.add(
            "python_over_ours_warm",
            "ratio Python / ours (warm daemon), p50",
            format!("{ratio_w:.0}x"),
            String::new(),
            json!(ratio_w),
        );
    }

    println!("\nCLI: planning (create-feature, setup-plan, finalize-tasks; each commits)");
    {
        let n = (40 / scale).max(5);
        let p = planning::project(scratch.path(), &cli_bin, "ours-planning")?;
        let ours_t = planning::time_planning(&p, &cli_bin, &[], n)?;
        let bare = planning::time_planning(&p, &cli_bin, &["--no-auto-commit"], n)?;
        let py_t = if args.python {
            let py = cli::python_cli()?;
            let pp = planning::project(scratch.path(), &cli_bin, "python-planning")?;
            Some(planning::time_planning(&pp, &py, &[], (n / 2).max(3))?)
        } else {
            None
        };
        for (key, label, o, b, py) in [
            (
                "create_feature",
                "create-feature",
                &ours_t.create,
                &bare.create,
                py_t.as_ref().map(|t| &t.create),
            ),
            (
                "setup_plan",
                "setup-plan",
                &ours_t.plan,
                &bare.plan,
                py_t.as_ref().map(|t| &t.plan),
            ),
            (
                "finalize_tasks",
                "finalize-tasks",
                &ours_t.finalize,
                &bare.finalize,
                py_t.as_ref().map(|t| &t.finalize),
            ),
        ] {
            r.add(
                &format!("cli_{key}"),
                &format!("ours, {label} (commit included)"),
                fmt_ms(o),
                format!(
                    "git's share {:.1} ms ({:.0}%)",
                    o.p50_ms - b.p50_ms,
                    100.0 * (o.p50_ms - b.p50_ms) / o.p50_ms
                ),
                json!({"with_commit": o, "no_auto_commit": b}),
            );
            if let Some(py) = py {
                r.add(
                    &format!("python_{key}"),
                    &format!("Python 2.1.3, {label}"),
                    fmt_ms(py),
                    format!("{:.0}x ours", py.p50_ms / o.p50_ms),
                    json!(py),
                );
            }
        }
    }
    println!("\nCLI: implement (sparse worktree, lane move, commit; a new WP per run)");
    {
        let n = (30 / scale).max(3);
        let p = implement::project(scratch.path(), &cli_bin, "ours-implement", n)?;
        let ours_t = implement::time_implement(&p, &cli_bin, n)?;
        let git_t = implement::time_git_alone(&p, n)?;
        r.add(
            "cli_implement",
            "ours, implement WPnn (commit included)",
            fmt_ms(&ours_t),
            format!(
                "git alone {:.1} ms ({:.0}%)",
                git_t.p50_ms,
                100.0 * git_t.p50_ms / ours_t.p50_ms
            ),
            json!({"implement": ours_t, "git_steps_alone": git_t}),
        );
        if args.python {
            let py = cli::python_cli()?;
            let m = (n / 2).max(3);
            let pp = implement::project(scratch.path(), &cli_bin, "python-implement", m)?;
            let py_t = implement::time_implement(&pp, &py, m)?;
            r.add(
                "python_implement",
                "Python 2.1.3, implement WPnn",
                fmt_ms(&py_t),
                format!(
                    "{:.0}x ours; {:.1}x ours without git",
                    py_t.p50_ms / ours_t.p50_ms,
                    (py_t.p50_ms - git_t.p50_ms) / (ours_t.p50_ms - git_t.p50_ms).max(0.1)
                ),
                json!(py_t),
            );
        }
    }
    println!("\nCLI: accept (readiness checks, meta.json record, commit)");
    {
        let n = (40 / scale).max(5);
        let p = planning::project(scratch.path(), &cli_bin, "ours-accept")?;
        let ours = accept::time_accept(&p, &cli_bin, &[], n)?;
        let checks = accept::time_accept(&p, &cli_bin, &["--no-commit"], n)?;
        r.add(
            "cli_accept",
            "ours, accept (commit included)",
            fmt_ms(&ours),
            format!(
                "record + commit {:.1} ms ({:.0}%)",
                ours.p50_ms - checks.p50_ms,
                100.0 * (ours.p50_ms - checks.p50_ms) / ours.p50_ms
            ),
            json!({"with_commit": ours, "no_commit": checks}),
        );
        if args.python {
            let py = cli::python_cli()?;
            let pp = planning::project(scratch.path(), &cli_bin, "python-accept")?;
            let py_t = accept::time_accept(&pp, &py, &[], (n / 2).max(3))?;
            r.add(
                "python_accept",
                "Python 2.1.3, accept",
                fmt_ms(&py_t),
                format!("{:.0}x ours", py_t.p50_ms / ours.p50_ms),
                json!(py_t),
            );
        }
    }
    merge_section(
        &mut r,
        scratch.path(),
        &cli_bin,
        scale,
        args.python,
        spawn.p50_ms,
    )?;
    if args.only_cli {
        write_json(&args.out, &r)?;
        println!("\nwritten to {}", args.out.display());
        return Ok(());
    }
    dashboard_section(&mut r, scratch.path(), &cli_bin, scale)?;

    println!("\ndaemon");
    let cold = daemon::cold_start(&syncd, scratch.path(), 30 / scale.min(3))?;
    r.add(
        "daemon_cold_start_to_ack",
        "cold start to first durable ack",
        fmt_ms(&cold),
        x_spawn(&cold),
        json!(cold),
    );

    let sandbox = spec_kitty_e2e::Sandbox::new_in(scratch.path());
    let d = daemon::Daemon::start(&syncd, &sandbox, &[])?;
    let idle = d.rss_kib()?;
    r.add(
        "daemon_rss_idle_kib",
        "RSS idle",
        format!("{:.1} MiB", idle as f64 / 1024.0),
        String::new(),
        json!(idle),
    );
    let per = 20_000 / scale;
    // (clients, emits in flight per connection): a CLI has one in flight;
    // a batching client keeps a window open (answers come in request order).
    for (clients, window) in [(1usize, 1usize), (4, 1), (16, 1), (16, 32)] {
        let events = if window == 1 { per / 2 } else { per * 2 };
        let t = daemon::ingest(&d.paths, clients, events / clients, window)?;
        let floor = format!(
            "ack p50 {:.0} µs = {:.1}x fsync",
            t.ack.p50_ms * 1e3,
            t.ack.p50_ms / fsync.p50_ms
        );
        r.add(
            &format!("ingest_{clients}_clients_window_{window}"),
            &format!("durable ingest, {clients} client(s) x {window} in flight"),
            format!("{:.0} events/s", t.events_per_sec),
            floor,
            json!(t),
        );
    }
    let loaded = d.rss_kib()?;
    {
        // The same 16 one-in-flight clients against a daemon that commits
        // each event on its own: what group commit buys.
        let sandbox = spec_kitty_e2e::Sandbox::new_in(scratch.path());
        let single = daemon::Daemon::start(&syncd, &sandbox, &["--no-group-commit"])?;
        let t = daemon::ingest(&single.paths, 16, per / 32, 1)?;
        r.add(
            "ingest_16_clients_one_commit_per_event",
            "durable ingest, 16 clients x 1, one commit per event",
            format!("{:.0} events/s", t.events_per_sec),
            format!("ack p50 {:.0} µs", t.ack.p50_ms * 1e3),
            json!(t),
        );
    }
    r.add(
        "daemon_rss_after_load_kib",
        "RSS after ingest load",
        format!("{:.1} MiB", loaded as f64 / 1024.0),
        String::new(),
        json!(loaded),
    );
    drop(d);

    // Scaling: ingest rate and memory as the backlog grows 10x at a time.
    let mut size = 10_000usize;
    let max = if args.quick { 20_000 } else { args.backlog };
    let sandbox = spec_kitty_e2e::Sandbox::new_in(scratch.path());
    let d = daemon::Daemon::start(&syncd, &sandbox, &[])?;
    let mut stored = 0usize;
    while size <= max {
        let add = size - stored;
        let t = daemon::ingest(&d.paths, 16, add.div_ceil(16), 32)?;
        stored += t.events;
        let rss = d.rss_kib()?;
        let label = format!("backlog {stored}: ingest rate, RSS");
        r.add(
            &format!("backlog_{size}"),
            &label,
            format!("{:.0} ev/s, {:.1} MiB", t.events_per_sec, rss as f64 / 1024.0),
            format!("store {:.0} MiB", daemon::store_bytes(&d.paths) as f64 / 1_048_576.0),
            json!({"events": stored, "ingest": t, "rss_kib": rss, "store_bytes": daemon::store_bytes(&d.paths)}),
        );
        size *= 10;
    }
    drop(d);

    println!("\ndelivery to the reference server (loopback)");
    let server = saas::Server::start(&sibling("spec-kitty-refserver")?)?;
    {
        let p = cli::our_project(scratch.path(), &cli_bin, "saas-live")?;
        saas::login(&p, &cli_bin, &server)?;
        // The project's sandbox stops its daemon, whatever happens here.
        let lat = saas::latency(&p, &cli_bin, &server, 200 / scale)?;
        r.add(
            "emit_to_server_latency",
            "CLI start → stored at the server",
            fmt_ms(&lat),
            x_spawn(&lat),
            json!(lat),
        );
        let rate = saas::live_rate(&p, &server, 20_000 / scale)?;
        r.add(
            "realtime_send_rate",
            "real-time sending, connected daemon",
            format!("{rate:.0} events/s"),
            String::new(),
            json!(rate),
        );
    }
    {
        let p = cli::our_project(scratch.path(), &cli_bin, "saas-backlog")?;
        let n = if args.quick { 10_000 } else { 100_000 };
        let rate = saas::drain_rate(&p, &cli_bin, &server, n)?;
        r.add(
            "backlog_drain_rate",
            &format!("backlog of {n} drained after login (batch)"),
            format!("{rate:.0} events/s"),
            String::new(),
            json!(rate),
        );
    }
    drop(server);

    write_json(&args.out, &r)?;
    println!("\nwritten to {}", args.out.display());
    Ok(())
}

/// The local dashboard on the shared corpus (skipped without the corpus).
/// `merge` of a feature with two reviewed WPs, ours and (with `--python`)
/// 2.1.3's, with how much of it is `git` itself, and how much of the rest
/// spawning that many processes costs on this machine (`spawn_ms`, the
/// no-op spawn floor of this run).
fn merge_section(
    r: &mut Report,
    scratch: &Path,
    cli_bin: &Path,
    scale: usize,
    python: bool,
    spawn_ms: f64,
) -> Result<()> {
    println!("\nCLI: merge (a feature with 2 reviewed WPs, each run on a fresh repository)");
    let n = (20 / scale).max(3);
    let ours_t = merge::time_merge(scratch, cli_bin, cli_bin, "ours", n)?;
    let git_share = |t: &merge::Timing| {
        format!(
            "git {:.1} ms of it ({:.0}%, {} git runs; spawning them ~{:.0} ms), the rest {:.1} ms",
            t.git.p50_ms,
            100.0 * t.git.p50_ms / t.total.p50_ms,
            t.git_processes,
            t.git_processes as f64 * spawn_ms,
            t.own.p50_ms
        )
    };
    r.add(
        "cli_merge",
        "ours, merge (merges, done commits, worktrees, branches)",
        fmt_ms(&ours_t.total),
        git_share(&ours_t),
        json!({
            "total": ours_t.total,
            "git": ours_t.git,
            "without_git": ours_t.own,
            "git_processes": ours_t.git_processes
        }),
    );
    if python {
        let py = cli::python_cli()?;
        let py_t = merge::time_merge(scratch, cli_bin, &py, "python", (n / 4).max(3))?;
        r.add(
            "python_merge",
            "Python 2.1.3, merge",
            fmt_ms(&py_t.total),
            git_share(&py_t),
            json!({
                "total": py_t.total,
                "git": py_t.git,
                "without_git": py_t.own,
                "git_processes": py_t.git_processes
            }),
        );
        let ratio = py_t.total.p50_ms / ours_t.total.p50_ms;
        let own_ratio = py_t.own.p50_ms / ours_t.own.p50_ms;
        r.add(
            "python_over_ours_merge",
            "ratio Python / ours (merge), p50",
            format!("{ratio:.1}x"),
            format!("without git: {own_ratio:.0}x"),
            json!({"total": ratio, "without_git": own_ratio}),
        );
    }
    Ok(())
}

fn dashboard_section(r: &mut Report, scratch: &Path, cli_bin: &Path, scale: usize) -> Result<()> {
    match dashboard::corpus() {
        None => println!("\ndashboard: skipped (no ../shared/corpus beside the repository)"),
        Some(corpus) => {
            println!("\ndashboard (spec-kitty dashboard, the shared corpus: 29 features, 166 WPs)");
            let d = dashboard::Dashboard::start(scratch, cli_bin, &corpus)?;
            let n = 200 / scale;
            let target = |s: &stats::Summary| {
                format!(
                    "target 50 ms: p99 {}",
                    if s.p99_ms <= DASHBOARD_TARGET_MS {
                        "within"
                    } else {
                        "OVER"
                    }
                )
            };
            let (page, page_bytes) = d.time_get("/", n)?;
            r.add(
                "dashboard_page",
                &format!("GET / (the page, {page_bytes} B)"),
                fmt_ms(&page),
                target(&page),
                json!({"summary": page, "bytes": page_bytes}),
            );
            let (board, board_bytes) = d.time_get("/api/board", n)?;
            r.add(
                "dashboard_board",
                &format!("GET /api/board (every card, {} KiB)", board_bytes / 1024),
                fmt_ms(&board),
                target(&board),
                json!({"summary": board, "bytes": board_bytes}),
            );
            let live = d.time_to_page((40 / scale).max(4))?;
            r.add(
                "dashboard_move_to_page",
                "move-task start → event on the open page",
                fmt_ms(&live),
                "target 1000 ms".into(),
                json!(live),
            );
            let rss = daemon::rss_kib(d.pid)?;
            r.add(
                "dashboard_rss_kib",
                "dashboard RSS after the runs above",
                format!("{:.1} MiB", rss as f64 / 1024.0),
                String::new(),
                json!(rss),
            );
        }
    }

    Ok(())
}

fn write_json(out: &Path, r: &Report) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = json!({
        "generated_at": spec_kitty_protocol::time::now_utc(),
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        },
        "results": r.json,
    });
    std::fs::write(out, serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}
