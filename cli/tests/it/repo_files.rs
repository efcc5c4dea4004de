//! Repository files a cloned repository can plant, through the real binary:
//! temp-file symlinks at every predictable name, links leading out of the
//! repository and inside it, FIFOs, directories and sockets named like WP
//! files, an unwritable config (one stable identity), one bad WP file on the
//! board, and a WP whose history outgrew the YAML parser's fixed budget.

use crate::common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd`, killing it after 20 s: a command that opens a FIFO and waits
/// would otherwise hang the test run. Returns `None` when it had to be killed.
fn run_bounded(mut cmd: Command) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spec-kitty");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bounded(w: &World, args: &[&str]) -> Output {
    run_bounded(w.cmd_in(&w.repo, args))
        .unwrap_or_else(|| panic!("spec-kitty {args:?} hung (killed after 20 s)"))
}

fn is_regular(p: &Path) -> bool {
    fs::symlink_metadata(p).unwrap().file_type().is_file()
}

fn is_link(p: &Path) -> bool {
    fs::symlink_metadata(p).unwrap().file_type().is_symlink()
}

/// The pids the old writer could have used in a child: every pid up to
/// `pid_max` when that is small enough to plant (32768 by default), else
/// a wide window after ours.
fn pid_range() -> std::ops::RangeInclusive<u32> {
    let max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    if max <= 65536 {
        1..=max
    } else {
        let me = std::process::id();
        me.saturating_sub(1000)..=me.saturating_add(60000).min(max)
    }
}

/// The adversarial repro (finding 1): a repository ships symlinks at every
/// `.config.yaml.<pid>.tmp` and `.WP01-….md.<pid>.tmp` name, all pointing
/// at a file outside. `status` (which backfills `node_id` into the config)
/// and `move-task` must leave that file alone and keep config.yaml and the
/// WP file regular files.
#[test]
fn planted_temp_file_links_in_a_cloned_repository_are_never_followed() {
    let w = World::bare("clone");
    let victim = w.tmp.path().join("victim-rc");
    let victim_text = "# my rc\n";
    fs::write(&victim, victim_text).unwrap();
    // The attacker's repository.
    let evil = w.tmp.path().join("evil");
    fs::create_dir(&evil).unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let mut c = Command::new("git");
        c.args(args).current_dir(dir);
        git_env(&mut c, &w.home);
        let o = c.output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    };
    git(&evil, &["init", "-q", "-b", "main"]);
    let mut c = w.cmd_in(&evil, &["init", "--here"]);
    assert!(c.output().unwrap().status.success());
    for args in [&["specify", "demo"][..], &["tasks", "add", "Task 1"]] {
        let o = w.cmd_in(&evil, args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    // No node_id: every command's identity backfill rewrites the config.
    fs::write(
        evil.join(".kittify/config.yaml"),
        "project:\n  uuid: 11111111-2222-4333-8444-555555555555\n  slug: evil\nnotes: |\n  echo PWNED\n",
    )
    .unwrap();
    let tasks = evil.join("kitty-specs/001-demo/tasks");
    let wp_name = fs::read_dir(&tasks)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("WP01"))
        .unwrap();
    for pid in pid_range() {
        symlink(
            &victim,
            evil.join(format!(".kittify/.config.yaml.{pid}.tmp")),
        )
        .unwrap();
        symlink(&victim, tasks.join(format!(".{wp_name}.{pid}.tmp"))).unwrap();
    }
    git(&evil, &["add", "-A"]);
    git(&evil, &["commit", "-q", "-m", "innocent"]);
    git(
        w.tmp.path(),
        &[
            "clone",
            "-q",
            evil.to_str().unwrap(),
            w.repo.to_str().unwrap(),
        ],
    );
    w.clear_spool();
    let cfg = w.repo.join(".kittify/config.yaml");
    let wp = w.repo.join("kitty-specs/001-demo/tasks").join(&wp_name);
    assert!(
        is_link(&w.repo.join(".kittify/.config.yaml.1.tmp")),
        "git kept the links"
    );

    // A command that back-fills the identity (reads like `status` write
    // nothing at all), and announces nothing new.
    let o = bounded(&w, &["tasks", "finalize"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        victim_text,
        "the back-fill wrote through a planted link"
    );
    assert!(is_regular(&cfg), "config.yaml must stay a regular file");
    assert!(
        w.config().contains("node_id:"),
        "the backfill happened: {}",
        w.config()
    );

    let o = bounded(
        &w,
        &["agent", "tasks", "move-task", "WP01", "--to", "doing"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        victim_text,
        "move-task wrote through a planted link"
    );
    assert!(is_regular(&wp), "the WP file must stay a regular file");
    assert!(w.read(&wp).contains("lane: \"in_progress\""));
    assert_eq!(w.events().len(), 1);
}

/// A victim file outside the repository and its bytes.
fn victim(w: &World) -> (PathBuf, &'static [u8]) {
    let p = w.tmp.path().join("outside.txt");
    let bytes: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n";
    fs::write(&p, bytes).unwrap();
    (p, bytes)
}

#[test]
fn a_wp_file_linked_out_of_the_repository_is_refused_by_name_never_skipped() {
    let w = World::with_wps(2);
    let wp2 = w.wp_path("WP02");
    let outside = w.tmp.path().join("WP02-elsewhere.md");
    fs::rename(&wp2, &outside).unwrap();
    symlink(&outside, &wp2).unwrap();
    let before = fs::read(&outside).unwrap();
    let o = bounded(
        &w,
        &["agent", "tasks", "move-task", "WP02", "--to", "doing"],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&wp2.display().to_string()) && err.contains("outside the repository"),
        "names the path and the rule: {err}"
    );
    assert!(!err.contains("not found"), "{err}");
    assert_eq!(fs::read(&outside).unwrap(), before);
    assert!(is_link(&wp2));
    assert!(w.events().is_empty());
    // The board shows WP01 and marks WP02 with its file and the rule.
    let o = bounded(&w, &["status", "--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["lanes"]["planned"][0]["wp_id"], "WP01");
    assert_eq!(v["unreadable"][0]["wp_id"], "WP02");
    assert_eq!(v["unreadable"][0]["path"], wp2.display().to_string());
    assert!(v["unreadable"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("outside the repository"));
    // Other work goes on.
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
}

#[test]
fn a_tasks_directory_linked_out_of_the_repository_is_never_written_through() {
    let w = World::with_wps(2);
    let tasks = w.feature_dir().join("tasks");
    let outside = w.tmp.path().join("outtasks");
    fs::rename(&tasks, &outside).unwrap();
    symlink(&outside, &tasks).unwrap();
    let snapshot = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&outside);
    for args in [
        &["agent", "tasks", "move-task", "WP02", "--to", "doing"][..],
        &["agent", "tasks", "add-history", "WP01", "--note", "n"],
        &["tasks", "add", "Third"],
    ] {
        let o = bounded(&w, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(5), "{args:?}: {err}");
        assert!(
            err.contains(&tasks.display().to_string()) && err.contains("outside the repository"),
            "{args:?}: {err}"
        );
        assert_eq!(
            snapshot(&outside),
            before,
            "{args:?} wrote outside the repository"
        );
    }
    assert!(w.events().is_empty());
}

#[test]
fn links_inside_the_repository_are_followed_and_stay_links() {
    let w = World::with_wps(1);
    // The WP file lives elsewhere in the repository; tasks/ links to it.
    let wp = w.wp_path("WP01");
    let shared = w.repo.join("shared");
    fs::create_dir(&shared).unwrap();
    let real_wp = shared.join("WP01.md");
    fs::rename(&wp, &real_wp).unwrap();
    symlink("../../../shared/WP01.md", &wp).unwrap();
    w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(is_link(&wp), "the WP link was replaced by a file");
    assert!(w.read(&real_wp).contains("lane: \"in_progress\""));
    // The config too: a backfill writes through the link and keeps it.
    let cfg = w.repo.join(".kittify/config.yaml");
    let real_cfg = shared.join("config.yaml");
    fs::write(&real_cfg, "# shared\nproject:\n  slug: shared\n").unwrap();
    fs::remove_file(&cfg).unwrap();
    symlink("../shared/config.yaml", &cfg).unwrap();
    // `tasks finalize` with nothing to announce: only the back-fill writes
    // (`status` is a read and writes nothing).
    let o = w.run(&["tasks", "finalize"]);
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    assert!(is_link(&cfg), "config.yaml link replaced by a file");
    let text = w.read(&real_cfg);
    assert!(
        text.starts_with("# shared\nproject:\n  slug: shared\n  uuid: "),
        "{text}"
    );
    assert!(text.contains("node_id: "), "{text}");
}

#[test]
fn a_config_linked_out_of_the_repository_is_left_alone_and_work_goes_on() {
    let w = World::with_wps(1);
    let (outside, bytes) = victim(&w);
    let cfg = w.repo.join(".kittify/config.yaml");
    fs::remove_file(&cfg).unwrap();
    symlink(&outside, &cfg).unwrap();
    for _ in 0..2 {
        let o = w.run(&["agent", "tasks", "add-history", "WP01", "--note", "n"]);
        let err = stderr(&o);
        assert!(o.status.success(), "{err}");
        assert_eq!(err.matches("Warning:").count(), 1, "{err}");
        assert!(
            err.contains("outside the repository") && err.contains("in-memory"),
            "{err}"
        );
    }
    assert_eq!(
        fs::read(&outside).unwrap(),
        bytes,
        "the file outside was touched"
    );
    assert!(is_link(&cfg));
    let evs = w.events();
    assert_eq!(evs.len(), 2);
    assert!(evs[0].project_uuid.is_some());
    assert_eq!(evs[0].project_uuid, evs[1].project_uuid, "one identity");
}

/// Held up before and must stay so under the link rule: a config linked to
/// a non-YAML file inside the repository is moved aside (the link itself),
/// and the file it pointed to keeps its bytes.
#[test]
fn a_config_linked_to_a_non_yaml_file_inside_is_moved_aside_and_its_target_kept() {
    let w = World::with_wps(1);
    let target = w.repo.join("notes.txt");
    let bytes = b"root:x:0:0:root:/root:/bin/bash\n- and a list\n";
    fs::write(&target, bytes).unwrap();
    let cfg = w.repo.join(".kittify/config.yaml");
    fs::remove_file(&cfg).unwrap();
    symlink("../notes.txt", &cfg).unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("config.yaml.corrupt-"), "{err}");
    assert_eq!(
        fs::read(&target).unwrap(),
        bytes,
        "the link's target was touched"
    );
    assert!(is_regular(&cfg), "a fresh config in place of the link");
    let kept = w.kept_configs();
    assert_eq!(kept.len(), 1);
    assert!(is_link(&kept[0]), "the link itself was kept aside");
    assert_eq!(
        w.events()[0].project_uuid.as_deref(),
        Some(w.config_uuid().as_str())
    );
}

/// A FIFO, a directory and a socket named like WP02: every command names
/// it (none hangs on the FIFO), and `tasks add` never makes a second WP02.
#[test]
fn special_files_named_like_a_wp_file_are_errors_naming_them() {
    for kind in ["fifo", "directory", "socket"] {
        let w = World::with_wps(1);
        let tasks = w.feature_dir().join("tasks");
        let odd = tasks.join("WP02-odd.md");
        let _listener;
        match kind {
            "fifo" => {
                let made = Command::new("mkfifo").arg(&odd).status().unwrap();
                assert!(made.success());
            }
            "directory" => fs::create_dir(&odd).unwrap(),
            _ => _listener = Some(std::os::unix::net::UnixListener::bind(&odd).unwrap()),
        }
        let says = |o: &Output, code: i32, args: &[&str]| {
            let err = stderr(o);
            assert_eq!(o.status.code(), Some(code), "[{kind}] {args:?}: {err}");
            assert!(
                err.contains(&odd.display().to_string()) && err.contains("not a regular file"),
                "[{kind}] {args:?} names it: {err}"
            );
        };
        let args = ["agent", "tasks", "move-task", "WP02", "--to", "doing"];
        says(&bounded(&w, &args), 4, &args);
        let args = ["tasks", "add", "Another"];
        says(&bounded(&w, &args), 4, &args);
        let wp02: Vec<_> = fs::read_dir(&tasks)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("WP02"))
            .collect();
        assert_eq!(wp02.len(), 1, "[{kind}] a second WP02 was created");
        let o = bounded(&w, &["status"]);
        says(&o, 4, &["status"]);
        let board = stdout(&o);
        assert!(board.contains("WP01  Task 1"), "[{kind}] {board}");
        assert!(
            board.contains("UNREADABLE (1)") && board.contains("WP02  WP02-odd.md"),
            "[{kind}] {board}"
        );
        assert!(w.events().is_empty(), "[{kind}]");
        w.ok(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    }
}

/// Finding 5: with a config that cannot be written, every command used to
/// invent a new project_uuid. Now the same checkout has one identity.
#[test]
fn an_unwritable_config_gives_one_stable_identity_across_commands() {
    let w = World::bare("no-config");
    w.git(&["init", "-q", "-b", "main"]);
    w.git(&["commit", "-q", "--allow-empty", "-m", "root"]);
    fs::write(w.repo.join(".kittify"), "").unwrap();
    fs::create_dir(w.repo.join("kitty-specs")).unwrap();
    let mut warnings = 0;
    for args in [
        &["specify", "x"][..],
        &["tasks", "add", "A"],
        &["agent", "tasks", "move-task", "WP01", "--to", "doing"],
    ] {
        let o = w.run(args);
        let err = stderr(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert_eq!(err.matches("Warning:").count(), 1, "{args:?}: {err}");
        assert!(err.contains("in-memory project identity"), "{err}");
        warnings += 1;
    }
    assert_eq!(warnings, 3);
    let evs = w.events();
    assert_eq!(evs.len(), 3);
    let uuids: std::collections::BTreeSet<_> = evs
        .iter()
        .map(|e| e.project_uuid.clone().unwrap())
        .collect();
    assert_eq!(uuids.len(), 1, "one project, not one per event: {uuids:?}");
    assert!(spec_kitty_protocol::envelope::is_uuid(
        uuids.first().unwrap()
    ));
    // Another checkout on the same machine is another project.
    let w2 = World::bare("no-config");
    w2.git(&["init", "-q", "-b", "main"]);
    fs::write(w2.repo.join(".kittify"), "").unwrap();
    fs::create_dir(w2.repo.join("kitty-specs")).unwrap();
    w2.ok(&["specify", "x"]);
    assert_ne!(w2.events()[0].project_uuid.as_ref(), uuids.first());
}

/// Runs `args` with `.kittify/` read-only. Root ignores permission bits,
/// so as root the command runs as `nobody` (a copy of the binary in the
/// world-readable temp dir; the repository's other files writable by all).
fn run_with_read_only_kittify(w: &World, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    let kittify = w.repo.join(".kittify");
    mode(&kittify, 0o555);
    let mut c = w.cmd_in(&w.repo, args);
    if spec_kitty_protocol::identity::current_uid() == 0 {
        for dir in [w.tmp.path(), &w.home, &w.repo] {
            mode(dir, 0o777);
        }
        let status = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(w.repo.join("kitty-specs"))
            .arg(&w.home)
            .status()
            .unwrap();
        assert!(status.success());
        let bin = w.tmp.path().join("spec-kitty-as-nobody");
        if !bin.exists() {
            fs::copy(BIN, &bin).unwrap();
            mode(&bin, 0o755);
        }
        c = Command::new(&bin);
        c.args(args).current_dir(&w.repo);
        git_env(&mut c, &w.home);
        c.uid(65534).gid(65534);
    }
    let o = run_bounded(c).expect("not hung");
    mode(&kittify, 0o755);
    o
}

/// The same with a read-only `.kittify/` holding a config without a uuid.
#[test]
fn a_read_only_config_gives_one_stable_identity_across_commands() {
    let w = World::project();
    fs::write(w.repo.join(".kittify/config.yaml"), "vcs: git\n").unwrap();
    for args in [
        // No commit: git refuses a repository owned by another user, and
        // that warning is not what this test counts.
        &["specify", "x", "--no-auto-commit"][..],
        &["tasks", "add", "A"],
        &move_task("WP01", "doing", &["--no-auto-commit"]),
    ] {
        let o = run_with_read_only_kittify(&w, args);
        let err = stderr(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert_eq!(err.matches("Warning:").count(), 1, "{args:?}: {err}");
        assert!(err.contains("not writable"), "{err}");
    }
    assert_eq!(w.config(), "vcs: git\n", "config untouched");
    let evs = w.events();
    assert_eq!(evs.len(), 3);
    let uuids: std::collections::BTreeSet<_> = evs
        .iter()
        .map(|e| e.project_uuid.clone().unwrap())
        .collect();
    assert_eq!(uuids.len(), 1, "one project, not one per event: {uuids:?}");
}

#[test]
fn a_project_uuid_that_is_not_a_uuid_is_replaced_with_a_warning() {
    let w = World::with_wps(1);
    let cfg = w.config();
    let old = w.config_uuid();
    fs::write(
        w.repo.join(".kittify/config.yaml"),
        cfg.replace(&old, "not-a-uuid"),
    )
    .unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("Warning:").count(), 1, "{err}");
    assert!(
        err.contains("project.uuid 'not-a-uuid'") && err.contains("not a UUID"),
        "{err}"
    );
    let new = w.config_uuid();
    assert!(spec_kitty_protocol::envelope::is_uuid(&new), "{new}");
    assert!(
        err.contains(&new),
        "the warning says what replaced it: {err}"
    );
    assert_eq!(w.events()[0].project_uuid.as_deref(), Some(new.as_str()));
}

/// Finding 6: one malformed WP file used to hide the whole board.
#[test]
fn one_malformed_wp_file_does_not_hide_the_board() {
    let w = World::with_wps(3);
    w.ok(&["agent", "tasks", "move-task", "WP03", "--to", "doing"]);
    let bad = w.wp_path("WP02");
    fs::write(
        &bad,
        "---\nwork_package_id: WP02\ntitle: [unclosed\nlane: planned\n---\n",
    )
    .unwrap();
    let o = w.run(&["status"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let board = stdout(&o);
    assert!(board.starts_with("001-demo  0/3 done\n"), "{board}");
    assert!(board.contains("PLANNED (1)\n  WP01  Task 1\n"), "{board}");
    assert!(board.contains("DOING (1)\n  WP03  Task 3\n"), "{board}");
    let file = bad.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        board.contains(&format!(
            "UNREADABLE (1)\n  WP02  {file}: malformed frontmatter in {}",
            bad.display()
        )),
        "{board}"
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("Error: malformed frontmatter in ")
            && err.contains(&bad.display().to_string()),
        "{err}"
    );
    // --json: one object, with the bad file and its reason.
    let o = w.run(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(4));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "one JSON object: {out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["total"], 3);
    assert_eq!(v["lanes"]["planned"][0]["wp_id"], "WP01");
    assert_eq!(v["lanes"]["doing"][0]["wp_id"], "WP03");
    assert_eq!(v["unreadable"][0]["wp_id"], "WP02");
    assert_eq!(v["unreadable"][0]["path"], bad.display().to_string());
    assert!(v["unreadable"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("malformed frontmatter"));
    // A good board says so with an empty list and exit 0.
    fs::remove_file(&bad).unwrap();
    let v = w.json(&["status"]);
    assert_eq!(v["unreadable"], serde_json::json!([]));
}

/// A WP whose history grew past the parser's old fixed node budget
/// (250 000 nodes, about 22 000 entries: 11 nodes each) still reads and
/// still moves.
#[test]
fn a_wp_with_a_huge_history_still_moves_and_shows() {
    let w = World::with_wps(1);
    let path = w.wp_path("WP01");
    let text = w.read(&path);
    let close = text.find("\n---\n").unwrap() + 1;
    let mut entries = String::new();
    for i in 0..23_000 {
        entries.push_str(&format!(
            "- timestamp: '2026-01-01T00:00:00Z'\n  lane: planned\n  agent: bot{i}\n  shell_pid: ''\n  action: Note {i}\n"
        ));
    }
    let huge = format!("{}{entries}{}", &text[..close], &text[close..]);
    fs::write(&path, &huge).unwrap();
    let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", "doing"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = w.read(&path);
    assert!(after.contains("lane: \"in_progress\""));
    assert!(after.starts_with(&huge[..close].replace("lane: \"planned\"", "lane: \"in_progress\"")));
    assert!(after.contains(&entries), "every old entry kept");
    // History is read (for the log's bootstrap), never appended to.
    assert_eq!(after.matches("- timestamp:").count(), 23_001);
    let v = w.json(&["status"]);
    assert_eq!(v["lanes"]["doing"][0]["wp_id"], "WP01");
    assert_eq!(w.events().len(), 1);
}
