/**
 * @file policy.c  (not yet written)
 */
