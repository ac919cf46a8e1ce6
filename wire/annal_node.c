/*  annal_node.c: one accessor over json_t and msgpack_object, so that
    request decoding (annal_request.c) and the client-side reader
    (annal_msg.c) state each rule once for both encodings. Declared in
    annal_value_private.h, since its types are jansson's and msgpack-c's.

    A node borrows: it is valid while the tree it points into is (a jansson
    reference, or a msgpack-c zone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_limits.h"
#include "annal_value_private.h"

annal_node_kind_t annal_node_kind(const annal_node_t *n)
{
    if (n->j) {
        switch (json_typeof(n->j)) {
        case JSON_OBJECT: return ANNAL_NODE_MAP;
        case JSON_ARRAY: return ANNAL_NODE_ARRAY;
        case JSON_STRING: return ANNAL_NODE_STR;
        case JSON_INTEGER: return ANNAL_NODE_INT;
        case JSON_REAL: return ANNAL_NODE_FLOAT;
        case JSON_TRUE:
        case JSON_FALSE: return ANNAL_NODE_BOOL;
        case JSON_NULL: return ANNAL_NODE_NULL;
        }
    }
    if (n->m) {
        switch (n->m->type) {
        case MSGPACK_OBJECT_NIL: return ANNAL_NODE_NULL;
        case MSGPACK_OBJECT_BOOLEAN: return ANNAL_NODE_BOOL;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return n->m->via.u64 > INT64_MAX ? ANNAL_NODE_BIGUINT : ANNAL_NODE_INT;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return ANNAL_NODE_INT;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return ANNAL_NODE_FLOAT;
        case MSGPACK_OBJECT_STR:
        case MSGPACK_OBJECT_BIN: return ANNAL_NODE_STR;
        case MSGPACK_OBJECT_ARRAY: return ANNAL_NODE_ARRAY;
        case MSGPACK_OBJECT_MAP: return ANNAL_NODE_MAP;
        default: return ANNAL_NODE_ABSENT;
        }
    }
    return ANNAL_NODE_ABSENT;
}

annal_node_t annal_node_get(const annal_node_t *n, const char *key)
{
    annal_node_t out = {NULL, NULL};
    if (n->j)
        out.j = json_object_get(n->j, key);
    else if (n->m && n->m->type == MSGPACK_OBJECT_MAP) {
        size_t klen = strlen(key);
        for (uint32_t i = 0; i < n->m->via.map.size; i++) {
            const msgpack_object *k = &n->m->via.map.ptr[i].key;
            if ((k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN)
                && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
                out.m = &n->m->via.map.ptr[i].val;
        }
    }
    return out;
}

bool annal_node_absent(const annal_node_t *n)
{
    annal_node_kind_t k = annal_node_kind(n);
    return k == ANNAL_NODE_ABSENT || k == ANNAL_NODE_NULL;
}

int64_t annal_node_int(const annal_node_t *n)
{
    if (n->j)
        return json_integer_value(n->j);
    return n->m->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t) n->m->via.u64 : n->m->via.i64;
}

bool annal_node_bool(const annal_node_t *n)
{
    return n->j ? json_is_true(n->j) : n->m->via.boolean;
}

const char *annal_node_str(const annal_node_t *n, size_t *len)
{
    if (n->j) {
        *len = json_string_length(n->j);
        return json_string_value(n->j);
    }
    *len = n->m->via.str.size;
    return *len ? n->m->via.str.ptr : ""; /* msgpack-c may give "" a NULL pointer */
}

char *annal_node_str_dup(const annal_node_t *n)
{
    size_t len;
    const char *s = annal_node_str(n, &len);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

size_t annal_node_size(const annal_node_t *n)
{
    return n->j ? json_array_size(n->j) : n->m->via.array.size;
}

annal_node_t annal_node_at(const annal_node_t *n, size_t i)
{
    annal_node_t out = {NULL, NULL};
    if (n->j)
        out.j = json_array_get(n->j, i);
    else
        out.m = &n->m->via.array.ptr[i];
    return out;
}

int annal_node_pack(const annal_node_t *n, annal_blob_t *out, const char **why)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc =
        n->j ? annal_value_pack_json(&pk, n->j, why) : annal_value_pack_msgpack(&pk, n->m, why);
    if (rc == 0 && !sb.data) {
        *why = "out of memory";
        rc = -1;
    }

    if (rc == 0) {
        out->data = (uint8_t *) sb.data;
        out->size = sb.size;
        sb.data = NULL;
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int annal_node_pack_value(const annal_node_t *n, size_t max_depth, annal_blob_t *out, char *why,
                          size_t whylen)
{
    const char *reason;
    if (annal_node_pack(n, out, &reason)) {
        snprintf(why, whylen, "%s", reason);
        return -1;
    }
    const char *deep;
    int levels = (int) max_depth - ANNAL_VALUE_DEPTH_BELOW;
    if (annal_msgpack_check(out->data, out->size, levels, &deep)) {
        annal_blob_free(out);
        snprintf(why, whylen, "nests deeper than %d levels", levels);
        return -1;
    }
    return 0;
}

int annal_node_json_depth(const json_t *v, int limit)
{
    if (limit <= 0)
        return 1;
    int best = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach ((json_t *) v, k, m) {
            int d = annal_node_json_depth(m, limit - 1);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int d = annal_node_json_depth(json_array_get(v, i), limit - 1);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    return 0;
}

bool annal_node_json_start(uint8_t b)
{
    return b == '{' || b == ' ' || b == '\t' || b == '\n' || b == '\r';
}

bool annal_node_msgpack_map_start(uint8_t b)
{
    return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
}
