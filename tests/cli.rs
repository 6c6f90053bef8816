//! The command line through the binary.

use std::path::Path;

/// The generated documents and their committed copies.
const GENERATED: &[(&str, &str)] = &[
    ("tlsend.1", "man/tlsend.1"),
    ("tlsend.bash", "completions/tlsend.bash"),
    ("_tlsend", "completions/_tlsend"),
    ("tlsend.fish", "completions/tlsend.fish"),
];

// covers: UX4
#[test]
fn ux4_man_page_and_completions_match_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("TLSEND_BLESS").is_some();
    for (generated, committed) in GENERATED {
        let fresh =
            std::fs::read(Path::new(env!("OUT_DIR")).join(generated)).expect("build.rs output");
        let path = root.join(committed);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let current = std::fs::read(&path).unwrap_or_default();
        assert!(
            current == fresh,
            "{committed} is out of date with src/cli.rs; run `TLSEND_BLESS=1 cargo test --test main ux4` and commit it"
        );
    }
}
