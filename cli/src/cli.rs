//! The command-line grammar (clap derive), in one place.
//!
//! This module is a leaf: it imports no command handler, and the handlers
//! (`commands/*.rs`) and the completion and man-page generators import it.
//! To add a command group: add a variant to [`Command`] holding its
//! `#[derive(Subcommand)]` enum, defined here, put its handler in
//! `commands/<name>.rs`, and add one match arm in [`crate::run`]. Exit codes
//! are shared ([`crate::error::Kind`]).

use crate::error::EXIT_CODES_HELP;
use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "spec-kitty",
    version,
    about = "Spec-driven development: features, work packages and lanes, with every change sent as an event to spec-kitty-syncd.",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// 2.1.3 spells --version -v (clap's -V stays the documented one).
    #[arg(short = 'v', action = clap::ArgAction::Version, hide = true)]
    pub version_v: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a project: .kittify/config.yaml with its identity, kitty-specs/, git, and the agents' command files.
    #[command(after_help = INIT_HELP)]
    Init(InitArgs),
    /// Create the next feature: kitty-specs/NNN-name/ with meta.json, spec.md and tasks/.
    #[command(after_help = EXIT_CODES_HELP)]
    Specify(SpecifyArgs),
    /// Work packages of a feature.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Start a work package: lane planned → doing, and a git worktree .worktrees/<feature>-WPnn.
    #[command(after_help = EXIT_CODES_HELP)]
    Implement(ImplementArgs),
    /// Commands for agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Accept a feature: every work package in for_review or approved moves to done.
    #[command(after_help = EXIT_CODES_HELP)]
    Accept(AcceptArgs),
    /// Kanban board of a feature's work packages.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(StatusArgs),
    /// The per-user sync daemon: status, start, stop, restart, logs, service unit.
    #[command(subcommand)]
    Sync(crate::commands::sync::SyncCommand),
    /// Log in to the SaaS, log out, or show the login (never a token).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Write man pages (spec-kitty.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}

const INIT_HELP: &str = "\
Agents (--ai, comma-separated): copilot, claude, gemini, cursor, qwen, opencode,
codex, windsurf, kilocode, auggie, roo, q, antigravity. Each gets one command
file per step (/spec-kitty.specify, .plan, .tasks, .implement, .review, .accept,
.merge, .status, ...) in its own directory, and `agents:` in .kittify/config.yaml
records them. Without --ai, the agents already recorded there are used.

Running init again keeps the project identity and every file it did not write;
command files edited by hand are kept unless --force is given.

Exit codes:
  0  success
  1  a file could not be written
  2  usage error
  4  invalid input (unknown agent, preferred agent not among those chosen)";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create and initialise; omit it, or give `.`, for the current directory.
    pub name: Option<String>,
    /// Initialise the current directory.
    #[arg(long)]
    pub here: bool,
    /// Comma-separated coding agents to write command files for (claude,codex,gemini,...).
    #[arg(long = "ai", value_name = "AGENTS")]
    pub ai: Option<String>,
    /// Accepted for 2.1.3 compatibility; the command files run `spec-kitty` directly, so sh and ps get the same files.
    #[arg(long = "script", value_name = "TYPE", value_parser = ["sh", "ps"])]
    pub script: Option<String>,
    /// Agent preferred for implementation (one of --ai; default: the first).
    #[arg(long, value_name = "AGENT")]
    pub preferred_implementer: Option<String>,
    /// Agent preferred for review (one of --ai; default: another one than the implementer).
    #[arg(long, value_name = "AGENT")]
    pub preferred_reviewer: Option<String>,
    /// Deprecated in 2.1.3 (the mission is chosen per feature, by `specify --mission`); ignored with a warning.
    #[arg(long, value_name = "MISSION", hide = true)]
    pub mission: Option<String>,
    /// Do not look for the agents' command-line tools on PATH.
    #[arg(long)]
    pub ignore_agent_tools: bool,
    /// Do not create a git repository.
    #[arg(long)]
    pub no_git: bool,
    /// Overwrite command files that were edited by hand.
    #[arg(long)]
    pub force: bool,
    /// Never prompt (init never prompts; accepted for 2.1.3 compatibility).
    #[arg(long, visible_alias = "yes")]
    pub non_interactive: bool,
    /// Accepted for 2.1.3 compatibility; does nothing here (no download).
    #[arg(long)]
    pub skip_tls: bool,
    /// Accepted for 2.1.3 compatibility; does nothing here (no download).
    #[arg(long)]
    pub debug: bool,
    /// Accepted for 2.1.3 compatibility; does nothing here (no download).
    #[arg(long, value_name = "TOKEN")]
    pub github_token: Option<String>,
    /// Accepted for 2.1.3 compatibility; does nothing here (the templates are built in).
    #[arg(long, value_name = "PATH")]
    pub template_root: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SpecifyArgs {
    /// Feature name (becomes NNN-kebab-name).
    pub name: String,
    /// Branch the feature targets (default: the current branch, else main).
    #[arg(long)]
    pub target_branch: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Add the next work package (tasks/WPnn-title.md).
    #[command(after_help = EXIT_CODES_HELP)]
    Add(TasksAddArgs),
    /// Announce work packages written by hand or by agents (one WPCreated each).
    #[command(after_help = EXIT_CODES_HELP)]
    Finalize(FeatureArgs),
}

#[derive(Debug, Args)]
pub struct TasksAddArgs {
    /// Work package title.
    pub title: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Work packages this one depends on, e.g. WP01,WP02.
    #[arg(long, value_delimiter = ',')]
    pub depends: Vec<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FeatureArgs {
    /// Feature slug or number (auto-detected if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImplementArgs {
    /// Work package id, e.g. WP01.
    pub wp_id: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Agent taking the work package (emits WPAssigned).
    #[arg(long)]
    pub agent: Option<String>,
    /// Do not create a git worktree.
    #[arg(long)]
    pub no_worktree: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Work-package commands for agents.
    #[command(subcommand)]
    Tasks(AgentTasksCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentTasksCommand {
    /// Move a work package to another lane (planned, doing, for_review, done, ...).
    #[command(after_help = EXIT_CODES_HELP)]
    MoveTask(MoveTaskArgs),
    /// Append a note to a work package's activity log.
    #[command(after_help = EXIT_CODES_HELP)]
    AddHistory(AddHistoryArgs),
}

#[derive(Debug, Args)]
pub struct MoveTaskArgs {
    /// Work package id, e.g. WP01.
    pub wp_id: String,
    /// Target lane: planned, doing (= in_progress), for_review, approved, done, claimed, blocked, canceled.
    #[arg(long)]
    pub to: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Allow a transition the lane graph does not (requires --reason).
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why the transition is forced (recorded in history and the event).
    #[arg(long)]
    pub reason: Option<String>,
    /// Agent moving the work package (the event's actor; default "user").
    #[arg(long)]
    pub agent: Option<String>,
    /// Note for the history entry.
    #[arg(long)]
    pub note: Option<String>,
    /// Shell PID of the agent, recorded in the history entry (as spec-kitty 2.x does).
    #[arg(long)]
    pub shell_pid: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddHistoryArgs {
    /// Work package id, e.g. WP01.
    pub wp_id: String,
    /// The note.
    #[arg(long)]
    pub note: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Author of the note (default "user").
    #[arg(long)]
    pub agent: Option<String>,
    /// Kind of entry.
    #[arg(long, default_value = "note", value_parser = ["note", "review", "error", "comment"])]
    pub entry_type: String,
    /// Shell PID of the agent, recorded in the activity line.
    #[arg(long)]
    pub shell_pid: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

const AUTH_HELP: &str = "\
Server URL: --server, else $SPEC_KITTY_SERVER_URL, else [sync] server_url in
$SPEC_KITTY_SYNC_HOME/config.toml (see `spec-kitty sync server`), else
https://spec-kitty-dev.fly.dev. Plain http:// is refused unless the host is
loopback (127.0.0.1, ::1, localhost) or --insecure is given.

Exit codes:
  0  success
  1  the server could not be reached (network, TLS) or a file could not be written
  2  usage error
  4  invalid input (bad server URL, no username or password available)
  5  the server refused the username or password";

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in to the SaaS; the sync daemon then sends events in real time.
    #[command(after_help = AUTH_HELP)]
    Login(LoginArgs),
    /// Forget the login (events stay queued locally).
    #[command(after_help = AUTH_HELP)]
    Logout(JsonFlag),
    /// Show who is logged in, to which server, and until when (never a token).
    #[command(after_help = AUTH_HELP)]
    Status(JsonFlag),
}

impl AuthCommand {
    pub fn json(&self) -> bool {
        match self {
            AuthCommand::Login(a) => a.json,
            AuthCommand::Logout(a) | AuthCommand::Status(a) => a.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server base URL (e.g. https://spec-kitty-dev.fly.dev).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Username (prompted for on a terminal when absent).
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: Option<String>,
    /// Read the password from the first line of stdin (for scripts).
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password (2.1.3's flag; it lands in shell history and the process list: prefer --password-stdin).
    #[arg(short = 'p', long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Log in again even when already logged in as this user at this server.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Allow plain http:// to a host that is not loopback (tokens travel unencrypted).
    #[arg(long)]
    pub insecure: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
}
