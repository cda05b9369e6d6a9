/**
 * @file ctl.c  Control API: HTTP + JSON on ctl_listen, bearer token
 *
 * One server (ctl_http.c) serves every control call. The API is a table of
 * routes (method, path prefix, handler) that each module fills in for the
 * calls it owns, so ctl knows nothing about sharing tags, re-homing or
 * policies; it only authenticates, routes, decodes JSON bodies and formats
 * replies. A prefix ending in '/' owns the subtree below it (the handler
 * gets the remainder in ctl_req.rest); any other prefix matches exactly.
 * The longest matching prefix wins, then the method picks the route: a
 * known path with the wrong method is a 405, not a 404.
 *
 * The token check hashes the presented token with a per-process random
 * HMAC key and compares digests with mem_seccmp, so the time it takes
 * says nothing about the token's content or length. It runs on the
 * request line and headers alone: the server (ctl_http.c, which also
 * bounds sizes, time and connections) reads no body for a request
 * without the token.
 *
 * ctl itself serves /v1/status, whose keys other modules add through
 * status hooks, and /metrics (metrics.c, with the collectors other
 * modules register). ctl is the layer just above base: the dialog table,
 * the cluster and the jobs reach it through those hooks, never the
 * other way round.
 *
 * Trade-off: a single-threaded server in the SIP loop, so a slow handler
 * (a walk of a huge table) delays SIP for as long as it runs.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "json.h"
#include "metrics.h"
#include "ctl.h"
#include "ctl_http.h"

enum {
	TOKEN_MD_SIZE   = 32,
	BODY_HASH_SIZE  = 32,
	BODY_MAX_DEPTH  = 16,
	QUERY_EXPR_SZ   = 64,     /* regex of one query parameter */
};

struct route {
	struct le le;
	char *method;
	char *prefix;
	size_t prefix_len;
	ctl_route_h *h;
	void *arg;
};

struct status_hook {
	struct le le;
	ctl_status_h *h;
	void *arg;
};

static struct {
	const struct rh_conf *cfg;
	struct ctl_http *srv;
	struct hmac *hmac;           /* NULL: no token, no auth */
	uint8_t token_md[TOKEN_MD_SIZE];
	uint64_t started;            /* tmr_jiffies() at ctl_init */
	struct list routes;
	struct list hooks;
} ctl;


static void route_destructor(void *arg)
{
	struct route *rt = arg;

	list_unlink(&rt->le);
	mem_deref(rt->method);
	mem_deref(rt->prefix);
}


static void hook_destructor(void *arg)
{
	struct status_hook *hk = arg;

	list_unlink(&hk->le);
}


/** Send a complete response; `xhdrs` are extra header lines, or "" */
static int reply_mb(struct http_conn *conn, uint16_t scode,
		    const char *xhdrs, const char *ctype,
		    const struct mbuf *mb)
{
	return ctl_http_reply(conn, scode,
			      "%s"
			      "Content-Type: %s\r\n"
			      "Content-Length: %zu\r\n"
			      "Cache-Control: no-store\r\n"
			      "\r\n"
			      "%b",
			      xhdrs, ctype, mb->end, mb->buf, mb->end);
}


static int reply_json(struct http_conn *conn, uint16_t scode,
		      const char *xhdrs, const struct odict *od)
{
	struct mbuf *mb;
	int err;

	mb = mbuf_alloc(1024);
	if (!mb)
		return ENOMEM;

	err = mbuf_printf(mb, "%H\n", json_encode_odict, od);
	if (err)
		goto out;

	err = reply_mb(conn, scode, xhdrs, "application/json", mb);

 out:
	mem_deref(mb);
	return err;
}


static int reply_verror(struct http_conn *conn, uint16_t scode,
			const char *xhdrs, const char *fmt, va_list ap)
{
	struct odict *od = NULL;
	char *msg = NULL;
	int err;

	err = re_vsdprintf(&msg, fmt, ap);
	if (err)
		goto out;

	err = odict_alloc(&od, 4);
	if (err)
		goto out;

	err = odict_entry_add(od, "error", ODICT_STRING, msg);
	if (err)
		goto out;

	err = reply_json(conn, scode, xhdrs, od);

 out:
	mem_deref(od);
	mem_deref(msg);
	return err;
}


static int reply_error_hdrs(struct http_conn *conn, uint16_t scode,
			    const char *xhdrs, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = reply_verror(conn, scode, xhdrs, fmt, ap);
	va_end(ap);

	return err;
}


/** Answer with a JSON object (a trailing newline is added) */
int ctl_reply_json(struct http_conn *conn, uint16_t scode,
		   const struct odict *od)
{
	if (!conn || !od)
		return EINVAL;

	return reply_json(conn, scode, "", od);
}


/** Answer {"error": "<formatted message>"} with a 4xx/5xx status */
int ctl_reply_error(struct http_conn *conn, uint16_t scode,
		    const char *fmt, ...)
{
	va_list ap;
	int err;

	if (!conn || !fmt)
		return EINVAL;

	va_start(ap, fmt);
	err = reply_verror(conn, scode, "", fmt, ap);
	va_end(ap);

	return err;
}


static bool authorized(const struct http_msg *msg)
{
	const struct http_hdr *hdr;
	struct pl scheme, tok;
	uint8_t md[TOKEN_MD_SIZE];

	if (!ctl.hmac)
		return true;

	hdr = http_msg_hdr(msg, HTTP_HDR_AUTHORIZATION);
	if (!hdr)
		return false;

	if (re_regex(hdr->val.p, hdr->val.l, "[^ ]+[ ]+[^ ]+",
		     &scheme, NULL, &tok))
		return false;

	/* the whole value, and nothing else, must be "Bearer TOKEN" */
	if (scheme.p != hdr->val.p || tok.p + tok.l != hdr->val.p + hdr->val.l
	    || pl_strcasecmp(&scheme, "Bearer"))
		return false;

	if (hmac_digest(ctl.hmac, md, sizeof(md),
			(const uint8_t *)tok.p, tok.l))
		return false;

	return 0 == mem_seccmp(md, ctl.token_md, sizeof(md));
}


static bool prefix_match(const struct route *rt, const struct pl *path)
{
	if (rt->prefix[rt->prefix_len - 1] != '/')
		return 0 == pl_strcmp(path, rt->prefix);

	return path->l >= rt->prefix_len &&
		0 == memcmp(path->p, rt->prefix, rt->prefix_len);
}


/**
 * The route for the request, or NULL. *best_len is the length of the
 * longest matching prefix, 0 when no prefix matches the path at all.
 */
static const struct route *route_find(const struct http_msg *msg,
				      size_t *best_len)
{
	const struct route *best = NULL;
	struct le *le;

	*best_len = 0;

	for (le = ctl.routes.head; le; le = le->next) {
		const struct route *rt = le->data;

		if (!prefix_match(rt, &msg->path) ||
		    rt->prefix_len < *best_len)
			continue;

		if (rt->prefix_len > *best_len) {
			*best_len = rt->prefix_len;
			best = NULL;
		}

		if (0 == pl_strcmp(&msg->met, rt->method))
			best = rt;
	}

	return best;
}


struct allow_ctx {
	const struct http_msg *msg;
	size_t len;
};


/** %H: the methods allowed on the request's path, for an Allow header */
static int allow_print(struct re_printf *pf, void *arg)
{
	const struct allow_ctx *ac = arg;
	const char *sep = "";
	struct le *le;
	int err = 0;

	for (le = ctl.routes.head; le && !err; le = le->next) {
		const struct route *rt = le->data;

		if (rt->prefix_len != ac->len ||
		    !prefix_match(rt, &ac->msg->path))
			continue;

		err = re_hprintf(pf, "%s%s", sep, rt->method);
		sep = ", ";
	}

	return err;
}


static void reply_not_allowed(struct http_conn *conn,
			      const struct http_msg *msg, size_t len)
{
	struct allow_ctx ac = {msg, len};
	char *allow = NULL;

	(void)re_sdprintf(&allow, "Allow: %H\r\n", allow_print, &ac);
	(void)reply_error_hdrs(conn, 405, allow ? allow : "",
			       "%r not allowed on %r",
			       &msg->met, &msg->path);
	mem_deref(allow);
}


/** A POST body must be a JSON object; no body gives a NULL odict */
static int body_decode(struct odict **odp, const struct http_msg *msg)
{
	struct pl first;
	const char *p;
	size_t l;

	if (!msg->mb || !mbuf_get_left(msg->mb))
		return 0;

	p = (const char *)mbuf_buf(msg->mb);
	l = mbuf_get_left(msg->mb);

	if (re_regex(p, l, "[^ \t\r\n]1", &first) || first.p[0] != '{')
		return EBADMSG;

	return json_decode_odict(odp, BODY_HASH_SIZE, p, l, BODY_MAX_DEPTH);
}


/** Before any body is read: a request without the token ends here */
static bool http_head_handler(struct http_conn *conn,
			      const struct http_msg *msg, void *arg)
{
	(void)arg;

	log_debug("ctl", "%r %r%r from %J", &msg->met, &msg->path, &msg->prm,
		  ctl_http_peer(conn));

	if (authorized(msg))
		return true;

	log_warn("ctl", "%r %r from %J: bad or missing token",
		 &msg->met, &msg->path, ctl_http_peer(conn));
	(void)reply_error_hdrs(conn, 401,
			       "WWW-Authenticate: Bearer "
			       "realm=\"rehome\"\r\n",
			       "bad or missing token");
	return false;
}


static void http_req_handler(struct http_conn *conn,
			     const struct http_msg *msg, void *arg)
{
	const struct route *rt;
	struct ctl_req req;
	struct odict *body = NULL;
	size_t len;
	(void)arg;

	rt = route_find(msg, &len);
	if (!rt && !len) {
		(void)ctl_reply_error(conn, 404, "no such endpoint: %r",
				      &msg->path);
		return;
	}
	if (!rt) {
		reply_not_allowed(conn, msg, len);
		return;
	}

	if (body_decode(&body, msg)) {
		(void)ctl_reply_error(conn, 400, "body is not a JSON object");
		return;
	}

	req.msg  = msg;
	req.body = body;
	req.rest.p = msg->path.p + rt->prefix_len;
	req.rest.l = msg->path.l - rt->prefix_len;

	rt->h(conn, &req, rt->arg);

	mem_deref(body);
}


/** The server turned a request or connection down */
static void http_err_handler(struct http_conn *conn, uint16_t scode,
			     const char *why, void *arg)
{
	(void)arg;

	(void)ctl_reply_error(conn, scode, "%s", why);
}


static void status_handler(struct http_conn *conn, const struct ctl_req *req,
			   void *arg)
{
	struct odict *od = NULL;
	struct le *le;
	int err;
	(void)req;
	(void)arg;

	err = odict_alloc(&od, 32);
	if (err)
		goto out;

	err |= odict_entry_add(od, "node_id", ODICT_STRING, ctl.cfg->node_id);
	err |= odict_entry_add(od, "version", ODICT_STRING, REHOME_VERSION);
	err |= json_int_add(od, "uptime", (tmr_jiffies() - ctl.started) / 1000);

	for (le = ctl.hooks.head; le && !err; le = le->next) {
		const struct status_hook *hk = le->data;

		err = hk->h(od, hk->arg);
	}

 out:
	if (err)
		(void)ctl_reply_error(conn, 500, "status: %m", err);
	else
		(void)ctl_reply_json(conn, 200, od);

	mem_deref(od);
}


/** A query parameter of a request, URL-decoded; ENOENT when absent */
int ctl_query_get(char *buf, size_t sz, const struct http_msg *msg,
		  const char *name)
{
	struct pl val;
	char expr[QUERY_EXPR_SZ];

	if (!buf || !msg || !name)
		return EINVAL;

	(void)re_snprintf(expr, sizeof(expr), "[?&]1%s=[^&]*", name);
	if (re_regex(msg->prm.p, msg->prm.l, expr, NULL, &val))
		return ENOENT;

	return re_snprintf(buf, sz, "%H", uri_header_unescape, &val) < 0 ?
		EINVAL : 0;
}


static int metrics_print_h(struct re_printf *pf, void *arg)
{
	(void)arg;
	return metrics_print(pf) | ctl_http_metrics_print(pf, ctl.srv);
}


static void metrics_handler(struct http_conn *conn, const struct ctl_req *req,
			    void *arg)
{
	struct mbuf *mb;
	int err;
	(void)req;
	(void)arg;

	mb = mbuf_alloc(8192);
	if (!mb) {
		(void)ctl_reply_error(conn, 500, "metrics: %m", ENOMEM);
		return;
	}

	err = mbuf_printf(mb, "%H", metrics_print_h, NULL);
	if (err)
		(void)ctl_reply_error(conn, 500, "metrics: %m", err);
	else
		(void)reply_mb(conn, 200, "",
			       "text/plain; version=0.0.4; charset=utf-8", mb);

	mem_deref(mb);
}


/**
 * Serve a route. `prefix` ending in '/' owns the subtree below it,
 * otherwise the path must match exactly. Routes live until ctl_close, and
 * can be added before ctl_init.
 */
int ctl_route_add(const char *method, const char *prefix, ctl_route_h *h,
		  void *arg)
{
	struct route *rt;
	struct le *le;
	int err;

	if (!str_isset(method) || !prefix || prefix[0] != '/' || !h)
		return EINVAL;

	for (le = ctl.routes.head; le; le = le->next) {
		const struct route *o = le->data;

		if (!str_cmp(o->method, method) && !str_cmp(o->prefix, prefix))
			return EALREADY;
	}

	rt = mem_zalloc(sizeof(*rt), route_destructor);
	if (!rt)
		return ENOMEM;

	err = str_dup(&rt->method, method) | str_dup(&rt->prefix, prefix);
	if (err) {
		mem_deref(rt);
		return err;
	}

	rt->prefix_len = strlen(prefix);
	rt->h   = h;
	rt->arg = arg;
	list_append(&ctl.routes, &rt->le, rt);

	return 0;
}


/** Let another module add keys to GET /v1/status */
int ctl_status_add(ctl_status_h *h, void *arg)
{
	struct status_hook *hk;

	if (!h)
		return EINVAL;

	hk = mem_zalloc(sizeof(*hk), hook_destructor);
	if (!hk)
		return ENOMEM;

	hk->h   = h;
	hk->arg = arg;
	list_append(&ctl.hooks, &hk->le, hk);

	return 0;
}


static int token_init(const char *token)
{
	uint8_t key[TOKEN_MD_SIZE];
	int err;

	rand_bytes(key, sizeof(key));

	err = hmac_create(&ctl.hmac, HMAC_HASH_SHA256, key, sizeof(key));
	if (err)
		return err;

	return hmac_digest(ctl.hmac, ctl.token_md, sizeof(ctl.token_md),
			   (const uint8_t *)token, strlen(token));
}


/**
 * A reload: the token from `cfg` is required from the next request on
 * (none: the API is open). On error the old token stays.
 */
int ctl_conf_apply(const struct rh_conf *cfg)
{
	struct hmac *old = ctl.hmac;
	uint8_t md[TOKEN_MD_SIZE];
	int err = 0;

	if (!cfg)
		return EINVAL;

	memcpy(md, ctl.token_md, sizeof(md));
	ctl.hmac = NULL;
	if (str_isset(cfg->ctl_token))
		err = token_init(cfg->ctl_token);

	if (err) {
		mem_deref(ctl.hmac);
		ctl.hmac = old;
		memcpy(ctl.token_md, md, sizeof(md));
		return err;
	}

	mem_deref(old);
	return 0;
}


int ctl_init(const struct rh_conf *cfg)
{
	int err;

	if (!cfg)
		return EINVAL;
	if (ctl.srv)
		return EALREADY;

	ctl.cfg = cfg;
	ctl.started = tmr_jiffies();

	if (str_isset(cfg->ctl_token)) {
		err = token_init(cfg->ctl_token);
		if (err)
			goto out;
	}
	else {
		log_warn("ctl", "no ctl_token: anyone who reaches %J controls "
			 "this node", &cfg->ctl_listen);
	}

	err  = ctl_route_add("GET", "/v1/status", status_handler, NULL);
	err |= ctl_route_add("GET", "/metrics", metrics_handler, NULL);
	if (err)
		goto out;

	err = ctl_http_listen(&ctl.srv, &cfg->ctl_listen, http_head_handler,
			      http_req_handler, http_err_handler, NULL);
	if (err) {
		log_error("ctl", "listen on %J: %m", &cfg->ctl_listen, err);
		goto out;
	}

	log_info("ctl", "control API on http://%J", &cfg->ctl_listen);

 out:
	return err;
}


void ctl_close(void)
{
	ctl.srv  = mem_deref(ctl.srv);
	ctl.hmac = mem_deref(ctl.hmac);
	list_flush(&ctl.routes);
	list_flush(&ctl.hooks);
	metrics_close();
	ctl.cfg = NULL;
}
