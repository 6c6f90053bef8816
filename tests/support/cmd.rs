//! Runs the tlsend binary with a private HOME, a cleared environment, the
//! given standard input, and a time limit.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::certs::TestPki;
use super::smtp::TestServer;

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The run ended with `code` and its stderr holds every one of `needles`.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32, needles: &[&str]) {
    assert_eq!(output.code, Some(code), "stderr: {}", output.stderr);
    for needle in needles {
        assert!(
            output.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            output.stderr
        );
    }
}

/// A tlsend invocation being prepared.
pub struct Tlsend {
    home: tempfile::TempDir,
    program: PathBuf,
    args: Vec<OsString>,
    stdin: Vec<u8>,
    env: Vec<(OsString, OsString)>,
    removed: Vec<OsString>,
    time_limit: Duration,
    /// Run as this user and group id (the test runs as root).
    user: Option<(u32, u32)>,
    /// Run in a UTS namespace of its own with this host name (needs root).
    host_name: Option<String>,
}

impl Default for Tlsend {
    fn default() -> Self {
        Tlsend::new()
    }
}

impl Tlsend {
    pub fn new() -> Tlsend {
        Tlsend {
            home: tempfile::tempdir().unwrap(),
            host_name: None,
            program: PathBuf::from(env!("CARGO_BIN_EXE_tlsend")),
            args: Vec::new(),
            stdin: Vec::new(),
            env: Vec::new(),
            removed: Vec::new(),
            time_limit: Duration::from_secs(60),
            user: None,
        }
    }

    /// Submission to `server` with no configuration file, trusting the test
    /// CA through SSL_CERT_FILE (the system-roots path), short timeouts.
    pub fn to_server(server: &TestServer, pki: &TestPki) -> Tlsend {
        let mut t = Tlsend::new();
        t.args(["-C", "/dev/null", "--host", "localhost", "--timeout", "5"]);
        t.arg("--port").arg(server.port.to_string());
        t.env("SSL_CERT_FILE", pki.ca_file());
        t
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Self {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = bytes.into();
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs without this variable (for callers that clear the environment).
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.removed.push(key.as_ref().to_owned());
        self
    }

    /// Writes `$HOME/.config/tlsend/config.toml`.
    pub fn config(&mut self, toml: &str) -> &mut Self {
        let dir = self.home.path().join(".config/tlsend");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), toml).unwrap();
        self
    }

    /// Writes `$HOME/tlsend.toml` and passes it with -C, which beats an
    /// earlier -C (such as `to_server`'s /dev/null).
    pub fn config_file(&mut self, toml: &str) -> &mut Self {
        let path = self.home.path().join("tlsend.toml");
        std::fs::write(&path, toml).unwrap();
        self.arg("-C").arg(path)
    }

    /// Runs the binary in a UTS namespace of its own, where this host is
    /// called `name` (needs root: `unshare --uts`).
    pub fn host_name(&mut self, name: &str) -> &mut Self {
        self.host_name = Some(name.to_string());
        self
    }

    /// Runs the binary under another name (argv[0]), through a symlink.
    pub fn as_program(&mut self, name: &str) -> &mut Self {
        let bin = self.home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let link = bin.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tlsend"), &link).unwrap();
        self.program = link;
        self
    }

    /// How long `run` lets the binary run before killing it and failing
    /// the test (60 s unless set).
    /// Runs the binary as another user (needs root); HOME becomes a fresh
    /// directory that user owns.
    pub fn as_user(&mut self, uid: u32, gid: u32) -> &mut Self {
        std::os::unix::fs::chown(self.home.path(), Some(uid), Some(gid)).unwrap();
        self.user = Some((uid, gid));
        self
    }

    pub fn time_limit(&mut self, limit: Duration) -> &mut Self {
        self.time_limit = limit;
        self
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `$HOME/dead.letter`, if tlsend wrote one, as text.
    pub fn dead_letter(&self) -> Option<String> {
        self.dead_letter_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// `$HOME/dead.letter` byte for byte.
    pub fn dead_letter_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.home.path().join("dead.letter")).ok()
    }

    /// Starts the binary with piped standard input, output and error;
    /// the caller feeds standard input.
    pub fn spawn(&self) -> std::process::Child {
        if let Some(name) = &self.host_name {
            let mut command = Command::new("unshare");
            command
                .args(["--uts", "--", "sh", "-c"])
                .arg("hostname \"$1\" && shift && exec \"$0\" \"$@\"")
                .arg(&self.program)
                .arg(name);
            return self.spawn_command(command);
        }
        match self.user {
            // util-linux's setpriv drops root's supplementary groups too.
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(&self.program);
                self.spawn_command(command)
            }
            None => self.spawn_command(Command::new(&self.program)),
        }
    }

    /// Starts the binary from `sh -c`, after `prelude` (e.g. `trap "" HUP`
    /// to start it with SIGHUP ignored, as nohup does).
    pub fn spawn_after(&self, prelude: &str) -> std::process::Child {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("{prelude}; exec \"$0\" \"$@\""))
            .arg(&self.program);
        self.spawn_command(command)
    }

    fn spawn_command(&self, mut command: Command) -> std::process::Child {
        self.prepare(&mut command);
        command.spawn().expect("run tlsend")
    }

    /// Starts the binary with its standard input and output on `stdio`
    /// (one end of a socket pair, as an SMTP client's for `-bs`), and
    /// standard error piped.
    pub fn spawn_on(&self, stdio: std::os::unix::net::UnixStream) -> std::process::Child {
        let mut command = Command::new(&self.program);
        self.prepare(&mut command);
        let output = stdio.try_clone().expect("duplicate the socket");
        command
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(stdio)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(output)));
        command.spawn().expect("run tlsend")
    }

    fn prepare(&self, command: &mut Command) {
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("LOGNAME", "tester")
            .env("USER", "tester")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        for key in &self.removed {
            command.env_remove(key);
        }
    }

    /// Runs the binary to its end and collects its output. Kills it and
    /// panics with its stderr if it outlives the time limit; never waits
    /// on a pipe that a stray grandchild keeps open.
    pub fn run(&self) -> Output {
        self.start().finish()
    }

    /// Starts the binary, feeds it standard input, and returns while it runs.
    pub fn start(&self) -> Running {
        self.started(self.spawn())
    }

    /// As `start`, from `sh -c` after `prelude` (see `spawn_after`).
    pub fn start_after(&self, prelude: &str) -> Running {
        self.started(self.spawn_after(prelude))
    }

    fn started(&self, mut child: std::process::Child) -> Running {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = self.stdin.clone();
        // tlsend may stop reading early (a lone dot); a broken pipe is fine.
        // Not joined: a grandchild holding the pipe must not hang the test.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            stdout,
            stderr,
            stderr_seen: String::new(),
            time_limit: self.time_limit,
        }
    }
}

/// A tlsend process that is running.
pub struct Running {
    child: std::process::Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Standard error read so far by `wait_for_stderr`.
    stderr_seen: String,
    time_limit: Duration,
}

impl Running {
    /// Sends `signal` to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("send a signal to tlsend");
    }

    /// Waits until standard error holds `needle` (true), or `limit` passed
    /// or the process closed it (false).
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.stderr_seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(chunk) => self.stderr_seen.push_str(&chunk),
                Err(_) => return false,
            }
        }
        true
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for tlsend");
        Output {
            code: status.code(),
            stdout: collect(&self.stdout),
            stderr: self.stderr_seen.clone() + &collect(&self.stderr),
        }
    }

    /// Waits for the end (at most the time limit) and collects the output.
    pub fn finish(mut self) -> Output {
        let deadline = Instant::now() + self.time_limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for tlsend") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "tlsend ran for more than {:?}; stderr: {}",
                    self.time_limit,
                    collect(&self.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            code: status.code(),
            stdout: collect(&self.stdout),
            stderr: self.stderr_seen.clone() + &collect(&self.stderr),
        }
    }
}

/// Reads a pipe to its end in a thread of its own, passing on each chunk
/// as it arrives.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        let mut pending = Vec::new();
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pending.extend_from_slice(&chunk[..n]);
                    // Whole UTF-8 sequences only: split at the last line end.
                    if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                        let rest = pending.split_off(end + 1);
                        let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
                        pending = rest;
                    }
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
        }
    });
    rx
}

/// What `drain` read, once the pipe closed, or a note if it stayed open.
fn collect(output: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match output.recv_timeout(left) {
            Ok(chunk) => text.push_str(&chunk),
            Err(mpsc::RecvTimeoutError::Disconnected) => return text,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                text.push_str("(pipe still open 10 s after tlsend ended)");
                return text;
            }
        }
    }
}
