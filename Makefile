# pam_apikey — top-level Makefile.  Each part adds its own rules in a
# fragment (core/core.mk, upstream/upstream.mk, cli/cli.mk, pam_apikey/pam.mk, sidecar/sidecar.mk,
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
# CFLAGS, CPPFLAGS and LDFLAGS are the builder's (a packager's, or
# `make CFLAGS=-O0` when debugging): replacing them changes optimisation,
# debug info and extra warnings only.  What the build needs lives in the
# APIKEY_* variables, which no command-line CFLAGS drops (STYLE §16).
CFLAGS  ?= -O2 -g
WARN_CFLAGS ?= -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
               -Wmissing-prototypes -Wno-unused-parameter
APIKEY_CPPFLAGS := -Iinclude -D_GNU_SOURCE
APIKEY_CFLAGS   := -std=gnu11 -fPIC -fstack-protector-strong -MMD -MP
APIKEY_LDFLAGS  := -Wl,-z,relro -Wl,-z,now
# _FORTIFY_SOURCE needs an optimised build (glibc warns without -O): it is
# on when the last -O given is not -O0.
FORTIFY_CPPFLAGS = $(if $(filter-out -O0,$(lastword $(filter -O%,$(CFLAGS) $(SAN_FLAGS)))),-D_FORTIFY_SOURCE=2)
# Every compile and link line uses these.  The builder's CFLAGS come after
# the defaults so they can add or cancel a warning; SAN_FLAGS (check-asan)
# come last and are added, never substituted.
ALL_CFLAGS  = $(APIKEY_CPPFLAGS) $(FORTIFY_CPPFLAGS) $(CPPFLAGS) $(APIKEY_CFLAGS) $(WARN_CFLAGS) \
              $(CFLAGS) $(SAN_FLAGS)
ALL_LDFLAGS = $(APIKEY_LDFLAGS) $(LDFLAGS) $(SAN_FLAGS)

pc = $(shell $(PKG_CONFIG) --$(1) $(2) 2>/dev/null)
CORE_LIBS  := $(call pc,libs,sqlite3 libcrypto zlib jansson) -lpthread
# libcrypt and libargon2 are dlopen()ed by the core when an imported key of
# that kind is checked (core/hash.c); only test programs that make such
# hashes link them.
HASH_LIBS  := $(call pc,libs,libargon2) -lcrypt
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
	$(Q)$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS_$(firstword $(subst /, ,$<))) -c -o $@ $<

include core/core.mk
include upstream/upstream.mk
-include cli/cli.mk
-include pam_apikey/pam.mk
-include sidecar/sidecar.mk
-include tests/tests.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk
-include packaging/packaging.mk

# `make check` builds everything and runs every layer of tests; the last
# line it prints is "N passed, N failed".
check: all tests
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) SANITIZE=$(SANITIZE) tests/run-tests.sh

# Fleet mode end to end (tests/fleet/ft_*.sh): a throwaway PostgreSQL and
# several apikeyd "hosts" per script; a few minutes, so not in make check.
check-fleet: all tests
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) SANITIZE=$(SANITIZE) TEST_LAYERS=fleet TEST_GLOB='ft_*.sh' \
	  TEST_LOG=fleet-log.txt TEST_TIMEOUT=$${TEST_TIMEOUT:-900} tests/run-tests.sh

# The reliability suite (issue 9, tests/reliability/): the catalogues of
# hostile HTTP requests and PAM logins, the store's faults, a slow-client
# storm at the descriptor limit, kill -9 under load, a 10-minute soak.
# ~15 minutes; the same TAP counting and closing line as make check.
check-reliability: all tests
	$(Q)BUILD=$(abspath $(BUILD)) TOP=$(CURDIR) TEST_LAYERS=reliability TEST_LOG=reliability-log.txt \
	  TEST_TIMEOUT=$${TEST_TIMEOUT:-900} tests/run-tests.sh

# The whole suite again under ASan + UBSan, in its own build folder.
ASAN_FLAGS = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
check-asan:
	$(MAKE) BUILD=build-asan SANITIZE=1 SAN_FLAGS="$(ASAN_FLAGS)" check

# Installs what is built; the module goes into the multiarch security dir,
# whatever PREFIX is (libpam looks there only).  Every part is required:
# a part that was not built stops the install with an error (`all` is a
# prerequisite, so a missing library fails the build first).  The store, the
# group and the pepper are not made here: see docs/design/packaging.md.
PAMCONFIGDIR ?= $(PREFIX)/share/pam-configs
pcvar = $(shell $(PKG_CONFIG) --variable=$(1) systemd 2>/dev/null)
SYSTEMDUNITDIR ?= $(or $(call pcvar,systemdsystemunitdir),/lib/systemd/system)
SYSUSERSDIR    ?= $(or $(call pcvar,sysusersdir),$(PREFIX)/lib/sysusers.d)
TMPFILESDIR    ?= $(or $(call pcvar,tmpfilesdir),$(PREFIX)/lib/tmpfiles.d)
INSTALL ?= install
MAN_PAGES := man/apikeyctl.1 man/apikey.conf.5 man/apikeyd.8 man/pam_apikey.8
# The profiles of SPEC §10 (one per replaced system): data to copy to
# /etc/apikey/apikey.conf, not documentation, so not under /usr/share/doc
# (which minimal and container images leave out).
PROFILEDIR ?= $(PREFIX)/share/pam_apikey/profiles
PROFILES   := $(sort $(wildcard packaging/profiles/*.conf))
# what `make install` puts in place, as source:destination:mode; uninstall
# removes the same list
INSTALL_FILES := \
  $(BUILD)/apikeyctl:$(BINDIR)/apikeyctl:0755 \
  $(BUILD)/apikeyd:$(SBINDIR)/apikeyd:0755 \
  $(BUILD)/pam_apikey.so:$(PAMDIR)/pam_apikey.so:0644 \
  packaging/pam-configs/apikey:$(PAMCONFIGDIR)/apikey:0644 \
  packaging/systemd/apikeyd.service:$(SYSTEMDUNITDIR)/apikeyd.service:0644 \
  packaging/systemd/sysusers-apikey.conf:$(SYSUSERSDIR)/apikey.conf:0644 \
  packaging/systemd/sysusers-apikeyd.conf:$(SYSUSERSDIR)/apikeyd.conf:0644 \
  packaging/systemd/tmpfiles-apikey.conf:$(TMPFILESDIR)/apikey.conf:0644 \
  $(foreach m,$(MAN_PAGES),$(m):$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)):0644) \
  $(foreach p,$(PROFILES),$(p):$(PROFILEDIR)/$(notdir $(p)):0644)

install: all
	$(Q)set -e; for f in $(INSTALL_FILES); do \
	  src=$${f%%:*}; rest=$${f#*:}; dst=$${rest%:*}; mode=$${rest##*:}; \
	  [ -f "$$src" ] || { echo "make install: $$src is missing; nothing more installed" >&2; exit 1; }; \
	  $(INSTALL) -D -m "$$mode" "$$src" "$(DESTDIR)$$dst"; \
	  echo "  INSTALL $(DESTDIR)$$dst"; \
	done
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/apikey
	$(Q)if [ -e $(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf ]; then \
	  echo "  KEEP    $(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf (already there)"; \
	else $(INSTALL) -m 0644 packaging/apikey.conf $(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf; \
	  echo "  INSTALL $(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf"; fi

# Removes what install put in place.  apikey.conf goes only while it is
# still the shipped one; an edited configuration, the key store and its
# pepper are the administrator's and stay.
uninstall:
	$(Q)for f in $(INSTALL_FILES); do rest=$${f#*:}; dst=$${rest%:*}; \
	  rm -f "$(DESTDIR)$$dst" && echo "  RM      $(DESTDIR)$$dst"; done
	$(Q)conf=$(DESTDIR)$(SYSCONFDIR)/apikey/apikey.conf; \
	if [ -e "$$conf" ] && ! cmp -s packaging/apikey.conf "$$conf"; then \
	  echo "  KEEP    $$conf (edited: yours)"; \
	else rm -f "$$conf"; rmdir $(DESTDIR)$(SYSCONFDIR)/apikey 2>/dev/null || :; fi

clean:
	rm -rf build build-asan build-clang build-fuzz

.PHONY: all check check-asan check-fleet check-reliability install uninstall clean tests bench
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
