#!/usr/bin/env bash
# bench_fleet_floor.sh — the bare floors under fleet mode (issue 11), on a
# throwaway PostgreSQL (tests/fleet/pg-lib.sh):
#  - revocation propagation to FLOOR_FOLLOWERS (8) SQLite replicas, replicas
#    at synchronous=NORMAL and FULL, FLOOR_REVOKES (500) revocations each,
#    follower fetching the log (fetch) and applying the NOTIFY payload
#    (payload); the reader polls every FLOOR_POLL_US (50) µs;
#  - the initial sync of a FLOOR_KEYS (1,000,000) key upstream into an empty
#    replica, three ways;
#  - the shared-memory rate-limit table prototype (bench/shm_limiter.c).
# Prints numbers; asserts nothing.  Needs build/bench/fleet-floor and
# build/bench/shm-limiter (make bench-tools).
set -u
: "${TOP:=$(cd "$(dirname "$0")/.." && pwd)}" "${BUILD:=$TOP/build}"
. "$TOP/tests/lib.sh"
. "$TOP/tests/fleet/pg-lib.sh"
ff=$BUILD/bench/fleet-floor
F=${FLOOR_FOLLOWERS:-8} N=${FLOOR_REVOKES:-500} K=${FLOOR_KEYS:-1000000}
[ -x "$ff" ] || { echo "fleet-floor: build it first (make bench-tools)" >&2; exit 1; }
pg_require || exit 1
pg_init || exit 1
echo "PostgreSQL $(pg_psql -c 'SHOW server_version'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
dir=$T_TMP/replicas
mkdir -p "$dir"
for mode in ${FLOOR_MODES:-fetch payload}; do
	for sync in normal full; do
		"$ff" propagate -f "$F" -n "$N" -s "$sync" -m "$mode" -p "${FLOOR_POLL_US:-50}" \
			"$PG_CONNINFO" "$dir" || echo "propagate $sync $mode: failed"
	done
done
if [ "$K" -gt 0 ]; then
	"$ff" fill -k "$K" "$PG_CONNINFO"
	for variant in "-i after -j off" "-i after -j wal" "-i during -j off -o"; do
		rm -f "$dir"/initsync.db*
		# shellcheck disable=SC2086
		"$ff" initsync $variant "$PG_CONNINFO" "$dir" || echo "initsync $variant: failed"
	done
	# The replica left by the last variant, after the upstream moved on
	# without it (the log pruned past it): 1% of the keys revoked, 0.1%
	# deleted, 0.1% new.  Then the same again with nothing changed.
	pg_psql -c "UPDATE keys SET revoked_at = 1 WHERE id IN (SELECT id FROM keys ORDER BY md5(id) LIMIT $((K / 100)));
		DELETE FROM keys WHERE id IN (SELECT id FROM keys ORDER BY md5(id || 'x') LIMIT $((K / 1000)));
		INSERT INTO keys SELECT 'key_n' || substr(md5(i::text), 1, 15), sha256(convert_to('n' || i, 'UTF8')),
		  'ak_new0', 'user1', '', 'api:read', '{}', 60, 1764000000, NULL, NULL
		  FROM generate_series(1, $((K / 1000))) i;
		UPDATE log_head SET seq = seq + 1"
	"$ff" resync "$PG_CONNINFO" "$dir" || echo "resync: failed"
	"$ff" resync "$PG_CONNINFO" "$dir" || echo "resync: failed"
	rm -f "$dir"/initsync.db*
fi
echo
echo "== shared-memory rate-limit table (bench/shm_limiter.c)"
"$BUILD/bench/shm-limiter" "$T_TMP" "${SHM_ITERS:-2000000}"
