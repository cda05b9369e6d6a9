/**
 * @file ctl.c  (not yet written)
 */
