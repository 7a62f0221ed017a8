/* follower.c — apikeyd in fleet mode (upstream= set): the follower that
 * keeps --db a replica of the upstream runs in its own thread
 * (upstream/follower.c), started before the workers open the store; its
 * position and lag go into /readyz and /metrics; a refusal (pepper or fleet
 * mismatch) stops the daemon.  `apikeyd --no-http` runs only this.  The
 * admin API's writer connection gets the upstream writer here
 * (sc_fleet_attach), so its writes go to PostgreSQL like apikeyctl's. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <event2/buffer.h>
#include "sidecar.h"

/* From the follower's thread: tell main's event loop to stop (a pipe). */
static void on_fatal(void *ctx)
{
	int fd = *(int *)ctx;

	if (write(fd, "x", 1) < 0)
		log_warn("follower: cannot tell the main loop to stop");
}

int sc_fleet_start(struct sc_shared *sh, const struct sc_config *cfg, bool no_http, int fatal_fd)
{
	struct apikey_follower_config fc;
	char why[200];
	int r;

	if (!apikey_upstream_set(&cfg->set.up))
		return 0;
	if (apikey_upstream_check_conninfo(cfg->set.up.conninfo, cfg->set.up.insecure, why, sizeof(why)) != 0)
		return log_errx("upstream: %s", why), -1;
	memset(&fc, 0, sizeof(fc));
	fc.core = cfg->core;
	fc.up = cfg->set.up;
	if (gethostname(fc.host, sizeof(fc.host) - 1) != 0)
		snprintf(fc.host, sizeof(fc.host), "?");
	fc.log = sc_core_log;
	fc.cache = sh->cache;
	sh->fatal_fd = fatal_fd;
	fc.on_fatal = on_fatal;
	fc.fatal_ctx = &sh->fatal_fd;
	if ((r = apikey_follower_new(&sh->follower, &fc)) == APIKEY_ERR_BUSY && !no_http) {
		/* another apikeyd on this host follows the replica: serve it */
		log_info("fleet mode: another process follows %s; serving it without following",
		         cfg->core.db_path);
		return 0;
	}
	if (r != 0)
		return -1;   /* logged: another follower, or the lock file */
	if (apikey_follower_start(sh->follower) != 0)
		return log_errx("follower: cannot start its thread"), -1;
	/* the workers open the replica: it must exist first */
	if ((r = apikey_follower_wait_ready(sh->follower, 200)) == APIKEY_ERR_BUSY) {
		log_info("follower: no replica at %s yet: waiting for the upstream to build it", cfg->core.db_path);
		r = apikey_follower_wait_ready(sh->follower, 0);
	}
	if (r != 0)
		return log_errx("follower: refused to follow (see above)"), -1;
	log_info("fleet mode: following the upstream into %s", cfg->core.db_path);
	return 0;
}

void sc_fleet_stop(struct sc_shared *sh)
{
	apikey_follower_free(sh->follower);
	sh->follower = NULL;
}

int sc_fleet_attach(const struct sc_config *cfg, struct apikey_store *s)
{
	if (!apikey_upstream_set(&cfg->set.up))
		return 0;
	return apikey_upstream_attach(s, &cfg->set.up, "apikeyd");
}

static int fleet_rate(void *ctx, const char *key_id, uint32_t per_minute, int64_t now_us,
                      struct apikey_ratelimit *out)
{
	return apikey_follower_rate_check(ctx, key_id, per_minute, now_us, out);
}

void sc_fleet_verifier(const struct sc_shared *sh, struct apikey_verifier *v)
{
	if (!sh->follower)
		return;
	v->fleet_rate = fleet_rate;
	v->fleet_ctx = sh->follower;
}

void sc_fleet_readyz(const struct sc_shared *sh, struct evbuffer *out)
{
	struct apikey_follower_status st;

	if (!sh->follower)
		return;
	apikey_follower_status(sh->follower, &st);
	evbuffer_add_printf(out, "upstream: %s%s%s\napplied_seq: %" PRId64 "\nupstream_seq: %" PRId64
	                    "\nstaleness_seconds: %.3f\n", apikey_follower_state_name(st.state),
	                    st.error[0] ? " (" : "", st.error[0] ? st.error : "", st.applied_seq, st.head_seq,
	                    (double)st.staleness_ms / 1000);
}

void sc_fleet_metrics(const struct sc_shared *sh, struct evbuffer *o)
{
	struct apikey_follower_status st;
	struct apikey_fleet_rate_stats rs;

	if (!sh->follower)
		return;
	apikey_follower_status(sh->follower, &st);
	apikey_follower_rate_stats(sh->follower, &rs);
	evbuffer_add_printf(o,
		"# HELP apikeyd_fleet_rate_keys Keys in the fleet rate-limit pool.\n"
		"# TYPE apikeyd_fleet_rate_keys gauge\n"
		"apikeyd_fleet_rate_keys %u\n"
		"# HELP apikeyd_fleet_rate_hosts Hosts sharing a key's limit (seen upstream in the last minute).\n"
		"# TYPE apikeyd_fleet_rate_hosts gauge\n"
		"apikeyd_fleet_rate_hosts %u\n"
		"# HELP apikeyd_fleet_rate_rounds_total Lease rounds answered by the upstream.\n"
		"# TYPE apikeyd_fleet_rate_rounds_total counter\n"
		"apikeyd_fleet_rate_rounds_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_rate_round_errors_total Lease rounds that failed (the host limits alone meanwhile).\n"
		"# TYPE apikeyd_fleet_rate_round_errors_total counter\n"
		"apikeyd_fleet_rate_round_errors_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_rate_credit_total Requests admitted on credit, charged at the next round.\n"
		"# TYPE apikeyd_fleet_rate_credit_total counter\n"
		"apikeyd_fleet_rate_credit_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_rate_refused_total Requests the fleet's limit refused.\n"
		"# TYPE apikeyd_fleet_rate_refused_total counter\n"
		"apikeyd_fleet_rate_refused_total %" PRIu64 "\n",
		rs.keys, rs.hosts, rs.rounds, rs.errors, rs.credit_used, rs.refused);
	evbuffer_add_printf(o,
		"# HELP apikeyd_fleet_upstream_up 1 while the follower is connected and following the upstream.\n"
		"# TYPE apikeyd_fleet_upstream_up gauge\n"
		"apikeyd_fleet_upstream_up %d\n"
		"# HELP apikeyd_fleet_applied_seq The last upstream transaction the replica has applied.\n"
		"# TYPE apikeyd_fleet_applied_seq gauge\n"
		"apikeyd_fleet_applied_seq %" PRId64 "\n"
		"# HELP apikeyd_fleet_upstream_seq The upstream's last transaction, as last seen.\n"
		"# TYPE apikeyd_fleet_upstream_seq gauge\n"
		"apikeyd_fleet_upstream_seq %" PRId64 "\n"
		"# HELP apikeyd_fleet_lag_transactions Upstream transactions not yet applied.\n"
		"# TYPE apikeyd_fleet_lag_transactions gauge\n"
		"apikeyd_fleet_lag_transactions %" PRId64 "\n"
		"# HELP apikeyd_fleet_staleness_seconds 0 while the replica is current; else the time since it last was.\n"
		"# TYPE apikeyd_fleet_staleness_seconds gauge\n"
		"apikeyd_fleet_staleness_seconds %.3f\n"
		"# HELP apikeyd_fleet_last_contact_seconds Last answer from the upstream, since the epoch.\n"
		"# TYPE apikeyd_fleet_last_contact_seconds gauge\n"
		"apikeyd_fleet_last_contact_seconds %.3f\n"
		"# HELP apikeyd_fleet_applied_transactions_total Upstream transactions applied since start.\n"
		"# TYPE apikeyd_fleet_applied_transactions_total counter\n"
		"apikeyd_fleet_applied_transactions_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_resyncs_total In-place resyncs of the replica.\n"
		"# TYPE apikeyd_fleet_resyncs_total counter\n"
		"apikeyd_fleet_resyncs_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_rebuilds_total Replica files built from a snapshot.\n"
		"# TYPE apikeyd_fleet_rebuilds_total counter\n"
		"apikeyd_fleet_rebuilds_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_errors_total Lost connections and failed rounds.\n"
		"# TYPE apikeyd_fleet_errors_total counter\n"
		"apikeyd_fleet_errors_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_usage_rounds_total Usage shipped up and fleet totals pulled.\n"
		"# TYPE apikeyd_fleet_usage_rounds_total counter\n"
		"apikeyd_fleet_usage_rounds_total %" PRIu64 "\n"
		"# HELP apikeyd_fleet_streams_total Streams of changes followed by fetching every 16 ms, not listening.\n"
		"# TYPE apikeyd_fleet_streams_total counter\n"
		"apikeyd_fleet_streams_total %" PRIu64 "\n",
		st.state == APIKEY_FOLLOWER_FOLLOWING, st.applied_seq, st.head_seq,
		st.head_seq > st.applied_seq ? st.head_seq - st.applied_seq : 0, (double)st.staleness_ms / 1000,
		(double)st.last_contact_ms / 1000, st.applied_txns, st.resyncs, st.rebuilds, st.errors,
		st.usage_rounds, st.streams);
}
