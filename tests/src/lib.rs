//! Harness for end-to-end tests: locating the workspace's built binaries,
//! isolated `SPEC_KITTY_HOME`s, temp git repositories, and processes that
//! are always stopped (bounded in time) when a test ends, even on failure.

use std::path::PathBuf;

/// Path of a binary built by this workspace (`spec-kitty`, `spec-kitty-syncd`,
/// `spec-kitty-refserver`), next to the test executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built; run the tests through cargo from the workspace root",
        path.display()
    );
    path
}

/// The shared contract directory (`../shared` beside the repository).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
}
