//! Local names and the aliases file (IN12): what `root` or `postmaster`
//! stands for, read from a file in the `/etc/aliases` format of
//! aliases(5), and expanded recursively with loops detected.
//!
//! tlsend delivers nowhere locally, so an alias must end in addresses: a
//! name whose expansion names a command (`|…`), a file (`/…`) or an
//! `:include:` list is refused when it is used, never skipped. A name with
//! no alias stays a bare name, for the caller to qualify or refuse. Pure:
//! the caller reads the file.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::address::Address;

/// How deep aliases may refer to aliases; sendmail stops at 10, a chain
/// deeper than this is a mistake rather than a design.
const MAX_DEPTH: usize = 32;

/// What a name in the file stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// An address, qualified or a bare name (which may be an alias too).
    Address(Address),
    /// A command, a file or an include list, as written: not deliverable here.
    Local(String),
    /// `\\name`: the name itself, never expanded again (sendmail's way to
    /// keep a copy for the local user, `root: \\root, ops@example.org`).
    Verbatim(Address),
    /// The entry could not be read (why): the name is refused when used,
    /// never taken for a name without an alias.
    Broken(String),
}

/// One name's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    line: usize,
    targets: Vec<Target>,
}

/// A parsed aliases file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aliases {
    origin: PathBuf,
    /// Keyed by the lower-cased name: aliases(5) names ignore case.
    entries: HashMap<String, Entry>,
}

/// A line of the file that was skipped, and why (as Postfix's postalias
/// warns and goes on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub origin: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.origin.display(),
            self.line,
            self.message
        )
    }
}

/// Why a name cannot be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasError {
    /// The names, in order, of a chain that comes back to its start.
    Loop { origin: PathBuf, chain: Vec<String> },
    /// Aliases of aliases deeper than [`MAX_DEPTH`].
    TooDeep { origin: PathBuf, name: String },
    /// The name's entry could not be read.
    Broken {
        origin: PathBuf,
        line: usize,
        name: String,
        why: String,
    },
    /// The name expands to a command, a file or an include list.
    Local {
        origin: PathBuf,
        line: usize,
        name: String,
        target: String,
    },
}

impl fmt::Display for AliasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasError::Loop { origin, chain } => write!(
                f,
                "{}: the aliases loop: {}; break the loop",
                origin.display(),
                chain.join(" -> ")
            ),
            AliasError::TooDeep { origin, name } => write!(
                f,
                "{}: alias \"{name}\" leads through more than {MAX_DEPTH} aliases",
                origin.display()
            ),
            AliasError::Broken {
                origin,
                line,
                name,
                why,
            } => write!(
                f,
                "{}:{line}: the entry for \"{name}\" cannot be read ({why}); fix it",
                origin.display()
            ),
            AliasError::Local {
                origin,
                line,
                name,
                target,
            } => write!(
                f,
                "{}:{line}: alias \"{name}\" delivers to {target:?}, a command, file or include \
                 list, which tlsend cannot do (it only sends mail on); point it at an address",
                origin.display()
            ),
        }
    }
}

impl std::error::Error for AliasError {}

impl Aliases {
    /// Parses the text of an aliases file; `origin` names it in messages.
    /// Lines that are not `name: value, …` are skipped with a warning.
    pub fn parse(text: &str, origin: &Path) -> (Aliases, Vec<Warning>) {
        let mut aliases = Aliases {
            origin: origin.to_path_buf(),
            entries: HashMap::new(),
        };
        let mut warnings = Vec::new();
        for (line, logical) in logical_lines(text) {
            let warn = |message: String| Warning {
                origin: origin.to_path_buf(),
                line,
                message,
            };
            match parse_entry(&logical) {
                Ok((name, targets)) => {
                    let key = name.to_lowercase();
                    if let Some(first) = aliases.entries.get(&key) {
                        warnings.push(warn(format!(
                            "\"{name}\" is already an alias (line {}); this entry is ignored",
                            first.line
                        )));
                    } else {
                        aliases.entries.insert(key, Entry { line, targets });
                    }
                }
                Err(message) => {
                    // A name whose entry is broken must not pass for a
                    // name without one: mail to it would go to
                    // name@domain instead of where the file sends it.
                    let name = logical
                        .split_once(':')
                        .and_then(|(name, _)| entry_name(name).ok())
                        .filter(|_| !logical.starts_with([' ', '\t']))
                        .filter(|name| Address::from_parts(name, None).is_ok());
                    match name {
                        Some(name) if !aliases.has(name) => {
                            warnings.push(warn(format!(
                                "{message}; mail to \"{name}\" is refused until it is fixed"
                            )));
                            aliases.entries.insert(
                                name.to_lowercase(),
                                Entry {
                                    line,
                                    targets: vec![Target::Broken(message)],
                                },
                            );
                        }
                        _ => warnings.push(warn(format!("{message}; the line is ignored"))),
                    }
                }
            }
        }
        (aliases, warnings)
    }

    /// The file the aliases came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// How many names the file defines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names the file defines, sorted (lower-cased).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Whether `name` (a bare local name) has an alias.
    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(&name.to_lowercase())
    }

    /// The addresses `addresses` stand for, in first-seen order, each
    /// once: a bare name with an alias is replaced by its expansion, all
    /// the way down; one that names itself in its own list (`alice:
    /// alice, bob`) keeps itself, as in sendmail. Qualified addresses and
    /// bare names without an alias come out as they went in.
    pub fn expand(&self, addresses: &[Address]) -> Result<Vec<Address>, AliasError> {
        let mut walk = Walk {
            aliases: self,
            out: Vec::new(),
            seen: HashSet::new(),
            expanded: HashSet::new(),
            chain: Vec::new(),
        };
        for address in addresses {
            walk.address(address)?;
        }
        Ok(walk.out)
    }
}

/// One expansion under way.
struct Walk<'a> {
    aliases: &'a Aliases,
    out: Vec<Address>,
    seen: HashSet<Address>,
    /// Names already expanded in this walk: their addresses are out.
    expanded: HashSet<String>,
    /// The names being expanded, outermost first.
    chain: Vec<String>,
}

impl Walk<'_> {
    fn emit(&mut self, address: &Address) {
        if self.seen.insert(address.clone()) {
            self.out.push(address.clone());
        }
    }

    fn address(&mut self, address: &Address) -> Result<(), AliasError> {
        if address.domain().is_some() {
            self.emit(address);
            return Ok(());
        }
        let key = address.local_part().to_lowercase();
        let Some(entry) = self.aliases.entries.get(&key) else {
            self.emit(address);
            return Ok(());
        };
        if self.expanded.contains(&key) {
            return Ok(());
        }
        if self.chain.contains(&key) {
            let start = self.chain.iter().position(|n| *n == key).unwrap_or(0);
            let mut chain = self.chain[start..].to_vec();
            chain.push(key);
            return Err(AliasError::Loop {
                origin: self.aliases.origin.clone(),
                chain,
            });
        }
        if self.chain.len() >= MAX_DEPTH {
            return Err(AliasError::TooDeep {
                origin: self.aliases.origin.clone(),
                name: self.chain.first().cloned().unwrap_or(key),
            });
        }
        self.chain.push(key.clone());
        for target in &entry.targets {
            match target {
                Target::Local(text) => {
                    return Err(AliasError::Local {
                        origin: self.aliases.origin.clone(),
                        line: entry.line,
                        name: key,
                        target: text.clone(),
                    });
                }
                Target::Broken(why) => {
                    return Err(AliasError::Broken {
                        origin: self.aliases.origin.clone(),
                        line: entry.line,
                        name: key,
                        why: why.clone(),
                    });
                }
                Target::Verbatim(name) => self.emit(name),
                // The name in its own list is the name itself, delivered
                // as it is rather than expanded again.
                Target::Address(own)
                    if own.domain().is_none() && own.local_part().eq_ignore_ascii_case(&key) =>
                {
                    self.emit(own);
                }
                Target::Address(other) => self.address(other)?,
            }
        }
        self.chain.pop();
        self.expanded.insert(key);
        Ok(())
    }
}

/// The file's entries as (first line number, text joined from its
/// continuation lines); comments and blank lines dropped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        match out.last_mut() {
            // aliases(5): a line that starts with white space continues the last.
            Some((_, previous)) if line.starts_with([' ', '\t']) => {
                previous.push(' ');
                previous.push_str(line.trim());
            }
            _ => out.push((index + 1, line.trim_end().to_string())),
        }
    }
    out
}

/// `name: target, target, …`.
fn parse_entry(line: &str) -> Result<(String, Vec<Target>), String> {
    if line.starts_with([' ', '\t']) {
        return Err("a continuation line with no entry before it".into());
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err("not a \"name: address, …\" entry".into());
    };
    let name = entry_name(name)?;
    let mut targets = Vec::new();
    for item in split_targets(value)? {
        targets.push(target(&item)?);
    }
    if targets.is_empty() {
        return Err(format!("\"{name}\" has no address"));
    }
    Ok((name.to_string(), targets))
}

/// The name before the colon of an entry.
fn entry_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('@') {
        return Err(format!("{name:?} is not a local name"));
    }
    if name.chars().any(char::is_control) {
        return Err("the name holds a control character".into());
    }
    Ok(name)
}

/// The comma-separated items of a value, quotes respected.
fn split_targets(value: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if quoted => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                current.push(c);
                quoted = !quoted;
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    items.push(current);
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

fn target(item: &str) -> Result<Target, String> {
    let unquoted = item
        .strip_prefix('"')
        .and_then(|i| i.strip_suffix('"'))
        .unwrap_or(item);
    let lower = unquoted.to_ascii_lowercase();
    if unquoted.starts_with(['|', '/']) || lower.starts_with(":include:") {
        return Ok(Target::Local(unquoted.to_string()));
    }
    if let Some(name) = item.strip_prefix('\\') {
        return Address::parse(name)
            .map(Target::Verbatim)
            .map_err(|e| format!("{item:?} is not an address: {e}"));
    }
    Address::parse(item)
        .map(Target::Address)
        .map_err(|e| format!("{item:?} is not an address: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(text: &str) -> Aliases {
        let (aliases, warnings) = Aliases::parse(text, Path::new("/etc/aliases"));
        assert_eq!(warnings, vec![], "{text:?}");
        aliases
    }

    fn expand(aliases: &Aliases, names: &[&str]) -> Result<Vec<String>, AliasError> {
        let addresses: Vec<Address> = names.iter().map(|n| Address::parse(n).unwrap()).collect();
        aliases
            .expand(&addresses)
            .map(|out| out.iter().map(|a| a.to_string()).collect())
    }

    // covers: IN12
    #[test]
    fn in12_expands_recursively_to_every_target() {
        let file = aliases(
            "# Debian's defaults\n\
             mailer-daemon: postmaster\n\
             postmaster: root\n\
             Root: ops@example.org, oncall\n\
             oncall: alice@example.org,\n\
             \tbob@example.org\n\
             \n\
             webmaster: \"carol\"@example.org\n",
        );
        #[rustfmt::skip]
        let cases: &[(&[&str], &[&str])] = &[
            (&["mailer-daemon"], &["ops@example.org", "alice@example.org", "bob@example.org"]),
            (&["ROOT"], &["ops@example.org", "alice@example.org", "bob@example.org"]),
            (&["webmaster"], &["carol@example.org"]),
            (&["nobody"], &["nobody"]),
            (&["root@example.net"], &["root@example.net"]),
            // Each address once, in first-seen order.
            (&["oncall", "root", "alice@example.org"], &["alice@example.org", "bob@example.org", "ops@example.org"]),
        ];
        for (names, expected) in cases {
            assert_eq!(expand(&file, names).unwrap(), *expected, "{names:?}");
        }
    }

    // covers: IN12
    #[test]
    fn in12_a_name_in_its_own_list_is_kept_not_expanded_again() {
        let file = aliases("alice: alice, bob@example.org\n");
        assert_eq!(
            expand(&file, &["alice"]).unwrap(),
            ["alice", "bob@example.org"]
        );
    }

    // covers: IN12
    #[test]
    fn in12_loops_are_refused_with_the_chain() {
        let file = aliases("a: b\nb: c, x@example.org\nc: A\n");
        let error = expand(&file, &["a"]).unwrap_err();
        assert_eq!(
            error,
            AliasError::Loop {
                origin: PathBuf::from("/etc/aliases"),
                chain: vec!["a".into(), "b".into(), "c".into(), "a".into()],
            }
        );
        assert!(error.to_string().contains("a -> b -> c -> a"), "{error}");
        // A shared target is no loop.
        let diamond = aliases("a: b, c\nb: d\nc: d\nd: z@example.org\n");
        assert_eq!(expand(&diamond, &["a"]).unwrap(), ["z@example.org"]);
    }

    // covers: IN12
    #[test]
    fn in12_a_command_or_file_target_is_refused_when_used() {
        let file = aliases("root: ops@example.org, \"|/usr/bin/procmail\"\nlog: /var/log/mail\n");
        let error = expand(&file, &["root"]).unwrap_err();
        assert!(
            matches!(&error, AliasError::Local { line: 1, name, target, .. }
                if name == "root" && target == "|/usr/bin/procmail"),
            "{error:?}"
        );
        assert!(matches!(
            expand(&file, &["log"]),
            Err(AliasError::Local { line: 2, .. })
        ));
        // Unused, it harms no one.
        assert_eq!(expand(&file, &["other"]).unwrap(), ["other"]);
    }

    // covers: IN12
    #[test]
    fn in12_a_broken_entry_refuses_its_name_instead_of_dropping_the_alias() {
        let (file, warnings) = Aliases::parse(
            "root: ops@example.org, Ops <oncall@example.org\n",
            Path::new("/etc/aliases"),
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.contains("\"root\" is refused"),
            "{warnings:?}"
        );
        let error = expand(&file, &["root"]).unwrap_err();
        assert!(
            matches!(&error, AliasError::Broken { line: 1, name, .. } if name == "root"),
            "{error:?}"
        );
        assert!(error.to_string().starts_with("/etc/aliases:1: "), "{error}");
    }

    // covers: IN12
    #[test]
    fn in12_a_backslashed_name_is_kept_as_it_is() {
        let file = aliases("root: \\root, ops@example.org\nadmin: \\root\n");
        assert_eq!(
            expand(&file, &["root"]).unwrap(),
            ["root", "ops@example.org"]
        );
        assert_eq!(expand(&file, &["admin"]).unwrap(), ["root"]);
    }

    #[test]
    fn deep_chains_end_with_an_error_not_a_stack_overflow() {
        let text: String = (0..200).map(|i| format!("n{i}: n{}\n", i + 1)).collect();
        let file = aliases(&text);
        assert!(matches!(
            expand(&file, &["n0"]),
            Err(AliasError::TooDeep { .. })
        ));
        assert_eq!(expand(&file, &["n190"]).unwrap(), ["n200"]);
    }

    #[test]
    fn malformed_lines_are_skipped_with_a_warning_naming_the_line() {
        let (file, warnings) = Aliases::parse(
            "good: a@example.org\nno colon here\n  \nbad name: x@example.org\nempty:\n\
             good: b@example.org\nq: \"unclosed\n",
            Path::new("/etc/aliases"),
        );
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [2, 4, 5, 6, 7], "{warnings:?}");
        assert!(warnings[3].to_string().starts_with("/etc/aliases:6: "));
        assert_eq!(file.names(), ["empty", "good", "q"]);
        // The first entry for a name wins, as with Postfix.
        assert_eq!(expand(&file, &["good"]).unwrap(), ["a@example.org"]);
        // A name whose entry is broken is refused, not sent as it is.
        for name in ["empty", "q"] {
            assert!(matches!(
                expand(&file, &[name]),
                Err(AliasError::Broken { .. })
            ));
        }
    }
}
