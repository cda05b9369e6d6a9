/**
 * @file ctl.h  Control API: HTTP + JSON on ctl_listen, bearer token
 */

struct rh_conf;
struct http_conn;   /* ctl's own (ctl_http.c), not libre's */
struct http_msg;
struct odict;

/** Key of an element of a JSON array (an odict): its decimal index */
enum { CTL_INDEX_SZ = 16 };

/** An authenticated request, handed to the module that owns the route */
struct ctl_req {
	const struct http_msg *msg;
	struct pl rest;            /* path after the route's prefix */
	const struct odict *body;  /* JSON body or NULL; valid during the
				      call only (mem_ref to keep it) */
};

/**
 * Route handler. It must answer, now (ctl_reply_*) or later (keep a
 * mem_ref of conn and answer when the work is done).
 */
typedef void (ctl_route_h)(struct http_conn *conn, const struct ctl_req *req,
			   void *arg);

int  ctl_init(const struct rh_conf *cfg);
void ctl_close(void);
int  ctl_conf_apply(const struct rh_conf *cfg);
int  ctl_route_add(const char *method, const char *prefix, ctl_route_h *h,
		   void *arg);
int  ctl_reply_json(struct http_conn *conn, uint16_t scode,
		    const struct odict *od);
int  ctl_reply_error(struct http_conn *conn, uint16_t scode,
		     const char *fmt, ...);
int  ctl_query_get(char *buf, size_t sz, const struct http_msg *msg,
		   const char *name);

/**
 * Status hook: adds keys to the GET /v1/status object (e.g. "nodes",
 * "shtags" from the cluster module). Hooks run in registration order.
 */
typedef int (ctl_status_h)(struct odict *od, void *arg);

int  ctl_status_add(ctl_status_h *h, void *arg);
