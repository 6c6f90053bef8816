//! Authoritative, DNSSEC-signed test zones served by hickory-server in the
//! test process (MX8, MX9).
//!
//! The world is a test root `.` (always signed; its key is the trust
//! anchor) and the child zones a test declares, each Secure (signed, with a
//! DS in its parent), Insecure (unsigned, no DS: the parent's NSEC proves
//! there is none) or Bogus (signed, but the parent's DS is the digest of
//! another key, so no chain of trust reaches it). Zones may nest; a zone's
//! parent is the nearest declared zone above it. Keys are ECDSA P-256
//! (algorithm 13), one per zone (a combined signing key with the SEP flag),
//! generated and used at start; negative answers are proven with NSEC.
//!
//! Every zone is served from one address and port. A server that is
//! authoritative for a parent and a child must answer the DS query for the
//! child from the parent (RFC 4035 3.1.4.1), which hickory's `Catalog` does
//! not do (it picks the deepest zone), so a small router in front of one
//! catalog per zone does: a DS query at a zone apex goes to the parent's
//! zone, everything else to the deepest zone that contains the name. A
//! resolver sees authoritative answers from each zone and never needs a
//! referral: unbound is given one stub zone per zone, all at this address
//! (see [`super::Unbound`]); hickory's validating client sends all its
//! queries (DS and DNSKEY included) straight here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::runtime::{Time, TokioRuntimeProvider};
use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, SigningKey, TrustAnchors};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

use super::double::bind_pair;
use super::{Records, Security, name};

const TTL: u32 = 300;
const ALGORITHM: Algorithm = Algorithm::ECDSAP256SHA256;
/// How long the signatures made at start are valid.
const SIGNATURES_VALID: Duration = Duration::from_secs(7 * 24 * 3600);

/// The zones to sign and serve, and their records.
///
/// ```ignore
/// let mut zones = ZoneSet::new();
/// zones
///     .zone("example", Security::Secure)
///     .zone("plain", Security::Insecure)
///     .zone("broken", Security::Bogus);
/// zones.mx("example", 10, "mx.example").a("mx.example", "127.0.0.1");
/// let signed = SignedZones::start(zones);
/// ```
#[derive(Clone, Debug)]
pub struct ZoneSet {
    /// Apex → security; always holds the root, Secure.
    zones: BTreeMap<Name, Security>,
    records: Vec<(Name, RData)>,
}

impl Default for ZoneSet {
    fn default() -> Self {
        ZoneSet::new()
    }
}

impl ZoneSet {
    /// The signed root alone.
    pub fn new() -> ZoneSet {
        ZoneSet {
            zones: BTreeMap::from([(Name::root(), Security::Secure)]),
            records: Vec::new(),
        }
    }

    /// Declares a zone below the root, delegated from the nearest zone
    /// above it.
    pub fn zone(&mut self, apex: &str, security: Security) -> &mut ZoneSet {
        let apex = name(apex).to_lowercase();
        assert!(!apex.is_root(), "the root is always there, and signed");
        self.zones.insert(apex, security);
        self
    }

    /// The deepest zone that contains `owner`.
    fn zone_of(&self, owner: &Name) -> &Name {
        self.zones
            .keys()
            .filter(|apex| apex.zone_of(owner))
            .max_by_key(|apex| apex.num_labels())
            .expect("the root contains every name")
    }

    /// The zone a delegation to `apex` is made from.
    fn parent_of(&self, apex: &Name) -> &Name {
        self.zone_of(&apex.base_name())
    }
}

impl Records for ZoneSet {
    type Added<'a> = &'a mut ZoneSet;

    /// The record goes into the deepest declared zone that contains its
    /// owner; zones may be declared before or after.
    fn record(&mut self, owner: &str, data: RData) -> &mut ZoneSet {
        self.records.push((name(owner).to_lowercase(), data));
        self
    }
}

/// A zone's signing key: the private key for hickory's signer, and its
/// DNSKEY (flags 257) for DS records and the trust anchor.
struct ZoneKey {
    pkcs8: Vec<u8>,
    dnskey: DNSKEY,
}

impl ZoneKey {
    fn generate() -> ZoneKey {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(ALGORITHM).expect("generate a P-256 key");
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, ALGORITHM).expect("load the P-256 key");
        let public = key.to_public_key().expect("the public key");
        ZoneKey {
            pkcs8: pkcs8.secret_pkcs8_der().to_vec(),
            dnskey: DNSKEY::from_key(&public),
        }
    }

    fn signer(&self, apex: &Name) -> DnssecSigner {
        let pkcs8 = self.pkcs8.clone().into();
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, ALGORITHM).expect("load the P-256 key");
        DnssecSigner::new(
            self.dnskey.clone(),
            Box::new(key),
            apex.clone(),
            SIGNATURES_VALID,
        )
    }

    /// The DS (SHA-256 digest, RFC 4509) for this key at `apex`.
    fn ds(&self, apex: &Name) -> DS {
        let public = self.dnskey.public_key();
        DS::from_key(public, apex, DigestType::SHA256).expect("a DS for the key")
    }
}

/// Signed zones served on 127.0.0.1 (UDP and TCP, one port); stopped when
/// dropped.
pub struct SignedZones {
    addr: SocketAddr,
    zones: Vec<(Name, Security)>,
    root_dnskey: DNSKEY,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The trust anchor files.
    dir: tempfile::TempDir,
}

impl SignedZones {
    /// Generates the keys, builds and signs every zone, writes the trust
    /// anchor, and serves the zones from a thread of its own.
    pub fn start(set: ZoneSet) -> SignedZones {
        let keys: BTreeMap<Name, ZoneKey> = set
            .zones
            .iter()
            .filter(|(_, security)| **security != Security::Insecure)
            .map(|(apex, _)| (apex.clone(), ZoneKey::generate()))
            .collect();
        let mut catalogs = Vec::new();
        for (apex, security) in &set.zones {
            let handler = build_zone(&set, apex, *security, &keys);
            let mut catalog = Catalog::new();
            catalog.upsert(LowerName::new(apex), vec![Arc::new(handler)]);
            catalogs.push((apex.clone(), catalog));
        }
        // Deepest first, so the first zone that contains a name is the one.
        catalogs.sort_by_key(|(apex, _)| std::cmp::Reverse(apex.num_labels()));
        let router = Router { catalogs };

        let root_dnskey = keys[&Name::root()].dnskey.clone();
        let dir = tempfile::Builder::new()
            .prefix("tlsend-zones-")
            .tempdir()
            .expect("a directory for the trust anchor");
        std::fs::write(
            dir.path().join("root.key"),
            format!(". {TTL} IN DNSKEY {root_dnskey}\n"),
        )
        .expect("write the trust anchor (DNSKEY)");
        let root_ds = keys[&Name::root()].ds(&Name::root());
        std::fs::write(
            dir.path().join("root.ds"),
            format!(". {TTL} IN DS {root_ds}\n"),
        )
        .expect("write the trust anchor (DS)");

        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("UDP local address");
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("dns-zones-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("signed zones runtime");
                runtime.block_on(async move {
                    let mut server = Server::new(router);
                    server.register_socket(
                        tokio::net::UdpSocket::from_std(udp).expect("tokio UDP socket"),
                    );
                    server.register_listener(
                        tokio::net::TcpListener::from_std(tcp).expect("tokio TCP listener"),
                        Duration::from_secs(30),
                        64,
                    );
                    let _ = shutdown_rx.await;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), server.shutdown_gracefully())
                            .await;
                });
                runtime.shutdown_background();
            })
            .expect("spawn the signed zones' thread");
        SignedZones {
            addr,
            zones: set.zones.into_iter().collect(),
            root_dnskey,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            dir,
        }
    }

    /// Where the zones are served (127.0.0.1, UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The root's key as a trust-anchor file: one DNSKEY line in
    /// presentation format (`. 300 IN DNSKEY 257 3 13 …`), which unbound's
    /// `trust-anchor-file:` and hickory's `TrustAnchors::from_file` read.
    pub fn trust_anchor(&self) -> PathBuf {
        self.dir.path().join("root.key")
    }

    /// The same anchor as a DS line (`. 300 IN DS tag 13 2 HEX`), for
    /// software that wants DS anchors (hickory reads only DNSKEY).
    pub fn trust_anchor_ds(&self) -> PathBuf {
        self.dir.path().join("root.ds")
    }

    /// The root's key as hickory's in-process trust anchor set.
    pub fn trust_anchors(&self) -> TrustAnchors {
        let mut anchors = TrustAnchors::empty();
        anchors.insert(self.root_dnskey.public_key());
        anchors
    }

    /// Every zone, root first, with its security.
    pub fn zones(&self) -> &[(Name, Security)] {
        &self.zones
    }

    /// The directory of the trust anchor files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SignedZones {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One zone: SOA, NS (`ns.<apex>`, with its A record 127.0.0.1), the test's
/// records, a delegation (NS, and DS unless the child is Insecure) for each
/// child zone; signed with NSEC unless the zone is Insecure.
fn build_zone(
    set: &ZoneSet,
    apex: &Name,
    security: Security,
    keys: &BTreeMap<Name, ZoneKey>,
) -> InMemoryZoneHandler<TokioRuntimeProvider> {
    let signed = security != Security::Insecure;
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        apex.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
        signed.then_some(NxProofKind::Nsec),
    );
    let host = |apex: &Name, label: &str| {
        apex.prepend_label(label)
            .expect("a label fits before the zone apex")
    };
    let mut add = |owner: &Name, data: RData| {
        let record = Record::from_rdata(owner.clone(), TTL, data);
        assert!(
            zone.upsert_mut(record, 1),
            "{owner} {apex}: record refused (a CNAME beside other data?)"
        );
    };
    let soa = SOA::new(
        host(apex, "ns"),
        host(apex, "hostmaster"),
        1,
        3600,
        600,
        86400,
        TTL,
    );
    add(apex, RData::SOA(soa));
    add(apex, RData::NS(NS(host(apex, "ns"))));
    add(
        &host(apex, "ns"),
        RData::A(A(std::net::Ipv4Addr::LOCALHOST)),
    );
    for (owner, data) in &set.records {
        if set.zone_of(owner) == apex {
            add(owner, data.clone());
        }
    }
    for (child, child_security) in &set.zones {
        if child.is_root() || set.parent_of(child) != apex {
            continue;
        }
        add(child, RData::NS(NS(host(child, "ns"))));
        let ds = match child_security {
            Security::Secure => Some(keys[child].ds(child)),
            // The digest of a key the child does not have: the DS set
            // exists, so the child must be signed, and nothing matches.
            Security::Bogus => Some(ZoneKey::generate().ds(child)),
            Security::Insecure => None,
        };
        if let Some(ds) = ds {
            add(child, RData::DNSSEC(DNSSECRData::DS(ds)));
        }
    }
    if signed {
        zone.add_zone_signing_key_mut(keys[apex].signer(apex))
            .expect("add the zone's key");
        zone.secure_zone_mut().expect("sign the zone");
    }
    zone
}

/// Sends each query to the right zone of one server (see the module doc).
struct Router {
    /// Deepest zone first.
    catalogs: Vec<(Name, Catalog)>,
}

impl Router {
    fn catalog(&self, qname: &Name, qtype: RecordType) -> &Catalog {
        // RFC 4035 3.1.4.1: the DS at a delegation is the parent's data.
        let lookup = if qtype == RecordType::DS && !qname.is_root() {
            qname.base_name()
        } else {
            qname.clone()
        };
        self.catalogs
            .iter()
            .find(|(apex, _)| apex.zone_of(&lookup))
            .map(|(_, catalog)| catalog)
            .expect("the root zone contains every name")
    }
}

/// `RequestHandler` is an `async_trait` trait; this is the signature the
/// macro gives it, written out so that the tests need no macro crate.
impl RequestHandler for Router {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let catalog = match request.request_info() {
                Ok(info) => {
                    let qname = Name::from(info.query.name());
                    self.catalog(&qname, info.query.query_type())
                }
                // Not one question: the root's catalog answers FORMERR.
                Err(_) => &self.catalogs.last().expect("the root zone").1,
            };
            catalog
                .handle_request::<R, T>(request, response_handle)
                .await
        })
    }
}
