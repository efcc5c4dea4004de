//! The coding agents `init --ai` sets up, and their slash-command files.
//!
//! Owns 2.1.3's agent table (keys, display names, command directories and
//! file formats: `core/config.py` `AGENT_COMMAND_CONFIG`), the prompt texts
//! (one Markdown source per step under `cli/agent-commands/`, compiled in,
//! written by us), and the rendering of one source into each agent's format:
//! Markdown with a `description:` frontmatter for most agents, TOML with
//! `description` and `prompt` for Gemini and Qwen. Also the `.gitignore`
//! entries 2.1.3's `init` adds. No I/O here: `commands/init.rs` writes.

/// One coding agent, as 2.1.3 names and lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    /// The key of `--ai` and of `agents.available` in `.kittify/config.yaml`.
    pub key: &'static str,
    pub name: &'static str,
    /// Command directory, relative to the project root.
    pub dir: &'static str,
    /// File name extension after `spec-kitty.<step>.`.
    pub ext: &'static str,
    /// How the agent spells "the text typed after the slash command".
    pub args: &'static str,
    /// The agent's CLI and where to get it, when it needs one (2.1.3's
    /// `AGENT_TOOL_REQUIREMENTS`; IDE agents have none).
    pub tool: Option<(&'static str, &'static str)>,
}

impl Agent {
    pub fn is_toml(&self) -> bool {
        self.ext == "toml"
    }

    /// `spec-kitty.<step>.<ext>`; Codex prompts use `_` where steps have `-`
    /// (2.1.3 does the same, Codex reads `-` as an option).
    pub fn file_name(&self, step: &str) -> String {
        let stem = if self.key == "codex" {
            step.replace('-', "_")
        } else {
            step.to_string()
        };
        format!("spec-kitty.{stem}.{}", self.ext)
    }
}

const fn md(
    key: &'static str,
    name: &'static str,
    dir: &'static str,
    tool: Option<(&'static str, &'static str)>,
) -> Agent {
    Agent {
        key,
        name,
        dir,
        ext: "md",
        args: "$ARGUMENTS",
        tool,
    }
}

/// All agents, in 2.1.3's order (`AI_CHOICES`).
pub const AGENTS: &[Agent] = &[
    Agent {
        ext: "prompt.md",
        ..md("copilot", "GitHub Copilot", ".github/prompts", None)
    },
    md(
        "claude",
        "Claude Code",
        ".claude/commands",
        Some((
            "claude",
            "https://docs.anthropic.com/en/docs/claude-code/setup",
        )),
    ),
    Agent {
        ext: "toml",
        args: "{{args}}",
        ..md(
            "gemini",
            "Gemini CLI",
            ".gemini/commands",
            Some(("gemini", "https://github.com/google-gemini/gemini-cli")),
        )
    },
    md("cursor", "Cursor", ".cursor/commands", None),
    Agent {
        ext: "toml",
        args: "{{args}}",
        ..md(
            "qwen",
            "Qwen Code",
            ".qwen/commands",
            Some(("qwen", "https://github.com/QwenLM/qwen-code")),
        )
    },
    md(
        "opencode",
        "opencode",
        ".opencode/command",
        Some(("opencode", "https://opencode.ai")),
    ),
    md(
        "codex",
        "Codex CLI",
        ".codex/prompts",
        Some(("codex", "https://github.com/openai/codex")),
    ),
    md("windsurf", "Windsurf", ".windsurf/workflows", None),
    md("kilocode", "Kilo Code", ".kilocode/workflows", None),
    md(
        "auggie",
        "Auggie CLI",
        ".augment/commands",
        Some((
            "auggie",
            "https://docs.augmentcode.com/cli/setup-auggie/install-auggie-cli",
        )),
    ),
    md("roo", "Roo Code", ".roo/commands", None),
    md(
        "q",
        "Amazon Q Developer CLI",
        ".amazonq/prompts",
        Some((
            "q",
            "https://aws.amazon.com/developer/learning/q-developer-cli/",
        )),
    ),
    md(
        "antigravity",
        "Google Antigravity",
        ".agent/workflows",
        None,
    ),
];

pub fn agent(key: &str) -> Option<&'static Agent> {
    AGENTS.iter().find(|a| a.key == key)
}

/// The steps, each one prompt source (`cli/agent-commands/<step>.md`).
pub const STEPS: &[(&str, &str)] = &[
    ("specify", include_str!("../agent-commands/specify.md")),
    ("plan", include_str!("../agent-commands/plan.md")),
    ("research", include_str!("../agent-commands/research.md")),
    ("tasks", include_str!("../agent-commands/tasks.md")),
    (
        "tasks-outline",
        include_str!("../agent-commands/tasks-outline.md"),
    ),
    (
        "tasks-packages",
        include_str!("../agent-commands/tasks-packages.md"),
    ),
    (
        "tasks-finalize",
        include_str!("../agent-commands/tasks-finalize.md"),
    ),
    ("implement", include_str!("../agent-commands/implement.md")),
    ("review", include_str!("../agent-commands/review.md")),
    ("accept", include_str!("../agent-commands/accept.md")),
    ("merge", include_str!("../agent-commands/merge.md")),
    ("status", include_str!("../agent-commands/status.md")),
    ("analyze", include_str!("../agent-commands/analyze.md")),
    ("checklist", include_str!("../agent-commands/checklist.md")),
    ("dashboard", include_str!("../agent-commands/dashboard.md")),
];

/// A prompt source split into its `description:` and its body.
fn split_source(step: &str, source: &str) -> (String, String) {
    let rest = source
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("agent-commands/{step}.md: no frontmatter"));
    let end = rest
        .find("\n---\n")
        .unwrap_or_else(|| panic!("agent-commands/{step}.md: frontmatter not closed"));
    let description = rest[..end]
        .lines()
        .find_map(|l| l.strip_prefix("description:"))
        .unwrap_or_else(|| panic!("agent-commands/{step}.md: no description"))
        .trim()
        .to_string();
    let body = rest[end + "\n---\n".len()..].trim_start().to_string();
    (description, body)
}

/// One step's command file for one agent: `$ARGUMENTS` in the agent's
/// spelling, `__AGENT__` as its key (the `--agent` the prompt passes).
pub fn render(agent: &Agent, step: &str, source: &str) -> String {
    let (description, body) = split_source(step, source);
    let body = body
        .replace("$ARGUMENTS", agent.args)
        .replace("__AGENT__", agent.key);
    if agent.is_toml() {
        // A TOML basic string: escape what it would otherwise interpret.
        let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let prompt = body.replace('\\', "\\\\").replace("\"\"\"", "\"\"\\\"");
        format!(
            "description = \"{}\"\n\nprompt = \"\"\"\n{prompt}\"\"\"\n",
            escape(&description)
        )
    } else {
        format!(
            "---\ndescription: {}\n---\n\n{body}",
            crate::yamltext::scalar(&description)
        )
    }
}

/// What 2.1.3's `init` adds to `.gitignore` (`GitignoreManager.
/// protect_all_agents`): every agent's directory, whichever were chosen,
/// and the runtime files under `.kittify/`, under this marker line.
pub const GITIGNORE_MARKER: &str = "# Added by Spec Kitty CLI (auto-managed)";
pub const GITIGNORE_ENTRIES: &[&str] = &[
    ".claude/",
    ".codex/",
    ".opencode/",
    ".windsurf/",
    ".gemini/",
    ".cursor/",
    ".qwen/",
    ".kilocode/",
    ".augment/",
    ".roo/",
    ".amazonq/",
    ".agent/",
    ".github/copilot/",
    ".kittify/.dashboard",
    ".kittify/constitution/context-state.json",
    ".kittify/constitution/directives.yaml",
    ".kittify/constitution/governance.yaml",
    ".kittify/constitution/metadata.yaml",
    ".kittify/constitution/references.yaml",
    ".kittify/dossiers/",
    ".kittify/events/",
    ".kittify/merge-state.json",
    ".kittify/missions/__pycache__/",
    ".kittify/runtime/",
    ".kittify/workspaces/",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_has_a_description_and_the_arguments_block() {
        for (step, src) in STEPS {
            let (d, body) = split_source(step, src);
            assert!(!d.is_empty(), "{step}");
            assert!(body.contains("$ARGUMENTS"), "{step}: no $ARGUMENTS");
        }
    }

    #[test]
    fn toml_escapes_backslashes_and_triple_quotes() {
        let gemini = agent("gemini").unwrap();
        let out = render(
            gemini,
            "x",
            "---\ndescription: say \"hi\"\n---\n\na\\b \"\"\" $ARGUMENTS\n",
        );
        let v: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(v["description"].as_str(), Some("say \"hi\""));
        assert_eq!(v["prompt"].as_str(), Some("a\\b \"\"\" {{args}}\n"));
    }

    #[test]
    fn codex_names_use_underscores() {
        assert_eq!(
            agent("codex").unwrap().file_name("tasks-outline"),
            "spec-kitty.tasks_outline.md"
        );
        assert_eq!(
            agent("copilot").unwrap().file_name("tasks-outline"),
            "spec-kitty.tasks-outline.prompt.md"
        );
    }
}
