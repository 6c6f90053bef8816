//! Stopping cleanly when told to (FAIL7). Once the message has been read,
//! SIGTERM, SIGINT and SIGHUP no longer kill tlsend on the spot: they end
//! the delivery in progress (the connection is dropped, so a server that
//! has not seen the final dot discards the message) and the caller saves
//! what was not delivered before exiting 75.
//!
//! A signal that was ignored when tlsend started (`nohup`, or a shell's
//! background job) stays ignored: the caller asked for that.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals being watched. Made inside a tokio runtime; from then on
/// these signals are delivered here instead of ending the process.
pub struct Interrupts {
    watched: Vec<(Signal, &'static str)>,
}

impl Interrupts {
    /// Watches SIGTERM, SIGINT and SIGHUP, leaving alone those this process
    /// started with ignored. Must be called within a tokio runtime.
    pub fn watch() -> io::Result<Interrupts> {
        let ignored = ignored_signals();
        let mut watched = Vec::new();
        for (kind, number, name) in [
            (SignalKind::terminate(), 15, "SIGTERM"),
            (SignalKind::interrupt(), 2, "SIGINT"),
            (SignalKind::hangup(), 1, "SIGHUP"),
        ] {
            if ignored & (1 << (number - 1)) == 0 {
                watched.push((signal(kind)?, name));
            }
        }
        Ok(Interrupts { watched })
    }

    /// Runs `work` to its end, unless a watched signal comes first: then
    /// the signal's name, and `work` is left where it stood (the caller
    /// may drop it or go on awaiting it).
    pub async fn unless_interrupted<F: std::future::Future>(
        &mut self,
        work: F,
    ) -> Result<F::Output, &'static str> {
        tokio::select! {
            biased;
            name = self.received() => Err(name),
            output = work => Ok(output),
        }
    }

    /// Waits for the first watched signal and returns its name; never
    /// returns when none is watched.
    pub async fn received(&mut self) -> &'static str {
        std::future::poll_fn(|cx| {
            for (signal, name) in &mut self.watched {
                if signal.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// The signals set to "ignore" in this process, as a bit mask (bit n-1 for
/// signal n), read from Linux's /proc; none where that cannot be read.
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_sig_ign(&status))
        .unwrap_or(0)
}

fn parse_sig_ign(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ignored_mask_from_proc_status() {
        let status =
            "Name:\ttlsend\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000001\nSigCgt:\t0\n";
        assert_eq!(parse_sig_ign(status), Some(1));
        assert_eq!(parse_sig_ign("Name: x\n"), None);
    }
}
