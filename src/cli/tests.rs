use super::*;

fn parse(line: &str) -> Result<Invocation, CliError> {
    parse_from(line.split(' ').filter(|w| !w.is_empty()))
}

fn ok(line: &str) -> Invocation {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e:?}"))
}

fn usage_error(line: &str) -> String {
    match parse(line) {
        Err(CliError::Usage(text)) => text,
        other => panic!("{line}: expected a usage error, got {other:?}"),
    }
}

// covers: IN5
#[test]
fn in5_real_callers_parse() {
    // Vixie cron
    let vixie = ok("sendmail -FCronDaemon -odi -oem -or0s -oi -t");
    assert_eq!(vixie.full_name.as_deref(), Some("CronDaemon"));
    assert_eq!(vixie.delivery, Some(DeliveryMode::Interactive));
    assert_eq!(vixie.error_mode, Some(ErrorMode::Mail));
    assert!(!vixie.dot_ends_input && vixie.extract_recipients);
    assert_eq!(vixie.ignored, ["-or0s"]);
    assert!(vixie.recipients.is_empty());
    // Debian cron
    let debian = ok("/usr/sbin/sendmail -i -FCronDaemon -B8BITMIME -oem root");
    assert_eq!(debian.body, Some(BodyType::EightBitMime));
    assert_eq!(debian.recipients, ["root"]);
    assert!(!debian.dot_ends_input);
    // PHP
    let php = ok("sendmail -t -i");
    assert!(php.extract_recipients && !php.dot_ends_input);
    // mutt
    let mutt = ok("sendmail -oem -oi -- rcpt@example.net -not-an-option");
    assert_eq!(mutt.recipients, ["rcpt@example.net", "-not-an-option"]);
    assert_eq!(mutt.action, Action::Send);
}

// covers: IN5, IN4, IN2, IN3
#[test]
fn in5_values_glued_or_separate_and_last_wins() {
    type Check = fn(&Invocation) -> bool;
    #[rustfmt::skip]
    let cases: &[(&str, Check)] = &[
        ("IN4 -f separate", |i| i.sender.as_deref() == Some("a@x.example")),
        ("IN4 -fglued", |i| i.sender.as_deref() == Some("a@x.example")),
        ("IN4 -r", |i| i.sender.as_deref() == Some("b@x.example")),
        ("IN4 last wins", |i| i.sender.as_deref() == Some("c@x.example")),
        ("IN4 -F separate", |i| i.full_name.as_deref() == Some("Cron")),
        ("IN3 clustered -tfX", |i| i.extract_recipients && i.sender.as_deref() == Some("a@x.example")),
        ("IN2 -ti", |i| i.extract_recipients && !i.dot_ends_input),
        ("IN2 -o i separate", |i| !i.dot_ends_input && i.recipients == ["bob"]),
        ("-o x value consumes the value", |i| i.recipients == ["bob"] && i.ignored == ["-o x 42"]),
        ("-B separate", |i| i.body == Some(BodyType::SevenBit)),
        ("-vvv counts", |i| i.verbose == 3),
        ("-t twice", |i| i.extract_recipients),
        ("DSN flags", |i| i.notify == Some(Notify::Some { success: true, failure: true, delay: false }) && i.ret == Some(Ret::Hdrs) && i.envid.as_deref() == Some("id-1")),
        ("-N never", |i| i.notify == Some(Notify::Never)),
        ("ignored with values", |i| i.ignored == ["-h 3", "-X/tmp/log", "-Ac", "-d0.1", "-G", "-U", "-m", "-n", "-c", "-x", "-L lbl", "-e x", "-p smtp"]),
        ("-C and -a", |i| i.config_file == Some(PathBuf::from("/etc/x.toml")) && i.account.as_deref() == Some("work")),
        ("long server options", |i| i.server.host.as_deref() == Some("smtp.example.org") && i.server.port == Some(465) && i.server.tls == Some(TlsStart::Implicit) && i.server.timeout == Some(5)),
        ("--opt=value", |i| i.server.user.as_deref() == Some("u") && i.server.auth == Some(AuthMech::XOAuth2)),
    ];
    let argv = [
        "sendmail -f a@x.example r",
        "sendmail -fa@x.example r",
        "sendmail -r b@x.example r",
        "sendmail -f a@x.example -fb@x.example -r c@x.example r",
        "sendmail -F Cron r",
        "sendmail -tfa@x.example",
        "sendmail -ti",
        "sendmail -o i bob",
        "sendmail -o x 42 bob",
        "sendmail -B 7BIT r",
        "sendmail -vv -v r",
        "sendmail -t -t",
        "sendmail -N success,FAILURE -R hdrs -V id-1 r",
        "sendmail -N never r",
        "sendmail -h 3 -X/tmp/log -Ac -d0.1 -GUmncx -L lbl -e x -p smtp r",
        "sendmail -C /etc/x.toml -a work r",
        "tlsend --host smtp.example.org --port 465 --tls implicit --timeout 5 r",
        "tlsend --user=u --auth=xoauth2 r",
    ];
    for ((id, check), line) in cases.iter().zip(argv) {
        let inv = ok(line);
        assert!(check(&inv), "{id}: {line}: {inv:?}");
    }
}

// covers: POL1
#[test]
fn pol1_tls_mode_flags_and_their_conflicts() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<TlsModeFlag>)] = &[
        ("tlsend --require-tls r", Some(TlsModeFlag::Require)),
        ("tlsend -O requiretls=yes r", Some(TlsModeFlag::Require)),
        ("tlsend -O RequireTLS=YES r", Some(TlsModeFlag::Require)),
        ("tlsend --tls-optional r", Some(TlsModeFlag::Optional)),
        ("tlsend --no-require-tls r", Some(TlsModeFlag::Optional)),
        ("tlsend -Orequiretls=no r", Some(TlsModeFlag::Optional)),
        ("tlsend --require-tls -O requiretls=yes r", Some(TlsModeFlag::Require)),
        ("tlsend -O DeliveryMode=b r", None),
        ("tlsend r", None),
    ];
    for (line, expected) in cases {
        assert_eq!(ok(line).tls_mode.map(|(m, _)| m), *expected, "{line}");
    }
    assert_eq!(
        ok("tlsend --no-require-tls r").tls_mode.unwrap().1,
        "--no-require-tls"
    );
    for line in [
        "tlsend --require-tls --tls-optional r",
        "tlsend --require-tls -O requiretls=no r",
        "tlsend -O requiretls=yes --no-require-tls r",
    ] {
        let text = usage_error(line);
        assert!(text.contains("contradict"), "{line}: {text}");
    }
}

// covers: IN6
#[test]
fn in6_personalities_and_modes() {
    #[rustfmt::skip]
    let cases: &[(&str, Personality, Action)] = &[
        ("/usr/bin/mailq", Personality::Mailq, Action::ListQueue),
        ("newaliases", Personality::Newaliases, Action::InitAliases),
        ("mailq -bm r", Personality::Mailq, Action::Send),
        ("newaliases -bp", Personality::Newaliases, Action::ListQueue),
        ("sendmail -bp", Personality::Sendmail, Action::ListQueue),
        ("sendmail -bs", Personality::Sendmail, Action::SmtpStdio),
        ("sendmail -bi", Personality::Sendmail, Action::InitAliases),
        ("sendmail -I", Personality::Sendmail, Action::InitAliases),
        ("sendmail -q", Personality::Sendmail, Action::RunQueue),
        ("sendmail -qRexample.org", Personality::Sendmail, Action::RunQueue),
        ("sendmail -q30m", Personality::Sendmail, Action::RunQueue),
        ("sendmail --remove-queued ABC", Personality::Sendmail, Action::RemoveQueued),
        ("sendmail -bh", Personality::Sendmail, Action::Nothing),
        ("sendmail r", Personality::Sendmail, Action::Send),
    ];
    for (line, personality, action) in cases {
        let inv = ok(line);
        assert_eq!(
            (inv.personality, inv.action),
            (*personality, *action),
            "{line}"
        );
    }
}

// covers: IN5
#[test]
fn in5_options_stop_at_the_first_recipient_as_in_postfix() {
    let inv = ok("sendmail bob -t");
    assert_eq!(inv.recipients, ["bob", "-t"]);
    assert!(!inv.extract_recipients);
}

// covers: IN5, UX5
#[test]
fn in5_usage_errors_name_the_flag() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("sendmail -Z r", "-Z"),
        ("sendmail --frobnicate r", "--frobnicate"),
        ("sendmail -f", "-f needs a value"),
        ("sendmail -B 9BIT r", "7BIT or 8BITMIME"),
        ("sendmail -N sometimes r", "sometimes"),
        ("sendmail -N never,success r", "never cannot be combined"),
        ("sendmail -R body r", "full or hdrs"),
        ("sendmail -V has\u{7f}del r", "ENVID"),
        ("sendmail -O requiretls=maybe r", "yes or no"),
        ("sendmail -bd", "not a daemon"),
        ("sendmail -bv r", "-bv"),
        ("sendmail -qX", "-q"),
        ("sendmail -bp r", "takes no recipients"),
        ("mailq r", "takes no recipients"),
        ("sendmail -bp -t", "-t can be used only"),
        ("tlsend --port 0 r", "1 to 65535"),
        ("tlsend --port x r", "1 to 65535"),
        ("tlsend --timeout 0 r", "from 1 to 86400"),
        ("tlsend --timeout 18446744073709551615 r", "from 1 to 86400"),
        ("tlsend --tls maybe r", "starttls"),
        ("tlsend --require-tls=yes r", "takes no value"),
        ("tlsend -o x", "-o x needs a value"),
    ];
    for (line, needle) in cases {
        let text = usage_error(line);
        assert!(text.contains(needle), "{line}: {text:?} lacks {needle:?}");
    }
}

#[test]
fn help_and_version_go_to_stdout() {
    match parse("tlsend --help") {
        Err(CliError::Help(text)) => assert!(
            text.contains("--require-tls") && text.contains("-oi"),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse("tlsend --version"),
        Err(CliError::Version(format!(
            "tlsend {}\n",
            env!("CARGO_PKG_VERSION")
        )))
    );
}

// covers: SUB6
#[test]
fn sub6_no_option_takes_a_password() {
    for arg in command().get_arguments() {
        let name = arg.get_long().unwrap_or_default();
        assert!(
            !name.contains("password")
                || name.ends_with("-command")
                || name.ends_with("-file")
                || name.ends_with("-env"),
            "--{name}"
        );
    }
}

#[test]
fn every_defined_option_is_handled() {
    // Each defined option must reach a branch of `interpret` other than the
    // catch-all; a definition without handling would be a silent no-op.
    for arg in command().get_arguments() {
        let id = arg.get_id().as_str();
        if id == "recipients" || id == "help" || id == "version" {
            continue;
        }
        let typed = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            _ => continue,
        };
        let value = match id {
            "B" => "7BIT",
            "N" => "never",
            "R" => "full",
            "V" => "id",
            "O" => "requiretls=yes",
            "b" => "m",
            "q" => "",
            "port" | "timeout" => "25",
            "tls" => "none",
            "auth" => "auto",
            _ => "v",
        };
        let occurrence = Occurrence {
            id: id.to_string(),
            typed: typed.clone(),
            value: takes_value(arg).then(|| value.to_string()),
        };
        let result = interpret(Personality::Sendmail, vec![occurrence], Vec::new());
        if let Err(CliError::Usage(text)) = &result {
            assert!(!text.contains("not handled"), "{typed}: {text}");
        }
    }
}

// covers: IN5, FAIL3
#[test]
fn q_takes_an_interval_an_id_or_a_domain() {
    use std::time::Duration;
    type Case<'a> = (&'a str, Option<u64>, Option<&'a str>, Option<&'a str>);
    let cases: &[Case] = &[
        ("sendmail -q", None, None, None),
        ("sendmail -q15m", Some(900), None, None),
        ("sendmail -q1h30m", Some(5400), None, None),
        ("sendmail -q90s", Some(90), None, None),
        ("sendmail -q5", Some(300), None, None),
        ("sendmail -qI0123ABCD", None, Some("0123ABCD"), None),
        ("sendmail -qR@example.org", None, None, Some("example.org")),
    ];
    for (line, interval, id, site) in cases {
        let run = ok(line).queue_run;
        assert_eq!(run.interval, interval.map(Duration::from_secs), "{line}");
        assert_eq!(run.id.as_deref(), *id, "{line}");
        assert_eq!(run.site.as_deref(), *site, "{line}");
    }
    for bad in [
        "sendmail -q0m",
        "sendmail -q15x",
        "sendmail -qX",
        "sendmail -q1h -t",
    ] {
        assert!(
            matches!(parse_from(bad.split(' ')), Err(CliError::Usage(_))),
            "{bad}"
        );
    }
    assert!(ok("sendmail -bp --json").json);
}

// covers: IN5
#[test]
fn h_and_v_alone_ask_for_help_and_the_version() {
    assert!(matches!(
        parse_from(["sendmail", "-h"]),
        Err(CliError::Help(_))
    ));
    assert!(
        matches!(parse_from(["sendmail", "-V"]), Err(CliError::Version(v)) if v.starts_with("tlsend "))
    );
    // With other arguments they keep sendmail's meaning.
    assert_eq!(ok("sendmail -V ENV1 r").envid.as_deref(), Some("ENV1"));
    assert!(
        ok("sendmail -h 30 r")
            .ignored
            .contains(&"-h 30".to_string())
            || ok("sendmail -h 30 r").recipients == ["r"]
    );
}
