//! The TOML configuration (`config::parse`, via `parse_with` so that the
//! environment is fixed), and account selection on the result.
//!
//! Payload: the file's bytes, read through a reader that returns them in
//! the pieces the control bytes choose.
//!
//! Checks: the result does not depend on the read sizes; an accepted
//! configuration keeps the promises the rest of tlsend relies on (account
//! names unique and non-empty, timeouts from 1 s to a day, no port 0, no
//! user without TLS, a password source only with a user, no inline
//! password, default_account names an account), and `select` finds each
//! account by name and by its own `from`; an error's line and column are
//! inside the file.

#![no_main]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tlsend::config::{self, Config, ConfigError, TlsStart};
use tlsend_fuzz::{ChunkedReader, split_controls};

fn env(key: &str) -> Option<OsString> {
    (key == "HOME").then(|| OsString::from("/home/fuzz"))
}

fn parse(payload: &[u8], read_sizes: &[u8]) -> Result<Config, ConfigError> {
    config::parse_with(
        ChunkedReader::new(payload, read_sizes),
        Path::new("/fuzz/config.toml"),
        &env,
    )
}

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let result = parse(payload, &[]);
    assert_eq!(
        result,
        parse(payload, controls),
        "depends on the read sizes"
    );

    let config = match result {
        Ok(config) => config,
        Err(e) => {
            let text = String::from_utf8_lossy(payload);
            if let Some((line, col)) = e.position {
                assert!(line >= 1 && col >= 1);
                assert!(line <= text.lines().count().max(1) + 1, "line {line}");
            }
            assert!(!e.message.is_empty());
            let _ = e.to_string();
            return;
        }
    };

    let day = Duration::from_secs(86_400);
    let mut names = Vec::new();
    for account in config.accounts() {
        assert!(!account.name.is_empty());
        assert!(!names.contains(&&account.name), "{} twice", account.name);
        names.push(&account.name);
        for t in [
            account.connect_timeout,
            account.timeout,
            account.data_timeout,
        ] {
            assert!(t >= Duration::from_secs(1) && t <= day, "{t:?}");
        }
        assert_ne!(account.port, Some(0));
        if account.user.is_some() {
            assert_ne!(account.tls, TlsStart::None, "AUTH without TLS");
        }
        if account.password.is_some() {
            assert!(account.user.is_some());
        }
        assert!(account.ca_file.is_none() || account.fingerprint.is_none());

        let by_name = config.select(Some(&account.name), None).unwrap();
        assert_eq!(by_name.map(|a| &a.name), Some(&account.name));
        if let Some(from) = &account.from {
            // Some account (this one or an earlier one) matches its own from.
            let found = config.select(None, Some(from)).unwrap();
            assert!(found.is_some(), "from {from:?} matches no account");
        }
    }
    if let Some(default) = &config.default_account {
        assert!(names.contains(&default));
    }
    let _ = config.select(None, None).unwrap();
    let _ = config.select(None, Some("alice@example.org")).unwrap();
    assert!(config.select(Some("no such account\0"), None).is_err());
});
