# bench/ — `make bench` builds the benchmark programs and runs every
# bench/bench_*.sh plus the core benchmark; results go to stdout only.
BENCH_LIBS := $(LIBAPIKEY) $(CORE_LIBS)

$(BUILD)/bench/apikey-fill: $(BUILD)/bench/fill.o $(LIBAPIKEY)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BENCH_LIBS)

$(BUILD)/bench/bench-core: $(BUILD)/bench/bench_core.o $(LIBAPIKEY)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BENCH_LIBS)

# the baseline of bench/bench_sidecar.sh: libevent answering 200, nothing else
$(BUILD)/bench/bare-http: $(BUILD)/bench/bare_http.o $(LIBAPIKEY)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BENCH_LIBS) $(call pc,libs,libevent)

bench-tools: $(BUILD)/bench/apikey-fill $(BUILD)/bench/bench-core $(BUILD)/bench/bare-http
tests: $(BUILD)/bench/apikey-fill

bench: all bench-tools
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) bench/run-bench.sh
.PHONY: bench-tools

# the bare floor under fleet mode (issue 11): libpq + libevent + SQLite only
$(BUILD)/bench/fleet_floor.o: EXTRA_CFLAGS_bench += $(call pc,cflags,libpq)
$(BUILD)/bench/fleet-floor: $(BUILD)/bench/fleet_floor.o
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(call pc,libs,libpq libevent jansson sqlite3)
bench-tools: $(BUILD)/bench/fleet-floor
bench-fleet-floor: $(BUILD)/bench/fleet-floor $(BUILD)/bench/shm-limiter
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) bash bench/bench_fleet_floor.sh
.PHONY: bench-fleet-floor

# a prototype of the host-wide shared-memory limiter (docs/design/fleet.md)
$(BUILD)/bench/shm-limiter: $(BUILD)/bench/shm_limiter.o $(LIBAPIKEY)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BENCH_LIBS)
bench-tools: $(BUILD)/bench/shm-limiter

# fleet mode through the product (issue 11): propagation to 8 apikeyd hosts,
# initial sync of 1M keys, /auth while the follower applies, the fleet rate limit
$(BUILD)/bench/fleet-propagate: $(BUILD)/bench/fleet_propagate.o
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<
bench-tools: $(BUILD)/bench/fleet-propagate
bench-fleet: all bench-tools
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) bash bench/bench_fleet.sh
.PHONY: bench-fleet
