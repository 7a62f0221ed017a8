# cli/ → $(BUILD)/apikeyctl, the operator's CLI, linked with the core and jansson.
CLI_SRC := $(wildcard cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
EXTRA_CFLAGS_cli := $(JSON_CFLAGS) $(PQ_CFLAGS)

$(BUILD)/apikeyctl: $(CLI_OBJ) $(LIBUPSTREAM) $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(UPSTREAM_LIBS) $(LIBAPIKEY) $(CORE_LIBS) $(JSON_LIBS)

all: $(BUILD)/apikeyctl

# apikey-testdata: foreign hashes and import files for tests/cli and the
# import benchmark (tests/cli/testdata.c).
$(BUILD)/tests/cli/apikey-testdata: $(BUILD)/tests/cli/testdata.o $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBAPIKEY) $(CORE_LIBS) $(HASH_LIBS) $(JSON_LIBS)
EXTRA_CFLAGS_tests += $(JSON_CFLAGS)

tests: $(BUILD)/tests/cli/apikey-testdata
bench-tools: $(BUILD)/tests/cli/apikey-testdata   # bench/bench_import.sh

# The import line parser has a libFuzzer target (tests/fuzz/fuzz_import.c).
FUZZ_EXTRA_fuzz_import := cli/import_parse.c $(JSON_LIBS)
$(BUILD)/fuzz/fuzz_import: cli/import_parse.c cli/import_parse.h
