#!/usr/bin/env bash
# t_store.sh — the short run of tests/reliability/t_store.sh (the store
# replaced, restored, re-made, deleted, a wrong pepper under a running
# apikeyd); the whole file runs in make check-reliability.
STORE_SHORT=1 exec bash "$(dirname "$0")/../reliability/t_store.sh"
