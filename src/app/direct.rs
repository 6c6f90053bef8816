//! Wiring for direct delivery: the resolver and the MTA-STS source the
//! request asks for, then the plan and its walk.

use std::time::Duration;

use super::Stop;
use crate::config::DnssecMethod;
use crate::deliver::{self, Job, TlsClients};
use crate::dns::{AdTrust, ResolvConf, Resolve, StubResolver, ValidatingResolver};
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
    /// Asynchronous because a DS trust anchor is checked against the keys
    /// the resolver serves before anything is sent.
    pub async fn new(request: &'a DirectRequest) -> Result<Wiring<'a>, Stop> {
        let resolver = resolver(request).await?;
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

async fn resolver(request: &DirectRequest) -> Result<Box<dyn Resolve>, Stop> {
    let limit: Duration = request.lookup_timeout;
    let trust = match request.dnssec {
        DnssecMethod::Validate => {
            let servers = match request.resolver {
                Some(server) => vec![server],
                None => system_servers()?,
            };
            let validating =
                ValidatingResolver::new(servers, request.trust_anchor.as_deref(), limit)
                    .await
                    .map_err(|e| {
                        let exit = if e.is_temporary() {
                            Sysexit::TempFail
                        } else {
                            Sysexit::Config
                        };
                        Stop::new(exit, e.to_string())
                    })?;
            return Ok(Box::new(validating));
        }
        DnssecMethod::Off => Some(AdTrust::Untrusted),
        DnssecMethod::TrustResolver => Some(AdTrust::Configured),
        DnssecMethod::Auto => None,
    };
    let stub = match (request.resolver, trust) {
        (Some(server), trust) => StubResolver::new(vec![server], trust, limit),
        (None, Some(trust)) => StubResolver::new(system_servers()?, Some(trust), limit),
        (None, None) => StubResolver::from_resolv_conf(&resolv_conf()?, limit),
    };
    Ok(Box::new(stub))
}

fn resolv_conf() -> Result<ResolvConf, Stop> {
    ResolvConf::load(std::path::Path::new(RESOLV_CONF)).map_err(|e| {
        Stop::new(
            Sysexit::Config,
            format!(
                "cannot read {RESOLV_CONF} ({e}); name a resolver with resolver = \"ADDRESS\" in \
                 the [direct] table"
            ),
        )
    })
}

/// The nameservers of resolv.conf, on port 53.
fn system_servers() -> Result<Vec<std::net::SocketAddr>, Stop> {
    Ok(resolv_conf()?
        .nameservers
        .iter()
        .map(|ip| std::net::SocketAddr::new(*ip, 53))
        .collect())
}
