//! Authentication: login, rotating refresh tokens, ws tokens, expiry and
//! revocation, each observable as the exact status a client must handle.

use crate::common;

use common::{simple, Server};
use serde_json::json;

#[test]
fn login_returns_the_contract_shape_and_wrong_password_is_401() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--access-lifetime", "120"]);
    let body = server.login("alice", "secret");
    assert_eq!(body["team_slug"], "team-a");
    assert_eq!(body["access_lifetime"], 120);
    assert_eq!(body["refresh_lifetime"], 604_800);
    assert!(body["access"].as_str().unwrap().len() > 20);
    assert_ne!(body["access"], body["refresh"]);
    for (user, pw) in [("alice", "wrong"), ("nobody", "secret")] {
        let (status, body) =
            server.post("/api/v1/token/", &json!({"username": user, "password": pw}));
        assert_eq!(status, 401);
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, _) = server.post("/api/v1/token/", &json!({"username": "alice"}));
    assert_eq!(status, 400, "missing password is a bad request");
}

#[test]
fn refresh_tokens_rotate_and_the_old_one_is_dead() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let first = server.login("alice", "secret");
    let (status, second) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": first["refresh"]}),
    );
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh"], first["refresh"]);
    assert_eq!(second["team_slug"], "team-a");
    let (status, _) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": first["refresh"]}),
    );
    assert_eq!(status, 401, "a used refresh token is invalid");
    let (status, third) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": second["refresh"]}),
    );
    assert_eq!(status, 200);
    // The new access token works.
    let (status, _) = server.batch_plain(
        third["access"].as_str().unwrap(),
        &json!({"events": [simple(1)]}),
    );
    assert_eq!(status, 200);
    let (status, _) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": "rs_refresh_unknown"}),
    );
    assert_eq!(status, 401);
}

#[test]
fn expired_access_tokens_get_401_everywhere_and_refresh_recovers() {
    // Lifetime 0: every access token is expired when issued.
    let server = Server::start(&["--user", "alice:secret:team-a", "--access-lifetime", "0"]);
    let login = server.login("alice", "secret");
    let access = login["access"].as_str().unwrap();
    let (status, body) = server.batch_gzip(access, &json!({"events": [simple(1)]}));
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = server.post_auth("/api/v1/ws-token/", access, &json!({}));
    assert_eq!(status, 401);
    let (status, _) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": login["refresh"]}),
    );
    assert_eq!(
        status, 200,
        "refresh still works when only the access token expired"
    );
    assert!(server.stat("auth_failures") >= 2);
}

#[test]
fn expired_refresh_token_is_401() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--refresh-lifetime", "0"]);
    let login = server.login("alice", "secret");
    let (status, _) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": login["refresh"]}),
    );
    assert_eq!(status, 401);
}

#[test]
fn missing_or_bad_bearer_is_401_and_revocation_forces_it() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let (status, _) = server.post("/api/v1/events/batch/", &json!({"events": []}));
    assert_eq!(status, 401, "no Authorization header");
    let (status, _) = server.batch_plain("not-a-token", &json!({"events": []}));
    assert_eq!(status, 401);
    let login = server.login("alice", "secret");
    let access = login["access"].as_str().unwrap();
    let (status, _) = server.batch_plain(access, &json!({"events": []}));
    assert_eq!(status, 200);
    let (status, body) = server.post("/__control/revoke-tokens", &json!({"access": true}));
    assert_eq!(status, 200);
    assert_eq!(body["revoked"]["access"], 1);
    let (status, _) = server.batch_plain(access, &json!({"events": []}));
    assert_eq!(status, 401, "revoked access token");
    let (status, body) = server.post(
        "/__control/revoke-tokens",
        &json!({"access": false, "refresh": true}),
    );
    assert_eq!((status, &body["revoked"]["refresh"]), (200, &json!(1)));
    let (status, _) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": login["refresh"]}),
    );
    assert_eq!(status, 401, "revoked refresh token means logged out");
}

#[test]
fn ws_tokens_are_single_use_and_required() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let access = server.access("alice", "secret");
    let (status, body) = server.post_auth("/api/v1/ws-token/", &access, &json!({}));
    assert_eq!(status, 200);
    let ws_token = body["ws_token"].as_str().unwrap();
    let mut ws = server.ws_with_token(ws_token).expect("first use connects");
    assert_eq!(ws.json()["type"], "snapshot");
    match server.ws_with_token(ws_token) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!(
            "second use must be refused with 401, got {:?}",
            other.map(|_| ())
        ),
    }
    match server.ws_with_token(&access) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("an access token is not a ws token: {:?}", other.map(|_| ())),
    }
}

#[test]
fn tokens_never_appear_in_verbose_logs_or_error_bodies() {
    let mut server =
        Server::start_capturing_stderr(&["--user", "alice:secret:team-a", "--verbose"]);
    let login = server.login("alice", "secret");
    let access = login["access"].as_str().unwrap().to_string();
    let (_, refreshed) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": login["refresh"]}),
    );
    let access2 = refreshed["access"].as_str().unwrap().to_string();
    let mut ws = server.ws(&access2);
    assert_eq!(ws.json()["type"], "snapshot");
    ws.send(&simple(1));
    assert_eq!(ws.json()["status"], "accepted");
    assert_eq!(
        server
            .batch_gzip(&access2, &json!({"events": [simple(2)]}))
            .0,
        200
    );
    // A reused refresh token: the 401 body must not echo it.
    let (status, body) = server.post(
        "/api/v1/token/refresh/",
        &json!({"refresh": login["refresh"]}),
    );
    assert_eq!(status, 401);
    assert!(server.terminate().success());
    let log = server.stderr();
    assert!(log.contains("login alice"), "verbose logging is on: {log}");
    for secret in [
        &access,
        &access2,
        login["refresh"].as_str().unwrap(),
        refreshed["refresh"].as_str().unwrap(),
        "secret",
    ] {
        assert!(
            !log.contains(secret),
            "a token or password leaked into the log"
        );
        assert!(!body.to_string().contains(secret));
    }
}
