/**
 * @file loopmark.h  Loop detection: our mark in the Via of what we send
 */

#define LOOPMARK_PARAM "rhloop"

int  loopmark_add(struct mbuf *mb);
bool loopmark_looped(const struct sip_msg *msg);
void loopmark_close(void);
