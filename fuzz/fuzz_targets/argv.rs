//! The sendmail command line (`cli::parse_from`), Postfix's getopt rules
//! over the clap definition.
//!
//! Controls: byte 0 picks argv[0] ("sendmail", "mailq", "newaliases",
//! "tlsend"; bit 2 adds a directory, as in /usr/sbin/sendmail). Payload:
//! the arguments separated by NUL bytes (which argv cannot hold); bytes
//! that are not UTF-8 stay as they are.
//!
//! Checks: it returns and is deterministic; argv[0] picks the personality;
//! recipients are the operands, a suffix of argv in order; a mode other
//! than sending takes neither recipients nor -t; what reaches the MAIL
//! command without further checks (ENVID) is 1 to 100 printable ASCII
//! characters; ports and time limits are in range; the flags for require
//! and optional never both win.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use tlsend::cli::{self, Action, CliError, Personality};
use tlsend_fuzz::split_controls;

const NAMES: [&str; 4] = ["sendmail", "mailq", "newaliases", "tlsend"];

fuzz_target!(|data: &[u8]| {
    let (controls, payload) = split_controls(data);
    let control = controls.first().copied().unwrap_or(0);
    let name = NAMES[usize::from(control % 4)];
    let argv0 = if control & 4 != 0 {
        format!("/usr/sbin/{name}")
    } else {
        name.to_string()
    };
    let mut argv = vec![OsString::from(argv0)];
    if !payload.is_empty() {
        argv.extend(
            payload
                .split(|&b| b == 0)
                .map(|a| OsString::from_vec(a.to_vec())),
        );
    }

    let result = cli::parse_from(argv.clone());
    assert_eq!(result, cli::parse_from(argv.clone()), "not deterministic");
    let invocation = match result {
        Ok(invocation) => invocation,
        Err(CliError::Usage(text) | CliError::Help(text) | CliError::Version(text)) => {
            assert!(!text.is_empty());
            return;
        }
    };

    let expected = match name {
        "mailq" => Personality::Mailq,
        "newaliases" => Personality::Newaliases,
        _ => Personality::Sendmail,
    };
    assert_eq!(invocation.personality, expected);

    let args: Vec<String> = argv[1..]
        .iter()
        .map(|a| a.clone().into_string().expect("non-UTF-8 argv is refused"))
        .collect();
    let operands = &invocation.recipients;
    assert!(operands.len() <= args.len());
    assert_eq!(
        operands[..],
        args[args.len() - operands.len()..],
        "operands"
    );
    if invocation.action != Action::Send {
        assert!(operands.is_empty() && !invocation.extract_recipients);
    }
    if let Some(envid) = &invocation.envid {
        assert!(!envid.is_empty() && envid.len() <= 100);
        assert!(
            envid.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{envid:?}"
        );
    }
    assert_ne!(invocation.server.port, Some(0));
    if let Some(timeout) = invocation.server.timeout {
        assert!((1..=86_400).contains(&timeout));
    }
    if let Some((_, typed)) = &invocation.tls_mode {
        // The flag named in messages was typed: a long option as such, a
        // short one possibly inside a cluster (`-vOrequiretls=yes`).
        let flag = typed.split(' ').next().unwrap_or(typed);
        let typed_it = |a: &String| match flag.strip_prefix("--") {
            Some(_) => a.contains(flag),
            None => a.starts_with('-') && flag.chars().nth(1).is_some_and(|c| a.contains(c)),
        };
        assert!(args.iter().any(typed_it), "{typed:?} from {args:?}");
    }
});
