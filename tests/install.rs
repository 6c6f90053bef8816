//! `make install` and friends, run into a staging directory (DESTDIR) with
//! the binary this test run built (BIN=…), so CI builds no second release.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_tlsend");

/// True when make is there; skips with a notice otherwise, except in CI.
fn have_make(test: &str) -> bool {
    match Command::new("make").arg("--version").output() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{test}: make: {e}"),
        Err(e) => {
            eprintln!("NOTICE: {test} skipped: make: {e} (`apt-get install make`)");
            false
        }
    }
}

/// Runs `make TARGET DESTDIR=… BIN=… ARGS…` in the source tree.
fn make(target: &str, destdir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg(target)
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("BIN={BINARY}"))
        .args(args)
        // An inherited PREFIX (Termux sets one) must not move the install.
        .env_remove("PREFIX")
        .env_remove("MAKEFLAGS")
        .output()
        .expect("make runs")
}

#[track_caller]
fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "make failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file and link under `root`: path relative to it -> (mode, link target).
fn tree(root: &Path) -> BTreeMap<String, (u32, Option<PathBuf>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Option<PathBuf>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let link = meta
                .file_type()
                .is_symlink()
                .then(|| std::fs::read_link(&path).unwrap());
            out.insert(relative, (meta.permissions().mode() & 0o7777, link));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

const INSTALLED: &[(&str, u32, &str)] = &[
    ("usr/bin/tlsend", 0o755, ""),
    ("usr/share/man/man1/tlsend.1", 0o644, "man/tlsend.1"),
    (
        "usr/share/bash-completion/completions/tlsend",
        0o644,
        "completions/tlsend.bash",
    ),
    (
        "usr/share/zsh/site-functions/_tlsend",
        0o644,
        "completions/_tlsend",
    ),
    (
        "usr/share/fish/vendor_completions.d/tlsend.fish",
        0o644,
        "completions/tlsend.fish",
    ),
];

// covers: issue 12 (install: binary 0755 outside any home, man page, completions)
#[test]
fn make_install_puts_every_file_in_place_with_its_mode_and_uninstall_removes_them() {
    if !have_make("make_install_puts_every_file_in_place") {
        return;
    }
    let dest = tempfile::tempdir().unwrap();
    assert_success(&make("install", dest.path(), &["PREFIX=/usr"]));

    let files = tree(dest.path());
    let expected: Vec<&str> = INSTALLED.iter().map(|(path, _, _)| *path).collect();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut sorted = expected.clone();
            sorted.sort_unstable();
            sorted
        },
        "exactly these files, nothing else"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, mode, source) in INSTALLED {
        assert_eq!(files[*path], (*mode, None), "{path}");
        let source = if source.is_empty() {
            PathBuf::from(BINARY)
        } else {
            root.join(source)
        };
        assert!(
            std::fs::read(dest.path().join(path)).unwrap() == std::fs::read(&source).unwrap(),
            "{path} is a copy of {}",
            source.display()
        );
    }
    let version = Command::new(dest.path().join("usr/bin/tlsend"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("tlsend "));

    assert_success(&make("uninstall", dest.path(), &["PREFIX=/usr"]));
    assert!(tree(dest.path()).is_empty(), "{:?}", tree(dest.path()));
}

// covers: issue 12 (PREFIX defaults to /usr/local)
#[test]
fn make_install_defaults_to_usr_local() {
    if !have_make("make_install_defaults_to_usr_local") {
        return;
    }
    let dest = tempfile::tempdir().unwrap();
    assert_success(&make("install", dest.path(), &[]));
    let files = tree(dest.path());
    assert_eq!(files["usr/local/bin/tlsend"], (0o755, None));
    assert_eq!(files["usr/local/share/man/man1/tlsend.1"], (0o644, None));
    assert_eq!(files.len(), INSTALLED.len(), "{files:?}");
}

// covers: IN6 (argv[0] links only on request), issue 12 (never over a package's sendmail)
#[test]
fn make_install_sendmail_links_the_personalities_but_never_replaces_a_sendmail() {
    if !have_make("make_install_sendmail") {
        return;
    }
    let dest = tempfile::tempdir().unwrap();
    // What Debian's MTA package leaves: a sendmail binary, mailq a link to it.
    let sbin = dest.path().join("usr/sbin");
    std::fs::create_dir_all(&sbin).unwrap();
    std::fs::write(sbin.join("sendmail"), "the MTA's sendmail").unwrap();

    let refused = make("install-sendmail", dest.path(), &["PREFIX=/usr"]);
    assert!(!refused.status.success(), "an existing sendmail is refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("/usr/sbin/sendmail exists") && stderr.contains("dpkg-divert"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(sbin.join("sendmail")).unwrap(),
        "the MTA's sendmail",
        "left alone"
    );
    let files = tree(dest.path());
    assert!(
        !files.contains_key("usr/bin/mailq") && !files.contains_key("usr/bin/newaliases"),
        "all or nothing: {files:?}"
    );

    // Once it is out of the way (dpkg-divert --rename, or the MTA removed).
    std::fs::remove_file(sbin.join("sendmail")).unwrap();
    assert_success(&make("install-sendmail", dest.path(), &["PREFIX=/usr"]));
    // Again: a second run finds its own links and changes nothing.
    assert_success(&make("install-sendmail", dest.path(), &["PREFIX=/usr"]));
    let files = tree(dest.path());
    for link in ["usr/sbin/sendmail", "usr/bin/mailq", "usr/bin/newaliases"] {
        assert_eq!(
            files[link].1.as_deref(),
            Some(Path::new("/usr/bin/tlsend")),
            "{link}"
        );
    }

    // uninstall takes the links with it, and only its own.
    std::fs::write(dest.path().join("usr/bin/other"), "").unwrap();
    assert_success(&make("uninstall", dest.path(), &["PREFIX=/usr"]));
    let left: Vec<String> = tree(dest.path()).into_keys().collect();
    assert_eq!(left, ["usr/bin/other"]);
}
