//! The rest of 2.1.3's command surface: `-v`, `auth login -p/-f`, the
//! `sync` flags and checks, and the commands this CLI does not provide.

mod common;

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
