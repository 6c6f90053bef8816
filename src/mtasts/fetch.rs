//! Fetching a policy over HTTPS (RFC 8461 3.3):
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`.
//!
//! - The connection goes to the addresses the caller gives (resolved
//!   through tlsend's own DNS layer) and the port it gives (443 unless a
//!   test or configuration says otherwise), while SNI, the Host header and
//!   the name the certificate is checked against stay `mta-sts.<domain>`.
//!   This is ureq's pluggable resolver: ureq never resolves anything, and
//!   no proxy from the environment is used.
//! - The certificate is checked by WebPKI against the system's trusted CAs
//!   (the roots SMTP uses; rustls-native-certs honours SSL_CERT_FILE and
//!   SSL_CERT_DIR) or against roots the caller injects, with tlsend's one
//!   crypto provider ([`crate::tls::provider`]), TLS 1.2 or 1.3.
//! - Redirects are not followed (RFC 8461 3.3: "HTTP 3xx redirects MUST NOT
//!   be followed"); only 200 is a policy.
//! - The body is at most 64 KiB and the whole exchange at most 60 s (RFC
//!   8461 3.3's suggested limits); a longer body is an error, never cut.
//! - The Content-Type must be `text/plain` (RFC 8461 3.2: "senders SHOULD
//!   validate that the media type is "text/plain""); its parameters are
//!   ignored, and the body must be UTF-8 for the parser anyway. A missing
//!   Content-Type is refused too: it does not say `text/plain`.
//!
//! ureq is blocking: [`fetch_policy`] runs it on tokio's blocking pool.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::PolicyFetch;
use super::policy::{Policy, PolicyError, is_domain};
use crate::text::printable;

/// The well-known path of the policy (RFC 8461 3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Largest policy body accepted (RFC 8461 3.3 suggests a maximum policy
/// size of 64 kilobytes).
pub const MAX_BODY: u64 = 64 * 1024;
/// Longest a fetch may take, from connecting to the end of the body (RFC
/// 8461 3.3: "A suggested timeout is one minute").
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many addresses are tried (ureq's limit).
const MAX_ADDRS: usize = 16;

/// The CAs the policy host's certificate must chain to.
#[derive(Clone, Debug, Default)]
pub enum Roots {
    /// The system's trusted CAs, as for WebPKI SMTP.
    #[default]
    System,
    /// Only these (tests, or a configured CA).
    Certificates(Arc<Vec<CertificateDer<'static>>>),
}

/// How a policy is fetched; [`Default`] is what RFC 8461 suggests.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The port connected to; the URL names none (443).
    pub port: u16,
    /// For the whole exchange.
    pub timeout: Duration,
    pub roots: Roots,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            port: 443,
            timeout: DEFAULT_TIMEOUT,
            roots: Roots::System,
        }
    }
}

/// Why no policy was fetched. Whatever the variant, RFC 8461 3.3 has the
/// caller carry on as if the domain had no policy, unless a cached,
/// unexpired one exists, which then applies; and not fetch again for five
/// minutes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The policy domain is not a host name, so there is no URL.
    InvalidDomain(String),
    /// The caller's DNS layer found no address for the policy host.
    Resolve { host: String, reason: String },
    /// No trusted CA could be loaded (a local problem).
    Roots(String),
    /// No connection to any of the addresses (`at`: the addresses and port).
    Connect {
        host: String,
        at: String,
        reason: String,
    },
    /// The TLS handshake failed or the certificate was not accepted.
    Tls { host: String, reason: String },
    /// The exchange did not finish within the time limit.
    Timeout { url: String, limit: Duration },
    /// A 3xx answer; not followed.
    Redirect {
        url: String,
        status: u16,
        location: Option<String>,
    },
    /// Any other status than 200.
    Status { url: String, status: u16 },
    /// The answer is not declared `text/plain`.
    ContentType { url: String, found: Option<String> },
    /// The body is longer than [`MAX_BODY`].
    TooLarge { url: String, limit: u64 },
    /// The server broke HTTP.
    Http { url: String, reason: String },
    /// The body is not a valid policy.
    Parse { url: String, error: PolicyError },
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidDomain(domain) => write!(
                f,
                "\"{}\" is not a domain name an MTA-STS policy can be fetched for",
                printable(domain)
            ),
            FetchError::Resolve { host, reason } => {
                write!(f, "cannot find the address of {host}: {reason}")
            }
            FetchError::Roots(reason) => write!(
                f,
                "cannot load the trusted CAs to check MTA-STS policy hosts: {reason}; install \
                 the system CA bundle (ca-certificates) or set SSL_CERT_FILE"
            ),
            FetchError::Connect { host, at, reason } => {
                write!(f, "cannot connect to {host} at {at}: {reason}")
            }
            FetchError::Tls { host, reason } => write!(
                f,
                "TLS with {host} failed: {reason}; the domain's MTA-STS policy host must present \
                 a valid certificate for {host}"
            ),
            FetchError::Timeout { url, limit } => write!(
                f,
                "fetching {url} did not finish within {} s",
                limit.as_secs_f64()
            ),
            FetchError::Redirect {
                url,
                status,
                location,
            } => {
                write!(f, "{url} answered {status}, a redirect")?;
                if let Some(location) = location {
                    write!(f, " to {location}")?;
                }
                write!(f, "; RFC 8461 forbids following it")
            }
            FetchError::Status { url, status } => {
                write!(f, "{url} answered HTTP status {status}, not 200")
            }
            FetchError::ContentType { url, found } => match found {
                Some(found) => write!(
                    f,
                    "{url} is served as {found}; an MTA-STS policy must be text/plain (RFC 8461 \
                     3.2)"
                ),
                None => write!(
                    f,
                    "{url} is served without a Content-Type; an MTA-STS policy must be \
                     text/plain (RFC 8461 3.2)"
                ),
            },
            FetchError::TooLarge { url, limit } => {
                write!(f, "{url} is larger than {limit} bytes")
            }
            FetchError::Http { url, reason } => write!(f, "fetching {url} failed: {reason}"),
            FetchError::Parse { url, error } => write!(f, "{url}: {error}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// `mta-sts.<domain>`, the host that serves the policy (RFC 8461 3.3).
pub fn policy_host(domain: &str) -> String {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    format!("mta-sts.{}", domain.to_ascii_lowercase())
}

/// `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 3.3).
pub fn policy_url(domain: &str) -> String {
    format!("https://{}{POLICY_PATH}", policy_host(domain))
}

/// Where the policy host's addresses come from: tlsend's DNS layer. The
/// fetcher asks only when it is about to fetch, so a fresh cached policy
/// costs no lookup.
pub trait ResolveHost: Sync {
    /// The addresses of `host`, or why there are none, in words.
    fn addresses(&self, host: &str) -> impl Future<Output = Result<Vec<IpAddr>, String>> + Send;
}

/// A fixed list of addresses, whatever the host (tests, a configured host).
impl ResolveHost for Vec<IpAddr> {
    async fn addresses(&self, _host: &str) -> Result<Vec<IpAddr>, String> {
        Ok(self.clone())
    }
}

/// The real fetcher: resolves `mta-sts.<domain>` through `resolver`, then
/// [`fetch_policy`].
#[derive(Clone, Debug)]
pub struct HttpsFetch<R> {
    pub resolver: R,
    pub options: FetchOptions,
}

impl<R: ResolveHost> PolicyFetch for HttpsFetch<R> {
    async fn fetch(&self, domain: &str) -> Result<Policy, FetchError> {
        let host = policy_host(domain);
        let addrs = self
            .resolver
            .addresses(&host)
            .await
            .map_err(|reason| FetchError::Resolve {
                host: host.clone(),
                reason,
            })?;
        fetch_policy(domain, &addrs, &self.options).await
    }
}

/// Fetches and parses the policy of `domain` from `addrs` (tried in order)
/// on `options.port`, on tokio's blocking pool.
pub async fn fetch_policy(
    domain: &str,
    addrs: &[IpAddr],
    options: &FetchOptions,
) -> Result<Policy, FetchError> {
    let domain = domain.to_string();
    let addrs = addrs.to_vec();
    let options = options.clone();
    let url = policy_url(&domain);
    tokio::task::spawn_blocking(move || fetch_policy_blocking(&domain, &addrs, &options))
        .await
        .unwrap_or_else(|e| {
            Err(FetchError::Http {
                url,
                reason: format!("the fetch stopped unexpectedly: {e}"),
            })
        })
}

/// [`fetch_policy`], blocking the calling thread.
pub fn fetch_policy_blocking(
    domain: &str,
    addrs: &[IpAddr],
    options: &FetchOptions,
) -> Result<Policy, FetchError> {
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    if !is_domain(bare) {
        return Err(FetchError::InvalidDomain(domain.to_string()));
    }
    let host = policy_host(domain);
    let url = policy_url(domain);
    if addrs.is_empty() {
        return Err(FetchError::Resolve {
            host,
            reason: "no addresses".into(),
        });
    }
    let roots = match &options.roots {
        Roots::System => system_roots()?,
        Roots::Certificates(certs) => certs.clone(),
    };
    let shown_addrs: Vec<String> = addrs
        .iter()
        .take(MAX_ADDRS)
        .map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    let target = Target {
        host: host.clone(),
        url: url.clone(),
        at: format!("{} port {}", shown_addrs.join(", "), options.port),
        limit: options.timeout,
    };
    let agent = agent(addrs, options, &roots);
    let response = agent.get(&url).call().map_err(|e| classify(e, &target))?;

    let status = response.status().as_u16();
    if (300..400).contains(&status) {
        // RFC 8461 3.3: "HTTP 3xx redirects MUST NOT be followed"
        let location = response
            .headers()
            .get("location")
            .map(|v| shown(&String::from_utf8_lossy(v.as_bytes())));
        return Err(FetchError::Redirect {
            url,
            status,
            location,
        });
    }
    if status != 200 {
        return Err(FetchError::Status { url, status });
    }
    // RFC 8461 3.2: "senders SHOULD validate that the media type is
    // "text/plain""; parameters (charset) are ignored.
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_text_plain = content_type.as_deref().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/plain"))
    });
    if !is_text_plain {
        return Err(FetchError::ContentType {
            url,
            found: content_type.map(|ct| shown(&ct)),
        });
    }
    // RFC 8461 3.3: a suggested maximum policy size of 64 kilobytes; a
    // longer body is refused, never truncated.
    let body = response
        .into_body()
        .into_with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| classify(e, &target))?;
    Policy::parse(&body).map_err(|error| FetchError::Parse { url, error })
}

/// The system's trusted CAs, read now. The one place that knows where
/// they come from.
fn system_roots() -> Result<Arc<Vec<CertificateDer<'static>>>, FetchError> {
    // The same store as WebPKI SMTP certificates, read once per process.
    crate::tls::system_root_certificates().map_err(|e| FetchError::Roots(e.to_string()))
}

/// A one-request ureq agent: the caller's addresses, no proxy, no
/// redirects, statuses as answers, tlsend's crypto provider and `roots`.
fn agent(
    addrs: &[IpAddr],
    options: &FetchOptions,
    roots: &[CertificateDer<'static>],
) -> ureq::Agent {
    let roots: Vec<ureq::tls::Certificate<'static>> = roots
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(crate::tls::provider())
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .https_only(true)
        .proxy(None)
        // RFC 8461 3.3 (line "HTTP 3xx redirects MUST NOT be followed"): a
        // 3xx comes back as an answer and is refused above.
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(options.timeout))
        .max_idle_connections(0)
        .user_agent(concat!("tlsend/", env!("CARGO_PKG_VERSION")))
        .build();
    let resolver = FixedAddrs(
        addrs
            .iter()
            .take(MAX_ADDRS)
            .map(|ip| SocketAddr::new(*ip, options.port))
            .collect(),
    );
    ureq::Agent::with_parts(config, DefaultConnector::default(), resolver)
}

/// ureq's resolver, answering with the caller's addresses for the one host
/// the agent is used for.
#[derive(Debug)]
struct FixedAddrs(Vec<SocketAddr>);

impl Resolver for FixedAddrs {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for addr in &self.0 {
            out.push(*addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// What a fetch was for, to describe its failures.
struct Target {
    host: String,
    url: String,
    /// The addresses and port, e.g. "127.0.0.1, [::1] port 443".
    at: String,
    limit: Duration,
}

/// A ureq error in the terms of [`FetchError`].
fn classify(error: ureq::Error, target: &Target) -> FetchError {
    let host = target.host.clone();
    let url = target.url.clone();
    let limit = target.limit;
    let at = target.at.clone();
    match error {
        ureq::Error::Timeout(_) => FetchError::Timeout { url, limit },
        ureq::Error::BodyExceedsLimit(limit) => FetchError::TooLarge { url, limit },
        ureq::Error::Rustls(e) => FetchError::Tls {
            host,
            reason: describe_tls(&e),
        },
        ureq::Error::Tls(reason) => FetchError::Tls {
            host,
            reason: reason.to_string(),
        },
        ureq::Error::Io(e) => {
            // rustls reports handshake failures through io::Error.
            if let Some(tls) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return FetchError::Tls {
                    host,
                    reason: describe_tls(tls),
                };
            }
            if e.kind() == std::io::ErrorKind::TimedOut {
                return FetchError::Timeout { url, limit };
            }
            FetchError::Connect {
                host,
                at,
                reason: e.to_string(),
            }
        }
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => FetchError::Connect {
            host,
            at,
            reason: error.to_string(),
        },
        other => FetchError::Http {
            url,
            reason: printable(&other.to_string()),
        },
    }
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError;
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => "its certificate is not signed by a trusted CA".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "its certificate is for another name".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!("its certificate is outside its validity period ({error})"),
        _ => error.to_string(),
    }
}

/// Server text for a message: escaped and cut short.
fn shown(text: &str) -> String {
    const MAX: usize = 200;
    let cut = text
        .char_indices()
        .nth(MAX)
        .map_or(text, |(end, _)| &text[..end]);
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{more}", printable(cut))
}
