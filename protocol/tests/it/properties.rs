//! Property tests: envelopes survive a JSON round trip, IPC frames survive
//! encode/decode, and no byte sequence makes the frame decoder panic or
//! allocate past the cap.

use proptest::prelude::*;
use spec_kitty_protocol::envelope::{EventEnvelope, Lane, Origin, Payload, WpStatusChanged};
use spec_kitty_protocol::ipc::{
    self, FrameError, Hello, HelloReply, Request, Response, Welcome, MAX_FRAME,
};

fn lane() -> impl Strategy<Value = Lane> {
    prop::sample::select(Lane::ALL.to_vec())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[ -~\u{e9}\u{1F600}]{0,40}")
}

prop_compose! {
    fn envelope()(
        wp in 0u8..100, from in lane(), to in lane(), actor in "[a-z-]{1,20}",
        feature in opt_text(), branch in opt_text(), slug in opt_text(),
        lamport in 1u64..u64::MAX / 2, sha in prop::option::of("[0-9a-f]{40}"),
        has_uuid in any::<bool>(),
    ) -> EventEnvelope {
        let payload = Payload::WPStatusChanged(WpStatusChanged {
            wp_id: format!("WP{wp:02}"), from_lane: Some(from), to_lane: to, actor,
            feature_slug: feature, policy_metadata: None, force: None, reason: None,
        });
        let origin = Origin {
            node_id: "0123456789ab".into(), team_slug: "local".into(),
            project_uuid: has_uuid.then(|| "550e8400-e29b-41d4-a716-446655440000".to_string()),
            project_slug: slug, git_branch: branch, head_commit_sha: sha, repo_slug: None,
        };
        let mut env = EventEnvelope::build(&payload, &origin, None).unwrap();
        env.lamport_clock = lamport;
        env
    }
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        ".{0,200}".prop_map(|envelope| Request::Emit { envelope }),
        Just(Request::Status),
        any::<bool>().prop_map(|wait| Request::SyncNow { wait }),
        Just(Request::IngestSpool),
        Just(Request::Reload),
        ".{0,50}".prop_map(|reason| Request::Shutdown { reason }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(lamport_clock, seq, duplicate)| {
            Response::Accepted {
                lamport_clock,
                seq,
                duplicate,
            }
        }),
        ".{0,200}".prop_map(|json| Response::Status { json }),
        ".{0,200}".prop_map(|json| Response::Synced { json }),
        ".{0,50}".prop_map(|message| Response::Done { message }),
        ".{0,50}".prop_map(|message| Response::Error {
            kind: ipc::ErrorKind::Storage,
            message
        }),
    ]
}

proptest! {
    #[test]
    fn envelope_json_round_trip(env in envelope()) {
        env.validate().unwrap();
        let text = env.to_json();
        let back = EventEnvelope::from_json(&text).unwrap();
        prop_assert_eq!(&back, &env);
        prop_assert_eq!(back.to_json(), text);
        prop_assert_eq!(back.typed_payload().unwrap(), env.typed_payload().unwrap());
    }

    #[test]
    fn request_frames_round_trip(req in request()) {
        let frame = ipc::encode_frame(&req).unwrap();
        let back: Request = ipc::read_frame(&mut &frame[..]).unwrap();
        prop_assert_eq!(&back, &req);
        let (again, used) = ipc::decode_frame::<Request>(&frame).unwrap().unwrap();
        prop_assert_eq!(again, req);
        prop_assert_eq!(used, frame.len());
    }

    #[test]
    fn response_frames_round_trip(resp in response()) {
        let frame = ipc::encode_frame(&resp).unwrap();
        let back: Response = ipc::read_frame(&mut &frame[..]).unwrap();
        prop_assert_eq!(back, resp);
    }

    #[test]
    fn handshake_round_trip(major in any::<u16>(), minor in any::<u16>(), v in ".{0,30}", pid in any::<u32>()) {
        let hello = Hello { major, minor, version: v.clone(), pid };
        let back: Hello = ipc::read_frame(&mut &ipc::encode_frame(&hello).unwrap()[..]).unwrap();
        prop_assert_eq!(back, hello);
        let reply = HelloReply::Incompatible { daemon: Welcome { major, minor, version: v, pid }, reason: "x".into() };
        let back: HelloReply = ipc::read_frame(&mut &ipc::encode_frame(&reply).unwrap()[..]).unwrap();
        prop_assert_eq!(back, reply);
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Any outcome but a panic is fine; an Ok must have used a real frame.
        if let Ok(Some((_, used))) = ipc::decode_frame::<Request>(&bytes) {
            prop_assert!(used <= bytes.len());
        }
        let _ = ipc::read_frame::<_, Response>(&mut &bytes[..]);
        let _ = ipc::read_frame::<_, HelloReply>(&mut &bytes[..]);
        let _ = EventEnvelope::from_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        let _ = ipc::read_frame::<_, Request>(&mut &frame[..]);
        let _ = ipc::read_frame::<_, Hello>(&mut &frame[..]);
    }

    #[test]
    fn headers_past_the_cap_are_refused(len in (MAX_FRAME as u32 + 1)..=u32::MAX) {
        let mut frame = len.to_le_bytes().to_vec();
        frame.extend_from_slice(&[0u8; 16]);
        let refused = matches!(ipc::read_frame::<_, Request>(&mut &frame[..]), Err(FrameError::TooLarge { .. }));
        prop_assert!(refused, "a {} byte header was not refused", len);
    }
}
