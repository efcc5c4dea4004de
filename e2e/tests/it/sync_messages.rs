//! What `sync status` and a spooling command say when something is wrong
//! (adversarial finding 7): one readable line that tells the truth, never a
//! Rust `Debug` dump, never a promise that will not be kept.

use spec_kitty_e2e::Sandbox;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_debug_dump(t: &str) {
    for dump in ["Error {", "kind:", "Some(", "Running {", "{ pid"] {
        assert!(!t.contains(dump), "a Rust Debug dump ({dump:?}) in:\n{t}");
    }
}

#[test]
fn status_with_an_unreadable_store_says_so_in_one_readable_line() {
    let sb = Sandbox::new();
    sb.project("unreadable", "unreadable-store");
    assert!(sb.daemon_pid().is_some());
    // The store path becomes something SQLite cannot open, under the
    // running daemon.
    let store = sb.paths().store();
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", store.display()));
    }
    std::fs::create_dir(&store).unwrap();
    let o = sb.cli(sb.root()).args(["sync", "status"]).output().unwrap();
    let t = text(&o);
    assert_no_debug_dump(&t);
    let line = t
        .lines()
        .find(|l| l.contains("could not report its status"))
        .unwrap_or_else(|| panic!("no line says the status could not be read:\n{t}"));
    assert!(
        line.contains(store.to_str().unwrap()),
        "names the store: {line}"
    );
}

#[test]
fn status_names_a_socket_path_blocked_by_a_regular_file() {
    let sb = Sandbox::new();
    let socket = sb.paths().socket();
    let dir = socket.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(&socket, "not a socket").unwrap();
    let o = sb.sk(sb.root(), &["sync", "status"]);
    let t = text(&o);
    assert!(
        !t.contains("starts with the next command"),
        "promises a start that cannot happen:\n{t}"
    );
    assert!(
        t.lines()
            .any(|l| l.contains(socket.to_str().unwrap()) && l.contains("regular file")),
        "names the blocked path and what is there:\n{t}"
    );
    let o = sb.sk(sb.root(), &["sync", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["blocked"]
            .as_str()
            .is_some_and(|b| b.contains("regular file")),
        "{v}"
    );
    assert_eq!(
        std::fs::read(&socket).unwrap(),
        b"not a socket",
        "the file is left alone"
    );
}

#[test]
fn refused_connections_are_not_reported_as_a_zero_ms_timeout() {
    // A daemon that holds its lock but refuses connections (as one does
    // while it stops): the lock is held here, and a stale socket refuses.
    let sb = Sandbox::new();
    let paths = sb.paths();
    let repo = sb.git_repo("refused", None);
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(paths.daemon_lock())
        .unwrap();
    lock.try_lock().expect("take the daemon lock");
    std::fs::write(paths.daemon_lock(), std::process::id().to_string()).unwrap();
    let dir = paths.socket_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(std::os::unix::net::UnixListener::bind(paths.socket()).unwrap()); // stale: refuses
    sb.sk(&repo, &["init", "--here"]);
    let o = sb.sk(&repo, &["specify", "refused-feature"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let line = err
        .lines()
        .find(|l| l.contains("spooled"))
        .unwrap_or_else(|| panic!("the event is spooled with a reason:\n{err}"));
    assert!(!line.contains("0 ms"), "a refusal is not a timeout: {line}");
    assert_no_debug_dump(line);
    assert!(
        line.contains("refused connections") && line.contains(&std::process::id().to_string()),
        "says what happened and who holds the lock: {line}"
    );
    assert!(!sb.spooled().is_empty());
    drop(lock);
}
