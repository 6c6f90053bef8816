//! Shared test harness: certificates, an SMTP server that records what it
//! receives, a test DNS world (a resolver double, signed zones, unbound),
//! and a runner for the tlsend binary.
#![allow(dead_code)]

pub mod certs;
pub mod cmd;
pub mod dns;
pub mod https;
pub mod mx;
pub mod postfix;
pub mod smtp;

pub use certs::{CertKind, TestPki, pki};
pub use cmd::{Output, Tlsend, assert_exit};
pub use smtp::{
    Advertise, AuthConfig, Behaviour, Received, Replies, StartTls, Step, TestServer, Violation,
};
