/* bare_http.c — the baseline of bench_sidecar.sh: a minimal libevent HTTP
 * server on one thread that answers every request 200 with an empty body.
 * usage: bare-http PORT */
#include <signal.h>
#include <stdio.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include "apikey.h"

static void on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", "0");
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

	if (argc != 2 || apikey_parse_uint(argv[1], 1, 65535, &port) != 0) {
		fprintf(stderr, "usage: bare-http PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!(base = event_base_new()) || !(http = evhttp_new(base)) ||
	    evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
		fprintf(stderr, "bare-http: cannot listen on 127.0.0.1:%llu\n", port);
		return 1;
	}
	evhttp_set_gencb(http, on_request, NULL);
	term = evsignal_new(base, SIGTERM, on_term, base);
	event_add(term, NULL);
	event_base_dispatch(base);
	event_free(term);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
