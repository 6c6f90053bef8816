//! DNS answers, as a resolver (or a forger on the path) sends them, through
//! everything direct delivery does with them: `dns::interpret` (RCODE and
//! AD), the typed lookups that follow CNAME chains (`dns::mx`, `addresses`,
//! `tlsa`, `txt`), and `route::plan`, which judges every host.
//!
//! Input: control byte 0 says whether the AD bit is trusted and which mode
//! plans; the payload is a sequence of DNS messages, each behind a 2-octet
//! length, handed out one per query in the order the queries are made
//! (then the resolver times out).
//!
//! Checks: nothing panics; no lookup or plan is secure when the AD bit is
//! not trusted; a domain that fails never has hosts; a plan prints.

#![no_main]

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use tlsend::address::Address;
use tlsend::dns::{self, Lookup, LookupError, Resolve, Security};
use tlsend::policy::Mode;
use tlsend::route::{self, NoSts};
use tlsend_fuzz::split_controls;

struct Replay {
    messages: Mutex<VecDeque<Vec<u8>>>,
    trusted: bool,
}

impl Resolve for Replay {
    fn query(&self, name: &Name, _: RecordType) -> Lookup<'_> {
        let next = self
            .messages
            .lock()
            .map(|mut m| m.pop_front())
            .ok()
            .flatten();
        let shown = dns::display_name(name);
        let answer = match next.map(|bytes| Message::from_vec(&bytes)) {
            Some(Ok(message)) => dns::interpret(message, self.trusted, &shown),
            Some(Err(e)) => Err(LookupError::Failed {
                name: shown,
                reason: e.to_string(),
            }),
            None => Err(LookupError::Timeout {
                name: shown,
                limit: Duration::from_secs(1),
            }),
        };
        Box::pin(async move { answer })
    }

    fn describe(&self) -> String {
        "a replay of fuzz input".into()
    }
}

fn messages(mut payload: &[u8]) -> VecDeque<Vec<u8>> {
    let mut out = VecDeque::new();
    while payload.len() >= 2 && out.len() < 64 {
        let n = usize::from(u16::from_be_bytes([payload[0], payload[1]])).min(payload.len() - 2);
        out.push_back(payload[2..2 + n].to_vec());
        payload = &payload[2 + n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let control = controls.first().copied().unwrap_or(0);
    let trusted = control & 1 == 1;
    let mode = match (control >> 1) % 3 {
        0 => Mode::Default,
        1 => Mode::Require,
        _ => Mode::Optional,
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    let domain = Name::from_ascii("example.net.").expect("a name");
    let replay = Replay {
        messages: Mutex::new(messages(payload)),
        trusted,
    };
    runtime.block_on(async {
        let results = [
            dns::mx(&replay, &domain).await.map(|a| a.security),
            dns::addresses(&replay, &domain).await.map(|a| a.security),
            dns::tlsa(&replay, &domain, 25).await.map(|a| a.security),
            dns::txt(&replay, &domain).await.map(|a| a.security),
        ];
        if !trusted {
            for security in results.into_iter().flatten() {
                assert_eq!(
                    security,
                    Security::Insecure,
                    "secure without a trusted AD bit"
                );
            }
        }
        let recipients = [Address::parse("bob@example.net").expect("an address")];
        let plan = route::plan(&recipients, mode, 25, &replay, &NoSts).await;
        for domain in &plan.domains {
            if !trusted {
                assert_ne!(domain.mx_security, Some(Security::Secure));
            }
            if let Ok(hosts) = &domain.hosts {
                for host in hosts {
                    if !trusted {
                        assert_ne!(host.address_security, Some(Security::Secure));
                        assert_ne!(host.validated, route::NameValidation::Dnssec);
                    }
                }
            }
        }
        let _ = plan.to_string();
    });
});
