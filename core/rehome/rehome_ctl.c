/**
 * @file rehome_ctl.c  Re-homing in the control API: routes and job JSON
 *
 * POST /v1/rehome, /v1/move and /v1/drain start a job; GET /v1/jobs,
 * /v1/jobs/ID and /v1/jobs/ID/dialogs show them; POST /v1/undrain ends
 * a drain; "rehome" in GET /v1/status tells whether this node drains and
 * how much is in flight.
 * A POST is answered once its job runs, through the job's ready handler:
 * at once for move and drain, once the tags are held for rehome (202
 * with the job), or when they could not be taken (409 when a live node
 * holds one and the request is not forced, or another node took it
 * meanwhile, else 503, with the job's error text).
 * The connection waits here, not in the job: jobs know nothing of HTTP.
 *
 * A job's JSON is built from its counters at each request, so it costs
 * nothing while nobody asks; the per-dialog list is cut at ?limit=N
 * (default LIST_DEFAULT) so that a GET on a large job stays small.
 */
#include <string.h>
#include <re.h>
#include "json.h"
#include "did.h"
#include "cluster.h"
#include "shtag.h"
#include "ctl.h"
#include "dialog.h"
#include "mrelay.h"
#include "anchor.h"
#include "rehome.h"
#include "rehome_int.h"

enum {
	LIST_DEFAULT    = 1000,   /* dialogs in GET /v1/jobs/ID/dialogs */
};

/** A POST waiting for its job to run */
struct wait {
	struct le le;             /* waits */
	struct http_conn *conn;
};

static struct list waits;


static void wait_destructor(void *arg)
{
	struct wait *w = arg;

	list_unlink(&w->le);
	mem_deref(w->conn);
}


/* ---- JSON ------------------------------------------------------------- */


static int reasons_add(struct odict *od, const struct rehome_job *job)
{
	struct odict *r;
	struct le *le;
	int err;

	err = odict_alloc(&r, 8);
	if (err)
		return err;

	LIST_FOREACH(&job->reasons, le) {
		const struct rehome_reason *rc = le->data;

		err |= json_int_add(r, rc->name, rc->n);
	}

	return err | json_child_add(od, "reasons", ODICT_OBJECT, r);
}


/**
 * A job as JSON: {"job","kind","state","total","moved","failed","ended",
 * "pending","reasons",...}. `total` counts the dialogs to move: those
 * that ended on their own are left out of it.
 */
int rehome_job_odict(struct odict **odp, const struct rehome_job *job)
{
	uint64_t end = job->finished ? job->finished : tmr_jiffies();
	struct odict *od;
	int err;

	if (!odp || !job)
		return EINVAL;

	err = odict_alloc(&od, 32);
	if (err)
		return err;

	err |= json_int_add(od, "job", job->id);
	err |= json_str_add(od, "kind", job->ops->name);
	err |= json_str_add(od, "state", job->phase == REHOME_JOB_DONE ?
			    "done" : "running");
	err |= json_str_add(od, "tag", job->tag);
	if (job->node)
		err |= json_str_add(od, job->ops->peer, job->node);
	if (job->media_from)
		err |= json_str_add(od, "from", job->media_from);
	else if (job->opts.media_to[0])
		err |= json_str_add(od, "media_to", job->opts.media_to);
	err |= json_str_add(od, "mode", rehome_mode_name(job->opts.mode));
	err |= json_str_add(od, "body", rehome_body_name(job->opts.body));
	err |= json_int_add(od, "rate", job->opts.rate);
	err |= json_int_add(od, "total",
			    job->itemc - job->count[REHOME_ENDED]);
	err |= json_int_add(od, "moved", job->count[REHOME_MOVED]);
	err |= json_int_add(od, "failed", job->count[REHOME_FAILED]);
	err |= json_int_add(od, "ended", job->count[REHOME_ENDED]);
	err |= json_int_add(od, "pending",
			    job->itemc - rehome_job_done_count(job));
	err |= json_int_add(od, "elapsed_ms", end - job->started);
	err |= reasons_add(od, job);
	err |= json_str_add(od, "error", job->error);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


static int item_odict(struct odict **odp, const struct rehome_item *it)
{
	char did[DID_STRSZ];
	struct odict *o;
	int err;

	err = odict_alloc(&o, 4);
	if (err)
		return err;

	err |= did_encode(did, sizeof(did), it->did);
	err |= json_str_add(o, "did", did);
	err |= json_str_add(o, "outcome", rehome_outcome_name(it->outcome));
	if (it->reason[0])
		err |= json_str_add(o, "reason", it->reason);

	if (err)
		mem_deref(o);
	else
		*odp = o;

	return err;
}


/** {"job":ID,"dialogs":[{"did","outcome","reason"}...]}, at most limit */
static int job_dialogs_odict(struct odict **odp, const struct rehome_job *job,
			     uint32_t limit)
{
	struct odict *od = NULL, *arr = NULL;
	int err;

	err = odict_alloc(&od, 4) | odict_alloc(&arr, 16);
	for (uint32_t i = 0; i < job->itemc && i < limit && !err; i++) {
		struct odict *o = NULL;

		err = item_odict(&o, &job->itemv[i]);
		err |= json_array_add(arr, i, ODICT_OBJECT, o);
	}

	err |= json_int_add(od, "job", job->id);
	err |= json_child_add(od, "dialogs", ODICT_ARRAY, mem_ref(arr));
	mem_deref(arr);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/* ---- control API -------------------------------------------------------- */


static void reply_job(struct http_conn *conn, uint16_t scode,
		      const struct rehome_job *job)
{
	struct odict *od = NULL;
	int err;

	err = rehome_job_odict(&od, job);
	if (err)
		(void)ctl_reply_error(conn, 500, "job: %m", err);
	else
		(void)ctl_reply_json(conn, scode, od);

	mem_deref(od);
}


/** A job's ready handler: answer the POST that started it */
static void job_ready(int err, const struct rehome_job *job, void *arg)
{
	struct wait *w = arg;

	if (err)
		(void)ctl_reply_error(w->conn, err == EBUSY || err == ESTALE ?
				      409 : 503, "%s",
				      job->error ? job->error : "job failed");
	else
		reply_job(w->conn, 202, job);

	mem_deref(w);
}


/** Keep the connection until the job about to start runs */
static struct wait *wait_alloc(struct http_conn *conn)
{
	struct wait *w = mem_zalloc(sizeof(*w), wait_destructor);

	if (!w)
		return NULL;

	w->conn = mem_ref(conn);
	list_append(&waits, &w->le, w);
	return w;
}


static int opts_decode(struct rehome_opts *opts, const struct odict *body,
		       const char **errp)
{
	const char *s;
	uint64_t n;

	memset(opts, 0, sizeof(*opts));
	if (!body)
		return 0;

	s = odict_string(body, "mode");
	if (s && rehome_mode_decode(&opts->mode, s)) {
		*errp = "unknown mode";
		return EINVAL;
	}

	s = odict_string(body, "body");
	if (s && rehome_body_decode(&opts->body, s)) {
		*errp = "unknown body";
		return EINVAL;
	}

	if (odict_get_number(body, &n, "rate")) {
		if (n > REHOME_RATE_MAX) {
			*errp = "rate out of range";
			return EINVAL;
		}
		opts->rate = (uint32_t)n;
	}

	(void)odict_get_boolean(body, &opts->all, "all");
	(void)odict_get_boolean(body, &opts->force, "force");

	s = odict_string(body, "media_to");
	if (s && !mrelay_find(anchor_relays(), s)) {
		*errp = "media_to: no such media relay";
		return EINVAL;
	}
	str_ncpy(opts->media_to, s ? s : "", sizeof(opts->media_to));

	return 0;
}


/** POST /v1/rehome {"tag","mode","body","rate","all","force"} */
static void post_rehome(struct http_conn *conn, const struct ctl_req *req,
			void *arg)
{
	struct rehome_opts opts;
	struct wait *w;
	const char *tag, *why = NULL;
	int err;
	(void)arg;

	tag = req->body ? odict_string(req->body, "tag") : NULL;
	if (!str_isset(tag)) {
		(void)ctl_reply_error(conn, 400, "\"tag\" is required");
		return;
	}

	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	if (rehome_clustered() && !shtag_holder(tag)) {
		(void)ctl_reply_error(conn, 404, "no such tag: %s", tag);
		return;
	}

	w = wait_alloc(conn);
	err = w ? rehome_tag(tag, &opts, job_ready, NULL, w) : ENOMEM;
	if (err) {
		mem_deref(w);
		(void)ctl_reply_error(conn, 500, "rehome %s: %m", tag, err);
	}
}


static void reply_peer_error(struct http_conn *conn, int err, const char *to)
{
	const char *why = rehome_peer_check(to);

	if (err == EINVAL)
		(void)ctl_reply_error(conn, 400, "bad request");
	else if (!rehome_clustered())
		(void)ctl_reply_error(conn, 409, "no cluster (this node runs "
				      "without redis)");
	else if (rehome_clustered() && to && !cluster_node_find(to))
		(void)ctl_reply_error(conn, 404, "no such node: %s", to);
	else if (why)
		(void)ctl_reply_error(conn, 409, "%s%s%s", to ? to : "",
				      to ? ": " : "", why);
	else
		(void)ctl_reply_error(conn, 500, "%m", err);
}


/** POST /v1/move {"tag","to","count"|"percent","mode","body","rate"} */
static void post_move(struct http_conn *conn, const struct ctl_req *req,
		      void *arg)
{
	uint64_t count = 0, percent = 0;
	struct rehome_opts opts;
	struct wait *w;
	const char *tag, *to, *why = NULL;
	int err;
	(void)arg;

	tag = req->body ? odict_string(req->body, "tag") : NULL;
	to = req->body ? odict_string(req->body, "to") : NULL;
	if (!str_isset(tag) || !str_isset(to)) {
		(void)ctl_reply_error(conn, 400, "\"tag\" and \"to\" are "
				      "required");
		return;
	}

	(void)odict_get_number(req->body, &count, "count");
	(void)odict_get_number(req->body, &percent, "percent");
	if (!count == !percent || percent > 100 || count > UINT32_MAX) {
		(void)ctl_reply_error(conn, 400, "give \"count\" or "
				      "\"percent\" (1-100)");
		return;
	}

	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	w = wait_alloc(conn);
	err = w ? rehome_move(tag, to, (uint32_t)count, (uint32_t)percent,
			      &opts, job_ready, NULL, w) : ENOMEM;
	if (err) {
		mem_deref(w);
		reply_peer_error(conn, err, to);
	}
}


static void reply_media_error(struct http_conn *conn, int err,
			      const char *from, const char *to)
{
	switch (err) {

	case ENOENT:
		(void)ctl_reply_error(conn, 404, "no such media relay: %s or "
				      "%s (see GET /v1/media/relays)", from,
				      to);
		break;

	case EINVAL:
		(void)ctl_reply_error(conn, 400, "\"from\" and \"to\" are "
				      "the same relay");
		break;

	case ENODEV:
		(void)ctl_reply_error(conn, 409, "%s is down", to);
		break;

	default:
		(void)ctl_reply_error(conn, 500, "media move: %m", err);
		break;
	}
}


/** POST /v1/media/move {"from","to","count"|"tag","rate"} */
static void post_media_move(struct http_conn *conn, const struct ctl_req *req,
			    void *arg)
{
	struct rehome_opts opts;
	uint64_t count = 0;
	struct wait *w;
	const char *from, *to, *tag, *why = NULL;
	int err;
	(void)arg;

	from = req->body ? odict_string(req->body, "from") : NULL;
	to = req->body ? odict_string(req->body, "to") : NULL;
	if (!str_isset(from) || !str_isset(to)) {
		(void)ctl_reply_error(conn, 400, "\"from\" and \"to\" are "
				      "required");
		return;
	}

	tag = odict_string(req->body, "tag");
	(void)odict_get_number(req->body, &count, "count");
	if (count > UINT32_MAX || (count && tag)) {
		(void)ctl_reply_error(conn, 400, "give \"count\" or "
				      "\"tag\", or neither (every call)");
		return;
	}

	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	w = wait_alloc(conn);
	err = w ? rehome_media(from, to, (uint32_t)count, tag, &opts,
			       job_ready, NULL, w) : ENOMEM;
	if (err) {
		mem_deref(w);
		reply_media_error(conn, err, from, to);
	}
}


/** POST /v1/drain {"to","mode","body","rate"} */
static void post_drain(struct http_conn *conn, const struct ctl_req *req,
		       void *arg)
{
	struct rehome_opts opts;
	struct wait *w;
	const char *to, *why = NULL;
	int err;
	(void)arg;

	to = req->body ? odict_string(req->body, "to") : NULL;
	if (opts_decode(&opts, req->body, &why)) {
		(void)ctl_reply_error(conn, 400, "%s", why);
		return;
	}

	w = wait_alloc(conn);
	err = w ? rehome_drain(to, &opts, job_ready, NULL, w) : ENOMEM;
	if (err) {
		mem_deref(w);
		reply_peer_error(conn, err, to);
	}
}


/** POST /v1/undrain: {"draining":false,"was_draining":bool} */
static void post_undrain(struct http_conn *conn, const struct ctl_req *req,
			 void *arg)
{
	struct odict *od = NULL;
	bool was;
	int err;
	(void)req;
	(void)arg;

	was = rehome_undrain();

	err  = odict_alloc(&od, 2);
	err |= json_bool_add(od, "draining", false);
	err |= json_bool_add(od, "was_draining", was);
	if (err)
		(void)ctl_reply_error(conn, 500, "undrain: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** GET /v1/jobs: {"jobs":[job...]}, oldest first */
static void get_jobs(struct http_conn *conn, const struct ctl_req *req,
		     void *arg)
{
	struct odict *od = NULL, *arr = NULL;
	struct le *le;
	int err;
	(void)req;
	(void)arg;

	err = odict_alloc(&od, 4) | odict_alloc(&arr, 16);
	for (le = rehome_job_list()->head; le && !err; le = le->next) {
		const struct rehome_job *job = le->data;
		struct odict *o = NULL;

		err = rehome_job_odict(&o, job);
		err |= json_array_add(arr, job->id, ODICT_OBJECT, o);
	}

	err |= json_child_add(od, "jobs", ODICT_ARRAY, mem_ref(arr));

	if (err)
		(void)ctl_reply_error(conn, 500, "jobs: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(arr);
	mem_deref(od);
}


/** ?limit=N of a request, else LIST_DEFAULT */
static uint32_t query_limit(const struct http_msg *msg)
{
	struct pl n;

	if (re_regex(msg->prm.p, msg->prm.l, "limit=[0-9]+", &n))
		return LIST_DEFAULT;

	return pl_u32(&n);
}


/** "ID" or "ID/dialogs" */
static int job_path_decode(struct pl *id, struct pl *sub,
			   const struct pl *rest)
{
	struct pl slash;

	if (re_regex(rest->p, rest->l, "[0-9]+[/]*[a-z]*", id, &slash, sub))
		return ENOENT;

	if (id->p != rest->p || sub->p + sub->l != rest->p + rest->l)
		return ENOENT;

	if (pl_isset(sub) ? slash.l != 1 || pl_strcmp(sub, "dialogs") :
	    slash.l != 0)
		return ENOENT;

	return 0;
}


/** GET /v1/jobs/ID and GET /v1/jobs/ID/dialogs[?limit=N] */
static void get_job(struct http_conn *conn, const struct ctl_req *req,
		    void *arg)
{
	const struct rehome_job *job;
	struct odict *od = NULL;
	struct pl id, sub;
	int err;
	(void)arg;

	if (job_path_decode(&id, &sub, &req->rest)) {
		(void)ctl_reply_error(conn, 404, "no such job: %r",
				      &req->rest);
		return;
	}

	job = rehome_job_find(pl_u32(&id));
	if (!job) {
		(void)ctl_reply_error(conn, 404, "no such job: %r", &id);
		return;
	}

	if (!pl_isset(&sub)) {
		reply_job(conn, 200, job);
		return;
	}

	err = job_dialogs_odict(&od, job, query_limit(req->msg));
	if (err)
		(void)ctl_reply_error(conn, 500, "job %r: %m", &id, err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** "rehome" in GET /v1/status */
static int status_add(struct odict *status, void *arg)
{
	uint32_t running = 0;
	struct odict *od;
	struct le *le;
	int err;
	(void)arg;

	LIST_FOREACH(rehome_job_list(), le) {
		const struct rehome_job *job = le->data;

		running += job->phase != REHOME_JOB_DONE;
	}

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= json_bool_add(od, "draining", rehome_draining(NULL));
	err |= json_int_add(od, "jobs_running", running);
	err |= json_int_add(od, "inflight", rehome_calls_inflight());

	return err | json_child_add(status, "rehome", ODICT_OBJECT, od);
}


int rehome_ctl_init(void)
{
	int err;

	err  = ctl_route_add("POST", "/v1/rehome", post_rehome, NULL);
	err |= ctl_route_add("POST", "/v1/move", post_move, NULL);
	err |= ctl_route_add("POST", "/v1/drain", post_drain, NULL);
	err |= ctl_route_add("POST", "/v1/media/move", post_media_move, NULL);
	err |= ctl_route_add("POST", "/v1/undrain", post_undrain, NULL);
	err |= ctl_route_add("GET", "/v1/jobs", get_jobs, NULL);
	err |= ctl_route_add("GET", "/v1/jobs/", get_job, NULL);
	err |= ctl_status_add(status_add, NULL);

	return err;
}


/** After the jobs: POSTs still waiting get no answer */
void rehome_ctl_close(void)
{
	list_flush(&waits);
}
