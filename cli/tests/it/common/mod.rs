//! Shared harness for the CLI's integration tests: a temp home, a temp git
//! repository, the real `spec-kitty` binary run inside it, and the spool
//! read back as validated envelopes. The environment and the git fixture
//! are the shared test layer's (`spec_kitty_e2e`), as the end-to-end and
//! daemon tests use them.
#![allow(dead_code)]

pub use spec_kitty_e2e::cmdline::{
    add_history, approve, frontmatter_lane, lane_moves, mark_status, move_task,
};
use spec_kitty_e2e::{git_init, isolated_env};
use spec_kitty_protocol::EventEnvelope;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");

/// The shared corpus, read in place (never copied into the repo).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/spec-kitty-2026-02-07")
}

/// One isolated world: `home` (SPEC_KITTY_SYNC_HOME and HOME) and `repo`.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub repo: PathBuf,
}

/// The shared test layer's isolated environment ([`isolated_env`]) with
/// `home` as both `HOME` and the state root, and no daemon: these tests
/// check files and the spool; the daemon hand-off is tested over both
/// binaries in `e2e/`. No binary → spool, and no daemon is left running
/// after a test.
pub fn git_env(cmd: &mut Command, home: &Path) {
    isolated_env(cmd, home, home);
    cmd.env("SPEC_KITTY_SYNCD_BIN", "/nonexistent/spec-kitty-syncd");
}

impl World {
    /// A temp dir with `home/` and an empty `repo/` (no git yet).
    pub fn bare(repo_name: &str) -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        let repo = tmp.path().join(repo_name);
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&repo).unwrap();
        World { tmp, home, repo }
    }

    /// A git repository with one commit, `spec-kitty init --here` done.
    pub fn project() -> World {
        let w = World::bare("demo-repo");
        git_init(&w.repo, "root", |c| git_env(c, &w.home));
        w.ok(&["init", "--here"]);
        w
    }

    /// A project with feature 001-demo and `n` work packages.
    pub fn with_wps(n: usize) -> World {
        let w = World::project();
        w.ok(&["specify", "demo"]);
        for i in 1..=n {
            w.ok(&["tasks", "add", &format!("Task {i}")]);
        }
        w.clear_spool();
        w
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    /// The files commit `rev` changed, in path order.
    pub fn files_of(&self, rev: &str) -> Vec<String> {
        let mut files: Vec<String> = self
            .git(&["show", "--name-only", "--format=", rev])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        files.sort();
        files
    }

    /// The copies of a bad `config.yaml` kept aside
    /// (`.kittify/config.yaml.corrupt-*`), by name.
    pub fn kept_configs(&self) -> Vec<PathBuf> {
        let mut kept: Vec<PathBuf> = fs::read_dir(self.repo.join(".kittify"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("config.yaml.corrupt-"))
            })
            .collect();
        kept.sort();
        kept
    }

    /// Runs `git ARGS` in `dir` (a worktree, a twin) and asserts success.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut c = Command::new("git");
        c.args(args).current_dir(dir);
        git_env(&mut c, &self.home);
        let o = c.output().expect("run git");
        assert!(
            o.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn cmd_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(dir);
        git_env(&mut c, &self.home);
        c
    }

    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd_in(dir, args).output().expect("run spec-kitty")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.repo, args)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "spec-kitty {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs with `--json` appended and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.home.join("spool")
    }

    /// Every spooled envelope, each parsed and validated, in build order.
    pub fn events(&self) -> Vec<EventEnvelope> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.spool_dir()) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let text = fs::read_to_string(e.path()).unwrap();
            let env = EventEnvelope::from_json(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
            env.validate_unstamped()
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(
                format!("{}.json", env.event_id),
                name,
                "file named by event_id"
            );
            out.push(env);
        }
        out.sort_by(|a, b| {
            (a.timestamp.as_str(), a.event_id.as_str())
                .cmp(&(b.timestamp.as_str(), b.event_id.as_str()))
        });
        out
    }

    pub fn clear_spool(&self) {
        let _ = fs::remove_dir_all(self.spool_dir());
    }

    pub fn config(&self) -> String {
        fs::read_to_string(self.repo.join(".kittify/config.yaml")).unwrap()
    }

    /// `project.uuid` from the config file.
    pub fn config_uuid(&self) -> String {
        let text = self.config();
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("uuid:")
                    .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
            })
            .expect("uuid in config")
    }

    pub fn feature_dir(&self) -> PathBuf {
        self.repo.join("kitty-specs/001-demo")
    }

    /// The path of a WP file of 001-demo.
    pub fn wp_path(&self, wp: &str) -> PathBuf {
        let dir = self.feature_dir().join("tasks");
        fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(wp))
            .unwrap_or_else(|| panic!("{wp} in {}", dir.display()))
    }

    pub fn read(&self, p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    /// Every file under the repo (excluding .git) with its bytes, for
    /// "nothing changed" assertions.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.repo, &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == ".git" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            walk(&p, out);
        } else {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Checks identity fields every envelope must carry.
pub fn assert_identity(w: &World, envs: &[EventEnvelope]) {
    let uuid = w.config_uuid();
    for e in envs {
        assert_eq!(
            e.project_uuid.as_deref(),
            Some(uuid.as_str()),
            "{}",
            e.event_type
        );
        assert_eq!(
            e.project_slug.as_deref(),
            Some("demo-repo"),
            "{}",
            e.event_type
        );
        assert_eq!(e.team_slug, "local");
        assert_eq!(e.lamport_clock, 0, "the CLI never stamps Lamport values");
        assert_eq!(e.git_branch.as_deref(), Some("main"));
        assert_eq!(e.head_commit_sha.as_ref().map(String::len), Some(40));
    }
}

/// The Python spec-kitty-cli 2.1.3 of `scripts/setup-python-cli`, or
/// `None` after saying why the test is skipped (a failure under
/// `SK_REQUIRE_ALL`/CI).
pub use spec_kitty_e2e::python::require_python;

/// Copies a directory tree (test fixtures from the corpus).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Runs the Python CLI in the world's repository, bounded in time, with
/// its runtime directory inside the world.
pub fn py(w: &World, bin: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("timeout");
    c.arg("120").arg(bin).args(args).current_dir(&w.repo);
    git_env(&mut c, &w.home);
    c.env("SPEC_KITTY_HOME", w.home.join(".kittify-py"));
    let o = c.output().expect("run python spec-kitty");
    assert!(
        o.status.success(),
        "python spec-kitty {args:?}: {:?}\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    o
}
