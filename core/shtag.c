/**
 * @file shtag.c  (not yet written)
 */
