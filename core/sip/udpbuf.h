/**
 * @file udpbuf.h  The kernel receive buffers of the UDP listeners
 */

struct listener;

int udpbuf_setup(struct listener *l, int size);
int udpbuf_metrics_print(struct re_printf *pf, void *arg);
