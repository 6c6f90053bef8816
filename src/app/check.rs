//! `--check-config` and `--check-server` (UX7): the request a send would
//! build, printed; and a session with the submission server that stops
//! after the EHLO that follows TLS, printing what the server offers and
//! the certificate chain it presented.
//!
//! `--check-config` connects to nothing and fetches no secret (a password
//! command is not run); `--check-server` sends no AUTH and no MAIL FROM.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use super::{Stop, say, transcript};
use crate::cli::Invocation;
use crate::config::{self, Config, SecretSource};
use crate::deliver::{self, Security, Submission};
use crate::exit::Sysexit;
use crate::policy::Mode;
use crate::request::{self, Delivery, DirectRequest, Login, Request};
use crate::tls::{CertificateSummary, TlsClient, Trust};

/// The configuration and the request a send would use, or why not.
fn resolve(invocation: &Invocation) -> Result<(Config, Request), Stop> {
    let config = config::load(invocation.config_file.as_deref())
        .map_err(|e| Stop::new(Sysexit::Config, e.to_string()))?;
    let env = |key: &str| std::env::var_os(key);
    let (host_name, full_host_name) = crate::local::full_host_name();
    let host = (host_name.as_str(), full_host_name.as_deref());
    let request = request::build(invocation, &config, &env, host)?;
    Ok((config, request))
}

/// `--check-config`: prints the resolved settings; 0 when usable, else the
/// usual error and 78 (64 for a usage error).
pub(super) fn check_config(invocation: &Invocation) -> Sysexit {
    let mut out = io::stdout().lock();
    let files = config::searched(invocation.config_file.as_deref());
    let (config, request) = match resolve(invocation) {
        Ok(resolved) => resolved,
        Err(stop) => {
            let _ = writeln!(out, "looked for: {}", shown_paths(&files));
            say(&stop.message);
            return stop.exit;
        }
    };
    let text = describe_config(&config, &request, &|key| std::env::var_os(key));
    let _ = out.write_all(text.report.as_bytes());
    let _ = out.flush();
    if let Some(problem) = text.problem {
        say(&problem);
        return Sysexit::Config;
    }
    Sysexit::Ok
}

/// What `--check-config` prints, and the first problem that would stop a send.
struct ConfigReport {
    report: String,
    problem: Option<String>,
}

fn describe_config(
    config: &Config,
    request: &Request,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> ConfigReport {
    let mut lines: Vec<String> = Vec::new();
    let mut problem = None;
    match &config.path {
        Some(path) => lines.push(format!("configuration file: {}", path.display())),
        None => lines.push("configuration file: none found".into()),
    }
    lines.push(format!("looked for: {}", shown_paths(&config.searched)));
    lines.push(match (&request.account, &request.account_why) {
        (Some(name), Some(why)) => format!("account: {name} ({why})"),
        (Some(name), None) => format!("account: {name}"),
        (None, _) if config.accounts().is_empty() => {
            "account: none (no accounts configured)".into()
        }
        (None, _) => "account: none (--direct)".into(),
    });
    match &request.delivery {
        Delivery::Submission {
            submission,
            trust,
            login,
        } => {
            lines.push(format!("server: {}", submission.server()));
            lines.push(format!("TLS: {}", security_text(submission)));
            lines.push(format!(
                "trust: {}",
                trust.as_ref().map_or("none (no TLS)".into(), trust_text)
            ));
            if let Some(Trust::CaFile(path)) = trust
                && let Err(e) = TlsClient::new(Trust::CaFile(path.clone()))
            {
                problem.get_or_insert(e.to_string());
            }
            match login {
                Some(login) => {
                    lines.push(format!("credentials: {}", login_text(login)));
                    if let Some(e) = secret_problem(&login.secret, env) {
                        problem.get_or_insert(e);
                    }
                }
                None => lines.push("credentials: none (no AUTH)".into()),
            }
            lines.push(format!(
                "time limits: connect {} s, each reply {} s, end of data {} s",
                submission.connect_timeout.as_secs(),
                submission.timeouts.command.as_secs(),
                submission.timeouts.end_of_data.as_secs()
            ));
        }
        Delivery::Direct(direct) => lines.extend(direct_text(direct)),
    }
    lines.push(format!("TLS mode: {}", mode_text(request)));
    lines.push(match &request.sender {
        Ok(sender) => format!("envelope sender: <{sender}> (unless -f gives another)"),
        Err(e) => format!("envelope sender: none unless -f gives one: {e}"),
    });
    lines.push(match request.qualification.domain() {
        Some(domain) => format!(
            "domain for bare names: {domain} ({})",
            request.qualification.source()
        ),
        None => format!(
            "domain for bare names: none, so a bare name is refused ({})",
            request.qualification.source()
        ),
    });
    lines.push(match &config.aliases {
        config::AliasesFile::None => "aliases: none (aliases = \"\")".into(),
        config::AliasesFile::File(path) => format!("aliases: {}", path.display()),
        config::AliasesFile::System => format!(
            "aliases: {} when it exists (read only when a bare name is sent to)",
            super::local::SYSTEM_ALIASES
        ),
    });
    lines.push(match (&request.log.file, request.log.syslog) {
        (None, false) => "log: none".into(),
        (Some(file), false) => format!("log: {}", file.display()),
        (None, true) => "log: syslog (facility mail)".into(),
        (Some(file), true) => format!("log: {} and syslog (facility mail)", file.display()),
    });
    let mut report = lines.join("\n");
    report.push('\n');
    ConfigReport { report, problem }
}

fn shown_paths(paths: &[std::path::PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".into();
    }
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

fn security_text(submission: &Submission) -> String {
    let how = match submission.security {
        Security::StartTls => "STARTTLS (plain-text greeting, then TLS)",
        Security::Implicit => "implicit (TLS from the first byte)",
        Security::Plain => "none (plain text; AUTH and require mode refused)",
    };
    format!("{how}, from {}", submission.names.name("tls"))
}

fn trust_text(trust: &Trust) -> String {
    match trust {
        Trust::SystemRoots => {
            let from = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
                .iter()
                .filter_map(|key| std::env::var_os(key).map(|v| (key, v)))
                .map(|(key, v)| format!("{key}={}", Path::new(&v).display()))
                .collect::<Vec<_>>();
            if from.is_empty() {
                "the system's trusted CAs, checked against the host name".into()
            } else {
                format!(
                    "the system's trusted CAs ({}), checked against the host name",
                    from.join(", ")
                )
            }
        }
        Trust::CaFile(path) => format!(
            "only the CAs in {} (ca_file), checked against the host name",
            path.display()
        ),
        Trust::Pin(_) => format!("{trust} (name and expiry not checked)"),
        other => other.to_string(),
    }
}

fn login_text(login: &Login) -> String {
    let source = match &login.secret {
        // Not the command itself: some embed the secret (`echo …`).
        SecretSource::Command(_) => "password_command (not run by --check-config)".to_string(),
        SecretSource::File(path) => format!("password_file {}", path.display()),
        SecretSource::Env(name) => format!("password_env {name}"),
    };
    let auth = match login.choice {
        crate::smtp::AuthChoice::Auto => "auto (PLAIN, else LOGIN)".to_string(),
        crate::smtp::AuthChoice::Only(mechanism) => format!("{mechanism:?}").to_uppercase(),
    };
    format!("user {:?}, password from {source}, auth {auth}", login.user)
}

/// What a send would say about the secret's source, found without reading
/// the secret: a password file that is missing or open to others, an
/// environment variable that is not set.
fn secret_problem(source: &SecretSource, env: &dyn Fn(&str) -> Option<OsString>) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match source {
        SecretSource::Command(_) => None,
        // The rule a send applies (a root-owned file may be shared with its
        // group), so that the check passes exactly when a send would.
        SecretSource::File(path) => match std::fs::metadata(path) {
            Err(e) => Some(format!("password_file {}: {e}", path.display())),
            Ok(m) => config::too_open(m.permissions().mode(), m.uid()).map(|problem| {
                format!(
                    "password_file {0} {problem}; run chmod 600 {0}",
                    path.display()
                )
            }),
        },
        SecretSource::Env(name) => env(name)
            .is_none()
            .then(|| format!("password_env {name}: the variable is not set")),
    }
}

fn direct_text(direct: &DirectRequest) -> Vec<String> {
    let resolver = direct
        .resolver
        .map_or("those of /etc/resolv.conf".into(), |r| r.to_string());
    let dnssec = match direct.dnssec {
        config::DnssecMethod::Auto => {
            "auto (the resolver's AD bit, if it is on loopback or resolv.conf says trust-ad)"
                .to_string()
        }
        config::DnssecMethod::TrustResolver => "trust-resolver (the resolver's AD bit)".into(),
        config::DnssecMethod::Validate => format!(
            "validate (locally, from {})",
            direct
                .trust_anchor
                .as_ref()
                .map_or("the root's trust anchor".into(), |p| p
                    .display()
                    .to_string())
        ),
        config::DnssecMethod::Off => "off (nothing counts as DNSSEC-secure)".into(),
    };
    vec![
        format!(
            "server: none; delivery is direct to the recipients' MX hosts ({})",
            direct.reason
        ),
        format!("[direct] port: {}", direct.port),
        format!("[direct] resolver: {resolver}"),
        format!("[direct] dnssec: {dnssec}"),
        format!(
            "[direct] MTA-STS cache: {}",
            direct
                .mta_sts_cache
                .as_ref()
                .map_or("none (fetched every time)".into(), |p| p
                    .display()
                    .to_string())
        ),
        "trust: DANE where DNSSEC-signed TLSA records exist, else WebPKI for MTA-STS \
         enforce policies, else opportunistic TLS (default mode only)"
            .into(),
    ]
}

fn mode_text(request: &Request) -> String {
    match (&request.mode_flag, &request.configured_mode) {
        (Some(flag), _) => format!("{} ({})", flag.mode, flag.source),
        (None, Some(configured)) => format!("{} ({})", configured.mode, configured.source),
        (None, None) => "default, unless the message's TLS-Required field says otherwise".into(),
    }
}

/// `--check-server`: a session with the submission server that ends after
/// the EHLO that follows TLS. Exit 0 when the server was reached and
/// verified, else the status a send would have had.
pub(super) fn check_server(invocation: &Invocation) -> Sysexit {
    let (_, request) = match resolve(invocation) {
        Ok(resolved) => resolved,
        Err(stop) => {
            say(&stop.message);
            return stop.exit;
        }
    };
    let (submission, trust) = match &request.delivery {
        Delivery::Submission {
            submission, trust, ..
        } => (submission, trust),
        Delivery::Direct(direct) => {
            say(&format!(
                "--check-server tests a submission server, and this configuration delivers \
                 directly to the recipients' MX hosts ({}); name a server with --host HOST \
                 (with --port and --tls), or choose an account that has one with -a NAME, or set \
                 host in the account",
                direct.reason
            ));
            return if invocation.direct {
                Sysexit::Usage
            } else {
                Sysexit::Config
            };
        }
    };
    let tls = match (trust, submission.security) {
        (Some(trust), Security::StartTls | Security::Implicit) => {
            match TlsClient::recording(trust.clone()) {
                Ok(client) => Some(client),
                Err(e) => {
                    say(&e.to_string());
                    return Sysexit::Config;
                }
            }
        }
        _ => None,
    };
    let runtime = match super::io_runtime() {
        Ok(runtime) => runtime,
        Err(stop) => {
            say(&stop.message);
            return stop.exit;
        }
    };
    let transcript = transcript(invocation.verbose > 0);
    let mode = request
        .mode_flag
        .as_ref()
        .or(request.configured_mode.as_ref())
        .map_or(Mode::Default, |r| r.mode);
    let probed = runtime.block_on(deliver::probe(submission, tls.as_ref(), &transcript));
    runtime.shutdown_background();
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "server: {} ({})",
        submission.server(),
        security_text(submission)
    );
    match probed {
        Ok(probed) => {
            let _ = out.write_all(server_report(&probed).as_bytes());
            Sysexit::Ok
        }
        Err(error) => {
            // The certificate the server presented, even though it failed:
            // what a user needs to set up a pin or a CA file.
            let presented = tls.as_ref().map(TlsClient::presented).unwrap_or_default();
            if !presented.is_empty() {
                let _ = writeln!(out, "the server presented (not accepted):");
                let _ = out.write_all(chain_text(&presented).as_bytes());
            }
            let _ = out.flush();
            let failure = deliver::submission_failure(submission, &error, mode);
            say(&failure.to_string());
            failure.classified.exit
        }
    }
}

fn server_report(probed: &deliver::Probed) -> String {
    let mut text = String::new();
    match &probed.tls {
        Some(tls) => {
            text.push_str(&format!("TLS: {}, cipher {}\n", tls.protocol, tls.cipher));
            text.push_str(&format!("verified by: {}\n", tls.verified_by));
            text.push_str(&chain_text(&tls.chain));
        }
        None => text.push_str("TLS: none; the session is plain text\n"),
    }
    let caps = &probed.capabilities;
    let after = if probed.tls.is_some() {
        "EHLO after TLS"
    } else {
        "EHLO"
    };
    // What the server says is shown, never obeyed: no terminal escapes.
    let shown = crate::text::printable;
    text.push_str(&format!(
        "capabilities ({after}, server {}):\n",
        shown(caps.server_name())
    ));
    for keyword in caps.keywords() {
        match caps.params(keyword).filter(|p| !p.is_empty()) {
            Some(params) => text.push_str(&format!("  {} {}\n", shown(keyword), shown(params))),
            None => text.push_str(&format!("  {}\n", shown(keyword))),
        }
    }
    text.push_str(if caps.has("REQUIRETLS") && probed.tls.is_some() {
        "REQUIRETLS: advertised after TLS; --require-tls can be used with this server\n"
    } else if caps.has("REQUIRETLS") {
        "REQUIRETLS: advertised, but without TLS it cannot be used\n"
    } else {
        "REQUIRETLS: NOT advertised; --require-tls messages will not be sent through this server\n"
    });
    text
}

fn chain_text(chain: &[CertificateSummary]) -> String {
    let mut text = String::new();
    for (i, cert) in chain.iter().enumerate() {
        let role = if i == 0 { " (the server's)" } else { "" };
        text.push_str(&format!("certificate {}{role}:\n", i + 1));
        let shown = crate::text::printable;
        text.push_str(&format!("  subject: {}\n", shown(&cert.subject)));
        if !cert.names.is_empty() {
            text.push_str(&format!("  names: {}\n", shown(&cert.names.join(", "))));
        }
        text.push_str(&format!("  issuer: {}\n", shown(&cert.issuer)));
        text.push_str(&format!(
            "  valid: from {} until {}\n",
            cert.not_before, cert.not_after
        ));
        text.push_str(&format!("  fingerprint: {}\n", cert.fingerprint));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    // covers: UX7: a hostile certificate cannot drive the terminal.
    #[test]
    fn ux7_certificate_text_is_shown_not_obeyed() {
        let cert = CertificateSummary {
            subject: "CN=evil\x1b[2J".into(),
            issuer: "CN=ca\r\nREQUIRETLS: advertised".into(),
            names: vec!["a.example\x07".into()],
            not_before: "1975-01-01 00:00:00 UTC".into(),
            not_after: "4096-01-01 00:00:00 UTC".into(),
            fingerprint: "sha256:00".into(),
        };
        let text = chain_text(&[cert]);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 6, "{text}");
        assert!(text.contains("CN=evil\\u{1b}[2J"), "{text}");
    }

    // covers: UX7, SUB6: --check-config judges a password file as a send
    // does; contrib/tlsend.toml's root:tlsend 0640 file passes both.
    #[test]
    fn ux7_the_password_file_rule_is_the_one_a_send_applies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "secret\n").unwrap();
        let source = SecretSource::File(path.clone());
        let no_env = |_: &str| None;
        let owner_is_root = rustix::process::geteuid().is_root();
        for (mode, open) in [
            (0o600, false),
            (0o640, !owner_is_root),
            (0o644, true),
            (0o660, true),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let sent = source.fetch().is_err();
            let checked = secret_problem(&source, &no_env);
            assert_eq!(checked.is_some(), open, "{mode:o}: {checked:?}");
            assert_eq!(sent, open, "{mode:o}: the send and the check disagree");
        }
    }
}
