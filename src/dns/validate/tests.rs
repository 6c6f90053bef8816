use super::*;
use crate::dns::parse_name;

/// The DNSKEY of RFC 4034 5.4 (`dskey.example.com. 256 3 5 …`, key tag
/// 60485), whose DS is given there with SHA-1 and in RFC 4509 2.3 with
/// SHA-256.
const RFC4034_KEY: &str = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/\
                           2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvx\
                           egXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9Xzc\
                           nOf+EPbtG9DMBmADjFDc2w/rljwvFw==";

/// The P-384 key of RFC 6605 6.2 (`example.net. 257 3 14 …`, key tag
/// 10771) and its SHA-384 DS.
const RFC6605_P384_KEY: &str = "xKYaNhWdGOfJ+nPrL8/arkwf2EY3MDJ+SErKivBVSum1\
                                w/egsXvSADtNJhyem5RCOpgQ6K8X1DRSEkrbYQ+OB+v8\
                                /uX45NBwY8rp65F6Glur8I/mlVNgF6W/qTI37m40";

fn name(text: &str) -> Name {
    parse_name(text).unwrap()
}

fn rfc4034_key() -> DNSKEY {
    let public = BASE64.decode(RFC4034_KEY).unwrap();
    DNSKEY::with_flags(256, PublicKeyBuf::new(public, Algorithm::from_u8(5)))
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

// covers: MX8
#[test]
fn mx8_ds_digest_matches_the_rfc_4034_example() {
    let rdata = dnskey_rdata(&rfc4034_key());
    assert_eq!(key_tag(&rdata), 60485);
    // RFC 4034 5.4: DS 60485 5 1 2BB183AF…, the SHA-1 digest of the
    // canonical owner name followed by the DNSKEY RDATA.
    let sha1 = ds_digest(
        &name("dskey.example.com"),
        &rdata,
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
    );
    assert_eq!(upper_hex(&sha1), "2BB183AF5F22588179A53B0A98631FAD1A292118");
    // The owner name is taken in lower case (RFC 4034 6.2).
    let upper = ds_digest(
        &name("DSKEY.Example.COM"),
        &rdata,
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
    );
    assert_eq!(upper, sha1);
    // RFC 4509 2.3: the same key, SHA-256.
    let sha256 = ds_digest(&name("dskey.example.com"), &rdata, &ring::digest::SHA256);
    assert_eq!(
        upper_hex(&sha256),
        "D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A"
    );
    let ds = DsAnchor {
        key_tag: 60485,
        algorithm: Algorithm::from_u8(5),
        digest_type: SHA256,
        digest: sha256.clone(),
    };
    assert!(ds_matches(&ds, &name("dskey.example.com"), &rfc4034_key()));
    assert!(!ds_matches(&ds, &name("other.example.com"), &rfc4034_key()));
    let wrong_tag = DsAnchor {
        key_tag: 60486,
        ..ds.clone()
    };
    assert!(!ds_matches(
        &wrong_tag,
        &name("dskey.example.com"),
        &rfc4034_key()
    ));
    // A revoked key (RFC 5011) matches nothing, whatever its digest.
    let revoked = DNSKEY::with_flags(256 | REVOKED, rfc4034_key().public_key().clone());
    let revoked_ds = DsAnchor {
        key_tag: key_tag(&dnskey_rdata(&revoked)),
        digest: ds_digest(
            &name("dskey.example.com"),
            &dnskey_rdata(&revoked),
            &ring::digest::SHA256,
        ),
        ..ds
    };
    assert!(!ds_matches(
        &revoked_ds,
        &name("dskey.example.com"),
        &revoked
    ));
}

// covers: MX8
#[test]
fn mx8_ds_digest_matches_the_rfc_6605_sha384_example() {
    let public = BASE64.decode(RFC6605_P384_KEY).unwrap();
    let key = DNSKEY::with_flags(257, PublicKeyBuf::new(public, Algorithm::ECDSAP384SHA384));
    let rdata = dnskey_rdata(&key);
    assert_eq!(key_tag(&rdata), 10771);
    let digest = ds_digest(&name("example.net"), &rdata, &ring::digest::SHA384);
    assert_eq!(
        upper_hex(&digest),
        "72D7B62976CE06438E9C0BF319013CF801F09ECC84B8D7E9495F27E305C6A9B0\
         563A9B5F4D288405C3008A946DF983D6"
    );
}

// covers: MX8
#[test]
fn mx8_anchor_file_reads_dnskey_and_ds_lines_in_zone_file_form() {
    let text = format!(
        "; a comment line\n\
         \n\
         $TTL 3600\n\
         example.net. 3600 IN DNSKEY 257 3 14 ( {} ) ; key id = 10771\n\
         dskey.example.com. IN 86400 DS 60485 RSASHA1 2 (\n\
         \tD4B7D520E7BB5F0F67674A0C\n\
         \tCEB1E3E0614B93C4F9E99B83\n\
         \t83F6A1E4469DA50A )\n\
         \tDS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118\n\
         . IN DNSKEY 385 3 13 {}\n",
        RFC6605_P384_KEY, "AAAA"
    );
    let file = parse_anchor_file(&text).unwrap();
    assert_eq!(file.keys.len(), 1);
    assert_eq!(file.keys[0].0, name("example.net"));
    assert_eq!(file.keys[0].1.flags(), 257);
    assert_eq!(file.ds.len(), 1);
    let (owner, ds, line) = &file.ds[0];
    assert_eq!((owner, *line), (&name("dskey.example.com"), 5));
    assert_eq!(ds.key_tag, 60485);
    assert_eq!(ds.digest_type, SHA256);
    assert_eq!(upper_hex(&ds.digest)[..8], *"D4B7D520");
    // The SHA-1 DS (owner from the line before) and the revoked key are
    // left out, with their lines.
    assert_eq!(file.skipped.len(), 2, "{:?}", file.skipped);
    assert!(
        file.skipped[0].starts_with("line 9: SHA-1"),
        "{:?}",
        file.skipped
    );
    assert!(
        file.skipped[1].starts_with("line 10: the key is revoked"),
        "{:?}",
        file.skipped
    );
}

// covers: MX8
#[test]
fn mx8_anchor_file_errors_name_the_line() {
    let key = format!(". 300 IN DNSKEY 257 3 14 {RFC6605_P384_KEY}");
    for (text, line, words) in [
        ("garbage\n".to_string(), 1, "no record type"),
        (
            "a..b IN DS 1 13 2 abcd\n".to_string(),
            1,
            "the owner \"a..b\" is not a domain name",
        ),
        (
            format!("{key}\n. 300 IN A 192.0.2.1\n"),
            2,
            "a A record is not a trust anchor",
        ),
        (
            format!("\n\n{key}\n. IN DS 1 13 2 XYZ\n"),
            4,
            "not hexadecimal",
        ),
        (". IN DS 1 13 2 abcd\n".to_string(), 1, "32 octets"),
        (
            ". IN DS 70000 13 2 abcd\n".to_string(),
            1,
            "key tag \"70000\"",
        ),
        (". IN DNSKEY 257 2 13 AAAA\n".to_string(), 1, "must be 3"),
        (". IN DNSKEY 257 3 13 !!!\n".to_string(), 1, "not base64"),
        (". IN DNSKEY 257 3 13 AAAA\n".to_string(), 1, "not a valid"),
        (". IN DNSKEY 1 3 13 AAAA\n".to_string(), 1, "zone key bit"),
        (
            ". IN DNSKEY 257 3 FOO AAAA\n".to_string(),
            1,
            "not a DNSSEC algorithm",
        ),
        (". CH DNSKEY 257 3 13 AAAA\n".to_string(), 1, "class CH"),
        ("$ORIGIN example.\n".to_string(), 1, "$ORIGIN directive"),
        ("@ IN DS 1 13 2 abcd\n".to_string(), 1, "not @"),
        (
            "  IN DS 1 13 2 abcd\n".to_string(),
            1,
            "owner of the record before",
        ),
        (
            format!("{key}\n\n. IN DS 1 13 2 (\nab\n"),
            3,
            "never closed",
        ),
        (". IN DS 1 13 2 ab)\n".to_string(), 1, "')' without"),
    ] {
        match parse_anchor_file(&text) {
            Err((got, reason)) => {
                assert_eq!(got, line, "{text:?}: {reason}");
                assert!(reason.contains(words), "{text:?}: {reason}");
            }
            Ok(file) => panic!("{text:?} accepted: {file:?}"),
        }
    }
}

// covers: MX8
#[test]
fn mx8_setup_errors_say_the_file_and_the_line() {
    let error = SetupError::Malformed {
        path: PathBuf::from("/etc/tlsend/root.key"),
        line: 7,
        reason: "the digest \"XYZ\" is not hexadecimal".into(),
    };
    assert_eq!(
        error.to_string(),
        "the trust anchor file /etc/tlsend/root.key, line 7: the digest \"XYZ\" is not hexadecimal"
    );
    assert!(!error.is_temporary());
    let fetch = SetupError::Fetch {
        path: PathBuf::from("/a"),
        owner: ".".into(),
        error: LookupError::Timeout {
            name: ".".into(),
            limit: Duration::from_secs(1),
        },
    };
    assert!(fetch.is_temporary());
}

// covers: MX8
#[test]
fn mx8_bogus_records_never_read_as_no_records() {
    let shown = "example.net";
    let mut secure = Record::from_rdata(
        name("example.net"),
        300,
        RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 1)),
    );
    secure.proof = Proof::Secure;
    let mut bogus = secure.clone();
    bogus.proof = Proof::Bogus;
    let answer = read_answers(std::slice::from_ref(&secure), RecordType::A, shown).unwrap();
    assert_eq!(answer.security, Security::Secure);
    let error = read_answers(&[secure.clone(), bogus], RecordType::A, shown).unwrap_err();
    assert!(matches!(error, LookupError::Bogus { .. }), "{error:?}");
    let mut unproven = secure.clone();
    unproven.proof = Proof::Indeterminate;
    let answer = read_answers(&[secure, unproven], RecordType::A, shown).unwrap();
    assert_eq!(answer.security, Security::Insecure);
    let error = read_error(
        NetError::Dns(DnsError::DnssecBogus),
        &name(shown),
        shown,
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(matches!(error, LookupError::Bogus { .. }), "{error:?}");
}
