/**
 * @file wsconn.h  libre 1.1.0's incoming WebSocket connections, made usable
 */

struct sip_msg;

void wsconn_touch(const struct sip_msg *msg);
