//! Renders the man page and the bash, zsh and fish completions from the one
//! command-line definition in src/cli.rs (UX4). The committed copies in man/
//! and completions/ are compared with these by a test.

use std::env;
use std::fs;
use std::io;
use std::path::PathBuf;

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

/// Sections clap cannot derive from the flags.
const EXTRA_SECTIONS: &str = r#".SH "TLS MODES"
Every message has one mode.
.TP
\fBrequire\fR
(\fB\-\-require\-tls\fR, \fB\-O requiretls=yes\fR, or mode = "require" in the account).
The message is sent only if TLS is established, the server certificate verifies
for the configured host name, and the EHLO reply after TLS advertises REQUIRETLS;
MAIL FROM then carries REQUIRETLS (RFC 8689). Otherwise tlsend sends QUIT and
nothing of the message, reports 5.7.10 (no verified TLS) or 5.7.30 (no REQUIRETLS),
saves the message and exits 69. A TLS\-Required field in the message is removed
with a warning.
.TP
\fBoptional\fR
(\fB\-\-tls\-optional\fR, \fB\-O requiretls=no\fR, mode = "optional", or a
"TLS\-Required: No" field in the message). The message carries exactly one
"TLS\-Required: No" field.
.TP
\fBdefault\fR
Neither. A TLS\-Required field with another value than No, or more than one, is
refused (exit 65) in every mode.
.SH "DIRECT DELIVERY"
With no submission server (no \fB\-\-host\fR, and no host in the account) or
with \fB\-\-direct\fR, tlsend delivers to each recipient domain's MX hosts itself
(RFC 5321 5.1): lowest preference first, equal preferences in random order, the
domain's own address when it has no MX, each IPv6 and IPv4 address in turn. A null
MX (RFC 7505) fails at once (5.1.10, exit 68), as does a domain that does not exist
(exit 68). Domains are delivered concurrently, one result per recipient.
.PP
Every DNS answer carries its DNSSEC status. By default tlsend asks the resolver in
/etc/resolv.conf with the AD and DO bits set and believes its AD bit only when it is
on loopback or resolv.conf says \fBoptions trust\-ad\fR; a SERVFAIL (how a validating
resolver reports a bogus answer) is a temporary failure, never "no records".
.PP
In \fBrequire\fR mode an MX host is used only if its name is DNSSEC secure or listed in
the domain's MTA\-STS policy (RFC 8461, enforce or testing), and only over STARTTLS with
a certificate verified by DANE (RFC 7672; usable TLSA records DANE\-TA(2) and
DANE\-EE(3)) or else WebPKI for the host name, and only if it advertises REQUIRETLS.
A host that fails a step gets QUIT and the next is tried; when none is left, nothing
was sent and the domain fails with 5.7.30 (a host gave verified TLS without
REQUIRETLS) or 5.7.10 (none gave verified TLS). In \fBdefault\fR mode DANE and MTA\-STS
enforce are honoured with no plain\-text fallback; otherwise STARTTLS is
opportunistic. In \fBoptional\fR mode both are ignored and a failed TLS handshake is
retried in plain text. \fB\-v\fR prints the plan: every host, its addresses and how
they were validated, its TLSA records, the TLS it gets or why it is skipped.
.PP
The \fB[direct]\fR table of the configuration file:
.TP
\fBport\fR = 25
The MX port (tests use another).
.TP
\fBresolver\fR = "ADDRESS[:PORT]"
A resolver to ask instead of those in /etc/resolv.conf.
.TP
\fBdnssec\fR = "auto" | "trust\-resolver" | "validate" | "off"
How DNSSEC status is known: the AD bit by the rule above; the AD bit of the
configured resolver wherever it is; local validation from \fBtrust_anchor\fR; or
nothing is secure.
.TP
\fBtrust_anchor\fR = "PATH"
DS or DNSKEY records in zone\-file form for dnssec = "validate" (default: the root's).
.TP
\fBmta_sts_cache\fR = "PATH"
Where MTA\-STS policies are kept (default $XDG_CACHE_HOME/tlsend/mta\-sts).
.TP
\fBmta_sts_port\fR = 443
The HTTPS port of mta\-sts.DOMAIN.
.TP
\fBehlo_name\fR = "NAME"
The name sent with EHLO (default: the host's name when it has a dot, else an
address literal).
.TP
\fBlookup_timeout\fR, \fBconnect_timeout\fR, \fBtimeout\fR, \fBdata_timeout\fR
Seconds: 15, 30, 120, 600.
.SH QUEUE
A message that meets a temporary failure is queued and retried when a queue is in
service: a system queue is installed (its maildrop directory exists), or the
configuration says queue = true, or \fB\-odb\fR is given; tlsend then exits 0 and
names the queue id. Otherwise it exits 75 and saves the message to dead.letter.
Only the recipients that did not get the message are queued.
.TP
\fB\-odq\fR
Queue without trying.
.TP
\fB\-q\fR
Take dropped messages in and try every entry now. One connection to the
submission server, or one per MX host, carries all messages (RSET between them).
.TP
\fB\-q\fR\fIinterval\fR (\fB\-q15m\fR, \fB\-q1h\fR)
Run the queue every interval in the foreground until SIGTERM, honouring each
entry's backoff (5 minutes, doubling to about an hour). A bare number is minutes.
.TP
\fB\-qI\fR\fIid\fR, \fB\-qR\fR\fIdomain\fR
Try one entry, or the recipients at one domain, now.
.TP
\fB\-\-remove\-queued\fR \fIid\fR
Delete one entry without sending it.
.TP
\fB\-bp\fR, \fBmailq\fR
List the queue: per entry a line with the id, the size in octets, the age in
seconds, the TLS mode, the sender in angle brackets, and "dropped" until taken in;
then per recipient a line indented by four spaces with its state (pending,
delivered, failed), the address in angle brackets, attempts=N, next=TIME when
pending, status=CODE, and "detail: " with the last reply or error; a summary line
starts with "\-\-". An empty queue prints "Mail queue is empty". \fB\-\-json\fR gives
the same as JSON.
.PP
A recipient that fails for good in a queue run (or with \fB\-oem\fR in any run)
is reported to the envelope sender in an RFC 3464 delivery status notification,
sent with an empty MAIL FROM, unless the sender is empty or NOTIFY excludes
failures. For a require\-mode message it carries the header only, requires TLS
like the message, and goes without REQUIRETLS to a verified hop that lacks it
(RFC 8689 section 5). Entries expire after queue_lifetime (default "5d");
delay_warning (off by default) warns the sender once.
.PP
The system queue (\fI/var/spool/tlsend\fR, or queue_dir) needs no setuid binary:
\fImaildrop\fR (mode 1733, or 3733 owned by a service account) takes any
user's messages and lets nobody else read them; the runner (\fBtlsend \-q5m\fR,
see contrib/tlsend\-queue.service) takes them into \fIqueue\fR (mode 0700) and
delivers them with its own configuration. Without one, queue = true keeps a
queue under \fI$XDG_STATE_HOME/tlsend\fR for the user.
.SH "EXIT STATUS"
The status speaks for the recipients that did not get the message: 0 only when
every recipient did. When some did and others did not, the status is that of the
first permanent failure (else 75), a line on standard error names each recipient
as delivered or not delivered with the server's reply, and dead.letter names only
the undelivered ones (X\-Tlsend\-Undelivered fields): never send the message
again to a recipient reported as delivered. SIGTERM, SIGINT or SIGHUP after the
message was read stops the delivery, saves the message and exits 75; once the
final dot is sent, tlsend first waits for the server's verdict (a second signal
stops the wait). An internal error saves the message and exits 70.
.TP
\fB0\fR
sent to every recipient, or safely queued
.TP
\fB64\fR
usage error
.TP
\fB65\fR
malformed message, or content the server cannot take
.TP
\fB67\fR
a recipient was refused (5.1.x)
.TP
\fB68\fR
the recipient's domain is unknown
.TP
\fB69\fR
permanent refusal, including 5.7.30 (no REQUIRETLS) and 5.7.10 (no verified TLS)
.TP
\fB70\fR
internal error (a bug in tlsend); the message was saved
.TP
\fB74\fR
local I/O error
.TP
\fB75\fR
temporary failure: a 4xx reply, a connection or name lookup failure, a timeout,
or a signal
.TP
\fB76\fR
the server broke the SMTP protocol
.TP
\fB77\fR
authentication failed
.TP
\fB78\fR
configuration error
.SH FILES
.TP
\fI$XDG_CONFIG_HOME/tlsend/config.toml\fR (or \fI~/.config/tlsend/config.toml\fR), \fI/etc/tlsend.toml\fR
The configuration file, searched in this order unless \fB\-C\fR names one.
.TP
\fI~/dead.letter\fR
Where a message that was not delivered to every recipient is appended (mbox,
mode 0600), with one X\-Tlsend\-Undelivered field per recipient that did not get
it, unless dead_letter names another file.
.TP
\fI/var/spool/tlsend/maildrop\fR, \fI/var/spool/tlsend/queue\fR
The system queue (see QUEUE); \fI$XDG_STATE_HOME/tlsend\fR the user's own.
.SH "SEE ALSO"
sendmail(1), msmtp(1), RFC 8689, RFC 3207, RFC 7672 (DANE for SMTP), RFC 8461 (MTA\-STS)
"#;

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(
        env::var_os("OUT_DIR").ok_or_else(|| io::Error::other("OUT_DIR is not set"))?,
    );
    let mut command = cli::command();

    let man = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    man.render_version_section(&mut page)?;
    fs::write(out.join("tlsend.1"), page)?;

    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut command, "tlsend", &out)?;
    }
    Ok(())
}
