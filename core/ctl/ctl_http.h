/**
 * @file ctl_http.h  The control API's HTTP/1.1 server: framing and limits
 *
 * For ctl.c only. `struct http_conn` here is this server's connection,
 * not libre's (whose http_conn_* functions must never be given one): it
 * keeps the name so that route handlers (ctl.h) did not change with it.
 */

struct ctl_http;
struct http_conn;
struct http_msg;
struct re_printf;
struct sa;

enum {
	CTL_HTTP_CONN_MAX   = 256,        /* open connections; more: 503    */
	CTL_HTTP_HEAD_MAX   = 16 * 1024,  /* request line + headers; 431    */
	CTL_HTTP_BODY_MAX   = 64 * 1024,  /* Content-Length; more: 413      */
	CTL_HTTP_REQUEST_MS = 10000,      /* a request arrives within this  */
	CTL_HTTP_IDLE_MS    = 60000,      /* keep-alive between requests    */
};

/**
 * The request line and headers are in, the body is not read yet. Return
 * true to read the body, or answer (ctl_http_reply) and return false:
 * the body is then never read and the connection is closed.
 */
typedef bool (ctl_http_head_h)(struct http_conn *conn,
			       const struct http_msg *msg, void *arg);

/** A complete request: answer it now or later, exactly once */
typedef void (ctl_http_req_h)(struct http_conn *conn,
			      const struct http_msg *msg, void *arg);

/**
 * The server turns a request or connection down (over a limit, malformed,
 * too slow): answer `scode` with `why`; the connection is closed after.
 */
typedef void (ctl_http_err_h)(struct http_conn *conn, uint16_t scode,
			      const char *why, void *arg);

int  ctl_http_listen(struct ctl_http **srvp, const struct sa *laddr,
		     ctl_http_head_h *headh, ctl_http_req_h *reqh,
		     ctl_http_err_h *errh, void *arg);
int  ctl_http_reply(struct http_conn *conn, uint16_t scode,
		    const char *fmt, ...);
const struct sa *ctl_http_peer(const struct http_conn *conn);
int  ctl_http_metrics_print(struct re_printf *pf,
			    const struct ctl_http *srv);
