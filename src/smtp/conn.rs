//! The timed I/O under a session: writes command lines, reads replies into a
//! buffer it owns, and puts a time limit on every step (FAIL6).
//!
//! The buffer is why STARTTLS is safe here: after the 220 reply to STARTTLS,
//! [`Connection::into_stream`] hands the socket to TLS only if not a single
//! received byte is left unread (SUB7). Bytes already buffered before the
//! handshake would otherwise be read later as if the server had sent them
//! under TLS, which is how CVE-2011-0411 injected commands.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::error::{Error, ErrorKind, Step, Violation};
use super::reply::{Reply, ReplyParser};
use super::transcript::Transcript;

/// Time limits for session steps (the connect limit belongs to the dialer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Each command's write and its reply, the greeting, the TLS handshake.
    pub command: Duration,
    /// The reply after the message data (RFC 5321 4.5.3.2.6 suggests 10 minutes).
    pub end_of_data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(60),
            end_of_data: Duration::from_secs(600),
        }
    }
}

/// `now + limit`, saturating: a huge configured limit means "no practical
/// limit", never an overflow panic that would lose the message.
pub(crate) fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

pub(crate) struct Connection<S> {
    stream: S,
    unread: Vec<u8>,
    /// Where parsing of `unread` stands, so no byte is parsed twice.
    parser: ReplyParser,
    pub(crate) timeouts: Timeouts,
    pub(crate) transcript: Transcript,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(stream: S, timeouts: Timeouts, transcript: Transcript) -> Connection<S> {
        Connection {
            stream,
            unread: Vec::new(),
            parser: ReplyParser::default(),
            timeouts,
            transcript,
        }
    }

    pub(crate) async fn read_reply(&mut self, step: Step) -> Result<Reply, Error> {
        self.read_reply_within(step, self.timeouts.command).await
    }

    /// Reads one complete reply. The limit covers the whole reply, so a
    /// server trickling one byte at a time cannot stretch it.
    pub(crate) async fn read_reply_within(
        &mut self,
        step: Step,
        limit: Duration,
    ) -> Result<Reply, Error> {
        let deadline = deadline_after(limit);
        let mut chunk = [0u8; 4096];
        loop {
            match self.parser.parse(&self.unread) {
                Err(e) => return Err(Error::new(step, ErrorKind::Protocol(Violation::Garbled(e)))),
                Ok(Some((reply, used))) => {
                    self.unread.drain(..used);
                    self.show(&reply);
                    return Ok(reply);
                }
                Ok(None) => {}
            }
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(Error::new(step, ErrorKind::Timeout(limit))),
                Ok(Err(e)) => return Err(Error::new(step, ErrorKind::Io(e))),
                Ok(Ok(0)) => return Err(Error::new(step, ErrorKind::Closed)),
                Ok(Ok(n)) => n,
            };
            self.unread.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command line.
    pub(crate) async fn send(&mut self, step: Step, line: &str) -> Result<(), Error> {
        self.transcript.sent(line);
        self.write_line(step, line).await
    }

    /// Sends a line whose content must not be shown; `shown` goes to the transcript.
    pub(crate) async fn send_masked(
        &mut self,
        step: Step,
        line: &str,
        shown: &str,
    ) -> Result<(), Error> {
        self.transcript.sent(shown);
        self.write_line(step, line).await
    }

    /// Sends several commands in one write (RFC 2920 PIPELINING).
    pub(crate) async fn send_batch(&mut self, step: Step, lines: &[&str]) -> Result<(), Error> {
        let mut bytes = Vec::new();
        for line in lines {
            self.transcript.sent(line);
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        self.write_all(step, &bytes).await?;
        self.flush(step).await
    }

    async fn write_line(&mut self, step: Step, line: &str) -> Result<(), Error> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write_all(step, &bytes).await?;
        self.flush(step).await
    }

    /// Writes raw bytes (message data) within the command time limit.
    pub(crate) async fn write_all(&mut self, step: Step, bytes: &[u8]) -> Result<(), Error> {
        let limit = self.timeouts.command;
        match tokio::time::timeout(limit, self.stream.write_all(bytes)).await {
            Err(_) => Err(Error::new(step, ErrorKind::Timeout(limit))),
            Ok(Err(e)) => Err(Error::new(step, ErrorKind::Io(e))),
            Ok(Ok(())) => Ok(()),
        }
    }

    pub(crate) async fn flush(&mut self, step: Step) -> Result<(), Error> {
        let limit = self.timeouts.command;
        match tokio::time::timeout(limit, self.stream.flush()).await {
            Err(_) => Err(Error::new(step, ErrorKind::Timeout(limit))),
            Ok(Err(e)) => Err(Error::new(step, ErrorKind::Io(e))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Ends the sending side (TLS close_notify, then FIN), within the
    /// command limit; errors are of no consequence any more.
    pub(crate) async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.timeouts.command, self.stream.shutdown()).await;
    }

    /// Gives up the stream for a TLS handshake, refusing when any received
    /// byte is still unread (SUB7).
    pub(crate) fn into_stream(self) -> Result<(S, Timeouts, Transcript), Error> {
        if !self.unread.is_empty() {
            return Err(Error::new(
                Step::StartTls,
                ErrorKind::Protocol(Violation::BytesAfterStartTls(self.unread.len())),
            ));
        }
        Ok((self.stream, self.timeouts, self.transcript))
    }

    fn show(&self, reply: &Reply) {
        if !self.transcript.is_on() {
            return;
        }
        let last = reply.lines().len().saturating_sub(1);
        for (i, line) in reply.lines().iter().enumerate() {
            let separator = if i == last { ' ' } else { '-' };
            let shown = format!("{}{separator}{line}", reply.code());
            self.transcript.received(shown.trim_end());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn huge_limits_do_not_overflow() {
        let deadline = deadline_after(Duration::MAX);
        assert!(deadline > Instant::now() + Duration::from_secs(86_400));
    }
}
