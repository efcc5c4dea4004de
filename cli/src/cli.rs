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

// Parsed once per process; boxing the big variants buys nothing.
#[allow(clippy::large_enum_variant)]
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
    #[command(flatten)]
    pub commit: AutoCommit,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Work-package commands for agents.
    #[command(subcommand)]
    Tasks(AgentTasksCommand),
    /// The canonical status model: the event log and its views.
    #[command(subcommand)]
    Status(AgentStatusCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentTasksCommand {
    /// Move a work package to another lane (planned, doing, for_review, done, ...).
    #[command(after_help = EXIT_CODES_HELP)]
    MoveTask(MoveTaskArgs),
    /// Append a note to a work package's activity log.
    #[command(after_help = EXIT_CODES_HELP)]
    AddHistory(AddHistoryArgs),
    /// Tick (done) or untick (pending) subtasks in tasks.md, e.g. T001 T002.
    #[command(after_help = EXIT_CODES_HELP)]
    MarkStatus(MarkStatusArgs),
}

#[derive(Debug, Args)]
pub struct MarkStatusArgs {
    /// Subtask ids, space-separated (e.g. T001 T002 T003).
    #[arg(required = true)]
    pub task_ids: Vec<String>,
    /// New status: done or pending.
    #[arg(long)]
    pub status: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    #[command(flatten)]
    pub commit: AutoCommit,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentStatusCommand {
    /// Record one lane transition in status.events.jsonl (guards checked), then rewrite the views.
    #[command(after_help = EXIT_CODES_HELP)]
    Emit(StatusEmitArgs),
    /// Rebuild status.json, the tasks.md status block and the frontmatter lanes from the event log.
    #[command(after_help = EXIT_CODES_HELP)]
    Materialize(FeatureArgs),
    /// Bootstrap status.events.jsonl from the WP frontmatter (lanes and history), as 2.1.3 does.
    #[command(after_help = EXIT_CODES_HELP)]
    Migrate(StatusMigrateArgs),
}

impl AgentStatusCommand {
    pub fn json(&self) -> bool {
        match self {
            AgentStatusCommand::Emit(a) => a.json,
            AgentStatusCommand::Materialize(a) => a.json,
            AgentStatusCommand::Migrate(a) => a.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusEmitArgs {
    /// Work package id, e.g. WP01.
    pub wp_id: String,
    /// Target lane (planned, claimed, in_progress or doing, for_review, approved, done, blocked, canceled).
    #[arg(long)]
    pub to: String,
    /// Who makes the transition.
    #[arg(long)]
    pub actor: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Bypass the guards and the lane graph (needs --reason).
    #[arg(long)]
    pub force: bool,
    /// Reason (required with --force and to move in_progress back to planned).
    #[arg(long)]
    pub reason: Option<String>,
    /// Done evidence as JSON: {"review": {"reviewer": ..., "verdict": ..., "reference": ...}}.
    #[arg(long)]
    pub evidence_json: Option<String>,
    /// Review feedback reference (required to send reviewed work back).
    #[arg(long)]
    pub review_ref: Option<String>,
    /// Workspace context (required for claimed -> in_progress; default `<mode>:<repo root>`).
    #[arg(long)]
    pub workspace_context: Option<String>,
    /// Whether the subtasks are complete (default: read from tasks.md).
    #[arg(long, overrides_with = "no_subtasks_complete")]
    pub subtasks_complete: bool,
    #[arg(long, overrides_with = "subtasks_complete", hide = true)]
    pub no_subtasks_complete: bool,
    /// Whether implementation evidence exists (default: the WP has earlier events).
    #[arg(long, overrides_with = "no_implementation_evidence_present")]
    pub implementation_evidence_present: bool,
    #[arg(long, overrides_with = "implementation_evidence_present", hide = true)]
    pub no_implementation_evidence_present: bool,
    /// worktree or direct_repo.
    #[arg(long, default_value = "worktree", value_parser = ["worktree", "direct_repo"])]
    pub execution_mode: String,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusMigrateArgs {
    /// One feature to migrate.
    #[arg(short = 'f', long, conflicts_with = "all")]
    pub feature: Option<String>,
    /// Every feature in kitty-specs/.
    #[arg(long)]
    pub all: bool,
    /// Show what would be written without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Actor of the bootstrap events.
    #[arg(long, default_value = "migration")]
    pub actor: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MoveTaskArgs {
    /// Work package id, e.g. WP01.
    pub wp_id: String,
    /// Target lane: planned, claimed, doing (= in_progress), for_review, approved, done, blocked, canceled.
    #[arg(long)]
    pub to: String,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Agent moving the work package (the event's actor; default "user"); sets the WP's `agent:`.
    #[arg(long)]
    pub agent: Option<String>,
    /// Assignee name, written to the WP's `assignee:`.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Shell PID of the agent, written to `shell_pid:` and the activity line.
    #[arg(long)]
    pub shell_pid: Option<String>,
    /// Note for the activity line (and the event's reason).
    #[arg(long)]
    pub note: Option<String>,
    /// Review feedback file: needed to send reviewed work (for_review, approved) back to in_progress or planned; copied under the git dir, its feedback:// pointer recorded as the event's review_ref.
    #[arg(long, value_name = "PATH")]
    pub review_feedback_file: Option<PathBuf>,
    /// Approval reference for approved/done (e.g. PR#42; default: the note, else auto-approval:WPnn:DATE).
    #[arg(long)]
    pub approval_ref: Option<String>,
    /// Reviewer name for approved/done (default: git config user.name).
    #[arg(long)]
    pub reviewer: Option<String>,
    /// Required for --to done when the WP branch is not merged into the current branch; recorded in the event.
    #[arg(long)]
    pub done_override_reason: Option<String>,
    /// Move even with unticked subtasks, or outside the lane graph (recorded as forced in the event).
    #[arg(long)]
    pub force: bool,
    /// Why (recorded as the event's reason; default "Force move to LANE" with --force).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub commit: AutoCommit,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--auto-commit/--no-auto-commit`, as 2.1.3 spells them.
#[derive(Debug, Args)]
pub struct AutoCommit {
    /// Commit the files written (default: `auto_commit` in .kittify/config.yaml, else on).
    #[arg(long, overrides_with = "no_auto_commit")]
    pub auto_commit: bool,
    /// Do not commit the files written.
    #[arg(long, overrides_with = "auto_commit")]
    pub no_auto_commit: bool,
}

impl AutoCommit {
    /// The flag given, `None` when neither was.
    pub fn flag(&self) -> Option<bool> {
        tri_state(self.auto_commit, self.no_auto_commit)
    }
}

/// A `--x/--no-x` pair: `None` when neither was given.
pub fn tri_state(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
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
