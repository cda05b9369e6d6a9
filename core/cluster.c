/**
 * @file cluster.c  (not yet written)
 */
