//! `spec-kitty agent feature …`: the dispatch only, to the modules that
//! hold each subcommand. Kept out of `plan.rs`, which the other planning
//! commands import for their shared helpers: dispatching from there made
//! plan, specify and finalize import each other.

use crate::cli::AgentFeatureCommand;
use crate::error::CliError;
use crate::output::Out;

pub fn run(out: &Out, c: AgentFeatureCommand) -> Result<(), CliError> {
    match c {
        AgentFeatureCommand::CreateFeature(a) => super::specify::create_feature(out, a),
        AgentFeatureCommand::SetupPlan(a) => super::plan::setup_plan(out, a),
        AgentFeatureCommand::CheckPrerequisites(a) => super::plan::check_prerequisites(out, a),
        AgentFeatureCommand::BranchContext(a) => super::plan::branch_context(out, a),
        AgentFeatureCommand::FinalizeTasks(a) => {
            super::finalize::run(out, a, super::finalize::Mode::Feature)
        }
        AgentFeatureCommand::Merge(a) => super::merge::run(out, a),
        AgentFeatureCommand::Accept(a) => super::accept::run(out, a.into()),
    }
}
