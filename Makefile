# Builds and installs tlsend (see "Install" and "Replacing the system's
# sendmail" in README.md).
#
#   make                        cargo build --release --locked
#   make install                the binary, the man page and the completions
#   make install-sendmail       also /usr/sbin/sendmail, mailq and newaliases
#                               as links to tlsend; refuses to replace a file
#                               that is there (Debian's MTA package owns it)
#   make uninstall              removes all of it, links to tlsend included
#   make uninstall-sendmail     removes only the links
#
# PREFIX (default /usr/local) and DESTDIR (a staging root, for packagers) are
# honoured. BIN names the binary to install (default target/release/tlsend,
# built when missing); the tests install the binary they have just built.
#
# The binary goes to $(PREFIX)/bin, not sbin: tlsend is a user command
# (section 1) that any user, cron job or web server runs, like msmtp and
# Postfix's sendmail(1); only the sendmail link lives in /usr/sbin, where
# callers look for it.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
# Where cron, PHP, mailx and the rest look for them, whatever PREFIX is
# (Debian's MTA packages install these three paths).
SENDMAIL_LINKS ?= /usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases

CARGO ?= cargo
INSTALL ?= install
BIN ?= target/release/tlsend

.PHONY: all build install install-sendmail uninstall uninstall-sendmail

all: build

build:
	$(CARGO) build --release --locked

# Only when missing: `sudo make install` after `make` must not start a
# second build as root.
target/release/tlsend:
	$(CARGO) build --release --locked

install: $(BIN)
	@case "$(BINDIR)/" in /root/*|/home/*) \
		echo "make: warning: $(BINDIR) is in a home directory; other users, their crontabs and www-data may not be able to run tlsend from there" >&2;; \
	esac
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1" \
		"$(DESTDIR)$(BASHCOMPDIR)" "$(DESTDIR)$(ZSHCOMPDIR)" "$(DESTDIR)$(FISHCOMPDIR)"
	$(INSTALL) -m 0755 "$(BIN)" "$(DESTDIR)$(BINDIR)/tlsend"
	$(INSTALL) -m 0644 man/tlsend.1 "$(DESTDIR)$(MANDIR)/man1/tlsend.1"
	$(INSTALL) -m 0644 completions/tlsend.bash "$(DESTDIR)$(BASHCOMPDIR)/tlsend"
	$(INSTALL) -m 0644 completions/_tlsend "$(DESTDIR)$(ZSHCOMPDIR)/_tlsend"
	$(INSTALL) -m 0644 completions/tlsend.fish "$(DESTDIR)$(FISHCOMPDIR)/tlsend.fish"

# All or nothing: every path is checked before any link is made. A path
# that already leads to the installed tlsend (Postfix's mailq is a link to
# ../sbin/sendmail) is left as it is.
install-sendmail: install
	@set -e; target="$(BINDIR)/tlsend"; refused=; \
	for path in $(SENDMAIL_LINKS); do \
		dest="$(DESTDIR)$$path"; \
		if [ -e "$$dest" ] || [ -L "$$dest" ]; then \
			if [ -L "$$dest" ] && [ "$$(readlink "$$dest")" = "$$target" ]; then continue; fi; \
			if [ "$$dest" -ef "$(DESTDIR)$(BINDIR)/tlsend" ]; then continue; fi; \
			owner=; \
			if [ -z "$(DESTDIR)" ] && command -v dpkg-query >/dev/null 2>&1; then \
				owner=$$(dpkg-query -S "$$path" 2>/dev/null | sed -n 's/: .*//p' | head -n 1); \
			fi; \
			echo "make: $$path exists$${owner:+ (package $$owner owns it)} and is not tlsend; it is left alone. Divert it with dpkg-divert or remove the MTA first: see \"Replacing the system's sendmail\" in README.md" >&2; \
			refused=1; \
		fi; \
	done; \
	if [ -n "$$refused" ]; then exit 1; fi; \
	for path in $(SENDMAIL_LINKS); do \
		dest="$(DESTDIR)$$path"; \
		if [ -e "$$dest" ] || [ -L "$$dest" ]; then echo "$$path already leads to $$target"; continue; fi; \
		$(INSTALL) -d -m 0755 "$$(dirname "$$dest")"; \
		ln -s "$$target" "$$dest"; \
		echo "$$path -> $$target"; \
	done

# Removes only links that point at this installation's tlsend.
uninstall-sendmail:
	@for path in $(SENDMAIL_LINKS); do \
		dest="$(DESTDIR)$$path"; \
		if [ -L "$$dest" ] && [ "$$(readlink "$$dest")" = "$(BINDIR)/tlsend" ]; then \
			rm -f "$$dest" && echo "removed $$path"; \
		fi; \
	done

uninstall: uninstall-sendmail
	rm -f "$(DESTDIR)$(BINDIR)/tlsend" "$(DESTDIR)$(MANDIR)/man1/tlsend.1" \
		"$(DESTDIR)$(BASHCOMPDIR)/tlsend" "$(DESTDIR)$(ZSHCOMPDIR)/_tlsend" \
		"$(DESTDIR)$(FISHCOMPDIR)/tlsend.fish"
