//! Bounded fuzzing of the real daemon process over its socket: the frame
//! decoder and the envelope parser as they run in `spec-kitty-syncd`, not
//! in-process (the in-process properties are `protocol/tests/it/properties.rs`).
//!
//! Inputs: random bytes after a valid Hello, random bytes instead of a
//! Hello, valid `Emit` frames with flipped bytes, and valid envelopes
//! mutated at the JSON level (fields removed, retyped, emptied, made huge
//! or deeply nested, garbage ULIDs and UUIDs, extra keys), plus frames cut
//! short and length headers that lie. A random body that happens to decode
//! to `Shutdown` is not sent (that one is a legal request).
//!
//! What must hold: the daemon never dies (same pid, still serving a clean
//! client at the end); every answer to an `Emit` is `Accepted` or
//! `Error{InvalidEnvelope | BadRequest}` (never Storage/Internal); every row
//! in the store is an envelope that passes the contract's `validate()`
//! with a Lamport value strictly increasing in `seq` order.
//!
//! Knobs: `SK_FUZZ_CASES` (default 10000) inputs; `SK_FUZZ_SEED` replays a
//! failed run (the seed is printed).

use crate::faults_common;

use faults_common::*;
use spec_kitty_e2e::Sandbox;
use spec_kitty_protocol::ipc::{self, ErrorKind, Hello, Request, Response};
use spec_kitty_protocol::EventEnvelope;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A random JSON value of bounded size.
fn junk_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(12) {
        0 => json!(null),
        1 => json!(rng.next() as i64),
        2 => json!(-1),
        3 => json!(1.5),
        4 => json!(""),
        5 => json!("x".repeat(rng.below(100_000) as usize)),
        6 => json!([1, "a", null]),
        7 => json!({"nested": {"deeper": [true]}}),
        8 => json!(true),
        9 => json!("\u{0}\u{202e}\u{1F600}\u{fffd}"),
        10 => json!(u64::MAX),
        _ => {
            // Deep nesting (serde_json's recursion limit must answer, not crash).
            let depth = 50 + rng.below(400) as usize;
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            serde_json::from_str(&text).unwrap_or(json!(null))
        }
    }
}

const FIELDS: [&str; 16] = [
    "event_id",
    "event_type",
    "aggregate_id",
    "aggregate_type",
    "payload",
    "node_id",
    "lamport_clock",
    "causation_id",
    "timestamp",
    "team_slug",
    "project_uuid",
    "project_slug",
    "git_branch",
    "head_commit_sha",
    "repo_slug",
    "x_extra",
];

/// A valid envelope, mutated 1-3 times at the JSON level (as text: some
/// mutations break the JSON itself).
fn mutated_envelope(rng: &mut Rng) -> String {
    let (_, text) = envelope(Some(PROJECT));
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for _ in 0..1 + rng.below(3) {
        let field = FIELDS[rng.below(FIELDS.len() as u64) as usize];
        let obj = v.as_object_mut().unwrap();
        match rng.below(6) {
            0 => {
                obj.remove(field);
            }
            1 | 2 => {
                obj.insert(field.to_string(), junk_value(rng));
            }
            3 => {
                if let Some(p) = obj.get_mut("payload").and_then(|p| p.as_object_mut()) {
                    let keys = ["wp_id", "from_lane", "to_lane", "actor", "feature_slug"];
                    let k = keys[rng.below(keys.len() as u64) as usize];
                    p.insert(k.to_string(), junk_value(rng));
                }
            }
            4 => {
                let ty = [
                    "WPCreated",
                    "ErrorLogged",
                    "NoSuchType",
                    "",
                    "WPStatusChanged",
                ];
                obj.insert(
                    "event_type".into(),
                    ty[rng.below(ty.len() as u64) as usize].into(),
                );
            }
            _ => {
                // A near-miss ULID / UUID.
                obj.insert("event_id".into(), format!("{}I", &ulid()[..25]).into());
                obj.insert(
                    "project_uuid".into(),
                    "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5".into(),
                );
            }
        }
    }
    let mut s = v.to_string();
    if rng.below(8) == 0 {
        // Break the JSON text itself.
        let mut cut = rng.below(s.len() as u64) as usize;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn hello_frame() -> Vec<u8> {
    ipc::encode_frame(&Hello::current("fuzz")).unwrap()
}

/// Connects and says Hello; the daemon answers Welcome.
fn connect(sb: &Sandbox) -> UnixStream {
    let mut s = UnixStream::connect(sb.paths().socket()).expect("the daemon is listening");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&hello_frame()).unwrap();
    let _: ipc::HelloReply = ipc::read_frame(&mut s).expect("hello reply");
    s
}

fn check_answer(r: Result<Response, ipc::FrameError>, what: &str) -> bool {
    match r {
        Ok(Response::Accepted { .. }) => true,
        Ok(Response::Error {
            kind: ErrorKind::InvalidEnvelope | ErrorKind::BadRequest,
            ..
        }) => true,
        Ok(other) => panic!("{what}: unexpected answer {other:?}"),
        // The daemon may close a connection after a frame it cannot read.
        Err(_) => false,
    }
}

#[test]
fn fuzzed_frames_and_envelopes_never_kill_the_daemon_nor_store_an_invalid_event() {
    let cases = knob("SK_FUZZ_CASES", 10000);
    let seed = knob(
        "SK_FUZZ_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("SK_FUZZ_SEED={seed}");
    let mut rng = Rng(seed.max(1));
    let sb = Sandbox::new();
    let d = Syncd::start(&sb);
    let mut conn = connect(&sb);
    let (mut accepted_n, mut refused, mut closed) = (0u64, 0u64, 0u64);
    for case in 0..cases {
        let what = format!("case {case} (SK_FUZZ_SEED={seed})");
        match rng.below(10) {
            // Mutated envelope in a well-formed Emit frame.
            0..=5 => {
                let env = mutated_envelope(&mut rng);
                let frame = ipc::encode_frame(&Request::Emit { envelope: env });
                let Ok(frame) = frame else { continue };
                if frame.len() - 4 > ipc::MAX_FRAME {
                    continue;
                }
                if conn.write_all(&frame).is_err() {
                    // Closed after an earlier frame it could not read.
                    conn = connect(&sb);
                    conn.write_all(&frame).unwrap();
                }
                match ipc::read_frame::<_, Response>(&mut conn) {
                    Ok(Response::Accepted { .. }) => accepted_n += 1,
                    r => {
                        if check_answer(r, &what) {
                            refused += 1;
                        } else {
                            closed += 1;
                            conn = connect(&sb);
                        }
                    }
                }
            }
            // A valid Emit frame with flipped bytes in its body.
            6 | 7 => {
                let (_, env) = envelope(Some(PROJECT));
                let mut frame = ipc::encode_frame(&Request::Emit { envelope: env }).unwrap();
                for _ in 0..1 + rng.below(4) {
                    let i = 4 + rng.below((frame.len() - 4) as u64) as usize;
                    frame[i] ^= 1 << rng.below(8);
                }
                if let Ok(Request::Shutdown { .. }) = ipc::decode_body::<Request>(&frame[4..]) {
                    continue;
                }
                if conn.write_all(&frame).is_err() {
                    conn = connect(&sb);
                    conn.write_all(&frame).unwrap();
                }
                let r = ipc::read_frame::<_, Response>(&mut conn);
                if matches!(r, Ok(Response::Accepted { .. })) {
                    accepted_n += 1;
                } else if check_answer(r, &what) {
                    refused += 1;
                } else {
                    closed += 1;
                    conn = connect(&sb);
                }
            }
            // Random body behind an honest header, on its own connection.
            8 => {
                let n = rng.below(600) as usize;
                let body = rng.bytes(n);
                if let Ok(Request::Shutdown { .. }) = ipc::decode_body::<Request>(&body) {
                    continue;
                }
                let mut s = connect(&sb);
                let mut frame = (body.len() as u32).to_le_bytes().to_vec();
                frame.extend_from_slice(&body);
                s.write_all(&frame).unwrap();
                let _ = ipc::read_frame::<_, Response>(&mut s);
            }
            // Garbage instead of Hello, or a header that lies, then hang up.
            _ => {
                let mut s = UnixStream::connect(sb.paths().socket()).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let n = rng.below(64) as usize;
                let mut junk = rng.bytes(n);
                if rng.below(2) == 0 {
                    let mut lie = (1000 + rng.below(1 << 20) as u32).to_le_bytes().to_vec();
                    lie.append(&mut junk);
                    junk = lie;
                }
                let _ = s.write_all(&junk);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        if case % 500 == 0 {
            assert_eq!(sb.daemon_pid(), Some(d.pid), "{what}: the daemon died");
        }
    }
    assert_eq!(
        sb.daemon_pid(),
        Some(d.pid),
        "the daemon survived the fuzzing"
    );
    // A clean client is still served.
    let mut c = Client::connect(&sb.paths()).unwrap();
    let (id, env) = envelope(Some(PROJECT));
    accepted(c.emit(&env).unwrap());

    // Nothing invalid got into the store.
    let db = rusqlite::Connection::open_with_flags(
        sb.paths().store(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT envelope FROM events ORDER BY seq")
        .unwrap();
    let envs: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for text in &envs {
        let env = EventEnvelope::from_json(text)
            .unwrap_or_else(|e| panic!("stored envelope does not parse ({e}): {text:.300}"));
        env.validate()
            .unwrap_or_else(|e| panic!("stored envelope is invalid ({e}): {text:.300}"));
    }
    let rows = rows(&sb);
    check_store(&rows);
    assert!(rows.iter().any(|r| r.event_id == id));
    eprintln!(
        "{cases} cases: {accepted_n} mutated frames still valid and accepted, {refused} refused, {closed} connections closed by the daemon; {} rows, all valid",
        rows.len()
    );
    assert!(refused > cases / 4, "most mutations must be refused");
}
