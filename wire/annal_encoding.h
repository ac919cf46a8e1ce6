/*  annal_encoding.h: the two encodings of the wire, as an opaque value.

    The codec detects a request's encoding (annal_request.h) and answers in
    it (annal_body.h); everything in between carries the value without
    branching on it. */
#ifndef ANNAL_ENCODING_H
#define ANNAL_ENCODING_H

typedef enum { ANNAL_ENC_JSON = 0, ANNAL_ENC_MSGPACK = 1 } annal_encoding_t;

#endif
