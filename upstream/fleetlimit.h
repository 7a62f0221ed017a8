/* fleetlimit.h — the fleet's rate limit (upstream/fleetlimit.c): a lease
 * pool kept by apikeyd's follower, asked by its workers after the host's own
 * limiter.  Thread-safe. */
#ifndef APIKEY_FLEETLIMIT_H
#define APIKEY_FLEETLIMIT_H

#include "upstream_int.h"

struct fleet_limit;
int fl_new(struct fleet_limit **out);
void fl_free(struct fleet_limit *l);
/* The request path: 0 with out->allowed (a leased token or credit), or
 * APIKEY_ERR_FULL when the key cannot be tracked (UNAVAILABLE). */
int fl_take(struct fleet_limit *l, const char *key_id, uint32_t limit, int64_t now_us,
            struct apikey_ratelimit *out);
/* The follower: keys in the pool?  A round on its connection; the centre's
 * reachability and the number of hosts. */
bool fl_active(struct fleet_limit *l);
/* Rounds: every FL_TICK_MS while keys are active, and FL_EARLY_MS after the
 * last one when a request found no leased token (fl_wake_fd is readable
 * then; fl_round_wanted reads it). */
#define FL_TICK_MS 50
#define FL_EARLY_MS 5
int fl_wake_fd(struct fleet_limit *l);
bool fl_round_wanted(struct fleet_limit *l);
int fl_round(struct fleet_limit *l, struct up_conn *u, int64_t now_us);
void fl_set_up(struct fleet_limit *l, bool up);
void fl_set_hosts(struct fleet_limit *l, unsigned hosts);
struct fl_stats { unsigned keys, hosts; uint64_t rounds, errors, credit_used, refused; int64_t last_answer_us; };
void fl_stats(struct fleet_limit *l, struct fl_stats *st);

#endif
