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


/**
 * Call the node, then print its reply: the JSON as it came with --json,
 * else through `print`.
 */
int cmd_show(struct client *cl, const char *met, const char *path,
	     const struct odict *body, output_h *print)
{
	struct odict *od = NULL;
	int ret;

	ret = client_call(cl, met, path, body, &od);
	if (ret)
		return ret;

	if (cl->json)
		output_json(cl->body);
	else
		print(od);

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

/** Live nodes that run another policy than this one, on stderr */
static void drift_warn(const struct odict *od)
{
	const struct odict_entry *e;
	struct le *le;

	e = odict_get_type(od, ODICT_ARRAY, "policy_drift");
	if (!e || !odict_count(e->u.odict, false))
		return;

	(void)re_fprintf(stderr, "warning: policy drift: not running the "
			 "policy of %s:", odict_string(od, "node_id"));
	LIST_FOREACH(&e->u.odict->lst, le) {
		const struct odict_entry *n = le->data;

		if (n->type == ODICT_STRING)
			(void)re_fprintf(stderr, " %s", n->u.str);
	}
	(void)re_fprintf(stderr, " (rehomectl policy reload --cluster)\n");
}


int cmd_status(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	int ret;
	(void)a;

	ret = client_call(cl, "GET", "/v1/status", NULL, &od);
	if (ret)
		return ret;

	drift_warn(od);
	return reply_out(cl, od, "status");
}


int cmd_dialogs(struct client *cl, const struct args *a)
{
	char path[PATH_SZ];

	(void)re_snprintf(path, sizeof(path), "/v1/dialogs?limit=%u%s%s",
			  a->given & OPT_LIMIT ? a->limit : DIALOGS_DEFAULT,
			  a->tag ? "&tag=" : "", a->tag ? a->tag : "");

	return cmd_show(cl, "GET", path, NULL, output_dialogs);
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
	err |= str_opt(od, "from", a->from);
	err |= int_opt(od, a, OPT_COUNT, "count", a->count);
	err |= int_opt(od, a, OPT_PERCENT, "percent", a->percent);
	if (a->given & OPT_FORCE)
		err |= odict_entry_add(od, "force", ODICT_BOOL, true);

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


int cmd_undrain(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	bool was = false;
	int ret;
	(void)a;

	ret = client_call(cl, "POST", "/v1/undrain", NULL, &od);
	if (ret)
		return ret;

	(void)odict_get_boolean(od, &was, "was_draining");
	if (cl->json)
		output_json(cl->body);
	else
		(void)re_printf("%s\n", was ? "undrained: new calls are taken "
				"again" : "not draining: new calls are taken");

	mem_deref(od);
	return EXIT_OK;
}


int cmd_jobs(struct client *cl, const struct args *a)
{
	(void)a;

	return cmd_show(cl, "GET", "/v1/jobs", NULL, output_jobs);
}


/** media relays (GET /v1/media/relays), media move (a job) */
int cmd_media(struct client *cl, const struct args *a)
{
	char what[WHAT_SZ];

	if (!str_cmp(a->word[1], "move")) {
		(void)re_snprintf(what, sizeof(what), "media move from %s to "
				  "%s", a->from, a->to);
		return job_post(cl, a, "/v1/media/move", what);
	}

	return cmd_show(cl, "GET", "/v1/media/relays", NULL, output_relays);
}


/** dialog show DID (GET), dialog end DID (DELETE: BYE to both legs) */
int cmd_dialog(struct client *cl, const struct args *a)
{
	const bool end = !str_cmp(a->word[1], "end");
	struct odict *od = NULL;
	char path[PATH_SZ];
	int ret;

	(void)re_snprintf(path, sizeof(path), "/v1/dialogs/%s", a->arg);

	ret = client_call(cl, end ? "DELETE" : "GET", path, NULL, &od);
	if (ret)
		return ret;

	if (cl->json)
		output_json(cl->body);
	else if (end)
		(void)re_printf("dialog %s ended: BYE sent to both legs\n",
				a->arg);
	else
		output_object(od);

	mem_deref(od);
	return EXIT_OK;
}


/** policy reload [--cluster]: fails if any node kept its old policy */
int cmd_policy(struct client *cl, const struct args *a)
{
	struct odict *body = NULL, *od = NULL;
	bool ok = true;
	int ret;

	if (!(a->given & OPT_CLUSTER))
		return post(cl, "/v1/policy/reload", NULL, "policy reload");

	if (odict_alloc(&body, 2) ||
	    odict_entry_add(body, "cluster", ODICT_BOOL, true)) {
		(void)re_fprintf(stderr, "rehomectl: out of memory\n");
		mem_deref(body);
		return EXIT_FAILED;
	}

	ret = client_call(cl, "POST", "/v1/policy/reload", body, &od);
	mem_deref(body);
	if (ret)
		return ret;

	(void)odict_get_boolean(od, &ok, "reloaded");
	if (cl->json)
		output_json(cl->body);
	else
		output_object(od);

	mem_deref(od);
	return ok ? EXIT_OK : EXIT_FAILED;
}


int cmd_reload(struct client *cl, const struct args *a)
{
	(void)a;
	return post(cl, "/v1/reload", NULL, "reload");
}


int cmd_log_level(struct client *cl, const struct args *a)
{
	struct odict *body = NULL, *od = NULL;
	int ret;

	if (odict_alloc(&body, 2) ||
	    odict_entry_add(body, "level", ODICT_STRING, a->arg)) {
		(void)re_fprintf(stderr, "rehomectl: out of memory\n");
		mem_deref(body);
		return EXIT_FAILED;
	}

	ret = client_call(cl, "POST", "/v1/log_level", body, &od);
	mem_deref(body);
	if (ret)
		return ret;

	if (cl->json)
		output_json(cl->body);
	else
		(void)re_printf("log level %s\n", odict_string(od, "level") ?
				odict_string(od, "level") : a->arg);

	mem_deref(od);
	return EXIT_OK;
}


/** {"rehomectl": V, "rehomed": V, "node_id": N}, what is known of it */
static void version_json(const char *ver, const char *node)
{
	struct odict *od = NULL;
	int err;

	err  = odict_alloc(&od, 4);
	err |= odict_entry_add(od, "rehomectl", ODICT_STRING, REHOME_VERSION);
	if (ver)
		err |= odict_entry_add(od, "rehomed", ODICT_STRING, ver);
	if (node)
		err |= odict_entry_add(od, "node_id", ODICT_STRING, node);

	if (err)
		(void)re_fprintf(stderr, "rehomectl: %m\n", err);
	else
		(void)re_printf("%H\n", json_encode_odict, od);

	mem_deref(od);
}


/** This program's version, then the node's (exit 1 if it cannot say) */
int cmd_version(struct client *cl, const struct args *a)
{
	struct odict *od = NULL;
	const char *node, *ver;
	int ret;
	(void)a;

	if (!cl->json)
		(void)re_printf("rehomectl %s\n", REHOME_VERSION);

	ret = client_call(cl, "GET", "/v1/status", NULL, &od);
	ver  = od ? odict_string(od, "version") : NULL;
	node = od ? odict_string(od, "node_id") : NULL;

	if (cl->json)
		version_json(ver, node);
	else if (ver)
		(void)re_printf("rehomed %s (node %s at %J)\n", ver,
				node ? node : "?", &cl->srv);

	mem_deref(od);
	return ret;
}


int cmd_help(struct client *cl, const struct args *a)
{
	(void)cl;
	(void)a;

	args_usage(stdout);
	return EXIT_OK;
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

	cl.needs_cluster = cmd->cluster;
	ret = cmd->run(&cl, &a);

 out:
	client_close(&cl);
	libre_close();

	return ret;
}
