//! Wiring for direct delivery: the resolver and the MTA-STS source the
//! request asks for, then the plan and its walk.

use std::time::Duration;

use super::Stop;
use crate::config::DnssecMethod;
use crate::deliver::{self, Job, TlsClients};
use crate::dns::{AdTrust, ResolvConf, Resolve, StubResolver};
use crate::exit::Sysexit;
use crate::mtasts::{Cache, FetchOptions};
use crate::outcome::Outcome;
use crate::request::DirectRequest;
use crate::route::{self, MtaSts};
use crate::smtp::Transcript;

/// Where the system's resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Everything direct delivery needs, built before any lookup.
pub(super) struct Wiring<'a> {
    pub resolver: Box<dyn Resolve>,
    /// Where MTA-STS policies are cached.
    sts_cache: std::path::PathBuf,
    /// A private cache for this run when no cache directory is known (no
    /// home directory): removed when the run ends.
    _sts_scratch: Option<tempfile::TempDir>,
    clients: TlsClients,
    request: &'a DirectRequest,
}

impl<'a> Wiring<'a> {
    pub fn new(request: &'a DirectRequest) -> Result<Wiring<'a>, Stop> {
        let resolver = resolver(request)?;
        let clients = TlsClients::new().map_err(|e| Stop::new(Sysexit::Config, e.to_string()))?;
        let (sts_cache, scratch) = match &request.mta_sts_cache {
            Some(dir) => (dir.clone(), None),
            None => {
                let scratch = tempfile::Builder::new()
                    .prefix("tlsend-mta-sts-")
                    .tempdir()
                    .map_err(|e| {
                        Stop::new(
                            Sysexit::IoErr,
                            format!("cannot make a directory for MTA-STS policies: {e}"),
                        )
                    })?;
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        Ok(Wiring {
            resolver,
            sts_cache,
            _sts_scratch: scratch,
            clients,
            request,
        })
    }

    /// Plans the route, says it with -v, and walks it.
    pub async fn deliver(&self, job: Job<'_>, transcript: &Transcript) -> Outcome {
        let sts = MtaSts::new(
            self.resolver.as_ref(),
            Cache::new(&self.sts_cache),
            FetchOptions {
                port: self.request.mta_sts_port,
                ..FetchOptions::default()
            },
        );
        let plan = route::plan(
            &job.envelope.recipients,
            job.mode,
            self.request.port,
            self.resolver.as_ref(),
            &sts,
        )
        .await;
        for line in plan.to_string().lines() {
            transcript.note(&format!("plan: {line}"));
        }
        deliver::direct(
            &plan,
            &self.request.settings,
            &self.clients,
            job,
            transcript,
        )
        .await
    }
}

fn resolver(request: &DirectRequest) -> Result<Box<dyn Resolve>, Stop> {
    let limit: Duration = request.lookup_timeout;
    let trust = match request.dnssec {
        DnssecMethod::Validate => {
            return Err(Stop::new(
                Sysexit::Config,
                "dnssec = \"validate\" (local DNSSEC validation) is not available yet; use a \
                 validating resolver on loopback (dnssec = \"auto\")",
            ));
        }
        DnssecMethod::Off => Some(AdTrust::Untrusted),
        DnssecMethod::TrustResolver => Some(AdTrust::Configured),
        DnssecMethod::Auto => None,
    };
    let stub = match request.resolver {
        Some(server) => StubResolver::new(vec![server], trust, limit),
        None => {
            let conf = ResolvConf::load(std::path::Path::new(RESOLV_CONF)).map_err(|e| {
                Stop::new(
                    Sysexit::Config,
                    format!(
                        "cannot read {RESOLV_CONF} ({e}); name a resolver with resolver = \
                         \"ADDRESS\" in the [direct] table"
                    ),
                )
            })?;
            match trust {
                Some(trust) => {
                    let servers = conf
                        .nameservers
                        .iter()
                        .map(|ip| std::net::SocketAddr::new(*ip, 53))
                        .collect();
                    StubResolver::new(servers, Some(trust), limit)
                }
                None => StubResolver::from_resolv_conf(&conf, limit),
            }
        }
    };
    Ok(Box::new(stub))
}
