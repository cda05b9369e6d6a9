/**
 * @file nict.h  Non-INVITE client transactions, without libre's lingering timer
 */

struct nict;

int  nict_init(struct sip *sip);
void nict_close(void);
int  nict_request(struct nict **ntp, const struct pl *met, const char *ruri,
		  const struct uri *hop, struct mbuf *hdrs,
		  sip_send_h *sendh, sip_resp_h *resph, void *arg);
bool nict_response(const struct sip_msg *msg);
