//! The configuration file: where it is found, its TOML format, validation,
//! account selection, and where credentials come from. It knows nothing of
//! SMTP, TLS or DNS.
//!
//! Errors read `path:line:col: problem` and mean exit 78. Unknown keys are
//! errors, because a misspelt `ca_flie` must not silently weaken trust.
//! There is no inline password: a secret comes from a command, a private
//! file, or an environment variable (SUB6).

mod secret;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::policy::Mode;

pub use secret::{Secret, SecretSource};

/// How the connection to the server starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsStart {
    #[serde(rename = "starttls")]
    StartTls,
    Implicit,
    None,
}

/// Which SASL mechanism to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Auto,
    Plain,
    Login,
    #[serde(rename = "xoauth2")]
    XOAuth2,
    #[serde(rename = "oauthbearer")]
    OAuthBearer,
}

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        write!(f, "sha256:{}", hex.join(":"))
    }
}

/// Reads `AB:CD:…`, plain hex, optionally prefixed `sha256:`, any case.
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint, String> {
    let trimmed = text.trim();
    let hex = match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
        _ => trimmed,
    };
    let digits: String = hex.chars().filter(|&c| c != ':').collect();
    let expected = "expected 64 hexadecimal digits (SHA-256), optionally as sha256:AB:CD:…";
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not a SHA-256 fingerprint; {expected}"));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| expected.to_string())?;
    }
    Ok(Fingerprint(out))
}

/// One account: a server and how to use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: TlsStart,
    /// Envelope sender, or (with `*` or `?`) a pattern `-f` is matched against.
    pub from: Option<String>,
    pub user: Option<String>,
    pub password: Option<SecretSource>,
    pub auth: AuthMethod,
    pub ca_file: Option<PathBuf>,
    pub fingerprint: Option<Fingerprint>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub data_timeout: Duration,
    pub mode: Option<Mode>,
    pub ehlo_name: Option<String>,
    pub qualify_domain: Option<String>,
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    pub default_account: Option<String>,
    pub dead_letter: Option<PathBuf>,
    /// In file order.
    accounts: Vec<Account>,
}

/// A configuration problem (exit 78): where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    /// 1-based line and column.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: None,
            position: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}:", path.display())?;
            if let Some((line, col)) = self.position {
                write!(f, "{line}:{col}:")?;
            }
            write!(f, " ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_account: Option<Spanned<String>>,
    dead_letter: Option<String>,
    #[serde(default)]
    account: BTreeMap<String, Spanned<RawAccount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "lowercase")]
enum ModeName {
    Require,
    Optional,
    Default,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<TlsStart>,
    from: Option<String>,
    user: Option<String>,
    password_command: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    auth: Option<AuthMethod>,
    ca_file: Option<String>,
    fingerprint: Option<String>,
    connect_timeout: Option<u64>,
    timeout: Option<u64>,
    data_timeout: Option<u64>,
    mode: Option<ModeName>,
    ehlo_name: Option<String>,
    qualify_domain: Option<String>,
}

/// Parses a configuration; `origin` names it in errors. `~` means $HOME.
pub fn parse(reader: impl Read, origin: &Path) -> Result<Config, ConfigError> {
    parse_with(reader, origin, &|key| std::env::var_os(key))
}

/// [`parse`] with the environment passed in.
pub fn parse_with(
    mut reader: impl Read,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let at = |position: Option<(usize, usize)>, message: String| ConfigError {
        path: Some(origin.to_path_buf()),
        position,
        message,
    };
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| at(None, format!("cannot read: {e}")))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let position = e.span().map(|span| line_col(&text, span.start));
        at(position, e.message().trim_end().to_string())
    })?;

    let home = env("HOME");
    let expand = |p: &str| expand_tilde(p, home.as_deref());
    let mut accounts = Vec::new();
    let mut spanned: Vec<(&String, &Spanned<RawAccount>)> = raw.account.iter().collect();
    spanned.sort_by_key(|(_, a)| a.span().start);
    for (name, account) in spanned {
        let position = Some(line_col(&text, account.span().start));
        let account = build_account(name, account.get_ref(), &expand)
            .map_err(|message| at(position, format!("account \"{name}\": {message}")))?;
        accounts.push(account);
    }
    let default_account = match raw.default_account {
        Some(name) if !accounts.iter().any(|a| a.name == *name.get_ref()) => {
            let known: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
            return Err(at(
                Some(line_col(&text, name.span().start)),
                format!(
                    "default_account = \"{}\" names no account (accounts: {})",
                    name.get_ref(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        Some(name) => Some(name.into_inner()),
        None => None,
    };
    Ok(Config {
        path: Some(origin.to_path_buf()),
        default_account,
        dead_letter: raw.dead_letter.as_deref().map(&expand),
        accounts,
    })
}

fn build_account(
    name: &str,
    raw: &RawAccount,
    expand: &dyn Fn(&str) -> PathBuf,
) -> Result<Account, String> {
    let tls = raw.tls.unwrap_or(TlsStart::StartTls);
    let sources: Vec<SecretSource> = [
        raw.password_command.clone().map(SecretSource::Command),
        raw.password_file
            .as_deref()
            .map(|p| SecretSource::File(expand(p))),
        raw.password_env.clone().map(SecretSource::Env),
    ]
    .into_iter()
    .flatten()
    .collect();
    if sources.len() > 1 {
        return Err("give only one of password_command, password_file and password_env".into());
    }
    if !sources.is_empty() && raw.user.is_none() {
        return Err("a password source needs a user".into());
    }
    if raw.user.is_some() && tls == TlsStart::None {
        return Err("AUTH is only sent over TLS; with tls = \"none\" remove user, or use starttls or implicit".into());
    }
    if raw.ca_file.is_some() && raw.fingerprint.is_some() {
        return Err("ca_file and fingerprint are alternatives; keep one".into());
    }
    if raw.port == Some(0) {
        return Err("port 0 is not a port".into());
    }
    let seconds = |value: Option<u64>, key: &str, default: u64| -> Result<Duration, String> {
        match value {
            Some(0) => Err(format!("{key} must be at least 1 second")),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(Duration::from_secs(default)),
        }
    };
    let fingerprint = raw
        .fingerprint
        .as_deref()
        .map(parse_fingerprint)
        .transpose()
        .map_err(|e| format!("fingerprint: {e}"))?;
    Ok(Account {
        name: name.to_string(),
        host: raw.host.clone(),
        port: raw.port,
        tls,
        from: raw.from.clone(),
        user: raw.user.clone(),
        password: sources.into_iter().next(),
        auth: raw.auth.unwrap_or(AuthMethod::Auto),
        ca_file: raw.ca_file.as_deref().map(expand),
        fingerprint,
        connect_timeout: seconds(raw.connect_timeout, "connect_timeout", 30)?,
        timeout: seconds(raw.timeout, "timeout", 60)?,
        data_timeout: seconds(raw.data_timeout, "data_timeout", 600)?,
        mode: raw.mode.as_ref().map(|m| match m {
            ModeName::Require => Mode::Require,
            ModeName::Optional => Mode::Optional,
            ModeName::Default => Mode::Default,
        }),
        ehlo_name: raw.ehlo_name.clone(),
        qualify_domain: raw.qualify_domain.clone(),
    })
}

fn expand_tilde(path: &str, home: Option<&std::ffi::OsStr>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Where the configuration is: `-C FILE`, else
/// `$XDG_CONFIG_HOME/tlsend/config.toml` (`~/.config/…` when unset), else
/// `/etc/tlsend.toml`, else none.
pub fn locate(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<PathBuf>, ConfigError> {
    locate_in(explicit, env, Path::new("/etc/tlsend.toml"))
}

fn locate_in(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        if path.exists() {
            return Ok(Some(path.to_path_buf()));
        }
        let mut error = ConfigError::new(format!("-C {}: no such file", path.display()));
        error.path = None;
        return Err(error);
    }
    let xdg = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        });
    if let Some(user) = xdg.map(|dir| dir.join("tlsend").join("config.toml"))
        && user.exists()
    {
        return Ok(Some(user));
    }
    Ok(system.exists().then(|| system.to_path_buf()))
}

/// Locates and parses the configuration; no file gives an empty one.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let Some(path) = locate(explicit, |key| std::env::var_os(key))? else {
        return Ok(Config::default());
    };
    let file = std::fs::File::open(&path).map_err(|e| ConfigError {
        path: Some(path.clone()),
        position: None,
        message: format!("cannot open: {e}"),
    })?;
    parse(file, &path)
}

impl Config {
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The account to use: the one named by `-a`; else the first whose
    /// `from` matches the `-f` sender; else `default_account`; else one
    /// named "default"; else the only one; else none.
    pub fn select(
        &self,
        name: Option<&str>,
        sender: Option<&str>,
    ) -> Result<Option<&Account>, ConfigError> {
        if let Some(name) = name {
            return match self.accounts.iter().find(|a| a.name == name) {
                Some(account) => Ok(Some(account)),
                None => {
                    let known: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
                    let mut error = ConfigError::new(format!(
                        "-a {name}: no such account{}",
                        if known.is_empty() {
                            " (no configuration file has accounts)".to_string()
                        } else {
                            format!(" (accounts: {})", known.join(", "))
                        }
                    ));
                    error.path.clone_from(&self.path);
                    Err(error)
                }
            };
        }
        if let Some(sender) = sender
            && let Some(account) = self.accounts.iter().find(|a| {
                a.from
                    .as_deref()
                    .is_some_and(|from| glob_match(from, sender))
            })
        {
            return Ok(Some(account));
        }
        if let Some(default) = &self.default_account {
            return Ok(self.accounts.iter().find(|a| &a.name == default));
        }
        if let Some(account) = self.accounts.iter().find(|a| a.name == "default") {
            return Ok(Some(account));
        }
        Ok(match self.accounts.as_slice() {
            [only] => Some(only),
            _ => None,
        })
    }
}

/// Case-insensitive match with `*` (any run) and `?` (one character).
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
        .chars()
        .collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
