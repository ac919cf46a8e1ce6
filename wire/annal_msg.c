/*  annal_msg.c: the client-side reader of replies and events (annal_msg.h),
    over the same accessor as request decoding (annal_node.c).

    A top-level message owns its tree (a jansson reference, or a msgpack-c
    zone over a copy of the bytes); child messages (annal_msg_item) borrow
    their parent's tree. Every string, JSON text and child handed out is
    recorded in owned and freed with the message that handed it out. */
#include "annal_msg.h"

#include <stdlib.h>
#include <string.h>

#include "annal_value_private.h"

#define MSG_MAX_DEPTH 64

struct annal_msg_t {
    annal_node_t root;       /* this message's map */
    json_t *json;            /* owned JSON tree (top-level message only) */
    msgpack_unpacked mp;     /* owned MessagePack zone (top-level only) */
    uint8_t *bytes;          /* the MessagePack bytes mp points into (top-level only) */
    bool top;                /* owns json / mp */
    void **owned;            /* strings and child messages to free */
    bool *is_child;          /* per owned entry: a child message */
    size_t nowned, capowned; /* entries in use, allocated */
};

static void *s_own(annal_msg_t *self, void *p, bool child)
{
    if (!p)
        return NULL;
    if (self->nowned == self->capowned) {
        size_t cap = self->capowned ? self->capowned * 2 : 8;
        void **owned = realloc(self->owned, cap * sizeof *owned);
        bool *is_child = owned ? realloc(self->is_child, cap * sizeof *is_child) : NULL;
        if (owned)
            self->owned = owned;
        if (!owned || !is_child) {
            if (child)
                annal_msg_destroy((annal_msg_t **) &p);
            else
                free(p);
            return NULL;
        }
        self->is_child = is_child;
        self->capowned = cap;
    }
    self->owned[self->nowned] = p;
    self->is_child[self->nowned++] = child;
    return p;
}

annal_msg_t *annal_msg_decode(const uint8_t *data, size_t size)
{
    if (size == 0)
        return NULL;
    annal_msg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->top = true;
    msgpack_unpacked_init(&self->mp);
    uint8_t b = data[0];
    if (annal_node_json_start(b)) {
        json_error_t err;
        self->json = json_loadb((const char *) data, size, JSON_ALLOW_NUL, &err);
        if (json_is_object(self->json)
            && annal_node_json_depth(self->json, MSG_MAX_DEPTH + 1) <= MSG_MAX_DEPTH) {
            self->root.j = self->json;
            return self;
        }
    }
    else if (annal_node_msgpack_map_start(b)) {
        const char *why;
        size_t off = 0;
        /* msgpack-c's objects point into the bytes they came from: keep a copy */
        self->bytes = malloc(size);
        if (self->bytes)
            memcpy(self->bytes, data, size);
        if (self->bytes && annal_msgpack_check(data, size, MSG_MAX_DEPTH, &why) == 0
            && msgpack_unpack_next(&self->mp, (const char *) self->bytes, size, &off)
                   == MSGPACK_UNPACK_SUCCESS) {
            self->root.m = &self->mp.data;
            return self;
        }
    }
    annal_msg_destroy(&self);
    return NULL;
}

void annal_msg_destroy(annal_msg_t **self)
{
    annal_msg_t *m = *self;
    if (!m)
        return;
    for (size_t i = 0; i < m->nowned; i++) {
        if (m->is_child[i])
            annal_msg_destroy((annal_msg_t **) &m->owned[i]);
        else
            free(m->owned[i]);
    }
    free(m->owned);
    free(m->is_child);
    if (m->top) {
        json_decref(m->json);
        msgpack_unpacked_destroy(&m->mp);
        free(m->bytes);
    }
    free(m);
    *self = NULL;
}

/* A node's string as an owned NUL-terminated copy; NULL unless valid text. */
static const char *s_node_str(annal_msg_t *self, const annal_node_t *n)
{
    if (annal_node_kind(n) != ANNAL_NODE_STR)
        return NULL;
    size_t len;
    const char *s = annal_node_str(n, &len);
    if (!annal_utf8_valid(s, len) || memchr(s, 0, len))
        return NULL;
    return s_own(self, annal_node_str_dup(n), false);
}

const char *annal_msg_str(annal_msg_t *self, const char *key)
{
    annal_node_t n = annal_node_get(&self->root, key);
    return s_node_str(self, &n);
}

bool annal_msg_int(const annal_msg_t *self, const char *key, int64_t *value)
{
    annal_node_t n = annal_node_get(&self->root, key);
    if (annal_node_kind(&n) != ANNAL_NODE_INT)
        return false;
    *value = annal_node_int(&n);
    return true;
}

bool annal_msg_is_null(const annal_msg_t *self, const char *key)
{
    annal_node_t n = annal_node_get(&self->root, key);
    return annal_node_kind(&n) == ANNAL_NODE_NULL;
}

const char *annal_msg_json(annal_msg_t *self, const char *key)
{
    annal_node_t n = key ? annal_node_get(&self->root, key) : self->root;
    if (annal_node_kind(&n) == ANNAL_NODE_ABSENT)
        return NULL;
    annal_blob_t blob = {0};
    const char *why;
    if (annal_node_pack(&n, &blob, &why))
        return NULL;
    char *text = annal_value_to_json_text(blob.data, blob.size);
    annal_blob_free(&blob);
    return s_own(self, text, false);
}

size_t annal_msg_len(const annal_msg_t *self, const char *key)
{
    annal_node_t n = annal_node_get(&self->root, key);
    return annal_node_kind(&n) == ANNAL_NODE_ARRAY ? annal_node_size(&n) : 0;
}

annal_msg_t *annal_msg_item(annal_msg_t *self, const char *key, size_t i)
{
    annal_node_t n = annal_node_get(&self->root, key);
    if (annal_node_kind(&n) != ANNAL_NODE_ARRAY || i >= annal_node_size(&n))
        return NULL;
    annal_node_t item = annal_node_at(&n, i);
    if (annal_node_kind(&item) != ANNAL_NODE_MAP)
        return NULL;
    annal_msg_t *child = calloc(1, sizeof *child);
    if (!child)
        return NULL;
    child->root = item;
    return s_own(self, child, true);
}

const char *annal_msg_str_item(annal_msg_t *self, const char *key, size_t i)
{
    annal_node_t n = annal_node_get(&self->root, key);
    if (annal_node_kind(&n) != ANNAL_NODE_ARRAY || i >= annal_node_size(&n))
        return NULL;
    annal_node_t item = annal_node_at(&n, i);
    return s_node_str(self, &item);
}
