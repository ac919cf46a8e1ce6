/*  annal_request.c: requests in, JSON or MessagePack (annal_request.h).

    Both encodings are read through one accessor (annal_node.c), so every
    field rule is written once. Requests are checked field by field; the
    first rule broken is the error text. Nothing decoded points into the
    body or into jansson's or msgpack-c's trees: fields are copied out and
    the trees are released before decode returns. */
#include "annal_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_event_id.h"
#include "annal_time.h"
#include "annal_value_private.h"

#define REASON_MAX 128 /* a value's reason, quoted in the error text */

/* --- field rules ------------------------------------------------------------ */

typedef struct {
    char *why;                 /* reason buffer */
    size_t whylen;             /* bytes in why */
    const annal_limits_t *lim; /* the limits in force */
} ctx_t;

static annal_err_t s_fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return ANNAL_ERR_MALFORMED;
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

/* Required text field key of obj, checked as a name; *out owned. */
static annal_err_t s_name_field(ctx_t *c, const annal_node_t *obj, const char *key, bool aggregate,
                                char **out)
{
    annal_node_t n = annal_node_get(obj, key);
    if (annal_node_absent(&n))
        return s_fail(c, "missing field '%s'", key);
    if (annal_node_kind(&n) != ANNAL_NODE_STR)
        return s_fail(c, "field '%s' must be a string", key);
    size_t len;
    const char *s = annal_node_str(&n, &len);
    size_t max = aggregate ? c->lim->max_aggregate_id : c->lim->max_event_type;
    const char *why = aggregate ? s_aggregate_check(s, len, max) : s_name_check(s, len, max);
    if (why && len > max)
        return s_fail(c, "field '%s' %s (%zu bytes; the limit is %zu)", key, why, len, max);
    if (why)
        return s_fail(c, "field '%s' %s", key, why);
    *out = annal_node_str_dup(&n);
    return *out ? ANNAL_OK : ANNAL_ERR_INTERNAL;
}

/* Optional non-negative integer; *present tells whether it was given. */
static annal_err_t s_uint_field(ctx_t *c, const annal_node_t *obj, const char *key, bool *present,
                                uint64_t *out)
{
    annal_node_t n = annal_node_get(obj, key);
    *present = false;
    if (annal_node_absent(&n))
        return ANNAL_OK;
    if (annal_node_kind(&n) != ANNAL_NODE_INT || annal_node_int(&n) < 0)
        return s_fail(c, "field '%s' must be an integer >= 0", key);
    *present = true;
    *out = (uint64_t) annal_node_int(&n);
    return ANNAL_OK;
}

static annal_err_t s_bool_field(ctx_t *c, const annal_node_t *obj, const char *key, bool *out)
{
    annal_node_t n = annal_node_get(obj, key);
    if (annal_node_absent(&n))
        return ANNAL_OK;
    if (annal_node_kind(&n) != ANNAL_NODE_BOOL)
        return s_fail(c, "field '%s' must be true or false", key);
    *out = annal_node_bool(&n);
    return ANNAL_OK;
}

/* The text of n, or NULL when n is not a string. */
static const char *s_text(const annal_node_t *n, size_t *len)
{
    return annal_node_kind(n) == ANNAL_NODE_STR ? annal_node_str(n, len) : NULL;
}

/* max_count of read and read_all: as asked, or ANNAL_READ_DEFAULT. */
static annal_err_t s_max_count(ctx_t *c, const annal_node_t *root, uint64_t *out)
{
    bool present;
    annal_err_t rc = s_uint_field(c, root, "max_count", &present, out);
    if (rc == ANNAL_OK && !present)
        *out = ANNAL_READ_DEFAULT;
    return rc;
}

static int s_cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* An optional "event_id" of obj into id (a new one when absent);
   *given says whether it was there. */
static annal_err_t s_event_id(ctx_t *c, const annal_node_t *obj, uint8_t id[16], bool *given)
{
    annal_node_t n = annal_node_get(obj, "event_id");
    *given = false;
    if (annal_node_absent(&n)) {
        annal_event_id_new(id);
        return ANNAL_OK;
    }
    size_t len;
    const char *s = s_text(&n, &len);
    if (!s || len != ANNAL_EVENT_ID_TEXT - 1)
        return s_fail(c, "field 'event_id' must be a UUID string");
    if (annal_event_id_parse(s, len, id))
        return s_fail(c, "field 'event_id' is not a valid UUID: '%.36s'", s);
    *given = true;
    return ANNAL_OK;
}

/* One event of an append: from the request itself or a batch entry. */
static annal_err_t s_new_event(ctx_t *c, const annal_node_t *obj, annal_new_event_t *ev)
{
    annal_err_t rc = s_name_field(c, obj, "event_type", false, &ev->event_type);
    if (rc)
        return rc;
    if (ev->event_type[0] == '$')
        return s_fail(c, "field 'event_type' starts with '$' (reserved for the server's events, "
                         "such as $deleted)");
    char why[REASON_MAX];
    annal_node_t data = annal_node_get(obj, "event_data");
    if (annal_node_kind(&data) == ANNAL_NODE_ABSENT)
        return s_fail(c, "missing field 'event_data'");
    if (annal_node_pack_value(&data, c->lim->max_depth, &ev->data, why, sizeof why))
        return s_fail(c, "field 'event_data': %s", why);
    annal_node_t meta = annal_node_get(obj, "metadata");
    if (annal_node_absent(&meta)) {
        if (annal_blob_copy(&ev->metadata, ANNAL_VALUE_EMPTY_OBJECT, 1))
            return ANNAL_ERR_INTERNAL;
    }
    else if (annal_node_kind(&meta) != ANNAL_NODE_MAP)
        return s_fail(c, "field 'metadata' must be an object");
    else if (annal_node_pack_value(&meta, c->lim->max_depth, &ev->metadata, why, sizeof why))
        return s_fail(c, "field 'metadata': %s", why);
    return s_event_id(c, obj, ev->event_id, &ev->client_id);
}

/* The version check of an append or a delete_aggregate: "version", an
   integer >= 0, "any" or "exists" (required). */
static annal_err_t s_expected(ctx_t *c, const annal_node_t *root, annal_request_t *req)
{
    static const char bad[] = "field 'version' must be an integer >= 0, \"any\" or \"exists\"";
    annal_node_t v = annal_node_get(root, "version");
    switch (annal_node_kind(&v)) {
    case ANNAL_NODE_ABSENT:
        return s_fail(c, "missing field 'version' (use \"any\" to skip the check)");
    case ANNAL_NODE_INT:
        if (annal_node_int(&v) < 0)
            return s_fail(c, "%s", bad);
        req->expect = ANNAL_EXPECT_EXACT;
        req->expected_version = (uint64_t) annal_node_int(&v);
        return ANNAL_OK;
    case ANNAL_NODE_STR: {
        size_t len;
        const char *s = annal_node_str(&v, &len);
        if (len == 3 && memcmp(s, "any", 3) == 0)
            req->expect = ANNAL_EXPECT_ANY;
        else if (len == 6 && memcmp(s, "exists", 6) == 0)
            req->expect = ANNAL_EXPECT_EXISTS;
        else
            return s_fail(c, "%s", bad);
        return ANNAL_OK;
    }
    default: return s_fail(c, "%s", bad);
    }
}

/* A retention limit of set_retention: an integer >= 1, or null or absent
   for none (0). */
static annal_err_t s_limit(ctx_t *c, const annal_node_t *root, const char *key, uint64_t *out)
{
    annal_node_t n = annal_node_get(root, key);
    *out = 0;
    if (annal_node_absent(&n) || annal_node_kind(&n) == ANNAL_NODE_NULL)
        return ANNAL_OK;
    if (annal_node_kind(&n) != ANNAL_NODE_INT || annal_node_int(&n) < 1)
        return s_fail(c, "field '%s' must be an integer >= 1, or null for none", key);
    *out = (uint64_t) annal_node_int(&n);
    return ANNAL_OK;
}

static annal_err_t s_append(ctx_t *c, const annal_node_t *root, annal_request_t *req)
{
    annal_err_t rc = s_expected(c, root, req);
    if (rc)
        return rc;
    annal_node_t events = annal_node_get(root, "events");
    if (annal_node_kind(&events) == ANNAL_NODE_ABSENT) {
        req->events = calloc(1, sizeof *req->events);
        if (!req->events)
            return ANNAL_ERR_INTERNAL;
        req->event_count = 1;
        return s_new_event(c, root, &req->events[0]);
    }
    if (annal_node_kind(&events) != ANNAL_NODE_ARRAY)
        return s_fail(c, "field 'events' must be an array");
    size_t n = annal_node_size(&events);
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
        annal_node_t e = annal_node_at(&events, i);
        if (annal_node_kind(&e) != ANNAL_NODE_MAP)
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

/* The prefix and event_types filters of read_all and group_create. */
static annal_err_t s_filters(ctx_t *c, const annal_node_t *root, annal_request_t *req)
{
    annal_node_t p = annal_node_get(root, "prefix");
    if (!annal_node_absent(&p)) {
        size_t len;
        const char *s = s_text(&p, &len);
        if (!s)
            return s_fail(c, "field 'prefix' must be a string");
        if (len > ANNAL_MAX_AGGREGATE_ID || !annal_utf8_valid(s, len))
            return s_fail(c, "field 'prefix' must be UTF-8 of at most %d bytes",
                          ANNAL_MAX_AGGREGATE_ID);
        req->prefix = annal_node_str_dup(&p);
        req->prefix_len = len;
        if (!req->prefix)
            return ANNAL_ERR_INTERNAL;
    }
    annal_node_t t = annal_node_get(root, "event_types");
    if (!annal_node_absent(&t)) {
        if (annal_node_kind(&t) != ANNAL_NODE_ARRAY)
            return s_fail(c, "field 'event_types' must be an array of strings");
        size_t n = annal_node_size(&t);
        if (n > ANNAL_MAX_EVENT_TYPES)
            return s_fail(c, "field 'event_types' has more than %d entries", ANNAL_MAX_EVENT_TYPES);
        req->event_types = calloc(n ? n : 1, sizeof(char *));
        if (!req->event_types)
            return ANNAL_ERR_INTERNAL;
        for (size_t i = 0; i < n; i++) {
            annal_node_t e = annal_node_at(&t, i);
            size_t len;
            const char *s = s_text(&e, &len);
            if (!s || s_name_check(s, len, c->lim->max_event_type))
                return s_fail(c, "event_types[%zu] must be a valid event type", i);
            if (!(req->event_types[i] = annal_node_str_dup(&e)))
                return ANNAL_ERR_INTERNAL;
            req->event_type_count++;
        }
    }
    return ANNAL_OK;
}

/* A name with the aggregate id rules (group, consumer); *out owned. */
static annal_err_t s_group_name(ctx_t *c, const annal_node_t *root, const char *key, char **out)
{
    annal_node_t n = annal_node_get(root, key);
    if (annal_node_absent(&n))
        return s_fail(c, "missing field '%s'", key);
    size_t len;
    const char *s = s_text(&n, &len);
    if (!s)
        return s_fail(c, "field '%s' must be a string", key);
    const char *why = s_aggregate_check(s, len, ANNAL_MAX_AGGREGATE_ID);
    if (why)
        return s_fail(c, "field '%s' %s", key, why);
    *out = annal_node_str_dup(&n);
    return *out ? ANNAL_OK : ANNAL_ERR_INTERNAL;
}

/* An optional integer in lo..hi, or def when absent. */
static annal_err_t s_ranged(ctx_t *c, const annal_node_t *root, const char *key, uint64_t lo,
                            uint64_t hi, uint64_t def, uint64_t *out)
{
    bool present = false;
    annal_err_t rc = s_uint_field(c, root, key, &present, out);
    if (rc)
        return rc;
    if (!present)
        *out = def;
    else if (*out < lo || *out > hi)
        return s_fail(c, "field '%s' must be an integer from %llu to %llu", key,
                      (unsigned long long) lo, (unsigned long long) hi);
    return ANNAL_OK;
}

/* The sequences an ack, a nack or a replay names: an array of integers >= 1,
   at most max_batch of them. */
static annal_err_t s_sequences(ctx_t *c, const annal_node_t *root, annal_request_t *req)
{
    annal_node_t a = annal_node_get(root, "sequences");
    if (annal_node_absent(&a))
        return s_fail(c, "missing field 'sequences'");
    if (annal_node_kind(&a) != ANNAL_NODE_ARRAY)
        return s_fail(c, "field 'sequences' must be an array of sequence numbers");
    size_t n = annal_node_size(&a);
    if (n > c->lim->max_batch)
        return s_fail(c, "field 'sequences' has %zu entries, more than the limit of %zu", n,
                      c->lim->max_batch);
    req->sequences = calloc(n ? n : 1, sizeof *req->sequences);
    if (!req->sequences)
        return ANNAL_ERR_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        annal_node_t e = annal_node_at(&a, i);
        if (annal_node_kind(&e) != ANNAL_NODE_INT || annal_node_int(&e) < 1)
            return s_fail(c, "sequences[%zu] must be a sequence number (an integer >= 1)", i);
        req->sequences[i] = (uint64_t) annal_node_int(&e);
    }
    req->sequence_count = n;
    req->has_sequences = true;
    return ANNAL_OK;
}

/* One of the words of choices (NULL-terminated) at key, as its index; def
   when absent. */
static annal_err_t s_choice(ctx_t *c, const annal_node_t *root, const char *key,
                            const char *const *choices, const char *hint, int def, int *out)
{
    annal_node_t n = annal_node_get(root, key);
    *out = def;
    if (annal_node_absent(&n))
        return def >= 0 ? ANNAL_OK : s_fail(c, "missing field '%s' (%s)", key, hint);
    size_t len;
    const char *s = s_text(&n, &len);
    for (int i = 0; s && choices[i]; i++)
        if (strlen(choices[i]) == len && memcmp(choices[i], s, len) == 0) {
            *out = i;
            return ANNAL_OK;
        }
    return s_fail(c, "field '%s' must be %s", key, hint);
}

/* The fields of the consumer group commands, after the group's name. */
static annal_err_t s_group_command(ctx_t *c, const annal_node_t *root, annal_request_t *req)
{
    annal_err_t rc = ANNAL_OK;
    uint64_t v;
    int choice;
    switch (req->cmd) {
    case ANNAL_CMD_GROUP_CREATE: {
        if ((rc = s_filters(c, root, req)))
            return rc;
        annal_node_t f = annal_node_get(root, "from_sequence");
        size_t len;
        const char *s = s_text(&f, &len);
        if (s && len == 3 && memcmp(s, "end", 3) == 0)
            req->from_end = true;
        else if (annal_node_absent(&f))
            req->from = 1;
        else if (annal_node_kind(&f) != ANNAL_NODE_INT || annal_node_int(&f) < 1)
            return s_fail(c, "field 'from_sequence' must be an integer >= 1 or \"end\"");
        else
            req->from = (uint64_t) annal_node_int(&f);
        static const char *const orderings[] = {"aggregate", "none", NULL};
        if ((rc =
                 s_choice(c, root, "ordering", orderings, "\"aggregate\" or \"none\"", 0, &choice)))
            return rc;
        req->unordered = choice == 1;
        if ((rc = s_ranged(c, root, "ack_timeout_ms", ANNAL_ACK_TIMEOUT_MIN, ANNAL_ACK_TIMEOUT_MAX,
                           ANNAL_ACK_TIMEOUT_DEFAULT, &v)))
            return rc;
        req->ack_timeout_ms = (uint32_t) v;
        if ((rc = s_ranged(c, root, "max_deliveries", 1, ANNAL_MAX_DELIVERIES_CEILING,
                           ANNAL_MAX_DELIVERIES_DEFAULT, &v)))
            return rc;
        req->max_deliveries = (uint32_t) v;
        return ANNAL_OK;
    }
    case ANNAL_CMD_GROUP_FETCH:
        if ((rc = s_group_name(c, root, "consumer", &req->consumer)))
            return rc;
        if ((rc = s_ranged(c, root, "max_count", 0, UINT64_MAX, ANNAL_FETCH_DEFAULT,
                           &req->max_count)))
            return rc;
        if ((rc = s_ranged(c, root, "wait_ms", 0, ANNAL_WAIT_MAX, 0, &v)))
            return rc;
        req->wait_ms = (uint32_t) v;
        return ANNAL_OK;
    case ANNAL_CMD_GROUP_ACK:
    case ANNAL_CMD_GROUP_NACK: {
        if ((rc = s_group_name(c, root, "consumer", &req->consumer)))
            return rc;
        if ((rc = s_sequences(c, root, req)) || req->cmd == ANNAL_CMD_GROUP_ACK)
            return rc;
        static const char *const actions[] = {"retry", "park", "skip", NULL};
        if ((rc = s_choice(c, root, "action", actions, "\"retry\", \"park\" or \"skip\"", -1,
                           &choice)))
            return rc;
        req->action = (annal_nack_t) choice;
        annal_node_t r = annal_node_get(root, "reason");
        if (annal_node_absent(&r))
            return ANNAL_OK;
        size_t len;
        const char *s = s_text(&r, &len);
        if (!s || len > ANNAL_MAX_REASON || !annal_utf8_valid(s, len) || memchr(s, 0, len))
            return s_fail(c, "field 'reason' must be text of at most %d bytes", ANNAL_MAX_REASON);
        req->reason = annal_node_str_dup(&r);
        return req->reason ? ANNAL_OK : ANNAL_ERR_INTERNAL;
    }
    case ANNAL_CMD_GROUP_PARKED:
        if ((rc = s_ranged(c, root, "from_sequence", 0, UINT64_MAX, 1, &req->from)))
            return rc;
        req->from = req->from ? req->from : 1;
        return s_max_count(c, root, &req->max_count);
    case ANNAL_CMD_GROUP_REPLAY_PARKED: {
        annal_node_t a = annal_node_get(root, "sequences");
        return annal_node_absent(&a) ? ANNAL_OK : s_sequences(c, root, req);
    }
    default: return ANNAL_OK;
    }
}

/* The fields of command's request, in the order they are checked: its
   aggregate_id first when it needs one. */
static annal_err_t s_command(ctx_t *c, const annal_command_t *command, const annal_node_t *root,
                             annal_request_t *req)
{
    annal_err_t rc = ANNAL_OK;
    char why[REASON_MAX];
    if (command->needs_aggregate
        && (rc = s_name_field(c, root, "aggregate_id", true, &req->aggregate_id)))
        return rc;
    if (command->needs_group) {
        if ((rc = s_group_name(c, root, "group", &req->group)))
            return rc;
        return s_group_command(c, root, req);
    }
    switch (req->cmd) {
    case ANNAL_CMD_STATUS:
    case ANNAL_CMD_INIT:
    case ANNAL_CMD_GET_SNAPSHOT: return ANNAL_OK;
    case ANNAL_CMD_READ_ALL: {
        bool present;
        if ((rc = s_uint_field(c, root, "from_sequence", &present, &req->from)))
            return rc;
        if (!present || req->from == 0)
            req->from = 1;
        if ((rc = s_max_count(c, root, &req->max_count)))
            return rc;
        return s_filters(c, root, req);
    }
    case ANNAL_CMD_APPEND: return s_append(c, root, req);
    case ANNAL_CMD_DELETE_AGGREGATE:
        if ((rc = s_expected(c, root, req)) || (rc = s_bool_field(c, root, "hard", &req->hard)))
            return rc;
        return s_event_id(c, root, req->delete_id, &req->has_delete_id);
    case ANNAL_CMD_SET_RETENTION:
        if ((rc = s_limit(c, root, "max_count", &req->keep_count)))
            return rc;
        return s_limit(c, root, "max_age_s", &req->keep_age_s);
    case ANNAL_CMD_GET_RETENTION: return ANNAL_OK;
    case ANNAL_CMD_CREATE_SNAPSHOT: {
        annal_node_t st = annal_node_get(root, "state");
        if (annal_node_kind(&st) != ANNAL_NODE_ABSENT) {
            if (annal_node_pack_value(&st, c->lim->max_depth, &req->state, why, sizeof why))
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
    case ANNAL_CMD_REPLAY:
        if ((rc = s_bool_field(c, root, "use_snapshot", &req->use_snapshot)))
            return rc;
        return s_uint_field(c, root, "version", &req->has_version, &req->version);
    case ANNAL_CMD_GET_STATE: {
        annal_node_t ts = annal_node_get(root, "timestamp");
        if (annal_node_absent(&ts))
            return s_fail(c, "missing field 'timestamp'");
        size_t len;
        const char *s = s_text(&ts, &len);
        if (!s || len > 64 || annal_time_parse(s, len, &req->timestamp_us))
            return s_fail(c, "field 'timestamp' must be an RFC 3339 date-time, e.g. "
                             "\"2024-01-15T09:00:00Z\"");
        req->timestamp = annal_node_str_dup(&ts);
        return req->timestamp ? ANNAL_OK : ANNAL_ERR_INTERNAL;
    }
    case ANNAL_CMD_READ: {
        if ((rc = s_uint_field(c, root, "from_version", &req->has_from, &req->from)))
            return rc;
        if ((rc = s_max_count(c, root, &req->max_count)))
            return rc;
        annal_node_t d = annal_node_get(root, "direction");
        if (!annal_node_absent(&d)) {
            size_t len;
            const char *s = s_text(&d, &len);
            if (s && len == 8 && memcmp(s, "backward", 8) == 0)
                req->backward = true;
            else if (!s || len != 7 || memcmp(s, "forward", 7) != 0)
                return s_fail(c, "field 'direction' must be \"forward\" or \"backward\"");
        }
        return ANNAL_OK;
    }
    default: return ANNAL_OK;
    }
}

annal_encoding_t annal_request_peek(const uint8_t *body, size_t size, annal_request_t *req)
{
    if (size == 0 || !annal_node_msgpack_map_start(body[0]))
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
    ctx_t c = {why, whylen, limits};
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
    annal_node_t root = {NULL, NULL};
    annal_err_t rc = ANNAL_OK;
    if (annal_node_json_start(b)) {
        json_error_t err;
        json = json_loadb((const char *) body, size, JSON_ALLOW_NUL, &err);
        if (!json) {
            rc =
                s_fail(&c, "invalid JSON at line %d column %d: %s", err.line, err.column, err.text);
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
        if (annal_node_json_depth(json, depth + 1) > depth) {
            rc = s_fail(&c, "nesting too deep (more than %d levels)", depth);
            goto cleanup;
        }
        root.j = json;
    }
    else if (annal_node_msgpack_map_start(b)) {
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

    annal_node_t id = annal_node_get(&root, "msg_id");
    req->has_msg_id = annal_node_kind(&id) == ANNAL_NODE_INT;
    if (req->has_msg_id)
        req->msg_id = annal_node_int(&id);
    annal_node_t type = annal_node_get(&root, "type");
    if (annal_node_absent(&type) || annal_node_kind(&type) != ANNAL_NODE_STR) {
        rc = s_fail(&c, "field 'type' must be a string");
        goto cleanup;
    }
    size_t tlen;
    const char *t = annal_node_str(&type, &tlen);
    const annal_command_t *command = annal_command_find(t, tlen);
    req->cmd = command ? command->cmd : ANNAL_CMD_COUNT;
    if (!req->has_msg_id) {
        rc = s_fail(&c, annal_node_kind(&id) == ANNAL_NODE_ABSENT
                            ? "missing field 'msg_id'"
                            : "field 'msg_id' must be an integer");
        goto cleanup;
    }
    if (!command) {
        int shown = tlen > 64 ? 64 : (int) tlen;
        bool printable = annal_utf8_valid(t, tlen) && !memchr(t, 0, tlen);
        snprintf(why, whylen, "unknown type '%.*s'%s", printable ? shown : 0, t,
                 printable ? "" : "(not printable)");
        rc = ANNAL_ERR_UNKNOWN_TYPE;
        goto cleanup;
    }
    rc = s_command(&c, command, &root, req);
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
    free(req->group);
    free(req->consumer);
    free(req->sequences);
    free(req->reason);
    memset(req, 0, sizeof *req);
}
