# core/ → libapikey.a: static, not installed, linked by every front end.
CORE_SRC := $(wildcard core/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
LIBAPIKEY := $(BUILD)/libapikey.a

$(LIBAPIKEY): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

all: $(LIBAPIKEY)

# core/render.c checks error templates with jansson (the PAM module links it too).
EXTRA_CFLAGS_core := $(JSON_CFLAGS)
