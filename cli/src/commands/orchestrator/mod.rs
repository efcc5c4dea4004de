//! `spec-kitty orchestrator-api`: 2.1.3's JSON contract for tools that
//! drive spec-kitty (its `orchestrator_api/commands.py`): the same nine
//! subcommands and flags, one envelope on stdout for every outcome (usage
//! errors included), 2.1.3's error codes, exit 0 / 1 (failure) / 2 (usage).
//!
//! The feature is `--feature`, exactly as its directory under
//! `kitty-specs/` of the project found from the current directory is named
//! (2.1.3 does no prefix matching and ignores the branch). State changes go
//! through this CLI's own paths: lane moves through
//! [`super::lane_move::apply`] (one wire event each), acceptance through
//! `accept`, merges through `merge`.

mod envelope;
mod landing;
mod moves;
mod queries;

use crate::cli::OrchestratorCommand as C;
use crate::error::{CliError, Kind};
use crate::feature::Feature;
use crate::output;
use crate::project::{self, Project};
use envelope::J;
use std::path::PathBuf;

/// A failure: 2.1.3's error code, and the envelope's `data`.
#[derive(Debug)]
pub struct Fail {
    pub code: &'static str,
    pub data: J,
}

impl Fail {
    fn new(code: &'static str, message: &str) -> Fail {
        Fail {
            code,
            data: J::message(message),
        }
    }

    /// An error of ours that 2.1.3 has no code for (it would crash with a
    /// traceback): an unreadable status log, a failed write.
    fn internal(e: &CliError) -> Fail {
        Fail::new("INTERNAL_ERROR", &e.message)
    }
}

type Answer = Result<J, Fail>;

/// Whether this process was started as `spec-kitty orchestrator-api ...`.
pub fn is_invoked() -> bool {
    std::env::args().nth(1).as_deref() == Some("orchestrator-api")
}

/// A command line clap refused: help is printed as usual; anything else is
/// 2.1.3's `USAGE_ERROR` envelope (with click's wording where we can give
/// it), exit 2.
pub fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind as K};
    if !e.use_stderr() {
        let _ = e.print();
        return 0;
    }
    let ctx = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let flag = |s: String| s.split([' ', '=']).next().unwrap_or_default().to_string();
    let message = match e.kind() {
        // `orchestrator-api` alone: 2.1.3 shows the help, then an empty message.
        K::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            String::new()
        }
        K::MissingRequiredArgument => match ctx(ContextKind::InvalidArg) {
            Some(a) => format!("Missing option '{}'.", flag(a)),
            None => first_line(e),
        },
        K::UnknownArgument => match ctx(ContextKind::InvalidArg) {
            Some(a) => format!("No such option '{}'.", flag(a)),
            None => first_line(e),
        },
        K::InvalidSubcommand => match ctx(ContextKind::InvalidSubcommand) {
            Some(a) => format!("No such command '{a}'."),
            None => first_line(e),
        },
        K::InvalidValue if ctx(ContextKind::InvalidValue).is_none_or(|v| v.is_empty()) => {
            match ctx(ContextKind::InvalidArg) {
                Some(a) => format!("Option '{}' requires an argument.", flag(a)),
                None => first_line(e),
            }
        }
        _ => first_line(e),
    };
    output::print_line(&envelope::envelope(
        "unknown",
        false,
        J::message(&message),
        Some("USAGE_ERROR"),
    ));
    2
}

fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Runs one subcommand and prints its envelope; a failure exits 1 with
/// nothing else on stdout.
pub fn run(c: C) -> Result<(), CliError> {
    let (name, answer) = match c {
        C::ContractVersion { provider_version } => (
            "contract-version",
            queries::contract_version(provider_version.as_deref()),
        ),
        C::FeatureState { feature } => ("feature-state", queries::feature_state(&feature)),
        C::ListReady { feature } => ("list-ready", queries::list_ready(&feature)),
        C::StartImplementation { target, policy } => (
            "start-implementation",
            moves::start_implementation(&target, policy.as_deref()),
        ),
        C::StartReview {
            target,
            policy,
            review_ref,
        } => (
            "start-review",
            moves::start_review(&target, policy.as_deref(), review_ref.as_deref()),
        ),
        C::Transition {
            target,
            to,
            note,
            policy,
            force,
            review_ref,
        } => (
            "transition",
            moves::transition(&moves::TransitionArgs {
                target: &target,
                to: &to,
                note: note.as_deref(),
                policy: policy.as_deref(),
                force,
                review_ref: review_ref.as_deref(),
            }),
        ),
        C::AppendHistory { target, note } => {
            ("append-history", moves::append_history(&target, &note))
        }
        C::AcceptFeature { feature, actor } => {
            ("accept-feature", landing::accept_feature(&feature, &actor))
        }
        C::MergeFeature {
            feature,
            target,
            strategy,
            push,
        } => (
            "merge-feature",
            landing::merge_feature(&feature, target.as_deref(), &strategy, push),
        ),
    };
    match answer {
        Ok(data) => {
            output::print_line(&envelope::envelope(name, true, data, None));
            Ok(())
        }
        Err(f) => {
            output::print_line(&envelope::envelope(name, false, f.data, Some(f.code)));
            Err(CliError::reported(Kind::Io))
        }
    }
}

/// The project 2.1.3's `locate_project_root` finds: `$SPECIFY_REPO_ROOT`
/// when it names a directory with `.kittify/`, else the one of the current
/// directory (its main checkout from inside a worktree).
fn locate() -> Result<Project, CliError> {
    if let Some(root) = std::env::var_os("SPECIFY_REPO_ROOT")
        .map(PathBuf::from)
        .and_then(|p| std::fs::canonicalize(p).ok())
        .filter(|p| p.join(".kittify").is_dir())
    {
        let git_root = root.join(".git").exists().then(|| root.clone());
        return Ok(Project { root, git_root });
    }
    project::locate(&project::cwd()?)
}

/// The project ([`locate`]) and the feature `slug` in it, or 2.1.3's
/// FEATURE_NOT_FOUND.
fn resolve_feature(slug: &str) -> Result<(Project, Feature), Fail> {
    let not_found = || {
        Fail::new(
            "FEATURE_NOT_FOUND",
            &format!("Feature '{slug}' not found in kitty-specs/"),
        )
    };
    // One plain directory name: never a path out of kitty-specs/.
    if slug.is_empty() || slug == "." || slug == ".." || slug.contains(['/', '\\', '\0']) {
        return Err(not_found());
    }
    let project = locate().map_err(|_| not_found())?;
    let dir = project.specs_dir().join(slug);
    if !dir.is_dir() {
        return Err(not_found());
    }
    let feat = Feature {
        slug: slug.to_string(),
        dir,
        root: project.root.clone(),
    };
    Ok((project, feat))
}

/// 2.1.3's `_resolve_wp_file`: `tasks/<wp>.md`, else the first (by name)
/// `tasks/<wp>-*.md`; or WP_NOT_FOUND.
fn resolve_wp(feat: &Feature, wp: &str) -> Result<PathBuf, Fail> {
    let not_found = || {
        Fail::new(
            "WP_NOT_FOUND",
            &format!("Work package '{wp}' not found in {}", feat.slug),
        )
    };
    if wp.is_empty() || wp.contains(['/', '\\', '\0']) || wp == "." || wp == ".." {
        return Err(not_found());
    }
    let tasks = feat.tasks_dir();
    let exact = tasks.join(format!("{wp}.md"));
    if exact.exists() {
        return Ok(exact);
    }
    let prefix = format!("{wp}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&tasks)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".md"))
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(not_found)
}
