//! Where a message goes, as a value: for direct delivery, per recipient
//! domain, the MX hosts in the order they will be tried, each with its
//! addresses, how its name was validated (DNSSEC or MTA-STS), its TLSA set,
//! and the TLS it must get in this message's mode, or why it is skipped.
//! The plan is built from DNS answers and MTA-STS policies before any SMTP
//! connection, holds no I/O handle and prints itself (`-v`, and later
//! `--explain` and the queue). `deliver` walks it; nothing here connects.
//!
//! The rules, by mode (RFC 8689 4.2.1, RFC 7672, RFC 8461):
//! - require (MX2, MX3): a host is used only when its name is DNSSEC secure
//!   or matches an MTA-STS policy in enforce or testing mode, and then only
//!   with DANE (usable TLSA records) or else WebPKI for the host name;
//!   secure TLSA records that are all unusable, or a TLSA lookup that
//!   failed, skip the host.
//! - default (MX5): DANE and MTA-STS enforce are honoured, with no plain
//!   text fallback; otherwise STARTTLS is opportunistic.
//! - optional (MX6): both are ignored; STARTTLS is tried, and plain text
//!   follows a failed handshake.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use futures_util::stream::{self, StreamExt};

use crate::address::Address;
use crate::dns::{self, LookupError, Resolve, Security};
use crate::exit::{Classified, Sysexit};
use crate::mtasts::{self, PolicyMode};
use crate::outcome::Failure;
use crate::policy::Mode;
use crate::status::EnhancedCode;
use crate::tls::Tlsa;

/// The port of the SMTP service whose TLSA records are looked up.
const SMTP_PORT: u16 = 25;

/// How many MX hosts of a domain are planned, best first (Postfix tries at
/// most 5 addresses, smtp_mx_address_limit).
pub const MAX_MX_HOSTS: usize = 10;

/// How many domains are planned (and later delivered) at once.
pub const DOMAIN_CONCURRENCY: usize = 8;

/// An MTA-STS policy in enforce or testing mode that applies to a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsPolicy {
    pub policy: mtasts::Policy,
    pub id: String,
    /// Where it came from and why, for `-v` (the MTA-STS module's words).
    pub origin: String,
}

impl StsPolicy {
    pub fn enforce(&self) -> bool {
        self.policy.mode == PolicyMode::Enforce
    }

    /// RFC 8461 4.1: the host matches one of the `mx` patterns.
    pub fn matches(&self, host: &str) -> bool {
        self.policy.matches(host)
    }
}

/// What MTA-STS says about a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StsFinding {
    /// No policy in force (none published, or mode `none`), and why.
    NoPolicy(String),
    /// Whether a policy is in force could not be learned now (the TXT
    /// lookup or the fetch failed, nothing is cached): a host that only a
    /// policy could vouch for fails temporarily, not for good.
    Unavailable(String),
    Policy(StsPolicy),
}

/// A source of MTA-STS policies (RFC 8461): the TXT lookup, the HTTPS
/// fetch and the cache live behind it.
pub trait StsSource: Send + Sync {
    fn policy<'a>(
        &'a self,
        domain: &'a str,
    ) -> Pin<Box<dyn Future<Output = StsFinding> + Send + 'a>>;
}

/// MTA-STS is not consulted (optional mode, or a test).
pub struct NoSts;

impl StsSource for NoSts {
    fn policy<'a>(&'a self, _: &'a str) -> Pin<Box<dyn Future<Output = StsFinding> + Send + 'a>> {
        Box::pin(async { StsFinding::NoPolicy("MTA-STS not consulted".into()) })
    }
}

/// The plan for one message.
#[derive(Clone, Debug)]
pub struct Plan {
    pub mode: Mode,
    pub port: u16,
    pub domains: Vec<DomainPlan>,
}

/// One recipient domain.
#[derive(Clone, Debug)]
pub struct DomainPlan {
    pub domain: String,
    pub recipients: Vec<Address>,
    /// The MX answer's security; `None` when there was no usable answer.
    pub mx_security: Option<Security>,
    pub sts: StsFinding,
    /// The hosts in order, or why the domain fails before any connection.
    pub hosts: Result<Vec<HostPlan>, Failure>,
}

/// One MX host (or the domain itself, for an implicit MX).
#[derive(Clone, Debug)]
pub struct HostPlan {
    pub name: String,
    /// Where the TLSA records were found when not at `name`: the end of
    /// its secure CNAME chain (RFC 7672 2.2.2), also a DANE reference name.
    pub tlsa_base: Option<String>,
    /// `None` for an implicit MX (RFC 5321 5.1: no MX, the domain's address).
    pub preference: Option<u16>,
    pub addresses: Vec<IpAddr>,
    pub address_security: Option<Security>,
    pub validated: NameValidation,
    pub tlsa: TlsaState,
    /// The TLS this host must get, or why it is not used.
    pub tls: Result<HostTls, Skip>,
}

/// How the MX host name was shown to be the domain's (MX2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameValidation {
    Dnssec,
    MtaSts { id: String, enforce: bool },
    None,
}

/// The host's TLSA records (RFC 7672 2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsaState {
    /// Not looked up, and why (insecure addresses, optional mode).
    NotLooked(&'static str),
    /// A secure answer with no records: no DANE for this host.
    None,
    /// Secure records, at least one usable.
    Usable(Vec<Tlsa>),
    /// Secure records, none usable: TLS is mandatory but unauthenticated.
    Unusable(Vec<Tlsa>),
    /// The records exist but were not secure (RFC 7672 2.2: ignored).
    Insecure,
    /// The lookup failed for a secure host: never a downgrade (MX3).
    Failed(String),
}

/// The TLS a host must get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostTls {
    /// STARTTLS, the certificate matched against these records (RFC 7672).
    Dane(Vec<Tlsa>),
    /// STARTTLS, the certificate verified by WebPKI for the host name.
    WebPki,
    /// STARTTLS required, the certificate not authenticated (DANE records
    /// that are all unusable, RFC 7672 2.2 and 3.1.3).
    Encrypted,
    /// STARTTLS if offered, any certificate; `plain_fallback` retries in
    /// plain text after a failed handshake.
    Opportunistic { plain_fallback: bool },
}

/// Why a host is not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub reason: String,
    /// A DNS failure: the host may be usable later.
    pub temporary: bool,
    /// Require mode could not verify this host's TLS (counts towards 5.7.10).
    pub unverifiable: bool,
}

/// A failure of a whole domain, decided before any connection.
fn domain_failure(status: EnhancedCode, exit: Sysexit, detail: String) -> Failure {
    Failure {
        server: None,
        classified: Classified { status, exit },
        detail,
        hint: None,
        session: None,
    }
}

/// Groups `recipients` by domain, in the order they first appear.
pub fn by_domain(recipients: &[Address]) -> Vec<(String, Vec<Address>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<Address>> = BTreeMap::new();
    for recipient in recipients {
        let domain = recipient.domain().unwrap_or_default().to_ascii_lowercase();
        if !groups.contains_key(&domain) {
            order.push(domain.clone());
        }
        groups.entry(domain).or_default().push(recipient.clone());
    }
    order
        .into_iter()
        .map(|domain| {
            let recipients = groups.remove(&domain).unwrap_or_default();
            (domain, recipients)
        })
        .collect()
}

/// Builds the plan: every domain's lookups, at most [`DOMAIN_CONCURRENCY`]
/// domains at a time, in recipient order.
pub async fn plan(
    recipients: &[Address],
    mode: Mode,
    port: u16,
    resolver: &dyn Resolve,
    sts: &dyn StsSource,
) -> Plan {
    let domains = stream::iter(by_domain(recipients))
        .map(|(domain, recipients)| plan_domain(domain, recipients, mode, resolver, sts))
        .buffered(DOMAIN_CONCURRENCY)
        .collect()
        .await;
    Plan {
        mode,
        port,
        domains,
    }
}

async fn plan_domain(
    domain: String,
    recipients: Vec<Address>,
    mode: Mode,
    resolver: &dyn Resolve,
    sts: &dyn StsSource,
) -> DomainPlan {
    let mut plan = DomainPlan {
        domain: domain.clone(),
        recipients,
        mx_security: None,
        sts: StsFinding::NoPolicy("MTA-STS not consulted".into()),
        hosts: Err(domain_failure(
            EnhancedCode::new(4, 4, 3),
            Sysexit::TempFail,
            String::new(),
        )),
    };
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        plan.hosts = literal_host(literal, mode);
        return plan;
    }
    let name = match dns::parse_name(&domain) {
        Ok(name) => name,
        Err(e) => {
            plan.hosts = Err(domain_failure(
                EnhancedCode::new(5, 1, 2),
                Sysexit::NoHost,
                e.to_string(),
            ));
            return plan;
        }
    };
    // The MX and MTA-STS lookups run together (RFC 8461 5: the policy is
    // needed before the MX hosts are judged).
    let consult_sts = mode != Mode::Optional;
    // MTA-STS names (`_mta-sts.`, `mta-sts.`) are built from the A-labels.
    let ascii_domain = dns::display_name(&name);
    let (mx, sts_finding) = tokio::join!(dns::mx(resolver, &name), async {
        if consult_sts {
            Some(sts.policy(&ascii_domain).await)
        } else {
            None
        }
    });
    match sts_finding {
        Some(finding) => plan.sts = finding,
        None => plan.sts = StsFinding::NoPolicy("MTA-STS not consulted in optional mode".into()),
    }
    let policy = match &plan.sts {
        StsFinding::Policy(policy) => Some(policy),
        StsFinding::NoPolicy(_) | StsFinding::Unavailable(_) => None,
    };
    let sts_unavailable = matches!(plan.sts, StsFinding::Unavailable(_));
    let candidates: Vec<(String, Option<u16>, Security)> = match mx {
        Err(error) => {
            plan.hosts = Err(lookup_failure(&domain, "MX", &error));
            return plan;
        }
        Ok(answer) => {
            plan.mx_security = Some(answer.security);
            if answer.records.is_empty() {
                // RFC 5321 5.1: no MX, the domain itself is the host (by
                // its A-labels); its name is validated by the MX denial and
                // its own addresses.
                vec![(ascii_domain.clone(), None, answer.security)]
            } else if answer.records.iter().all(|mx| mx.exchange == ".") {
                // RFC 7505 3: a null MX says the domain takes no mail.
                plan.hosts = Err(domain_failure(
                    EnhancedCode::new(5, 1, 10),
                    Sysexit::NoHost,
                    format!("{domain} accepts no mail (null MX, RFC 7505)"),
                ));
                return plan;
            } else {
                order_mx(answer.records)
                    .into_iter()
                    // A domain publishing hundreds of MX records must not
                    // cost hundreds of lookups and connection timeouts.
                    .take(MAX_MX_HOSTS)
                    .map(|mx| (mx.exchange, Some(mx.preference), answer.security))
                    .collect()
            }
        }
    };
    let implicit = candidates.len() == 1 && candidates[0].1.is_none();
    let hosts: Vec<HostPlan> = stream::iter(candidates)
        .map(|(host, preference, mx_security)| {
            plan_host(
                host,
                preference,
                mx_security,
                implicit,
                (policy, sts_unavailable),
                mode,
                resolver,
            )
        })
        .buffered(DOMAIN_CONCURRENCY)
        .collect()
        .await;
    if implicit
        && hosts
            .first()
            .is_some_and(|h| h.addresses.is_empty() && h.address_security.is_some())
    {
        plan.hosts = Err(domain_failure(
            EnhancedCode::new(5, 1, 2),
            Sysexit::NoHost,
            format!("{domain} has no MX record and no address"),
        ));
        return plan;
    }
    if implicit && let Some(host) = hosts.first() {
        plan.mx_security = plan
            .mx_security
            .zip(host.address_security)
            .map(|(mx, addresses)| mx.and(addresses));
    }
    plan.hosts = Ok(hosts);
    plan
}

/// A domain that is an address literal (`user@[192.0.2.1]`): that host,
/// with no name to validate.
fn literal_host(literal: &str, mode: Mode) -> Result<Vec<HostPlan>, Failure> {
    let address: IpAddr = literal
        .strip_prefix("IPv6:")
        .unwrap_or(literal)
        .parse()
        .map_err(|_| {
            domain_failure(
                EnhancedCode::new(5, 1, 2),
                Sysexit::NoHost,
                format!("[{literal}] is not an address literal"),
            )
        })?;
    let tls = match mode {
        Mode::Require => Err(Skip {
            reason: "an address literal has no name that DNSSEC or MTA-STS could validate".into(),
            temporary: false,
            unverifiable: true,
        }),
        Mode::Default => Ok(HostTls::Opportunistic {
            plain_fallback: true,
        }),
        Mode::Optional => Ok(HostTls::Opportunistic {
            plain_fallback: true,
        }),
    };
    Ok(vec![HostPlan {
        name: address.to_string(),
        tlsa_base: None,
        preference: None,
        addresses: vec![address],
        address_security: None,
        validated: NameValidation::None,
        tlsa: TlsaState::NotLooked("an address literal has no TLSA name"),
        tls,
    }])
}

/// RFC 5321 5.1: lowest preference first, random order among equals;
/// null MX entries among real ones are dropped, and each host once.
fn order_mx(records: Vec<dns::Mx>) -> Vec<dns::Mx> {
    let rng = ring::rand::SystemRandom::new();
    let mut keyed: Vec<(u16, u32, dns::Mx)> = records
        .into_iter()
        .filter(|mx| mx.exchange != ".")
        .map(|mx| {
            let mut random = [0u8; 4];
            // A failed random source only makes the order fixed.
            let _ = ring::rand::SecureRandom::fill(&rng, &mut random);
            (mx.preference, u32::from_ne_bytes(random), mx)
        })
        .collect();
    keyed.sort_by_key(|(preference, random, _)| (*preference, *random));
    let mut seen = std::collections::HashSet::new();
    keyed
        .into_iter()
        .map(|(_, _, mx)| mx)
        .filter(|mx| seen.insert(mx.exchange.clone()))
        .collect()
}

/// Classifies a failed lookup for the domain as a whole.
fn lookup_failure(domain: &str, what: &str, error: &LookupError) -> Failure {
    if error.is_permanent() {
        domain_failure(
            EnhancedCode::new(5, 1, 2),
            Sysexit::NoHost,
            format!("{domain}: {error}"),
        )
    } else {
        // RFC 3463 4.4.3: directory server failure, temporary.
        domain_failure(
            EnhancedCode::new(4, 4, 3),
            Sysexit::TempFail,
            format!("{domain}: the {what} lookup failed: {error}"),
        )
    }
}

#[allow(clippy::too_many_arguments)]
async fn plan_host(
    name: String,
    preference: Option<u16>,
    mx_security: Security,
    implicit: bool,
    (policy, sts_unavailable): (Option<&StsPolicy>, bool),
    mode: Mode,
    resolver: &dyn Resolve,
) -> HostPlan {
    let mut host = HostPlan {
        name: name.clone(),
        preference,
        tlsa_base: None,
        addresses: Vec::new(),
        address_security: None,
        validated: NameValidation::None,
        tlsa: TlsaState::NotLooked("the host's addresses are not DNSSEC secure"),
        tls: Err(Skip {
            reason: String::new(),
            temporary: true,
            unverifiable: false,
        }),
    };
    let skip = |reason: String, temporary: bool, unverifiable: bool| Skip {
        reason,
        temporary,
        unverifiable,
    };
    let parsed = match dns::parse_name(&name) {
        Ok(parsed) => parsed,
        Err(e) => {
            host.tls = Err(skip(e.to_string(), false, false));
            return host;
        }
    };
    let addresses = match dns::addresses(resolver, &parsed).await {
        Ok(answer) => answer,
        Err(error) => {
            host.tls = Err(skip(
                format!("its address lookup failed: {error}"),
                !error.is_permanent(),
                false,
            ));
            return host;
        }
    };
    host.addresses = addresses.records;
    host.address_security = Some(addresses.security);
    // An implicit MX rests on the MX answer (its denial) and the
    // domain's own address answer alike.
    let name_secure = if implicit {
        mx_security.and(addresses.security)
    } else {
        mx_security
    };
    host.validated = if name_secure == Security::Secure {
        NameValidation::Dnssec
    } else {
        match policy {
            Some(p) if p.matches(&name) => NameValidation::MtaSts {
                id: p.id.clone(),
                enforce: p.enforce(),
            },
            _ => NameValidation::None,
        }
    };
    if host.addresses.is_empty() {
        host.tls = Err(skip("it has no address".into(), false, false));
        return host;
    }
    // RFC 7672 2.2: TLSA only for a host whose address answer is secure;
    // optional mode ignores DANE (MX6).
    // RFC 7672 2.2.1: nor for a name that may be forged (an insecure MX
    // answer that no MTA-STS policy vouches for).
    if mode == Mode::Optional {
        host.tlsa = TlsaState::NotLooked("optional mode ignores DANE");
    } else if host.validated == NameValidation::None {
        host.tlsa = TlsaState::NotLooked("the MX answer is not DNSSEC secure");
    } else if addresses.security == Security::Secure {
        let canonical = dns::parse_name(&addresses.canonical)
            .ok()
            .filter(|c| !c.eq_ignore_root_case(&parsed));
        host.tlsa = lookup_tlsa(resolver, &parsed, canonical.as_ref(), &mut host.tlsa_base).await;
    }
    host.tls = decide_tls(&host, policy, mode, sts_unavailable);
    host
}

/// The TLSA records of a host whose address answer is secure (RFC 7672
/// 2.2.2): at the end of a CNAME chain first, then at the MX name itself;
/// `base` is set to the name they were found at when it is the former.
/// The TLSA name is that of the SMTP service, port 25, also when tests or
/// an unusual setup connect to another port.
async fn lookup_tlsa(
    resolver: &dyn Resolve,
    name: &hickory_proto::rr::Name,
    canonical: Option<&hickory_proto::rr::Name>,
    base: &mut Option<String>,
) -> TlsaState {
    if let Some(canonical) = canonical {
        match tlsa_state(resolver, canonical).await {
            // No (usable or secure) records at the target: the MX name's.
            TlsaState::None | TlsaState::Insecure => {}
            state => {
                if matches!(state, TlsaState::Usable(_) | TlsaState::Unusable(_)) {
                    *base = Some(dns::display_name(canonical));
                }
                return state;
            }
        }
    }
    tlsa_state(resolver, name).await
}

async fn tlsa_state(resolver: &dyn Resolve, name: &hickory_proto::rr::Name) -> TlsaState {
    match dns::tlsa(resolver, name, SMTP_PORT).await {
        // An insecure answer (records through an alias into an unsigned
        // zone, or a denial the validator could only prove insecure: NSEC3
        // opt-out, too many iterations) means no DANE (RFC 7672 2.2);
        // only a failed or bogus lookup fails the host.
        Ok(answer) if answer.security != Security::Secure => TlsaState::Insecure,
        Err(LookupError::NxDomain {
            security: Security::Insecure,
            ..
        }) => TlsaState::Insecure,
        Ok(answer) if answer.records.is_empty() => TlsaState::None,
        Ok(answer) if answer.records.iter().any(Tlsa::is_usable) => {
            TlsaState::Usable(answer.records.into_iter().filter(Tlsa::is_usable).collect())
        }
        Ok(answer) => TlsaState::Unusable(answer.records),
        Err(LookupError::NxDomain { .. }) => TlsaState::None,
        Err(error) => TlsaState::Failed(error.to_string()),
    }
}

/// The TLS a host gets in `mode`, from its name validation, its TLSA
/// state and the domain's MTA-STS policy.
fn decide_tls(
    host: &HostPlan,
    policy: Option<&StsPolicy>,
    mode: Mode,
    sts_unavailable: bool,
) -> Result<HostTls, Skip> {
    let policy_skip = |reason: String| Skip {
        reason,
        temporary: false,
        unverifiable: true,
    };
    if let TlsaState::Failed(reason) = &host.tlsa {
        // MX3: a failed TLSA lookup for a secure host never downgrades.
        return Err(Skip {
            reason: format!("its TLSA lookup failed: {reason}"),
            temporary: true,
            unverifiable: true,
        });
    }
    match mode {
        Mode::Require => {
            if host.validated == NameValidation::None {
                let reason =
                    "its name is neither DNSSEC secure nor listed in an MTA-STS policy (MX2)";
                return Err(if sts_unavailable {
                    // The policy that could vouch for it may be back later.
                    Skip {
                        reason: format!("{reason}, and the policy could not be looked up now"),
                        temporary: true,
                        unverifiable: true,
                    }
                } else {
                    policy_skip(reason.into())
                });
            }
            match (&host.tlsa, policy) {
                (TlsaState::Usable(records), _) => Ok(HostTls::Dane(records.clone())),
                // RFC 8461 4.2: an enforce policy that does not list a host
                // rules it out, DNSSEC or not (DANE takes precedence).
                (_, Some(p)) if p.enforce() && !p.matches(&host.name) => Err(policy_skip(format!(
                    "the MTA-STS policy (id {}, enforce) does not list it",
                    p.id
                ))),
                (TlsaState::Unusable(_), _) => Err(policy_skip(
                    "its TLSA records are all unusable, so TLS with it would be unauthenticated"
                        .into(),
                )),
                _ => Ok(HostTls::WebPki),
            }
        }
        Mode::Default => match (&host.tlsa, policy) {
            // RFC 8461 2: DANE takes precedence over MTA-STS.
            (TlsaState::Usable(records), _) => Ok(HostTls::Dane(records.clone())),
            (TlsaState::Unusable(_), _) => Ok(HostTls::Encrypted),
            (_, Some(p)) if p.enforce() && !p.matches(&host.name) => Err(policy_skip(format!(
                "the MTA-STS policy (id {}, enforce) does not list it",
                p.id
            ))),
            (_, Some(p)) if p.enforce() => Ok(HostTls::WebPki),
            _ => Ok(HostTls::Opportunistic {
                plain_fallback: true,
            }),
        },
        Mode::Optional => Ok(HostTls::Opportunistic {
            plain_fallback: true,
        }),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, domain) in self.domains.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{domain}")?;
        }
        Ok(())
    }
}

impl fmt::Display for DomainPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recipients: Vec<String> = self.recipients.iter().map(|r| r.to_string()).collect();
        write!(f, "{} (for {})", self.domain, recipients.join(", "))?;
        if let Some(security) = self.mx_security {
            write!(f, "; MX answer {security}")?;
        }
        match &self.sts {
            StsFinding::Policy(p) => write!(f, "; {}", p.origin)?,
            StsFinding::NoPolicy(why) | StsFinding::Unavailable(why) => write!(f, "; {why}")?,
        }
        match &self.hosts {
            Err(failure) => write!(f, "\n  fails: {failure}"),
            Ok(hosts) => {
                for host in hosts {
                    write!(f, "\n  {host}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for HostPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        match self.preference {
            Some(preference) => write!(f, " (MX {preference})")?,
            None => write!(f, " (no MX: the domain itself)")?,
        }
        if !self.addresses.is_empty() {
            let addresses: Vec<String> = self.addresses.iter().map(|a| a.to_string()).collect();
            write!(f, ": {}", addresses.join(" "))?;
            if let Some(security) = self.address_security {
                write!(f, " ({security})")?;
            }
        }
        match &self.validated {
            NameValidation::Dnssec => write!(f, "; name validated by DNSSEC")?,
            NameValidation::MtaSts { id, enforce } => write!(
                f,
                "; name listed in MTA-STS policy {id} ({})",
                if *enforce { "enforce" } else { "testing" }
            )?,
            NameValidation::None => write!(f, "; name not validated")?,
        }
        match &self.tlsa {
            TlsaState::NotLooked(why) => write!(f, "; TLSA not looked up ({why})")?,
            TlsaState::None => write!(f, "; no TLSA records")?,
            TlsaState::Insecure => write!(f, "; TLSA records ignored (not DNSSEC secure)")?,
            TlsaState::Usable(records) | TlsaState::Unusable(records) => {
                let shown: Vec<String> = records.iter().map(Tlsa::short).collect();
                write!(f, "; TLSA {}", shown.join(", "))?;
                if let Some(base) = &self.tlsa_base {
                    write!(f, " (at {base}, the end of its CNAME chain)")?;
                }
            }
            TlsaState::Failed(reason) => write!(f, "; TLSA lookup failed: {reason}")?,
        }
        match &self.tls {
            Ok(tls) => write!(f, "; TLS: {tls}"),
            Err(skip) => write!(f, "; skipped: {}", skip.reason),
        }
    }
}

impl fmt::Display for HostTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostTls::Dane(_) => write!(f, "STARTTLS required, certificate verified by DANE"),
            HostTls::WebPki => write!(f, "STARTTLS required, certificate verified by WebPKI"),
            HostTls::Encrypted => write!(f, "STARTTLS required, certificate not authenticated"),
            HostTls::Opportunistic { plain_fallback } => {
                write!(f, "STARTTLS if offered, certificate not required to verify")?;
                if *plain_fallback {
                    write!(f, ", plain text if TLS fails")?;
                }
                Ok(())
            }
        }
    }
}

mod sts;

pub use sts::MtaSts;

#[cfg(test)]
mod tests;
