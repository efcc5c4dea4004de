//! One module per command, plus [`Ctx`]: what every command inside a
//! project starts from (project root, ensured identity, git facts, emitter).

pub mod accept;
pub mod agent_feature;
pub mod agent_status;
pub mod auth;
pub mod completions;
pub mod dashboard;
pub mod finalize;
pub mod history;
pub mod implement;
pub mod init;
pub mod lane_move;
pub mod mark_status;
pub mod merge;
pub mod move_task;
pub mod not_provided;
pub mod orchestrator;
pub mod plan;
pub mod specify;
pub mod status;
pub mod status_check;
pub mod status_read;
pub mod status_reconcile;
pub mod sync;
pub mod tasks;
pub mod workflow;

use crate::emit::{self, Emitter};
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::gitmeta::GitMeta;
use crate::handoff::Policy;
use crate::identity::{self, EnsureOpts, Identity};
use crate::output::Out;
use crate::project::{self, Project};
use spec_kitty_protocol::Paths;
use std::path::PathBuf;

/// The shared starting point of commands that run inside a project.
#[derive(Debug)]
pub struct Ctx {
    pub out: Out,
    pub cwd: PathBuf,
    pub project: Project,
    pub identity: Identity,
    pub git: GitMeta,
    pub emitter: Emitter,
}

impl Ctx {
    /// Locates the project from the current directory and ensures its
    /// identity (backfill) before anything else happens.
    pub fn open(out: &Out) -> Result<Ctx, CliError> {
        let cwd = project::cwd()?;
        let project = project::locate(&cwd)?;
        Ctx::for_project(out, cwd, project, EnsureOpts::default())
    }

    pub fn for_project(
        out: &Out,
        cwd: PathBuf,
        project: Project,
        opts: EnsureOpts,
    ) -> Result<Ctx, CliError> {
        let out = *out;
        let identity = identity::ensure(&project, opts, &mut |w| out.warn(&w));
        let git = project
            .git_root
            .as_deref()
            .map(GitMeta::read)
            .unwrap_or_default();
        let paths = state_paths(&out)?;
        let origin = emit::origin(&identity, &paths, &git);
        let emitter = Emitter {
            paths,
            origin,
            policy: Policy {
                auto_start: identity.auto_start,
            },
        };
        Ok(Ctx {
            out,
            cwd,
            project,
            identity,
            git,
            emitter,
        })
    }

    /// The feature a command acts on (see [`feature::detect`]).
    pub fn feature(&self, explicit: Option<&str>) -> Result<Feature, CliError> {
        feature::detect(
            &self.project,
            explicit,
            self.git.branch.as_deref(),
            &self.cwd,
        )
    }

    /// A warning printer for [`crate::emit`] functions.
    pub fn warner(&self) -> impl FnMut(String) + '_ {
        move |w| self.out.warn(&w)
    }
}

/// A path relative to the project root, for messages.
pub fn rel(ctx: &Ctx, p: &std::path::Path) -> String {
    p.strip_prefix(&ctx.project.root)
        .unwrap_or(p)
        .display()
        .to_string()
}

/// The sync state root ([`Paths::from_env`]), with the one-release notice
/// when it came from the old variable name.
pub fn state_paths(out: &Out) -> Result<Paths, CliError> {
    let paths = Paths::from_env().map_err(CliError::io_from)?;
    if let Some(notice) = paths.legacy_notice() {
        out.warn(&notice);
    }
    Ok(paths)
}
