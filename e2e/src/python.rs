//! The real Python `spec-kitty-cli` 2.1.3 as a test oracle and as a second
//! client: found in the pinned virtualenv `scripts/setup-python-cli` makes,
//! run in the same [`Sandbox`] as our binaries (same `HOME`, so the same
//! `~/.spec-kitty`), each run bounded in time with its output in the panic
//! message when it fails or hangs.
//!
//! A test that needs it calls [`require_python`]: without the venv it is
//! skipped with the reason, or fails under `SK_REQUIRE_ALL`/`CI`.

use crate::{skip, Sandbox};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one Python command may take (it starts in about a second, but
/// 16 of them at once on 2 cores take much longer).
pub const PYTHON_DEADLINE: Duration = Duration::from_secs(180);

/// The Python CLI's `spec-kitty`: in `$SK_PYTHON_VENV` (relative paths from
/// the workspace root, as `scripts/setup-python-cli` reads it), else in
/// `target/pyvenv-2.1.3`; `None` when not installed.
pub fn python_cli() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("SK_PYTHON_VENV")
        .map(|v| root.join(v))
        .unwrap_or_else(|| root.join("target").join("pyvenv-2.1.3"));
    let bin = venv.join("bin").join("spec-kitty");
    bin.exists().then_some(bin)
}

/// The Python CLI, or `None` after saying why `test` is skipped (a failure
/// under [`crate::require_all`]).
pub fn require_python(test: &str) -> Option<PathBuf> {
    let found = python_cli();
    if found.is_none() {
        skip(
            test,
            "the Python spec-kitty-cli 2.1.3 is not installed (run scripts/setup-python-cli)",
        );
    }
    found
}

/// The project's `project.uuid` in `.kittify/config.yaml` (written by
/// either CLI; both keep it there).
pub fn project_uuid(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join(".kittify/config.yaml")).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("uuid: "))
        .unwrap_or_else(|| panic!("no project uuid in config.yaml:\n{text}"))
        .trim_matches(['"', '\''])
        .to_string()
}

impl Sandbox {
    /// The Python `spec-kitty` run in `cwd` with the sandbox's environment:
    /// our `HOME`, its runtime dir (`SPEC_KITTY_HOME`) inside the sandbox,
    /// no banner, SaaS sync off unless the sandbox sets
    /// `SPEC_KITTY_ENABLE_SAAS_SYNC` ([`Sandbox::set_env`]), like the CA
    /// variables `SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE`.
    pub fn python(&self, py: &Path, cwd: &Path) -> Command {
        let mut c = Command::new(py);
        c.current_dir(cwd)
            .stdin(Stdio::null())
            .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC")
            .env_remove("SSL_CERT_FILE")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env("SPEC_KITTY_HOME", self.root().join("py-runtime"))
            .env("SPEC_KITTY_NO_BANNER", "1")
            .env("SPEC_KITTY_NON_INTERACTIVE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("COLUMNS", "200");
        self.env(&mut c);
        c
    }

    /// Runs Python `spec-kitty ARGS` in `cwd`; panics with both streams
    /// unless it exits 0 within [`PYTHON_DEADLINE`].
    pub fn py(&self, py: &Path, cwd: &Path, args: &[&str]) -> Output {
        let out = run_bounded(self.python(py, cwd).args(args), PYTHON_DEADLINE);
        assert!(
            out.status.success(),
            "python spec-kitty {args:?} in {} failed with {}\nstdout:\n{}\nstderr:\n{}",
            cwd.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Sandbox {
    /// A project made by the Python CLI as a user would: a git repository,
    /// `init --here --ai claude`, `agent feature create-feature FEATURE`
    /// (feature `001-FEATURE`), then `wps` planned work packages WP01..
    /// written in 2.1.3's format and committed. Returns its directory.
    pub fn py_project(&self, py: &Path, name: &str, feature: &str, wps: usize) -> PathBuf {
        let dir = self.git_repo(name, None);
        self.py(
            py,
            &dir,
            &["init", "--here", "--ai", "claude", "--no-git", "--force"],
        );
        stop_python_dashboard(&dir);
        self.git(&dir, &["add", "-A"]);
        self.git(&dir, &["commit", "-q", "-m", "spec-kitty init"]);
        self.py(
            py,
            &dir,
            &["agent", "feature", "create-feature", feature, "--json"],
        );
        let fdir = dir.join("kitty-specs").join(format!("001-{feature}"));
        let mut tasks = String::from("# Work Packages\n");
        for i in 1..=wps {
            let wp = format!("WP{i:02}");
            std::fs::write(
                fdir.join("tasks").join(format!("{wp}-work-package-{i}.md")),
                format!(
                    "---\nwork_package_id: {wp}\ntitle: Work package {i}\nlane: \"planned\"\n\
                     dependencies: []\nsubtasks: []\nagent: \"\"\nshell_pid: \"\"\nhistory:\n\
                     - timestamp: '2026-02-07T00:00:00Z'\n  lane: planned\n  agent: system\n  \
                     action: Prompt generated via /spec-kitty.tasks\n---\n# {wp}: Work package {i}\n\n\
                     ## Activity Log\n\n- 2026-02-07T00:00:00Z – system – lane=planned – Prompt created.\n"
                ),
            )
            .unwrap();
            tasks.push_str(&format!(
                "\n## {wp}: Work package {i}\n\n- [ ] T{i:03} do it\n"
            ));
        }
        std::fs::write(fdir.join("tasks.md"), tasks).unwrap();
        self.git(&dir, &["add", "-A"]);
        self.git(&dir, &["commit", "-q", "-m", "work packages"]);
        dir
    }

    /// Runs `git ARGS` in `dir` with the sandbox's environment.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new("git");
        c.current_dir(dir).args(args);
        self.env(&mut c);
        crate::run_ok(&mut c)
    }
}

/// 2.1.3's `init` leaves a dashboard server running, detached in its own
/// session (so killing the command's process group misses it): stop it by
/// the pid its record (`.kittify/.dashboard`: url, port, token, pid) names,
/// so no test leaves a server behind.
pub fn stop_python_dashboard(project: &Path) {
    let record =
        std::fs::read_to_string(project.join(".kittify").join(".dashboard")).unwrap_or_default();
    let lines: Vec<&str> = record.lines().collect();
    if let Some(pid) = lines
        .get(2..)
        .and_then(|l| l.last())
        .and_then(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    {
        // SAFETY: kill(2) on a pid we read; a wrong or dead pid only errs.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Runs `cmd` with piped output; kills it (and whatever it started, its
/// own process group) and panics with what it printed when it runs past
/// `limit`. The exit status is the caller's to judge.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for child") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            crate::signal_group(child.id(), libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "{cmd:?} did not finish within {limit:?} (killed)\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}
