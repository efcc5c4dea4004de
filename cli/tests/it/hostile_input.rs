//! Hostile input for the files the CLI reads and edits, as property tests
//! on the stable toolchain (proptest):
//!
//! - **WP frontmatter** (`wpfile`): arbitrary bytes and YAML-ish text go
//!   into `WpFile::parse` and through the edit `move-task` makes
//!   (`set_lane` → `append_history` → re-parse). Never a panic; an edit that
//!   succeeds changes only the lane line and the history list (every other
//!   key, the body and every other line stay), or it returns an error.
//! - **`.kittify/config.yaml`** (`identity::ensure`): arbitrary bytes never
//!   panic; a file we can read is left byte-identical or backfilled with
//!   every other key kept; a corrupt one is preserved byte-for-byte as
//!   `config.yaml.corrupt-<stamp>` and a fresh identity written; a second
//!   run reads the same identity and writes nothing.
//! - `$SPEC_KITTY_SYNC_HOME/credentials`: arbitrary bytes never block a lane
//!   change and are never rewritten.
//! - The same through the **real binary** for fewer cases: exit status
//!   is never a panic, a failed command leaves the WP file byte-identical and
//!   spools nothing, and a command never fails because of the config.
//!
//! Known and accepted: a lane value carrying a YAML anchor or tag
//! (`lane: &a planned`, `lane: !!str planned`) loses the anchor/tag when
//! the lane is rewritten; if another key aliases it (`*a`) the re-parse
//! refuses the edit and the file stays untouched.
//!
//! Case counts are small so CI stays fast. Longer runs:
//! `PROPTEST_CASES=20000 cargo test --release -p spec-kitty --test it -- hostile_input::`
//! (the variable overrides every count here). proptest saves failing inputs
//! in `cli/tests/proptest-regressions/hostile_input.txt`; commit that file so
//! they are re-run first.

use crate::common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::Value;
use spec_kitty::identity::{self, EnsureOpts, Source};
use spec_kitty::project::Project;
use spec_kitty::wpfile::{self, HistoryEntry, WpFile};
use spec_kitty::yamltext;
use std::cell::Cell;
use std::fs;
use std::path::Path;

/// `n` cases unless `PROPTEST_CASES` says otherwise.
fn cases(n: u32) -> Config {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(n);
    Config {
        cases: n,
        // Failing inputs are saved here and re-run first on later runs.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/hostile_input.txt"
        )))),
        // Failing inputs are saved next to this file and re-run first.
        source_file: Some(file!()),
        // Shrinking through process-spawning cases can take minutes; a
        // bounded number of steps still gives a small counterexample.
        max_shrink_iters: 256,
        ..Config::default()
    }
}

const LANES: [&str; 7] = [
    "planned",
    "doing",
    "for_review",
    "done",
    "claimed",
    "blocked",
    "canceled",
];

// ---------------------------------------------------------------- inputs

/// Frontmatter lines that exercise the parser and the line editor: every
/// quoting of `lane:`, history in block/flow/odd forms, anchors, tags,
/// multi-line scalars, document markers, tabs, control characters.
fn fm_line() -> impl Strategy<Value = String> {
    let fixed: Vec<&'static str> = vec![
        "lane: planned",
        "lane: \"doing\"",
        "lane: 'for_review'  # set by tools",
        "lane: done # c",
        "lane:",
        "lane: ~",
        "lane: null",
        "lane: [doing]",
        "lane: {a: 1}",
        "lane: 5",
        "lane: review",
        "lane: \"planned",
        "lane: 'it''s'",
        "lane: \"do\\\"ing\"",
        "lane: &l planned",
        "lane: *l",
        "lane: !!str blocked",
        "lane: |",
        "lane: >-",
        "lane:\tdoing",
        "lane : doing",
        "\"lane\": doing",
        "lane: approved",
        "lane: in_progress",
        "lane: CLAIMED",
        "  doing",
        "history:",
        "history: []",
        "history: ~",
        "history: [a, b]",
        "history: {}",
        "history: x",
        "history: &h",
        "- timestamp: '2026-02-07T00:00:00Z'",
        "  - timestamp: '2026-02-07T00:00:00Z'",
        "    lane: planned",
        "  lane: doing",
        "    agent: system",
        "    shell_pid: ''",
        "    action: Prompt generated",
        "- x",
        "-",
        "  - [1, 2]",
        "work_package_id: WP01",
        "work_package_id: WP1",
        "work_package_id: 7",
        "title: Demo",
        "title: \"a: b\"",
        "title: 'multi",
        "  line'",
        "title: |",
        "  block text",
        "dependencies: []",
        "dependencies: [WP02]",
        "dependencies: x",
        "dependencies:",
        "  - WP03",
        "agent: claude",
        "shell_pid: 123",
        "# comment",
        "",
        "   ",
        "\t",
        "---",
        "...",
        "--- !tag",
        "key: &anchor {a: [1, 2]}",
        "other: *anchor",
        "<<: *anchor",
        "? complex",
        ": value",
        "%YAML 1.2",
        "!!binary",
        "&a",
        "*a",
        "{",
        "[",
        "]",
        "\"",
        "'",
        "k: v # c",
        "k:\tv",
        "ü: ñ",
        "k: 😀",
        "k: \u{0}",
        "k: \u{7f}\u{85}\u{2028}",
        "\u{feff}k: v",
    ];
    prop_oneof![
        6 => prop::sample::select(fixed).prop_map(str::to_string),
        1 => "[ -~\t]{0,40}",
        1 => any::<String>().prop_map(|s| s
            .chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .take(40)
            .collect()),
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\n# WP01\n\nSome text.\n".to_string()),
        Just("\n## Activity Log\n\n- 2026-02-07T00:00:00Z – system – lane=planned – Prompt created.\n\n## Next\n".to_string()),
        Just("---\nlane: done\n---\n".to_string()),
        any::<String>(),
    ]
}

/// A WP file: optional BOM, `---`, YAML-ish lines, maybe a closing `---`,
/// a body; LF or CRLF, maybe without a final newline.
fn wp_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(fm_line(), 0..16),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.2),
        body(),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(bom, lines, close, crlf, body, final_eol)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut s = String::new();
            if bom {
                s.push('\u{feff}');
            }
            s.push_str("---");
            s.push_str(eol);
            for l in lines {
                s.push_str(&l);
                s.push_str(eol);
            }
            if close {
                s.push_str("---");
                if final_eol || !body.is_empty() {
                    s.push_str(eol);
                }
            }
            s.push_str(&body);
            s
        })
}

/// A well-formed WP file in one of the many shapes people and tools write:
/// keys in any order, every quoting of the lane, history absent, empty,
/// null, or a block list at either indentation, comments and blank lines
/// between blocks, LF or CRLF.
fn valid_wp_text() -> impl Strategy<Value = String> {
    valid_wp_text_with(vec![
        "",
        "lane: planned\n",
        "lane: \"doing\"\n",
        "lane: 'for_review'  # set by tools\n",
        "lane: done # terminal\n",
        "lane:\n",
        "lane: ~\n",
        "lane: approved\n",
        "lane: in_progress\n",
        "lane: Blocked\n",
        "lane: &l claimed\n",
        "lane: !!str canceled\n",
        "lane:\tplanned\n",
    ])
}

/// As [`valid_wp_text`], with the lane line always one of `lanes`.
fn valid_wp_text_with(lanes: Vec<&'static str>) -> impl Strategy<Value = String> {
    let lane = prop::sample::select(lanes);
    let history = prop::sample::select(vec![
        "",
        "history: []\n",
        "history: [] # none yet\n",
        "history: ~\n",
        "history:\n",
        "history:\n- timestamp: '2026-02-07T00:00:00Z'\n  lane: planned\n  agent: system\n  shell_pid: ''\n  action: Prompt generated\n",
        "history:\n  - timestamp: '2026-02-07T00:00:00Z'\n    lane: planned\n    agent: \"a: b\"\n    shell_pid: '123'\n    action: \"Started: now\"  # c\n  - {timestamp: '2', lane: doing}\n",
        "history:\n\n  # a comment inside\n  - lane: planned\n\n",
    ]);
    let other = prop::sample::select(vec![
        "work_package_id: WP01\n",
        "work_package_id: \"WP01\"\n",
        "title: Demo task\n",
        "title: \"Fix: the thing\"\n",
        "title: >-\n  folded\n  title\n",
        "dependencies: []\n",
        "dependencies:\n  - WP02\n",
        "subtasks:\n- T001\n- T002\n",
        "agent: claude\n",
        "shell_pid: \"4242\"\n",
        "assignee: ''\n",
        "# a comment line\n",
        "\n",
        "review_status: \"\"\nreviewed_by: ''\n",
        "meta: &m {a: 1}\ncopy: *m\n",
        "note: |\n  lane: not-a-key\n  history: neither\n",
    ]);
    (
        lane,
        history,
        prop::collection::vec(other, 0..6),
        0..8usize,
        0..8usize,
        any::<bool>(),
        body(),
    )
        .prop_map(|(lane, history, mut others, i, j, crlf, body)| {
            let n = others.len();
            others.insert(i.min(n), lane);
            others.insert(j.min(n + 1), history);
            let mut s = format!("---\n{}---\n{body}", others.concat());
            if crlf {
                s = s.replace("\r\n", "\n").replace('\n', "\r\n");
            }
            s
        })
}

/// Any text a WP file could hold, hostile or not.
fn any_wp_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => valid_wp_text(),
        6 => wp_text(),
        1 => any::<String>(),
        1 => any::<String>().prop_map(|s| format!("---\n{s}\n---\n")),
        1 => prop::collection::vec(any::<u8>(), 0..400)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Config lines around `project:`/`sync:` in every shape.
fn cfg_line() -> impl Strategy<Value = String> {
    let fixed: Vec<&'static str> = vec![
        "project:",
        "project: ~",
        "project: {slug: x}",
        "project: {uuid: 550e8400-e29b-41d4-a716-446655440000, slug: y}",
        "project: 5",
        "project: [a]",
        "project: &p",
        "project: *p",
        "project:\t",
        "  uuid: 550e8400-e29b-41d4-a716-446655440000",
        "  uuid: not-a-uuid",
        "  uuid:",
        "  uuid: [1]",
        "    uuid: 7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "  slug: demo",
        "  slug: ''",
        "  slug: \"a: b\"",
        "  slug:",
        "  node_id: a1b2c3d4e5f6",
        "  node_id: xyz",
        "  repo_slug: acme/widget",
        "\tuuid: x",
        "sync:",
        "sync: {}",
        "sync: off",
        "  auto_start: false",
        "  auto_start: 'no'",
        "  auto_start: 3",
        "vcs:",
        "  type: git   # keep",
        "agents: [claude, codex]",
        "agents:",
        "  available: [a, b]",
        "# comment",
        "",
        "  ",
        "---",
        "...",
        "key: &anchor {a: [1, 2]}",
        "other: *anchor",
        "? complex",
        ": value",
        "%TAG ! tag:x,2026:",
        "{",
        "[",
        "\"",
        "'",
        "k: 😀",
        "k: \u{0}",
    ];
    prop_oneof![
        6 => prop::sample::select(fixed).prop_map(str::to_string),
        1 => "[ -~\t]{0,40}",
    ]
}

/// Bytes for `.kittify/config.yaml`.
fn cfg_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        5 => (prop::collection::vec(cfg_line(), 0..14), any::<bool>()).prop_map(|(lines, crlf)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            lines.iter().map(|l| format!("{l}{eol}")).collect::<String>().into_bytes()
        }),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..400),
    ]
}

// ---------------------------------------------------------------- checks

fn entry(lane: &str) -> HistoryEntry {
    HistoryEntry {
        timestamp: "2026-11-24T00:00:00Z".into(),
        lane: lane.into(),
        agent: "fuzz".into(),
        shell_pid: String::new(),
        action: format!("Moved to {lane}"),
    }
}

/// The edit `move-task` makes, as a function of the text: `Ok(None)` when
/// the file is already in `to`, `Ok(Some(new))`, or the error it reports.
fn move_edit(path: &Path, text: &str, to: &str) -> Result<Option<String>, String> {
    let wp = WpFile::parse(path, text.to_string()).map_err(|e| e.message)?;
    let lane = wpfile::parse_lane(to).expect("test lanes are valid");
    if wp.meta.lane == lane {
        return Ok(None);
    }
    let moved = wpfile::set_lane(&wp, wpfile::lane_for_file(lane));
    let new = wpfile::append_history(path, &moved, &entry(to)).map_err(|e| e.message)?;
    let check = WpFile::parse(path, new.clone()).map_err(|e| e.message)?;
    if check.meta.lane != lane {
        return Err("the lane edit did not read back".into());
    }
    Ok(Some(new))
}

fn fm_value(text: &str) -> Value {
    let (fm, _) = wpfile::split(text).expect("frontmatter");
    let fm = &text[fm];
    if fm.trim().is_empty() {
        return Value::Null;
    }
    serde_saphyr::from_str(fm).expect("parsed before")
}

fn history(v: &Value) -> Vec<Value> {
    match v.get("history") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => panic!("history was accepted as {other}"),
    }
}

fn line_texts(text: &str) -> Vec<&str> {
    yamltext::lines(text).map(|r| &text[r]).collect()
}

/// The part both move checks share: the text before the frontmatter is
/// unchanged, every frontmatter key but `own` keeps its value, and `lane`
/// reads `to`.
fn assert_keys_kept(old: &str, new: &str, to: &str, own: &[&str]) -> Result<(), TestCaseError> {
    let (ofm, _) = wpfile::split(old).unwrap();
    let (nfm, _) = wpfile::split(new).unwrap();
    prop_assert_eq!(
        &old[..ofm.start],
        &new[..nfm.start],
        "text before the frontmatter changed"
    );
    let (ov, nv) = (fm_value(old), fm_value(new));
    let empty = serde_json::Map::new();
    let (oo, no) = (ov.as_object().unwrap_or(&empty), nv.as_object().unwrap());
    for k in oo.keys().chain(no.keys()) {
        if !own.contains(&k.as_str()) {
            prop_assert_eq!(oo.get(k), no.get(k), "key {} changed", k);
        }
    }
    prop_assert_eq!(no.get("lane").and_then(Value::as_str), Some(to));
    Ok(())
}

/// Asserts that `new` is `old` with only the lane value changed in the
/// frontmatter (every other line kept, in order) and one activity line
/// added to the body, the way a move-task to `to` must look.
fn assert_only_lane_and_activity(old: &str, new: &str, to: &str) -> Result<(), TestCaseError> {
    assert_keys_kept(old, new, to, &["lane"])?;
    let (ofm, obody) = wpfile::split(old).unwrap();
    let (nfm, nbody) = wpfile::split(new).unwrap();
    let ofm_text = &old[ofm.clone()];
    let lane_line = yamltext::find_key(ofm_text, "lane").map(|kl| kl.line);
    let kept: Vec<&str> = yamltext::lines(ofm_text)
        .filter(|r| Some(r) != lane_line.as_ref())
        .map(|r| &ofm_text[r])
        .collect();
    let new_fm_lines = line_texts(&new[nfm.clone()]);
    prop_assert_eq!(new_fm_lines.len(), kept.len() + 1, "one lane line");
    let mut it = new_fm_lines.iter();
    for k in &kept {
        prop_assert!(it.any(|n| n == k), "old line {:?} lost or reordered", k);
    }
    // The body: the old lines in order, plus one activity line (and the
    // section heading with blank lines when there was none).
    let (ob, nb) = (line_texts(&old[obody..]), line_texts(&new[nbody..]));
    let mut added = Vec::new();
    let mut i = 0;
    for n in &nb {
        if i < ob.len() && ob[i].trim_end() == n.trim_end() {
            i += 1;
        } else {
            added.push(*n);
        }
    }
    prop_assert_eq!(i, ob.len(), "body lines lost: {:?}", added);
    let activity: Vec<&&str> = added
        .iter()
        .filter(|a| a.contains(&format!("lane={to} – ")))
        .collect();
    prop_assert_eq!(activity.len(), 1, "one activity line: {:?}", added);
    for a in &added {
        let t = a.trim();
        prop_assert!(
            t.is_empty() || t == "## Activity Log" || t.contains(&format!("lane={to} – ")),
            "unexpected body line {:?}",
            a
        );
    }
    Ok(())
}

/// Asserts that `new` is `old` with only the lane line and the history
/// list changed, the way a successful move to `to` must look.
fn assert_only_lane_and_history(old: &str, new: &str, to: &str) -> Result<(), TestCaseError> {
    // Semantics: every key but lane/history is unchanged; history grew by
    // exactly our entry.
    assert_keys_kept(old, new, to, &["lane", "history"])?;
    let (ofm, _) = wpfile::split(old).unwrap();
    let (nfm, _) = wpfile::split(new).unwrap();
    prop_assert_eq!(
        &old[ofm.end..],
        &new[nfm.end..],
        "closing line or body changed"
    );
    let (ov, nv) = (fm_value(old), fm_value(new));
    let (oh, nh) = (history(&ov), history(&nv));
    prop_assert_eq!(nh.len(), oh.len() + 1, "history must grow by one entry");
    prop_assert_eq!(&nh[..oh.len()], &oh[..], "earlier history entries changed");
    prop_assert_eq!(nh[oh.len()]["lane"].as_str(), Some(to));
    // Bytes: every old line except the top-level lane/history key lines is
    // still there, in order; the lines added are lane/history lines only.
    let ofm_text = &old[ofm.clone()];
    let own: Vec<std::ops::Range<usize>> = ["lane", "history"]
        .iter()
        .filter_map(|k| yamltext::find_key(ofm_text, k).map(|kl| kl.line))
        .collect();
    let kept: Vec<&str> = yamltext::lines(ofm_text)
        .filter(|r| !own.contains(r))
        .map(|r| &ofm_text[r])
        .collect();
    let new_lines = line_texts(&new[nfm.clone()]);
    let mut it = new_lines.iter();
    for k in &kept {
        prop_assert!(it.any(|n| n == k), "old line {:?} lost or reordered", k);
    }
    let mut added: Vec<&str> = new_lines.clone();
    for k in &kept {
        let i = added.iter().position(|a| a == k).unwrap();
        added.remove(i);
    }
    prop_assert!(added.len() <= 7, "too many lines added: {:?}", added);
    for a in added {
        let t = a.trim_start().trim_start_matches("- ");
        prop_assert!(
            [
                "lane:",
                "history:",
                "timestamp:",
                "agent:",
                "shell_pid:",
                "action:"
            ]
            .iter()
            .any(|p| t.starts_with(p)),
            "unexpected added line {:?}",
            a
        );
    }
    Ok(())
}

// ---------------------------------------------------- library properties

#[test]
fn wp_parser_and_lane_editor_never_panic_and_edit_only_their_lines() {
    let path = Path::new("kitty-specs/001-x/tasks/WP01-fuzz.md");
    let mut runner = TestRunner::new(cases(512));
    let strategy = (any_wp_text(), prop::sample::select(LANES.to_vec()));
    let (edited, refused) = (Cell::new(0u32), Cell::new(0u32));
    runner
        .run(&strategy, |(text, to)| {
            match move_edit(path, &text, to) {
                Ok(Some(new)) => {
                    edited.set(edited.get() + 1);
                    assert_only_lane_and_history(&text, &new, to)?
                }
                Ok(None) => {}
                Err(msg) => {
                    refused.set(refused.get() + 1);
                    prop_assert!(
                        msg.contains("WP01-fuzz.md"),
                        "error does not name the file: {}",
                        msg
                    )
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("edited {}, refused {}", edited.get(), refused.get());
    // The generator must reach both outcomes, or the property says little.
    assert!(edited.get() > 0 && refused.get() > 0);
}

#[test]
fn lane_moved_and_moved_back_restores_the_lane_line() {
    // For files the editor accepts, planned → doing → planned leaves the
    // frontmatter identical except for history (the lane line round-trips).
    let path = Path::new("WP01-fuzz.md");
    let config = cases(256);
    let n = config.cases;
    let mut runner = TestRunner::new(config);
    // Half the cases are built to reach the assertion (a `planned` lane
    // line in an otherwise varied file); the rest keep hostile shapes.
    let planned = valid_wp_text_with(vec![
        "lane: planned\n",
        "lane:\tplanned\n",
        "lane: planned  # set by tools\n",
        "lane:   planned\n",
    ]);
    let reached = Cell::new(0u32);
    runner
        .run(
            &prop_oneof![2 => planned, 1 => valid_wp_text(), 1 => wp_text()],
            |text| {
                let Ok(wp) = WpFile::parse(path, text.clone()) else {
                    return Ok(());
                };
                // Only where the lane line's scalar is exactly `planned`: an
                // anchor or tag written before the value (`lane: &a planned`)
                // is replaced with it (known, see the module docs).
                let fm = wp.frontmatter();
                match yamltext::find_key(fm, "lane") {
                    Some(kl) if kl.inner(fm) == "planned" => {}
                    _ => return Ok(()),
                }
                let there = wpfile::set_lane(&wp, "doing");
                let Ok(wp2) = WpFile::parse(path, there) else {
                    return Ok(());
                };
                let back = wpfile::set_lane(&wp2, "planned");
                reached.set(reached.get() + 1);
                prop_assert_eq!(back, text);
                Ok(())
            },
        )
        .unwrap();
    eprintln!("round trip checked in {} of {n} cases", reached.get());
    assert!(
        reached.get() >= n / 4,
        "only {} of {n} cases reached the round-trip assertion",
        reached.get()
    );
}

fn tmp_project() -> (tempfile::TempDir, Project) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("proj");
    fs::create_dir_all(root.join(".kittify")).unwrap();
    let p = Project {
        root,
        git_root: None,
    };
    (tmp, p)
}

fn corrupt_copies(p: &Project) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(p.kittify())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("config.yaml.corrupt-")
        })
        .collect();
    v.sort();
    v
}

fn yaml_map(bytes: &[u8]) -> Option<serde_json::Map<String, Value>> {
    let text = std::str::from_utf8(bytes).ok()?;
    match serde_saphyr::from_str::<Value>(text).ok()? {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

/// The config-loader properties for one input; shared by the library test
/// and (through the binary) the process test.
fn check_config_after(
    original: &[u8],
    after: &[u8],
    corrupt: &[std::path::PathBuf],
    uuid: Option<&str>,
) -> Result<(), TestCaseError> {
    if after == original {
        prop_assert!(
            corrupt.is_empty(),
            "unchanged config but a corrupt copy was made"
        );
        return Ok(());
    }
    // Whatever was there is kept: as a byte-identical corrupt copy, or in
    // place with only identity lines added.
    if corrupt.is_empty() {
        let old = yaml_map(original);
        let new = yaml_map(after).expect("rewritten config must be a YAML mapping");
        if let Some(old) = old {
            for (k, v) in &old {
                if k != "project" && k != "sync" {
                    prop_assert_eq!(Some(v), new.get(k), "key {} lost in the backfill", k);
                }
            }
        } else {
            prop_assert!(
                std::str::from_utf8(original).is_ok_and(|t| t.trim().is_empty()
                    || serde_saphyr::from_str::<Value>(t).is_ok_and(|v| v.is_null())),
                "unparseable config rewritten without a corrupt copy"
            );
        }
    } else {
        prop_assert_eq!(corrupt.len(), 1);
        prop_assert_eq!(
            fs::read(&corrupt[0]).unwrap(),
            original,
            "corrupt copy differs"
        );
    }
    let new = yaml_map(after).expect("new config is a mapping");
    let written = new
        .get("project")
        .and_then(|p| p.get("uuid"))
        .and_then(Value::as_str);
    prop_assert_eq!(written, uuid, "config does not hold the identity used");
    Ok(())
}

#[test]
fn config_loader_never_panics_and_never_loses_the_file() {
    let mut runner = TestRunner::new(cases(256));
    runner
        .run(&cfg_bytes(), |bytes| {
            let (_tmp, p) = tmp_project();
            let path = p.config_path();
            fs::write(&path, &bytes).unwrap();
            let mut warnings = Vec::new();
            let id = identity::ensure(&p, EnsureOpts::default(), &mut |w| warnings.push(w));
            let after = fs::read(&path).unwrap();
            let corrupt = corrupt_copies(&p);
            match id.source {
                Source::File => {
                    prop_assert_eq!(&after, &bytes, "read-only path wrote the file");
                    prop_assert!(corrupt.is_empty());
                }
                Source::InMemory => {
                    prop_assert_eq!(&after, &bytes, "in-memory identity but the file changed");
                    prop_assert!(!warnings.is_empty(), "in-memory identity without a warning");
                }
                Source::Persisted => {
                    check_config_after(&bytes, &after, &corrupt, id.uuid.as_deref())?;
                    if !corrupt.is_empty() {
                        prop_assert!(
                            warnings
                                .iter()
                                .any(|w| w.contains("config.yaml") && w.contains("corrupt-")),
                            "no warning naming the kept copy: {:?}",
                            warnings
                        );
                    }
                    // Stable: the next command reads the same identity and
                    // writes nothing.
                    let again = identity::ensure(&p, EnsureOpts::default(), &mut |_| {});
                    prop_assert_eq!(again.source, Source::File);
                    prop_assert_eq!(again.uuid, id.uuid);
                    prop_assert_eq!(fs::read(&path).unwrap(), after);
                }
            }
            // No temp files left behind.
            for e in fs::read_dir(p.kittify()).unwrap().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                prop_assert!(!n.ends_with(".tmp"), "temp file {} left", n);
            }
            Ok(())
        })
        .unwrap();
}

// ------------------------------------------------- through the real binary

fn tasks_dir_snapshot(w: &World) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(w.feature_dir().join("tasks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn spooled(w: &World) -> usize {
    fs::read_dir(w.spool_dir())
        .map(|rd| rd.flatten().count())
        .unwrap_or(0)
}

#[test]
fn binary_move_task_on_hostile_wp_files_never_panics_or_half_writes() {
    let w = World::with_wps(1);
    let path = w.wp_path("WP01");
    let names = tasks_dir_snapshot(&w);
    let bytes = prop_oneof![
        6 => any_wp_text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ];
    let strategy = (bytes, prop::sample::select(LANES.to_vec()), any::<bool>());
    let mut runner = TestRunner::new(cases(40));
    runner
        .run(&strategy, |(bytes, to, force)| {
            fs::write(&path, &bytes).unwrap();
            w.clear_spool();
            let mut args = vec!["agent", "tasks", "move-task", "WP01", "--to", to];
            if force {
                args.extend(["--force", "--reason", "fuzz"]);
            }
            let o = w.run(&args);
            let err = stderr(&o);
            let code = o.status.code();
            prop_assert!(
                !err.contains("panicked") && code != Some(101),
                "move-task panicked: {}",
                err
            );
            let after = fs::read(&path).unwrap();
            prop_assert_eq!(
                tasks_dir_snapshot(&w),
                names.clone(),
                "stray files in tasks/"
            );
            if code == Some(0) {
                if after == bytes {
                    prop_assert_eq!(spooled(&w), 0, "unchanged file but an event was spooled");
                } else {
                    let old = String::from_utf8(bytes.clone()).expect("edited a non-UTF-8 file");
                    let new = String::from_utf8(after).unwrap();
                    let lane = wpfile::parse_lane(to).unwrap().as_wire();
                    assert_only_lane_and_activity(&old, &new, lane)?;
                    let evs = w.events();
                    prop_assert_eq!(evs.len(), 1, "one event per move");
                    prop_assert_eq!(&evs[0].event_type, "WPStatusChanged");
                }
            } else {
                prop_assert!(
                    matches!(code, Some(1 | 4 | 5)),
                    "unexpected exit {:?}: {}",
                    code,
                    err
                );
                prop_assert!(!err.trim().is_empty(), "failure without a message");
                prop_assert_eq!(after, bytes, "failed move-task changed the file");
                // A refusal by a lane rule is reported as one ErrorLogged;
                // bad input sends nothing.
                let evs = w.events();
                if code == Some(5) {
                    prop_assert!(evs.len() <= 1, "one ErrorLogged at most: {:?}", evs);
                    prop_assert!(evs.iter().all(|e| e.event_type == "ErrorLogged"));
                } else {
                    prop_assert_eq!(spooled(&w), 0, "failed move-task spooled an event");
                }
            }
            // A read-only command on the same file never panics either.
            let s = w.run(&["status", "--json"]);
            prop_assert!(
                s.status.code() != Some(101) && !stderr(&s).contains("panicked"),
                "status panicked: {}",
                stderr(&s)
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn binary_commands_survive_any_config_and_keep_its_bytes() {
    let w = World::with_wps(1);
    let cfg = w.repo.join(".kittify/config.yaml");
    let mut runner = TestRunner::new(cases(40));
    runner
        .run(&cfg_bytes(), |bytes| {
            for e in fs::read_dir(w.repo.join(".kittify")).unwrap().flatten() {
                if e.file_name().to_string_lossy().contains(".corrupt-") {
                    fs::remove_file(e.path()).unwrap();
                }
            }
            fs::write(&cfg, &bytes).unwrap();
            let o = w.run(&["status", "--json"]);
            prop_assert_eq!(
                o.status.code(),
                Some(0),
                "a bad config must not stop a command: {}",
                stderr(&o)
            );
            let after = fs::read(&cfg).unwrap();
            let corrupt = w.kept_configs();
            let uuid = yaml_map(&after)
                .and_then(|m| m.get("project")?.get("uuid")?.as_str().map(str::to_string));
            if after != bytes {
                check_config_after(&bytes, &after, &corrupt, uuid.as_deref())?;
            }
            if !corrupt.is_empty() {
                prop_assert!(
                    stderr(&o).contains("config.yaml") && stderr(&o).contains("corrupt-"),
                    "the warning names the file and the kept copy: {}",
                    stderr(&o)
                );
            }
            // The next command changes nothing.
            prop_assert!(w.run(&["status"]).status.success());
            prop_assert_eq!(fs::read(&cfg).unwrap(), after);
            Ok(())
        })
        .unwrap();
}

#[test]
fn binary_commands_survive_any_credentials_file_and_never_rewrite_it() {
    // `$SPEC_KITTY_SYNC_HOME/credentials` (TOML, written by login): the CLI only
    // reads `[user] team_slug` from it. Whatever it holds, a lane change
    // works, the event's team is the file's (when it has a usable one) or
    // `local`, and the file keeps its bytes.
    let w = World::with_wps(1);
    let cred = w.home.join("credentials");
    let toml_ish = prop::collection::vec(
        prop::sample::select(vec![
            "[user]",
            "team_slug = \"acme\"",
            "team_slug = 42",
            "team_slug = [\"a\"]",
            "team_slug = \"\"",
            "username = \"me\"",
            "[tokens]",
            "access = \"tok\"",
            "refresh = \"tok",
            "[server]",
            "url = \"https://x.invalid\"",
            "[user.team_slug]",
            "user = 1",
            "# c",
            "",
            "= =",
            "[[user]]",
        ]),
        0..8,
    )
    .prop_map(|l| l.join("\n").into_bytes());
    let bytes = prop_oneof![
        3 => toml_ish,
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    let mut runner = TestRunner::new(cases(32));
    // Two lanes a move can toggle between without review feedback.
    let lanes = ["doing", "blocked"];
    let n = Cell::new(0usize);
    runner
        .run(&bytes, |bytes| {
            fs::write(&cred, &bytes).unwrap();
            w.clear_spool();
            let to = lanes[n.get() % 2];
            n.set(n.get() + 1);
            let o = w.run(&["agent", "tasks", "move-task", "WP01", "--to", to]);
            prop_assert!(
                o.status.success(),
                "credentials blocked work: {}",
                stderr(&o)
            );
            let evs = w.events();
            prop_assert_eq!(evs.len(), 1);
            let want = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .and_then(|t| {
                    t.get("user")?
                        .get("team_slug")?
                        .as_str()
                        .map(|s| s.trim().to_string())
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "local".into());
            prop_assert_eq!(&evs[0].team_slug, &want);
            prop_assert_eq!(fs::read(&cred).unwrap(), bytes, "credentials rewritten");
            Ok(())
        })
        .unwrap();
}
