/**
 * @file repl.c  (not yet written)
 */
