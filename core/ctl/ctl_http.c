/**
 * @file ctl_http.c  The control API's HTTP/1.1 server: framing and limits
 *
 * libre's HTTP server reads a whole request, up to 512 KiB, before any
 * handler sees it, keeps a connection for ten minutes after a request
 * and takes any number of connections. The control API has to hold
 * against a client that is hostile or merely broken, so this small
 * server, on libre's TCP and its HTTP parser (http_msg_decode), reads a
 * request in two steps:
 *
 * - the request line and headers (at most CTL_HTTP_HEAD_MAX bytes, else
 *   431) go to the head handler first, which checks the token: a refused
 *   request is answered at once and its body is never read;
 * - then Content-Length bytes of body (at most CTL_HTTP_BODY_MAX, else 413
 *   before any of it is read; Transfer-Encoding gets 501), and the whole
 *   request goes to the request handler.
 *
 * A request must be in within CTL_HTTP_REQUEST_MS of its first byte (of
 * the connection, for the first request), however it trickles: else 408
 * and close. A connection idle between requests is closed after
 * CTL_HTTP_IDLE_MS. At most CTL_HTTP_CONN_MAX connections are open; one
 * more gets 503 and is closed at once. Each limit hit is logged (the
 * connection limit at most once a second) and counted by reason.
 *
 * One request at a time per connection: what a client pipelines behind a
 * request waits until that one is answered (a handler may answer later,
 * after a Redis round trip), so replies keep the order of the requests.
 * The server's own error replies go through the error handler, so that
 * ctl.c formats every JSON error. A refusal closes the connection as soon
 * as the reply is handed to the kernel; input left unread makes the
 * kernel reset the connection, and a Linux client can still read the
 * reply that came before the reset.
 *
 * Trade-off: turning a connection away costs an accept and a reply, so a
 * flood still costs the loop that much; the limits bound what
 * connections hold (slots, buffers, time), not how fast they come.
 */
#include <ctype.h>
#include <re.h>
#include "log.h"
#include "ctl_http.h"

enum {
	/* received and not handled yet, pipelined requests included */
	RX_MAX          = 2 * (CTL_HTTP_HEAD_MAX + CTL_HTTP_BODY_MAX),
	CLEN_DIGITS_MAX = 19,       /* more digits: past any limit anyway */
	WHY_SZ          = 128,
	REFUSAL_LOG_MS  = 1000,     /* one log line per second at the cap */
};

enum conn_state {
	CONN_HEAD,       /* reading a request line and headers */
	CONN_BODY,       /* reading the body of an accepted head */
	CONN_BUSY,       /* the request handler has the request */
	CONN_CLOSING,    /* a last reply is on its way, or closed */
};

enum close_reason {
	CLOSE_OVER_CAPACITY,
	CLOSE_TIMEOUT,
	CLOSE_IDLE,
	CLOSE_TOO_LARGE,
	CLOSE_BAD_REQUEST,
	CLOSE_REJECTED,
	CLOSE_REASONS
};

static const char *const close_names[CLOSE_REASONS] = {
	"over_capacity", "timeout", "idle", "too_large", "bad_request",
	"rejected",
};

struct ctl_http {
	struct tcp_sock *ts;
	struct list conns;
	ctl_http_head_h *headh;
	ctl_http_req_h *reqh;
	ctl_http_err_h *errh;
	void *arg;
	uint64_t closed[CLOSE_REASONS];
	uint64_t refusal_logged;     /* jiffies of the last such log line */
	uint32_t refusals_quiet;     /* refused since, not logged */
};

/** One client connection (this server's, not libre's: see ctl_http.h) */
struct http_conn {
	struct le le;
	struct tmr tmr;
	struct sa peer;
	struct ctl_http *srv;        /* NULL once closed */
	struct tcp_conn *tc;
	struct mbuf *mb;             /* received, not handled: pos..end */
	size_t scanned;              /* bytes of mb searched for the head's end */
	size_t head_len;             /* CONN_BODY: request line + headers */
	size_t clen;                 /* CONN_BODY: Content-Length */
	enum conn_state state;
	bool idle;                   /* between requests: idle timer */
	bool await;                  /* a reply is due (ctl_http_reply) */
};


static void conn_destructor(void *arg)
{
	struct http_conn *conn = arg;

	list_unlink(&conn->le);
	tmr_cancel(&conn->tmr);
	mem_deref(conn->tc);
	mem_deref(conn->mb);
}


/** Close; the server's reference goes, a handler's may keep conn */
static void conn_end(struct http_conn *conn)
{
	if (!conn->srv)
		return;

	list_unlink(&conn->le);
	tmr_cancel(&conn->tmr);
	conn->tc    = mem_deref(conn->tc);
	conn->mb    = mem_deref(conn->mb);
	conn->srv   = NULL;
	conn->state = CONN_CLOSING;
	mem_deref(conn);
}


static void srv_destructor(void *arg)
{
	struct ctl_http *srv = arg;
	struct le *le = srv->conns.head;

	srv->ts = mem_deref(srv->ts);

	while (le) {
		struct http_conn *conn = le->data;

		le = le->next;
		conn_end(conn);
	}
}


static void conn_drop(struct http_conn *conn, enum close_reason why)
{
	if (conn->srv)
		conn->srv->closed[why]++;

	conn_end(conn);
}


static void timeout_handler(void *arg);


static void timer_start(struct http_conn *conn, bool idle)
{
	conn->idle = idle;
	tmr_start(&conn->tmr, idle ? CTL_HTTP_IDLE_MS : CTL_HTTP_REQUEST_MS,
		  timeout_handler, conn);
}


static void sent_handler(void *arg)
{
	conn_end(arg);
}


/** Close once the reply is with the kernel; a client that does not
 * read it gets CTL_HTTP_REQUEST_MS */
static void close_when_sent(struct http_conn *conn)
{
	conn->state = CONN_CLOSING;

	if (!conn->tc || !tcp_conn_txqsz(conn->tc) ||
	    tcp_set_send(conn->tc, sent_handler)) {
		conn_end(conn);
		return;
	}

	timer_start(conn, false);
}


/** Have the error handler answer, then close */
static void refuse_msg(struct http_conn *conn, enum close_reason why,
		       uint16_t scode, const char *msg)
{
	conn->srv->closed[why]++;
	conn->state = CONN_CLOSING;
	conn->await = true;
	conn->srv->errh(conn, scode, msg, conn->srv->arg);
	conn->await = false;
	close_when_sent(conn);
}


static void refuse(struct http_conn *conn, enum close_reason why,
		   uint16_t scode, const char *fmt, ...)
{
	char msg[WHY_SZ];
	va_list ap;

	va_start(ap, fmt);
	(void)re_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	log_warn("ctl", "%J: %s: answered %u and closed", &conn->peer, msg,
		 scode);
	refuse_msg(conn, why, scode, msg);
}


static void timeout_handler(void *arg)
{
	struct http_conn *conn = arg;

	if (conn->state == CONN_CLOSING) {
		log_info("ctl", "%J: reply not taken within %u s: closed",
			 &conn->peer, CTL_HTTP_REQUEST_MS / 1000);
		conn_end(conn);
	}
	else if (conn->idle) {
		log_debug("ctl", "%J: idle for %u s: closed", &conn->peer,
			  CTL_HTTP_IDLE_MS / 1000);
		conn_drop(conn, CLOSE_IDLE);
	}
	else {
		refuse(conn, CLOSE_TIMEOUT, 408,
		       "no complete request within %u s (%zu bytes in)",
		       CTL_HTTP_REQUEST_MS / 1000,
		       conn->mb ? mbuf_get_left(conn->mb) : (size_t)0);
	}
}


static const char *reason_phrase(uint16_t scode)
{
	switch (scode) {

	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Entity";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default:  return scode < 400 ? "OK" : "Error";
	}
}


/* ---- reading a request ---- */

/** Append received bytes to what waits to be handled */
static int rx_append(struct http_conn *conn, struct mbuf *mb)
{
	const size_t n = mbuf_get_left(mb);
	size_t pos;
	int err;

	if (!conn->mb) {
		conn->mb = mem_ref(mb);
		conn->scanned = 0;
		return 0;
	}

	if (mbuf_get_left(conn->mb) + n > RX_MAX)
		return EOVERFLOW;

	pos = conn->mb->pos;
	conn->mb->pos = conn->mb->end;
	err = mbuf_write_mem(conn->mb, mbuf_buf(mb), n);
	conn->mb->pos = pos;

	return err;
}


/** An empty line in the bytes not searched yet: the head may be whole.
 * Each byte is searched once, so a head that trickles costs O(n). */
static bool head_ended(struct http_conn *conn)
{
	const uint8_t *p = mbuf_buf(conn->mb);
	const size_t n = mbuf_get_left(conn->mb);
	size_t i = conn->scanned > 2 ? conn->scanned - 2 : 0;

	conn->scanned = n;

	for (; i + 1 < n; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n'))
			return true;
	}

	return false;
}


/** Content-Length: one header, digits only; 0 when absent */
static int clen_get(uint64_t *clen, const struct http_msg *msg)
{
	const struct http_hdr *hdr = http_msg_hdr(msg,
						  HTTP_HDR_CONTENT_LENGTH);

	*clen = 0;
	if (!hdr)
		return 0;

	if (http_msg_hdr_count(msg, HTTP_HDR_CONTENT_LENGTH) > 1 ||
	    !hdr->val.l)
		return EBADMSG;

	for (size_t i = 0; i < hdr->val.l; i++) {
		if (!isdigit((unsigned char)hdr->val.p[i]))
			return EBADMSG;
	}

	*clen = hdr->val.l > CLEN_DIGITS_MAX ? UINT64_MAX
					     : pl_u64(&hdr->val);
	return 0;
}


/** Expect: 100-continue, and the body is not here yet */
static void continue_send(struct http_conn *conn, const struct http_msg *msg)
{
	struct mbuf *mb;

	if (mbuf_get_left(conn->mb) >= conn->head_len + conn->clen ||
	    !http_msg_hdr_has_value(msg, HTTP_HDR_EXPECT, "100-continue"))
		return;

	mb = mbuf_alloc(32);
	if (!mb)
		return;

	if (!mbuf_write_str(mb, "HTTP/1.1 100 Continue\r\n\r\n")) {
		mb->pos = 0;
		(void)tcp_send(conn->tc, mb);
	}

	mem_deref(mb);
}


/** The head's checks, then the head handler; CONN_BODY if all pass */
static void head_check(struct http_conn *conn, const struct http_msg *msg)
{
	uint64_t clen;
	bool more;

	if (conn->head_len > CTL_HTTP_HEAD_MAX) {
		refuse(conn, CLOSE_TOO_LARGE, 431, "request line and headers "
		       "exceed %u bytes", CTL_HTTP_HEAD_MAX);
		return;
	}

	if (http_msg_hdr(msg, HTTP_HDR_TRANSFER_ENCODING)) {
		refuse(conn, CLOSE_BAD_REQUEST, 501, "Transfer-Encoding is "
		       "not supported: send Content-Length");
		return;
	}

	if (clen_get(&clen, msg)) {
		refuse(conn, CLOSE_BAD_REQUEST, 400, "bad Content-Length");
		return;
	}

	conn->await = true;
	more = conn->srv->headh(conn, msg, conn->srv->arg);
	conn->await = false;
	if (!more) {
		conn->srv->closed[CLOSE_REJECTED]++;
		close_when_sent(conn);
		return;
	}

	if (clen > CTL_HTTP_BODY_MAX) {
		refuse(conn, CLOSE_TOO_LARGE, 413, "a body of %llu bytes is "
		       "over the limit of %u", (unsigned long long)clen,
		       CTL_HTTP_BODY_MAX);
		return;
	}

	conn->clen  = (size_t)clen;
	conn->state = CONN_BODY;
	continue_send(conn, msg);
}


static void head_read(struct http_conn *conn)
{
	struct http_msg *msg = NULL;
	const size_t start = conn->mb->pos;
	int err;

	err = head_ended(conn) ? http_msg_decode(&msg, conn->mb, true)
			       : ENODATA;
	if (err == ENODATA) {
		if (mbuf_get_left(conn->mb) > CTL_HTTP_HEAD_MAX)
			refuse(conn, CLOSE_TOO_LARGE, 431, "request line and "
			       "headers exceed %u bytes", CTL_HTTP_HEAD_MAX);
		return;
	}
	if (err) {
		refuse(conn, CLOSE_BAD_REQUEST, 400, "malformed request (%m)",
		       err);
		return;
	}

	conn->head_len = conn->mb->pos - start;
	conn->mb->pos = start;

	head_check(conn, msg);
	mem_deref(msg);
}


static void dispatch(struct http_conn *conn, const struct http_msg *msg)
{
	tmr_cancel(&conn->tmr);
	conn->idle  = false;
	conn->state = CONN_BUSY;
	conn->await = true;
	conn->srv->reqh(conn, msg, conn->srv->arg);
}


/** Once the body is in: the request, with msg->mb on its body */
static void body_read(struct http_conn *conn)
{
	struct mbuf *mb = conn->mb, *rest = NULL;
	const size_t end = mb->pos + conn->head_len + conn->clen;
	struct http_msg *msg;
	int err;

	if (mb->end < end)
		return;

	/* what follows is the next request: its own buffer, since the
	   parsed request points into this one */
	if (mb->end > end) {
		rest = mbuf_alloc(mb->end - end);
		if (!rest) {
			conn_drop(conn, CLOSE_BAD_REQUEST);
			return;
		}
		(void)mbuf_write_mem(rest, mb->buf + end, mb->end - end);
		rest->pos = 0;
	}

	err = http_msg_decode(&msg, mb, true);
	if (err) {
		mem_deref(rest);
		refuse(conn, CLOSE_BAD_REQUEST, 400, "malformed request (%m)",
		       err);
		return;
	}

	mb->end = end;
	mem_deref(msg->mb);
	msg->mb = mem_ref(mb);

	mem_deref(conn->mb);
	conn->mb = rest;
	conn->scanned = 0;

	dispatch(conn, msg);
	mem_deref(msg);
}


static void process(struct http_conn *conn)
{
	mem_ref(conn);

	if (conn->state == CONN_HEAD && conn->mb)
		head_read(conn);
	if (conn->state == CONN_BODY)
		body_read(conn);

	mem_deref(conn);
}


static void next_handler(void *arg)
{
	struct http_conn *conn = arg;

	timer_start(conn, false);
	process(conn);
}


static void recv_handler(struct mbuf *mb, void *arg)
{
	struct http_conn *conn = arg;

	if (conn->state == CONN_CLOSING)
		return;

	if (conn->idle)
		timer_start(conn, false);  /* a new request starts */

	if (rx_append(conn, mb)) {
		log_warn("ctl", "%J: over %u bytes waiting behind a request: "
			 "closed", &conn->peer, RX_MAX);
		conn_drop(conn, CLOSE_TOO_LARGE);
		return;
	}

	if (conn->state != CONN_BUSY)
		process(conn);
}


static void close_handler(int err, void *arg)
{
	struct http_conn *conn = arg;

	log_debug("ctl", "%J: connection closed (%m)", &conn->peer, err);
	conn_end(conn);
}


/* ---- connections ---- */

static void over_capacity(struct http_conn *conn)
{
	struct ctl_http *srv = conn->srv;
	const uint64_t now = tmr_jiffies();

	if (!srv->refusal_logged || now - srv->refusal_logged >=
	    REFUSAL_LOG_MS) {
		log_warn("ctl", "%J: refused, %u connections are open "
			 "(the limit; %u more refused unlogged before)",
			 &conn->peer, CTL_HTTP_CONN_MAX, srv->refusals_quiet);
		srv->refusal_logged = now;
		srv->refusals_quiet = 0;
	}
	else {
		srv->refusals_quiet++;
	}

	refuse_msg(conn, CLOSE_OVER_CAPACITY, 503, "too many connections");
}


static void connect_handler(const struct sa *peer, void *arg)
{
	struct ctl_http *srv = arg;
	const bool full = list_count(&srv->conns) >= CTL_HTTP_CONN_MAX;
	struct http_conn *conn;
	int err;

	conn = mem_zalloc(sizeof(*conn), conn_destructor);
	if (!conn) {
		tcp_reject(srv->ts);
		return;
	}

	conn->peer = *peer;
	err = tcp_accept(&conn->tc, srv->ts, NULL, recv_handler,
			 close_handler, conn);
	if (err) {
		log_warn("ctl", "%J: accept: %m", peer, err);
		mem_deref(conn);
		tcp_reject(srv->ts);
		return;
	}

	conn->srv = srv;
	list_append(&srv->conns, &conn->le, conn);

	if (full)
		over_capacity(conn);
	else
		timer_start(conn, false);
}


int ctl_http_listen(struct ctl_http **srvp, const struct sa *laddr,
		    ctl_http_head_h *headh, ctl_http_req_h *reqh,
		    ctl_http_err_h *errh, void *arg)
{
	struct ctl_http *srv;
	int err;

	if (!srvp || !laddr || !headh || !reqh || !errh)
		return EINVAL;

	srv = mem_zalloc(sizeof(*srv), srv_destructor);
	if (!srv)
		return ENOMEM;

	srv->headh = headh;
	srv->reqh  = reqh;
	srv->errh  = errh;
	srv->arg   = arg;

	/* tcp_listen's backlog of 5 would drop the SYNs of a burst of
	   clients, which then retry a second or more later */
	err = tcp_sock_alloc(&srv->ts, laddr, connect_handler, srv);
	if (!err)
		err = tcp_sock_bind(srv->ts, laddr);
	if (!err)
		err = tcp_sock_listen(srv->ts, CTL_HTTP_CONN_MAX);
	if (err)
		mem_deref(srv);
	else
		*srvp = srv;

	return err;
}


/** The request is answered: on to the next one, or wait for it */
static void reply_done(struct http_conn *conn)
{
	conn->state = CONN_HEAD;

	if (conn->mb && mbuf_get_left(conn->mb)) {
		conn->idle = false;
		tmr_start(&conn->tmr, 0, next_handler, conn);
	}
	else {
		timer_start(conn, true);
	}
}


/**
 * Send a response: the status line is written here, `fmt` gives the
 * headers, the empty line and the body. Once per request; a reply before
 * the body was read (the head or error handler) closes the connection.
 */
int ctl_http_reply(struct http_conn *conn, uint16_t scode,
		   const char *fmt, ...)
{
	const bool last = conn && conn->state != CONN_BUSY;
	struct mbuf *mb;
	va_list ap;
	int err;

	if (!conn || !fmt)
		return EINVAL;
	if (!conn->tc)
		return ENOTCONN;
	if (!conn->await)
		return EALREADY;

	conn->await = false;

	mb = mbuf_alloc(1024);
	if (!mb) {
		err = ENOMEM;
		goto out;
	}

	err = mbuf_printf(mb, "HTTP/1.1 %u %s\r\n%s", scode,
			  reason_phrase(scode),
			  last ? "Connection: close\r\n" : "");
	va_start(ap, fmt);
	err |= mbuf_vprintf(mb, fmt, ap);
	va_end(ap);
	if (err)
		goto out;

	mb->pos = 0;
	err = tcp_send(conn->tc, mb);

 out:
	mem_deref(mb);
	if (last)
		return err;

	if (err) {
		log_warn("ctl", "%J: reply %u not sent (%m): closed",
			 &conn->peer, scode, err);
		conn_end(conn);
	}
	else {
		reply_done(conn);
	}

	return err;
}


const struct sa *ctl_http_peer(const struct http_conn *conn)
{
	return conn ? &conn->peer : NULL;
}


/** Families rehome_ctl_connections and ..._closed_total */
int ctl_http_metrics_print(struct re_printf *pf, const struct ctl_http *srv)
{
	int err;

	if (!srv)
		return 0;

	err = re_hprintf(pf,
			 "# HELP rehome_ctl_connections Open control API "
			 "connections\n"
			 "# TYPE rehome_ctl_connections gauge\n"
			 "rehome_ctl_connections %u\n"
			 "# HELP rehome_ctl_connections_closed_total Control "
			 "API connections the server closed, by reason\n"
			 "# TYPE rehome_ctl_connections_closed_total "
			 "counter\n",
			 list_count(&srv->conns));

	for (int i = 0; i < CLOSE_REASONS && !err; i++) {
		err = re_hprintf(pf, "rehome_ctl_connections_closed_total"
				 "{reason=\"%s\"} %llu\n", close_names[i],
				 (unsigned long long)srv->closed[i]);
	}

	return err;
}
