//! Wiring for submission: the TLS client for the server's trust and the
//! secret for AUTH, fetched where a signal can stop it.

use super::{Halt, Stop};
use crate::config;
use crate::deliver::{self, Job, Security, Submission};
use crate::exit::Sysexit;
use crate::interrupt::Interrupts;
use crate::outcome::Outcome;
use crate::request::Login;
use crate::smtp::{Credentials, Transcript};
use crate::tls::{TlsClient, Trust};

/// A submission server with its TLS client and credentials.
pub(super) struct Ready {
    submission: Submission,
    tls: Option<TlsClient>,
}

impl Ready {
    pub fn new(
        runtime: &tokio::runtime::Runtime,
        interrupts: &mut Interrupts,
        submission: &Submission,
        trust: &Option<Trust>,
        login: &Option<Login>,
    ) -> Result<Ready, Halt> {
        let tls = match (trust, submission.security) {
            (Some(trust), Security::StartTls | Security::Implicit) => Some(
                TlsClient::new(trust.clone())
                    .map_err(|e| Halt::Stop(Stop::new(Sysexit::Config, e.to_string())))?,
            ),
            _ => None,
        };
        let mut submission = submission.clone();
        if let Some(login) = login {
            let secret = fetch_secret(runtime, interrupts, &login.secret)?;
            submission.credentials = Some((
                Credentials::new(login.user.clone(), secret.expose()),
                login.choice,
            ));
        }
        Ok(Ready { submission, tls })
    }

    pub async fn deliver(&self, job: Job<'_>, transcript: &Transcript) -> Outcome {
        deliver::submit(&self.submission, self.tls.as_ref(), job, transcript).await
    }

    /// Several messages on one connection (a queue run).
    pub async fn deliver_batch(&self, jobs: &[Job<'_>], transcript: &Transcript) -> Vec<Outcome> {
        deliver::submit_batch(&self.submission, self.tls.as_ref(), jobs, transcript).await
    }
}

/// The secret. A password command may take its time (or hang on a
/// prompt): it runs on a thread of its own so that a signal still stops
/// the run, and it is ended with its process group when one does.
fn fetch_secret(
    runtime: &tokio::runtime::Runtime,
    interrupts: &mut Interrupts,
    source: &config::SecretSource,
) -> Result<config::Secret, Halt> {
    let running = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let fetch = runtime.spawn_blocking({
        let (source, running) = (source.clone(), running.clone());
        move || source.fetch_watched(&running)
    });
    match runtime.block_on(interrupts.unless_interrupted(fetch)) {
        Err(name) => {
            let pid = running.load(std::sync::atomic::Ordering::SeqCst);
            if let Some(group) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
            }
            Err(Halt::Signal(name))
        }
        Ok(Ok(Ok(secret))) => Ok(secret),
        Ok(Ok(Err(e))) => {
            // The Ctrl-C that reached tlsend reached the command too: then
            // the signal is the news, not the command's failure.
            // The timer is made inside the runtime: outside it, tokio
            // panics (no reactor), which made every failing password
            // source an internal error.
            let late = runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(200), interrupts.received())
                    .await
            });
            match late {
                Ok(name) => Err(Halt::Signal(name)),
                Err(_) => Err(Halt::Stop(Stop::new(Sysexit::Config, e.to_string()))),
            }
        }
        Ok(Err(e)) => Err(Halt::Stop(Stop::new(
            Sysexit::Software,
            format!("fetching the password failed: {e}"),
        ))),
    }
}
