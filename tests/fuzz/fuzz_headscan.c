/* fuzz_headscan.c — libFuzzer target for apikeyd's byte-level head check
 * (sidecar/headscan.c): any bytes, cut into any pieces, with any size
 * limit, must get the same verdict — status, done, bytes of head, lines —
 * as a byte-at-a-time reference written here from headscan.h's contract;
 * and never a read outside the pieces (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "headscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref {
	uint32_t head_bytes, lines, line_len, first_len;
	int cr, done;
	char lead[8], tail[9];
};

static int ref_version(const struct ref *r)
{
	const char *v = r->tail;

	if (r->first_len >= 8 && !memcmp(r->lead, "CONNECT ", 8))
		return 501;
	if (r->first_len >= 12) {
		if (!memcmp(v, " HTTP/1.1", 9) || !memcmp(v, " HTTP/1.0", 9))
			return 0;
		if (!memcmp(v, " HTTP/", 6) && v[6] >= '0' && v[6] <= '9' && v[7] == '.' &&
		    v[8] >= '0' && v[8] <= '9')
			return 505;
	}
	return 400;
}

/* One byte at a time, each rule as headscan.h states it. */
static int ref_feed(struct ref *r, const unsigned char *p, size_t n, size_t max)
{
	for (size_t i = 0; i < n && !r->done; i++) {
		unsigned char b = p[i];
		int v;

		if (++r->head_bytes > max)
			return r->lines == 0 ? 414 : 431;
		if (r->cr) {
			r->cr = 0;
			if (b != '\n')
				return 400;
		} else if (b == '\r') {
			r->cr = 1;
			continue;
		}
		if (b == '\n') {
			if (r->line_len == 0) {
				if (r->lines == 0)
					return 400;
				r->done = 1;
				break;
			}
			if (r->lines == 0 && (v = ref_version(r)) != 0)
				return v;
			r->lines++;
			r->line_len = 0;
			continue;
		}
		if (r->line_len == 0 && r->lines > 0 && (b == ' ' || b == '\t'))
			return 400;
		if ((b < 0x20 && b != '\t') || b == 0x7f)
			return 400;
		r->line_len++;
		if (r->lines == 0) {
			if (r->first_len < 8)
				r->lead[r->first_len] = (char)b;
			memmove(r->tail, r->tail + 1, 8);
			r->tail[8] = (char)b;
			r->first_len++;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_headscan h;
	struct ref r;
	size_t max, pos = 0;
	int got = 0, want = 0;

	if (size < 3)
		return 0;
	/* the first two bytes: the size limit (small ones reach it often) */
	max = (size_t)data[0] | ((size_t)(data[1] & 0x3f) << 8);
	data += 2;
	size -= 2;
	sc_headscan_reset(&h);
	memset(&r, 0, sizeof(r));
	/* pieces of 1..16 bytes, their lengths from the data itself, each in a
	 * buffer of its own size so ASan sees any read past it */
	while (pos < size && !got && !h.done) {
		size_t k = (size_t)(data[pos] % 16) + 1;
		unsigned char *piece;

		if (k > size - pos)
			k = size - pos;
		if (!(piece = malloc(k)))
			return 0;
		memcpy(piece, data + pos, k);
		got = sc_headscan_feed(&h, piece, k, max);
		free(piece);
		pos += k;
	}
	/* the reference over the same bytes, in one go */
	want = ref_feed(&r, data, pos, max);
	if (got != want)
		__builtin_trap();
	if (!got) {
		if (h.done != r.done || h.lines != r.lines)
			__builtin_trap();
		if (h.done && h.head_bytes != r.head_bytes)
			__builtin_trap();
		if (!h.done && (h.head_bytes != r.head_bytes || h.line_len != r.line_len || h.cr != r.cr))
			__builtin_trap();
	}
	return 0;
}
