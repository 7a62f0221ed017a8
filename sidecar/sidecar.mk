# sidecar/ → $(BUILD)/apikeyd: the libevent HTTP sidecar, linked with the core.
# sidecar/openapi.json and the files of the /ui/ dashboard (sidecar/ui/) are
# embedded at build time as generated C arrays (xxd -i).
SIDECAR_SRC := sidecar/apikeyd.c sidecar/config.c sidecar/http.c sidecar/request.c sidecar/metrics.c sidecar/log.c \
               sidecar/admin.c sidecar/admin_routes.c sidecar/admin_usage.c sidecar/admin_owners.c sidecar/admin_parse.c sidecar/admin_writer.c \
               sidecar/ui.c sidecar/watch.c sidecar/guard.c sidecar/headscan.c sidecar/follower.c
SIDECAR_OBJ := $(SIDECAR_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sidecar/openapi.o $(BUILD)/sidecar/ui_assets.o
EVENT_CFLAGS := $(call pc,cflags,libevent)
EVENT_LIBS   := $(call pc,libs,libevent)
EXTRA_CFLAGS_sidecar := $(JSON_CFLAGS) $(EVENT_CFLAGS) $(PQ_CFLAGS)

$(BUILD)/sidecar/openapi.c: sidecar/openapi.json
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q){ echo '/* generated from sidecar/openapi.json by sidecar/sidecar.mk: do not edit */'; \
	  echo '#include "sidecar.h"'; \
	  echo 'const unsigned char sc_openapi_json[] = {'; xxd -i < $<; echo '};'; \
	  echo 'const unsigned int sc_openapi_json_len = sizeof(sc_openapi_json);'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/sidecar/openapi.o: $(BUILD)/sidecar/openapi.c sidecar/sidecar.h
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Isidecar -c -o $@ $<

# Every file of sidecar/ui/ is served as /ui/NAME (index.html as /ui/); its
# Content-Type comes from its extension, and a file of any other kind stops
# the build rather than being served as something it is not.
UI_FILES := $(sort $(wildcard sidecar/ui/*))
$(BUILD)/sidecar/ui_assets.c: $(UI_FILES) sidecar/sidecar.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)set -e; exec >$@.tmp; \
	echo '/* generated from sidecar/ui/ by sidecar/sidecar.mk: do not edit */'; \
	echo '#include "sidecar.h"'; i=0; \
	for f in $(UI_FILES); do \
	  echo "static const unsigned char ui_$$i[] = {"; xxd -i <"$$f"; echo '};'; i=$$((i + 1)); \
	done; \
	echo 'const struct sc_asset sc_ui_assets[] = {'; i=0; \
	for f in $(UI_FILES); do \
	  case "$$f" in \
	  *.html) t='text/html; charset=utf-8';; *.css) t='text/css; charset=utf-8';; \
	  *.js) t='text/javascript; charset=utf-8';; *.svg) t='image/svg+xml';; \
	  *) echo "sidecar.mk: $$f: no Content-Type for this kind of file" >&2; exit 1;; \
	  esac; \
	  echo "	{ \"$${f##*/}\", \"$$t\", ui_$$i, sizeof(ui_$$i) },"; i=$$((i + 1)); \
	done; \
	echo '};'; \
	echo "const unsigned int sc_ui_n_assets = $$i;"; \
	exec >&-; mv $@.tmp $@

$(BUILD)/sidecar/ui_assets.o: $(BUILD)/sidecar/ui_assets.c sidecar/sidecar.h
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Isidecar -c -o $@ $<

$(BUILD)/apikeyd: $(SIDECAR_OBJ) $(LIBUPSTREAM) $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(SIDECAR_OBJ) $(UPSTREAM_LIBS) $(LIBAPIKEY) $(EVENT_LIBS) $(JSON_LIBS) $(CORE_LIBS)

all: $(BUILD)/apikeyd

# The libFuzzer target for request parsing links sidecar/request.c too
# (tests/fuzz/fuzz.mk adds FUZZ_EXTRA_<target> to its link line).
FUZZ_EXTRA_fuzz_request := -Isidecar sidecar/request.c $(JSON_CFLAGS) $(EVENT_CFLAGS) $(JSON_LIBS) $(EVENT_LIBS)
$(BUILD)/fuzz/fuzz_request: sidecar/request.c sidecar/request.h sidecar/limits.h

# ... and the one for the admin API's parsing, sidecar/admin_parse.c
FUZZ_EXTRA_fuzz_admin := -Isidecar sidecar/admin_parse.c $(JSON_CFLAGS) $(EVENT_CFLAGS) $(JSON_LIBS) $(EVENT_LIBS)
$(BUILD)/fuzz/fuzz_admin: sidecar/admin_parse.c sidecar/admin_parse.h sidecar/limits.h

# tests/sidecar/watch_check: the signal property sidecar/watch.c rests on.
WATCH_CHECK := $(BUILD)/tests/sidecar/watch_check
$(WATCH_CHECK): tests/sidecar/watch_check.c $(BUILD)/sidecar/watch.o $(BUILD)/sidecar/log.o $(LIBAPIKEY)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Isidecar $(ALL_LDFLAGS) -o $@ $< $(BUILD)/sidecar/watch.o $(BUILD)/sidecar/log.o \
	  $(LIBAPIKEY) $(CORE_LIBS)
tests: $(WATCH_CHECK)

# The head check is fuzzed against a byte-at-a-time reference.
FUZZ_EXTRA_fuzz_headscan := -Isidecar sidecar/headscan.c
FUZZ_EXTRA_fuzz_headscan_swar := -Isidecar -Itests/fuzz -DHEADSCAN_SWAR sidecar/headscan.c
$(BUILD)/fuzz/fuzz_headscan $(BUILD)/fuzz/fuzz_headscan_swar: sidecar/headscan.c sidecar/headscan.h \
  tests/fuzz/fuzz_headscan.c
