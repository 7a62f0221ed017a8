#!/usr/bin/env bash
# t_faults.sh — systematic failure injection through the PAM module
# (tests/fuzz/fuzz_pam.c, STYLE §15a): for a few logins, every call of each
# class (allocation, open, read, write, PAM library) fails, once and from
# there on, one login per call.  fuzz_pam's oracle judges each answer; this
# script only makes the inputs, so it needs no clang (replay build) and takes
# seconds.  FAULT_SWEEP_STRIDE=k tries every k-th call only.
. "$(dirname "$0")/../lib.sh"

FZ=$BUILD/fuzz/fuzz_pam
stride=${FAULT_SWEEP_STRIDE:-1}
if [ ! -x "$FZ" ]; then
	nok "no $FZ (make tests)"
	done_testing
	exit 1
fi
# the store and the inputs on tmpfs when there is one: fsync latency and
# thousands of small files are not what this is about
W=$T_TMP
if [ -d /dev/shm ] && [ -w /dev/shm ] && W=$(mktemp -d /dev/shm/faults.XXXXXX 2>/dev/null); then
	at_exit "rm -rf '$W'"
else
	W=$T_TMP
fi
export TMPDIR=$W
unset FUZZ_PAM_VERBOSE
mkdir -p "$BUILD/fuzz/artifacts"

# name | the seven bytes that choose the login (see fuzz_pam.c decode()):
# user, typed key, PAM_AUTHTOK key (+1), flags, scope|plan|route, spare, faults
scenarios=(
	"valid key, options from the conf file, account + session|00 01 00 70 18 00 01"
	"key lacks the plan require_plan= asks (conf file)|00 01 00 50 14 00 01"
	"key lacks the plan require_plan= asks (argument)|00 01 00 10 04 00 01"
	"imported key typed after a bad PAM_AUTHTOK (try_first_pass)|00 08 08 12 00 00 01"
	"key lacks the scope scope= asks, ignore_unknown_user, db from the conf file|00 01 00 14 32 00 01"
	"PAM_AUTHTOK of daemon (use_first_pass), account + session|01 07 05 31 00 00 01"
)
classes=(alloc open read write pam)

for s in "${scenarios[@]}"; do
	name=${s%%|*} head=${s#*|}
	dir="$W/sweep"; rm -rf "$dir"; mkdir -p "$dir"
	# the login without faults: how many calls of each class it makes
	python3 -c "import sys; sys.stdout.buffer.write(bytes.fromhex('$head'.replace(' ','')[:-2] + '00'))" >"$dir/base"
	calls=$(FUZZ_PAM_VERBOSE=1 "$FZ" "$dir/base" 2>&1 | grep '^fuzz_pam: calls' | tail -1)
	if [ -z "$calls" ] || [[ $calls != *injected=0* ]]; then
		nok "$name: the fault-free login ran ($calls)"
		continue
	fi
	counts=()
	for c in "${classes[@]}"; do
		n=$(grep -Eo " $c=[0-9]+" <<<"$calls" | cut -d= -f2)
		counts+=("$c=${n:-0}")
	done
	python3 - "$dir" "$head" "$stride" "${counts[@]}" <<'PY'
import sys
d, head, stride = sys.argv[1], bytes.fromhex(sys.argv[2].replace(" ", "")), int(sys.argv[3])
classes = ["alloc", "open", "read", "write", "pam"]
for arg in sys.argv[4:]:
    c, n = arg.split("=")
    cls = classes.index(c)
    # one past the last call too: the plan that never fires
    for k in list(range(0, int(n), stride)) + [int(n)]:
        for sticky in (0, 0x80):
            with open("%s/%s-%d-%s" % (d, c, k, "s" if sticky else "1"), "wb") as f:
                f.write(head + bytes([cls | sticky, k & 0xff, k >> 8]))
PY
	rm -f "$dir/base"
	n_in=$(find "$dir" -type f | wc -l)
	t0=$(date +%s.%N)
	if FUZZ_PAM_SUMMARY=1 "$FZ" -runs=0 -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$BUILD/fuzz/artifacts/fuzz_pam-" "$dir" \
		>"$T_TMP/sweep.log" 2>&1
	then
		secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		sum=$(grep -E '^fuzz_pam: [0-9]+ logins' "$T_TMP/sweep.log" | tail -1)
		# every input ran (libFuzzer runs a few more: the empty one, ...)
		if [ "$(awk '{ print $2 }' <<<"$sum")" -gt "$n_in" ]; then
			ok "$name: each call failing once and for good (${counts[*]}): ${sum#fuzz_pam: } in ${secs}s"
		else
			nok "$name: $n_in inputs made, but: '$sum'"
		fi
	else
		nok "$name: $(grep -m1 -E 'ORACLE VIOLATION|ERROR:|SUMMARY' "$T_TMP/sweep.log")"
		grep -E '^fuzz_pam:|ERROR|SUMMARY|^Base64' "$T_TMP/sweep.log" | head -12 >&2
	fi
done
done_testing
