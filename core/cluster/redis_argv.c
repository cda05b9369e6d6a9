/**
 * @file redis_argv.c  A command's hiredis format, split into argv
 *
 * hiredis's redisvFormatCommand() builds each argument in a growing sds,
 * literal text one character at a time, then copies them all into the
 * command, which the async context copies again into its output buffer:
 * a third of the cost of a replication write when thousands of calls are
 * re-homed at once (bench/RESULTS.md, "CPU per re-homed call"). The
 * formats this engine sends to scripts are words separated by spaces,
 * each a literal or exactly one conversion (%s, %b, %d, %u, %lld, %llu).
 * Such a format is split here into an argv that points to the caller's
 * strings and blobs and holds the numbers it printed, for
 * redisAsyncCommandArgv(), which sizes the command once. Any other format
 * (a conversion inside a word, %%, another conversion) is EINVAL before a
 * single argument is read, and the caller hands it to hiredis as before.
 * The unit test holds the result to hiredis's own formatting.
 */
#include <stdio.h>
#include <string.h>
#include <re.h>
#include "redis_int.h"

enum conv {
	CONV_LITERAL,
	CONV_S,
	CONV_B,
	CONV_D,
	CONV_U,
	CONV_LLD,
	CONV_LLU,
};

static const char *const conv_names[] = {
	[CONV_S] = "%s", [CONV_B] = "%b", [CONV_D] = "%d", [CONV_U] = "%u",
	[CONV_LLD] = "%lld", [CONV_LLU] = "%llu",
};


/** What word w (n bytes) is; EINVAL if a conversion is not all of it */
static int word_conv(enum conv *cp, const char *w, size_t n)
{
	if (!memchr(w, '%', n)) {
		*cp = CONV_LITERAL;
		return 0;
	}

	for (size_t c = CONV_S; c < ARRAY_SIZE(conv_names); c++) {
		if (n == strlen(conv_names[c]) &&
		    0 == memcmp(w, conv_names[c], n)) {
			*cp = (enum conv)c;
			return 0;
		}
	}

	return EINVAL;
}


/** The next word of *fmtp (skipping spaces), 0 at the end */
static size_t word_next(const char **wp, const char **fmtp)
{
	const char *p = *fmtp;
	size_t n;

	while (*p == ' ')
		++p;

	n = strcspn(p, " ");
	*wp = p;
	*fmtp = p + n;
	return n;
}


static int check(const struct redis_argv *a, const char *fmt)
{
	int argc = a->argc;
	const char *w;
	size_t n;

	while ((n = word_next(&w, &fmt))) {
		enum conv c;
		int err = word_conv(&c, w, n);

		if (err)
			return err;
		if (++argc > REDIS_ARGV_MAX)
			return E2BIG;
	}

	return 0;
}


/** Add one argument: n bytes at p, not copied */
int redis_argv_add(struct redis_argv *a, const char *p, size_t n)
{
	if (!a || (!p && n))
		return EINVAL;
	if (a->argc >= REDIS_ARGV_MAX)
		return E2BIG;

	a->argv[a->argc] = p;
	a->len[a->argc++] = n;
	return 0;
}


static int num_add(struct redis_argv *a, const char *fmt, ...)
{
	char *buf = a->num[a->argc];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, REDIS_ARGV_NUM_SZ, fmt, ap);
	va_end(ap);

	if (n < 0 || n >= REDIS_ARGV_NUM_SZ)
		return ERANGE;

	return redis_argv_add(a, buf, (size_t)n);
}


static int word_add(struct redis_argv *a, enum conv c, const char *w,
		    size_t n, va_list *ap)
{
	const char *s;

	switch (c) {

	case CONV_LITERAL:
		return redis_argv_add(a, w, n);

	case CONV_S:
		s = va_arg(*ap, const char *);
		return redis_argv_add(a, s, str_len(s));

	case CONV_B:
		s = va_arg(*ap, const char *);
		return redis_argv_add(a, s, va_arg(*ap, size_t));

	case CONV_D:
		return num_add(a, "%d", va_arg(*ap, int));

	case CONV_U:
		return num_add(a, "%u", va_arg(*ap, unsigned));

	case CONV_LLD:
		return num_add(a, "%lld", va_arg(*ap, long long));

	case CONV_LLU:
		return num_add(a, "%llu", va_arg(*ap, unsigned long long));
	}

	return EINVAL;
}


/**
 * Add the arguments of a hiredis format. EINVAL (or E2BIG) leaves ap
 * unread and a unchanged: the format is not one of the simple ones.
 */
int redis_argv_vadd(struct redis_argv *a, const char *fmt, va_list ap)
{
	va_list aq;
	const char *w;
	size_t n;
	int err;

	if (!a || !fmt)
		return EINVAL;

	err = check(a, fmt);
	if (err)
		return err;

	va_copy(aq, ap);
	while (!err && (n = word_next(&w, &fmt))) {
		enum conv c;

		(void)word_conv(&c, w, n);
		err = word_add(a, c, w, n, &aq);
	}
	va_end(aq);

	return err;
}
