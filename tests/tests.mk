# tests/unit/test_<file>.c → $(BUILD)/tests/unit/test_<file>: one cmocka
# program per core file, linked against the core like every front end.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
CMOCKA_LIBS := $(call pc,libs,cmocka)

# A static pattern rule: its objects are named targets, not intermediate
# files of a chain, so make keeps them (a plain pattern rule made make delete
# them after linking and compile them again on the next run).
$(UNIT_BIN): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBAPIKEY) $(CORE_LIBS) $(HASH_LIBS) $(CMOCKA_LIBS)

tests: $(UNIT_BIN)

# test_store_watch counts apikey_store_sync_wal's fdatasync calls.
$(BUILD)/tests/unit/test_store_watch: APIKEY_LDFLAGS += -Wl,--wrap=fdatasync

