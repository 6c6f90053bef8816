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

pub use crate::local::{AddField, FromRewrite};

pub use secret::{Secret, SecretSource, too_open};

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

/// Which aliases file local names are looked up in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AliasesFile {
    /// /etc/aliases when it exists.
    #[default]
    System,
    /// `aliases = "PATH"`: this file, which must exist.
    File(PathBuf),
    /// `aliases = ""`: none.
    None,
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
    pub set_from_header: FromRewrite,
    pub set_date_header: AddField,
    pub set_msgid_header: AddField,
    /// Overrides the top-level `logfile` and `syslog` (UX6).
    pub logfile: Option<PathBuf>,
    pub syslog: Option<bool>,
}

/// How DNSSEC status is known for direct delivery (MX8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecMethod {
    /// Trust the AD bit of the resolver when it is on loopback or
    /// resolv.conf says `options trust-ad`.
    #[default]
    Auto,
    /// Trust the AD bit of the configured resolver, wherever it is.
    TrustResolver,
    /// Validate locally from `trust_anchor` (default: the root's anchor).
    Validate,
    /// Nothing counts as DNSSEC secure.
    Off,
}

/// Settings for direct delivery to MX hosts (the `[direct]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Direct {
    pub port: u16,
    /// A resolver to use instead of those in /etc/resolv.conf.
    pub resolver: Option<std::net::SocketAddr>,
    pub dnssec: DnssecMethod,
    /// DS or DNSKEY records in zone-file form, for `dnssec = "validate"`.
    pub trust_anchor: Option<PathBuf>,
    /// Where MTA-STS policies are cached; `None`: the user's cache directory.
    pub mta_sts_cache: Option<PathBuf>,
    /// The HTTPS port of `mta-sts.<domain>` (443; tests use another).
    pub mta_sts_port: u16,
    pub ehlo_name: Option<String>,
    pub lookup_timeout: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub data_timeout: Duration,
}

impl Default for Direct {
    fn default() -> Direct {
        Direct {
            port: 25,
            resolver: None,
            dnssec: DnssecMethod::Auto,
            trust_anchor: None,
            mta_sts_cache: None,
            mta_sts_port: 443,
            ehlo_name: None,
            lookup_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(30),
            // RFC 5321 4.5.3.2 asks for minutes; a one-off sender waits less.
            timeout: Duration::from_secs(120),
            data_timeout: Duration::from_secs(600),
        }
    }
}

/// The queue's settings (top-level keys `queue`, `queue_dir`,
/// `queue_lifetime`, `delay_warning`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// `queue = true | false`; unset: queue when a system queue is installed.
    pub enabled: Option<bool>,
    /// `queue = "always"`: when the system queue is installed, every
    /// message is queued without trying, as with -odq, and the queue
    /// runner alone sends (and alone needs the account's password).
    pub always: bool,
    /// The system queue's root; `None`: /var/spool/tlsend.
    pub dir: Option<PathBuf>,
    /// How long an entry is retried before it is returned to its sender.
    pub lifetime: Duration,
    /// When the sender is told the message is still waiting; `None`: never.
    pub delay_warning: Option<Duration>,
}

impl Default for QueueSettings {
    fn default() -> QueueSettings {
        QueueSettings {
            enabled: None,
            always: false,
            dir: None,
            // Postfix's maximal_queue_lifetime.
            lifetime: Duration::from_secs(5 * 86_400),
            delay_warning: None,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// Every file that was looked for, in order (for messages, UX5).
    pub searched: Vec<PathBuf>,
    pub default_account: Option<String>,
    pub dead_letter: Option<PathBuf>,
    pub direct: Direct,
    pub queue: QueueSettings,
    /// Where local names are looked up.
    pub aliases: AliasesFile,
    /// The domain of bare names, unless the account has its own.
    pub qualify_domain: Option<String>,
    /// One line per message and recipient to this file, and to syslog (UX6).
    pub logfile: Option<PathBuf>,
    pub syslog: bool,
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
    queue: Option<Spanned<QueueKey>>,
    queue_dir: Option<String>,
    queue_lifetime: Option<Spanned<String>>,
    delay_warning: Option<Spanned<String>>,
    aliases: Option<Spanned<String>>,
    qualify_domain: Option<Spanned<String>>,
    direct: Option<RawDirect>,
    logfile: Option<Spanned<String>>,
    syslog: Option<bool>,
    #[serde(default)]
    account: BTreeMap<String, Spanned<RawAccount>>,
}

/// `queue = true | false | "always"`.
enum QueueKey {
    Switch(bool),
    Always,
}

impl<'de> Deserialize<'de> for QueueKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<QueueKey, D::Error> {
        struct Expected;
        impl serde::de::Visitor<'_> for Expected {
            type Value = QueueKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"always\"")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<QueueKey, E> {
                Ok(QueueKey::Switch(on))
            }
            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<QueueKey, E> {
                match word {
                    "always" => Ok(QueueKey::Always),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(word), &self)),
                }
            }
        }
        deserializer.deserialize_any(Expected)
    }
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
struct RawDirect {
    port: Option<Spanned<u16>>,
    resolver: Option<Spanned<String>>,
    dnssec: Option<Spanned<DnssecMethod>>,
    trust_anchor: Option<Spanned<String>>,
    mta_sts_cache: Option<Spanned<String>>,
    mta_sts_port: Option<Spanned<u16>>,
    ehlo_name: Option<Spanned<String>>,
    lookup_timeout: Option<Spanned<u64>>,
    connect_timeout: Option<Spanned<u64>>,
    timeout: Option<Spanned<u64>>,
    data_timeout: Option<Spanned<u64>>,
}

/// Each field keeps its position so that a check can name the key's line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    host: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    tls: Option<Spanned<TlsStart>>,
    from: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_command: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    auth: Option<Spanned<AuthMethod>>,
    ca_file: Option<Spanned<String>>,
    fingerprint: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<u64>>,
    timeout: Option<Spanned<u64>>,
    data_timeout: Option<Spanned<u64>>,
    mode: Option<Spanned<ModeName>>,
    ehlo_name: Option<Spanned<String>>,
    qualify_domain: Option<Spanned<String>>,
    set_from_header: Option<Spanned<FromRewrite>>,
    set_date_header: Option<AddField>,
    set_msgid_header: Option<AddField>,
    logfile: Option<Spanned<String>>,
    syslog: Option<Spanned<bool>>,
}

/// Longest time limit accepted for a step: a day is already no limit.
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// Parses a configuration; `origin` names it in errors. `~` means the
/// home directory.
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

    // PHP-FPM and many services clear HOME; the password database still knows it.
    let home = crate::user::home_dir(env);
    let expand = |p: &str| expand_tilde(p, home.as_deref());
    let mut accounts = Vec::new();
    let mut spanned: Vec<(&String, &Spanned<RawAccount>)> = raw.account.iter().collect();
    spanned.sort_by_key(|(_, a)| a.span().start);
    for (name, account) in spanned {
        let account = build_account(name, account, &expand).map_err(|(offset, message)| {
            at(
                Some(line_col(&text, offset)),
                format!("account \"{name}\": {message}"),
            )
        })?;
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
    let direct = match &raw.direct {
        Some(direct) => build_direct(direct, &expand).map_err(|(offset, message)| {
            at(
                Some(line_col(&text, offset)),
                format!("[direct]: {message}"),
            )
        })?,
        None => Direct::default(),
    };
    let interval = |value: &Spanned<String>, key: &str| {
        crate::cli::parse_interval(value.get_ref()).map_err(|e| {
            at(
                Some(line_col(&text, value.span().start)),
                format!("{key}: {e}"),
            )
        })
    };
    let mut queue = QueueSettings {
        enabled: match raw.queue.as_ref().map(Spanned::get_ref) {
            None => None,
            Some(QueueKey::Switch(on)) => Some(*on),
            Some(QueueKey::Always) => Some(true),
        },
        always: matches!(
            raw.queue.as_ref().map(Spanned::get_ref),
            Some(QueueKey::Always)
        ),
        dir: raw.queue_dir.as_deref().map(&expand),
        ..QueueSettings::default()
    };
    if let Some(value) = &raw.queue_lifetime {
        queue.lifetime = interval(value, "queue_lifetime")?;
    }
    if let Some(value) = &raw.delay_warning {
        queue.delay_warning = match value.get_ref().as_str() {
            "off" | "never" => None,
            // Postfix's delay_warning_time when it is switched on.
            "on" => Some(Duration::from_secs(4 * 3600)),
            _ => Some(interval(value, "delay_warning")?),
        };
    }
    if let Some(domain) = &raw.qualify_domain
        && let Err(message) = check_domain("qualify_domain", domain.get_ref())
    {
        return Err(at(Some(line_col(&text, domain.span().start)), message));
    }
    let aliases = match &raw.aliases {
        None => AliasesFile::System,
        Some(path) if path.get_ref().is_empty() => AliasesFile::None,
        Some(path) => {
            let expanded = expand(path.get_ref());
            // Read from whatever directory cron or the web server runs
            // in, a relative path would name a different file each time.
            if !expanded.is_absolute() {
                return Err(at(
                    Some(line_col(&text, path.span().start)),
                    format!(
                        "aliases {:?} is not an absolute path (like /etc/aliases), or \"\" for none",
                        path.get_ref()
                    ),
                ));
            }
            AliasesFile::File(expanded)
        }
    };
    let logfile = match &raw.logfile {
        Some(path) => Some(
            log_path(path, &expand)
                .map_err(|(offset, message)| at(Some(line_col(&text, offset)), message))?,
        ),
        None => None,
    };
    Ok(Config {
        path: Some(origin.to_path_buf()),
        searched: vec![origin.to_path_buf()],
        default_account,
        dead_letter: raw.dead_letter.as_deref().map(&expand),
        direct,
        queue,
        aliases,
        qualify_domain: raw.qualify_domain.map(Spanned::into_inner),
        logfile,
        syslog: raw.syslog.unwrap_or(false),
        accounts,
    })
}

fn build_direct(raw: &RawDirect, expand: &dyn Fn(&str) -> PathBuf) -> Result<Direct, Invalid> {
    let defaults = Direct::default();
    let port = |value: &Option<Spanned<u16>>, default: u16| match value {
        Some(p) if *p.get_ref() == 0 => Err((p.span().start, "port 0 is not a port".to_string())),
        Some(p) => Ok(*p.get_ref()),
        None => Ok(default),
    };
    let resolver = match &raw.resolver {
        None => None,
        Some(text) => Some(parse_resolver(text.get_ref()).map_err(|e| (text.span().start, e))?),
    };
    let dnssec = raw
        .dnssec
        .as_ref()
        .map_or(DnssecMethod::Auto, |d| *d.get_ref());
    if let (Some(anchor), false) = (&raw.trust_anchor, dnssec == DnssecMethod::Validate) {
        return Err((
            anchor.span().start,
            "trust_anchor is only used with dnssec = \"validate\"".into(),
        ));
    }
    if let (Some(resolver), DnssecMethod::TrustResolver) = (&raw.resolver, dnssec)
        && resolver.get_ref().is_empty()
    {
        return Err((resolver.span().start, "resolver is empty".into()));
    }
    if let Some(name) = &raw.ehlo_name
        && crate::address::Address::from_parts("postmaster", Some(name.get_ref())).is_err()
    {
        return Err((
            name.span().start,
            format!(
                "ehlo_name {:?} is not a domain name or an address literal like [192.0.2.1]",
                name.get_ref()
            ),
        ));
    }
    let secs = |value: &Option<Spanned<u64>>, key: &str, default: Duration| {
        seconds(value, key, default.as_secs())
    };
    Ok(Direct {
        port: port(&raw.port, defaults.port)?,
        resolver,
        dnssec,
        trust_anchor: raw.trust_anchor.as_ref().map(|p| expand(p.get_ref())),
        mta_sts_cache: raw.mta_sts_cache.as_ref().map(|p| expand(p.get_ref())),
        mta_sts_port: port(&raw.mta_sts_port, defaults.mta_sts_port)?,
        ehlo_name: raw.ehlo_name.as_ref().map(|n| n.get_ref().clone()),
        lookup_timeout: secs(
            &raw.lookup_timeout,
            "lookup_timeout",
            defaults.lookup_timeout,
        )?,
        connect_timeout: secs(
            &raw.connect_timeout,
            "connect_timeout",
            defaults.connect_timeout,
        )?,
        timeout: secs(&raw.timeout, "timeout", defaults.timeout)?,
        data_timeout: secs(&raw.data_timeout, "data_timeout", defaults.data_timeout)?,
    })
}

/// `192.0.2.53`, `192.0.2.53:5353`, `::1` or `[::1]:5353`; port 53 by default.
fn parse_resolver(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{IpAddr, SocketAddr};
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("resolver {text:?} is not an address like 127.0.0.1, 127.0.0.1:5353 or [::1]:5353")
    })
}

/// A failed check: the byte offset of the offending key's value, and why.
type Invalid = (usize, String);

/// `logfile`: an absolute path (after `~/`), since a relative one would
/// follow the working directory of whoever runs tlsend (cron, a web server).
fn log_path(value: &Spanned<String>, expand: &dyn Fn(&str) -> PathBuf) -> Result<PathBuf, Invalid> {
    let path = expand(value.get_ref());
    if !path.is_absolute() {
        return Err((
            value.span().start,
            format!(
                "logfile {:?} is not an absolute path (like /var/log/tlsend.log or ~/tlsend.log)",
                value.get_ref()
            ),
        ));
    }
    Ok(path)
}

/// A time limit in whole seconds, 1 to [`MAX_TIMEOUT_SECONDS`].
fn seconds(value: &Option<Spanned<u64>>, key: &str, default: u64) -> Result<Duration, Invalid> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(v) if (1..=MAX_TIMEOUT_SECONDS).contains(v.get_ref()) => {
            Ok(Duration::from_secs(*v.get_ref()))
        }
        Some(v) => Err((
            v.span().start,
            format!("{key} must be from 1 to {MAX_TIMEOUT_SECONDS} seconds"),
        )),
    }
}

fn build_account(
    name: &str,
    account: &Spanned<RawAccount>,
    expand: &dyn Fn(&str) -> PathBuf,
) -> Result<Account, Invalid> {
    let raw = account.get_ref();
    let table = account.span().start;
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    if name.is_empty() {
        return Err((table, "an account needs a name".into()));
    }

    let tls = raw
        .tls
        .as_ref()
        .map_or(TlsStart::StartTls, |t| *t.get_ref());
    let sources: Vec<(std::ops::Range<usize>, SecretSource)> = [
        raw.password_command
            .as_ref()
            .map(|c| (c.span(), SecretSource::Command(c.get_ref().clone()))),
        raw.password_file
            .as_ref()
            .map(|f| (f.span(), SecretSource::File(expand(f.get_ref())))),
        raw.password_env
            .as_ref()
            .map(|e| (e.span(), SecretSource::Env(e.get_ref().clone()))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if sources.len() > 1 {
        // Point at the source that comes later in the file.
        let later = sources
            .iter()
            .map(|(span, _)| span.start)
            .max()
            .unwrap_or(table);
        return Err((
            later,
            "give only one of password_command, password_file and password_env".into(),
        ));
    }
    if let Some((span, source)) = sources.first() {
        if raw.user.is_none() {
            return Err((span.start, "a password source needs a user".into()));
        }
        let empty = match source {
            SecretSource::Command(c) => c.trim().is_empty(),
            SecretSource::File(f) => f.as_os_str().is_empty(),
            SecretSource::Env(v) => v.is_empty() || v.contains(['=', '\0']),
        };
        if empty {
            return Err((
                span.start,
                "the password source is empty or not a valid name".into(),
            ));
        }
    }
    if let (Some(user), TlsStart::None) = (&raw.user, tls) {
        return Err((
            user.span().start,
            "AUTH is only sent over TLS; with tls = \"none\" remove user, or use starttls or implicit".into(),
        ));
    }
    if let (Some(_), Some(fingerprint)) = (&raw.ca_file, &raw.fingerprint) {
        return Err((
            fingerprint.span().start,
            "ca_file and fingerprint are alternatives; keep one".into(),
        ));
    }
    if let Some(port) = raw.port.as_ref().filter(|p| *p.get_ref() == 0) {
        return Err((port.span().start, "port 0 is not a port".into()));
    }
    let fingerprint = match &raw.fingerprint {
        Some(f) => Some(
            parse_fingerprint(f.get_ref())
                .map_err(|e| (f.span().start, format!("fingerprint: {e}")))?,
        ),
        None => None,
    };

    // Values that end up in SMTP commands or TLS names are checked here, so
    // the error can name the line (UX5); the layers below check again.
    if let Some(host) = &raw.host
        && (host.get_ref().is_empty()
            || host
                .get_ref()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err((
            host.span().start,
            format!("host {:?} is not a host name or address", host.get_ref()),
        ));
    }
    for (key, value) in [
        ("ehlo_name", &raw.ehlo_name),
        ("qualify_domain", &raw.qualify_domain),
    ] {
        if let Some(domain) = value {
            check_domain(key, domain.get_ref()).map_err(|e| (domain.span().start, e))?;
        }
    }
    let from_address = match &raw.from {
        Some(from) if !from.get_ref().contains(['*', '?']) => {
            match crate::address::ReversePath::parse(from.get_ref()) {
                Ok(path) => path.address().cloned(),
                Err(e) => {
                    return Err((from.span().start, format!("from {:?}: {e}", from.get_ref())));
                }
            }
        }
        _ => None,
    };
    let set_from_header = raw
        .set_from_header
        .as_ref()
        .map_or(FromRewrite::Auto, |s| *s.get_ref());
    if let Some(setting) = &raw.set_from_header
        && set_from_header == FromRewrite::On
        && from_address.as_ref().is_none_or(|a| a.domain().is_none())
    {
        return Err((
            setting.span().start,
            "set_from_header = \"on\" rewrites From to the account's from, so from must be \
             an address with a domain (not a pattern)"
                .into(),
        ));
    }

    Ok(Account {
        name: name.to_string(),
        host: text(&raw.host),
        port: raw.port.as_ref().map(|p| *p.get_ref()),
        tls,
        from: text(&raw.from),
        user: text(&raw.user),
        password: sources.into_iter().next().map(|(_, source)| source),
        auth: raw.auth.as_ref().map_or(AuthMethod::Auto, |a| *a.get_ref()),
        ca_file: raw.ca_file.as_ref().map(|c| expand(c.get_ref())),
        fingerprint,
        connect_timeout: seconds(&raw.connect_timeout, "connect_timeout", 30)?,
        timeout: seconds(&raw.timeout, "timeout", 60)?,
        data_timeout: seconds(&raw.data_timeout, "data_timeout", 600)?,
        mode: raw.mode.as_ref().map(|m| match m.get_ref() {
            ModeName::Require => Mode::Require,
            ModeName::Optional => Mode::Optional,
            ModeName::Default => Mode::Default,
        }),
        ehlo_name: text(&raw.ehlo_name),
        qualify_domain: text(&raw.qualify_domain),
        set_from_header,
        set_date_header: raw.set_date_header.unwrap_or_default(),
        set_msgid_header: raw.set_msgid_header.unwrap_or_default(),
        logfile: match &raw.logfile {
            Some(path) => Some(log_path(path, expand)?),
            None => None,
        },
        syslog: raw.syslog.as_ref().map(|s| *s.get_ref()),
    })
}

/// A key whose value must be a domain name (or an address literal).
fn check_domain(key: &str, domain: &str) -> Result<(), String> {
    match crate::address::Address::from_parts("postmaster", Some(domain)) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{key} {domain:?} is not a domain name")),
    }
}

fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
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
    locate_in(explicit, env, Path::new(SYSTEM_CONFIG))
}

fn locate_in(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        return match present(path) {
            Ok(true) => Ok(Some(path.to_path_buf())),
            Ok(false) => Err(ConfigError::new(format!(
                "-C {}: no such file",
                path.display()
            ))),
            Err(e) => Err(ConfigError::new(format!("-C {}: {e}", path.display()))),
        };
    }
    for candidate in candidates(env, system) {
        match present(&candidate) {
            Ok(true) => return Ok(Some(candidate)),
            Ok(false) => {}
            // An unreadable user file must not silently give way to /etc.
            Err(e) => {
                return Err(ConfigError {
                    path: Some(candidate),
                    position: None,
                    message: format!("cannot read: {e}"),
                });
            }
        }
    }
    Ok(None)
}

/// The files looked for without `-C`, in order: the user's, then the system's.
fn candidates(env: impl Fn(&str) -> Option<OsString>, system: &Path) -> Vec<PathBuf> {
    // XDG Base Directory: a relative XDG_CONFIG_HOME is invalid and ignored.
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            env("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        });
    [
        xdg.map(|dir| dir.join("tlsend").join("config.toml")),
        Some(system.to_path_buf()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The files [`load`] looks for, in order (`-C FILE` alone when given).
pub fn searched(explicit: Option<&Path>) -> Vec<PathBuf> {
    match explicit {
        Some(path) => vec![path.to_path_buf()],
        None => candidates(|key| std::env::var_os(key), Path::new(SYSTEM_CONFIG)),
    }
}

/// The system-wide configuration file.
const SYSTEM_CONFIG: &str = "/etc/tlsend.toml";

/// Whether a file is there: only "not found" means no; any other error
/// (permission denied on a directory) is reported, not taken for absence.
fn present(path: &Path) -> std::io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Locates and parses the configuration; no file gives an empty one.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let searched = searched(explicit);
    let Some(path) = locate(explicit, |key| std::env::var_os(key))? else {
        return Ok(Config {
            searched,
            ..Config::default()
        });
    };
    let file = std::fs::File::open(&path).map_err(|e| ConfigError {
        path: Some(path.clone()),
        position: None,
        message: format!("cannot open: {e}"),
    })?;
    let mut config = parse(file, &path)?;
    // Every candidate up to the one found.
    let found = searched.iter().position(|p| *p == path);
    config.searched = match found {
        Some(at) => searched[..=at].to_vec(),
        None => vec![path],
    };
    Ok(config)
}

/// Why an account was chosen, for `-v`, `--check-config` and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// `-a NAME`.
    Named,
    /// The `-f` sender matches the account's `from` pattern.
    FromMatched { sender: String, pattern: String },
    /// `default_account` names it.
    DefaultAccount,
    /// It is named "default".
    NamedDefault,
    /// It is the only account.
    Only,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Named => write!(f, "named with -a"),
            Why::FromMatched { sender, pattern } => {
                write!(f, "the sender {sender} matches its from = \"{pattern}\"")
            }
            Why::DefaultAccount => write!(f, "default_account names it"),
            Why::NamedDefault => write!(f, "it is named \"default\""),
            Why::Only => write!(f, "it is the only account"),
        }
    }
}

/// What account selection found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection<'a> {
    Chosen(&'a Account, Why),
    /// There are no accounts.
    NoAccounts,
    /// Several accounts, and nothing says which: the caller decides
    /// whether that is an error (see [`Config::ambiguity`]).
    Ambiguous,
}

impl Config {
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Where the configuration came from, for messages: the file, or
    /// every file looked for when none was found.
    pub fn origin(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None if self.searched.is_empty() => "no configuration file".to_string(),
            None => format!(
                "no configuration file was found (looked for {})",
                self.searched_text()
            ),
        }
    }

    fn searched_text(&self) -> String {
        let shown: Vec<String> = self
            .searched
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        match shown.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        }
    }

    /// The account to use: the one named by `-a`; else the first whose
    /// `from` matches the `-f` sender; else `default_account`; else one
    /// named "default"; else the only one. Several accounts with nothing to
    /// choose between them are an error (UX5): the message would otherwise
    /// go directly to the MX hosts, which is never what such a user meant.
    pub fn select(
        &self,
        name: Option<&str>,
        sender: Option<&str>,
    ) -> Result<Option<&Account>, ConfigError> {
        match self.choose(name, sender)? {
            Selection::Chosen(account, _) => Ok(Some(account)),
            Selection::NoAccounts => Ok(None),
            Selection::Ambiguous => Err(self.ambiguity(sender)),
        }
    }

    /// [`Config::select`], saying why, and leaving the ambiguous case to the caller.
    pub fn choose(
        &self,
        name: Option<&str>,
        sender: Option<&str>,
    ) -> Result<Selection<'_>, ConfigError> {
        if let Some(name) = name {
            return match self.accounts.iter().find(|a| a.name == name) {
                Some(account) => Ok(Selection::Chosen(account, Why::Named)),
                None => {
                    let known: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
                    let mut error = ConfigError::new(format!(
                        "-a {name}: no such account{}",
                        if self.path.is_none() {
                            format!(": {}", self.origin())
                        } else if known.is_empty() {
                            " (the configuration file has no accounts)".to_string()
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
            && let Some((account, pattern)) = self.accounts.iter().find_map(|a| {
                a.from
                    .as_deref()
                    .filter(|from| glob_match(from, sender))
                    .map(|from| (a, from))
            })
        {
            let why = Why::FromMatched {
                sender: sender.to_string(),
                pattern: pattern.to_string(),
            };
            return Ok(Selection::Chosen(account, why));
        }
        if let Some(default) = &self.default_account
            && let Some(account) = self.accounts.iter().find(|a| &a.name == default)
        {
            return Ok(Selection::Chosen(account, Why::DefaultAccount));
        }
        if let Some(account) = self.accounts.iter().find(|a| a.name == "default") {
            return Ok(Selection::Chosen(account, Why::NamedDefault));
        }
        Ok(match self.accounts.as_slice() {
            [] => Selection::NoAccounts,
            [only] => Selection::Chosen(only, Why::Only),
            _ => Selection::Ambiguous,
        })
    }

    /// The error for several accounts and nothing to choose between them.
    pub fn ambiguity(&self, sender: Option<&str>) -> ConfigError {
        let names: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
        let unmatched = match sender {
            Some(sender) => format!(", and the sender {sender} matches no account's from"),
            None => String::new(),
        };
        ConfigError {
            path: self.path.clone(),
            position: None,
            message: format!(
                "{} accounts ({}) and no default_account{unmatched}; pass -a NAME or set \
                 default_account (or --direct to deliver to the MX hosts)",
                names.len(),
                names.join(", ")
            ),
        }
    }
}

/// Case-insensitive match with `*` (any run) and `?` (one character).
/// Both sides may be written in angle brackets (`from = "<a@b>"`, `-f <a@b>`).
fn glob_match(pattern: &str, text: &str) -> bool {
    let bare = |s: &str| -> Vec<char> {
        s.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase()
            .chars()
            .collect()
    };
    let pattern = bare(pattern);
    let text = bare(text);
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
