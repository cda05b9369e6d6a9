/**
 * @file randbuf.h  libre's random numbers, served from a buffer of OpenSSL's
 */

void randbuf_init(void);
