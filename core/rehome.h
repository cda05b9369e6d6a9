/**
 * @file rehome.h  (not yet written)
 */
