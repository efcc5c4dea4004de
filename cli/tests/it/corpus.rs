//! The real `kitty-specs/` tree of the spec-kitty project (2026-02-07),
//! read in place from the shared directory: every WP file must parse, show
//! its lane, and survive a lane change and back byte-for-byte.

use crate::common;

use common::*;
use spec_kitty::wpfile::{self, WpFile};
use spec_kitty_protocol::Lane;
use std::fs;
use std::path::PathBuf;

fn corpus_wp_files() -> Vec<PathBuf> {
    let root = corpus_dir();
    let mut out = Vec::new();
    for feat in fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
    {
        let tasks = feat.path().join("tasks");
        let Ok(rd) = fs::read_dir(&tasks) else {
            continue;
        };
        for f in rd.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with("WP") && name.ends_with(".md") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_wp_parses_and_every_lane_round_trip_restores_the_bytes() {
    let files = corpus_wp_files();
    assert!(
        files.len() >= 160,
        "corpus has ~170 WP files, found {}",
        files.len()
    );
    let mut by_lane = std::collections::BTreeMap::new();
    for path in &files {
        let original = fs::read_to_string(path).unwrap();
        let wp = WpFile::parse(path, original.clone()).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{}  {}",
            wp.meta.lane_written,
            path.strip_prefix(corpus_dir()).unwrap().display()
        );
        *by_lane.entry(wp.meta.lane_written.clone()).or_insert(0) += 1;
        let from = wp.meta.lane;
        for to in Lane::ALL.into_iter().filter(|l| *l != from) {
            let moved = wpfile::set_lane(&wp, wpfile::lane_for_file(to));
            let moved_wp =
                WpFile::parse(path, moved.clone()).unwrap_or_else(|e| panic!("after move: {e}"));
            assert_eq!(moved_wp.meta.lane, to, "{}", path.display());
            assert_eq!(
                diff_lines(&original, &moved),
                1,
                "only the lane line changes in {}",
                path.display()
            );
            let back = wpfile::set_lane(&moved_wp, &wp.meta.lane_written);
            assert_eq!(back, original, "{} {from} → {to} → back", path.display());
        }
        // With a history entry appended, the frontmatter still parses and
        // every original line is still there, in order.
        let hist = wpfile::append_history(
            path,
            &original,
            &wpfile::HistoryEntry {
                timestamp: "2026-02-08T00:00:00Z".into(),
                lane: "done".into(),
                agent: "test".into(),
                shell_pid: String::new(),
                action: "check".into(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        WpFile::parse(path, hist.clone()).unwrap_or_else(|e| panic!("after history: {e}"));
        assert!(is_subsequence(&original, &hist), "{}", path.display());
    }
    println!("lanes: {by_lane:?}");
}

fn diff_lines(a: &str, b: &str) -> usize {
    let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(la.len(), lb.len());
    la.iter().zip(&lb).filter(|(x, y)| x != y).count()
}

/// Every line of `a` appears in `b` in the same order.
fn is_subsequence(a: &str, b: &str) -> bool {
    let mut it = b.lines();
    a.lines().all(|l| it.any(|m| m == l))
}

#[test]
fn the_binary_shows_every_corpus_lane_and_moves_change_only_lane_and_history() {
    // A scratch copy in a temp project (the shared corpus is never written).
    let w = World::project();
    copy_tree(&corpus_dir(), &w.repo.join("kitty-specs"));
    w.clear_spool();
    let mut checked = 0;
    for feat in fs::read_dir(w.repo.join("kitty-specs")).unwrap().flatten() {
        let slug = feat.file_name().to_string_lossy().into_owned();
        let board = w.json(&["status", "--feature", &slug]);
        for path in fs::read_dir(feat.path().join("tasks"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("WP") || !name.ends_with(".md") {
                continue;
            }
            let wp = WpFile::read(&path).unwrap();
            let lane = wpfile::lane_for_file(wp.meta.lane);
            let ids: Vec<&str> = board["lanes"][lane]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["wp_id"].as_str().unwrap())
                .collect();
            assert!(
                ids.contains(&wp.meta.wp_id.as_str()),
                "{slug}/{name} shown in {lane}: {board}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 160);
    assert!(w.events().is_empty(), "status emits nothing");

    // One real WP per lane form: move with the binary and back. The
    // feature's log is bootstrapped from the frontmatter first (no wire
    // events for that), then each move is one event.
    let feedback = w.tmp.path().join("feedback.md");
    fs::write(&feedback, "**Issue**: corpus check\n").unwrap();
    let feedback = feedback.to_string_lossy().into_owned();
    for rel in [
        "032-identity-aware-cli-event-sync/tasks/WP01-project-identity-module.md",
        "005-refactor-mission-system/tasks/WP01-guards-module-preflight-validation.md",
    ] {
        let path = w.repo.join("kitty-specs").join(rel);
        assert!(path.is_file(), "{rel} in the corpus");
        let original = fs::read_to_string(&path).unwrap();
        let wp = WpFile::parse(&path, original.clone()).unwrap();
        let slug = rel.split('/').next().unwrap();
        let from = wp.meta.lane.as_wire();
        let to = if from == "blocked" {
            "planned"
        } else {
            "blocked"
        };
        for lane in [to, from] {
            w.ok(&move_task(
                &wp.meta.wp_id,
                lane,
                &[
                    "--feature",
                    slug,
                    "--force",
                    "--reason",
                    "corpus check",
                    "--review-feedback-file",
                    &feedback,
                    "--done-override-reason",
                    "corpus check",
                ],
            ));
        }
        let after = fs::read_to_string(&path).unwrap();
        // Every original line is kept in order, but the top-level lane and
        // review fields a move to done or planned sets.
        let own = |l: &str| {
            [
                "lane:",
                "review_status:",
                "reviewed_by:",
                "review_feedback:",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        };
        let kept: String = original
            .lines()
            .filter(|l| !own(l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            is_subsequence(&kept, &after),
            "{rel}: every original line kept in order"
        );
        let activity = after
            .lines()
            .filter(|l| {
                l.contains("– corpus check") || l.contains("lane=blocked – Moved to blocked")
            })
            .count();
        assert!(activity >= 1, "{rel}: activity lines added");
        let restored = WpFile::parse(&path, after).unwrap();
        assert_eq!(restored.meta.lane, wp.meta.lane);
        // The log holds the bootstrap and the two moves, and the snapshot
        // agrees with the file.
        let status: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(w.repo.join("kitty-specs").join(slug).join("status.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(status["work_packages"][&wp.meta.wp_id]["lane"], from);
    }
    assert_eq!(w.events().len(), 4);
}

/// The fast YAML reader on real documents: on every corpus WP frontmatter
/// it gives the full parser's value or leaves the file to it, and it reads
/// most of them itself (otherwise it saves nothing).
#[test]
fn the_fast_yaml_reader_agrees_with_the_full_parser_on_every_corpus_frontmatter() {
    let files = corpus_wp_files();
    let mut fast = 0;
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let wp = WpFile::parse(path, text).unwrap();
        let fm = wp.frontmatter();
        if let Some(v) = spec_kitty::yamltext::simple::parse(fm) {
            let full = spec_kitty::yamltext::full_parse(fm)
                .unwrap_or_else(|e| panic!("{}: the full parser refused it: {e}", path.display()));
            assert_eq!(v, full, "{}: the readers disagree", path.display());
            fast += 1;
        }
    }
    println!(
        "{fast} of {} frontmatters read by the fast path",
        files.len()
    );
    assert!(
        fast * 2 > files.len(),
        "only {fast} of {} corpus frontmatters took the fast path",
        files.len()
    );
}
