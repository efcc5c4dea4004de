//! Hostile files on the daemon's side: a corpus of malformed spool files,
//! broken Python `queue.db` files, a malformed `clock.json`, credentials
//! and `config.toml` — each with what the daemon says (log, status), what
//! happens to the file (moved to `spool/rejected/` with a reason, or left
//! byte for byte), that nothing else is lost, and that the daemon keeps
//! serving. (The CLI's side of configs, WP files and credentials is in
//! `cli/tests/`.)

use crate::faults_common;

use faults_common::*;
use spec_kitty_e2e::Sandbox;
use spec_kitty_protocol::ipc::{Request, Response};
use std::path::Path;

/// Emits one event and returns its Lamport value: the daemon still serves.
fn still_serves(sb: &Sandbox) -> u64 {
    let mut c = Client::connect(&sb.paths()).expect("daemon still answers");
    let (id, env) = envelope(Some(PROJECT));
    let (lamport, _, dup) = accepted(c.emit(&env).expect("emit"));
    assert!(!dup);
    assert!(rows(sb).iter().any(|r| r.event_id == id));
    lamport
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn malformed_spool_files_are_kept_in_rejected_with_a_reason_and_good_ones_ingested() {
    let sb = Sandbox::new();
    let paths = sb.paths();
    let spool = paths.spool_dir();
    std::fs::create_dir_all(&spool).unwrap();
    // Good files, interleaved by name with the bad ones.
    let good: Vec<String> = (0..4).map(|_| ulid()).collect();
    for id in &good {
        std::fs::write(paths.spool_file(id), envelope_with_id(id, Some(PROJECT))).unwrap();
    }
    let valid = envelope_with_id(&ulid(), Some(PROJECT));
    let mut huge = String::from("{\"event_id\": \"");
    huge.push_str(&"A".repeat(1_500_000));
    huge.push_str("\"}");
    let bad_type: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_str(&valid).unwrap();
        v["lamport_clock"] = serde_json::json!("zero");
        v
    };
    let bad_node: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_str(&valid).unwrap();
        v["event_id"] = serde_json::json!("not-a-ulid");
        v
    };
    let no_type: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_str(&valid).unwrap();
        v.as_object_mut().unwrap().remove("event_type");
        v
    };
    // (name, content, what the reason must mention)
    let corpus: Vec<(String, Vec<u8>, &str)> = vec![
        (
            format!("{}.json", ulid()),
            valid.as_bytes()[..valid.len() / 2].to_vec(),
            "JSON",
        ),
        (format!("{}.json", ulid()), Vec::new(), "JSON"),
        (
            format!("{}.json", ulid()),
            vec![0xff, 0xfe, 0x00, 0x42, 0x89, 0x50, 0x4e, 0x47],
            "UTF-8",
        ),
        (format!("{}.json", ulid()), b"[1, 2, 3]".to_vec(), ""),
        (format!("{}.json", ulid()), b"null".to_vec(), ""),
        (
            format!("{}.json", ulid()),
            bad_type.to_string().into_bytes(),
            "lamport_clock",
        ),
        (
            format!("{}.json", ulid()),
            bad_node.to_string().into_bytes(),
            "event_id",
        ),
        (
            format!("{}.json", ulid()),
            no_type.to_string().into_bytes(),
            "event_type",
        ),
        (format!("{}.json", ulid()), huge.into_bytes(), "field"),
    ];
    for (name, content, _) in &corpus {
        std::fs::write(spool.join(name), content).unwrap();
    }
    // Not spool events: a write in progress and files of other kinds.
    let untouched = [
        (".tmp-01ABC.json", b"{\"partial".to_vec()),
        ("notes.txt", b"hello".to_vec()),
        ("01ZZZ.json.swp", vec![0u8; 10]),
    ];
    for (name, content) in &untouched {
        std::fs::write(spool.join(name), content).unwrap();
    }

    let _d = Syncd::start(&sb);
    let stored: Vec<String> = rows(&sb).into_iter().map(|r| r.event_id).collect();
    assert_eq!(stored, good, "exactly the good files, in event_id order");
    let log = daemon_log(&sb);
    for (name, content, must) in &corpus {
        let kept = paths.spool_rejected_dir().join(name);
        assert!(
            kept.exists(),
            "{name} is kept in spool/rejected/ (spool: {:?})",
            std::fs::read_dir(&spool).unwrap().count()
        );
        assert_eq!(&read(&kept), content, "{name} kept byte for byte");
        let reason =
            String::from_utf8(read(&kept.with_file_name(format!("{name}.reason")))).unwrap();
        assert!(!reason.trim().is_empty(), "{name}: empty reason");
        assert!(
            reason.contains(must),
            "{name}: reason {reason:?} should mention {must:?}"
        );
        assert!(
            reason.len() < 1000,
            "{name}: the reason does not echo the file"
        );
        assert!(log.contains(name.as_str()), "the log names {name}");
        assert!(!spool.join(name).exists());
    }
    for (name, content) in &untouched {
        assert_eq!(&read(&spool.join(name)), content, "{name} left alone");
    }
    let s = status(&sb).unwrap();
    assert_eq!(s.spool_backlog, 0, "nothing left to ingest");
    still_serves(&sb);

    // The same corpus arriving while the daemon runs, on request.
    for (name, content, _) in &corpus {
        let late = name.replace(".json", "1.json");
        std::fs::write(spool.join(late), content).unwrap();
    }
    let late_good = ulid();
    std::fs::write(
        paths.spool_file(&late_good),
        envelope_with_id(&late_good, Some(PROJECT)),
    )
    .unwrap();
    let mut c = Client::connect(&paths).unwrap();
    match c.request(&Request::IngestSpool).unwrap() {
        Response::Done { message } => assert!(
            message.contains("1 ingested")
                && message.contains(&format!("{} rejected", corpus.len())),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(rows(&sb).iter().any(|r| r.event_id == late_good));
    still_serves(&sb);
}

fn python_queue(path: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
            event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT NULL,
            retry_count INTEGER DEFAULT 0, coalesce_key TEXT);",
    )
    .unwrap();
    db
}

#[test]
fn python_queue_db_of_garbage_bytes_is_left_alone_and_logged() {
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(paths.legacy_queue_db(), &garbage).unwrap();
    let _d = Syncd::start(&sb);
    assert_eq!(
        read(&paths.legacy_queue_db()),
        garbage,
        "queue.db untouched"
    );
    let log = daemon_log(&sb);
    assert!(
        log.contains("cannot read the Python queue") && log.contains("queue.db"),
        "the log says why queue.db was skipped:\n{log}"
    );
    assert!(rows(&sb).is_empty());
    still_serves(&sb);
}

#[test]
fn python_queue_db_with_a_foreign_schema_is_left_alone_and_logged() {
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    let db = rusqlite::Connection::open(paths.legacy_queue_db()).unwrap();
    db.execute_batch(
        "CREATE TABLE queue (id INTEGER PRIMARY KEY, payload BLOB);
         INSERT INTO queue (payload) VALUES (x'00ff');",
    )
    .unwrap();
    drop(db);
    let before = read(&paths.legacy_queue_db());
    let _d = Syncd::start(&sb);
    assert_eq!(read(&paths.legacy_queue_db()), before, "queue.db untouched");
    let log = daemon_log(&sb);
    assert!(
        log.contains("cannot read the Python queue"),
        "the log says why queue.db was skipped:\n{log}"
    );
    assert!(rows(&sb).is_empty());
    still_serves(&sb);
}

#[test]
fn python_queue_rows_with_invalid_json_are_parked_with_a_reason_and_the_rest_adopted() {
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    let db = python_queue(&paths.legacy_queue_db());
    let good = ulid();
    let good_data = envelope_with_id(&good, Some(PROJECT))
        .replace("\"lamport_clock\":0", "\"lamport_clock\":40");
    let broken = ulid();
    let array = ulid();
    for (id, data) in [
        (&broken, "{\"event_id\": \"truncated".to_string()),
        (&good, good_data.clone()),
        (&array, "[\"not\", \"an\", \"object\"]".to_string()),
    ] {
        db.execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?1, 'WPStatusChanged', ?2, 1)",
            [id, &data],
        )
        .unwrap();
    }
    drop(db);
    let before = read(&paths.legacy_queue_db());
    let _d = Syncd::start(&sb);
    assert_eq!(read(&paths.legacy_queue_db()), before, "queue.db untouched");
    let all = rows(&sb);
    let state = |id: &str| {
        all.iter()
            .find(|r| r.event_id == id)
            .unwrap_or_else(|| panic!("{id} not adopted: {all:?}"))
            .state
            .clone()
    };
    assert_eq!(state(&good), "pending");
    assert_eq!(state(&broken), "parked", "kept, never sent, never dropped");
    assert_eq!(state(&array), "parked");
    let s = status(&sb).unwrap();
    assert_eq!(s.parked_total, 2, "status counts the parked rows");
    for p in &s.parked {
        assert!(p.reason.contains("not a JSON object"), "{p:?}");
    }
    // The broken envelope is kept byte for byte for a person to look at.
    let db = rusqlite::Connection::open_with_flags(
        paths.store(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let kept: String = db
        .query_row(
            "SELECT envelope FROM events WHERE event_id = ?1",
            [&broken],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, "{\"event_id\": \"truncated");
    let lamport = still_serves(&sb);
    assert!(
        lamport > 40,
        "the clock rose above the adopted rows: {lamport}"
    );
}

#[test]
fn python_queue_row_with_an_absurd_lamport_value_does_not_break_the_clock() {
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    let db = python_queue(&paths.legacy_queue_db());
    let id = ulid();
    let data = envelope_with_id(&id, Some(PROJECT)).replace(
        "\"lamport_clock\":0",
        &format!("\"lamport_clock\":{}", i64::MAX),
    );
    db.execute(
        "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?1, 'WPStatusChanged', ?2, 1)",
        [&id, &data],
    )
    .unwrap();
    drop(db);
    let _d = Syncd::start(&sb);
    // The daemon must go on giving increasing Lamport values.
    let a = still_serves(&sb);
    let b = still_serves(&sb);
    assert!(b > a, "Lamport values must keep increasing: {a} then {b}");
    check_store(&rows(&sb)[1..]);
}

/// Starts a daemon with `clock.json` = `text`, returns (log, first Lamport).
fn with_clock_json(text: &str) -> (String, u64, Vec<u8>) {
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    std::fs::write(paths.clock_json(), text).unwrap();
    let _d = Syncd::start(&sb);
    let a = still_serves(&sb);
    let b = still_serves(&sb);
    assert!(b > a, "{text}: Lamport values keep increasing ({a}, {b})");
    (daemon_log(&sb), a, read(&paths.clock_json()))
}

#[test]
fn malformed_clock_json_is_logged_left_alone_and_the_clock_works() {
    for text in ["{\"value\": 12", "\u{0}\u{1}binary", "[]"] {
        let (log, lamport, after) = with_clock_json(text);
        assert_eq!(after, text.as_bytes(), "clock.json untouched");
        assert_eq!(lamport, 1, "{text:?}: clock not adopted");
        assert!(
            log.contains("clock.json"),
            "{text:?}: the log names clock.json:\n{log}"
        );
    }
    // Valid JSON, wrong shape: not adopted, and said so.
    for text in [
        "{\"value\": \"900\"}",
        "{\"value\": -5}",
        "{\"node_id\": \"x\"}",
    ] {
        let (log, lamport, after) = with_clock_json(text);
        assert_eq!(after, text.as_bytes(), "clock.json untouched");
        assert_eq!(lamport, 1, "{text:?}: clock not adopted");
        assert!(
            log.contains("clock.json"),
            "{text:?}: a clock.json that is not adopted must be named in the log:\n{log}"
        );
    }
}

#[test]
fn clock_json_with_an_absurd_value_does_not_break_the_clock() {
    // Above 2^53 - 1 a value is a corrupt file: refused (the clock starts
    // at 1, not near the top where the next tick would overflow), said so
    // in the log, and the file is left as it was.
    for v in [(1u64 << 53), i64::MAX as u64, u64::MAX] {
        let text = format!("{{\"value\": {v}}}");
        let (log, lamport, after) = with_clock_json(&text);
        assert_eq!(lamport, 1, "{text}: an absurd clock was adopted");
        assert!(
            log.contains("clock.json") && log.contains("clock not adopted"),
            "{text}: the refusal is logged naming clock.json:\n{log}"
        );
        assert_eq!(after, text.as_bytes(), "clock.json untouched");
    }
}

#[test]
fn malformed_credentials_mean_logged_out_with_a_hint_and_no_secret_in_the_log() {
    let cases = [
        // Broken TOML whose bad line holds a token.
        "[tokens]\naccess = \"tok-SECRET-1234567890\nrefresh = \n",
        // Right shape, wrong types.
        "[tokens]\naccess = 5\nrefresh = [\"tok-SECRET-1234567890\"]\n[user]\nusername = 7\n",
        // Binary garbage.
        "\u{0}\u{7f}tok-SECRET-1234567890\u{1}",
    ];
    for text in cases {
        let sb = Sandbox::new();
        let paths = sb.paths();
        std::fs::create_dir_all(paths.root()).unwrap();
        std::fs::write(paths.credentials(), text).unwrap();
        let _d = Syncd::start(&sb);
        let s = status(&sb).unwrap();
        assert!(!s.auth.logged_in, "{text:?}: {:?}", s.auth);
        assert!(
            s.auth
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("auth login")),
            "{text:?}: status tells what to do: {:?}",
            s.auth
        );
        assert_eq!(
            s.connection.state,
            spec_kitty_protocol::ipc::ConnState::Offline,
            "{text:?}: {:?}",
            s.connection
        );
        still_serves(&sb);
        let log = daemon_log(&sb);
        assert!(
            !log.contains("SECRET"),
            "{text:?}: a token leaked into the log:\n{log}"
        );
        let st = serde_json::to_string(&s).unwrap();
        assert!(
            !st.contains("SECRET"),
            "{text:?}: a token leaked into status"
        );
        assert_eq!(
            read(&paths.credentials()),
            text.as_bytes(),
            "credentials untouched"
        );
    }
}

#[test]
fn malformed_config_toml_does_not_stop_the_daemon() {
    // config.toml is the CLI's file ([sync] server_url); the daemon takes
    // the server from the login. A broken one must not stop it.
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    let text = b"[sync\nserver_url = = \xff\xfe\n";
    std::fs::write(paths.config_toml(), text).unwrap();
    let _d = Syncd::start(&sb);
    still_serves(&sb);
    assert_eq!(read(&paths.config_toml()), text, "config.toml untouched");
}

#[test]
fn store_clock_at_its_maximum_is_a_storage_error_not_a_wedged_writer() {
    let sb = Sandbox::new();
    let paths = sb.paths();
    let mut d = Syncd::start(&sb);
    still_serves(&sb);
    d.kill9();
    // A corrupt clock row (the store is the daemon's own file, but disks
    // and people do things): the next tick would overflow.
    let db = rusqlite::Connection::open(paths.store()).unwrap();
    db.execute("UPDATE clock SET value = ?1 WHERE id = 1", [i64::MAX])
        .unwrap();
    drop(db);
    let _d = Syncd::start(&sb);
    let mut c = Client::connect(&paths).unwrap();
    for _ in 0..2 {
        let (_, env) = envelope(Some(PROJECT));
        match c.emit(&env).unwrap() {
            Response::Error { kind, message } => {
                assert_eq!(
                    kind,
                    spec_kitty_protocol::ipc::ErrorKind::Storage,
                    "the CLI spools on Storage, and the writer is still there: {message}"
                );
                assert!(message.contains("Lamport clock"), "{message}");
            }
            other => panic!("an overflowing clock was accepted: {other:?}"),
        }
    }
    assert!(status(&sb).is_ok(), "status still answers");
    assert!(
        daemon_log(&sb).contains("failed"),
        "the failed commit is in the log:\n{}",
        daemon_log(&sb)
    );
    assert_eq!(rows(&sb).len(), 1, "nothing half-written");
}
