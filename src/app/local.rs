//! The app's side of local names (IN12): reading the aliases file the
//! configuration names, and `newaliases`, which has nothing to build but
//! checks the file.

use std::io;
use std::path::{Path, PathBuf};

use super::{Stop, say};
use crate::aliases::Aliases;
use crate::cli::Invocation;
use crate::config::{self, AliasesFile};
use crate::exit::Sysexit;

/// The system's aliases file, used when it exists.
pub const SYSTEM_ALIASES: &str = "/etc/aliases";

/// Larger than any aliases file written by hand; a bigger one is a mistake.
const MAX_ALIASES_SIZE: u64 = 16 * 1024 * 1024;

/// Reads the aliases file `setting` names; `None` when there is none to
/// read. Skipped lines are warned about on standard error.
pub(crate) fn load_aliases(setting: &AliasesFile) -> Result<Option<Aliases>, Stop> {
    let Some((aliases, warnings)) = read_aliases(setting)? else {
        return Ok(None);
    };
    for warning in &warnings {
        say(&format!("warning: {warning}"));
    }
    Ok(Some(aliases))
}

fn read_aliases(
    setting: &AliasesFile,
) -> Result<Option<(Aliases, Vec<crate::aliases::Warning>)>, Stop> {
    let (path, must_exist) = match setting {
        AliasesFile::None => return Ok(None),
        AliasesFile::System => (PathBuf::from(SYSTEM_ALIASES), false),
        AliasesFile::File(path) => (path.clone(), true),
    };
    let text = match read_limited(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !must_exist => return Ok(None),
        Err(e) => {
            return Err(Stop::new(
                Sysexit::Config,
                format!(
                    "cannot read the aliases file {}: {e}{}",
                    path.display(),
                    if must_exist {
                        "; fix the aliases setting, or set aliases = \"\" for none"
                    } else {
                        ""
                    }
                ),
            ));
        }
    };
    Ok(Some(Aliases::parse(&text, &path)))
}

fn read_limited(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_ALIASES_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_ALIASES_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_ALIASES_SIZE >> 20),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// `newaliases` (`-bi`, `-I`): tlsend reads the aliases file as it is, so
/// there is nothing to build; the file is checked instead, every name
/// expanded, and what would refuse a message is said. Exit 0 unless the
/// configuration or the file cannot be read.
pub(crate) fn check_aliases(invocation: &Invocation) -> Sysexit {
    let config = match config::load(invocation.config_file.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            say(&e.to_string());
            return Sysexit::Config;
        }
    };
    let (aliases, warnings) = match read_aliases(&config.aliases) {
        Ok(Some(read)) => read,
        Ok(None) => {
            if invocation.verbose > 0 {
                say("no aliases file is in use; nothing to check");
            }
            return Sysexit::Ok;
        }
        Err(stop) => {
            say(&stop.message);
            return stop.exit;
        }
    };
    for warning in &warnings {
        say(&format!("warning: {warning}"));
    }
    let mut problems = warnings.len();
    for name in aliases.names() {
        let address = match crate::address::Address::from_parts(name, None) {
            Ok(address) => address,
            Err(e) => {
                say(&format!("warning: alias {name:?}: {e}"));
                problems += 1;
                continue;
            }
        };
        match aliases.expand(&[address]) {
            // Its own unreadable line was warned about above.
            Err(crate::aliases::AliasError::Broken { name: broken, .. }) if broken == name => {}
            Err(e) => {
                say(&format!("warning: {e}"));
                problems += 1;
            }
            Ok(_) => {}
        }
    }
    if invocation.verbose > 0 || problems > 0 {
        say(&format!(
            "{}: {} aliases, {problems} problem{}; nothing to build (tlsend reads the file as it is)",
            aliases.origin().display(),
            aliases.len(),
            if problems == 1 { "" } else { "s" }
        ));
    }
    Sysexit::Ok
}
