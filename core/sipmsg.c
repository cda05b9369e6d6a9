/**
 * @file sipmsg.c  (not yet written)
 */
