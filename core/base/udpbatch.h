/**
 * @file udpbatch.h  UDP listeners read a batch of datagrams per wake-up
 */

void udpbatch_set(bool on);
void udpbatch_stats(uint64_t *readsp, uint64_t *datagramsp);
