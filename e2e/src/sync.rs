//! Helpers for the CLI → daemon hand-off tests: reading the daemon's store
//! directly (exactly-once checks), finding every daemon process of a
//! sandbox (single-instance checks), the second "newer" build for
//! version-skew tests, and small JSON helpers.

use crate::{bin, Sandbox};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A valid `WPStatusChanged` envelope (WP01 planned → in_progress) with a
/// fresh id, this machine's `node_id`, team `local` and the given identity,
/// as a CLI would hand it over.
pub fn wp_envelope(
    project_uuid: Option<&str>,
    project_slug: Option<&str>,
) -> spec_kitty_protocol::envelope::EventEnvelope {
    let origin = spec_kitty_protocol::envelope::Origin {
        node_id: spec_kitty_protocol::node_id(),
        team_slug: "local".into(),
        project_uuid: project_uuid.map(str::to_string),
        project_slug: project_slug.map(str::to_string),
        ..Default::default()
    };
    spec_kitty_protocol::sample::lane_change("e2e", "001-e2e", &origin)
}

/// One row of the daemon's `events` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_id: String,
    pub lamport_clock: i64,
    pub project_slug: Option<String>,
    pub state: String,
    pub origin: String,
}

/// Every event in the sandbox's store, in `seq` order (read-only open; the
/// daemon may be running: WAL readers do not block it).
pub fn stored_events(sb: &Sandbox) -> Vec<StoredEvent> {
    let path = sb.paths().store();
    let db = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open store {}: {e}", path.display()));
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let mut st = db
        .prepare(
            "SELECT seq, event_id, lamport_clock, project_slug, state, origin FROM events ORDER BY seq",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok(StoredEvent {
            seq: r.get(0)?,
            event_id: r.get(1)?,
            lamport_clock: r.get(2)?,
            project_slug: r.get(3)?,
            state: r.get(4)?,
            origin: r.get(5)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Pids of every `spec-kitty-syncd` process whose `SPEC_KITTY_SYNC_HOME` is this
/// sandbox's (read from `/proc/<pid>/environ`; Linux).
pub fn syncd_pids(sb: &Sandbox) -> Vec<u32> {
    let want = format!("SPEC_KITTY_SYNC_HOME={}", sb.sk_home().display());
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("spec-kitty-sync") {
            continue;
        }
        // A zombie (exited, not yet reaped) is not a running daemon.
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if env.split(|b| *b == 0).any(|kv| kv == want.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// stdout of a command as JSON, panicking with both streams otherwise.
pub fn json_out(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Sets `sync.auto_start` in a project's `.kittify/config.yaml`.
pub fn set_auto_start(project: &Path, on: bool) {
    let p = project.join(".kittify").join("config.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let new = text
        .replace("auto_start: true", &format!("auto_start: {on}"))
        .replace("auto_start: false", &format!("auto_start: {on}"));
    assert!(new.contains(&format!("auto_start: {on}")), "{text}");
    std::fs::write(&p, new).unwrap();
}

/// The "newer" build for version-skew tests: `spec-kitty` and
/// `spec-kitty-syncd` built with `spec-kitty-protocol/skew-test-next-major`
/// (protocol major + 1) into `target/skew`, so they sit next to each other
/// and the newer CLI spawns the newer daemon. Built once per test binary
/// (cargo's own lock serialises concurrent test binaries; after the first
/// time it is an incremental no-op).
pub fn newer_build() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = bin("spec-kitty")
            .parent()
            .and_then(|p| p.parent())
            .expect("target dir")
            .join("skew");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Only the variables a build needs: the test process carries
        // cargo's per-package variables, which would make every build
        // scripts' fingerprints differ from a shell build's (a full
        // rebuild each time).
        let mut cmd = Command::new(cargo);
        cmd.env_clear();
        for k in [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "TMPDIR",
        ] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        let out = cmd
            .current_dir(&workspace)
            .args([
                "build",
                "-q",
                "-p",
                "spec-kitty",
                "-p",
                "spec-kitty-syncd",
                "--features",
                "spec-kitty-protocol/skew-test-next-major",
                "--target-dir",
            ])
            .arg(&target)
            .output()
            .expect("run cargo to build the newer (skew) binaries");
        assert!(
            out.status.success(),
            "building the skew binaries failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target.join("debug");
        assert!(dir.join("spec-kitty").exists() && dir.join("spec-kitty-syncd").exists());
        dir
    })
}

/// `spec-kitty` of the newer build, with the sandbox's environment.
pub fn newer_cli(sb: &Sandbox, cwd: &Path) -> Command {
    let mut c = Command::new(newer_build().join("spec-kitty"));
    c.current_dir(cwd).stdin(std::process::Stdio::null());
    sb.env(&mut c);
    c
}
