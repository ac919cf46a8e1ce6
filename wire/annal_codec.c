/*  annal_codec.c: requests in, replies and events out, JSON or MessagePack.

    Decoding reads both encodings through one small accessor layer (s_node)
    so that every field rule is written once. Requests are checked field by
    field; the first rule broken is the error text. */
#include "annal_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "annal_limits.h"
#include "annal_time.h"
#include "annal_value_private.h"

static const char *s_cmd_names[ANNAL_CMD_COUNT] = {
    [ANNAL_CMD_APPEND] = "append",
    [ANNAL_CMD_CREATE_SNAPSHOT] = "create_snapshot",
    [ANNAL_CMD_GET_SNAPSHOT] = "get_snapshot",
    [ANNAL_CMD_REPLAY] = "replay",
    [ANNAL_CMD_GET_STATE] = "get_state",
    [ANNAL_CMD_READ] = "read",
    [ANNAL_CMD_READ_ALL] = "read_all",
    [ANNAL_CMD_STATUS] = "status",
    [ANNAL_CMD_INIT] = "init",
};

void annal_event_id_new(uint8_t id[16])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t) (ms >> (40 - 8 * i));
    arc4random_buf(id + 6, 10);
    id[6] = (uint8_t) (0x70 | (id[6] & 0x0f)); /* version 7 */
    id[8] = (uint8_t) (0x80 | (id[8] & 0x3f)); /* RFC variant */
}

const char *annal_cmd_name(annal_cmd_t cmd)
{
    return (unsigned) cmd < ANNAL_CMD_COUNT ? s_cmd_names[cmd] : "?";
}

/* --- one accessor over json_t and msgpack_object ---------------------------- */

typedef enum { K_ABSENT, K_NULL, K_BOOL, K_INT, K_BIGUINT, K_FLOAT, K_STR, K_ARRAY, K_MAP } kind_t;

typedef struct {
    const json_t *j;         /* JSON value, or NULL */
    const msgpack_object *m; /* MessagePack value, or NULL */
} node_t;

static kind_t s_kind(const node_t *n)
{
    if (n->j) {
        switch (json_typeof(n->j)) {
        case JSON_OBJECT: return K_MAP;
        case JSON_ARRAY: return K_ARRAY;
        case JSON_STRING: return K_STR;
        case JSON_INTEGER: return K_INT;
        case JSON_REAL: return K_FLOAT;
        case JSON_TRUE: case JSON_FALSE: return K_BOOL;
        case JSON_NULL: return K_NULL;
        }
    }
    if (n->m) {
        switch (n->m->type) {
        case MSGPACK_OBJECT_NIL: return K_NULL;
        case MSGPACK_OBJECT_BOOLEAN: return K_BOOL;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return n->m->via.u64 > INT64_MAX ? K_BIGUINT : K_INT;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return K_INT;
        case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: return K_FLOAT;
        case MSGPACK_OBJECT_STR: case MSGPACK_OBJECT_BIN: return K_STR;
        case MSGPACK_OBJECT_ARRAY: return K_ARRAY;
        case MSGPACK_OBJECT_MAP: return K_MAP;
        default: return K_ABSENT;
        }
    }
    return K_ABSENT;
}

/* Member key of map n; absent members are K_ABSENT; the last duplicate wins. */
static node_t s_get(const node_t *n, const char *key)
{
    node_t out = {NULL, NULL};
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

static int64_t s_int(const node_t *n)
{
    if (n->j)
        return json_integer_value(n->j);
    return n->m->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t) n->m->via.u64 : n->m->via.i64;
}

static bool s_bool(const node_t *n)
{
    return n->j ? json_is_true(n->j) : n->m->via.boolean;
}

static const char *s_str(const node_t *n, size_t *len)
{
    if (n->j) {
        *len = json_string_length(n->j);
        return json_string_value(n->j);
    }
    *len = n->m->via.str.size;
    return *len ? n->m->via.str.ptr : ""; /* msgpack-c may give "" a NULL pointer */
}

static size_t s_array_size(const node_t *n)
{
    return n->j ? json_array_size(n->j) : n->m->via.array.size;
}

static node_t s_at(const node_t *n, size_t i)
{
    node_t out = {NULL, NULL};
    if (n->j)
        out.j = json_array_get(n->j, i);
    else
        out.m = &n->m->via.array.ptr[i];
    return out;
}

/* Packs n canonically into a new blob. */
static int s_pack(const node_t *n, annal_blob_t *out, const char **why)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = n->j ? annal_value_pack_json(&pk, n->j, why) : annal_value_pack_msgpack(&pk, n->m, why);
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

/* --- field rules ------------------------------------------------------------ */

typedef struct {
    char *why;    /* reason buffer */
    size_t whylen;
    const annal_limits_t *lim; /* the limits in force */
    char deeper[40];           /* text of a too-deep value */
} ctx_t;

/* Packs a value to be stored: also at most max_depth - 4 levels deep. */
static int s_pack_value(ctx_t *c, const node_t *n, annal_blob_t *out, const char **why)
{
    if (s_pack(n, out, why))
        return -1;
    const char *deep;
    int levels = (int) c->lim->max_depth - ANNAL_VALUE_DEPTH_BELOW;
    if (annal_msgpack_check(out->data, out->size, levels, &deep)) {
        annal_blob_free(out);
        snprintf(c->deeper, sizeof c->deeper, "nests deeper than %d levels", levels);
        *why = c->deeper;
        return -1;
    }
    return 0;
}

static annal_err_t s_fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return ANNAL_ERR_MALFORMED;
}

static bool s_absent(const node_t *n)
{
    kind_t k = s_kind(n);
    return k == K_ABSENT || k == K_NULL;
}

/* A text field checked as a name: 1..max bytes of UTF-8, no control chars. */
static const char *s_name_check(const char *s, size_t len, size_t max)
{
    if (len == 0)
        return "is empty";
    if (len > max)
        return "is too long";
    if (!annal_utf8_valid(s, len))
        return "is not valid UTF-8";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x20)
            return "contains a control character";
    return NULL;
}

static const char *s_aggregate_check(const char *id, size_t len, size_t max)
{
    const char *why = s_name_check(id, len, max);
    if (!why && id[0] == '$')
        why = "starts with '$' (reserved for system topics)";
    return why;
}

const char *annal_aggregate_id_check(const char *id, size_t len)
{
    return s_aggregate_check(id, len, ANNAL_MAX_AGGREGATE_ID);
}

static char *s_dup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

/* Required text field key of obj, checked as a name; *out owned. */
static annal_err_t s_name_field(ctx_t *c, const node_t *obj, const char *key, bool aggregate,
                                char **out)
{
    node_t n = s_get(obj, key);
    if (s_absent(&n))
        return s_fail(c, "missing field '%s'", key);
    if (s_kind(&n) != K_STR)
        return s_fail(c, "field '%s' must be a string", key);
    size_t len;
    const char *s = s_str(&n, &len);
    size_t max = aggregate ? c->lim->max_aggregate_id : c->lim->max_event_type;
    const char *why = aggregate ? s_aggregate_check(s, len, max) : s_name_check(s, len, max);
    if (why && len > max)
        return s_fail(c, "field '%s' %s (%zu bytes; the limit is %zu)", key, why, len, max);
    if (why)
        return s_fail(c, "field '%s' %s", key, why);
    *out = s_dup(s, len);
    return *out ? ANNAL_OK : ANNAL_ERR_INTERNAL;
}

/* Optional non-negative integer; *present tells whether it was given. */
static annal_err_t s_uint_field(ctx_t *c, const node_t *obj, const char *key, bool *present,
                                uint64_t *out)
{
    node_t n = s_get(obj, key);
    *present = false;
    if (s_absent(&n))
        return ANNAL_OK;
    if (s_kind(&n) != K_INT || s_int(&n) < 0)
        return s_fail(c, "field '%s' must be an integer >= 0", key);
    *present = true;
    *out = (uint64_t) s_int(&n);
    return ANNAL_OK;
}

static annal_err_t s_bool_field(ctx_t *c, const node_t *obj, const char *key, bool *out)
{
    node_t n = s_get(obj, key);
    if (s_absent(&n))
        return ANNAL_OK;
    if (s_kind(&n) != K_BOOL)
        return s_fail(c, "field '%s' must be true or false", key);
    *out = s_bool(&n);
    return ANNAL_OK;
}

static int s_cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* One event of an append: from the request itself or a batch entry. */
static annal_err_t s_new_event(ctx_t *c, const node_t *obj, annal_new_event_t *ev)
{
    annal_err_t rc = s_name_field(c, obj, "event_type", false, &ev->event_type);
    if (rc)
        return rc;
    const char *why = NULL;
    node_t data = s_get(obj, "event_data");
    if (s_kind(&data) == K_ABSENT)
        return s_fail(c, "missing field 'event_data'");
    if (s_pack_value(c, &data, &ev->data, &why))
        return s_fail(c, "field 'event_data': %s", why);
    node_t meta = s_get(obj, "metadata");
    if (s_absent(&meta)) {
        if (annal_blob_copy(&ev->metadata, ANNAL_VALUE_EMPTY_OBJECT, 1))
            return ANNAL_ERR_INTERNAL;
    }
    else if (s_kind(&meta) != K_MAP)
        return s_fail(c, "field 'metadata' must be an object");
    else if (s_pack_value(c, &meta, &ev->metadata, &why))
        return s_fail(c, "field 'metadata': %s", why);
    node_t id = s_get(obj, "event_id");
    if (s_absent(&id)) {
        annal_event_id_new(ev->event_id);
        return ANNAL_OK;
    }
    size_t len;
    const char *s = s_kind(&id) == K_STR ? s_str(&id, &len) : NULL;
    char text[37];
    if (!s || len != 36)
        return s_fail(c, "field 'event_id' must be a UUID string");
    memcpy(text, s, 36);
    text[36] = 0;
    if (uuid_parse(text, ev->event_id))
        return s_fail(c, "field 'event_id' is not a valid UUID: '%s'", text);
    ev->client_id = true;
    return ANNAL_OK;
}

static annal_err_t s_append(ctx_t *c, const node_t *root, annal_request_t *req)
{
    node_t v = s_get(root, "version");
    switch (s_kind(&v)) {
    case K_ABSENT:
        return s_fail(c, "missing field 'version' (use \"any\" to skip the check)");
    case K_INT:
        if (s_int(&v) < 0)
            return s_fail(c, "field 'version' must be an integer >= 0, \"any\" or \"exists\"");
        req->expect = ANNAL_EXPECT_EXACT;
        req->expected_version = (uint64_t) s_int(&v);
        break;
    case K_STR: {
        size_t len;
        const char *s = s_str(&v, &len);
        if (len == 3 && memcmp(s, "any", 3) == 0)
            req->expect = ANNAL_EXPECT_ANY;
        else if (len == 6 && memcmp(s, "exists", 6) == 0)
            req->expect = ANNAL_EXPECT_EXISTS;
        else
            return s_fail(c, "field 'version' must be an integer >= 0, \"any\" or \"exists\"");
        break;
    }
    default:
        return s_fail(c, "field 'version' must be an integer >= 0, \"any\" or \"exists\"");
    }
    node_t events = s_get(root, "events");
    if (s_kind(&events) == K_ABSENT) {
        req->events = calloc(1, sizeof *req->events);
        if (!req->events)
            return ANNAL_ERR_INTERNAL;
        req->event_count = 1;
        return s_new_event(c, root, &req->events[0]);
    }
    if (s_kind(&events) != K_ARRAY)
        return s_fail(c, "field 'events' must be an array");
    size_t n = s_array_size(&events);
    if (n == 0)
        return s_fail(c, "field 'events' is empty");
    if (n > c->lim->max_batch)
        return s_fail(c, "field 'events' has %zu events, more than the limit of %zu", n,
                      c->lim->max_batch);
    req->batch = true;
    req->events = calloc(n, sizeof *req->events);
    if (!req->events)
        return ANNAL_ERR_INTERNAL;
    req->event_count = n;
    for (size_t i = 0; i < n; i++) {
        node_t e = s_at(&events, i);
        if (s_kind(&e) != K_MAP)
            return s_fail(c, "events[%zu] must be an object", i);
        annal_err_t rc = s_new_event(c, &e, &req->events[i]);
        if (rc) {
            if (rc == ANNAL_ERR_MALFORMED) {
                char inner[256];
                snprintf(inner, sizeof inner, "%s", c->why);
                s_fail(c, "events[%zu]: %s", i, inner);
            }
            return rc;
        }
    }
    if (n > 1) {
        uint8_t(*ids)[16] = malloc(n * 16);
        if (!ids)
            return ANNAL_ERR_INTERNAL;
        for (size_t i = 0; i < n; i++)
            memcpy(ids[i], req->events[i].event_id, 16);
        qsort(ids, n, 16, s_cmp_id);
        bool dup = false;
        for (size_t i = 1; i < n && !dup; i++)
            dup = memcmp(ids[i - 1], ids[i], 16) == 0;
        free(ids);
        if (dup)
            return s_fail(c, "the same event_id appears twice in 'events'");
    }
    return ANNAL_OK;
}

static annal_err_t s_command(ctx_t *c, const node_t *root, annal_request_t *req)
{
    annal_err_t rc = ANNAL_OK;
    const char *why = NULL;
    switch (req->cmd) {
    case ANNAL_CMD_STATUS:
    case ANNAL_CMD_INIT:
        return ANNAL_OK;
    case ANNAL_CMD_READ_ALL: {
        bool present;
        if ((rc = s_uint_field(c, root, "from_sequence", &present, &req->from)))
            return rc;
        if (!present || req->from == 0)
            req->from = 1;
        if ((rc = s_uint_field(c, root, "max_count", &present, &req->max_count)))
            return rc;
        if (!present)
            req->max_count = ANNAL_READ_DEFAULT;
        node_t p = s_get(root, "prefix");
        if (!s_absent(&p)) {
            size_t len;
            const char *s = s_kind(&p) == K_STR ? s_str(&p, &len) : NULL;
            if (!s)
                return s_fail(c, "field 'prefix' must be a string");
            if (len > ANNAL_MAX_AGGREGATE_ID || !annal_utf8_valid(s, len))
                return s_fail(c, "field 'prefix' must be UTF-8 of at most %d bytes",
                              ANNAL_MAX_AGGREGATE_ID);
            req->prefix = s_dup(s, len);
            req->prefix_len = len;
            if (!req->prefix)
                return ANNAL_ERR_INTERNAL;
        }
        node_t t = s_get(root, "event_types");
        if (!s_absent(&t)) {
            if (s_kind(&t) != K_ARRAY)
                return s_fail(c, "field 'event_types' must be an array of strings");
            size_t n = s_array_size(&t);
            if (n > ANNAL_MAX_EVENT_TYPES)
                return s_fail(c, "field 'event_types' has more than %d entries",
                              ANNAL_MAX_EVENT_TYPES);
            req->event_types = calloc(n ? n : 1, sizeof(char *));
            if (!req->event_types)
                return ANNAL_ERR_INTERNAL;
            for (size_t i = 0; i < n; i++) {
                node_t e = s_at(&t, i);
                size_t len;
                const char *s = s_kind(&e) == K_STR ? s_str(&e, &len) : NULL;
                if (!s || s_name_check(s, len, c->lim->max_event_type))
                    return s_fail(c, "event_types[%zu] must be a valid event type", i);
                if (!(req->event_types[i] = s_dup(s, len)))
                    return ANNAL_ERR_INTERNAL;
                req->event_type_count++;
            }
        }
        return ANNAL_OK;
    }
    default:
        break;
    }
    if ((rc = s_name_field(c, root, "aggregate_id", true, &req->aggregate_id)))
        return rc;
    switch (req->cmd) {
    case ANNAL_CMD_APPEND:
        return s_append(c, root, req);
    case ANNAL_CMD_CREATE_SNAPSHOT: {
        node_t st = s_get(root, "state");
        if (s_kind(&st) != K_ABSENT) {
            if (s_pack_value(c, &st, &req->state, &why))
                return s_fail(c, "field 'state': %s", why);
            req->has_state = true;
        }
        if ((rc = s_uint_field(c, root, "version", &req->has_version, &req->version)))
            return rc;
        if (req->has_state && req->has_version)
            return s_fail(c, "'version' snapshots the default fold as of that version; it "
                             "cannot be given with 'state'");
        return ANNAL_OK;
    }
    case ANNAL_CMD_GET_SNAPSHOT:
        return ANNAL_OK;
    case ANNAL_CMD_REPLAY:
        if ((rc = s_bool_field(c, root, "use_snapshot", &req->use_snapshot)))
            return rc;
        return s_uint_field(c, root, "version", &req->has_version, &req->version);
    case ANNAL_CMD_GET_STATE: {
        node_t ts = s_get(root, "timestamp");
        if (s_absent(&ts))
            return s_fail(c, "missing field 'timestamp'");
        size_t len;
        const char *s = s_kind(&ts) == K_STR ? s_str(&ts, &len) : NULL;
        if (!s || len > 64 || annal_time_parse(s, len, &req->timestamp_us))
            return s_fail(c, "field 'timestamp' must be an RFC 3339 date-time, e.g. "
                             "\"2024-01-15T09:00:00Z\"");
        req->timestamp = s_dup(s, len);
        return req->timestamp ? ANNAL_OK : ANNAL_ERR_INTERNAL;
    }
    case ANNAL_CMD_READ: {
        bool present;
        if ((rc = s_uint_field(c, root, "from_version", &req->has_from, &req->from)))
            return rc;
        if ((rc = s_uint_field(c, root, "max_count", &present, &req->max_count)))
            return rc;
        if (!present)
            req->max_count = ANNAL_READ_DEFAULT;
        node_t d = s_get(root, "direction");
        if (!s_absent(&d)) {
            size_t len;
            const char *s = s_kind(&d) == K_STR ? s_str(&d, &len) : NULL;
            if (s && len == 8 && memcmp(s, "backward", 8) == 0)
                req->backward = true;
            else if (!s || len != 7 || memcmp(s, "forward", 7) != 0)
                return s_fail(c, "field 'direction' must be \"forward\" or \"backward\"");
        }
        return ANNAL_OK;
    }
    default:
        return ANNAL_OK;
    }
}

/* Depth of a JSON value, containers counted; stops counting past limit. */
static int s_json_depth(const json_t *v, int limit)
{
    if (limit <= 0)
        return 1;
    int best = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *) v, k, m)
        {
            int d = s_json_depth(m, limit - 1);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int d = s_json_depth(json_array_get(v, i), limit - 1);
            if (d > best)
                best = d;
        }
        return best + 1;
    }
    return 0;
}

static bool s_msgpack_map_byte(uint8_t b)
{
    return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
}

annal_encoding_t annal_request_peek(const uint8_t *body, size_t size, annal_request_t *req)
{
    if (size == 0 || !s_msgpack_map_byte(body[0]))
        return ANNAL_ENC_JSON;
    req->has_msg_id = annal_msgpack_find_int(body, size, "msg_id", &req->msg_id) == 0;
    return ANNAL_ENC_MSGPACK;
}

annal_err_t annal_request_decode(const uint8_t *body, size_t size, const annal_limits_t *limits,
                                 annal_request_t *req, annal_encoding_t *enc, char *why,
                                 size_t whylen)
{
    annal_limits_t defaults;
    if (!limits) {
        defaults = annal_limits_default();
        limits = &defaults;
    }
    ctx_t c = {why, whylen, limits, ""};
    int depth = (int) limits->max_depth;
    memset(req, 0, sizeof *req);
    *enc = ANNAL_ENC_JSON;
    why[0] = 0;
    if (size == 0)
        return s_fail(&c, "empty request body");
    uint8_t b = body[0];
    json_t *json = NULL;
    msgpack_unpacked mp;
    msgpack_unpacked_init(&mp);
    node_t root = {NULL, NULL};
    annal_err_t rc = ANNAL_OK;
    if (b == '{' || b == ' ' || b == '\t' || b == '\n' || b == '\r') {
        json_error_t err;
        json = json_loadb((const char *) body, size, JSON_ALLOW_NUL, &err);
        if (!json) {
            rc = s_fail(&c, "invalid JSON at line %d column %d: %s", err.line, err.column,
                        err.text);
            goto cleanup;
        }
        if (!json_is_object(json)) {
            rc = s_fail(&c, "the request body must be a JSON object");
            goto cleanup;
        }
        json_t *id = json_object_get(json, "msg_id");
        if (json_is_integer(id)) { /* for in_reply_to, should the rest fail */
            req->has_msg_id = true;
            req->msg_id = json_integer_value(id);
        }
        if (s_json_depth(json, depth + 1) > depth) {
            rc = s_fail(&c, "nesting too deep (more than %d levels)", depth);
            goto cleanup;
        }
        root.j = json;
    }
    else if (s_msgpack_map_byte(b)) {
        *enc = ANNAL_ENC_MSGPACK;
        const char *reason;
        size_t off = 0;
        if (annal_msgpack_check(body, size, depth, &reason)) {
            req->has_msg_id = annal_msgpack_find_int(body, size, "msg_id", &req->msg_id) == 0;
            rc = s_fail(&c, "invalid MessagePack: %s", reason);
            goto cleanup;
        }
        if (msgpack_unpack_next(&mp, (const char *) body, size, &off) != MSGPACK_UNPACK_SUCCESS) {
            rc = s_fail(&c, "invalid MessagePack");
            goto cleanup;
        }
        root.m = &mp.data;
    }
    else {
        rc = s_fail(&c, "the body is neither a JSON object nor a MessagePack map");
        goto cleanup;
    }

    node_t id = s_get(&root, "msg_id");
    req->has_msg_id = s_kind(&id) == K_INT;
    if (req->has_msg_id)
        req->msg_id = s_int(&id);
    node_t type = s_get(&root, "type");
    if (s_absent(&type) || s_kind(&type) != K_STR) {
        rc = s_fail(&c, "field 'type' must be a string");
        goto cleanup;
    }
    size_t tlen;
    const char *t = s_str(&type, &tlen);
    req->cmd = ANNAL_CMD_COUNT;
    for (int i = 0; i < ANNAL_CMD_COUNT; i++)
        if (strlen(s_cmd_names[i]) == tlen && memcmp(s_cmd_names[i], t, tlen) == 0)
            req->cmd = (annal_cmd_t) i;
    if (!req->has_msg_id) {
        rc = s_fail(&c, s_kind(&id) == K_ABSENT ? "missing field 'msg_id'"
                                                 : "field 'msg_id' must be an integer");
        goto cleanup;
    }
    if (req->cmd == ANNAL_CMD_COUNT) {
        int shown = tlen > 64 ? 64 : (int) tlen;
        bool printable = annal_utf8_valid(t, tlen) && !memchr(t, 0, tlen);
        snprintf(why, whylen, "unknown type '%.*s'%s", printable ? shown : 0, t,
                 printable ? "" : "(not printable)");
        rc = ANNAL_ERR_UNKNOWN_TYPE;
        goto cleanup;
    }
    rc = s_command(&c, &root, req);
    if (rc == ANNAL_ERR_INTERNAL)
        snprintf(why, whylen, "out of memory decoding the request");
cleanup:
    json_decref(json);
    msgpack_unpacked_destroy(&mp);
    return rc;
}

void annal_request_reset(annal_request_t *req)
{
    free(req->aggregate_id);
    for (size_t i = 0; i < req->event_count; i++) {
        free(req->events[i].event_type);
        annal_blob_free(&req->events[i].data);
        annal_blob_free(&req->events[i].metadata);
    }
    free(req->events);
    annal_blob_free(&req->state);
    free(req->timestamp);
    free(req->prefix);
    for (size_t i = 0; i < req->event_type_count; i++)
        free(req->event_types[i]);
    free(req->event_types);
    memset(req, 0, sizeof *req);
}

/* --- reply builder --------------------------------------------------------------- */

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
    char text[37];
    uuid_unparse_lower(id, text);
    annal_json_string(b, text, 36);
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
    char text[37];
    uuid_unparse_lower(id, text);
    msgpack_pack_str_with_body(pk, text, 36);
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

/* --- reading replies and events ---------------------------------------------- */

#define MSG_MAX_DEPTH 64

struct annal_msg_t {
    node_t root;             /* this message's map */
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
    if (b == '{' || b == ' ' || b == '\t' || b == '\n' || b == '\r') {
        json_error_t err;
        self->json = json_loadb((const char *) data, size, JSON_ALLOW_NUL, &err);
        if (json_is_object(self->json) && s_json_depth(self->json, MSG_MAX_DEPTH + 1) <= MSG_MAX_DEPTH) {
            self->root.j = self->json;
            return self;
        }
    }
    else if (s_msgpack_map_byte(b)) {
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
static const char *s_node_str(annal_msg_t *self, const node_t *n)
{
    if (s_kind(n) != K_STR)
        return NULL;
    size_t len;
    const char *s = s_str(n, &len);
    if (!annal_utf8_valid(s, len) || memchr(s, 0, len))
        return NULL;
    return s_own(self, s_dup(s, len), false);
}

const char *annal_msg_str(annal_msg_t *self, const char *key)
{
    node_t n = s_get(&self->root, key);
    return s_node_str(self, &n);
}

bool annal_msg_int(const annal_msg_t *self, const char *key, int64_t *value)
{
    node_t n = s_get(&self->root, key);
    if (s_kind(&n) != K_INT)
        return false;
    *value = s_int(&n);
    return true;
}

const char *annal_msg_json(annal_msg_t *self, const char *key)
{
    node_t n = key ? s_get(&self->root, key) : self->root;
    if (s_kind(&n) == K_ABSENT)
        return NULL;
    annal_blob_t blob = {0};
    const char *why;
    if (s_pack(&n, &blob, &why))
        return NULL;
    char *text = annal_value_to_json_text(blob.data, blob.size);
    annal_blob_free(&blob);
    return s_own(self, text, false);
}

size_t annal_msg_len(const annal_msg_t *self, const char *key)
{
    node_t n = s_get(&self->root, key);
    return s_kind(&n) == K_ARRAY ? s_array_size(&n) : 0;
}

annal_msg_t *annal_msg_item(annal_msg_t *self, const char *key, size_t i)
{
    node_t n = s_get(&self->root, key);
    if (s_kind(&n) != K_ARRAY || i >= s_array_size(&n))
        return NULL;
    node_t item = s_at(&n, i);
    if (s_kind(&item) != K_MAP)
        return NULL;
    annal_msg_t *child = calloc(1, sizeof *child);
    if (!child)
        return NULL;
    child->root = item;
    return s_own(self, child, true);
}

const char *annal_msg_str_item(annal_msg_t *self, const char *key, size_t i)
{
    node_t n = s_get(&self->root, key);
    if (s_kind(&n) != K_ARRAY || i >= s_array_size(&n))
        return NULL;
    node_t item = s_at(&n, i);
    return s_node_str(self, &item);
}

int annal_value_from_json_text(const char *text, size_t len, annal_blob_t *out, char *why,
                               size_t whylen)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) {
        snprintf(why, whylen, "invalid JSON: %s", err.text);
        return -1;
    }
    node_t n = {v, NULL};
    const char *reason;
    annal_limits_t d = annal_limits_default();
    ctx_t c = {why, whylen, &d, ""};
    int rc = s_pack_value(&c, &n, out, &reason);
    if (rc)
        snprintf(why, whylen, "%s", reason);
    json_decref(v);
    return rc;
}

char *annal_value_to_json_text(const uint8_t *data, size_t size)
{
    annal_buf_t b = {0};
    if (annal_json_value(&b, data, size) || b.failed || !b.data) {
        annal_buf_free(&b);
        return NULL;
    }
    return b.data;
}
