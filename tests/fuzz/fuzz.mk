# tests/fuzz/ — a fuzz target per parser (fuzz_<name>.c), and fuzz_pam, the
# fault-injecting one (faults.c, fake_pam.c).  FUZZ_EXTRA_<target> (set by a
# part's fragment, or below) adds that target's sources, flags and libraries.
#
# With clang: libFuzzer targets, built with ASan+UBSan from the core's
# sources directly (a separate instrumented build, not libapikey.a).
# Without clang (FUZZ_MODE=replay, chosen when $(FUZZ_CC) is not found): the
# same sources built with $(CC) and tests/fuzz/replay.c as main(), which runs
# each seed and corpus file once, so `make check` still runs every target.
FUZZ_CC     ?= clang
FUZZ_MODE   ?= $(if $(shell command -v $(FUZZ_CC) 2>/dev/null),libfuzzer,replay)
FUZZ_FLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined $(APIKEY_CPPFLAGS)
# the default warnings, and any -W the builder's CFLAGS add (e.g. -Werror)
FUZZ_WARN    = $(WARN_CFLAGS) $(filter-out -Wl% -Wa% -Wp%,$(filter -W%,$(CFLAGS)))
# replay: no _FORTIFY_SOURCE, whose __read_chk would bypass fuzz_pam's --wrap=read
REPLAY_FLAGS = $(APIKEY_CPPFLAGS) $(CPPFLAGS) -std=gnu11 $(WARN_CFLAGS) $(CFLAGS) $(SAN_FLAGS)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DEPS   := $(CORE_SRC) core/internal.h include/apikey.h tests/fuzz/fuzz.mk

ifeq ($(FUZZ_MODE),libfuzzer)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_WARN) -o $@ $< $(CORE_SRC) $(FUZZ_EXTRA_$*) $(CORE_LIBS)
else
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  REPLAY  $@")
	$(Q)$(CC) $(REPLAY_FLAGS) -o $@ tests/fuzz/replay.c $< $(CORE_SRC) $(FUZZ_EXTRA_$*) $(CORE_LIBS)
endif

# fuzz_pam: the module's entry points with failing allocations and I/O.  The
# C library calls of the module and the core are wrapped at link time; no
# libpam is linked (fake_pam.c is the PAM library it sees).
FAULT_WRAP := $(foreach f,malloc calloc realloc strdup open fopen read write fsync stat fstat,-Wl,--wrap=$(f))
FUZZ_EXTRA_fuzz_pam := -Ipam_apikey tests/fuzz/faults.c tests/fuzz/fake_pam.c $(PAM_SRC) $(FAULT_WRAP)
$(BUILD)/fuzz/fuzz_pam: tests/fuzz/faults.c tests/fuzz/faults.h tests/fuzz/fake_pam.c \
  tests/fuzz/fake_pam.h $(PAM_SRC) pam_apikey/module.h

fuzz: $(FUZZ_TARGETS)
# `make fuzz-long` runs each target for FUZZ_SECONDS (default 600).
fuzz-long: fuzz
	for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz/corpus-$${t##*/}; \
	  $$t -max_total_time=$${FUZZ_SECONDS:-600} $(BUILD)/fuzz/corpus-$${t##*/} tests/fuzz/seeds || exit 1; done
tests: fuzz
.PHONY: fuzz fuzz-long
