#!/usr/bin/env bash
# t_watch.sh — runs watch_check: a store change made by another process is
# seen by the watching thread before its next read returns (sidecar/watch.c).
. "$(dirname "$0")/../lib.sh"
"$BUILD/tests/sidecar/watch_check" "$T_TMP" 3000
