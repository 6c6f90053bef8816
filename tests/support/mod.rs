//! Shared test harness: certificates, an SMTP server that records what it
//! receives, and a runner for the tlsend binary.
#![allow(dead_code)]
