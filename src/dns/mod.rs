//! DNS lookups with their DNSSEC status: the answers direct delivery acts
//! on (MX, A/AAAA, TLSA, TXT), each marked secure or insecure, and every
//! failure kept apart from "no records" (MX3: a bogus answer never reads as
//! an empty one).
//!
//! Two ways of knowing an answer is authentic sit behind [`Resolve`]:
//! trusting the AD bit of a validating resolver (`stub`, RFC 6840 5.7-5.8;
//! only for a resolver on loopback or one the system declares trusted with
//! `options trust-ad`), and validating locally from a trust anchor
//! (`validate`, RFC 4033-4035).
//! This module applies no delivery policy; `route` does.

mod stub;
mod validate;

#[cfg(test)]
pub(crate) mod fake;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record, RecordType};

// The record type of TLSA answers is the one the DANE verifier takes.
use crate::tls::Tlsa;

pub use stub::{AdTrust, ResolvConf, StubResolver, interpret};
pub use validate::{SetupError, ValidatingResolver, check_anchor_text};

/// Whether an answer was authenticated by DNSSEC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Security {
    /// Not authenticated: an unsigned zone, an untrusted resolver, or an AD
    /// bit that was not set.
    Insecure,
    /// Authenticated by a validating resolver whose AD bit is trusted, or by
    /// local validation.
    Secure,
}

impl Security {
    /// The security of an answer built from two: secure only if both are.
    pub fn and(self, other: Security) -> Security {
        self.min(other)
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Secure => "DNSSEC secure",
            Security::Insecure => "not DNSSEC secure",
        })
    }
}

/// Why a lookup gave no answer. Every variant but `NxDomain` is temporary:
/// the caller must not read it as "no records".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The name does not exist (RCODE NXDOMAIN): permanent.
    NxDomain { name: String, security: Security },
    /// The resolver answered SERVFAIL: a validating resolver says so for a
    /// bogus answer, so it must never downgrade to "no records".
    ServFail { name: String },
    /// Local validation found the answer bogus.
    Bogus { name: String, reason: String },
    /// No usable answer within the lookup's time limit.
    Timeout { name: String, limit: Duration },
    /// Anything else: a refused query, a malformed answer, a network error.
    Failed { name: String, reason: String },
}

impl LookupError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, LookupError::NxDomain { .. })
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NxDomain { name, .. } => write!(f, "{name} does not exist (NXDOMAIN)"),
            LookupError::ServFail { name } => write!(
                f,
                "the resolver failed to answer for {name} (SERVFAIL; a validating resolver \
                 says so when the DNSSEC signatures are bogus)"
            ),
            LookupError::Bogus { name, reason } => {
                write!(f, "the DNSSEC answer for {name} is bogus: {reason}")
            }
            LookupError::Timeout { name, limit } => {
                write!(f, "no answer for {name} within {} s", limit.as_secs_f64())
            }
            LookupError::Failed { name, reason } => write!(f, "looking up {name} failed: {reason}"),
        }
    }
}

impl std::error::Error for LookupError {}

/// The records of one name and type, after CNAMEs, as the resolver gave
/// them: a response that exists but has no records of the type (NODATA) is
/// an empty list.
#[derive(Clone, Debug)]
pub struct Response {
    pub records: Vec<Record>,
    pub security: Security,
}

/// A lookup in flight.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = Result<Response, LookupError>> + Send + 'a>>;

/// A source of DNS answers with their DNSSEC status.
pub trait Resolve: Send + Sync {
    /// The answer section for `name` and `rtype`. CNAMEs in it are kept;
    /// [`typed`] follows them.
    fn query(&self, name: &Name, rtype: RecordType) -> Lookup<'_>;

    /// How answers are authenticated, for `-v`: "the AD bit of 127.0.0.53:53 (on loopback)".
    fn describe(&self) -> String;
}

/// How many CNAMEs a lookup follows before it gives up (RFC 1034 3.6.2
/// warns of chains; resolvers commonly stop around 8-16).
pub const CNAME_LIMIT: usize = 8;

/// Records of one type, with the name they were found at after CNAMEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    pub records: Vec<T>,
    pub security: Security,
    /// The name the records belong to: the queried name, or the end of its
    /// CNAME chain.
    pub canonical: String,
}

/// An MX record (RFC 5321 5.1). A null MX (RFC 7505) has the exchange ".".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// Lower case, without the trailing dot; "." for a null MX.
    pub exchange: String,
}

/// A domain or host name as tlsend prints and compares it: lower case,
/// without the trailing dot.
pub fn display_name(name: &Name) -> String {
    let text = name.to_lowercase().to_ascii();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => text,
    }
}

/// Parses a domain name given as text (a recipient domain, an MX target).
pub fn parse_name(text: &str) -> Result<Name, LookupError> {
    // A Unicode domain (RFC 6531 addresses) is looked up by its A-labels
    // (IDNA, RFC 5891): `bücher.example` is `xn--bcher-kva.example`.
    let parsed = if text.is_ascii() {
        Name::from_ascii(text)
    } else {
        Name::from_utf8(text)
    };
    let mut name = parsed.map_err(|e| LookupError::Failed {
        name: text.to_string(),
        reason: format!("not a domain name: {e}"),
    })?;
    // Always absolute: a relative name would be completed with the
    // resolver's search list, and mail domains are never relative.
    name.set_fqdn(true);
    Ok(name)
}

/// Looks up `rtype` at `name`, follows CNAMEs (those in the answer, then
/// new queries) up to [`CNAME_LIMIT`], and maps the records with `pick`.
/// The security is that of every response used.
pub async fn typed<T>(
    resolver: &dyn Resolve,
    name: &Name,
    rtype: RecordType,
    pick: impl Fn(&RData) -> Option<T>,
) -> Result<Answer<T>, LookupError> {
    let mut current = name.to_lowercase();
    let mut security = Security::Secure;
    let mut followed = 0;
    loop {
        let queried = current.clone();
        let response = resolver.query(&queried, rtype).await?;
        security = security.and(response.security);
        // Walk the chain inside this response first.
        loop {
            let found: Vec<T> = response
                .records
                .iter()
                .filter(|r| r.record_type() == rtype && r.name.eq_ignore_root_case(&current))
                .filter_map(|r| pick(&r.data))
                .collect();
            if !found.is_empty() {
                return Ok(Answer {
                    records: found,
                    security,
                    canonical: display_name(&current),
                });
            }
            let alias = response.records.iter().find_map(|r| match &r.data {
                RData::CNAME(target) if r.name.eq_ignore_root_case(&current) => {
                    Some(target.0.to_lowercase())
                }
                _ => None,
            });
            match alias {
                Some(target) => {
                    followed += 1;
                    if followed > CNAME_LIMIT {
                        return Err(LookupError::Failed {
                            name: display_name(name),
                            reason: format!("more than {CNAME_LIMIT} CNAMEs"),
                        });
                    }
                    current = target;
                }
                None => break,
            }
        }
        // The chain ended without records of the type: NODATA where we
        // asked, else the resolver stopped mid-chain and we ask again.
        if current.eq_ignore_root_case(&queried) {
            return Ok(Answer {
                records: Vec::new(),
                security,
                canonical: display_name(&current),
            });
        }
    }
}

/// The MX records of `domain`.
pub async fn mx(resolver: &dyn Resolve, domain: &Name) -> Result<Answer<Mx>, LookupError> {
    typed(resolver, domain, RecordType::MX, |data| match data {
        RData::MX(mx) => Some(Mx {
            preference: mx.preference,
            exchange: if mx.exchange.is_root() {
                ".".to_string()
            } else {
                display_name(&mx.exchange)
            },
        }),
        _ => None,
    })
    .await
}

/// The IPv6 and IPv4 addresses of `host`, looked up together; IPv6 first.
/// The security is that of the records returned: an empty family does not
/// lower it (in a signed zone a genuine denial is signed too, so an
/// unsigned empty AAAA next to a secure A is a forgery or a resolver quirk,
/// and must not be able to switch DANE off for the host). With no records
/// at all, both answers count. One family failing while the other answers
/// still fails: a host whose addresses cannot all be known is not
/// half-known (a bogus AAAA next to a good A is an attack on one of them).
pub async fn addresses(resolver: &dyn Resolve, host: &Name) -> Result<Answer<IpAddr>, LookupError> {
    let v6 = typed(resolver, host, RecordType::AAAA, |data| match data {
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    });
    let v4 = typed(resolver, host, RecordType::A, |data| match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        _ => None,
    });
    let (v6, v4) = tokio::join!(v6, v4);
    let inconsistent = || LookupError::Failed {
        name: display_name(host),
        reason: "the resolver says the name does not exist for one address family and \
                 exists for the other"
            .into(),
    };
    match (v6, v4) {
        (Ok(v6), Ok(v4)) => {
            let security = match (v6.records.is_empty(), v4.records.is_empty()) {
                (false, true) => v6.security,
                (true, false) => v4.security,
                // Unsigned addresses next to signed ones for one name: one
                // family is forged (or half the chain is unsigned).
                (false, false) if v6.security != v4.security => {
                    return Err(LookupError::Failed {
                        name: display_name(host),
                        reason: "its IPv6 and IPv4 addresses differ in DNSSEC status".into(),
                    });
                }
                _ => v6.security.and(v4.security),
            };
            let canonical = if v6.records.is_empty() {
                v4.canonical
            } else {
                v6.canonical
            };
            let mut records = v6.records;
            records.extend(v4.records);
            Ok(Answer {
                records,
                security,
                canonical,
            })
        }
        // Both say the name does not exist: it does not.
        (Err(e @ LookupError::NxDomain { .. }), Err(LookupError::NxDomain { .. })) => Err(e),
        (Err(LookupError::NxDomain { .. }), Ok(_)) | (Ok(_), Err(LookupError::NxDomain { .. })) => {
            Err(inconsistent())
        }
        // Otherwise a real failure beats NXDOMAIN on one side.
        (Err(LookupError::NxDomain { .. }), Err(e)) | (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The TLSA records for SMTP on `port` at `host` (RFC 7672 2.2: `_25._tcp.<host>`).
pub async fn tlsa(
    resolver: &dyn Resolve,
    host: &Name,
    port: u16,
) -> Result<Answer<Tlsa>, LookupError> {
    let name = Name::from_ascii(format!("_{port}._tcp"))
        .and_then(|prefix| prefix.append_domain(host))
        .map_err(|e| LookupError::Failed {
            name: display_name(host),
            reason: format!("cannot form the TLSA name: {e}"),
        })?;
    typed(resolver, &name, RecordType::TLSA, |data| match data {
        RData::TLSA(t) => Some(Tlsa::new(
            t.cert_usage.into(),
            t.selector.into(),
            t.matching.into(),
            t.cert_data.clone(),
        )),
        _ => None,
    })
    .await
}

/// The TXT records at `name`, each one's character-strings joined
/// (RFC 7208 3.3 and RFC 8461 3.1 read them so). Bytes that are not UTF-8
/// are replaced: these records are ASCII by definition.
pub async fn txt(resolver: &dyn Resolve, name: &Name) -> Result<Answer<String>, LookupError> {
    typed(resolver, name, RecordType::TXT, |data| match data {
        RData::TXT(txt) => {
            let joined: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            Some(String::from_utf8_lossy(&joined).into_owned())
        }
        _ => None,
    })
    .await
}

#[cfg(test)]
mod tests;
