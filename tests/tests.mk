# tests/unit/test_<file>.c → $(BUILD)/tests/unit/test_<file>: one cmocka
# program per core file, linked against the core like every front end.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
CMOCKA_LIBS := $(call pc,libs,cmocka)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBAPIKEY) $(CORE_LIBS) $(CMOCKA_LIBS)

tests: $(UNIT_BIN)
