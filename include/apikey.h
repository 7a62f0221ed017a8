/*
 * apikey.h — the public API of libapikey, the verification core shared by
 * pam_apikey.so, apikeyd and apikeyctl.
 *
 * Conventions (see docs/DESIGN.md, "Core layers"):
 *  - Functions return 0 or a negative APIKEY_ERR_*; apikey_strerror() names
 *    it.  A function that cannot fail is void or says "always 0" here.
 *  - Records handed to callers are fixed-size structs owned by the caller:
 *    nothing to free, nothing borrowed.  The one exception is a list
 *    callback's argument, valid only until the callback returns.
 *  - Opaque objects are created by the _open / _new functions and released
 *    by _free, which accepts NULL.  Each says who may share it between threads.
 *  - The core never logs on its own, never exits and keeps no mutable globals:
 *    it reports through the log sink its caller installs.
 *  - Raw keys never leave the call that received them: they are not stored,
 *    logged, or copied into any result.
 *  - Times and durations carry their unit in their name: _s (seconds; a
 *    time is unix seconds), _ms, _us.
 *  - Every write function (create, update, revoke, rotate, presets,
 *    accounts, import, prune) takes a struct apikey_actor and leaves an
 *    audit event (the list is at struct apikey_event in apikey_store.h).
 */
#ifndef APIKEY_H
#define APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits (every buffer has a stated maximum) ------------------------- */
#define APIKEY_KEY_MAX        128  /* longest key accepted, chars (no NUL) */
#define APIKEY_PREFIX_MAX     16   /* longest key prefix, chars */
#define APIKEY_LEGACY_MAX     4    /* extra accepted legacy prefixes */
#define APIKEY_ID_LEN         20   /* "key_" + 16 base62 */
#define APIKEY_ID_SIZE        (APIKEY_ID_LEN + 1)
#define APIKEY_HINT_SIZE      (APIKEY_PREFIX_MAX + 16 + 1)
#define APIKEY_OWNER_SIZE     64   /* login name / account, incl. NUL */
#define APIKEY_NAME_SIZE      128
#define APIKEY_PLAN_SIZE      32
#define APIKEY_PRESET_SIZE    32   /* preset name: 1-31 of [a-z0-9_-] */
#define APIKEY_SCOPE_SIZE     64   /* one scope "resource:action" */
#define APIKEY_SCOPES_SIZE    1024 /* comma-separated scope list */
#define APIKEY_META_SIZE      2048 /* metadata JSON object */
#define APIKEY_REASON_SIZE    64   /* an audit event's reason, incl. NUL */
#define APIKEY_FOREIGN_HASH_SIZE 256 /* imported hash, incl. NUL */
#define APIKEY_IMPORT_HINT_MIN 6   /* import hint: the key's first 6-16 chars */
#define APIKEY_IMPORT_HINT_MAX 16
#define APIKEY_RATE_MIN       1
#define APIKEY_RATE_MAX       1000000
#define APIKEY_RATE_DEFAULT   60   /* requests per minute */
#define APIKEY_PEPPER_LEN     32
#define APIKEY_BUSY_TIMEOUT_MS_DEFAULT 2000
#define APIKEY_BUSY_TIMEOUT_MS_MAX     30000
#define APIKEY_GRACE_DEFAULT_S (24 * 3600)
#define APIKEY_DB_DEFAULT     "/var/lib/apikey/keys.db"
#define APIKEY_CONF_DEFAULT   "/etc/apikey/apikey.conf"
#define APIKEY_LINE_MAX       1024 /* one config line / option */
#define APIKEY_PATH_SIZE      4096
#define APIKEY_WHY_SIZE       192  /* the reason of a refused write, incl. NUL */
/* Verified-key cache bound: an entry is ~1.4 kB (fixed-size record without
 * metadata), so the default costs at most ~11.5 MB; a miss costs one probe. */
#define APIKEY_CACHE_ENTRIES_DEFAULT 8192

/* ---- errors -------------------------------------------------------------- */
enum {
	APIKEY_OK = 0,
	APIKEY_ERR_INTERNAL = -1,
	APIKEY_ERR_NOMEM = -2,
	APIKEY_ERR_INVALID = -3,    /* bad argument or value */
	APIKEY_ERR_MALFORMED = -4,  /* key does not fit the format profile */
	APIKEY_ERR_NOT_FOUND = -5,
	APIKEY_ERR_EXISTS = -6,
	APIKEY_ERR_STORE = -7,      /* database missing, unreadable or corrupt */
	APIKEY_ERR_BUSY = -8,       /* busy timeout elapsed */
	APIKEY_ERR_PEPPER = -9,     /* pepper missing, wrong size or unsafe mode */
	APIKEY_ERR_IO = -10,
	APIKEY_ERR_CONFIG = -11,    /* bad configuration value */
	APIKEY_ERR_UNKNOWN_OPTION = -12,
	APIKEY_ERR_READONLY = -13,  /* database or its directory is read-only */
	APIKEY_ERR_CRYPTO = -14,
	APIKEY_ERR_TOO_LONG = -15,
	APIKEY_ERR_CONFLICT = -16,  /* not allowed in the key's state (revoked, rotated…) */
	APIKEY_ERR_FULL = -17,      /* a bounded in-memory table is full */
	APIKEY_ERR_FORBIDDEN = -18, /* the actor may not grant these scopes (struct apikey_actor.within) */
	APIKEY_ERR_REPLACED = -19,  /* the store's path now names another file: reopen it */
	APIKEY_ERR_PENDING = -20,   /* an imported key's slow hash is being checked: ask again */
	APIKEY_ERR_DISK_FULL = -21, /* no space (or quota) left where the store lives */
	APIKEY_ERR_UPSTREAM = -22,  /* fleet mode: the upstream cannot be reached or refused: nothing written */
};
const char *apikey_strerror(int err);

/* ---- log sink ----------------------------------------------------------- */
/* priority is a syslog LOG_* value.  msg never contains a key; it is valid
 * only during the call. */
typedef void (*apikey_log_fn)(void *ctx, int priority, const char *msg);

/* ---- verification outcomes (SPEC §3, in check order; core/outcome.c) ----- */
enum apikey_outcome {
	APIKEY_VALID = 0,
	APIKEY_MISSING_KEY,
	APIKEY_MALFORMED_KEY,
	APIKEY_INVALID_KEY,
	APIKEY_REVOKED,
	APIKEY_EXPIRED,
	APIKEY_ACCOUNT_INACTIVE,
	APIKEY_PLAN_REQUIRED,
	APIKEY_WRONG_USER,
	APIKEY_INSUFFICIENT_SCOPE,
	APIKEY_RATE_LIMITED,
	APIKEY_UNAVAILABLE,
	APIKEY_OUTCOME_COUNT
};
/* One table answers all of these; an out-of-range value reads as UNAVAILABLE
 * (fail closed). */
const char *apikey_outcome_code(enum apikey_outcome o);    /* "INVALID_KEY" */
const char *apikey_outcome_message(enum apikey_outcome o); /* "Invalid API key" */
int apikey_outcome_http_status(enum apikey_outcome o);     /* 200/401/403/429/503 */
/* PAM_* (Linux-PAM's values) for pam_sm_authenticate and for pam_sm_acct_mgmt
 * re-checking a key that passed auth. */
int apikey_outcome_pam_auth(enum apikey_outcome o);
int apikey_outcome_pam_account(enum apikey_outcome o);
/* parse "INVALID_KEY" → outcome; -1 if unknown */
int apikey_outcome_from_code(const char *code);

/* ---- key format profiles (core/token.c) --------------------------------- */
enum apikey_alphabet {
	APIKEY_ALPHA_BASE62 = 0,    /* 0-9 A-Z a-z */
	APIKEY_ALPHA_BASE36LOWER,   /* 0-9 a-z */
	APIKEY_ALPHA_HEX,           /* 0-9 a-f */
	APIKEY_ALPHA_UUID,          /* 8-4-4-4-12 lowercase hex, version 4 */
};

/*
 * body_len counts every character after the prefix, checksum included
 * (uuid: always 36).  With checksum on, the last apikey_checksum_len()
 * characters are CRC32(prefix + random part) in the profile's alphabet.
 */
struct apikey_format {
	char prefix[APIKEY_PREFIX_MAX + 1];
	enum apikey_alphabet alphabet;
	unsigned body_len;
	bool checksum;
	char legacy[APIKEY_LEGACY_MAX][APIKEY_PREFIX_MAX + 1];
	unsigned n_legacy;
};

/* Default profile: "ak_", base62, 36 body chars, checksum on (39 total). */
void apikey_format_default(struct apikey_format *f);
/* 0 or APIKEY_ERR_CONFIG when the profile is inconsistent. */
int apikey_format_validate(const struct apikey_format *f);
/* Checksum width in characters for an alphabet (0 for uuid). */
unsigned apikey_checksum_len(enum apikey_alphabet a);
/*
 * Issue a new random key into out (size >= APIKEY_KEY_MAX + 1), NUL-terminated.
 * Uses the OS CSPRNG.
 */
int apikey_token_generate(const struct apikey_format *f, char *out, size_t outsz);
/*
 * Check a presented key against the profile (primary prefix or a legacy one):
 * length, alphabet, checksum.  Touches nothing else.  0 or APIKEY_ERR_MALFORMED.
 */
int apikey_token_parse(const struct apikey_format *f, const char *key, size_t len);
/*
 * The SPEC §3 checks that need neither the store nor a hash: MISSING_KEY
 * (NULL or empty), MALFORMED_KEY (apikey_token_parse refuses it), else
 * APIKEY_VALID meaning "go on to the store".  Verification runs it itself;
 * a front end calls it only to decide something else (PAM's try_first_pass).
 */
enum apikey_outcome apikey_precheck(const struct apikey_format *f, const char *key, size_t len);
/*
 * May a key that apikey_token_parse refuses still be one imported from
 * another system (looked up by its foreign hash, docs/design/compat.md D7)?
 * True when it starts with the profile's prefix or a legacy one and is at
 * most APIKEY_KEY_MAX printable ASCII characters without blanks.  The body's
 * shape and checksum are not looked at: they are what the other system's
 * keys may lack.
 */
bool apikey_token_importable(const struct apikey_format *f, const char *key, size_t len);
/* Display hint: prefix + first 4 body characters. */
void apikey_token_hint(const struct apikey_format *f, const char *key, size_t len,
                       char out[APIKEY_HINT_SIZE]);
/* New public key id "key_" + 16 base62 from the CSPRNG. */
int apikey_id_generate(char out[APIKEY_ID_SIZE]);
/* Is id shaped like a key id ("key_" + 16 base62)?  NULL is not. */
bool apikey_id_valid(const char *id);

/* ---- imported hashes (core/hash.c) --------------------------------------- */
/*
 * The scheme of a foreign hash: "sha256" (sha256:<64 hex>), "bcrypt"
 * ($2a$/$2b$/$2y$) or "argon2id" ($argon2id$); NULL for anything else,
 * including a hash of APIKEY_FOREIGN_HASH_SIZE bytes or more.  The string is
 * static.
 */
const char *apikey_hash_scheme(const char *hash);

/* ---- comma lists: scopes and plans (core/list.c) ------------------------ */
/*
 * Iterate a comma-separated list: each call sets *item and *len to the next
 * non-empty item (blanks around it trimmed) and returns true, or returns
 * false at the end.  *cursor starts at the list (NULL = empty list).
 */
bool apikey_list_next(const char **cursor, const char **item, size_t *len);
/* Is plan one of list (comma list)?  An empty plan never is. */
bool apikey_plan_allowed(const char *plan, const char *list);
/*
 * Plans allowed by both comma lists ("" or NULL = any) into out.  When both
 * are set and share no plan, out is "," — a list no plan matches, so the
 * answer is PLAN_REQUIRED (fail closed).  0 or APIKEY_ERR_TOO_LONG.
 */
int apikey_plans_intersect(const char *a, const char *b, char *out, size_t outsz);

/* ---- compatible answers: refusal bodies (SPEC §10; core/render.c) ------- */
#define APIKEY_ERROR_BODY_MAX    4096 /* a rendered body, bytes (no NUL, no newline) */
#define APIKEY_ERROR_CODE_SIZE   64   /* error_code.X: 1-63 of [A-Za-z0-9_.-] */
#define APIKEY_ERROR_MESSAGE_MAX 200  /* error_message.X, bytes */
#define APIKEY_ANSWER_SEGS       128  /* pieces of a compiled error_template */
#define APIKEY_MESSAGE_SEGS      64   /* pieces of a compiled error_message.X */

/*
 * The compiled refusal answers of a profile (error_template=, error_code.X=,
 * error_message.X=): built when the configuration is loaded and checked
 * there (valid JSON, an object, at most APIKEY_ERROR_BODY_MAX bytes for any
 * scope), so rendering one is copying pieces.  A plain value: copy it
 * freely; nothing to free.  The fields are core/render.c's; callers use the
 * apikey_answer_* functions below.
 */
struct apikey_answer_seg {
	uint16_t off, len;      /* literal bytes in the owner's text, or 0 0 */
	uint8_t kind;           /* literal, ${code}, ${message}, ${status}, ${scope} */
};
struct apikey_answer_outcome {
	char code[APIKEY_ERROR_CODE_SIZE];
	char text[2 * APIKEY_ERROR_MESSAGE_MAX + 1];  /* the message's literals, JSON-escaped */
	struct apikey_answer_seg seg[APIKEY_MESSAGE_SEGS];
	unsigned n_seg;
};
struct apikey_answers {
	bool templated;                                  /* error_template= was given */
	char text[APIKEY_LINE_MAX];                      /* the template's literal bytes */
	struct apikey_answer_seg seg[APIKEY_ANSWER_SEGS];
	unsigned n_seg;
	struct apikey_answer_outcome outcome[APIKEY_OUTCOME_COUNT];
};
/* SPEC §3's answers: {"error":"${message}","code":"${code}","status":${status}}. */
void apikey_answers_default(struct apikey_answers *a);
/* Was error_template= given?  (A front end that adds members of its own to
 * SPEC §3's body — the admin API's "field" — does so only in that shape.) */
bool apikey_answers_templated(const struct apikey_answers *a);
/* The code name a client sees for o (error_code.X, default the outcome's own). */
const char *apikey_answer_code(const struct apikey_answers *a, enum apikey_outcome o);
/*
 * THE renderer of refusal bodies: every front end calls it (apikeyd's /auth
 * and /v1/whoami, the admin API; the PAM module logs apikey_answer_code).
 * Writes the JSON body of outcome o into out, NUL-terminated, without a
 * newline, and returns its length (at most APIKEY_ERROR_BODY_MAX).  scope is
 * the first required scope the key lacks (apikey_verify_result.missing_scope;
 * NULL or "" for none): it is JSON-escaped and cut to APIKEY_SCOPE_SIZE - 1
 * bytes.  Never fails; an out-of-range outcome renders as UNAVAILABLE.
 */
size_t apikey_answer_render(const struct apikey_answers *a, enum apikey_outcome o, const char *scope,
                            char out[APIKEY_ERROR_BODY_MAX + 1]);
/*
 * The same shape for an answer that is not a verification outcome (400, 404,
 * 405, 500, the admin API's FORBIDDEN/CONFLICT…): code (1-63 of
 * [A-Za-z0-9_.-], else "INTERNAL") and status as given; message is any text,
 * JSON-escaped here (control characters as \u00XX, bytes that are not UTF-8
 * as '?') and cut at APIKEY_ERROR_MESSAGE_MAX bytes of escaped text.  The
 * configuration was checked so that this, too, fits the bound.
 */
size_t apikey_answer_render_error(const struct apikey_answers *a, const char *code, const char *message,
                                  int status, char out[APIKEY_ERROR_BODY_MAX + 1]);
/*
 * A rendered body for an HTTP header (auth_error_body=header): every
 * character outside printable ASCII written as a JSON \uXXXX escape (UTF-8
 * and DEL can only occur inside a JSON string), a control character below
 * 0x20 (only JSON whitespace, outside strings) as a blank.  out needs
 * 6 * len + 1 bytes (DEL grows sixfold, UTF-8 at most threefold); returns
 * the length.
 */
size_t apikey_json_ascii(const char *in, size_t len, char *out, size_t outsz);

/* ---- a profile's write rules (SPEC §10; core/profile.c) ----------------- */
#define APIKEY_CATALOGUE_MAX   128  /* scopes= entries */
#define APIKEY_PROFILE_PRESETS 32   /* preset.NAME= declarations */
#define APIKEY_TIERS_MAX       16   /* rate_limit_tiers= values */

struct apikey_profile_preset {
	char name[APIKEY_PRESET_SIZE];
	char scopes[APIKEY_SCOPES_SIZE];    /* normalised */
	unsigned line;                      /* where it was declared (0: not from a file) */
};
/*
 * What an apikey.conf profile adds to the core's settings: the scope
 * catalogue (empty: any valid scope), the presets it declares (installed by
 * init and apikeyctl preset sync; the store keeps the ones in use), the
 * default preset of a key created without scopes, the allowed rate limits,
 * and the refusal answers.  Lines are kept so a problem between two options
 * is reported on the line that must change.
 */
struct apikey_profile {
	char catalogue[APIKEY_CATALOGUE_MAX][APIKEY_SCOPE_SIZE];
	unsigned n_catalogue, catalogue_line;
	struct apikey_profile_preset presets[APIKEY_PROFILE_PRESETS];
	unsigned n_presets;
	char default_preset[APIKEY_PRESET_SIZE];   /* "" = none: scopes are required */
	unsigned default_preset_line;
	uint32_t tiers[APIKEY_TIERS_MAX];
	unsigned n_tiers, tiers_line, default_rate_line;
	unsigned template_line;
	struct apikey_answers answers;
};
/*
 * May a key, preset or edit name this scope under the profile's catalogue?
 * Always with no catalogue, for apikey:read/write/admin and for "*"; a
 * wildcard ("claws:*", "*:read") when it covers at least one entry; an
 * entry "pam:*" allows every "pam:…".
 */
bool apikey_scope_in_catalogue(const struct apikey_profile *p, const char *scope, size_t len);
/* The scopes of a preset the profile declares (or a built-in, when it
 * declares none), or NULL. */
const char *apikey_profile_preset(const struct apikey_profile *p, const char *name);

/* ---- configuration (core/config.c; the grammar in core/options.c) ------- */
/* The core's own settings.  Each front end keeps its settings in its own
 * struct and binds them by name (struct apikey_settings below).  About 60 kB:
 * allocate it rather than put it on a small stack. */
struct apikey_config {
	char db_path[APIKEY_PATH_SIZE];
	char pepper_path[APIKEY_PATH_SIZE]; /* "" = apikey_config_pepper_path() */
	struct apikey_format format;
	unsigned busy_timeout_ms;
	unsigned default_rate_limit;        /* per minute, for keys created without one */
	struct apikey_profile profile;      /* compatible answers and write rules (SPEC §10) */
	unsigned store_flags;               /* APIKEY_STORE_*: set by a front end, not a file */
};
/* Closing a connection never checkpoints the WAL (SQLite's last close does,
 * with two fsyncs).  Not for the PAM module: docs/design/pam.md says why. */
#define APIKEY_STORE_NO_CHECKPOINT 0x1
/* Open without reading the pepper: for re-checks by key id (the PAM account
 * phase), which hash nothing; anything that needs a key's HMAC on such a
 * store fails with APIKEY_ERR_PEPPER. */
#define APIKEY_STORE_NO_PEPPER 0x2

void apikey_config_defaults(struct apikey_config *c);
/* The pepper file: pepper_path, or "<db_path>.pepper".  0 or APIKEY_ERR_TOO_LONG. */
int apikey_config_pepper_path(const struct apikey_config *c, char *out, size_t outsz);

/*
 * One grammar (apikey.conf(5)) for apikey.conf and module arguments: the
 * core keeps the registry of every option — its name and the type and range
 * of its value — and stores its own.  A front end binds the options it reads
 * to fields of its own struct.  An option of the registry that nobody bound
 * is checked and then ignored (apikey.conf is shared: a sidecar option is no
 * error to the PAM module); a name outside the registry is unknown.
 */
enum apikey_opt_type {
	APIKEY_OPT_TEXT,     /* char[size]: text that fits, may be empty */
	APIKEY_OPT_UINT,     /* unsigned: strict decimal within the registry's range */
	APIKEY_OPT_BOOL,     /* bool: yes/no, true/false, on/off, 1/0 */
	APIKEY_OPT_SCOPES,   /* char[size]: a non-empty scope list, stored normalised */
	APIKEY_OPT_LIST,     /* char[max][size] + unsigned count: repeatable, non-empty */
	APIKEY_OPT_CHOICE,   /* unsigned: the index of one of the registry's words */
};
struct apikey_binding {
	const char *name;            /* an option of the registry */
	enum apikey_opt_type type;   /* must be the registry's type for name */
	size_t offset;               /* offsetof(front end struct, field) */
	size_t size;                 /* sizeof the field (LIST: of one element) */
	size_t count_offset;         /* LIST: offsetof its unsigned count */
	unsigned max;                /* LIST: elements at most */
};
#define APIKEY_BIND(st, field, nm, ty) \
	{ nm, ty, offsetof(st, field), sizeof(((st *)0)->field), 0, 0 }
#define APIKEY_BIND_LIST(st, field, count, nm) \
	{ nm, APIKEY_OPT_LIST, offsetof(st, field), sizeof(((st *)0)->field[0]), \
	  offsetof(st, count), sizeof(((st *)0)->field) / sizeof(((st *)0)->field[0]) }
/* A front end's bindings and the struct they write into (base). */
struct apikey_settings {
	const struct apikey_binding *bindings;
	size_t n;
	void *base;
};

/*
 * Apply one "key=value" (or bare "flag") option to c, or through fe (may be
 * NULL) to a front end's struct.  Returns 0, APIKEY_ERR_UNKNOWN_OPTION
 * (nothing changed), or APIKEY_ERR_CONFIG with a reason in err; a refused
 * value changes nothing (the field keeps its previous, safe value).
 */
int apikey_config_apply(struct apikey_config *c, const struct apikey_settings *fe,
                        const char *option, char *err, size_t errsz);
/*
 * Read a file of options, one per line; '#' starts a comment, blank lines
 * are skipped.  Unknown options and bad values are reported through log and
 * make the call return APIKEY_ERR_CONFIG after reading the whole file, so a
 * daemon's -n can list every problem.  A missing file, or one that cannot be
 * read to its end, is APIKEY_ERR_IO: then the file is not fully applied and
 * *c must not be used.  An inconsistent key format profile is an error and
 * leaves the default one.
 */
int apikey_config_load(struct apikey_config *c, const struct apikey_settings *fe,
                       const char *path, apikey_log_fn log, void *log_ctx);

/* Where a front end's configuration comes from (all may be NULL / false). */
struct apikey_config_sources {
	const char *conf;     /* --conf, -f, conf=: this file, which must be readable */
	bool env;             /* consult $APIKEY_CONF and $APIKEY_DB (not inside sshd) */
	const char *db;       /* --db: wins over everything else */
};
/*
 * The one lookup order of every front end: the file is src->conf, else
 * $APIKEY_CONF (env), else APIKEY_CONF_DEFAULT unless it does not exist;
 * then the database is src->db, else $APIKEY_DB (env), else the file's db=,
 * else the default.  apikey_config_file returns the file to read or NULL
 * (the string is src->conf, the environment's or static).
 */
const char *apikey_config_file(const struct apikey_config_sources *src);
/*
 * Read it: c (and fe's struct) must hold their defaults.  Returns 0,
 * APIKEY_ERR_IO (the file cannot be read), APIKEY_ERR_CONFIG (file errors,
 * each logged; the values concerned keep their defaults) or
 * APIKEY_ERR_TOO_LONG (a db path from src or the environment).  Even on an
 * error, the db path of src or the environment is applied.
 */
int apikey_config_read(struct apikey_config *c, const struct apikey_settings *fe,
                       const struct apikey_config_sources *src, apikey_log_fn log, void *log_ctx);

/* Strict decimal parser: whole string, no sign, no overflow, in [min,max]. */
int apikey_parse_uint(const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out);
/* "90d", "12h", "30m", "45s", "2w", "0" → seconds (at most 100 years). */
int apikey_parse_duration(const char *s, int64_t *out_s);
/* Unix seconds duration_s from now, now rounded up to the next whole
 * second: an expiry given as "1s" is still in the future when the write
 * checks it a moment later against its own clock. */
int64_t apikey_time_after(int64_t duration_s);
/* RFC 3339 ("2026-01-02T03:04:05Z" or with ±hh:mm) → unix seconds. */
int apikey_parse_time(const char *s, int64_t *out_s);
/* unix seconds → "2026-01-02T03:04:05Z" */
void apikey_format_time(int64_t unix_s, char out[32]);

/* ---- scopes (core/scope.c) ---------------------------------------------- */
/* A scope is "resource:action", "resource:*" or "*"; [a-z0-9_.-] parts. */
bool apikey_scope_valid(const char *scope, size_t len);
/*
 * The resource of the admin API's rights (apikey:read, apikey:write,
 * apikey:admin, SPEC §5a).  A required scope of this resource is granted
 * only by the same scope, by name: no wildcard ("*", "apikey:*", "*:read")
 * covers it, so a "full access" product key is not an admin key.
 */
#define APIKEY_ADMIN_RESOURCE "apikey"
/* Is scope (len bytes) one of APIKEY_ADMIN_RESOURCE's, granted by name only? */
bool apikey_scope_reserved(const char *scope, size_t len);
/*
 * Normalise a comma/space separated list: validate each scope, drop
 * duplicates, write "a:b,c:d" into out.  APIKEY_ERR_INVALID on a bad scope.
 */
int apikey_scopes_normalize(const char *list, char *out, size_t outsz);
/* Does the granted list (normalised) cover one required scope? */
bool apikey_scopes_grant(const char *granted, const char *required, size_t rlen);
/* Does it cover every scope of the required list (comma separated)? */
bool apikey_scopes_grant_all(const char *granted, const char *required_list);
/* The first scope of the required list, in its order, that granted does not
 * cover (a pointer into required_list, *len bytes), or NULL when all are. */
const char *apikey_scopes_first_missing(const char *granted, const char *required_list, size_t *len);

/* ---- the admin API's rights (core/access.c, SPEC §5a) --------------------- */
/* What a key may do to keys, accounts and presets; each includes the ones
 * before it.  Granted by the scopes apikey:read / apikey:write /
 * apikey:admin, by name only (apikey_scope_reserved). */
enum apikey_right {
	APIKEY_RIGHT_NONE = 0,
	APIKEY_RIGHT_READ,    /* see the caller's own owner's keys, usage, events; presets */
	APIKEY_RIGHT_WRITE,   /* and create, edit, rotate, revoke them */
	APIKEY_RIGHT_ADMIN,   /* every owner; accounts and presets */
};
/* The highest right a normalised scope list grants. */
enum apikey_right apikey_right_of(const char *scopes);
/* The answer of apikey_access_check. */
enum apikey_access {
	APIKEY_ACCESS_OK = 0,
	APIKEY_ACCESS_NEED_RIGHT,   /* the caller lacks the right the call needs */
	APIKEY_ACCESS_OTHER_OWNER,  /* it has the right, for its own owner only */
};
/*
 * May a caller (its key's normalised scopes and owner) exercise `need` on
 * owner's keys or account?  owner NULL: the call concerns no owner (presets,
 * or every owner: then the caller must be an admin, which the front end
 * asks as need = APIKEY_RIGHT_ADMIN).
 */
enum apikey_access apikey_access_check(const char *caller_scopes, const char *caller_owner,
                                       enum apikey_right need, const char *owner);
/*
 * Are all of wanted's scopes granted by held (both lists)?  The rule "no
 * issuing or widening beyond your own scopes": a wildcard is within held
 * only when held grants that same wildcard pattern (e.g. "*" by "*").
 */
bool apikey_scopes_within(const char *held, const char *wanted);

/* ---- rate limits (core/ratelimit.c) -------------------------------------- */
/* The answer of one rate-limit step (also what RateLimit-* headers carry). */
struct apikey_ratelimit {
	uint32_t limit;          /* requests per minute */
	uint32_t remaining;      /* requests still allowed right now */
	uint32_t reset_s;        /* seconds until the bucket is full again */
	uint32_t retry_after_s;  /* seconds to wait when limited, else 0 */
	bool allowed;
};
/*
 * GCRA: *tat_us is the key's theoretical arrival time in microseconds
 * (0 = fresh).  On an allowed request it advances; on a denied one it is
 * left alone.  Microseconds because 1,000,000/min is one per 60 µs.
 */
void apikey_gcra(int64_t *tat_us, int64_t now_us, uint32_t per_minute,
                 struct apikey_ratelimit *out);
/* A key's limit changed: rescale its tat so it stands for the same number
 * of requests under the new limit (an edit applies from the next request). */
void apikey_gcra_rescale(int64_t *tat_us, int64_t now_us, uint32_t old_per_minute, uint32_t new_per_minute);

/*
 * The host's rate-limit table: a file beside the store (<db_path>.rl) that
 * every process using the store maps — apikeyd, the PAM module, apikeyctl
 * verify — so a key has one limit on the host (docs/DESIGN.md "Rate limits").
 * Thread-safe: one handle may serve every thread of a process.
 *
 * Open maps it, creating it when missing if this process is root or the
 * store's owner (owner, group and mode copied from the store).  A table that
 * is not what it must be (not a regular file, a link, accessible to others,
 * owned by someone else, a bad header or size) is refused with
 * APIKEY_ERR_STORE and the reason logged: verification then answers
 * UNAVAILABLE, never "allowed".
 */
struct apikey_limiter;
int apikey_limiter_open(struct apikey_limiter **out, const char *db_path, apikey_log_fn log, void *log_ctx);
void apikey_limiter_free(struct apikey_limiter *l);
/*
 * Consume n requests (n >= 1, all or none) of key_id at now_us under a limit
 * of per_minute.  0 with the answer in out (out->allowed false: refused,
 * nothing consumed); APIKEY_ERR_FULL when the key's bucket of the table
 * holds only keys that still carry state (it is not let in by forgetting
 * theirs); APIKEY_ERR_BUSY after 64 lost compare-and-swaps in a row.  Both
 * errors leave out->allowed false: verification answers UNAVAILABLE.
 */
int apikey_limiter_consume(struct apikey_limiter *l, const char *key_id, uint32_t per_minute, int64_t now_us,
                           uint32_t n, struct apikey_ratelimit *out);
/* For long-lived processes, about once a second: when the file at the path
 * is no longer the one mapped (replaced, removed and re-made, resized), map
 * the new one.  0, or an error (logged) with the current mapping kept. */
int apikey_limiter_refresh(struct apikey_limiter *l);
/* A key's limit was edited: the state in the table stands for the same
 * number of requests under the new limit (apikey_gcra_rescale).  0, or
 * APIKEY_ERR_BUSY after 64 lost compare-and-swaps. */
int apikey_limiter_rescale(struct apikey_limiter *l, const char *key_id, int64_t now_us, uint32_t old_per_minute,
                           uint32_t new_per_minute);
/* Counters kept in the table, for every process since it was made. */
struct apikey_limiter_stats { uint64_t slots, full, cas_retries, fail_closed; };
void apikey_limiter_stats(struct apikey_limiter *l, struct apikey_limiter_stats *out);

/* ---- records -------------------------------------------------------------- */
struct apikey_key_info {
	char id[APIKEY_ID_SIZE];
	char hint[APIKEY_HINT_SIZE];
	char owner[APIKEY_OWNER_SIZE];
	char name[APIKEY_NAME_SIZE];
	char scopes[APIKEY_SCOPES_SIZE];
	char rotated_from[APIKEY_ID_SIZE];
	char rotated_to[APIKEY_ID_SIZE];
	char hash_alg[16];           /* "hmac-sha256", "sha256", "bcrypt", "argon2id" */
	int64_t created_at_s;
	int64_t expires_at_s;        /* 0 = never */
	int64_t revoked_at_s;        /* 0 = not revoked */
	int64_t last_used_at_s;      /* 0 = never */
	uint64_t use_count;
	uint32_t rate_limit;
	char metadata[APIKEY_META_SIZE]; /* last: the verifier cache leaves it out */
};

/* A key's state at a time (core/keys.c).  ROTATING: a successor exists and
 * this key lives until its grace period ends (then it is EXPIRED). */
enum apikey_key_status {
	APIKEY_KEY_ACTIVE = 0,
	APIKEY_KEY_ROTATING,
	APIKEY_KEY_REVOKED,
	APIKEY_KEY_EXPIRED,
};
enum apikey_key_status apikey_key_status(const struct apikey_key_info *k, int64_t now_s);
/* "active", "rotating", "revoked", "expired" */
const char *apikey_key_status_name(enum apikey_key_status st);

struct apikey_account {
	char owner[APIKEY_OWNER_SIZE];
	char plan[APIKEY_PLAN_SIZE];
	bool active;
};

/* Who writes: every write function takes one, and its audit event keeps it. */
struct apikey_actor {
	const char *source;   /* required, non-empty: "cli", "http", "pam:sshd" */
	const char *key_id;   /* the acting key (admin API), NULL = none */
	/* The actor's own scopes when it may not grant beyond them (the admin
	 * API's callers without apikey:admin), NULL = no such bound (the
	 * operator's CLI, an admin).  A create, update or rotate whose key
	 * would hold a scope outside them (apikey_scopes_within) is refused
	 * with APIKEY_ERR_FORBIDDEN inside the write's transaction, presets
	 * resolved: nothing is written. */
	const char *within;
};

#include "apikey_store.h"
#include "apikey_text.h"

#endif /* APIKEY_H */
