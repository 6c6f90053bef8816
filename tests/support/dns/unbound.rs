//! A private, throwaway unbound (Debian 12's unbound 1.17) as a real
//! validating resolver over [`SignedZones`] (MX8).
//!
//! Each [`Unbound`] is its own instance in a fresh directory under the
//! build's tmp directory: its own configuration, pid file and log, one
//! thread, a free port of 127.0.0.1, small caches, and the signed zones'
//! root key as its only trust anchor. It knows no root hints: a stub zone
//! for `.` and for every child zone sends all its queries to the signed
//! zones' address (they are all served there; DS queries go to the
//! parent's stub, as unbound does for DS). QNAME minimisation is off, so the
//! zones see the queries the client asked for.
//!
//! Debian's AppArmor profile for /usr/sbin/unbound allows it to read only
//! /etc/unbound and /var/lib/unbound; the instance runs a copy of the
//! binary from its own directory, which the profile does not apply to.
//!
//! The instance is killed when the [`Unbound`] is dropped, and by the
//! kernel if the thread that started it ends first (PR_SET_PDEATHSIG), so
//! no unbound outlives a test run that was killed.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::double::bind_pair;
use super::{LOOPBACK, SignedZones};

const UNBOUND: &str = "/usr/sbin/unbound";
/// How long start-up may take.
const START_LIMIT: Duration = Duration::from_secs(20);

/// Why no instance can run on this machine, or `None` if one can.
pub fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let version = Command::new(UNBOUND)
            .arg("-V")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        match version {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!("{UNBOUND} -V failed: {}", out.status)),
            Err(e) => Some(format!("{UNBOUND} is not installed ({e})")),
        }
    })
    .clone()
}

/// True when the test should go on; prints why not otherwise. Under CI (`CI`
/// set, as .ci/run does) a missing unbound fails the test instead.
pub fn require_unbound(test: &str) -> bool {
    match unavailable() {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: unbound peer unavailable under CI: {why}")
        }
        Some(why) => {
            eprintln!("NOTICE: {test} skipped: {why} (`apt-get install unbound`; .ci/run does)");
            false
        }
    }
}

/// A running unbound; killed and removed on drop.
pub struct Unbound {
    child: Child,
    addr: SocketAddr,
    /// Last, so that the process is gone before it is removed.
    dir: tempfile::TempDir,
}

impl Unbound {
    /// Starts an instance over `zones` and waits until it answers the root's
    /// SOA with AD set (the chain from the trust anchor works). Tries again
    /// on a fresh port if the one chosen was taken meanwhile; panics with
    /// unbound's log if it cannot start.
    pub fn start(zones: &SignedZones) -> Unbound {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Unbound::try_start(zones) {
                Ok(unbound) => return unbound,
                Err(why) => failures.push(why),
            }
        }
        panic!("unbound did not start:\n{}", failures.join("\n----\n"));
    }

    fn try_start(zones: &SignedZones) -> Result<Unbound, String> {
        let dir = tempfile::Builder::new()
            .prefix("unbound-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("unbound instance directory");
        let root = dir.path();
        let port = free_port();
        let anchor = root.join("root.key");
        std::fs::copy(zones.trust_anchor(), &anchor).expect("copy the trust anchor");
        std::fs::write(
            root.join("unbound.conf"),
            config(root, port, &anchor, zones),
        )
        .expect("write unbound.conf");
        let program = root.join("unbound");
        std::fs::copy(UNBOUND, &program).expect("copy the unbound binary");

        let output = std::fs::File::create(root.join("unbound.out")).expect("unbound.out");
        let mut command = Command::new(&program);
        command
            .args(["-d", "-c"])
            .arg(root.join("unbound.conf"))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("unbound.out"))
            .stderr(output);
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("start {}: {e}", program.display()))?;
        let mut unbound = Unbound {
            child,
            addr: SocketAddr::new(LOOPBACK, port),
            dir,
        };
        match unbound.wait_ready() {
            Ok(()) => Ok(unbound),
            Err(why) => Err(format!("{why}\n{}", unbound.diagnostics())),
        }
    }

    /// Polls with `. SOA` (DO set) until an answer comes: NOERROR with AD is
    /// ready; any other answer means the world or the configuration is
    /// broken, and waiting will not help.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        let socket = UdpSocket::bind((LOOPBACK, 0)).map_err(|e| format!("bind: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| format!("read timeout: {e}"))?;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("unbound exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer from {} after {START_LIMIT:?}",
                    self.addr
                ));
            }
            let mut query = Message::query();
            query.add_query(Query::query(Name::root(), RecordType::SOA));
            query.metadata.recursion_desired = true;
            let mut edns = Edns::new();
            edns.set_max_payload(1232).set_dnssec_ok(true);
            query.set_edns(edns);
            let bytes = query.to_vec().map_err(|e| format!("encode: {e}"))?;
            if socket.send_to(&bytes, self.addr).is_err() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let mut buf = [0u8; 4096];
            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(answer) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if answer.metadata.id != query.metadata.id {
                continue;
            }
            let meta = answer.metadata;
            if meta.response_code == ResponseCode::NoError && meta.authentic_data {
                return Ok(());
            }
            return Err(format!(
                "`. SOA` answered {} with AD={} (the trust anchor or the zones are wrong)",
                meta.response_code, meta.authentic_data
            ));
        }
    }

    /// Where to send queries (127.0.0.1, UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// unbound's log so far (verbosity 1, validation failures included).
    pub fn log(&self) -> String {
        read_lossy(&self.dir().join("unbound.log"))
    }

    /// The configuration and every log, for failure messages.
    pub fn diagnostics(&self) -> String {
        ["unbound.conf", "unbound.out", "unbound.log"]
            .iter()
            .map(|name| {
                let text = read_lossy(&self.dir().join(name));
                format!("--- {name}:\n{}", text.trim_end())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The instance's unbound.conf.
fn config(dir: &Path, port: u16, anchor: &Path, zones: &SignedZones) -> String {
    let dir = dir.display();
    let mut conf = format!(
        "server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    chroot: \"\"
    username: \"\"
    directory: \"{dir}\"
    pidfile: \"{dir}/unbound.pid\"
    use-syslog: no
    logfile: \"{dir}/unbound.log\"
    log-time-ascii: yes
    verbosity: 1
    val-log-level: 2
    log-servfail: yes
    num-threads: 1
    so-reuseport: no
    outgoing-range: 64
    num-queries-per-thread: 32
    msg-cache-size: 1m
    rrset-cache-size: 1m
    key-cache-size: 1m
    neg-cache-size: 1m
    infra-cache-numhosts: 100
    val-bogus-ttl: 1
    do-not-query-localhost: no
    qname-minimisation: no
    module-config: \"validator iterator\"
    trust-anchor-file: \"{anchor}\"
    trust-anchor-signaling: no
    root-key-sentinel: no
    val-permissive-mode: no
    harden-dnssec-stripped: yes

remote-control:
    control-enable: no
",
        anchor = anchor.display(),
    );
    let server = zones.addr();
    for (apex, _) in zones.zones() {
        conf.push_str(&format!(
            "
stub-zone:
    name: \"{apex}\"
    stub-addr: {ip}@{port}
",
            ip = server.ip(),
            port = server.port(),
        ));
    }
    conf
}

/// A port of 127.0.0.1 that was free for UDP and TCP a moment ago; unbound
/// binds it itself, so another process may take it first (then start-up
/// fails and `start` tries another).
fn free_port() -> u16 {
    let (udp, _tcp) = bind_pair();
    udp.local_addr().expect("UDP local address").port()
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
