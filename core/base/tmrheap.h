/**
 * @file tmrheap.h  libre's timers, kept in a binary heap instead of a sorted list
 */

uint32_t tmrheap_count(void);
uint64_t tmrheap_steps(void);
