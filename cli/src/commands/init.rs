//! `spec-kitty init [NAME | . | --here] [--ai AGENTS] ...`: a new project,
//! or the set-up of an existing one, as 2.1.3's `init` leaves it: the
//! project identity (kept on every rerun), `kitty-specs/`, a git repository
//! with its first commit, the `.gitignore` entries, `agents:` and `vcs:` in
//! `.kittify/config.yaml`, and each chosen agent's command files
//! ([`crate::agentfiles`]).
//!
//! Unlike 2.1.3 it never deletes an agent's command directory (2.1.3
//! replaces it wholesale): it writes only `spec-kitty.*` files, and keeps
//! those edited by hand unless `--force`. Every check runs before the first
//! write, so bad input leaves nothing behind. Emits no event.

use super::Ctx;
use crate::agentfiles::{self, Agent, AGENTS, GITIGNORE_ENTRIES, GITIGNORE_MARKER};
use crate::cli::InitArgs;
use crate::error::CliError;
use crate::gitcommit;
use crate::identity::EnsureOpts;
use crate::output::Out;
use crate::project::{self, Project};
use crate::{fsutil, yamltext};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The chosen agents and the preferred implementer and reviewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub agents: Vec<&'static Agent>,
    pub implementer: String,
    pub reviewer: String,
}

/// Parses `--ai` as 2.1.3 does: `,` or `;` separated, case-insensitive,
/// duplicates dropped, unknown keys refused (all named at once).
pub fn parse_agents(raw: &str) -> Result<Vec<&'static Agent>, CliError> {
    let keys: Vec<String> = raw
        .replace(';', ",")
        .split(',')
        .map(|k| k.trim().to_ascii_lowercase())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(CliError::invalid(
            "--ai names no agent; give e.g. --ai claude,codex",
        ));
    }
    let unknown: Vec<&str> = keys
        .iter()
        .filter(|k| agentfiles::agent(k).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let all: Vec<&str> = AGENTS.iter().map(|a| a.key).collect();
        return Err(CliError::invalid(format!(
            "--ai: unknown agent(s): {}. Choose from: {}",
            unknown.join(", "),
            all.join(", ")
        )));
    }
    let mut out: Vec<&'static Agent> = Vec::new();
    for k in &keys {
        let a = agentfiles::agent(k).expect("checked above");
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// 2.1.3's `_resolve_preferred_agents`: the implementer defaults to the
/// first agent, the reviewer to another one when there is another.
pub fn select(
    agents: Vec<&'static Agent>,
    implementer: Option<&str>,
    reviewer: Option<&str>,
) -> Result<Selection, CliError> {
    let has = |k: &str| agents.iter().any(|a| a.key == k);
    for (flag, v) in [
        ("--preferred-implementer", implementer),
        ("--preferred-reviewer", reviewer),
    ] {
        if let Some(v) = v.filter(|v| !has(v)) {
            let keys: Vec<&str> = agents.iter().map(|a| a.key).collect();
            return Err(CliError::invalid(format!(
                "{flag} {v}: must be one of the chosen agents ({})",
                keys.join(", ")
            )));
        }
    }
    let implementer = implementer.unwrap_or(agents[0].key).to_string();
    let reviewer = match reviewer {
        Some(r) => r.to_string(),
        None => agents
            .iter()
            .map(|a| a.key)
            .find(|k| *k != implementer)
            .unwrap_or(&implementer)
            .to_string(),
    };
    Ok(Selection {
        agents,
        implementer,
        reviewer,
    })
}

/// What `.kittify/config.yaml` already records under `agents:`.
fn recorded(root: &Path) -> Option<Value> {
    let text = fs::read_to_string(root.join(".kittify").join("config.yaml")).ok()?;
    let doc: Value = yamltext::parse_value(&text).ok()?;
    doc.get("agents").cloned()
}

/// The selection from the flags, else from the config (a rerun without
/// `--ai` regenerates what was set up before); `None`: no agents at all.
fn resolve_selection(root: &Path, a: &InitArgs) -> Result<Option<Selection>, CliError> {
    let rec = recorded(root);
    let agents = match &a.ai {
        Some(raw) => parse_agents(raw)?,
        None => {
            let keys: Vec<&str> = rec
                .as_ref()
                .and_then(|r| r.get("available"))
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let known: Vec<&'static Agent> =
                keys.iter().filter_map(|k| agentfiles::agent(k)).collect();
            if known.is_empty() {
                if a.preferred_implementer.is_some() || a.preferred_reviewer.is_some() {
                    return Err(CliError::invalid(
                        "--preferred-implementer/--preferred-reviewer need --ai (no agents are set up yet)",
                    ));
                }
                return Ok(None);
            }
            known
        }
    };
    // Without flags, a rerun keeps the recorded preferences when they
    // still name chosen agents.
    let pref = |flag: &Option<String>, key: &str| -> Option<String> {
        flag.clone().or_else(|| {
            let v = rec.as_ref()?.get("selection")?.get(key)?.as_str()?;
            agents.iter().any(|a| a.key == v).then(|| v.to_string())
        })
    };
    let imp = pref(&a.preferred_implementer, "preferred_implementer");
    let rev = pref(&a.preferred_reviewer, "preferred_reviewer");
    select(agents, imp.as_deref(), rev.as_deref()).map(Some)
}

pub fn run(out: &Out, a: InitArgs) -> Result<(), CliError> {
    let cwd = project::cwd()?;
    let root = match a.name.as_deref() {
        None | Some(".") => cwd.clone(),
        Some(name) if a.here => {
            return Err(CliError::invalid(format!(
                "give either a directory name ({name}) or --here, not both"
            )))
        }
        Some(name) => cwd.join(name),
    };
    // Everything that can refuse the input, before anything is written.
    let selection = resolve_selection(&root, &a)?;
    notes(out, &a);

    fs::create_dir_all(root.join(".kittify"))
        .map_err(|e| CliError::io_at("create", &root.join(".kittify"), &e))?;
    fs::create_dir_all(root.join("kitty-specs"))
        .map_err(|e| CliError::io_at("create", &root.join("kitty-specs"), &e))?;
    let inside_git = root.ancestors().any(|d| d.join(".git").exists());
    let mut git_created = false;
    if !a.no_git && !inside_git {
        git_init(&root)?;
        git_created = true;
    }
    let mut written: Vec<PathBuf> = Vec::new();
    if ensure_gitignore(&root)? {
        written.push(root.join(".gitignore"));
    }
    if !a.no_git {
        configure_status_merge(out, &root);
    }
    let git_root = root
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf);
    let project = Project {
        root: root.clone(),
        git_root: git_root.clone(),
    };
    let ctx = Ctx::for_project(
        out,
        cwd,
        project,
        EnsureOpts {
            add_sync_section: true,
        },
    )?;
    written.push(ctx.project.config_path());
    let mut files = Vec::new();
    if let Some(sel) = &selection {
        write_agent_config(&root, sel, !a.no_git)?;
        // Only when agents were chosen now: a rerun does not nag again.
        if a.ai.is_some() && !a.ignore_agent_tools {
            check_tools(out, sel);
        }
        files = write_command_files(out, &root, sel, a.force)?;
    }
    let mut commit = Value::Null;
    if git_created {
        // 2.1.3 makes the first commit of a repository it created.
        match gitcommit::commit_paths(&root, &written, "Initial commit from Specify template") {
            Ok(gitcommit::Committed::Yes(h)) => commit = Value::String(h),
            Ok(gitcommit::Committed::NothingToCommit) => {}
            Err(e) => out.warn(&e.to_string()),
        }
    }

    let id = &ctx.identity;
    out.line(&format!(
        "{} Initialized spec-kitty project in {}",
        out.green("✓"),
        root.display()
    ));
    out.line(&format!(
        "  project_uuid: {}",
        id.uuid.as_deref().unwrap_or("-")
    ));
    out.line(&format!(
        "  project_slug: {}",
        id.slug.as_deref().unwrap_or("-")
    ));
    out.line(&format!("  node_id:      {}", id.node_id));
    if git_created {
        out.line("  git:          initialized");
    }
    match &selection {
        Some(sel) => {
            for agent in &sel.agents {
                let n = files
                    .iter()
                    .filter(|f| f.agent == agent.key && f.action != Action::Kept)
                    .count();
                out.line(&format!(
                    "  {:<13} {}/ ({n} command files written)",
                    format!("{}:", agent.key),
                    agent.dir
                ));
            }
            out.line(&format!(
                "  implementer:  {}   reviewer: {}",
                sel.implementer, sel.reviewer
            ));
            out.line("Next: ask your agent for /spec-kitty.specify <what to build>.");
        }
        None => out.line(
            "  agents:       none (give --ai claude,codex,... to write the agents' command files)",
        ),
    }
    out.json(&json!({
        "result": "success",
        "path": root.display().to_string(),
        "project_uuid": id.uuid,
        "project_slug": id.slug,
        "node_id": id.node_id,
        "git_initialized": git_created,
        "commit_hash": commit,
        "agents": selection.as_ref().map(|s| s.agents.iter().map(|a| a.key).collect::<Vec<_>>()).unwrap_or_default(),
        "preferred_implementer": selection.as_ref().map(|s| s.implementer.clone()),
        "preferred_reviewer": selection.as_ref().map(|s| s.reviewer.clone()),
        "command_files": files.iter().map(|f| json!({
            "agent": f.agent,
            "path": f.path.strip_prefix(&root).unwrap_or(&f.path).display().to_string(),
            "action": f.action.as_str(),
        })).collect::<Vec<_>>(),
    }));
    Ok(())
}

/// One line per 2.1.3 flag that means nothing here.
fn notes(out: &Out, a: &InitArgs) {
    if a.mission.is_some() {
        out.warn("--mission is deprecated (as in 2.1.3) and ignored: the mission is chosen per feature, `spec-kitty specify --mission`");
    }
    for (given, flag) in [
        (a.skip_tls, "--skip-tls"),
        (a.debug, "--debug"),
        (a.github_token.is_some(), "--github-token"),
        (a.template_root.is_some(), "--template-root"),
    ] {
        if given {
            out.warn(&format!(
                "{flag} does nothing here: the command files are built into spec-kitty, nothing is downloaded"
            ));
        }
    }
}

/// 2.1.3 warns (and goes on) when an agent's CLI is not on PATH.
fn check_tools(out: &Out, sel: &Selection) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for agent in &sel.agents {
        let Some((tool, url)) = agent.tool else {
            continue;
        };
        let found = std::env::split_paths(&path).any(|d| d.join(tool).is_file());
        if !found {
            out.warn(&format!(
                "{} ({}): `{tool}` is not on PATH; the command files work once it is installed: {url} (--ignore-agent-tools skips this check)",
                agent.name, agent.key
            ));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Created,
    Updated,
    Unchanged,
    /// Edited by hand; kept (no --force).
    Kept,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Kept => "kept",
        }
    }
}

struct CommandFile {
    agent: &'static str,
    path: PathBuf,
    action: Action,
}

fn write_command_files(
    out: &Out,
    root: &Path,
    sel: &Selection,
    force: bool,
) -> Result<Vec<CommandFile>, CliError> {
    let mut files = Vec::new();
    for agent in &sel.agents {
        let dir = root.join(agent.dir);
        fsutil::check_repo_dir(root, &dir).map_err(CliError::io_from)?;
        fs::create_dir_all(&dir).map_err(|e| CliError::io_at("create", &dir, &e))?;
        let mut kept = Vec::new();
        for (step, source) in agentfiles::STEPS {
            let path = dir.join(agent.file_name(step));
            let text = agentfiles::render(agent, step, source);
            let action = match fsutil::read_repo_file(root, &path)? {
                None => Action::Created,
                Some(old) if old == text.as_bytes() => Action::Unchanged,
                Some(_) if force => Action::Updated,
                Some(_) => Action::Kept,
            };
            if matches!(action, Action::Created | Action::Updated) {
                // Regenerable: a sync per file would be most of init's time.
                fsutil::write_repo_file_unsynced(root, &path, text.as_bytes())?;
            }
            if action == Action::Kept {
                kept.push(agent.file_name(step));
            }
            files.push(CommandFile {
                agent: agent.key,
                path,
                action,
            });
        }
        if !kept.is_empty() {
            out.warn(&format!(
                "{}: kept {} command file(s) that differ from this version's ({}); --force rewrites them",
                agent.dir,
                kept.len(),
                kept.join(", ")
            ));
        }
    }
    Ok(files)
}

/// The `agents:` block 2.1.3's `save_agent_config` writes.
fn agents_block(sel: &Selection, auto_commit: bool, eol: &str) -> String {
    let mut b = format!("agents:{eol}  available:{eol}");
    for a in &sel.agents {
        b.push_str(&format!("  - {}{eol}", a.key));
    }
    b.push_str(&format!(
        "  selection:{eol}    preferred_implementer: {}{eol}    preferred_reviewer: {}{eol}  auto_commit: {auto_commit}{eol}",
        sel.implementer, sel.reviewer
    ));
    b
}

/// Writes `agents:` (replacing that block only) and, with git, `vcs:` when
/// absent, into `.kittify/config.yaml`; every other line stays as it was.
/// `auto_commit` keeps its effective value (2.1.3 would reset it to true).
fn write_agent_config(root: &Path, sel: &Selection, git: bool) -> Result<(), CliError> {
    let path = root.join(".kittify").join("config.yaml");
    let old = fsutil::read_repo_file(root, &path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let eol = yamltext::line_ending(&old);
    let block = agents_block(sel, gitcommit::auto_commit_default(root), eol);
    let mut text = match yamltext::find_key(&old, "agents") {
        Some(kl) => {
            let end = yamltext::block_end(&old, &kl.line);
            format!("{}{block}{}", &old[..kl.line.start], &old[end..])
        }
        None => yamltext::insert_at(&old, old.len(), &block),
    };
    if git && yamltext::find_key(&text, "vcs").is_none() {
        text = yamltext::insert_at(&text, text.len(), &format!("vcs:{eol}  type: git{eol}"));
    }
    // The edit must read back with the same identity and the new agents.
    let before = yamltext::parse_value(&old).unwrap_or(Value::Null);
    let after = yamltext::parse_value(&text).map_err(|e| {
        CliError::io(format!(
            "{}: cannot add the agents section ({e}); nothing was changed",
            path.display()
        ))
    })?;
    let want: Vec<&str> = sel.agents.iter().map(|a| a.key).collect();
    let got: Vec<&str> = after["agents"]["available"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if got != want || before.get("project") != after.get("project") {
        return Err(CliError::io(format!(
            "{}: the agents section could not be written without disturbing other keys; nothing was changed",
            path.display()
        )));
    }
    if text != old {
        fsutil::write_repo_file(root, &path, text.as_bytes())?;
    }
    Ok(())
}

fn git_init(root: &Path) -> Result<(), CliError> {
    let o = Command::new("git")
        .args(["init", "-q"])
        .current_dir(root)
        .output()
        .map_err(|e| {
            CliError::io(format!(
                "cannot run git init in {}: {e} (use --no-git to skip)",
                root.display()
            ))
        })?;
    if !o.status.success() {
        return Err(CliError::io(format!(
            "git init failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// Git merges of `status.events.jsonl` keep both branches' events. A
/// failure only warns: the project works without it (a conflicted log is
/// then reported, with its repair, by `agent status doctor`).
fn configure_status_merge(out: &Out, root: &Path) {
    if let Err(e) = super::status_check::configure_merge_driver(root) {
        out.warn(&format!(
            "{e}; merges of status.events.jsonl will use git's default"
        ));
    }
}

/// `.worktrees/` (worktrees live there) and 2.1.3's entries under its
/// marker line: every agent's directory and the `.kittify/` runtime files.
/// Keeps the file's line ending; returns whether it changed.
fn ensure_gitignore(root: &Path) -> Result<bool, CliError> {
    let path = root.join(".gitignore");
    let old = fsutil::read_repo_file(root, &path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let eol = yamltext::line_ending(&old);
    let have: std::collections::HashSet<&str> = old.lines().map(str::trim_end).collect();
    let mut new = old.clone();
    let mut push = |line: &str| {
        if !new.is_empty() && !new.ends_with('\n') {
            new.push_str(eol);
        }
        new.push_str(line);
        new.push_str(eol);
    };
    if !have.contains(".worktrees/") && !have.contains(".worktrees") {
        push(".worktrees/");
    }
    let missing: Vec<&str> = GITIGNORE_ENTRIES
        .iter()
        .copied()
        .filter(|e| !have.contains(e))
        .collect();
    if !missing.is_empty() {
        if !have.contains(GITIGNORE_MARKER) {
            push(GITIGNORE_MARKER);
        }
        for e in missing {
            push(e);
        }
    }
    if new == old {
        return Ok(false);
    }
    fsutil::write_repo_file(root, &path, new.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_parse_like_2_1_3() {
        let keys =
            |s: &str| -> Vec<&str> { parse_agents(s).unwrap().iter().map(|a| a.key).collect() };
        assert_eq!(keys("Claude; codex,claude, "), ["claude", "codex"]);
        let e = parse_agents("claude,vim,emacs").unwrap_err();
        assert!(
            e.message.contains("vim, emacs") && e.message.contains("antigravity"),
            "{}",
            e.message
        );
        assert!(parse_agents(" , ").is_err());
    }

    #[test]
    fn preferred_agents_default_to_first_and_another() {
        let two = parse_agents("claude,codex").unwrap();
        let s = select(two.clone(), None, None).unwrap();
        assert_eq!(
            (s.implementer.as_str(), s.reviewer.as_str()),
            ("claude", "codex")
        );
        let s = select(two.clone(), Some("codex"), None).unwrap();
        assert_eq!(
            (s.implementer.as_str(), s.reviewer.as_str()),
            ("codex", "claude")
        );
        let one = parse_agents("gemini").unwrap();
        let s = select(one, None, None).unwrap();
        assert_eq!(s.reviewer, "gemini");
        assert!(select(two, None, Some("q")).is_err());
    }
}
