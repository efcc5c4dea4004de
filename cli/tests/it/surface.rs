//! The rest of 2.1.3's command surface: `-v`, `auth login -p/-f`, the
//! `sync` flags and checks, and the commands this CLI does not provide.

use crate::common;

use clap::Parser;
use common::*;
use spec_kitty::commands::not_provided::NOT_PROVIDED;
use spec_kitty_protocol::credentials::{self, Credentials};
use spec_kitty_protocol::Paths;

#[test]
fn dash_v_prints_the_version_as_2_1_3_accepts_it() {
    let w = World::bare("x");
    for flag in ["-v", "--version", "-V"] {
        let out = w.ok(&[flag]);
        assert_eq!(
            out.trim(),
            format!("spec-kitty {}", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[test]
fn commands_not_provided_say_what_to_do_instead_in_one_line() {
    let w = World::bare("x");
    for (path, instead) in NOT_PROVIDED {
        let mut args: Vec<&str> = path.split(' ').collect();
        args.extend(["sub", "--json"]);
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(5), "{path}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{path}: {err}");
        assert!(err.contains(&format!("`spec-kitty {path}`")), "{err}");
        assert!(err.contains(instead), "{err}");
        assert!(stdout(&o).is_empty());
    }
    // A name 2.1.3 never had stays a usage error.
    let o = w.run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

fn logged_in(w: &World, server: &str) {
    let paths = Paths::new(&w.home);
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    credentials::write(
        &paths,
        &Credentials {
            access: Some("a".into()),
            refresh: Some("r".into()),
            access_expires_at: Some(now + 900_000_000),
            refresh_expires_at: Some(now + 86_400_000_000),
            username: Some("alice".into()),
            team_slug: None,
            server_url: Some(server.into()),
            insecure: false,
        },
    )
    .unwrap();
}

#[test]
fn login_password_flag_warns_about_shell_history() {
    let w = World::bare("x");
    // Nothing listens on port 9: the login fails after the warning.
    let o = w.run(&[
        "auth",
        "login",
        "--server",
        "http://127.0.0.1:9",
        "-u",
        "alice",
        "-p",
        "secret",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("shell history"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is never echoed: {err}"
    );
    let o = w.run(&["auth", "login", "-u", "a", "-p", "x", "--password-stdin"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn login_when_already_logged_in_needs_force() {
    let w = World::bare("x");
    let server = "http://127.0.0.1:9";
    logged_in(&w, server);
    let base = [
        "auth", "login", "--server", server, "-u", "alice", "-p", "pw",
    ];
    let o = w.run(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Already logged in"), "{}", stdout(&o));
    // --force logs in again (and fails here: nothing listens).
    let mut forced = base.to_vec();
    forced.push("--force");
    let o = w.run(&forced);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Someone else, or another server, just logs in.
    let o = w.run(&["auth", "login", "--server", server, "-u", "bob", "-p", "pw"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// Every command and subcommand of spec-kitty-cli 2.1.3 (its typer app
/// walked with click, `tracker` shown by SPEC_KITTY_ENABLE_SAAS_SYNC=1).
const PY_213_COMMANDS: &[&str] = &[
    "init",
    "accept",
    "config",
    "dashboard",
    "implement",
    "specify",
    "plan",
    "tasks",
    "merge",
    "migrate",
    "next",
    "research",
    "upgrade",
    "list-legacy-features",
    "validate-encoding",
    "validate-tasks",
    "verify-setup",
    "agent",
    "agent check-prerequisites",
    "agent config",
    "agent config list",
    "agent config add",
    "agent config remove",
    "agent config status",
    "agent config sync",
    "agent config set",
    "agent feature",
    "agent feature branch-context",
    "agent feature create-feature",
    "agent feature check-prerequisites",
    "agent feature setup-plan",
    "agent feature accept",
    "agent feature merge",
    "agent feature finalize-tasks",
    "agent tasks",
    "agent tasks move-task",
    "agent tasks mark-status",
    "agent tasks list-tasks",
    "agent tasks add-history",
    "agent tasks finalize-tasks",
    "agent tasks map-requirements",
    "agent tasks validate-workflow",
    "agent tasks status",
    "agent tasks list-dependents",
    "agent context",
    "agent context resolve",
    "agent context update-context",
    "agent release",
    "agent workflow",
    "agent workflow implement",
    "agent workflow review",
    "agent status",
    "agent status emit",
    "agent status materialize",
    "agent status doctor",
    "agent status migrate",
    "agent status validate",
    "agent status reconcile",
    "auth",
    "auth login",
    "auth logout",
    "auth status",
    "constitution",
    "constitution interview",
    "constitution generate",
    "constitution context",
    "constitution sync",
    "constitution status",
    "context",
    "context info",
    "context list",
    "context cleanup",
    "doctor",
    "doctor state-roots",
    "glossary",
    "glossary list",
    "glossary conflicts",
    "glossary resolve",
    "mission",
    "mission list",
    "mission current",
    "mission info",
    "mission switch",
    "ops",
    "ops log",
    "ops undo",
    "orchestrator-api",
    "orchestrator-api contract-version",
    "orchestrator-api feature-state",
    "orchestrator-api list-ready",
    "orchestrator-api start-implementation",
    "orchestrator-api start-review",
    "orchestrator-api transition",
    "orchestrator-api append-history",
    "orchestrator-api accept-feature",
    "orchestrator-api merge-feature",
    "repair",
    "repair repair",
    "repair worktree",
    "sync",
    "sync workspace",
    "sync server",
    "sync now",
    "sync status",
    "sync diagnose",
    "sync doctor",
    "tracker",
    "tracker providers",
    "tracker bind",
    "tracker status",
    "tracker unbind",
    "tracker map",
    "tracker map add",
    "tracker map list",
    "tracker sync",
    "tracker sync pull",
    "tracker sync push",
    "tracker sync run",
    "tracker sync publish",
];

/// The README's compatibility table: one row per 2.1.3 command, and what
/// each row claims holds for this CLI's grammar.
#[test]
fn the_readme_compatibility_table_is_true() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("<!-- compat-table: begin -->")
        .expect("table start marker");
    let end = readme
        .find("<!-- compat-table: end -->")
        .expect("table end marker");
    let mut rows = std::collections::BTreeMap::new();
    for line in readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `spec-kitty "))
    {
        let cells: Vec<&str> = line.split(" | ").collect();
        let path = cells[0]
            .trim_start_matches("| `spec-kitty ")
            .trim_end_matches('`');
        assert!(
            rows.insert(path.to_string(), cells[1].trim().to_string())
                .is_none(),
            "row twice: {path}"
        );
    }
    let listed: std::collections::BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    let want: std::collections::BTreeSet<&str> = PY_213_COMMANDS.iter().copied().collect();
    assert_eq!(listed, want, "the table lists exactly 2.1.3's commands");
    let w = World::bare("x");
    for (path, status) in &rows {
        let mut args = vec!["spec-kitty"];
        args.extend(path.split(' '));
        args.push("--help");
        let parsed = spec_kitty::cli::Cli::try_parse_from(&args);
        let accepted = matches!(&parsed, Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp);
        match status.as_str() {
            "supported" | "differs" => assert!(
                accepted,
                "README says `{path}` is {status}, the CLI refuses it"
            ),
            "not provided" => {
                assert!(
                    !accepted,
                    "README says `{path}` is not provided, the CLI accepts it: update the row"
                );
                let o = w.run(&args[1..args.len() - 1]);
                assert!(
                    matches!(o.status.code(), Some(2 | 5)),
                    "{path}: {}",
                    stderr(&o)
                );
            }
            other => panic!("`{path}`: unknown status {other:?}"),
        }
    }
}
