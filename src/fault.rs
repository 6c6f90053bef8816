//! Fault injection for the tests, in debug builds only; release builds
//! compile every hook to nothing (or to the plain system clock).
//!
//! - `TLSEND_FAULT=<point>` makes tlsend panic at the named point, so that
//!   the tests can prove a panic loses no message (FAIL7).
//! - `TLSEND_PAUSE=<point>` makes tlsend say `tlsend: paused at <point>` on
//!   standard error and sleep there, so that a test can kill it with
//!   SIGKILL at exactly that step of the queue's file handling (FAIL3).
//! - `TLSEND_CLOCK_OFFSET=<seconds>` moves the queue's clock, so that
//!   backoff, expiry and delay warnings can be tested without waiting.

/// Panics here when this debug build is told to.
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("TLSEND_FAULT").is_some_and(|v| v == name) {
        panic!("fault injected at {name} (TLSEND_FAULT)");
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Stops here for a while when this debug build is told to.
pub fn pause(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("TLSEND_PAUSE").is_some_and(|v| v == name) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "tlsend: paused at {name}");
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// The time in Unix seconds, as the queue sees it.
pub fn now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    #[cfg(debug_assertions)]
    if let Some(offset) = std::env::var("TLSEND_CLOCK_OFFSET")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        return now.saturating_add(offset);
    }
    now
}
