/* bare_http.c — the baseline of bench_sidecar.sh: a minimal libevent HTTP
 * server on one thread that answers every request 200 with an empty body.
 * With "auth", it sends what apikeyd's /auth 200 must (SPEC §5: the three
 * identity headers and the rate-limit ones, as fixed strings, no default
 * Content-Type): the floor of that answer through evhttp, with no
 * verification at all.
 * usage: bare-http PORT [auth|auth-draft] */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <event2/util.h>
#include <event2/keyvalq_struct.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include "apikey.h"

static int mode;   /* 0 bare, 1 /auth's headers, 2 /auth's with the draft RateLimit fields */

static void on_request(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);

	(void)arg;
	if (mode) {
		evhttp_add_header(oh, "X-ApiKey-Id", "key_kyzZmdigSiNqHBBO");
		evhttp_add_header(oh, "X-ApiKey-Owner", "bench");
		evhttp_add_header(oh, "X-ApiKey-Scopes", "bench:read");
		if (mode == 1) {
			evhttp_add_header(oh, "RateLimit-Limit", "1000000");
			evhttp_add_header(oh, "RateLimit-Remaining", "999999");
			evhttp_add_header(oh, "RateLimit-Reset", "1");
		} else {
			evhttp_add_header(oh, "RateLimit-Policy", "\"default\";q=1000000;w=60");
			evhttp_add_header(oh, "RateLimit", "\"default\";r=999999;t=1");
		}
	}
	if (mode) {       /* the Date apikeyd makes once a second */
		static char date[40];
		static time_t date_s;
		time_t now = time(NULL);
		struct tm tm;

		if (now != date_s && gmtime_r(&now, &tm)) {
			evutil_date_rfc1123(date, sizeof(date), &tm);
			date_s = now;
		}
		evhttp_add_header(oh, "Date", date);
	}
	evhttp_add_header(oh, "Content-Length", "0");
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)sig; (void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	unsigned long long port;
	struct event_base *base;
	struct evhttp *http;
	struct event *term;

	if (argc < 2 || argc > 3 || apikey_parse_uint(argv[1], 1, 65535, &port) != 0 ||
	    (argc == 3 && strcmp(argv[2], "auth") != 0 && strcmp(argv[2], "auth-draft") != 0)) {
		fprintf(stderr, "usage: bare-http PORT [auth|auth-draft]\n");
		return 2;
	}
	mode = argc == 3 ? (strcmp(argv[2], "auth") == 0 ? 1 : 2) : 0;
	signal(SIGPIPE, SIG_IGN);
	if (!(base = event_base_new()) || !(http = evhttp_new(base)) ||
	    evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
		fprintf(stderr, "bare-http: cannot listen on 127.0.0.1:%llu\n", port);
		return 1;
	}
	if (mode)
		evhttp_set_default_content_type(http, NULL);   /* as apikeyd */
	evhttp_set_gencb(http, on_request, NULL);
	term = evsignal_new(base, SIGTERM, on_term, base);
	event_add(term, NULL);
	event_base_dispatch(base);
	event_free(term);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
