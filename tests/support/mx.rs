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

/// Test SMTP servers for MX hosts, on one port of several addresses.
pub struct MxHosts {
    /// By listening address.
    servers: BTreeMap<IpAddr, TestServer>,
    pub port: u16,
}

impl MxHosts {
    /// Starts a server per `(address, behaviour)` on one free port.
    pub fn start(hosts: Vec<(&str, Behaviour)>) -> MxHosts {
        for _ in 0..20 {
            if let Some(servers) = try_start_all(&hosts) {
                let port = servers.values().next().map_or(0, |s| s.port);
                return MxHosts { servers, port };
            }
        }
        panic!("no port was free on every MX address");
    }

    pub fn server(&self, address: &str) -> &TestServer {
        let ip: IpAddr = address.parse().expect("an address");
        self.servers.get(&ip).expect("a server on that address")
    }
}

/// MX hosts and a resolver double that answers for them.
pub struct MxWorld {
    pub dns: ResolverDouble,
    pub hosts: MxHosts,
    pub port: u16,
}

impl MxWorld {
    /// Starts the hosts and a resolver double answering from `world`.
    pub fn start(world: World, hosts: Vec<(&str, Behaviour)>) -> MxWorld {
        let hosts = MxHosts::start(hosts);
        MxWorld {
            dns: ResolverDouble::start(world),
            port: hosts.port,
            hosts,
        }
    }

    pub fn server(&self, address: &str) -> &TestServer {
        self.hosts.server(address)
    }

    /// [`direct_tlsend`] with the double as resolver and the hosts' port.
    pub fn tlsend(&self) -> Tlsend {
        direct_tlsend(self.dns.addr(), self.port, "")
    }
}

/// tlsend with no submission server, `resolver` as its resolver, MX hosts
/// on `port`, the test CA as the system's roots, short timeouts, from
/// alice@example.org; `extra` is added to the `[direct]` table.
pub fn direct_tlsend(resolver: SocketAddr, port: u16, extra: &str) -> Tlsend {
    let base = format!(
        "resolver = \"{resolver}\"\nport = {port}\nlookup_timeout = 5\nconnect_timeout = 5\n\
         timeout = 5\ndata_timeout = 10\nehlo_name = \"client.example.org\"\n"
    );
    // A key in `extra` replaces the default one.
    let key = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let kept: String = base
        .lines()
        .filter(|line| !overridden.contains(&key(line)))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut t = Tlsend::new();
    t.config(&format!("[direct]\n{kept}{extra}"));
    t.env("SSL_CERT_FILE", pki().ca_file());
    t.args(["-f", "alice@example.org"]);
    t
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
