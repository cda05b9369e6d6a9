/**
 * @file cluster_int.h  Internal to the cluster module: the signing key
 */

int  cluster_msg_init(const char *secret);
void cluster_msg_close(void);
