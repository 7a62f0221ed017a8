# pam_apikey — top-level Makefile.  Each part adds its own rules in a
# fragment (core/core.mk, cli/cli.mk, pam_apikey/pam.mk, sidecar/sidecar.mk,
# tests/tests.mk, bench/bench.mk); this file holds the shared flags.

PREFIX     ?= /usr
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
MULTIARCH  ?= $(shell $(CC) -print-multiarch 2>/dev/null)
PAMDIR     ?= $(if $(MULTIARCH),/lib/$(MULTIARCH)/security,/lib/security)
DESTDIR    ?=
BUILD      ?= build

CC      ?= cc
PKG_CONFIG ?= pkg-config
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -fPIC -Wall -Wextra -Wformat=2 -Wshadow \
           -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
           -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -MMD -MP -Iinclude
LDFLAGS += -Wl,-z,relro -Wl,-z,now
# Sanitizer flags are added, not substituted, so CFLAGS given on the command
# line never drops the include path or warnings (see check-asan).
CFLAGS  += $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)

pc = $(shell $(PKG_CONFIG) --$(1) $(2) 2>/dev/null)
CORE_LIBS  := $(call pc,libs,sqlite3 libcrypto zlib libargon2) -lcrypt -lpthread
JSON_CFLAGS := $(call pc,cflags,jansson)
JSON_LIBS  := $(call pc,libs,jansson)

ifeq ($(V),1)
Q :=
else
Q := @
endif

all:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(EXTRA_CFLAGS_$(firstword $(subst /, ,$<))) -c -o $@ $<

include core/core.mk
-include cli/cli.mk
-include pam_apikey/pam.mk
-include sidecar/sidecar.mk
-include tests/tests.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk

# `make check` builds everything and runs every layer of tests; the last
# line it prints is "N passed, N failed".
check: all tests
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) SANITIZE=$(SANITIZE) tests/run-tests.sh

# The whole suite again under ASan + UBSan, in its own build folder.
ASAN_FLAGS = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
check-asan:
	$(MAKE) BUILD=build-asan SANITIZE=1 SAN_FLAGS="$(ASAN_FLAGS)" check

# Installs what is built; the module goes into the multiarch security dir.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PAMDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/apikey $(DESTDIR)$(PREFIX)/share/pam-configs
	install -m 0755 $(BUILD)/apikeyctl $(DESTDIR)$(BINDIR)/apikeyctl
	if [ -f $(BUILD)/apikeyd ]; then install -m 0755 $(BUILD)/apikeyd $(DESTDIR)$(SBINDIR)/apikeyd; fi
	if [ -f $(BUILD)/pam_apikey.so ]; then install -m 0644 $(BUILD)/pam_apikey.so $(DESTDIR)$(PAMDIR)/pam_apikey.so; fi
	for m in man/*.[1-8]; do [ -f "$$m" ] || continue; \
	  install -D -m 0644 "$$m" "$(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}"; done
	[ -f $(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf ] || \
	  install -m 0644 packaging/apikey.conf $(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf
	install -m 0644 packaging/pam-configs/apikey $(DESTDIR)$(PREFIX)/share/pam-configs/apikey
	if [ -f examples/apikeyd.service ]; then \
	  install -D -m 0644 examples/apikeyd.service $(DESTDIR)/lib/systemd/system/apikeyd.service; fi

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all check check-asan install clean tests bench
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
