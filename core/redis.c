/**
 * @file redis.c  (not yet written)
 */
