/**
 * @file media.h  A call's media anchored in a relay: offer, answer, delete
 */

struct mrelay;
struct media_call;

/**
 * An operation ended: `sdp` is the relay's rewritten SDP (offer and
 * answer; NULL for delete and on error)
 */
typedef void (media_h)(int err, const char *sdp, void *arg);

int media_call_alloc(struct media_call **mcp, struct mrelay *relay,
		     const char *callid);
struct mrelay *media_call_relay(const struct media_call *mc);
int media_offer(struct media_call *mc, const char *from_tag,
		const char *to_tag, const char *sdp, media_h *h, void *arg);
int media_answer(struct media_call *mc, const char *from_tag,
		 const char *to_tag, const char *sdp, media_h *h, void *arg);
int media_delete(struct media_call *mc, media_h *h, void *arg);
