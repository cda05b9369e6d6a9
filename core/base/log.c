/**
 * @file log.c  Leveled logging to stderr
 *
 * One line per event: wall-clock time, level, module, message. Formatting
 * goes through libre's re_vfprintf so %r (struct pl), %J (struct sa) and %m
 * (errno) work everywhere. The level check is a plain load so that debug
 * logging on the SIP path costs nothing when it is off.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>
#include <re.h>
#include "log.h"

enum { LOG_TS_SZ = 32 };  /* "HH:MM:SS" */

static enum log_level cur_level = LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};


void log_set_level(enum log_level level)
{
	cur_level = level;
}


enum log_level log_get_level(void)
{
	return cur_level;
}


int log_level_decode(enum log_level *levelp, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (0 == str_casecmp(name, level_names[i])) {
			*levelp = (enum log_level)i;
			return 0;
		}
	}

	return EINVAL;
}


void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
{
	struct timeval tv;
	struct tm tm;
	char ts[LOG_TS_SZ];
	va_list ap;

	if (level < cur_level)
		return;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);

	va_start(ap, fmt);
	(void)re_fprintf(stderr, "%s.%03ld %-5s %-7s ", ts,
			 (long)tv.tv_usec / 1000, level_names[level], mod);
	(void)re_vfprintf(stderr, fmt, ap);
	(void)re_fprintf(stderr, "\n");
	va_end(ap);
}
