//! Fault injection for the tests: in debug builds, `TLSEND_FAULT=<point>`
//! in the environment makes tlsend panic at the named point, so that the
//! tests can prove a panic loses no message (FAIL7). Release builds
//! compile every point to nothing.

/// Panics here when this debug build is told to.
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("TLSEND_FAULT").is_some_and(|v| v == name) {
        panic!("fault injected at {name} (TLSEND_FAULT)");
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
