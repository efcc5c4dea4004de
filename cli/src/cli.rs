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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create .kittify/config.yaml with the project identity, kitty-specs/, and a git repository.
    #[command(after_help = EXIT_CODES_HELP)]
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
    /// Local web dashboard of this project: kanban of every feature, live, and what sync is doing.
    #[command(after_help = dashboard_help())]
    Dashboard(DashboardArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Write man pages (spec-kitty.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create (and initialise) for the new project.
    #[arg(conflicts_with = "here", required_unless_present = "here")]
    pub name: Option<String>,
    /// Initialise the current directory.
    #[arg(long)]
    pub here: bool,
    /// Do not create a git repository.
    #[arg(long)]
    pub no_git: bool,
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
    /// The canonical status log (status.events.jsonl) of a feature.
    #[command(subcommand)]
    Status(AgentStatusCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentStatusCommand {
    #[command(flatten)]
    Check(StatusCheckCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentTasksCommand {
    /// Move a work package to another lane (planned, doing, for_review, done, ...).
    #[command(after_help = EXIT_CODES_HELP)]
    MoveTask(MoveTaskArgs),
    /// Append a note to a work package's activity log.
    #[command(after_help = EXIT_CODES_HELP)]
    AddHistory(AddHistoryArgs),
    #[command(flatten)]
    Read(TasksReadCommand),
}

// --- Reading and repairing the status model (agent tasks status |
// list-tasks | list-dependents | validate-workflow; agent status validate |
// doctor | reconcile | merge-driver). None of these writes a status file,
// except `reconcile --apply` and the merge driver (which writes git's %A).

#[derive(Debug, Subcommand)]
pub enum TasksReadCommand {
    /// Kanban board of a feature's work packages, from the status log (read only).
    #[command(after_help = EXIT_CODES_HELP)]
    Status(TasksStatusArgs),
    /// List work packages, optionally only those in one lane (read only).
    #[command(after_help = EXIT_CODES_HELP)]
    ListTasks(ListTasksArgs),
    /// Which work packages depend on WP, and what WP depends on (read only).
    #[command(after_help = EXIT_CODES_HELP)]
    ListDependents(WpReadArgs),
    /// Check a work package file's metadata: required fields, lane, activity log (read only).
    #[command(after_help = EXIT_CODES_HELP)]
    ValidateWorkflow(WpReadArgs),
}

impl TasksReadCommand {
    pub fn json(&self) -> bool {
        match self {
            TasksReadCommand::Status(a) => a.json,
            TasksReadCommand::ListTasks(a) => a.json,
            TasksReadCommand::ListDependents(a) | TasksReadCommand::ValidateWorkflow(a) => a.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct TasksStatusArgs {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(short = 'f', long)]
    pub feature: Option<String>,
    /// Minutes without a commit in its worktree before an in-progress WP is flagged as stale.
    #[arg(long, default_value_t = 10)]
    pub stale_threshold: u64,
    /// Print the result as JSON (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListTasksArgs {
    /// Only work packages in this lane (planned, doing = in_progress, for_review, approved, done, claimed, blocked, canceled).
    #[arg(long)]
    pub lane: Option<String>,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Print the result as JSON (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WpReadArgs {
    /// Work package id, e.g. WP01.
    pub wp_id: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Print the result as JSON (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StatusCheckCommand {
    /// Check the status log and its views: schema, legal transitions, done evidence, status.json, frontmatter and tasks.md lanes (read only).
    #[command(after_help = STATUS_CHECK_HELP)]
    Validate(StatusValidateArgs),
    /// Report each status problem of a feature and what repairs it (read only).
    #[command(after_help = STATUS_CHECK_HELP)]
    Doctor(StatusDoctorArgs),
    /// Compare the status log with the work merged in git and propose events; --apply appends them.
    #[command(after_help = STATUS_CHECK_HELP)]
    Reconcile(StatusReconcileArgs),
    /// Git merge driver for status.events.jsonl: writes the union of both sides to %A.
    #[command(hide = true)]
    MergeDriver(MergeDriverArgs),
}

impl StatusCheckCommand {
    pub fn json(&self) -> bool {
        match self {
            StatusCheckCommand::Validate(a) => a.json,
            StatusCheckCommand::Doctor(a) => a.json,
            StatusCheckCommand::Reconcile(a) => a.json,
            StatusCheckCommand::MergeDriver(_) => false,
        }
    }
}

const STATUS_CHECK_HELP: &str = "\
Exit codes:
  0  healthy / passed / nothing to reconcile
  1  problems found (validate: errors; doctor: any finding; reconcile: drift in a dry run)
  2  usage error
  3  not inside a spec-kitty project
  4  the feature cannot be read: unknown feature, a status.events.jsonl line
     that is not a valid event (file and line named)";

#[derive(Debug, Args)]
pub struct StatusValidateArgs {
    /// Feature slug or number (auto-detected if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Print the result as JSON (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusDoctorArgs {
    /// Feature slug or number (auto-detected if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Days in `claimed` before a claim is reported as stale.
    #[arg(long, default_value_t = 7)]
    pub stale_claimed_days: i64,
    /// Days in `in_progress` before a work package is reported as stale.
    #[arg(long, default_value_t = 14)]
    pub stale_in_progress_days: i64,
    /// Print the result as JSON (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusReconcileArgs {
    /// Feature slug or number (auto-detected if omitted).
    #[arg(short = 'f', long)]
    pub feature: Option<String>,
    /// Preview only (the default).
    #[arg(long, overrides_with = "apply")]
    pub dry_run: bool,
    /// Append the proposed events to the log and rewrite the views.
    #[arg(long, overrides_with = "dry_run")]
    pub apply: bool,
    /// Repository to scan for merged work-package branches (repeatable; default: this one).
    #[arg(short = 't', long)]
    pub target_repo: Vec<PathBuf>,
    /// Print the result as JSON (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MergeDriverArgs {
    /// %O: the common ancestor's version.
    pub base: PathBuf,
    /// %A: our version; the merged result is written here.
    pub ours: PathBuf,
    /// %B: their version.
    pub theirs: PathBuf,
    /// %P: the path in the repository, for messages.
    pub path: Option<String>,
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

const DASHBOARD_HELP: &str = "\
The dashboard runs in the background on 127.0.0.1 (the same spec-kitty binary),
one per project; its address is kept in .kittify/.dashboard (URL, port, token,
pid; the same record spec-kitty 2.1.3 keeps, so either CLI finds or stops the
other's). A record of a process that is gone is replaced, never trusted. The
page updates by itself within a second of any lane change, shows each broken
WP file or status log as an error card naming the file, and exits by itself
after an hour with no visitor.";

fn dashboard_help() -> String {
    format!("{DASHBOARD_HELP}\n\n{EXIT_CODES_HELP}")
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Preferred port (falls back to the first free port from 9237 when taken).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Open the dashboard URL in the default browser.
    #[arg(long, conflicts_with = "kill")]
    pub open: bool,
    /// Stop this project's dashboard and clear its record.
    #[arg(long)]
    pub kill: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Run the server in the foreground (what the background process runs).
    #[arg(long, hide = true)]
    pub serve: bool,
    /// With --serve: the shutdown token.
    #[arg(long, hide = true, requires = "serve")]
    pub token: Option<String>,
    /// With --serve: exit after this many seconds without a visitor.
    #[arg(long, hide = true, requires = "serve", default_value_t = 3600)]
    pub idle_exit_secs: u64,
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
    #[arg(long)]
    pub password_stdin: bool,
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
