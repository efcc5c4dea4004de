//! Project identity in `.kittify/config.yaml`, through the real binary:
//! init, backfill that keeps every other byte, slug rules, the 16-process
//! first-write-wins race, corrupt YAML and read-only configs, and the
//! origin fields (team, repo slug) of every event.

use crate::common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

fn is_uuid4(s: &str) -> bool {
    s.len() == 36 && s.as_bytes()[14] == b'4' && spec_kitty_protocol::envelope::is_uuid(s)
}

#[test]
fn init_creates_identity_and_keeps_it_on_rerun() {
    let w = World::bare("parent");
    let out = w.json(&["init", "My_Project"]);
    let root = w.repo.join("My_Project");
    assert!(root.join(".git").is_dir() && root.join("kitty-specs").is_dir());
    let cfg = fs::read_to_string(root.join(".kittify/config.yaml")).unwrap();
    let uuid = out["project_uuid"].as_str().unwrap().to_string();
    assert!(is_uuid4(&uuid), "{uuid}");
    assert_eq!(out["project_slug"], "my-project");
    assert_eq!(
        out["node_id"],
        spec_kitty_protocol::node_id().as_str(),
        "node_id as the Python CLI computes it"
    );
    assert_eq!(
        cfg,
        format!("project:\n  uuid: {uuid}\n  slug: my-project\n  node_id: {}\nsync:\n  auto_start: true\n", out["node_id"].as_str().unwrap())
    );
    // Rerun (from inside): same identity, file untouched.
    let o = w.run_in(&root, &["init", "--here", "--json"]);
    assert!(o.status.success());
    let again: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(again["project_uuid"], uuid.as_str());
    assert_eq!(
        fs::read_to_string(root.join(".kittify/config.yaml")).unwrap(),
        cfg
    );
    // --no-git
    w.ok(&["init", "plain", "--no-git"]);
    assert!(!w.repo.join("plain/.git").exists());
    assert!(w.repo.join("plain/.kittify/config.yaml").is_file());
}

#[test]
fn backfill_before_first_event_keeps_other_keys_comments_and_order() {
    let w = World::with_wps(1);
    let original = "# Managed by spec-kitty and by hand.\nvcs:\n  type: git   # do not change\nagents:\n  available: [claude, codex]\n\nproject:\n    slug: handpicked   # chosen by a human\n\n# sync settings below\nsync:\n  auto_start: false\n";
    fs::write(w.repo.join(".kittify/config.yaml"), original).unwrap();
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    let cfg = w.config();
    let uuid = w.config_uuid();
    let node = spec_kitty_protocol::node_id();
    assert_eq!(
        cfg,
        format!("# Managed by spec-kitty and by hand.\nvcs:\n  type: git   # do not change\nagents:\n  available: [claude, codex]\n\nproject:\n    slug: handpicked   # chosen by a human\n    uuid: {uuid}\n    node_id: {node}\n\n# sync settings below\nsync:\n  auto_start: false\n")
    );
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].project_uuid.as_deref(), Some(uuid.as_str()));
    assert_eq!(evs[0].project_slug.as_deref(), Some("handpicked"));
    // A second command reads the same identity and writes nothing.
    w.ok(&["tasks", "finalize"]);
    assert_eq!(w.config(), cfg);
}

#[test]
fn slug_comes_from_origin_remote_in_every_form_else_directory() {
    for (url, slug, repo_slug) in [
        (
            "git@github.com:Acme/Widget_Factory.git",
            "widget-factory",
            Some("Acme/Widget_Factory"),
        ),
        (
            "https://github.com/acme/spec-kitty",
            "spec-kitty",
            Some("acme/spec-kitty"),
        ),
        (
            "ssh://git@gitlab.example.com/org/team/Tool.git",
            "tool",
            Some("org/team/Tool"),
        ),
        ("/srv/git/Local Repo.git", "local-repo", None),
    ] {
        let w = World::bare("Some Dir");
        w.git(&["init", "-q", "-b", "main"]);
        w.git(&["remote", "add", "origin", url]);
        w.git(&["commit", "-q", "--allow-empty", "-m", "root"]);
        let out = w.json(&["init", "--here"]);
        assert_eq!(out["project_slug"], slug, "{url}");
        w.ok(&["specify", "x"]);
        let evs = w.events();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].repo_slug.as_deref(), repo_slug, "{url}");
        assert_eq!(evs[0].project_slug.as_deref(), Some(slug));
    }
    let w = World::bare("Dir_Name  With Spaces");
    let out = w.json(&["init", "--here", "--no-git"]);
    assert_eq!(out["project_slug"], "dir-name-with-spaces");
    w.ok(&["specify", "x"]);
    let e = &w.events()[0];
    assert_eq!(
        (
            e.git_branch.clone(),
            e.head_commit_sha.clone(),
            e.repo_slug.clone()
        ),
        (None, None, None)
    );
}

#[test]
fn git_facts_match_git_itself_including_packed_refs() {
    let w = World::with_wps(1);
    w.git(&["commit", "-q", "--allow-empty", "-m", "second"]);
    w.git(&["pack-refs", "--all"]);
    assert!(
        !w.repo.join(".git/refs/heads/main").exists(),
        "ref is packed"
    );
    w.ok(&["agent", "tasks", "add-history", "WP01", "--note", "n"]);
    let e = &w.events()[0];
    assert_eq!(
        e.head_commit_sha.as_deref(),
        Some(w.git(&["rev-parse", "HEAD"]).trim())
    );
    assert_eq!(e.git_branch.as_deref(), Some("main"));
    // Detached HEAD reads as "HEAD", as `git rev-parse --abbrev-ref HEAD` does.
    let sha = w.git(&["rev-parse", "HEAD"]).trim().to_string();
    w.git(&["checkout", "-q", "--detach"]);
    w.clear_spool();
    w.ok(&["agent", "tasks", "add-history", "WP01", "--note", "n"]);
    let e = &w.events()[0];
    assert_eq!(e.git_branch.as_deref(), Some("HEAD"));
    assert_eq!(e.head_commit_sha.as_deref(), Some(sha.as_str()));
}

#[test]
fn team_slug_comes_from_credentials() {
    let w = World::with_wps(1);
    fs::write(
        w.home.join("credentials"),
        "[tokens]\naccess = \"secret\"\n\n[user]\nusername = \"rob\"\nteam_slug = \"acme-team\"\n",
    )
    .unwrap();
    w.ok(&["agent", "tasks", "add-history", "WP01", "--note", "n"]);
    let e = &w.events()[0];
    assert_eq!(e.team_slug, "acme-team");
    assert!(!e.to_json().contains("secret"));
}

#[test]
fn sixteen_processes_racing_on_a_fresh_config_agree_on_one_uuid() {
    let w = World::with_wps(1);
    fs::remove_file(w.repo.join(".kittify/config.yaml")).unwrap();
    let children: Vec<_> = (0..16)
        .map(|i| {
            w.cmd_in(&w.repo, &add_history("WP01", &format!("racer {i}"), &[]))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut guard = Guard(children);
    for c in guard.0.iter_mut() {
        assert!(c.wait().unwrap().success());
    }
    let cfg = w.config();
    assert_eq!(cfg.matches("uuid:").count(), 1, "{cfg}");
    let uuid = w.config_uuid();
    let evs = w.events();
    assert_eq!(evs.len(), 16);
    for e in &evs {
        assert_eq!(
            e.project_uuid.as_deref(),
            Some(uuid.as_str()),
            "every process emits the persisted UUID"
        );
    }
    assert!(
        cfg.contains("auto_start: true"),
        "a fresh config gets sync.auto_start: {cfg}"
    );
}

struct Guard(Vec<std::process::Child>);
impl Drop for Guard {
    fn drop(&mut self) {
        for c in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn corrupt_yaml_is_kept_aside_and_replaced_with_a_fresh_identity() {
    let w = World::with_wps(1);
    let old_uuid = w.config_uuid();
    let corrupt = "project:\n  uuid: [unclosed\n  slug: : :\n";
    fs::write(w.repo.join(".kittify/config.yaml"), corrupt).unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("Warning:").count(), 1, "{err}");
    assert!(
        err.contains("not valid YAML") && err.contains("config.yaml.corrupt-"),
        "{err}"
    );
    let kept = w.kept_configs();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        fs::read_to_string(&kept[0]).unwrap(),
        corrupt,
        "kept byte-for-byte"
    );
    let new_uuid = w.config_uuid();
    assert_ne!(new_uuid, old_uuid);
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].project_uuid.as_deref(), Some(new_uuid.as_str()));
}

/// Makes `.kittify/` unwritable. Root ignores permission bits, so as root
/// the command runs as `nobody` (uid 65534) on a world-readable tree.
fn run_read_only(w: &World, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let kittify = w.repo.join(".kittify");
    fs::set_permissions(
        kittify.join("config.yaml"),
        fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    fs::set_permissions(&kittify, fs::Permissions::from_mode(0o555)).unwrap();
    let mut c = w.cmd_in(&w.repo, args);
    if spec_kitty_protocol::identity::current_uid() == 0 {
        for dir in [w.tmp.path(), &w.home] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
        }
        chmod_tree(&w.repo.join("kitty-specs"), 0o777, 0o666);
        fs::set_permissions(&w.repo, fs::Permissions::from_mode(0o755)).unwrap();
        // The checkout itself may sit in a directory `nobody` cannot enter
        // (e.g. a 0700 mktemp dir): run a copy from the world-readable temp dir.
        let bin = w.tmp.path().join("spec-kitty-as-nobody");
        fs::copy(BIN, &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        c = std::process::Command::new(&bin);
        c.args(args).current_dir(&w.repo);
        git_env(&mut c, &w.home);
        c.uid(65534).gid(65534);
    }
    let o = c.output().unwrap();
    fs::set_permissions(&kittify, fs::Permissions::from_mode(0o755)).unwrap();
    o
}

fn chmod_tree(p: &std::path::Path, dir_mode: u32, file_mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(dir_mode)).unwrap();
    for e in fs::read_dir(p).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            chmod_tree(&e.path(), dir_mode, file_mode);
        } else {
            fs::set_permissions(e.path(), fs::Permissions::from_mode(file_mode)).unwrap();
        }
    }
}

#[test]
fn read_only_config_gives_in_memory_identity_one_warning_and_success() {
    let w = World::with_wps(1);
    fs::write(w.repo.join(".kittify/config.yaml"), "vcs: git\n").unwrap();
    // (No commit: the repository is not writable for this user either.)
    let o = run_read_only(&w, &move_task("WP01", "doing", &["--no-auto-commit"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("Warning:").count(), 1, "{err}");
    assert!(
        err.contains("not writable") && err.contains("in-memory project identity"),
        "{err}"
    );
    assert_eq!(w.config(), "vcs: git\n", "config untouched");
    let evs = w.events();
    assert_eq!(evs.len(), 1);
    let uuid = evs[0]
        .project_uuid
        .clone()
        .expect("in-memory identity still has a uuid");
    assert!(is_uuid4(&uuid));
    assert_eq!(evs[0].project_slug.as_deref(), Some("demo-repo"));
    assert!(
        !err.contains(spec_kitty_emit_warning()),
        "uuid present, so no missing-uuid warning"
    );
    assert!(w.read(&w.wp_path("WP01")).contains("lane: \"in_progress\""));
}

fn spec_kitty_emit_warning() -> &'static str {
    spec_kitty::emit::MISSING_UUID_WARNING
}

#[test]
fn missing_uuid_warning_text_is_exact() {
    assert_eq!(
        spec_kitty::emit::MISSING_UUID_WARNING,
        "Event missing project_uuid; queued locally only"
    );
}

#[test]
fn events_carry_this_machines_node_id_not_the_one_in_a_cloned_config() {
    let w = World::with_wps(1);
    let cfg = w.config();
    let other = "0123456789ab";
    let here = spec_kitty_protocol::node_id();
    fs::write(
        w.repo.join(".kittify/config.yaml"),
        cfg.replace(&here, other),
    )
    .unwrap();
    w.ok(&["agent", "tasks", "add-history", "WP01", "--note", "n"]);
    assert_eq!(w.events()[0].node_id, here);
    assert!(
        w.config().contains(other),
        "the recorded node_id is left alone"
    );
}

/// `node_id` as the Python CLI computes it, by python3 itself on this
/// machine: its own `socket.gethostname()` and `getpass.getuser()` (the
/// LOGNAME, USER, LNAME, USERNAME, password-database order) and the 2.1.3
/// formula `sha256(f"{host}:{user}").hexdigest()[:12]`.
fn python_node_id(env: &[(&str, Option<&str>)]) -> String {
    const SCRIPT: &str = "import getpass, hashlib, socket\n\
        print(hashlib.sha256(f'{socket.gethostname()}:{getpass.getuser()}'.encode()).hexdigest()[:12])";
    let mut c = std::process::Command::new("python3");
    c.args(["-c", SCRIPT]);
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c
        .output()
        .expect("python3 runs (scripts/setup-test-deps installs it)");
    assert!(o.status.success(), "python3: {}", stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn node_id_matches_what_python_computes_on_this_machine() {
    // Each case sets or removes the variables getpass.getuser() reads, so
    // the lookup order is compared, not only the hash.
    let cases: [&[(&str, Option<&str>)]; 5] = [
        &[],
        &[("LOGNAME", Some("py-logname")), ("USER", Some("py-user"))],
        &[("LOGNAME", Some("")), ("USER", Some("py-user"))],
        &[
            ("LOGNAME", None),
            ("USER", None),
            ("LNAME", None),
            ("USERNAME", Some("py-username")),
        ],
        // None set: the password database (uid → name).
        &[
            ("LOGNAME", None),
            ("USER", None),
            ("LNAME", None),
            ("USERNAME", None),
        ],
    ];
    let w = World::bare("parent");
    let mut seen = std::collections::HashSet::new();
    for (i, env) in cases.iter().enumerate() {
        let name = format!("case-{i}");
        let mut c = w.cmd_in(&w.repo, &["init", &name, "--json"]);
        for (k, v) in env.iter() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        let o = c.output().expect("run spec-kitty");
        assert!(o.status.success(), "init: {}", stderr(&o));
        let out: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let python = python_node_id(env);
        assert_eq!(
            out["node_id"].as_str(),
            Some(python.as_str()),
            "node_id differs from the Python CLI's with env {env:?}"
        );
        seen.insert(python);
    }
    assert!(
        seen.len() >= 3,
        "the cases used different user names: {seen:?}"
    );
}
