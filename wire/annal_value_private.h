/*  annal_value_private.h: what the codec files share that names jansson's
    and msgpack-c's types: conversions between blobs and the two encodings
    (annal_value.c), JSON text (annal_json.c), and the node accessor
    (annal_node.c). The only header that includes jansson.h or msgpack.h;
    nothing outside wire/ but the bridge's line codec includes it. */
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
   MessagePack (no recursion) and reads its integer value; of a key given
   twice, the last (as a decoded body counts it), up to where the body
   breaks off. Returns 0, or -1 when the key is absent or its value is not
   an int64. */
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

/* --- annal_node.c: one accessor over json_t and msgpack_object -------------- */

/* What a node holds, whichever encoding it came in. */
typedef enum {
    ANNAL_NODE_ABSENT, /* no such member, or a MessagePack type JSON has no name for */
    ANNAL_NODE_NULL,
    ANNAL_NODE_BOOL,
    ANNAL_NODE_INT,     /* fits int64 */
    ANNAL_NODE_BIGUINT, /* MessagePack unsigned past INT64_MAX */
    ANNAL_NODE_FLOAT,
    ANNAL_NODE_STR, /* JSON string, MessagePack str or bin */
    ANNAL_NODE_ARRAY,
    ANNAL_NODE_MAP
} annal_node_kind_t;

/* A borrowed view of one decoded value: at most one member is set, none
   when absent. Valid while the tree it points into is. */
typedef struct {
    const json_t *j;         /* JSON value, or NULL */
    const msgpack_object *m; /* MessagePack value, or NULL */
} annal_node_t;

annal_node_kind_t annal_node_kind(const annal_node_t *n);

/* Member key of map n; an absent member (or n not a map) is
   ANNAL_NODE_ABSENT; of duplicate keys the last wins. */
annal_node_t annal_node_get(const annal_node_t *n, const char *key);

/* True when n is absent or null: an optional field not given. */
bool annal_node_absent(const annal_node_t *n);

/* The value of an ANNAL_NODE_INT, BOOL or STR node (only of that kind).
   A string is len bytes, not NUL-terminated, possibly with NULs inside. */
int64_t annal_node_int(const annal_node_t *n);
bool annal_node_bool(const annal_node_t *n);
const char *annal_node_str(const annal_node_t *n, size_t *len);

/* A string node's bytes as a new NUL-terminated copy (caller frees); NULL
   out of memory. */
char *annal_node_str_dup(const annal_node_t *n);

/* Entries of an ANNAL_NODE_ARRAY, and entry i < that. */
size_t annal_node_size(const annal_node_t *n);
annal_node_t annal_node_at(const annal_node_t *n, size_t i);

/* Packs n canonically into a new blob. Returns 0, or -1 with a reason
   (borrowed, static). */
int annal_node_pack(const annal_node_t *n, annal_blob_t *out, const char **why);

/* Packs n as a value to be stored (event_data, metadata, state): canonical
   and at most max_depth - ANNAL_VALUE_DEPTH_BELOW levels deep, max_depth
   being the request's. Returns 0, or -1 with the reason in why. */
int annal_node_pack_value(const annal_node_t *n, size_t max_depth, annal_blob_t *out, char *why,
                          size_t whylen);

/* Depth of a JSON value, containers counted (a scalar is 0); stops
   counting past limit. */
int annal_node_json_depth(const json_t *v, int limit);

/* The first byte of a body that may be a JSON object (a brace, or
   whitespace before one), or a MessagePack map (fixmap, map 16, map 32). */
bool annal_node_json_start(uint8_t b);
bool annal_node_msgpack_map_start(uint8_t b);

#endif
