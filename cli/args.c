/**
 * @file args.c  rehomectl: the command line and the command table
 *
 * getopt_long reads the options, whatever their place; the words left are
 * the command, looked up in the table, which also says which options each
 * command accepts, what argument follows its words, and how its usage
 * reads (the help text is built from the table, so it cannot forget a
 * command). What getopt cannot check (option/command fit, value sets) is
 * checked before anything is sent, so a usage error always exits 2
 * without a call. The first problem is kept and told with the usage of
 * the command it is about, not the whole help. Names (tags, nodes) are
 * checked against the config's charset and dids are hex, so they can go
 * into paths and queries without escaping.
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
	DID_LEN      = 16,       /* hex digits of a dialog id */
	LIMIT_MAX    = 10000,    /* dialogs --limit, as the server's */
	RATE_MAX     = 1000000,
	PERCENT_MAX  = 100,
};

static const char *modes[] = {
	"challenge", "challenge-callee", "caller", "callee", "update", NULL
};
static const char *bodies[] = {"outbound", "inbound", "none", NULL};
static const char *levels[] = {"debug", "info", "warn", "error", NULL};
static const char *events[] = {"tick", "invite", NULL};
static const char *node_events[] = {"node-down", "node-up", NULL};

static const char global_synopsis[] =
	"rehomectl [-s IP:PORT] [-t TOKEN] [--json] COMMAND";


static const struct command commands[] = {
	{"status",    NULL,       ARG_NONE,  0, false, cmd_status,
	 "status"},
	{"dialogs",   NULL,       ARG_NONE,  OPT_TAG | OPT_LIMIT, false,
	 cmd_dialogs, "dialogs [--tag T] [--limit N]"},
	{"dialog",    "show",     ARG_DID,   0, false, cmd_dialog,
	 "dialog show DID"},
	{"dialog",    "end",      ARG_DID,   0, false, cmd_dialog,
	 "dialog end DID"},
	{"shtag",     "activate", ARG_TAG,   0, true,  cmd_shtag,
	 "shtag activate T"},
	{"shtag",     "release",  ARG_TAG,   0, true,  cmd_shtag,
	 "shtag release T"},
	{"rehome",    NULL,       ARG_TAG,   OPT_MODE | OPT_BODY | OPT_RATE |
	 OPT_FORCE, false, cmd_rehome,
	 "rehome T [--mode M] [--body B] [--rate R] [--force]"},
	{"move",      NULL,       ARG_TAG,   OPT_TO | OPT_COUNT | OPT_PERCENT,
	 true, cmd_move, "move T --to NODE (--count N | --percent P)"},
	{"drain",     NULL,       ARG_NONE,  OPT_TO, true, cmd_drain,
	 "drain [--to NODE]"},
	{"undrain",   NULL,       ARG_NONE,  0, false, cmd_undrain,
	 "undrain"},
	{"jobs",      NULL,       ARG_NONE,  0, false, cmd_jobs,
	 "jobs"},
	{"media",     "relays",   ARG_NONE,  0, false, cmd_media,
	 "media relays"},
	{"media",     "move",     ARG_NONE,
	 OPT_FROM | OPT_TO | OPT_COUNT | OPT_TAG | OPT_RATE, false, cmd_media,
	 "media move --from R --to R [--count N | --tag T] [--rate R]"},
	{"policy",    "reload",   ARG_NONE,  OPT_CLUSTER, false, cmd_policy,
	 "policy reload [--cluster]"},
	{"policy",    "simulate", ARG_NODE_EVENT, OPT_FILE, false,
	 cmd_simulate, "policy simulate [--file F] node-down N | node-up N"},
	{"policy",    "simulate", ARG_EVENT, OPT_FILE | OPT_FROM | OPT_TO |
	 OPT_RURI, false, cmd_simulate,
	 "policy simulate [--file F] tick | invite --from URI --to URI "
	 "[--ruri URI]"},
	{"reload",    NULL,       ARG_NONE,  0, false, cmd_reload,
	 "reload"},
	{"log-level", NULL,       ARG_LEVEL, 0, false, cmd_log_level,
	 "log-level LEVEL"},
	{"version",   NULL,       ARG_NONE,  0, false, cmd_version,
	 "version"},
	{"help",      NULL,       ARG_NONE,  0, false, cmd_help,
	 "help"},
};


/** The whole help: options, every command, value sets, exit status */
void args_usage(FILE *f)
{
	(void)re_fprintf(f,
	"usage: %s\n"
	"\n"
	"  -s, --server IP:PORT  control API of the node (default "
	"127.0.0.1:8060)\n"
	"  -t, --token TOKEN     bearer token (default: $REHOME_TOKEN)\n"
	"      --json            print the server's JSON\n"
	"\n"
	"commands:\n", global_synopsis);

	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		(void)re_fprintf(f, "  %s\n", commands[i].synopsis);

	(void)re_fprintf(f,
	"\n"
	"  M: challenge (default), challenge-callee, caller, callee, update\n"
	"  B: outbound (default), inbound, none\n"
	"  LEVEL: debug, info, warn, error\n"
	"\n"
	"exit status: 0 success, 1 failed operation, 2 bad usage\n");
}


/** Keep the first usage problem; returns EXIT_USAGE */
static int problem(struct args *a, const char *fmt, ...)
{
	va_list ap;

	if (a->problem[0])
		return EXIT_USAGE;

	va_start(ap, fmt);
	(void)re_vsnprintf(a->problem, sizeof(a->problem), fmt, ap);
	va_end(ap);

	return EXIT_USAGE;
}


/**
 * The problem on stderr, then the usage of the commands named like the
 * first word (the short general one when there is none); EXIT_USAGE.
 */
static int problem_report(const struct args *a)
{
	bool found = false;

	(void)re_fprintf(stderr, "rehomectl: %s\n", a->problem);

	for (size_t i = 0; a->nword && i < ARRAY_SIZE(commands); i++) {
		if (str_cmp(a->word[0], commands[i].word))
			continue;

		(void)re_fprintf(stderr, "%s rehomectl %s\n",
				 found ? "      " : "usage:",
				 commands[i].synopsis);
		found = true;
	}

	if (!found)
		(void)re_fprintf(stderr, "usage: %s\n"
				 "(rehomectl help lists the commands)\n",
				 global_synopsis);

	return EXIT_USAGE;
}


/** 1-63 letters and digits, and the `extra` characters */
static bool chars_ok(const char *s, const char *extra)
{
	if (!str_isset(s) || strlen(s) > NAME_MAX_LEN)
		return false;

	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	}

	return true;
}


/** Tags and node names: the config's charset, safe in a URL as is */
static bool name_ok(const char *s)
{
	return chars_ok(s, "-_.");
}


/** A media relay as media_relay names it: udp:IP:PORT, [IPv6] too */
static bool relay_ok(const char *s)
{
	return chars_ok(s, ".:[]");
}


static bool did_ok(const char *s)
{
	if (str_len(s) != DID_LEN)
		return false;

	for (; *s; s++) {
		if (!isxdigit((unsigned char)*s))
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


/** Words the positional argument takes */
static int arg_words(enum arg_kind kind)
{
	switch (kind) {

	case ARG_NONE:       return 0;
	case ARG_NODE_EVENT: return 2;
	default:             return 1;
	}
}


static const struct command *command_find(const struct args *a)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct command *c = &commands[i];
		int nword = 1 + (c->sub != NULL) + arg_words(c->arg);

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


static bool command_known(const char *word)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!str_cmp(word, commands[i].word))
			return true;
	}

	return false;
}


static int option_set(struct args *a, struct client *cl, int opt,
		      const char *val)
{
	switch (opt) {

	case 's':
		if (sa_decode(&cl->srv, val, strlen(val)))
			return problem(a, "bad server address '%s' (IP:PORT)",
				       val);
		return 0;

	case 't': cl->token = val;  return 0;
	case 'j': cl->json = true;  return 0;
	case 'T': a->tag = val;     a->given |= OPT_TAG;  return 0;
	case 'm': a->mode = val;    a->given |= OPT_MODE; return 0;
	case 'b': a->body = val;    a->given |= OPT_BODY; return 0;
	case 'o': a->to = val;      a->given |= OPT_TO;   return 0;
	case 'x': a->given |= OPT_FORCE; return 0;
	case 'f': a->file = val;    a->given |= OPT_FILE; return 0;
	case 'F': a->from = val;    a->given |= OPT_FROM; return 0;
	case 'R': a->ruri = val;    a->given |= OPT_RURI; return 0;
	case 'C': a->given |= OPT_CLUSTER;                return 0;

	case 'l':
		a->given |= OPT_LIMIT;
		return number_get(&a->limit, val, 1, LIMIT_MAX) ? 0 :
			problem(a, "--limit wants 1..%u, not '%s'",
				(unsigned)LIMIT_MAX, val);
	case 'r':
		a->given |= OPT_RATE;
		return number_get(&a->rate, val, 1, RATE_MAX) ? 0 :
			problem(a, "--rate wants a positive number, not '%s'",
				val);
	case 'c':
		a->given |= OPT_COUNT;
		return number_get(&a->count, val, 1, UINT32_MAX) ? 0 :
			problem(a, "--count wants a positive number, not '%s'",
				val);
	case 'p':
		a->given |= OPT_PERCENT;
		return number_get(&a->percent, val, 1, PERCENT_MAX) ? 0 :
			problem(a, "--percent wants 1..%u, not '%s'",
				(unsigned)PERCENT_MAX, val);
	default:
		return problem(a, "unknown option");
	}
}


/** The positional argument, by its kind */
static int arg_check(struct args *a, const struct command *c)
{
	switch (c->arg) {

	case ARG_TAG:
		a->tag = a->arg;
		return 0;

	case ARG_DID:
		return did_ok(a->arg) ? 0 :
			problem(a, "bad dialog id '%s' (16 hex digits)",
				a->arg);
	case ARG_LEVEL:
		return word_in(a->arg, levels) ? 0 :
			problem(a, "unknown log level '%s'", a->arg);
	case ARG_EVENT:
		if (word_in(a->arg, node_events))
			return problem(a, "%s needs a node", a->arg);
		return word_in(a->arg, events) ? 0 :
			problem(a, "unknown event '%s'", a->arg);
	case ARG_NODE_EVENT:
		if (!word_in(a->word[2], node_events))
			return problem(a, "unknown event '%s'", a->word[2]);
		return name_ok(a->arg) ? 0 :
			problem(a, "bad node name '%s'", a->arg);
	default:
		return 0;
	}
}


/** policy simulate: the invite's options with invite only, and both */
static int simulate_check(struct args *a, const struct command *c)
{
	const bool invite = c->arg == ARG_EVENT && !str_cmp(a->arg, "invite");

	if (!invite && (a->given & (OPT_FROM | OPT_TO | OPT_RURI)))
		return problem(a, "--from, --to, --ruri are for invite");
	if (invite && (!a->from || !a->to))
		return problem(a, "invite needs --from URI and --to URI");

	return 0;
}


/** media move: two relays, and at most one of --count and --tag */
static int media_check(struct args *a, const struct command *c)
{
	if (str_cmp(c->sub, "move"))
		return 0;
	if (!a->from || !a->to)
		return problem(a, "media move needs --from R and --to R");
	if (!relay_ok(a->from) || !relay_ok(a->to))
		return problem(a, "bad relay '%s' (udp:IP:PORT, as in "
			       "media_relay)", relay_ok(a->from) ? a->to :
			       a->from);
	if ((a->given & OPT_COUNT) && (a->given & OPT_TAG))
		return problem(a, "media move takes --count or --tag, not "
			       "both");

	return 0;
}


/** What getopt cannot check: option/command fit and value sets */
static int args_check(struct args *a, const struct command *c)
{
	if (a->given & ~c->opts)
		return problem(a, "option not valid for '%s'", c->word);

	(void)arg_check(a, c);

	if (a->tag && !name_ok(a->tag))
		return problem(a, "bad tag name '%s'", a->tag);
	if (c->run == cmd_simulate)
		return simulate_check(a, c);

	if (c->run == cmd_media)
		return media_check(a, c);
	if (a->to && !name_ok(a->to))
		return problem(a, "bad node name '%s'", a->to);
	if (a->mode && !word_in(a->mode, modes))
		return problem(a, "unknown mode '%s'", a->mode);
	if (a->body && !word_in(a->body, bodies))
		return problem(a, "unknown body '%s'", a->body);

	if (c->run == cmd_move) {
		if (!a->to)
			return problem(a, "move needs --to NODE");
		if (!(a->given & OPT_COUNT) == !(a->given & OPT_PERCENT))
			return problem(a, "move needs one of --count or "
				       "--percent");
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
		{"force",   no_argument,       NULL, 'x'},
		{"file",    required_argument, NULL, 'f'},
		{"from",    required_argument, NULL, 'F'},
		{"ruri",    required_argument, NULL, 'R'},
		{"cluster", no_argument,       NULL, 'C'},
		{"help",    no_argument,       NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const struct command *c;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "s:t:h", longopts, NULL)) != -1) {
		if (opt == 'h')
			a->help = true;
		else if (opt == '?')
			(void)problem(a, "bad option '%s'", argv[optind - 1]);
		else
			(void)option_set(a, cl, opt, optarg);
	}

	for (; optind < argc; optind++) {
		if (a->nword == (int)ARRAY_SIZE(a->word)) {
			(void)problem(a, "too many arguments");
			break;
		}
		a->word[a->nword++] = argv[optind];
	}

	if (a->help) {
		args_usage(stdout);
		return -1;
	}

	if (!a->nword && !a->problem[0]) {
		(void)re_fprintf(stderr, "rehomectl: no command\n\n");
		args_usage(stderr);
		return EXIT_USAGE;
	}

	c = a->nword ? command_find(a) : NULL;
	if (!c && a->nword && command_known(a->word[0]))
		(void)problem(a, "wrong arguments for '%s'", a->word[0]);
	else if (!c && a->nword)
		(void)problem(a, "bad command '%s'", a->word[0]);

	if (c) {
		a->arg = c->arg ? a->word[a->nword - 1] : NULL;
		(void)args_check(a, c);
	}

	if (a->problem[0])
		return problem_report(a);

	*cmdp = c;
	return 0;
}
