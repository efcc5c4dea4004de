//! The two commands agents run most, `agent tasks move-task` and `agent
//! tasks add-history`, read from argv without building clap's grammar.
//!
//! Even deferred, clap builds the `agent` and `agent tasks` levels, their
//! siblings' names and the chosen subcommand's arguments before it reads a
//! word: about 230 KB of allocations and 0.18 ms of a 2.4 ms warm
//! add-history on this VM, most of it first-touch page faults. This reader
//! accepts only the plain spellings (`--flag`, `--option VALUE` with a
//! value that does not start with `-`, one positional, no repeats, no
//! `--`) and returns `None` for anything else, which clap then parses as
//! always: help, errors, `--opt=value` and every other form keep clap's
//! behaviour and messages. A property test checks that whatever this reader
//! accepts, clap parses to the same value.

use super::{
    AddHistoryArgs, AgentCommand, AgentTasksCommand, AutoCommit, Cli, Command, MoveTaskArgs,
};
use std::ffi::OsString;
use std::path::PathBuf;

/// The parsed command line, when `args` (with the program name first) is a
/// plain `agent tasks move-task|add-history` command line.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let words: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let (sub, rest) = match words.as_slice() {
        ["agent", "tasks", sub, rest @ ..] => (*sub, rest),
        _ => return None,
    };
    let command = match sub {
        "move-task" => AgentTasksCommand::MoveTask(move_task(&Words::read(rest, MOVE_TASK)?)?),
        "add-history" => {
            AgentTasksCommand::AddHistory(add_history(&Words::read(rest, ADD_HISTORY)?)?)
        }
        _ => return None,
    };
    Some(Cli {
        version_v: None,
        command: Command::Agent(AgentCommand::Tasks(command)),
    })
}

/// A long option's name and whether it takes a value.
type Spec = &'static [(&'static str, bool)];

const MOVE_TASK: Spec = &[
    ("to", true),
    ("feature", true),
    ("agent", true),
    ("assignee", true),
    ("shell-pid", true),
    ("note", true),
    ("review-feedback-file", true),
    ("approval-ref", true),
    ("reviewer", true),
    ("done-override-reason", true),
    ("force", false),
    ("reason", true),
    ("auto-commit", false),
    ("no-auto-commit", false),
    ("json", false),
];

const ADD_HISTORY: Spec = &[
    ("note", true),
    ("feature", true),
    ("agent", true),
    ("entry-type", true),
    ("shell-pid", true),
    ("json", false),
];

/// One positional and the options given, each at most once.
struct Words<'a> {
    positional: &'a str,
    given: Vec<(&'static str, Option<&'a str>)>,
}

impl<'a> Words<'a> {
    fn read(words: &[&'a str], spec: Spec) -> Option<Words<'a>> {
        let mut positional = None;
        let mut given: Vec<(&'static str, Option<&'a str>)> = Vec::new();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            match w.strip_prefix("--") {
                Some(name) => {
                    let &(name, takes_value) = spec.iter().find(|(n, _)| *n == name)?;
                    if given.iter().any(|(n, _)| *n == name) {
                        return None;
                    }
                    let value = if takes_value {
                        let v = it.next()?;
                        if v.is_empty() || v.starts_with('-') {
                            return None;
                        }
                        Some(*v)
                    } else {
                        None
                    };
                    given.push((name, value));
                }
                None if w.starts_with('-') || positional.is_some() => return None,
                None => positional = Some(*w),
            }
        }
        Some(Words {
            positional: positional?,
            given,
        })
    }

    fn value(&self, name: &str) -> Option<String> {
        self.given
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.map(str::to_string))
    }

    fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }
}

fn move_task(w: &Words) -> Option<MoveTaskArgs> {
    let commit = AutoCommit {
        auto_commit: w.flag("auto-commit"),
        no_auto_commit: w.flag("no-auto-commit"),
    };
    // Both given: clap lets the later one win; leave that to clap.
    if commit.auto_commit && commit.no_auto_commit {
        return None;
    }
    Some(MoveTaskArgs {
        wp_id: w.positional.to_string(),
        to: w.value("to")?,
        feature: w.value("feature"),
        agent: w.value("agent"),
        assignee: w.value("assignee"),
        shell_pid: w.value("shell-pid"),
        note: w.value("note"),
        review_feedback_file: w.value("review-feedback-file").map(PathBuf::from),
        approval_ref: w.value("approval-ref"),
        reviewer: w.value("reviewer"),
        done_override_reason: w.value("done-override-reason"),
        force: w.flag("force"),
        reason: w.value("reason"),
        commit,
        json: w.flag("json"),
    })
}

fn add_history(w: &Words) -> Option<AddHistoryArgs> {
    let entry_type = w.value("entry-type").unwrap_or_else(|| "note".into());
    if !super::ENTRY_TYPES.contains(&entry_type.as_str()) {
        return None;
    }
    Some(AddHistoryArgs {
        wp_id: w.positional.to_string(),
        note: w.value("note")?,
        feature: w.value("feature"),
        agent: w.value("agent"),
        entry_type,
        shell_pid: w.value("shell-pid"),
        json: w.flag("json"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        std::iter::once("spec-kitty")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What clap makes of `args`, as text (every type here is `Debug`).
    fn by_clap(args: &[OsString]) -> Result<String, String> {
        Cli::try_parse_from(args)
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }

    /// `line`'s words (split at spaces) after the program name.
    fn line(line: &str) -> Vec<OsString> {
        os(&line.split(' ').collect::<Vec<_>>())
    }

    #[test]
    fn the_commands_agents_run_are_read_here_as_clap_reads_them() {
        for l in [
            "agent tasks move-task WP01 --to doing",
            "agent tasks move-task WP07 --to for_review --note Ready --agent claude \
             --shell-pid 4242 --json --no-auto-commit",
            "agent tasks move-task --feature 001-x WP02 --to done --force --reason why \
             --auto-commit --review-feedback-file /tmp/f.md --approval-ref PR#1 --reviewer R \
             --assignee A --done-override-reason merged",
            "agent tasks add-history WP01 --note x",
            "agent tasks add-history WP03 --note Started --agent codex --entry-type review \
             --shell-pid 7 --feature 002-y --json",
        ] {
            let args = line(l);
            let fast = parse(&args).unwrap_or_else(|| panic!("not read here: {l}"));
            assert_eq!(Ok(format!("{fast:?}")), by_clap(&args), "{l}");
        }
        let spaced = os(&["agent", "tasks", "add-history", "WP01", "--note", "a b c"]);
        assert_eq!(
            parse(&spaced).map(|c| format!("{c:?}")),
            by_clap(&spaced).ok()
        );
    }

    #[test]
    fn other_spellings_are_left_to_clap() {
        for l in [
            "agent tasks move-task WP01 --to=doing",
            "agent tasks move-task WP01 --to doing --help",
            "agent tasks move-task WP01 --to doing -h",
            "agent tasks move-task WP01",
            "agent tasks move-task WP01 --to doing --to done",
            "agent tasks move-task WP01 WP02 --to doing",
            "agent tasks move-task WP01 --to -x",
            "agent tasks move-task WP01 --to doing -- x",
            "agent tasks move-task WP01 --to doing --auto-commit --no-auto-commit",
            "agent tasks add-history WP01 --note x --entry-type other",
            "agent tasks add-history WP01 --note x --version",
            "agent tasks mark-status T001 --status done",
            "-v",
        ] {
            assert!(parse(&line(l)).is_none(), "{l}");
        }
        let empty_note = os(&["agent", "tasks", "add-history", "WP01", "--note", ""]);
        assert!(parse(&empty_note).is_none());
        assert!(parse(&os(&[])).is_none());
    }

    #[test]
    fn arguments_that_are_not_utf8_are_left_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = os(&["agent", "tasks", "add-history", "WP01", "--note"]);
        args.push(OsString::from_vec(vec![0xff, 0xfe]));
        assert!(parse(&args).is_none());
    }

    /// A few words: an option of either command with a value (some of
    /// them values clap reads differently), a flag, a stray word.
    fn chunk() -> impl Strategy<Value = Vec<String>> {
        use proptest::sample::select;
        let names = |takes_value: bool| -> Vec<String> {
            let all = MOVE_TASK.iter().chain(ADD_HISTORY);
            let names = all
                .filter(|(_, v)| *v == takes_value)
                .map(|(n, _)| format!("--{n}"));
            names.collect()
        };
        const VALUES: &[&str] = &[
            "doing", "review", "note", "a b", "ünï", "", "-x", "-1", "WP02",
        ];
        let mut singles = names(false);
        singles.extend(["--help", "--", "-x", "--to=doing", "WP01", "--version"].map(String::from));
        prop_oneof![
            3 => (select(names(true)), select(VALUES))
                .prop_map(|(o, v)| vec![o, v.to_string()]),
            1 => select(singles).prop_map(|w| vec![w]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn whatever_is_read_here_clap_reads_the_same(
            sub in prop_oneof![Just("move-task"), Just("add-history")],
            required in proptest::bool::weighted(0.9),
            chunks in proptest::collection::vec(chunk(), 0..6),
            at in 0usize..8,
        ) {
            let mut chunks = chunks;
            if required {
                let option = if sub == "move-task" { "--to" } else { "--note" };
                chunks.push(vec![option.to_string(), "doing".to_string()]);
                chunks.insert(at.min(chunks.len()), vec!["WP01".to_string()]);
            }
            let mut all = vec!["agent".to_string(), "tasks".to_string(), sub.to_string()];
            all.extend(chunks.into_iter().flatten());
            let args: Vec<OsString> =
                std::iter::once("spec-kitty".into()).chain(all.iter().map(OsString::from)).collect();
            if let Some(fast) = parse(&args) {
                prop_assert_eq!(Ok(format!("{fast:?}")), by_clap(&args));
            }
        }
    }
}
