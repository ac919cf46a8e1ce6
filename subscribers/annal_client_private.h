/*  annal_client_private.h: what the subscription borrows from the client. */
#ifndef ANNAL_CLIENT_PRIVATE_H
#define ANNAL_CLIENT_PRIVATE_H

#include "annal_client.h"
#include "annal_codec.h"
#include "annal_curve_private.h"

/* Fills r from an event message (strings owned by m). Returns 0, or -1 when
   a field is missing. */
int annal_record_from_msg(annal_msg_t *m, annal_record_t *r);

#endif
