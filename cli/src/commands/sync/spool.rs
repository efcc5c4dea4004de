//! The spool as the `sync` commands see it: the event files a hand-off
//! wrote while no daemon took them, waiting to be ingested.

use spec_kitty_protocol::Paths;
use std::path::PathBuf;

/// `spool/*.json` files waiting (names starting with `.` are temp files).
pub fn spool_backlog(paths: &Paths) -> u64 {
    spool_files(paths).len() as u64
}

/// The waiting spool files, sorted by name.
pub fn spool_files(paths: &Paths) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(paths.spool_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    !n.starts_with('.') && n.ends_with(".json") && e.path().is_file()
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
