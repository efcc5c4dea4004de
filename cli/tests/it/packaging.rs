//! What packagers ship from the CLI, through the real binary: the man pages
//! committed in `packaging/man/` match the clap tree (regenerated into a
//! temp dir and compared byte for byte), and `spec-kitty completions SHELL`
//! prints a script for every supported shell.
//!
//! When the grammar changes, regenerate the pages with
//! `cargo run -q -p spec-kitty -- man --dir packaging/man` (and delete pages
//! of removed commands); this test says so when they are stale.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty");

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/man")
}

/// File name → bytes of every `*.1` page in `dir`.
fn pages(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".1") {
            out.insert(name, fs::read(e.path()).unwrap());
        }
    }
    out
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run spec-kitty")
}

#[test]
fn committed_man_pages_match_the_clap_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh_dir = tmp.path().join("man");
    let o = run(&["man", "--dir", fresh_dir.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "man --dir failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fresh = pages(&fresh_dir);
    let committed = pages(&committed_dir());
    let regen = "regenerate with: cargo run -q -p spec-kitty -- man --dir packaging/man";
    let fresh_names: Vec<_> = fresh.keys().collect();
    let committed_names: Vec<_> = committed.keys().collect();
    assert_eq!(
        committed_names, fresh_names,
        "packaging/man/ has a different set of pages than the CLI generates; {regen} (and `git rm` pages of removed commands)"
    );
    for (name, bytes) in &fresh {
        assert!(
            committed[name] == *bytes,
            "packaging/man/{name} is stale relative to the clap tree; {regen}"
        );
    }
    // The top page and every command group are there, with real content.
    for must in [
        "spec-kitty.1",
        "spec-kitty-init.1",
        "spec-kitty-agent-tasks-move-task.1",
        "spec-kitty-completions.1",
    ] {
        assert!(fresh.contains_key(must), "{must} missing: {fresh_names:?}");
    }
    let top = String::from_utf8_lossy(&fresh["spec-kitty.1"]);
    assert!(
        top.starts_with(".ie \\n(.g .ds Aq") || top.contains(".TH"),
        "{top}"
    );
    assert!(top.contains("Exit codes"), "exit codes section: {top}");
    // The hidden generator itself gets no page.
    assert!(!fresh.contains_key("spec-kitty-man.1"));
}

#[test]
fn man_pages_regenerate_identically() {
    // Deterministic output is what makes the staleness check meaningful.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        assert!(run(&["man", "--dir", d.to_str().unwrap()]).status.success());
    }
    assert_eq!(pages(&a), pages(&b));
    // No temp files left behind.
    for e in fs::read_dir(&a).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(n.ends_with(".1"), "stray file {n}");
    }
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert!(
            o.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let script = String::from_utf8(o.stdout).unwrap();
        // (fish spells long flags `-l feature`.) The hidden `man`
        // generator is still completed by clap_complete's bash script:
        // harmless, so not asserted either way.
        for word in ["move-task", "add-history", "feature", "completions"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let o = run(&["completions", "bash"]);
    assert!(o.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("spec-kitty.bash");
    fs::write(&f, &o.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Sourcing it registers the completion function for spec-kitty.
    let reg = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p spec-kitty", f.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&reg.stdout).contains("spec-kitty"),
        "complete -p: {}{}",
        String::from_utf8_lossy(&reg.stdout),
        String::from_utf8_lossy(&reg.stderr)
    );
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tcsh") && err.contains("bash"),
        "names the bad value and the valid ones: {err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn package_deb_fills_every_placeholder_of_the_systemd_templates() {
    // scripts/package-deb fills @SYNCD@ and @SOCKET@ in systemd/*; a new
    // placeholder in the templates must be filled there too, or the
    // packaged unit would carry it (packaging/test-deb would catch that,
    // but only in its slow release-build run; this says so at once).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = fs::read_to_string(root.join("scripts/package-deb")).unwrap();
    let filled = ["@SYNCD@", "@SOCKET@"];
    for p in filled {
        assert!(
            script.contains(&format!("s|{p}|")),
            "package-deb no longer fills {p}"
        );
    }
    for unit in ["spec-kitty-syncd.service", "spec-kitty-syncd.socket"] {
        let text = fs::read_to_string(root.join("systemd").join(unit)).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut rest = line;
            while let Some(i) = rest.find('@') {
                let after = &rest[i + 1..];
                let Some(j) = after.find('@') else { break };
                let token = &after[..j];
                if !token.is_empty() && token.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                    let p = format!("@{token}@");
                    assert!(
                        filled.contains(&p.as_str()),
                        "systemd/{unit} uses {p}, which scripts/package-deb does not fill"
                    );
                }
                rest = &after[j + 1..];
            }
        }
    }
}
