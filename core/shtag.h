/**
 * @file shtag.h  (not yet written)
 */
