# upstream/ → libapikey_upstream.a: fleet mode's PostgreSQL part (the writer
# backend, the follower, upstream init).  Static, not installed, linked by
# apikeyctl and apikeyd only: the PAM module must not pull libpq (and its
# GSSAPI/LDAP dependencies) into sshd (tests/fleet/t_layering.sh).
UPSTREAM_SRC := $(wildcard upstream/*.c)
UPSTREAM_OBJ := $(UPSTREAM_SRC:%.c=$(BUILD)/%.o)
LIBUPSTREAM  := $(BUILD)/libapikey_upstream.a
PQ_CFLAGS    := $(call pc,cflags,libpq)
PQ_LIBS      := $(call pc,libs,libpq)
EXTRA_CFLAGS_upstream := $(PQ_CFLAGS)
# what a program linking the upstream part adds to its link line
UPSTREAM_LIBS := $(LIBUPSTREAM) $(PQ_LIBS)

$(LIBUPSTREAM): $(UPSTREAM_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

all: $(LIBUPSTREAM)
