//! The fetcher against in-process HTTPS servers, and [`policy_for`] with a
//! fake fetcher and a clock the test sets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::fetch::{MAX_BODY, fetch_policy};
use super::*;

const DOMAIN: &str = "example.com";
const HOST: &str = "mta-sts.example.com";
const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmx: *.mx.example.net\r\nmax_age: 86400\r\n";

/// Every wait in these tests is bounded.
const TEST_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Certificates

/// Which certificate the test server presents.
#[derive(Clone, Copy, Debug)]
enum Cert {
    /// For mta-sts.example.com, from the trusted test CA.
    Valid,
    /// For mta-sts.other.example, from the trusted test CA.
    WrongName,
    /// For mta-sts.example.com, from a CA the fetcher does not trust.
    UntrustedCa,
}

struct Pki {
    ca: CertificateDer<'static>,
    valid: Arc<rustls::ServerConfig>,
    wrong_name: Arc<rustls::ServerConfig>,
    untrusted: Arc<rustls::ServerConfig>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn server_config(
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let trusted = ca("tlsend MTA-STS test CA");
        let untrusted = ca("tlsend untrusted CA");
        Pki {
            ca: trusted.der().clone(),
            valid: server_config(HOST, &trusted),
            wrong_name: server_config("mta-sts.other.example", &trusted),
            untrusted: server_config(HOST, &untrusted),
        }
    })
}

// ---------------------------------------------------------------------------
// The HTTPS server

/// What the server writes: pieces, each after a pause.
type Answer = Vec<(Duration, Vec<u8>)>;

fn at_once(bytes: impl Into<Vec<u8>>) -> Answer {
    vec![(Duration::ZERO, bytes.into())]
}

fn response(status: &str, headers: &[&str], body: &[u8]) -> Answer {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    at_once(bytes)
}

fn ok_text(body: &[u8]) -> Answer {
    response("200 OK", &["Content-Type: text/plain"], body)
}

/// A chunked response with the body in `pieces`.
fn chunked(content_type: &str, pieces: &[&[u8]]) -> Answer {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in pieces {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    at_once(out)
}

type Handler = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// A TLS server on 127.0.0.1 that answers each request with what `handler`
/// returns for its request line, and records every request head it reads.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(cert: Cert, handler: Handler) -> Server {
        let config = match cert {
            Cert::Valid => pki().valid.clone(),
            Cert::WrongName => pki().wrong_name.clone(),
            Cert::UntrustedCa => pki().untrusted.clone(),
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let acceptor = TlsAcceptor::from(config);
        let (seen, count) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let (acceptor, handler, seen) = (acceptor.clone(), handler.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    seen.lock().unwrap().push(head.clone());
                    for (pause, bytes) in handler(&head) {
                        tokio::time::sleep(pause).await;
                        if tls.write_all(&bytes).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
        Server {
            addr,
            requests,
            connections,
            task,
        }
    }

    async fn answering(answer: Answer) -> Server {
        Server::start(Cert::Valid, Arc::new(move |_: &str| answer.clone())).await
    }

    fn options(&self) -> FetchOptions {
        options(self.addr.port(), Duration::from_secs(10))
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn options(port: u16, timeout: Duration) -> FetchOptions {
    FetchOptions {
        port,
        timeout,
        roots: Roots::Certificates(Arc::new(vec![pki().ca.clone()])),
    }
}

const LOOPBACK: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::LOCALHOST)];

async fn fetch(options: &FetchOptions) -> Result<Policy, FetchError> {
    tokio::time::timeout(TEST_LIMIT, fetch_policy(DOMAIN, &LOOPBACK, options))
        .await
        .expect("the fetch finished within the test's limit")
}

fn expected_policy() -> Policy {
    Policy::parse(POLICY.as_bytes()).unwrap()
}

// ---------------------------------------------------------------------------
// Fetching

// covers: MX7
#[tokio::test]
async fn mx7_fetches_a_policy_with_the_policy_host_name() {
    let server = Server::answering(ok_text(POLICY.as_bytes())).await;
    assert_eq!(fetch(&server.options()).await, Ok(expected_policy()));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let head = requests[0].to_ascii_lowercase();
    // The connection went to 127.0.0.1, but the request names the policy
    // host (and the certificate was checked for it).
    assert!(
        head.starts_with("get /.well-known/mta-sts.txt http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nhost: mta-sts.example.com\r\n"), "{head}");
}

// covers: MX7
#[tokio::test]
async fn mx7_http_answers() {
    #[derive(Debug, PartialEq)]
    enum Want {
        /// The policy in `POLICY`.
        Expected,
        Other,
        Status(u16),
        ContentType,
        TooLarge,
        Parse,
        Http,
    }
    fn want(result: &Result<Policy, FetchError>) -> Option<Want> {
        Some(match result {
            Ok(p) if *p == expected_policy() => Want::Expected,
            Ok(_) => Want::Other,
            Err(FetchError::Status { status, .. }) => Want::Status(*status),
            Err(FetchError::ContentType { .. }) => Want::ContentType,
            Err(FetchError::TooLarge {
                limit: MAX_BODY, ..
            }) => Want::TooLarge,
            Err(FetchError::Parse { .. }) => Want::Parse,
            Err(FetchError::Http { .. }) => Want::Http,
            Err(_) => return None,
        })
    }
    use Want::*;
    let body = POLICY.as_bytes();
    let big = vec![b'x'; MAX_BODY as usize + 1];
    // A valid policy padded with an unknown field to exactly 64 KiB.
    let mut exact = POLICY.as_bytes().to_vec();
    exact.extend_from_slice(b"pad: ");
    exact.resize(MAX_BODY as usize - 1, b'p');
    exact.push(b'\n');
    #[rustfmt::skip]
    let cases: Vec<(&str, Answer, Want)> = vec![
        ("Content-Length", ok_text(body), Expected),
        ("charset parameter", response("200 OK", &["Content-Type: text/plain; charset=utf-8"], body), Expected),
        ("media type in upper case", response("200 OK", &["Content-Type: TEXT/PLAIN"], body), Expected),
        ("chunked", chunked("text/plain", &[&body[..10], &body[10..11], &body[11..]]), Expected),
        ("exactly 64 KiB", ok_text(&exact), Expected),
        ("404", response("404 Not Found", &["Content-Type: text/plain"], b"no"), Status(404)),
        ("500", response("500 Oops", &[], b""), Status(500)),
        ("204", response("204 No Content", &[], b""), Status(204)),
        ("text/html", response("200 OK", &["Content-Type: text/html"], body), ContentType),
        ("no Content-Type", response("200 OK", &[], body), ContentType),
        ("over 64 KiB, with a length", ok_text(&big), TooLarge),
        ("over 64 KiB, chunked", chunked("text/plain", &[&big[..40_000], &big[40_000..]]), TooLarge),
        ("not a policy", ok_text(b"<html>hello</html>"), Parse),
        ("not HTTP", at_once(b"SSH-2.0-OpenSSH\r\n".to_vec()), Http),
    ];
    for (why, answer, expected) in cases {
        let server = Server::answering(answer).await;
        let result = fetch(&server.options()).await;
        assert_eq!(want(&result), Some(expected), "{why}: {result:?}");
        if let Err(e) = &result {
            let text = e.to_string();
            assert!(text.contains("mta-sts.example.com"), "{why}: {text}");
        }
    }
}

// covers: MX7
#[tokio::test]
async fn mx7_redirects_are_not_followed() {
    // The server would serve the policy at the redirect's target.
    let handler: Handler = Arc::new(|head: &str| {
        if head.starts_with("GET /.well-known/mta-sts.txt ") {
            response(
                "301 Moved Permanently",
                &["Location: https://mta-sts.example.com/elsewhere.txt"],
                b"",
            )
        } else {
            ok_text(POLICY.as_bytes())
        }
    });
    let server = Server::start(Cert::Valid, handler).await;
    let result = fetch(&server.options()).await;
    match &result {
        Err(FetchError::Redirect {
            status: 301,
            location: Some(location),
            ..
        }) => assert_eq!(location, "https://mta-sts.example.com/elsewhere.txt"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "only the policy URL was asked");
    for status in [
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let server = Server::answering(response(status, &["Location: /x"], b"")).await;
        let result = fetch(&server.options()).await;
        assert!(
            matches!(result, Err(FetchError::Redirect { .. })),
            "{status}: {result:?}"
        );
    }
}

// covers: MX7
#[tokio::test]
async fn mx7_certificates_are_verified() {
    let body = ok_text(POLICY.as_bytes());
    for (cert, words) in [
        (Cert::WrongName, "another name"),
        (Cert::UntrustedCa, "not signed by a trusted CA"),
    ] {
        let answer = body.clone();
        let server = Server::start(cert, Arc::new(move |_: &str| answer.clone())).await;
        let result = fetch(&server.options()).await;
        match &result {
            Err(e @ FetchError::Tls { .. }) => {
                assert!(e.to_string().contains(words), "{cert:?}: {e}")
            }
            other => panic!("{cert:?}: {other:?}"),
        }
        assert!(
            server.requests().is_empty(),
            "{cert:?}: no request was sent"
        );
    }
    // Injected roots replace the system's: an empty set trusts nothing.
    let server = Server::answering(body).await;
    let mut options = server.options();
    options.roots = Roots::Certificates(Arc::new(Vec::new()));
    let result = fetch(&options).await;
    assert!(matches!(result, Err(FetchError::Tls { .. })), "{result:?}");
}

// covers: MX7
#[tokio::test]
async fn mx7_slow_servers_hit_the_time_limit() {
    let limit = Duration::from_millis(800);
    // Headers at once, then the body a byte every 200 ms.
    let mut slow = vec![(
        Duration::ZERO,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            POLICY.len()
        )
        .into_bytes(),
    )];
    slow.extend(
        POLICY
            .bytes()
            .map(|b| (Duration::from_millis(200), vec![b])),
    );
    let server = Server::answering(slow).await;
    let started = std::time::Instant::now();
    let result = fetch(&options(server.addr.port(), limit)).await;
    assert!(
        matches!(result, Err(FetchError::Timeout { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < limit * 4, "{:?}", started.elapsed());

    // A server that accepts the connection and says nothing.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let result = fetch(&options(port, limit)).await;
    assert!(
        matches!(result, Err(FetchError::Timeout { .. })),
        "{result:?}"
    );
    hold.abort();
}

// covers: MX7
#[tokio::test]
async fn mx7_connects_to_the_given_addresses_and_port() {
    // Nothing listens on this port any more.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let result = fetch(&options(port, Duration::from_secs(5))).await;
    assert!(
        matches!(result, Err(FetchError::Connect { .. })),
        "{result:?}"
    );

    // The first address refuses (the server listens on 127.0.0.1 only);
    // the next one is tried.
    let server = Server::answering(ok_text(POLICY.as_bytes())).await;
    let addrs = [
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    ];
    let result = tokio::time::timeout(TEST_LIMIT, fetch_policy(DOMAIN, &addrs, &server.options()))
        .await
        .unwrap();
    assert_eq!(result, Ok(expected_policy()));
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    // No addresses, or a domain that is not a host name: nothing is tried.
    let result = fetch_policy(DOMAIN, &[], &server.options()).await;
    assert!(
        matches!(result, Err(FetchError::Resolve { .. })),
        "{result:?}"
    );
    let result = fetch_policy("exa mple.com", &LOOPBACK, &server.options()).await;
    assert!(
        matches!(result, Err(FetchError::InvalidDomain(_))),
        "{result:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

// covers: MX7
#[tokio::test]
async fn mx7_https_fetch_through_policy_for_caches_the_policy() {
    let server = Server::answering(ok_text(POLICY.as_bytes())).await;
    let fetcher = HttpsFetch {
        resolver: LOOPBACK.to_vec(),
        options: server.options(),
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let now = at(1_700_000_000);
    let applied = policy_for("Example.COM.", txt("abc"), &fetcher, &cache, now).await;
    assert_eq!(applied.source, Source::Fetched, "{applied}");
    assert_eq!(applied.policy, Some((expected_policy(), "abc".into())));
    assert_eq!(applied.domain, "example.com");
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
    // The second time, the cache answers and the server is not asked.
    let applied = policy_for(DOMAIN, txt("abc"), &fetcher, &cache, now + HOUR).await;
    assert_eq!(applied.source, Source::Cache, "{applied}");
    assert_eq!(server.requests().len(), 1);
}

// ---------------------------------------------------------------------------
// policy_for with a fake fetcher

const HOUR: Duration = Duration::from_secs(3600);

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn txt(id: &str) -> TxtAnswer {
    TxtAnswer::Found(vec![format!("v=STSv1; id={id}").into_bytes()])
}

fn policy_text(mode: &str, max_age: u64) -> Policy {
    Policy::parse(
        format!("version: STSv1\nmode: {mode}\nmx: mx.example.com\nmax_age: {max_age}\n")
            .as_bytes(),
    )
    .unwrap()
}

/// Answers every fetch with `result` and counts the calls.
struct FakeFetch {
    result: Mutex<Result<Policy, FetchError>>,
    calls: AtomicUsize,
    domains: Mutex<Vec<String>>,
}

impl FakeFetch {
    fn new(result: Result<Policy, FetchError>) -> FakeFetch {
        FakeFetch {
            result: Mutex::new(result),
            calls: AtomicUsize::new(0),
            domains: Mutex::new(Vec::new()),
        }
    }

    fn set(&self, result: Result<Policy, FetchError>) {
        *self.result.lock().unwrap() = result;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl PolicyFetch for FakeFetch {
    async fn fetch(&self, domain: &str) -> Result<Policy, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.domains.lock().unwrap().push(domain.to_string());
        self.result.lock().unwrap().clone()
    }
}

fn failure() -> FetchError {
    FetchError::Status {
        url: fetch::policy_url(DOMAIN),
        status: 503,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    cache: Cache,
    fake: FakeFetch,
}

fn setup(result: Result<Policy, FetchError>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("mta-sts"));
    Setup {
        _dir: dir,
        cache,
        fake: FakeFetch::new(result),
    }
}

impl Setup {
    async fn run(&self, txt: TxtAnswer, now: SystemTime) -> Applied {
        policy_for(DOMAIN, txt, &self.fake, &self.cache, now).await
    }
}

const T0: u64 = 1_700_000_000;

type ReasonCheck = fn(&Reason) -> bool;

// covers: MX7
#[tokio::test]
async fn mx7_cached_policy_is_reused_while_the_id_is_unchanged() {
    let s = setup(Ok(policy_text("enforce", 86400)));
    let first = s.run(txt("one"), at(T0)).await;
    assert_eq!(first.source, Source::Fetched);
    assert_eq!(first.reason, Reason::Fetched(Refresh::NotCached));
    assert_eq!(first.expires, Some(at(T0 + 86400)));
    assert_eq!(s.fake.domains.lock().unwrap().as_slice(), [DOMAIN]);
    // Even if the host would now fail, the cache answers without a fetch.
    s.fake.set(Err(failure()));
    for later in [1, 3600, 86_399] {
        let applied = s.run(txt("one"), at(T0 + later)).await;
        assert_eq!(applied.source, Source::Cache, "{applied}");
        assert_eq!(applied.reason, Reason::Unchanged);
        assert_eq!(applied.policy, first.policy);
    }
    assert_eq!(s.fake.calls(), 1);
}

// covers: MX7
#[tokio::test]
async fn mx7_a_new_id_triggers_a_fetch() {
    let s = setup(Ok(policy_text("testing", 86400)));
    s.run(txt("one"), at(T0)).await;
    s.fake.set(Ok(policy_text("enforce", 604800)));
    let applied = s.run(txt("two"), at(T0 + 60)).await;
    assert_eq!(applied.source, Source::Fetched);
    assert_eq!(
        applied.reason,
        Reason::Fetched(Refresh::NewId {
            cached: "one".into()
        })
    );
    assert_eq!(
        applied.policy,
        Some((policy_text("enforce", 604800), "two".into()))
    );
    assert_eq!(s.fake.calls(), 2);
    // The new policy is what the cache holds now.
    let applied = s.run(txt("two"), at(T0 + 120)).await;
    assert_eq!(
        (applied.source, applied.mode()),
        (Source::Cache, Some(PolicyMode::Enforce))
    );
    assert_eq!(s.fake.calls(), 2);
}

// covers: MX7
#[tokio::test]
async fn mx7_an_expired_policy_is_not_used() {
    let s = setup(Ok(policy_text("enforce", 3600)));
    s.run(txt("one"), at(T0)).await;
    // Expired, same id: fetched again.
    let applied = s.run(txt("one"), at(T0 + 3600)).await;
    assert_eq!(applied.source, Source::Fetched);
    assert_eq!(applied.reason, Reason::Fetched(Refresh::Expired));
    assert_eq!(s.fake.calls(), 2);
    // Expired and the fetch fails: no policy at all.
    s.fake.set(Err(failure()));
    let applied = s.run(txt("one"), at(T0 + 3 * 3600)).await;
    assert_eq!(applied.source, Source::None, "{applied}");
    assert_eq!(applied.policy, None);
    assert!(matches!(
        applied.reason,
        Reason::FetchFailed {
            refresh: Refresh::Expired,
            ..
        }
    ));
    // Expired and no TXT record: no policy either.
    let applied = s.run(TxtAnswer::NoRecord, at(T0 + 4 * 3600)).await;
    assert_eq!(
        (applied.source, applied.reason),
        (Source::None, Reason::NoRecord)
    );
}

// covers: MX7
#[tokio::test]
async fn mx7_a_cached_policy_outlives_failures() {
    let s = setup(Ok(policy_text("enforce", 86400)));
    let fetched = s.run(txt("one"), at(T0)).await.policy;
    s.fake.set(Err(failure()));
    let later = at(T0 + 3600);
    let cases: Vec<(&str, TxtAnswer, ReasonCheck)> = vec![
        ("fetch of a new id fails", txt("two"), |r| {
            matches!(
                r,
                Reason::FetchFailed {
                    error: FetchError::Status { status: 503, .. },
                    ..
                }
            )
        }),
        (
            "TXT lookup fails",
            TxtAnswer::LookupFailed("SERVFAIL".into()),
            |r| matches!(r, Reason::LookupFailed(_)),
        ),
        // RFC 8461 3.3, 10.2: a missing record may be an attacker's doing.
        ("no TXT record", TxtAnswer::NoRecord, |r| {
            r == &Reason::NoRecord
        }),
        (
            "two TXT records",
            TxtAnswer::Found(vec![b"v=STSv1; id=a".to_vec(), b"v=STSv1; id=b".to_vec()]),
            |r| matches!(r, Reason::InvalidRecord(RecordError::Several(2))),
        ),
        (
            "TXT record without id",
            TxtAnswer::Found(vec![b"v=STSv1;".to_vec()]),
            |r| matches!(r, Reason::InvalidRecord(RecordError::Syntax(_))),
        ),
    ];
    for (why, answer, check) in cases {
        let applied = s.run(answer, later).await;
        assert_eq!(applied.source, Source::Cache, "{why}: {applied}");
        assert_eq!(applied.policy, fetched, "{why}");
        assert!(check(&applied.reason), "{why}: {:?}", applied.reason);
        assert!(
            applied.to_string().contains("from the cache"),
            "{why}: {applied}"
        );
    }
    assert_eq!(s.fake.calls(), 2, "only the new id was fetched");
}

// covers: MX7
#[tokio::test]
async fn mx7_no_policy_without_record_or_cache() {
    let s = setup(Ok(policy_text("enforce", 86400)));
    let cases: Vec<(TxtAnswer, ReasonCheck)> = vec![
        (TxtAnswer::NoRecord, |r| r == &Reason::NoRecord),
        (TxtAnswer::LookupFailed("timeout".into()), |r| {
            matches!(r, Reason::LookupFailed(_))
        }),
        (TxtAnswer::Found(vec![b"v=spf1 -all".to_vec()]), |r| {
            matches!(r, Reason::InvalidRecord(RecordError::NoStsRecord))
        }),
    ];
    for (answer, check) in cases {
        let applied = s.run(answer.clone(), at(T0)).await;
        assert_eq!(applied.source, Source::None, "{answer:?}");
        assert!(check(&applied.reason), "{answer:?}: {:?}", applied.reason);
        assert!(
            applied
                .to_string()
                .starts_with("no MTA-STS policy for example.com: ")
        );
    }
    assert_eq!(s.fake.calls(), 0);
    // An announced policy that cannot be fetched: none either.
    s.fake.set(Err(failure()));
    let applied = s.run(txt("one"), at(T0)).await;
    assert_eq!(applied.source, Source::None);
    assert_eq!(s.fake.calls(), 1);
}

// covers: MX7
#[tokio::test]
async fn mx7_failed_fetches_back_off_for_five_minutes() {
    let s = setup(Err(failure()));
    let applied = s.run(txt("one"), at(T0)).await;
    assert!(matches!(applied.reason, Reason::FetchFailed { .. }));
    assert_eq!(s.fake.calls(), 1);
    // Within five minutes, the same id is not fetched again.
    for later in [1, 60, 299] {
        let applied = s.run(txt("one"), at(T0 + later)).await;
        assert_eq!(applied.source, Source::None);
        assert_eq!(
            applied.reason,
            Reason::BackingOff {
                refresh: Refresh::NotCached,
                failed_at: at(T0)
            }
        );
        assert!(
            applied.to_string().contains("less than 5 minutes ago"),
            "{applied}"
        );
    }
    assert_eq!(s.fake.calls(), 1);
    // After five minutes it is; this failure starts a new wait.
    s.run(txt("one"), at(T0 + 300)).await;
    assert_eq!(s.fake.calls(), 2);
    s.run(txt("one"), at(T0 + 400)).await;
    assert_eq!(s.fake.calls(), 2);
    // The wait is per policy id (RFC 8461 3.3): a new id is fetched.
    s.fake.set(Ok(policy_text("enforce", 86400)));
    let applied = s.run(txt("two"), at(T0 + 420)).await;
    assert_eq!(applied.source, Source::Fetched);
    assert_eq!(s.fake.calls(), 3);
    // Success clears the failure.
    assert_eq!(s.cache.load(DOMAIN).unwrap().failure, None);
}

// covers: MX7
#[tokio::test]
async fn mx7_backoff_keeps_a_cached_policy() {
    let s = setup(Ok(policy_text("enforce", 86400)));
    s.run(txt("one"), at(T0)).await;
    s.fake.set(Err(failure()));
    s.run(txt("two"), at(T0 + 10)).await;
    let applied = s.run(txt("two"), at(T0 + 20)).await;
    assert_eq!(applied.source, Source::Cache);
    assert_eq!(applied.policy.map(|(_, id)| id), Some("one".into()));
    assert!(matches!(
        applied.reason,
        Reason::BackingOff {
            refresh: Refresh::NewId { .. },
            ..
        }
    ));
    assert_eq!(s.fake.calls(), 2);
}

// covers: MX7
#[tokio::test]
async fn mx7_testing_and_none_are_reported_as_they_are() {
    for (mode, expected) in [("testing", PolicyMode::Testing), ("none", PolicyMode::None)] {
        let s = setup(Ok(policy_text(mode, 86400)));
        let applied = s.run(txt("one"), at(T0)).await;
        assert_eq!(applied.mode(), Some(expected));
        assert!(
            applied.to_string().contains(&format!("mode {mode}")),
            "{applied}"
        );
    }
}

// covers: MX7
#[tokio::test]
async fn mx7_cache_problems_are_warnings() {
    // A corrupt file: ignored with a reason, and replaced.
    let s = setup(Ok(policy_text("enforce", 86400)));
    std::fs::create_dir_all(s.cache.dir()).unwrap();
    std::fs::write(s.cache.dir().join(DOMAIN), "garbage").unwrap();
    let applied = s.run(txt("one"), at(T0)).await;
    assert_eq!(applied.source, Source::Fetched);
    assert!(matches!(
        applied.warnings.as_slice(),
        [CacheError::Corrupt { .. }]
    ));
    assert!(s.cache.load(DOMAIN).is_ok());

    // A cache that cannot be written: the fetched policy still applies.
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let cache = Cache::new(&not_a_dir);
    let fake = FakeFetch::new(Ok(policy_text("enforce", 86400)));
    let applied = policy_for(DOMAIN, txt("one"), &fake, &cache, at(T0)).await;
    assert_eq!(applied.source, Source::Fetched);
    assert!(!applied.warnings.is_empty());

    // A domain that is not a host name: no policy, no fetch, no file.
    let applied = policy_for("../etc", txt("one"), &fake, &cache, at(T0)).await;
    assert_eq!(applied.source, Source::None);
    assert!(matches!(applied.reason, Reason::InvalidDomain(_)));
    assert_eq!(fake.calls(), 1);
}

#[test]
fn policy_for_can_run_on_any_thread() {
    fn send<T: Send>(_: T) {}
    let fetcher = HttpsFetch {
        resolver: LOOPBACK.to_vec(),
        options: FetchOptions::default(),
    };
    let cache = Cache::new("/nonexistent");
    send(policy_for(
        DOMAIN,
        TxtAnswer::NoRecord,
        &fetcher,
        &cache,
        at(T0),
    ));
}

// covers: MX7
#[tokio::test]
async fn mx7_verbose_lines_say_where_the_policy_came_from() {
    let s = setup(Ok(policy_text("enforce", 86400)));
    let fetched = s.run(txt("one"), at(T0)).await;
    assert_eq!(
        fetched.to_string(),
        "MTA-STS policy for example.com (id one, fetched, valid until 2023-11-15 22:13:20 UTC): \
         mode enforce, mx mx.example.com; fetched because none was cached"
    );
    let cached = s
        .run(TxtAnswer::LookupFailed("SERVFAIL".into()), at(T0 + 60))
        .await;
    assert_eq!(
        cached.to_string(),
        "MTA-STS policy for example.com (id one, from the cache, valid until 2023-11-15 \
         22:13:20 UTC): mode enforce, mx mx.example.com; the _mta-sts TXT lookup failed: SERVFAIL"
    );
    let none = policy_for(
        "example.org",
        TxtAnswer::NoRecord,
        &s.fake,
        &s.cache,
        at(T0),
    )
    .await;
    assert_eq!(
        none.to_string(),
        "no MTA-STS policy for example.org: there is no _mta-sts TXT record"
    );
}
