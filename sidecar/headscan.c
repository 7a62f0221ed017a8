/* headscan.c — the byte-level check of a request head as it arrives (see
 * headscan.h).  Runs on every request before evhttp parses it, so it is
 * written for speed: eight bytes at a time while they are plain, byte by
 * byte only around line ends and faults.  tests/fuzz/fuzz_headscan.c holds
 * it against a byte-at-a-time reference. */
#include <endian.h>
#include <string.h>
#if defined(__SSE2__) && !defined(HEADSCAN_SWAR)
#include <emmintrin.h>
#endif
#include "headscan.h"

void sc_headscan_reset(struct sc_headscan *h)
{
	memset(h, 0, sizeof(*h));
}

static int refuse(struct sc_headscan *h, int status, const char *why)
{
	h->why = why;
	return status;
}

/* The head grew past max: 414 while still in the request line. */
static int too_big(struct sc_headscan *h)
{
	return h->lines == 0 ? refuse(h, 414, "Request line too long")
	                     : refuse(h, 431, "Request header fields too large");
}

#if defined(__SSE2__) && !defined(HEADSCAN_SWAR)
/* Sixteen bytes at once: bit k of the mask is set when p[k] is below 0x20
 * or a DEL. */
#define BLOCK 16
#define SHIFT 0
static inline uint64_t special_mask(const unsigned char *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
	__m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));

	return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, del));
}
#else
/* Eight bytes at once (SWAR; HEADSCAN_SWAR forces it on x86 too, for
 * tests/fuzz/fuzz_headscan_swar.c): bit 8k+7 is set when p[k] is below 0x20
 * or a DEL. */
#define BLOCK 8
#define SHIFT 3
/* Eight bytes, the first the lowest. */
static inline uint64_t load_le(const unsigned char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return le64toh(x);
}

/* Bit 7 of each byte of the result is set when that byte of x is below
 * 0x20 or a DEL: exact for each byte (no carry crosses a byte), bytes of
 * 0x80 and above never set. */
static inline uint64_t special_bytes(uint64_t x)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL, high = ~low7;
	uint64_t y = x ^ low7;

	return (~(((x & low7) + 0x6060606060606060ULL) | x) & high) |
	       ~(((y & low7) + low7) | y | low7);
}

static inline uint64_t special_mask(const unsigned char *p)
{
	return special_bytes(load_le(p));
}
#endif

/* The request line's first and last bytes so far. */
static void keep_tail(struct sc_headscan *h, const unsigned char *p, size_t n)
{
	size_t t = sizeof(h->tail);

	if (h->first_len < sizeof(h->lead)) {
		size_t k = sizeof(h->lead) - h->first_len;
		memcpy(h->lead + h->first_len, p, k < n ? k : n);
	}
	if (n >= t) {
		memcpy(h->tail, p + n - t, t);
	} else if (n) {
		memmove(h->tail, h->tail + n, t - n);
		memcpy(h->tail + t - n, p, n);
	}
	h->first_len += (uint32_t)n;
}

/* At the request line's end: CONNECT is 501; HTTP/1.0 and HTTP/1.1 pass,
 * another HTTP/d.d is 505 (evhttp would accept 1.2 and answer "HTTP/1.2"),
 * anything else is no request line. */
static int check_version(struct sc_headscan *h)
{
	const char *v = h->tail;

	if (h->first_len >= sizeof(h->lead) && !memcmp(h->lead, "CONNECT ", 8))
		return refuse(h, 501, "CONNECT is not served");
	if (h->first_len >= sizeof(h->tail) + 3) {
		if (!memcmp(v, " HTTP/1.1", 9) || !memcmp(v, " HTTP/1.0", 9))
			return 0;
		if (!memcmp(v, " HTTP/", 6) && v[6] >= '0' && v[6] <= '9' && v[7] == '.' &&
		    v[8] >= '0' && v[8] <= '9')
			return refuse(h, 505, "HTTP version not supported (HTTP/1.1 and 1.0 are)");
	}
	return refuse(h, 400, "Malformed request line");
}

/* A line ended at an LF; its last part in this piece is p[ls..e) (no CR). */
static int line_end(struct sc_headscan *h, const unsigned char *p, size_t ls, size_t e)
{
	int r;

	if (h->line_len + (e - ls) == 0) {
		if (h->lines == 0)
			return refuse(h, 400, "Empty request line");
		h->done = 1;
		return 0;
	}
	if (h->lines == 0) {
		keep_tail(h, p + ls, e - ls);
		if ((r = check_version(h)) != 0)
			return r;
	}
	h->lines++;
	h->line_len = 0;
	return 0;
}

/* The byte after a line end, p[i], starts the next line: a blank there is
 * obsolete folding. */
static int line_start(struct sc_headscan *h, const unsigned char *p, size_t i, size_t max)
{
	if (p[i] != ' ' && p[i] != '\t')
		return 0;
	if (h->head_bytes + 1 > max)
		return too_big(h);
	return refuse(h, 400, "Obsolete line folding in the request head");
}

int sc_headscan_feed(struct sc_headscan *h, const unsigned char *p, size_t n, size_t max)
{
	size_t i = 0, ls = 0;   /* i: next byte to look at; ls: where the current line starts in p */
	int r;

	if (n == 0)
		return 0;
	if (h->cr) {            /* the last piece ended in a CR (counted there) */
		h->cr = 0;
		if (++h->head_bytes > max)
			return too_big(h);
		if (p[0] != '\n')
			return refuse(h, 400, "A CR not followed by LF in the request head");
		if ((r = line_end(h, p, 0, 0)) != 0 || h->done)
			return r;
		if (n == 1)
			return 0;
		i = ls = 1;
		if ((r = line_start(h, p, 1, max)) != 0)
			return r;
	} else if (h->line_len == 0 && h->lines > 0 && (r = line_start(h, p, 0, max)) != 0) {
		return r;
	}
	/* A block of bytes at a time; only the bytes below 0x20 and DEL are
	 * looked at one by one (line ends, tabs, faults). */
	for (size_t w = i; w < n && !h->cr; w += BLOCK) {
		uint64_t m;

		if (n - w >= BLOCK) {
			m = special_mask(p + w);
		} else {                /* the last bytes, padded with plain ones */
			unsigned char pad[BLOCK];
			memset(pad, 'a', sizeof(pad));
			memcpy(pad, p + w, n - w);
			m = special_mask(pad);
		}
		for (; m; m &= m - 1) {
			size_t j = w + ((size_t)__builtin_ctzll(m) >> SHIFT);
			unsigned char b = p[j];
			size_t e;

			if (j < i || b == '\t')   /* an LF taken with its CR; a tab */
				continue;
			if (h->head_bytes + (j - ls) + 1 > max)
				return too_big(h);
			if (b == '\r') {
				if (j + 1 == n) {   /* its LF in the next piece */
					h->cr = 1;
					break;
				}
				e = j++;
				if (h->head_bytes + (j - ls) + 1 > max)
					return too_big(h);
				if (p[j] != '\n')
					return refuse(h, 400, "A CR not followed by LF in the request head");
			} else if (b == '\n') {
				e = j;
			} else {
				return refuse(h, 400, b == 0 ? "NUL byte in the request head"
				                             : "Control character in the request head");
			}
			/* p[j] is the LF */
			h->head_bytes += (uint32_t)(j + 1 - ls);
			if ((r = line_end(h, p, ls, e)) != 0 || h->done)
				return r;
			i = ls = j + 1;
			if (i < n && (r = line_start(h, p, i, max)) != 0)
				return r;
		}
	}
	/* the piece ends inside a line: p[ls..n), a final CR not its content */
	h->head_bytes += (uint32_t)(n - ls);
	if (h->head_bytes > max)
		return too_big(h);
	n -= h->cr;
	h->line_len += (uint32_t)(n - ls);
	if (h->lines == 0)
		keep_tail(h, p + ls, n - ls);
	return 0;
}
