//! Who runs tlsend: the login name and home directory, from the environment
//! or, when it was cleared (PHP-FPM's default, many system services), from
//! the password database entry of the real user id, as Postfix's sendmail
//! does with getpwuid. Used for the default envelope sender and for
//! `~/dead.letter`.

use std::ffi::OsString;
use std::path::PathBuf;

/// One /etc/passwd entry's fields that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub home: PathBuf,
}

/// The entry for `uid` in passwd(5) text.
pub fn find_uid(passwd: &str, uid: u32) -> Option<PasswdEntry> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let (name, id, home) = (fields.first()?, fields.get(2)?, fields.get(5)?);
        (id.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| PasswdEntry {
            name: name.to_string(),
            home: PathBuf::from(home),
        })
    })
}

fn passwd_entry() -> Option<PasswdEntry> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    find_uid(&text, rustix::process::getuid().as_raw())
}

/// LOGNAME, else USER, else the password database.
pub fn login_name(env: &dyn Fn(&str) -> Option<OsString>) -> Option<String> {
    ["LOGNAME", "USER"]
        .iter()
        .find_map(|key| {
            env(key)
                .and_then(|v| v.into_string().ok())
                .filter(|v| !v.is_empty())
        })
        .or_else(|| passwd_entry().map(|e| e.name))
}

/// HOME, else the password database.
pub fn home_dir(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| passwd_entry().map(|e| e.home))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_entry_of_a_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # comment\n\
                      broken line\n\
                      www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
        assert_eq!(
            find_uid(passwd, 33),
            Some(PasswdEntry {
                name: "www-data".into(),
                home: PathBuf::from("/var/www")
            })
        );
        assert_eq!(find_uid(passwd, 0).map(|e| e.name), Some("root".into()));
        assert_eq!(find_uid(passwd, 1000), None);
    }

    #[test]
    fn the_environment_comes_first() {
        let env = |key: &str| (key == "USER").then(|| OsString::from("alice"));
        assert_eq!(login_name(&env).as_deref(), Some("alice"));
        let none = |_: &str| None;
        // Falls back to the password database of whoever runs the test.
        assert!(login_name(&none).is_some_and(|n| !n.is_empty()));
    }
}
