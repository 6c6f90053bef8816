//! Credential sources (SUB6): a command (msmtp's `passwordeval`), a file
//! only its owner can read (or, owned by root, its group), or an
//! environment variable. Never the command line, never the configuration
//! file itself. A [`Secret`] prints as `<secret>` so that no log line or
//! error can show it by accident.

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::ConfigError;

/// Where a password or token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Run with `sh -c`; the first line of its output is the secret.
    Command(String),
    /// A file readable only by its owner (or, owned by root, by its group);
    /// its content (one trailing newline removed) is the secret.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// A password or token. Only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Why a password file with this mode and owner is not to be trusted.
/// Only its owner may read it, except that a file owned by root may be
/// shared read-only with its group (root:tlsend 0640, so that cron jobs and
/// www-data in that group can send; see contrib/tlsend.toml): that is an
/// administrator's decision, where a user's own file readable by a group is
/// usually a mistake.
pub fn too_open(mode: u32, owner: u32) -> Option<&'static str> {
    if mode & 0o037 != 0 {
        Some("can be read or changed by other users")
    } else if mode & 0o040 != 0 && owner != 0 {
        Some(
            "can be read by its group (only a file owned by root may be shared with a group, \
             as root:GROUP mode 0640)",
        )
    } else {
        None
    }
}

impl SecretSource {
    /// Gets the secret. Errors name the source, never its output.
    pub fn fetch(&self) -> Result<Secret, ConfigError> {
        self.fetch_watched(&AtomicU32::new(0))
    }

    /// As [`fetch`](Self::fetch); while a password command runs, `running`
    /// holds its process id, which is also the id of a process group of its
    /// own, so that a caller told to stop can end the command and whatever
    /// it started. (Its standard input is /dev/null; prompts go through
    /// agents such as gpg-agent, not this terminal.)
    pub fn fetch_watched(&self, running: &AtomicU32) -> Result<Secret, ConfigError> {
        match self {
            SecretSource::Command(command) => {
                // Only the program is named: the rest of a command line may
                // hold the secret itself (`echo …`, `TOKEN=… prog`), and
                // errors reach logs.
                let program = command
                    .split_whitespace()
                    .find(|word| !word.contains('='))
                    .unwrap_or_default();
                let shown = format!("password_command (running {program:?})");
                let could_not_run =
                    |e: std::io::Error| ConfigError::new(format!("{shown} could not run: {e}"));
                let child = Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .process_group(0)
                    .spawn()
                    .map_err(could_not_run)?;
                running.store(child.id(), Ordering::SeqCst);
                let output = child.wait_with_output();
                running.store(0, Ordering::SeqCst);
                let output = output.map_err(could_not_run)?;
                if !output.status.success() {
                    return Err(ConfigError::new(format!(
                        "{shown} failed ({})",
                        output.status
                    )));
                }
                let text = String::from_utf8(output.stdout).map_err(|_| {
                    ConfigError::new(format!("{shown} printed something that is not UTF-8"))
                })?;
                let first = text.lines().next().unwrap_or_default();
                if first.is_empty() {
                    return Err(ConfigError::new(format!("{shown} printed no password")));
                }
                Ok(Secret(first.to_string()))
            }
            SecretSource::File(path) => {
                let shown = path.display();
                let failed =
                    |e: std::io::Error| ConfigError::new(format!("password_file {shown}: {e}"));
                // Check the file that is read, not the path: no swap in between.
                let mut file = fs::File::open(path).map_err(failed)?;
                let metadata = file.metadata().map_err(failed)?;
                if let Some(problem) = too_open(metadata.permissions().mode(), metadata.uid()) {
                    return Err(ConfigError::new(format!(
                        "password_file {shown} {problem}; run chmod 600 {shown}"
                    )));
                }
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(failed)?;
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(ConfigError::new(format!("password_file {shown} is empty")));
                }
                Ok(Secret(value.to_string()))
            }
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Secret(value)),
                Ok(_) => Err(ConfigError::new(format!("password_env: ${name} is empty"))),
                Err(std::env::VarError::NotPresent) => Err(ConfigError::new(format!(
                    "password_env: ${name} is not set"
                ))),
                Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(format!(
                    "password_env: ${name} is not UTF-8"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::too_open;

    // covers: SUB6 (a password file other users cannot read), issue 12 (a
    // root-owned file shared with the group of cron's and www-data's users)
    #[test]
    fn a_password_file_is_private_or_shared_read_only_by_root_with_a_group() {
        assert_eq!(too_open(0o100600, 1000), None);
        assert_eq!(too_open(0o100400, 1000), None);
        assert_eq!(too_open(0o100640, 0), None, "root:tlsend 0640");
        assert_eq!(too_open(0o100440, 0), None);
        assert!(
            too_open(0o100640, 1000).is_some(),
            "a user's file, group-readable"
        );
        for mode in [0o100644, 0o100604, 0o100660, 0o100620, 0o100610, 0o100602] {
            assert!(too_open(mode, 0).is_some(), "{mode:o}");
            assert!(too_open(mode, 1000).is_some(), "{mode:o}");
        }
    }
}
