//! `init --ai`: every agent's command files, in its format, each telling
//! the agent to run commands this CLI accepts; reruns that keep identity
//! and hand edits; bad input that writes nothing.

use crate::common;

use clap::Parser;
use common::*;
use spec_kitty::agentfiles::{AGENTS, STEPS};
use spec_kitty::cli::Cli;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Invocations the prompts use (2.1.3's names and flags) that this branch
/// does not accept yet, by prefix, with who builds them. The test fails
/// both ways: an invocation outside this list that does not parse, and an
/// entry here that nothing needs any more (then delete the entry).
const PENDING: &[(&str, &str)] = &[];

fn init_all(w: &World) {
    let all: Vec<&str> = AGENTS.iter().map(|a| a.key).collect();
    w.ok(&["init", "--ai", &all.join(","), "--ignore-agent-tools"]);
}

/// The prompt text of a generated file, checked to parse in its format.
fn prompt_of(path: &Path, toml_format: bool) -> String {
    let text = fs::read_to_string(path).unwrap();
    if toml_format {
        let v: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: not TOML: {e}", path.display()));
        let desc = v["description"].as_str().expect("description string");
        assert!(!desc.is_empty(), "{}", path.display());
        let prompt = v["prompt"].as_str().expect("prompt string").to_string();
        assert!(prompt.contains("{{args}}"), "{}", path.display());
        assert!(!prompt.contains("$ARGUMENTS"), "{}", path.display());
        return prompt;
    }
    let rest = text
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("{}: no frontmatter", path.display()));
    let end = rest.find("\n---\n").expect("frontmatter closed");
    let fm: serde_json::Value = serde_saphyr::from_str(&rest[..end])
        .unwrap_or_else(|e| panic!("{}: frontmatter not YAML: {e}", path.display()));
    assert!(
        fm["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{}",
        path.display()
    );
    let body = rest[end + 5..].to_string();
    assert!(body.contains("$ARGUMENTS"), "{}", path.display());
    body
}

/// Every `spec-kitty ...` in a code block line or an inline code span.
fn invocations(prompt: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_block = false;
    for line in prompt.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            if let Some(i) = line.find("spec-kitty ") {
                found.push(line[i..].trim().to_string());
            }
            continue;
        }
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && span.starts_with("spec-kitty ") {
                found.push(span.trim().to_string());
            }
        }
    }
    found
}

/// Splits like a shell (whitespace; single and double quotes).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in `{cmd}`");
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn every_agent_gets_every_step_in_its_format_and_every_invocation_parses() {
    let w = World::project();
    init_all(&w);
    let mut all = BTreeSet::new();
    for agent in AGENTS {
        for (step, _) in STEPS {
            let path = w.repo.join(agent.dir).join(agent.file_name(step));
            assert!(path.is_file(), "{} missing", path.display());
            let prompt = prompt_of(&path, agent.is_toml());
            assert!(
                !prompt.contains("__AGENT__"),
                "{}: placeholder left",
                path.display()
            );
            let found = invocations(&prompt);
            for inv in found {
                all.insert(inv);
            }
        }
        // Nothing else of ours in the directory.
        let n = fs::read_dir(w.repo.join(agent.dir)).unwrap().count();
        assert_eq!(n, STEPS.len(), "{}", agent.dir);
    }
    assert!(all.len() > 20, "too few invocations found: {all:?}");
    let mut refused = Vec::new();
    let mut pending_used = BTreeSet::new();
    for inv in &all {
        let pending = PENDING.iter().find(|(p, _)| inv.starts_with(p));
        match Cli::try_parse_from(words(inv)) {
            Ok(_) => {}
            Err(e) => match pending {
                Some((p, _)) => {
                    pending_used.insert(*p);
                }
                None => refused.push(format!(
                    "{inv}\n    {}",
                    e.to_string().lines().next().unwrap_or("")
                )),
            },
        }
    }
    assert!(
        refused.is_empty(),
        "command files tell agents to run commands this CLI refuses:\n{}",
        refused.join("\n")
    );
    let stale: Vec<&str> = PENDING
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !pending_used.contains(p))
        .collect();
    assert!(
        stale.is_empty(),
        "now accepted (or no longer used): delete from PENDING: {stale:?}"
    );
}

#[test]
fn agents_and_preferences_are_recorded_with_2_1_3_keys() {
    let w = World::project();
    let out = w.json(&[
        "init",
        "--here",
        "--ai",
        "codex;Claude",
        "--preferred-reviewer",
        "codex",
        "--yes",
        "--script",
        "ps",
        "--ignore-agent-tools",
    ]);
    assert_eq!(out["agents"], serde_json::json!(["codex", "claude"]));
    let cfg: serde_json::Value = serde_saphyr::from_str(&w.config()).unwrap();
    assert_eq!(
        cfg["agents"]["available"],
        serde_json::json!(["codex", "claude"])
    );
    assert_eq!(cfg["agents"]["selection"]["preferred_implementer"], "codex");
    assert_eq!(cfg["agents"]["selection"]["preferred_reviewer"], "codex");
    assert_eq!(cfg["agents"]["auto_commit"], true);
    assert_eq!(cfg["vcs"]["type"], "git");
    let gi = fs::read_to_string(w.repo.join(".gitignore")).unwrap();
    for e in [
        ".claude/",
        ".codex/",
        ".github/copilot/",
        ".kittify/runtime/",
        ".worktrees/",
    ] {
        assert!(gi.lines().any(|l| l == e), "{e} not in .gitignore:\n{gi}");
    }
    // Codex names use `_` (its prompts cannot contain `-`).
    assert!(w
        .repo
        .join(".codex/prompts/spec-kitty.tasks_finalize.md")
        .is_file());
    assert!(w
        .repo
        .join(".claude/commands/spec-kitty.tasks-finalize.md")
        .is_file());
}

#[test]
fn rerun_keeps_identity_hand_edits_and_other_files_force_regenerates() {
    let w = World::project();
    w.ok(&["init", "--ai", "claude,gemini", "--ignore-agent-tools"]);
    // Hand edits: a comment and auto_commit in the config, one of our
    // command files, and a command file of the user's own.
    let cfg = w
        .config()
        .replace("agents:\n", "# mine\nagents:\n")
        .replace("auto_commit: true", "auto_commit: false");
    fs::write(w.repo.join(".kittify/config.yaml"), &cfg).unwrap();
    let ours = w.repo.join(".claude/commands/spec-kitty.plan.md");
    fs::write(&ours, "my own plan prompt\n").unwrap();
    let theirs = w.repo.join(".claude/commands/deploy.md");
    fs::write(&theirs, "deploy!\n").unwrap();
    let uuid = w.config_uuid();

    // No --ai: the recorded agents; the edited file is kept, with a warning.
    let o = w.run(&["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("spec-kitty.plan.md"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&ours).unwrap(), "my own plan prompt\n");

    w.ok(&["init", "--force"]);
    assert!(fs::read_to_string(&ours).unwrap().contains("setup-plan"));
    assert_eq!(fs::read_to_string(&theirs).unwrap(), "deploy!\n");
    let after = w.config();
    assert_eq!(w.config_uuid(), uuid);
    assert!(after.contains("# mine\nagents:\n"), "{after}");
    let doc: serde_json::Value = serde_saphyr::from_str(&after).unwrap();
    assert_eq!(doc["agents"]["auto_commit"], false, "{after}");
    assert_eq!(
        doc["agents"]["available"],
        serde_json::json!(["claude", "gemini"])
    );
    assert!(w
        .repo
        .join(".gemini/commands/spec-kitty.plan.toml")
        .is_file());
}

#[test]
fn no_name_and_dot_mean_the_current_directory() {
    let w = World::bare("fresh");
    w.ok(&["init", ".", "--ai", "q", "--ignore-agent-tools"]);
    assert!(w
        .repo
        .join(".amazonq/prompts/spec-kitty.specify.md")
        .is_file());
    let w2 = World::bare("fresh2");
    w2.ok(&["init", "--ai", "copilot", "--non-interactive"]);
    assert!(w2
        .repo
        .join(".github/prompts/spec-kitty.specify.prompt.md")
        .is_file());
    // A repository init created holds its first commit, as with 2.1.3.
    let log = w2.git(&["log", "--format=%s", "--name-only"]);
    assert!(
        log.starts_with("Initial commit from Specify template"),
        "{log}"
    );
    assert!(
        log.contains(".kittify/config.yaml") && log.contains(".gitignore"),
        "{log}"
    );
    assert!(
        !log.contains(".github/prompts"),
        "agent directories are ignored: {log}"
    );
}

#[test]
fn bad_agents_are_refused_before_anything_is_written() {
    let w = World::bare("fresh");
    for args in [
        &["init", "--ai", "claude,vim"][..],
        &["init", "--ai", " , "],
        &["init", "--ai", "claude", "--preferred-implementer", "codex"],
        &["init", "--preferred-reviewer", "codex"],
    ] {
        let o = w.run(args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", stderr(&o));
        assert!(
            fs::read_dir(&w.repo).unwrap().next().is_none(),
            "{args:?} wrote something"
        );
    }
    let o = w.run(&["init", "--ai", "claude,vim"]);
    assert!(
        stderr(&o).contains("vim") && stderr(&o).contains("claude, gemini"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["init", "elsewhere", "--here"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(fs::read_dir(&w.repo).unwrap().next().is_none());
    // `.` is the current directory, so `. --here` says it twice (2.1.3 too).
    w.ok(&["init", ".", "--here", "--no-git"]);
    let o = w.run(&["init", "--script", "fish"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn flags_that_do_nothing_here_say_so_in_one_line() {
    let w = World::bare("fresh");
    let o = w.run(&[
        "init",
        "--skip-tls",
        "--github-token",
        "x",
        "--mission",
        "research",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("--skip-tls does nothing here"), "{err}");
    assert!(err.contains("--github-token does nothing here"), "{err}");
    assert!(err.contains("--mission is deprecated"), "{err}");
}
