/* faults.h — failure injection for the fault-injecting fuzz target
 * (tests/fuzz/fuzz_pam.c, STYLE §15a).  The target is linked with
 * -Wl,--wrap for the C library calls its code makes (faults.c); SQLite's and
 * OpenSSL's own allocations and SQLite's file I/O are routed through the same
 * counters by the hooks those libraries provide for it (faults_install).
 *
 * A plan says which calls fail: "the Nth call of class C" (once), or "the Nth
 * and every later one" (sticky).  Calls are only counted, and only fail,
 * while a plan is armed, so the harness's own set-up never fails. */
#ifndef FUZZ_FAULTS_H
#define FUZZ_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fault_class {
	F_ALLOC,     /* malloc, calloc, realloc, strdup; SQLite's and OpenSSL's allocations */
	F_OPEN,      /* open, fopen, stat, fstat; SQLite's open */
	F_READ,      /* read, stdio reads of an fopen'ed file; SQLite's read/pread */
	F_WRITE,     /* write, fsync; SQLite's write/pwrite */
	F_PAM,       /* the PAM library: conversation, pam_set_data/item, pam_putenv, getpwnam */
	F_ANY,       /* a plan entry of this class counts every call of every class */
	F_CLASSES
};

#define FAULT_PLAN_MAX 8

struct fault_entry {
	uint8_t cls;      /* enum fault_class */
	bool sticky;      /* fail the Nth call and every later one */
	uint16_t n;       /* 0-based call number within the class */
};

struct fault_plan {
	struct fault_entry e[FAULT_PLAN_MAX];
	unsigned n;
};

/* Calls seen and failures injected since the last faults_arm. */
struct fault_stats {
	unsigned calls[F_CLASSES];   /* [F_ANY] = all calls */
	unsigned injected;
};

/* Once, before anything allocates: SQLite and OpenSSL allocators, SQLite's
 * system calls.  Returns 0, or -1 when a library refused the hook (it had
 * already allocated): then its calls are not counted. */
int faults_install(void);
void faults_arm(const struct fault_plan *p);
void faults_disarm(struct fault_stats *out);
/* Count one call of class c; true when it must fail. */
bool fault_hit(enum fault_class c);
const char *fault_class_name(enum fault_class c);

/* The real allocator (not counted, never fails), for the harness. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
#endif
