/**
 * @file log.c  Leveled logging to stderr or syslog
 *
 * One line per event: level, module, message; on stderr the line starts
 * with the local date and time in ISO 8601 (milliseconds and UTC offset),
 * so that a log read without journald still says when, also across
 * midnight. Formatting goes through libre's re_vfprintf so %r (struct pl),
 * %J (struct sa) and %m (errno) work everywhere. The level check is a
 * plain load so that debug logging on the SIP path costs nothing when it
 * is off.
 *
 * Colour only on a terminal: a file, a pipe or journald gets plain text.
 * Once log_init() has run, what the libraries print goes through here as
 * well, so that it gets the same format, target and level filter: libre's
 * debug output (DEBUG_WARNING() etc., ANSI colours and no date of its own)
 * through a dbg print handler, and what libre writes straight to stderr
 * ("sip: msg decode err" on a malformed packet) through `stderr` itself,
 * replaced by a stdio cookie stream that hands each line to log_msg() as a
 * warning. Our own lines go to the real stderr; sanitizers write to fd 2
 * without stdio, so a crash report never depends on this.
 *
 * With syslog as the target the level becomes the syslog priority, which
 * journald shows (and filters on, journalctl -p); syslog adds the date.
 * <syslog.h> defines LOG_DEBUG and LOG_INFO too: it is included first and
 * its priorities copied before those names are taken back for ours.
 */
#define _GNU_SOURCE  /* fopencookie */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>
#include <syslog.h>

enum {
	PRIO_DEBUG   = LOG_DEBUG,
	PRIO_INFO    = LOG_INFO,
	PRIO_WARNING = LOG_WARNING,
	PRIO_ERR     = LOG_ERR,
};
#undef LOG_DEBUG
#undef LOG_INFO

#include <re.h>
#define DEBUG_MODULE "log"
#define DEBUG_LEVEL 0
#include <re_dbg.h>
#include "log.h"

enum {
	LOG_TS_SZ      = 32,    /* "YYYY-MM-DDTHH:MM:SS" */
	LOG_LINE_SZ    = 2048,  /* a line for syslog */
	LOG_FOREIGN_SZ = 512,   /* a line someone else wrote to stderr */
	LOG_WHO_SZ     = 16,    /* the worker's name and a blank */
	LOG_OUTBUF_SZ  = 8192,  /* lines longer than this take two writes */
};

static struct {
	enum log_level level;
	enum log_target target;
	bool colour;             /* stderr is a terminal */
	FILE *out;               /* the real stderr; NULL before log_init() */
	FILE *foreign;           /* what `stderr` is while log_init() holds */
	char line[LOG_FOREIGN_SZ];  /* a foreign line being written */
	size_t linel;
	char who[LOG_WHO_SZ];    /* "w2 " in a worker (workers N), else "" */
	char outbuf[LOG_OUTBUF_SZ];  /* out's: a line is one write(2) */
} lg = {.level = LOG_INFO};

static const char *level_names[] = {"debug", "info", "warn", "error"};
static const int level_prio[] = {PRIO_DEBUG, PRIO_INFO, PRIO_WARNING,
				 PRIO_ERR};
static const int level_dbg[] = {DBG_DEBUG, DBG_INFO, DBG_WARNING, DBG_ERR};
static const char *level_colour[] = {"\x1b[2m", NULL, "\x1b[33m",
				     "\x1b[31m"};  /* dim, plain, yellow, red */


static enum log_level level_of_dbg(int dbg_level)
{
	if (dbg_level <= DBG_ERR)
		return LOG_ERROR;
	if (dbg_level == DBG_WARNING)
		return LOG_WARN;
	if (dbg_level == DBG_DEBUG)
		return LOG_DEBUG;

	return LOG_INFO;
}


/* libre's lines come formatted as "module: text\n" */
static void dbg_handler(int dbg_level, const char *p, size_t len, void *arg)
{
	(void)arg;

	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		--len;

	log_msg(level_of_dbg(dbg_level), "libre", "%b", p, len);
}


static void foreign_flush(void)
{
	if (lg.linel)
		log_msg(LOG_WARN, "stderr", "%b", lg.line, lg.linel);
	lg.linel = 0;
}


/* Writes to `stderr` by anyone but us: one log line per text line */
static ssize_t foreign_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;

	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n' || lg.linel == sizeof(lg.line))
			foreign_flush();
		if (buf[i] != '\n' && buf[i] != '\r')
			lg.line[lg.linel++] = buf[i];
	}

	return (ssize_t)size;
}


static int dbg_flags(void)
{
	return lg.colour ? DBG_ANSI : DBG_NONE;
}


/**
 * Take over what the libraries print (see the top of this file); call
 * after libre_init(), and log_close() before exit.
 */
void log_init(void)
{
	static const cookie_io_functions_t io = {.write = foreign_write};

	if (lg.out)
		return;

	lg.out = stderr;
	/* one write(2) a line: the workers of `workers N` share the file */
	(void)setvbuf(lg.out, lg.outbuf, _IOLBF, sizeof(lg.outbuf));
	lg.colour = isatty(fileno(stderr)) == 1;
	dbg_init(level_dbg[lg.level], dbg_flags());
	dbg_handler_set(dbg_handler, NULL);

	lg.foreign = fopencookie(NULL, "w", io);
	if (lg.foreign) {
		(void)setvbuf(lg.foreign, NULL, _IOLBF, 0);
		stderr = lg.foreign;
	}
}


void log_close(void)
{
	dbg_handler_set(NULL, NULL);
	if (lg.foreign) {
		stderr = lg.out;
		(void)fclose(lg.foreign);
		foreign_flush();
		lg.foreign = NULL;
	}
	lg.out = NULL;

	log_set_target(LOG_TARGET_STDERR);
}


/** Also at run time (POST /v1/log_level, a reload): takes effect at once */
void log_set_level(enum log_level level)
{
	if ((size_t)level >= ARRAY_SIZE(level_names))
		return;

	lg.level = level;
	dbg_init(level_dbg[level], dbg_flags());
}


enum log_level log_get_level(void)
{
	return lg.level;
}


const char *log_level_name(enum log_level level)
{
	return (size_t)level < ARRAY_SIZE(level_names) ?
		level_names[level] : "?";
}


int log_level_decode(enum log_level *levelp, const char *name)
{
	if (!levelp || !name)
		return EINVAL;

	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (0 == str_casecmp(name, level_names[i])) {
			*levelp = (enum log_level)i;
			return 0;
		}
	}

	return EINVAL;
}


int log_target_decode(enum log_target *targetp, const char *name)
{
	if (!targetp || !name)
		return EINVAL;

	if (!str_casecmp(name, "stderr"))
		*targetp = LOG_TARGET_STDERR;
	else if (!str_casecmp(name, "syslog"))
		*targetp = LOG_TARGET_SYSLOG;
	else
		return EINVAL;

	return 0;
}


void log_set_target(enum log_target target)
{
	if (target == lg.target)
		return;

	if (target == LOG_TARGET_SYSLOG)
		openlog("rehomed", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else
		closelog();

	lg.target = target;
}


/** A worker of `workers N` names itself in each line ("w2"); 0: none */
void log_set_worker(unsigned worker)
{
	if (worker)
		(void)re_snprintf(lg.who, sizeof(lg.who), "w%u ", worker);
	else
		lg.who[0] = '\0';
}


/* 2026-12-05T19:55:01.123+01:00 */
static void print_time(FILE *f)
{
	struct timeval tv;
	struct tm tm;
	char ts[LOG_TS_SZ];
	long off;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff / 60;

	(void)re_fprintf(f, "%s.%03ld%c%02ld:%02ld", ts,
			 (long)tv.tv_usec / 1000, off < 0 ? '-' : '+',
			 labs(off) / 60, labs(off) % 60);
}


static void print_stderr(enum log_level level, const char *mod,
			 const char *fmt, va_list ap)
{
	FILE *f = lg.out ? lg.out : stderr;

	print_time(f);
	if (lg.colour && level != LOG_INFO)
		(void)re_fprintf(f, " %s%-5s\x1b[0m %s%-7s ",
				 level_colour[level], level_names[level],
				 lg.who, mod);
	else
		(void)re_fprintf(f, " %-5s %s%-7s ", level_names[level],
				 lg.who, mod);
	(void)re_vfprintf(f, fmt, ap);
	(void)re_fprintf(f, "\n");
}


static void print_syslog(enum log_level level, const char *mod,
			 const char *fmt, va_list ap)
{
	char line[LOG_LINE_SZ];

	(void)re_vsnprintf(line, sizeof(line), fmt, ap);
	syslog(level_prio[level], "%s%s: %s", lg.who, mod, line);
}


void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
{
	va_list ap;

	if (level < lg.level || (size_t)level >= ARRAY_SIZE(level_names))
		return;

	va_start(ap, fmt);
	if (lg.target == LOG_TARGET_SYSLOG)
		print_syslog(level, mod, fmt, ap);
	else
		print_stderr(level, mod, fmt, ap);
	va_end(ap);
}
