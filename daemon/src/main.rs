//! `spec-kitty-syncd`: command-line entry of the per-user sync daemon.
//!
//! `spec-kitty-syncd run` serves in the foreground (systemd, launchd,
//! debugging); `run --spawned` is how the CLI auto-starts it: detached,
//! readiness (`READY ...` / `RUNNING ...` / `ERROR ...`) as one line on
//! stdout, then idle exit after `--idle-exit-secs`.

use clap::{Parser, Subcommand};
use spec_kitty_syncd::config;
use spec_kitty_syncd::daemon::{self, RunOptions};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "spec-kitty-syncd",
    version,
    about = "The spec-kitty per-user sync daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve until stopped (SIGTERM/SIGINT, `spec-kitty sync stop`, or idle exit when spawned).
    Run {
        /// Started by the spec-kitty CLI: detach from the terminal, report
        /// readiness as one line on stdout, exit when idle.
        #[arg(long)]
        spawned: bool,
        /// Idle exit after this many seconds without clients (only with
        /// --spawned; 0 = never). Default 600.
        #[arg(long, env = config::IDLE_EXIT_ENV)]
        idle_exit_secs: Option<u64>,
        /// Commit every event in its own transaction (benchmarks only).
        #[arg(long, hide = true)]
        no_group_commit: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run {
            spawned,
            idle_exit_secs,
            no_group_commit,
        } => {
            let idle_exit = match idle_exit_secs {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None => Some(config::DEFAULT_IDLE_EXIT),
            };
            daemon::run(RunOptions {
                spawned,
                idle_exit,
                group_commit: !no_group_commit,
            })
        }
    };
    std::process::exit(code);
}
