/**
 * @file listener.h  SIP listeners and their tags
 */

struct rh_conf;

/** A listening socket; the tag names its purpose, equal on every node */
struct listener {
	struct le le;
	enum sip_transp tp;
	struct sa addr;
	char *tag;
};

int  listener_init(struct sip *sip, const struct rh_conf *cfg);
void listener_close(void);
const struct listener *listener_by_tag(const char *tag, enum sip_transp tp);
const struct listener *listener_by_addr(const struct sa *laddr,
					enum sip_transp tp);
const struct listener *listener_first(void);
