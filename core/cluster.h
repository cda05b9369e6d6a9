/**
 * @file cluster.h  (not yet written)
 */
