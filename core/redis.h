/**
 * @file redis.h  (not yet written)
 */
