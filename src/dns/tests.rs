use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::fake::FakeResolver;
use super::stub::{AdTrust, ResolvConf, StubResolver};
use super::*;

fn name(text: &str) -> Name {
    parse_name(text).unwrap()
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

// covers: MX1, MX8
#[test]
fn mx1_cnames_are_followed_and_security_is_the_weakest_link() {
    let world = FakeResolver::new()
        .cname("mail.example.net", "mx.hoster.example")
        .secure("mail.example.net")
        .a("mx.hoster.example", "192.0.2.1")
        .secure("mx.hoster.example")
        .cname("alias.example.net", "mx.insecure.example")
        .secure("alias.example.net")
        .a("mx.insecure.example", "192.0.2.2")
        .cname("loop.example", "loop2.example")
        .cname("loop2.example", "loop.example");
    block_on(async {
        let secure = addresses(&world, &name("mail.example.net")).await.unwrap();
        assert_eq!(secure.records, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(secure.security, Security::Secure);
        assert_eq!(secure.canonical, "mx.hoster.example");

        let mixed = addresses(&world, &name("alias.example.net")).await.unwrap();
        assert_eq!(mixed.security, Security::Insecure, "an insecure target");

        let looped = addresses(&world, &name("loop.example")).await.unwrap_err();
        assert!(
            matches!(&looped, LookupError::Failed { reason, .. } if reason.contains("CNAME")),
            "{looped:?}"
        );
    });
}

// covers: MX1, MX3
#[test]
fn mx1_nodata_nxdomain_and_failures_stay_apart() {
    let world = FakeResolver::new()
        .a("only-a.example", "192.0.2.3")
        .secure("only-a.example")
        .bogus("bogus.example")
        .mx("half.example", 10, "mx.half.example")
        .fail(
            "mx.half.example",
            RecordType::AAAA,
            LookupError::ServFail {
                name: "mx.half.example".into(),
            },
        )
        .a("mx.half.example", "192.0.2.4");
    block_on(async {
        let nodata = mx(&world, &name("only-a.example")).await.unwrap();
        assert!(nodata.records.is_empty());
        assert_eq!(nodata.security, Security::Secure);

        let missing = mx(&world, &name("nowhere.example")).await.unwrap_err();
        assert!(missing.is_permanent(), "{missing:?}");

        // A bogus answer is an error, never an empty list.
        let bogus = mx(&world, &name("bogus.example")).await.unwrap_err();
        assert!(matches!(bogus, LookupError::ServFail { .. }), "{bogus:?}");
        assert!(!bogus.is_permanent());

        // One family failing fails the host: its addresses are not known.
        let half = addresses(&world, &name("mx.half.example"))
            .await
            .unwrap_err();
        assert!(matches!(half, LookupError::ServFail { .. }), "{half:?}");
    });
}

// covers: MX1
#[test]
fn mx1_null_mx_and_tlsa_names() {
    let world = FakeResolver::new()
        .mx("null.example", 0, ".")
        .tlsa("_25._tcp.mx.example", 3, 1, 1, &[7; 32])
        .secure("_25._tcp.mx.example");
    block_on(async {
        let null = mx(&world, &name("null.example")).await.unwrap();
        assert_eq!(
            null.records,
            vec![Mx {
                preference: 0,
                exchange: ".".into()
            }]
        );
        let tlsa = tlsa(&world, &name("mx.example"), 25).await.unwrap();
        assert_eq!(tlsa.records.len(), 1);
        assert_eq!(
            (
                tlsa.records[0].usage,
                tlsa.records[0].selector,
                tlsa.records[0].matching
            ),
            (3, 1, 1)
        );
        assert_eq!(tlsa.security, Security::Secure);
    });
}

// covers: MX8
#[test]
fn mx8_resolv_conf_names_servers_and_trust_ad() {
    let conf = ResolvConf::parse(
        "# comment\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions edns0 trust-ad\nsearch example\n",
    );
    assert_eq!(
        conf.nameservers,
        vec!["127.0.0.53".parse::<IpAddr>().unwrap()]
    );
    assert!(conf.trust_ad);
    let plain = ResolvConf::parse("nameserver 192.0.2.53\noptions edns0\n");
    assert!(!plain.trust_ad);
    let stub = StubResolver::from_resolv_conf(&plain, Duration::from_secs(1));
    assert_eq!(stub.trust(), &AdTrust::Untrusted);
    let local = StubResolver::from_resolv_conf(&ResolvConf::parse(""), Duration::from_secs(1));
    assert_eq!(
        local.trust(),
        &AdTrust::Loopback,
        "no nameserver means the local one"
    );
    let declared = StubResolver::from_resolv_conf(&conf, Duration::from_secs(1));
    assert_eq!(declared.trust(), &AdTrust::ResolvConf);
}

/// A one-shot UDP responder: answers the first query with `answer(query)`,
/// after sending `noise` datagrams first.
async fn responder(
    noise: Vec<Vec<u8>>,
    answer: impl Fn(&Message) -> Message + Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<Message>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        let (n, peer) = socket.recv_from(&mut buffer).await.unwrap();
        let query = Message::from_vec(&buffer[..n]).unwrap();
        for datagram in noise {
            socket.send_to(&datagram, peer).await.unwrap();
        }
        let reply = answer(&query);
        socket
            .send_to(&reply.to_vec().unwrap(), peer)
            .await
            .unwrap();
        query
    });
    (address, task)
}

fn reply_to(query: &Message, authentic: bool) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.response_code = ResponseCode::NoError;
    reply.metadata.authentic_data = authentic;
    reply.add_queries(query.queries.clone());
    let record = Record::from_rdata(
        query.queries[0].name().clone(),
        60,
        RData::A(A("192.0.2.9".parse().unwrap())),
    );
    reply.add_answer(record);
    reply
}

// covers: MX8
#[test]
fn mx8_stub_asks_with_ad_and_do_and_drops_answers_to_other_questions() {
    block_on(async {
        // An honest answer first: the query asks for AD and DO.
        let (address, task) = responder(Vec::new(), |q| reply_to(q, true)).await;
        let stub = StubResolver::new(vec![address], None, Duration::from_secs(5));
        let answer = addresses_v4(&stub, "secure.example").await;
        let query = task.await.unwrap();
        assert!(query.metadata.authentic_data, "AD set in the query");
        assert!(query.metadata.recursion_desired);
        let edns = query.edns.as_ref().expect("EDNS in the query");
        assert!(edns.flags().dnssec_ok, "DO set in the query");
        assert_eq!(answer.unwrap().security, Security::Secure);

        // Then a forged answer with the wrong ID and one for another
        // question arrive before the real one; both must be dropped.
        let forged_id = |q: &Message| {
            let mut forged = reply_to(q, true);
            forged.metadata.id = q.metadata.id.wrapping_add(1);
            forged.answers[0].data = RData::A(A("203.0.113.66".parse().unwrap()));
            forged
        };
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            let (n, peer) = socket.recv_from(&mut buffer).await.unwrap();
            let query = Message::from_vec(&buffer[..n]).unwrap();
            socket
                .send_to(&forged_id(&query).to_vec().unwrap(), peer)
                .await
                .unwrap();
            let mut other_question = reply_to(&query, true);
            other_question.queries[0].set_name(name("other.example"));
            socket
                .send_to(&other_question.to_vec().unwrap(), peer)
                .await
                .unwrap();
            socket
                .send_to(&reply_to(&query, false).to_vec().unwrap(), peer)
                .await
                .unwrap();
        });
        let stub = StubResolver::new(vec![address], None, Duration::from_secs(5));
        let answer = addresses_v4(&stub, "insecure.example").await.unwrap();
        server.await.unwrap();
        assert_eq!(answer.records, vec!["192.0.2.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            answer.security,
            Security::Insecure,
            "AD clear in the real answer"
        );
    });
}

// covers: MX8
#[test]
fn mx8_an_untrusted_resolvers_ad_bit_counts_for_nothing() {
    block_on(async {
        let (address, task) = responder(Vec::new(), |q| reply_to(q, true)).await;
        let stub = StubResolver::new(
            vec![address],
            Some(AdTrust::Untrusted),
            Duration::from_secs(5),
        );
        let answer = addresses_v4(&stub, "secure.example").await.unwrap();
        task.await.unwrap();
        assert_eq!(answer.security, Security::Insecure);
    });
}

// covers: MX1
#[test]
fn mx1_a_silent_resolver_times_out() {
    block_on(async {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let stub = StubResolver::new(vec![address], None, Duration::from_millis(300));
        let error = addresses_v4(&stub, "silent.example").await.unwrap_err();
        assert!(matches!(error, LookupError::Timeout { .. }), "{error:?}");
        drop(socket);
    });
}

async fn addresses_v4(resolver: &dyn Resolve, host: &str) -> Result<Answer<IpAddr>, LookupError> {
    typed(resolver, &name(host), RecordType::A, |data| match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        _ => None,
    })
    .await
}

#[test]
fn display_names_are_lower_case_without_the_root_dot() {
    assert_eq!(display_name(&name("MX.Example.NET")), "mx.example.net");
    assert_eq!(display_name(&Name::root()), ".");
}

// covers: MX3, MX8
#[test]
fn mx3_an_unsigned_empty_family_does_not_unsign_a_host() {
    let world = FakeResolver::new()
        .a("mx.example", "192.0.2.1")
        .secure("mx.example")
        .insecure_type("mx.example", RecordType::AAAA);
    block_on(async {
        let answer = addresses(&world, &name("mx.example")).await.unwrap();
        assert_eq!(
            answer.security,
            Security::Secure,
            "the A records are signed"
        );
    });
    // Records on both sides that differ in status: one side is forged.
    let mixed = FakeResolver::new()
        .a("mx.example", "192.0.2.1")
        .aaaa("mx.example", "2001:db8::1")
        .secure("mx.example")
        .insecure_type("mx.example", RecordType::AAAA);
    block_on(async {
        let error = addresses(&mixed, &name("mx.example")).await.unwrap_err();
        assert!(matches!(error, LookupError::Failed { .. }), "{error:?}");
        assert!(!error.is_permanent());
    });
    // NXDOMAIN for one family and records for the other: not "no such host".
    let split = FakeResolver::new().a("mx.example", "192.0.2.1").fail(
        "mx.example",
        RecordType::AAAA,
        LookupError::NxDomain {
            name: "mx.example".into(),
            security: Security::Insecure,
        },
    );
    block_on(async {
        let error = addresses(&split, &name("mx.example")).await.unwrap_err();
        assert!(!error.is_permanent(), "{error:?}");
    });
}

// covers: MX1
#[test]
fn mx1_unicode_names_become_a_labels() {
    assert_eq!(
        display_name(&name("bücher.example")),
        "xn--bcher-kva.example"
    );
    assert_eq!(
        display_name(&name("_mta-sts.example.net")),
        "_mta-sts.example.net"
    );
}
