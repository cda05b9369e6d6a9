/**
 * @file early.h  Ringing calls whose node died: what ending them needs, and the ending
 */

struct dialog;

void early_init(struct sip *sip);
int  early_note_invite(struct dialog *dlg, const struct sip_msg *msg);
void early_note_sent(struct dialog *dlg, const struct mbuf *mb,
		     const struct sa *dst);
int  early_end(struct dialog *dlg);
