/**
 * @file media_int.h  Between the relays and the calls anchored in them
 */

struct mrelay;
struct ng_client;

struct ng_client *mrelay_ng(const struct mrelay *relay);
void mrelay_call_attach(struct mrelay *relay);
void mrelay_call_detach(struct mrelay *relay);
