//! Text from elsewhere (a server, a certificate, a failure reason) made
//! safe to show or to store in one line: control characters, terminal
//! escapes and line breaks among them, become visible escapes.

/// `text` with every control character escaped (`\u{1b}`, `\n`, …).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("CN=evil\x1b[2J"), "CN=evil\\u{1b}[2J");
        assert_eq!(printable("a\r\nFrom b"), "a\\r\\nFrom b");
        assert_eq!(
            printable("CN=localhost, O=Ünïcode"),
            "CN=localhost, O=Ünïcode"
        );
    }
}
