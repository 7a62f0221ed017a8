/* ui.c — the /ui/ dashboard (SPEC §5a, docs/design/admin.md "The dashboard"):
 * the page, its style sheet, script and icon, embedded at build time from
 * sidecar/ui/ (sidecar.mk), served by apikeyd itself and only when
 * admin_api=yes.  Every answer carries a Content-Security-Policy that allows
 * nothing but these files and calls to this origin, and the headers that keep
 * the page from being framed, cached, sniffed or leaking its address. */
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include "sidecar.h"

#define UI_ROOT "/ui/"

/* No inline script or style, no other origin, no framing, no form
 * submission, no <base>; string-to-script sinks (innerHTML…) need a Trusted
 * Types policy and none may be made: the page builds its DOM node by node. */
#define UI_CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " \
               "require-trusted-types-for 'script'; trusted-types 'none'"

static const char *const ui_headers[][2] = {
	{ "Content-Security-Policy", UI_CSP },
	{ "X-Frame-Options", "DENY" },
	{ "Referrer-Policy", "no-referrer" },
	{ "Cache-Control", "no-store" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "Cross-Origin-Opener-Policy", "same-origin" },
	{ "Cross-Origin-Resource-Policy", "same-origin" },
};

/* The asset a path names: "/ui/" is index.html, "/ui/NAME" the file NAME
 * (names have no '/': nothing below sidecar/ui/ is reachable but its files). */
static const struct sc_asset *find(const char *path)
{
	const char *name;

	if (strncmp(path, UI_ROOT, strlen(UI_ROOT)))
		return NULL;
	name = path + strlen(UI_ROOT);
	if (!*name)
		name = "index.html";
	else if (!strcmp(name, "index.html"))
		return NULL;             /* one address for the page: /ui/ */
	for (unsigned i = 0; i < sc_ui_n_assets; i++)
		if (!strcmp(sc_ui_assets[i].name, name))
			return &sc_ui_assets[i];
	return NULL;
}

static void add_headers(struct evhttp_request *req)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);

	for (size_t i = 0; i < sizeof(ui_headers) / sizeof(ui_headers[0]); i++)
		evhttp_add_header(oh, ui_headers[i][0], ui_headers[i][1]);
}

bool sc_ui_dispatch(struct sc_worker *w, struct evhttp_request *req, const char *path, int64_t t0)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	const struct sc_asset *a;

	if (!w->sh->admin)
		return false;            /* admin_api=no: /ui/ is 404 like the API */
	a = find(path);
	if (!a && strcmp(path, "/ui"))
		return false;
	sc_wipe_key_headers(w, req);  /* the page's own files need no key */
	add_headers(req);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(oh, "Allow", "GET");
		sc_error_body(w, req, 405, "METHOD_NOT_ALLOWED", NULL, "Method not allowed");
		sc_reply(w, req, EP_UI, 405, RES_METHOD_NOT_ALLOWED, NULL, t0);
		return true;
	}
	if (!a) {                     /* "/ui": relative, so a path prefix of a proxy stays */
		evhttp_add_header(oh, "Location", "ui/");
		sc_reply(w, req, EP_UI, 308, RES_OK, NULL, t0);
		return true;
	}
	if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), a->data, a->len, NULL, NULL) != 0) {
		sc_json_body(w, req, NULL);  /* out of memory: the 500 body, never a truncated file */
		sc_reply(w, req, EP_UI, 500, RES_BAD_REQUEST, NULL, t0);
		return true;
	}
	evhttp_add_header(oh, "Content-Type", a->type);
	sc_reply(w, req, EP_UI, 200, RES_OK, NULL, t0);
	return true;
}

void sc_ui_print_routes(void)
{
	printf("GET /ui\n");
	for (unsigned i = 0; i < sc_ui_n_assets; i++)
		printf("GET %s%s\n", UI_ROOT, strcmp(sc_ui_assets[i].name, "index.html") ? sc_ui_assets[i].name : "");
}
