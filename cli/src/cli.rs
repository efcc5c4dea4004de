//! The command-line grammar (clap derive), in one place.
//!
//! This module is a leaf: it imports no command handler, and the handlers
//! (`commands/*.rs`) and the completion and man-page generators import it.
//! To add a command group: add a variant to [`Command`] holding its
//! `#[derive(Subcommand)]` enum, defined here, put its handler in
//! `commands/<name>.rs`, and add one match arm in [`crate::run`]. Exit codes
//! are shared ([`crate::error::Kind`]).
//!
//! Every subcommand enum is `#[command(defer = true)]`: clap then builds a
//! subcommand's arguments only when that subcommand is the one run (or when
//! help, completions or man pages walk the tree), which takes a third off
//! the start-up of every command. A deferred build applies an `Args`
//! struct's doc comment last, as the subcommand's about text, so those
//! structs carry plain `//` comments; the variant's `///` is the help.

pub mod fast;

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

// Parsed once per process; boxing the big variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Set up a project: .kittify/config.yaml with its identity, kitty-specs/, git, and the agents' command files.
    #[command(after_help = INIT_HELP)]
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
    // Flattened, so not deferred: clap mirrors the tree into `help` before
    // it expands deferred subcommands, and `tasks` has its own (`help tasks
    // add` must complete).
    #[command(flatten)]
    Tasks(TasksGroup),
    /// Start a work package: lane planned → doing, and a sparse git worktree .worktrees/<feature>-WPnn branched from its dependencies' work.
    #[command(after_help = IMPLEMENT_HELP)]
    Implement(ImplementArgs),
    /// Commands for agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Accept a feature: check its readiness (2.1.3's checklist), finish work packages in for_review or approved, record the acceptance in meta.json and commit it.
    #[command(after_help = EXIT_CODES_HELP)]
    Accept(AcceptArgs),
    /// Kanban board of a feature's work packages.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(StatusArgs),
    /// Merge a feature's work-package branches into the target branch (dependency order), mark them done, remove worktrees and branches.
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// The per-user sync daemon: status, start, stop, restart, logs, service unit.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Log in to the SaaS, log out, or show the login (never a token).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Local web dashboard of this project: kanban of every feature, live, and what sync is doing.
    #[command(after_help = dashboard_help())]
    Dashboard(DashboardArgs),
    /// Machine-contract API for external orchestrators (JSON-first): 2.1.3's envelope, error codes and exit codes.
    #[command(subcommand, after_help = ORCHESTRATOR_HELP)]
    OrchestratorApi(OrchestratorCommand),
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
    #[command(flatten)]
    pub opts: NewFeatureOpts,
}

// The options of `specify` and `agent feature create-feature`.
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

// `--auto-commit/--no-auto-commit`: whether a planning command commits
// what it wrote (default: `auto_commit` in .kittify/config.yaml, else on).
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

/// `tasks`, alone in its group so that it is built eagerly (see
/// [`Command::Tasks`]).
#[derive(Debug, Subcommand)]
pub enum TasksGroup {
    /// Alone: finalize the tasks (tasks.md → each WP's dependencies, requirement refs, branch fields; commit; WPCreated), as 2.1.3's `tasks`. Or `add` one work package.
    #[command(after_help = EXIT_CODES_HELP, args_conflicts_with_subcommands = true)]
    Tasks(TasksArgs),
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    pub command: Option<TasksCommand>,
    #[command(flatten)]
    pub finalize: PlanningArgs,
}

// The arguments of the planning commands that write and commit files of
// one feature: `plan`, `agent feature setup-plan`, `tasks` and the two
// `finalize-tasks`.
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
#[command(defer = true)]
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
    /// Merge the feature's work-package branches into the target branch (same as `spec-kitty merge`).
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// Accept the feature (as `spec-kitty accept`, with no --actor, --test or --allow-fail).
    #[command(after_help = EXIT_CODES_HELP)]
    Accept(AgentAcceptArgs),
}

impl AgentFeatureCommand {
    pub fn json(&self) -> bool {
        match self {
            AgentFeatureCommand::CreateFeature(a) => a.opts.json,
            AgentFeatureCommand::SetupPlan(a) => a.json,
            AgentFeatureCommand::CheckPrerequisites(a) => a.json,
            AgentFeatureCommand::BranchContext(a) => a.json,
            AgentFeatureCommand::FinalizeTasks(a) => a.json,
            AgentFeatureCommand::Merge(a) => a.json,
            AgentFeatureCommand::Accept(a) => a.common.json,
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
#[command(defer = true)]
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
    /// Base WP to branch from (e.g. WP01); default: from the `dependencies:` frontmatter.
    #[arg(long, value_name = "WP")]
    pub base: Option<String>,
    /// Branch from a merge of several dependencies even when all of them are done.
    #[arg(long)]
    pub force: bool,
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
#[command(defer = true)]
pub enum AgentCommand {
    /// Work-package commands for agents.
    #[command(subcommand)]
    Tasks(AgentTasksCommand),
    /// The canonical status log (status.events.jsonl) of a feature.
    #[command(subcommand)]
    Status(AgentStatusCommand),
    /// Feature planning commands for agents (create-feature, setup-plan, finalize-tasks, ...).
    #[command(subcommand)]
    Feature(AgentFeatureCommand),
    /// Start implementing or reviewing a work package: claim it, and print (and write to a file) its prompt.
    #[command(subcommand)]
    Workflow(AgentWorkflowCommand),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum AgentWorkflowCommand {
    /// Claim a work package for implementation (planned → in_progress; creates its worktree when missing) and print its prompt.
    #[command(after_help = WORKFLOW_HELP)]
    Implement(WorkflowImplementArgs),
    /// Claim a work package for review (for_review → in_progress) and print its prompt with the review context.
    #[command(after_help = WORKFLOW_HELP)]
    Review(WorkflowReviewArgs),
}

/// `agent workflow`'s help epilogue: where the prompt goes, exit codes.
pub const WORKFLOW_HELP: &str = "\
The full prompt is also written to $TMPDIR/spec-kitty-<implement|review>-<WP>.md
(/tmp when TMPDIR is unset), as 2.1.3 does, for agents whose output is cut short.

Exit codes: 0 success, 1 git or I/O failure, 4 invalid input (unknown work
package, --agent missing), 5 refused (no eligible work package, wrong lane).";

#[derive(Debug, Args)]
pub struct WorkflowImplementArgs {
    /// Work package (WP01, wp01, WP01-slug); default: the first planned one.
    pub wp_id: Option<String>,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Agent taking the work package (required to claim it).
    #[arg(long)]
    pub agent: Option<String>,
    /// Work package whose branch the new worktree starts from (passed to `implement`).
    #[arg(long)]
    pub base: Option<String>,
}

#[derive(Debug, Args)]
pub struct WorkflowReviewArgs {
    /// Work package (WP01, wp01, WP01-slug); default: the first in for_review.
    pub wp_id: Option<String>,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Agent reviewing the work package (required to claim it).
    #[arg(long)]
    pub agent: Option<String>,
}

/// `implement`'s help epilogue: how the base is chosen, exit codes.
pub const IMPLEMENT_HELP: &str = "\
Base: no dependency → the current branch; one dependency (or --base WPnn) → that WP's
branch (the target branch once it is done and merged); several → a branch
<feature>-WPnn-merge-base merging theirs. A dependency neither started nor done is refused
(exit 5) with what to run; several dependencies all done are refused unless --force
(merge them first). The worktree leaves kitty-specs/ out (sparse checkout): status files
stay in the main checkout.

Exit codes: 0 success, 1 git or I/O failure, 4 invalid input, 5 refused (a dependency
not far enough along, uncommitted planning files off the target branch).";

/// `merge`'s help epilogue: the state files, the test hook, exit codes.
pub const MERGE_HELP: &str = "\
State: .kittify/merge-state.json (2.1.3's resume file) and .kittify/merge-undo.json
(what --abort restores). A merge stopped by a conflict or a crash resumes with
`spec-kitty merge` or `spec-kitty merge --resume`; nothing is ever pushed.

Test hook: SPEC_KITTY_TEST_CRASH_AT=after-wp-merge|after-status-write|between-merges|
during-worktree-removal|during-branch-deletion aborts the process at that point
(inert unless set; used by the crash-safety tests).

Exit codes: 0 success, 1 git or I/O failure, 4 invalid input, 5 refused (a
conflict, uncommitted changes, a work package not reviewed).";

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Merge strategy: merge (a --no-ff merge commit per WP) or squash (one commit per WP); rebase is refused as in 2.1.3.
    #[arg(long, default_value = "merge")]
    pub strategy: String,
    /// Delete the WP branches after the merge (default).
    #[arg(long, overrides_with = "keep_branch")]
    pub delete_branch: bool,
    /// Keep the WP branches.
    #[arg(long, overrides_with = "delete_branch")]
    pub keep_branch: bool,
    /// Remove the WP worktrees after the merge (default).
    #[arg(long, overrides_with = "keep_worktree")]
    pub remove_worktree: bool,
    /// Keep the WP worktrees.
    #[arg(long, overrides_with = "remove_worktree")]
    pub keep_worktree: bool,
    /// Accepted for 2.1.3 compatibility; merge never pushes (a warning says so).
    #[arg(long)]
    pub push: bool,
    /// Target branch (default: meta.json's target_branch, else main/master).
    #[arg(long)]
    pub target: Option<String>,
    /// Show the planned git steps without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// Resume an interrupted merge from .kittify/merge-state.json (a plain `merge` resumes too).
    #[arg(long)]
    pub resume: bool,
    /// Abort: drop a git merge in progress, move WPs the merge made done back to approved (one event each), put the target branch (plus that status commit), WP branches and worktrees back as they were, clear the state.
    #[arg(long, conflicts_with_all = ["resume", "dry_run"])]
    pub abort: bool,
    /// Accepted for 2.1.3 compatibility (`agent feature merge`); no effect.
    #[arg(long, hide = true, overrides_with = "no_auto_retry")]
    pub auto_retry: bool,
    #[arg(long, hide = true, overrides_with = "auto_retry")]
    pub no_auto_retry: bool,
    /// Print the result as one JSON object on stdout (the plan with --dry-run).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
    #[command(flatten)]
    Check(StatusCheckCommand),
}

impl AgentStatusCommand {
    pub fn json(&self) -> bool {
        match self {
            AgentStatusCommand::Emit(a) => a.json,
            AgentStatusCommand::Materialize(a) => a.json,
            AgentStatusCommand::Migrate(a) => a.json,
            AgentStatusCommand::Check(c) => c.json(),
        }
    }
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
    /// Same as `agent feature finalize-tasks`, without the requirement-coverage check (as 2.1.3).
    #[command(after_help = EXIT_CODES_HELP)]
    FinalizeTasks(PlanningArgs),
    /// Record which requirements (FR-/NFR-/C-nnn of spec.md) each work package covers.
    #[command(after_help = EXIT_CODES_HELP)]
    MapRequirements(MapRequirementsArgs),
    #[command(flatten)]
    Read(TasksReadCommand),
}

// --- Reading and repairing the status model (agent tasks status |
// list-tasks | list-dependents | validate-workflow; agent status validate |
// doctor | reconcile | merge-driver). None of these writes a status file,
// except `reconcile --apply` and the merge driver (which writes git's %A).

#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
#[command(defer = true)]
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
  1  problems found (validate: errors; doctor: any finding; reconcile: drift
     in a dry run); a status.events.jsonl line that is not a valid event is
     such a problem for validate and doctor, named with its file and line
  2  usage error
  3  not inside a spec-kitty project
  4  unknown feature; reconcile: a status.events.jsonl line that is not a
     valid event (file and line named)";

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

// `--auto-commit/--no-auto-commit`, as 2.1.3 spells them.
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

/// The kinds of `agent tasks add-history --entry-type` (2.1.3's).
pub const ENTRY_TYPES: [&str; 4] = ["note", "review", "error", "comment"];

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
    #[arg(long, default_value = "note", value_parser = ENTRY_TYPES)]
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
    #[command(flatten)]
    pub common: AcceptCommon,
    /// Name recorded as the acceptance actor (default: $USER, else $USERNAME, else "system").
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// A validation command that was run, listed in the result's notes (repeatable).
    #[arg(long = "test", value_name = "COMMAND")]
    pub test: Vec<String>,
    /// When checks fail, print the checklist and exit 0 instead of refusing.
    #[arg(long)]
    pub allow_fail: bool,
}

// The flags `accept` shares with 2.1.3's agent wrapper `agent feature accept`.
#[derive(Debug, Args)]
pub struct AcceptCommon {
    /// Feature slug or number (auto-detected from the branch or directory if omitted).
    #[arg(long)]
    pub feature: Option<String>,
    /// auto (pr when the repository has a remote, else local), pr, local, or checklist (report only, nothing written).
    #[arg(long, value_name = "MODE", default_value = "auto", ignore_case = true,
          value_parser = ["auto", "pr", "local", "checklist"])]
    pub mode: String,
    /// Print the result as one JSON object on stdout (2.1.3's keys).
    #[arg(long)]
    pub json: bool,
    /// Skip the frontmatter metadata checks (lane, agent, assignee, shell_pid).
    #[arg(long)]
    pub lenient: bool,
    /// Report only: no work package moves, no meta.json record, no commit.
    #[arg(long)]
    pub no_commit: bool,
}

// `agent feature accept`: 2.1.3's agent wrapper of `accept`.
#[derive(Debug, Args)]
pub struct AgentAcceptArgs {
    #[command(flatten)]
    pub common: AcceptCommon,
}

impl From<AgentAcceptArgs> for AcceptArgs {
    fn from(a: AgentAcceptArgs) -> AcceptArgs {
        AcceptArgs {
            common: a.common,
            actor: None,
            test: Vec::new(),
            allow_fail: false,
        }
    }
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

// ------------------------------------------------------------------ sync

/// Exit codes and environment of the `sync` commands (appended to `--help`).
pub const SYNC_HELP: &str = "\
Exit codes:
  0  success (`status` also exits 0 when no daemon runs; see \"running\" in --json)
  1  the daemon could not be reached, started or stopped, or a file could not be written
  2  usage error

Environment:
  SPEC_KITTY_SYNC_HOME  state directory (default ~/.spec-kitty): socket, store, spool, logs
  SPEC_KITTY_SYNCD_BIN  spec-kitty-syncd to start (default: next to spec-kitty, then PATH)";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SyncCommand {
    /// Show the sync daemon, its queue per project, held and parked events, connection, login and spool.
    #[command(after_help = SYNC_HELP)]
    Status(SyncStatusArgs),
    /// Start the sync daemon if it is not running (or replace an older one) and report its pid.
    #[command(after_help = SYNC_HELP)]
    Start(SyncJsonArgs),
    /// Ask the sync daemon to finish in-flight work and exit; waits until it is gone.
    #[command(after_help = SYNC_HELP)]
    Stop(SyncJsonArgs),
    /// Stop the sync daemon, then start it again.
    #[command(after_help = SYNC_HELP)]
    Restart(SyncJsonArgs),
    /// Show the newest daemon log file (SPEC_KITTY_SYNC_HOME/syncd/logs/).
    #[command(after_help = SYNC_HELP)]
    Logs(SyncLogsArgs),
    /// Install, remove or inspect the per-user service unit (systemd --user on Linux, launchd on macOS).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Send queued events to the SaaS now (`--wait`: until drained) and summarise.
    Now(NowArgs),
    /// Put events the server rejected (parked) back in the queue, to be sent again.
    #[command(after_help = SYNC_HELP)]
    RetryParked(SyncJsonArgs),
    /// Show or set the SaaS server URL ([sync] server_url in config.toml).
    Server(ServerArgs),
    /// Check the sync health (daemon, queue, spool, login, server) and say what to do about each problem.
    #[command(after_help = SYNC_HELP)]
    Doctor(SyncJsonArgs),
    /// Validate the events waiting to be sent (spooled files, events the server rejected).
    #[command(after_help = SYNC_HELP)]
    Diagnose(SyncJsonArgs),
}

impl SyncCommand {
    /// Whether the command prints JSON (for error output).
    pub fn json(&self) -> bool {
        match self {
            SyncCommand::Status(a) => a.json,
            SyncCommand::Start(a)
            | SyncCommand::Stop(a)
            | SyncCommand::Restart(a)
            | SyncCommand::RetryParked(a)
            | SyncCommand::Doctor(a)
            | SyncCommand::Diagnose(a) => a.json,
            SyncCommand::Logs(_) => false,
            SyncCommand::Now(a) => a.json,
            SyncCommand::Server(a) => a.json,
            SyncCommand::Service(s) => match s {
                ServiceCommand::Install(a) | ServiceCommand::Uninstall(a) => a.json,
                ServiceCommand::Status(a) => a.json,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct SyncStatusArgs {
    /// Also probe the server with the saved login (up to 5 s when it does not answer).
    #[arg(short = 'c', long)]
    pub check: bool,
    /// Print the status as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncJsonArgs {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncLogsArgs {
    /// Keep printing new lines as they are written (Ctrl-C to stop).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ServiceCommand {
    /// Write the user service unit(s) pointing at this spec-kitty-syncd (no root needed).
    #[command(after_help = SYNC_HELP)]
    Install(SyncJsonArgs),
    /// Remove the user service unit(s) written by `install`.
    #[command(after_help = SYNC_HELP)]
    Uninstall(SyncJsonArgs),
    /// Say whether the user service unit is installed, and where.
    #[command(after_help = SYNC_HELP)]
    Status(SyncJsonArgs),
}

#[derive(Debug, Args)]
pub struct NowArgs {
    /// Wait until the queue is drained or sending stopped, then summarise.
    #[arg(long)]
    pub wait: bool,
    /// Write each event the server rejected, with its error category, to FILE as JSON (waits, as --wait).
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Exit 1 when the server rejected events or nothing could be sent (waits, as --wait).
    #[arg(long, overrides_with = "no_strict")]
    pub strict: bool,
    /// Exit 0 whatever happened to the events (the default).
    #[arg(long)]
    pub no_strict: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// New server base URL; without it, show the current one and where it comes from.
    pub url: Option<String>,
    /// Allow plain http:// to a host that is not loopback.
    #[arg(long)]
    pub insecure: bool,
    #[arg(long)]
    pub json: bool,
}

// ------------------------------------------------------------------ auth

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
#[command(defer = true)]
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

// --- Writing the status model (agent tasks mark-status; agent status emit | materialize | migrate).

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

const ORCHESTRATOR_HELP: &str = "\
Every command prints exactly one JSON envelope on stdout: contract_version,
command, timestamp, correlation_id, success, error_code, data (2.1.3's keys,
in its order). Exit codes: 0 success, 1 a failure with its error_code
(FEATURE_NOT_FOUND, WP_NOT_FOUND, TRANSITION_REJECTED, WP_ALREADY_CLAIMED,
POLICY_METADATA_REQUIRED, POLICY_VALIDATION_FAILED, FEATURE_NOT_READY,
PREFLIGHT_FAILED, MERGE_FAILED, PUSH_FAILED, CONTRACT_VERSION_MISMATCH,
UNSUPPORTED_STRATEGY), 2 a usage error (USAGE_ERROR).

--policy is a JSON object with orchestrator_id, orchestrator_version,
agent_family, approval_mode, sandbox_mode, network_mode, dangerous_flags (an
array) and optionally tool_restrictions; values that look like secrets
(token, secret, key, password, credential) are refused. The feature is
--feature, exactly as its directory under kitty-specs/ is named, in the
project of $SPECIFY_REPO_ROOT (when it holds .kittify/) or else of the
current directory.";

/// `spec-kitty orchestrator-api ...`: 2.1.3's flags, no short forms.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum OrchestratorCommand {
    /// Return the current API contract version.
    ContractVersion {
        /// Caller's provider version; returns CONTRACT_VERSION_MISMATCH if below minimum.
        #[arg(long)]
        provider_version: Option<String>,
    },
    /// Return the full state of a feature (all WPs, lanes, dependencies).
    FeatureState {
        /// Feature slug (e.g. 034-my-feature).
        #[arg(long)]
        feature: String,
    },
    /// List WPs that are ready to start (planned and all deps done).
    ListReady {
        /// Feature slug.
        #[arg(long)]
        feature: String,
    },
    /// Composite transition: planned→claimed→in_progress (idempotent); the caller creates the worktree.
    StartImplementation {
        #[command(flatten)]
        target: OrchestratorWp,
        /// Policy metadata JSON (required).
        #[arg(long)]
        policy: Option<String>,
    },
    /// Transition a WP from for_review back to in_progress (reviewer rollback).
    StartReview {
        #[command(flatten)]
        target: OrchestratorWp,
        /// Policy metadata JSON (required).
        #[arg(long)]
        policy: Option<String>,
        /// Review feedback reference (required).
        #[arg(long)]
        review_ref: Option<String>,
    },
    /// Emit a single lane transition for a WP.
    Transition {
        #[command(flatten)]
        target: OrchestratorWp,
        /// Target lane (planned, claimed, in_progress, for_review, approved, done, blocked, canceled; doing = in_progress).
        #[arg(long)]
        to: String,
        /// Reason/note for the transition.
        #[arg(long)]
        note: Option<String>,
        /// Policy metadata JSON (required for claimed, in_progress, for_review).
        #[arg(long)]
        policy: Option<String>,
        /// Force the transition (needs --note).
        #[arg(long)]
        force: bool,
        /// Review reference.
        #[arg(long)]
        review_ref: Option<String>,
    },
    /// Append a history entry to a WP prompt file (and commit it).
    AppendHistory {
        #[command(flatten)]
        target: OrchestratorWp,
        /// History note to append.
        #[arg(long)]
        note: String,
    },
    /// Accept a feature after all WPs are done.
    AcceptFeature {
        /// Feature slug.
        #[arg(long)]
        feature: String,
        /// Actor identity.
        #[arg(long)]
        actor: String,
    },
    /// Run preflight checks then merge all WP branches into target (as `spec-kitty merge`).
    MergeFeature {
        /// Feature slug.
        #[arg(long)]
        feature: String,
        /// Target branch to merge into (auto-detected from meta.json).
        #[arg(long)]
        target: Option<String>,
        /// Merge strategy: merge, squash, or rebase.
        #[arg(long, default_value = "merge")]
        strategy: String,
        /// Push target branch after merge.
        #[arg(long)]
        push: bool,
    },
}

// The work package an `orchestrator-api` command acts on, and who acts.
#[derive(Debug, Args)]
pub struct OrchestratorWp {
    /// Feature slug (its directory name under kitty-specs/).
    #[arg(long)]
    pub feature: String,
    /// Work package ID (e.g. WP01).
    #[arg(long)]
    pub wp: String,
    /// Actor identity.
    #[arg(long)]
    pub actor: String,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The subcommands are deferred, so a mistake in one would only show
    /// when that one runs: build and check them all here.
    #[test]
    fn every_subcommand_of_the_grammar_is_valid() {
        Cli::command().debug_assert();
    }
}
