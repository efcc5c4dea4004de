//! `spec-kitty orchestrator-api`: every subcommand's success and error
//! codes on real git repositories with the real binary, and (when the
//! Python spec-kitty-cli 2.1.3 is installed) the same command sequence run
//! by both CLIs on twin repositories, answers compared byte for byte apart
//! from timestamps and ids.

use crate::common;

use common::{git_env, stderr, stdout, World};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const POLICY: &str = r#"{"orchestrator_id":"orch-1","orchestrator_version":"2.0.0","agent_family":"claude","approval_mode":"auto","sandbox_mode":"container","network_mode":"restricted","dangerous_flags":[]}"#;

/// Feature 001-demo: WP01, WP02 (depends on WP01), WP03; `tasks.md` with
/// one unticked subtask for WP01; committed.
fn project() -> World {
    let w = World::project();
    w.ok(&["specify", "demo"]);
    w.ok(&["tasks", "add", "First"]);
    w.ok(&["tasks", "add", "Second", "--depends", "WP01"]);
    w.ok(&["tasks", "add", "Third"]);
    fs::write(
        w.feature_dir().join("tasks.md"),
        "# Tasks\n\n## WP01: First\n\n- [ ] T001 do it\n\n## WP02: Second\n\n- [x] T002 done\n\n## WP03: Third\n\n- [x] T003 done\n",
    )
    .unwrap();
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "work packages"]);
    w.clear_spool();
    w
}

/// A command line: words split at spaces, `~` a space inside a word, `{P}`
/// the policy, `{S}` a policy with a secret-like value.
fn words(line: &str) -> Vec<String> {
    let secret = POLICY.replace("\"container\"", "\"vault-token\"");
    line.split_whitespace()
        .map(|a| {
            a.replace("{P}", POLICY)
                .replace("{S}", &secret)
                .replace('~', " ")
        })
        .collect()
}

fn strs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// Runs `spec-kitty orchestrator-api ARGS` in `dir`: (exit code, the one
/// stdout line, it parsed).
fn api_in(w: &World, dir: &Path, args: &[&str]) -> (i32, String, Value) {
    let mut all = vec!["orchestrator-api"];
    all.extend_from_slice(args);
    let o = w.run_in(dir, &all);
    let out = stdout(&o);
    assert_eq!(
        out.lines().count(),
        1,
        "{args:?}: one envelope on stdout, got:\n{out}\nstderr: {}",
        stderr(&o)
    );
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"));
    (o.status.code().unwrap(), out.trim().to_string(), v)
}

/// Runs `line` (see [`words`]) in the repository: (exit code, envelope).
fn api(w: &World, line: &str) -> (i32, Value) {
    let args = words(line);
    let (code, _, v) = api_in(w, &w.repo, &strs(&args));
    (code, v)
}

/// Asserts a success envelope of `line`'s command; returns its data.
fn ok(w: &World, line: &str) -> Value {
    let (code, v) = api(w, line);
    assert_eq!(code, 0, "{line}: {v}");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["error_code"], Value::Null);
    assert_eq!(
        v["command"],
        format!("orchestrator-api.{}", line.split(' ').next().unwrap())
    );
    v["data"].clone()
}

/// Asserts a failure with `code` (exit 1); returns its data.
fn fails(w: &World, line: &str, code: &str) -> Value {
    let (exit, v) = api(w, line);
    assert_eq!(
        (exit, v["error_code"].as_str()),
        (1, Some(code)),
        "{line}: {v}"
    );
    assert_eq!(v["success"], false);
    v["data"].clone()
}

/// (wp, from, to) of each WPStatusChanged on the wire, in order.
fn wire_moves(w: &World) -> Vec<(String, String, String)> {
    w.events()
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .map(|e| {
            let s = |k: &str| e.payload[k].as_str().unwrap_or_default().to_string();
            (s("wp_id"), s("from_lane"), s("to_lane"))
        })
        .collect()
}

fn moves(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

fn log_lines(w: &World) -> Vec<Value> {
    fs::read_to_string(w.feature_dir().join("status.events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn head_subject(dir: &Path, w: &World) -> String {
    w.git_in(dir, &["log", "-1", "--format=%s"])
        .trim()
        .to_string()
}

/// (wp_id, `key`) of each entry of the array `list`.
fn pairs(list: &Value, key: &str) -> Vec<(String, Value)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| (p["wp_id"].as_str().unwrap().to_string(), p[key].clone()))
        .collect()
}

#[test]
fn the_envelope_has_2_1_3s_keys_in_its_order_and_usage_errors_are_envelopes() {
    let w = World::bare("x");
    let (code, line, _) = api_in(&w, &w.repo, &["contract-version"]);
    assert_eq!(code, 0);
    assert!(line.starts_with(r#"{"contract_version": "1.0.0", "command": "orchestrator-api.contract-version", "timestamp": ""#), "{line}");
    let rest = &line[line.find("\"correlation_id\": \"corr-").expect(&line)..];
    assert!(rest.ends_with(r#""success": true, "error_code": null, "data": {"api_version": "1.0.0", "min_supported_provider_version": "0.1.0"}}"#), "{line}");

    let d = fails(
        &w,
        "contract-version --provider-version 0.0.9",
        "CONTRACT_VERSION_MISMATCH",
    );
    assert_eq!(d["min_supported_provider_version"], "0.1.0");
    let d = fails(
        &w,
        "contract-version --provider-version not~a~version",
        "CONTRACT_VERSION_MISMATCH",
    );
    assert_eq!(d, json!({"provider_version": "not a version"}));
    ok(&w, "contract-version --provider-version 1.2.3");

    for (line, message) in [
        ("feature-state", "Missing option '--feature'."),
        ("bogus", "No such command 'bogus'."),
        ("list-ready --feature x --frob", "No such option '--frob'."),
        (
            "feature-state --feature",
            "Option '--feature' requires an argument.",
        ),
        ("", ""),
    ] {
        let (code, v) = api(&w, line);
        assert_eq!(code, 2, "{line}: {v}");
        assert_eq!(v["command"], "orchestrator-api.unknown");
        assert_eq!(v["error_code"], "USAGE_ERROR");
        assert_eq!(v["data"]["message"], message, "{line}");
    }
    // Help is still help.
    let o = w.run(&["orchestrator-api", "transition", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--review-ref"), "{}", stdout(&o));
}

#[test]
fn feature_state_and_list_ready_follow_the_log_and_the_dependencies() {
    let w = project();
    let d = ok(&w, "feature-state --feature 001-demo");
    assert_eq!(
        d["summary"]["planned"], 0,
        "no events yet: 2.1.3 counts none"
    );
    assert_eq!(
        pairs(&d["work_packages"], "dependencies"),
        [
            ("WP01".into(), json!([])),
            ("WP02".into(), json!(["WP01"])),
            ("WP03".into(), json!([]))
        ]
    );
    let ready = |w: &World| {
        pairs(
            &ok(w, "list-ready --feature 001-demo")["ready_work_packages"],
            "recommended_base",
        )
    };
    assert_eq!(
        ready(&w),
        [("WP01".into(), Value::Null), ("WP03".into(), Value::Null)]
    );
    ok(&w, "transition --feature 001-demo --wp WP01 --to done --actor bot --force --note landed~elsewhere");
    assert_eq!(
        ready(&w),
        [("WP02".into(), json!("WP01")), ("WP03".into(), Value::Null)]
    );
    let d = ok(&w, "feature-state --feature 001-demo");
    assert_eq!(d["summary"]["done"], 1);
    assert_eq!(d["work_packages"][0]["lane"], "done");

    for slug in ["001", "nope", "../001-demo", "001-demo/tasks", "."] {
        let d = fails(
            &w,
            &format!("feature-state --feature {slug}"),
            "FEATURE_NOT_FOUND",
        );
        assert_eq!(
            d["message"],
            format!("Feature '{slug}' not found in kitty-specs/")
        );
        fails(
            &w,
            &format!("list-ready --feature {slug}"),
            "FEATURE_NOT_FOUND",
        );
    }
    // Outside the project, 2.1.3's SPECIFY_REPO_ROOT names it.
    let o = w
        .cmd_in(
            w.tmp.path(),
            &["orchestrator-api", "feature-state", "--feature", "001-demo"],
        )
        .env("SPECIFY_REPO_ROOT", &w.repo)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["data"], d, "{}", stderr(&o));
    // Outside any project.
    let elsewhere = World::bare("plain");
    fails(
        &elsewhere,
        "feature-state --feature 001-demo",
        "FEATURE_NOT_FOUND",
    );
}

#[test]
fn start_implementation_claims_then_starts_once_and_guards_the_claim() {
    let w = project();
    let start = |wp: &str, actor: &str, policy: &str| {
        format!("start-implementation --feature 001-demo --wp {wp} --actor {actor} {policy}")
    };
    let d = fails(&w, &start("WP01", "bot", ""), "POLICY_METADATA_REQUIRED");
    assert_eq!(
        d["message"],
        "--policy is required for start-implementation"
    );
    let d = fails(
        &w,
        &start("WP01", "bot", "--policy {S}"),
        "POLICY_VALIDATION_FAILED",
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("'sandbox_mode' appears to contain a secret"),
        "{d}"
    );
    fails(
        &w,
        &start("WP01", "bot", "--policy {not~json"),
        "POLICY_VALIDATION_FAILED",
    );
    fails(&w, &start("WP09", "bot", "--policy {P}"), "WP_NOT_FOUND");
    assert!(
        log_lines(&w).is_empty() && w.events().is_empty(),
        "a refusal writes nothing"
    );

    let d = ok(&w, &start("WP01", "bot", "--policy {P}"));
    assert_eq!(
        (
            d["from_lane"].as_str(),
            d["to_lane"].as_str(),
            d["no_op"].as_bool()
        ),
        (Some("planned"), Some("in_progress"), Some(false))
    );
    let root = fs::canonicalize(&w.repo).unwrap();
    let workspace = root.join(".worktrees/001-demo-WP01");
    assert_eq!(d["workspace_path"], workspace.display().to_string());
    let prompt = fs::canonicalize(w.wp_path("WP01")).unwrap();
    assert_eq!(d["prompt_path"], prompt.display().to_string());
    assert!(!workspace.exists(), "the caller makes the worktree");
    // Two changes: two events in the log and two on the wire, each with the policy.
    let log = log_lines(&w);
    assert_eq!(log.len(), 2);
    for e in &log {
        assert_eq!(e["policy_metadata"]["orchestrator_id"], "orch-1");
        assert_eq!(e["policy_metadata"]["tool_restrictions"], Value::Null);
    }
    assert_eq!(
        wire_moves(&w),
        moves(&[
            ("WP01", "planned", "claimed"),
            ("WP01", "claimed", "in_progress")
        ])
    );
    assert!(w
        .events()
        .iter()
        .all(|e| e.payload["policy_metadata"]["agent_family"] == "claude"));

    // The same actor again: nothing happens.
    let d = ok(&w, &start("WP01", "bot", "--policy {P}"));
    assert_eq!(
        (d["no_op"].as_bool(), d["from_lane"].as_str()),
        (Some(true), Some("in_progress"))
    );
    assert_eq!(log_lines(&w).len(), 2);
    // Someone else: refused, naming the owner.
    let d = fails(
        &w,
        &start("WP01", "intruder", "--policy {P}"),
        "WP_ALREADY_CLAIMED",
    );
    assert_eq!(
        d,
        json!({"claimed_by": "bot", "requesting_actor": "intruder"})
    );
    // Claimed by someone (a transition), then started by another.
    ok(
        &w,
        "transition --feature 001-demo --wp WP03 --to claimed --actor alice --policy {P}",
    );
    fails(
        &w,
        &start("WP03", "bob", "--policy {P}"),
        "WP_ALREADY_CLAIMED",
    );
    assert_eq!(
        ok(&w, &start("WP03", "alice", "--policy {P}"))["from_lane"],
        "claimed"
    );
    // Not startable from other lanes.
    ok(
        &w,
        "transition --feature 001-demo --wp WP02 --to blocked --actor bot",
    );
    let d = fails(
        &w,
        &start("WP02", "bot", "--policy {P}"),
        "TRANSITION_REJECTED",
    );
    assert_eq!(
        d["message"],
        "WP WP02 is in 'blocked', cannot start implementation"
    );
}

#[test]
fn transitions_are_one_event_each_checked_by_the_lane_rules_and_not_committed() {
    let w = project();
    let head = w.git(&["rev-parse", "HEAD"]);
    let t = |wp: &str, rest: &str| {
        format!("transition --feature 001-demo --wp {wp} --actor bot --to {rest}")
    };
    let rejected = |line: String, message: &str| {
        assert_eq!(
            fails(&w, &line, "TRANSITION_REJECTED")["message"],
            message,
            "{line}"
        );
    };
    let d = fails(&w, &t("WP01", "claimed"), "POLICY_METADATA_REQUIRED");
    assert_eq!(
        d["message"],
        "--policy is required when transitioning to 'claimed'"
    );
    rejected(t("WP01", "Sideways"), "Unknown lane: sideways");
    rejected(
        t("WP01", "for_review --policy {P}"),
        "Illegal transition: planned -> for_review",
    );
    rejected(
        t("WP01", "planned"),
        "Illegal transition: planned -> planned",
    );
    fails(&w, &t("WP07", "blocked"), "WP_NOT_FOUND");
    fails(
        &w,
        "transition --feature 009-x --wp WP01 --to done --actor a",
        "FEATURE_NOT_FOUND",
    );
    assert!(
        w.events().iter().all(|e| e.event_type == "ErrorLogged"),
        "refusals move nothing"
    );

    let d = ok(&w, &t("WP01", "claimed --policy {P}"));
    assert_eq!(
        (d["from_lane"].as_str(), d["to_lane"].as_str()),
        (Some("planned"), Some("claimed"))
    );
    assert_eq!(d["policy_metadata_recorded"], true);
    // `doing` is in_progress.
    assert_eq!(
        ok(&w, &t("WP01", "doing --policy {P}"))["to_lane"],
        "in_progress"
    );
    // The subtask guard: T001 is not ticked.
    rejected(
        t("WP01", "for_review --policy {P}"),
        "Transition in_progress -> for_review requires completed subtasks or force with reason",
    );
    // Forced without a note: refused; with one: recorded as forced.
    rejected(
        t("WP01", "done --force"),
        "Force transitions require actor and reason",
    );
    let d = ok(&w, &t("WP01", "done --force --note shipped~by~hand"));
    assert_eq!(d["policy_metadata_recorded"], false);
    let last = log_lines(&w).pop().unwrap();
    assert_eq!(
        (last["force"].as_bool(), last["reason"].as_str()),
        (Some(true), Some("shipped by hand"))
    );
    assert_eq!(last["policy_metadata"], Value::Null);

    assert_eq!(
        wire_moves(&w),
        moves(&[
            ("WP01", "planned", "claimed"),
            ("WP01", "claimed", "in_progress"),
            ("WP01", "in_progress", "done")
        ])
    );
    assert_eq!(log_lines(&w).len(), 3);
    assert_eq!(
        w.git(&["rev-parse", "HEAD"]),
        head,
        "2.1.3 does not commit transitions"
    );
}

#[test]
fn start_review_rolls_a_wp_back_with_its_review_reference() {
    let w = project();
    ok(&w, "transition --feature 001-demo --wp WP02 --to for_review --actor dev --policy {P} --force --note done~elsewhere");
    w.clear_spool();
    let review = |wp: &str, rest: &str| {
        format!("start-review --feature 001-demo --wp {wp} --actor rev {rest}")
    };
    let d = fails(
        &w,
        &review("WP02", "--review-ref PR#1"),
        "POLICY_METADATA_REQUIRED",
    );
    assert_eq!(d["message"], "--policy is required for start-review");
    let d = fails(&w, &review("WP02", "--policy {P}"), "TRANSITION_REJECTED");
    assert_eq!(
        d["message"],
        "--review-ref is required for start-review (for_review→in_progress guard)"
    );
    let d = ok(&w, &review("WP02", "--policy {P} --review-ref PR#1"));
    assert_eq!(
        (d["from_lane"].as_str(), d["to_lane"].as_str()),
        (Some("for_review"), Some("in_progress"))
    );
    assert!(
        d["prompt_path"]
            .as_str()
            .unwrap()
            .ends_with("tasks/WP02-second.md"),
        "{d}"
    );
    assert_eq!(log_lines(&w).pop().unwrap()["review_ref"], "PR#1");
    assert_eq!(
        wire_moves(&w),
        moves(&[("WP02", "for_review", "in_progress")])
    );
    // From planned there is no such move.
    let d = fails(
        &w,
        &review("WP03", "--policy {P} --review-ref PR#2"),
        "TRANSITION_REJECTED",
    );
    assert_eq!(d["message"], "Illegal transition: planned -> in_progress");
}

#[test]
fn append_history_writes_2_1_3s_line_commits_it_and_sends_one_event() {
    let w = project();
    fs::write(w.repo.join("unrelated.txt"), "mine\n").unwrap();
    let d = ok(
        &w,
        "append-history --feature 001-demo --wp WP03 --actor ci-bot --note tests~passed",
    );
    assert!(d["history_entry_id"].as_str().unwrap().starts_with("hist-"));
    let text = w.read(&w.wp_path("WP03"));
    let line = text.lines().last().unwrap();
    assert!(
        line.starts_with("- [20") && line.ends_with("Z] ci-bot: tests passed"),
        "{text}"
    );
    assert_eq!(
        head_subject(&w.repo, &w),
        "hist: append activity log entry for 001-demo/WP03"
    );
    assert_eq!(
        w.git(&["status", "--porcelain"]),
        "?? unrelated.txt\n",
        "only the WP file is committed"
    );
    let events = w.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "HistoryAdded");
    assert_eq!(events[0].payload["author"], "ci-bot");
    for wp in ["../WP03", "WP04"] {
        fails(
            &w,
            &format!("append-history --feature 001-demo --wp {wp} --actor a --note n"),
            "WP_NOT_FOUND",
        );
    }
}

/// Moves `wp` to done, forced (a test shortcut).
fn force_done(w: &World, wp: &str) {
    ok(
        w,
        &format!("transition --feature 001-demo --wp {wp} --to done --actor a --force --note n"),
    );
}

#[test]
fn accept_feature_needs_every_wp_done_and_completes_the_feature_once() {
    let w = project();
    force_done(&w, "WP01");
    let d = fails(
        &w,
        "accept-feature --feature 001-demo --actor ci",
        "FEATURE_NOT_READY",
    );
    assert_eq!(d, json!({"incomplete_wps": ["WP02", "WP03"]}));
    fails(
        &w,
        "accept-feature --feature nope --actor ci",
        "FEATURE_NOT_FOUND",
    );
    force_done(&w, "WP02");
    force_done(&w, "WP03");
    w.clear_spool();
    let d = ok(&w, "accept-feature --feature 001-demo --actor ci");
    assert_eq!(
        (d["accepted"].as_bool(), d["mode"].as_str()),
        (Some(true), Some("auto"))
    );
    let meta: Value = serde_json::from_str(&w.read(&w.feature_dir().join("meta.json"))).unwrap();
    assert_eq!(d["accepted_at"], meta["accepted_at"]);
    let kinds: Vec<String> = w.events().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(kinds, ["FeatureCompleted"]);
    // Again: still accepted, no second completion.
    w.clear_spool();
    ok(&w, "accept-feature --feature 001-demo --actor ci");
    assert!(w
        .events()
        .iter()
        .all(|e| e.event_type != "FeatureCompleted"));
}

/// `implement` WP (worktree and branch), one committed file, approved
/// (every subtask ticked first).
fn implemented(w: &World, wp: &str, file: &str) -> PathBuf {
    let tasks = w.feature_dir().join("tasks.md");
    let ticked = w.read(&tasks).replace("- [ ]", "- [x]");
    if ticked != w.read(&tasks) {
        fs::write(&tasks, ticked).unwrap();
        w.git(&["commit", "-q", "-am", "subtasks done"]);
    }
    w.ok(&["implement", wp, "--agent", "claude"]);
    let wt = w.repo.join(".worktrees").join(format!("001-demo-{wp}"));
    fs::write(wt.join(file), format!("{wp} was here\n")).unwrap();
    w.git_in(&wt, &["add", "-A"]);
    w.git_in(&wt, &["commit", "-q", "-m", &format!("{wp} work")]);
    let approve =
        format!("agent tasks move-task {wp} --to approved --reviewer alice --approval-ref PR#1");
    w.ok(&["agent", "tasks", "move-task", wp, "--to", "for_review"]);
    w.ok(&approve.split(' ').collect::<Vec<_>>());
    wt
}

#[test]
fn merge_feature_lands_the_branches_through_merge_and_reports_conflicts() {
    let w = project();
    let merge = "merge-feature --feature 001-demo";
    let d = fails(
        &w,
        &format!("{merge} --strategy octopus"),
        "UNSUPPORTED_STRATEGY",
    );
    assert_eq!(
        d,
        json!({"strategy": "octopus", "supported": ["merge", "rebase", "squash"]})
    );
    fails(
        &w,
        &format!("{merge} --strategy rebase"),
        "UNSUPPORTED_STRATEGY",
    );
    fails(&w, "merge-feature --feature nope", "FEATURE_NOT_FOUND");
    let d = fails(&w, merge, "PREFLIGHT_FAILED");
    assert!(!d["errors"].as_array().unwrap().is_empty(), "{d}");

    let wt1 = implemented(&w, "WP01", "one.txt");
    let wt3 = implemented(&w, "WP03", "three.txt");
    // From inside a worktree the main checkout's feature is the one read.
    let (code, _, v) = api_in(&w, &wt1, &["feature-state", "--feature", "001-demo"]);
    assert_eq!(
        (code, &v["data"]),
        (0, &ok(&w, "feature-state --feature 001-demo"))
    );
    let origin = w.tmp.path().join("origin.git");
    w.git(&["init", "-q", "--bare", origin.to_str().unwrap()]);
    w.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    w.clear_spool();
    let d = ok(&w, &format!("{merge} --push"));
    assert_eq!(d["merged_wps"], json!(["WP01", "WP03"]), "{d}");
    assert_eq!(
        (d["target_branch"].as_str(), d["strategy"].as_str()),
        (Some("main"), Some("merge"))
    );
    assert_eq!(d["worktree_removed"], true);
    assert!(w.repo.join("one.txt").exists() && w.repo.join("three.txt").exists());
    assert!(!wt1.exists() && !wt3.exists());
    let done: Vec<String> = wire_moves(&w)
        .into_iter()
        .filter(|m| m.2 == "done")
        .map(|m| m.0)
        .collect();
    assert_eq!(done, ["WP01", "WP03"], "one done event per merged WP");
    let pushed = w.git_in(&origin, &["log", "-1", "--format=%H", "main"]);
    assert_eq!(pushed, w.git(&["rev-parse", "HEAD"]), "--push pushed main");

    // Merged, but the push fails: PUSH_FAILED with what was merged.
    let w = project();
    implemented(&w, "WP03", "three.txt");
    w.git(&["remote", "add", "origin", "/nonexistent/origin.git"]);
    let d = fails(&w, &format!("{merge} --push"), "PUSH_FAILED");
    assert_eq!(d, json!({"merged_wps": ["WP03"]}));
    assert!(w.repo.join("three.txt").exists());

    // A conflict: MERGE_FAILED naming the WP, nothing half-merged.
    let w = project();
    implemented(&w, "WP01", "same.txt");
    implemented(&w, "WP03", "same.txt");
    let d = fails(&w, merge, "MERGE_FAILED");
    assert_eq!(d, json!({"merged_so_far": ["WP01"], "failed_wp": "WP03"}));
    assert!(!w.repo.join(".git/MERGE_HEAD").exists());
}

// ---- the same sequence against the real Python 2.1.3 ----

/// `text` with the values of `"key": "..."` replaced by `X` (ids, times).
fn normalise(text: &str, keys: &[&str]) -> String {
    let mut out = text.to_string();
    for k in keys {
        let pat = format!("\"{k}\": \"");
        let mut from = 0;
        while let Some(i) = out[from..].find(&pat) {
            let start = from + i + pat.len();
            let end = start + out[start..].find('"').unwrap();
            out.replace_range(start..end, "X");
            from = start + 1;
        }
    }
    out
}

/// Replaces `[YYYY-MM-DDTHH:MM:SSZ]` history stamps by `[T]`.
fn normalise_stamps(text: &str) -> String {
    text.lines()
        .map(|l| match (l.find("- [20"), l.find("Z] ")) {
            (Some(a), Some(b)) if b > a => format!("{}- [T{}", &l[..a], &l[b + 1..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn python_2_1_3_answers_the_same_bytes_on_a_twin_repository() {
    let Some(py) =
        common::require_python("python_2_1_3_answers_the_same_bytes_on_a_twin_repository")
    else {
        return;
    };
    let w = project();
    let twin = w.tmp.path().join("twin");
    common::copy_tree(&w.repo, &twin);
    let run_py = |args: &[&str]| -> (i32, String) {
        let mut c = Command::new("timeout");
        c.arg("120")
            .arg(&py)
            .arg("orchestrator-api")
            .args(args)
            .current_dir(&twin);
        git_env(&mut c, &w.home);
        c.env("SPEC_KITTY_HOME", w.home.join(".kittify-py"))
            .env("SPEC_KITTY_NO_BANNER", "1")
            .env("SPEC_KITTY_NON_INTERACTIVE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let o = c.output().unwrap();
        let out = stdout(&o);
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("python {args:?}: no envelope\n{out}\n{}", stderr(&o)));
        (o.status.code().unwrap(), line.to_string())
    };
    // One step per line, written as [`words`] reads it.
    let steps = "\
        contract-version
        contract-version --provider-version 0.0.1
        feature-state --feature 001-demo
        list-ready --feature 001-demo
        transition --feature 001-demo --wp WP01 --to claimed --actor bot --policy {P}
        transition --feature 001-demo --wp WP01 --to doing --actor bot --policy {P}
        transition --feature 001-demo --wp WP01 --to for_review --actor bot --policy {P}
        transition --feature 001-demo --wp WP01 --to done --actor bot --force --note shipped~by~hand
        transition --feature 001-demo --wp WP03 --to nowhere --actor bot
        feature-state --feature 001-demo
        list-ready --feature 001-demo
        append-history --feature 001-demo --wp WP02 --actor ci-bot --note Tests~passed:~12/12~✓
        start-implementation --feature 001-demo --wp WP03 --actor bot
        start-implementation --feature 001-demo --wp WP03 --actor bot --policy {S}
        start-implementation --feature 001-demo --wp WP03 --actor bot --policy {P}
        start-implementation --feature 001-demo --wp WP03 --actor eve --policy {P}
        start-review --feature 001-demo --wp WP01 --actor rev --policy {P} --review-ref PR#1
        accept-feature --feature 001-demo --actor ci
        list-ready --feature 002-missing
        feature-state";
    let keys = ["timestamp", "correlation_id", "history_entry_id"];
    let ours_root = fs::canonicalize(&w.repo).unwrap().display().to_string();
    let twin_root = fs::canonicalize(&twin).unwrap().display().to_string();
    for line in steps.lines() {
        let args = words(line);
        let args: Vec<&str> = strs(&args);
        let (our_code, ours, _) = api_in(&w, &w.repo, &args);
        let (py_code, theirs) = run_py(&args);
        assert_eq!(
            (
                our_code,
                normalise(&ours, &keys).replace(&ours_root, "ROOT")
            ),
            (
                py_code,
                normalise(&theirs, &keys).replace(&twin_root, "ROOT")
            ),
            "{args:?}\nours:   {ours}\nPython: {theirs}"
        );
    }
    // The same events in the log (2.1.3's bytes, policy included).
    let log = |root: &Path| {
        normalise(
            &fs::read_to_string(root.join("kitty-specs/001-demo/status.events.jsonl")).unwrap(),
            &["event_id", "at"],
        )
    };
    assert_eq!(log(&w.repo), log(&twin));
    // The same history line in the same place, and the same commit.
    let wp02 = |root: &Path| {
        normalise_stamps(
            &fs::read_to_string(root.join("kitty-specs/001-demo/tasks/WP02-second.md")).unwrap(),
        )
    };
    assert_eq!(wp02(&w.repo), wp02(&twin));
    assert_eq!(head_subject(&w.repo, &w), head_subject(&twin, &w));
}
