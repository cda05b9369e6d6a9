/**
 * @file shtag_ctl.c  Sharing tags over the control API: /v1/shtags/T/...
 *
 * POST /v1/shtags/TAG/activate and /v1/shtags/TAG/release run the same
 * compare-and-set as the policy API (shtag.c) and answer when its outcome
 * is applied on this node, or at once when it cannot start. The HTTP
 * status tells the kinds of failure apart: 409 someone else holds the tag
 * (or no cluster), 503 try again later (not synced, Redis down), 500 the
 * rest. Only the public API (shtag.h) is used: the route keeps no state
 * of its own but a reference to the connection while the request runs.
 */
#include <re.h>
#include "log.h"
#include "conf.h"
#include "ctl.h"
#include "cluster.h"
#include "shtag.h"
#include "shtag_int.h"


static int result_reply(struct http_conn *conn, int err, const char *name,
			bool active, uint64_t epoch, const char *holder)
{
	struct odict *od;

	switch (err) {

	case 0:
		break;
	case ESTALE:
	case EBUSY:
		return ctl_reply_error(conn, 409, "%s: %s holds it at epoch "
				       "%llu", name, str_isset(holder) ?
				       holder : "nobody",
				       (unsigned long long)epoch);
	case ENOTSUP:
		return ctl_reply_error(conn, 409, "no cluster configured");
	case EAGAIN:
		return ctl_reply_error(conn, 503, "not synced yet");
	case ENOTCONN:
		return ctl_reply_error(conn, 503, "redis is down");
	default:
		return ctl_reply_error(conn, 500, "%s: %m", name, err);
	}

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err  = odict_entry_add(od, "tag", ODICT_STRING, name);
	err |= odict_entry_add(od, "active", ODICT_BOOL, active);
	err |= odict_entry_add(od, "epoch", ODICT_INT, (int64_t)epoch);
	err |= odict_entry_add(od, "holder", ODICT_STRING, holder);
	err |= odict_entry_add(od, "node", ODICT_STRING, cluster_node_id());
	if (!err)
		err = ctl_reply_json(conn, 200, od);

	mem_deref(od);
	return err;
}


static void ctl_result(int err, const char *name, bool active, uint64_t epoch,
		       const char *holder, void *arg)
{
	struct http_conn *conn = arg;

	(void)result_reply(conn, err, name, active, epoch, holder);
	mem_deref(conn);
}


static void ctl_handler(struct http_conn *conn, const struct ctl_req *req,
			void *arg)
{
	struct pl name, verb;
	char tag[CONF_SHTAG_SZ];
	int err;
	(void)arg;

	if (re_regex(req->rest.p, req->rest.l, "[^/]+/[^/]+", &name, &verb) ||
	    name.p != req->rest.p || name.l + 1 + verb.l != req->rest.l ||
	    name.l >= sizeof(tag)) {
		(void)ctl_reply_error(conn, 404, "use /v1/shtags/TAG/activate "
				      "or /v1/shtags/TAG/release");
		return;
	}

	pl_strcpy(&name, tag, sizeof(tag));

	if (!pl_strcmp(&verb, "activate"))
		err = shtag_activate(tag, ctl_result, mem_ref(conn));
	else if (!pl_strcmp(&verb, "release"))
		err = shtag_release(tag, ctl_result, mem_ref(conn));
	else {
		(void)ctl_reply_error(conn, 404, "unknown action: %r", &verb);
		return;
	}

	if (err) {
		(void)result_reply(conn, err, tag, false, shtag_epoch(tag),
				   shtag_holder(tag));
		mem_deref(conn);   /* the reference the handler would own */
	}
}


/** Register the routes; shtag_init() calls it. */
int shtag_ctl_init(void)
{
	return ctl_route_add("POST", "/v1/shtags/", ctl_handler, NULL);
}
