//! The test layout itself: each crate's integration tests are one binary,
//! `CRATE/tests/it/main.rs`. A file left in `CRATE/tests/` would link a
//! binary of its own again, and a file in `tests/it/` that `main.rs` does
//! not declare is never compiled: its tests would vanish without a failure.

use std::collections::BTreeSet;
use std::path::Path;

const CRATES: [&str; 5] = ["protocol", "cli", "daemon", "e2e", "refserver"];

/// The `mod NAME;` lines of a `main.rs`.
fn declared(main: &str) -> BTreeSet<String> {
    main.lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_crate_has_one_test_binary_that_declares_every_topic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in CRATES {
        let tests = root.join(krate).join("tests");
        let stray: Vec<String> = std::fs::read_dir(&tests)
            .unwrap_or_else(|e| panic!("{}: {e}", tests.display()))
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".rs"))
            .collect();
        assert!(
            stray.is_empty(),
            "{krate}/tests/ holds {stray:?}: move them into {krate}/tests/it/ and add `mod NAME;` to its main.rs (`mod common;` becomes `use crate::common;`)"
        );
        let it = tests.join("it");
        let main = std::fs::read_to_string(it.join("main.rs"))
            .unwrap_or_else(|e| panic!("{}/main.rs: {e}", it.display()));
        let mut present = BTreeSet::new();
        for e in std::fs::read_dir(&it).unwrap().filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(m) = name.strip_suffix(".rs") {
                if m != "main" {
                    present.insert(m.to_string());
                }
            } else if e.path().join("mod.rs").is_file() {
                present.insert(name);
            }
        }
        let declared = declared(&main);
        let missing: Vec<_> = present.difference(&declared).collect();
        assert!(
            missing.is_empty(),
            "{krate}/tests/it/main.rs does not declare {missing:?}: their tests never run"
        );
    }
}
