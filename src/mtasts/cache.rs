//! The on-disk MTA-STS policy cache (RFC 8461 3.3 and 5.1): one file per
//! policy domain in a directory the caller chooses, holding the last policy
//! fetched (its id, when it was fetched, the policy text) and the last
//! failed fetch (for the five-minute backoff).
//!
//! The file is named after the domain, lower-case; only host names made of
//! letters, digits, hyphens and dots are accepted, so a name can never leave
//! the directory. A file is replaced atomically: written to a temporary file
//! in the same directory, fsync'd, renamed over the old one, and the
//! directory fsync'd. A file that cannot be read back as a cache entry is
//! treated as absent, with a reason the caller can show.
//!
//! Time is never read here: the caller passes `now`, so tests control expiry.
//!
//! The format is text:
//!
//! ```text
//! tlsend-mta-sts-cache 1
//! domain: example.com
//! policy-id: 20240101T000000
//! fetched: 1704067200
//! failed-id: 20240102T000000
//! failed-at: 1704153600
//!
//! version: STSv1
//! mode: enforce
//! mx: mx.example.com
//! max_age: 604800
//! ```
//!
//! `policy-id` and `fetched` come with the policy text after the empty line;
//! `failed-id` and `failed-at` come together. Times are Unix seconds.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::policy::{Policy, is_domain};
use super::record::MAX_ID_LEN;
use crate::text::printable;

/// After a failed fetch, no new fetch for the same policy id for this long
/// (RFC 8461 3.3: "limit further attempts to a period of five minutes or
/// longer per version ID").
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5 * 60);

const MAGIC: &str = "tlsend-mta-sts-cache 1";
/// A policy body is at most 64 KiB; the header lines are short.
const MAX_FILE: u64 = 64 * 1024 + 4096;

/// A policy as it was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPolicy {
    /// The id of the TXT record that led to the fetch (RFC 8461 3.1).
    pub id: String,
    pub policy: Policy,
    pub fetched: SystemTime,
}

impl CachedPolicy {
    /// When the policy stops applying: `max_age` after the fetch (RFC 8461
    /// 3.2).
    pub fn expires(&self) -> SystemTime {
        self.fetched
            .checked_add(Duration::from_secs(self.policy.max_age))
            .unwrap_or(self.fetched)
    }

    /// Whether the policy still applies at `now` (RFC 8461 3.3: "valid
    /// (non-expired)").
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.expires()
    }
}

/// The last fetch that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedFetch {
    /// The policy id the fetch was for.
    pub id: String,
    pub at: SystemTime,
}

impl FailedFetch {
    /// Whether a fetch for `id` must wait at `now` (RFC 8461 3.3). A failure
    /// recorded in the future (the clock went back) does not hold fetches up.
    pub fn holds_back(&self, id: &str, now: SystemTime) -> bool {
        self.id == id
            && now
                .duration_since(self.at)
                .is_ok_and(|since| since < FAILURE_BACKOFF)
    }
}

/// What the cache knows about one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub policy: Option<CachedPolicy>,
    pub failure: Option<FailedFetch>,
}

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

/// A cache problem. None of them stops a delivery: a file that cannot be
/// read counts as no cached policy, one that cannot be written is only
/// reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// The domain is not a host name that can name a cache file.
    InvalidDomain(String),
    /// The file exists but is not a cache entry; it is ignored, and replaced
    /// on the next write.
    Corrupt { path: PathBuf, reason: String },
    /// Reading or writing failed.
    Io {
        path: PathBuf,
        action: &'static str,
        error: String,
    },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::InvalidDomain(domain) => write!(
                f,
                "\"{}\" is not a domain name the MTA-STS cache can hold",
                printable(domain)
            ),
            CacheError::Corrupt { path, reason } => write!(
                f,
                "ignoring the MTA-STS cache file {}: {reason}",
                path.display()
            ),
            CacheError::Io {
                path,
                action,
                error,
            } => write!(
                f,
                "cannot {action} the MTA-STS cache file {}: {error}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CacheError {}

impl Cache {
    /// A cache in `dir`. Nothing is touched until the first load or save;
    /// the directory is created on the first save.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file for `domain`: lower case, without a trailing dot, and only
    /// if it is a host name (so no `/`, `..` or empty name).
    pub fn path(&self, domain: &str) -> Result<PathBuf, CacheError> {
        let name = cache_name(domain).ok_or_else(|| CacheError::InvalidDomain(domain.into()))?;
        Ok(self.dir.join(name))
    }

    /// What is cached for `domain`; an empty entry when there is no file.
    pub fn load(&self, domain: &str) -> Result<Entry, CacheError> {
        let path = self.path(domain)?;
        let io_error = |action, error: io::Error| CacheError::Io {
            path: path.clone(),
            action,
            error: error.to_string(),
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Entry::default()),
            Err(e) => return Err(io_error("open", e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("read", e))?;
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.clone(),
            reason,
        };
        if bytes.len() as u64 > MAX_FILE {
            return Err(corrupt(format!("it is larger than {MAX_FILE} bytes")));
        }
        let name = cache_name(domain).unwrap_or_default();
        decode(&bytes, &name).map_err(corrupt)
    }

    /// Replaces what is cached for `domain` with `entry`, atomically.
    pub fn save(&self, domain: &str, entry: &Entry) -> Result<(), CacheError> {
        let path = self.path(domain)?;
        let name = cache_name(domain).unwrap_or_default();
        let text = encode(entry, &name);
        let io_error = |action, error: io::Error| CacheError::Io {
            path: path.clone(),
            action,
            error: error.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error("create the directory of", e))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| io_error("create a temporary file for", e))?;
        temp.write_all(text.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| io_error("write", e))?;
        temp.persist(&path)
            .map_err(|e| io_error("replace", e.error))?;
        // The rename itself must reach the disk too.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io_error("sync the directory of", e))
    }
}

/// The file name for `domain`, if it is a host name.
fn cache_name(domain: &str) -> Option<String> {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    is_domain(name).then(|| name.to_ascii_lowercase())
}

fn encode(entry: &Entry, domain: &str) -> String {
    let mut out = format!("{MAGIC}\ndomain: {domain}\n");
    if let Some(cached) = &entry.policy {
        out.push_str(&format!(
            "policy-id: {}\nfetched: {}\n",
            cached.id,
            unix(cached.fetched)
        ));
    }
    if let Some(failure) = &entry.failure {
        out.push_str(&format!(
            "failed-id: {}\nfailed-at: {}\n",
            failure.id,
            unix(failure.at)
        ));
    }
    out.push('\n');
    if let Some(cached) = &entry.policy {
        out.push_str(&cached.policy.to_string());
    }
    out
}

fn decode(bytes: &[u8], domain: &str) -> Result<Entry, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let (head, body) = text
        .split_once("\n\n")
        .ok_or("it has no empty line after its header")?;
    let mut lines = head.split('\n');
    if lines.next() != Some(MAGIC) {
        return Err(format!("it does not begin with \"{MAGIC}\""));
    }
    let mut fields = std::collections::HashMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("line \"{}\" is not \"name: value\"", printable(line)))?;
        if fields.insert(name, value).is_some() {
            return Err(format!("it has two {name} lines"));
        }
    }
    if fields.remove("domain") != Some(domain) {
        return Err(format!("it is not the file for {domain}"));
    }
    let mut take = |name: &str| fields.remove(name);
    let policy = match (take("policy-id"), take("fetched")) {
        (Some(id), Some(fetched)) => {
            let policy = Policy::parse(body.as_bytes())
                .map_err(|e| format!("its policy does not parse: {e}"))?;
            Some(CachedPolicy {
                id: valid_id(id)?,
                policy,
                fetched: time(fetched)?,
            })
        }
        (None, None) if body.is_empty() => None,
        _ => return Err("its policy is incomplete".into()),
    };
    let failure = match (take("failed-id"), take("failed-at")) {
        (Some(id), Some(at)) => Some(FailedFetch {
            id: valid_id(id)?,
            at: time(at)?,
        }),
        (None, None) => None,
        _ => return Err("its failed fetch is incomplete".into()),
    };
    if let Some(name) = fields.keys().next() {
        return Err(format!("it has an unknown line {}", printable(name)));
    }
    Ok(Entry { policy, failure })
}

fn valid_id(id: &str) -> Result<String, String> {
    let valid =
        !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(id.to_string())
    } else {
        Err(format!("its policy id \"{}\" is not valid", printable(id)))
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn time(text: &str) -> Result<SystemTime, String> {
    text.parse::<u64>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .ok_or_else(|| format!("\"{}\" is not a time", printable(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtasts::policy::PolicyMode;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sample() -> Entry {
        Entry {
            policy: Some(CachedPolicy {
                id: "abc123".into(),
                policy: Policy::parse(
                    b"version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: 86400\n",
                )
                .unwrap(),
                fetched: at(1_700_000_000),
            }),
            failure: Some(FailedFetch {
                id: "def456".into(),
                at: at(1_700_000_300),
            }),
        }
    }

    // covers: MX7
    #[test]
    fn mx7_entries_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("mta-sts"));
        assert_eq!(cache.load("example.com"), Ok(Entry::default()));
        let entry = sample();
        cache.save("Example.COM.", &entry).unwrap();
        assert_eq!(cache.load("example.com"), Ok(entry.clone()));
        assert!(dir.path().join("mta-sts/example.com").is_file());

        let only_failure = Entry {
            policy: None,
            ..entry.clone()
        };
        cache.save("example.com", &only_failure).unwrap();
        assert_eq!(cache.load("example.com"), Ok(only_failure));
        let only_policy = Entry {
            failure: None,
            ..entry
        };
        cache.save("example.com", &only_policy).unwrap();
        assert_eq!(cache.load("EXAMPLE.com"), Ok(only_policy));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["example.com"]);
    }

    // covers: MX7
    #[test]
    fn mx7_file_names_stay_in_the_directory() {
        let cache = Cache::new("/nonexistent/cache");
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "a..b",
            ".example.com",
            "-x.example",
            "a b",
            "exämple.com",
            "a\0b",
            "example.com..",
        ] {
            assert!(
                matches!(cache.path(bad), Err(CacheError::InvalidDomain(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            cache.path("MX.Example.com.").unwrap(),
            Path::new("/nonexistent/cache/mx.example.com")
        );
    }

    // covers: MX7
    #[test]
    fn mx7_corrupt_files_are_ignored_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let good = encode(&sample(), "example.com");
        let cases: &[(&str, String)] = &[
            ("empty", String::new()),
            ("garbage", "\u{0}\u{1}binary".into()),
            ("wrong magic", good.replace("cache 1", "cache 9")),
            (
                "other domain",
                good.replace("domain: example.com", "domain: example.org"),
            ),
            (
                "bad time",
                good.replace("fetched: 1700000000", "fetched: soon"),
            ),
            (
                "signed time",
                good.replace("fetched: 1700000000", "fetched: +1700000000"),
            ),
            (
                "bad id",
                good.replace("policy-id: abc123", "policy-id: a/b"),
            ),
            ("no fetched", good.replace("fetched: 1700000000\n", "")),
            ("no failed-at", good.replace("failed-at: 1700000300\n", "")),
            ("unknown line", good.replace("domain:", "x: y\ndomain:")),
            (
                "repeated line",
                good.replace("domain:", "fetched: 1\ndomain:"),
            ),
            ("bad policy", good.replace("mode: enforce", "mode: strict")),
            ("cut short", good[..good.len() / 2].to_string()),
            (
                "policy without id",
                good.replace("policy-id: abc123\nfetched: 1700000000\n", ""),
            ),
            ("too large", format!("{good}{}", "x: y\n".repeat(20_000))),
        ];
        for (why, text) in cases {
            std::fs::write(dir.path().join("example.com"), text).unwrap();
            match cache.load("example.com") {
                Err(e @ CacheError::Corrupt { .. }) => {
                    assert!(e.to_string().contains("example.com"), "{why}: {e}")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
        // A corrupt file is replaced by the next save.
        cache.save("example.com", &sample()).unwrap();
        assert_eq!(cache.load("example.com"), Ok(sample()));
    }

    // covers: MX7
    #[test]
    fn mx7_expiry_and_backoff_follow_the_given_clock() {
        let entry = sample();
        let cached = entry.policy.unwrap();
        assert_eq!(cached.policy.mode, PolicyMode::Enforce);
        let fetched = 1_700_000_000;
        assert!(cached.is_fresh(at(fetched)));
        assert!(cached.is_fresh(at(fetched + 86_399)));
        assert!(!cached.is_fresh(at(fetched + 86_400)));
        // A fetch time in the future (clock went back) keeps the policy.
        assert!(cached.is_fresh(at(fetched - 10)));

        let failure = entry.failure.unwrap();
        let failed = 1_700_000_300;
        assert!(failure.holds_back("def456", at(failed)));
        assert!(failure.holds_back("def456", at(failed + 299)));
        assert!(!failure.holds_back("def456", at(failed + 300)));
        assert!(
            !failure.holds_back("other", at(failed + 1)),
            "per policy id"
        );
        assert!(
            !failure.holds_back("def456", at(failed - 1)),
            "future failure"
        );
    }
}
