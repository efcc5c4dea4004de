//! A corpus of malformed files, each run through the real binary: work
//! package files, `.kittify/config.yaml`, and `$SPEC_KITTY_SYNC_HOME/credentials`.
//! For every entry the test shows the outcome a user gets (the message names
//! the file and the problem; the exit code) and that nothing was lost or
//! half-written: the bad file keeps its bytes (or is kept aside byte-for-byte),
//! no other file in the repository changes, no temp files remain, and a
//! refused command spools no event. A broken credentials file never blocks
//! local work; `spec-kitty auth status` names it and the problem (exit 1)
//! without printing any token text.
//!
//! Spool files and queue databases are the daemon's; their corpus lives with
//! the daemon tests.

use crate::common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A WP file that must be refused, and what the error must say.
struct BadWp {
    what: &'static str,
    bytes: Vec<u8>,
    /// Fragments the error message must contain (besides the file path).
    says: &'static [&'static str],
    /// Only the frontmatter's history list is bad: `add-history` (which
    /// writes the body's activity log, not the frontmatter) still works.
    body_edit_ok: bool,
}

fn deep_nesting() -> Vec<u8> {
    format!("---\nlane: planned\nx: {}\n---\n", "[".repeat(100_000)).into_bytes()
}

/// Nested aliases that would expand to 10^12 nodes if followed naively.
fn alias_bomb() -> Vec<u8> {
    let mut s = String::from("---\nlane: planned\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    s.push_str("---\n");
    s.into_bytes()
}

fn bad_wps() -> Vec<BadWp> {
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        BadWp {
            what: "empty file",
            bytes: Vec::new(),
            says: &["malformed frontmatter", "must start with a `---` line"],
            body_edit_ok: false,
        },
        BadWp {
            what: "no frontmatter",
            bytes: b("# WP01\n\nlane: planned\n"),
            says: &["malformed frontmatter", "must start with a `---` line"],
            body_edit_ok: false,
        },
        BadWp {
            what: "frontmatter never closed",
            bytes: b("---\nwork_package_id: WP01\nlane: planned\n\n# Body\n"),
            says: &["malformed frontmatter", "end with another `---` line"],
            body_edit_ok: false,
        },
        BadWp {
            what: "YAML syntax error",
            bytes: b("---\nwork_package_id: WP01\nlane: [planned\n---\n"),
            says: &["malformed frontmatter", "line"],
            body_edit_ok: false,
        },
        BadWp {
            what: "frontmatter is a list",
            bytes: b("---\n- lane: planned\n---\n"),
            says: &["the frontmatter is not a mapping"],
            body_edit_ok: false,
        },
        BadWp {
            what: "unknown lane",
            bytes: b("---\nwork_package_id: WP01\nlane: review\n---\n"),
            says: &["unknown lane 'review'", "valid lanes: planned, doing"],
            body_edit_ok: false,
        },
        BadWp {
            what: "lane is a mapping",
            bytes: b("---\nwork_package_id: WP01\nlane: {to: doing}\n---\n"),
            says: &["lane must be a string"],
            body_edit_ok: false,
        },
        BadWp {
            what: "bad work_package_id",
            bytes: b("---\nwork_package_id: WP1\nlane: planned\n---\n"),
            says: &["work_package_id 'WP1' must be WP followed by two digits"],
            body_edit_ok: false,
        },
        BadWp {
            what: "dependencies not a list",
            bytes: b("---\nwork_package_id: WP01\nlane: planned\ndependencies: {WP02: yes}\n---\n"),
            says: &["dependencies must be a list of WP ids"],
            body_edit_ok: false,
        },
        BadWp {
            what: "duplicate lane key",
            bytes: b("---\nwork_package_id: WP01\nlane: planned\nlane: done\n---\n"),
            says: &["malformed frontmatter", "line"],
            body_edit_ok: false,
        },
        BadWp {
            what: "not UTF-8",
            bytes: b"---\nwork_package_id: WP01\nlane: planned\ntitle: caf\xe9\n---\n".to_vec(),
            says: &["is not UTF-8 text"],
            body_edit_ok: false,
        },
        BadWp {
            what: "NUL bytes in the frontmatter",
            bytes: b"---\nwork_package_id: WP01\nlane: pla\0nned\n---\n".to_vec(),
            says: &["malformed frontmatter"],
            body_edit_ok: false,
        },
        BadWp {
            what: "100 000 nested brackets",
            bytes: deep_nesting(),
            says: &["malformed frontmatter", "recursion limit"],
            body_edit_ok: false,
        },
        BadWp {
            what: "alias bomb (10^12 nodes)",
            bytes: alias_bomb(),
            says: &["malformed frontmatter", "budget"],
            body_edit_ok: false,
        },
    ]
}

/// Every file in the repository (without `.git`) except `skip`.
fn others(w: &World, skip: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    w.snapshot()
        .into_iter()
        .filter(|(p, _)| p != skip)
        .collect()
}

fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(
            !n.ends_with(".tmp"),
            "temp file {n} left in {}",
            dir.display()
        );
    }
}

#[test]
fn malformed_wp_files_are_refused_by_name_and_left_untouched() {
    let w = World::with_wps(2);
    let path = w.wp_path("WP01");
    for bad in bad_wps() {
        fs::write(&path, &bad.bytes).unwrap();
        let before = others(&w, &path);
        let commands = [
            vec!["agent", "tasks", "move-task", "WP01", "--to", "doing"],
            move_task("WP01", "done", &["--force", "--reason", "r"]),
            vec!["agent", "tasks", "add-history", "WP01", "--note", "n"],
            vec!["implement", "WP01", "--no-worktree"],
        ];
        for args in commands {
            if bad.body_edit_ok && args[2] == "add-history" {
                continue;
            }
            w.clear_spool();
            let o = w.run(&args);
            let err = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(4),
                "[{}] {args:?} must exit 4 (invalid data): {err}",
                bad.what
            );
            assert!(
                err.contains(&path.display().to_string()),
                "[{}] {args:?}: the message names the file: {err}",
                bad.what
            );
            for s in bad.says {
                assert!(
                    err.contains(s),
                    "[{}] {args:?}: message says {s:?}: {err}",
                    bad.what
                );
            }
            assert_eq!(
                err.lines().count(),
                1,
                "[{}] one clear line: {err}",
                bad.what
            );
            assert!(!err.contains("panicked"));
            assert_eq!(
                fs::read(&path).unwrap(),
                bad.bytes,
                "[{}] {args:?} changed the file",
                bad.what
            );
            assert_eq!(
                others(&w, &path),
                before,
                "[{}] {args:?} changed another file",
                bad.what
            );
            assert!(
                w.events().is_empty(),
                "[{}] {args:?} spooled an event",
                bad.what
            );
            no_temp_files(path.parent().unwrap());
        }
        // Work on the other work package is not blocked by this one.
        w.clear_spool();
        let moved = w.run(&["agent", "tasks", "move-task", "WP02", "--to", "doing"]);
        assert!(
            moved.status.success(),
            "[{}] WP02: {}",
            bad.what,
            stderr(&moved)
        );
        assert_eq!(w.events().len(), 1);
        w.ok(&["agent", "tasks", "move-task", "WP02", "--to", "blocked"]);
    }
}

/// A config that cannot be parsed, and the problem the warning names.
const BAD_CONFIGS: &[(&str, &[u8], &str)] = &[
    (
        "YAML syntax error",
        b"project:\n  uuid: [unclosed\n",
        "is not valid YAML",
    ),
    (
        "tab indentation",
        b"project:\n\tuuid: x\n",
        "is not valid YAML",
    ),
    (
        "top level is a list",
        b"- project\n- sync\n",
        "the top level is not a mapping",
    ),
    (
        "top level is a scalar",
        b"just words\n",
        "the top level is not a mapping",
    ),
    (
        "not UTF-8",
        b"project:\n  slug: caf\xe9\n",
        "not UTF-8 text",
    ),
    ("NUL byte", b"project:\n  slug: a\0b\n", "is not valid YAML"),
    (
        "unterminated quote",
        b"vcs: \"git\nproject: {}\n",
        "is not valid YAML",
    ),
];

#[test]
fn corrupt_configs_are_kept_aside_byte_for_byte_and_work_goes_on() {
    for (what, bytes, says) in BAD_CONFIGS {
        let w = World::with_wps(1);
        let cfg = w.repo.join(".kittify/config.yaml");
        fs::write(&cfg, bytes).unwrap();
        let before = others(&w, &cfg);
        let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
        let err = stderr(&o);
        assert!(
            o.status.success(),
            "[{what}] a bad config must not stop work: {err}"
        );
        assert!(
            err.contains(&cfg.display().to_string()) && err.contains(says),
            "[{what}] warning names the file and says {says:?}: {err}"
        );
        // Kept aside, byte for byte, under the name the warning gives.
        let kept = w.kept_configs();
        assert_eq!(kept.len(), 1, "[{what}] one kept copy");
        assert_eq!(
            fs::read(&kept[0]).unwrap(),
            *bytes,
            "[{what}] kept copy differs"
        );
        assert!(
            err.contains(&kept[0].display().to_string()),
            "[{what}] {err}"
        );
        // A fresh identity was written and used for the event.
        let uuid = w.config_uuid();
        let evs = w.events();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].project_uuid.as_deref(), Some(uuid.as_str()));
        // Nothing else changed except the one lane edit.
        let after = others(&w, &cfg);
        let changed: Vec<_> = after
            .iter()
            .filter(|(p, b)| !before.iter().any(|(q, c)| p == q && b == c))
            .map(|(p, _)| p.clone())
            .collect();
        let changed: Vec<_> = changed.into_iter().filter(|p| !kept.contains(p)).collect();
        let status = w.feature_dir();
        assert_eq!(
            changed,
            vec![
                status.join("status.events.jsonl"),
                status.join("status.json"),
                w.wp_path("WP01")
            ],
            "[{what}] only the WP file and its status files changed"
        );
        no_temp_files(&w.repo.join(".kittify"));
        // The next command reads the new config quietly.
        let again = w.run(&["tasks", "finalize"]);
        assert!(
            again.status.success() && stderr(&again).is_empty(),
            "[{what}] {}",
            stderr(&again)
        );
    }
}

#[test]
fn a_config_that_is_a_directory_gives_an_in_memory_identity_and_one_warning() {
    let w = World::with_wps(1);
    let cfg = w.repo.join(".kittify/config.yaml");
    fs::remove_file(&cfg).unwrap();
    fs::create_dir(&cfg).unwrap();
    fs::write(cfg.join("keep"), b"x").unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&cfg.display().to_string()) && err.contains("in-memory"),
        "{err}"
    );
    assert_eq!(fs::read(cfg.join("keep")).unwrap(), b"x");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert!(
        evs[0].project_uuid.is_some(),
        "in-memory identity still stamps a uuid"
    );
}

/// Credentials files the CLI must survive. The CLI reads only
/// `[user] team_slug` (for events); a file it cannot use means team
/// `local`, never a failed lane change, and it never rewrites the file.
const BAD_CREDENTIALS: &[(&str, &[u8])] = &[
    ("not TOML", b"this is = = not toml\n[[[\n"),
    ("not UTF-8", b"[user]\nteam_slug = \"caf\xe9\"\n"),
    ("team_slug not a string", b"[user]\nteam_slug = 42\n"),
    ("user not a table", b"user = \"me\"\n"),
    ("empty team_slug", b"[user]\nteam_slug = \"  \"\n"),
    ("empty file", b""),
    (
        "truncated mid-write",
        b"[tokens]\naccess = \"eyJhbGciOiJIUzI1NiJ9.secret-access\"\nrefresh = \"secr",
    ),
];

#[test]
fn malformed_credentials_never_block_work_and_are_never_rewritten() {
    let w = World::with_wps(1);
    let cred = w.home.join("credentials");
    for (what, bytes) in BAD_CREDENTIALS {
        fs::write(&cred, bytes).unwrap();
        fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();
        w.clear_spool();
        let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(o.status.success(), "[{what}] {err}");
        let evs = w.events();
        assert_eq!(evs.len(), 1, "[{what}]");
        assert_eq!(
            evs[0].team_slug, "local",
            "[{what}] unusable credentials → team local"
        );
        assert_eq!(
            fs::read(&cred).unwrap(),
            *bytes,
            "[{what}] credentials rewritten"
        );
        assert_eq!(
            fs::metadata(&cred).unwrap().permissions().mode() & 0o777,
            0o600,
            "[{what}] mode changed"
        );
        // No token ever leaks into output or events, even from a broken file.
        let spooled = fs::read_dir(w.spool_dir())
            .unwrap()
            .flatten()
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .collect::<String>();
        for text in [&out, &err, &spooled] {
            assert!(
                !text.contains("secret"),
                "[{what}] token text leaked: {text}"
            );
        }
        w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "blocked"]);
    }
    // A well-formed file is used (the control case: the test can fail).
    fs::write(&cred, b"[user]\nteam_slug = \"acme\"\n").unwrap();
    w.clear_spool();
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert_eq!(w.events()[0].team_slug, "acme");
}

#[test]
fn unreadable_credentials_path_never_blocks_work() {
    let w = World::with_wps(1);
    let cred = w.home.join("credentials");
    fs::create_dir(&cred).unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(w.events()[0].team_slug, "local");
    assert!(cred.is_dir());
}

#[test]
fn auth_status_names_a_broken_credentials_file_without_printing_tokens() {
    let w = World::with_wps(1);
    let cred = w.home.join("credentials");
    // (entry, expected exit, what the message must say)
    let expect: &[(&str, i32, &str)] = &[
        ("not TOML", 1, "is not valid TOML"),
        ("not UTF-8", 1, "valid UTF-8"),
        ("truncated mid-write", 1, "is not valid TOML"),
        // Valid TOML of the wrong shape is simply "not logged in".
        ("team_slug not a string", 0, "Not logged in"),
        ("user not a table", 0, "Not logged in"),
        ("empty team_slug", 0, "Not logged in"),
        ("empty file", 0, "Not logged in"),
    ];
    for (what, bytes) in BAD_CREDENTIALS {
        let (_, code, says) = expect
            .iter()
            .find(|(n, _, _)| n == what)
            .unwrap_or_else(|| panic!("no expectation for {what}"));
        fs::write(&cred, bytes).unwrap();
        fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();
        let o = w.run(&["auth", "status"]);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(*code), "[{what}] {out}{err}");
        let text = format!("{out}{err}");
        assert!(text.contains(says), "[{what}] says {says:?}: {text}");
        if *code != 0 {
            assert!(
                err.contains(&cred.display().to_string()),
                "[{what}] the error names the file: {err}"
            );
            assert_eq!(err.lines().count(), 1, "[{what}] one clear line: {err}");
        }
        assert!(
            !text.contains("secret"),
            "[{what}] token text printed: {text}"
        );
        assert_eq!(
            fs::read(&cred).unwrap(),
            *bytes,
            "[{what}] status rewrote the file"
        );
        assert_eq!(
            fs::metadata(&cred).unwrap().permissions().mode() & 0o777,
            0o600,
            "[{what}] mode changed"
        );
    }
}
