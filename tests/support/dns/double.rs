//! A DNS server that answers like a validating recursive resolver (unbound,
//! or the resolver in resolv.conf) from a table: mox's `MockResolver` as a
//! server, so that tlsend's real resolver code talks to it over UDP and TCP.
//!
//! Each name is Secure, Insecure or Bogus ([`Security`]): by its own mark,
//! else by the mark of the nearest enclosing zone, else Insecure. The
//! answer follows what a validating resolver does:
//!
//! - records of the asked type: NOERROR with them; a CNAME on the way is
//!   followed and every link is in the answer (RFC 1034 4.3.2);
//! - a name with no records of any type, and none below it: NXDOMAIN; a name
//!   that has other types (or names below it): NOERROR with no data; both
//!   carry the SOA of the enclosing zone in the authority section;
//! - a Bogus name anywhere in the chain, or one marked servfail: SERVFAIL
//!   (with CD set, a Bogus name is answered, never with AD: RFC 4035 3.2.2);
//! - AD is set only when every name of the answer is Secure *and* the query
//!   had AD or the EDNS DO bit (RFC 6840 5.7, 5.8);
//! - over UDP, an answer longer than the query's EDNS payload size (512
//!   without EDNS, or the table's `udp_limit`) is replaced by the header and
//!   question with TC set, so the client must retry over TCP.
//!
//! No RRSIGs are ever returned: a client of the double trusts the AD bit;
//! local validation is tested against [`super::SignedZones`].

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{LOOPBACK, Records, Security, name};

/// The TTL of every record the double serves.
const TTL: u32 = 300;
/// Longer CNAME chains are answered with SERVFAIL, as loops are.
const MAX_CHAIN: usize = 12;
/// The EDNS payload size the double advertises (DNS flag day 2020).
const OUR_PAYLOAD: u16 = 1232;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(30);

/// What a name is marked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Is(Security),
    ServFail,
}

/// The table a [`ResolverDouble`] answers from.
///
/// ```ignore
/// let mut world = World::new();
/// world.zone("example.net", Security::Secure);
/// world.mx("example.net", 10, "mx1.example.net");
/// world.a("mx1.example.net", "127.0.0.1");
/// world.tlsa("_25._tcp.mx1.example.net", 3, 1, 1, &digest);
/// world.mx("other.example", 10, "mx.other.example").insecure();
/// world.bogus("bad.example").servfail("down.example");
/// let dns = ResolverDouble::start(world);
/// ```
#[derive(Clone, Debug, Default)]
pub struct World {
    /// Owner (lowercase) → type → data, in the order added.
    records: BTreeMap<Name, BTreeMap<RecordType, Vec<RData>>>,
    /// Marks on one name only.
    names: BTreeMap<Name, Status>,
    /// Marks on a name and everything below it.
    zones: BTreeMap<Name, Status>,
    udp_limit: Option<u16>,
}

/// Returned by each record added to a [`World`]: marks the owner name (that
/// name only; [`World::zone`] marks a subtree). Without a mark the owner
/// takes its zone's security.
pub struct Mark<'a> {
    world: &'a mut World,
    owner: Name,
}

impl<'a> Mark<'a> {
    pub fn secure(self) -> &'a mut World {
        self.set(Status::Is(Security::Secure))
    }

    pub fn insecure(self) -> &'a mut World {
        self.set(Status::Is(Security::Insecure))
    }

    pub fn bogus(self) -> &'a mut World {
        self.set(Status::Is(Security::Bogus))
    }

    pub fn servfail(self) -> &'a mut World {
        self.set(Status::ServFail)
    }

    fn set(self, status: Status) -> &'a mut World {
        self.world.names.insert(self.owner, status);
        self.world
    }
}

impl Records for World {
    type Added<'a> = Mark<'a>;

    fn record(&mut self, owner: &str, data: RData) -> Mark<'_> {
        let owner = name(owner).to_lowercase();
        let rtype = data.record_type();
        self.records
            .entry(owner.clone())
            .or_default()
            .entry(rtype)
            .or_default()
            .push(data);
        Mark { world: self, owner }
    }
}

impl World {
    /// An empty table: every name is NXDOMAIN and Insecure.
    pub fn new() -> World {
        World::default()
    }

    /// `apex` and every name below it are `security` (unless a name of its
    /// own or a deeper zone says otherwise); also the owner of the SOA in
    /// negative answers below it.
    pub fn zone(&mut self, apex: &str, security: Security) -> &mut World {
        self.zones
            .insert(name(apex).to_lowercase(), Status::Is(security));
        self
    }

    /// Removes every record of `rtype` at `owner` (to replace them).
    pub fn remove(&mut self, owner: &str, rtype: RecordType) -> &mut World {
        if let Some(types) = self.records.get_mut(&name(owner).to_lowercase()) {
            types.remove(&rtype);
        }
        self
    }

    /// `apex` and everything below it fail validation: SERVFAIL.
    pub fn bogus(&mut self, apex: &str) -> &mut World {
        self.zone(apex, Security::Bogus)
    }

    /// Every query at or below `apex` is answered with SERVFAIL (a resolver
    /// that cannot reach the zone's servers).
    pub fn servfail(&mut self, apex: &str) -> &mut World {
        self.zones
            .insert(name(apex).to_lowercase(), Status::ServFail);
        self
    }

    /// Caps every UDP answer at `octets`, whatever the query's EDNS size, so
    /// that a test can force TC and the retry over TCP.
    pub fn udp_limit(&mut self, octets: u16) -> &mut World {
        self.udp_limit = Some(octets);
        self
    }

    /// The nearest zone mark at or above `owner`, with its apex.
    fn zone_of(&self, owner: &Name) -> Option<(&Name, Status)> {
        self.zones
            .iter()
            .filter(|(apex, _)| apex.zone_of(owner))
            .max_by_key(|(apex, _)| apex.num_labels())
            .map(|(apex, status)| (apex, *status))
    }

    fn status(&self, owner: &Name) -> Status {
        let owner = owner.to_lowercase();
        self.names
            .get(&owner)
            .copied()
            .or_else(|| self.zone_of(&owner).map(|(_, status)| status))
            .unwrap_or(Status::Is(Security::Insecure))
    }

    /// True if `owner` has records, or names below it do (an empty
    /// non-terminal exists: RFC 8020).
    fn exists(&self, owner: &Name) -> bool {
        let owner = owner.to_lowercase();
        self.records.contains_key(&owner) || self.records.keys().any(|n| owner.zone_of(n))
    }

    /// The SOA a negative answer for `owner` carries.
    fn soa(&self, owner: &Name) -> Record {
        let apex = self
            .zone_of(&owner.to_lowercase())
            .map_or_else(Name::root, |(apex, _)| apex.clone());
        let host = |label: &str| {
            apex.prepend_label(label)
                .expect("a label fits before the zone apex")
        };
        let soa = SOA::new(host("ns"), host("hostmaster"), 1, 3600, 600, 86400, TTL);
        Record::from_rdata(apex.clone(), TTL, RData::SOA(soa))
    }
}

/// What the double resolved for one question.
struct Resolution {
    rcode: ResponseCode,
    answers: Vec<Record>,
    /// The SOA for a negative answer.
    authority: Option<Record>,
    /// Every name of the answer was Secure.
    secure: bool,
}

/// Resolves like a recursive resolver: follows CNAMEs, decides NXDOMAIN or
/// NODATA, and folds the security of every name it passed.
fn resolve(world: &World, qname: &Name, qtype: RecordType, checking_disabled: bool) -> Resolution {
    let servfail = || Resolution {
        rcode: ResponseCode::ServFail,
        answers: Vec::new(),
        authority: None,
        secure: false,
    };
    let mut answers = Vec::new();
    let mut secure = true;
    let mut owner = qname.clone();
    for _ in 0..MAX_CHAIN {
        match world.status(&owner) {
            Status::ServFail => return servfail(),
            Status::Is(Security::Bogus) if !checking_disabled => return servfail(),
            Status::Is(Security::Secure) => {}
            Status::Is(_) => secure = false,
        }
        let node = world.records.get(&owner.to_lowercase());
        let rrset = |rtype: RecordType| node.and_then(|types| types.get(&rtype));
        if let Some(data) = rrset(qtype) {
            answers.extend(
                data.iter()
                    .map(|rdata| Record::from_rdata(owner.clone(), TTL, rdata.clone())),
            );
            return Resolution {
                rcode: ResponseCode::NoError,
                answers,
                authority: None,
                secure,
            };
        }
        if qtype != RecordType::CNAME
            && let Some(RData::CNAME(target)) = rrset(RecordType::CNAME).and_then(|d| d.first())
        {
            answers.push(Record::from_rdata(
                owner.clone(),
                TTL,
                RData::CNAME(target.clone()),
            ));
            owner = target.0.clone();
            continue;
        }
        let rcode = if world.exists(&owner) {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        return Resolution {
            rcode,
            answers,
            authority: Some(world.soa(&owner)),
            secure,
        };
    }
    servfail()
}

/// How a query reached the double.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// One query as the double received it.
#[derive(Clone, Debug)]
pub struct SeenQuery {
    /// As sent, case included.
    pub name: Name,
    pub rtype: RecordType,
    pub transport: Transport,
    pub rd: bool,
    /// AD in the header.
    pub ad: bool,
    pub cd: bool,
    /// The EDNS DO bit.
    pub dnssec_ok: bool,
    /// The EDNS payload size, `None` without an OPT record.
    pub edns: Option<u16>,
}

impl SeenQuery {
    /// True if the query asked for the AD bit, with AD or DO (RFC 6840 5.7).
    pub fn wants_ad(&self) -> bool {
        self.ad || self.dnssec_ok
    }
}

/// Builds the response to one query, or `None` for something that is not a
/// query at all. Logs the query.
fn respond(shared: &Shared, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let query = match Message::from_vec(request) {
        Ok(query) => query,
        Err(_) => {
            let id = u16::from_be_bytes(*request.first_chunk::<2>()?);
            let reply = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
            return reply.to_vec().ok();
        }
    };
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let meta = query.metadata;
    let mut response = Message::response(meta.id, meta.op_code);
    response.metadata.recursion_desired = meta.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = meta.checking_disabled;
    let dnssec_ok = query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(OUR_PAYLOAD).set_dnssec_ok(dnssec_ok);
        response.set_edns(edns);
    }
    response.add_queries(query.queries.iter().cloned());
    if meta.op_code != OpCode::Query || query.queries.len() != 1 {
        response.metadata.response_code = if meta.op_code != OpCode::Query {
            ResponseCode::NotImp
        } else {
            ResponseCode::FormErr
        };
        return response.to_vec().ok();
    }
    let question = &query.queries[0];
    shared.log().push(SeenQuery {
        name: question.name().clone(),
        rtype: question.query_type(),
        transport,
        rd: meta.recursion_desired,
        ad: meta.authentic_data,
        cd: meta.checking_disabled,
        dnssec_ok,
        edns: query.edns.as_ref().map(Edns::max_payload),
    });
    if shared.silent.load(Ordering::SeqCst) {
        return None;
    }

    let world = shared.world();
    let resolution = resolve(
        &world,
        question.name(),
        question.query_type(),
        meta.checking_disabled,
    );
    let udp_limit = world.udp_limit;
    drop(world);

    response.metadata.response_code = resolution.rcode;
    // RFC 6840 5.8: AD only for a client that signalled it understands it.
    response.metadata.authentic_data = resolution.secure
        && (meta.authentic_data || dnssec_ok)
        && resolution.rcode != ResponseCode::ServFail;
    response.add_answers(resolution.answers);
    if let Some(soa) = resolution.authority {
        response.add_authority(soa);
    }
    let bytes = response.to_vec().ok()?;
    if transport == Transport::Udp {
        let limit = udp_limit.unwrap_or_else(|| query.max_payload().max(512));
        if bytes.len() > usize::from(limit) {
            // RFC 2181 9: set TC and leave the sections out; the client
            // asks again over TCP.
            let mut truncated = response.truncate();
            truncated.metadata.authentic_data = false;
            return truncated.to_vec().ok();
        }
    }
    Some(bytes)
}

/// What the server tasks and the handle share.
struct Shared {
    world: Mutex<World>,
    log: Mutex<Vec<SeenQuery>>,
    silent: AtomicBool,
}

/// A lock that a panicking test thread cannot poison for the others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    fn log(&self) -> MutexGuard<'_, Vec<SeenQuery>> {
        lock(&self.log)
    }
}

/// A running resolver double on 127.0.0.1 (UDP and TCP on the same port);
/// stops when dropped.
pub struct ResolverDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ResolverDouble {
    /// Binds UDP and TCP on one free port of 127.0.0.1 and serves `world`
    /// from a thread of its own.
    pub fn start(world: World) -> ResolverDouble {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("UDP local address");
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            log: Mutex::new(Vec::new()),
            silent: AtomicBool::new(false),
        });
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("dns-double-{}", addr.port()))
            .spawn(move || serve(serving, udp, tcp, shutdown_rx))
            .expect("spawn the resolver double's thread");
        ResolverDouble {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Where to send queries (127.0.0.1, UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// While true, queries are logged and never answered (a resolver that
    /// went silent: FAIL6 timeouts).
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    /// Every query received so far, in order.
    pub fn queries(&self) -> Vec<SeenQuery> {
        self.shared.log().clone()
    }

    /// The queries so far for `owner` (any case) and `rtype`.
    pub fn queries_for(&self, owner: &str, rtype: RecordType) -> Vec<SeenQuery> {
        let owner = name(owner);
        self.queries()
            .into_iter()
            .filter(|q| q.rtype == rtype && q.name.to_lowercase() == owner.to_lowercase())
            .collect()
    }

    /// Changes the table while serving (a record that appears, a zone that
    /// turns bogus).
    pub fn update(&self, change: impl FnOnce(&mut World)) {
        change(&mut self.shared.world());
    }
}

impl Drop for ResolverDouble {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free port of 127.0.0.1.
pub(crate) fn bind_pair() -> (UdpSocket, TcpListener) {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind((LOOPBACK, 0)).expect("bind UDP on 127.0.0.1");
        let port = udp.local_addr().expect("UDP local address").port();
        match TcpListener::bind((LOOPBACK, port)) {
            Ok(tcp) => {
                udp.set_nonblocking(true).expect("non-blocking UDP");
                tcp.set_nonblocking(true).expect("non-blocking TCP");
                return (udp, tcp);
            }
            Err(e) => last_error = Some(e),
        }
    }
    panic!("no port of 127.0.0.1 free for both UDP and TCP: {last_error:?}");
}

fn serve(
    shared: Arc<Shared>,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("resolver double runtime");
    runtime.block_on(async move {
        let udp = tokio::net::UdpSocket::from_std(udp).expect("tokio UDP socket");
        let tcp = tokio::net::TcpListener::from_std(tcp).expect("tokio TCP listener");
        let udp_shared = shared.clone();
        let udp_task = async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let Ok((len, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                if let Some(reply) = respond(&udp_shared, &buf[..len], Transport::Udp) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        };
        let tcp_task = async move {
            loop {
                let Ok((stream, _)) = tcp.accept().await else {
                    continue;
                };
                tokio::spawn(serve_tcp(shared.clone(), stream));
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = udp_task => {}
            _ = tcp_task => {}
        }
    });
    runtime.shutdown_background();
}

/// RFC 1035 4.2.2 (and RFC 7766 6.2.1: several queries per connection).
async fn serve_tcp(shared: Arc<Shared>, mut stream: tokio::net::TcpStream) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut request)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(reply) = respond(&shared, &request, Transport::Tcp) else {
            continue;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
