/**
 * @file sipcheck.h  The door: what a message must be before the engine reads it
 */

/** Why a message may not go further */
struct sipcheck {
	uint16_t scode;       /* answer a request with it; 0: drop silently */
	const char *reason;   /* reason phrase, or why it is dropped */
};

int  sipcheck_request(const struct sip_msg *msg, struct sipcheck *chk);
int  sipcheck_response(const struct sip_msg *msg, struct sipcheck *chk);
bool sipcheck_refuse(struct sip *sip, const struct sip_msg *msg);
