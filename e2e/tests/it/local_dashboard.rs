//! `spec-kitty dashboard`: the project's local web dashboard, driven in a
//! real headless Chromium (Debian's `chromium`, installed by
//! scripts/setup-test-deps) over the DevTools protocol, so a test can keep
//! one page open while the CLI changes the files and read the live DOM.
//!
//! Every dashboard a test starts is stopped by a guard (`--kill`, then
//! SIGKILL of the recorded pid), and every browser is killed on drop.

use serde_json::{json, Value};
use spec_kitty_e2e::{chromium, shared_dir, signal, wait_for, Sandbox, CHROMIUM_FLAGS};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Chromium over the DevTools protocol

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args(CHROMIUM_FLAGS)
            .args(["--remote-debugging-port=0", "about:blank"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address");
        let hostport = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let stream = TcpStream::connect(&hostport).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools websocket");
        Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
        }
    }

    /// One DevTools command (on a page session when given); its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().expect("DevTools message");
            let Ok(text) = m.into_text() else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    fn open(&mut self, url: &str) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": url}));
        let tid = target["targetId"].as_str().unwrap().to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": tid, "flatten": true}),
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        Page {
            browser: self,
            session,
        }
    }
}

struct Page<'a> {
    browser: &'a mut Browser,
    session: String,
}

impl Page<'_> {
    /// Evaluates `expr` in the page: its JSON value, or the exception.
    fn try_eval(&mut self, expr: &str) -> Result<Value, Value> {
        let r = self.browser.call(
            Some(&self.session.clone()),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        match r.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Evaluates `expr` in the page; its JSON value (exceptions fail).
    fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr)
            .unwrap_or_else(|e| panic!("{expr} threw: {e}"))
    }

    /// Polls `expr` until it is true; how long that took, or `None` after
    /// `limit`.
    fn wait_true(&mut self, expr: &str, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        loop {
            // Still loading (elements missing) counts as not yet.
            if self.try_eval(expr) == Ok(json!(true)) {
                return Some(t0.elapsed());
            }
            if t0.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn must(&mut self, what: &str, expr: &str) {
        if self.wait_true(expr, Duration::from_secs(20)).is_none() {
            let body = self.eval("document.body.innerText.slice(0, 3000)");
            panic!("timed out waiting for {what} ({expr}); page text:\n{body}");
        }
    }
}

// ---------------------------------------------------------------------------
// Dashboard helpers

/// Stops the project's dashboard on drop, even when the test failed.
struct Dashboard<'a> {
    sb: &'a Sandbox,
    project: PathBuf,
    port: u16,
    pid: u32,
}

impl Drop for Dashboard<'_> {
    fn drop(&mut self) {
        let _ = self
            .sb
            .cli(&self.project)
            .args(["dashboard", "--kill"])
            .output();
        if pid_alive(self.pid) {
            signal(self.pid, libc::SIGKILL);
        }
    }
}

impl Dashboard<'_> {
    fn start<'a>(sb: &'a Sandbox, project: &Path) -> Dashboard<'a> {
        let out = sb.sk(project, &["dashboard", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("dashboard --json");
        Dashboard {
            sb,
            project: project.to_path_buf(),
            port: v["port"].as_u64().unwrap() as u16,
            pid: v["pid"].as_u64().unwrap() as u32,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (code, body) = http(self.port, "GET", path, &format!("127.0.0.1:{}", self.port));
        (
            code,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
}

fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// A raw HTTP/1.1 request (so the test controls the Host header).
fn http(port: u16, method: &str, path: &str, host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::write(&t, std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

fn corpus() -> PathBuf {
    shared_dir().join("corpus/spec-kitty-2026-02-07")
}

/// A project whose kitty-specs/ is a copy of the shared corpus.
fn corpus_project(sb: &Sandbox) -> PathBuf {
    let dir = sb.git_repo("corpus-proj", None);
    sb.sk(&dir, &["init", "--here"]);
    let specs = dir.join("kitty-specs");
    let _ = std::fs::remove_dir_all(&specs);
    copy_tree(&corpus(), &specs);
    dir
}

/// The lane each corpus WP file's frontmatter names (`doing` read as
/// in_progress), by (feature, WP id): read here independently of the CLI.
fn corpus_lanes() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(corpus()).unwrap().flatten() {
        let slug = f.file_name().to_string_lossy().into_owned();
        for wp in std::fs::read_dir(f.path().join("tasks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = wp.file_name().to_string_lossy().into_owned();
            if !name.starts_with("WP") || !name.ends_with(".md") {
                continue;
            }
            let text = std::fs::read_to_string(wp.path()).unwrap();
            let fm = text.split("\n---").next().unwrap();
            let lane = fm
                .lines()
                .find_map(|l| l.strip_prefix("lane:"))
                .map(|l| {
                    l.split('#')
                        .next()
                        .unwrap()
                        .trim()
                        .trim_matches(['"', '\''])
                        .to_string()
                })
                .unwrap_or_else(|| "planned".into());
            let lane = if lane == "doing" {
                "in_progress".into()
            } else {
                lane
            };
            let id = fm
                .lines()
                .find_map(|l| l.strip_prefix("work_package_id:"))
                .map(|l| l.trim().trim_matches(['"', '\'']).to_string())
                .unwrap_or_else(|| name[..4].to_string());
            out.push((slug.clone(), id, lane));
        }
    }
    out
}

const CARDS_JS: &str = "JSON.stringify([...document.querySelectorAll('section.feature .card')].map(c => [c.closest('section').dataset.featureSlug, c.dataset.wpId, c.closest('.lane').dataset.lane]))";

// ---------------------------------------------------------------------------
// Tests

#[test]
fn the_page_shows_every_corpus_feature_and_each_wp_in_its_lane() {
    let sb = Sandbox::new();
    let project = corpus_project(&sb);
    let dash = Dashboard::start(&sb, &project);
    let expected = corpus_lanes();
    assert!(expected.len() >= 160, "corpus WPs: {}", expected.len());
    let features = std::fs::read_dir(corpus()).unwrap().count();
    assert!(features >= 29, "corpus features: {features}");

    let mut browser = Browser::launch();
    let mut page = browser.open(&dash.url());
    page.must(
        "every card on the page",
        &format!(
            "document.querySelectorAll('section.feature .card').length === {}",
            expected.len()
        ),
    );
    let shown: Vec<(String, String, String)> =
        serde_json::from_str(page.eval(CARDS_JS).as_str().unwrap()).unwrap();
    for e in &expected {
        assert!(shown.contains(e), "{e:?} not on the page in that lane");
    }
    let sections = page.eval("document.querySelectorAll('section.feature').length");
    assert_eq!(
        sections,
        json!(features),
        "every feature, with or without WPs"
    );
    // Empty lanes are folded, used ones are not.
    let folded = page.eval("[...document.querySelectorAll('section.feature .lane')].every(l => l.classList.contains('folded') === (l.querySelectorAll('.card').length === 0))");
    assert_eq!(folded, json!(true));
    assert_eq!(
        page.eval("document.querySelectorAll('.error-card').length"),
        json!(0),
        "the corpus reads without errors"
    );
    // The detail view: timeline (WP history, the corpus has no status
    // log) and the spec rendered as HTML.
    let slug = "032-identity-aware-cli-event-sync";
    page.eval(&format!("location.hash = '#/f/{slug}'; true"));
    page.must(
        "the timeline of 032",
        "document.querySelectorAll('#detail-body .timeline li').length > 0",
    );
    page.eval(&format!("location.hash = '#/f/{slug}/spec'; true"));
    page.must(
        "the rendered spec",
        "!!document.querySelector('#detail-body article.doc h1')",
    );
    assert_eq!(
        page.eval("document.querySelector('#detail-body article.doc script') === null"),
        json!(true)
    );
    // No daemon has run in this sandbox's home.
    page.must(
        "the sync panel",
        "document.getElementById('sync').dataset.daemon === 'not running'",
    );
    let sync_text = page.eval("document.getElementById('sync').innerText");
    assert!(
        sync_text.as_str().unwrap().contains("no daemon running"),
        "{sync_text}"
    );
}

#[test]
fn a_move_task_while_the_page_is_open_moves_the_card_within_a_second_without_reload() {
    let sb = Sandbox::new();
    let project = sb.project("live", "live-board");
    sb.sk(&project, &["tasks", "add", "Second work package"]);
    let dash = Dashboard::start(&sb, &project);
    let mut browser = Browser::launch();
    let mut page = browser.open(&dash.url());
    let card = "document.querySelector('section.feature .card[data-wp-id=\"WP01\"]')";
    page.must(
        "WP01 in planned",
        &format!("!!{card} && {card}.closest('.lane').dataset.lane === 'planned'"),
    );
    page.must(
        "the live stream",
        "document.getElementById('live').dataset.state === 'live'",
    );
    // Marks that a reload would erase: one on the window, one on the card.
    page.eval(&format!(
        "window.__noReload = 42; {card}.__same = true; true"
    ));

    sb.sk(
        &project,
        &["agent", "tasks", "move-task", "WP01", "--to", "doing"],
    );
    let moved = format!("{card}.closest('.lane').dataset.lane === 'in_progress'");
    let took = page.wait_true(&moved, Duration::from_secs(1));
    if took.is_none() {
        let late = page.wait_true(&moved, Duration::from_secs(10));
        panic!("the card did not move within 1 s of move-task (moved after: {late:?})");
    }
    assert_eq!(
        page.eval("window.__noReload"),
        json!(42),
        "the page reloaded"
    );
    assert_eq!(
        page.eval(&format!("{card}.__same === true")),
        json!(true),
        "the card was rebuilt instead of moved"
    );
    assert_eq!(
        page.eval(
            "document.querySelector('.card[data-wp-id=\"WP02\"]').closest('.lane').dataset.lane"
        ),
        json!("planned")
    );
    let lane = page.eval("document.querySelector('section.feature .lane[data-lane=\"in_progress\"]').classList.contains('folded')");
    assert_eq!(lane, json!(false), "the used lane unfolds");
    // The project's commands started the sync daemon: the panel shows it.
    page.must(
        "the sync panel with the daemon",
        "document.getElementById('sync').dataset.daemon === 'running'",
    );
}

#[test]
fn kill_stops_the_server_and_clears_the_record_and_a_stale_record_is_replaced() {
    let sb = Sandbox::new();
    let project = sb.project("killme", "kill-test");
    let record = project.join(".kittify/.dashboard");

    // A stale record: a pid that is gone and a port nobody serves.
    let gone = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    std::fs::write(&record, format!("http://127.0.0.1:1\n1\nstale\n{gone}\n")).unwrap();
    let dash = Dashboard::start(&sb, &project);
    assert_ne!(dash.pid, gone);
    let text = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("http://127.0.0.1:{}", dash.port));
    assert_eq!(lines[1], dash.port.to_string());
    assert_eq!(lines[2].len(), 32, "a fresh token: {text}");
    assert_eq!(lines[3], dash.pid.to_string());
    // `init` keeps the record (and its token) out of git.
    let ignored = Command::new("git")
        .args(["check-ignore", "-q", ".kittify/.dashboard"])
        .current_dir(&project)
        .status()
        .unwrap();
    assert!(ignored.success(), "git would commit .kittify/.dashboard");

    // A second call finds it.
    let again: Value =
        serde_json::from_slice(&sb.sk(&project, &["dashboard", "--json"]).stdout).unwrap();
    assert_eq!(again["started"], json!(false));
    assert_eq!(again["port"], json!(dash.port));

    // A page is open while it is killed.
    let mut browser = Browser::launch();
    let mut page = browser.open(&dash.url());
    page.must(
        "the live stream",
        "document.getElementById('live').dataset.state === 'live'",
    );
    let (code, _) = http(
        dash.port,
        "GET",
        "/api/shutdown?token=wrong",
        &format!("127.0.0.1:{}", dash.port),
    );
    assert_eq!(code, 403, "a wrong token does not stop it");

    let out = sb.sk(&project, &["dashboard", "--kill", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stopped"], json!(true), "{v}");
    assert!(!record.exists(), "record cleared");
    wait_for("the dashboard process to exit", || {
        (!pid_alive(dash.pid)).then_some(())
    });
    assert!(
        TcpStream::connect(("127.0.0.1", dash.port)).is_err(),
        "nothing listens on the port"
    );
    page.must(
        "the page to notice",
        "['reconnecting', 'stopped'].includes(document.getElementById('live').dataset.state)",
    );
    let second = sb.sk(&project, &["dashboard", "--kill", "--json"]);
    let v: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(v["stopped"], json!(false));
    assert_eq!(v["message"], json!("No dashboard metadata found."));
}

#[test]
fn a_broken_wp_file_and_a_broken_log_show_as_error_cards_naming_the_file() {
    let sb = Sandbox::new();
    let project = sb.project("broken", "broken-files");
    sb.sk(&project, &["tasks", "add", "Second work package"]);
    let dash = Dashboard::start(&sb, &project);
    let mut browser = Browser::launch();
    let mut page = browser.open(&dash.url());
    page.must(
        "both cards",
        "document.querySelectorAll('section.feature .card').length === 2",
    );
    let feature = project.join("kitty-specs/001-broken-files");
    let wp2 = std::fs::read_dir(feature.join("tasks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("WP02"))
        .unwrap();
    let wp2_rel = wp2.strip_prefix(&project).unwrap().display().to_string();
    std::fs::write(&wp2, "---\nlane: [unclosed\n---\n# broken\n").unwrap();
    std::fs::write(
        feature.join("status.events.jsonl"),
        "{\"event_id\": \"01A\", \"this is\": not json}\n",
    )
    .unwrap();
    page.must(
        "the WP02 error card",
        &format!("!!document.querySelector('.error-card[data-file=\"{wp2_rel}\"]')"),
    );
    page.must(
        "the log error card",
        "!!document.querySelector('.error-card[data-file=\"kitty-specs/001-broken-files/status.events.jsonl\"]')",
    );
    let text = page.eval(&format!(
        "document.querySelector('.error-card[data-file=\"{wp2_rel}\"]').innerText"
    ));
    assert!(
        text.as_str().unwrap().contains(&wp2_rel),
        "names the file: {text}"
    );
    let log_text = page.eval(
        "document.querySelector('.error-card[data-file$=\"status.events.jsonl\"]').innerText",
    );
    assert!(
        log_text.as_str().unwrap().contains("status.events.jsonl:1"),
        "names file and line: {log_text}"
    );
    // The good WP stays on the board; the server still answers.
    assert_eq!(
        page.eval("document.querySelectorAll('section.feature .card').length"),
        json!(1)
    );
    assert_eq!(dash.get("/api/health").0, 200);
}

#[test]
fn the_json_endpoints_answer_with_their_keys_and_refuse_what_they_must() {
    let sb = Sandbox::new();
    let project = sb.project("api", "api-check");
    std::fs::write(
        project.join("kitty-specs/001-api-check/spec.md"),
        "# Spec <script>alert(1)</script>\n\nSome **bold** text.\n",
    )
    .unwrap();
    sb.sk(
        &project,
        &["agent", "tasks", "move-task", "WP01", "--to", "doing"],
    );
    let dash = Dashboard::start(&sb, &project);
    let host = format!("127.0.0.1:{}", dash.port);

    let (code, health) = dash.get("/api/health");
    assert_eq!(code, 200);
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(
        std::fs::canonicalize(health["project_path"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&project).unwrap()
    );
    assert_eq!(health["pid"], json!(dash.pid));
    let record = std::fs::read_to_string(project.join(".kittify/.dashboard")).unwrap();
    assert_eq!(health["token"].as_str(), record.lines().nth(2));

    let (code, board) = dash.get("/api/board");
    assert_eq!(code, 200);
    let f = &board["features"][0];
    assert_eq!(f["slug"], json!("001-api-check"));
    assert_eq!(f["wps"][0]["id"], json!("WP01"));
    assert_eq!(f["wps"][0]["lane"], json!("in_progress"));
    assert_eq!(f["counts"]["in_progress"], json!(1));
    for key in ["title", "agent", "since", "dependencies", "review", "file"] {
        assert!(f["wps"][0].get(key).is_some(), "card key {key}: {f}");
    }
    assert!(f["wps"][0]["since"].is_string(), "age in lane known: {f}");
    assert!(board["sync"]["daemon"].is_string(), "{board}");

    let (code, legacy) = dash.get("/api/features");
    assert_eq!(code, 200);
    assert_eq!(legacy["features"][0]["id"], json!("001-api-check"));
    assert_eq!(legacy["features"][0]["kanban_stats"]["doing"], json!(1));

    let (code, detail) = dash.get("/api/feature/001-api-check");
    assert_eq!(code, 200);
    let tl = detail["timeline"].as_array().unwrap();
    assert!(
        tl.iter().any(|e| e["wp_id"] == json!("WP01")
            && (e["to"] == json!("in_progress") || e["to"] == json!("doing"))),
        "the move is on the timeline: {detail}"
    );

    let (code, doc) = dash.get("/api/doc/001-api-check/spec");
    assert_eq!(code, 200);
    let html = doc["html"].as_str().unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("<strong>bold</strong>"), "{html}");

    assert_eq!(dash.get("/api/doc/001-api-check/plan").0, 404);
    assert_eq!(dash.get("/api/feature/999-nope").0, 404);
    assert_eq!(dash.get("/api/doc/..%2F..%2F.kittify/spec").0, 404);
    assert_eq!(dash.get("/api/doc/001-api-check/../../x").0, 404);
    assert_eq!(
        http(dash.port, "GET", "/api/board", "evil.example:80").0,
        403,
        "a rebound host name is refused"
    );
    assert_eq!(http(dash.port, "DELETE", "/api/board", &host).0, 405);

    // The page and its assets, with a policy that forbids inline script.
    let mut s = TcpStream::connect(("127.0.0.1", dash.port)).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"));
    assert!(page.contains("/static/app.js"));
    assert_eq!(http(dash.port, "GET", "/static/app.js", &host).0, 200);
    assert!(
        page.contains("name=\"dashboard-instance\" content=\"") && !page.contains("{{INSTANCE}}"),
        "{page}"
    );
    assert_eq!(
        http(dash.port, "GET", "/events?instance=another", &host).0,
        409,
        "a page of another dashboard is refused"
    );

    // The server holds no lock of any kind (flock, POSIX, lease): it never
    // stands in a command's way.
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    let pid = dash.pid.to_string();
    let held: Vec<&str> = locks
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(pid.as_str()))
        .collect();
    assert!(held.is_empty(), "the dashboard holds locks: {held:?}");

    // The event stream starts with the whole board.
    let mut s = TcpStream::connect(("127.0.0.1", dash.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut got = String::new();
    while !got.contains("event: board\ndata: ") {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended: {got}");
        got.push_str(&line);
    }
    assert!(got.contains("text/event-stream"), "{got}");
}

#[test]
fn an_idle_dashboard_exits_by_itself_and_clears_its_record() {
    let mut sb = Sandbox::new();
    sb.set_env("SPEC_KITTY_DASHBOARD_IDLE_SECS", "1");
    let project = sb.project("idle", "idle-exit");
    let dash = Dashboard::start(&sb, &project);
    wait_for("the idle dashboard to exit", || {
        (!pid_alive(dash.pid)).then_some(())
    });
    wait_for("its record to be cleared", || {
        (!project.join(".kittify/.dashboard").exists()).then_some(())
    });
}

#[test]
fn the_sync_panel_shows_sent_and_parked_events_with_the_servers_reason() {
    let rs = spec_kitty_e2e::RefServer::start(&["--user", "alice:secret:team-a"]);
    let sb = Sandbox::new();
    let login = sb.login(&rs.base, "alice", "secret");
    assert!(login.status.success(), "{login:?}");
    sb.stop_daemon();
    // Events spooled first, then sent in one batch whose answer refuses
    // the WP02 events (the refserver's partial_400 fault).
    let dir = sb.git_repo("parked", None);
    sb.sk(&dir, &["init", "--here"]);
    spec_kitty_e2e::sync::set_auto_start(&dir, false);
    sb.sk(&dir, &["specify", "parked-events"]);
    sb.sk(&dir, &["tasks", "add", "One"]);
    sb.sk(&dir, &["tasks", "add", "Two"]);
    let (status, reply) = rs.post("/__control/faults", None, &json!({"partial_400": "WP02"}));
    assert_eq!(status, 200, "{reply}");
    let dash = Dashboard::start(&sb, &dir);
    let sync = wait_for("the batch to be sent and answered", || {
        sb.sk(sb.root(), &["sync", "now", "--wait", "--json"]);
        let (_, v) = dash.get("/api/sync");
        (v["queued"] == json!(0) && !v["parked"].as_array()?.is_empty()).then_some(v)
    });
    assert_eq!(sync["daemon"], json!("running"), "{sync}");
    assert!(
        sync["sent"].as_u64().unwrap() >= 2,
        "FeatureCreated, WP01: {sync}"
    );
    let reason = sync["parked"][0]["reason"].as_str().unwrap().to_string();
    assert!(!reason.is_empty(), "{sync}");
    assert_eq!(sync["auth"]["logged_in"], json!(true), "{sync}");
    assert!(sync["connection"]["state"].is_string(), "{sync}");

    let mut browser = Browser::launch();
    let mut page = browser.open(&dash.url());
    page.must(
        "the parked count",
        "(document.querySelector('#sync [data-key=parked] .v') || {}).textContent > '0'",
    );
    // In the folded "parked events" list: textContent, not innerText.
    let text = page.eval("document.getElementById('sync').textContent");
    assert!(
        text.as_str().unwrap().contains(&reason),
        "the server's reason on the page: {text}"
    );
}

#[test]
fn a_dashboard_whose_project_is_deleted_exits() {
    let sb = Sandbox::new();
    let project = sb.project("doomed", "deleted-project");
    let dash = Dashboard::start(&sb, &project);
    assert_eq!(dash.get("/api/health").0, 200);
    std::fs::remove_dir_all(&project).unwrap();
    wait_for("the dashboard of a deleted project to exit", || {
        (!pid_alive(dash.pid)).then_some(())
    });
}

#[test]
fn a_record_planted_as_a_link_out_of_the_repository_is_refused_and_nothing_is_written_there() {
    let sb = Sandbox::new();
    let project = sb.project("planted", "planted-record");
    let outside = sb.root().join("outside-victim");
    let record = project.join(".kittify/.dashboard");
    std::os::unix::fs::symlink(&outside, &record).unwrap();
    let run = |args: &[&str]| sb.cli(&project).args(args).output().unwrap();
    // A dangling link is refused as such (exit 4), naming the record.
    let out = run(&["dashboard", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".kittify/.dashboard"), "{err}");
    assert!(!outside.exists(), "nothing created outside the repository");
    // An existing file behind the link is neither read as a record nor
    // changed (exit 5, the link rule).
    std::fs::write(&outside, "victim\n").unwrap();
    for args in [&["dashboard"][..], &["dashboard", "--kill"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("outside the repository"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "victim\n");
}

#[test]
fn a_page_of_a_stopped_dashboard_never_attaches_to_the_next_one_on_its_port() {
    let sb = Sandbox::new();
    let first = sb.project("first", "first-project");
    let second = sb.project("second", "second-project");
    let a = Dashboard::start(&sb, &first);
    let mut browser = Browser::launch();
    let mut page = browser.open(&a.url());
    page.must(
        "the first project's board",
        "!!document.querySelector('section[data-feature-slug=\"001-first-project\"]') && document.getElementById('live').dataset.state === 'live'",
    );
    sb.sk(&first, &["dashboard", "--kill"]);
    // The second project's dashboard on the very same port.
    let out = sb.sk(
        &second,
        &["dashboard", "--json", "--port", &a.port.to_string()],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = Dashboard {
        sb: &sb,
        project: second.clone(),
        port: v["port"].as_u64().unwrap() as u16,
        pid: v["pid"].as_u64().unwrap() as u32,
    };
    assert_eq!(b.port, a.port, "the port was free again");
    page.must(
        "the page to stop instead of following the port",
        "document.getElementById('live').dataset.state === 'stopped'",
    );
    assert_eq!(
        page.eval("!!document.querySelector('section[data-feature-slug=\"001-second-project\"]')"),
        json!(false),
        "the second project's board leaked into the first one's page"
    );
}
