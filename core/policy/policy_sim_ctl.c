/**
 * @file policy_sim_ctl.c  POST /v1/policy/simulate: the dry run in the control API
 *
 * Decodes the request into a policy_sim_req (policy_sim.c runs it) and
 * answers with its report: 200 with the actions, 400 for a request that
 * does not say what to simulate, 404 without a policy to run, 422 for a
 * candidate that does not load or a hook that fails (FILE:LINE).
 */
#include <string.h>
#include <re.h>
#include <lua.h>
#include "log.h"
#include "json.h"
#include "ctl.h"
#include "policy.h"
#include "policy_int.h"


/** A string member, absent or null allowed; false: another type */
static bool str_member(const char **sp, const struct odict *od,
		       const char *key)
{
	const struct odict_entry *e = od ? odict_lookup(od, key) : NULL;

	*sp = NULL;
	if (!e || e->type == ODICT_NULL)
		return true;
	if (e->type != ODICT_STRING)
		return false;

	*sp = e->u.str;
	return true;
}


static int req_decode(struct policy_sim_req *sr, const struct odict *body,
		      char *errbuf, size_t errsz)
{
	const struct odict_entry *inv;
	const struct odict *io;
	const char *event;

	memset(sr, 0, sizeof(*sr));
	if (!body || !str_member(&event, body, "event") ||
	    policy_sim_event_decode(&sr->event, event)) {
		str_ncpy(errbuf, "event: one of node_down, node_up, tick, "
			 "invite", errsz);
		return EBADMSG;
	}

	if (!str_member(&sr->file, body, "file") ||
	    !str_member(&sr->node, body, "node")) {
		str_ncpy(errbuf, "file, node: strings (file may be null)",
			 errsz);
		return EBADMSG;
	}

	if (sr->event != POLICY_SIM_INVITE)
		return 0;

	inv = odict_lookup(body, "invite");
	io = inv && inv->type == ODICT_OBJECT ? inv->u.odict : NULL;
	if (!io || !str_member(&sr->from, io, "from") ||
	    !str_member(&sr->to, io, "to") ||
	    !str_member(&sr->ruri, io, "ruri") ||
	    !str_member(&sr->source, io, "source") ||
	    !str_member(&sr->listener, io, "listener") ||
	    !sr->from || !sr->to) {
		str_ncpy(errbuf, "invite: {\"from\": URI, \"to\": URI, "
			 "\"ruri\": URI (optional)}", errsz);
		return EBADMSG;
	}

	return 0;
}


static void simulate_route(struct http_conn *conn, const struct ctl_req *req,
			   void *arg)
{
	struct policy_sim_req sr;
	struct odict *od = NULL;
	char msg[POLICY_ERR_SZ];
	int err;
	(void)arg;

	if (pl_isset(&req->rest)) {
		(void)ctl_reply_error(conn, 404, "not found");
		return;
	}

	err = req_decode(&sr, req->body, msg, sizeof(msg));
	if (!err)
		err = policy_simulate(&od, &sr, msg, sizeof(msg));
	if (err) {
		(void)ctl_reply_error(conn, err == ENOENT ? 404
					    : err == EBADMSG ? 400 : 422,
				      "%s", msg);
		return;
	}

	(void)ctl_reply_json(conn, odict_lookup(od, "error") ? 422 : 200, od);
	mem_deref(od);
}


int policy_sim_register(void)
{
	return ctl_route_add("POST", "/v1/policy/simulate", simulate_route,
			     NULL);
}
