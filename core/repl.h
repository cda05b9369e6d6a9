/**
 * @file repl.h  (not yet written)
 */
