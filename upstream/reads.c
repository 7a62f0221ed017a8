/* reads.c — what apikeyctl reads from the upstream itself in fleet mode:
 * the fleet's audit log (writers' events and every host's own, shipped by
 * its follower), where one host's replica holds only its own. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "upstream_int.h"

int apikey_upstream_events(struct apikey_store *s, const struct apikey_upstream_options *o, const char *key_id,
                           unsigned limit, int (*fn)(void *ctx, const struct apikey_event *e), void *ctx)
{
	char lim[24];
	const char *p[2] = { lim, key_id };
	struct up_conn u;
	PGresult *res;
	int r;

	/* LIMIT NULL is no limit */
	snprintf(lim, sizeof(lim), "%u", limit);
	if (!limit)
		p[0] = NULL;
	if ((r = up_connect(&u, up_writer_conninfo(o), o->insecure, "apikeyctl", store_logger(s), -1)) != 0)
		return r == APIKEY_ERR_CONFIG ? APIKEY_ERR_UPSTREAM : r;
	if ((r = up_check_schema(&u)) != 0)
		goto out;
	if (!(res = up_query(&u, key_id
	                     ? "SELECT id, at, key_id, event, reason, source, actor, owner, host FROM apikey.events"
	                       " WHERE key_id = $2 ORDER BY at DESC, id DESC LIMIT $1::bigint"
	                     : "SELECT id, at, key_id, event, reason, source, actor, owner, host FROM apikey.events"
	                       " ORDER BY at DESC, id DESC LIMIT $1::bigint", key_id ? 2 : 1, p, &r)))
		goto out;
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct apikey_event e;
		const char *host = PQgetvalue(res, i, 8);

		memset(&e, 0, sizeof(e));
		e.id = up_parse_int(PQgetvalue(res, i, 0), 0, INT64_MAX);
		e.at_s = up_parse_int(PQgetvalue(res, i, 1), 0, INT64_MAX);
		snprintf(e.key_id, sizeof(e.key_id), "%s", PQgetvalue(res, i, 2));
		snprintf(e.event, sizeof(e.event), "%s", PQgetvalue(res, i, 3));
		snprintf(e.reason, sizeof(e.reason), "%s", PQgetvalue(res, i, 4));
		/* which host: the fleet's log is many hosts' */
		snprintf(e.source, sizeof(e.source), "%s%s%.40s", PQgetvalue(res, i, 5), host[0] ? " on " : "", host);
		snprintf(e.actor, sizeof(e.actor), "%s", PQgetvalue(res, i, 6));
		snprintf(e.owner, sizeof(e.owner), "%s", PQgetvalue(res, i, 7));
		r = fn(ctx, &e);
	}
	PQclear(res);
out:
	up_close(&u);
	return r;
}
