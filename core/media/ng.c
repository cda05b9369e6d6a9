/**
 * @file ng.c  rtpengine ng protocol client over UDP
 *
 * An ng message is `<cookie> <bencoded dictionary>` in one datagram; the
 * reply carries the request's cookie back, and that is the only thing
 * that ties the two together. So each client (one per rtpengine) keeps
 * its pending requests in a hash by cookie, and a reply is accepted only
 * from the server's address, for a pending cookie, and when it decodes to
 * a dictionary with a "result". Anything else is counted and dropped: a
 * relay must never be able to crash or confuse the engine, and a garbled
 * copy does not end the request, since a retry may still bring a good one.
 *
 * Retries resend the very same datagram, cookie included: rtpengine keeps
 * the reply of each cookie for a while and answers a repeated cookie with
 * it instead of running the command again, so retrying an offer cannot
 * open a second media session. Cookies start with a random prefix per
 * client, so that a restarted engine does not reuse the cookies of its
 * previous life while rtpengine still remembers them.
 *
 * Like libre's sip_request, the caller may hold a pointer to a request:
 * dereferencing it cancels the request (its handler is not called), and
 * the pointer is cleared when the request ends. The request is freed
 * before its handler runs, so a handler may free the client. Freeing the
 * client cancels whatever is pending, without calling handlers.
 */
#include <errno.h>
#include <string.h>
#include <re.h>
#include "log.h"
#include "bencode.h"
#include "ng.h"

enum {
	NG_TRIES       = 3,
	NG_TIMEOUT_MS  = 500,
	NG_COOKIE_SZ   = 32,
	NG_HASH_SZ     = 64,
	NG_ODICT_HSZ   = 8,
	NG_MAX_DEPTH   = 16,
	NG_RX_SZ       = 65536,   /* a query reply can be large */
};

struct ng_client {
	struct udp_sock *us;
	struct sa srv;
	struct hash *reqs;         /* pending requests, by cookie */
	struct ng_conf conf;
	struct ng_stats stats;
	uint32_t prefix;           /* random, starts every cookie */
	uint64_t seq;
};

struct ng_req {
	struct le he;
	struct ng_client *ng;
	struct ng_req **reqp;      /* the owner's pointer, cleared at the end */
	struct mbuf *mb;           /* the datagram, sent again as it is */
	struct tmr tmr;
	char cookie[NG_COOKIE_SZ];
	uint32_t tries;            /* sends so far */
	ng_resp_h *resph;
	void *arg;
};


static void client_destructor(void *arg)
{
	struct ng_client *ng = arg;

	hash_flush(ng->reqs);
	mem_deref(ng->reqs);
	mem_deref(ng->us);
}


static void req_destructor(void *arg)
{
	struct ng_req *req = arg;

	if (req->reqp)
		*req->reqp = NULL;
	hash_unlink(&req->he);
	tmr_cancel(&req->tmr);
	mem_deref(req->mb);
}


static void req_finish(struct ng_req *req, int err, const struct odict *reply)
{
	ng_resp_h *resph = req->resph;
	void *arg = req->arg;

	mem_deref(req);
	if (resph)
		resph(err, reply, arg);
}


static int req_send(struct ng_req *req)
{
	++req->tries;
	req->mb->pos = 0;

	return udp_send(req->ng->us, &req->ng->srv, req->mb);
}


static void timeout_handler(void *arg)
{
	struct ng_req *req = arg;
	struct ng_client *ng = req->ng;

	if (req->tries >= ng->conf.tries) {
		++ng->stats.timeouts;
		log_debug("ng", "%J: no reply to %s", &ng->srv, req->cookie);
		req_finish(req, ETIMEDOUT, NULL);
		return;
	}

	++ng->stats.retries;
	tmr_start(&req->tmr, ng->conf.timeout_ms, timeout_handler, req);
	(void)req_send(req);  /* a failed send is one more lost datagram */
}


static bool cookie_cmp(struct le *le, void *arg)
{
	const struct ng_req *req = le->data;

	return 0 == pl_strcmp(arg, req->cookie);
}


/* "<cookie> <body>": split, or false if it is not that */
static bool split_reply(const struct mbuf *mb, struct pl *cookie,
			struct pl *body)
{
	const char *p = (const char *)mbuf_buf(mb);
	size_t n = mbuf_get_left(mb);
	const char *sp = memchr(p, ' ', MIN(n, (size_t)NG_COOKIE_SZ));

	if (!sp || sp == p)
		return false;

	cookie->p = p;
	cookie->l = sp - p;
	body->p = sp + 1;
	body->l = n - cookie->l - 1;

	return true;
}


static void recv_handler(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct ng_client *ng = arg;
	struct odict *reply = NULL;
	struct pl cookie, body;
	struct ng_req *req;
	const char *result;
	int err;

	if (!sa_cmp(src, &ng->srv, SA_ALL)) {
		++ng->stats.stray;
		return;
	}

	if (!split_reply(mb, &cookie, &body)) {
		++ng->stats.garbled;
		return;
	}

	req = list_ledata(hash_lookup(ng->reqs, hash_joaat_pl(&cookie),
				      cookie_cmp, &cookie));
	if (!req) {
		++ng->stats.stray;  /* too late, or not ours */
		return;
	}

	err = bencode_decode_odict(&reply, NG_ODICT_HSZ, body.p, body.l,
				   NG_MAX_DEPTH);
	result = err ? NULL : odict_string(reply, "result");
	if (!result) {
		++ng->stats.garbled;
		log_debug("ng", "%J: garbled reply to %s (%m)", src,
			  req->cookie, err ? err : EBADMSG);
		goto out;
	}

	err = 0;
	if (str_cmp(result, "ok") && str_cmp(result, "pong")) {
		++ng->stats.errors;
		err = EPROTO;
	}

	req_finish(req, err, reply);

 out:
	mem_deref(reply);
}


/**
 * A client for the rtpengine listening (ng) on `srv`
 *
 * @param ngp  New client
 * @param srv  rtpengine's ng address
 * @param conf Retransmission, NULL for the defaults
 *
 * @return 0 if success, otherwise errorcode
 */
int ng_client_alloc(struct ng_client **ngp, const struct sa *srv,
		    const struct ng_conf *conf)
{
	struct ng_client *ng;
	struct sa laddr;
	int err;

	if (!ngp || !srv || !sa_isset(srv, SA_ALL))
		return EINVAL;

	ng = mem_zalloc(sizeof(*ng), client_destructor);
	if (!ng)
		return ENOMEM;

	ng->srv = *srv;
	ng->prefix = rand_u32();
	ng->conf.tries = conf && conf->tries ? conf->tries : NG_TRIES;
	ng->conf.timeout_ms = conf && conf->timeout_ms ? conf->timeout_ms
						       : NG_TIMEOUT_MS;

	err = hash_alloc(&ng->reqs, NG_HASH_SZ);
	if (err)
		goto out;

	sa_init(&laddr, sa_af(srv));
	err = udp_listen(&ng->us, &laddr, recv_handler, ng);
	if (err)
		goto out;

	udp_rxsz_set(ng->us, NG_RX_SZ);

 out:
	if (err)
		mem_deref(ng);
	else
		*ngp = ng;

	return err;
}


const struct ng_stats *ng_client_stats(const struct ng_client *ng)
{
	return ng ? &ng->stats : NULL;
}


/**
 * Send one ng command: `{"command": command, args...}`
 *
 * @param reqp    Optional owner's pointer to the request (see above)
 * @param ng      Client
 * @param command Command name ("offer", "ping", ...)
 * @param args    Its other arguments, or NULL
 * @param resph   Called once, with the reply or an error
 * @param arg     Handler argument
 *
 * @return 0 if sent (the handler will be called), otherwise errorcode
 */
int ng_command(struct ng_req **reqp, struct ng_client *ng,
	       const char *command, const struct odict *args,
	       ng_resp_h *resph, void *arg)
{
	struct ng_req *req;
	int err;

	if (!ng || !str_isset(command))
		return EINVAL;

	req = mem_zalloc(sizeof(*req), req_destructor);
	if (!req)
		return ENOMEM;

	req->ng = ng;
	req->resph = resph;
	req->arg = arg;
	(void)re_snprintf(req->cookie, sizeof(req->cookie), "%08x_%llu",
			  ng->prefix, (unsigned long long)++ng->seq);

	req->mb = mbuf_alloc(256);
	if (!req->mb) {
		err = ENOMEM;
		goto out;
	}

	err = mbuf_printf(req->mb, "%s d%H%H%He", req->cookie,
			  bencode_encode_str, "command",
			  bencode_encode_str, command,
			  bencode_encode_entries, args);
	if (err)
		goto out;

	err = req_send(req);
	if (err)
		goto out;

	hash_append(ng->reqs, hash_joaat_str(req->cookie), &req->he, req);
	tmr_start(&req->tmr, ng->conf.timeout_ms, timeout_handler, req);
	++ng->stats.sent;

	if (reqp) {
		*reqp = req;
		req->reqp = reqp;
	}

 out:
	if (err)
		mem_deref(req);

	return err;
}


static int add_str(struct odict *od, const char *key, const char *val)
{
	return val ? odict_entry_add(od, key, ODICT_STRING, val) : 0;
}


/**
 * "replace": the SDP's origin (o=) and session-level c= carry the
 * offerer's address; rtpengine rewrites only the media's unless asked,
 * and topology hiding needs all of them to name the relay.
 */
static int add_replace(struct odict *od)
{
	static const char *what[] = {"origin", "session-connection"};
	struct odict *arr;
	char key[4];
	int err;

	err = odict_alloc(&arr, NG_ODICT_HSZ);
	if (err)
		return err;

	for (size_t i = 0; i < ARRAY_SIZE(what) && !err; i++) {
		(void)re_snprintf(key, sizeof(key), "%zu", i);
		err = odict_entry_add(arr, key, ODICT_STRING, what[i]);
	}
	if (!err)
		err = odict_entry_add(od, "replace", ODICT_ARRAY, arr);

	mem_deref(arr);
	return err;
}


static int call_command(struct ng_req **reqp, struct ng_client *ng,
			const char *command, const struct ng_call *call,
			ng_resp_h *resph, void *arg)
{
	struct odict *args;
	int err;

	err = odict_alloc(&args, NG_ODICT_HSZ);
	if (err)
		return err;

	err  = add_str(args, "call-id", call->callid);
	err |= add_str(args, "from-tag", call->from_tag);
	err |= add_str(args, "to-tag", call->to_tag);
	err |= add_str(args, "sdp", call->sdp);
	if (!err && call->sdp)
		err = add_replace(args);
	if (err)
		goto out;

	err = ng_command(reqp, ng, command, args, resph, arg);

 out:
	mem_deref(args);
	return err;
}


/** Is rtpengine there? The reply's result is "pong" */
int ng_ping(struct ng_req **reqp, struct ng_client *ng,
	    ng_resp_h *resph, void *arg)
{
	return ng_command(reqp, ng, "ping", NULL, resph, arg);
}


/** Offer `sdp` from `from_tag`; the reply's "sdp" is rewritten to the relay */
int ng_offer(struct ng_req **reqp, struct ng_client *ng,
	     const struct ng_call *call, ng_resp_h *resph, void *arg)
{
	if (!call || !call->callid || !call->from_tag || !call->sdp)
		return EINVAL;

	return call_command(reqp, ng, "offer", call, resph, arg);
}


/** Answer from `to_tag` to the offer of `from_tag` */
int ng_answer(struct ng_req **reqp, struct ng_client *ng,
	      const struct ng_call *call, ng_resp_h *resph, void *arg)
{
	if (!call || !call->callid || !call->from_tag || !call->to_tag ||
	    !call->sdp)
		return EINVAL;

	return call_command(reqp, ng, "answer", call, resph, arg);
}


/** End the call, or only the `from_tag` leg of it when that is given */
int ng_delete(struct ng_req **reqp, struct ng_client *ng,
	      const struct ng_call *call, ng_resp_h *resph, void *arg)
{
	if (!call || !call->callid)
		return EINVAL;

	return call_command(reqp, ng, "delete", call, resph, arg);
}


/** The call's state and statistics as rtpengine sees them */
int ng_query(struct ng_req **reqp, struct ng_client *ng,
	     const struct ng_call *call, ng_resp_h *resph, void *arg)
{
	if (!call || !call->callid)
		return EINVAL;

	return call_command(reqp, ng, "query", call, resph, arg);
}
