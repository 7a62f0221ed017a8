# sidecar/ → $(BUILD)/apikeyd: the libevent HTTP sidecar, linked with the core.
# sidecar/openapi.json is embedded at build time as a generated C array (xxd -i).
SIDECAR_SRC := sidecar/apikeyd.c sidecar/config.c sidecar/http.c sidecar/request.c sidecar/metrics.c sidecar/log.c \
               sidecar/admin.c sidecar/admin_routes.c sidecar/admin_parse.c sidecar/admin_writer.c
SIDECAR_OBJ := $(SIDECAR_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sidecar/openapi.o
EVENT_CFLAGS := $(call pc,cflags,libevent)
EVENT_LIBS   := $(call pc,libs,libevent)
EXTRA_CFLAGS_sidecar := $(JSON_CFLAGS) $(EVENT_CFLAGS)

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

$(BUILD)/apikeyd: $(SIDECAR_OBJ) $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(SIDECAR_OBJ) $(LIBAPIKEY) $(EVENT_LIBS) $(JSON_LIBS) $(CORE_LIBS)

all: $(BUILD)/apikeyd

# The libFuzzer target for request parsing links sidecar/request.c too
# (tests/fuzz/fuzz.mk adds FUZZ_EXTRA_<target> to its link line).
FUZZ_EXTRA_fuzz_request := -Isidecar sidecar/request.c $(JSON_CFLAGS) $(EVENT_CFLAGS) $(JSON_LIBS) $(EVENT_LIBS)
$(BUILD)/fuzz/fuzz_request: sidecar/request.c sidecar/request.h sidecar/limits.h

# ... and the one for the admin API's parsing, sidecar/admin_parse.c
FUZZ_EXTRA_fuzz_admin := -Isidecar sidecar/admin_parse.c $(JSON_CFLAGS) $(EVENT_CFLAGS) $(JSON_LIBS) $(EVENT_LIBS)
$(BUILD)/fuzz/fuzz_admin: sidecar/admin_parse.c sidecar/admin_parse.h sidecar/limits.h
