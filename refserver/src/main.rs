//! `spec-kitty-refserver`: starts the reference server on 127.0.0.1 and
//! prints exactly one line, `listening on http://127.0.0.1:PORT` (`https://`
//! with `--tls` or `--cert`), on stdout
//! once it accepts connections, so tests and the demo can parse the port.
//! SIGTERM or SIGINT shut it down cleanly (WebSockets get a close frame).

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use spec_kitty_refserver::Config;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let scheme = if config.tls || config.cert.is_some() {
        "https"
    } else {
        "http"
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop_tx.send(());
            // A second signal, or a shutdown that hangs, ends the process at once.
            tokio::select! {
                _ = wait_for_signal() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            std::process::exit(0);
        });
        spec_kitty_refserver::run(
            config,
            async move {
                let _ = stop_rx.await;
            },
            |addr| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "listening on {scheme}://{addr}");
                let _ = out.flush();
            },
        )
        .await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
