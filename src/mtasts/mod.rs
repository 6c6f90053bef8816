//! MTA-STS (RFC 8461): which policy applies to a recipient domain, if any.
//!
//! A domain announces a policy with a `_mta-sts` TXT record carrying an id
//! ([`record`], RFC 8461 3.1) and serves it at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` ([`fetch`], RFC 8461
//! 3.3). The policy ([`policy`], RFC 8461 3.2) names the MX hosts that may
//! receive the domain's mail and a mode; a sender caches it for `max_age`
//! seconds ([`cache`]) and fetches it again only when the TXT id changes or
//! the cached copy expires.
//!
//! [`policy_for`] puts these together as RFC 8461 3.3 and 5.1 describe,
//! given the TXT answer the caller looked up and the current time. What the
//! caller then does with the policy (MX2, MX5, MX7) is its own business:
//! this module reports `testing` and `none` policies as they are and
//! decides nothing about delivery. It does no DNS and no SMTP, and never
//! imports `cli` or `config`.

pub mod cache;
pub mod fetch;
pub mod policy;
pub mod record;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

pub use cache::{Cache, CacheError, CachedPolicy, Entry, FAILURE_BACKOFF, FailedFetch};
pub use fetch::{FetchError, FetchOptions, HttpsFetch, ResolveHost, Roots};
pub use policy::{MxPattern, Policy, PolicyError, PolicyMode};
pub use record::RecordError;

/// The caller's lookup of `_mta-sts.<domain>` TXT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The records, each one's character-strings already concatenated.
    Found(Vec<Vec<u8>>),
    /// NXDOMAIN or no TXT records: the domain announces no policy.
    NoRecord,
    /// The lookup failed (SERVFAIL, timeout, a bogus DNSSEC answer); why,
    /// in words.
    LookupFailed(String),
}

/// Fetches a domain's policy. [`HttpsFetch`] is the real one; tests
/// inject fakes.
pub trait PolicyFetch: Sync {
    /// The policy of `domain` (a host name, lower case, no trailing dot).
    fn fetch(&self, domain: &str) -> impl Future<Output = Result<Policy, FetchError>> + Send;
}

/// Where the applied policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Fetched now (and stored in the cache).
    Fetched,
    /// From the cache, unexpired.
    Cache,
    /// No policy applies.
    None,
}

/// Why a fetch was due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Nothing cached for the domain.
    NotCached,
    /// The cached policy had expired.
    Expired,
    /// The TXT record announces another id than the cached policy's.
    NewId { cached: String },
}

impl fmt::Display for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refresh::NotCached => write!(f, "none was cached"),
            Refresh::Expired => write!(f, "the cached one had expired"),
            Refresh::NewId { cached } => write!(f, "the cached one has the old id {cached}"),
        }
    }
}

/// Why [`policy_for`] decided as it did, for `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The cached policy's id is the TXT record's (RFC 8461 3.1).
    Unchanged,
    /// A fetch was due and succeeded.
    Fetched(Refresh),
    /// The domain has no `_mta-sts` TXT record. A cached policy still
    /// applies (RFC 8461 3.3, 10.2): a missing record may be an attacker's
    /// doing, and a domain leaving MTA-STS publishes mode `none` first
    /// (RFC 8461 8.3).
    NoRecord,
    /// The TXT answer announces no policy (RFC 8461 3.1).
    InvalidRecord(RecordError),
    /// The TXT lookup failed.
    LookupFailed(String),
    /// A fetch was due and failed.
    FetchFailed { refresh: Refresh, error: FetchError },
    /// A fetch was due, but one for the same id failed less than five
    /// minutes before (RFC 8461 3.3).
    BackingOff {
        refresh: Refresh,
        failed_at: SystemTime,
    },
    /// The domain is not a host name.
    InvalidDomain(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unchanged => write!(f, "the TXT record's id is the cached policy's"),
            Reason::Fetched(refresh) => write!(f, "fetched because {refresh}"),
            Reason::NoRecord => write!(f, "there is no _mta-sts TXT record"),
            Reason::InvalidRecord(e) => write!(f, "{e}"),
            Reason::LookupFailed(why) => {
                write!(
                    f,
                    "the _mta-sts TXT lookup failed: {}",
                    crate::text::printable(why)
                )
            }
            Reason::FetchFailed { refresh, error } => {
                write!(f, "a fetch was due ({refresh}) but failed: {error}")
            }
            Reason::BackingOff { refresh, failed_at } => write!(
                f,
                "a fetch was due ({refresh}), but one failed at {}, less than {} minutes ago",
                time_text(*failed_at),
                FAILURE_BACKOFF.as_secs() / 60
            ),
            Reason::InvalidDomain(domain) => write!(
                f,
                "\"{}\" is not a domain name",
                crate::text::printable(domain)
            ),
        }
    }
}

/// The policy that applies to a domain, where it came from and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The domain, lower case, without a trailing dot.
    pub domain: String,
    pub source: Source,
    /// The policy and its id; `None` exactly when `source` is
    /// [`Source::None`]. Mode `testing` and `none` policies are here as
    /// they are: the caller decides what they mean.
    pub policy: Option<(Policy, String)>,
    /// When the policy expires.
    pub expires: Option<SystemTime>,
    pub reason: Reason,
    /// Cache problems that did not change the outcome (a corrupt file
    /// ignored, a write that failed).
    pub warnings: Vec<CacheError>,
}

impl Applied {
    fn none(domain: &str, reason: Reason, warnings: Vec<CacheError>) -> Applied {
        Applied {
            domain: domain.to_string(),
            source: Source::None,
            policy: None,
            expires: None,
            reason,
            warnings,
        }
    }

    fn with(
        domain: &str,
        source: Source,
        cached: CachedPolicy,
        reason: Reason,
        warnings: Vec<CacheError>,
    ) -> Applied {
        Applied {
            domain: domain.to_string(),
            source,
            expires: Some(cached.expires()),
            policy: Some((cached.policy, cached.id)),
            reason,
            warnings,
        }
    }

    /// The policy, if one applies.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref().map(|(policy, _)| policy)
    }

    /// The mode of the applied policy, if one applies.
    pub fn mode(&self) -> Option<PolicyMode> {
        self.policy().map(|p| p.mode)
    }
}

/// One line for `-v`, e.g. "MTA-STS policy for example.com (id 20240101,
/// from the cache, valid until …): mode enforce, mx mx.example.com; the TXT
/// record's id is the cached policy's".
impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            None => write!(f, "no MTA-STS policy for {}: {}", self.domain, self.reason),
            Some((policy, id)) => {
                let from = match self.source {
                    Source::Fetched => "fetched",
                    _ => "from the cache",
                };
                write!(f, "MTA-STS policy for {} (id {id}, {from}", self.domain)?;
                if let Some(expires) = self.expires {
                    write!(f, ", valid until {}", time_text(expires))?;
                }
                write!(f, "): mode {}", policy.mode)?;
                if !policy.mx.is_empty() {
                    let mx: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
                    write!(f, ", mx {}", mx.join(" "))?;
                }
                write!(f, "; {}", self.reason)
            }
        }
    }
}

fn time_text(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// The policy that applies to `domain` at `now` (RFC 8461 3.3 and 5.1),
/// given the caller's `_mta-sts` TXT lookup.
///
/// - A cached, unexpired policy whose id is the TXT record's is used
///   without fetching.
/// - Otherwise (nothing cached, expired, or a new id) the policy is
///   fetched and, on success, cached and used.
/// - If the fetch fails, the TXT lookup fails, the TXT answer announces no
///   policy, or there is no TXT record at all, a cached unexpired policy
///   still applies (RFC 8461 3.3: "if no "live" policy can be discovered
///   via DNS or fetched via HTTPS, but a valid (non-expired) policy exists
///   in the sender's cache, the sender MUST apply that cached policy").
/// - After a failed fetch, no fetch for the same id for five minutes (RFC
///   8461 3.3).
///
/// Cache files are small and read and written on the calling thread.
pub async fn policy_for(
    domain: &str,
    txt: TxtAnswer,
    fetch: &impl PolicyFetch,
    cache: &Cache,
    now: SystemTime,
) -> Applied {
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    if !policy::is_domain(bare) {
        return Applied::none(domain, Reason::InvalidDomain(domain.into()), Vec::new());
    }
    let domain = bare.to_ascii_lowercase();
    let mut warnings = Vec::new();
    let mut entry = cache.load(&domain).unwrap_or_else(|e| {
        warnings.push(e);
        Entry::default()
    });
    let fresh = entry.policy.clone().filter(|c| c.is_fresh(now));
    let from_cache = |reason, warnings| match fresh.clone() {
        Some(cached) => Applied::with(&domain, Source::Cache, cached, reason, warnings),
        None => Applied::none(&domain, reason, warnings),
    };

    // RFC 8461 3.1: the TXT record says whether there is a policy and which.
    let id = match txt {
        TxtAnswer::Found(records) => match record::parse_txt(&records) {
            Ok(id) => id,
            Err(e) => return from_cache(Reason::InvalidRecord(e), warnings),
        },
        TxtAnswer::NoRecord => return from_cache(Reason::NoRecord, warnings),
        TxtAnswer::LookupFailed(why) => return from_cache(Reason::LookupFailed(why), warnings),
    };
    let refresh = match (&fresh, &entry.policy) {
        (Some(cached), _) if cached.id == id => {
            return from_cache(Reason::Unchanged, warnings);
        }
        (Some(cached), _) => Refresh::NewId {
            cached: cached.id.clone(),
        },
        (None, Some(_)) => Refresh::Expired,
        (None, None) => Refresh::NotCached,
    };
    // RFC 8461 3.3: after a failure, "limit further attempts to a period of
    // five minutes or longer per version ID".
    if let Some(failure) = &entry.failure
        && failure.holds_back(&id, now)
    {
        let reason = Reason::BackingOff {
            refresh,
            failed_at: failure.at,
        };
        return from_cache(reason, warnings);
    }
    match fetch.fetch(&domain).await {
        Ok(policy) => {
            let cached = CachedPolicy {
                id,
                policy,
                fetched: now,
            };
            entry.policy = Some(cached.clone());
            entry.failure = None;
            if let Err(e) = cache.save(&domain, &entry) {
                warnings.push(e);
            }
            Applied::with(
                &domain,
                Source::Fetched,
                cached,
                Reason::Fetched(refresh),
                warnings,
            )
        }
        Err(error) => {
            entry.failure = Some(FailedFetch { id, at: now });
            if let Err(e) = cache.save(&domain, &entry) {
                warnings.push(e);
            }
            from_cache(Reason::FetchFailed { refresh, error }, warnings)
        }
    }
}
