//! Local names and system mail (IN12): what a bare name such as `root`
//! becomes, in the envelope and in the header, and the From field of mail
//! that a daemon sent as `root` or `www-data@thishost`.
//!
//! A bare name is expanded through the aliases file, then qualified with
//! the configured domain, or this host's name when that is a real domain;
//! when there is none it is refused, never sent to a made-up address such
//! as `root@vm`. Header address fields are qualified the same way, as
//! Postfix's cleanup does, editing only the addresses and keeping display
//! names and comments as written. Pure apart from [`full_host_name`].

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;

use crate::address::Address;
use crate::aliases::Aliases;
use crate::message::{self, Header, compose};

/// Whether the From field is added or rewritten (msmtp's set_from_header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FromRewrite {
    /// Add a From field when there is none, and give system mail (a bare
    /// name, or an address at this host or localhost) the account's `from`.
    #[default]
    Auto,
    /// Every From address becomes the account's `from`.
    On,
    /// Never add or change the From field.
    Off,
}

/// Whether a header field tlsend can make is added when missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddField {
    #[default]
    Auto,
    Off,
}

/// The fields whose addresses are qualified, Postfix's list for
/// header_address_rewriting.
const ADDRESS_FIELDS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Resent-From",
    "Resent-Sender",
    "Resent-Reply-To",
    "Resent-To",
    "Resent-Cc",
    "Resent-Bcc",
    "Return-Receipt-To",
    "Errors-To",
];

/// Endings that name no real domain: special-use names (RFC 6761, RFC
/// 6762's `local`, RFC 7686's `onion`, RFC 8375's `home.arpa`, RFC 9476's
/// `alt`), the names ICANN will never delegate (`corp`, `home`, `mail`,
/// `internal`), and those installers and home routers hand out
/// (`localdomain`, `lan`, AVM's `fritz.box`). Mail to them bounces, late.
const LOCAL_ONLY: &[&str] = &[
    "localdomain",
    "localhost",
    "local",
    "lan",
    "internal",
    "invalid",
    "test",
    "example",
    "onion",
    "alt",
    "home",
    "corp",
    "mail",
    "home.arpa",
    "fritz.box",
];

/// Whether `name` is a domain mail can be addressed to: it has a dot,
/// its top-level label is not a number, and it does not end in a
/// local-only name.
pub fn is_real_domain(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let top = name.rsplit('.').next().unwrap_or_default();
    name.contains('.')
        && !top.bytes().all(|b| b.is_ascii_digit())
        && Address::from_parts("postmaster", Some(&name)).is_ok()
        && !LOCAL_ONLY
            .iter()
            .any(|tld| name == *tld || name.ends_with(&format!(".{tld}")))
}

/// This host's name as the system gives it, and its fully qualified form:
/// the name itself when it has a dot, else completed from /etc/hosts as
/// `hostname -f` does on Debian (`127.0.1.1 host.example.org host`). Found
/// once per process: every message and every EHLO of a queue run asks.
pub fn full_host_name() -> (String, Option<String>) {
    static HOST: std::sync::OnceLock<(String, Option<String>)> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let short = gethostname::gethostname().to_string_lossy().into_owned();
        if short.contains('.') {
            return (short.clone(), Some(short));
        }
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let full = qualified_in_hosts(&short, &hosts);
        (short, full)
    })
    .clone()
}

/// The first dotted name on an /etc/hosts line that also names `short`.
pub fn qualified_in_hosts(short: &str, hosts: &str) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        if !names.iter().any(|n| n.eq_ignore_ascii_case(short)) {
            return None;
        }
        names
            .iter()
            .find(|n| n.contains('.') && !n.ends_with('.'))
            .map(|n| n.to_ascii_lowercase())
    })
}

/// The domain bare names get, and where it comes from; or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qualification {
    domain: Option<String>,
    /// "qualify_domain in account \"work\"", "this host's name", or the
    /// reason there is no domain.
    source: String,
}

impl Qualification {
    /// A domain the user configured (`source` says where).
    pub fn configured(domain: &str, source: impl Into<String>) -> Qualification {
        Qualification {
            domain: Some(domain.to_string()),
            source: source.into(),
        }
    }

    /// This host's name, when it is a real domain.
    pub fn from_host(short: &str, full: Option<&str>) -> Qualification {
        match full.filter(|name| is_real_domain(name)) {
            Some(name) => Qualification {
                domain: Some(name.trim_end_matches('.').to_ascii_lowercase()),
                source: "this host's name".into(),
            },
            None => Qualification {
                domain: None,
                source: match full {
                    Some(name) => {
                        format!("this host's name {name:?} is a local-only name, not a domain")
                    }
                    None => format!("this host's name {short:?} is not a domain name"),
                },
            },
        }
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Where the domain comes from, or why there is none.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `address` with the domain added when it is a bare name; `what`
    /// names it for the error ("recipient \"root\"").
    pub fn qualify(&self, address: Address, what: &str) -> Result<Address, LocalError> {
        if address.domain().is_some() {
            return Ok(address);
        }
        let Some(domain) = &self.domain else {
            return Err(LocalError(format!(
                "{what} is a local name, and there is no domain to add to it: {}; set \
                 qualify_domain in the configuration{}",
                self.source,
                if what.starts_with("recipient") {
                    format!(
                        " or give {} an alias in the aliases file",
                        address.local_part()
                    )
                } else {
                    String::new()
                }
            )));
        };
        address
            .qualify(domain)
            .map_err(|e| LocalError(format!("{what} with qualify domain {domain:?}: {e}")))
    }
}

/// Why a local name cannot be used; the text says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalError(pub String);

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LocalError {}

/// A recipient as found (an argument, a header field, an RCPT), with the
/// ORCPT an SMTP client gave for it (RFC 3461 4.2, decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub address: Address,
    pub orcpt: Option<String>,
}

/// The envelope recipients, and the ORCPT of each that has one of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipients {
    pub addresses: Vec<Address>,
    /// `rfc822;root@example.org` for the targets of the alias root, or
    /// what the client gave: the sender's name for them in a DSN.
    pub original: HashMap<Address, String>,
}

/// The envelope recipients `found` stand for: aliases expanded, bare
/// names qualified, each once in first-seen order. A recipient an alias
/// replaced keeps the address the sender gave as its ORCPT, unless the
/// client gave one.
pub fn recipients(
    found: &[Found],
    aliases: Option<&Aliases>,
    qualification: &Qualification,
) -> Result<Recipients, LocalError> {
    let mut out = Recipients::default();
    let mut seen = HashSet::with_capacity(found.len());
    for given in found {
        let expanded = match aliases {
            Some(aliases) if given.address.domain().is_none() => aliases
                .expand(std::slice::from_ref(&given.address))
                .map_err(|e| LocalError(e.to_string()))?,
            _ => vec![given.address.clone()],
        };
        let replaced = expanded.as_slice() != std::slice::from_ref(&given.address);
        // The name the sender used, qualified when it can be (it had an
        // alias, so it need not be).
        let orcpt = given.orcpt.clone().or_else(|| {
            let domain = qualification.domain()?;
            let original = given.address.clone().qualify(domain).ok()?;
            (replaced && original.is_ascii()).then(|| format!("rfc822;{original}"))
        });
        for address in expanded {
            let what = match aliases {
                Some(aliases) if address.domain().is_none() => format!(
                    "recipient \"{}\" (no alias in {})",
                    address.local_part(),
                    aliases.origin().display()
                ),
                _ => format!("recipient \"{address}\""),
            };
            let address = qualification.qualify(address, &what)?;
            if !seen.insert(address.clone()) {
                continue;
            }
            if let Some(orcpt) = &orcpt {
                out.original.insert(address.clone(), orcpt.clone());
            }
            out.addresses.push(address);
        }
    }
    Ok(out)
}

/// How the From field of a message is treated.
#[derive(Clone, Copy, Debug)]
pub struct FromPolicy<'a> {
    pub rewrite: FromRewrite,
    /// The account's `from` address, when it is one (not a pattern).
    pub account_from: Option<&'a Address>,
    /// `-F` (or NAME), which replaces the display name of a rewritten From.
    pub full_name: Option<&'a str>,
    /// This host's names (short and full): an address at one of them, or
    /// at localhost, is system mail.
    pub host_names: &'a [&'a str],
}

impl FromPolicy<'_> {
    /// Whether a From naming `address` is rewritten to the account's from.
    pub fn rewrites(&self, address: &Address) -> bool {
        self.account_from.is_some()
            && match self.rewrite {
                FromRewrite::Off => false,
                FromRewrite::On => true,
                FromRewrite::Auto => self.is_system(address),
            }
    }

    /// Whether `address` is what a daemon on this host writes: a bare
    /// name, or an address at this host or localhost.
    fn is_system(&self, address: &Address) -> bool {
        match address.domain() {
            None => true,
            Some(domain) => {
                let domain = domain.trim_end_matches('.');
                ["localhost", "localhost.localdomain"]
                    .iter()
                    .chain(self.host_names)
                    .any(|name| domain.eq_ignore_ascii_case(name))
            }
        }
    }
}

/// Rewrites the From fields as `policy` says: the address of system mail
/// (auto) or every address (on) becomes the account's `from`, keeping
/// the display name and comments, unless `-F` gives a new one. Returns
/// whether a field was changed.
pub fn rewrite_from(header: &mut Header, policy: &FromPolicy<'_>) -> Result<bool, LocalError> {
    let Some(from) = policy.account_from else {
        return Ok(false);
    };
    if policy.rewrite == FromRewrite::Off {
        return Ok(false);
    }
    let mut changed = false;
    for index in field_indexes(header, &["From"]) {
        let Some((value, found)) = located(header, index) else {
            continue;
        };
        let rewrite: Vec<&message::Located> = found
            .iter()
            .filter(|l| policy.rewrites(&l.address))
            .collect();
        if rewrite.is_empty() {
            continue;
        }
        // A new display name (-F), or several authors made one: the field
        // is written afresh. Otherwise only the addresses change.
        let afresh = (policy.full_name.is_some() && found.len() == 1)
            || (policy.rewrite == FromRewrite::On && found.len() > 1);
        let written = if afresh {
            compose::from_value(policy.full_name, from)
                .map_err(|e| LocalError(format!("-F: cannot build the From field: {e}")))
                .and_then(|new_value| {
                    header
                        .replace(index, "From", &new_value)
                        .map_err(|e| LocalError(format!("rewriting From: {e}")))
                })
        } else {
            let edits = rewrite.iter().map(|l| (&l.span, from.to_string()));
            value.splice_into(header, index, edits)
        };
        written?;
        changed = true;
    }
    Ok(changed)
}

/// Qualifies the bare names in every address field (To: root,
/// From: root (Cron Daemon)) in place. A field that is not an address
/// list is left as it is: it names nobody tlsend could qualify.
pub fn qualify_header(
    header: &mut Header,
    qualification: &Qualification,
) -> Result<(), LocalError> {
    for index in field_indexes(header, ADDRESS_FIELDS) {
        let Some((value, found)) = located(header, index) else {
            continue;
        };
        let bare: Vec<&message::Located> = found
            .iter()
            .filter(|l| l.address.domain().is_none())
            .collect();
        if bare.is_empty() {
            continue;
        }
        let name = header.fields()[index].name().to_string();
        let mut edits = Vec::with_capacity(bare.len());
        for l in bare {
            let what = format!(
                "the message's {name} field names \"{}\", which",
                l.address.local_part()
            );
            let qualified = qualification.qualify(l.address.clone(), &what)?;
            edits.push((&l.span, qualified.to_string()));
        }
        value.splice_into(header, index, edits.into_iter())?;
    }
    Ok(())
}

/// Indexes of the fields called one of `names`.
fn field_indexes(header: &Header, names: &[&str]) -> Vec<usize> {
    header
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| names.iter().any(|n| f.is(n)))
        .map(|(i, _)| i)
        .collect()
}

/// A field's value as written (folded) and unfolded, to find addresses
/// in the one and edit the other.
struct Value {
    /// The text after the colon, folding and all.
    raw: String,
    /// For each byte of the unfolded, trimmed value, its place in `raw`.
    places: Vec<usize>,
}

impl Value {
    /// `edits` (spans of the unfolded value, in order, not overlapping)
    /// made in the field as written, so that its folding is kept: a long
    /// To field stays within the line limit.
    fn splice_into<'a>(
        &self,
        header: &mut Header,
        index: usize,
        edits: impl Iterator<Item = (&'a std::ops::Range<usize>, String)>,
    ) -> Result<(), LocalError> {
        let mut out = String::with_capacity(self.raw.len() + 32);
        let mut at = 0;
        for (span, text) in edits {
            let (Some(&start), Some(&last)) = (
                self.places.get(span.start),
                self.places.get(span.end.saturating_sub(1)),
            ) else {
                continue;
            };
            out.push_str(self.raw.get(at..start).unwrap_or_default());
            out.push_str(&text);
            at = last + 1;
        }
        out.push_str(self.raw.get(at..).unwrap_or_default());
        header.replace_value(index, &out).map_err(|e| {
            LocalError(format!(
                "editing the addresses of the message's header: {e}"
            ))
        })
    }
}

/// The field's value and its addresses with their places in the
/// unfolded value; `None` when it is not UTF-8 or not an address list
/// (left untouched).
fn located(header: &Header, index: usize) -> Option<(Value, Vec<message::Located>)> {
    let field = header.fields().get(index)?;
    let raw = std::str::from_utf8(field.raw_value()).ok()?;
    // Unfolding (RFC 5322 3.2.2) removes each CRLF; remember where every
    // other byte was, then trim as the unfolded value is trimmed.
    let mut unfolded = String::with_capacity(raw.len());
    let mut places = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("\r\n") {
            rest = &rest[2..];
            continue;
        }
        let at = raw.len() - rest.len();
        unfolded.push(c);
        places.extend(at..at + c.len_utf8());
        rest = &rest[c.len_utf8()..];
    }
    let lead = unfolded.len() - unfolded.trim_start().len();
    let value = unfolded.trim();
    places.drain(..lead);
    places.truncate(value.len());
    debug_assert_eq!(value, field.unfolded_value());
    let found = message::parse_located(value).ok()?;
    let value = Value {
        raw: raw.to_string(),
        places,
    };
    Some((value, found))
}

#[cfg(test)]
mod tests;
