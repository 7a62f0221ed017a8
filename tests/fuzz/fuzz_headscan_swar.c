/* fuzz_headscan_swar.c — fuzz_headscan against headscan.c built without
 * its SSE2 block (HEADSCAN_SWAR: the eight-bytes-at-a-time path that
 * machines without SSE2 run). */
#include "fuzz_headscan.c"
