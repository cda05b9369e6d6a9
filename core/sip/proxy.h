/**
 * @file proxy.h  The SIP path: requests and responses between the legs
 */

#ifndef REHOME_PROXY_H
#define REHOME_PROXY_H

#include "conf.h"
#include "dialog.h"

struct rh_conf;

enum {
	PROXY_TARGET_SZ = 256,
	PROXY_REASON_SZ = 64,
};

/** What the engine decides for a new call before it is relayed */
struct proxy_route {
	char shtag[CONF_SHTAG_SZ]; /* sharing tag; empty = default_shtag */
	char target[PROXY_TARGET_SZ]; /* next hop URI; empty = upstream/R-URI */
	uint16_t reject;      /* non-zero: answer the INVITE with this code */
	char reason[PROXY_REASON_SZ];
	uint32_t retry_after; /* seconds, with 503 */
	bool no_media;        /* not anchored in a media relay */
};

typedef void (proxy_route_h)(const struct sip_msg *msg, const char *lsnr_tag,
			     struct proxy_route *rt, void *arg);
/** Who handles an in-dialog request for a dialog this node holds */
enum proxy_serve {
	PROXY_SERVE = 0,   /* this node serves the dialog */
	PROXY_FORWARD,     /* its live owner does: forward it there */
	PROXY_HOLD,        /* nobody may change it now: 503 Retry-After */
};

typedef enum proxy_serve (proxy_serve_h)(const struct dialog *dlg,
					 const struct sip_msg *msg,
					 enum dialog_leg_id from,
					 struct sa *owner, void *arg);

/**
 * Destination of a request sent into a dialog. Every context passed as
 * `arg` to proxy_request() starts with one, so that the Contact can be
 * written once libre has chosen the local address.
 */
struct proxy_dest {
	struct dialog *dlg;
	enum dialog_leg_id to;
	bool contact;     /* write our Contact */
	bool forward;     /* passed on to the owner node: change nothing */
};

int  proxy_init(struct sip *sip, const struct rh_conf *cfg);
void proxy_close(void);
void proxy_set_route_handler(proxy_route_h *h, void *arg);
void proxy_set_serve_handler(proxy_serve_h *h, void *arg);
int  proxy_request(struct sip_request **reqp, struct proxy_dest *dest,
		   const char *met, const char *ctype, const char *body,
		   sip_resp_h *resph);
int  proxy_ack(struct dialog *dlg, enum dialog_leg_id to, const char *ctype,
	       const char *body);
int  proxy_hangup(struct dialog *dlg, const char *why);
int  proxy_bye(struct dialog *dlg, enum dialog_leg_id leg);

#endif
