//! The test DNS world (MX8, MX9): everything the direct-delivery tests need
//! to resolve names on loopback, without the internet.
//!
//! - [`ResolverDouble`] answers like a validating recursive resolver from a
//!   table the test builds ([`World`]): each name is Secure, Insecure or
//!   Bogus, and the AD bit follows the rules of RFC 6840 5.7/5.8, so a test
//!   can prove both what tlsend concludes and how it asks (the double logs
//!   every query with its AD, DO and CD bits). mox's `MockResolver`, as a
//!   server.
//! - [`SignedZones`] is a real authoritative server (hickory-server, in
//!   process) for a test root `.` and child zones, signed at start with
//!   fresh keys: secure delegations (DS in the parent), insecure ones (no
//!   DS) and bogus ones (a DS that matches no key of the child). It writes
//!   the root's trust anchor to a file.
//! - [`Unbound`] is Debian's unbound, a real validating resolver, started
//!   privately on top of a [`SignedZones`] with its trust anchor. It is a
//!   peer like Postfix: where it is missing, [`require_unbound`] fails the
//!   test under CI and skips it with a printed notice elsewhere.
//! - [`ask`] sends one hand-built query with a plain hickory-net client,
//!   with exactly the flags the test chooses.
//!
//! Records are added through the [`Records`] trait, the same way for the
//! double and for the signed zones. Names are written without or with the
//! final dot; both mean the absolute name.
//!
//! Everything listens on 127.0.0.1 only, on ports the system chose, and
//! stops when its handle is dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsHandle as _, FirstAnswer as _};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TLSA, TXT};
use hickory_proto::rr::{Name, RData, RecordType};

mod double;
mod signed;
mod unbound;

// The whole API, whether or not a test names it yet.
#[allow(unused_imports)]
pub use double::{Mark, ResolverDouble, SeenQuery, Transport, World};
pub use signed::{SignedZones, ZoneSet};
pub use unbound::{Unbound, require_unbound};

/// The DNSSEC status of a name or zone, as a validating resolver sees it
/// (RFC 4033 5: secure, insecure, bogus).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Security {
    /// Signed, with a chain of trust from the anchor: the AD bit is set.
    Secure,
    /// Provably unsigned (no DS at the delegation): answered, no AD bit.
    Insecure,
    /// Signed, but the chain or the signatures fail: SERVFAIL.
    Bogus,
}

/// The absolute name for `text` ("example.net" and "example.net." are the
/// same); panics on a name that is not valid, which is a bug in the test.
pub fn name(text: &str) -> Name {
    let mut name = Name::from_ascii(text).unwrap_or_else(|e| panic!("bad DNS name {text:?}: {e}"));
    name.set_fqdn(true);
    name
}

/// The records a test can put in its DNS world. Implemented by [`World`]
/// (the resolver double's table, where each addition returns a [`Mark`]
/// for the owner's security) and by [`ZoneSet`] (the signed zones, where
/// the zone decides).
pub trait Records {
    /// What an addition returns, for chaining.
    type Added<'a>
    where
        Self: 'a;

    /// Adds one record of any type; the helpers below build the usual ones.
    fn record(&mut self, owner: &str, data: RData) -> Self::Added<'_>;

    fn mx(&mut self, owner: &str, preference: u16, exchange: &str) -> Self::Added<'_> {
        self.record(owner, RData::MX(MX::new(preference, name(exchange))))
    }

    fn a(&mut self, owner: &str, address: &str) -> Self::Added<'_> {
        let address: Ipv4Addr = address
            .parse()
            .unwrap_or_else(|e| panic!("bad IPv4 address {address:?}: {e}"));
        self.record(owner, RData::A(A(address)))
    }

    fn aaaa(&mut self, owner: &str, address: &str) -> Self::Added<'_> {
        let address: Ipv6Addr = address
            .parse()
            .unwrap_or_else(|e| panic!("bad IPv6 address {address:?}: {e}"));
        self.record(owner, RData::AAAA(AAAA(address)))
    }

    /// A TLSA record (RFC 6698 2.1): usage, selector, matching type, data.
    fn tlsa(
        &mut self,
        owner: &str,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &[u8],
    ) -> Self::Added<'_> {
        let tlsa = TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data.to_vec(),
        );
        self.record(owner, RData::TLSA(tlsa))
    }

    /// A TXT record holding `text`, split into strings of at most 255
    /// octets (RFC 1035 3.3.14) as a zone file would.
    fn txt(&mut self, owner: &str, text: &str) -> Self::Added<'_> {
        let strings = text
            .as_bytes()
            .chunks(255)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect();
        self.record(owner, RData::TXT(TXT::new(strings)))
    }

    fn cname(&mut self, owner: &str, target: &str) -> Self::Added<'_> {
        self.record(owner, RData::CNAME(CNAME(name(target))))
    }
}

/// How [`ask`] sends its query: the header and EDNS bits are exactly these,
/// nothing is added.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    /// AD in the query (RFC 6840 5.7: "I understand the AD bit").
    pub ad: bool,
    /// The EDNS DO bit (RFC 3225); sets `edns` to 1232 if it is `None`.
    pub dnssec_ok: bool,
    /// CD in the query (checking disabled).
    pub cd: bool,
    pub rd: bool,
    /// The EDNS UDP payload size, or no OPT record at all.
    pub edns: Option<u16>,
    pub tcp: bool,
    /// How long to wait for the answer.
    pub limit: Duration,
}

impl Default for Ask {
    /// A plain recursive query over UDP: RD, no AD, no EDNS.
    fn default() -> Self {
        Ask {
            ad: false,
            dnssec_ok: false,
            cd: false,
            rd: true,
            edns: None,
            tcp: false,
            limit: Duration::from_secs(5),
        }
    }
}

/// Sends one query to `server` with a plain hickory-net client and returns
/// the response as it came, whatever its RCODE or TC bit (no retry over
/// TCP, no validation). `Err` on a timeout or a transport failure.
pub async fn ask(
    server: SocketAddr,
    owner: &str,
    rtype: RecordType,
    how: Ask,
) -> Result<Message, String> {
    let mut query = Message::query();
    query.add_query(Query::query(name(owner), rtype));
    query.metadata.recursion_desired = how.rd;
    query.metadata.authentic_data = how.ad;
    query.metadata.checking_disabled = how.cd;
    let payload = how.edns.or(how.dnssec_ok.then_some(1232));
    if let Some(payload) = payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload).set_dnssec_ok(how.dnssec_ok);
        query.set_edns(edns);
    }
    let request = DnsRequest::new(query, DnsRequestOptions::default());
    let provider = TokioRuntimeProvider::new();
    let limit = how.limit;
    let client = if how.tcp {
        let (stream, handle) = TcpClientStream::new(server, None, Some(limit), provider);
        let stream = tokio::time::timeout(limit, stream)
            .await
            .map_err(|_| format!("TCP connection to {server} timed out"))?
            .map_err(|e| format!("TCP connection to {server}: {e}"))?;
        let (client, background) =
            Client::<TokioRuntimeProvider>::with_timeout(stream, handle, limit);
        tokio::spawn(background);
        client
    } else {
        let stream = UdpClientStream::builder(server, provider)
            .with_timeout(Some(limit))
            .build();
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(background);
        client
    };
    let answer = client.send(request).first_answer();
    let response = tokio::time::timeout(limit, answer)
        .await
        .map_err(|_| format!("no answer from {server} within {limit:?}"))?
        .map_err(|e| format!("query to {server}: {e}"))?;
    Ok(response.into_message())
}

/// The records of `rtype` in the answer section, as presentation-format
/// data (`10 mx1.example.net.`), for short assertions.
pub fn answers(message: &Message, rtype: RecordType) -> Vec<String> {
    message
        .answers
        .iter()
        .filter(|record| record.record_type() == rtype)
        .map(|record| record.data.to_string())
        .collect()
}

/// The loopback address every server of the world listens on.
pub(crate) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
