/**
 * @file ctl.h  (not yet written)
 */
