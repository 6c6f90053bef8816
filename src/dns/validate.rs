//! Local DNSSEC validation (MX8: "or from local validation when configured
//! with a trust anchor"): the second way of knowing an answer is authentic,
//! for `dnssec = "validate"`. The upstream servers (a recursive resolver,
//! or in tests the authoritative server of the signed zones) only carry
//! the data; hickory's validator checks the signatures and the chain of
//! trust from the trust anchor itself (RFC 4033 5, RFC 4035 5), over
//! queries with the DO bit set (RFC 4035 4.1, RFC 3225). hickory keeps its
//! own cache of answers and of validated key sets. Queries do not set CD,
//! which RFC 6840 5.9 recommends for a validator behind a validating
//! resolver: such a resolver answers SERVFAIL for bogus data instead of
//! handing it over, which is a failure all the same
//! ([`LookupError::ServFail`]).
//!
//! This module owns:
//!
//! - reading the trust anchor file: DNSKEY or DS records in zone-file form
//!   (`. 300 IN DNSKEY 257 3 13 …`, `. IN DS 12345 13 2 …`), with comments
//!   and parentheses, each usable line checked and every unusable one
//!   refused with the file and the line named. hickory takes only DNSKEY
//!   anchors, so for DS lines the owner's DNSKEY RRset is fetched through
//!   the same upstream at start and the keys whose digest matches a DS
//!   (RFC 4034 5.1.4 and 5.2, RFC 4509, RFC 6605) become the anchors; a DS
//!   set that matches no key served refuses to start. Revoked keys
//!   (RFC 5011 7), algorithms hickory cannot check and SHA-1 digests are
//!   left out; a file left with no usable anchor is refused. Without a
//!   file, the anchors are hickory's built-in root keys (KSK-2017, tag
//!   20326, and KSK-2024, tag 38696).
//! - reading hickory's proofs into [`Response`] and [`LookupError`]: the
//!   answer is `Secure` only if every record used (the records of the type
//!   asked and the CNAMEs leading to them) is proven secure (RFC 4035 4.3);
//!   a bogus answer is [`LookupError::Bogus`], never "no records"
//!   (RFC 4035 5.5). A proof hickory leaves "indeterminate" (RFC 4033 5:
//!   no anchor speaks for the name) counts as insecure.
//! - negative answers: NXDOMAIN and NODATA are secure when the validated
//!   response holds a secure NSEC or NSEC3 proof of the denial (RFC 4035
//!   5.4, RFC 5155 8): hickory only lets a response with such records
//!   through when the proof holds, and answers bogus otherwise. A negative
//!   answer reached through a CNAME that hickory followed itself is
//!   insecure, since the CNAME's own proof is not kept. Any bogus record in
//!   the authority section makes the answer bogus, and so does an SOA that
//!   is not of the queried name's own zone (hickory 0.26 lets a negative
//!   answer whose authority records are all unsigned through unproven; an
//!   unsigned SOA of an unrelated unsigned zone could otherwise make a
//!   denial in a signed zone read as insecure, switching DANE off).
//!   Known limit: an unsigned SOA at a made-up zone cut below a signed
//!   name is not caught here, since telling a real insecure delegation
//!   from a forged one needs the parent's NSEC proof that hickory does not
//!   return. The default method, a validating resolver on loopback, is not
//!   exposed to this.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::dnssec::{
    Algorithm, Proof, PublicKey as _, PublicKeyBuf, TrustAnchors, Verifier as _,
};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::{Resolver, TokioResolver};

use super::stub::{AdTrust, StubResolver};
use super::{Lookup, LookupError, Resolve, Response, Security, display_name};

/// How long hickory waits for one answer from one server before it tries
/// again; the whole lookup is bounded by the resolver's time limit.
const TRY_TIMEOUT: Duration = Duration::from_secs(3);

/// The DNSKEY flag bits (RFC 4034 2.1.1, RFC 5011 7).
const ZONE_KEY: u16 = 0x0100;
const REVOKED: u16 = 0x0080;

/// The DS digest types accepted for a trust anchor: SHA-256 (RFC 4509)
/// and SHA-384 (RFC 6605).
const SHA256: u8 = 2;
const SHA384: u8 = 4;

/// Validates answers locally from a trust anchor.
pub struct ValidatingResolver {
    resolver: TokioResolver,
    servers: Vec<SocketAddr>,
    anchor: Option<PathBuf>,
    limit: Duration,
}

/// Why a [`ValidatingResolver`] could not start.
#[derive(Debug)]
pub enum SetupError {
    /// No server to send queries to.
    NoServers,
    /// The trust anchor file cannot be read.
    Unreadable { path: PathBuf, reason: String },
    /// A line of the trust anchor file is not a usable DNSKEY or DS record.
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The file holds no anchor that can be used; `skipped` says why each
    /// record was left out.
    NoAnchor { path: PathBuf, skipped: Vec<String> },
    /// The DNSKEY RRset of a DS anchor's owner could not be fetched.
    Fetch {
        path: PathBuf,
        owner: String,
        error: LookupError,
    },
    /// No DNSKEY of the owner matches its DS anchors.
    NoMatch {
        path: PathBuf,
        owner: String,
        lines: Vec<usize>,
        keys: usize,
    },
    /// hickory refused to build the resolver.
    Resolver(String),
}

impl SetupError {
    /// A failure to reach the upstream, which may pass: not a
    /// configuration error.
    pub fn is_temporary(&self) -> bool {
        matches!(self, SetupError::Fetch { error, .. } if !error.is_permanent())
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NoServers => {
                f.write_str("local DNSSEC validation needs a DNS server to ask, and none is known")
            }
            SetupError::Unreadable { path, reason } => write!(
                f,
                "cannot read the trust anchor file {}: {reason}",
                path.display()
            ),
            SetupError::Malformed { path, line, reason } => write!(
                f,
                "the trust anchor file {}, line {line}: {reason}",
                path.display()
            ),
            SetupError::NoAnchor { path, skipped } => {
                write!(
                    f,
                    "the trust anchor file {} holds no usable DNSKEY or DS record",
                    path.display()
                )?;
                if !skipped.is_empty() {
                    write!(f, " ({})", skipped.join("; "))?;
                }
                Ok(())
            }
            SetupError::Fetch { path, owner, error } => write!(
                f,
                "cannot fetch the DNSKEY records of {owner} to check the DS trust anchor in {}: \
                 {error}",
                path.display()
            ),
            SetupError::NoMatch {
                path,
                owner,
                lines,
                keys,
            } => {
                let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                write!(
                    f,
                    "the DS trust anchor for {owner} in {} (line {}) matches none of the {keys} \
                     DNSKEY records the server gives for {owner}",
                    path.display(),
                    lines.join(", ")
                )
            }
            SetupError::Resolver(reason) => {
                write!(f, "cannot start the validating resolver: {reason}")
            }
        }
    }
}

impl std::error::Error for SetupError {}

impl ValidatingResolver {
    /// A validating resolver asking `servers`, anchored in the DNSKEY or DS
    /// records of `trust_anchor` (hickory's root keys without one), each
    /// lookup limited to `limit`. DS anchors are checked against the keys
    /// the servers give now, so this asks the network when the file holds
    /// DS records.
    pub async fn new(
        servers: Vec<SocketAddr>,
        trust_anchor: Option<&Path>,
        limit: Duration,
    ) -> Result<ValidatingResolver, SetupError> {
        if servers.is_empty() {
            return Err(SetupError::NoServers);
        }
        let anchors = match trust_anchor {
            None => TrustAnchors::default(),
            Some(path) => load_anchors(path, &servers, limit).await?,
        };
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut config = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut config.connections {
                    connection.port = server.port();
                }
                config
            })
            .collect();
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::new(),
        )
        .with_trust_anchor(Arc::new(anchors));
        let options = builder.options_mut();
        options.validate = true;
        options.use_hosts_file = ResolveHosts::Never;
        // The CNAMEs stay in the answer, with their proofs.
        options.preserve_intermediates = true;
        options.edns0 = true;
        options.timeout = limit.min(TRY_TIMEOUT);
        let resolver = builder
            .build()
            .map_err(|e| SetupError::Resolver(e.to_string()))?;
        Ok(ValidatingResolver {
            resolver,
            servers,
            anchor: trust_anchor.map(Path::to_path_buf),
            limit,
        })
    }

    async fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Response, LookupError> {
        let shown = display_name(name);
        let mut fqdn = name.clone();
        fqdn.set_fqdn(true);
        let result = tokio::time::timeout(self.limit, self.resolver.lookup(fqdn.clone(), rtype))
            .await
            .map_err(|_| LookupError::Timeout {
                name: shown.clone(),
                limit: self.limit,
            })?;
        match result {
            Ok(lookup) => read_answers(lookup.answers(), rtype, &shown),
            Err(error) => read_error(error, &fqdn, &shown, self.limit),
        }
    }
}

impl Resolve for ValidatingResolver {
    fn query(&self, name: &Name, rtype: RecordType) -> Lookup<'_> {
        let name = name.clone();
        Box::pin(async move { self.lookup(&name, rtype).await })
    }

    fn describe(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(|s| s.to_string()).collect();
        let anchor = match &self.anchor {
            Some(path) => format!("the trust anchor in {}", path.display()),
            None => "the root trust anchors built into hickory (KSK-2017, KSK-2024)".to_string(),
        };
        format!(
            "local DNSSEC validation with {anchor} (upstream {})",
            servers.join(", ")
        )
    }
}

/// The records of a positive answer that matter (those of the type asked
/// and the CNAMEs) and their security; a bogus one fails the lookup.
fn read_answers(
    answers: &[Record],
    rtype: RecordType,
    shown: &str,
) -> Result<Response, LookupError> {
    let mut security = Security::Secure;
    let mut records = Vec::new();
    for record in answers {
        let kind = record.record_type();
        if kind != rtype && kind != RecordType::CNAME {
            continue;
        }
        match record.proof {
            Proof::Secure => {}
            Proof::Bogus => {
                return Err(LookupError::Bogus {
                    name: shown.to_string(),
                    reason: format!(
                        "the {kind} record of {} does not validate",
                        display_name(&record.name)
                    ),
                });
            }
            Proof::Insecure | Proof::Indeterminate => security = Security::Insecure,
        }
        records.push(record.clone());
    }
    if records.is_empty() {
        security = Security::Insecure;
    }
    Ok(Response { records, security })
}

/// What hickory's error means here.
fn read_error(
    error: NetError,
    queried: &Name,
    shown: &str,
    limit: Duration,
) -> Result<Response, LookupError> {
    let bogus = |reason: &str| LookupError::Bogus {
        name: shown.to_string(),
        reason: reason.to_string(),
    };
    match error {
        NetError::Dns(DnsError::DnssecBogus) => Err(bogus(
            "the signatures or the chain of trust from the trust anchor do not validate",
        )),
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => {
            let security = denial_security(&no_records, queried)
                .ok_or_else(|| bogus("a record proving the denial does not validate"))?;
            negative(no_records.response_code, security, shown)
        }
        // hickory turns a bogus denial into DnssecBogus; an insecure one
        // (an NSEC3 chain over the iteration limit, RFC 9276 3.2) comes
        // here.
        NetError::Dns(DnsError::Nsec {
            proof, response, ..
        }) => match proof {
            Proof::Insecure => negative(response.response_code, Security::Insecure, shown),
            Proof::Secure => negative(response.response_code, Security::Secure, shown),
            Proof::Bogus | Proof::Indeterminate => {
                Err(bogus("the denial of existence is not proven"))
            }
        },
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            Err(LookupError::ServFail {
                name: shown.to_string(),
            })
        }
        NetError::Dns(DnsError::ResponseCode(code)) => Err(LookupError::Failed {
            name: shown.to_string(),
            reason: format!("the server answered {code}"),
        }),
        NetError::Timeout => Err(LookupError::Timeout {
            name: shown.to_string(),
            limit,
        }),
        other => Err(LookupError::Failed {
            name: shown.to_string(),
            reason: other.to_string(),
        }),
    }
}

/// NXDOMAIN is an error, NODATA an empty answer; anything else failed.
fn negative(code: ResponseCode, security: Security, shown: &str) -> Result<Response, LookupError> {
    match code {
        ResponseCode::NXDomain => Err(LookupError::NxDomain {
            name: shown.to_string(),
            security,
        }),
        ResponseCode::NoError => Ok(Response {
            records: Vec::new(),
            security,
        }),
        other => Err(LookupError::Failed {
            name: shown.to_string(),
            reason: format!("the server answered {other}"),
        }),
    }
}

/// The security of a validated negative answer (see the module doc);
/// `None` when a record of it is bogus.
fn denial_security(no_records: &NoRecords, queried: &Name) -> Option<Security> {
    let authorities = no_records.authorities.as_deref().unwrap_or_default();
    let mut proven = false;
    for record in authorities {
        match (record.proof, record.record_type()) {
            (_, RecordType::RRSIG) => {}
            (Proof::Bogus, _) => return None,
            // A denial speaks for the zone the queried name is in: an SOA
            // of any other zone (an unsigned one, forged in to make the
            // answer look insecure) is not part of a genuine answer.
            (_, RecordType::SOA)
                if !record.name.zone_of(&no_records.query.name().to_lowercase()) =>
            {
                return None;
            }
            (Proof::Secure, RecordType::NSEC | RecordType::NSEC3) => proven = true,
            _ => {}
        }
    }
    // The denial is for the end of a CNAME chain hickory followed.
    let followed = !no_records.query.name().eq_ignore_root_case(queried);
    Some(if proven && !followed {
        Security::Secure
    } else {
        Security::Insecure
    })
}

/// The usable records of a trust anchor file.
#[derive(Debug, Default)]
struct AnchorFile {
    /// DNSKEY anchors: owner and key.
    keys: Vec<(Name, DNSKEY)>,
    /// DS anchors, with their line.
    ds: Vec<(Name, DsAnchor, usize)>,
    /// Why records were left out ("line 3: the key is revoked").
    skipped: Vec<String>,
}

/// The RDATA of a DS record (RFC 4034 5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
struct DsAnchor {
    key_tag: u16,
    algorithm: Algorithm,
    digest_type: u8,
    digest: Vec<u8>,
}

/// Reads the anchor file and turns it into hickory's anchors, checking DS
/// records against the keys the servers give.
async fn load_anchors(
    path: &Path,
    servers: &[SocketAddr],
    limit: Duration,
) -> Result<TrustAnchors, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| SetupError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let file = parse_anchor_file(&text).map_err(|(line, reason)| SetupError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    })?;
    if file.keys.is_empty() && file.ds.is_empty() {
        return Err(SetupError::NoAnchor {
            path: path.to_path_buf(),
            skipped: file.skipped,
        });
    }
    let mut anchors = TrustAnchors::empty();
    for (owner, key) in &file.keys {
        anchors.insert_with_name(key.public_key(), LowerName::new(owner));
    }
    let mut by_owner: BTreeMap<Name, Vec<(&DsAnchor, usize)>> = BTreeMap::new();
    for (owner, ds, line) in &file.ds {
        by_owner.entry(owner.clone()).or_default().push((ds, *line));
    }
    if by_owner.is_empty() {
        return Ok(anchors);
    }
    // The keys are authenticated by the DS digests, not by the path: the
    // resolver's AD bit is not needed.
    let stub = StubResolver::new(servers.to_vec(), Some(AdTrust::Untrusted), limit);
    for (owner, ds_set) in by_owner {
        let fetched = stub
            .query(&owner, RecordType::DNSKEY)
            .await
            .map_err(|error| SetupError::Fetch {
                path: path.to_path_buf(),
                owner: display_name(&owner),
                error,
            })?;
        let keys: Vec<&DNSKEY> = fetched
            .records
            .iter()
            .filter(|r| r.name.eq_ignore_root_case(&owner))
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
                _ => None,
            })
            .collect();
        let mut matched = 0;
        for key in &keys {
            if ds_set.iter().any(|(ds, _)| ds_matches(ds, &owner, key)) {
                anchors.insert_with_name(key.public_key(), LowerName::new(&owner));
                matched += 1;
            }
        }
        if matched == 0 {
            return Err(SetupError::NoMatch {
                path: path.to_path_buf(),
                owner: display_name(&owner),
                lines: ds_set.iter().map(|(_, line)| *line).collect(),
                keys: keys.len(),
            });
        }
    }
    Ok(anchors)
}

/// Does the DNSKEY `key` of `owner` match the DS `ds` (RFC 4035 5.2: a
/// zone key, not revoked, same algorithm and key tag, same digest)?
fn ds_matches(ds: &DsAnchor, owner: &Name, key: &DNSKEY) -> bool {
    let digest = match ds.digest_type {
        SHA256 => &ring::digest::SHA256,
        SHA384 => &ring::digest::SHA384,
        _ => return false,
    };
    let rdata = dnskey_rdata(key);
    key.flags() & ZONE_KEY != 0
        && key.flags() & REVOKED == 0
        && key.public_key().algorithm() == ds.algorithm
        && key_tag(&rdata) == ds.key_tag
        && ds_digest(owner, &rdata, digest) == ds.digest
}

/// The RDATA of a DNSKEY record in wire form (RFC 4034 2.1): flags,
/// protocol 3, algorithm, public key.
fn dnskey_rdata(key: &DNSKEY) -> Vec<u8> {
    let public = key.public_key();
    let mut rdata = key.flags().to_be_bytes().to_vec();
    rdata.push(3);
    rdata.push(u8::from(public.algorithm()));
    rdata.extend_from_slice(public.public_bytes());
    rdata
}

/// The digest of a DS record (RFC 4034 5.1.4): the owner name in
/// canonical wire form (lower case, uncompressed; RFC 4034 6.2) followed
/// by the DNSKEY RDATA.
fn ds_digest(
    owner: &Name,
    dnskey_rdata: &[u8],
    algorithm: &'static ring::digest::Algorithm,
) -> Vec<u8> {
    let mut context = ring::digest::Context::new(algorithm);
    for label in owner.to_lowercase().iter() {
        // A label is at most 63 octets (RFC 1035 2.3.4); Name enforces it.
        context.update(&[label.len() as u8]);
        context.update(label);
    }
    context.update(&[0]);
    context.update(dnskey_rdata);
    context.finish().as_ref().to_vec()
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B; algorithm 1 is
/// not supported, so its special case is not needed).
fn key_tag(rdata: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, byte) in rdata.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(*byte) << 8
        } else {
            u32::from(*byte)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

/// One record of the file: the line it starts on, whether that line
/// starts with a blank (the owner of the record before), and its words.
struct Entry {
    line: usize,
    continued: bool,
    words: Vec<String>,
}

/// Splits zone-file text (RFC 1035 5.1) into records: `;` starts a
/// comment, parentheses join lines.
fn entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut depth = 0usize;
    let mut opened_at = 0;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.split(';').next().unwrap_or("");
        if depth == 0 {
            if line.trim().is_empty() {
                continue;
            }
            current = Some(Entry {
                line: number,
                continued: line.starts_with([' ', '\t']),
                words: Vec::new(),
            });
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        let mut word = String::new();
        for c in line.chars() {
            match c {
                '(' | ')' => {
                    if !word.is_empty() {
                        entry.words.push(std::mem::take(&mut word));
                    }
                    if c == '(' {
                        if depth == 0 {
                            opened_at = number;
                        }
                        depth += 1;
                    } else if depth == 0 {
                        return Err((number, "a ')' without a '(' before it".into()));
                    } else {
                        depth -= 1;
                    }
                }
                c if c.is_whitespace() => {
                    if !word.is_empty() {
                        entry.words.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            entry.words.push(word);
        }
        if depth == 0
            && let Some(done) = current.take()
        {
            entries.push(done);
        }
    }
    if depth > 0 {
        return Err((opened_at, "the '(' on this line is never closed".into()));
    }
    Ok(entries)
}

/// Checks trust anchor text as [`ValidatingResolver::new`] reads a file:
/// the number of DNSKEY and DS anchors, or the line and the problem. For
/// the fuzz target; the resolver reads files itself.
pub fn check_anchor_text(text: &str) -> Result<(usize, usize), (usize, String)> {
    parse_anchor_file(text).map(|file| (file.keys.len(), file.ds.len()))
}

/// Reads a trust anchor file: DNSKEY and DS records in zone-file form.
/// Anything else is an error naming its line; usable records that cannot
/// serve as anchors are listed in `skipped`.
fn parse_anchor_file(text: &str) -> Result<AnchorFile, (usize, String)> {
    let mut file = AnchorFile::default();
    let mut last_owner: Option<Name> = None;
    for entry in entries(text)? {
        let line = entry.line;
        let mut words = entry.words.iter().map(String::as_str).peekable();
        let owner = if entry.continued {
            last_owner.clone().ok_or((
                line,
                "the line starts with a blank, which means the owner of the record before, and \
                 there is none"
                    .to_string(),
            ))?
        } else {
            let first = words.next().unwrap_or("");
            if first.starts_with('$') {
                if first.eq_ignore_ascii_case("$TTL") {
                    continue;
                }
                return Err((line, format!("the {first} directive is not supported here")));
            }
            if first == "@" {
                return Err((line, "write the owner name in full, not @".into()));
            }
            let mut owner = Name::from_ascii(first).map_err(|e| {
                (
                    line,
                    format!("the owner {first:?} is not a domain name: {e}"),
                )
            })?;
            owner.set_fqdn(true);
            owner
        };
        last_owner = Some(owner.clone());
        // [TTL] [class] TYPE, the TTL and class in either order.
        let rtype = loop {
            let Some(word) = words.next() else {
                return Err((line, "no record type (DNSKEY or DS)".into()));
            };
            if word.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if word.eq_ignore_ascii_case("IN") {
                continue;
            }
            if ["CH", "HS", "CS"]
                .iter()
                .any(|c| word.eq_ignore_ascii_case(c))
                || word.to_ascii_uppercase().starts_with("CLASS")
            {
                return Err((line, format!("class {word}: a trust anchor is of class IN")));
            }
            break word.to_ascii_uppercase();
        };
        let rdata: Vec<&str> = words.collect();
        match rtype.as_str() {
            "DNSKEY" => match parse_dnskey(&rdata).map_err(|e| (line, e))? {
                Usable::Yes(key) => file.keys.push((owner, key)),
                Usable::No(why) => file.skipped.push(format!("line {line}: {why}")),
            },
            "DS" => match parse_ds(&rdata).map_err(|e| (line, e))? {
                Usable::Yes(ds) => file.ds.push((owner, ds, line)),
                Usable::No(why) => file.skipped.push(format!("line {line}: {why}")),
            },
            other => {
                return Err((
                    line,
                    format!("a {other} record is not a trust anchor (DNSKEY or DS)"),
                ));
            }
        }
    }
    Ok(file)
}

/// A well-formed record that can or cannot serve as an anchor.
enum Usable<T> {
    Yes(T),
    No(String),
}

/// An algorithm given as a number or a mnemonic (RFC 4034 A.1).
fn parse_algorithm(word: Option<&str>) -> Result<Algorithm, String> {
    let word = word.ok_or("the algorithm is missing")?;
    if let Ok(number) = word.parse::<u8>() {
        return Ok(Algorithm::from_u8(number));
    }
    [5, 7, 8, 10, 13, 14, 15]
        .into_iter()
        .map(Algorithm::from_u8)
        .find(|a| a.as_str().eq_ignore_ascii_case(word))
        .ok_or_else(|| format!("{word:?} is not a DNSSEC algorithm"))
}

fn parse_number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    let word = word.ok_or_else(|| format!("the {what} is missing"))?;
    word.parse()
        .map_err(|_| format!("the {what} {word:?} is not a number in range"))
}

/// `FLAGS 3 ALGORITHM BASE64…` (RFC 4034 2.2).
fn parse_dnskey(rdata: &[&str]) -> Result<Usable<DNSKEY>, String> {
    let mut words = rdata.iter().copied();
    let flags: u16 = parse_number(words.next(), "flags field")?;
    let protocol: u8 = parse_number(words.next(), "protocol field")?;
    if protocol != 3 {
        return Err(format!(
            "the protocol field is {protocol}; it must be 3 (RFC 4034 2.1.2)"
        ));
    }
    let algorithm = parse_algorithm(words.next())?;
    let text: String = words.collect();
    if text.is_empty() {
        return Err("the public key is missing".into());
    }
    let public = BASE64
        .decode(text.as_bytes())
        .map_err(|e| format!("the public key is not base64: {e}"))?;
    if flags & ZONE_KEY == 0 {
        return Err(format!(
            "the flags {flags} lack the zone key bit (256), so the key signs no zone (RFC 4034 \
             2.1.1)"
        ));
    }
    if flags & REVOKED != 0 {
        return Ok(Usable::No("the key is revoked (RFC 5011)".into()));
    }
    if !algorithm.is_supported() {
        return Ok(Usable::No(format!(
            "algorithm {} cannot be checked",
            u8::from(algorithm)
        )));
    }
    let key = DNSKEY::with_flags(flags, PublicKeyBuf::new(public, algorithm));
    if let Err(e) = key.key() {
        return Err(format!(
            "the public key is not a valid {algorithm} key: {e}"
        ));
    }
    Ok(Usable::Yes(key))
}

/// `KEYTAG ALGORITHM DIGESTTYPE HEX…` (RFC 4034 5.3).
fn parse_ds(rdata: &[&str]) -> Result<Usable<DsAnchor>, String> {
    let mut words = rdata.iter().copied();
    let key_tag: u16 = parse_number(words.next(), "key tag")?;
    let algorithm = parse_algorithm(words.next())?;
    let digest_type: u8 = parse_number(words.next(), "digest type")?;
    let text: String = words.collect();
    if text.is_empty() {
        return Err("the digest is missing".into());
    }
    let digest = hex(&text).ok_or_else(|| format!("the digest {text:?} is not hexadecimal"))?;
    let length = match digest_type {
        SHA256 => 32,
        SHA384 => 48,
        1 => {
            return Ok(Usable::No(
                "SHA-1 digests (type 1) are not accepted for a trust anchor; give the SHA-256 DS"
                    .into(),
            ));
        }
        other => return Ok(Usable::No(format!("digest type {other} is not supported"))),
    };
    if digest.len() != length {
        return Err(format!(
            "a digest of type {digest_type} is {length} octets long, this one {}",
            digest.len()
        ));
    }
    if !algorithm.is_supported() {
        return Ok(Usable::No(format!(
            "algorithm {} cannot be checked",
            u8::from(algorithm)
        )));
    }
    Ok(Usable::Yes(DsAnchor {
        key_tag,
        algorithm,
        digest_type,
        digest,
    }))
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests;
