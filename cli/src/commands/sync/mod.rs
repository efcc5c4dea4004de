//! `spec-kitty sync ...`: the daemon as the user sees it: `status`,
//! `start`, `stop`, `restart`, `logs`, `service install|uninstall|status`,
//! `now`, `retry-parked`, `server`, `doctor`, `diagnose`.
//!
//! Everything here talks to the daemon through [`crate::daemon_client`]
//! with bounded timeouts, so a wedged daemon makes these commands fail with
//! a message, never hang. `status` works (and says so) when no daemon runs.
//!
//! The grammar is in [`crate::cli::SyncCommand`]; here is the dispatch
//! ([`run`]) and one module per subcommand group: [`status`], [`lifecycle`]
//! (`start`, `stop`, `restart`, `retry-parked`), [`logs`], [`service`],
//! [`now`], [`server`], and [`checks`] (`--check`, `doctor`, `diagnose`).
//! A new subcommand adds ONE variant there, ONE arm in [`run`] and its
//! handler in its own module. This file only dispatches: the modules share
//! through each other ([`spool`], `status::STATUS_TIMEOUT`,
//! `lifecycle::client_err`), never through here, so no module imports
//! its parent back.

pub mod checks;
mod lifecycle;
mod logs;
mod now;
mod server;
mod service;
pub mod spool;
mod status;

use crate::cli::{ServiceCommand, SyncCommand};
use crate::error::CliError;
use crate::output::Out;

/// Runs one `sync` subcommand.
pub fn run(out: &Out, cmd: SyncCommand) -> Result<(), CliError> {
    let paths = super::state_paths(out)?;
    match cmd {
        SyncCommand::Status(a) => status::run(out, &paths, a.check),
        SyncCommand::Start(_) => lifecycle::start(out, &paths),
        SyncCommand::Stop(_) => lifecycle::stop(out, &paths).map(|_| ()),
        SyncCommand::Restart(_) => {
            lifecycle::stop(out, &paths)?;
            lifecycle::start(out, &paths)
        }
        SyncCommand::Logs(a) => logs::run(&paths, a),
        SyncCommand::Service(ServiceCommand::Install(_)) => service::install(out, &paths),
        SyncCommand::Service(ServiceCommand::Uninstall(_)) => service::uninstall(out),
        SyncCommand::Service(ServiceCommand::Status(_)) => service::status(out),
        SyncCommand::Now(a) => now::run(out, a),
        SyncCommand::RetryParked(_) => lifecycle::retry_parked(out, &paths),
        SyncCommand::Server(a) => server::run(out, a),
        SyncCommand::Doctor(_) => checks::doctor(out, &paths),
        SyncCommand::Diagnose(_) => checks::diagnose(out, &paths),
    }
}
