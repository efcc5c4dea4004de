//! `spec-kitty`: the command users and agents type.
//!
//! Module map:
//! - [`cli`]: the clap grammar (add new command groups there); it imports
//!   no handler, and no module here imports one that imports it back;
//! - [`agentfiles`]: the agents `init --ai` sets up and their command files;
//! - [`commands`]: one module per command, each validate → build events →
//!   write files → deliver;
//! - [`project`], [`identity`], [`feature`], [`wpfile`], [`tasksmd`]: the
//!   repository's files (project root, `.kittify/config.yaml`,
//!   `kitty-specs/`, WP files, the work packages `tasks.md` describes);
//! - [`gitmeta`]: branch/HEAD/origin read directly from `.git`;
//! - [`gitcommit`]: committing exactly the files a command wrote;
//! - [`emit`]: event origin (identity, team, git) and write-then-deliver;
//! - [`handoff`]: how one event leaves this process (daemon, else spool);
//! - [`daemon_client`]: the daemon socket client (handshake, skew,
//!   requests), with [`daemon_client::launch`] starting, replacing and
//!   stopping the daemon;
//! - [`status`]: the canonical status model of 2.1.3 (event log, lane
//!   rules, reducer, views, the one write path), with [`pyjson`] writing
//!   its files as Python does;
//! - [`fsutil`]: the one rule for links and special files in the
//!   repository, atomic writes under it, and locks;
//! - [`yamltext`], [`output`], [`error`]: helpers.
//!
//! Synchronous, no async runtime, no database: a lane change must finish in
//! a few milliseconds.

pub mod agentfiles;
pub mod cli;
pub mod commands;
pub mod daemon_client;
pub mod emit;
pub mod error;
pub mod feature;
pub mod fsutil;
pub mod gitcommit;
pub mod gitmeta;
pub mod handoff;
pub mod identity;
pub mod output;
pub mod project;
pub mod pyjson;
pub mod status;
pub mod tasksmd;
pub mod wpfile;
pub mod yamltext;

use clap::Parser;
use cli::{
    AgentCommand, AgentStatusCommand, AgentTasksCommand, Cli, Command, TasksArgs, TasksCommand,
    TasksGroup,
};
use error::CliError;
use output::Out;

/// Parses the command line, runs the command, prints errors, and returns
/// the process exit code.
pub fn run() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The hottest command lines skip building clap's grammar (see
    // `cli::fast`); everything else, errors included, is clap's.
    let parsed = cli::fast::parse(&args).map_or_else(|| Cli::try_parse_from(&args), Ok);
    let cli = match parsed {
        Ok(c) => c,
        // Its contract: even a usage error is one JSON envelope.
        Err(e) if commands::orchestrator::is_invoked() => {
            return commands::orchestrator::usage_error(&e);
        }
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            let words: Vec<String> = args
                .iter()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            match commands::not_provided::explain(&words) {
                Some(line) => {
                    Out::new(false).error(&line);
                    return error::Kind::Refused as i32;
                }
                None => {
                    let _ = e.print();
                    return 2;
                }
            }
        }
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let json = match &cli.command {
        Command::Init(a) => a.json,
        Command::Specify(a) => a.opts.json,
        Command::Plan(a) => a.json,
        Command::Research(a) => a.json,
        Command::Tasks(TasksGroup::Tasks(TasksArgs {
            command: Some(TasksCommand::Add(a)),
            ..
        })) => a.json,
        Command::Tasks(TasksGroup::Tasks(TasksArgs {
            command: Some(TasksCommand::Finalize(a)),
            ..
        })) => a.json,
        Command::Tasks(TasksGroup::Tasks(TasksArgs { finalize: a, .. })) => a.json,
        Command::Agent(AgentCommand::Feature(c)) => c.json(),
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::FinalizeTasks(a))) => a.json,
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::MapRequirements(a))) => a.json,
        Command::Implement(a) => a.json,
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::MoveTask(a))) => a.json,
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::AddHistory(a))) => a.json,
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::Read(c))) => c.json(),
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::MarkStatus(a))) => a.json,
        Command::Agent(AgentCommand::Status(c)) => c.json(),
        Command::Agent(AgentCommand::Workflow(_)) => false,
        Command::Accept(a) => a.common.json,
        Command::Status(a) => a.json,
        Command::Merge(a) => a.json,
        Command::Sync(c) => c.json(),
        Command::Auth(c) => c.json(),
        Command::Dashboard(a) => a.json,
        Command::OrchestratorApi(_) => true,
        Command::Completions(_) | Command::Man(_) => false,
    };
    let out = Out::new(json);
    let result: Result<(), CliError> = match cli.command {
        Command::Init(a) => commands::init::run(&out, a),
        Command::Specify(a) => commands::specify::run(&out, a),
        Command::Plan(a) => commands::plan::setup_plan(&out, a),
        Command::Research(a) => commands::plan::research(&out, a),
        Command::Tasks(TasksGroup::Tasks(TasksArgs {
            command: Some(TasksCommand::Add(a)),
            ..
        })) => commands::tasks::add(&out, a),
        Command::Tasks(TasksGroup::Tasks(TasksArgs {
            command: Some(TasksCommand::Finalize(a)),
            ..
        })) => commands::tasks::finalize(&out, a),
        Command::Tasks(TasksGroup::Tasks(TasksArgs { finalize: a, .. })) => {
            commands::finalize::run(&out, a, commands::finalize::Mode::Feature)
        }
        Command::Agent(AgentCommand::Feature(c)) => commands::agent_feature::run(&out, c),
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::FinalizeTasks(a))) => {
            commands::finalize::run(&out, a, commands::finalize::Mode::Tasks)
        }
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::MapRequirements(a))) => {
            commands::finalize::map_requirements(&out, a)
        }
        Command::Implement(a) => commands::implement::run(&out, a),
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::MoveTask(a))) => {
            commands::move_task::run(&out, a)
        }
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::AddHistory(a))) => {
            commands::history::run(&out, a)
        }
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::Read(c))) => {
            commands::status_read::run(&out, c)
        }
        Command::Agent(AgentCommand::Tasks(AgentTasksCommand::MarkStatus(a))) => {
            commands::mark_status::run(&out, a)
        }
        Command::Agent(AgentCommand::Status(AgentStatusCommand::Check(c))) => {
            commands::status_check::run(&out, c)
        }
        Command::Agent(AgentCommand::Status(c)) => commands::agent_status::run(&out, c),
        Command::Agent(AgentCommand::Workflow(c)) => commands::workflow::run(&out, c),
        Command::Accept(a) => commands::accept::run(&out, a),
        Command::Status(a) => commands::status::run(&out, a),
        Command::Merge(a) => commands::merge::run(&out, a),
        Command::Sync(c) => commands::sync::run(&out, c),
        Command::Auth(c) => commands::auth::run(&out, c),
        Command::Dashboard(a) => commands::dashboard::run(&out, a),
        Command::OrchestratorApi(c) => commands::orchestrator::run(c),
        Command::Completions(a) => commands::completions::completions(a),
        Command::Man(a) => commands::completions::man(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !e.message.is_empty() {
                out.error(&e.for_user());
            }
            e.exit_code()
        }
    }
}
