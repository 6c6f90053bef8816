//! Walks a direct-delivery [`Plan`]: per domain (several at once), the MX
//! hosts in the plan's order, each address of a host in turn, until one
//! takes the message. A host the plan skips is never contacted; a host that
//! fails a step gets QUIT while the dialogue is in step (MX4) and the next
//! one is tried. When none is left, the domain's recipients share one
//! failure that names every host and why (FAIL1: 5.7.30 when a host gave
//! verified TLS but none advertised REQUIRETLS, 5.7.10 when none gave
//! verified TLS).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use super::{Hop, Job, Security, SessionError, StartTlsUse, attempt, failure};
use crate::exit::{self, Classified, Sysexit};
use crate::outcome::{Failure, Outcome};
use crate::policy::Mode;
use crate::route::{DOMAIN_CONCURRENCY, DomainPlan, HostPlan, HostTls, NameValidation, Plan, Skip};
use crate::smtp::{Envelope, Error, ErrorKind, Step, Timeouts, Transcript, Violation};
use crate::status::{EnhancedCode, codes};
use crate::tls::{TlsClient, TlsSetupError, Trust};

/// How to talk to MX hosts.
#[derive(Clone, Debug)]
pub struct DirectSettings {
    /// The EHLO name; `None` picks the host name or an address literal.
    pub ehlo_name: Option<String>,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
}

/// The TLS clients a delivery shares: one WebPKI client (the system's
/// roots, loaded once) and one opportunistic client; DANE clients are made
/// per host from its records.
pub struct TlsClients {
    webpki: TlsClient,
    opportunistic: TlsClient,
}

impl TlsClients {
    pub fn new() -> Result<TlsClients, TlsSetupError> {
        Ok(TlsClients {
            webpki: TlsClient::new(Trust::SystemRoots)?,
            opportunistic: TlsClient::new(Trust::Opportunistic)?,
        })
    }

    fn for_host(&self, tls: &HostTls, host: &HostPlan) -> Result<TlsClient, TlsSetupError> {
        match tls {
            HostTls::WebPki => Ok(self.webpki.clone()),
            HostTls::Encrypted | HostTls::Opportunistic { .. } => Ok(self.opportunistic.clone()),
            HostTls::Dane(records) => TlsClient::new(Trust::Dane {
                records: records.clone(),
                // RFC 7672 3.2.2: the MX host name and, when the records
                // were found at the end of its CNAME chain, that name.
                names: std::iter::once(host.name.clone())
                    .chain(host.tlsa_base.clone())
                    .collect(),
            }),
        }
    }
}

/// How many addresses of one domain are tried before the domain is left
/// for later (Postfix: smtp_mx_address_limit = 5).
pub const MAX_ATTEMPTS: usize = 10;

/// Delivers to every domain of `plan`, at most [`DOMAIN_CONCURRENCY`] at
/// once, and returns one result per recipient in envelope order.
pub async fn direct(
    plan: &Plan,
    settings: &DirectSettings,
    clients: &TlsClients,
    job: Job<'_>,
    transcript: &Transcript,
) -> Outcome {
    let outcomes: Vec<Outcome> = stream::iter(&plan.domains)
        .map(|domain| deliver_domain(domain, plan, settings, clients, job, transcript))
        .buffer_unordered(DOMAIN_CONCURRENCY)
        .collect()
        .await;
    let mut by_recipient: HashMap<_, _> = outcomes
        .into_iter()
        .flat_map(|o| o.recipients)
        .map(|r| (r.recipient.clone(), r))
        .collect();
    Outcome {
        recipients: job
            .envelope
            .recipients
            .iter()
            .filter_map(|r| by_recipient.remove(r))
            .collect(),
    }
}

async fn deliver_domain(
    domain: &DomainPlan,
    plan: &Plan,
    settings: &DirectSettings,
    clients: &TlsClients,
    job: Job<'_>,
    transcript: &Transcript,
) -> Outcome {
    let envelope = Envelope {
        recipients: domain.recipients.clone(),
        ..job.envelope.clone()
    };
    let job = Job {
        envelope: &envelope,
        ..job
    };
    let hosts = match &domain.hosts {
        Ok(hosts) => hosts,
        Err(failure) => return recorded(job, failure.clone()),
    };
    let mut tried = Tried::default();
    let mut attempts = 0;
    'hosts: for host in hosts {
        let host_tls = match &host.tls {
            Ok(tls) => tls,
            Err(skip) => {
                transcript.note(&format!("{}: skipped: {}", host.name, skip.reason));
                tried.skipped(host, skip);
                continue;
            }
        };
        let client = match clients.for_host(host_tls, host) {
            Ok(client) => client,
            Err(e) => {
                // Records or names DANE cannot use mean no verified TLS
                // with this host; a trust store that cannot load is ours.
                let status = match e {
                    TlsSetupError::Dane(_) => Classified {
                        status: codes::ENCRYPTION_NEEDED,
                        exit: Sysexit::Unavailable,
                    },
                    _ => Classified {
                        status: codes::MISCONFIGURED,
                        exit: Sysexit::Config,
                    },
                };
                tried.push(&host.name, status, e.to_string());
                continue;
            }
        };
        for address in &host.addresses {
            if attempts == MAX_ATTEMPTS {
                tried.push(
                    &host.name,
                    Classified {
                        status: EnhancedCode::new(4, 4, 4),
                        exit: Sysexit::TempFail,
                    },
                    format!(
                        "not tried, nor any host after it: {MAX_ATTEMPTS} addresses of this \
                         domain were tried first"
                    ),
                );
                break 'hosts;
            }
            attempts += 1;
            if job.progress.stop_requested() {
                // The run is stopping and only waits for verdicts already
                // pending elsewhere: start nothing new.
                return recorded(
                    job,
                    Failure {
                        server: None,
                        classified: Classified {
                            status: codes::STOPPED,
                            exit: Sysexit::TempFail,
                        },
                        detail: "tlsend was stopped before it tried this domain's other MX hosts"
                            .into(),
                        hint: None,
                        session: None,
                    },
                );
            }
            // The trust a session was verified with is part of its key.
            let reuse_key = format!("{}|{address}|{host_tls:?}", host.name);
            let hop = Hop {
                name: &host.name,
                address: Some(*address),
                port: plan.port,
                security: Security::StartTls,
                starttls: match host_tls {
                    HostTls::Opportunistic { .. } => StartTlsUse::IfOffered,
                    _ => StartTlsUse::Required,
                },
                credentials: None,
                ehlo_name: settings.ehlo_name.as_deref(),
                connect_timeout: settings.connect_timeout,
                timeouts: settings.timeouts,
                reuse_key: Some(&reuse_key),
                mx_name: match &host.validated {
                    NameValidation::Dnssec => Some("dnssec"),
                    NameValidation::MtaSts { enforce: true, .. } => Some("mta-sts"),
                    NameValidation::MtaSts { enforce: false, .. } => Some("mta-sts-testing"),
                    NameValidation::None => None,
                },
            };
            let server = hop.server();
            let host_transcript = transcript.with_prefix(format!("tlsend: {server}: "));
            let mut result = attempt(&hop, Some(&client), job, &host_transcript).await;
            if let (
                Err(SessionError { error, .. }),
                HostTls::Opportunistic {
                    plain_fallback: true,
                },
            ) = (&result, host_tls)
                && job.mode != Mode::Require
                && tls_failed(error)
                && !job.progress.stop_requested()
            {
                // MX6, RFC 8689 4.2.2: a message that may travel without TLS
                // is sent again in plain text when TLS fails.
                host_transcript.note(&format!("TLS failed ({error}); trying again in plain text"));
                let plain = Hop {
                    security: Security::Plain,
                    reuse_key: None,
                    ..hop
                };
                result = attempt(&plain, None, job, &host_transcript).await;
            }
            match result {
                // `transact` recorded it as soon as the server had answered.
                Ok(outcome) => return outcome,
                Err(SessionError { error, session }) if ends_delivery(&error) => {
                    let failure = Failure {
                        session: session.map(Box::new),
                        ..failure(Some(server), &error, job.mode)
                    };
                    return recorded(job, failure);
                }
                Err(SessionError { error, .. }) => {
                    host_transcript.note(&format!("not used: {error}"));
                    let classified = exit::classify(&error, job.mode);
                    tried.push(&server, classified, error.to_string());
                }
            }
        }
    }
    recorded(job, tried.into_failure(&domain.domain, job.mode))
}

/// Every recipient of `job` failed with `failure`; recorded at once.
fn recorded(job: Job<'_>, failure: Failure) -> Outcome {
    let outcome = Outcome::all_failed(&job.envelope.recipients, failure);
    job.progress.record(&outcome);
    outcome
}

/// A refusal that another MX host of the same domain would repeat: the
/// domain has spoken (RFC 5321 5.1 tries the next host only when this one
/// cannot be reached or fails temporarily).
fn ends_delivery(error: &Error) -> bool {
    matches!(&error.kind, ErrorKind::Reply(reply) if reply.is_permanent())
        && matches!(
            error.step,
            Step::Mail | Step::Rcpt | Step::Data | Step::EndOfData
        )
}

/// TLS itself failed (not the network underneath, not the SMTP dialogue).
fn tls_failed(error: &Error) -> bool {
    matches!(error.step, Step::TlsHandshake | Step::EhloAfterTls)
        || matches!(
            error.kind,
            ErrorKind::Tls(_) | ErrorKind::Protocol(Violation::BytesAfterStartTls(_))
        )
}

/// What every host of a domain did.
#[derive(Default)]
struct Tried {
    entries: Vec<Entry>,
}

struct Entry {
    host: String,
    /// 5.7.30 only for a host that gave verified TLS without REQUIRETLS.
    classified: Classified,
    detail: String,
}

impl Tried {
    fn push(&mut self, host: &str, classified: Classified, detail: String) {
        self.entries.push(Entry {
            host: host.to_string(),
            classified,
            detail,
        });
    }

    fn skipped(&mut self, host: &HostPlan, skip: &Skip) {
        let classified = if skip.temporary && skip.unverifiable {
            // TLS could not be verified now (a TLSA or MTA-STS lookup
            // failed): 4.7.10, encryption needed, temporarily.
            Classified {
                status: codes::ENCRYPTION_NEEDED.with_class(4),
                exit: Sysexit::TempFail,
            }
        } else if skip.temporary {
            // RFC 3463: 4.4.3 directory server failure.
            Classified {
                status: EnhancedCode::new(4, 4, 3),
                exit: Sysexit::TempFail,
            }
        } else if skip.unverifiable {
            Classified {
                status: codes::ENCRYPTION_NEEDED,
                exit: Sysexit::Unavailable,
            }
        } else {
            // 5.4.4 unable to route.
            Classified {
                status: EnhancedCode::new(5, 4, 4),
                exit: Sysexit::Unavailable,
            }
        };
        self.push(&host.name, classified, format!("skipped: {}", skip.reason));
    }

    /// One failure for the domain's recipients. In require mode: 5.7.30
    /// when a host gave verified TLS without REQUIRETLS, else 5.7.10 when a
    /// host could not give verified TLS (FAIL1); temporary (4.7.x) when
    /// another host could not be reached, since it may do better later. In
    /// the other modes a temporary failure of any host makes the whole
    /// temporary, a TLS-policy failure of any host defers the domain
    /// (4.7.10), and otherwise the first permanent failure stands.
    fn into_failure(self, domain: &str, mode: Mode) -> Failure {
        let temporary = self.entries.iter().any(|e| e.classified.is_temporary());
        let first = self
            .entries
            .first()
            .map(|e| e.classified)
            .unwrap_or(Classified {
                status: EnhancedCode::new(4, 4, 4),
                exit: Sysexit::TempFail,
            });
        let has = |code: EnhancedCode| {
            self.entries
                .iter()
                .any(|e| e.classified.status.with_class(5) == code)
        };
        let tls_status = if has(codes::REQUIRETLS_NEEDED) {
            Some(codes::REQUIRETLS_NEEDED)
        } else if has(codes::ENCRYPTION_NEEDED) {
            Some(codes::ENCRYPTION_NEEDED)
        } else {
            None
        };
        let classified = match (mode, tls_status) {
            (Mode::Require, Some(status)) if temporary => Classified {
                status: status.with_class(4),
                exit: Sysexit::TempFail,
            },
            (Mode::Require, Some(status)) => Classified {
                status,
                exit: Sysexit::Unavailable,
            },
            _ if temporary => self
                .entries
                .iter()
                .map(|e| e.classified)
                .find(Classified::is_temporary)
                .unwrap_or(first),
            // Outside require mode a host that failed DANE or MTA-STS is
            // deferred, as Postfix does: the policy may be fixed, or the
            // attack be over. Any other permanent failure stands.
            (_, None) => first,
            // A refusal of the transaction itself (5xx to MAIL, RCPT or
            // the data) ended the delivery before this; whatever else
            // another host said (no address, a 5xx greeting an attacker
            // can inject before TLS) does not outweigh it.
            (_, Some(status)) => Classified {
                status: status.with_class(4),
                exit: Sysexit::TempFail,
            },
        };
        let tried: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{}: {}", e.host, e.detail))
            .collect();
        let hint = match classified.status {
            s if s == codes::REQUIRETLS_NEEDED => Some(format!(
                "nothing was sent; no MX host of {domain} advertises REQUIRETLS after verified TLS"
            )),
            s if s.subject == 7 && s.detail == 10 => Some(format!(
                "nothing was sent; no MX host of {domain} could be reached over verified TLS"
            )),
            _ if classified.is_temporary() => Some("this is temporary; try again later".into()),
            _ => None,
        };
        Failure {
            server: None,
            classified,
            detail: format!(
                "no MX host of {domain} took the message: {}",
                tried.join("; ")
            ),
            hint,
            session: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: EnhancedCode, exit: Sysexit) -> Entry {
        Entry {
            host: "mx.example".into(),
            classified: Classified { status, exit },
            detail: String::new(),
        }
    }

    // covers: FAIL1, FAIL2, MX4
    #[test]
    fn fail1_a_domain_fails_with_what_its_hosts_say_together() {
        use Sysexit::*;
        let bad_tls = || entry(codes::ENCRYPTION_NEEDED, Unavailable);
        let no_requiretls = || entry(codes::REQUIRETLS_NEEDED, Unavailable);
        let timeout = || entry(codes::NO_ANSWER, TempFail);
        let no_utf8 = || entry(codes::SMTPUTF8_NEEDED, DataErr);
        let later = || entry(codes::ENCRYPTION_NEEDED.with_class(4), TempFail);
        #[rustfmt::skip]
        let cases: Vec<(&str, Mode, Vec<Entry>, &str, Sysexit)> = vec![
            ("verified TLS somewhere, no REQUIRETLS", Mode::Require, vec![bad_tls(), no_requiretls()], "5.7.30", Unavailable),
            ("no verified TLS anywhere", Mode::Require, vec![bad_tls(), bad_tls()], "5.7.10", Unavailable),
            ("no verified TLS, a host unreachable", Mode::Require, vec![bad_tls(), timeout()], "4.7.10", TempFail),
            ("a policy lookup failed", Mode::Require, vec![later()], "4.7.10", TempFail),
            ("only unreachable hosts", Mode::Require, vec![timeout()], "4.4.1", TempFail),
            ("DANE mismatch, default: deferred", Mode::Default, vec![bad_tls()], "4.7.10", TempFail),
            ("no SMTPUTF8, default: permanent", Mode::Default, vec![no_utf8()], "5.6.7", DataErr),
            ("no SMTPUTF8 and a DANE mismatch: deferred", Mode::Default, vec![bad_tls(), no_utf8()], "4.7.10", TempFail),
            ("unreachable and no SMTPUTF8", Mode::Optional, vec![no_utf8(), timeout()], "4.4.1", TempFail),
        ];
        for (id, mode, entries, status, exit) in cases {
            let failure = Tried { entries }.into_failure("example.net", mode);
            assert_eq!(
                (
                    failure.classified.status.to_string().as_str(),
                    failure.classified.exit
                ),
                (status, exit),
                "{id}: {failure}"
            );
        }
    }
}
