//! Where the message bytes live between reading and sending: memory up to a
//! limit, then an unnamed temporary file (`tempfile::tempfile`: mode 0600,
//! no name in the file system, so it is gone when the process ends, even
//! after kill -9). Memory stays bounded whatever the message size (IN10),
//! and the bytes can be read again for another attempt (IN11).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// A spool being written.
pub(crate) struct SpoolWriter {
    store: Store,
    memory_limit: usize,
    /// Where a temporary file may go, in order of preference.
    dirs: Vec<PathBuf>,
    /// Why the bytes stayed in memory past the limit, when no temporary
    /// file could be written: keeping the message beats losing it.
    pub(crate) fallback: Option<String>,
}

enum Store {
    Memory(Vec<u8>),
    /// Buffered: input arrives line by line, and a write(2) per line would
    /// cost millions of calls for a 100 MB message.
    File {
        file: BufWriter<File>,
        len: u64,
    },
}

impl SpoolWriter {
    /// Spills past `memory_limit` to `$TMPDIR`, else /var/tmp, else /tmp.
    pub(crate) fn new(memory_limit: usize) -> SpoolWriter {
        let dirs = vec![
            std::env::temp_dir(),
            PathBuf::from("/var/tmp"),
            PathBuf::from("/tmp"),
        ];
        SpoolWriter::spilling_to(memory_limit, dirs)
    }

    fn spilling_to(memory_limit: usize, dirs: Vec<PathBuf>) -> SpoolWriter {
        SpoolWriter {
            store: Store::Memory(Vec::new()),
            memory_limit,
            dirs,
            fallback: None,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match &self.store {
            Store::Memory(bytes) => bytes.len() as u64,
            Store::File { len, .. } => *len,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Store::Memory(bytes) = &self.store
            && bytes.len() + data.len() > self.memory_limit
            && self.fallback.is_none()
        {
            match self.spill(bytes) {
                Ok(file) => {
                    let len = bytes.len() as u64;
                    self.store = Store::File { file, len };
                }
                Err(e) => self.fall_back(e),
            }
        }
        if let Store::File { file, len } = &mut self.store {
            match file.write_all(data) {
                Ok(()) => {
                    *len += data.len() as u64;
                    return Ok(());
                }
                Err(e) => self.back_to_memory(e)?,
            }
        }
        if let Store::Memory(bytes) = &mut self.store {
            bytes.extend_from_slice(data);
        }
        Ok(())
    }

    /// A private, nameless file holding `bytes`, in the first directory
    /// where one can be written.
    fn spill(&self, bytes: &[u8]) -> io::Result<BufWriter<File>> {
        let mut failures = Vec::new();
        for dir in &self.dirs {
            let written = tempfile::tempfile_in(dir).and_then(|file| {
                // IN11 asks for 0600; some kernels (gVisor, seen here) create
                // O_TMPFILE files 0644, so say it explicitly on the open file.
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                let mut file = BufWriter::with_capacity(64 * 1024, file);
                file.write_all(bytes)?;
                Ok(file)
            });
            match written {
                Ok(file) => return Ok(file),
                Err(e) => failures.push(format!("{}: {e}", dir.display())),
            }
        }
        Err(io::Error::other(failures.join("; ")))
    }

    fn fall_back(&mut self, error: io::Error) {
        self.fallback = Some(format!(
            "no temporary file could be written for the message ({error}); it is kept in memory"
        ));
    }

    /// The spool file failed under us (a full disk): its bytes, and those
    /// still in the write buffer, move to memory, and reading goes on.
    fn back_to_memory(&mut self, error: io::Error) -> io::Result<()> {
        let Store::File { file, len } =
            std::mem::replace(&mut self.store, Store::Memory(Vec::new()))
        else {
            return Ok(());
        };
        let (mut file, buffered) = file.into_parts();
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        bytes.extend_from_slice(&buffered.unwrap_or_default());
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if bytes.len() < len {
            return Err(io::Error::other(format!(
                "the temporary file of the message failed ({error}) and cannot be read back"
            )));
        }
        bytes.truncate(len);
        self.store = Store::Memory(bytes);
        self.fall_back(error);
        Ok(())
    }

    /// Drops everything from `offset` on (the lone-dot line that ended input).
    pub(crate) fn truncate(&mut self, offset: u64) -> io::Result<()> {
        if let Store::File { file, len } = &mut self.store {
            let cut = file
                .flush()
                .and_then(|()| file.get_mut().set_len(offset))
                .and_then(|()| file.get_mut().seek(SeekFrom::Start(offset)).map(|_| ()));
            match cut {
                Ok(()) => {
                    *len = offset;
                    return Ok(());
                }
                Err(e) => self.back_to_memory(e)?,
            }
        }
        if let Store::Memory(bytes) = &mut self.store {
            bytes.truncate(usize::try_from(offset).unwrap_or(usize::MAX));
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<Spool> {
        if let Store::File { file, .. } = &mut self.store
            && let Err(e) = file.flush()
        {
            self.back_to_memory(e)?;
        }
        Ok(match self.store {
            Store::Memory(bytes) => Spool::Memory(Arc::from(bytes)),
            Store::File { file, len } => Spool::File {
                file: Arc::new(file.into_inner().map_err(|e| e.into_error())?),
                len,
            },
        })
    }
}

/// A finished spool; cheap to clone, readable any number of times.
#[derive(Clone, Debug)]
pub enum Spool {
    Memory(Arc<[u8]>),
    File { file: Arc<File>, len: u64 },
}

impl Spool {
    pub fn len(&self) -> u64 {
        match self {
            Spool::Memory(bytes) => bytes.len() as u64,
            Spool::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the bytes spilled to a temporary file.
    pub fn is_file(&self) -> bool {
        matches!(self, Spool::File { .. })
    }

    /// A reader of `start..len`. Readers use positioned reads, so several
    /// may exist at once without disturbing each other.
    pub fn reader(&self, start: u64) -> SpoolReader {
        SpoolReader {
            spool: self.clone(),
            position: start.min(self.len()),
        }
    }
}

/// Reads a spool from a position; both `Read` and tokio's `AsyncRead`.
#[derive(Debug)]
pub struct SpoolReader {
    spool: Spool,
    position: u64,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &self.spool {
            Spool::Memory(bytes) => {
                let start = usize::try_from(self.position)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                n
            }
            Spool::File { file, len } => {
                let remaining = len.saturating_sub(self.position);
                let want = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                if want == 0 {
                    0
                } else {
                    file.read_at(&mut buf[..want], self.position)?
                }
            }
        };
        self.position += n as u64;
        Ok(n)
    }
}

/// The spool file was written moments ago and sits in the page cache, so a
/// read is done inline: handing each 64 KiB chunk to a blocking thread would
/// cost more than the read itself.
impl AsyncRead for SpoolReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = Read::read(&mut *self, buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_a_file_past_the_limit_and_reads_back_twice() {
        let mut writer = SpoolWriter::new(10);
        writer.write(b"0123456").unwrap();
        assert!(matches!(writer.store, Store::Memory(_)));
        writer.write(b"789abcdef").unwrap();
        assert!(matches!(writer.store, Store::File { .. }));
        writer.truncate(12).unwrap();
        let spool = writer.finish().unwrap();
        assert!(spool.is_file());
        for _ in 0..2 {
            let mut all = String::new();
            spool.reader(0).read_to_string(&mut all).unwrap();
            assert_eq!(all, "0123456789ab");
        }
        let mut tail = String::new();
        spool.reader(10).read_to_string(&mut tail).unwrap();
        assert_eq!(tail, "ab");
    }

    // covers: IN11
    #[test]
    fn in11_the_spool_file_is_private_and_has_no_name() {
        use std::os::unix::fs::MetadataExt;
        let mut writer = SpoolWriter::new(4);
        writer.write(b"more than four bytes").unwrap();
        let Spool::File { file, .. } = writer.finish().unwrap() else {
            panic!("did not spill to a file");
        };
        let metadata = file.metadata().unwrap();
        assert_eq!(metadata.mode() & 0o777, 0o600);
        assert_eq!(metadata.nlink(), 0, "the spool file has a name on disk");
    }

    // covers: FAIL3, IN11
    #[test]
    fn fail3_without_a_writable_temporary_directory_the_message_stays_in_memory() {
        let mut writer = SpoolWriter::spilling_to(
            4,
            vec![
                PathBuf::from("/nonexistent/a"),
                PathBuf::from("/nonexistent/b"),
            ],
        );
        writer.write(b"more than four bytes").unwrap();
        writer.write(b", and more").unwrap();
        let note = writer.fallback.clone().expect("a note says why");
        assert!(
            note.contains("/nonexistent/a") && note.contains("kept in memory"),
            "{note}"
        );
        let spool = writer.finish().unwrap();
        assert!(!spool.is_file());
        let mut all = String::new();
        spool.reader(0).read_to_string(&mut all).unwrap();
        assert_eq!(all, "more than four bytes, and more");
    }

    // covers: FAIL3
    #[test]
    fn fail3_a_failing_spool_file_moves_its_bytes_to_memory() {
        let mut writer = SpoolWriter::new(4);
        writer.write(b"0123456789").unwrap();
        let Store::File { file, len } =
            std::mem::replace(&mut writer.store, Store::Memory(Vec::new()))
        else {
            panic!("did not spill");
        };
        writer.store = Store::File { file, len };
        writer
            .back_to_memory(io::Error::other("disk full"))
            .unwrap();
        writer.write(b"abc").unwrap();
        assert!(
            writer
                .fallback
                .as_deref()
                .is_some_and(|n| n.contains("disk full"))
        );
        let spool = writer.finish().unwrap();
        let mut all = String::new();
        spool.reader(0).read_to_string(&mut all).unwrap();
        assert_eq!(all, "0123456789abc");
    }

    #[test]
    fn memory_spool_reads_from_an_offset() {
        let mut writer = SpoolWriter::new(1024);
        writer.write(b"header\n\nbody").unwrap();
        let spool = writer.finish().unwrap();
        assert!(!spool.is_file());
        let mut body = String::new();
        spool.reader(8).read_to_string(&mut body).unwrap();
        assert_eq!(body, "body");
        assert_eq!(spool.reader(99).read(&mut [0u8; 4]).unwrap(), 0);
    }
}
