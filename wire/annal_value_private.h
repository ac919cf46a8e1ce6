/*  annal_value_private.h: conversions between blobs and the two wire
    encodings, shared by the codec files only. */
#ifndef ANNAL_VALUE_PRIVATE_H
#define ANNAL_VALUE_PRIVATE_H

#include <jansson.h>
#include <msgpack.h>

#include "annal_value.h"

/* Checks that data is exactly one well-formed MessagePack value whose
   containers nest at most max_depth deep and whose lengths fit the bytes
   present, before msgpack-c allocates anything for it. Returns 0 or -1 and
   a reason in why. */
int annal_msgpack_check(const uint8_t *data, size_t size, int max_depth, const char **why);

/* Packs a JSON value canonically. Returns 0 or -1 with a reason. */
int annal_value_pack_json(msgpack_packer *pk, const json_t *v, const char **why);

/* Packs a decoded MessagePack value canonically (bin becomes str when it is
   UTF-8; ext, non-str keys, non-finite floats and integers past int64 are
   refused). Returns 0 or -1 with a reason. */
int annal_value_pack_msgpack(msgpack_packer *pk, const msgpack_object *o, const char **why);

/* Turns a canonical blob into a new JSON value; NULL when it is not one. */
json_t *annal_value_to_json(const uint8_t *data, size_t size);

#endif
