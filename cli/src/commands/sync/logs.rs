//! `spec-kitty sync logs [-f] [-n N]`: the newest daemon log file, its
//! last lines, and (with `-f`) what is written after them.

use crate::cli::SyncLogsArgs;
use crate::error::CliError;
use spec_kitty_protocol::Paths;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

/// The newest `syncd*` file in the log directory (daily rotation).
pub fn newest_log(paths: &Paths) -> Option<PathBuf> {
    std::fs::read_dir(paths.log_dir())
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("syncd") && e.path().is_file())
        .max_by_key(|e| (e.metadata().and_then(|m| m.modified()).ok(), e.file_name()))
        .map(|e| e.path())
}

fn tail(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let t = text.strip_suffix('\n').unwrap_or(text);
    match t.rmatch_indices('\n').nth(n - 1) {
        Some((i, _)) => &text[i + 1..],
        None => text,
    }
}

pub(super) fn run(paths: &Paths, a: SyncLogsArgs) -> Result<(), CliError> {
    let Some(mut file) = newest_log(paths) else {
        return Err(CliError::io(format!(
            "no daemon log files in {} (the daemon writes them once it has run)",
            paths.log_dir().display()
        )));
    };
    let bytes = std::fs::read(&file).map_err(|e| CliError::io_at("read", &file, &e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(tail(&text, a.lines).as_bytes());
    let _ = stdout.flush();
    if !a.follow {
        return Ok(());
    }
    let mut pos = bytes.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if let Some(newer) = newest_log(paths).filter(|n| *n != file) {
            file = newer;
            pos = 0;
        }
        let Ok(mut f) = std::fs::File::open(&file) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < pos {
            pos = 0; // truncated
        }
        if len > pos && f.seek(SeekFrom::Start(pos)).is_ok() {
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_ok() {
                pos += buf.len() as u64;
                if stdout.write_all(&buf).and_then(|_| stdout.flush()).is_err() {
                    return Ok(()); // reader went away (e.g. `| head`)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a\n");
        assert_eq!(tail("a\nb\n", 0), "");
    }
}
