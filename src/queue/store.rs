//! The queue on disk: dropping a message, taking dropped messages in,
//! locking, rewriting and removing entries. Every step that makes
//! something visible is a rename after an fsync, followed by an fsync of
//! the directory, so that a crash leaves the complete old state or the
//! complete new one, never half of either.
//!
//! Layout under the queue's root:
//! - `maildrop/ID`: a dropped message: its state line, then the message.
//!   Written as `maildrop/.ID.tmp` and renamed. In a system queue this
//!   directory is writable by everyone and readable by the runner only
//!   (mode 1733 or 3733, see the README), like Postfix's maildrop.
//! - `queue/ID`: an entry, taken in from the maildrop; its bytes never
//!   change. A runner holds an exclusive `flock` on it while it delivers.
//! - `queue/ID.state`: the entry's current state, when it changed since it
//!   was taken in. It wins over the state line in `queue/ID`.
//! - `queue/ID.new`: a copy being taken in, not yet an entry (see
//!   [`Queue::import`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::entry::{self, Entry, EntryError, MAX_STATE_LEN};
use crate::fault;
use crate::text::printable;

/// A dropped file older than this whose writer never renamed it is removed.
const STALE_TMP_SECS: i64 = 86_400;

/// A queue: its maildrop and its entries.
#[derive(Clone, Debug)]
pub struct Queue {
    pub root: PathBuf,
    maildrop: PathBuf,
    entries: PathBuf,
}

/// A dropped file the runner could not take in, and why; it is left where
/// it is for a person to look at.
#[derive(Debug)]
pub struct Rejected {
    pub path: PathBuf,
    pub why: String,
}

/// One entry as `-bp` shows it.
#[derive(Debug)]
pub struct Listed {
    pub entry: Entry,
    /// Waiting in the maildrop for a runner to take it in.
    pub dropped: bool,
    /// The user who queued it.
    pub owner: u32,
}

/// Where an entry's message is, to be opened again for each attempt
/// (without the entry's lock, which stays with its [`Locked`]).
#[derive(Clone, Debug)]
pub struct MessageFile {
    path: PathBuf,
    offset: u64,
}

impl MessageFile {
    /// The message, read from its start.
    pub fn open(&self) -> io::Result<File> {
        let (mut file, _) = open_checked(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        Ok(file)
    }
}

/// An entry `-bp` could not read: its id and why.
pub type Unreadable = (String, String);

/// An entry this process holds the lock of, with its current state.
#[derive(Debug)]
pub struct Locked {
    /// Open and locked for as long as this value lives.
    file: File,
    entries: PathBuf,
    pub entry: Entry,
    /// Where the message starts in the entry's file.
    message_offset: u64,
    /// The message's length as found on disk.
    message_len: u64,
    /// The entry was removed: nothing more is written for it.
    removed: bool,
}

fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32
}

/// Opens a file of the queue for reading without following a symbolic
/// link, without blocking on a FIFO, and only if it is a regular file: the
/// maildrop is written by every local user, and the runner may be root.
fn open_checked(path: &Path) -> io::Result<(File, fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(no_follow())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok((file, meta))
}

/// Makes a rename or an unlink in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the state line at the start of `reader`: the entry and where the
/// message begins.
fn read_state(reader: impl Read) -> Result<(Entry, u64), io::Error> {
    let mut reader = BufReader::new(reader.take(MAX_STATE_LEN as u64 + 1));
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(invalid(EntryError::Invalid(
            "the state line has no end".into(),
        )));
    }
    let offset = line.len() as u64;
    line.pop();
    let entry = Entry::parse(&line).map_err(invalid)?;
    Ok((entry, offset))
}

fn invalid(e: EntryError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes `parts` to a new file `dir/.NAME.tmp` with `mode`, fsyncs it,
/// and renames it to `dir/final_name`; the directory is synced by the
/// caller. Returns the file, still open.
fn write_atomically(
    dir: &Path,
    final_name: &str,
    mode: u32,
    parts: &mut [&mut dyn Read],
) -> io::Result<File> {
    write_checked(dir, final_name, mode, parts, &|_| Ok(()))
}

/// [`write_atomically`], with `check` run on the written file before it
/// is renamed into place: what is checked is what stays.
fn write_checked(
    dir: &Path,
    final_name: &str,
    mode: u32,
    parts: &mut [&mut dyn Read],
    check: &dyn Fn(&mut File) -> io::Result<()>,
) -> io::Result<File> {
    let tmp = dir.join(format!(".{final_name}.tmp"));
    let result = (|| {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(no_follow())
            .open(&tmp)?;
        // Whatever the umask.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        let mut out = io::BufWriter::with_capacity(64 * 1024, &mut file);
        for part in parts.iter_mut() {
            io::copy(part, &mut out)?;
        }
        out.flush()?;
        drop(out);
        fault::pause("queue-written");
        check(&mut file)?;
        file.sync_all()?;
        fault::pause("queue-synced");
        fs::rename(&tmp, dir.join(final_name))?;
        Ok(file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The largest message taken in from another user's drop: the copy is
/// the runner's, on the runner's disk (Postfix's message_size_limit is
/// 10 MB by default).
pub const MAX_FOREIGN_MESSAGE: u64 = 64 << 20;

impl Queue {
    pub fn at(root: &Path) -> Queue {
        Queue {
            root: root.to_path_buf(),
            maildrop: root.join("maildrop"),
            entries: root.join("queue"),
        }
    }

    pub fn maildrop_dir(&self) -> &Path {
        &self.maildrop
    }

    pub fn entries_dir(&self) -> &Path {
        &self.entries
    }

    /// Whether a queue was set up here (its maildrop exists).
    pub fn installed(&self) -> bool {
        self.maildrop.is_dir()
    }

    /// Creates a private queue's directories (mode 0700), as a user's
    /// own queue needs.
    pub fn create_private(&self) -> io::Result<()> {
        for dir in [&self.maildrop, &self.entries] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        Ok(())
    }

    /// Creates `queue/` (mode 0700) if it is not there: the runner's own.
    pub fn create_entries_dir(&self) -> io::Result<()> {
        match fs::DirBuilder::new().mode(0o700).create(&self.entries) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    /// Drops a message into the maildrop: `entry`'s state line, then
    /// `message`. Once this returns, the message is on disk for good. The
    /// file is readable by its owner only, or also by the maildrop's group
    /// when the directory is set-group-id (a runner that is not root).
    pub fn drop_message(&self, entry: &Entry, message: &mut dyn Read) -> io::Result<()> {
        let line = entry.to_line();
        let shared_group = fs::metadata(&self.maildrop)?.mode() & 0o2000 != 0;
        let mode = if shared_group { 0o640 } else { 0o600 };
        let file = write_atomically(
            &self.maildrop,
            &entry.id,
            mode,
            &mut [&mut &line[..], message],
        )?;
        fault::pause("queue-dropped");
        match sync_dir(&self.maildrop) {
            // A system maildrop cannot be opened by those who drop into
            // it (mode 1733): the rename is made durable by syncing the
            // file system the file is on instead.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                rustix::fs::syncfs(&file).map_err(io::Error::from)
            }
            other => other,
        }
    }

    /// Takes dropped messages in. A message owned by the runner is
    /// renamed; another user's is copied, so that its owner can no longer
    /// change it, in steps that never leave it in both places as an entry:
    /// `queue/.ID.tmp` (synced) becomes `queue/ID.new`, then the drop is
    /// removed, then `ID.new` becomes `ID`. A crash between the steps is
    /// finished by the next import. Imports run one at a time.
    pub fn import(&self, now: i64) -> io::Result<Vec<Rejected>> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(no_follow())
            .open(self.entries.join(".import.lock"))?;
        lock.lock()?;
        let me = rustix::process::geteuid().as_raw();
        let mut rejected = Vec::new();
        // An import that stopped after its copies were complete.
        let mut copied = Vec::new();
        for name in names(&self.entries)? {
            if let Some(id) = name.strip_suffix(".new")
                && entry::valid_id(id)
            {
                copied.push(id.to_string());
            }
        }
        let mut moved_any = false;
        let mut fresh = Vec::new();
        for name in names(&self.maildrop)? {
            let path = self.maildrop.join(&name);
            if name.starts_with('.') {
                remove_if_stale(&path, now);
                continue;
            }
            if !entry::valid_drop_id(&name) {
                rejected.push(Rejected {
                    path,
                    why: "not a name tlsend gives to a queued message".into(),
                });
                continue;
            }
            if copied.contains(&name) || self.entries.join(&name).exists() {
                // Taken in already; the drop outlived a crash.
                fs::remove_file(&path)?;
                moved_any = true;
                continue;
            }
            match self.take_in(&path, &name, me, now) {
                Ok(Taken::Moved) => moved_any = true,
                Ok(Taken::Copied) => fresh.push(name),
                Err(why) => rejected.push(Rejected { path, why }),
            }
        }
        if fresh.is_empty() && copied.is_empty() {
            if moved_any {
                sync_dir(&self.entries)?;
                sync_dir(&self.maildrop)?;
            }
            return Ok(rejected);
        }
        sync_dir(&self.entries)?;
        fault::pause("queue-import-copied");
        for id in fresh.iter().chain(&copied) {
            match fs::remove_file(self.maildrop.join(id)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        sync_dir(&self.maildrop)?;
        fault::pause("queue-import-unlinked");
        for id in fresh.iter().chain(&copied) {
            fs::rename(
                self.entries.join(format!("{id}.new")),
                self.entries.join(id),
            )?;
        }
        sync_dir(&self.entries)?;
        Ok(rejected)
    }

    /// Moves or copies one dropped file; `Err` says why it was left.
    /// Another user's entry is rebuilt from its envelope alone: nothing
    /// else its owner wrote (attempts, times, the notification flag, the
    /// route) reaches the runner, and the message gets a Received field
    /// naming the user, as Postfix's pickup adds one.
    fn take_in(&self, path: &Path, id: &str, me: u32, now: i64) -> Result<Taken, String> {
        let (file, meta) = open_checked(path).map_err(|e| format!("cannot open: {e}"))?;
        if meta.nlink() != 1 {
            return Err("a file with other names (hard links) is not taken in".into());
        }
        let (entry, offset) = read_state(&file).map_err(|e| e.to_string())?;
        if entry.id != id {
            return Err(format!("its state names another entry, {:?}", entry.id));
        }
        if meta.uid() == me {
            fs::rename(path, self.entries.join(id)).map_err(|e| e.to_string())?;
            return Ok(Taken::Moved);
        }
        let length = meta.len().saturating_sub(offset);
        if length > MAX_FOREIGN_MESSAGE {
            return Err(format!(
                "the message is larger than {MAX_FOREIGN_MESSAGE} bytes"
            ));
        }
        // The same checks as a message read from standard input: no NUL,
        // no bare CR, no line over 998 octets; and the content flags from
        // the bytes, not from the state line. The owner can still write to
        // the dropped file, so the copy is checked again before it stays.
        let scanned = {
            let mut region = &file;
            region
                .seek(SeekFrom::Start(offset))
                .map_err(|e| e.to_string())?;
            scan(region.take(length)).map_err(|e| e.to_string())?
        };
        let stamp = format!(
            "Received: by {} (tlsend, from userid {});\r\n\t{}\r\n",
            received_host(),
            meta.uid(),
            chrono::DateTime::from_timestamp(now, 0)
                .unwrap_or_default()
                .format("%a, %d %b %Y %H:%M:%S +0000")
        );
        let mut entry = entry.foreign(meta.uid(), now);
        entry.size = length + stamp.len() as u64;
        entry.content.eight_bit = scanned.eight_bit;
        entry.content.utf8_header = scanned.utf8_header;
        let line = entry.to_line();
        let mut message = &file;
        message
            .seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        // The file may grow while it is copied: no more than it had.
        let mut message = message.take(length);
        let check = |copy: &mut File| -> io::Result<()> {
            let head = (line.len() + stamp.len()) as u64;
            if copy.metadata()?.len() != head + length {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the dropped file changed while it was taken in",
                ));
            }
            copy.seek(SeekFrom::Start(head))?;
            let copied = scan(&mut *copy)?;
            if copied != scanned {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the dropped file changed while it was taken in",
                ));
            }
            Ok(())
        };
        write_checked(
            &self.entries,
            &format!("{id}.new"),
            0o600,
            &mut [&mut &line[..], &mut stamp.as_bytes(), &mut message],
            &check,
        )
        .map_err(|e| format!("not taken in: {e}"))?;
        Ok(Taken::Copied)
    }

    /// The entries in the queue proper, oldest name first.
    pub fn ids(&self) -> io::Result<Vec<String>> {
        let mut ids: Vec<String> = names(&self.entries)?
            .into_iter()
            .filter(|n| entry::valid_id(n))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Locks entry `id` for delivery. `None`: another runner holds it, or
    /// it is gone.
    pub fn lock(&self, id: &str) -> io::Result<Option<Locked>> {
        if !entry::valid_id(id) {
            return Ok(None);
        }
        let (file, meta) = match open_checked(&self.entries.join(id)) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // Removed by the runner that held the lock before us.
        if file.metadata()?.nlink() == 0 {
            return Ok(None);
        }
        let (mut entry, message_offset) = read_state(&file)?;
        if let Some(current) = self.current_state(id)? {
            entry = current;
        }
        Ok(Some(Locked {
            file,
            entries: self.entries.clone(),
            entry,
            message_offset,
            message_len: meta.len().saturating_sub(message_offset),
            removed: false,
        }))
    }

    fn current_state(&self, id: &str) -> io::Result<Option<Entry>> {
        let file = match open_checked(&self.entries.join(format!("{id}.state"))) {
            Ok((file, _)) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (entry, _) = read_state(file)?;
        if entry.id != id {
            return Err(invalid(EntryError::Invalid(format!(
                "{id}.state belongs to {}",
                entry.id
            ))));
        }
        Ok(Some(entry))
    }

    /// Adds an entry made by the runner itself (a notification), unless
    /// one of that name exists: making it twice after a crash is a no-op.
    pub fn create(&self, entry: &Entry, message: &[u8]) -> io::Result<bool> {
        if self.entries.join(&entry.id).exists() {
            return Ok(false);
        }
        let line = entry.to_line();
        write_atomically(
            &self.entries,
            &entry.id,
            0o600,
            &mut [&mut &line[..], &mut &*message],
        )?;
        sync_dir(&self.entries)?;
        Ok(true)
    }

    /// Every entry, dropped or taken in, for `-bp`. Entries that cannot be
    /// read are returned as problems beside them, never skipped silently.
    /// No lock is taken: a listing never makes a runner skip an entry.
    pub fn list(&self) -> io::Result<(Vec<Listed>, Vec<Unreadable>)> {
        let mut listed = Vec::new();
        let mut problems = Vec::new();
        let mut strays = Vec::new();
        let mut found = |path: PathBuf, name: &str, dropped: bool, current: bool| {
            let read = open_checked(&path).and_then(|(file, meta)| {
                let (mut entry, _) = read_state(&file)?;
                if current && let Some(state) = self.current_state(name)? {
                    entry = state;
                }
                Ok(Listed {
                    // A dropped file's state line is its writer's word.
                    owner: if dropped {
                        meta.uid()
                    } else {
                        entry.owner.unwrap_or(meta.uid())
                    },
                    entry,
                    dropped,
                })
            });
            match read {
                Ok(l) => listed.push(l),
                // Delivered, or taken in, while we looked.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => problems.push((printable(name), e.to_string())),
            }
        };
        for name in names(&self.entries)? {
            if entry::valid_id(&name) {
                found(self.entries.join(&name), &name, false, true);
            } else if let Some(id) = name.strip_suffix(".new")
                && entry::valid_id(id)
            {
                // Being taken in from another user's drop.
                found(self.entries.join(&name), id, true, false);
            }
        }
        for name in names(&self.maildrop)? {
            if name.starts_with('.') {
                continue;
            }
            if entry::valid_drop_id(&name) {
                found(self.maildrop.join(&name), &name, true, false);
            } else {
                strays.push(name);
            }
        }
        problems.extend(
            strays
                .into_iter()
                .map(|name| (printable(&name), "not a queue entry".to_string())),
        );
        listed.sort_by(|a, b| (a.entry.created, &a.entry.id).cmp(&(b.entry.created, &b.entry.id)));
        listed.dedup_by(|a, b| a.entry.id == b.entry.id);
        Ok((listed, problems))
    }
}

/// What taking a message in learns from its bytes.
#[derive(Debug, PartialEq, Eq)]
struct Scanned {
    eight_bit: bool,
    utf8_header: bool,
}

/// Reads a message as standard input is read; a message tlsend would
/// refuse there is refused here (InvalidData, naming the problem).
fn scan(reader: impl Read) -> io::Result<Scanned> {
    let options = crate::message::InputOptions {
        dot_ends_input: false,
        ..crate::message::InputOptions::default()
    };
    let input = crate::message::read(reader, &options)?;
    if let Some(problem) = &input.problem {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the message was refused: {problem}"),
        ));
    }
    Ok(Scanned {
        eight_bit: input.eight_bit_header || input.eight_bit_body,
        utf8_header: input.eight_bit_header,
    })
}

/// This host's name for Received fields.
fn received_host() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    if crate::address::Address::from_parts("x", Some(&name)).is_ok() {
        name
    } else {
        "localhost".into()
    }
}

enum Taken {
    Moved,
    Copied,
}

/// The names in `dir`; a missing directory has none.
fn names(dir: &Path) -> io::Result<Vec<String>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for item in read {
        if let Some(name) = item?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn remove_if_stale(path: &Path, now: i64) {
    if let Ok(meta) = fs::symlink_metadata(path)
        && now.saturating_sub(meta.mtime()) > STALE_TMP_SECS
    {
        let _ = fs::remove_file(path);
    }
}

impl Locked {
    pub fn id(&self) -> &str {
        &self.entry.id
    }

    /// The message, read from the start each time it is opened.
    pub fn message(&self) -> io::Result<File> {
        self.message_file().open()
    }

    /// The message's length in octets, as found on disk.
    pub fn message_len(&self) -> u64 {
        self.message_len
    }

    /// Where the message is: the entry's file and the offset it starts at.
    pub fn message_file(&self) -> MessageFile {
        MessageFile {
            path: self.entries.join(&self.entry.id),
            offset: self.message_offset,
        }
    }

    /// The message's bytes, at most `limit` of them (for notifications).
    pub fn message_prefix(&self, limit: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.message()?.take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Makes the current state durable, or removes the entry when nothing
    /// is left to do.
    pub fn save(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        if self.entry.finished() {
            return self.remove();
        }
        let line = self.entry.to_line();
        write_atomically(
            &self.entries,
            &format!("{}.state", self.entry.id),
            0o600,
            &mut [&mut &line[..]],
        )?;
        sync_dir(&self.entries)
    }

    /// Removes the entry: its file first, so that a crash can leave at
    /// worst a state file with no entry (removed by [`Queue::tidy`]),
    /// never an entry with its old state back.
    pub fn remove(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        let id = &self.entry.id;
        match fs::remove_file(self.entries.join(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.removed = true;
        fault::pause("queue-removed");
        match fs::remove_file(self.entries.join(format!("{id}.state"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        sync_dir(&self.entries)
    }

    /// The file descriptor the lock is held on (kept open until dropped).
    pub fn lock_file(&self) -> &File {
        &self.file
    }
}

impl Queue {
    /// Removes state files whose entry is gone (a crash during removal)
    /// and temporary files nobody finished.
    pub fn tidy(&self, now: i64) -> io::Result<()> {
        for name in names(&self.entries)? {
            if let Some(id) = name.strip_suffix(".state")
                && entry::valid_id(id)
                && !self.entries.join(id).exists()
            {
                let _ = fs::remove_file(self.entries.join(&name));
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                remove_if_stale(&self.entries.join(&name), now);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
