#!/bin/sh
# Runs one throwaway Postfix and its Dovecot auth service for a test
# (tests/support/postfix.rs) or for bench/run, from DIR, which holds
# postfix/main.cf, postfix/master.cf, dovecot.conf, passwd and deliver.sh.
#
# Everything runs in this script's process group, which the test made
# for it (bench/run starts it under setsid). The test holds this script's
# standard input open; when it closes (the test dropped the instance, or
# the test process died, even by SIGKILL) the whole group is killed, so
# nothing outlives the test run.
# usage: run.sh DIR   (as root)
set -eu
dir=$1
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

# The queue layout of Postfix's postfix-files, made directly:
# "postfix check" (post-install create-missing) makes the same in seconds.
queue=$dir/queue
mkdir -p "$queue" "$dir/data" "$dir/sink"
for sub in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    mkdir -m 0700 "$queue/$sub"
    chown postfix:root "$queue/$sub"
done
mkdir -m 0730 "$queue/maildrop"
mkdir -m 0710 "$queue/public"
chown postfix:postdrop "$queue/maildrop" "$queue/public"
mkdir -m 0755 "$queue/pid"
chown postfix "$dir/data"
# pipe(8) runs deliver.sh as nobody.
chown nobody "$dir/sink"

daemon_directory=$(postconf -c "$dir/postfix" -h daemon_directory)

# An exit is reported: the test stops waiting for a daemon that is gone
# (postfix master exits without a word in the log when a port is taken).
{
    status=0
    dovecot -F -c "$dir/dovecot.conf" || status=$?
    echo "run.sh: dovecot exited with status $status"
} </dev/null >>"$dir/dovecot.out" 2>&1 &
# -d: stay in this process group.
{
    status=0
    "$daemon_directory/master" -d -c "$dir/postfix" || status=$?
    echo "run.sh: master exited with status $status"
} </dev/null >>"$dir/master.out" 2>&1 &

cat >/dev/null || true
kill -KILL 0
