/*  testutil_request.h: for the C tests of the store: a JSON append request
    decoded by the codec, so a case writes its events as the wire does. */
#ifndef ANNAL_TESTUTIL_REQUEST_H
#define ANNAL_TESTUTIL_REQUEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_codec.h"

/* Decodes a JSON append request (the events to append); exits on a bad one.
   annal_request_reset frees it. */
static inline annal_request_t t_request(const char *json)
{
    annal_request_t req;
    annal_encoding_t enc;
    char reason[256];
    if (annal_request_decode((const uint8_t *) json, strlen(json), NULL, &req, &enc, reason,
                             sizeof reason)) {
        fprintf(stderr, "bad test request %s: %s\n", json, reason);
        exit(1);
    }
    return req;
}

#endif
