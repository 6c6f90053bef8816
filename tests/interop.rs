//! Interoperability with a REQUIRETLS server nobody here wrote: nodemailer's
//! npm package `smtp-server` (pinned in tests/interop/package-lock.json),
//! started by the test on 127.0.0.1 with a certificate from the test CA.
//!
//! The peer needs Node.js and `npm ci` in tests/interop (done on first use
//! when npm is there). Where it cannot run, the test fails under CI (`CI`
//! set, as .ci/run does) and is skipped with a printed notice elsewhere.
//!
//! Known deviations of the peer: none that these tests touch.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::support::{CertKind, Tlsend, pki};

const MESSAGE: &str =
    "From: alice@example.org\nTo: bob@example.net\nSubject: interop\n\nHello from tlsend.\n";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Makes sure node and the pinned smtp-server are there; `Err` says why not.
fn peer_ready() -> Result<(), String> {
    static READY: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(result) = ready.as_ref() {
        return result.clone();
    }
    let result = (|| {
        let node = Command::new("node").arg("--version").output();
        if !node.is_ok_and(|o| o.status.success()) {
            return Err("node is not installed".to_string());
        }
        if !interop_dir().join("node_modules/smtp-server").is_dir() {
            let npm = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(interop_dir())
                .output()
                .map_err(|e| format!("npm is not available: {e}"))?;
            if !npm.status.success() {
                return Err(format!(
                    "npm ci failed: {}",
                    String::from_utf8_lossy(&npm.stderr)
                ));
            }
        }
        Ok(())
    })();
    *ready = Some(result.clone());
    result
}

/// True when the test should go on; prints why not otherwise.
fn require_peer(test: &str) -> bool {
    match peer_ready() {
        Ok(()) => true,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: interop peer unavailable under CI: {why}")
        }
        Err(why) => {
            eprintln!("NOTICE: {test} skipped: {why} (run `npm ci` in tests/interop)");
            false
        }
    }
}

/// A running smtp-server; its events arrive as JSON lines.
struct NodeServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    events: mpsc::Receiver<Value>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl NodeServer {
    fn start(hide_requiretls: bool) -> NodeServer {
        let (cert, key) = pki().pem_files(CertKind::Valid);
        let options =
            serde_json::json!({ "key": key, "cert": cert, "hideREQUIRETLS": hide_requiretls });
        let mut child = Command::new("node")
            .arg(interop_dir().join("smtp-server.mjs"))
            .arg(options.to_string())
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("smtp-server did not start");
        assert_eq!(first["event"], "listening", "{first}");
        let port = first["port"].as_u64().unwrap() as u16;
        NodeServer {
            stdin: child.stdin.take(),
            child,
            port,
            events: rx,
            reader: Some(reader),
        }
    }

    /// Stops the server (it exits when its stdin closes) and returns every
    /// event it reported, so nothing can still be in flight.
    fn finish(mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let _ = self.reader.take().map(|r| r.join());
        let _ = self.child.wait();
        self.events.try_iter().collect()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tlsend_to(server: &NodeServer, flags: &[&str]) -> crate::support::Output {
    let mut tlsend = Tlsend::new();
    tlsend
        .args(["-C", "/dev/null", "--host", "localhost", "--timeout", "10"])
        .arg("--port")
        .arg(server.port.to_string())
        .env("SSL_CERT_FILE", pki().ca_file())
        .args(flags)
        .args(["-f", "alice@example.org", "bob@example.net"])
        .stdin(MESSAGE);
    tlsend.run()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

// covers: SUB3, SUB4
#[test]
fn interop_smtp_server_require_mode_delivers_with_requiretls_under_tls() {
    if !require_peer("interop_smtp_server_require_mode_delivers_with_requiretls_under_tls") {
        return;
    }
    let server = NodeServer::start(false);
    let output = tlsend_to(&server, &["--require-tls"]);
    let events = server.finish();
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let mail = of_kind(&events, "mail");
    assert_eq!(mail.len(), 1, "{events:?}");
    assert_eq!(mail[0]["args"]["REQUIRETLS"], true, "{}", mail[0]);
    assert_eq!(
        mail[0]["secure"], true,
        "MAIL FROM arrived without TLS: {}",
        mail[0]
    );
    let messages = of_kind(&events, "message");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["requireTLS"], true);
    assert_eq!(messages[0]["secure"], true);
}

// covers: SUB3, FAIL1
#[test]
fn interop_smtp_server_without_requiretls_is_refused_with_5_7_30() {
    if !require_peer("interop_smtp_server_without_requiretls_is_refused_with_5_7_30") {
        return;
    }
    let server = NodeServer::start(true);
    let output = tlsend_to(&server, &["--require-tls"]);
    let events = server.finish();
    assert_eq!(output.code, Some(69), "{}", output.stderr);
    assert!(output.stderr.contains("5.7.30"), "{}", output.stderr);
    assert!(
        of_kind(&events, "mail").is_empty(),
        "MAIL FROM reached the server: {events:?}"
    );
    assert!(of_kind(&events, "message").is_empty());
}

// covers: POL6
#[test]
fn interop_smtp_server_optional_mode_stores_exactly_one_tls_required_no() {
    if !require_peer("interop_smtp_server_optional_mode_stores_exactly_one_tls_required_no") {
        return;
    }
    let server = NodeServer::start(false);
    let output = tlsend_to(&server, &["--tls-optional"]);
    let events = server.finish();
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let messages = of_kind(&events, "message");
    assert_eq!(messages.len(), 1, "{events:?}");
    let stored = base64::engine::general_purpose::STANDARD
        .decode(messages[0]["message"].as_str().unwrap())
        .unwrap();
    let stored = String::from_utf8_lossy(&stored);
    assert_eq!(stored.matches("TLS-Required:").count(), 1, "{stored}");
    assert!(stored.contains("TLS-Required: No\r\n"), "{stored}");
    assert_eq!(messages[0]["requireTLS"], false);
    assert!(
        of_kind(&events, "mail")[0]["args"]
            .get("REQUIRETLS")
            .is_none()
    );
}
