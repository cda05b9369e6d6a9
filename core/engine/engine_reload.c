/**
 * @file engine_reload.c  The configuration read again: SIGHUP and POST /v1/reload
 *
 * A reload reads the file the node started with, as a start reads it: a
 * file that does not load is refused with its FILE:LINE, and nothing
 * changes. conf_diff() then sorts what differs from the running
 * configuration. The keys that may change live are applied
 * (engine_conf_apply(), which loads the policy again, the same file or
 * another: a policy that does not load refuses the whole reload, as
 * `rehomed -t` would refuse the file). The others keep their running value
 * and are reported, as warnings and in the answer, at every reload until
 * a restart.
 *
 * SIGHUP is taken with a libuv signal handle, since libre's main loop only
 * owns SIGINT, SIGTERM and SIGALRM. The engine installs it before the
 * modules start: its default action would end the process.
 */
#include <signal.h>
#include <uv.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "json.h"
#include "uvre.h"
#include "ctl.h"
#include "engine.h"

enum { RELOAD_ERR_SZ = 512 };  /* FILE:LINE: problem, or the policy's */

/** What a reload changed and kept, as the answer lists them */
struct report {
	struct odict *changed;   /* ["key", ...] */
	struct odict *kept;      /* [{"key":, "reason":}, ...] */
	uint32_t changedc, keptc;
	int err;
};

static uv_signal_t *sighup;


static void report_destructor(void *arg)
{
	struct report *rp = arg;

	mem_deref(rp->changed);
	mem_deref(rp->kept);
}


static void diff_handler(const char *key, bool live, void *arg)
{
	struct report *rp = arg;
	char idx[JSON_INDEX_SZ];
	struct odict *item = NULL;

	if (live) {
		(void)re_snprintf(idx, sizeof(idx), "%u", rp->changedc++);
		rp->err |= odict_entry_add(rp->changed, idx, ODICT_STRING, key);
		return;
	}

	rp->err |= odict_alloc(&item, 2);
	if (!rp->err) {
		rp->err |= json_str_add(item, "key", key);
		rp->err |= json_str_add(item, "reason", "needs a restart");
	}
	rp->err |= json_array_add(rp->kept, rp->keptc++, ODICT_OBJECT, item);
}


static void report_log(const struct report *rp, const char *path)
{
	struct le *le;

	if (!rp->changedc && !rp->keptc)
		log_info("engine", "reload: %s: nothing changed", path);

	LIST_FOREACH(&rp->kept->lst, le) {
		const struct odict_entry *e = le->data;

		log_warn("engine", "reload: %s changed; it needs a restart, "
			 "the running value is kept",
			 odict_string(e->u.odict, "key"));
	}

	LIST_FOREACH(&rp->changed->lst, le) {
		const struct odict_entry *e = le->data;

		log_info("engine", "reload: %s changed", e->u.str);
	}
}


/**
 * Read the configuration file again and apply what may change live.
 *
 * @param odp    Out: {"changed": [keys], "kept": [{"key":, "reason":}]}
 * @param errbuf The reason when the file or its policy does not load
 *
 * @return 0, or the error of the load; the running config then stays
 */
int engine_reload(struct odict **odp, char *errbuf, size_t errsz)
{
	const struct rh_conf *cur = engine_conf();
	struct rh_conf *file, *run;
	struct odict *od = NULL;
	struct report *rp;
	int err;

	if (!odp || !errbuf || !errsz || !cur)
		return EINVAL;

	errbuf[0] = '\0';
	file = mem_zalloc(sizeof(*file), NULL);
	run  = mem_zalloc(sizeof(*run), NULL);
	rp   = mem_zalloc(sizeof(*rp), report_destructor);
	if (!file || !run || !rp) {
		err = ENOMEM;
		goto out;
	}

	err = conf_load(file, cur->path, errbuf, errsz);
	if (err)
		goto out;

	/* a worker reads the file as the worker it is (conf_workers.c) */
	err = conf_worker_apply(file, cur->worker);
	if (err)
		goto out;

	err  = odict_alloc(&rp->changed, 8);
	err |= odict_alloc(&rp->kept, 8);
	err |= odict_alloc(&od, 4);
	if (!err)
		err = conf_diff(run, cur, file, diff_handler, rp);
	if (!err)
		err = rp->err;
	if (!err) {
		err  = json_child_add(od, "changed", ODICT_ARRAY,
				      mem_ref(rp->changed));
		err |= json_child_add(od, "kept", ODICT_ARRAY,
				      mem_ref(rp->kept));
	}
	if (err)
		goto out;

	err = engine_conf_apply(run, errbuf, errsz);
	if (err)
		goto out;

	report_log(rp, cur->path);
	*odp = od;
	od = NULL;

 out:
	if (err) {
		if (!errbuf[0])
			(void)re_snprintf(errbuf, errsz, "%m", err);
		log_warn("engine", "reload refused: %s (the running "
			 "configuration stays)", errbuf);
	}
	mem_deref(od);
	mem_deref(rp);
	mem_deref(run);
	mem_deref(file);
	return err;
}


/** POST /v1/reload: the report, or 422 with the reason */
static void reload_route(struct http_conn *conn, const struct ctl_req *req,
			 void *arg)
{
	char errbuf[RELOAD_ERR_SZ] = "";
	struct odict *od = NULL;
	int err;
	(void)arg;

	if (pl_isset(&req->rest)) {
		(void)ctl_reply_error(conn, 404, "not found");
		return;
	}

	err = engine_reload(&od, errbuf, sizeof(errbuf));
	if (err == ENOMEM)
		(void)ctl_reply_error(conn, 500, "%s", errbuf);
	else if (err)
		(void)ctl_reply_error(conn, err == EBUSY ? 409 : 422, "%s",
				      errbuf);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


static void sighup_handler(uv_signal_t *h, int signum)
{
	char errbuf[RELOAD_ERR_SZ] = "";
	struct odict *od = NULL;
	(void)h;
	(void)signum;

	log_info("engine", "SIGHUP: reloading %s", engine_conf()->path);
	(void)engine_reload(&od, errbuf, sizeof(errbuf));
	mem_deref(od);
}


static void sighup_free(uv_handle_t *h)
{
	mem_deref(h);
}


/** SIGHUP and POST /v1/reload; needs uvre_init() first */
int engine_reload_init(void)
{
	uv_loop_t *loop = uvre_loop();
	int err;

	if (!loop)
		return EINVAL;
	if (sighup)
		return EALREADY;

	sighup = mem_zalloc(sizeof(*sighup), NULL);
	if (!sighup)
		return ENOMEM;

	err = -uv_signal_init(loop, sighup);
	if (err) {
		sighup = mem_deref(sighup);
		return err;
	}

	err = -uv_signal_start(sighup, sighup_handler, SIGHUP);
	uvre_kick();
	if (err)
		return err;

	return ctl_route_add("POST", "/v1/reload", reload_route, NULL);
}


void engine_reload_close(void)
{
	if (!sighup)
		return;

	if (!uvre_loop())
		mem_deref(sighup);  /* uvre_close() closed every handle */
	else if (!uv_is_closing((uv_handle_t *)sighup))
		uv_close((uv_handle_t *)sighup, sighup_free);
	sighup = NULL;
}
