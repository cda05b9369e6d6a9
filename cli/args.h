/**
 * @file args.h  rehomectl: the command line and the command table
 */

#ifndef REHOMECTL_ARGS_H
#define REHOMECTL_ARGS_H

#include <stdio.h>

struct client;

enum opt_bit {
	OPT_TAG     = 1 << 0,
	OPT_LIMIT   = 1 << 1,
	OPT_MODE    = 1 << 2,
	OPT_BODY    = 1 << 3,
	OPT_RATE    = 1 << 4,
	OPT_TO      = 1 << 5,
	OPT_COUNT   = 1 << 6,
	OPT_PERCENT = 1 << 7,
	OPT_FILE    = 1 << 8,
	OPT_FROM    = 1 << 9,
	OPT_RURI    = 1 << 10,
	OPT_CLUSTER = 1 << 11,
	OPT_FORCE   = 1 << 12,
};

/** What the positional argument after a command's words is */
enum arg_kind {
	ARG_NONE = 0,
	ARG_TAG,               /* a sharing tag, into args.tag */
	ARG_DID,               /* a dialog id, 16 hex digits */
	ARG_LEVEL,             /* a log level */
	ARG_EVENT,             /* policy simulate: tick | invite */
	ARG_NODE_EVENT,        /* policy simulate: node-down|node-up NODE */
};

enum { ARGS_PROBLEM_SZ = 160 };

/** The command line, parsed */
struct args {
	const char *word[4];   /* command words */
	int nword;
	const char *arg;       /* the positional argument, if any */
	const char *tag;       /* positional T, or --tag */
	const char *mode;
	const char *body;
	const char *to;
	const char *file;      /* --file */
	const char *from;      /* --from */
	const char *ruri;      /* --ruri */
	uint32_t limit, rate, count, percent;
	unsigned given;        /* enum opt_bit */
	bool help;             /* -h, --help */
	char problem[ARGS_PROBLEM_SZ]; /* the first usage error, "" if none */
};

typedef int (cmd_h)(struct client *cl, const struct args *a);

struct command {
	const char *word;
	const char *sub;       /* required second word, or NULL */
	enum arg_kind arg;     /* positional argument after the words */
	unsigned opts;         /* options it accepts */
	bool cluster;          /* needs a cluster (Redis) on the node */
	cmd_h *run;
	const char *synopsis;  /* after "rehomectl ", for the usage */
};

int  args_parse(struct args *a, struct client *cl,
		const struct command **cmdp, int argc, char *argv[]);
void args_usage(FILE *f);

#endif
