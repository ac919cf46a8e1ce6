/*  annal_codec.h: the codec, all of it, for the includers that want it
    whole: the only code that knows JSON and MessagePack, in wire/.

    annal_request.h  requests in: decode, peek, the aggregate id rule
    annal_body.h     replies, published events and heartbeats out
    annal_msg.h      the client side's reader of replies and events
    annal_command.h  the commands
    annal_event_id.h event ids: new UUIDv7s, their text form
    annal_encoding.h the encoding, an opaque value to everyone else
    annal_value.h    canonical blobs and JSON text

    The modules share one accessor over jansson's and msgpack-c's trees
    (annal_node.c) and JSON text (annal_json.c), declared in
    annal_value_private.h: no other header names those libraries' types. */
#ifndef ANNAL_CODEC_H
#define ANNAL_CODEC_H

#include "annal_body.h"
#include "annal_command.h"
#include "annal_encoding.h"
#include "annal_error.h"
#include "annal_event.h"
#include "annal_event_id.h"
#include "annal_limits.h"
#include "annal_msg.h"
#include "annal_request.h"
#include "annal_value.h"

#endif
