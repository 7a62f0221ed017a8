/* log.c — the core's only way to speak: through the sink its caller installed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

void core_log(apikey_log_fn log, void *ctx, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log(ctx, prio, msg);
}

int copy_str(char *dst, size_t dstsz, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (dstsz == 0)
		return APIKEY_ERR_TOO_LONG;
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return APIKEY_ERR_TOO_LONG;
	}
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}
