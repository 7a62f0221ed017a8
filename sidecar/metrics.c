/* metrics.c — per-worker counters and their Prometheus text rendering
 * (exposition format 0.0.4) for GET /metrics. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>
#include "sidecar.h"
#include "guard.h"

/* Upper bounds of the latency buckets, in nanoseconds (le= in seconds). */
static const int64_t bucket_ns[SC_LATENCY_BUCKETS] = {
	25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	10000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};

static const char *endpoint_names[EP_COUNT] = {
	[EP_AUTH] = "/auth", [EP_VERIFY] = "/v1/verify", [EP_WHOAMI] = "/v1/whoami",
	[EP_HEALTHZ] = "/healthz", [EP_READYZ] = "/readyz", [EP_METRICS] = "/metrics",
	[EP_OPENAPI] = "/openapi.json", [EP_ADMIN] = "admin", [EP_UI] = "/ui", [EP_OTHER] = "other",
};

const char *sc_endpoint_name(enum sc_endpoint ep)
{
	return (unsigned)ep < EP_COUNT ? endpoint_names[ep] : "other";
}

const char *sc_result_name(int result)
{
	switch (result) {
	case RES_OK:                 return "OK";
	case RES_BAD_REQUEST:        return "BAD_REQUEST";
	case RES_NOT_FOUND:          return "NOT_FOUND";
	case RES_METHOD_NOT_ALLOWED: return "METHOD_NOT_ALLOWED";
	case RES_NOT_READY:          return "NOT_READY";
	case RES_FORBIDDEN:          return "FORBIDDEN";
	case RES_CONFLICT:           return "CONFLICT";
	default:
		return result >= 0 && result < APIKEY_OUTCOME_COUNT ?
		       apikey_outcome_code((enum apikey_outcome)result) : "UNKNOWN";
	}
}

#define ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

void sc_metrics_count(struct sc_worker *w, enum sc_endpoint ep, int result, int64_t ns)
{
	int b = 0;

	if ((unsigned)ep >= EP_COUNT)
		ep = EP_OTHER;
	if (result < 0 || result >= RES_COUNT)
		result = RES_BAD_REQUEST;
	ADD(w->m.requests[ep][result], 1);
	if (result == APIKEY_UNAVAILABLE)
		ADD(w->m.store_errors, 1);
	if (ns < 0)
		ns = 0;
	while (b < SC_LATENCY_BUCKETS && ns > bucket_ns[b])
		b++;
	ADD(w->m.latency[b], 1);
	ADD(w->m.latency_sum_ns, (uint64_t)ns);
}

void sc_metrics_render(const struct sc_shared *sh, struct evbuffer *o)
{
	struct apikey_cache_stats cs;
	uint64_t lat[SC_LATENCY_BUCKETS + 1] = { 0 }, sum_ns = 0, store_errors = 0, cum = 0;

	evbuffer_add_printf(o,
		"# HELP apikeyd_requests_total Requests answered, by endpoint and outcome.\n"
		"# TYPE apikeyd_requests_total counter\n");
	for (int ep = 0; ep < EP_COUNT; ep++)
		for (int res = 0; res < RES_COUNT; res++) {
			uint64_t n = 0;
			for (unsigned i = 0; i < sh->n_workers; i++)
				n += LOAD(sh->workers[i].m.requests[ep][res]);
			if (n)
				evbuffer_add_printf(o, "apikeyd_requests_total{endpoint=\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
				                    endpoint_names[ep], sc_result_name(res), n);
		}
	for (unsigned i = 0; i < sh->n_workers; i++) {
		for (int b = 0; b <= SC_LATENCY_BUCKETS; b++)
			lat[b] += LOAD(sh->workers[i].m.latency[b]);
		sum_ns += LOAD(sh->workers[i].m.latency_sum_ns);
		store_errors += LOAD(sh->workers[i].m.store_errors);
	}
	evbuffer_add_printf(o,
		"# HELP apikeyd_request_duration_seconds Time from a parsed request to its answer.\n"
		"# TYPE apikeyd_request_duration_seconds histogram\n");
	for (int b = 0; b < SC_LATENCY_BUCKETS; b++) {
		cum += lat[b];
		evbuffer_add_printf(o, "apikeyd_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
		                    (double)bucket_ns[b] / 1e9, cum);
	}
	cum += lat[SC_LATENCY_BUCKETS];
	evbuffer_add_printf(o, "apikeyd_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	                       "apikeyd_request_duration_seconds_sum %.9f\n"
	                       "apikeyd_request_duration_seconds_count %" PRIu64 "\n",
	                    cum, (double)sum_ns / 1e9, cum);

	apikey_cache_stats(sh->cache, &cs);
	evbuffer_add_printf(o,
		"# HELP apikeyd_cache_hits_total Verified-key cache hits.\n"
		"# TYPE apikeyd_cache_hits_total counter\n"
		"apikeyd_cache_hits_total %" PRIu64 "\n"
		"# HELP apikeyd_cache_misses_total Verified-key cache misses.\n"
		"# TYPE apikeyd_cache_misses_total counter\n"
		"apikeyd_cache_misses_total %" PRIu64 "\n"
		"# HELP apikeyd_cache_entries Keys in the verified-key cache.\n"
		"# TYPE apikeyd_cache_entries gauge\n"
		"apikeyd_cache_entries %" PRIu64 "\n"
		"# HELP apikeyd_cache_clears_total Cache clears (a key or account changed, or the store was replaced).\n"
		"# TYPE apikeyd_cache_clears_total counter\n"
		"apikeyd_cache_clears_total %" PRIu64 "\n"
		"# HELP apikeyd_cache_advances_total Fleet commits that dropped only the keys they changed.\n"
		"# TYPE apikeyd_cache_advances_total counter\n"
		"apikeyd_cache_advances_total %" PRIu64 "\n",
		cs.hits, cs.misses, cs.entries, cs.clears, cs.advances);
	evbuffer_add_printf(o,
		"# HELP apikeyd_store_errors_total Requests answered UNAVAILABLE (key store unreadable).\n"
		"# TYPE apikeyd_store_errors_total counter\n"
		"apikeyd_store_errors_total %" PRIu64 "\n"
		"# HELP apikeyd_usage_flushes_total Usage flushes attempted.\n"
		"# TYPE apikeyd_usage_flushes_total counter\n"
		"apikeyd_usage_flushes_total %" PRIu64 "\n"
		"# HELP apikeyd_usage_flush_errors_total Usage flushes that failed (kept for the next try).\n"
		"# TYPE apikeyd_usage_flush_errors_total counter\n"
		"apikeyd_usage_flush_errors_total %" PRIu64 "\n"
		"# HELP apikeyd_usage_dropped_total Usage events dropped because the buffer was full.\n"
		"# TYPE apikeyd_usage_dropped_total counter\n"
		"apikeyd_usage_dropped_total %" PRIu64 "\n"
		"# HELP apikeyd_worker_threads Worker threads serving HTTP.\n"
		"# TYPE apikeyd_worker_threads gauge\n"
		"apikeyd_worker_threads %u\n"
		"# HELP apikeyd_start_time_seconds Start time of the process since the epoch.\n"
		"# TYPE apikeyd_start_time_seconds gauge\n"
		"apikeyd_start_time_seconds %" PRId64 "\n",
		store_errors, LOAD(sh->flushes), LOAD(sh->flush_errors), apikey_usage_dropped(sh->usage),
		sh->n_workers, sh->started_s);
	sc_guard_metrics(sh, o);
	sc_fleet_metrics(sh, o);
}
