/*  annal_value.c: canonical MessagePack blobs, their checks and conversions,
    and JSON Merge Patch (RFC 7386) on value trees (jansson underneath). */
#include "annal_value_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const uint8_t ANNAL_VALUE_EMPTY_OBJECT[1] = {0x80};

void annal_blob_free(annal_blob_t *b)
{
    free(b->data);
    b->data = NULL;
    b->size = 0;
}

int annal_blob_copy(annal_blob_t *b, const uint8_t *data, size_t size)
{
    b->data = malloc(size ? size : 1);
    if (!b->data)
        return -1;
    memcpy(b->data, data, size);
    b->size = size;
    return 0;
}

bool annal_value_is_object(const uint8_t *data, size_t size)
{
    return size > 0 && ((data[0] & 0xf0) == 0x80 || data[0] == 0xde || data[0] == 0xdf);
}

bool annal_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *) str;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path: eight bytes at a time while no high bit is set */
        uint64_t word;
        while (i + 8 <= len && (memcpy(&word, s + i, 8), (word & 0x8080808080808080ULL) == 0))
            i += 8;
        if (i >= len)
            break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        }
        else
            return false;
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* --- structural check of untrusted MessagePack ------------------------------ */

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads the header at *off: how many bytes of payload follow (*skip) and how
   many values it contains (*items). Returns -1 on a byte that starts nothing. */
static int s_header(const uint8_t *p, size_t size, size_t *off, uint64_t *skip, uint64_t *items)
{
    uint8_t c = p[(*off)++];
    size_t left = size - *off;
    int hdr = 0;
    *skip = *items = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return 0;
    if ((c & 0xf0) == 0x80)
        *items = 2 * (uint64_t) (c & 0x0f);
    else if ((c & 0xf0) == 0x90)
        *items = c & 0x0f;
    else if ((c & 0xe0) == 0xa0)
        *skip = c & 0x1f;
    else if (c == 0xcc || c == 0xd0 || c == 0xd4)
        *skip = c == 0xd4 ? 2 : 1;
    else if (c == 0xcd || c == 0xd1 || c == 0xd5)
        *skip = c == 0xd5 ? 3 : 2;
    else if (c == 0xca || c == 0xce || c == 0xd2 || c == 0xd6)
        *skip = c == 0xd6 ? 5 : 4;
    else if (c == 0xcb || c == 0xcf || c == 0xd3 || c == 0xd7)
        *skip = c == 0xd7 ? 9 : 8;
    else if (c == 0xd8)
        *skip = 17;
    else if (c == 0xc4 || c == 0xd9 || c == 0xc7)
        hdr = 1;
    else if (c == 0xc5 || c == 0xda || c == 0xc8 || c == 0xdc || c == 0xde)
        hdr = 2;
    else if (c == 0xc6 || c == 0xdb || c == 0xc9 || c == 0xdd || c == 0xdf)
        hdr = 4;
    else
        return -1;
    if (hdr) {
        if (left < (size_t) hdr)
            return -1;
        uint64_t n = s_be(p + *off, hdr);
        *off += hdr;
        if (c == 0xdc || c == 0xdd)
            *items = n;
        else if (c == 0xde || c == 0xdf)
            *items = 2 * n;
        else
            *skip = n + (c >= 0xc7 && c <= 0xc9); /* ext: one type byte more */
    }
    return 0;
}

/* Skips one value at *off without recursion, whatever its depth. */
static int s_skip(const uint8_t *p, size_t size, size_t *off)
{
    uint64_t pending = 1;
    while (pending) {
        uint64_t skip, items;
        if (*off >= size || s_header(p, size, off, &skip, &items))
            return -1;
        pending--;
        if (skip > size - *off || items > size - *off)
            return -1;
        *off += skip;
        pending += items;
    }
    return 0;
}

/* Walks one value at *off; containers recurse, at most max_depth deep. */
static int s_check(const uint8_t *p, size_t size, size_t *off, int depth, int max_depth,
                   const char **why)
{
    *why = "MessagePack is truncated";
    if (*off >= size)
        return -1;
    uint8_t c = p[*off];
    if ((c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8)) {
        *why = "MessagePack ext types are not accepted";
        return -1;
    }
    uint64_t skip, items;
    if (s_header(p, size, off, &skip, &items)) {
        if (c == 0xc1)
            *why = "MessagePack has an invalid type byte";
        return -1;
    }
    if (skip > size - *off || items > size - *off)
        return -1;
    *off += skip;
    bool container = (c & 0xe0) == 0x80 || (c >= 0xdc && c <= 0xdf);
    if (container && depth + 1 > max_depth) { /* empty ones too, as in JSON */
        *why = "nesting too deep";
        return -1;
    }
    for (uint64_t i = 0; i < items; i++)
        if (s_check(p, size, off, depth + 1, max_depth, why))
            return -1;
    return 0;
}

int annal_msgpack_check(const uint8_t *data, size_t size, int max_depth, const char **why)
{
    size_t off = 0;
    if (s_check(data, size, &off, 0, max_depth, why))
        return -1;
    if (off != size) {
        *why = "trailing bytes after the MessagePack value";
        return -1;
    }
    return 0;
}

int annal_msgpack_find_int(const uint8_t *p, size_t size, const char *key, int64_t *value)
{
    size_t off = 0, klen = strlen(key);
    uint64_t skip, items;
    if (size == 0 || (p[0] & 0xf0) != 0x80) {
        if (size == 0 || (p[0] != 0xde && p[0] != 0xdf))
            return -1;
    }
    if (s_header(p, size, &off, &skip, &items))
        return -1;
    int found = -1; /* the last one counts, as when the body decodes */
    for (uint64_t i = 0; i < items / 2; i++) {
        size_t kstart = off;
        if (off >= size)
            return found;
        uint8_t c = p[off];
        if (s_skip(p, size, &off))
            return found;
        bool match = (c & 0xe0) == 0xa0 && (size_t) (c & 0x1f) == klen
                     && memcmp(p + kstart + 1, key, klen) == 0;
        if (match && off < size) {
            found = -1;
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t voff = off;
            size_t vend = off, unused = 0;
            if (s_skip(p, size, &vend) == 0
                && msgpack_unpack_next(&u, (const char *) p + voff, vend - voff, &unused)
                       == MSGPACK_UNPACK_SUCCESS) {
                if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER && u.data.via.u64 <= INT64_MAX) {
                    *value = (int64_t) u.data.via.u64;
                    found = 0;
                }
                else if (u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                    *value = u.data.via.i64;
                    found = 0;
                }
            }
            msgpack_unpacked_destroy(&u);
        }
        if (s_skip(p, size, &off))
            return found;
    }
    return found;
}

/* --- conversions ----------------------------------------------------------- */

int annal_value_pack_json(msgpack_packer *pk, const json_t *v, const char **why)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *m;
        msgpack_pack_map(pk, json_object_size(v));
        json_object_keylen_foreach ((json_t *) v, k, klen, m) {
            msgpack_pack_str_with_body(pk, k, klen);
            if (annal_value_pack_json(pk, m, why))
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            if (annal_value_pack_json(pk, json_array_get(v, i), why))
                return -1;
        return 0;
    }
    case JSON_STRING:
        return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL: return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE: return msgpack_pack_true(pk);
    case JSON_FALSE: return msgpack_pack_false(pk);
    case JSON_NULL: return msgpack_pack_nil(pk);
    }
    *why = "unknown JSON value";
    return -1;
}

static int s_pack_text(msgpack_packer *pk, const char *s, uint32_t n, const char **why)
{
    if (!annal_utf8_valid(s, n)) {
        *why = "a string is not valid UTF-8";
        return -1;
    }
    return n ? msgpack_pack_str_with_body(pk, s, n) : msgpack_pack_str(pk, 0);
}

/* A map key's place in s_pack_map's sort: its bytes, then its position. */
typedef struct {
    const char *ptr; /* key bytes (may be NULL when empty) */
    uint32_t len;    /* key length */
    uint32_t index;  /* position in the map */
} map_key_t;

static int s_key_cmp(const void *a, const void *b)
{
    const map_key_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c == 0 && x->len != y->len)
        c = x->len < y->len ? -1 : 1;
    if (c == 0)
        c = x->index < y->index ? -1 : x->index > y->index;
    return c;
}

static bool s_same_key(const msgpack_object *a, const msgpack_object *b)
{
    return a->via.str.size == b->via.str.size
           && (a->via.str.size == 0
               || memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
}

/* Whether map o names a key twice: pairwise for small maps (no allocation on
   the common path), else assumed (the sort finds out). */
static bool s_has_repeats(const msgpack_object *o)
{
    uint32_t n = o->via.map.size;
    if (n > 16)
        return true;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = 0; j < i; j++)
            if (s_same_key(&o->via.map.ptr[i].key, &o->via.map.ptr[j].key))
                return true;
    return false;
}

/* A packer's writer that keeps nothing: for checking a value's rules. */
static int s_discard(void *data, const char *buf, size_t len)
{
    (void) data;
    (void) buf;
    (void) len;
    return 0;
}

/* Packs a map canonically. A key that appears more than once keeps its
   first place and its last value, as a JSON object parsed by jansson does,
   so that both encodings store the same value. O(n log n) in the keys. */
static int s_pack_map(msgpack_packer *pk, const msgpack_object *o, const char **why)
{
    uint32_t n = o->via.map.size;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR && k->type != MSGPACK_OBJECT_BIN) {
            *why = "a map key is not a string";
            return -1;
        }
        if (k->via.str.size && memchr(k->via.str.ptr, 0, k->via.str.size)) {
            *why = "a map key contains a NUL character"; /* JSON parsers refuse it */
            return -1;
        }
    }
    /* value[i]: the entry whose value goes out in place i, or UINT32_MAX when
       i repeats an earlier key and goes out not at all */
    uint32_t *value = NULL;
    map_key_t *keys = NULL;
    uint32_t out = n;
    if (n > 1 && s_has_repeats(o)) {
        keys = malloc(n * sizeof *keys);
        value = malloc(n * sizeof *value);
        if (!keys || !value) {
            free(keys);
            free(value);
            *why = "out of memory";
            return -1;
        }
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            keys[i] = (map_key_t){k->via.str.ptr, k->via.str.size, i};
        }
        qsort(keys, n, sizeof *keys, s_key_cmp);
        for (uint32_t i = 0; i < n;) {
            uint32_t j = i;
            while (j + 1 < n
                   && s_same_key(&o->via.map.ptr[keys[j + 1].index].key,
                                 &o->via.map.ptr[keys[i].index].key))
                j++;
            value[keys[i].index] = keys[j].index;
            for (uint32_t d = i + 1; d <= j; d++)
                value[keys[d].index] = UINT32_MAX;
            out -= j - i;
            i = j + 1;
        }
        free(keys);
    }
    int rc = 0;
    if (value) {
        /* a value that a later one replaces is not stored, but it is still
           held to the rules of a value: the request is refused as it was
           before repeats were folded, and as JSON's parser refuses it */
        bool *stored = calloc(n, sizeof *stored);
        if (!stored) {
            free(value);
            *why = "out of memory";
            return -1;
        }
        for (uint32_t i = 0; i < n; i++)
            if (value[i] != UINT32_MAX)
                stored[value[i]] = true;
        msgpack_packer discard;
        msgpack_packer_init(&discard, NULL, s_discard);
        for (uint32_t i = 0; i < n && rc == 0; i++)
            if (!stored[i])
                rc = annal_value_pack_msgpack(&discard, &o->via.map.ptr[i].val, why);
        free(stored);
    }
    if (rc == 0)
        msgpack_pack_map(pk, out);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        uint32_t v = value ? value[i] : i;
        if (v != UINT32_MAX)
            rc = annal_value_pack_msgpack(pk, &o->via.map.ptr[i].key, why)
                         || annal_value_pack_msgpack(pk, &o->via.map.ptr[v].val, why)
                     ? -1
                     : 0;
    }
    free(value);
    return rc;
}

int annal_value_pack_msgpack(msgpack_packer *pk, const msgpack_object *o, const char **why)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return msgpack_pack_nil(pk);
    case MSGPACK_OBJECT_BOOLEAN:
        return o->via.boolean ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            *why = "an integer is out of the 64-bit signed range";
            return -1;
        }
        return msgpack_pack_int64(pk, (int64_t) o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return msgpack_pack_int64(pk, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            *why = "a float is not finite (JSON cannot carry it)";
            return -1;
        }
        return msgpack_pack_double(pk, o->via.f64);
    case MSGPACK_OBJECT_STR: return s_pack_text(pk, o->via.str.ptr, o->via.str.size, why);
    case MSGPACK_OBJECT_BIN: return s_pack_text(pk, o->via.bin.ptr, o->via.bin.size, why);
    case MSGPACK_OBJECT_ARRAY:
        msgpack_pack_array(pk, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (annal_value_pack_msgpack(pk, &o->via.array.ptr[i], why))
                return -1;
        return 0;
    case MSGPACK_OBJECT_MAP: return s_pack_map(pk, o, why);
    default: *why = "MessagePack ext types are not accepted"; return -1;
    }
}

/* A str's bytes: msgpack-c may hand "" over as a NULL pointer, which jansson
   refuses (a top-level "" and a "" key did not decode: found by fuzz_fold). */
static const char *s_text(const msgpack_object *o)
{
    return o->via.str.size ? o->via.str.ptr : "";
}

static json_t *s_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > INT64_MAX ? NULL : json_integer((json_int_t) o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn_nocheck(s_text(o), o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *m = s_to_json(&o->via.array.ptr[i]);
            if (!m || json_array_append_new(a, m)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        for (uint32_t i = 0; obj && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *m = k->type == MSGPACK_OBJECT_STR ? s_to_json(&o->via.map.ptr[i].val) : NULL;
            if (!m || json_object_setn_new_nocheck(obj, s_text(k), k->via.str.size, m)) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    default: return NULL;
    }
}

json_t *annal_value_to_json(const uint8_t *data, size_t size)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *v = NULL;
    const char *why;
    /* checked first: msgpack-c allocates what a length header claims
       before it finds the bytes missing (found by fuzz_fold) */
    if (annal_msgpack_check(data, size, 64, &why) == 0
        && msgpack_unpack_next(&u, (const char *) data, size, &off) == MSGPACK_UNPACK_SUCCESS
        && off == size)
        v = s_to_json(&u.data);
    msgpack_unpacked_destroy(&u);
    return v;
}

/* --- value trees and merge patch -------------------------------------------- */

annal_value_t *annal_value_new_object(void)
{
    return (annal_value_t *) json_object();
}

annal_value_t *annal_value_decode(const uint8_t *data, size_t size)
{
    return (annal_value_t *) annal_value_to_json(data, size);
}

/* RFC 7386 MergePatch: takes target's reference, borrows patch, returns the
   new reference. */
static json_t *s_merge(json_t *target, json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_incref(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach (patch, k, klen, v) {
        if (json_is_null(v)) {
            json_object_deln(target, k, klen);
            continue;
        }
        json_t *merged = s_merge(json_incref(json_object_getn(target, k, klen)), v);
        if (!merged || json_object_setn_new_nocheck(target, k, klen, merged)) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

int annal_value_merge_patch(annal_value_t **target, const uint8_t *patch, size_t size)
{
    json_t *p = annal_value_to_json(patch, size);
    if (!p)
        return -1;
    json_t *t = s_merge((json_t *) *target, p);
    json_decref(p);
    *target = (annal_value_t *) t;
    return t ? 0 : -1;
}

static int s_sbuffer_take(msgpack_sbuffer *sb, annal_blob_t *out)
{
    out->data = (uint8_t *) sb->data;
    out->size = sb->size;
    sb->data = NULL;
    return out->data ? 0 : -1;
}

int annal_value_encode(const annal_value_t *value, annal_blob_t *out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char *why;
    int rc = annal_value_pack_json(&pk, (const json_t *) value, &why);
    if (rc == 0)
        rc = s_sbuffer_take(&sb, out);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

void annal_value_destroy(annal_value_t **value)
{
    if (*value) {
        json_decref((json_t *) *value);
        *value = NULL;
    }
}
