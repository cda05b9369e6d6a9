/**
 * @file hdrfilter.h  Topology hiding: which headers cross from one leg to the other
 */

struct rh_conf;

/** A dialog's Call-ID on the leg a message comes from and goes to */
struct hdrfilter_ids {
	struct pl from_callid;
	const char *to_callid;
};

void hdrfilter_init(const struct rh_conf *cfg);
int  hdrfilter_print(struct mbuf *mb, const struct sip_msg *msg,
		     const struct hdrfilter_ids *ids);
