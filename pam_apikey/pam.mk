# pam_apikey/ → $(BUILD)/pam_apikey.so: the Linux-PAM module, with the core
# linked in statically.  The version script exports only pam_sm_*; -z defs
# makes a missing library a link error, not a dlopen failure in sshd.
PAM_SRC := $(wildcard pam_apikey/*.c)
PAM_OBJ := $(PAM_SRC:%.c=$(BUILD)/%.o)
PAM_SO  := $(BUILD)/pam_apikey.so
PAM_MAP := pam_apikey/pam_apikey.map
PAM_LIBS := -lpam
EXTRA_CFLAGS_pam_apikey := -fvisibility=hidden

$(PAM_SO): $(PAM_OBJ) $(LIBAPIKEY) $(PAM_MAP)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -shared $(ALL_LDFLAGS) -Wl,-z,defs -Wl,-z,nodelete -Wl,--version-script=$(PAM_MAP) \
	  -o $@ $(PAM_OBJ) $(LIBAPIKEY) $(CORE_LIBS) $(PAM_LIBS)

all: $(PAM_SO)

# Test programs (tests/pam/): the valgrind loop driver and the export check.
PAM_TEST_BIN := $(BUILD)/tests/pam/pam_loop $(BUILD)/tests/pam/dlsym_check

$(BUILD)/tests/pam/pam_loop: $(BUILD)/tests/pam/pam_loop.o $(LIBAPIKEY)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBAPIKEY) $(CORE_LIBS) $(PAM_LIBS) -ldl

$(BUILD)/tests/pam/dlsym_check: $(BUILD)/tests/pam/dlsym_check.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< -ldl

tests: $(PAM_SO) $(PAM_TEST_BIN)

# bench/bench_pam.c: in-process cost of a login through the module.
$(BUILD)/bench/bench-pam: $(BUILD)/bench/bench_pam.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(PAM_LIBS)

bench-tools: $(BUILD)/bench/bench-pam $(PAM_SO)
