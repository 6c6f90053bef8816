//! A direct-delivery world on loopback: MX hosts (recording test SMTP
//! servers) sharing one port on several 127.0.0.x addresses, as tlsend's
//! `[direct] port` is one port for every host, a resolver double that
//! answers for them, and a tlsend runner configured to use both.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::certs::{MintOptions, Minted};
use super::dns::{ResolverDouble, World};
use super::{Behaviour, TestServer, Tlsend, pki};

/// A server for MX host `name`, presenting a certificate minted for it by
/// the trusted test CA (or as `options` say).
pub fn host(name: &str, options: MintOptions) -> (Behaviour, Minted) {
    let minted = pki().mint(&[name], options);
    let behaviour = Behaviour {
        tls_config: Some(minted.server_config()),
        ..Behaviour::default()
    };
    (behaviour, minted)
}

pub struct MxWorld {
    pub dns: ResolverDouble,
    /// By listening address.
    servers: BTreeMap<IpAddr, TestServer>,
    pub port: u16,
}

impl MxWorld {
    /// Starts a server per `(address, behaviour)` on one free port, and a
    /// resolver double answering from `world`.
    pub fn start(world: World, hosts: Vec<(&str, Behaviour)>) -> MxWorld {
        for _ in 0..20 {
            if let Some(servers) = try_start_all(&hosts) {
                let port = servers.values().next().map_or(0, |s| s.port);
                return MxWorld {
                    dns: ResolverDouble::start(world),
                    servers,
                    port,
                };
            }
        }
        panic!("no port was free on every MX address");
    }

    pub fn server(&self, address: &str) -> &TestServer {
        let ip: IpAddr = address.parse().expect("an address");
        self.servers.get(&ip).expect("a server on that address")
    }

    /// tlsend with no submission server, the double as its resolver, the
    /// hosts' port, the test CA as the system's roots, short timeouts.
    pub fn tlsend(&self) -> Tlsend {
        let mut t = Tlsend::new();
        t.config(&format!(
            "[direct]\nresolver = \"{}\"\nport = {}\nlookup_timeout = 5\nconnect_timeout = 5\n\
             timeout = 5\ndata_timeout = 10\nehlo_name = \"client.example.org\"\n",
            self.dns.addr(),
            self.port
        ));
        t.env("SSL_CERT_FILE", pki().ca_file());
        t.args(["-f", "alice@example.org"]);
        t
    }
}

fn try_start_all(hosts: &[(&str, Behaviour)]) -> Option<BTreeMap<IpAddr, TestServer>> {
    let mut servers = BTreeMap::new();
    let mut port = 0;
    for (address, behaviour) in hosts {
        let ip: IpAddr = address.parse().expect("an address");
        let behaviour = Behaviour {
            listen: Some(SocketAddr::new(ip, port)),
            ..behaviour.clone()
        };
        match TestServer::try_start(behaviour, pki()) {
            Ok(server) => {
                port = server.port;
                servers.insert(ip, server);
            }
            // The port the first host got is taken on another address.
            Err(_) => return None,
        }
    }
    Some(servers)
}
