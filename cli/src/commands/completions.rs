//! `spec-kitty completions SHELL` and the hidden `spec-kitty man --dir DIR`:
//! shell completions and man pages, both generated from the clap tree in
//! [`crate::cli`] so they can never describe flags the binary does not have.
//!
//! Completions are printed (packagers redirect them into the shell's
//! directory; users can `source <(spec-kitty completions bash)`). Man pages
//! are committed under `packaging/man/` and regenerated with
//! `cargo run -p spec-kitty -- man --dir packaging/man`; a test fails when
//! the committed pages are stale. Output is deterministic (no dates), so a
//! regeneration without grammar changes is byte-identical.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::CliError;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Prints the completion script for `a.shell` on stdout.
pub fn completions(a: CompletionsArgs) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    // Render into memory first: clap_complete panics on a failed write,
    // and `spec-kitty completions bash | head` must not panic.
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "spec-kitty", &mut buf);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&buf).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io(format!("cannot write completions: {e}"))),
    }
}

/// Writes `spec-kitty.1` and one page per visible subcommand
/// (`spec-kitty-agent-tasks-move-task.1`, ...) into `a.dir`, and prints
/// the file names.
pub fn man(a: ManArgs) -> Result<(), CliError> {
    for name in write_man_pages(&a.dir)? {
        crate::output::print_line(&a.dir.join(name).display().to_string());
    }
    Ok(())
}

/// Renders every man page into `dir`; returns the file names written,
/// sorted. Each page is written whole to a temp name and renamed, so an
/// interrupted run never leaves a truncated page behind.
pub fn write_man_pages(dir: &Path) -> Result<Vec<String>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io_at("create", dir, &e))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, &mut pages);
    let mut names = Vec::new();
    for page in pages {
        let man = clap_mangen::Man::new(page);
        let name = man.get_filename();
        let mut text = Vec::new();
        man.render(&mut text)
            .map_err(|e| CliError::io(format!("cannot render man page {name}: {e}")))?;
        let path = dir.join(&name);
        spec_kitty_protocol::fsutil::write_atomic(&path, &text, None)
            .map_err(|e| CliError::io_at("write", &path, &e))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// `cmd` and every visible subcommand below it, depth first.
fn collect(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out);
    }
}
