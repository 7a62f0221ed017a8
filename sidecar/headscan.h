/* headscan.h — the byte-level check of an HTTP request head, fed as it
 * arrives, before evhttp parses it (sidecar/headscan.c; used by guard.c,
 * driven by tests/fuzz/fuzz_headscan.c).  It classifies bytes and finds line
 * ends; it extracts no field: evhttp stays the parser. */
#ifndef SIDECAR_HEADSCAN_H
#define SIDECAR_HEADSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One head being read.  Zeroed (sc_headscan_reset) at each request's start. */
struct sc_headscan {
	uint32_t head_bytes;   /* bytes of the head so far, line ends included */
	uint32_t lines;        /* complete lines so far */
	uint32_t line_len;     /* bytes of the current line so far (no CR, no LF) */
	uint32_t first_len;    /* bytes of the request line so far */
	bool cr;               /* the last byte was a CR: an LF must follow */
	bool done;             /* the blank line was seen: the head is whole */
	char lead[8];          /* the request line's first 8 bytes */
	char tail[9];          /* the request line's last 9 bytes */
	const char *why;       /* after a refusal: what was wrong */
};

void sc_headscan_reset(struct sc_headscan *h);

/*
 * The next n bytes of the stream.  0: nothing wrong so far (h->done once
 * the blank line was seen; what follows it is not looked at), or the status
 * to refuse the request with, h->why saying why:
 *   400  a NUL, another control byte but tab, or DEL; a CR not before LF;
 *        a line (not the first) starting with a blank (obsolete folding);
 *        an empty line before the request line; a request line that does
 *        not end in " HTTP/<digit>.<digit>"
 *   501  a CONNECT request (libevent answers it 501 but keeps reading the
 *        connection, and the requests after it would not be checked)
 *   505  " HTTP/d.d" other than 1.0 and 1.1
 *   414  the request line alone over max bytes; 431 the head over max.
 * Feeding a refused or done scan again is not allowed.
 */
int sc_headscan_feed(struct sc_headscan *h, const unsigned char *p, size_t n, size_t max);

#endif /* SIDECAR_HEADSCAN_H */
