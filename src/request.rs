//! Combines what the user typed ([`cli::Invocation`]) with the configuration
//! into one typed request (ripgrep's "HiArgs"): the server and how to secure
//! it, the credentials' source, the TLS mode asked for and by whom, the
//! envelope sender, the domain for bare recipient names, and where an unsent
//! message is saved. Command-line settings beat the account's.
//!
//! Nothing here touches the network or reads a secret; the environment is
//! passed in so tests can give their own.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::address::{Address, ReversePath};
use crate::cli::{self, Invocation};
use crate::config::{self, Account, Config, SecretSource};
use crate::deliver::{DirectSettings, Security, SettingNames, Submission};
use crate::local::{AddField, FromRewrite, Qualification};
use crate::log::LogSettings;
use crate::policy::{Mode, Requested};
use crate::smtp::{AuthChoice, Dsn, Mechanism, Notify, Ret, Timeouts};
use crate::tls::Trust;

/// Where the user's credentials come from; fetched only when needed.
#[derive(Clone, Debug)]
pub struct Login {
    pub user: String,
    pub secret: SecretSource,
    pub choice: AuthChoice,
}

/// Where the message goes.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// Through a submission server.
    Submission {
        /// `credentials` is filled in once the secret is fetched.
        submission: Submission,
        /// `None` only for `Security::Plain`.
        trust: Option<Trust>,
        login: Option<Login>,
    },
    /// Directly to each recipient domain's MX hosts.
    Direct(DirectRequest),
}

/// Direct delivery's settings, from `[direct]` and the command line.
#[derive(Clone, Debug)]
pub struct DirectRequest {
    pub settings: DirectSettings,
    pub port: u16,
    /// Instead of /etc/resolv.conf's.
    pub resolver: Option<std::net::SocketAddr>,
    pub dnssec: config::DnssecMethod,
    pub trust_anchor: Option<PathBuf>,
    /// `None` when no cache directory is known (no home): fetched each time.
    pub mta_sts_cache: Option<PathBuf>,
    pub mta_sts_port: u16,
    pub lookup_timeout: Duration,
    /// Why direct delivery was chosen, for `-v`.
    pub reason: &'static str,
}

/// Everything needed to send one message, apart from the message.
#[derive(Clone, Debug)]
pub struct Request {
    /// The account used, for messages ("account \"work\"").
    pub account: Option<String>,
    /// Why that account: `the sender a@b matches its from = "*@b"`, for `-v` and
    /// messages (UX5).
    pub account_why: Option<String>,
    pub delivery: Delivery,
    pub mode_flag: Option<Requested>,
    pub configured_mode: Option<Requested>,
    /// The envelope sender, or why there is none: a queue run and the
    /// checks need a request without one (the runner's messages keep their
    /// own senders), a send stops on the error.
    pub sender: Result<ReversePath, RequestError>,
    pub full_name: Option<FullName>,
    /// The domain bare names get, or why there is none (IN12).
    pub qualification: Qualification,
    /// What tlsend may add to or change in the header.
    pub header: HeaderSettings,
    pub dead_letter: Option<PathBuf>,
    pub dsn: Dsn,
    pub declared_8bitmime: bool,
    /// Where the delivery is logged (UX6).
    pub log: LogSettings,
}

/// The account's header settings (msmtp's set_*_header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderSettings {
    pub from: FromRewrite,
    /// The account's `from`, when it is an address (not a pattern).
    pub account_from: Option<Address>,
    pub date: AddField,
    pub message_id: AddField,
}

/// The full name for a From field tlsend adds (IN4), and where it came
/// from, so that an error about it names the right source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullName {
    pub text: String,
    /// "-F" or "the NAME environment variable".
    pub source: &'static str,
}

/// A request that cannot be built: a usage error (64) or a configuration
/// error (78), with words that say what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    Usage(String),
    Config(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Usage(text) | RequestError::Config(text) => f.write_str(text),
        }
    }
}

/// Builds the request. `env` reads environment variables (LOGNAME, USER,
/// NAME); `host` is this machine's name, short and fully qualified.
pub fn build(
    invocation: &Invocation,
    config: &Config,
    env: &dyn Fn(&str) -> Option<OsString>,
    host: (&str, Option<&str>),
) -> Result<Request, RequestError> {
    let sender_flag = invocation.sender.as_deref().filter(|s| !s.is_empty());
    let selection = config
        .choose(invocation.account.as_deref(), sender_flag)
        .map_err(|e| RequestError::Config(e.to_string()))?;
    let (account, why) = match selection {
        config::Selection::Chosen(account, why) => (Some(account), Some(why)),
        config::Selection::NoAccounts => (None, None),
        // --direct needs no server; the accounts' other settings (mode,
        // from) stay unused, as with no account.
        config::Selection::Ambiguous if invocation.direct => (None, None),
        config::Selection::Ambiguous => {
            return Err(RequestError::Config(
                config.ambiguity(sender_flag).to_string(),
            ));
        }
    };
    let account_why = why.as_ref().map(|why| why.to_string());
    let flags = &invocation.server;

    let configured_host = flags
        .host
        .clone()
        .or_else(|| account.and_then(|a| a.host.clone()));
    let delivery = match configured_host {
        Some(host) if !invocation.direct => submission(invocation, config, account, host)?,
        _ => Delivery::Direct(direct(invocation, config, env)?),
    };

    let mode_flag = invocation.tls_mode.as_ref().map(|(flag, typed)| Requested {
        mode: match flag {
            cli::TlsModeFlag::Require => Mode::Require,
            cli::TlsModeFlag::Optional => Mode::Optional,
        },
        source: typed.clone(),
    });
    let configured_mode = account.and_then(|a| {
        a.mode.map(|mode| Requested {
            mode,
            source: format!(
                "account \"{}\" has mode = \"{mode}\"{}",
                a.name,
                why.as_ref()
                    .filter(|w| **w != config::Why::Only)
                    .map(|w| format!(", chosen because {w}"))
                    .unwrap_or_default()
            ),
        })
    });

    let in_file = || {
        config
            .path
            .as_ref()
            .map_or(String::new(), |p| format!(" in {}", p.display()))
    };
    let qualification = match (
        account.and_then(|a| a.qualify_domain.as_deref()),
        &config.qualify_domain,
    ) {
        (Some(domain), _) => Qualification::configured(
            domain,
            format!(
                "qualify_domain of account \"{}\"{}",
                account.map_or("", |a| &a.name),
                in_file()
            ),
        ),
        (None, Some(domain)) => {
            Qualification::configured(domain, format!("qualify_domain{}", in_file()))
        }
        (None, None) => Qualification::from_host(host.0, host.1),
    };
    let sender = sender(invocation, account, env, &qualification);
    let full_name = match &invocation.full_name {
        Some(text) => Some(FullName {
            text: text.clone(),
            source: "-F",
        }),
        None => env("NAME")
            .and_then(|n| n.into_string().ok())
            .filter(|n| !n.is_empty())
            .map(|text| FullName {
                text,
                source: "the NAME environment variable",
            }),
    };

    let dsn = Dsn {
        original_recipients: Default::default(),
        ret: invocation.ret.map(|r| match r {
            cli::Ret::Full => Ret::Full,
            cli::Ret::Hdrs => Ret::Hdrs,
        }),
        envid: invocation.envid.clone(),
        notify: invocation.notify.map(|n| match n {
            cli::Notify::Never => Notify::Never,
            cli::Notify::Some {
                success,
                failure,
                delay,
            } => Notify::On {
                success,
                failure,
                delay,
            },
        }),
    };

    Ok(Request {
        account: account.map(|a| a.name.clone()),
        account_why,
        delivery,
        mode_flag,
        configured_mode,
        sender,
        full_name,
        qualification,
        header: HeaderSettings {
            from: account.map_or_else(FromRewrite::default, |a| a.set_from_header),
            account_from: account
                .and_then(|a| a.from.as_deref())
                .filter(|from| !from.contains(['*', '?']))
                .and_then(|from| ReversePath::parse(from).ok())
                .and_then(|path| path.address().cloned())
                .filter(|a| a.domain().is_some()),
            date: account.map_or_else(AddField::default, |a| a.set_date_header),
            message_id: account.map_or_else(AddField::default, |a| a.set_msgid_header),
        },
        dead_letter: config.dead_letter.clone(),
        dsn,
        declared_8bitmime: matches!(invocation.body, Some(cli::BodyType::EightBitMime)),
        log: log_settings(config, account),
    })
}

/// The account's `logfile` and `syslog` over the top-level ones.
pub fn log_settings(config: &Config, account: Option<&Account>) -> LogSettings {
    LogSettings {
        file: account
            .and_then(|a| a.logfile.clone())
            .or_else(|| config.logfile.clone()),
        syslog: account.and_then(|a| a.syslog).unwrap_or(config.syslog),
    }
}

/// The submission server: the flags over the account's settings.
fn submission(
    invocation: &Invocation,
    config: &Config,
    account: Option<&Account>,
    host: String,
) -> Result<Delivery, RequestError> {
    let flags = &invocation.server;
    let config_error = |text: String| RequestError::Config(text);
    let security = match flags.tls {
        Some(cli::TlsStart::StartTls) => Security::StartTls,
        Some(cli::TlsStart::Implicit) => Security::Implicit,
        Some(cli::TlsStart::None) => Security::Plain,
        None => match account.map(|a| a.tls) {
            Some(config::TlsStart::Implicit) => Security::Implicit,
            Some(config::TlsStart::None) => Security::Plain,
            Some(config::TlsStart::StartTls) | None => Security::StartTls,
        },
    };
    let port = flags
        .port
        .or_else(|| account.and_then(|a| a.port))
        .unwrap_or(match security {
            Security::StartTls => 587,
            Security::Implicit => 465,
            Security::Plain => 25,
        });

    let trust = if security == Security::Plain {
        None
    } else {
        Some(trust(invocation, account)?)
    };
    let login = login(invocation, account)?;
    if login.is_some() && security == Security::Plain {
        return Err(config_error(
            "AUTH is only ever sent over TLS, and this server is set to tls = none; \
             use starttls or implicit, or remove the user"
                .into(),
        ));
    }

    let timeouts = match flags.timeout {
        Some(seconds) => {
            let limit = Duration::from_secs(seconds);
            (
                limit,
                Timeouts {
                    command: limit,
                    end_of_data: limit,
                },
            )
        }
        None => match account {
            Some(a) => (
                a.connect_timeout,
                Timeouts {
                    command: a.timeout,
                    end_of_data: a.data_timeout,
                },
            ),
            None => (Duration::from_secs(30), Timeouts::default()),
        },
    };

    // RFC 5321 4.1.1.1: a domain or an address literal, nothing that could
    // carry a second command.
    let ehlo_name = flags
        .ehlo_name
        .clone()
        .or_else(|| account.and_then(|a| a.ehlo_name.clone()));
    if let Some(name) = &ehlo_name
        && Address::from_parts("postmaster", Some(name)).is_err()
    {
        return Err(config_error(format!(
            "ehlo_name {name:?} is not a domain name or an address literal like [192.0.2.1]"
        )));
    }

    Ok(Delivery::Submission {
        submission: Submission {
            host,
            port,
            security,
            credentials: None,
            ehlo_name,
            connect_timeout: timeouts.0,
            timeouts: timeouts.1,
            names: setting_names(invocation, config, account),
        },
        trust,
        login,
    })
}

/// How advice names each setting of the submission server: the flag as
/// typed, the account's key with its value and file, or where it would go.
pub fn setting_names(
    invocation: &Invocation,
    config: &Config,
    account: Option<&Account>,
) -> SettingNames {
    let flags = &invocation.server;
    let place = account.map(|a| {
        format!(
            "account \"{}\" ({})",
            a.name,
            config
                .path
                .as_ref()
                .map_or("no file".into(), |p| p.display().to_string())
        )
    });
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let tls_word = |t: cli::TlsStart| match t {
        cli::TlsStart::StartTls => "starttls",
        cli::TlsStart::Implicit => "implicit",
        cli::TlsStart::None => "none",
    };
    let flag_values: [(&'static str, Option<String>); 8] = [
        ("host", flags.host.as_ref().map(|h| format!("--host {h}"))),
        ("port", flags.port.map(|p| format!("--port {p}"))),
        ("tls", flags.tls.map(|t| format!("--tls {}", tls_word(t)))),
        ("user", flags.user.as_ref().map(|u| format!("--user {u}"))),
        (
            "ca_file",
            flags
                .ca_file
                .as_ref()
                .map(|p| format!("--ca-file {}", p.display())),
        ),
        (
            "fingerprint",
            flags
                .fingerprint
                .as_ref()
                .map(|_| "--fingerprint".to_string()),
        ),
        (
            "password",
            [
                flags
                    .password_command
                    .as_ref()
                    .map(|_| "--password-command"),
                flags.password_file.as_ref().map(|_| "--password-file"),
                flags.password_env.as_ref().map(|_| "--password-env"),
            ]
            .into_iter()
            .flatten()
            .next()
            .map(str::to_string),
        ),
        ("auth", flags.auth.map(|_| "--auth".to_string())),
    ];
    for (key, value) in flag_values {
        if let Some(value) = value {
            given.push((key, value));
        }
    }
    if let Some(seconds) = flags.timeout {
        for key in ["connect_timeout", "timeout", "data_timeout"] {
            given.push((key, format!("--timeout {seconds}")));
        }
    }
    if let (Some(account), Some(place)) = (account, &place) {
        let set = |key: &str| !given.iter().any(|(k, _)| *k == key);
        let mut from_file: Vec<(&'static str, String)> = Vec::new();
        if let Some(host) = account.host.as_ref().filter(|_| set("host")) {
            from_file.push(("host", format!("host = \"{host}\" in {place}")));
        }
        if let Some(port) = account.port.filter(|_| set("port")) {
            from_file.push(("port", format!("port = {port} in {place}")));
        }
        if set("tls") {
            let text = match account.tls {
                config::TlsStart::StartTls => {
                    format!("tls (starttls unless set) in {place}")
                }
                config::TlsStart::Implicit => format!("tls = \"implicit\" in {place}"),
                config::TlsStart::None => format!("tls = \"none\" in {place}"),
            };
            from_file.push(("tls", text));
        }
        if let Some(source) = account.password.as_ref().filter(|_| set("password")) {
            let key = match source {
                SecretSource::Command(_) => "password_command",
                SecretSource::File(_) => "password_file",
                SecretSource::Env(_) => "password_env",
            };
            from_file.push(("password", format!("{key} in {place}")));
        }
        given.extend(from_file);
    } else if flags.tls.is_none() {
        given.push(("tls", "the default --tls starttls".to_string()));
    }
    SettingNames {
        given,
        account: place,
    }
}

/// Direct delivery: `[direct]` with `--timeout` and `--ehlo-name` over it.
fn direct(
    invocation: &Invocation,
    config: &Config,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<DirectRequest, RequestError> {
    let flags = &invocation.server;
    let settings = &config.direct;
    for (given, name) in [
        (flags.port.is_some(), "--port"),
        (flags.tls.is_some(), "--tls"),
        (flags.user.is_some(), "--user"),
        (flags.auth.is_some(), "--auth"),
        (flags.password_command.is_some(), "--password-command"),
        (flags.password_file.is_some(), "--password-file"),
        (flags.password_env.is_some(), "--password-env"),
        (flags.ca_file.is_some(), "--ca-file"),
        (flags.fingerprint.is_some(), "--fingerprint"),
    ] {
        if given {
            return Err(RequestError::Usage(format!(
                "{name} applies to a submission server, and this message goes directly to the \
                 recipients' MX hosts (no --host and no account host); set [direct] port in the \
                 configuration for another MX port"
            )));
        }
    }
    let (connect_timeout, timeouts) = match flags.timeout {
        Some(seconds) => {
            let limit = Duration::from_secs(seconds);
            (
                limit,
                Timeouts {
                    command: limit,
                    end_of_data: limit,
                },
            )
        }
        None => (
            settings.connect_timeout,
            Timeouts {
                command: settings.timeout,
                end_of_data: settings.data_timeout,
            },
        ),
    };
    let ehlo_name = flags
        .ehlo_name
        .clone()
        .or_else(|| settings.ehlo_name.clone());
    if let Some(name) = &ehlo_name
        && Address::from_parts("postmaster", Some(name)).is_err()
    {
        return Err(RequestError::Usage(format!(
            "--ehlo-name {name:?} is not a domain name or an address literal like [192.0.2.1]"
        )));
    }
    let mta_sts_cache = settings.mta_sts_cache.clone().or_else(|| {
        // XDG Base Directory: $XDG_CACHE_HOME, else ~/.cache.
        env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .or_else(|| crate::user::home_dir(env).map(|home| home.join(".cache")))
            .map(|dir| dir.join("tlsend").join("mta-sts"))
    });
    Ok(DirectRequest {
        settings: DirectSettings {
            ehlo_name,
            connect_timeout,
            timeouts,
        },
        port: settings.port,
        resolver: settings.resolver,
        dnssec: settings.dnssec,
        trust_anchor: settings.trust_anchor.clone(),
        mta_sts_cache,
        mta_sts_port: settings.mta_sts_port,
        lookup_timeout: flags
            .timeout
            .map_or(settings.lookup_timeout, Duration::from_secs),
        reason: if invocation.direct {
            "--direct"
        } else {
            "no submission server is configured"
        },
    })
}

/// Command-line trust settings replace the account's as a whole.
fn trust(invocation: &Invocation, account: Option<&Account>) -> Result<Trust, RequestError> {
    let flags = &invocation.server;
    match (&flags.fingerprint, &flags.ca_file) {
        (Some(_), Some(_)) => Err(RequestError::Usage(
            "--fingerprint and --ca-file are alternatives; give one".into(),
        )),
        (Some(text), None) => config::parse_fingerprint(text)
            .map(|f| Trust::Pin(f.0))
            .map_err(|e| RequestError::Usage(format!("--fingerprint: {e}"))),
        (None, Some(path)) => Ok(Trust::CaFile(path.clone())),
        (None, None) => Ok(match account {
            Some(Account {
                fingerprint: Some(f),
                ..
            }) => Trust::Pin(f.0),
            Some(Account {
                ca_file: Some(path),
                ..
            }) => Trust::CaFile(path.clone()),
            _ => Trust::SystemRoots,
        }),
    }
}

fn login(
    invocation: &Invocation,
    account: Option<&Account>,
) -> Result<Option<Login>, RequestError> {
    let flags = &invocation.server;
    let cli_sources: Vec<SecretSource> = [
        flags.password_command.clone().map(SecretSource::Command),
        flags.password_file.clone().map(SecretSource::File),
        flags.password_env.clone().map(SecretSource::Env),
    ]
    .into_iter()
    .flatten()
    .collect();
    if cli_sources.len() > 1 {
        return Err(RequestError::Usage(
            "give one of --password-command, --password-file and --password-env".into(),
        ));
    }
    let user = flags
        .user
        .clone()
        .or_else(|| account.and_then(|a| a.user.clone()));
    let secret = cli_sources
        .into_iter()
        .next()
        .or_else(|| account.and_then(|a| a.password.clone()));
    let choice = match flags.auth {
        Some(mech) => cli_auth(mech),
        None => account.map_or(AuthChoice::Auto, |a| config_auth(a.auth)),
    };
    match (user, secret) {
        (None, None) => Ok(None),
        (Some(user), Some(secret)) => Ok(Some(Login {
            user,
            secret,
            choice,
        })),
        (Some(user), None) => Err(RequestError::Config(format!(
            "user \"{user}\" has no password source; set password_command, password_file or \
             password_env (or pass --password-command/--password-file/--password-env)"
        ))),
        (None, Some(_)) => Err(RequestError::Config(
            "a password source is given without a user; set user (or pass --user)".into(),
        )),
    }
}

fn cli_auth(mech: cli::AuthMech) -> AuthChoice {
    match mech {
        cli::AuthMech::Auto => AuthChoice::Auto,
        cli::AuthMech::Plain => AuthChoice::Only(Mechanism::Plain),
        cli::AuthMech::Login => AuthChoice::Only(Mechanism::Login),
        cli::AuthMech::XOAuth2 => AuthChoice::Only(Mechanism::XOAuth2),
        cli::AuthMech::OAuthBearer => AuthChoice::Only(Mechanism::OAuthBearer),
    }
}

fn config_auth(method: config::AuthMethod) -> AuthChoice {
    match method {
        config::AuthMethod::Auto => AuthChoice::Auto,
        config::AuthMethod::Plain => AuthChoice::Only(Mechanism::Plain),
        config::AuthMethod::Login => AuthChoice::Only(Mechanism::Login),
        config::AuthMethod::XOAuth2 => AuthChoice::Only(Mechanism::XOAuth2),
        config::AuthMethod::OAuthBearer => AuthChoice::Only(Mechanism::OAuthBearer),
    }
}

/// `-f`/`-r`, else the account's `from` (unless it is a pattern), else the
/// login name at the qualify domain, as sendmail does; never a made-up
/// address (IN12).
fn sender(
    invocation: &Invocation,
    account: Option<&Account>,
    env: &dyn Fn(&str) -> Option<OsString>,
    qualification: &Qualification,
) -> Result<ReversePath, RequestError> {
    if let Some(text) = &invocation.sender {
        let path = ReversePath::parse(text)
            .map_err(|e| RequestError::Usage(format!("-f {text:?}: {e}")))?;
        return qualify_path(path, qualification, &format!("-f {text:?}"))
            .map_err(RequestError::Config);
    }
    if let Some(account) = account
        && let Some(from) = &account.from
        && !from.contains(['*', '?'])
    {
        let path = ReversePath::parse(from).map_err(|e| {
            RequestError::Config(format!(
                "account \"{}\": from = {from:?}: {e}",
                account.name
            ))
        })?;
        return qualify_path(
            path,
            qualification,
            &format!("from {from:?} of account \"{}\"", account.name),
        )
        .map_err(RequestError::Config);
    }
    let user = crate::user::login_name(env).ok_or_else(|| {
        RequestError::Config(
            "no envelope sender: pass -f ADDRESS or set from in the account".into(),
        )
    })?;
    let address = Address::from_parts(&user, None).map_err(|e| {
        RequestError::Config(format!(
            "no usable envelope sender from login name {user:?}: {e}"
        ))
    })?;
    let what = format!("the envelope sender, login name \"{user}\", which");
    qualification
        .qualify(address, &what)
        .map(ReversePath::Address)
        .map_err(|e| RequestError::Config(format!("{e}, or pass -f ADDRESS")))
}

fn qualify_path(
    path: ReversePath,
    qualification: &Qualification,
    what: &str,
) -> Result<ReversePath, String> {
    match path {
        ReversePath::Null => Ok(ReversePath::Null),
        ReversePath::Address(a) => qualification
            .qualify(a, what)
            .map(ReversePath::Address)
            .map_err(|e| e.to_string()),
    }
}
