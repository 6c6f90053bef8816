//! The single integration-test binary (one link, shared helpers).
//! Tests are named after the requirement they prove; see `// covers:` lines.

mod support;

mod check;
mod cli;
mod dnsworld;
mod hardening;
mod install;
mod interop;
mod local;
mod log;
mod mx;
mod postfix;
mod queue;
mod serve;
mod submission;
mod validate;
