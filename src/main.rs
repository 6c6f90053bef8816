//! The tlsend binary: everything happens in `tlsend::app::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let status = tlsend::app::run(std::env::args_os().collect());
    ExitCode::from(status.code())
}
