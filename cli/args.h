/**
 * @file args.h  rehomectl: the command line and the command table
 */

#ifndef REHOMECTL_ARGS_H
#define REHOMECTL_ARGS_H

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
};

/** The command line, parsed */
struct args {
	const char *word[4];   /* command words */
	int nword;
	const char *tag;       /* positional T, or --tag */
	const char *mode;
	const char *body;
	const char *to;
	uint32_t limit, rate, count, percent;
	unsigned given;        /* enum opt_bit */
};

typedef int (cmd_h)(struct client *cl, const struct args *a);

struct command {
	const char *word;
	const char *sub;       /* required second word, or NULL */
	bool takes_tag;        /* positional T after the words */
	unsigned opts;         /* options it accepts */
	cmd_h *run;
};

int args_parse(struct args *a, struct client *cl,
	       const struct command **cmdp, int argc, char *argv[]);

#endif
