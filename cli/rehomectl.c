/**
 * @file rehomectl.c  Command-line client of the rehomed control API
 *
 * Each command is one HTTP call (plus polling for long operations): the
 * command line and the table of commands are in args.c, the calls in
 * client.c, the output (the server's JSON with --json, else a generic
 * renderer for people) in output.c, and following a job in job.c. This
 * file holds what each command sends, and main.
 *
 * Exit status: 0 success, 1 failed operation (including an unreachable
 * node, a refused token and a job with failed dialogs), 2 bad usage.
 */
#include <stdlib.h>
#include <re.h>
#include "rehomectl.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "job.h"

enum {
	CTL_PORT        = 8060,   /* the server's default ctl_listen */
	DIALOGS_DEFAULT = 100,    /* dialogs listed without --limit */
	PATH_SZ         = 256,
	WHAT_SZ         = 160,    /* "move <tag> to <node>" */
};


/** Print a reply the usual way; a job reply is followed to its end */
static int reply_out(struct client *cl, struct odict *od, const char *what)
{
	if (odict_lookup(od, "job"))
		return job_follow(cl, od, what);

	if (cl->json)
		output_json(cl->body);
	else
		output_object(od);

	mem_deref(od);
	return EXIT_OK;
}


static int post(struct client *cl, const char *path, const struct odict *body,
		const char *what)
{
	struct odict *od = NULL;
	int ret;

	ret = client_call(cl, "POST", path, body, &od);
	if (ret)
		return ret;

	return reply_out(cl, od, what);
}


/* ---- commands ---- */

int cmd_status(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	int ret;
	(void)a;

	ret = client_call(cl, "GET", "/v1/status", NULL, &od);
	if (ret)
		return ret;

	return reply_out(cl, od, "status");
}


int cmd_dialogs(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	char path[PATH_SZ];
	int ret;

	(void)re_snprintf(path, sizeof(path), "/v1/dialogs?limit=%u%s%s",
			  a->given & OPT_LIMIT ? a->limit : DIALOGS_DEFAULT,
			  a->tag ? "&tag=" : "", a->tag ? a->tag : "");

	ret = client_call(cl, "GET", path, NULL, &od);
	if (ret)
		return ret;

	if (cl->json)
		output_json(cl->body);
	else
		output_dialogs(od);

	mem_deref(od);
	return EXIT_OK;
}


int cmd_shtag(struct client *cl, const struct args *a)
{
	char path[PATH_SZ], what[WHAT_SZ];

	(void)re_snprintf(path, sizeof(path), "/v1/shtags/%s/%s",
			  a->tag, a->word[1]);
	(void)re_snprintf(what, sizeof(what), "shtag %s %s",
			  a->word[1], a->tag);

	return post(cl, path, NULL, what);
}


static int str_opt(struct odict *od, const char *key, const char *val)
{
	return val ? odict_entry_add(od, key, ODICT_STRING, val) : 0;
}


static int int_opt(struct odict *od, const struct args *a, unsigned bit,
		   const char *key, uint32_t val)
{
	return (a->given & bit) ?
		odict_entry_add(od, key, ODICT_INT, (int64_t)val) : 0;
}


/** POST a JSON body built from the options, then follow the job */
static int job_post(struct client *cl, const struct args *a, const char *path,
		    const char *what)
{
	struct odict *od = NULL;
	int err, ret;

	err = odict_alloc(&od, 8);
	if (err)
		goto out;

	err |= str_opt(od, "tag", a->tag);
	err |= str_opt(od, "mode", a->mode);
	err |= str_opt(od, "body", a->body);
	err |= int_opt(od, a, OPT_RATE, "rate", a->rate);
	err |= str_opt(od, "to", a->to);
	err |= int_opt(od, a, OPT_COUNT, "count", a->count);
	err |= int_opt(od, a, OPT_PERCENT, "percent", a->percent);

 out:
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: %m\n", err);
		ret = EXIT_FAILED;
	}
	else {
		ret = post(cl, path, od, what);
	}

	mem_deref(od);
	return ret;
}


int cmd_rehome(struct client *cl, const struct args *a)
{
	char what[WHAT_SZ];

	(void)re_snprintf(what, sizeof(what), "rehome %s", a->tag);
	return job_post(cl, a, "/v1/rehome", what);
}


int cmd_move(struct client *cl, const struct args *a)
{
	char what[WHAT_SZ];

	(void)re_snprintf(what, sizeof(what), "move %s to %s", a->tag, a->to);
	return job_post(cl, a, "/v1/move", what);
}


int cmd_drain(struct client *cl, const struct args *a)
{
	return job_post(cl, a, "/v1/drain", "drain");
}


int cmd_policy(struct client *cl, const struct args *a)
{
	(void)a;
	return post(cl, "/v1/policy/reload", NULL, "policy reload");
}


int main(int argc, char *argv[])
{
	static struct client cl;
	struct args a = {0};
	const struct command *cmd = NULL;
	int ret, err;

	err = libre_init();
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: libre_init: %m\n", err);
		return EXIT_FAILED;
	}

	(void)sa_set_str(&cl.srv, "127.0.0.1", CTL_PORT);
	cl.token = getenv("REHOME_TOKEN");

	ret = args_parse(&a, &cl, &cmd, argc, argv);
	if (ret) {
		ret = ret < 0 ? EXIT_OK : ret;
		goto out;
	}

	err = client_init(&cl);
	if (err) {
		(void)re_fprintf(stderr, "rehomectl: http client: %m\n", err);
		ret = EXIT_FAILED;
		goto out;
	}

	ret = cmd->run(&cl, &a);

 out:
	client_close(&cl);
	libre_close();

	return ret;
}
