//! The command line: one clap definition of every flag (shared with
//! `build.rs`, which renders the man page and shell completions from it),
//! and a getopt-style scanner that reads argv the way Postfix's sendmail(1)
//! does, using that definition as its table (IN5, IN6, POL1).
//!
//! Why not clap's parser: sendmail's argv is getopt with Postfix's rules,
//! which clap cannot express: options stop at the first operand, `-q` takes
//! only a glued value (`-q` vs `-q30m`), and `-o x value` consumes a second
//! argument. Clap still owns the definitions, so the documentation cannot
//! drift from what is parsed.
//!
//! The result is an [`Invocation`]: what the user typed, checked for syntax
//! and conflicts but not combined with the configuration (that is
//! `request.rs`). This file depends only on `clap` and `std`, because
//! `build.rs` includes it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};

/// Which program argv[0] names (IN6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    Sendmail,
    Mailq,
    Newaliases,
}

/// What this run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read a message and send it (`-bm`, the default).
    Send,
    /// `-bp`, `mailq`.
    ListQueue,
    /// `-q`, `-qR…`, `-qI…`, `-q<interval>` (see [`Invocation::queue_run`]).
    RunQueue,
    /// `--remove-queued ID`: delete one entry.
    RemoveQueued,
    /// `-bi`, `-I`, `newaliases`.
    InitAliases,
    /// `-bs`: SMTP on standard input and output.
    SmtpStdio,
    /// `-bh`, `-bH`: accepted, nothing to do.
    Nothing,
    /// `--check-config`: print the resolved settings, connect to nothing.
    CheckConfig,
    /// `--check-server`: connect, secure, EHLO, print what the server offers, QUIT.
    CheckServer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    SevenBit,
    EightBitMime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsModeFlag {
    Require,
    Optional,
}

/// `-N`: RFC 3461 NOTIFY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    Never,
    Some {
        success: bool,
        failure: bool,
        delay: bool,
    },
}

/// `-R`: RFC 3461 RET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// `-od…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Interactive,
    Background,
    Queue,
}

/// `-oe…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorMode {
    Print,
    Mail,
    Write,
    Quiet,
    Exit,
}

/// `--tls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsStart {
    StartTls,
    Implicit,
    None,
}

/// `--auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMech {
    Auto,
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
}

/// Server settings from long options (msmtp-like); each beats the account's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFlags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<TlsStart>,
    pub user: Option<String>,
    pub auth: Option<AuthMech>,
    pub password_command: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Kept as typed; checked where fingerprints are parsed.
    pub fingerprint: Option<String>,
    pub timeout: Option<u64>,
    pub ehlo_name: Option<String>,
}

/// What `-q` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueRun {
    /// `-q<interval>`: run every interval until stopped, honouring each
    /// entry's backoff; `None`: one run that tries every entry now.
    pub interval: Option<std::time::Duration>,
    /// `-qI<id>`: only this entry (also the id for `--remove-queued`).
    pub id: Option<String>,
    /// `-qR<site>`: only entries with a recipient at this domain.
    pub site: Option<String>,
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub personality: Personality,
    pub action: Action,
    /// Operands, in order, unparsed.
    pub recipients: Vec<String>,
    /// `-t`.
    pub extract_recipients: bool,
    /// True unless `-i` or `-oi`.
    pub dot_ends_input: bool,
    /// `-f`/`-r`; may be "" or "<>".
    pub sender: Option<String>,
    pub full_name: Option<String>,
    pub body: Option<BodyType>,
    /// The mode and the flag as typed, for messages.
    pub tls_mode: Option<(TlsModeFlag, String)>,
    pub notify: Option<Notify>,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    pub verbose: u8,
    pub config_file: Option<PathBuf>,
    pub account: Option<String>,
    pub delivery: Option<DeliveryMode>,
    pub error_mode: Option<ErrorMode>,
    pub server: ServerFlags,
    /// `--direct`: deliver to the MX hosts even when an account names a server.
    pub direct: bool,
    /// `--read-envelope-from`: the envelope sender is the From field's address.
    pub read_envelope_from: bool,
    /// The ORCPT an SMTP client (-bs) gave, by recipient argument (RFC
    /// 3461 4.2, decoded); never from the command line.
    pub orcpt: std::collections::HashMap<String, String>,
    pub queue_run: QueueRun,
    /// `--json`: `-bp` as JSON.
    pub json: bool,
    /// Options accepted and ignored, as typed (shown with -v).
    pub ignored: Vec<String>,
}

/// Why the command line cannot run, or what to print instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// Exit 64; the text names the flag and what is accepted.
    Usage(String),
    /// For standard output, exit 0.
    Help(String),
    Version(String),
}

/// Longest time limit accepted for a step: a day is already no limit.
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// `-o` letters that never take a value, so `-o i rcpt` keeps `rcpt` as an operand.
const O_WITHOUT_VALUE: &[char] = &['i', 'm', '7', '8'];

fn flag(id: &'static str, short: char, help: &'static str) -> Arg {
    Arg::new(id)
        .short(short)
        .action(ArgAction::SetTrue)
        .help(help)
}

fn value(id: &'static str, short: char, name: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .short(short)
        .value_name(name)
        .action(ArgAction::Append)
        .help(help)
}

fn long_flag(id: &'static str, help: &'static str) -> Arg {
    Arg::new(id).long(id).action(ArgAction::SetTrue).help(help)
}

fn long_value(id: &'static str, name: &'static str, help: &'static str) -> Arg {
    Arg::new(id).long(id).value_name(name).help(help)
}

/// The definition of every flag.
pub fn command() -> Command {
    Command::new("tlsend")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Send mail like sendmail, over verified TLS when asked (RFC 8689 REQUIRETLS)")
        .long_about(
            "tlsend reads an RFC 5322 message on standard input and submits it to a configured \
             server over STARTTLS or implicit TLS with a verified certificate, or, with no server \
             configured, delivers it to the recipients' MX hosts itself. With --require-tls \
             the message is sent only over verified TLS to a server that advertises REQUIRETLS, \
             and carries REQUIRETLS on MAIL FROM; otherwise nothing is sent. With --tls-optional it carries \
             \"TLS-Required: No\". It accepts the options of Postfix's sendmail(1), so it can be \
             installed as /usr/sbin/sendmail.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .override_usage("tlsend [OPTIONS] [--] [RECIPIENT]...")
        .args([
            long_flag(
                "require-tls",
                "Require TLS for this message on every hop (RFC 8689 REQUIRETLS): send only over TLS \
                 with a verified certificate to a server that advertises REQUIRETLS, else send nothing \
                 (exit 69, 5.7.10 or 5.7.30). Same as -O requiretls=yes.",
            ),
            long_flag(
                "tls-optional",
                "Mark the message \"TLS-Required: No\" (RFC 8689 section 3): later hops may ignore \
                 recipient TLS policies. Same as -O requiretls=no.",
            )
            .visible_alias("no-require-tls"),
            long_flag(
                "direct",
                "Deliver to the recipients' MX hosts directly, even when an account names a \
                 server (the default when none is configured). Names are validated by DNSSEC or \
                 MTA-STS, certificates by DANE or WebPKI; see the [direct] settings in tlsend(1).",
            ),
            long_flag(
                "read-envelope-from",
                "Take the envelope sender from the message's From field (msmtp's option of the \
                 same name); a bare name there is qualified like any other. Not with -f.",
            ),
            long_value("host", "HOST", "Submit to HOST instead of the account's server."),
            long_value("port", "PORT", "Server port (default 587 for starttls, 465 for implicit)."),
            long_value("tls", "MODE", "How the connection is secured: starttls, implicit or none.")
                .value_parser(["starttls", "implicit", "none"]),
            long_value("user", "USER", "User name for SMTP AUTH (sent only over TLS)."),
            long_value(
                "auth",
                "MECH",
                "SASL mechanism: auto (PLAIN, else LOGIN), plain, login, xoauth2 or oauthbearer.",
            )
            .value_parser(["auto", "plain", "login", "xoauth2", "oauthbearer"]),
            long_value(
                "password-command",
                "CMD",
                "Run CMD with sh -c; the first line it prints is the password or token.",
            ),
            long_value(
                "password-file",
                "FILE",
                "Read the password from FILE, which only its owner may read.",
            ),
            long_value("password-env", "VAR", "Read the password from environment variable VAR."),
            long_value(
                "ca-file",
                "FILE",
                "Trust only the CA certificates in FILE (PEM) for the server.",
            ),
            long_value(
                "fingerprint",
                "SHA256",
                "Trust only the server certificate with this SHA-256 fingerprint (sha256:AB:CD:...).",
            ),
            long_value("timeout", "SECONDS", "Time limit for connecting and for every SMTP step."),
            long_value("ehlo-name", "NAME", "Name to send with EHLO."),
            Arg::new("account")
                .short('a')
                .long("account")
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("Use account NAME from the configuration file."),
            Arg::new("help").long("help").action(ArgAction::SetTrue).help("Print help."),
            Arg::new("version").long("version").action(ArgAction::SetTrue).help("Print the version."),
            flag(
                "t",
                't',
                "Take recipients from the To, Cc and Bcc fields, in addition to those on the \
                 command line. Bcc fields are always removed before sending.",
            ),
            flag(
                "i",
                'i',
                "Do not treat a line with a single \".\" as the end of the message (also -oi).",
            ),
            Arg::new("v")
                .short('v')
                .action(ArgAction::Count)
                .help("Show the SMTP dialogue (secrets masked) and every TLS decision."),
            value("f", 'f', "SENDER", "Envelope sender address (\"\" or \"<>\" for none)."),
            value("r", 'r', "SENDER", "Same as -f."),
            value(
                "F",
                'F',
                "NAME",
                "Full name of the sender, used only when the message has no From field.",
            ),
            value("B", 'B', "TYPE", "Body type: 7BIT or 8BITMIME."),
            value(
                "N",
                'N',
                "DSN",
                "Delivery status notifications: never, or a list of success, failure, delay.",
            ),
            value("R", 'R', "RET", "What a bounce returns: full or hdrs (require mode sends hdrs)."),
            value("V", 'V', "ENVID", "Envelope identifier for delivery status notifications."),
            value(
                "O",
                'O',
                "OPTION=VALUE",
                "requiretls=yes (same as --require-tls) or requiretls=no (same as --tls-optional); \
                 other options are ignored.",
            ),
            value(
                "o",
                'o',
                "OPTION",
                "Sendmail options: -oi as -i; -odi, -odb, -odq delivery mode; -oem, -oep, -oeq, \
                 -oew error mode; every other -oX... is ignored. \"-o x value\" (a separate \
                 one-letter option other than i, m, 7, 8) takes the next argument as its value.",
            ),
            value(
                "b",
                'b',
                "MODE",
                "-bm send (default), -bp list the queue, -bs an SMTP dialogue on standard input and \
                 output (one or more messages), -bi rebuild \
                 aliases (nothing to do); -bh and -bH are ignored.",
            ),
            Arg::new("q")
                .short('q')
                .value_name("INTERVAL")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append)
                .help(
                    "Run the queue: -q tries every entry now; -q<interval> (-q15m, -q1h) runs \
                     it every interval until stopped, honouring backoff; -qI<id> one entry; \
                     -qR<domain> entries with a recipient there.",
                ),
            long_flag("json", "With -bp (mailq): list the queue as JSON."),
            long_flag(
                "check-config",
                "Print the configuration file used (and every file looked for), the account \
                 chosen and why, the server, port, TLS, trust and where the credentials come \
                 from, without connecting or fetching any secret; exit 78 if it is unusable.",
            ),
            long_flag(
                "check-server",
                "Connect to the submission server, secure the connection as configured, and \
                 print its capabilities, TLS version and cipher, and certificate chain \
                 (names, dates, SHA-256 fingerprint for `fingerprint`); QUIT before AUTH and \
                 MAIL FROM. Exit status as a send would have.",
            ),
            long_value(
                "remove-queued",
                "ID",
                "Delete queue entry ID (as -bp shows it) without sending it.",
            ),
            value("C", 'C', "FILE", "Read the configuration from FILE (/dev/null for none)."),
            flag("I", 'I', "Same as -bi."),
            value("A", 'A', "ARG", "Ignored (sendmail compatibility)."),
            value("L", 'L', "LABEL", "Ignored (sendmail compatibility)."),
            value("X", 'X', "LOGFILE", "Ignored (sendmail compatibility)."),
            value("h", 'h', "HOPS", "Ignored (sendmail compatibility)."),
            value("e", 'e', "MODE", "Ignored (sendmail compatibility)."),
            value("p", 'p', "PROTOCOL", "Ignored (sendmail compatibility)."),
            value("d", 'd', "LEVEL", "Ignored (sendmail compatibility)."),
            flag("G", 'G', "Ignored (sendmail compatibility)."),
            flag("U", 'U', "Ignored (sendmail compatibility)."),
            flag("m", 'm', "Ignored (sendmail compatibility)."),
            flag("n", 'n', "Ignored (sendmail compatibility)."),
            flag("c", 'c', "Ignored (sendmail compatibility)."),
            flag("x", 'x', "Ignored (sendmail compatibility)."),
            Arg::new("recipients")
                .value_name("RECIPIENT")
                .num_args(0..)
                .help("Recipient addresses; options end at the first one, as in Postfix."),
        ])
}

/// One option occurrence found by the scanner.
#[derive(Debug)]
struct Occurrence {
    id: String,
    /// As typed, for messages ("--no-require-tls", "-odi").
    typed: String,
    value: Option<String>,
}

/// Reads argv (argv[0] included).
pub fn parse_from<I, T>(argv: I) -> Result<Invocation, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args = Vec::new();
    for arg in argv {
        let arg: OsString = arg.into();
        match arg.into_string() {
            Ok(text) => args.push(text),
            Err(bad) => return Err(usage(format!("argument {bad:?} is not valid UTF-8"))),
        }
    }
    let personality = match args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a.as_str()))
    {
        Some("mailq") => Personality::Mailq,
        Some("newaliases") => Personality::Newaliases,
        _ => Personality::Sendmail,
    };
    // `-h` and `-V` take a value in sendmail (hops, ENVID); given alone
    // they can only be a request for help or the version.
    match args.get(1..).unwrap_or_default() {
        [only] if only == "-h" => return Err(help()),
        [only] if only == "-V" => return Err(version()),
        _ => {}
    }
    let (occurrences, operands) = scan(&command(), args.get(1..).unwrap_or_default())?;
    interpret(personality, occurrences, operands)
}

fn help() -> CliError {
    CliError::Help(command().render_long_help().to_string())
}

fn version() -> CliError {
    CliError::Version(format!("tlsend {}\n", env!("CARGO_PKG_VERSION")))
}

fn usage(text: impl Into<String>) -> CliError {
    CliError::Usage(text.into())
}

/// getopt over the definition, with Postfix's rules.
fn scan(command: &Command, args: &[String]) -> Result<(Vec<Occurrence>, Vec<String>), CliError> {
    let mut occurrences = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return Ok((occurrences, rest.cloned().collect()));
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let definition = command
                .get_arguments()
                .find(|a| {
                    a.get_long() == Some(name)
                        || a.get_all_aliases().is_some_and(|al| al.contains(&name))
                })
                .ok_or_else(|| usage(format!("unknown option --{name}; see tlsend --help")))?;
            let value = if takes_value(definition) {
                match inline {
                    Some(v) => Some(v),
                    None => Some(
                        rest.next()
                            .cloned()
                            .ok_or_else(|| usage(format!("--{name} needs a value")))?,
                    ),
                }
            } else if inline.is_some() {
                return Err(usage(format!("--{name} takes no value")));
            } else {
                None
            };
            occurrences.push(Occurrence {
                id: definition.get_id().to_string(),
                typed: format!("--{name}"),
                value,
            });
            continue;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            // The first operand ends the options (Postfix's "+" getopt).
            let mut operands = vec![arg.clone()];
            operands.extend(rest.cloned());
            return Ok((occurrences, operands));
        };
        for (i, c) in cluster.char_indices() {
            let definition = command
                .get_arguments()
                .find(|a| a.get_short() == Some(c))
                .ok_or_else(|| {
                    usage(format!(
                        "unknown option -{c} (in {arg:?}); see tlsend --help"
                    ))
                })?;
            let id = definition.get_id().to_string();
            if !takes_value(definition) {
                occurrences.push(Occurrence {
                    id,
                    typed: format!("-{c}"),
                    value: None,
                });
                continue;
            }
            let glued = &cluster[i + c.len_utf8()..];
            let optional = definition
                .get_num_args()
                .is_some_and(|n| n.min_values() == 0);
            let value = if !glued.is_empty() || optional {
                // `-q` takes only a glued value: `-q` alone is never followed by one.
                glued.to_string()
            } else {
                rest.next()
                    .cloned()
                    .ok_or_else(|| usage(format!("-{c} needs a value")))?
            };
            let mut typed = if glued.is_empty() && !optional {
                format!("-{c} {value}")
            } else {
                format!("-{c}{value}")
            };
            if c == 'o' && glued.is_empty() {
                let mut letters = value.chars();
                if let (Some(letter), None) = (letters.next(), letters.next())
                    && !O_WITHOUT_VALUE.contains(&letter)
                {
                    // "-o x value": the value is the next argument.
                    let option_value = rest
                        .next()
                        .ok_or_else(|| usage(format!("-o {letter} needs a value")))?;
                    typed = format!("-o {letter} {option_value}");
                }
            }
            occurrences.push(Occurrence {
                id,
                typed,
                value: Some(value),
            });
            break;
        }
    }
    Ok((occurrences, Vec::new()))
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn interpret(
    personality: Personality,
    occurrences: Vec<Occurrence>,
    operands: Vec<String>,
) -> Result<Invocation, CliError> {
    let mut inv = Invocation {
        personality,
        action: match personality {
            Personality::Sendmail => Action::Send,
            Personality::Mailq => Action::ListQueue,
            Personality::Newaliases => Action::InitAliases,
        },
        recipients: operands,
        extract_recipients: false,
        dot_ends_input: true,
        sender: None,
        full_name: None,
        body: None,
        tls_mode: None,
        notify: None,
        ret: None,
        envid: None,
        verbose: 0,
        config_file: None,
        account: None,
        delivery: None,
        error_mode: None,
        server: ServerFlags::default(),
        direct: false,
        read_envelope_from: false,
        orcpt: Default::default(),
        queue_run: QueueRun::default(),
        json: false,
        ignored: Vec::new(),
    };
    let mut modes: Vec<(TlsModeFlag, String)> = Vec::new();
    for Occurrence { id, typed, value } in occurrences {
        let value = value.unwrap_or_default();
        let bad = |what: &str| usage(format!("{typed}: {what}"));
        match id.as_str() {
            "help" => return Err(help()),
            "version" => return Err(version()),
            "t" => inv.extract_recipients = true,
            "i" => inv.dot_ends_input = false,
            "v" => inv.verbose = inv.verbose.saturating_add(1),
            "f" | "r" => inv.sender = Some(value),
            "F" => inv.full_name = Some(value),
            "B" => {
                inv.body = Some(match value.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    _ => return Err(bad("the body type is 7BIT or 8BITMIME")),
                })
            }
            "N" => inv.notify = Some(parse_notify(&value).map_err(|e| bad(&e))?),
            "R" => {
                inv.ret = Some(match value.to_ascii_lowercase().as_str() {
                    "full" => Ret::Full,
                    "hdrs" => Ret::Hdrs,
                    _ => return Err(bad("RET is full or hdrs")),
                })
            }
            "V" => {
                // RFC 3461 4.4: printable ASCII, at most 100 characters.
                if value.is_empty()
                    || value.len() > 100
                    || !value.bytes().all(|b| (0x21..=0x7e).contains(&b))
                {
                    return Err(bad(
                        "ENVID is 1 to 100 printable ASCII characters without spaces",
                    ));
                }
                inv.envid = Some(value);
            }
            "O" => match value.split_once('=') {
                Some((key, setting)) if key.trim().eq_ignore_ascii_case("requiretls") => {
                    let flag = match setting.trim().to_ascii_lowercase().as_str() {
                        "yes" => TlsModeFlag::Require,
                        "no" => TlsModeFlag::Optional,
                        _ => return Err(bad("requiretls is yes or no")),
                    };
                    modes.push((flag, typed));
                }
                _ => inv.ignored.push(typed),
            },
            "o" => interpret_o(&mut inv, &value, typed),
            "b" => {
                inv.action = match value.as_str() {
                    "m" => Action::Send,
                    "p" => Action::ListQueue,
                    "s" => Action::SmtpStdio,
                    "i" => Action::InitAliases,
                    "h" | "H" => Action::Nothing,
                    "d" => return Err(bad("tlsend is not a daemon; -bd is not supported")),
                    "v" => return Err(bad("address verification (-bv) is not supported")),
                    _ => return Err(bad("supported modes are -bm, -bp, -bs and -bi")),
                }
            }
            "q" => {
                inv.action = Action::RunQueue;
                let rest = value.get(1..).unwrap_or("");
                match value.chars().next() {
                    None => {}
                    Some('I') if !rest.is_empty() => inv.queue_run.id = Some(rest.to_string()),
                    Some('R') if !rest.is_empty() => {
                        inv.queue_run.site = Some(rest.trim_start_matches('@').to_string())
                    }
                    Some(c) if c.is_ascii_digit() => {
                        inv.queue_run.interval = Some(parse_interval(&value).map_err(|e| bad(&e))?)
                    }
                    Some(_) => {
                        return Err(bad("use -q, -qR<domain>, -qI<queue id> or -q<interval>"));
                    }
                }
            }
            "json" => inv.json = true,
            "check-config" => inv.action = Action::CheckConfig,
            "check-server" => inv.action = Action::CheckServer,
            "remove-queued" => {
                inv.action = Action::RemoveQueued;
                inv.queue_run.id = Some(value);
            }
            "C" => inv.config_file = Some(PathBuf::from(value)),
            "a" | "account" => inv.account = Some(value),
            "I" => inv.action = Action::InitAliases,
            "A" | "L" | "X" | "h" | "e" | "p" | "d" | "G" | "U" | "m" | "n" | "c" | "x" => {
                inv.ignored.push(typed)
            }
            "require-tls" => modes.push((TlsModeFlag::Require, typed)),
            "tls-optional" => modes.push((TlsModeFlag::Optional, typed)),
            "direct" => inv.direct = true,
            "read-envelope-from" => inv.read_envelope_from = true,
            "host" => inv.server.host = Some(value),
            "port" => {
                inv.server.port = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|&p: &u16| p > 0)
                        .ok_or_else(|| bad("a port is 1 to 65535"))?,
                )
            }
            "tls" => {
                inv.server.tls = Some(match value.as_str() {
                    "starttls" => TlsStart::StartTls,
                    "implicit" => TlsStart::Implicit,
                    "none" => TlsStart::None,
                    _ => return Err(bad("starttls, implicit or none")),
                })
            }
            "user" => inv.server.user = Some(value),
            "auth" => {
                inv.server.auth = Some(match value.as_str() {
                    "auto" => AuthMech::Auto,
                    "plain" => AuthMech::Plain,
                    "login" => AuthMech::Login,
                    "xoauth2" => AuthMech::XOAuth2,
                    "oauthbearer" => AuthMech::OAuthBearer,
                    _ => return Err(bad("auto, plain, login, xoauth2 or oauthbearer")),
                })
            }
            "password-command" => inv.server.password_command = Some(value),
            "password-file" => inv.server.password_file = Some(PathBuf::from(value)),
            "password-env" => inv.server.password_env = Some(value),
            "ca-file" => inv.server.ca_file = Some(PathBuf::from(value)),
            "fingerprint" => inv.server.fingerprint = Some(value),
            "timeout" => {
                inv.server.timeout = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|&s: &u64| (1..=MAX_TIMEOUT_SECONDS).contains(&s))
                        .ok_or_else(|| bad("a number of seconds from 1 to 86400 (one day)"))?,
                )
            }
            "ehlo-name" => inv.server.ehlo_name = Some(value),
            other => {
                return Err(usage(format!(
                    "{typed}: option {other} is defined but not handled"
                )));
            }
        }
    }
    // POL1: require and optional exclude each other, whichever flags say so.
    if let Some((first, typed)) = modes.first() {
        if let Some((_, conflicting)) = modes.iter().find(|(m, _)| m != first) {
            return Err(usage(format!(
                "{typed} and {conflicting} contradict each other: a message either requires TLS or is marked TLS-Required: No"
            )));
        }
        inv.tls_mode = modes.last().cloned();
    }
    if inv.direct && inv.server.host.is_some() {
        return Err(usage(
            "--direct and --host contradict each other: deliver to the MX hosts, or submit to HOST",
        ));
    }
    if inv.read_envelope_from && inv.sender.is_some() {
        return Err(usage(
            "--read-envelope-from and -f/-r contradict each other: the envelope sender comes \
             from the From field, or from -f",
        ));
    }
    if inv.extract_recipients && inv.action != Action::Send {
        return Err(usage("-t can be used only when sending a message"));
    }
    if inv.action != Action::Send && !inv.recipients.is_empty() {
        return Err(usage(format!(
            "{} takes no recipients",
            match inv.action {
                Action::ListQueue => "listing the queue",
                Action::RunQueue => "running the queue",
                Action::RemoveQueued => "--remove-queued",
                Action::InitAliases => "rebuilding aliases",
                Action::SmtpStdio => "-bs",
                Action::CheckConfig => "--check-config",
                Action::CheckServer => "--check-server",
                _ => "this mode",
            }
        )));
    }
    Ok(inv)
}

/// The `-o` family; unknown letters are accepted and ignored, as sendmail does.
fn interpret_o(inv: &mut Invocation, value: &str, typed: String) {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some('i'), None) => inv.dot_ends_input = false,
        (Some('d'), Some(mode)) => match mode {
            'i' => inv.delivery = Some(DeliveryMode::Interactive),
            'b' => inv.delivery = Some(DeliveryMode::Background),
            'q' | 'd' => inv.delivery = Some(DeliveryMode::Queue),
            _ => inv.ignored.push(typed),
        },
        (Some('e'), Some(mode)) => match mode {
            'p' => inv.error_mode = Some(ErrorMode::Print),
            'm' => inv.error_mode = Some(ErrorMode::Mail),
            'w' => inv.error_mode = Some(ErrorMode::Write),
            'q' => inv.error_mode = Some(ErrorMode::Quiet),
            'e' => inv.error_mode = Some(ErrorMode::Exit),
            _ => inv.ignored.push(typed),
        },
        _ => inv.ignored.push(typed),
    }
}

/// A sendmail interval: `15m`, `1h30m`, `90s`, `2d`; a bare number is
/// minutes, as in sendmail.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let wrong = || format!("{text:?} is not an interval like 15m, 1h or 90s");
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut units = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let scale = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(wrong()),
        };
        let n: u64 = number.parse().map_err(|_| wrong())?;
        total = n
            .checked_mul(scale)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(wrong)?;
        number.clear();
        units += 1;
    }
    if !number.is_empty() {
        let n: u64 = number.parse().map_err(|_| wrong())?;
        total = n
            .checked_mul(60)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(wrong)?;
        units += 1;
    }
    if units == 0 || total == 0 {
        return Err(wrong());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// `never`, or a comma list of success, failure, delay.
fn parse_notify(value: &str) -> Result<Notify, String> {
    let words: Vec<String> = value
        .split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .collect();
    if words.iter().any(|w| w == "never") {
        if words.len() > 1 {
            return Err("never cannot be combined with other notifications".into());
        }
        return Ok(Notify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for word in &words {
        match word.as_str() {
            "success" => success = true,
            "failure" => failure = true,
            "delay" => delay = true,
            _ => {
                return Err(format!(
                    "{word:?} is not a notification; use never, or success, failure, delay"
                ));
            }
        }
    }
    Ok(Notify::Some {
        success,
        failure,
        delay,
    })
}

// The explicit path resolves the same whether this file is compiled as
// `crate::cli` or included by build.rs.
#[cfg(test)]
#[path = "cli/tests.rs"]
mod tests;
