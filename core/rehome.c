/**
 * @file rehome.c  (not yet written)
 */
