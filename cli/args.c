/**
 * @file args.c  rehomectl: the command line and the command table
 *
 * getopt_long reads the options, whatever their place; the words left are
 * the command, looked up in the table, which also says which options each
 * command accepts and whether a tag follows its words. What getopt cannot
 * check (option/command fit, value sets) is checked before anything is
 * sent, so a usage error always exits 2 without a call. Names (tags,
 * nodes) are checked against the config's charset so they can go into
 * paths and queries without escaping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <getopt.h>
#include <re.h>
#include "rehomectl.h"
#include "client.h"
#include "args.h"

enum {
	NAME_MAX_LEN = 63,       /* the config's limit on tag and node names */
	LIMIT_MAX    = 10000,    /* dialogs --limit, as the server's */
	RATE_MAX     = 1000000,
	PERCENT_MAX  = 100,
};

static const char *modes[] = {
	"challenge", "challenge-callee", "caller", "callee", "update", NULL
};
static const char *bodies[] = {"outbound", "inbound", "none", NULL};


static void usage(FILE *f)
{
	(void)re_fprintf(f,
	"usage: rehomectl [-s IP:PORT] [-t TOKEN] [--json] COMMAND\n"
	"\n"
	"  -s, --server IP:PORT  control API of the node (default "
	"127.0.0.1:8060)\n"
	"  -t, --token TOKEN     bearer token (default: $REHOME_TOKEN)\n"
	"      --json            print the server's JSON\n"
	"\n"
	"commands:\n"
	"  status\n"
	"  dialogs [--tag T] [--limit N]\n"
	"  shtag activate T\n"
	"  shtag release T\n"
	"  rehome T [--mode M] [--body B] [--rate R]\n"
	"        M: challenge (default), challenge-callee, caller, callee,"
	" update\n"
	"        B: outbound (default), inbound, none\n"
	"  move T --to NODE (--count N | --percent P)\n"
	"  drain [--to NODE]\n"
	"  policy reload\n"
	"\n"
	"exit status: 0 success, 1 failed operation, 2 bad usage\n");
}


/** The problem, then the usage text, on stderr; returns EXIT_USAGE */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)re_fprintf(stderr, "rehomectl: %v\n\n", fmt, &ap);
	va_end(ap);

	usage(stderr);
	return EXIT_USAGE;
}


static const struct command commands[] = {
	{"status",  NULL,       false, 0,                         cmd_status},
	{"dialogs", NULL,       false, OPT_TAG | OPT_LIMIT,       cmd_dialogs},
	{"shtag",   "activate", true,  0,                         cmd_shtag},
	{"shtag",   "release",  true,  0,                         cmd_shtag},
	{"rehome",  NULL,       true,  OPT_MODE | OPT_BODY | OPT_RATE,
								  cmd_rehome},
	{"move",    NULL,       true,  OPT_TO | OPT_COUNT | OPT_PERCENT,
								  cmd_move},
	{"drain",   NULL,       false, OPT_TO,                    cmd_drain},
	{"policy",  "reload",   false, 0,                         cmd_policy},
};


/** Tags and node names: the config's charset, safe in a URL as is */
static bool name_ok(const char *s)
{
	if (!str_isset(s) || strlen(s) > NAME_MAX_LEN)
		return false;

	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	}

	return true;
}


static bool number_get(uint32_t *v, const char *s, uint32_t lo, uint32_t hi)
{
	char *end;
	unsigned long n;

	if (!s || !isdigit((unsigned char)*s))
		return false;

	n = strtoul(s, &end, 10);
	if (*end || n < lo || n > hi)
		return false;

	*v = (uint32_t)n;
	return true;
}


static bool word_in(const char *s, const char **set)
{
	for (; *set; set++) {
		if (!str_cmp(s, *set))
			return true;
	}

	return false;
}


static const struct command *command_find(const struct args *a)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];
		int nword = 1 + (c->sub != NULL) + c->takes_tag;

		if (str_cmp(a->word[0], c->word))
			continue;
		if (c->sub && (a->nword < 2 || str_cmp(a->word[1], c->sub)))
			continue;
		if (a->nword != nword)
			continue;

		return c;
	}

	return NULL;
}


static int option_set(struct args *a, struct client *cl, int opt,
		      const char *val)
{
	switch (opt) {

	case 's':
		if (sa_decode(&cl->srv, val, strlen(val)))
			return usage_error("bad server address '%s' "
					   "(IP:PORT)", val);
		return 0;

	case 't': cl->token = val;  return 0;
	case 'j': cl->json = true;  return 0;
	case 'T': a->tag = val;     a->given |= OPT_TAG;  return 0;
	case 'm': a->mode = val;    a->given |= OPT_MODE; return 0;
	case 'b': a->body = val;    a->given |= OPT_BODY; return 0;
	case 'o': a->to = val;      a->given |= OPT_TO;   return 0;

	case 'l':
		a->given |= OPT_LIMIT;
		return number_get(&a->limit, val, 1, LIMIT_MAX) ? 0 :
			usage_error("--limit wants 1..%u, not '%s'",
				    (unsigned)LIMIT_MAX, val);
	case 'r':
		a->given |= OPT_RATE;
		return number_get(&a->rate, val, 1, RATE_MAX) ? 0 :
			usage_error("--rate wants a positive number, not '%s'",
				    val);
	case 'c':
		a->given |= OPT_COUNT;
		return number_get(&a->count, val, 1, UINT32_MAX) ? 0 :
			usage_error("--count wants a positive number, not "
				    "'%s'", val);
	case 'p':
		a->given |= OPT_PERCENT;
		return number_get(&a->percent, val, 1, PERCENT_MAX) ? 0 :
			usage_error("--percent wants 1..%u, not '%s'",
				    (unsigned)PERCENT_MAX, val);
	default:
		return usage_error("%s", "unknown option");
	}
}


/** What getopt cannot check: option/command fit and value sets */
static int args_check(const struct args *a, const struct command *c)
{
	if (a->given & ~c->opts)
		return usage_error("option not valid for '%s'", c->word);

	if (a->tag && !name_ok(a->tag))
		return usage_error("bad tag name '%s'", a->tag);
	if (a->to && !name_ok(a->to))
		return usage_error("bad node name '%s'", a->to);
	if (a->mode && !word_in(a->mode, modes))
		return usage_error("unknown mode '%s'", a->mode);
	if (a->body && !word_in(a->body, bodies))
		return usage_error("unknown body '%s'", a->body);

	if (c->run == cmd_move) {
		if (!a->to)
			return usage_error("%s", "move needs --to NODE");
		if (!(a->given & OPT_COUNT) == !(a->given & OPT_PERCENT))
			return usage_error("%s", "move needs one of --count "
					   "or --percent");
	}

	return 0;
}


/**
 * Options into *a (and the server, token, --json into *cl), the command
 * into *cmdp. Returns 0 to run it, -1 after --help, else the exit status.
 */
int args_parse(struct args *a, struct client *cl,
	       const struct command **cmdp, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"server",  required_argument, NULL, 's'},
		{"token",   required_argument, NULL, 't'},
		{"json",    no_argument,       NULL, 'j'},
		{"tag",     required_argument, NULL, 'T'},
		{"limit",   required_argument, NULL, 'l'},
		{"mode",    required_argument, NULL, 'm'},
		{"body",    required_argument, NULL, 'b'},
		{"rate",    required_argument, NULL, 'r'},
		{"to",      required_argument, NULL, 'o'},
		{"count",   required_argument, NULL, 'c'},
		{"percent", required_argument, NULL, 'p'},
		{"help",    no_argument,       NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const struct command *c;
	int opt, ret;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "s:t:h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return -1;
		}
		if (opt == '?')
			return usage_error("bad option '%s'", argv[optind - 1]);

		ret = option_set(a, cl, opt, optarg);
		if (ret)
			return ret;
	}

	for (; optind < argc; optind++) {
		if (a->nword == (int)ARRAY_SIZE(a->word))
			return usage_error("%s", "too many arguments");
		a->word[a->nword++] = argv[optind];
	}

	if (!a->nword)
		return usage_error("%s", "no command");

	c = command_find(a);
	if (!c)
		return usage_error("bad command '%s'", a->word[0]);

	if (c->takes_tag)
		a->tag = a->word[a->nword - 1];

	*cmdp = c;
	return args_check(a, c);
}
