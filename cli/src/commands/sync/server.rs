//! `spec-kitty sync server [URL]`: shows or sets `[sync] server_url` in
//! `$SPEC_KITTY_SYNC_HOME/config.toml`, the file the Python CLI reads too
//! (other keys kept).

use crate::cli::ServerArgs;
use crate::commands::auth::{configured_server_url, server_url, SERVER_URL_ENV};
use crate::error::CliError;
use crate::output::Out;
use serde_json::json;
use spec_kitty_protocol::credentials;

pub(super) fn run(out: &Out, a: ServerArgs) -> Result<(), CliError> {
    let paths = crate::commands::state_paths(out)?;
    let Some(url) = a.url else {
        let effective = server_url(&paths, None);
        let source = if std::env::var(SERVER_URL_ENV).is_ok_and(|v| !v.trim().is_empty()) {
            format!("${SERVER_URL_ENV}")
        } else if configured_server_url(&paths).is_some() {
            paths.config_toml().display().to_string()
        } else {
            "default".to_string()
        };
        if a.json {
            out.json(&json!({"server_url": effective, "source": source}));
        } else {
            out.line(&format!("{effective} (from {source})"));
        }
        return Ok(());
    };
    let url = url.trim().trim_end_matches('/').to_string();
    credentials::check_server_url(&url, a.insecure).map_err(CliError::invalid)?;
    let path = paths.config_toml();
    let mut doc: toml::Table = match std::fs::read_to_string(&path) {
        Ok(t) => t.parse().map_err(|_| {
            CliError::invalid(format!(
                "{} is not valid TOML; fix or remove it before setting the server",
                path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(CliError::io_at("read", &path, &e)),
    };
    let sync = doc
        .entry("sync")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(sync) = sync.as_table_mut() else {
        return Err(CliError::invalid(format!(
            "{}: `sync` is not a table",
            path.display()
        )));
    };
    sync.insert("server_url".into(), toml::Value::String(url.clone()));
    let text = toml::to_string(&doc).expect("a TOML table serialises");
    credentials::write_private(&path, text.as_bytes())
        .map_err(|e| CliError::io_at("write", &path, &e))?;
    if a.json {
        out.json(&json!({"server_url": url, "source": path.display().to_string()}));
    } else {
        out.line(&format!(
            "Server set to {url} in {}; log in to it with spec-kitty auth login.",
            path.display()
        ));
    }
    Ok(())
}
