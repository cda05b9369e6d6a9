/**
 * @file client.c  rehomectl: HTTP calls to one rehomed's control API
 *
 * Each call is made with libre's HTTP client from a private re_main loop.
 * The loop runs only while a call is in flight or while waiting between
 * polls, so the commands read top to bottom like a synchronous client; a
 * libre timer bounds every call (5 s) and SIGINT/SIGTERM stop the wait
 * cleanly. A call is judged here: transport errors, a refused token and
 * error replies are reported on stderr once, each naming the node's
 * address, the method and the path, so that a command only sees a reply
 * object or an exit status. A command that needs a cluster and is refused
 * (404, 409) asks the node's status whether it runs without Redis, and
 * says so rather than the bare refusal.
 */
#include <re.h>
#include "rehomectl.h"
#include "client.h"

enum {
	TIMEOUT_MS   = 5000,
	URI_SZ       = 512,
	JSON_BUCKETS = 32,
	JSON_DEPTH   = 16,
};

static struct client *the_client;  /* for the signal handler */


static void signal_handler(int sig)
{
	(void)sig;

	if (the_client)
		the_client->interrupted = true;
	re_cancel();
}


static void timeout_handler(void *arg)
{
	struct client *cl = arg;

	cl->err = ETIMEDOUT;
	cl->req = mem_deref(cl->req);
	re_cancel();
}


static void resp_handler(int err, const struct http_msg *msg, void *arg)
{
	struct client *cl = arg;

	tmr_cancel(&cl->tmr);
	cl->err = err;
	if (!err && msg) {
		cl->scode = msg->scode;
		cl->body  = mem_ref(msg->mb);
		(void)pl_strcpy(&msg->reason, cl->reason, sizeof(cl->reason));
	}
	re_cancel();
}


static int auth_print(struct re_printf *pf, void *arg)
{
	const struct client *cl = arg;

	if (!str_isset(cl->token))
		return 0;

	return re_hprintf(pf, "Authorization: Bearer %s\r\n", cl->token);
}


static int json_print(struct re_printf *pf, void *arg)
{
	return arg ? json_encode_odict(pf, arg) : 0;
}


/** One request; the reply lands in cl->scode and cl->body */
static int http_call(struct client *cl, const char *met, const char *path,
		     const struct odict *body)
{
	char uri[URI_SZ], *content = NULL;
	int err;

	cl->body  = mem_deref(cl->body);
	cl->scode = 0;
	cl->err   = 0;
	cl->reason[0] = '\0';

	err = re_sdprintf(&content, "%H", json_print, (void *)body);
	if (err)
		return err;

	(void)re_snprintf(uri, sizeof(uri), "http://%J%s", &cl->srv, path);

	err = http_request(&cl->req, cl->http, met, uri, resp_handler, NULL,
			   cl,
			   "%H"
			   "Accept: application/json\r\n"
			   "%s"
			   "Content-Length: %zu\r\n"
			   "\r\n"
			   "%s",
			   auth_print, cl,
			   body ? "Content-Type: application/json\r\n" : "",
			   str_len(content), content);
	mem_deref(content);
	if (err)
		return err;

	tmr_start(&cl->tmr, TIMEOUT_MS, timeout_handler, cl);
	(void)re_main(signal_handler);
	tmr_cancel(&cl->tmr);
	cl->req = mem_deref(cl->req);

	if (cl->interrupted)
		return EINTR;

	return cl->err;
}


static void wait_handler(void *arg)
{
	(void)arg;
	re_cancel();
}


/** Sleep in the loop, so that a signal still ends the wait */
bool client_wait(struct client *cl, uint64_t ms)
{
	tmr_start(&cl->tmr, ms, wait_handler, NULL);
	(void)re_main(signal_handler);
	tmr_cancel(&cl->tmr);

	return !cl->interrupted;
}


/** "rehomectl: ADDR METHOD PATH: what" on stderr */
static void call_error(const struct client *cl, const char *met,
		       const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)re_fprintf(stderr, "rehomectl: %J %s %s: %v\n", &cl->srv, met,
			 path, fmt, &ap);
	va_end(ap);
}


static struct odict *body_decode(const struct client *cl)
{
	struct odict *od = NULL;

	if (cl->body && mbuf_get_left(cl->body))
		(void)json_decode_odict(&od, JSON_BUCKETS,
					(const char *)mbuf_buf(cl->body),
					mbuf_get_left(cl->body), JSON_DEPTH);

	return od;
}


/**
 * A command that needs a cluster was refused (404, 409) by a node that
 * runs without Redis: its status has no "redis". The check is one more
 * call, which replaces the last reply.
 */
static bool refused_for_no_cluster(struct client *cl)
{
	struct odict *od;
	bool single;

	if (!cl->needs_cluster || (cl->scode != 404 && cl->scode != 409))
		return false;

	if (http_call(cl, "GET", "/v1/status", NULL) || cl->scode != 200)
		return false;

	od = body_decode(cl);
	single = od && !odict_get_type(od, ODICT_OBJECT, "redis");
	mem_deref(od);

	return single;
}


/**
 * Make a call and judge it: on success *odp is the reply object; on
 * failure the reason is on stderr and the exit status is returned.
 */
int client_call(struct client *cl, const char *met, const char *path,
		const struct odict *body, struct odict **odp)
{
	struct odict *od = NULL;
	char reason[sizeof(cl->reason)];
	uint16_t scode;
	int err;

	err = http_call(cl, met, path, body);
	if (err == EINTR) {
		call_error(cl, met, path, "interrupted");
		return EXIT_FAILED;
	}
	if (err) {
		call_error(cl, met, path, "cannot reach rehomed: %m", err);
		return EXIT_FAILED;
	}

	od = body_decode(cl);
	scode = cl->scode;       /* the no-cluster check makes another call */
	str_ncpy(reason, cl->reason, sizeof(reason));

	if (cl->scode == 401) {
		call_error(cl, met, path, "401 bad or missing token (use -t "
			   "TOKEN or REHOME_TOKEN)");
		goto fail;
	}
	if (cl->scode >= 300) {
		if (refused_for_no_cluster(cl))
			call_error(cl, met, path, "no cluster (this node runs "
				   "without redis)");
		else
			call_error(cl, met, path, "%u %s", scode,
				   od && odict_string(od, "error") ?
				   odict_string(od, "error") : reason);
		goto fail;
	}
	if (!od) {
		call_error(cl, met, path, "%u reply is not JSON", cl->scode);
		return EXIT_FAILED;
	}

	*odp = od;
	return EXIT_OK;

 fail:
	mem_deref(od);
	return EXIT_FAILED;
}


/** The HTTP client; cl->srv and cl->token are set by then */
int client_init(struct client *cl)
{
	struct sa ns;
	int err;

	/* URLs hold IP literals: the resolver is required but never asked */
	err = sa_set_str(&ns, "127.0.0.1", 53);
	if (err)
		return err;

	err = dnsc_alloc(&cl->dnsc, NULL, &ns, 1);
	if (err)
		return err;

	err = http_client_alloc(&cl->http, cl->dnsc);
	if (err)
		return err;

	the_client = cl;
	return 0;
}


void client_close(struct client *cl)
{
	the_client = NULL;
	cl->body = mem_deref(cl->body);
	cl->http = mem_deref(cl->http);
	cl->dnsc = mem_deref(cl->dnsc);
}
