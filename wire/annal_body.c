/*  annal_body.c: replies, published events and heartbeats out, JSON or
    MessagePack (annal_body.h).

    A body is built as a list of borrowed fields and encoded at the end,
    so the caller states each reply once for both encodings; the encoder
    states each field kind and the event record once too, over an emitter
    with a JSON writer (text straight into a buffer, annal_json.c) and a
    MessagePack writer (msgpack-c's packer). Stored values are copied in as
    they are (canonical MessagePack) or turned into JSON text.

    Invariants:
    1. Both encodings carry the same keys in the same order with the same
       values: one walk writes both.
    2. Fields borrow until the body is encoded; only an error text is
       copied (into text, through s_safe_text: valid UTF-8, no control
       characters, whatever the client sent).
    3. A damaged stored value fails a JSON body (-1); MessagePack copies
       the bytes as the store gave them.
    4. A view lives in the builder's scratch until the next call; scratch
       over VIEW_KEEP is let go of at the next view. */
#include "annal_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_event_id.h"
#include "annal_time.h"
#include "annal_value_private.h"

typedef enum {
    F_STR,
    F_U64,
    F_INT,
    F_NULL,
    F_BOOL,
    F_VALUE,
    F_UUID,
    F_UUIDS,
    F_EVENTS,
    F_STRS,
    F_NEW_EVENTS,
    F_GROUP_EVENTS,
    F_GROUP, /* a group's fields, inline: GROUP_FIELDS keys, not one */
    F_GROUPS
} fkind_t;

#define GROUP_FIELDS 12 /* the keys s_emit_group_fields writes */

typedef struct {
    const char *key; /* field name, borrowed */
    fkind_t kind;    /* what the union holds */
    const void *ptr; /* F_STR, F_VALUE, F_UUID(S), F_EVENTS: borrowed */
    size_t len;      /* bytes (F_STR, F_VALUE) or entries (F_UUIDS, F_EVENTS) */
    uint64_t u;      /* F_U64 */
    int64_t i;       /* F_INT */
} field_t;

#define MAX_FIELDS 16

#define TEXT_MAX  1024
#define VIEW_KEEP (1024 * 1024) /* scratch kept between views, bytes */

struct annal_body_t {
    field_t fields[MAX_FIELDS]; /* in output order */
    size_t count;               /* fields in use */
    char text[TEXT_MAX];        /* an error text, made safe to send */
    msgpack_sbuffer sb;         /* scratch of the views, MessagePack */
    annal_buf_t jb;             /* scratch of the views, JSON */
};

/* Copies text into out (size TEXT_MAX): valid UTF-8 only, control
   characters and bytes that are not UTF-8 replaced by '?', cut at a
   character boundary. Error texts echo client input; this keeps every
   reply encodable and every string in it valid. */
static void s_safe_text(char *out, const char *text)
{
    size_t n = strlen(text), o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char) text[i];
        size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        bool bad = i + len > n || c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xc2)
                   || !annal_utf8_valid(text + i, len);
        if (bad)
            len = 1;
        if (o + len >= TEXT_MAX)
            break;
        if (bad)
            out[o] = '?';
        else
            memcpy(out + o, text + i, len);
        o += len;
        i += len;
    }
    out[o] = 0;
}

annal_body_t *annal_body_new(void)
{
    return calloc(1, sizeof(annal_body_t));
}

void annal_body_destroy(annal_body_t **self)
{
    if (*self) {
        msgpack_sbuffer_destroy(&(*self)->sb);
        annal_buf_free(&(*self)->jb);
    }
    free(*self);
    *self = NULL;
}

static field_t *s_field(annal_body_t *self, const char *key, fkind_t kind);

/* A field that borrows ptr with len bytes or entries. */
static void s_ptr_field(annal_body_t *self, const char *key, fkind_t kind, const void *ptr,
                        size_t len)
{
    field_t *f = s_field(self, key, kind);
    f->ptr = ptr;
    f->len = len;
}

static field_t *s_field(annal_body_t *self, const char *key, fkind_t kind)
{
    static field_t spill;
    if (self->count >= MAX_FIELDS)
        return &spill; /* a programming error; caught by tests, never by input */
    field_t *f = &self->fields[self->count++];
    memset(f, 0, sizeof *f);
    f->key = key;
    f->kind = kind;
    return f;
}

void annal_body_begin_plain(annal_body_t *self)
{
    self->count = 0;
}

void annal_body_begin(annal_body_t *self, const char *type, bool has_id, int64_t msg_id)
{
    self->count = 0;
    annal_body_str(self, "type", type, strlen(type));
    if (has_id)
        annal_body_int(self, "in_reply_to", msg_id);
    else
        s_field(self, "in_reply_to", F_NULL);
}

void annal_body_null(annal_body_t *self, const char *key)
{
    s_field(self, key, F_NULL);
}

void annal_body_str(annal_body_t *self, const char *key, const char *s, size_t len)
{
    s_ptr_field(self, key, F_STR, s, len);
}

void annal_body_u64(annal_body_t *self, const char *key, uint64_t v)
{
    s_field(self, key, F_U64)->u = v;
}

void annal_body_int(annal_body_t *self, const char *key, int64_t v)
{
    s_field(self, key, F_INT)->i = v;
}

void annal_body_value(annal_body_t *self, const char *key, const uint8_t *blob, size_t len)
{
    s_ptr_field(self, key, F_VALUE, blob, len);
}

void annal_body_uuid(annal_body_t *self, const char *key, const uint8_t *id)
{
    s_field(self, key, F_UUID)->ptr = id;
}

void annal_body_uuids(annal_body_t *self, const char *key, const uint8_t *ids, size_t n)
{
    s_ptr_field(self, key, F_UUIDS, ids, n);
}

void annal_body_events(annal_body_t *self, const char *key, const annal_event_t *events, size_t n)
{
    s_ptr_field(self, key, F_EVENTS, events, n);
}

void annal_body_group_events(annal_body_t *self, const char *key, const annal_group_event_t *events,
                             size_t n)
{
    s_ptr_field(self, key, F_GROUP_EVENTS, events, n);
}

void annal_body_group(annal_body_t *self, const annal_group_info_t *group)
{
    s_ptr_field(self, NULL, F_GROUP, group, 1);
}

void annal_body_groups(annal_body_t *self, const char *key, const annal_group_info_t *groups,
                       size_t n)
{
    s_ptr_field(self, key, F_GROUPS, groups, n);
}

void annal_body_bool(annal_body_t *self, const char *key, bool v)
{
    s_field(self, key, F_BOOL)->u = v;
}

void annal_body_strs(annal_body_t *self, const char *key, const char *const *strs, size_t n)
{
    s_ptr_field(self, key, F_STRS, strs, n);
}

void annal_body_new_events(annal_body_t *self, const char *key, const annal_new_event_t *events,
                           size_t n)
{
    s_ptr_field(self, key, F_NEW_EVENTS, events, n);
}

void annal_body_error(annal_body_t *self, bool has_id, int64_t msg_id, annal_err_t err,
                      const char *text)
{
    annal_body_begin(self, "error", has_id, msg_id);
    annal_body_int(self, "code", annal_err_code(err));
    s_safe_text(self->text, text && *text ? text : annal_strerror(err));
    annal_body_str(self, "text", self->text, strlen(self->text));
}

/* --- the emitter: one writer, two encodings -------------------------------------

   The walks below (a body's fields, an event, an event to append) are
   written once, over these calls; each call writes one item in the
   emitter's encoding. Containers are given both their entry count (which
   MessagePack writes up front) and an end (where JSON closes them); each
   encoding uses what it needs.

   Dispatch is a switch on the encoding inside writers forced inline, not a
   table of function pointers: on the hot path (annal_body_event_view, once
   per published event) every writer folds into the walk, a literal key's
   strlen folds too, the branch goes the same way throughout one body, and
   the packer's callback is a constant (s_mp) that inlines. Against the
   separate JSON and MessagePack walks this replaced: MessagePack takes
   about a third fewer instructions per event, JSON about 1% more.

   JSON separators need no stack: comma says whether the next key or item
   follows another at its level. A key clears it (its value follows
   directly), a scalar or a container's end sets it, a container's start
   clears it for its first entry. */

#define EMIT_INLINE inline __attribute__((always_inline))

typedef struct {
    annal_encoding_t enc; /* which writer */
    annal_buf_t *jb;      /* JSON: the text */
    msgpack_sbuffer *sb;  /* MessagePack: the bytes */
    bool comma;           /* JSON: a ',' goes before the next key or item */
    int rc;               /* -1 once a stored value would not convert (JSON) */
} emit_t;

/* A packer over e's bytes, made where it is used, so that its callback is
   a constant the compiler inlines: a packer kept in emit_t, behind a
   pointer, costs an indirect call per header and per string. */
static EMIT_INLINE msgpack_packer s_mp(const emit_t *e)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, e->sb, msgpack_sbuffer_write);
    return pk;
}

/* Starts e writing in enc, into jb (JSON) or sb (MessagePack). */
static void s_emit_start(emit_t *e, annal_encoding_t enc, annal_buf_t *jb, msgpack_sbuffer *sb)
{
    e->enc = enc;
    e->jb = jb;
    e->sb = sb;
    e->comma = false;
    e->rc = 0;
}

/* The bytes written: 0, or -1 when a value would not convert or memory ran
   out. MessagePack only sees the latter when nothing at all could be
   allocated: msgpack-c's sbuffer drops a write it cannot grow for and
   says so only in a return value its packer ignores. */
static int s_emit_finish(const emit_t *e, const uint8_t **out, size_t *len)
{
    if (e->enc == ANNAL_ENC_JSON) {
        if (e->rc || e->jb->failed || !e->jb->data)
            return -1;
        *out = (const uint8_t *) e->jb->data;
        *len = e->jb->len;
        return 0;
    }
    if (!e->sb->data)
        return -1;
    *out = (const uint8_t *) e->sb->data;
    *len = e->sb->size;
    return 0;
}

/* JSON: the separator before an item, which then counts as written. */
static EMIT_INLINE void s_json_item(emit_t *e)
{
    if (e->comma)
        annal_buf_put(e->jb, ",", 1);
    e->comma = true;
}

/* Starts a map ('{') or an array ('[') of n entries. */
static EMIT_INLINE void s_emit_open(emit_t *e, char open, size_t n)
{
    if (e->enc == ANNAL_ENC_JSON) {
        s_json_item(e);
        annal_buf_put(e->jb, &open, 1);
        e->comma = false;
    }
    else {
        msgpack_packer pk = s_mp(e);
        if (open == '{')
            msgpack_pack_map(&pk, n);
        else
            msgpack_pack_array(&pk, n);
    }
}

/* Ends the map ('}') or array (']') opened last. */
static EMIT_INLINE void s_emit_end(emit_t *e, char close)
{
    if (e->enc == ANNAL_ENC_JSON) {
        annal_buf_put(e->jb, &close, 1);
        e->comma = true;
    }
}

static EMIT_INLINE void s_emit_key(emit_t *e, const char *key)
{
    if (e->enc == ANNAL_ENC_JSON) {
        s_json_item(e);
        annal_json_string(e->jb, key, strlen(key));
        annal_buf_put(e->jb, ":", 1);
        e->comma = false;
    }
    else {
        msgpack_packer pk = s_mp(e);
        msgpack_pack_str_with_body(&pk, key, strlen(key));
    }
}

static EMIT_INLINE void s_emit_str(emit_t *e, const char *str, size_t len)
{
    if (e->enc == ANNAL_ENC_JSON) {
        s_json_item(e);
        annal_json_string(e->jb, str, len);
    }
    else {
        msgpack_packer pk = s_mp(e);
        msgpack_pack_str_with_body(&pk, str, len);
    }
}

static EMIT_INLINE void s_emit_u64(emit_t *e, uint64_t v)
{
    if (e->enc == ANNAL_ENC_JSON) {
        char num[24];
        s_json_item(e);
        snprintf(num, sizeof num, "%llu", (unsigned long long) v);
        annal_buf_puts(e->jb, num);
    }
    else {
        msgpack_packer pk = s_mp(e);
        msgpack_pack_uint64(&pk, v);
    }
}

static EMIT_INLINE void s_emit_i64(emit_t *e, int64_t v)
{
    if (e->enc == ANNAL_ENC_JSON) {
        char num[24];
        s_json_item(e);
        snprintf(num, sizeof num, "%lld", (long long) v);
        annal_buf_puts(e->jb, num);
    }
    else {
        msgpack_packer pk = s_mp(e);
        msgpack_pack_int64(&pk, v);
    }
}

static EMIT_INLINE void s_emit_bool(emit_t *e, bool v)
{
    if (e->enc == ANNAL_ENC_JSON) {
        s_json_item(e);
        annal_buf_puts(e->jb, v ? "true" : "false");
    }
    else {
        msgpack_packer pk = s_mp(e);
        if (v)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
    }
}

static EMIT_INLINE void s_emit_nil(emit_t *e)
{
    if (e->enc == ANNAL_ENC_JSON) {
        s_json_item(e);
        annal_buf_puts(e->jb, "null");
    }
    else {
        msgpack_packer pk = s_mp(e);
        msgpack_pack_nil(&pk);
    }
}

/* An event id, as its text form. */
static EMIT_INLINE void s_emit_uuid(emit_t *e, const uint8_t *id)
{
    char text[ANNAL_EVENT_ID_TEXT];
    annal_event_id_format(id, text);
    s_emit_str(e, text, ANNAL_EVENT_ID_TEXT - 1);
}

/* A stored value (a canonical blob): copied as it is into MessagePack,
   turned into text for JSON, which fails (rc) when the bytes are damaged. */
static EMIT_INLINE void s_emit_value(emit_t *e, const uint8_t *blob, size_t len)
{
    if (e->enc == ANNAL_ENC_JSON) {
        s_json_item(e);
        if (annal_json_value(e->jb, blob, len))
            e->rc = -1;
    }
    else
        msgpack_sbuffer_write(e->sb, (const char *) blob, len);
}

/* --- the walks, once for both encodings ------------------------------------------ */

/* One event record as stored and published (docs/protocol.md, section 1),
   with room for extra fields after it. */
static void s_emit_event_fields(emit_t *e, const annal_event_t *ev, size_t extra)
{
    char when[ANNAL_TIME_TEXT];
    annal_time_format(ev->recorded_at, when);
    s_emit_open(e, '{', 8 + extra);
    s_emit_key(e, "sequence_number");
    s_emit_u64(e, ev->sequence);
    s_emit_key(e, "event_id");
    s_emit_uuid(e, ev->event_id);
    s_emit_key(e, "aggregate_id");
    s_emit_str(e, ev->aggregate_id, ev->aggregate_id_len);
    s_emit_key(e, "version");
    s_emit_u64(e, ev->version);
    s_emit_key(e, "event_type");
    s_emit_str(e, ev->event_type, ev->event_type_len);
    s_emit_key(e, "event_data");
    s_emit_value(e, ev->data, ev->data_len);
    s_emit_key(e, "metadata");
    s_emit_value(e, ev->metadata, ev->metadata_len);
    s_emit_key(e, "recorded_at");
    s_emit_str(e, when, strlen(when));
}

static void s_emit_event(emit_t *e, const annal_event_t *ev)
{
    s_emit_event_fields(e, ev, 0);
    s_emit_end(e, '}');
}

/* A consumer group's event: the record, its delivery, a parked one's reason
   (docs/protocol.md, section 6). */
static void s_emit_group_event(emit_t *e, const annal_group_event_t *ge)
{
    s_emit_event_fields(e, &ge->event, 1 + (ge->reason != NULL));
    s_emit_key(e, "delivery");
    s_emit_u64(e, ge->delivery);
    if (ge->reason) {
        s_emit_key(e, "reason");
        s_emit_str(e, ge->reason, ge->reason_len);
    }
    s_emit_end(e, '}');
}

/* One event to append, as a client sends it: metadata and event_id only
   when set. */
static void s_emit_new_event(emit_t *e, const annal_new_event_t *ev)
{
    s_emit_open(e, '{', 2 + (ev->metadata.data != NULL) + ev->client_id);
    s_emit_key(e, "event_type");
    s_emit_str(e, ev->event_type, strlen(ev->event_type));
    s_emit_key(e, "event_data");
    s_emit_value(e, ev->data.data, ev->data.size);
    if (ev->metadata.data) {
        s_emit_key(e, "metadata");
        s_emit_value(e, ev->metadata.data, ev->metadata.size);
    }
    if (ev->client_id) {
        s_emit_key(e, "event_id");
        s_emit_uuid(e, ev->event_id);
    }
    s_emit_end(e, '}');
}

/* A group's fields from "group" on (docs/protocol.md, section 6:
   group_info), GROUP_FIELDS of them, into an open map. */
static void s_emit_group_fields(emit_t *e, const annal_group_info_t *g)
{
    s_emit_key(e, "group");
    s_emit_str(e, g->group, strlen(g->group));
    s_emit_key(e, "prefix");
    s_emit_str(e, g->prefix, strlen(g->prefix));
    s_emit_key(e, "event_types");
    if (g->types) {
        s_emit_open(e, '[', g->ntypes);
        for (size_t i = 0; i < g->ntypes; i++)
            s_emit_str(e, g->types[i], strlen(g->types[i]));
        s_emit_end(e, ']');
    }
    else
        s_emit_nil(e);
    s_emit_key(e, "ordering");
    s_emit_str(e, g->unordered ? "none" : "aggregate", g->unordered ? 4 : 9);
    s_emit_key(e, "ack_timeout_ms");
    s_emit_u64(e, g->ack_timeout_ms);
    s_emit_key(e, "max_deliveries");
    s_emit_u64(e, g->max_deliveries);
    s_emit_key(e, "start_sequence");
    s_emit_u64(e, g->start_sequence);
    s_emit_key(e, "acked_through");
    s_emit_u64(e, g->acked_through);
    s_emit_key(e, "leased");
    s_emit_u64(e, g->leased);
    s_emit_key(e, "parked");
    s_emit_u64(e, g->parked);
    s_emit_key(e, "head_sequence");
    s_emit_u64(e, g->head_sequence);
    /* annal's own (docs/protocol.md, section 6): sequences behind the head */
    s_emit_key(e, "lag");
    s_emit_u64(e, g->head_sequence > g->acked_through ? g->head_sequence - g->acked_through : 0);
}

static void s_emit_field(emit_t *e, const field_t *f)
{
    switch (f->kind) {
    case F_STR: s_emit_str(e, f->ptr, f->len); break;
    case F_U64: s_emit_u64(e, f->u); break;
    case F_INT: s_emit_i64(e, f->i); break;
    case F_NULL: s_emit_nil(e); break;
    case F_BOOL: s_emit_bool(e, f->u); break;
    case F_VALUE: s_emit_value(e, f->ptr, f->len); break;
    case F_UUID: s_emit_uuid(e, f->ptr); break;
    case F_STRS:
        s_emit_open(e, '[', f->len);
        for (size_t i = 0; i < f->len; i++) {
            const char *str = ((const char *const *) f->ptr)[i];
            s_emit_str(e, str, strlen(str));
        }
        s_emit_end(e, ']');
        break;
    case F_UUIDS:
        s_emit_open(e, '[', f->len);
        for (size_t i = 0; i < f->len; i++)
            s_emit_uuid(e, (const uint8_t *) f->ptr + 16 * i);
        s_emit_end(e, ']');
        break;
    case F_EVENTS:
        s_emit_open(e, '[', f->len);
        for (size_t i = 0; i < f->len && !e->rc; i++)
            s_emit_event(e, (const annal_event_t *) f->ptr + i);
        s_emit_end(e, ']');
        break;
    case F_NEW_EVENTS:
        s_emit_open(e, '[', f->len);
        for (size_t i = 0; i < f->len && !e->rc; i++)
            s_emit_new_event(e, (const annal_new_event_t *) f->ptr + i);
        s_emit_end(e, ']');
        break;
    case F_GROUP_EVENTS:
        s_emit_open(e, '[', f->len);
        for (size_t i = 0; i < f->len && !e->rc; i++)
            s_emit_group_event(e, (const annal_group_event_t *) f->ptr + i);
        s_emit_end(e, ']');
        break;
    case F_GROUP: s_emit_group_fields(e, f->ptr); break;
    case F_GROUPS:
        s_emit_open(e, '[', f->len);
        for (size_t i = 0; i < f->len && !e->rc; i++) {
            s_emit_open(e, '{', GROUP_FIELDS);
            s_emit_group_fields(e, (const annal_group_info_t *) f->ptr + i);
            s_emit_end(e, '}');
        }
        s_emit_end(e, ']');
        break;
    }
}

static void s_emit_body(emit_t *e, const annal_body_t *self)
{
    size_t keys = 0;
    for (size_t i = 0; i < self->count; i++)
        keys += self->fields[i].kind == F_GROUP ? GROUP_FIELDS : 1;
    s_emit_open(e, '{', keys);
    for (size_t i = 0; i < self->count && !e->rc; i++) {
        if (self->fields[i].kind != F_GROUP)
            s_emit_key(e, self->fields[i].key);
        s_emit_field(e, &self->fields[i]);
    }
    s_emit_end(e, '}');
}

/* --- output ------------------------------------------------------------------------ */

int annal_body_encode(annal_body_t *self, annal_encoding_t enc, uint8_t **out, size_t *len)
{
    annal_buf_t jb = {0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    emit_t e;
    s_emit_start(&e, enc, &jb, &sb);
    s_emit_body(&e, self);
    const uint8_t *data;
    int rc = s_emit_finish(&e, &data, len);
    if (rc == 0) {
        *out = (uint8_t *) data; /* handed over: neither buffer frees it */
        jb.data = NULL;
        sb.data = NULL;
    }
    annal_buf_free(&jb);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Empties self's scratch for a view, letting go of a large one. */
static void s_scratch_reset(annal_body_t *self)
{
    if (self->sb.alloc > VIEW_KEEP) {
        msgpack_sbuffer_destroy(&self->sb);
        msgpack_sbuffer_init(&self->sb);
    }
    if (self->jb.cap > VIEW_KEEP)
        annal_buf_free(&self->jb);
    self->sb.size = 0;
    self->jb.len = 0;
    self->jb.failed = false;
}

int annal_body_view(annal_body_t *self, annal_encoding_t enc, const uint8_t **out, size_t *len)
{
    emit_t e;
    s_scratch_reset(self);
    s_emit_start(&e, enc, &self->jb, &self->sb);
    s_emit_body(&e, self);
    return s_emit_finish(&e, out, len);
}

int annal_body_event_view(annal_body_t *self, const annal_event_t *ev, annal_encoding_t enc,
                          const uint8_t **out, size_t *len)
{
    emit_t e;
    s_scratch_reset(self);
    s_emit_start(&e, enc, &self->jb, &self->sb);
    s_emit_event(&e, ev);
    return s_emit_finish(&e, out, len);
}
