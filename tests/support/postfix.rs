//! A private, throwaway Postfix (Debian 12's postfix 3.7, which has no
//! REQUIRETLS) with Dovecot's auth service for SMTP AUTH, as a real
//! submission server for the tests.
//!
//! Each [`Postfix`] is its own instance in a fresh directory under /tmp:
//! its own config_directory, queue_directory, data_directory and log, a
//! Dovecot with its own base_dir and passwd-file, two smtpd services on
//! free ports of 127.0.0.1 (STARTTLS, and implicit TLS with
//! smtpd_tls_wrappermode), the test PKI's certificate for `localhost`,
//! and a pipe(8) transport that stores every accepted message in a
//! directory the test reads. The configuration templates and scripts are
//! in tests/peers/postfix/.
//!
//! `tests/peers/postfix/run.sh` runs both daemons in one process group and
//! kills the group when its standard input closes; the [`Postfix`] holds
//! that pipe, so dropping it, or the test process dying in any way, stops
//! everything. Drop then removes the directory.
//!
//! Postfix's master runs as root, so the instance needs root, the postfix
//! and dovecot-core packages, and the users they create (postfix, postdrop,
//! dovecot, dovenull, nobody). [`unavailable`] says why it cannot run.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use super::certs::{CertKind, pki};

/// The one account in Dovecot's passwd-file.
pub const USER: &str = "alice@example.org";
pub const PASSWORD: &str = "postfix-test-secret";

/// How long start-up, a delivery or a log line may take.
const START_LIMIT: Duration = Duration::from_secs(30);
const WAIT_LIMIT: Duration = Duration::from_secs(20);

const MAIN_CF: &str = include_str!("../peers/postfix/main.cf");
const MASTER_CF: &str = include_str!("../peers/postfix/master.cf");
const DOVECOT_CONF: &str = include_str!("../peers/postfix/dovecot.conf");
const DELIVER_SH: &str = include_str!("../peers/postfix/deliver.sh");

fn run_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/postfix/run.sh")
}

/// Why no instance can run on this machine, or `None` if one can.
pub fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            return Some("the Postfix peer must run as root (Postfix's master does)".into());
        }
        let postfix = Command::new("postconf")
            .args(["-d", "-h", "mail_version"])
            .env("PATH", sbin_path())
            .stderr(Stdio::null())
            .output();
        if !postfix.is_ok_and(|o| o.status.success()) {
            return Some("postfix is not installed".into());
        }
        let dovecot = Command::new("dovecot")
            .arg("--version")
            .env("PATH", sbin_path())
            .stderr(Stdio::null())
            .output();
        if !dovecot.is_ok_and(|o| o.status.success()) {
            return Some("dovecot-core is not installed".into());
        }
        None
    })
    .clone()
}

/// PATH with the sbin directories first, where Debian installs postconf
/// and dovecot (run.sh does the same).
fn sbin_path() -> std::ffi::OsString {
    let mut path = std::ffi::OsString::from("/usr/sbin:/usr/bin:/sbin:/bin:");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// A message the sink transport stored.
#[derive(Clone)]
pub struct Delivered {
    pub queue_id: String,
    /// `MAIL FROM:<…>`, then one `RCPT TO:<…>` per recipient.
    pub envelope: Vec<String>,
    /// Byte for byte what Postfix delivered: LF line endings, with the
    /// Received field Postfix prepends.
    pub message: Vec<u8>,
}

/// Envelope and the start of the message, readable in a failure message.
impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.message);
        let start: String = text.chars().take(1000).collect();
        f.debug_struct("Delivered")
            .field("queue_id", &self.queue_id)
            .field("envelope", &self.envelope)
            .field("octets", &self.message.len())
            .field("start", &start)
            .finish()
    }
}

/// A running instance; stopped and removed on drop.
pub struct Postfix {
    child: Child,
    /// Closing it makes run.sh kill every process of the instance.
    stdin: Option<ChildStdin>,
    pub starttls_port: u16,
    pub implicit_port: u16,
    /// An MX-style smtpd: STARTTLS offered, no AUTH, mail from loopback.
    pub mx_port: u16,
    /// Queue IDs already returned by `next_message`.
    seen: BTreeSet<String>,
    /// Last, so that the processes are gone before it is removed.
    dir: tempfile::TempDir,
}

impl Postfix {
    /// Starts an instance and waits until it accepts connections on both
    /// ports. Tries again on fresh ports if one was taken meanwhile; panics
    /// with the daemons' logs if it cannot start.
    pub fn start() -> Postfix {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Postfix::try_start() {
                Ok(postfix) => return postfix,
                Err(why) => failures.push(why),
            }
        }
        panic!("Postfix did not start:\n{}", failures.join("\n----\n"));
    }

    fn try_start() -> Result<Postfix, String> {
        // Under /tmp, not $TMPDIR: the postfix and nobody users must reach
        // it, and Unix socket paths must stay short.
        let dir = tempfile::Builder::new()
            .prefix("tlsend-pf-")
            .tempdir_in("/tmp")
            .expect("Postfix instance directory");
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))
            .expect("open the instance directory to postfix and nobody");
        let (starttls_port, implicit_port, mx_port) = free_ports();
        let (cert, key) = pki().pem_files(CertKind::Valid);
        let fill = |template: &str| {
            template
                .replace("@DIR@", &root.display().to_string())
                .replace("@CERT@", &cert.display().to_string())
                .replace("@KEY@", &key.display().to_string())
                .replace("@STARTTLS_PORT@", &starttls_port.to_string())
                .replace("@IMPLICIT_PORT@", &implicit_port.to_string())
                .replace("@MX_PORT@", &mx_port.to_string())
        };
        std::fs::create_dir(root.join("postfix")).expect("config_directory");
        let write = |name: &str, text: String, mode: u32| {
            let path = root.join(name);
            std::fs::write(&path, text).expect("write instance file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .expect("set instance file mode");
            // Postfix reads main.cf again and again until its mtime is more
            // than a second in the past (dict_load_file_xt: a "hot" file may
            // be mid-write), which costs every Postfix program about 2 s
            // on a fresh instance. Date the files back instead.
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(60)))
                .expect("date an instance file back");
        };
        write("postfix/main.cf", fill(MAIN_CF), 0o644);
        write("postfix/master.cf", fill(MASTER_CF), 0o644);
        write("dovecot.conf", fill(DOVECOT_CONF), 0o644);
        write("deliver.sh", DELIVER_SH.to_string(), 0o755);
        write("passwd", format!("{USER}:{{PLAIN}}{PASSWORD}\n"), 0o644);

        let output = std::fs::File::create(root.join("run.out")).expect("run.out");
        let child = Command::new("/bin/sh")
            .arg(run_sh())
            .arg(root)
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(output.try_clone().expect("run.out"))
            .stderr(output)
            // run.sh kills this group when its stdin closes.
            .process_group(0)
            .spawn()
            .expect("start tests/peers/postfix/run.sh");
        let mut postfix = Postfix {
            stdin: None,
            child,
            starttls_port,
            implicit_port,
            mx_port,
            seen: BTreeSet::new(),
            dir,
        };
        postfix.stdin = postfix.child.stdin.take();
        match postfix.wait_ready() {
            Ok(()) => Ok(postfix),
            Err(why) => Err(format!("{why}\n{}", postfix.diagnostics())),
        }
    }

    /// Ready when Dovecot's auth socket accepts, Postfix's master has
    /// logged "daemon started" (it binds every listener before that, so the
    /// implicit-TLS port accepts; connecting to it without TLS would only
    /// add an error to the log), and the STARTTLS port greets as this
    /// Postfix (not whatever else may have taken the port meanwhile).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        let socket = self.dir().join("dovecot/auth-postfix");
        let (mut auth, mut master, mut smtpd) = (false, false, false);
        while !(auth && master && smtpd) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("run.sh ended: {status}"));
            }
            let logs = self.startup_logs();
            if logs.contains("fatal:") || logs.contains("Fatal:") {
                return Err("a daemon reported a fatal error".into());
            }
            if logs.contains("run.sh: ") {
                // A port taken since free_ports, most likely.
                return Err("a daemon exited".into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready after {START_LIMIT:?} (auth socket {auth}, \
                     master started {master}, STARTTLS port greeted {smtpd})"
                ));
            }
            auth = auth || UnixStream::connect(&socket).is_ok();
            // Only master logs this, once its listeners are bound.
            master = master || self.log().contains(": daemon started -- version ");
            smtpd = master && (smtpd || greets(self.starttls_port, deadline)?);
            if !(auth && master && smtpd) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Postfix's log (maillog_file) so far.
    pub fn log(&self) -> String {
        read_lossy(&self.dir().join("maillog"))
    }

    /// Dovecot's log so far.
    pub fn dovecot_log(&self) -> String {
        read_lossy(&self.dir().join("dovecot.log"))
    }

    fn startup_logs(&self) -> String {
        [
            "run.out",
            "master.out",
            "dovecot.out",
            "dovecot.log",
            "maillog",
        ]
        .iter()
        .map(|name| read_lossy(&self.dir().join(name)))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Every log of the instance, for failure messages.
    pub fn diagnostics(&self) -> String {
        [
            "run.out",
            "master.out",
            "dovecot.out",
            "dovecot.log",
            "maillog",
        ]
        .iter()
        .map(|name| {
            format!(
                "--- {name}:\n{}",
                read_lossy(&self.dir().join(name)).trim_end()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Waits until `done` holds for Postfix's log and returns the log;
    /// panics with every log after the time limit.
    pub fn wait_for_log(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, || Some(self.log()).filter(|log| done(log)))
    }

    /// Like `wait_for_log`, for Dovecot's log (written by its own log
    /// process, so it may lag behind Postfix's replies).
    pub fn wait_for_dovecot_log(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, || Some(self.dovecot_log()).filter(|log| done(log)))
    }

    fn wait_for<T>(&self, what: &str, ready: impl Fn() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(value) = ready() {
                return value;
            }
            if Instant::now() > deadline {
                panic!("no {what} within {WAIT_LIMIT:?}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// smtpd's end-of-session lines of SMTP clients that sent EHLO (the
    /// start-up probe does not), such as `disconnect from
    /// localhost[127.0.0.1] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1
    /// quit=1 commands=8`, once `sessions` of them are in the log.
    pub fn wait_for_sessions(&self, sessions: usize) -> Vec<String> {
        let log = self.wait_for_log(&format!("{sessions} SMTP session(s)"), |log| {
            session_summaries(log).len() >= sessions
        });
        session_summaries(&log)
    }

    /// Every message delivered so far, in no particular order.
    pub fn messages(&self) -> Vec<Delivered> {
        let sink = self.dir().join("sink");
        let mut messages = Vec::new();
        for entry in std::fs::read_dir(&sink).expect("read the sink directory") {
            let path = entry.expect("sink directory entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let Some(queue_id) = name.strip_suffix(".eml") else {
                continue;
            };
            if queue_id.starts_with('.') {
                continue;
            }
            let envelope = read_lossy(&sink.join(format!("{queue_id}.envelope")));
            messages.push(Delivered {
                queue_id: queue_id.to_string(),
                envelope: envelope.lines().map(str::to_string).collect(),
                message: std::fs::read(&path).expect("read a delivered message"),
            });
        }
        messages
    }

    /// Waits for the one message delivered since the last call; panics if
    /// none arrives in time or more than one did.
    pub fn next_message(&mut self) -> Delivered {
        let message = self.wait_for("delivery by Postfix", || {
            let mut new: Vec<Delivered> = self
                .messages()
                .into_iter()
                .filter(|m| !self.seen.contains(&m.queue_id))
                .collect();
            assert!(
                new.len() <= 1,
                "more than one new message delivered: {new:?}"
            );
            new.pop()
        });
        self.seen.insert(message.queue_id.clone());
        message
    }

    /// Files in Postfix's queue: a message accepted and not yet delivered.
    pub fn queue_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for queue in [
            "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
        ] {
            let mut dirs = vec![self.dir().join("queue").join(queue)];
            // deferred/ and friends may hash into subdirectories.
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else {
                        files.push(path);
                    }
                }
            }
        }
        files
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // run.sh sees end of input and kills its process group.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break,
            }
        }
        // run.sh is stuck (not yet reaped, so its group ID is still ours):
        // kill the whole group.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.wait();
    }
}

/// smtpd's `disconnect from …` lines of sessions that sent EHLO.
pub fn session_summaries(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains("/smtpd[") && line.contains(": disconnect from "))
        .filter(|line| line.contains(" ehlo="))
        .map(str::to_string)
        .collect()
}

/// Splits a delivered message into the Received field Postfix prepended
/// (with its folded lines) and the rest, which is what the client sent.
pub fn split_received(message: &[u8]) -> (&[u8], &[u8]) {
    assert!(
        message.starts_with(b"Received: "),
        "a message from Postfix starts with its Received field: {}",
        String::from_utf8_lossy(message)
    );
    let mut end = 0;
    loop {
        end += message[end..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len() - end, |i| i + 1);
        if !matches!(message.get(end), Some(b' ' | b'\t')) {
            return message.split_at(end);
        }
    }
}

/// Two ports on 127.0.0.1 that were free a moment ago (held together, so
/// they differ).
fn free_ports() -> (u16, u16, u16) {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("free port");
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("free port");
    let c = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("free port");
    let port = |l: &TcpListener| l.local_addr().expect("port").port();
    (port(&a), port(&b), port(&c))
}

/// True once smtpd on `port` sends this Postfix's 220 greeting (then says
/// QUIT); false while nothing listens; `Err` for any other answer.
fn greets(port: u16, deadline: Instant) -> Result<bool, String> {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return Ok(false);
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    stream
        .set_read_timeout(Some(wait))
        .expect("set a read timeout");
    let mut greeting = String::new();
    let read = BufReader::new(&stream).read_line(&mut greeting);
    if read.is_err() || !greeting.starts_with("220 postfix.test ESMTP") {
        return Err(format!("port {port} greeted with {greeting:?} ({read:?})"));
    }
    let _ = stream.write_all(b"QUIT\r\n");
    Ok(true)
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
