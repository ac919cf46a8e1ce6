/*  annal_body.c: replies, published events and heartbeats out, JSON or
    MessagePack (annal_body.h).

    A body is built as a list of borrowed fields and encoded at the end,
    so the caller states each reply once for both encodings. JSON is
    written as text straight into a buffer (annal_json.c), MessagePack
    with msgpack-c's packer; stored values are copied in as they are
    (canonical MessagePack) or turned into JSON text. */
#include "annal_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_event_id.h"
#include "annal_time.h"
#include "annal_value_private.h"

typedef enum {
    F_STR, F_U64, F_INT, F_NULL, F_BOOL, F_VALUE, F_UUID, F_UUIDS, F_EVENTS, F_STRS, F_NEW_EVENTS
} fkind_t;

typedef struct {
    const char *key;   /* field name, borrowed */
    fkind_t kind;      /* what the union holds */
    const void *ptr;   /* F_STR, F_VALUE, F_UUID(S), F_EVENTS: borrowed */
    size_t len;        /* bytes (F_STR, F_VALUE) or entries (F_UUIDS, F_EVENTS) */
    uint64_t u;        /* F_U64 */
    int64_t i;         /* F_INT */
} field_t;

#define MAX_FIELDS 16

#define TEXT_MAX 1024
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

void annal_body_events(annal_body_t *self, const char *key, const annal_event_t *events,
                        size_t n)
{
    s_ptr_field(self, key, F_EVENTS, events, n);
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

/* JSON output -------------------------------------------------------------------- */

static void s_json_key(annal_buf_t *b, const char *key, bool first)
{
    if (!first)
        annal_buf_put(b, ",", 1);
    annal_json_string(b, key, strlen(key));
    annal_buf_put(b, ":", 1);
}

static void s_json_u64(annal_buf_t *b, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long) v);
    annal_buf_puts(b, num);
}

static void s_json_uuid(annal_buf_t *b, const uint8_t *id)
{
    char text[ANNAL_EVENT_ID_TEXT];
    annal_event_id_format(id, text);
    annal_json_string(b, text, ANNAL_EVENT_ID_TEXT - 1);
}

static int s_json_event(annal_buf_t *b, const annal_event_t *ev)
{
    char when[ANNAL_TIME_TEXT];
    annal_time_format(ev->recorded_at, when);
    s_json_key(b, "sequence_number", true);
    s_json_u64(b, ev->sequence);
    s_json_key(b, "event_id", false);
    s_json_uuid(b, ev->event_id);
    s_json_key(b, "aggregate_id", false);
    annal_json_string(b, ev->aggregate_id, ev->aggregate_id_len);
    s_json_key(b, "version", false);
    s_json_u64(b, ev->version);
    s_json_key(b, "event_type", false);
    annal_json_string(b, ev->event_type, ev->event_type_len);
    s_json_key(b, "event_data", false);
    if (annal_json_value(b, ev->data, ev->data_len))
        return -1;
    s_json_key(b, "metadata", false);
    if (annal_json_value(b, ev->metadata, ev->metadata_len))
        return -1;
    s_json_key(b, "recorded_at", false);
    annal_json_string(b, when, strlen(when));
    annal_buf_put(b, "}", 1);
    return 0;
}

/* Writes one event object, braces included. */
static int s_json_event_object(annal_buf_t *b, const annal_event_t *ev)
{
    annal_buf_put(b, "{", 1);
    return s_json_event(b, ev);
}

static int s_json_field(annal_buf_t *b, const field_t *f)
{
    char num[24];
    switch (f->kind) {
    case F_STR: annal_json_string(b, f->ptr, f->len); return 0;
    case F_U64: s_json_u64(b, f->u); return 0;
    case F_INT:
        snprintf(num, sizeof num, "%lld", (long long) f->i);
        annal_buf_puts(b, num);
        return 0;
    case F_NULL: annal_buf_puts(b, "null"); return 0;
    case F_BOOL: annal_buf_puts(b, f->u ? "true" : "false"); return 0;
    case F_VALUE: return annal_json_value(b, f->ptr, f->len);
    case F_STRS:
        annal_buf_put(b, "[", 1);
        for (size_t i = 0; i < f->len; i++) {
            const char *str = ((const char *const *) f->ptr)[i];
            if (i)
                annal_buf_put(b, ",", 1);
            annal_json_string(b, str, strlen(str));
        }
        annal_buf_put(b, "]", 1);
        return 0;
    case F_NEW_EVENTS:
        annal_buf_put(b, "[", 1);
        for (size_t i = 0; i < f->len; i++) {
            const annal_new_event_t *e = (const annal_new_event_t *) f->ptr + i;
            if (i)
                annal_buf_put(b, ",", 1);
            annal_buf_put(b, "{", 1);
            s_json_key(b, "event_type", true);
            annal_json_string(b, e->event_type, strlen(e->event_type));
            s_json_key(b, "event_data", false);
            if (annal_json_value(b, e->data.data, e->data.size))
                return -1;
            if (e->metadata.data) {
                s_json_key(b, "metadata", false);
                if (annal_json_value(b, e->metadata.data, e->metadata.size))
                    return -1;
            }
            if (e->client_id) {
                s_json_key(b, "event_id", false);
                s_json_uuid(b, e->event_id);
            }
            annal_buf_put(b, "}", 1);
        }
        annal_buf_put(b, "]", 1);
        return 0;
    case F_UUID: s_json_uuid(b, f->ptr); return 0;
    case F_UUIDS:
        annal_buf_put(b, "[", 1);
        for (size_t i = 0; i < f->len; i++) {
            if (i)
                annal_buf_put(b, ",", 1);
            s_json_uuid(b, (const uint8_t *) f->ptr + 16 * i);
        }
        annal_buf_put(b, "]", 1);
        return 0;
    case F_EVENTS:
        annal_buf_put(b, "[", 1);
        for (size_t i = 0; i < f->len; i++) {
            if (i)
                annal_buf_put(b, ",", 1);
            if (s_json_event_object(b, (const annal_event_t *) f->ptr + i))
                return -1;
        }
        annal_buf_put(b, "]", 1);
        return 0;
    }
    return -1;
}

/* Hands the buffer's text to the caller, or frees it on failure. */
static int s_json_out(annal_buf_t *b, int rc, uint8_t **out, size_t *len)
{
    if (rc || b->failed || !b->data) {
        annal_buf_free(b);
        return -1;
    }
    *out = (uint8_t *) b->data;
    *len = b->len;
    return 0;
}

/* MessagePack output -------------------------------------------------------------- */

static void s_mp_key(msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
}

static void s_mp_uuid(msgpack_packer *pk, const uint8_t *id)
{
    char text[ANNAL_EVENT_ID_TEXT];
    annal_event_id_format(id, text);
    msgpack_pack_str_with_body(pk, text, ANNAL_EVENT_ID_TEXT - 1);
}

static void s_mp_event(msgpack_packer *pk, const annal_event_t *ev)
{
    char when[ANNAL_TIME_TEXT];
    annal_time_format(ev->recorded_at, when);
    msgpack_pack_map(pk, 8);
    s_mp_key(pk, "sequence_number");
    msgpack_pack_uint64(pk, ev->sequence);
    s_mp_key(pk, "event_id");
    s_mp_uuid(pk, ev->event_id);
    s_mp_key(pk, "aggregate_id");
    msgpack_pack_str_with_body(pk, ev->aggregate_id, ev->aggregate_id_len);
    s_mp_key(pk, "version");
    msgpack_pack_uint64(pk, ev->version);
    s_mp_key(pk, "event_type");
    msgpack_pack_str_with_body(pk, ev->event_type, ev->event_type_len);
    s_mp_key(pk, "event_data");
    msgpack_sbuffer_write(pk->data, (const char *) ev->data, ev->data_len);
    s_mp_key(pk, "metadata");
    msgpack_sbuffer_write(pk->data, (const char *) ev->metadata, ev->metadata_len);
    s_mp_key(pk, "recorded_at");
    msgpack_pack_str_with_body(pk, when, strlen(when));
}

static void s_mp_field(msgpack_packer *pk, const field_t *f)
{
    switch (f->kind) {
    case F_STR: msgpack_pack_str_with_body(pk, f->ptr, f->len); break;
    case F_U64: msgpack_pack_uint64(pk, f->u); break;
    case F_INT: msgpack_pack_int64(pk, f->i); break;
    case F_NULL: msgpack_pack_nil(pk); break;
    case F_BOOL:
        if (f->u)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case F_VALUE: msgpack_sbuffer_write(pk->data, f->ptr, f->len); break;
    case F_STRS:
        msgpack_pack_array(pk, f->len);
        for (size_t i = 0; i < f->len; i++) {
            const char *str = ((const char *const *) f->ptr)[i];
            msgpack_pack_str_with_body(pk, str, strlen(str));
        }
        break;
    case F_NEW_EVENTS:
        msgpack_pack_array(pk, f->len);
        for (size_t i = 0; i < f->len; i++) {
            const annal_new_event_t *e = (const annal_new_event_t *) f->ptr + i;
            msgpack_pack_map(pk, 2 + (e->metadata.data != NULL) + e->client_id);
            s_mp_key(pk, "event_type");
            msgpack_pack_str_with_body(pk, e->event_type, strlen(e->event_type));
            s_mp_key(pk, "event_data");
            msgpack_sbuffer_write(pk->data, (const char *) e->data.data, e->data.size);
            if (e->metadata.data) {
                s_mp_key(pk, "metadata");
                msgpack_sbuffer_write(pk->data, (const char *) e->metadata.data, e->metadata.size);
            }
            if (e->client_id) {
                s_mp_key(pk, "event_id");
                s_mp_uuid(pk, e->event_id);
            }
        }
        break;
    case F_UUID: s_mp_uuid(pk, f->ptr); break;
    case F_UUIDS:
        msgpack_pack_array(pk, f->len);
        for (size_t i = 0; i < f->len; i++)
            s_mp_uuid(pk, (const uint8_t *) f->ptr + 16 * i);
        break;
    case F_EVENTS:
        msgpack_pack_array(pk, f->len);
        for (size_t i = 0; i < f->len; i++)
            s_mp_event(pk, (const annal_event_t *) f->ptr + i);
        break;
    }
}

static int s_mp_out(msgpack_sbuffer *sb, uint8_t **out, size_t *len)
{
    if (!sb->data)
        return -1;
    *out = (uint8_t *) sb->data;
    *len = sb->size;
    sb->data = NULL;
    return 0;
}

static int s_body_json(annal_body_t *self, annal_buf_t *b)
{
    int rc = 0;
    annal_buf_put(b, "{", 1);
    for (size_t i = 0; rc == 0 && i < self->count; i++) {
        s_json_key(b, self->fields[i].key, i == 0);
        rc = s_json_field(b, &self->fields[i]);
    }
    annal_buf_put(b, "}", 1);
    return rc;
}

static void s_body_mp(annal_body_t *self, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, self->count);
    for (size_t i = 0; i < self->count; i++) {
        s_mp_key(&pk, self->fields[i].key);
        s_mp_field(&pk, &self->fields[i]);
    }
}

static void s_event_mp(const annal_event_t *ev, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    s_mp_event(&pk, ev);
}

int annal_body_encode(annal_body_t *self, annal_encoding_t enc, uint8_t **out, size_t *len)
{
    if (enc == ANNAL_ENC_JSON) {
        annal_buf_t b = {0};
        return s_json_out(&b, s_body_json(self, &b), out, len);
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_body_mp(self, &sb);
    int rc = s_mp_out(&sb, out, len);
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

/* Points out and len at the view in self's scratch. */
static int s_view(annal_body_t *self, annal_encoding_t enc, int rc, const uint8_t **out,
                  size_t *len)
{
    if (enc == ANNAL_ENC_JSON) {
        if (rc || self->jb.failed || !self->jb.data)
            return -1;
        *out = (const uint8_t *) self->jb.data;
        *len = self->jb.len;
        return 0;
    }
    if (!self->sb.data)
        return -1;
    *out = (const uint8_t *) self->sb.data;
    *len = self->sb.size;
    return 0;
}

int annal_body_view(annal_body_t *self, annal_encoding_t enc, const uint8_t **out, size_t *len)
{
    s_scratch_reset(self);
    int rc = 0;
    if (enc == ANNAL_ENC_JSON)
        rc = s_body_json(self, &self->jb);
    else
        s_body_mp(self, &self->sb);
    return s_view(self, enc, rc, out, len);
}

int annal_body_event_view(annal_body_t *self, const annal_event_t *ev, annal_encoding_t enc,
                          const uint8_t **out, size_t *len)
{
    s_scratch_reset(self);
    int rc = 0;
    if (enc == ANNAL_ENC_JSON)
        rc = s_json_event_object(&self->jb, ev);
    else
        s_event_mp(ev, &self->sb);
    return s_view(self, enc, rc, out, len);
}
