/**
 * @file uvre.h  libuv loop embedded in libre's main loop
 */

#include <uv.h>

int  uvre_init(void);
void uvre_close(void);
uv_loop_t *uvre_loop(void);
void uvre_kick(void);
