//! MTA-STS as routing consults it: the `_mta-sts` TXT record and the
//! policy host's addresses come from tlsend's own resolver (the one whose
//! answers route judges), the policy from the `mtasts` module's fetch and
//! cache. A policy in mode `none` is no policy (RFC 8461 5, MX2).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::SystemTime;

use super::{StsFinding, StsPolicy, StsSource};
use crate::dns::{self, LookupError, Resolve};
use crate::mtasts::{
    self, Cache, FetchOptions, HttpsFetch, PolicyMode, Reason, ResolveHost, TxtAnswer,
};

/// MTA-STS through `resolver`, cached in `cache`.
pub struct MtaSts<'a> {
    resolver: &'a dyn Resolve,
    cache: Cache,
    options: FetchOptions,
}

impl<'a> MtaSts<'a> {
    pub fn new(resolver: &'a dyn Resolve, cache: Cache, options: FetchOptions) -> MtaSts<'a> {
        MtaSts {
            resolver,
            cache,
            options,
        }
    }

    async fn find(&self, domain: &str) -> StsFinding {
        let txt = match dns::parse_name(&format!("_mta-sts.{domain}")) {
            Err(e) => TxtAnswer::LookupFailed(e.to_string()),
            Ok(name) => match dns::txt(self.resolver, &name).await {
                Ok(answer) if answer.records.is_empty() => TxtAnswer::NoRecord,
                Ok(answer) => {
                    TxtAnswer::Found(answer.records.into_iter().map(String::into_bytes).collect())
                }
                Err(LookupError::NxDomain { .. }) => TxtAnswer::NoRecord,
                Err(e) => TxtAnswer::LookupFailed(e.to_string()),
            },
        };
        let fetch = HttpsFetch {
            resolver: Hosts(self.resolver),
            options: self.options.clone(),
        };
        let applied = mtasts::policy_for(domain, txt, &fetch, &self.cache, SystemTime::now()).await;
        let mut origin = applied.to_string();
        for warning in &applied.warnings {
            origin.push_str(&format!("; {warning}"));
        }
        match applied.policy {
            Some((policy, id)) if policy.mode != PolicyMode::None => {
                StsFinding::Policy(StsPolicy { policy, id, origin })
            }
            Some(_) => StsFinding::NoPolicy(origin),
            // Whether a policy is in force is unknown for now: the record
            // could not be looked up, or a due fetch failed.
            None if matches!(
                applied.reason,
                Reason::LookupFailed(_) | Reason::FetchFailed { .. } | Reason::BackingOff { .. }
            ) =>
            {
                StsFinding::Unavailable(origin)
            }
            None => StsFinding::NoPolicy(origin),
        }
    }
}

impl StsSource for MtaSts<'_> {
    fn policy<'a>(
        &'a self,
        domain: &'a str,
    ) -> Pin<Box<dyn Future<Output = StsFinding> + Send + 'a>> {
        Box::pin(self.find(domain))
    }
}

/// The policy host's addresses, from the same resolver.
struct Hosts<'a>(&'a dyn Resolve);

impl ResolveHost for Hosts<'_> {
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let name = dns::parse_name(host).map_err(|e| e.to_string())?;
        match dns::addresses(self.0, &name).await {
            Ok(answer) if answer.records.is_empty() => Err(format!("{host} has no address")),
            Ok(answer) => Ok(answer.records),
            Err(e) => Err(e.to_string()),
        }
    }
}
