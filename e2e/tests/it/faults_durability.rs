//! Durability settings pinned at the syscall level, where `kill -9` tests
//! cannot tell them apart:
//!
//! - the daemon's store is in WAL mode and syncs the WAL at every commit
//!   (`synchronous=FULL`; NORMAL would sync only at checkpoints, and a
//!   power cut could lose acknowledged events) — counted under `strace`;
//! - the CLI's spool write is: create a temp file in the spool directory,
//!   fsync it, rename it to `<event_id>.json`, fsync the directory (the
//!   order, not the temp file's name);
//! - a spool file still being written (not yet renamed into place) is
//!   neither ingested nor rejected by a daemon that ingests meanwhile;
//! - a command that replaces several files of one directory fsyncs each
//!   file before its rename and the directory once, after the last rename.
//!
//! Needs `strace` (scripts/setup-test-deps installs it); without it these
//! tests say SKIP, or fail under `SK_REQUIRE_ALL`/`CI`.

use crate::faults_common;

use faults_common::*;
use spec_kitty_e2e::cmdline::add_history;
use spec_kitty_e2e::sync::{json_out, set_auto_start};
use spec_kitty_e2e::{bin, run_ok, skip, wait_for, Sandbox};
use spec_kitty_protocol::ipc::{Request, Response};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn have_strace(test: &str) -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(test, "strace is not installed (scripts/setup-test-deps)");
    }
    ok
}

/// `strace` in front of a program: follow threads, annotate fds with
/// their paths, trace only `calls`, write to `out`.
fn strace(out: &Path, calls: &str, program: &Path) -> Command {
    let mut c = Command::new("strace");
    c.args(["-f", "-y", "-qq", "-o"])
        .arg(out)
        .args(["-e", &format!("trace={calls}")])
        .arg(program);
    c
}

/// The first quoted string of a trace line.
fn first_quoted(line: &str) -> Option<&str> {
    let start = line.find('"')? + 1;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// Is `line` an fsync/fdatasync of an fd annotated with exactly `path`?
fn is_sync_of(line: &str, path: &str) -> bool {
    (line.contains("fsync(") || line.contains("fdatasync(")) && line.contains(&format!("<{path}>)"))
}

#[test]
fn store_is_wal_and_syncs_the_wal_at_every_commit() {
    let test = "store_is_wal_and_syncs_the_wal_at_every_commit";
    if !have_strace(test) {
        return;
    }
    let sb = Sandbox::new();
    let trace = sb.root().join("syncd.trace");
    let mut c = strace(&trace, "fsync,fdatasync", &bin("spec-kitty-syncd"));
    sb.env(&mut c);
    let mut child = foreground_run(&mut c)
        .spawn()
        .expect("spawn strace spec-kitty-syncd");
    let paths = sb.paths();
    let mut client = wait_for("the daemon under strace to answer", || {
        Client::connect(&paths).ok()
    });
    // One emit at a time: each is its own commit.
    const EMITS: usize = 20;
    for _ in 0..EMITS {
        accepted(client.emit(&envelope(Some(PROJECT)).1).expect("emit"));
    }
    drop(client);
    sb.stop_daemon(); // the daemon exits, then strace does
    let _ = child.wait();

    let db = rusqlite::Connection::open_with_flags(
        paths.store(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "journal_mode of {}", paths.store().display());

    let text = std::fs::read_to_string(&trace).unwrap();
    let wal = format!("{}-wal", paths.store().display());
    let syncs = text.lines().filter(|l| is_sync_of(l, &wal)).count();
    assert!(
        syncs >= EMITS,
        "{syncs} syncs of {wal} for {EMITS} separate commits: the WAL is not synced at each commit (synchronous=FULL)"
    );
}

/// Spools one event through the real CLI under strace (auto_start off, so
/// the CLI spools); returns the trace, the spool dir and the event's file.
fn spool_under_strace(sb: &Sandbox) -> (String, PathBuf, PathBuf) {
    let dir = sb.project("spooler", "feat");
    sb.stop_daemon();
    set_auto_start(&dir, false);
    let (o, trace) = cli_under_strace(
        sb,
        &dir,
        "cli.trace",
        &add_history("WP01", "traced", &["--json"]),
    );
    let v = json_out(&o);
    let e = &v["events"][0];
    assert_eq!(e["delivery"], "spooled", "{v}");
    let id = e["event_id"].as_str().unwrap();
    let spool = sb.paths().spool_dir();
    let file = sb.paths().spool_file(id);
    assert!(file.exists(), "{} spooled", file.display());
    (trace, spool, file)
}

/// Runs the CLI in `dir` under strace (the file writes' calls), expecting
/// success; returns its output and the trace.
fn cli_under_strace(
    sb: &Sandbox,
    dir: &Path,
    trace_name: &str,
    args: &[&str],
) -> (std::process::Output, String) {
    let trace = sb.root().join(trace_name);
    let mut c = strace(
        &trace,
        "openat,fsync,fdatasync,rename,renameat,renameat2",
        &bin("spec-kitty"),
    );
    sb.env(&mut c);
    c.current_dir(dir).stdin(Stdio::null()).args(args);
    let o = run_ok(&mut c);
    (o, std::fs::read_to_string(&trace).unwrap())
}

/// The temp file the CLI renamed onto `target`, and the trace line indexes
/// of: its creation, its fsync, the rename, the directory's fsync.
fn spool_write_steps(trace: &str, spool: &Path, target: &Path) -> (String, [usize; 4]) {
    let lines: Vec<&str> = trace.lines().collect();
    let (spool, target) = (spool.display().to_string(), target.display().to_string());
    let quoted_target = format!("\"{target}\"");
    let rename = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains(&quoted_target) && l.contains("= 0"))
        .unwrap_or_else(|| panic!("no rename onto {target}: the spool file was written in place"));
    let tmp = first_quoted(lines[rename]).unwrap().to_string();
    assert_ne!(tmp, target, "{}", lines[rename]);
    assert_eq!(
        Path::new(&tmp).parent(),
        Some(Path::new(&spool)),
        "the temp file is in the spool dir (same filesystem, atomic rename): {tmp}"
    );
    let quoted_tmp = format!("\"{tmp}\"");
    let create = lines[..rename]
        .iter()
        .rposition(|l| l.contains("openat(") && l.contains(&quoted_tmp) && l.contains("O_CREAT"))
        .unwrap_or_else(|| panic!("{tmp} not created before the rename"));
    let fsync = lines[create..rename]
        .iter()
        .position(|l| is_sync_of(l, &tmp))
        .map(|i| create + i)
        .unwrap_or_else(|| panic!("{tmp} not fsynced between its creation and the rename"));
    let dir_sync = lines[rename..]
        .iter()
        .position(|l| is_sync_of(l, &spool))
        .map(|i| rename + i)
        .unwrap_or_else(|| panic!("the spool dir {spool} not fsynced after the rename"));
    (tmp, [create, fsync, rename, dir_sync])
}

#[test]
fn spool_write_is_temp_fsync_rename_then_directory_fsync() {
    let test = "spool_write_is_temp_fsync_rename_then_directory_fsync";
    if !have_strace(test) {
        return;
    }
    let sb = Sandbox::new();
    let (trace, spool, file) = spool_under_strace(&sb);
    let (_, steps) = spool_write_steps(&trace, &spool, &file);
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "create, fsync, rename, dir fsync in that order: {steps:?}"
    );
}

#[test]
fn a_half_written_spool_file_is_neither_ingested_nor_rejected() {
    let test = "a_half_written_spool_file_is_neither_ingested_nor_rejected";
    if !have_strace(test) {
        return;
    }
    let sb = Sandbox::new();
    // The temp name the real CLI uses (whatever its scheme), learned from
    // a traced spool write.
    let (trace, spool, file) = spool_under_strace(&sb);
    let (tmp, _) = spool_write_steps(&trace, &spool, &file);
    let spooled_id = file.file_stem().unwrap().to_str().unwrap().to_string();
    // A write caught halfway: a new event's first bytes under that name.
    let (id, full) = envelope(Some(PROJECT));
    let half = &full.as_bytes()[..full.len() / 2];
    std::fs::write(&tmp, half).unwrap();

    let _d = Syncd::start(&sb); // ingests the spool at start
    let mut c = Client::connect(&sb.paths()).unwrap();
    assert!(matches!(
        c.request(&Request::IngestSpool).unwrap(),
        Response::Done { .. }
    ));
    let ids: Vec<String> = rows(&sb).into_iter().map(|r| r.event_id).collect();
    assert!(
        ids.contains(&spooled_id),
        "the renamed spool file is ingested"
    );
    assert!(!ids.contains(&id), "a half-written file was ingested");
    assert_eq!(
        std::fs::read(&tmp).ok().as_deref(),
        Some(half),
        "the file being written was touched by the daemon"
    );
    let rejected = spool.join("rejected");
    let moved = std::fs::read_dir(&rejected).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        moved,
        0,
        "a file being written was rejected into {}",
        rejected.display()
    );

    // The write completes and is renamed into place: now it is taken.
    std::fs::write(&tmp, &full).unwrap();
    std::fs::rename(&tmp, sb.paths().spool_file(&id)).unwrap();
    assert!(matches!(
        c.request(&Request::IngestSpool).unwrap(),
        Response::Done { .. }
    ));
    assert!(
        rows(&sb).iter().any(|r| r.event_id == id),
        "the completed file is ingested"
    );
}

#[test]
fn files_of_one_directory_are_each_fsynced_and_their_directory_once_after_the_renames() {
    let test = "files_of_one_directory_are_each_fsynced_and_their_directory_once_after_the_renames";
    if !have_strace(test) {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.project("batch", "feat");
    sb.stop_daemon();
    set_auto_start(&dir, false);
    let feature = std::fs::read_dir(dir.join("kitty-specs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let tasks = std::fs::canonicalize(feature.join("tasks")).unwrap();
    std::fs::write(
        feature.join("spec.md"),
        "# Spec\n\n- **FR-001**: one\n- **FR-002**: two\n",
    )
    .unwrap();
    std::fs::write(
        feature.join("tasks.md"),
        "# Tasks\n\n## Work Package WP01: One\n**Requirement Refs**: FR-001\n\n## Work Package WP02: Two\n**Requirement Refs**: FR-002\n### Dependencies\n- Depends on WP01.\n",
    )
    .unwrap();
    for e in std::fs::read_dir(&tasks).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("WP") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let wps = ["WP01", "WP02"].map(|id| tasks.join(format!("{id}-traced.md")));
    for (id, path) in ["WP01", "WP02"].iter().zip(&wps) {
        std::fs::write(
            path,
            format!("---\nwork_package_id: \"{id}\"\ntitle: \"Traced {id}\"\nlane: \"planned\"\ndependencies: []\n---\n# {id}\n"),
        )
        .unwrap();
    }
    let (_, text) = cli_under_strace(
        &sb,
        &dir,
        "batch.trace",
        &[
            "agent",
            "feature",
            "finalize-tasks",
            "--no-auto-commit",
            "--json",
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    let tasks_s = tasks.display().to_string();
    let renames: Vec<usize> = wps
        .iter()
        .map(|wp| {
            let quoted = format!("\"{}\"", wp.display());
            let at = lines
                .iter()
                .position(|l| l.contains("rename") && l.contains(&quoted) && l.contains("= 0"))
                .unwrap_or_else(|| panic!("no rename onto {}:\n{text}", wp.display()));
            let tmp = first_quoted(lines[at]).unwrap();
            assert!(
                lines[..at].iter().any(|l| is_sync_of(l, tmp)),
                "{tmp} not fsynced before its rename:\n{text}"
            );
            at
        })
        .collect();
    let dir_syncs: Vec<usize> = (0..lines.len())
        .filter(|&i| is_sync_of(lines[i], &tasks_s))
        .collect();
    let last = *renames.iter().max().unwrap();
    assert_eq!(
        dir_syncs.len(),
        1,
        "{tasks_s} fsynced {} times for two renames into it:\n{text}",
        dir_syncs.len()
    );
    assert!(
        dir_syncs[0] > last,
        "{tasks_s} fsynced before the last rename into it:\n{text}"
    );
}
