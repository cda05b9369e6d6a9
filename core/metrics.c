/**
 * @file metrics.c  (not yet written)
 */
