//! tlsend: a sendmail-compatible message submission client that sends only
//! over verified TLS when the sender asks for it (RFC 8689 REQUIRETLS).
//!
//! Data flows one way through the modules:
//! input ([`message`]) -> decision ([`policy`]) -> route ([`route`]) ->
//! session ([`smtp`] over [`tls`]) -> outcome ([`outcome`], [`exit`]).
//! The lower layers (`smtp`, `tls`) never import `cli` or `config`.

pub mod address;
pub mod aliases;
pub mod app;
pub mod cli;
pub mod config;
pub mod deadletter;
pub mod deliver;
pub mod dns;
pub mod dsn;
pub mod exit;
pub mod fault;
pub mod interrupt;
pub mod local;
pub mod log;
pub mod message;
pub mod mtasts;
pub mod outcome;
pub mod policy;
pub mod queue;
pub mod request;
pub mod route;
pub mod smtp;
pub mod smtpd;
pub mod status;
pub mod text;
pub mod tls;
pub mod user;
