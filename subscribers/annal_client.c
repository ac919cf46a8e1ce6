/*  annal_client.c: the command client (DEALER, MessagePack on the wire).

    Each request carries a fresh msg_id; a call waits for the reply whose
    in_reply_to matches and drops any other (a late answer to a call that
    timed out). Appends always carry event ids, generated here when the
    caller gives none, so re-sending an append after a timeout cannot write
    it twice. */
#include "annal_client.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <zmq.h>

#include "annal_client_private.h"
#include "annal_codec.h"

struct annal_client_t {
    void *ctx;          /* private ZeroMQ context */
    void *sock;         /* DEALER */
    int timeout_ms;     /* per call */
    int64_t next_id;    /* next msg_id */
    annal_body_t *body; /* request builder, reused */
    annal_msg_t *last;  /* the last reply, owned */
};

annal_status_t annal_client_result(annal_result_t *res, annal_status_t status, int code,
                                   const char *fmt, ...)
{
    if (res) {
        res->status = status;
        res->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->text, sizeof res->text, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *annal_status_str(annal_status_t status)
{
    switch (status) {
    case ANNAL_SUCCESS: return "success";
    case ANNAL_CONFLICT: return "conflict";
    case ANNAL_FAILED: return "failed";
    case ANNAL_TIMEOUT: return "timeout";
    case ANNAL_INVALID: return "invalid";
    }
    return "unknown status";
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

annal_client_t *annal_client_new(const char *endpoint, int timeout_ms)
{
    return annal_client_new_curve(endpoint, timeout_ms, NULL);
}

annal_client_t *annal_client_new_curve(const char *endpoint, int timeout_ms,
                                       const annal_curve_t *curve)
{
    annal_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    self->next_id = 1;
    self->ctx = zmq_ctx_new();
    self->body = annal_body_new();
    self->sock = self->ctx ? zmq_socket(self->ctx, ZMQ_DEALER) : NULL;
    int zero = 0, one = 1;
    if (!self->body || !self->sock || zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof zero)
        || zmq_setsockopt(self->sock, ZMQ_IMMEDIATE, &one, sizeof one)
        || zmq_setsockopt(self->sock, ZMQ_SNDTIMEO, &self->timeout_ms, sizeof(int))
        || annal_curve_apply(self->sock, curve) || zmq_connect(self->sock, endpoint)) {
        annal_client_destroy(&self);
        return NULL;
    }
    return self;
}

void annal_client_destroy(annal_client_t **self)
{
    annal_client_t *c = *self;
    if (!c)
        return;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    annal_body_destroy(&c->body);
    annal_msg_destroy(&c->last);
    free(c);
    *self = NULL;
}

const char *annal_client_last_reply(annal_client_t *self)
{
    return self->last ? annal_msg_json(self->last, NULL) : NULL;
}

/* Starts a request body of command cmd with a fresh msg_id. */
static int64_t s_begin(annal_client_t *self, annal_cmd_t cmd)
{
    int64_t id = self->next_id++;
    const char *type = annal_cmd_name(cmd);
    annal_body_begin_plain(self->body);
    annal_body_str(self->body, "type", type, strlen(type));
    annal_body_int(self->body, "msg_id", id);
    return id;
}

/* Sends the built body. */
static annal_status_t s_send(annal_client_t *self, annal_result_t *res)
{
    uint8_t *data;
    size_t len;
    if (annal_body_encode(self->body, ANNAL_ENC_MSGPACK, &data, &len))
        return annal_client_result(res, ANNAL_INVALID, 0, "the request could not be encoded");
    int rc = zmq_send(self->sock, data, len, 0);
    free(data);
    if (rc < 0)
        return annal_client_result(res, ANNAL_TIMEOUT, 0, "annald is not reachable: %s",
                                   zmq_strerror(zmq_errno()));
    return ANNAL_SUCCESS;
}

/* Waits for the reply to msg_id (any append reply when want_any) and turns
   error replies into statuses; the reply stays in self->last. A signal
   that interrupts the wait does not end it: a handler that asks a worker
   to stop still wants the reply in flight (what a fetch leased). */
static annal_status_t s_wait(annal_client_t *self, int64_t msg_id, bool want_any, int timeout_ms,
                             const char *want_type, annal_result_t *res)
{
    int64_t deadline = s_now_ms() + (timeout_ms < 0 ? self->timeout_ms : timeout_ms);
    for (;;) {
        int64_t left = deadline - s_now_ms();
        zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLIN, 0};
        int ready = left > 0 ? zmq_poll(&item, 1, (long) left) : 0;
        if (ready < 0 && zmq_errno() == EINTR)
            continue;
        if (ready <= 0)
            return annal_client_result(res, ANNAL_TIMEOUT, 0, "no reply from annald in time");
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            continue;
        }
        annal_msg_t *msg = annal_msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame));
        zmq_msg_close(&frame);
        int64_t id;
        if (!msg)
            return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL,
                                       "annald sent a reply this client cannot decode");
        const char *kind = annal_msg_str(msg, "type");
        bool anonymous_error = !annal_msg_int(msg, "in_reply_to", &id) && kind
                               && strcmp(kind, "error") == 0; /* annald could not read our msg_id */
        if (!anonymous_error
            && (!annal_msg_int(msg, "in_reply_to", &id) || (!want_any && id != msg_id))) {
            annal_msg_destroy(&msg); /* a late or unrelated reply */
            continue;
        }
        annal_msg_destroy(&self->last);
        self->last = msg;
        const char *type = annal_msg_str(msg, "type");
        if (res)
            memset(res, 0, sizeof *res);
        if (type && strcmp(type, "error") == 0) {
            int64_t code = ANNAL_CODE_INTERNAL;
            annal_msg_int(msg, "code", &code);
            const char *text = annal_msg_str(msg, "text");
            return annal_client_result(res, ANNAL_FAILED, (int) code, "%s", text ? text : "error");
        }
        if (type && strcmp(type, "concurrency_error") == 0) {
            const char *text = annal_msg_str(msg, "error");
            return annal_client_result(res, ANNAL_CONFLICT, 0, "%s",
                                       text ? text : "concurrency error");
        }
        if (!type || strcmp(type, want_type) != 0)
            return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL,
                                       "unexpected reply type '%s'", type ? type : "?");
        return ANNAL_SUCCESS;
    }
}

static annal_status_t s_call(annal_client_t *self, int64_t msg_id, const char *want_type,
                             annal_result_t *res)
{
    annal_status_t st = s_send(self, res);
    return st ? st : s_wait(self, msg_id, false, -1, want_type, res);
}

int64_t annal_client_begin(annal_client_t *self, annal_cmd_t cmd, annal_body_t **body)
{
    *body = self->body;
    return s_begin(self, cmd);
}

annal_status_t annal_client_call(annal_client_t *self, int64_t msg_id, const char *want_type,
                                 int wait_ms, annal_result_t *res)
{
    annal_status_t st = s_send(self, res);
    int timeout = wait_ms > INT_MAX - self->timeout_ms ? INT_MAX : self->timeout_ms + wait_ms;
    return st ? st : s_wait(self, msg_id, false, timeout, want_type, res);
}

annal_msg_t *annal_client_reply(annal_client_t *self)
{
    return self->last;
}

annal_msg_t *annal_client_take_reply(annal_client_t *self)
{
    annal_msg_t *m = self->last;
    self->last = NULL;
    return m;
}

static uint64_t s_u64(const annal_msg_t *msg, const char *key)
{
    int64_t v = 0;
    return annal_msg_int(msg, key, &v) && v > 0 ? (uint64_t) v : 0;
}

/* --- append ------------------------------------------------------------------ */

/* Checks an aggregate id before it is sent. */
static annal_status_t s_check_id(const char *id, annal_result_t *res)
{
    const char *why = id ? annal_aggregate_id_check(id, strlen(id)) : "is missing";
    if (why)
        return annal_client_result(res, ANNAL_INVALID, 0, "aggregate id %s", why);
    return ANNAL_SUCCESS;
}

static void s_free_events(annal_new_event_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        annal_blob_free(&ev[i].data);
        annal_blob_free(&ev[i].metadata);
    }
    free(ev);
}

/* The "version" an append or a delete expects: a number, "any" or "exists". */
static void s_expected_field(annal_client_t *self, int64_t expected)
{
    if (expected == ANNAL_ANY)
        annal_body_str(self->body, "version", "any", 3);
    else if (expected == ANNAL_EXISTS)
        annal_body_str(self->body, "version", "exists", 6);
    else
        annal_body_int(self->body, "version", expected);
}

/* Builds an append request; *events is the caller's to free. */
static annal_status_t s_build_append(annal_client_t *self, const char *agg, int64_t expected,
                                     const annal_event_spec_t *specs, size_t n,
                                     annal_new_event_t **events, int64_t *msg_id,
                                     annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    if (n == 0 || !specs)
        return annal_client_result(res, ANNAL_INVALID, 0, "no events to append");
    if (expected < ANNAL_EXISTS)
        return annal_client_result(res, ANNAL_INVALID, 0,
                                   "expected version must be >= 0, ANNAL_ANY or ANNAL_EXISTS");
    annal_new_event_t *ev = calloc(n, sizeof *ev);
    if (!ev)
        return annal_client_result(res, ANNAL_INVALID, 0, "out of memory");
    char why[256];
    for (size_t i = 0; i < n; i++) {
        const annal_event_spec_t *s = &specs[i];
        if (!s->event_type || !*s->event_type || !s->event_data) {
            s_free_events(ev, n);
            return annal_client_result(res, ANNAL_INVALID, 0,
                                       "event %zu needs an event_type and event_data", i);
        }
        ev[i].event_type = (char *) s->event_type;
        if (annal_value_from_json_text(s->event_data, strlen(s->event_data), &ev[i].data, why,
                                       sizeof why)
            || (s->metadata
                && annal_value_from_json_text(s->metadata, strlen(s->metadata), &ev[i].metadata,
                                              why, sizeof why))) {
            s_free_events(ev, n);
            return annal_client_result(res, ANNAL_INVALID, 0, "event %zu: %s", i, why);
        }
        if (s->metadata && !annal_value_is_object(ev[i].metadata.data, ev[i].metadata.size)) {
            s_free_events(ev, n);
            return annal_client_result(res, ANNAL_INVALID, 0,
                                       "event %zu: metadata must be an object", i);
        }
        if (s->event_id && annal_event_id_parse(s->event_id, strlen(s->event_id), ev[i].event_id)) {
            s_free_events(ev, n);
            return annal_client_result(res, ANNAL_INVALID, 0, "event %zu: event_id is not a UUID",
                                       i);
        }
        if (!s->event_id)
            annal_event_id_new(ev[i].event_id);
        ev[i].client_id = true;
    }
    *msg_id = s_begin(self, ANNAL_CMD_APPEND);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    s_expected_field(self, expected);
    if (n == 1) {
        annal_body_str(self->body, "event_type", ev[0].event_type, strlen(ev[0].event_type));
        annal_body_value(self->body, "event_data", ev[0].data.data, ev[0].data.size);
        if (ev[0].metadata.data)
            annal_body_value(self->body, "metadata", ev[0].metadata.data, ev[0].metadata.size);
        annal_body_uuid(self->body, "event_id", ev[0].event_id);
    }
    else
        annal_body_new_events(self->body, "events", ev, n);
    *events = ev;
    return ANNAL_SUCCESS;
}

/* Reads an appended reply from self->last. */
static void s_appended(annal_client_t *self, int64_t expected, annal_appended_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    annal_msg_t *m = self->last;
    const char *id = annal_msg_str(m, "event_id");
    if (!id)
        id = annal_msg_str_item(m, "event_ids", 0);
    if (id)
        snprintf(out->event_id, sizeof out->event_id, "%s", id);
    if (annal_msg_str(m, "event_id")) {
        out->first_sequence = out->last_sequence = s_u64(m, "sequence_number");
        out->version = expected >= 0 ? (uint64_t) expected + 1 : 0;
    }
    else {
        out->first_sequence = s_u64(m, "first_sequence_number");
        out->last_sequence = s_u64(m, "last_sequence_number");
        out->version = s_u64(m, "version");
    }
}

annal_status_t annal_client_append(annal_client_t *self, const char *agg, int64_t expected,
                                   const annal_event_spec_t *events, size_t n,
                                   annal_appended_t *out, annal_result_t *res)
{
    annal_new_event_t *ev = NULL;
    int64_t id;
    annal_status_t st = s_build_append(self, agg, expected, events, n, &ev, &id, res);
    if (st)
        return st;
    st = s_call(self, id, "appended", res);
    s_free_events(ev, n);
    if (st == ANNAL_SUCCESS)
        s_appended(self, expected, out);
    return st;
}

annal_status_t annal_client_send_append(annal_client_t *self, const char *agg, int64_t expected,
                                        const annal_event_spec_t *events, size_t n,
                                        uint64_t *ticket, annal_result_t *res)
{
    annal_new_event_t *ev = NULL;
    int64_t id;
    annal_status_t st = s_build_append(self, agg, expected, events, n, &ev, &id, res);
    if (st)
        return st;
    st = s_send(self, res);
    s_free_events(ev, n);
    if (st == ANNAL_SUCCESS && ticket)
        *ticket = (uint64_t) id;
    return st;
}

annal_status_t annal_client_recv_append(annal_client_t *self, uint64_t *ticket,
                                        annal_appended_t *out, int timeout_ms, annal_result_t *res)
{
    annal_status_t st = s_wait(self, 0, true, timeout_ms, "appended", res);
    if (st != ANNAL_TIMEOUT && ticket) {
        int64_t id = 0;
        annal_msg_int(self->last, "in_reply_to", &id);
        *ticket = (uint64_t) id;
    }
    if (st == ANNAL_SUCCESS)
        s_appended(self, ANNAL_ANY, out);
    return st;
}

/* --- reads ------------------------------------------------------------------------ */

int annal_record_from_msg(annal_msg_t *m, annal_record_t *r)
{
    memset(r, 0, sizeof *r);
    r->sequence_number = s_u64(m, "sequence_number");
    r->version = s_u64(m, "version");
    r->event_id = annal_msg_str(m, "event_id");
    r->aggregate_id = annal_msg_str(m, "aggregate_id");
    r->event_type = annal_msg_str(m, "event_type");
    r->event_data = annal_msg_json(m, "event_data");
    r->metadata = annal_msg_json(m, "metadata");
    r->recorded_at = annal_msg_str(m, "recorded_at");
    r->json = annal_msg_json(m, NULL);
    return r->sequence_number && r->event_id && r->aggregate_id && r->event_type && r->event_data
                   && r->metadata && r->recorded_at && r->json
               ? 0
               : -1;
}

/* Takes the last reply's events into a new page. */
static annal_status_t s_page(annal_client_t *self, annal_page_t **out, annal_result_t *res)
{
    annal_page_t *page = calloc(1, sizeof *page);
    size_t n = annal_msg_len(self->last, "events");
    if (page)
        page->records = calloc(n ? n : 1, sizeof *page->records);
    if (!page || !page->records) {
        free(page);
        return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        annal_msg_t *item = annal_msg_item(self->last, "events", i);
        if (!item || annal_record_from_msg(item, &page->records[i])) {
            free(page->records);
            free(page);
            return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL,
                                       "annald sent a malformed event");
        }
    }
    page->count = n;
    page->version = s_u64(self->last, "version");
    /* read replies name their aggregate; read_all replies do not */
    page->next = s_u64(self->last, annal_msg_str(self->last, "aggregate_id") ? "next_version"
                                                                             : "next_sequence");
    page->head_sequence = s_u64(self->last, "head_sequence");
    page->internal = self->last; /* the page owns the strings now */
    self->last = NULL;
    *out = page;
    return ANNAL_SUCCESS;
}

void annal_page_destroy(annal_page_t **page)
{
    if (*page) {
        annal_msg_t *m = (*page)->internal;
        annal_msg_destroy(&m);
        free((*page)->records);
        free(*page);
        *page = NULL;
    }
}

annal_status_t annal_client_read(annal_client_t *self, const char *agg, uint64_t from, size_t max,
                                 bool backward, annal_page_t **page, annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    int64_t id = s_begin(self, ANNAL_CMD_READ);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    if (from)
        annal_body_u64(self->body, "from_version", from);
    annal_body_u64(self->body, "max_count", max);
    if (backward)
        annal_body_str(self->body, "direction", "backward", 8);
    st = s_call(self, id, "events", res);
    return st ? st : s_page(self, page, res);
}

annal_status_t annal_client_read_all(annal_client_t *self, uint64_t from, size_t max,
                                     const char *prefix, const char *const *types, size_t ntypes,
                                     annal_page_t **page, annal_result_t *res)
{
    int64_t id = s_begin(self, ANNAL_CMD_READ_ALL);
    annal_body_u64(self->body, "from_sequence", from);
    annal_body_u64(self->body, "max_count", max);
    if (prefix && *prefix)
        annal_body_str(self->body, "prefix", prefix, strlen(prefix));
    if (ntypes)
        annal_body_strs(self->body, "event_types", types, ntypes);
    annal_status_t st = s_call(self, id, "events", res);
    return st ? st : s_page(self, page, res);
}

/* --- snapshots, replay, state, status ---------------------------------------------- */

/* A copy of the last reply's field as JSON text, or NULL. */
static char *s_json_copy(annal_client_t *self, const char *key)
{
    const char *text = annal_msg_json(self->last, key);
    return text ? strdup(text) : NULL;
}

annal_status_t annal_client_snapshot(annal_client_t *self, const char *agg, const char *state,
                                     int64_t version, uint64_t *version_out, annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    annal_blob_t blob = {0};
    char why[256];
    if (state && annal_value_from_json_text(state, strlen(state), &blob, why, sizeof why))
        return annal_client_result(res, ANNAL_INVALID, 0, "state: %s", why);
    int64_t id = s_begin(self, ANNAL_CMD_CREATE_SNAPSHOT);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    if (state)
        annal_body_value(self->body, "state", blob.data, blob.size);
    if (version >= 0)
        annal_body_int(self->body, "version", version);
    st = s_call(self, id, "snapshot_created", res);
    annal_blob_free(&blob);
    if (st == ANNAL_SUCCESS && version_out)
        *version_out = s_u64(self->last, "version");
    return st;
}

annal_status_t annal_client_get_snapshot(annal_client_t *self, const char *agg, uint64_t *version,
                                         char **state, annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    int64_t id = s_begin(self, ANNAL_CMD_GET_SNAPSHOT);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    st = s_call(self, id, "snapshot", res);
    if (st == ANNAL_SUCCESS) {
        if (version)
            *version = s_u64(self->last, "version");
        if (state)
            *state = s_json_copy(self, "state");
    }
    return st;
}

annal_status_t annal_client_replay(annal_client_t *self, const char *agg, bool use_snapshot,
                                   int64_t version, annal_replayed_t *out, annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    int64_t id = s_begin(self, ANNAL_CMD_REPLAY);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    if (use_snapshot)
        annal_body_bool(self->body, "use_snapshot", true);
    if (version >= 0)
        annal_body_int(self->body, "version", version);
    st = s_call(self, id, "replayed", res);
    if (st == ANNAL_SUCCESS && out) {
        out->state = s_json_copy(self, "state");
        out->version = s_u64(self->last, "version");
        out->events_replayed = s_u64(self->last, "events_replayed");
        out->snapshot_version = s_u64(self->last, "snapshot_version");
    }
    return st;
}

annal_status_t annal_client_get_state(annal_client_t *self, const char *agg, const char *timestamp,
                                      uint64_t *version, char **state, annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    if (!timestamp)
        return annal_client_result(res, ANNAL_INVALID, 0, "a timestamp is needed");
    int64_t id = s_begin(self, ANNAL_CMD_GET_STATE);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    annal_body_str(self->body, "timestamp", timestamp, strlen(timestamp));
    st = s_call(self, id, "state", res);
    if (st == ANNAL_SUCCESS) {
        if (version)
            *version = s_u64(self->last, "version");
        if (state)
            *state = s_json_copy(self, "state");
    }
    return st;
}

annal_status_t annal_client_status(annal_client_t *self, annal_store_status_t *out,
                                   annal_result_t *res)
{
    int64_t id = s_begin(self, ANNAL_CMD_STATUS);
    annal_status_t st = s_call(self, id, "status_ok", res);
    if (st == ANNAL_SUCCESS && out) {
        memset(out, 0, sizeof *out);
        out->head_sequence = s_u64(self->last, "head_sequence");
        out->aggregates = s_u64(self->last, "aggregates");
        out->events = s_u64(self->last, "events");
        out->snapshots = s_u64(self->last, "snapshots");
        out->uptime_s = s_u64(self->last, "uptime_s");
        const char *store = annal_msg_str(self->last, "store");
        const char *version = annal_msg_str(self->last, "version");
        snprintf(out->store, sizeof out->store, "%s", store ? store : "");
        snprintf(out->version, sizeof out->version, "%s", version ? version : "");
    }
    return st;
}

/* --- deletion and retention (docs/protocol.md, section 7) ------------------------------ */

annal_status_t annal_client_delete(annal_client_t *self, const char *agg, int64_t expected,
                                   bool hard, const char *event_id, uint64_t *version,
                                   uint64_t *sequence, annal_result_t *res)
{
    uint8_t uuid[16];
    if (event_id && annal_event_id_parse(event_id, strlen(event_id), uuid))
        return annal_client_result(res, ANNAL_INVALID, 0, "event id '%.40s' is not a UUID",
                                   event_id);
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    if (expected < ANNAL_EXISTS)
        return annal_client_result(res, ANNAL_INVALID, 0,
                                   "expected version must be >= 0, ANNAL_ANY or ANNAL_EXISTS");
    int64_t id = s_begin(self, ANNAL_CMD_DELETE_AGGREGATE);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    s_expected_field(self, expected);
    annal_body_bool(self->body, "hard", hard);
    if (event_id)
        annal_body_str(self->body, "event_id", event_id, strlen(event_id));
    st = s_call(self, id, "aggregate_deleted", res);
    if (st == ANNAL_SUCCESS) {
        uint64_t v = s_u64(self->last, "version"), s = s_u64(self->last, "sequence_number");
        if (!v || !s)
            return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL,
                                       "aggregate_deleted without its version and sequence");
        if (version)
            *version = v;
        if (sequence)
            *sequence = s;
    }
    return st;
}

/* A retention limit from the last reply: a number >= 1, or null (0). */
static bool s_limit(const annal_msg_t *msg, const char *key, uint64_t *out)
{
    int64_t v = 0;
    *out = 0;
    if (annal_msg_is_null(msg, key))
        return true;
    if (!annal_msg_int(msg, key, &v) || v < 1)
        return false;
    *out = (uint64_t) v;
    return true;
}

/* set_retention and get_retention: the request, then the policy replied. */
static annal_status_t s_retention(annal_client_t *self, annal_cmd_t cmd, const char *agg,
                                  const annal_retention_t *policy, annal_retention_t *out,
                                  annal_result_t *res)
{
    annal_status_t st = s_check_id(agg, res);
    if (st)
        return st;
    int64_t id = s_begin(self, cmd);
    annal_body_str(self->body, "aggregate_id", agg, strlen(agg));
    if (policy) {
        if (policy->max_count > INT64_MAX || policy->max_age_s > INT64_MAX)
            return annal_client_result(res, ANNAL_INVALID, 0, "a limit past 2^63 - 1");
        if (policy->max_count)
            annal_body_u64(self->body, "max_count", policy->max_count);
        if (policy->max_age_s)
            annal_body_u64(self->body, "max_age_s", policy->max_age_s);
    }
    st = s_call(self, id, cmd == ANNAL_CMD_SET_RETENTION ? "retention_set" : "retention", res);
    annal_retention_t got;
    if (st == ANNAL_SUCCESS
        && (!s_limit(self->last, "max_count", &got.max_count)
            || !s_limit(self->last, "max_age_s", &got.max_age_s)))
        return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL,
                                   "a retention reply with a limit that is not >= 1 or null");
    if (st == ANNAL_SUCCESS && out)
        *out = got;
    return st;
}

annal_status_t annal_client_set_retention(annal_client_t *self, const char *agg,
                                          const annal_retention_t *policy, annal_result_t *res)
{
    if (!policy)
        return annal_client_result(res, ANNAL_INVALID, 0, "no policy");
    return s_retention(self, ANNAL_CMD_SET_RETENTION, agg, policy, NULL, res);
}

annal_status_t annal_client_get_retention(annal_client_t *self, const char *agg,
                                          annal_retention_t *out, annal_result_t *res)
{
    return s_retention(self, ANNAL_CMD_GET_RETENTION, agg, NULL, out, res);
}

void annal_uuid_new(char out[37])
{
    uint8_t id[16];
    annal_event_id_new(id);
    annal_event_id_format(id, out);
}
