//! SASL for SMTP AUTH (RFC 4954): mechanism choice and the client messages of
//! PLAIN (RFC 4616), LOGIN, XOAUTH2 and OAUTHBEARER (RFC 7628).
//!
//! Pure encodings; the dialogue is in the session, which only offers AUTH on
//! a TLS session (SUB6). A secret is held in [`Credentials`], whose `Debug`
//! never shows it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::Missing;

/// A SASL mechanism tlsend can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism name as advertised in EHLO.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Which mechanism the user allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthChoice {
    /// PLAIN, else LOGIN. Token mechanisms are never picked automatically:
    /// sending a password as a bearer token would be wrong either way.
    Auto,
    Only(Mechanism),
}

/// A user name and its secret (password or OAuth token).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    secret: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            secret: secret.into(),
        }
    }

    pub(super) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("secret", &"<secret>")
            .finish()
    }
}

/// Picks the mechanism to use from those the server offers.
pub fn choose(choice: AuthChoice, offered: &[String]) -> Result<Mechanism, Missing> {
    let offers = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
    let wanted = match choice {
        AuthChoice::Only(m) if offers(m) => return Ok(m),
        AuthChoice::Only(m) => m.name().to_string(),
        AuthChoice::Auto => {
            if let Some(m) = [Mechanism::Plain, Mechanism::Login]
                .into_iter()
                .find(|&m| offers(m))
            {
                return Ok(m);
            }
            "PLAIN or LOGIN".to_string()
        }
    };
    if offered.is_empty() {
        return Err(Missing::Auth);
    }
    Err(Missing::AuthMechanism {
        wanted,
        offered: offered.to_vec(),
    })
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`, base64; no authzid.
pub fn plain_response(credentials: &Credentials) -> String {
    let message = format!("\0{}\0{}", credentials.user, credentials.secret());
    BASE64.encode(message)
}

/// LOGIN sends the user name and the password as two base64 answers.
pub fn login_responses(credentials: &Credentials) -> (String, String) {
    (
        BASE64.encode(&credentials.user),
        BASE64.encode(credentials.secret()),
    )
}

/// XOAUTH2 (Google/Microsoft): `user=U ^A auth=Bearer T ^A ^A`, base64.
pub fn xoauth2_response(credentials: &Credentials) -> String {
    let message = format!(
        "user={}\x01auth=Bearer {}\x01\x01",
        credentials.user,
        credentials.secret()
    );
    BASE64.encode(message)
}

/// RFC 7628 3.1: `n,a=USER,^Ahost=H^Aport=P^Aauth=Bearer T^A^A`, base64,
/// with "," and "=" in the user name escaped as RFC 5801 saslname requires.
pub fn oauthbearer_response(credentials: &Credentials, host: &str, port: u16) -> String {
    let user = credentials.user.replace('=', "=3D").replace(',', "=2C");
    let message = format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        credentials.secret()
    );
    BASE64.encode(message)
}

/// After a failed XOAUTH2/OAUTHBEARER exchange the server sends a 334
/// challenge with error details; the client answers this to end it
/// (RFC 7628 3.2.3: a single %x01; XOAUTH2 takes an empty line).
pub fn token_failure_ack(mechanism: Mechanism) -> &'static str {
    match mechanism {
        Mechanism::OAuthBearer => "AQ==",
        _ => "",
    }
}

/// Decodes a 334 challenge for the transcript (LOGIN's "Username:").
pub fn decode_challenge(text: &str) -> Option<String> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("alice", "s3cret")
    }

    fn decoded(b64: &str) -> Vec<u8> {
        BASE64.decode(b64).unwrap()
    }

    // covers: SUB6
    #[test]
    fn sub6_encodes_each_mechanism() {
        assert_eq!(decoded(&plain_response(&creds())), b"\0alice\0s3cret");
        let (user, pass) = login_responses(&creds());
        assert_eq!(
            (decoded(&user), decoded(&pass)),
            (b"alice".to_vec(), b"s3cret".to_vec())
        );
        assert_eq!(
            decoded(&xoauth2_response(&creds())),
            b"user=alice\x01auth=Bearer s3cret\x01\x01"
        );
        let odd = Credentials::new("a,b=c", "tok");
        assert_eq!(
            decoded(&oauthbearer_response(&odd, "smtp.example.org", 587)),
            b"n,a=a=2Cb=3Dc,\x01host=smtp.example.org\x01port=587\x01auth=Bearer tok\x01\x01"
        );
    }

    // covers: SUB6
    #[test]
    fn sub6_debug_never_shows_the_secret() {
        let shown = format!("{:?}", creds());
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn chooses_plain_then_login_and_never_tokens_automatically() {
        let offered = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(AuthChoice, &[&str], Result<Mechanism, Missing>)] = &[
            (AuthChoice::Auto, &["LOGIN", "PLAIN"], Ok(Mechanism::Plain)),
            (
                AuthChoice::Auto,
                &["LOGIN", "XOAUTH2"],
                Ok(Mechanism::Login),
            ),
            (AuthChoice::Auto, &["plain"], Ok(Mechanism::Plain)),
            (
                AuthChoice::Auto,
                &["XOAUTH2"],
                Err(Missing::AuthMechanism {
                    wanted: "PLAIN or LOGIN".into(),
                    offered: vec!["XOAUTH2".into()],
                }),
            ),
            (AuthChoice::Auto, &[], Err(Missing::Auth)),
            (
                AuthChoice::Only(Mechanism::XOAuth2),
                &["PLAIN", "XOAUTH2"],
                Ok(Mechanism::XOAuth2),
            ),
            (
                AuthChoice::Only(Mechanism::Login),
                &["PLAIN"],
                Err(Missing::AuthMechanism {
                    wanted: "LOGIN".into(),
                    offered: vec!["PLAIN".into()],
                }),
            ),
        ];
        for (choice, list, expected) in cases {
            assert_eq!(
                &choose(*choice, &offered(list)),
                expected,
                "{choice:?} {list:?}"
            );
        }
    }

    #[test]
    fn decodes_login_challenges() {
        assert_eq!(
            decode_challenge("VXNlcm5hbWU6").as_deref(),
            Some("Username:")
        );
        assert_eq!(decode_challenge("!!"), None);
    }
}
