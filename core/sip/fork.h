/**
 * @file fork.h  A 2xx from another branch of a forked INVITE: ACK and BYE
 */

int fork_answer(struct sip *sip, const struct sip_msg *msg);
