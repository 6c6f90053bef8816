//! The on-disk queue (FAIL3): messages that could not be delivered yet,
//! kept until they are, or until they expire and their sender is told.
//!
//! It owns the entry format ([`entry`]), the files and their crash safety
//! ([`store`]), the scheduling rules (backoff, expiry, the delay warning)
//! and the `-bp` listing ([`listing`]). It decides no route and sends
//! nothing: the runner in `app` delivers what the queue says is due and
//! tells the queue what each server answered.
//!
//! A system queue works without a setuid binary, the way Postfix's
//! maildrop does: every local user may drop a file into `maildrop/`, which
//! nobody but the runner can list or read; the runner (root or a service
//! account, `tlsend -q`) takes the files into `queue/`, which is its own.
//! Without a system queue, a user's own queue under
//! `$XDG_STATE_HOME/tlsend` serves that user.

pub mod entry;
pub mod listing;
pub mod store;

use std::ffi::OsString;
use std::path::PathBuf;

pub use entry::{Entry, EntryError, Recipient, State};
pub use store::{Listed, Locked, MessageFile, Queue, Rejected};

/// Where the system queue lives unless the configuration says otherwise.
pub const SYSTEM_ROOT: &str = "/var/spool/tlsend";

/// A new entry's name: 20 hexadecimal digits, the first 8 from the time
/// so that names sort roughly by age, the rest random.
pub fn new_id(now: i64) -> std::io::Result<String> {
    let mut random = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| std::io::Error::other("the system's random number generator failed"))?;
    let mut id = format!("{:08X}", (now as u64) & 0xFFFF_FFFF);
    for b in random {
        id.push_str(&format!("{b:02X}"));
    }
    Ok(id)
}

/// The user's own queue: `$XDG_STATE_HOME/tlsend` (`~/.local/state/tlsend`
/// when unset or not absolute, as the XDG Base Directory spec says).
pub fn user_root(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    if let Some(state) = env("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        return Some(state.join("tlsend"));
    }
    let home = crate::user::home_dir(env)?;
    Some(home.join(".local/state/tlsend"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_valid_names() {
        let a = new_id(0x1000).unwrap();
        let b = new_id(0x2000).unwrap();
        assert_eq!(a.len(), 20);
        assert!(a < b);
        assert!(entry::valid_id(&a));
        assert_ne!(new_id(0x1000).unwrap(), a);
    }

    #[test]
    fn the_user_queue_follows_xdg_state_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            user_root(&env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")])),
            Some(PathBuf::from("/s/tlsend"))
        );
        assert_eq!(
            user_root(&env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/state/tlsend"))
        );
    }
}
