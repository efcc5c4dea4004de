//! `accept-feature` and `merge-feature`: 2.1.3's checks and answers on top
//! of this CLI's own `accept` (its acceptance record, as 2.1.3 writes it
//! here: no checklist, no commit) and `merge` (run in-process with its
//! `--json` result captured, so its rules, events and commits are the ones
//! every other path gets).

use super::envelope::J;
use super::{resolve_feature, Answer, Fail};
use crate::cli::{Cli, Command};
use crate::commands::{accept, merge};
use crate::error::{CliError, Kind};
use crate::feature;
use crate::output::{self, Out};
use crate::status::store;
use clap::Parser;
use serde_json::Value;
use spec_kitty_protocol::Lane;
use std::collections::BTreeSet;

/// Parses `spec-kitty ARGS` with this CLI's grammar (so flags added to
/// `accept`/`merge` later keep their defaults here).
fn parse(args: &[&str]) -> Result<Command, Fail> {
    let mut argv = vec!["spec-kitty"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .map(|c| c.command)
        .map_err(|e| Fail::new("INTERNAL_ERROR", e.to_string().trim()))
}

/// The last JSON object among captured stdout lines.
fn json_result(lines: &[String]) -> Value {
    lines
        .iter()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
        .unwrap_or(Value::Null)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Runs another command's code in the project's main checkout (where
/// 2.1.3's orchestrator runs git), with its stdout captured.
fn in_project<R>(root: &std::path::Path, f: impl FnOnce() -> R) -> Result<(R, Vec<String>), Fail> {
    std::env::set_current_dir(root)
        .map_err(|e| Fail::internal(&CliError::io_at("enter", root, &e)))?;
    Ok(output::capture(f))
}

pub fn accept_feature(slug: &str, actor: &str) -> Answer {
    let (project, feat) = resolve_feature(slug)?;
    // 2.1.3's readiness: every WP (of the WP files and of the log) done.
    let snap = store::snapshot(&feat).map_err(|e| Fail::internal(&e))?;
    let (wps, _) = feature::load_wps_lenient(&feat).map_err(|e| Fail::internal(&e))?;
    let ids: BTreeSet<&String> = wps
        .iter()
        .map(|w| &w.meta.wp_id)
        .chain(snap.work_packages.keys())
        .collect();
    let incomplete: Vec<&String> = ids
        .into_iter()
        .filter(|id| snap.work_packages.get(*id).map(|s| s.lane) != Some(Lane::Done))
        .collect();
    if !incomplete.is_empty() {
        return Err(Fail {
            code: "FEATURE_NOT_READY",
            data: J::O(vec![("incomplete_wps", J::strings(&incomplete))]),
        });
    }
    let ctx = super::moves::open_ctx(&project)?;
    let accepted_at =
        accept::record_orchestrated(&ctx, &feat, actor).map_err(|e| Fail::internal(&e))?;
    Ok(J::O(vec![
        ("feature_slug", J::s(slug)),
        ("accepted", true.into()),
        // 2.1.3 answers "auto" here (and records "orchestrator").
        ("mode", J::s("auto")),
        ("accepted_at", J::s(&accepted_at)),
    ]))
}

const STRATEGIES: [&str; 3] = ["merge", "rebase", "squash"];

fn unsupported(strategy: &str, supported: &[&str]) -> Fail {
    Fail {
        code: "UNSUPPORTED_STRATEGY",
        data: J::O(vec![
            ("strategy", J::s(strategy)),
            ("supported", J::strings(supported)),
        ]),
    }
}

pub fn merge_feature(slug: &str, target: Option<&str>, strategy: &str, push: bool) -> Answer {
    if !STRATEGIES.contains(&strategy) {
        return Err(unsupported(strategy, &STRATEGIES));
    }
    // `merge` lands worktree branches with merge commits or squashes; a
    // rebase would rewrite the WP branches 2.1.3's own `merge` refuses to.
    if strategy == "rebase" {
        return Err(unsupported(strategy, &["merge", "squash"]));
    }
    let (project, _) = resolve_feature(slug)?;
    let mut args = vec!["merge", "--feature", slug, "--strategy", strategy, "--json"];
    if let Some(t) = target {
        args.extend(["--target", t]);
    }
    let Command::Merge(a) = parse(&args)? else {
        unreachable!("`merge` parses as Command::Merge")
    };
    let (r, lines) = in_project(&project.root, || merge::run(&Out::new(true), a))?;
    let result = json_result(&lines);
    if let Err(e) = r {
        return Err(merge_failure(&project.root, &result, &e));
    }
    let merged = strings(&result["done"]);
    let target = result["target_branch"]
        .as_str()
        .map(str::to_string)
        .or(target.map(str::to_string))
        .unwrap_or_default();
    if push {
        let o = std::process::Command::new("git")
            .args(["push", "origin", &target])
            .current_dir(&project.root)
            .output();
        let failed = match o {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(e.to_string()),
        };
        if failed.is_some() {
            return Err(Fail {
                code: "PUSH_FAILED",
                data: J::O(vec![("merged_wps", J::strings(&merged))]),
            });
        }
    }
    Ok(J::O(vec![
        ("feature_slug", J::s(slug)),
        ("merged", true.into()),
        ("target_branch", J::s(&target)),
        ("strategy", J::s(strategy)),
        ("merged_wps", J::strings(&merged)),
        (
            "worktree_removed",
            (!strings(&result["removed_worktrees"]).is_empty()).into(),
        ),
    ]))
}

/// A conflict (or a failed git step) is MERGE_FAILED with what landed
/// before it; a refusal before anything was merged is PREFLIGHT_FAILED
/// with one error per line.
fn merge_failure(root: &std::path::Path, result: &Value, e: &CliError) -> Fail {
    let merged_so_far = || {
        std::fs::read(root.join(merge::STATE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|s| strings(&s["completed_wps"]))
            .unwrap_or_default()
    };
    if result["result"] == "conflict" {
        return Fail {
            code: "MERGE_FAILED",
            data: J::O(vec![
                ("merged_so_far", J::strings(&merged_so_far())),
                (
                    "failed_wp",
                    J::s(result["wp_id"].as_str().unwrap_or_default()),
                ),
            ]),
        };
    }
    if e.kind == Kind::Io {
        return Fail::new("MERGE_FAILED", &e.message);
    }
    let errors: Vec<&str> = e
        .message
        .lines()
        .map(|l| l.trim().trim_start_matches("- "))
        .filter(|l| !l.is_empty())
        .collect();
    Fail {
        code: "PREFLIGHT_FAILED",
        data: J::O(vec![("errors", J::strings(&errors))]),
    }
}
