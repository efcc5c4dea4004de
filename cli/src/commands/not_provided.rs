//! 2.1.3 commands this CLI does not provide, each with one line saying
//! what to do instead.
//!
//! Consulted only after clap refused the subcommand, so a command that
//! lands later takes over by itself. The README's compatibility table lists
//! the same commands.

/// (command path, what to do instead).
pub const NOT_PROVIDED: &[(&str, &str)] = &[
    ("config", "read or edit .kittify/config.yaml directly; `spec-kitty sync server` shows and sets the sync server"),
    ("constitution", "write .kittify/constitution/constitution.md yourself (or with spec-kitty-cli 2.1.3); the planning prompts read it when it exists"),
    ("context", "`git worktree list` shows the work-package worktrees, `spec-kitty agent tasks status` their work packages"),
    ("doctor", "`spec-kitty sync doctor` checks the sync state (credentials, queue, daemon, server)"),
    ("glossary", "glossaries are not part of this CLI; spec-kitty-cli 2.1.3 keeps working on the same project"),
    ("list-legacy-features", "this CLI reads the current layout only; convert old projects with spec-kitty-cli 2.1.3 `upgrade`"),
    ("migrate", "this CLI reads the current layout only; migrate with spec-kitty-cli 2.1.3, then use this one"),
    ("mission", "the mission is chosen per feature: `spec-kitty agent feature create-feature SLUG --mission software-dev|research`"),
    ("next", "the agent command files (/spec-kitty.specify ... /spec-kitty.merge, written by `spec-kitty init --ai`) drive the workflow; `spec-kitty agent tasks status` shows what is next"),
    ("ops", "the commands commit what they change: `git log` lists the operations, `git revert` undoes one"),
    ("repair", "`spec-kitty init --force` rewrites the agent command files"),
    ("tracker", "task-tracker sync is not part of this CLI"),
    ("upgrade", "`spec-kitty init --force` regenerates the agent command files for this version; layout migrations: spec-kitty-cli 2.1.3 `upgrade`"),
    ("validate-encoding", "this CLI reads every file as UTF-8 and names any file it cannot decode"),
    ("validate-tasks", "`spec-kitty agent tasks validate-workflow WP01` checks a work package, `spec-kitty agent status validate` a feature"),
    ("verify-setup", "`spec-kitty sync doctor` checks the sync side, `spec-kitty --version` the installation"),
    ("agent config", "`spec-kitty init --ai claude,codex,...` sets the agents and their command files (without --ai it regenerates the recorded ones)"),
    ("agent context", "the agent command files carry the context; `spec-kitty agent feature check-prerequisites --json` gives a feature's paths"),
    ("agent release", "2.1.3 has no release commands either"),
    ("agent check-prerequisites", "use `spec-kitty agent feature check-prerequisites`"),
    ("sync workspace", "update a worktree with git itself (`git rebase` or `git merge` of the feature's target branch inside it)"),
];

/// The one line for `args` (the command line without the program name)
/// when it starts with a 2.1.3 command this CLI does not provide.
pub fn explain(args: &[String]) -> Option<String> {
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .take_while(|a| !a.starts_with('-'))
        .collect();
    NOT_PROVIDED
        .iter()
        .filter(|(path, _)| {
            let p: Vec<&str> = path.split(' ').collect();
            words.len() >= p.len() && words[..p.len()] == p[..]
        })
        .max_by_key(|(path, _)| path.len())
        .map(|(path, instead)| {
            format!(
                "`spec-kitty {path}` (spec-kitty-cli 2.1.3) is not provided by this CLI: {instead}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn longest_path_wins_and_flags_end_the_path() {
        assert!(explain(&args("agent context resolve --json"))
            .unwrap()
            .contains("`spec-kitty agent context`"));
        assert!(explain(&args("constitution context --json"))
            .unwrap()
            .starts_with("`spec-kitty constitution`"));
        assert!(explain(&args("--json constitution")).is_none());
        assert!(explain(&args("agent feature")).is_none());
        assert!(explain(&args("frobnicate")).is_none());
    }
}
