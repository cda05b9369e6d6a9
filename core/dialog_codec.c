/**
 * @file dialog_codec.c  (not yet written)
 */
