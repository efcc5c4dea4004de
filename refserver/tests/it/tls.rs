//! `--tls` (throw-away CA written by `--ca-out`) and `--cert`/`--key`: the
//! server speaks https, a client trusting the CA gets answers, one that
//! does not is refused by certificate verification.

use crate::common;

use std::path::Path;

use common::{http_agent, Server};

fn projects_status(agent: &ureq::Agent, base: &str) -> Result<u16, String> {
    agent
        .get(&format!("{base}/api/v1/projects/"))
        .call()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[test]
fn tls_serves_https_with_the_ca_it_writes_and_only_that_ca_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let other_ca = dir.path().join("other.pem");
    let server = Server::start(&["--tls", "--ca-out", ca.to_str().unwrap()]);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    assert_eq!(
        projects_status(&http_agent(Some(&ca)), &server.base),
        Ok(200)
    );
    // localhost is in the certificate too.
    let localhost = server.base.replace("127.0.0.1", "localhost");
    assert_eq!(projects_status(&http_agent(Some(&ca)), &localhost), Ok(200));
    // Another run's CA does not verify this server.
    let _other = Server::start(&["--tls", "--ca-out", other_ca.to_str().unwrap()]);
    let err = projects_status(&http_agent(Some(&other_ca)), &server.base).unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

fn write_self_signed(dir: &Path) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

#[test]
fn cert_and_key_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_self_signed(dir.path());
    let server = Server::start(&["--cert", &cert, "--key", &key]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    assert_eq!(
        projects_status(&http_agent(Some(Path::new(&cert))), &server.base),
        Ok(200)
    );
}

#[test]
fn a_key_file_without_a_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = write_self_signed(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spec-kitty-refserver"))
        .args(["--port", "0", "--cert", &cert, "--key", &cert])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no listening line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--key") && err.contains("cert.pem"), "{err}");
}
