# tests/fuzz/ — libFuzzer targets, built with clang and ASan+UBSan from the
# core's sources directly (a separate instrumented build, not libapikey.a);
# FUZZ_EXTRA_<target> (set by a part's fragment) adds that part's sources.
FUZZ_CC     ?= clang
FUZZ_FLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRC) core/internal.h include/apikey.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(CORE_SRC) $(FUZZ_EXTRA_$*) $(CORE_LIBS)

fuzz: $(FUZZ_TARGETS)
# `make fuzz-long` runs each target for FUZZ_SECONDS (default 600).
fuzz-long: fuzz
	for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz/corpus-$${t##*/}; \
	  $$t -max_total_time=$${FUZZ_SECONDS:-600} $(BUILD)/fuzz/corpus-$${t##*/} tests/fuzz/seeds || exit 1; done
tests: fuzz
.PHONY: fuzz fuzz-long
