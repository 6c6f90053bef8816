complete -c tlsend -l host -d 'Submit to HOST instead of the account\'s server.' -r
complete -c tlsend -l port -d 'Server port (default 587 for starttls, 465 for implicit).' -r
complete -c tlsend -l tls -d 'How the connection is secured: starttls, implicit or none.' -r -f -a "starttls\t''
implicit\t''
none\t''"
complete -c tlsend -l user -d 'User name for SMTP AUTH (sent only over TLS).' -r
complete -c tlsend -l auth -d 'SASL mechanism: auto (PLAIN, else LOGIN), plain, login, xoauth2 or oauthbearer.' -r -f -a "auto\t''
plain\t''
login\t''
xoauth2\t''
oauthbearer\t''"
complete -c tlsend -l password-command -d 'Run CMD with sh -c; the first line it prints is the password or token.' -r
complete -c tlsend -l password-file -d 'Read the password from FILE, which only its owner may read.' -r
complete -c tlsend -l password-env -d 'Read the password from environment variable VAR.' -r
complete -c tlsend -l ca-file -d 'Trust only the CA certificates in FILE (PEM) for the server.' -r
complete -c tlsend -l fingerprint -d 'Trust only the server certificate with this SHA-256 fingerprint (sha256:AB:CD:...).' -r
complete -c tlsend -l timeout -d 'Time limit for connecting and for every SMTP step.' -r
complete -c tlsend -l ehlo-name -d 'Name to send with EHLO.' -r
complete -c tlsend -s a -l account -d 'Use account NAME from the configuration file.' -r
complete -c tlsend -s f -d 'Envelope sender address ("" or "<>" for none).' -r
complete -c tlsend -s r -d 'Same as -f.' -r
complete -c tlsend -s F -d 'Full name of the sender, used only when the message has no From field.' -r
complete -c tlsend -s B -d 'Body type: 7BIT or 8BITMIME.' -r
complete -c tlsend -s N -d 'Delivery status notifications: never, or a list of success, failure, delay.' -r
complete -c tlsend -s R -d 'What a bounce returns: full or hdrs (require mode sends hdrs).' -r
complete -c tlsend -s V -d 'Envelope identifier for delivery status notifications.' -r
complete -c tlsend -s O -d 'requiretls=yes (same as --require-tls) or requiretls=no (same as --tls-optional); other options are ignored.' -r
complete -c tlsend -s o -d 'Sendmail options: -oi as -i; -odi, -odb, -odq delivery mode; -oem, -oep, -oeq, -oew error mode; every other -oX... is ignored. "-o x value" (a separate one-letter option other than i, m, 7, 8) takes the next argument as its value.' -r
complete -c tlsend -s b -d '-bm send (default), -bp list the queue, -bs an SMTP dialogue on standard input and output (one or more messages), -bi rebuild aliases (nothing to do); -bh and -bH are ignored.' -r
complete -c tlsend -s q -d 'Run the queue: -q tries every entry now; -q<interval> (-q15m, -q1h) runs it every interval until stopped, honouring backoff; -qI<id> one entry; -qR<domain> entries with a recipient there.' -r
complete -c tlsend -l remove-queued -d 'Delete queue entry ID (as -bp shows it) without sending it.' -r
complete -c tlsend -s C -d 'Read the configuration from FILE (/dev/null for none).' -r
complete -c tlsend -s A -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -s L -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -s X -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -s h -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -s e -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -s p -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -s d -d 'Ignored (sendmail compatibility).' -r
complete -c tlsend -l require-tls -d 'Require TLS for this message on every hop (RFC 8689 REQUIRETLS): send only over TLS with a verified certificate to a server that advertises REQUIRETLS, else send nothing (exit 69, 5.7.10 or 5.7.30). Same as -O requiretls=yes.'
complete -c tlsend -l tls-optional -l no-require-tls -d 'Mark the message "TLS-Required: No" (RFC 8689 section 3): later hops may ignore recipient TLS policies. Same as -O requiretls=no.'
complete -c tlsend -l direct -d 'Deliver to the recipients\' MX hosts directly, even when an account names a server (the default when none is configured). Names are validated by DNSSEC or MTA-STS, certificates by DANE or WebPKI; see the [direct] settings in tlsend(1).'
complete -c tlsend -l read-envelope-from -d 'Take the envelope sender from the message\'s From field (msmtp\'s option of the same name); a bare name there is qualified like any other. Not with -f.'
complete -c tlsend -l help -d 'Print help.'
complete -c tlsend -l version -d 'Print the version.'
complete -c tlsend -s t -d 'Take recipients from the To, Cc and Bcc fields, in addition to those on the command line. Bcc fields are always removed before sending.'
complete -c tlsend -s i -d 'Do not treat a line with a single "." as the end of the message (also -oi).'
complete -c tlsend -s v -d 'Show the SMTP dialogue (secrets masked) and every TLS decision.'
complete -c tlsend -l json -d 'With -bp (mailq): list the queue as JSON.'
complete -c tlsend -l check-config -d 'Print the configuration file used (and every file looked for), the account chosen and why, the server, port, TLS, trust and where the credentials come from, without connecting or fetching any secret; exit 78 if it is unusable.'
complete -c tlsend -l check-server -d 'Connect to the submission server, secure the connection as configured, and print its capabilities, TLS version and cipher, and certificate chain (names, dates, SHA-256 fingerprint for `fingerprint`); QUIT before AUTH and MAIL FROM. Exit status as a send would have.'
complete -c tlsend -s I -d 'Same as -bi.'
complete -c tlsend -s G -d 'Ignored (sendmail compatibility).'
complete -c tlsend -s U -d 'Ignored (sendmail compatibility).'
complete -c tlsend -s m -d 'Ignored (sendmail compatibility).'
complete -c tlsend -s n -d 'Ignored (sendmail compatibility).'
complete -c tlsend -s c -d 'Ignored (sendmail compatibility).'
complete -c tlsend -s x -d 'Ignored (sendmail compatibility).'
