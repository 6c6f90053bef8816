#!/bin/sh
# The test Postfix's "sink" transport (master.cf): pipe(8) runs this as
# nobody with the message on standard input. It stores the message byte for
# byte as DIR/QUEUE_ID.eml and the envelope as DIR/QUEUE_ID.envelope
# ("MAIL FROM:<sender>", then one "RCPT TO:<rcpt>" line each), written
# under a dot name and renamed, so a reader never sees half a message.
# usage: deliver.sh DIR QUEUE_ID SENDER RECIPIENT...
set -eu
dir=$1 id=$2 sender=$3
shift 3
printf 'MAIL FROM:<%s>\n' "$sender" >"$dir/.$id.envelope"
for rcpt in "$@"; do
    printf 'RCPT TO:<%s>\n' "$rcpt" >>"$dir/.$id.envelope"
done
cat >"$dir/.$id.eml"
mv "$dir/.$id.envelope" "$dir/$id.envelope"
mv "$dir/.$id.eml" "$dir/$id.eml"
