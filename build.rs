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
The \fB[direct]\fR table of the configuration file changes the details (see
CONFIGURATION).
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
.SH CONFIGURATION
tlsend works without a configuration file: it then delivers directly to the
recipients' MX hosts, or to the server that \fB\-\-host\fR names. The file is
TOML, read from \fB\-C\fR \fIFILE\fR, else
\fI$XDG_CONFIG_HOME/tlsend/config.toml\fR (\fI~/.config/tlsend/config.toml\fR),
else \fI/etc/tlsend.toml\fR; only the first that exists is read, and
\fB\-C /dev/null\fR reads none. An unknown key, a value of the wrong type or
out of range, or two keys that exclude each other is an error that names the
file, line and column (exit 78): a misspelt key must not quietly weaken
trust. A path may start with \fI~/\fR, the home directory. A duration is a
number with a unit (s, m, h, d, w), several summed ("1h30m"); a bare number
is minutes. Timeouts are whole seconds from 1 to 86400. Command\-line options
beat the file.
.SS "Top level"
.TP
\fBdefault_account\fR = "\fINAME\fR"
The account used when \fB\-a\fR is not given and no account's \fBfrom\fR
matches the \fB\-f\fR sender. Without it: the account named "default", else
the only account, else none (direct delivery). It must name an account.
.TP
\fBdead_letter\fR = "\fIPATH\fR"
Where a message that was not delivered to every recipient is appended
(default \fI~/dead.letter\fR).
.TP
\fBqueue\fR = true | false | "always"
Queue a message that meets a temporary failure, and exit 0 (default: only
when the system queue is installed; see QUEUE). false turns queueing on
failure off even then; \fB\-odq\fR and \fB\-odb\fR still queue. "always":
when the system queue is installed, every message is queued without a try,
as with \fB\-odq\fR (whatever \fB\-odi\fR a caller passes), so that only
the queue runner sends, and only its account needs to read the password.
.TP
\fBqueue_dir\fR = "\fIPATH\fR"
The system queue (default \fI/var/spool/tlsend\fR).
.TP
\fBqueue_lifetime\fR = "\fIDURATION\fR"
How long a queued message is retried before it is returned to its sender
(default "5d").
.TP
\fBdelay_warning\fR = "\fIDURATION\fR" | "on" | "off"
Tell the sender once that a message is still queued after this long ("on"
means "4h"; default "off").
.TP
\fBaliases\fR = "\fIPATH\fR"
An aliases file (an absolute path) in the format of aliases(5) ("\fIname\fR: \fIaddress\fR,
\fIname\fR, ..."; continuation lines start with white space; default
\fI/etc/aliases\fR when it exists; "" for none). A recipient that is a bare
name (root, www\-data) is replaced by its targets, recursively; a name may
have several, a name in its own list stands for itself, and a loop is an
error. tlsend delivers nothing locally: a name that leads to a command
(|...), a file or :include: refuses the message, and so does a name whose
entry cannot be read; other lines that are not entries are ignored with a
warning. \fB\e\fR\fIname\fR is the name itself, not looked up again.
\fBnewaliases\fR checks the file and builds nothing.
.TP
\fBqualify_domain\fR = "\fIDOMAIN\fR"
The domain given to bare names, in the envelope and in the address fields
of the header (To: root, From: root (Cron Daemon)), after aliases (default:
the host name when it has a dot). A bare name that has no alias and no real
domain to go with is refused before anything is sent. An account's own
qualify_domain beats this one.
.TP
\fBlogfile\fR = "\fIPATH\fR"
Append one line per message and recipient: the time, the queue id if any,
sender, recipient, TLS mode and why, host, TLS version, how the certificate
was verified, whether REQUIRETLS was used, the result and the status code.
Never a secret. Every user who sends must be able to write it; a log that
cannot be written is warned about once on standard error and never fails the
send. An account may set its own.
.TP
\fBsyslog\fR = true | false
The same lines to syslog, facility mail (default false). An account may set
its own.
.SS "[account.\fINAME\fR]"
An account is a submission server and how to use it. \fB\-a\fR \fINAME\fR
picks one; else \fB\-f\fR picks the first, in file order, whose \fBfrom\fR
matches the sender; else \fBdefault_account\fR.
.TP
\fBhost\fR = "\fIHOST\fR"
The submission server. Without it, mail through this account is delivered
directly to the MX hosts (DIRECT DELIVERY), with the account's from, mode
and qualify_domain.
.TP
\fBport\fR = \fIPORT\fR
Default 587 with starttls, 465 with implicit, 25 with none.
.TP
\fBtls\fR = "starttls" | "implicit" | "none"
How the connection is secured (default "starttls"); the certificate is
always verified. With "none" the session is plain text: no user, and a
require\-mode message is not sent.
.TP
\fBfrom\fR = "\fIADDRESS\fR"
The envelope sender when \fB\-f\fR is not given (without it:
\fILOGNAME\fR@\fIqualify_domain\fR). With \fB*\fR or \fB?\fR it is a
pattern instead, like msmtp's: a \fB\-f\fR sender that matches selects this
account ("*@example.org").
.TP
\fBuser\fR = "\fINAME\fR"
The SMTP AUTH user name; credentials are only ever sent over TLS.
.TP
\fBpassword_command\fR = "\fICOMMAND\fR"
Run with sh \-c; the first line it prints is the password or token (pass,
secret\-tool, an OAuth 2.0 token helper).
.TP
\fBpassword_file\fR = "\fIPATH\fR"
The file's content, one trailing newline removed, is the password. Only its
owner may read it (mode 0600), except that a file owned by root may also be
readable by its group (root:\fIgroup\fR 0640), for users that share one
system\-wide account (see EXAMPLES).
.TP
\fBpassword_env\fR = "\fIVARIABLE\fR"
The password is the value of this environment variable. At most one of the
three password keys, and only with a user; there is no password in the file
itself, nor on the command line.
.TP
\fBauth\fR = "auto" | "plain" | "login" | "xoauth2" | "oauthbearer"
The SASL mechanism (default "auto": PLAIN, else LOGIN). For xoauth2 and
oauthbearer the password source gives the access token.
.TP
\fBca_file\fR = "\fIPATH\fR"
Trust only the CA certificates in this PEM file for this server, instead of
the system's.
.TP
\fBfingerprint\fR = "sha256:\fIAB:CD:...\fR"
Trust only the server certificate with this SHA\-256 fingerprint of its DER
form (\fB\-v\fR prints it); instead of ca_file.
.TP
\fBconnect_timeout\fR = 30
Seconds to connect to the server.
.TP
\fBtimeout\fR = 60
Seconds to wait for each reply.
.TP
\fBdata_timeout\fR = 600
Seconds to wait for the reply to the end of the message.
.TP
\fBmode\fR = "require" | "optional" | "default"
The TLS mode of every message sent through this account (see TLS MODES);
\fB\-\-require\-tls\fR and \fB\-\-tls\-optional\fR beat it.
.TP
\fBehlo_name\fR = "\fINAME\fR"
The name sent with EHLO (default: the host name when it has a dot, else an
address literal).
.TP
\fBqualify_domain\fR = "\fIDOMAIN\fR"
As at the top level, for this account.
.TP
\fBset_from_header\fR = "auto" | "on" | "off"
auto (the default): add a From field when the message has none, and
rewrite the address of system mail (a bare name, or an address at this
host's name or localhost) to the account's \fBfrom\fR, keeping the display
name or comment, so that the server takes it and replies reach a mailbox.
on: always rewrite the address to \fBfrom\fR. off: never add or change a
From field (a bare name in it is still qualified). With \fB\-F\fR, a
rewritten From gets that display name instead.
.TP
\fBset_date_header\fR = "auto" | "off"
auto (the default): add a Date field when the message has none. off: never.
.TP
\fBset_msgid_header\fR = "auto" | "off"
auto (the default): add a Message\-ID field when the message has none. off:
never.
.TP
\fBlogfile\fR = "\fIPATH\fR"
As at the top level, for mail through this account.
.TP
\fBsyslog\fR = true | false
As at the top level, for mail through this account.
.SS "[direct]"
Direct delivery to the MX hosts (see DIRECT DELIVERY).
.TP
\fBport\fR = 25
The MX port.
.TP
\fBresolver\fR = "\fIADDRESS\fR[:\fIPORT\fR]"
A resolver to ask instead of those in /etc/resolv.conf (127.0.0.1,
127.0.0.1:5353, [::1]:5353).
.TP
\fBdnssec\fR = "auto" | "trust\-resolver" | "validate" | "off"
How DNSSEC status is known: auto (the default), the resolver's AD bit when
the resolver is on loopback or resolv.conf says \fBoptions trust\-ad\fR;
trust\-resolver, the AD bit of the configured resolver wherever it is;
validate, local validation from \fBtrust_anchor\fR; off, nothing is secure.
.TP
\fBtrust_anchor\fR = "\fIPATH\fR"
DS or DNSKEY records in zone\-file form, for dnssec = "validate" only
(default: the root zone's keys built into tlsend).
.TP
\fBmta_sts_cache\fR = "\fIPATH\fR"
Where MTA\-STS policies are kept (default
\fI$XDG_CACHE_HOME/tlsend/mta\-sts\fR).
.TP
\fBmta_sts_port\fR = 443
The HTTPS port of mta\-sts.\fIdomain\fR.
.TP
\fBehlo_name\fR = "\fINAME\fR"
The name sent with EHLO (default: the host name when it has a dot, else an
address literal).
.TP
\fBlookup_timeout\fR = 15
Seconds for each DNS lookup.
.TP
\fBconnect_timeout\fR = 30
Seconds to connect to an MX address.
.TP
\fBtimeout\fR = 120
Seconds to wait for each reply.
.TP
\fBdata_timeout\fR = 600
Seconds to wait for the reply to the end of the message.
.SS Example
.EX
default_account = "work"
dead_letter = "~/mail/dead.letter"

[account.work]
host = "smtp.example.org"
from = "alice@example.org"
user = "alice"
password_command = "pass show smtp/work"
mode = "require"

[account.lists]
host = "smtp.example.net"
tls = "implicit"
from = "*@lists.example.net"
user = "lists"
password_file = "~/.config/tlsend/lists.password"

[direct]
resolver = "127.0.0.1"
.EE
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
.SH ENVIRONMENT
.TP
\fBSSL_CERT_FILE\fR, \fBSSL_CERT_DIR\fR
CA certificates to trust instead of the system's store: a PEM file, a
directory of them. They verify every certificate checked by WebPKI: a
submission server's without ca_file or fingerprint, an MX host's without
DANE, and an MTA\-STS policy server's.
.TP
\fBXDG_CONFIG_HOME\fR
The configuration is \fI$XDG_CONFIG_HOME/tlsend/config.toml\fR (default
\fI~/.config\fR; a relative path is ignored, as are those below).
.TP
\fBXDG_CACHE_HOME\fR
MTA\-STS policies are cached in \fI$XDG_CACHE_HOME/tlsend/mta\-sts\fR
(default \fI~/.cache\fR).
.TP
\fBXDG_STATE_HOME\fR
The user's own queue is \fI$XDG_STATE_HOME/tlsend\fR (default
\fI~/.local/state\fR).
.TP
\fBHOME\fR
The home directory, for \fI~/\fR, \fIdead.letter\fR and the defaults above;
when it is unset or empty (PHP\-FPM clears it), the password database's.
.TP
\fBLOGNAME\fR, \fBUSER\fR
The login name, for the envelope sender when neither \fB\-f\fR nor the
account's \fBfrom\fR gives one (else the password database's).
.TP
\fBNAME\fR
The sender's full name for a From field tlsend adds, when \fB\-F\fR is not
given.
.TP
\fBTMPDIR\fR
Where a large message is kept while it is sent (else /var/tmp, else /tmp;
else in memory).
.PP
The variable that \fBpassword_env\fR or \fB\-\-password\-env\fR names holds
the password. A password command inherits the environment.
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
.TP
\fI/etc/aliases\fR
Local names and their addresses (aliases(5)), unless \fBaliases\fR names
another file.
.TP
\fI$XDG_CACHE_HOME/tlsend/mta\-sts\fR (or \fI~/.cache/tlsend/mta\-sts\fR)
MTA\-STS policies, kept for their max_age, unless \fBmta_sts_cache\fR names
another directory.
.TP
\fI/etc/resolv.conf\fR
The resolvers asked for direct delivery, unless \fBresolver\fR names one.
.TP
\fI/usr/sbin/sendmail\fR, \fI/usr/bin/mailq\fR, \fI/usr/bin/newaliases\fR
Links to tlsend when it is the system's sendmail (\fBmake install\-sendmail\fR);
it behaves as the name it is called by.
.SH EXAMPLES
An alert that travels only over verified TLS with REQUIRETLS on every hop,
or is not sent at all (exit 69, and the message kept in \fI~/dead.letter\fR):
.PP
.EX
printf \(aqSubject: disk full\en\en/var is at 97%%\en\(aq |
    tlsend \-\-require\-tls \-f ops@example.org oncall@example.net
.EE
.PP
Cron mails a job's output through \fI/usr/sbin/sendmail\fR, so once tlsend
is the system's sendmail nothing in the crontab changes. The mail for root
goes where \fI/etc/aliases\fR sends it, or set MAILTO:
.PP
.EX
# /etc/aliases
root: ops@example.org

# crontab \-e
MAILTO=ops@example.org
*/5 * * * * /usr/local/bin/check\-disks
.EE
.PP
PHP's mail() runs \fBsendmail_path\fR from php.ini; its default,
"/usr/sbin/sendmail \-t \-i", works as it is. To send through one account:
.PP
.EX
sendmail_path = "/usr/local/bin/tlsend \-t \-i \-a web"
.EE
.PP
Symfony Mailer's and Laravel's sendmail transports speak SMTP to
"/usr/sbin/sendmail \-bs"; tlsend answers them as an SMTP server on its
standard input and output.
.PP
mutt, passing the From address as the envelope sender (which selects the
account whose \fBfrom\fR matches):
.PP
.EX
set sendmail = "/usr/local/bin/tlsend \-oem \-oi"
set use_envelope_from = yes
.EE
.PP
A system\-wide setup that cron and www\-data share, with the password
readable by root and the group tlsend only (contrib/tlsend.toml in
tlsend's source explains each step):
.PP
.EX
groupadd \-\-system tlsend
install \-o root \-g tlsend \-m 0640 /dev/null /etc/tlsend.password
editor /etc/tlsend.password
usermod \-a \-G tlsend www\-data
install \-o root \-g root \-m 0644 contrib/tlsend.toml /etc/tlsend.toml
editor /etc/tlsend.toml
printf \(aqSubject: test\en\entest\en\(aq | sudo \-u www\-data tlsend \-v root
.EE
.PP
The queue, when temporary failures are queued: list it, and try every entry
now.
.PP
.EX
mailq
tlsend \-q
.EE
.SH "SEE ALSO"
.BR sendmail (8),
.BR msmtp (1),
.BR aliases (5),
RFC 8689 (SMTP Require TLS option),
RFC 3207 (SMTP STARTTLS),
RFC 8461 (MTA\-STS),
RFC 7672 (DANE for SMTP)
"#;

/// The SYNOPSIS, one form per line. `{id}` is the argument of src/cli.rs
/// with that id, rendered with its flag and value name, so a renamed flag
/// fails the build rather than the manual. A form marked `?` is left out
/// while src/cli.rs lacks one of its arguments. (clap_mangen's own synopsis
/// lists every flag, ignored ones included, without value names.)
const SYNOPSIS: &[&str] = &[
    "[{t}] [{i}] [{f}] [{F}] [{require-tls} | {tls-optional}] [{account}] [{C}] [{v}] \
     [\\fIOPTION\\fR ...] [\\fB\\-\\-\\fR] [\\fIRECIPIENT\\fR ...]",
    "\\fB\\-bs\\fR [{account}] [{C}]",
    "\\fB\\-bp\\fR [{json}]",
    "\\fB\\-q\\fR[\\fIINTERVAL\\fR] | \\fB\\-qI\\fR\\fIID\\fR | \\fB\\-qR\\fR\\fIDOMAIN\\fR",
    "{remove-queued}",
    "?{check-config} [{account}] [{C}]",
    "?{check-server} [{account}] [{C}]",
];

/// Renders the SYNOPSIS section: the forms above, then mailq and newaliases.
fn synopsis(command: &clap::Command, page: &mut Vec<u8>) -> io::Result<()> {
    let roman = |text: &str| text.replace('-', "\\-");
    let render = |id: &str| -> Option<String> {
        let arg = command.get_arguments().find(|a| a.get_id() == id)?;
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(short), _) => format!("\\fB\\-{}\\fR", roman(&short.to_string())),
            (None, Some(long)) => format!("\\fB\\-\\-{}\\fR", roman(long)),
            (None, None) => return None,
        };
        let value = arg
            .get_action()
            .takes_values()
            .then(|| arg.get_value_names())
            .flatten()
            // An unpaddable space: a flag and its value are not split by a line break.
            .map(|names| format!("\\ \\fI{}\\fR", roman(&names.join(" "))));
        Some(flag + value.as_deref().unwrap_or(""))
    };
    let mut text = String::from(".SH SYNOPSIS\n");
    'forms: for form in SYNOPSIS {
        let (optional, mut rest) = match form.strip_prefix('?') {
            Some(rest) => (true, rest),
            None => (false, *form),
        };
        let mut line = String::from(".SY tlsend\n");
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .map(|e| start + e)
                .ok_or_else(|| io::Error::other(format!("SYNOPSIS: unclosed {{ in {form}")))?;
            line.push_str(&rest[..start]);
            let id = &rest[start + 1..end];
            match render(id) {
                Some(arg) => line.push_str(&arg),
                None if optional => continue 'forms,
                None => {
                    return Err(io::Error::other(format!(
                        "SYNOPSIS names {id}, which src/cli.rs does not define"
                    )));
                }
            }
            rest = &rest[end + 1..];
        }
        line.push_str(rest);
        text.push_str(&line);
        text.push_str("\n.YS\n");
    }
    text.push_str(".SY mailq\n[\\fB\\-\\-json\\fR]\n.YS\n.SY newaliases\n.YS\n");
    page.extend_from_slice(text.as_bytes());
    Ok(())
}

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
    synopsis(&command, &mut page)?;
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
