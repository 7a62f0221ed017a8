# bench/ — `make bench` builds the benchmark programs and runs every
# bench/bench_*.sh plus the core benchmark; results go to stdout only.
BENCH_LIBS := $(LIBAPIKEY) $(CORE_LIBS)

$(BUILD)/bench/apikey-fill: $(BUILD)/bench/fill.o $(LIBAPIKEY)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIBS)

$(BUILD)/bench/bench-core: $(BUILD)/bench/bench_core.o $(LIBAPIKEY)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIBS)

# the baseline of bench/bench_sidecar.sh: libevent answering 200, nothing else
$(BUILD)/bench/bare-http: $(BUILD)/bench/bare_http.o $(LIBAPIKEY)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_LIBS) $(call pc,libs,libevent)

bench-tools: $(BUILD)/bench/apikey-fill $(BUILD)/bench/bench-core $(BUILD)/bench/bare-http
tests: $(BUILD)/bench/apikey-fill

bench: all bench-tools
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) bench/run-bench.sh
.PHONY: bench-tools
