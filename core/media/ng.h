/**
 * @file ng.h  rtpengine ng protocol client over UDP
 */

#ifndef REHOME_NG_H
#define REHOME_NG_H

struct ng_client;
struct ng_req;

/** Retransmission: `tries` sends, `timeout_ms` apart (0: the defaults) */
struct ng_conf {
	uint32_t tries;          /* default 3 */
	uint32_t timeout_ms;     /* default 500 */
};

/** What came back, and what did not */
struct ng_stats {
	uint64_t sent;           /* requests, not counting retries */
	uint64_t retries;
	uint64_t timeouts;       /* requests that never got a reply */
	uint64_t errors;         /* replies with a result other than ok */
	uint64_t garbled;        /* datagrams that are not an ng reply */
	uint64_t stray;          /* replies to no pending request */
};

/** The call a command is about; NULL members are not sent */
struct ng_call {
	const char *callid;
	const char *from_tag;
	const char *to_tag;
	const char *sdp;
};

/**
 * A request ended: `reply` is the decoded reply (NULL on ETIMEDOUT), also
 * with EPROTO when rtpengine answered an error (see "error-reason").
 */
typedef void (ng_resp_h)(int err, const struct odict *reply, void *arg);

int ng_client_alloc(struct ng_client **ngp, const struct sa *srv,
		    const struct ng_conf *conf);
const struct ng_stats *ng_client_stats(const struct ng_client *ng);
int ng_command(struct ng_req **reqp, struct ng_client *ng,
	       const char *command, const struct odict *args,
	       ng_resp_h *resph, void *arg);
int ng_ping(struct ng_req **reqp, struct ng_client *ng,
	    ng_resp_h *resph, void *arg);
int ng_offer(struct ng_req **reqp, struct ng_client *ng,
	     const struct ng_call *call, ng_resp_h *resph, void *arg);
int ng_answer(struct ng_req **reqp, struct ng_client *ng,
	      const struct ng_call *call, ng_resp_h *resph, void *arg);
int ng_delete(struct ng_req **reqp, struct ng_client *ng,
	      const struct ng_call *call, ng_resp_h *resph, void *arg);
int ng_query(struct ng_req **reqp, struct ng_client *ng,
	     const struct ng_call *call, ng_resp_h *resph, void *arg);

#endif
