#!/bin/sh
# Runs every reproducer in regressions/<target>/ once against its target
# and says which still fail. Exit status 1 if any does. Run from anywhere;
# needs cargo-fuzz (see the Fuzzing section of README.md).
#
# The limits are the ones the findings were made with: a reproducer that
# takes longer than 10 s or more than 2 GB still counts as a failure.
set -u
cd "$(dirname "$0")" || exit 2
export RUSTC_BOOTSTRAP=1
failed=0
for dir in regressions/*/; do
    target=$(basename "$dir")
    cargo fuzz build "$target" >/dev/null 2>&1 || { echo "build of $target failed"; exit 2; }
    for input in "$dir"*; do
        [ -f "$input" ] || continue
        if cargo fuzz run "$target" "$input" -- -timeout=10 -rss_limit_mb=2048 >/dev/null 2>&1; then
            echo "fixed  $input"
        else
            echo "FAILS  $input"
            failed=1
        fi
    done
done
exit $failed
