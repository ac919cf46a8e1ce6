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

/* Finds key in the top-level map of possibly malformed or too deeply nested
   MessagePack (no recursion) and reads its integer value. Returns 0, or -1
   when the key is absent or its value is not an int64. */
int annal_msgpack_find_int(const uint8_t *data, size_t size, const char *key, int64_t *value);

/* Packs a JSON value canonically. Returns 0 or -1 with a reason. */
int annal_value_pack_json(msgpack_packer *pk, const json_t *v, const char **why);

/* Packs a decoded MessagePack value canonically (bin becomes str when it is
   UTF-8; ext, non-str keys, non-finite floats and integers past int64 are
   refused). Returns 0 or -1 with a reason. */
int annal_value_pack_msgpack(msgpack_packer *pk, const msgpack_object *o, const char **why);

/* Turns a canonical blob into a new JSON value; NULL when it is not one. */
json_t *annal_value_to_json(const uint8_t *data, size_t size);

/* A growing text buffer; failed is set (and further writes dropped) when
   memory runs out. */
typedef struct {
    char *data;  /* NUL-terminated text, owned */
    size_t len;  /* bytes written */
    size_t cap;  /* bytes allocated */
    bool failed; /* out of memory at some point */
} annal_buf_t;

void annal_buf_put(annal_buf_t *b, const void *data, size_t n);
void annal_buf_puts(annal_buf_t *b, const char *s);
void annal_buf_free(annal_buf_t *b);

/* JSON text (annal_json.c): a string (n bytes of UTF-8), a double, and a
   canonical blob (returns -1 when the bytes are not one). */
void annal_json_string(annal_buf_t *b, const char *s, size_t n);
void annal_json_double(annal_buf_t *b, double d);
int annal_json_value(annal_buf_t *b, const uint8_t *blob, size_t size);

#endif
