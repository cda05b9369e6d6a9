/**
 * @file policy.h  (not yet written)
 */
