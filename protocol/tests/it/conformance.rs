//! Conformance against the contract's own fixtures, read from `../shared`
//! (never copied): the SaaS batch-API examples and the `spec-kitty-events`
//! conformance suite. If the envelope format drifts, these fail.
//!
//! Which events-conformance cases apply, and why:
//! - WPStatusChanged payload cases (5) and lane-mapping cases (2): checked
//!   with the expected verdict, through our typed payload and `Lane`.
//! - `Event` cases: that model is the events library's own (it requires
//!   `correlation_id`/`schema_version`, which the 2.x CLI never sent). The
//!   rules it shares with our envelope (event_type, lamport_clock,
//!   timestamp forms, causation_id) are checked by overlaying those fields
//!   on a valid envelope of ours. Two cases are library-only
//!   (`event-missing-correlation-id`, `edge-unsupported-schema-version`) and
//!   two deliberately differ: the library accepts a UUID as `event_id`, the
//!   contract requires the ULID the CLI mints (`event-uuid-*`).
//! - Every other event type (missions, gates, collaboration, glossary,
//!   mission-next) is unknown to the 2.x contract: such envelopes must be
//!   carried through untouched, which is what we check for them.

use serde_json::Value;
use spec_kitty_protocol::envelope::{EventEnvelope, Lane, Payload};
use spec_kitty_protocol::sample;
use std::path::PathBuf;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/contract")
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn batch_fixtures() -> Vec<(String, Value)> {
    let dir = shared().join("batch-api-v2");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read_json(p),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_batch_fixture_envelope_parses_and_reserialises_equal() {
    let fixtures = batch_fixtures();
    assert_eq!(fixtures.len(), 5, "expected the five batch-api-v2 fixtures");
    let mut seen = 0;
    for (name, fixture) in &fixtures {
        for raw in fixture["request"]["events"]
            .as_array()
            .expect("request.events")
        {
            let env =
                EventEnvelope::from_value(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let back: Value = serde_json::from_str(&env.to_json()).unwrap();
            assert_eq!(&back, raw, "{name}: re-serialised envelope differs");
            seen += 1;
        }
    }
    assert_eq!(seen, 7);
}

#[test]
fn batch_fixture_envelopes_validate_except_the_one_the_server_rejects_for_its_payload() {
    for (name, fixture) in batch_fixtures() {
        for raw in fixture["request"]["events"].as_array().unwrap() {
            let env = EventEnvelope::from_value(raw.clone()).unwrap();
            let verdict = env.validate();
            if name.starts_with("fixture_04") {
                // ErrorLogged without error_type: rejected by the SaaS, and by us,
                // naming the same field.
                let err = verdict.expect_err("fixture 04 must be invalid").to_string();
                assert_eq!(err, "field `payload.error_type`: missing required field");
            } else {
                verdict.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

#[test]
fn built_envelope_timestamp_and_ulid_have_the_exact_wire_shape() {
    use spec_kitty_protocol::envelope::{Origin, WpCreated};
    let payload = Payload::WPCreated(WpCreated {
        wp_id: "WP03".into(),
        title: "t".into(),
        feature_slug: "001-x".into(),
        dependencies: vec![],
    });
    let origin = Origin {
        node_id: "a1b2c3d4e5f6".into(),
        team_slug: "local".into(),
        ..Origin::default()
    };
    for _ in 0..200 {
        let env = EventEnvelope::build(&payload, &origin, None).unwrap();
        // Timestamp: YYYY-MM-DDTHH:MM:SS.ffffff+00:00 exactly.
        let ts = env.timestamp.as_bytes();
        assert_eq!(ts.len(), 32, "{}", env.timestamp);
        for (i, c) in ts.iter().enumerate() {
            let ok = match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 | 29 => *c == b':',
                19 => *c == b'.',
                26 => *c == b'+',
                _ => c.is_ascii_digit(),
            };
            assert!(ok, "timestamp {} wrong at {i}", env.timestamp);
        }
        assert!(env.timestamp.ends_with("+00:00"));
        // ULID: 26 chars of Crockford base32, upper case, no I L O U.
        assert_eq!(env.event_id.len(), 26);
        assert!(
            env.event_id
                .bytes()
                .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)),
            "{}",
            env.event_id
        );
    }
}

fn manifest() -> Vec<Value> {
    let m = read_json(shared().join("events-conformance/fixtures/manifest.json"));
    m["fixtures"].as_array().unwrap().clone()
}

fn fixture(path: &str) -> Value {
    read_json(shared().join("events-conformance/fixtures").join(path))
}

/// A valid envelope of ours, stamped as the daemon sends it, for the
/// fixtures to overlay.
fn base_envelope() -> Value {
    let mut env = sample::envelope_json(
        "01JMBY7K8N3QRVX2DPFG5HWT4E",
        Some("550e8400-e29b-41d4-a716-446655440000"),
    );
    env["node_id"] = "a1b2c3d4e5f6".into();
    env["lamport_clock"] = 1.into();
    env
}

fn envelope_verdict(v: Value) -> Result<(), String> {
    let env = EventEnvelope::from_value(v).map_err(|e| e.to_string())?;
    env.validate().map_err(|e| e.to_string())
}

#[test]
fn wp_status_changed_and_lane_mapping_cases_give_the_expected_verdict() {
    let mut covered = 0;
    for case in manifest() {
        let id = case["id"].as_str().unwrap();
        let path = case["path"].as_str().unwrap();
        let expected_valid = case["expected_result"] == "valid";
        match case["event_type"].as_str().unwrap() {
            "WPStatusChanged" => {
                let verdict = Payload::parse("WPStatusChanged", &fixture(path));
                assert_eq!(verdict.is_ok(), expected_valid, "{id}: {verdict:?}");
                if id == "edge-alias-doing-normalized" {
                    let Ok(Payload::WPStatusChanged(p)) = verdict else {
                        unreachable!()
                    };
                    assert_eq!(p.to_lane.as_wire(), "in_progress");
                }
                // The payload inside a whole envelope gives the same verdict.
                let mut env = base_envelope();
                env["payload"] = fixture(path);
                env["payload"]["wp_id"] = "WP01".into();
                assert_eq!(
                    envelope_verdict(env).is_ok(),
                    expected_valid,
                    "{id} in an envelope"
                );
                covered += 1;
            }
            "LaneMapping" => {
                for row in fixture(path).as_array().unwrap() {
                    let lane = Lane::parse(row["canonical"].as_str().unwrap());
                    if expected_valid {
                        let lane = lane.unwrap();
                        assert_eq!(
                            lane.to_sync_v1().as_user(),
                            row["expected_sync"],
                            "{id}: {lane}"
                        );
                    } else {
                        let err = lane.expect_err("unknown lane must fail").to_string();
                        assert!(
                            err.contains(row["expected_error"].as_str().unwrap()),
                            "{id}: {err}"
                        );
                    }
                }
                covered += 1;
            }
            _ => {}
        }
    }
    assert_eq!(covered, 7, "5 WPStatusChanged cases + 2 lane-mapping cases");
}

#[test]
fn event_model_cases_on_the_fields_we_share() {
    // Our verdict for each Event case, where it applies.
    let expected: &[(&str, Option<bool>)] = &[
        ("event-valid", Some(true)),
        ("event-invalid-lamport-clock", Some(false)),
        ("edge-event-all-optional-fields", Some(true)),
        ("edge-empty-event-type", Some(false)),
        ("event-missing-correlation-id", None), // library-only field
        ("edge-unsupported-schema-version", None), // library-only field
        ("event-uuid-hyphenated", Some(false)), // contract: event_id is a ULID
        ("event-uuid-bare", Some(false)),       // contract: event_id is a ULID
    ];
    let cases = manifest();
    for (id, want) in expected {
        let case = cases
            .iter()
            .find(|c| c["id"] == *id)
            .unwrap_or_else(|| panic!("{id} not in manifest"));
        let Some(want) = want else { continue };
        let fx = fixture(case["path"].as_str().unwrap());
        let mut env = base_envelope();
        env["event_type"] = "TestEvent".into();
        env["aggregate_type"] = "Feature".into();
        for key in [
            "event_id",
            "event_type",
            "aggregate_id",
            "payload",
            "timestamp",
            "lamport_clock",
            "causation_id",
            "project_uuid",
            "project_slug",
        ] {
            if let Some(v) = fx.get(key) {
                env[key] = v.clone();
            }
        }
        let verdict = envelope_verdict(env);
        assert_eq!(verdict.is_ok(), *want, "{id}: {verdict:?}");
        if *id == "event-invalid-lamport-clock" {
            assert!(verdict.unwrap_err().contains("lamport_clock"));
        }
    }
}

#[test]
fn unknown_event_types_are_carried_through_untouched() {
    let mut carried = 0;
    for case in manifest() {
        let ty = case["event_type"].as_str().unwrap();
        let path = case["path"].as_str().unwrap();
        if matches!(
            ty,
            "WPStatusChanged" | "LaneMapping" | "Event" | "MissionNextReplay"
        ) {
            continue;
        }
        let mut env = base_envelope();
        env["event_type"] = ty.into();
        env["aggregate_type"] = "Feature".into();
        env["payload"] = fixture(path);
        let parsed = EventEnvelope::from_value(env.clone()).unwrap_or_else(|e| panic!("{ty}: {e}"));
        parsed.validate().unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_eq!(parsed.typed_payload().unwrap(), Payload::Unknown);
        let back: Value = serde_json::from_str(&parsed.to_json()).unwrap();
        assert_eq!(back, env, "{ty} changed in transit");
        carried += 1;
    }
    // The replay file holds whole envelopes of the events library, one per line.
    let replay = std::fs::read_to_string(
        shared().join("events-conformance/fixtures/mission_next/replay/full_lifecycle.jsonl"),
    )
    .unwrap();
    for line in replay.lines().filter(|l| !l.trim().is_empty()) {
        let fx: Value = serde_json::from_str(line).unwrap();
        let mut env = base_envelope();
        env["event_type"] = fx["event_type"].clone();
        env["aggregate_type"] = "Feature".into();
        env["payload"] = fx["payload"].clone();
        let parsed = EventEnvelope::from_value(env.clone()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&parsed.to_json()).unwrap(),
            env
        );
        carried += 1;
    }
    assert!(carried >= 30, "only {carried} unknown-type cases found");
}
