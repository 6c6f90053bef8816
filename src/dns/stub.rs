//! A stub resolver that asks a validating recursive resolver and reads its
//! AD bit. hickory's high-level lookups set neither AD nor DO, and a
//! resolver only reports authenticity to a query that asks for it (RFC 6840
//! 5.7), so queries are built here: RD, AD and EDNS with DO set, a random
//! ID, UDP with a retry over TCP when truncated (RFC 7766).
//!
//! The AD bit is only worth what the path to the resolver is worth (RFC
//! 6698 4.1, RFC 7672 1.3): it is trusted for a resolver on loopback, or
//! when resolv.conf says `options trust-ad` (glibc's marker for a trusted
//! path), or when the user said so in the configuration. Otherwise every
//! answer is insecure.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::{Lookup, LookupError, Resolve, Response, Security, display_name};

/// The largest UDP answer asked for (the DNS flag day 2020 value, which
/// avoids IP fragmentation).
const UDP_PAYLOAD: u16 = 1232;

/// How long one UDP try waits before the query is sent again (to the next
/// server, if there is one).
const TRY_TIMEOUT: Duration = Duration::from_secs(3);

/// What resolv.conf says that matters here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    /// `options trust-ad`: the path to the resolvers is trusted (glibc 2.31).
    pub trust_ad: bool,
}

impl ResolvConf {
    /// Parses resolv.conf(5). Unknown lines are ignored, as the C library
    /// ignores them; an address with a zone index (`fe80::1%eth0`) is
    /// skipped, since it cannot be a trusted path anyway.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(address) = words.next().and_then(|w| w.parse().ok()) {
                        conf.nameservers.push(address);
                    }
                }
                Some("options") if words.any(|w| w == "trust-ad") => conf.trust_ad = true,
                _ => {}
            }
        }
        // resolv.conf(5): no nameserver line means the local one.
        if conf.nameservers.is_empty() {
            conf.nameservers.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
            conf.nameservers.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        conf
    }

    pub fn load(path: &std::path::Path) -> io::Result<ResolvConf> {
        Ok(ResolvConf::parse(&std::fs::read_to_string(path)?))
    }
}

/// Whose AD bit is believed, and why (said with `-v`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdTrust {
    /// Every server is on loopback: the answer never crossed a network.
    Loopback,
    /// resolv.conf says `options trust-ad`.
    ResolvConf,
    /// The configuration says the resolver is trusted.
    Configured,
    /// Not trusted: every answer is insecure.
    Untrusted,
}

/// Queries a recursive resolver and trusts its AD bit as [`AdTrust`] says.
#[derive(Clone, Debug)]
pub struct StubResolver {
    servers: Vec<SocketAddr>,
    trust: AdTrust,
    limit: Duration,
}

impl StubResolver {
    /// A resolver for `servers`, each lookup limited to `limit`. The AD
    /// bit is trusted when `trusted` says so or every server is on loopback.
    pub fn new(servers: Vec<SocketAddr>, trusted: Option<AdTrust>, limit: Duration) -> StubResolver {
        let trust = match trusted {
            Some(trust) => trust,
            None if !servers.is_empty() && servers.iter().all(|s| s.ip().is_loopback()) => {
                AdTrust::Loopback
            }
            None => AdTrust::Untrusted,
        };
        StubResolver {
            servers,
            trust,
            limit,
        }
    }

    /// The system's resolvers (port 53), trusted by the rules above.
    pub fn from_resolv_conf(conf: &ResolvConf, limit: Duration) -> StubResolver {
        let servers = conf
            .nameservers
            .iter()
            .map(|ip| SocketAddr::new(*ip, 53))
            .collect();
        StubResolver::new(servers, conf.trust_ad.then_some(AdTrust::ResolvConf), limit)
    }

    pub fn trust(&self) -> &AdTrust {
        &self.trust
    }

    async fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Response, LookupError> {
        let shown = display_name(name);
        let deadline = Instant::now() + self.limit;
        let mut last = None;
        // Cycle through the servers until one gives a usable answer or the
        // lookup's time is up (resolv.conf(5): rotate on timeout).
        for server in self.servers.iter().cycle().take(self.servers.len().max(1) * 3) {
            if Instant::now() >= deadline {
                break;
            }
            match self.exchange(*server, name, rtype, deadline).await {
                Ok(message) => match self.read(message, &shown) {
                    // Another server may know better; remember and go on.
                    Err(e @ (LookupError::ServFail { .. } | LookupError::Failed { .. })) => {
                        last = Some(e)
                    }
                    done => return done,
                },
                Err(Exchange::TimedOut) => {}
                Err(Exchange::Failed(reason)) => {
                    last = Some(LookupError::Failed {
                        name: shown.clone(),
                        reason: format!("{server}: {reason}"),
                    })
                }
            }
        }
        Err(last.unwrap_or(LookupError::Timeout {
            name: shown,
            limit: self.limit,
        }))
    }

    /// The records of a response, or what its RCODE means.
    fn read(&self, message: Message, shown: &str) -> Result<Response, LookupError> {
        let security = if self.trust != AdTrust::Untrusted && message.metadata.authentic_data {
            Security::Secure
        } else {
            Security::Insecure
        };
        match message.metadata.response_code {
            ResponseCode::NoError => Ok(Response {
                records: message.answers,
                security,
            }),
            ResponseCode::NXDomain => Err(LookupError::NxDomain {
                name: shown.to_string(),
                security,
            }),
            ResponseCode::ServFail => Err(LookupError::ServFail {
                name: shown.to_string(),
            }),
            other => Err(LookupError::Failed {
                name: shown.to_string(),
                reason: format!("the resolver answered {other}"),
            }),
        }
    }

    /// One query to one server: UDP, then TCP if the answer was truncated.
    async fn exchange(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        deadline: Instant,
    ) -> Result<Message, Exchange> {
        let (id, query) = build_query(name, rtype)?;
        let try_deadline = deadline.min(Instant::now() + TRY_TIMEOUT);
        let answer = udp_exchange(server, &query, id, name, rtype, try_deadline).await?;
        if !answer.metadata.truncation {
            return Ok(answer);
        }
        tcp_exchange(server, &query, id, name, rtype, deadline).await
    }
}

impl Resolve for StubResolver {
    fn query(&self, name: &Name, rtype: RecordType) -> Lookup<'_> {
        let name = name.clone();
        Box::pin(async move { self.lookup(&name, rtype).await })
    }

    fn describe(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(|s| s.to_string()).collect();
        let servers = servers.join(", ");
        match self.trust {
            AdTrust::Loopback => format!("the AD bit of {servers} (on loopback)"),
            AdTrust::ResolvConf => {
                format!("the AD bit of {servers} (resolv.conf says options trust-ad)")
            }
            AdTrust::Configured => format!("the AD bit of {servers} (trusted by the configuration)"),
            AdTrust::Untrusted => format!(
                "nothing: {servers} is not on loopback and resolv.conf does not say options \
                 trust-ad, so no answer counts as DNSSEC secure"
            ),
        }
    }
}

/// Why one exchange gave no message.
enum Exchange {
    TimedOut,
    Failed(String),
}

impl From<io::Error> for Exchange {
    fn from(e: io::Error) -> Exchange {
        Exchange::Failed(e.to_string())
    }
}

/// A query with RD, AD and DO set, and its random ID.
fn build_query(name: &Name, rtype: RecordType) -> Result<(u16, Vec<u8>), Exchange> {
    let mut id = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| Exchange::Failed("the system's random number generator failed".into()))?;
    let id = u16::from_be_bytes(id);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    // RFC 6840 5.7: AD in a query asks for the AD bit in the answer.
    message.metadata.authentic_data = true;
    let mut query = Query::query(name.clone(), rtype);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    // RFC 3225: DO says we understand DNSSEC records.
    edns.set_dnssec_ok(true);
    message.set_edns(edns);
    let bytes = message
        .to_vec()
        .map_err(|e| Exchange::Failed(format!("cannot encode the query: {e}")))?;
    Ok((id, bytes))
}

/// Is `answer` the answer to our question? Anything else on the socket
/// (a late answer to an earlier try, a spoofing attempt) is dropped.
fn answers(answer: &Message, id: u16, name: &Name, rtype: RecordType) -> bool {
    answer.metadata.id == id
        && answer.metadata.message_type == MessageType::Response
        && answer.queries.len() == 1
        && answer.queries[0].name().eq_ignore_root_case(name)
        && answer.queries[0].query_type() == rtype
        && answer.queries[0].query_class() == DNSClass::IN
}

async fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
    deadline: Instant,
) -> Result<Message, Exchange> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    // A connected socket only receives datagrams from the server.
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0u8; 65535];
    loop {
        let received = match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            Err(_) => return Err(Exchange::TimedOut),
            Ok(received) => received?,
        };
        if let Ok(answer) = Message::from_vec(&buffer[..received])
            && answers(&answer, id, name, rtype)
        {
            return Ok(answer);
        }
    }
}

async fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    rtype: RecordType,
    deadline: Instant,
) -> Result<Message, Exchange> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let length = u16::try_from(query.len())
            .map_err(|_| Exchange::Failed("the query is too long".into()))?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).await?;
        let mut buffer = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut buffer).await?;
        let answer = Message::from_vec(&buffer)
            .map_err(|e| Exchange::Failed(format!("malformed answer over TCP: {e}")))?;
        if !answers(&answer, id, name, rtype) {
            return Err(Exchange::Failed(
                "the answer over TCP is not for the question asked".into(),
            ));
        }
        Ok(answer)
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => Err(Exchange::TimedOut),
        Ok(result) => result,
    }
}
