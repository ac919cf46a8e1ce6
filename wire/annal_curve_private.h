/*  annal_curve_private.h: what libannal and the bridge share of CURVE
    beyond the public loader (annal/annal_curve.h). */
#ifndef ANNAL_CURVE_PRIVATE_H
#define ANNAL_CURVE_PRIVATE_H

#include "annal_curve.h"

/* Makes a libzmq socket a CURVE client with curve's keys (NULL: leaves it
   plaintext). 0, or -1. */
int annal_curve_apply(void *sock, const annal_curve_t *curve);

#endif
