//! The reference server's HTML dashboard, loaded in headless Chromium (the
//! Debian `chromium` package, installed by scripts/setup-test-deps): both
//! projects and their work packages' lanes must be on the page a person
//! sees. A screenshot is kept as an artifact in
//! `target/test-artifacts/dashboard.png`.

use serde_json::json;
use spec_kitty_e2e::{assert_batch_stored, chromium, RefServer, CHROMIUM_FLAGS};
use std::path::PathBuf;
use std::process::Command;

const A: &str = "550e8400-e29b-41d4-a716-446655440000";
const B: &str = "6f1c2a4e-9d3b-4c1e-8a7f-0b2d4e6f8a9c";

fn event(
    id: &str,
    lamport: u64,
    project: &str,
    slug: &str,
    event_type: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    let wp = payload["wp_id"].as_str().unwrap_or("WP01").to_string();
    json!({
        "event_id": id, "event_type": event_type, "aggregate_id": wp, "aggregate_type": "WorkPackage",
        "payload": payload, "node_id": "a1b2c3d4e5f6", "lamport_clock": lamport, "causation_id": null,
        "timestamp": "2026-02-12T10:00:00.000000+00:00", "team_slug": "team-a",
        "project_uuid": project, "project_slug": slug,
        "git_branch": "main", "head_commit_sha": null, "repo_slug": null
    })
}

fn chromium_cmd(profile: &std::path::Path) -> Command {
    let mut c = Command::new(chromium());
    c.args(CHROMIUM_FLAGS)
        .args(["--disable-quic", "--virtual-time-budget=4000"])
        .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn dashboard_shows_both_projects_and_their_lanes_in_a_browser() {
    let server = RefServer::start(&["--user", "alice:secret:team-a"]);
    let token = server.access_token("alice", "secret");
    let created = |wp: &str, feature: &str| json!({"wp_id": wp, "title": format!("{wp} work"), "feature_slug": feature, "dependencies": []});
    let moved = |wp: &str, feature: &str, from: &str, to: &str| json!({"wp_id": wp, "from_lane": from, "to_lane": to, "actor": "user", "feature_slug": feature, "policy_metadata": null});
    let events = vec![
        event(
            "01JMBY7K8N3QRVX2DPFG5HWT01",
            1,
            A,
            "alpha-app",
            "WPCreated",
            created("WP01", "001-login"),
        ),
        event(
            "01JMBY7K8N3QRVX2DPFG5HWT02",
            2,
            A,
            "alpha-app",
            "WPCreated",
            created("WP02", "001-login"),
        ),
        event(
            "01JMBY7K8N3QRVX2DPFG5HWT03",
            3,
            A,
            "alpha-app",
            "WPStatusChanged",
            moved("WP01", "001-login", "planned", "done"),
        ),
        event(
            "01JMBY7K8N3QRVX2DPFG5HWT04",
            4,
            B,
            "beta-service",
            "WPCreated",
            created("WP01", "001-search"),
        ),
        event(
            "01JMBY7K8N3QRVX2DPFG5HWT05",
            5,
            B,
            "beta-service",
            "WPStatusChanged",
            moved("WP01", "001-search", "planned", "in_progress"),
        ),
    ];
    let (status, body) = server.post(
        "/api/v1/events/batch/",
        Some(&token),
        &json!({ "events": events }),
    );
    assert_batch_stored(status, &body);

    let profile = tempfile::tempdir().unwrap();
    let out = chromium_cmd(profile.path())
        .arg("--dump-dom")
        .arg(server.url("/"))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    for needle in [
        r#"data-project-slug="alpha-app""#.to_string(),
        r#"data-project-slug="beta-service""#.to_string(),
        format!(r#"data-project-uuid="{A}""#),
        format!(r#"data-project-uuid="{B}""#),
        r#"data-feature-slug="001-login""#.to_string(),
        r#"data-feature-slug="001-search""#.to_string(),
    ] {
        assert!(
            dom.contains(&needle),
            "rendered dashboard lacks {needle}\n{dom}"
        );
    }
    // Lanes as the browser rendered them: alpha's WP01 done, WP02 planned;
    // beta's WP01 in progress.
    let wp_lanes: Vec<&str> = dom
        .match_indices("data-wp-id=")
        .map(|(i, _)| &dom[i..(i + 120).min(dom.len())])
        .collect();
    let has = |wp: &str, lane: &str| {
        wp_lanes.iter().any(|s| {
            s.starts_with(&format!(r#"data-wp-id="{wp}""#))
                && s.contains(&format!(r#"data-lane="{lane}""#))
        })
    };
    assert!(has("WP01", "done"), "no WP01 in done: {wp_lanes:?}");
    assert!(has("WP02", "planned"), "no WP02 in planned: {wp_lanes:?}");
    assert!(
        has("WP01", "in_progress"),
        "no WP01 in progress: {wp_lanes:?}"
    );

    // The artifact a person can look at.
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium_cmd(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg(server.url("/"))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot is not a real PNG ({} bytes)",
        png.len()
    );
}
