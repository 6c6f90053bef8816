//! Where the message bytes live between reading and sending: memory up to a
//! limit, then an unnamed temporary file (`tempfile::tempfile`: mode 0600,
//! no name in the file system, so it is gone when the process ends, even
//! after kill -9). Memory stays bounded whatever the message size (IN10),
//! and the bytes can be read again for another attempt (IN11).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// A spool being written.
pub(crate) enum SpoolWriter {
    Memory {
        bytes: Vec<u8>,
        limit: usize,
    },
    /// Buffered: input arrives line by line, and a write(2) per line would
    /// cost millions of calls for a 100 MB message.
    File {
        file: BufWriter<File>,
        len: u64,
    },
}

impl SpoolWriter {
    pub(crate) fn new(memory_limit: usize) -> SpoolWriter {
        SpoolWriter::Memory {
            bytes: Vec::new(),
            limit: memory_limit,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            SpoolWriter::Memory { bytes, .. } => bytes.len() as u64,
            SpoolWriter::File { len, .. } => *len,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let SpoolWriter::Memory { bytes, limit } = self
            && bytes.len() + data.len() > *limit
        {
            let file = tempfile::tempfile()?;
            // IN11 asks for 0600; some kernels (gVisor, seen here) create
            // O_TMPFILE files 0644, so say it explicitly on the open file.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            let mut file = BufWriter::with_capacity(64 * 1024, file);
            file.write_all(bytes)?;
            *self = SpoolWriter::File {
                file,
                len: bytes.len() as u64,
            };
        }
        match self {
            SpoolWriter::Memory { bytes, .. } => bytes.extend_from_slice(data),
            SpoolWriter::File { file, len } => {
                file.write_all(data)?;
                *len += data.len() as u64;
            }
        }
        Ok(())
    }

    /// Drops everything from `offset` on (the lone-dot line that ended input).
    pub(crate) fn truncate(&mut self, offset: u64) -> io::Result<()> {
        match self {
            SpoolWriter::Memory { bytes, .. } => {
                bytes.truncate(usize::try_from(offset).unwrap_or(usize::MAX));
            }
            SpoolWriter::File { file, len } => {
                file.flush()?;
                file.get_mut().set_len(offset)?;
                file.get_mut().seek(SeekFrom::Start(offset))?;
                *len = offset;
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> io::Result<Spool> {
        Ok(match self {
            SpoolWriter::Memory { bytes, .. } => Spool::Memory(Arc::from(bytes)),
            SpoolWriter::File { file, len } => Spool::File {
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
        assert!(matches!(writer, SpoolWriter::Memory { .. }));
        writer.write(b"789abcdef").unwrap();
        assert!(matches!(writer, SpoolWriter::File { .. }));
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
