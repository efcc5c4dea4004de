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
    /// Create the next feature kitty-specs/NNN-name/ (meta.json, spec.md, checklists/, research/, tasks/) and commit it as 2.1.3 does.
    #[command(after_help = EXIT_CODES_HELP)]
    Specify(SpecifyArgs),
    /// Scaffold plan.md for a feature and commit it (as `agent feature setup-plan`).
    #[command(after_help = EXIT_CODES_HELP)]
    Plan(PlanningArgs),
    /// Scaffold the research artifacts (research.md, data-model.md, research/*.csv).
    #[command(after_help = EXIT_CODES_HELP)]
    Research(ResearchArgs),
    /// Alone: finalize the tasks (tasks.md → each WP's dependencies, requirement refs, branch fields; commit; WPCreated), as 2.1.3's `tasks`. Or `add` one work package.
    #[command(after_help = EXIT_CODES_HELP, args_conflicts_with_subcommands = true)]
    Tasks(TasksArgs),
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
    #[command(flatten)]
    pub opts: NewFeatureOpts,
}

/// The options of `specify` and `agent feature create-feature`.
#[derive(Debug, Args)]
pub struct NewFeatureOpts {
    /// Mission of the feature, recorded in meta.json (default software-dev).
    #[arg(long)]
    pub mission: Option<String>,
    /// Branch the feature targets (default: the current branch, else main).
    #[arg(long)]
    pub target_branch: Option<String>,
    #[command(flatten)]
    pub commit: CommitArgs,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--auto-commit/--no-auto-commit`: whether a planning command commits
/// what it wrote (default: `auto_commit` in .kittify/config.yaml, else on).
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct CommitArgs {
    /// Commit the files this command wrote (the default unless the config says otherwise).
    #[arg(long, overrides_with = "no_auto_commit")]
    pub auto_commit: bool,
    /// Leave the files this command wrote uncommitted.
    #[arg(long)]
    pub no_auto_commit: bool,
}

impl CommitArgs {
    /// The flag when one was given, else the project's config rule.
    pub fn enabled(&self, repo_root: &std::path::Path) -> bool {
        if self.no_auto_commit {
            false
        } else if self.auto_commit {
            true
        } else {
            crate::gitcommit::auto_commit_default(repo_root)
        }
    }
}

#[derive(Debug, Args)]
pub struct ResearchArgs {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Overwrite existing research artifacts.
    #[arg(long)]
    pub force: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    pub command: Option<TasksCommand>,
    #[command(flatten)]
    pub finalize: PlanningArgs,
}

/// The arguments of the planning commands that write and commit files of
/// one feature: `plan`, `agent feature setup-plan`, `tasks` and the two
/// `finalize-tasks`.
#[derive(Debug, Args)]
pub struct PlanningArgs {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    #[command(flatten)]
    pub commit: CommitArgs,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckPrerequisitesArgs {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Only print the path variables.
    #[arg(long)]
    pub paths_only: bool,
    /// Require tasks.md too.
    #[arg(long)]
    pub include_tasks: bool,
    /// Old name of --include-tasks.
    #[arg(long, hide = true)]
    pub require_tasks: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BranchContextArgs {
    /// Planned landing branch (default: the current branch).
    #[arg(long)]
    pub target_branch: Option<String>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateFeatureArgs {
    /// Feature slug in kebab-case (e.g. user-auth); the number is added.
    pub feature_slug: String,
    #[command(flatten)]
    pub opts: NewFeatureOpts,
}

#[derive(Debug, Subcommand)]
pub enum AgentFeatureCommand {
    /// Create the next feature (kitty-specs/NNN-slug/) and commit spec.md and meta.json.
    #[command(after_help = EXIT_CODES_HELP)]
    CreateFeature(CreateFeatureArgs),
    /// Scaffold plan.md and commit it.
    #[command(after_help = EXIT_CODES_HELP)]
    SetupPlan(PlanningArgs),
    /// Check a feature's files (spec.md, plan.md, tasks.md) and print their paths.
    #[command(after_help = EXIT_CODES_HELP)]
    CheckPrerequisites(CheckPrerequisitesArgs),
    /// Print the branch contract (current, planning and merge-target branch).
    #[command(after_help = EXIT_CODES_HELP)]
    BranchContext(BranchContextArgs),
    /// Read tasks.md, write dependencies, requirement refs and branch fields into every WP, commit, announce.
    #[command(after_help = EXIT_CODES_HELP)]
    FinalizeTasks(PlanningArgs),
}

impl AgentFeatureCommand {
    pub fn json(&self) -> bool {
        match self {
            AgentFeatureCommand::CreateFeature(a) => a.opts.json,
            AgentFeatureCommand::SetupPlan(a) => a.json,
            AgentFeatureCommand::CheckPrerequisites(a) => a.json,
            AgentFeatureCommand::BranchContext(a) => a.json,
            AgentFeatureCommand::FinalizeTasks(a) => a.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct MapRequirementsArgs {
    /// Work package id (with --refs).
    #[arg(long)]
    pub wp: Option<String>,
    /// Comma-separated requirement ids, e.g. FR-001,NFR-002 (with --wp).
    #[arg(long)]
    pub refs: Option<String>,
    /// JSON object mapping WP ids to lists of requirement ids, e.g. '{"WP01":["FR-001"]}'.
    #[arg(long, conflicts_with_all = ["wp", "refs"])]
    pub batch: Option<String>,
    /// Replace the WPs' refs instead of adding to them.
    #[arg(long)]
    pub replace: bool,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    #[command(flatten)]
    pub commit: CommitArgs,
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
    /// Feature planning commands for agents (create-feature, setup-plan, finalize-tasks, ...).
    #[command(subcommand)]
    Feature(AgentFeatureCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentTasksCommand {
    /// Move a work package to another lane (planned, doing, for_review, done, ...).
    #[command(after_help = EXIT_CODES_HELP)]
    MoveTask(MoveTaskArgs),
    /// Append a note to a work package's activity log.
    #[command(after_help = EXIT_CODES_HELP)]
    AddHistory(AddHistoryArgs),
    /// Same as `agent feature finalize-tasks`, without the requirement-coverage check (as 2.1.3).
    #[command(after_help = EXIT_CODES_HELP)]
    FinalizeTasks(PlanningArgs),
    /// Record which requirements (FR-/NFR-/C-nnn of spec.md) each work package covers.
    #[command(after_help = EXIT_CODES_HELP)]
    MapRequirements(MapRequirementsArgs),
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
