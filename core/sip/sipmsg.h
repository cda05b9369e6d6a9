/**
 * @file sipmsg.h  Header rewriting: what the engine writes itself between the legs
 */

/** Max-Forwards of a request the engine starts (RFC 3261 8.1.1.6) */
enum { SIPMSG_MAX_FORWARDS = 70 };

struct dialog;

typedef bool (sipmsg_skip_h)(enum sip_hdrid id);

bool sipmsg_is_hop(enum sip_hdrid id);
int  sipmsg_copy_hdrs(struct mbuf *mb, const struct sip_msg *msg,
		      sipmsg_skip_h *skip);
int  sipmsg_copy_hdr(struct mbuf *mb, const struct sip_msg *msg,
		     enum sip_hdrid id);
int  sipmsg_route_set(char **routep, const struct sip_msg *msg, bool reverse);
int  sipmsg_route_first(struct pl *uri, const char *route);
int  sipmsg_contact_uri(struct pl *uri, const struct sip_msg *msg);
bool sipmsg_has_sdp(const struct sip_msg *msg);
void sipmsg_body(struct pl *body, const struct sip_msg *msg);
int  sipmsg_body_str(char **strp, const struct sip_msg *msg);
int  sipmsg_print_contact(struct mbuf *mb, const struct dialog *dlg,
			  unsigned leg, const struct sa *laddr,
			  enum sip_transp tp);
int  sipmsg_print_body(struct mbuf *mb, const char *ctype, const char *body);
uint32_t sipmsg_max_forwards(const struct sip_msg *msg);
uint32_t sipmsg_max_forwards_next(const struct sip_msg *msg);
bool sipmsg_is_target_refresh(const struct pl *met);
