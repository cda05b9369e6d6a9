/**
 * @file media.c  A call's media anchored in a relay: offer, answer, delete
 *
 * The proxy's view of rtpengine: a media call names the relay and the
 * ng call-id, and turns each SDP into the relay's version of it. It holds
 * a reference to its relay, which is also what the relay's call count
 * counts, so the count cannot drift from the calls that exist.
 *
 * rtpengine's offer and answer are directional: `from_tag` is the tag of
 * the side that sent the offer and `to_tag` the other side's, so a
 * re-INVITE from the callee swaps them; the caller passes both each time.
 *
 * Every operation with a handler belongs to its call: freeing the call
 * cancels them without calling back, as the caller's state is going too.
 * A delete without a handler is on its own instead, so that it still
 * reaches the relay (with its retries) after the call is freed. Each
 * operation holds its relay, and with it the ng client it is sent on, so
 * a detached delete keeps its relay alive until it ends (1.5 s at most
 * with the default retries), even when the relay set is freed first.
 */
#include <errno.h>
#include <re.h>
#include "log.h"
#include "ng.h"
#include "mrelay.h"
#include "media.h"
#include "media_int.h"

struct media_call {
	struct mrelay *relay;
	char *callid;
	struct list ops;           /* pending, cancelled with the call */
};

/** One pending operation */
struct media_op {
	struct le le;
	struct ng_req *req;
	struct mrelay *relay;
	const char *command;       /* for messages */
	bool want_sdp;
	media_h *h;
	void *arg;
};


static void call_destructor(void *arg)
{
	struct media_call *mc = arg;

	list_flush(&mc->ops);
	mrelay_call_detach(mc->relay);
	mem_deref(mc->relay);
	mem_deref(mc->callid);
}


static void op_destructor(void *arg)
{
	struct media_op *op = arg;

	list_unlink(&op->le);
	mem_deref(op->req);
	mem_deref(op->relay);
}


static void op_handler(int err, const struct odict *reply, void *arg)
{
	struct media_op *op = arg;
	const char *relay = mrelay_name(op->relay);
	media_h *h = op->h;
	void *harg = op->arg;
	const char *sdp = NULL;

	if (err == EPROTO)
		log_warn("media", "%s: %s refused: %s", relay, op->command,
			 odict_string(reply, "error-reason"));
	else if (err)
		log_warn("media", "%s: %s: %m", relay, op->command, err);

	if (!err && op->want_sdp) {
		sdp = odict_string(reply, "sdp");
		if (!sdp) {
			log_warn("media", "%s: %s: no sdp in the reply",
				 relay, op->command);
			err = EPROTO;
		}
	}

	mem_deref(op);
	if (h)
		h(err, sdp, harg);
}


typedef int (ng_call_h)(struct ng_req **reqp, struct ng_client *ng,
			const struct ng_call *call, ng_resp_h *resph,
			void *arg);


static int op_start(struct media_call *mc, ng_call_h *cmdh,
		    const char *command, const struct ng_call *call,
		    media_h *h, void *arg)
{
	struct media_op *op;
	int err;

	op = mem_zalloc(sizeof(*op), op_destructor);
	if (!op)
		return ENOMEM;

	op->relay = mem_ref(mc->relay);
	op->command = command;
	op->want_sdp = call->sdp != NULL;
	op->h = h;
	op->arg = arg;

	/* without a handler nobody owns it: it lives until it ends */
	err = cmdh(h ? &op->req : NULL, mrelay_ng(mc->relay), call,
		   op_handler, op);
	if (err) {
		mem_deref(op);
		return err;
	}

	if (h)
		list_append(&mc->ops, &op->le, op);

	return 0;
}


/**
 * A call's media, anchored in `relay` under the ng call-id `callid`
 *
 * @param mcp    New media call
 * @param relay  Its relay (see mrelay_choose)
 * @param callid The call-id rtpengine knows the call by
 *
 * @return 0 if success, otherwise errorcode
 */
int media_call_alloc(struct media_call **mcp, struct mrelay *relay,
		     const char *callid)
{
	struct media_call *mc;
	int err;

	if (!mcp || !relay || !str_isset(callid))
		return EINVAL;

	mc = mem_zalloc(sizeof(*mc), call_destructor);
	if (!mc)
		return ENOMEM;

	mc->relay = mem_ref(relay);
	mrelay_call_attach(relay);

	err = str_dup(&mc->callid, callid);
	if (err)
		mem_deref(mc);
	else
		*mcp = mc;

	return err;
}


struct mrelay *media_call_relay(const struct media_call *mc)
{
	return mc ? mc->relay : NULL;
}


/**
 * Hand an offer to the relay; `h` gets the SDP to send on instead
 *
 * @param mc       Media call
 * @param from_tag Tag of the side that offers
 * @param to_tag   Tag of the other side, NULL while it has none
 * @param sdp      The offer
 * @param h        Result handler
 * @param arg      Handler argument
 *
 * @return 0 if sent, otherwise errorcode
 */
int media_offer(struct media_call *mc, const char *from_tag,
		const char *to_tag, const char *sdp, media_h *h, void *arg)
{
	struct ng_call call = {
		.from_tag = from_tag, .to_tag = to_tag, .sdp = sdp
	};

	if (!mc || !from_tag || !sdp || !h)
		return EINVAL;

	call.callid = mc->callid;

	return op_start(mc, ng_offer, "offer", &call, h, arg);
}


/**
 * Hand the answer to the offer of `from_tag` to the relay
 */
int media_answer(struct media_call *mc, const char *from_tag,
		 const char *to_tag, const char *sdp, media_h *h, void *arg)
{
	struct ng_call call = {
		.from_tag = from_tag, .to_tag = to_tag, .sdp = sdp
	};

	if (!mc || !from_tag || !to_tag || !sdp || !h)
		return EINVAL;

	call.callid = mc->callid;

	return op_start(mc, ng_answer, "answer", &call, h, arg);
}


/**
 * End the call's media on the relay. With `h` NULL the delete is sent
 * (and retried) even if the call is freed right after.
 */
int media_delete(struct media_call *mc, media_h *h, void *arg)
{
	struct ng_call call = {.callid = NULL};

	if (!mc)
		return EINVAL;

	call.callid = mc->callid;

	return op_start(mc, ng_delete, "delete", &call, h, arg);
}
