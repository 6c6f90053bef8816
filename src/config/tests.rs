use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, OsString> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    move |key: &str| map.get(key).cloned()
}

fn parse_text(text: &str) -> Result<Config, ConfigError> {
    parse_with(
        text.as_bytes(),
        Path::new("test.toml"),
        &env_of(&[("HOME", "/home/u")]),
    )
}

const FULL: &str = r#"
default_account = "work"
dead_letter = "~/mail/dead.letter"

[account.work]
host = "smtp.example.org"
port = 587
tls = "starttls"
from = "alice@example.org"
user = "alice"
password_command = "pass show smtp/work"
auth = "plain"
ca_file = "~/ca.pem"
connect_timeout = 10
timeout = 20
data_timeout = 300
mode = "require"
ehlo_name = "client.example.org"
qualify_domain = "example.org"

[account.lists]
host = "smtp.example.net"
tls = "implicit"
from = "*@lists.example.net"
fingerprint = "sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
"#;

// covers: SUB6
#[test]
fn parses_every_key() {
    let config = parse_text(FULL).unwrap();
    assert_eq!(config.default_account.as_deref(), Some("work"));
    assert_eq!(
        config.dead_letter,
        Some(PathBuf::from("/home/u/mail/dead.letter"))
    );
    let names: Vec<&str> = config.accounts().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["work", "lists"], "file order is kept");
    let work = &config.accounts()[0];
    assert_eq!(work.host.as_deref(), Some("smtp.example.org"));
    assert_eq!(
        (work.port, work.tls, work.auth),
        (Some(587), TlsStart::StartTls, AuthMethod::Plain)
    );
    assert_eq!(
        work.password,
        Some(SecretSource::Command("pass show smtp/work".into()))
    );
    assert_eq!(work.ca_file, Some(PathBuf::from("/home/u/ca.pem")));
    assert_eq!(
        (work.connect_timeout, work.timeout, work.data_timeout),
        (
            Duration::from_secs(10),
            Duration::from_secs(20),
            Duration::from_secs(300)
        )
    );
    assert_eq!(work.mode, Some(Mode::Require));
    assert_eq!(work.qualify_domain.as_deref(), Some("example.org"));
    let lists = &config.accounts()[1];
    assert_eq!(lists.tls, TlsStart::Implicit);
    assert_eq!(lists.fingerprint.unwrap().0[..3], [0x00, 0x11, 0x22]);
    assert_eq!(lists.timeout, Duration::from_secs(60), "default");
}

// covers: FAIL2, UX5, SUB6
#[test]
fn errors_name_the_line_and_what_to_fix() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &[&str])] = &[
        ("unknown key", "[account.a]\nhost = \"h\"\nca_flie = \"x\"\n", &["test.toml:3:1:", "ca_flie"]),
        ("bad tls", "[account.a]\ntls = \"maybe\"\n", &["test.toml:2:7:", "starttls", "implicit"]),
        ("bad mode", "[account.a]\nmode = \"always\"\n", &["test.toml:2:", "require"]),
        ("bad type", "[account.a]\nport = \"587\"\n", &["test.toml:2:"]),
        ("syntax", "[account.a\n", &["test.toml:1:"]),
        ("SUB6 user without TLS", "\n[account.a]\nuser = \"u\"\npassword_env = \"P\"\ntls = \"none\"\n", &["test.toml:3:8:", "account \"a\"", "only sent over TLS"]),
        ("two password sources", "[account.a]\nuser = \"u\"\npassword_env = \"P\"\npassword_command = \"c\"\n", &["test.toml:4:", "only one of"]),
        ("password without user", "[account.a]\npassword_env = \"P\"\n", &["test.toml:2:", "needs a user"]),
        ("empty password command", "[account.a]\nuser = \"u\"\npassword_command = \" \"\n", &["test.toml:3:", "empty"]),
        ("bad variable name", "[account.a]\nuser = \"u\"\npassword_env = \"A=B\"\n", &["test.toml:3:", "not a valid name"]),
        ("ca_file and fingerprint", "[account.a]\nca_file = \"c\"\nfingerprint = \"00\"\n", &["test.toml:3:", "alternatives"]),
        ("bad fingerprint", "[account.a]\nfingerprint = \"xyz\"\n", &["test.toml:2:", "64 hexadecimal"]),
        ("port 0", "[account.a]\nhost = \"h\"\nport = 0\n", &["test.toml:3:", "port 0"]),
        ("timeout 0", "[account.a]\ntimeout = 0\n", &["test.toml:2:", "from 1 to 86400"]),
        ("FAIL6 huge timeout", "[account.a]\nconnect_timeout = 9223372036854775807\n", &["test.toml:2:", "from 1 to 86400"]),
        ("host with a space", "[account.a]\nhost = \"smtp example\"\n", &["test.toml:2:", "not a host name"]),
        ("UX5 from with a line break", "[account.a]\nfrom = \"a@b.example\\r\\nRSET\"\n", &["test.toml:2:", "from"]),
        ("bad qualify_domain", "[account.a]\nqualify_domain = \"-x-\"\n", &["test.toml:2:", "qualify_domain"]),
        ("bad ehlo_name", "[account.a]\nehlo_name = \"a b\"\n", &["test.toml:2:", "ehlo_name"]),
        ("empty account name", "[account.\"\"]\nhost = \"h\"\n", &["test.toml:1:", "needs a name"]),
        ("default names nothing", "default_account = \"nope\"\n[account.a]\nhost = \"h\"\n", &["test.toml:1:", "nope", "accounts: a"]),
    ];
    for (id, text, needles) in cases {
        let error = parse_text(text).unwrap_err().to_string();
        for needle in *needles {
            assert!(error.contains(needle), "{id}: {error:?} lacks {needle:?}");
        }
    }
}

#[test]
fn tilde_means_the_home_directory_even_when_home_is_unset() {
    let config = parse_with(
        "dead_letter = \"~/dead\"\n[account.a]\nca_file = \"~/ca.pem\"\n".as_bytes(),
        Path::new("t.toml"),
        &env_of(&[]),
    )
    .unwrap();
    // Falls back to the password database entry of whoever runs the test.
    let ca = config.accounts()[0].ca_file.clone().unwrap();
    assert!(ca.is_absolute() && ca.ends_with("ca.pem"), "{ca:?}");
    assert!(config.dead_letter.unwrap().is_absolute());
}

#[test]
fn an_empty_file_is_an_empty_config() {
    let config = parse_text("").unwrap();
    assert!(config.accounts().is_empty());
    assert_eq!(config.select(None, None).unwrap(), None);
}

// covers: SUB2
#[test]
fn fingerprints_in_every_common_form() {
    let colons = "AB:".repeat(31) + "AB";
    for text in [
        colons.clone(),
        format!("sha256:{colons}"),
        "ab".repeat(32),
        format!("SHA256:{}", "Ab".repeat(32)),
    ] {
        assert_eq!(
            parse_fingerprint(&text),
            Ok(Fingerprint([0xab; 32])),
            "{text}"
        );
    }
    assert!(parse_fingerprint("ab").is_err());
    assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    assert_eq!(
        Fingerprint([0xab; 32]).to_string(),
        format!("sha256:{colons}")
    );
}

// covers: SUB6
#[test]
fn selects_accounts_like_msmtp() {
    let config = parse_text(FULL).unwrap();
    let pick = |name: Option<&str>, sender: Option<&str>| {
        config.select(name, sender).unwrap().map(|a| a.name.clone())
    };
    assert_eq!(pick(Some("lists"), None).as_deref(), Some("lists"));
    assert_eq!(
        pick(None, Some("alice@example.org")).as_deref(),
        Some("work")
    );
    assert_eq!(
        pick(None, Some("ALICE@Example.org")).as_deref(),
        Some("work")
    );
    assert_eq!(
        pick(None, Some("bot@lists.example.net")).as_deref(),
        Some("lists")
    );
    assert_eq!(
        pick(None, Some("someone@else.example")).as_deref(),
        Some("work"),
        "default_account"
    );
    assert_eq!(pick(None, None).as_deref(), Some("work"));
    let error = config.select(Some("nope"), None).unwrap_err().to_string();
    assert!(
        error.contains("nope") && error.contains("work, lists"),
        "{error}"
    );

    let named_default =
        parse_text("[account.x]\nhost = \"x\"\n[account.default]\nhost = \"d\"\n").unwrap();
    assert_eq!(
        named_default
            .select(None, None)
            .unwrap()
            .map(|a| a.name.as_str()),
        Some("default")
    );
    let single = parse_text("[account.only]\nhost = \"o\"\n").unwrap();
    assert_eq!(
        single.select(None, None).unwrap().map(|a| a.name.as_str()),
        Some("only")
    );
    let two = parse_text("[account.a]\nhost = \"a\"\n[account.b]\nhost = \"b\"\n").unwrap();
    assert_eq!(two.choose(None, None).unwrap(), Selection::Ambiguous);
    let none = parse_text("").unwrap();
    assert_eq!(none.select(None, None).unwrap(), None);
}

// covers: UX5
#[test]
fn ux5_several_accounts_and_nothing_to_choose_is_an_error_naming_them() {
    let two = parse_text("[account.a]\nhost = \"a\"\n[account.b]\nhost = \"b\"\n").unwrap();
    let error = two.select(None, None).unwrap_err().to_string();
    assert!(
        error.contains("test.toml: 2 accounts (a, b) and no default_account; pass -a NAME or set default_account"),
        "{error}"
    );
    let error = two
        .select(None, Some("x@y.example"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the sender x@y.example matches no account's from"),
        "{error}"
    );
}

// covers: UX5
#[test]
fn ux5_selection_says_why() {
    let config = parse_text(FULL).unwrap();
    let why = |name: Option<&str>, sender: Option<&str>| match config.choose(name, sender).unwrap()
    {
        Selection::Chosen(account, why) => format!("{}: {why}", account.name),
        other => format!("{other:?}"),
    };
    assert_eq!(why(Some("lists"), None), "lists: named with -a");
    assert_eq!(
        why(None, Some("bot@lists.example.net")),
        "lists: the sender bot@lists.example.net matches its from = \"*@lists.example.net\""
    );
    assert_eq!(why(None, None), "work: default_account names it");
    let named = parse_text("[account.x]\nhost = \"x\"\n[account.default]\nhost = \"d\"\n").unwrap();
    assert!(matches!(
        named.choose(None, None).unwrap(),
        Selection::Chosen(_, Why::NamedDefault)
    ));
    let only = parse_text("[account.only]\nhost = \"o\"\n").unwrap();
    assert!(matches!(
        only.choose(None, None).unwrap(),
        Selection::Chosen(_, Why::Only)
    ));
}

// covers: UX5
#[test]
fn ux5_no_file_found_names_every_file_looked_for() {
    let config = Config {
        searched: vec![
            PathBuf::from("/home/u/.config/tlsend/config.toml"),
            PathBuf::from("/etc/tlsend.toml"),
        ],
        ..Config::default()
    };
    let error = config.select(Some("work"), None).unwrap_err().to_string();
    assert_eq!(
        error,
        "-a work: no such account: no configuration file was found (looked for \
         /home/u/.config/tlsend/config.toml and /etc/tlsend.toml)"
    );
}

#[test]
fn glob_matching() {
    let cases = [
        ("*@example.org", "a@example.org", true),
        ("*@example.org", "a@example.org.evil", false),
        ("a?c@x", "abc@x", true),
        ("a?c@x", "ac@x", false),
        ("*", "", true),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("alice@example.org", "<alice@example.org>", true),
        // Found by the config fuzz target: a bracketed `from` never matched.
        ("<bob@example.org>", "bob@example.org", true),
        ("<*@example.org>", "<bob@example.org>", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
    }
}

// covers: FAIL2
#[test]
fn locates_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let home = dir.path().join("home");
    let system = dir.path().join("etc-tlsend.toml");
    let user_file = xdg.join("tlsend/config.toml");
    let home_file = home.join(".config/tlsend/config.toml");
    let env = env_of(&[
        ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
        ("HOME", home.to_str().unwrap()),
    ]);
    let env_home_only = env_of(&[("HOME", home.to_str().unwrap())]);
    let env_relative_xdg = env_of(&[
        ("XDG_CONFIG_HOME", "relative/xdg"),
        ("HOME", home.to_str().unwrap()),
    ]);

    assert_eq!(locate_in(None, &env, &system).unwrap(), None);
    std::fs::write(&system, "").unwrap();
    assert_eq!(
        locate_in(None, &env, &system).unwrap(),
        Some(system.clone())
    );
    std::fs::create_dir_all(home_file.parent().unwrap()).unwrap();
    std::fs::write(&home_file, "").unwrap();
    assert_eq!(
        locate_in(None, &env_home_only, &system).unwrap(),
        Some(home_file.clone())
    );
    // A relative XDG_CONFIG_HOME is ignored (XDG Base Directory spec).
    assert_eq!(
        locate_in(None, &env_relative_xdg, &system).unwrap(),
        Some(home_file.clone())
    );
    std::fs::create_dir_all(user_file.parent().unwrap()).unwrap();
    std::fs::write(&user_file, "").unwrap();
    assert_eq!(locate_in(None, &env, &system).unwrap(), Some(user_file));
    assert_eq!(
        locate_in(Some(&system), &env, &system).unwrap(),
        Some(system.clone())
    );
    let missing = dir.path().join("missing.toml");
    let error = locate_in(Some(&missing), &env, &system)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("missing.toml") && error.contains("no such file"),
        "{error}"
    );
    assert_eq!(
        locate_in(Some(Path::new("/dev/null")), &env, &system).unwrap(),
        Some(PathBuf::from("/dev/null"))
    );
}

// covers: SUB6
#[test]
fn sub6_secret_sources() {
    let ok = SecretSource::Command("printf 's3cret\\nsecond line'".into())
        .fetch()
        .unwrap();
    assert_eq!(ok.expose(), "s3cret");
    assert_eq!(format!("{ok:?} {ok}"), "<secret> <secret>");

    let failing = SecretSource::Command("printf 'hunter%s' 2; exit 3".into())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(
        failing.contains("failed") && failing.contains("exit status: 3"),
        "{failing}"
    );
    assert!(!failing.contains("hunter2"), "{failing}");
    // The command line may hold the secret; errors (which reach logs) name
    // only the program.
    let inline = SecretSource::Command("echo correct-horse >/dev/null; exit 1".into())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(
        inline.contains("running \"echo\"") && !inline.contains("correct-horse"),
        "{inline}"
    );
    // Nor a variable set for it before the program (a session token).
    let assigned = SecretSource::Command("OP_SESSION=tr0ub4dor false".into())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(
        assigned.contains("running \"false\"") && !assigned.contains("tr0ub4dor"),
        "{assigned}"
    );
    let empty = SecretSource::Command("true".into())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(empty.contains("no password"), "{empty}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "filesecret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        SecretSource::File(file.clone()).fetch().unwrap().expose(),
        "filesecret"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = SecretSource::File(file.clone())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(open.contains("chmod 600"), "{open}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
    let writable = SecretSource::File(file.clone())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(writable.contains("read or changed"), "{writable}");

    let unset = SecretSource::Env("TLSEND_TEST_SURELY_UNSET_VARIABLE".into())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(unset.contains("not set"), "{unset}");
    let path = SecretSource::Env("PATH".into()).fetch().unwrap();
    assert!(!path.expose().is_empty());
}

// covers: IN12
#[test]
fn aliases_is_a_path_an_empty_string_or_the_system_file() {
    assert_eq!(parse_text("").unwrap().aliases, AliasesFile::System);
    assert_eq!(
        parse_text("aliases = \"\"\n").unwrap().aliases,
        AliasesFile::None
    );
    assert_eq!(
        parse_text("aliases = \"~/aliases\"\n").unwrap().aliases,
        AliasesFile::File(PathBuf::from("/home/u/aliases"))
    );
    let relative = parse_text("\naliases = \"aliases\"\n").unwrap_err();
    assert_eq!(relative.position, Some((2, 11)), "{relative}");
    assert!(relative.to_string().contains("absolute path"), "{relative}");
}

// covers: UX6
#[test]
fn logfile_and_syslog_at_the_top_and_per_account() {
    let config = parse_text(
        "logfile = \"~/tlsend.log\"\nsyslog = true\n\
         [account.a]\nhost = \"a.example\"\n\
         [account.b]\nhost = \"b.example\"\nlogfile = \"/var/log/b.log\"\nsyslog = false\n",
    )
    .unwrap();
    let log = |name: &str| {
        let account = config.select(Some(name), None).unwrap();
        crate::request::log_settings(&config, account)
    };
    assert_eq!(log("a").file, Some(PathBuf::from("/home/u/tlsend.log")));
    assert!(log("a").syslog);
    assert_eq!(log("b").file, Some(PathBuf::from("/var/log/b.log")));
    assert!(!log("b").syslog);
    let none = parse_text("").unwrap();
    assert!(crate::request::log_settings(&none, None).is_off());
    let relative = parse_text("[account.a]\nlogfile = \"log.txt\"\n").unwrap_err();
    assert_eq!(relative.position, Some((2, 11)), "{relative}");
    assert!(relative.to_string().contains("absolute path"), "{relative}");
}

// covers: issue 12 (an example /etc/tlsend.toml that parses as shipped)
#[test]
fn the_shipped_example_configurations_parse() {
    let system = parse_with(
        include_str!("../../contrib/tlsend.toml").as_bytes(),
        Path::new("contrib/tlsend.toml"),
        &env_of(&[]),
    )
    .unwrap();
    let relay = system
        .select(None, None)
        .unwrap()
        .expect("the default account");
    assert_eq!(relay.name, "relay");
    assert_eq!(
        relay.password,
        Some(SecretSource::File(PathBuf::from("/etc/tlsend.password")))
    );
    assert_eq!(relay.qualify_domain.as_deref(), Some("example.org"));
    assert!(relay.from.is_some() && relay.user.is_some());

    let mine = parse_with(
        include_str!("../../examples/config.toml").as_bytes(),
        Path::new("examples/config.toml"),
        &env_of(&[("HOME", "/home/u")]),
    )
    .unwrap();
    let account = mine.select(None, None).unwrap().expect("the only account");
    assert_eq!(account.host.as_deref(), Some("smtp.example.org"));
    assert_eq!(
        account.password,
        Some(SecretSource::Env("SMTP_PASSWORD".into()))
    );
}

/// The keys a struct with derived `Deserialize` accepts: serde's derive
/// hands the list to `deserialize_struct`, so a field added to a Raw*
/// struct shows up here without anyone listing it.
fn keys_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Found;
    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Found {}
    impl serde::de::Error for Found {
        fn custom<M: fmt::Display>(_: M) -> Found {
            Found
        }
    }
    struct Fields(Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = Found;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            self.0 = Some(fields);
            Err(Found)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0.expect("a struct with named fields")
}

/// The CONFIGURATION section of the manual, per subsection: its title and
/// the keys it describes (each `.TP` entry that starts with a bold key).
fn documented_keys() -> Vec<(String, Vec<String>)> {
    let page = include_str!("../../man/tlsend.1");
    let section = page
        .split("\n.SH CONFIGURATION\n")
        .nth(1)
        .and_then(|rest| rest.split("\n.SH ").next())
        .expect("man/tlsend.1 has a CONFIGURATION section");
    section
        .split("\n.SS ")
        .skip(1)
        .map(|sub| {
            let (title, body) = sub.split_once('\n').unwrap_or((sub, ""));
            let title = title
                .trim_matches('"')
                .replace("\\fI", "")
                .replace("\\fR", "");
            let keys = format!("\n{body}")
                .split("\n.TP\n")
                .skip(1)
                .filter_map(|entry| entry.strip_prefix("\\fB"))
                .filter_map(|entry| entry.split_once("\\fR").map(|(key, _)| key))
                .map(|key| key.replace("\\-", "-"))
                .collect();
            (title, keys)
        })
        .collect()
}

// covers: UX4 (the manual documents every configuration key)
#[test]
fn the_manual_documents_every_configuration_key_and_no_other() {
    let documented = documented_keys();
    let keys_in = |title: &str| -> &[String] {
        documented
            .iter()
            .find(|(t, _)| t == title)
            .map(|(_, keys)| keys.as_slice())
            .unwrap_or_else(|| panic!("CONFIGURATION has no subsection {title:?}"))
    };
    let tables = [
        (
            "Top level",
            keys_of::<RawConfig>(),
            &["direct", "account"][..],
        ),
        ("[account.NAME]", keys_of::<RawAccount>(), &[][..]),
        ("[direct]", keys_of::<RawDirect>(), &[][..]),
    ];
    for (title, keys, subtables) in tables {
        let described = keys_in(title);
        for key in keys.iter().filter(|k| !subtables.contains(k)) {
            assert!(
                described.iter().any(|d| d == key),
                "man/tlsend.1, CONFIGURATION, {title}: key {key} is not documented \
                 (add a .TP entry to build.rs and re-bless)"
            );
        }
        for key in described {
            assert!(
                keys.contains(&key.as_str()),
                "man/tlsend.1, CONFIGURATION, {title}: documents {key}, which is not a key"
            );
        }
    }
}
