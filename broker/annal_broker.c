/*  annal_broker.c: the broker loop (sockets, dispatch, group commit).

    NOTES ON THE DESIGN
    One actor thread owns the store and both sockets. Each turn of the loop
    drains the requests waiting on the ROUTER (up to ANNAL_GROUP_MAX), runs
    them in arrival order inside one store batch, commits once (one fsync),
    then sends every reply and publishes every new event. So:
    1. A reply is sent only after everything it reports is durable.
    2. Events are published after commit, in sequence order, exactly once.
    3. Requests from one client are answered in the order they were sent,
       and each sees the effects of the ones before it.
    4. A request that fails in the store with an error of unknown extent
       (unavailable, internal) is answered with that error and the batch is
       run again without it, so nothing partial is ever committed.
    5. When the store grows its map mid-batch the batch is run again from
       the start; replies and publishes of the lost attempt are dropped.
    6. When the disk is full at commit, nothing of the batch was written:
       its writes are answered with error 11 and the rest run again, so
       reads keep being served.
    Which of 4-6 an error calls for is its disposition, a column of the
    error table (wire/annal_error.c); s_run_batch only acts on it.
    The broker never sees JSON or MessagePack: it carries the request's
    encoding as an opaque value from the codec back to the codec. */
#include "annal_broker.h"

#include <czmq.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_command.h"
#include "annal_event_id.h"
#include "annal_fold.h"
#include "annal_gate.h"
#include "annal_group.h"
#include "annal_limits.h"
#include "annal_pool.h"
#include "annal_store.h"
#include "annal_time.h"

#define WHY_MAX        512
#define BATCH_BYTES    (64u << 20) /* body bytes drained into one batch, at most */
#define MAX_ATTEMPTS   24          /* batch reruns after map growth */
#define CATCH_UP_PAGES 8           /* pages of 1,000 events published between turns, at most */

/* One request of the current batch. */
typedef struct {
    zmq_msg_t envelope[ANNAL_MAX_ENVELOPE]; /* routing frames, sent back unchanged */
    size_t frames;                          /* envelope frames in use */
    annal_request_t req;                    /* decoded request */
    annal_encoding_t enc;                   /* encoding to answer in */
    annal_err_t err;                        /* decode error, or a final store error */
    char why[WHY_MAX];                      /* text of err */
    zmq_msg_t reply;                        /* encoded reply, when has_reply */
    bool has_reply;                         /* reply is set */
} pending_t;

/* One event to publish after commit. */
typedef struct {
    zmq_msg_t topic;   /* aggregate id */
    zmq_msg_t body;    /* encoded event */
    uint64_t sequence; /* its sequence number */
} pub_t;

/* A deletion of the batch (s_removal_later). */
typedef struct {
    char *aggregate; /* owned */
    uint64_t before; /* its events below this sequence were removed */
} removal_t;

struct annal_broker_t {
    annal_broker_config_t config; /* settings (strings borrowed until new returns) */
    zactor_t *actor;              /* the loop's thread */
    annal_store_t *store;         /* the store, used by the actor only */
    annal_pool_t *pool;           /* frames of replies and publishes */
    uint64_t turns;               /* turns with requests since the last heartbeat */
    annal_gate_t *gate;           /* admits connections (ZAP) */
    zsock_t *router;              /* commands */
    zsock_t *pub;                 /* events, or NULL */
    char commands[256];           /* bound command endpoint */
    char events[256];             /* bound event endpoint, or "" */
    annal_body_t *reply;          /* reply builder, reused */
    annal_event_list_t list;      /* read results, reused */
    pending_t *pending;           /* the batch: ANNAL_GROUP_MAX entries */
    size_t npending;              /* requests in the batch */
    annal_append_hint_t *hints;   /* the batch's appends, for the store: ANNAL_GROUP_MAX */
    pub_t *pubs;                  /* events of the batch to publish */
    size_t npubs, cappubs;        /* in use, allocated */
    uint64_t published;           /* last sequence published on PUB: every one up to it went
                                     out, in order, other brokers' too on a shared store */
    bool behind;                  /* s_catch_up stopped with more to publish */
    zhashx_t *groups;             /* consumer groups in use, by name: group_t, loaded lazily */
    struct waiter_s *waiters;     /* fetches waiting for events */
    size_t nwaiters, capwaiters;  /* in use, allocated */
    bool carry;                   /* pending[0] holds a group request for the next turn */
    bool sweep_due;               /* removed events may wait for the sweep (s_sweep) */
    removal_t *removals;          /* the batch's deletions, for the groups after commit */
    size_t nremovals, capremovals;
    int64_t next_sweep; /* no sweep step before this (monotonic ms) */
    int64_t started;    /* start time (monotonic ms) */
};

typedef annal_err_t (*handler_fn)(annal_broker_t *self, pending_t *p);

/* --- replies ------------------------------------------------------------------ */

/* Encodes the builder's body as p's reply, in a pool frame. */
static int s_set_reply(annal_broker_t *self, pending_t *p)
{
    if (p->has_reply)
        zmq_msg_close(&p->reply);
    const uint8_t *data;
    size_t len;
    p->has_reply = annal_body_view(self->reply, p->enc, &data, &len) == 0
                   && annal_pool_msg(self->pool, &p->reply, data, len) == 0;
    return p->has_reply ? 0 : -1;
}

/* Encodes the builder's body as p's reply. */
static annal_err_t s_finish(annal_broker_t *self, pending_t *p)
{
    if (s_set_reply(self, p)) {
        snprintf(p->why, WHY_MAX, "a stored value could not be encoded");
        return ANNAL_ERR_INTERNAL;
    }
    return ANNAL_OK;
}

static void s_error_reply(annal_broker_t *self, pending_t *p, annal_err_t err, const char *text)
{
    annal_body_error(self->reply, p->req.has_msg_id, p->req.msg_id, err, text);
    s_set_reply(self, p); /* out of memory: the client gets no reply */
}

/* Encodes ev as the two frames of a published event. 0, or -1. */
static int s_pub_frames(annal_broker_t *self, const annal_event_t *ev, pub_t *pb)
{
    const uint8_t *data;
    size_t len;
    if (annal_pool_msg(self->pool, &pb->topic, ev->aggregate_id, ev->aggregate_id_len))
        return -1;
    if (annal_body_event_view(self->reply, ev, self->config.pub_format, &data, &len)
        || annal_pool_msg(self->pool, &pb->body, data, len)) {
        zmq_msg_close(&pb->topic);
        return -1;
    }
    pb->sequence = ev->sequence;
    return 0;
}

static int s_publish_later(annal_broker_t *self, const annal_event_t *ev)
{
    if (!self->pub)
        return 0;
    if (self->npubs == self->cappubs) {
        size_t cap = self->cappubs ? self->cappubs * 2 : 256;
        pub_t *pubs = realloc(self->pubs, cap * sizeof *pubs);
        if (!pubs)
            return -1;
        self->pubs = pubs;
        self->cappubs = cap;
    }
    if (s_pub_frames(self, ev, &self->pubs[self->npubs]))
        return -1;
    self->npubs++;
    return 0;
}

/* Sends pb on PUB (the frames are gone afterwards) and moves the cursor. */
static void s_send_pub(annal_broker_t *self, pub_t *pb)
{
    void *pub = zsock_resolve(self->pub);
    if (zmq_msg_send(&pb->topic, pub, ZMQ_SNDMORE) < 0)
        zmq_msg_close(&pb->topic);
    if (zmq_msg_send(&pb->body, pub, 0) < 0)
        zmq_msg_close(&pb->body);
    self->published = pb->sequence;
}

/* Publishes the committed events after the cursor up to to (UINT64_MAX: all
   of them), read back from the store: on a shared store, those that other
   brokers committed. At most CATCH_UP_PAGES pages at a time, so that
   requests are served between them while other brokers keep writing:
   self->behind then says to come back at once. Outside batches. */
static void s_catch_up(annal_broker_t *self, uint64_t to)
{
    self->behind = false;
    for (int pages = 0; self->pub && self->published < to; pages++) {
        if (pages == CATCH_UP_PAGES) {
            self->behind = true;
            return;
        }
        uint64_t next;
        if (annal_store_begin(self->store))
            return;
        annal_err_t err = annal_store_read_all(self->store, self->published + 1, 1000, 1000, NULL,
                                               0, NULL, 0, &self->list, &next);
        size_t sent = 0;
        for (size_t i = 0; !err && i < self->list.count; i++) {
            pub_t pb;
            const annal_event_t *ev = &self->list.items[i];
            if (ev->sequence != self->published + 1 || ev->sequence > to
                || s_pub_frames(self, ev, &pb))
                break;
            s_send_pub(self, &pb);
            sent++;
        }
        annal_store_abort(self->store);
        if (err || sent == 0)
            return;
    }
}

static void s_drop_removals(annal_broker_t *self)
{
    for (size_t i = 0; i < self->nremovals; i++)
        free(self->removals[i].aggregate);
    self->nremovals = 0;
}

/* Drops the batch's publishes, and what it would tell the groups: the
   batch is to run again, or failed. */
static void s_drop_pubs(annal_broker_t *self)
{
    for (size_t i = 0; i < self->npubs; i++) {
        zmq_msg_close(&self->pubs[i].topic);
        zmq_msg_close(&self->pubs[i].body);
    }
    self->npubs = 0;
    s_drop_removals(self);
}

/* Notes that the batch removed aggregate's events below sequence before,
   for the groups once it commits. 0, or -1 out of memory. */
static int s_removal_later(annal_broker_t *self, const char *aggregate, uint64_t before)
{
    if (self->nremovals == self->capremovals) {
        size_t cap = self->capremovals ? self->capremovals * 2 : 8;
        removal_t *more = realloc(self->removals, cap * sizeof *more);
        if (!more)
            return -1;
        self->removals = more, self->capremovals = cap;
    }
    char *copy = strdup(aggregate);
    if (!copy)
        return -1;
    self->removals[self->nremovals++] = (removal_t){copy, before};
    return 0;
}

/* --- command handlers ---------------------------------------------------------- */

/* The concurrency_error of an append or a delete_aggregate that found the
   aggregate at version actual. */
static annal_err_t s_conflict(annal_broker_t *self, pending_t *p, uint64_t actual)
{
    annal_request_t *r = &p->req;
    char text[128];
    if (r->expect == ANNAL_EXPECT_EXISTS)
        snprintf(text, sizeof text, "Expected version exists, got %" PRIu64, actual);
    else
        snprintf(text, sizeof text, "Expected version %" PRIu64 ", got %" PRIu64,
                 r->expected_version, actual);
    annal_body_begin(self->reply, "concurrency_error", true, r->msg_id);
    annal_body_str(self->reply, "error", text, strlen(text));
    annal_body_u64(self->reply, "actual_version", actual);
    return s_finish(self, p);
}

static annal_err_t s_append(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    annal_append_result_t res;
    annal_err_t err =
        annal_store_append(self->store, r->aggregate_id, r->expect, r->expected_version, r->events,
                           r->event_count, &res, p->why, WHY_MAX);
    if (err == ANNAL_ERR_CONFLICT)
        return s_conflict(self, p, res.actual_version);
    if (err)
        return err;
    size_t n = r->event_count;
    if (!res.duplicate) {
        for (size_t i = 0; i < n; i++) {
            const annal_new_event_t *e = &r->events[i];
            annal_event_t ev = {
                .sequence = res.first_sequence + i,
                .event_id = e->event_id,
                .aggregate_id = r->aggregate_id,
                .aggregate_id_len = strlen(r->aggregate_id),
                .version = res.version - n + 1 + i,
                .event_type = e->event_type,
                .event_type_len = strlen(e->event_type),
                .data = e->data.data,
                .data_len = e->data.size,
                .metadata = e->metadata.data,
                .metadata_len = e->metadata.size,
                .recorded_at = res.recorded_at,
            };
            if (s_publish_later(self, &ev)) {
                snprintf(p->why, WHY_MAX, "out of memory");
                return ANNAL_ERR_UNAVAILABLE;
            }
        }
    }
    annal_body_begin(self->reply, "appended", true, r->msg_id);
    if (!r->batch) {
        annal_body_uuid(self->reply, "event_id", r->events[0].event_id);
        annal_body_u64(self->reply, "sequence_number", res.first_sequence);
        return s_finish(self, p);
    }
    uint8_t *ids = malloc(16 * n);
    if (!ids) {
        snprintf(p->why, WHY_MAX, "out of memory");
        return ANNAL_ERR_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(ids + 16 * i, r->events[i].event_id, 16);
    annal_body_uuids(self->reply, "event_ids", ids, n);
    annal_body_u64(self->reply, "first_sequence_number", res.first_sequence);
    annal_body_u64(self->reply, "last_sequence_number", res.last_sequence);
    annal_body_u64(self->reply, "version", res.version);
    err = s_finish(self, p);
    free(ids);
    return err;
}

/* delete_aggregate's reply: the $deleted event's version and sequence. */
static annal_err_t s_deleted(annal_broker_t *self, pending_t *p, const annal_append_result_t *res)
{
    const char *agg = p->req.aggregate_id;
    annal_body_begin(self->reply, "aggregate_deleted", true, p->req.msg_id);
    annal_body_str(self->reply, "aggregate_id", agg, strlen(agg));
    annal_body_u64(self->reply, "version", res->version);
    annal_body_u64(self->reply, "sequence_number", res->first_sequence);
    return s_finish(self, p);
}

/* delete_aggregate (docs/protocol.md, section 7): the version check, then
   a $deleted event appended, then every earlier event and snapshot of the
   aggregate removed, in the batch. */
static annal_err_t s_delete_aggregate(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    if (!annal_store_removes(self->store)) {
        char text[128];
        snprintf(text, sizeof text, "delete_aggregate is not served on a %s store yet",
                 annal_store_name(self->store));
        s_error_reply(self, p, ANNAL_ERR_UNKNOWN_TYPE, text);
        return ANNAL_OK;
    }
    /* The version is read first, for the event's through_version; a shared
       store's append may still find another (a broker's append in between):
       then, unless the request named the version, it is read again. */
    for (int attempt = 0;; attempt++) {
        uint64_t v;
        annal_err_t err = annal_store_version(self->store, r->aggregate_id, &v);
        if (err)
            return err;
        if (r->expect == ANNAL_EXPECT_EXISTS && v == 0)
            return s_conflict(self, p, v);
        /* an exact version is the store's to check: a retry (its event_id
           stored) is answered as the first, whatever the version now */
        uint64_t through = r->expect == ANNAL_EXPECT_EXACT ? r->expected_version : v;
        char data[80];
        snprintf(data, sizeof data, "{\"hard\": %s, \"through_version\": %" PRIu64 "}",
                 r->hard ? "true" : "false", through);
        annal_new_event_t ev = {.event_type = ANNAL_DELETED_TYPE, .client_id = r->has_delete_id};
        if (r->has_delete_id)
            memcpy(ev.event_id, r->delete_id, 16);
        else
            annal_event_id_new(ev.event_id);
        char why[64];
        if (annal_value_from_json_text(data, strlen(data), &ev.data, why, sizeof why)) {
            snprintf(p->why, WHY_MAX, "out of memory");
            return ANNAL_ERR_UNAVAILABLE;
        }
        ev.metadata = (annal_blob_t){(uint8_t *) ANNAL_VALUE_EMPTY_OBJECT, 1};
        annal_append_result_t res;
        err = annal_store_append(self->store, r->aggregate_id, ANNAL_EXPECT_EXACT, through, &ev, 1,
                                 &res, p->why, WHY_MAX);
        if (err == ANNAL_ERR_CONFLICT && r->expect != ANNAL_EXPECT_EXACT && attempt < 3) {
            annal_blob_free(&ev.data);
            continue;
        }
        if (err == ANNAL_ERR_CONFLICT) {
            annal_blob_free(&ev.data);
            return s_conflict(self, p, res.actual_version);
        }
        if (!err && res.duplicate) { /* a retry: removed the first time */
            annal_blob_free(&ev.data);
            return s_deleted(self, p, &res);
        }
        if (!err)
            err = annal_store_remove(self->store, r->aggregate_id, through, r->hard);
        annal_event_t pub = {
            .sequence = res.first_sequence,
            .event_id = ev.event_id,
            .aggregate_id = r->aggregate_id,
            .aggregate_id_len = strlen(r->aggregate_id),
            .version = res.version,
            .event_type = ANNAL_DELETED_TYPE,
            .event_type_len = sizeof ANNAL_DELETED_TYPE - 1,
            .data = ev.data.data,
            .data_len = ev.data.size,
            .metadata = ANNAL_VALUE_EMPTY_OBJECT,
            .metadata_len = 1,
            .recorded_at = res.recorded_at,
        };
        if (!err
            && (s_publish_later(self, &pub)
                || s_removal_later(self, r->aggregate_id, pub.sequence))) {
            snprintf(p->why, WHY_MAX, "out of memory");
            err = ANNAL_ERR_UNAVAILABLE;
        }
        annal_blob_free(&ev.data);
        if (err)
            return err;
        self->sweep_due = true;
        return s_deleted(self, p, &res);
    }
}

/* A retention limit in a reply: the number, or null for none. */
static void s_limit_field(annal_broker_t *self, const char *key, uint64_t v)
{
    if (v)
        annal_body_u64(self->reply, key, v);
    else
        annal_body_null(self->reply, key);
}

/* set_retention, get_retention (docs/protocol.md, section 7). */
static annal_err_t s_retention(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    if (!annal_store_retains(self->store)) {
        char text[128];
        snprintf(text, sizeof text, "%s is not served on a %s store yet", annal_cmd_name(r->cmd),
                 annal_store_name(self->store));
        s_error_reply(self, p, ANNAL_ERR_UNKNOWN_TYPE, text);
        return ANNAL_OK;
    }
    annal_retention_t policy = {r->keep_count, r->keep_age_s};
    annal_err_t err = r->cmd == ANNAL_CMD_SET_RETENTION
                          ? annal_store_retention_put(self->store, r->aggregate_id, &policy)
                          : annal_store_retention_get(self->store, r->aggregate_id, &policy);
    if (err)
        return err;
    if (r->cmd == ANNAL_CMD_SET_RETENTION)
        self->sweep_due = true;
    annal_body_begin(self->reply, r->cmd == ANNAL_CMD_SET_RETENTION ? "retention_set" : "retention",
                     true, r->msg_id);
    annal_body_str(self->reply, "aggregate_id", r->aggregate_id, strlen(r->aggregate_id));
    s_limit_field(self, "max_count", policy.max_count);
    s_limit_field(self, "max_age_s", policy.max_age_s);
    return s_finish(self, p);
}

/* The version a request names: its own, or the aggregate's current one. */
static annal_err_t s_target_version(annal_broker_t *self, pending_t *p, uint64_t *current,
                                    uint64_t *target)
{
    annal_err_t err = annal_store_version(self->store, p->req.aggregate_id, current);
    if (err)
        return err;
    *target = p->req.has_version ? p->req.version : *current;
    if (*target > *current) {
        snprintf(p->why, WHY_MAX, "aggregate '%s' is at version %" PRIu64 ", not %" PRIu64,
                 p->req.aggregate_id, *current, *target);
        return ANNAL_ERR_NOT_FOUND;
    }
    return ANNAL_OK;
}

/* Folds agg up to version to, starting from its latest snapshot that
   qualifies (any snapshot when any_snapshot, else default-fold ones only). */
static annal_err_t s_fold(annal_broker_t *self, const char *agg, uint64_t to, bool any_snapshot,
                          annal_fold_result_t *out, uint64_t *snapshot_version)
{
    annal_snapshot_t snap;
    annal_blob_t start = {0};
    *snapshot_version = 0;
    annal_err_t err = annal_store_get_snapshot(self->store, agg, to, !any_snapshot, &snap);
    if (err == ANNAL_OK) {
        if (annal_blob_copy(&start, snap.state, snap.len))
            return ANNAL_ERR_UNAVAILABLE;
        *snapshot_version = snap.version;
    }
    else if (err != ANNAL_ERR_NOT_FOUND)
        return err;
    err = annal_fold_run(self->store, agg, start.data, start.size, *snapshot_version, to, INT64_MAX,
                         out);
    annal_blob_free(&start);
    return err;
}

static annal_err_t s_create_snapshot(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    uint64_t current, v, from;
    annal_err_t err = s_target_version(self, p, &current, &v);
    if (err)
        return err;
    if (r->has_state)
        err = annal_store_put_snapshot(self->store, r->aggregate_id, v, false, r->state.data,
                                       r->state.size);
    else {
        annal_fold_result_t fold = {0};
        err = s_fold(self, r->aggregate_id, v, false, &fold, &from);
        if (!err)
            err = annal_store_put_snapshot(self->store, r->aggregate_id, v, true, fold.state.data,
                                           fold.state.size);
        annal_blob_free(&fold.state);
    }
    if (err)
        return err;
    annal_body_begin(self->reply, "snapshot_created", true, r->msg_id);
    annal_body_str(self->reply, "aggregate_id", r->aggregate_id, strlen(r->aggregate_id));
    annal_body_u64(self->reply, "version", v);
    return s_finish(self, p);
}

static annal_err_t s_get_snapshot(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    annal_snapshot_t snap;
    annal_err_t err =
        annal_store_get_snapshot(self->store, r->aggregate_id, UINT64_MAX, false, &snap);
    if (err == ANNAL_ERR_NOT_FOUND)
        snprintf(p->why, WHY_MAX, "aggregate '%s' has no snapshot", r->aggregate_id);
    if (err)
        return err;
    annal_body_begin(self->reply, "snapshot", true, r->msg_id);
    annal_body_str(self->reply, "aggregate_id", r->aggregate_id, strlen(r->aggregate_id));
    annal_body_u64(self->reply, "version", snap.version);
    annal_body_value(self->reply, "state", snap.state, snap.len);
    return s_finish(self, p);
}

static annal_err_t s_replay(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    uint64_t current, to, from = 0;
    annal_err_t err = s_target_version(self, p, &current, &to);
    if (err)
        return err;
    annal_fold_result_t fold = {0};
    if (r->use_snapshot)
        err = s_fold(self, r->aggregate_id, to, true, &fold, &from);
    else
        err = annal_fold_run(self->store, r->aggregate_id, NULL, 0, 0, to, INT64_MAX, &fold);
    if (!err) {
        annal_body_begin(self->reply, "replayed", true, r->msg_id);
        annal_body_str(self->reply, "aggregate_id", r->aggregate_id, strlen(r->aggregate_id));
        annal_body_u64(self->reply, "events_replayed", fold.applied);
        annal_body_value(self->reply, "state", fold.state.data, fold.state.size);
        annal_body_u64(self->reply, "version", fold.version);
        if (r->use_snapshot)
            annal_body_u64(self->reply, "snapshot_version", from);
        err = s_finish(self, p);
    }
    annal_blob_free(&fold.state);
    return err;
}

static annal_err_t s_get_state(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    annal_fold_result_t fold = {0};
    annal_err_t err = annal_fold_run(self->store, r->aggregate_id, NULL, 0, 0, UINT64_MAX,
                                     r->timestamp_us, &fold);
    if (!err) {
        annal_body_begin(self->reply, "state", true, r->msg_id);
        annal_body_str(self->reply, "aggregate_id", r->aggregate_id, strlen(r->aggregate_id));
        annal_body_str(self->reply, "timestamp", r->timestamp, strlen(r->timestamp));
        annal_body_value(self->reply, "state", fold.state.data, fold.state.size);
        annal_body_u64(self->reply, "version", fold.version);
        err = s_finish(self, p);
    }
    annal_blob_free(&fold.state);
    return err;
}

static size_t s_cap(annal_broker_t *self, uint64_t asked)
{
    return asked < self->config.limits.read_cap ? (size_t) asked : self->config.limits.read_cap;
}

/* Keeps the events of a reply within ANNAL_REPLY_BUDGET stored bytes (at
   least one event), so one read cannot take unbounded memory or time. */
static void s_trim(annal_event_list_t *list)
{
    size_t bytes = 0;
    for (size_t i = 0; i < list->count; i++) {
        bytes += list->items[i].data_len + list->items[i].metadata_len + 256;
        if (bytes > ANNAL_REPLY_BUDGET && i > 0) {
            list->count = i;
            return;
        }
    }
}

static annal_err_t s_read(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    uint64_t current;
    annal_err_t err = annal_store_version(self->store, r->aggregate_id, &current);
    if (err)
        return err;
    uint64_t from = r->has_from ? r->from : (r->backward ? current : 1);
    if (r->backward && from > current)
        from = current;
    if (!r->backward && from == 0)
        from = 1;
    err = annal_store_read(self->store, r->aggregate_id, from, r->backward,
                           s_cap(self, r->max_count), &self->list);
    if (err)
        return err;
    s_trim(&self->list);
    uint64_t next = from;
    bool more;
    if (self->list.count)
        next = self->list.items[self->list.count - 1].version + (r->backward ? -1 : 1);
    more = r->backward ? next >= 1 && next <= current : next <= current;
    annal_body_begin(self->reply, "events", true, r->msg_id);
    annal_body_str(self->reply, "aggregate_id", r->aggregate_id, strlen(r->aggregate_id));
    annal_body_events(self->reply, "events", self->list.items, self->list.count);
    annal_body_u64(self->reply, "version", current);
    if (more)
        annal_body_u64(self->reply, "next_version", next);
    return s_finish(self, p);
}

static annal_err_t s_read_all(annal_broker_t *self, pending_t *p)
{
    annal_request_t *r = &p->req;
    annal_store_stats_t st;
    uint64_t next;
    annal_err_t err = annal_store_stats(self->store, &st);
    if (!err)
        err = annal_store_read_all(self->store, r->from, s_cap(self, r->max_count), ANNAL_SCAN_CAP,
                                   r->prefix, r->prefix_len, r->event_types, r->event_type_count,
                                   &self->list, &next);
    if (err)
        return err;
    size_t found = self->list.count;
    s_trim(&self->list);
    if (self->list.count < found)
        next = self->list.items[self->list.count - 1].sequence + 1;
    annal_body_begin(self->reply, "events", true, r->msg_id);
    annal_body_events(self->reply, "events", self->list.items, self->list.count);
    annal_body_u64(self->reply, "next_sequence", next);
    annal_body_u64(self->reply, "head_sequence", st.head_sequence);
    return s_finish(self, p);
}

static annal_err_t s_status(annal_broker_t *self, pending_t *p)
{
    annal_store_stats_t st;
    annal_err_t err = annal_store_stats(self->store, &st);
    if (err)
        return err;
    const char *store = annal_store_name(self->store);
    annal_body_begin(self->reply, "status_ok", true, p->req.msg_id);
    annal_body_u64(self->reply, "head_sequence", st.head_sequence);
    annal_body_u64(self->reply, "aggregates", st.aggregates);
    annal_body_u64(self->reply, "events", st.events);
    annal_body_u64(self->reply, "snapshots", st.snapshots);
    annal_body_str(self->reply, "store", store, strlen(store));
    annal_body_str(self->reply, "version", ANNAL_VERSION, strlen(ANNAL_VERSION));
    annal_body_u64(self->reply, "uptime_s", (uint64_t) (zclock_mono() - self->started) / 1000);
    return s_finish(self, p);
}

static annal_err_t s_init(annal_broker_t *self, pending_t *p)
{
    annal_body_begin(self->reply, "init_ok", true, p->req.msg_id);
    return s_finish(self, p);
}

/* --- consumer groups (docs/protocol.md, section 6) -------------------------------- */

/* A group request runs alone, in a store batch of its own, in arrival order
   with the batches around it: the engine (annal_group.h) changes only once
   what it reports is durable, so a batch that fails leaves it as it was.
   Leases live in the engine only. A fetch that finds nothing and may wait
   moves to the waiting list, and runs again when events may have become
   ready (a commit that appended, an ack, a nack, a replay, a lease's end)
   and at its deadline.

   On a store several brokers share (annal_store_shares_groups: PostgreSQL)
   each broker's engine is a copy: a group request runs in one store batch,
   writes and answer together, under the group's lock (group_sync), and
   leases are stored too (group_lease). A copy whose version is not the
   store's is loaded again, its leases with it; a change moves the version
   (group_bump) and wakes the other brokers' waiting fetches (watch_fd).
   docs/protocol.md, section 6, and store/annal_pg_group.c say more. */

/* A group mark loaded from the store, for an event not fed to the engine yet. */
typedef struct {
    uint64_t sequence;         /* the event */
    annal_group_state_t state; /* ACKED or PARKED */
} early_mark_t;

/* One consumer group the broker serves. */
typedef struct {
    annal_group_def_t def;  /* its settings; def.name, .prefix, .types owned */
    annal_group_t *engine;  /* its state */
    uint64_t version;       /* shared store: the version the engine holds (group_sync) */
    uint64_t floor;         /* the floor stored last */
    uint64_t parked;        /* events parked now */
    early_mark_t *marks;    /* marks above the floor, not yet fed, in order */
    size_t nmarks, markpos; /* entries, and the next one to apply */
} group_t;

/* A fetch waiting for events. */
typedef struct waiter_s {
    pending_t p;      /* the request, its envelope and encoding */
    int64_t deadline; /* when it is answered [] (monotonic ms) */
} waiter_t;

static void s_group_free(void *item)
{
    group_t *g = item;
    free((char *) g->def.name);
    free((char *) g->def.prefix);
    for (size_t i = 0; i < g->def.ntypes; i++)
        free(g->def.types[i]);
    free((void *) g->def.types);
    annal_group_destroy(&g->engine);
    free(g->marks);
    free(g);
}

static void s_group_destructor(void **item)
{
    if (*item) {
        s_group_free(*item);
        *item = NULL;
    }
}

static bool s_is_group_request(const pending_t *p)
{
    const annal_command_t *c = annal_command_get(p->req.cmd);
    return !p->err && c && (c->needs_group || p->req.cmd == ANNAL_CMD_GROUP_LIST);
}

static annal_err_t s_group_page(annal_broker_t *self, group_t *g, bool *more);
static annal_err_t s_group_leases(annal_broker_t *self, group_t *g);

/* A group's settings and state from the store: its marks above the floor,
   replayed parked events below it, and on a shared store its leases. NULL with *err when it is unknown
   (ANNAL_ERR_NOT_FOUND) or unreadable. Inside a batch. */
static group_t *s_group_load(annal_broker_t *self, const annal_group_def_t *def, annal_err_t *err)
{
    group_t *g = calloc(1, sizeof *g);
    *err = ANNAL_ERR_INTERNAL;
    if (!g)
        return NULL;
    g->def = *def;
    g->def.name = strdup(def->name);
    g->def.prefix = strdup(def->prefix ? def->prefix : "");
    g->def.types = def->ntypes ? calloc(def->ntypes, sizeof(char *)) : NULL;
    g->def.ntypes = 0;
    g->engine =
        annal_group_new(def->start, !def->unordered, def->ack_timeout_ms, def->max_deliveries);
    g->floor = def->floor;
    bool ok = g->def.name && g->def.prefix && g->engine && (!def->ntypes || g->def.types);
    for (size_t i = 0; ok && i < def->ntypes; i++)
        ok = (((char **) g->def.types)[g->def.ntypes++] = strdup(def->types[i])) != NULL;
    if (!ok) {
        s_group_free(g);
        return NULL;
    }
    annal_group_scanned(g->engine, def->floor + 1);
    uint64_t from = 1, next;
    annal_mark_list_t marks = {0};
    while (
        from
        && (*err = annal_store_group_marks(self->store, g->def.name, from, 1000, 0, &marks, &next))
               == ANNAL_OK) {
        for (size_t i = 0; i < marks.count; i++) {
            const annal_group_mark_t *m = &marks.items[i];
            g->parked += m->mark == ANNAL_MARK_PARKED;
            if (m->mark == ANNAL_MARK_READY) {
                /* a parked event replayed at or below the floor: it needs its
                   aggregate, read from the store */
                annal_event_list_t one = {0};
                uint64_t after;
                annal_err_t rc = annal_store_read_all(self->store, m->sequence, 1, 1, NULL, 0, NULL,
                                                      0, &one, &after);
                if (!rc && one.count && one.items[0].sequence == m->sequence)
                    annal_group_replay(g->engine, m->sequence, one.items[0].aggregate_id,
                                       one.items[0].aggregate_id_len);
                annal_event_list_free(&one);
                continue;
            }
            if (m->sequence <= def->floor)
                continue; /* a parked one behind the floor: counted, nothing to do */
            early_mark_t *more = realloc(g->marks, (g->nmarks + 1) * sizeof *more);
            if (!more) {
                *err = ANNAL_ERR_INTERNAL;
                break;
            }
            g->marks = more;
            g->marks[g->nmarks++] = (early_mark_t){
                m->sequence, m->mark == ANNAL_MARK_ACKED ? ANNAL_GROUP_ACKED : ANNAL_GROUP_PARKED};
        }
        from = next;
    }
    annal_mark_list_free(&marks);
    if (!*err && annal_store_shares_groups(self->store))
        *err = s_group_leases(self, g);
    if (*err) {
        s_group_free(g);
        return NULL;
    }
    return g;
}

/* The group named, loaded when first used, and on a shared store when
   the copy held is not the store's (taking the group's lock for the rest
   of the batch); NULL with *err (NOT_FOUND when there is none). Inside a
   batch. */
static group_t *s_group(annal_broker_t *self, const char *name, annal_err_t *err)
{
    group_t *g = zhashx_lookup(self->groups, name);
    uint64_t version = 0, floor = 0;
    if (annal_store_shares_groups(self->store)) {
        if ((*err = annal_store_group_sync(self->store, name, &version, &floor)))
            return NULL;
        if (g && g->version != version) {
            zhashx_delete(self->groups, name); /* changed through another broker */
            g = NULL;
        }
        if (!version) {
            *err = ANNAL_ERR_NOT_FOUND;
            return NULL;
        }
        if (g)
            g->floor = floor; /* another broker may have stored one */
    }
    if (g)
        return g;
    annal_group_def_t def;
    if ((*err = annal_store_group_get(self->store, name, &def)))
        return NULL;
    if ((g = s_group_load(self, &def, err))) {
        g->version = version;
        zhashx_insert(self->groups, g->def.name, g);
    }
    return g;
}

/* A lease's deadline in the store's terms (wall-clock microseconds) from
   the engine's (monotonic milliseconds), and back. */
static int64_t s_wall_deadline(int64_t mono_deadline)
{
    return annal_time_now() + (mono_deadline - zclock_mono()) * 1000;
}

static int64_t s_mono_deadline(int64_t wall_deadline)
{
    int64_t now = zclock_mono();
    return wall_deadline ? now + (wall_deadline - annal_time_now()) / 1000 : now;
}

/* Shared store: puts the group's stored leases into its engine, fed up to
   the last of them first. */
static annal_err_t s_group_leases(annal_broker_t *self, group_t *g)
{
    annal_lease_list_t leases = {0};
    annal_err_t err = annal_store_group_leases(self->store, g->def.name, &leases);
    uint64_t last = leases.count ? leases.items[leases.count - 1].sequence : 0;
    bool more = true;
    while (!err && more && annal_group_scan_position(g->engine) <= last)
        err = s_group_page(self, g, &more);
    /* the consumers are the store's until its next group_leases: not
       touched by the pages read */
    for (size_t i = 0; !err && i < leases.count; i++) {
        const annal_lease_t *l = &leases.items[i];
        annal_group_restore(g->engine, l->sequence, l->consumer, s_mono_deadline(l->deadline),
                            l->delivery); /* done since, or past the window: not leased */
    }
    annal_lease_list_free(&leases);
    return err;
}

/* Shared store: stores n leases of g's engine (a fetch's, by consumer), or
   with end, their end (a nack retry): their delivery and consumer stay. */
static annal_err_t s_store_leases(annal_broker_t *self, group_t *g, const char *consumer,
                                  const uint64_t *seqs, size_t n, bool end)
{
    if (!annal_store_shares_groups(self->store) || n == 0)
        return ANNAL_OK;
    annal_lease_t *rows = calloc(n, sizeof *rows);
    if (!rows)
        return ANNAL_ERR_INTERNAL;
    int64_t deadline = s_wall_deadline(zclock_mono() + g->def.ack_timeout_ms);
    for (size_t i = 0; i < n; i++) {
        annal_group_state_t st;
        uint32_t delivery = 0;
        annal_group_state(g->engine, seqs[i], &st, &delivery);
        rows[i] = (annal_lease_t){seqs[i], consumer, end ? 0 : deadline, delivery};
    }
    annal_err_t err = annal_store_group_lease(self->store, g->def.name, rows, n);
    free(rows);
    return err;
}

/* Feeds g's engine the matching events after its scan position, a page at
   a time, until want events are pending and not leased, or the head. */
#define GROUP_WINDOW 100000 /* pending events a group's engine holds, at most */

/* Feeds g's engine one page of the matching events after its scan
   position; *more says whether the scan moved (not at the head, and the
   window not full). */
static annal_err_t s_group_page(annal_broker_t *self, group_t *g, bool *more)
{
    annal_group_t *e = g->engine;
    uint64_t from = annal_group_scan_position(e), next;
    *more = false;
    if (annal_group_pending(e) >= GROUP_WINDOW)
        return ANNAL_OK;
    annal_err_t err = annal_store_read_all(
        self->store, from, 1000, ANNAL_SCAN_CAP, *g->def.prefix ? g->def.prefix : NULL,
        strlen(g->def.prefix), g->def.types, g->def.ntypes, &self->list, &next);
    if (err)
        return err;
    for (size_t i = 0; i < self->list.count; i++) {
        const annal_event_t *ev = &self->list.items[i];
        if (annal_group_feed(e, ev->sequence, ev->aggregate_id, ev->aggregate_id_len))
            return ANNAL_ERR_INTERNAL;
        while (g->markpos < g->nmarks && g->marks[g->markpos].sequence < ev->sequence)
            g->markpos++;
        if (g->markpos < g->nmarks && g->marks[g->markpos].sequence == ev->sequence)
            annal_group_mark(e, ev->sequence, g->marks[g->markpos++].state);
    }
    annal_group_scanned(e, next);
    *more = next > from;
    return ANNAL_OK;
}

/* Scans until g has a pending event, or the head (8 pages at most): what
   acked_through needs to move past events that do not match. */
static annal_err_t s_group_scan(annal_broker_t *self, group_t *g)
{
    bool more = true;
    annal_err_t err = ANNAL_OK;
    for (int pages = 0; pages < 8 && more && !err && annal_group_pending(g->engine) == 0; pages++)
        err = s_group_page(self, g, &more);
    return err;
}

/* Copies of events read one by one, for a reply (each read reuses the
   store's memory): freed by s_copies_free. */
typedef struct {
    annal_group_event_t *items;
    size_t count;
} copies_t;

static void s_copies_free(copies_t *c)
{
    for (size_t i = 0; i < c->count; i++)
        free((void *) c->items[i].event.event_id); /* the block holding all of it */
    free(c->items);
    memset(c, 0, sizeof *c);
}

/* Reads event sequence and adds a copy to c. */
static annal_err_t s_copy_event(annal_broker_t *self, uint64_t sequence, uint32_t delivery,
                                const char *reason, size_t reason_len, copies_t *c)
{
    uint64_t next;
    annal_err_t err =
        annal_store_read_all(self->store, sequence, 1, 1, NULL, 0, NULL, 0, &self->list, &next);
    if (err)
        return err;
    if (self->list.count == 0 || self->list.items[0].sequence != sequence)
        return ANNAL_OK; /* removed since: nothing to hand out */
    const annal_event_t *ev = &self->list.items[0];
    size_t size = 16 + ev->aggregate_id_len + ev->event_type_len + ev->data_len + ev->metadata_len
                  + reason_len;
    uint8_t *block = malloc(size ? size : 1);
    annal_group_event_t *items = realloc(c->items, (c->count + 1) * sizeof *items);
    if (!block || !items) {
        free(block);
        if (items)
            c->items = items;
        return ANNAL_ERR_INTERNAL;
    }
    c->items = items;
    annal_group_event_t *ge = &c->items[c->count++];
    *ge = (annal_group_event_t){*ev, delivery, NULL, 0};
    uint8_t *at = block;
    memcpy(at, ev->event_id, 16);
    ge->event.event_id = at;
    at += 16;
    memcpy(at, ev->aggregate_id, ev->aggregate_id_len);
    ge->event.aggregate_id = (const char *) at;
    at += ev->aggregate_id_len;
    memcpy(at, ev->event_type, ev->event_type_len);
    ge->event.event_type = (const char *) at;
    at += ev->event_type_len;
    memcpy(at, ev->data, ev->data_len);
    ge->event.data = at;
    at += ev->data_len;
    memcpy(at, ev->metadata, ev->metadata_len);
    ge->event.metadata = at;
    at += ev->metadata_len;
    if (reason) {
        memcpy(at, reason, reason_len);
        ge->reason = (const char *) at;
        ge->reason_len = reason_len;
    }
    return ANNAL_OK;
}

/* Parks, durably, the events whose last lease has ended. Inside a batch;
   the engine learns of them after commit (s_group_commit). */
typedef struct {
    group_t *group; /* the group the batch changes */
    uint64_t *seqs; /* the events it marks */
    annal_group_state_t *states;
    size_t n, cap;
} changes_t;

static int s_change(changes_t *ch, uint64_t seq, annal_group_state_t state)
{
    if (ch->n == ch->cap) {
        size_t cap = ch->cap ? ch->cap * 2 : 64;
        uint64_t *seqs = realloc(ch->seqs, cap * sizeof *seqs);
        if (seqs)
            ch->seqs = seqs;
        annal_group_state_t *states = realloc(ch->states, cap * sizeof *states);
        if (states)
            ch->states = states;
        if (!seqs || !states)
            return -1;
        ch->cap = cap;
    }
    ch->seqs[ch->n] = seq;
    ch->states[ch->n++] = state;
    return 0;
}

static annal_err_t s_expire(annal_broker_t *self, group_t *g, changes_t *ch)
{
    uint64_t park[256];
    size_t n = annal_group_expire(g->engine, zclock_mono(), park, 256);
    for (size_t i = 0; i < n && i < 256; i++) {
        uint32_t delivery = 0;
        annal_group_state_t st;
        annal_group_state(g->engine, park[i], &st, &delivery);
        annal_group_mark_t m = {park[i], ANNAL_MARK_PARKED, delivery, "max deliveries", 14};
        annal_err_t err = annal_store_group_mark(self->store, g->def.name, &m);
        if (err)
            return err;
        if (s_change(ch, park[i], ANNAL_GROUP_PARKED))
            return ANNAL_ERR_INTERNAL;
    }
    return ANNAL_OK;
}

/* After a commit: the engine takes the batch's changes. */
static void s_group_commit(changes_t *ch)
{
    for (size_t i = 0; ch->group && i < ch->n; i++) {
        annal_group_state_t before;
        uint32_t delivery;
        bool was_parked = annal_group_state(ch->group->engine, ch->seqs[i], &before, &delivery)
                          && before == ANNAL_GROUP_PARKED;
        if (annal_group_mark(ch->group->engine, ch->seqs[i], ch->states[i]) == 0)
            ch->group->parked += (ch->states[i] == ANNAL_GROUP_PARKED) - was_parked;
    }
}

static void s_changes_free(changes_t *ch)
{
    free(ch->seqs);
    free(ch->states);
    memset(ch, 0, sizeof *ch);
}

static void s_group_info(const group_t *g, uint64_t head, annal_group_info_t *out)
{
    *out = (annal_group_info_t){g->def.name,
                                g->def.prefix,
                                g->def.ntypes ? g->def.types : NULL,
                                g->def.ntypes,
                                g->def.unordered,
                                g->def.ack_timeout_ms,
                                g->def.max_deliveries,
                                g->def.start,
                                annal_group_acked_through(g->engine),
                                annal_group_leased(g->engine),
                                g->parked,
                                head};
}

/* What a group request's write phase found, for its answer. */
typedef struct {
    group_t *group;  /* the group, loaded (NULL: create makes it) */
    changes_t ch;    /* marks made durable, for the engine after commit */
    size_t count;    /* acks, nacks or replays that counted */
    uint64_t start;  /* create: the start sequence */
    uint64_t *retry; /* nack retry, replay: the events ready again */
    size_t nretry;   /* entries in retry */
    bool may_wait;   /* fetch: it may wait (not when its wait is over) */
} group_ctx_t;

/* Whether a create's settings are the stored group's. */
static bool s_same_settings(const annal_request_t *r, const annal_group_def_t *d)
{
    const char *prefix = r->prefix ? r->prefix : "";
    if (strcmp(prefix, d->prefix ? d->prefix : "") || r->unordered != d->unordered
        || r->ack_timeout_ms != d->ack_timeout_ms || r->max_deliveries != d->max_deliveries
        || r->event_type_count != d->ntypes)
        return false;
    if (r->from_end != d->from_end || (!r->from_end && r->from != d->start))
        return false;
    for (size_t i = 0; i < d->ntypes; i++)
        if (strcmp(r->event_types[i], d->types[i]))
            return false;
    return true;
}

/* The write phase: what must be durable before the answer, inside a batch
   (run again from the start when the store grows). */
static annal_err_t s_group_write(annal_broker_t *self, pending_t *p, group_ctx_t *c)
{
    annal_request_t *r = &p->req;
    annal_err_t err = ANNAL_OK;
    if (r->cmd == ANNAL_CMD_GROUP_LIST)
        return ANNAL_OK;
    if (r->cmd == ANNAL_CMD_GROUP_CREATE) {
        annal_group_def_t d;
        uint64_t version, floor; /* shared store: two brokers creating it make one */
        if (annal_store_shares_groups(self->store)
            && (err = annal_store_group_sync(self->store, r->group, &version, &floor)))
            return err;
        err = annal_store_group_get(self->store, r->group, &d);
        if (err == ANNAL_OK) {
            if (!s_same_settings(r, &d)) {
                snprintf(p->why, WHY_MAX, "group '%s' exists with other settings", r->group);
                return ANNAL_ERR_MALFORMED;
            }
            c->start = d.start;
            return ANNAL_OK;
        }
        if (err != ANNAL_ERR_NOT_FOUND)
            return err;
        annal_store_stats_t st;
        if ((err = annal_store_stats(self->store, &st)))
            return err;
        c->start = r->from_end ? st.head_sequence + 1 : r->from;
        annal_group_def_t def = {.name = r->group,
                                 .prefix = r->prefix ? r->prefix : "",
                                 .types = r->event_types,
                                 .ntypes = r->event_type_count,
                                 .start = c->start,
                                 .unordered = r->unordered,
                                 .from_end = r->from_end,
                                 .ack_timeout_ms = r->ack_timeout_ms,
                                 .max_deliveries = r->max_deliveries,
                                 .floor = c->start - 1};
        return annal_store_group_put(self->store, &def);
    }
    if (!(c->group = s_group(self, r->group, &err))) {
        if (err == ANNAL_ERR_NOT_FOUND)
            snprintf(p->why, WHY_MAX, "no consumer group '%s'", r->group);
        return err;
    }
    group_t *g = c->group;
    c->ch.group = g;
    /* leases that ended are over before anything else is looked at */
    if ((err = s_expire(self, g, &c->ch)))
        return err;
    switch (r->cmd) {
    case ANNAL_CMD_GROUP_FETCH: return ANNAL_OK;
    case ANNAL_CMD_GROUP_ACK:
    case ANNAL_CMD_GROUP_NACK:
        for (size_t i = 0; i < r->sequence_count && !err; i++) {
            uint64_t seq = r->sequences[i];
            bool again = false;
            for (size_t k = 0; k < i && !again; k++)
                again = r->sequences[k] == seq; /* named twice: counts once */
            if (again || !annal_group_counts(g->engine, r->consumer, seq))
                continue;
            c->count++;
            bool park =
                r->cmd == ANNAL_CMD_GROUP_NACK
                && (r->action == ANNAL_NACK_PARK
                    || (r->action == ANNAL_NACK_RETRY && annal_group_spent(g->engine, seq)));
            if (r->cmd == ANNAL_CMD_GROUP_NACK && r->action == ANNAL_NACK_RETRY && !park) {
                uint64_t *more = realloc(c->retry, (c->nretry + 1) * sizeof *more);
                if (!more)
                    return ANNAL_ERR_INTERNAL;
                c->retry = more;
                c->retry[c->nretry++] = seq;
                continue;
            }
            annal_group_state_t st;
            uint32_t delivery = 0;
            annal_group_state(g->engine, seq, &st, &delivery);
            const char *reason = !park                           ? NULL
                                 : r->action == ANNAL_NACK_RETRY ? "max deliveries"
                                 : r->reason                     ? r->reason
                                                                 : "";
            annal_group_mark_t m = {seq, park ? ANNAL_MARK_PARKED : ANNAL_MARK_ACKED, delivery,
                                    reason, reason ? strlen(reason) : 0};
            err = annal_store_group_mark(self->store, g->def.name, &m);
            if (!err && s_change(&c->ch, seq, park ? ANNAL_GROUP_PARKED : ANNAL_GROUP_ACKED))
                err = ANNAL_ERR_INTERNAL;
        }
        if (!err && r->cmd == ANNAL_CMD_GROUP_NACK) /* the retried leases end */
            err = s_store_leases(self, g, r->consumer, c->retry, c->nretry, true);
        return err;
    case ANNAL_CMD_GROUP_DELETE: return annal_store_group_delete(self->store, g->def.name);
    case ANNAL_CMD_GROUP_REPLAY_PARKED: {
        uint64_t from = 1, next;
        annal_mark_list_t marks = {0};
        while (from && !err
               && !(err = annal_store_group_marks(self->store, g->def.name, from, 1000,
                                                  ANNAL_MARK_PARKED, &marks, &next))) {
            for (size_t i = 0; i < marks.count && !err; i++) {
                uint64_t seq = marks.items[i].sequence;
                bool named = !r->has_sequences;
                for (size_t k = 0; !named && k < r->sequence_count; k++)
                    named = r->sequences[k] == seq;
                if (!named)
                    continue;
                if (seq <= g->floor) {
                    annal_group_mark_t m = {seq, ANNAL_MARK_READY, 0, NULL, 0};
                    err = annal_store_group_mark(self->store, g->def.name, &m);
                }
                else
                    err = annal_store_group_unmark(self->store, g->def.name, seq);
                uint64_t *more = err ? NULL : realloc(c->retry, (c->nretry + 1) * sizeof *more);
                if (!err && !more)
                    err = ANNAL_ERR_INTERNAL;
                if (more) {
                    c->retry = more;
                    c->retry[c->nretry++] = seq;
                }
            }
            from = next;
        }
        annal_mark_list_free(&marks);
        c->count = c->nretry;
        return err;
    }
    default: return ANNAL_OK;
    }
}

/* group_each's callback for group_list: the names, copied (loading a group
   calls the store, which may not happen inside group_each). */
static annal_err_t s_group_name_one(void *arg, const annal_group_def_t *def)
{
    zlistx_t *names = arg;
    return zlistx_add_end(names, (void *) def->name) ? ANNAL_OK : ANNAL_ERR_INTERNAL;
}

/* A fetch: leases ready events to the consumer and answers them, or, with
   none and time to wait, says so (*wait) without answering. Inside a
   batch that only reads. */
static annal_err_t s_group_fetch(annal_broker_t *self, pending_t *p, group_t *g, uint64_t head,
                                 bool may_wait, bool *wait)
{
    annal_request_t *r = &p->req;
    size_t max = s_cap(self, r->max_count);
    annal_group_lease_t *leases = max ? calloc(max, sizeof *leases) : NULL;
    if (max && !leases)
        return ANNAL_ERR_INTERNAL;
    /* what the window holds first, then more of the log while fetches come
       up short (events behind a leased one of their aggregate do not count):
       8 pages, or with nothing found yet to the head, so that [] means none
       is ready (a group's first scan of a long log costs once: its scan
       position stays) */
    size_t n = 0;
    bool more = true;
    annal_err_t err = ANNAL_OK;
    for (int pages = 0; n < max && more && !err && (pages <= 8 || n == 0); pages++) {
        n += annal_group_fetch(g->engine, r->consumer, zclock_mono(), max - n, leases + n);
        if (n < max)
            err = s_group_page(self, g, &more);
    }
    if (!err && n && annal_store_shares_groups(self->store)) {
        uint64_t *seqs = calloc(n, sizeof *seqs);
        for (size_t i = 0; seqs && i < n; i++)
            seqs[i] = leases[i].sequence;
        err = seqs ? s_store_leases(self, g, r->consumer, seqs, n, false) : ANNAL_ERR_INTERNAL;
        free(seqs);
    }
    if (err) {
        free(leases); /* the leases taken stay: they end at their deadline */
        return err;
    }
    *wait = n == 0 && may_wait;
    copies_t events = {0};
    for (size_t i = 0; i < n && !err; i++) {
        size_t had = events.count;
        err = s_copy_event(self, leases[i].sequence, leases[i].delivery, NULL, 0, &events);
        if (!err && events.count == had) {
            /* removed since it was fed (through another broker, on a shared
               store): as if acked (docs/protocol.md, section 7) */
            annal_group_mark_t m = {leases[i].sequence, ANNAL_MARK_ACKED, 0, NULL, 0};
            if (annal_store_shares_groups(self->store))
                err = annal_store_group_mark(self->store, g->def.name, &m);
            annal_group_mark(g->engine, leases[i].sequence, ANNAL_GROUP_ACKED);
        }
    }
    free(leases);
    if (!err && !*wait) {
        annal_body_begin(self->reply, "group_events", true, r->msg_id);
        annal_body_str(self->reply, "group", r->group, strlen(r->group));
        annal_body_group_events(self->reply, "events", events.items, events.count);
        annal_body_u64(self->reply, "head_sequence", head);
        err = s_finish(self, p);
    }
    s_copies_free(&events);
    return err;
}

/* The answer phase, after the write phase committed: the engine takes the
   changes, the reply is built. Inside a batch that only reads. */
static annal_err_t s_group_answer(annal_broker_t *self, pending_t *p, group_ctx_t *c, bool *wait)
{
    annal_request_t *r = &p->req;
    annal_store_stats_t st;
    annal_err_t err = annal_store_stats(self->store, &st);
    if (err)
        return err;
    s_group_commit(&c->ch);
    group_t *g = c->group;
    switch (r->cmd) {
    case ANNAL_CMD_GROUP_CREATE:
        annal_body_begin(self->reply, "group_created", true, r->msg_id);
        annal_body_str(self->reply, "group", r->group, strlen(r->group));
        annal_body_u64(self->reply, "start_sequence", c->start);
        return s_finish(self, p);
    case ANNAL_CMD_GROUP_FETCH:
        return s_group_fetch(self, p, g, st.head_sequence, r->wait_ms && c->may_wait, wait);
    case ANNAL_CMD_GROUP_ACK:
        annal_body_begin(self->reply, "group_acked", true, r->msg_id);
        annal_body_str(self->reply, "group", r->group, strlen(r->group));
        annal_body_u64(self->reply, "acked", c->count);
        return s_finish(self, p);
    case ANNAL_CMD_GROUP_NACK:
        for (size_t i = 0; i < c->nretry; i++)
            annal_group_mark(g->engine, c->retry[i], ANNAL_GROUP_READY);
        annal_body_begin(self->reply, "group_nacked", true, r->msg_id);
        annal_body_str(self->reply, "group", r->group, strlen(r->group));
        annal_body_u64(self->reply, "count", c->count);
        return s_finish(self, p);
    case ANNAL_CMD_GROUP_REPLAY_PARKED:
        for (size_t i = 0; i < c->nretry && !err; i++) {
            uint64_t next;
            err = annal_store_read_all(self->store, c->retry[i], 1, 1, NULL, 0, NULL, 0,
                                       &self->list, &next);
            if (!err && self->list.count && self->list.items[0].sequence == c->retry[i]) {
                const annal_event_t *ev = &self->list.items[0];
                if (annal_group_replay(g->engine, ev->sequence, ev->aggregate_id,
                                       ev->aggregate_id_len)
                    == 0)
                    g->parked -= g->parked > 0;
            }
        }
        if (err)
            return err;
        annal_body_begin(self->reply, "group_replayed", true, r->msg_id);
        annal_body_str(self->reply, "group", r->group, strlen(r->group));
        annal_body_u64(self->reply, "count", c->count);
        return s_finish(self, p);
    case ANNAL_CMD_GROUP_INFO: {
        annal_group_info_t info;
        if ((err = s_group_scan(self, g))) /* acked_through: past what does not match */
            return err;
        s_group_info(g, st.head_sequence, &info);
        annal_body_begin(self->reply, "group", true, r->msg_id);
        annal_body_group(self->reply, &info);
        return s_finish(self, p);
    }
    case ANNAL_CMD_GROUP_LIST: {
        zlistx_t *names = zlistx_new();
        if (!names)
            return ANNAL_ERR_INTERNAL;
        zlistx_set_duplicator(names, (zlistx_duplicator_fn *) strdup);
        zlistx_set_destructor(names, (zlistx_destructor_fn *) zstr_free);
        err = annal_store_group_each(self->store, s_group_name_one, names);
        size_t n = 0, cap = zlistx_size(names);
        annal_group_info_t *infos = cap ? calloc(cap, sizeof *infos) : NULL;
        if (cap && !infos)
            err = ANNAL_ERR_INTERNAL;
        for (const char *name = zlistx_first(names); !err && name; name = zlistx_next(names)) {
            group_t *one = s_group(self, name, &err);
            if (one)
                annal_group_expire(one->engine, zclock_mono(), NULL,
                                   0); /* parks: its own next op */
            if (one && !(err = s_group_scan(self, one)))
                s_group_info(one, st.head_sequence, &infos[n++]);
        }
        if (!err) {
            annal_body_begin(self->reply, "groups", true, r->msg_id);
            annal_body_groups(self->reply, "groups", infos, n);
            err = s_finish(self, p);
        }
        free(infos);
        zlistx_destroy(&names);
        return err;
    }
    case ANNAL_CMD_GROUP_DELETE:
        zhashx_delete(self->groups, r->group);
        annal_body_begin(self->reply, "group_deleted", true, r->msg_id);
        annal_body_str(self->reply, "group", r->group, strlen(r->group));
        return s_finish(self, p);
    case ANNAL_CMD_GROUP_PARKED: {
        size_t max = s_cap(self, r->max_count);
        annal_mark_list_t marks = {0};
        copies_t events = {0};
        uint64_t next = 0;
        /* one more than asked: whether it exists says if next_sequence is due */
        err = annal_store_group_marks(self->store, g->def.name, r->from, max + 1, ANNAL_MARK_PARKED,
                                      &marks, &next);
        next = 0;
        if (!err && marks.count > max) {
            next = marks.items[max].sequence;
            marks.count = max;
        }
        /* the reasons are the store's until its next call: copied first */
        char **reasons = marks.count ? calloc(marks.count, sizeof(char *)) : NULL;
        if (marks.count && !reasons)
            err = ANNAL_ERR_INTERNAL;
        for (size_t i = 0; !err && i < marks.count; i++) {
            reasons[i] = malloc(marks.items[i].reason_len + 1);
            if (!reasons[i]) {
                err = ANNAL_ERR_INTERNAL;
                break;
            }
            memcpy(reasons[i], marks.items[i].reason ? marks.items[i].reason : "",
                   marks.items[i].reason_len);
        }
        size_t count = marks.count;
        annal_group_mark_t *copy = count ? malloc(count * sizeof *copy) : NULL;
        if (count && !copy)
            err = ANNAL_ERR_INTERNAL;
        if (copy)
            memcpy(copy, marks.items, count * sizeof *copy);
        for (size_t i = 0; !err && i < count; i++)
            err = s_copy_event(self, copy[i].sequence, copy[i].delivery, reasons[i],
                               copy[i].reason_len, &events);
        if (!err) {
            annal_body_begin(self->reply, "parked", true, r->msg_id);
            annal_body_str(self->reply, "group", r->group, strlen(r->group));
            annal_body_group_events(self->reply, "events", events.items, events.count);
            if (next)
                annal_body_u64(self->reply, "next_sequence", next);
            err = s_finish(self, p);
        }
        for (size_t i = 0; reasons && i < count; i++)
            free(reasons[i]);
        free(reasons);
        free(copy);
        s_copies_free(&events);
        annal_mark_list_free(&marks);
        return err;
    }
    default: return ANNAL_ERR_INTERNAL;
    }
}

static void s_group_ctx_free(group_ctx_t *c)
{
    s_changes_free(&c->ch);
    free(c->retry);
    memset(c, 0, sizeof *c);
}

/* Runs one group request on a store several brokers share: writes, answer
   and the version's move in one batch, under the group's lock. Sets p's
   reply, or returns true when p is a fetch that is to wait. */
static bool s_group_run_shared(annal_broker_t *self, pending_t *p, bool may_wait)
{
    group_ctx_t c = {.may_wait = may_wait};
    annal_request_t *r = &p->req;
    bool wait = false, committing = false;
    p->why[0] = 0;
    annal_err_t err = annal_store_begin(self->store);
    if (err == ANNAL_OK) {
        err = s_group_write(self, p, &c);
        if (!err)
            err = s_group_answer(self, p, &c, &wait);
        uint64_t version = 0;
        group_t *g = r->cmd == ANNAL_CMD_GROUP_DELETE ? NULL : c.group; /* delete freed it */
        if (!err && g)
            err = annal_store_group_bump(self->store, g->def.name, &version);
        if (err)
            annal_store_abort(self->store);
        else {
            committing = true;
            err = annal_store_commit(self->store);
        }
        if (!err && g)
            g->version = version;
    }
    if (err) {
        /* the engine may hold what is not durable: loaded again when next used */
        if (r->group)
            zhashx_delete(self->groups, r->group);
        wait = false;
        if (err == ANNAL_ERR_MALFORMED || err == ANNAL_ERR_NOT_FOUND)
            s_error_reply(self, p, err, p->why[0] ? p->why : annal_strerror(err));
        else
            s_error_reply(self, p, err == ANNAL_ERR_RETRY ? ANNAL_ERR_UNAVAILABLE : err,
                          committing ? "the store failed at commit; the change may or may not "
                                       "have been made: ask again"
                                     : "the store is unavailable; nothing was written");
    }
    s_group_ctx_free(&c);
    return wait;
}

/* Runs one group request: its writes (made durable), then its answer.
   Sets p's reply, or returns true when p is a fetch that is to wait. */
static bool s_group_run(annal_broker_t *self, pending_t *p, bool may_wait)
{
    if (!annal_store_has_groups(self->store)) {
        char text[160];
        snprintf(text, sizeof text, "%s: consumer groups are not served on a %s store yet",
                 annal_cmd_name(p->req.cmd), annal_store_name(self->store));
        s_error_reply(self, p, ANNAL_ERR_UNKNOWN_TYPE, text);
        return false;
    }
    if (annal_store_shares_groups(self->store))
        return s_group_run_shared(self, p, may_wait);
    group_ctx_t c = {0};
    annal_err_t err = ANNAL_ERR_RETRY;
    bool wrote = false;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && err == ANNAL_ERR_RETRY; attempt++) {
        s_group_ctx_free(&c);
        c.may_wait = may_wait;
        p->why[0] = 0;
        if ((err = annal_store_begin(self->store)))
            break;
        err = s_group_write(self, p, &c);
        if (err == ANNAL_OK) {
            err = annal_store_commit(self->store);
            wrote = err == ANNAL_OK;
        }
        else
            annal_store_abort(self->store);
    }
    bool wait = false;
    if (err == ANNAL_OK && wrote && (err = annal_store_begin(self->store)) == ANNAL_OK) {
        err = s_group_answer(self, p, &c, &wait);
        annal_store_abort(self->store);
    }
    if (err == ANNAL_ERR_MALFORMED || err == ANNAL_ERR_NOT_FOUND)
        s_error_reply(self, p, err, p->why[0] ? p->why : annal_strerror(err));
    else if (err)
        s_error_reply(self, p, err == ANNAL_ERR_RETRY ? ANNAL_ERR_UNAVAILABLE : err,
                      wrote ? "the store failed after the change was made durable; ask again"
                            : "the store is unavailable; nothing was written");
    s_group_ctx_free(&c);
    return err == ANNAL_OK && wait;
}

/* Group requests run outside batches (s_group_run); a row in the table
   all the same, so that every command has one. */
static annal_err_t s_group_elsewhere(annal_broker_t *self, pending_t *p)
{
    (void) self;
    snprintf(p->why, WHY_MAX, "a group request reached a batch");
    return ANNAL_ERR_INTERNAL;
}

/* The broker's columns of the command table, indexed by annal_cmd_t; the
   rest of each row (name, needs_aggregate, needs_group, writes) is the wire's
   (annal_command.h). */
static const struct {
    handler_fn handler; /* runs it inside the batch */
} s_commands[] = {
    [ANNAL_CMD_APPEND] = {s_append},
    [ANNAL_CMD_CREATE_SNAPSHOT] = {s_create_snapshot},
    [ANNAL_CMD_GET_SNAPSHOT] = {s_get_snapshot},
    [ANNAL_CMD_REPLAY] = {s_replay},
    [ANNAL_CMD_GET_STATE] = {s_get_state},
    [ANNAL_CMD_READ] = {s_read},
    [ANNAL_CMD_READ_ALL] = {s_read_all},
    [ANNAL_CMD_STATUS] = {s_status},
    [ANNAL_CMD_INIT] = {s_init},
    [ANNAL_CMD_GROUP_CREATE] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_FETCH] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_ACK] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_NACK] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_INFO] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_LIST] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_DELETE] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_PARKED] = {s_group_elsewhere},
    [ANNAL_CMD_GROUP_REPLAY_PARKED] = {s_group_elsewhere},
    [ANNAL_CMD_DELETE_AGGREGATE] = {s_delete_aggregate},
    [ANNAL_CMD_SET_RETENTION] = {s_retention},
    [ANNAL_CMD_GET_RETENTION] = {s_retention},
};
_Static_assert(sizeof s_commands / sizeof s_commands[0] == ANNAL_CMD_COUNT,
               "a handler per command");

/* --- the batch ---------------------------------------------------------------- */

/* Answers every live request of the batch with error 11 and drops the
   batch's publishes: nothing of it was written. */
static void s_fail_all(annal_broker_t *self, const char *text)
{
    s_drop_pubs(self);
    for (size_t i = 0; i < self->npending; i++)
        if (!self->pending[i].err)
            s_error_reply(self, &self->pending[i], ANNAL_ERR_UNAVAILABLE, text);
}

/* Answers every live write of the batch with err (ANNAL_ERR_NO_SPACE or
   ANNAL_ERR_REFUSED): the store wrote nothing of the batch. */
static void s_refuse_writes(annal_broker_t *self, annal_err_t err)
{
    for (size_t i = 0; i < self->npending; i++) {
        pending_t *p = &self->pending[i];
        if (!p->err && annal_command_get(p->req.cmd)->writes) {
            p->err = err;
            s_error_reply(
                self, p, err,
                err == ANNAL_ERR_NO_SPACE
                    ? "no space left on the store's disk; nothing was written: retry later"
                    : "the store refused the batch for now; nothing was written: retry "
                      "later");
        }
    }
}

/* Runs every live request of the batch in one store batch and commits. */
static void s_run_batch(annal_broker_t *self)
{
    bool hint = true; /* until preparing failed: then each append meets it alone */
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        s_drop_pubs(self);
        annal_err_t err = annal_store_begin(self->store);
        if (err) {
            s_fail_all(self, "the store is unavailable; nothing was written");
            return;
        }
        size_t nhints = 0;
        for (size_t i = 0; hint && i < self->npending; i++) {
            annal_request_t *r = &self->pending[i].req;
            if (!self->pending[i].err && r->cmd == ANNAL_CMD_APPEND)
                self->hints[nhints++] =
                    (annal_append_hint_t){r->aggregate_id, r->events, r->event_count};
        }
        if (annal_store_prepare(self->store, self->hints, nhints)) {
            annal_store_abort(self->store);
            hint = false;
            continue;
        }
        bool rerun = false;
        for (size_t i = 0; i < self->npending && !rerun; i++) {
            pending_t *p = &self->pending[i];
            if (p->err)
                continue;
            p->why[0] = 0;
            err = s_commands[p->req.cmd].handler(self, p);
            switch (annal_err_disposition(err)) {
            case ANNAL_DISP_DONE: break;
            case ANNAL_DISP_ANSWER:
                s_error_reply(self, p, err, p->why); /* nothing written by it */
                break;
            case ANNAL_DISP_RERUN: rerun = true; break;
            case ANNAL_DISP_REFUSE_WRITES:
                /* the batch's writes failed, not this request: they are
                   answered so, and the rest (reads) run again without them */
                s_refuse_writes(self, err);
                rerun = true;
                break;
            case ANNAL_DISP_ABORT_UNKNOWN:
                /* unknown extent: answer it, drop the batch, run the rest again */
                p->err = err;
                if (!p->why[0])
                    snprintf(p->why, WHY_MAX, "%s; nothing was written", annal_strerror(err));
                s_error_reply(self, p, err, p->why);
                rerun = true;
                break;
            }
        }
        if (rerun) {
            annal_store_abort(self->store);
            continue;
        }
        err = annal_store_commit(self->store);
        switch (annal_err_disposition(err)) {
        case ANNAL_DISP_DONE: return;
        case ANNAL_DISP_RERUN: continue;
        case ANNAL_DISP_REFUSE_WRITES:
            s_refuse_writes(self, err); /* nothing of the batch was written */
            continue;
        case ANNAL_DISP_ANSWER: /* at commit, no one request is to blame */
        case ANNAL_DISP_ABORT_UNKNOWN:
            s_fail_all(self, "the store could not commit; the batch may or may not be "
                             "stored: send it again with the same event_ids");
            return;
        }
        return;
    }
    s_fail_all(self, "the store cannot grow; nothing was written");
}

/* Sends p's reply, if it has one, and frees what p holds. */
static void s_send(annal_broker_t *self, pending_t *p)
{
    if (p->has_reply) {
        void *router = zsock_resolve(self->router);
        for (size_t f = 0; f < p->frames; f++)
            zmq_msg_send(&p->envelope[f], router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (zmq_msg_send(&p->reply, router, ZMQ_DONTWAIT) < 0)
            zmq_msg_close(&p->reply);
        p->has_reply = false;
    }
    for (size_t f = 0; f < p->frames; f++)
        zmq_msg_close(&p->envelope[f]);
    p->frames = 0;
    annal_request_reset(&p->req);
}

/* Moves what src holds (envelope, request, reply) into dst; src is left
   holding nothing. */
static void s_pending_move(pending_t *dst, pending_t *src)
{
    for (size_t f = 0; f < src->frames; f++) {
        zmq_msg_init(&dst->envelope[f]);
        zmq_msg_move(&dst->envelope[f], &src->envelope[f]);
        zmq_msg_close(&src->envelope[f]);
    }
    dst->frames = src->frames;
    dst->req = src->req;
    dst->enc = src->enc;
    dst->err = src->err;
    memcpy(dst->why, src->why, sizeof dst->why);
    dst->has_reply = src->has_reply;
    if (src->has_reply) {
        zmq_msg_init(&dst->reply);
        zmq_msg_move(&dst->reply, &src->reply);
        zmq_msg_close(&src->reply);
    }
    src->frames = 0;
    src->has_reply = false;
    memset(&src->req, 0, sizeof src->req);
}

/* Sends the replies and publishes the batch's events; frees the batch. */
static void s_flush(annal_broker_t *self)
{
    for (size_t i = 0; i < self->npending; i++)
        s_send(self, &self->pending[i]);
    self->npending = 0;
    /* events the batch removed leave the groups as if acked */
    for (size_t i = 0; i < self->nremovals; i++)
        for (group_t *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups))
            annal_group_forget(g->engine, self->removals[i].aggregate,
                               strlen(self->removals[i].aggregate), self->removals[i].before);
    s_drop_removals(self);
    if (self->pub && self->npubs) {
        /* on a shared store other brokers may have committed right before
           this batch: theirs go out first */
        if (self->pubs[0].sequence > self->published + 1)
            s_catch_up(self, self->pubs[0].sequence - 1);
        for (size_t i = 0; i < self->npubs; i++) {
            pub_t *pb = &self->pubs[i];
            if (pb->sequence == self->published + 1)
                s_send_pub(self, pb);
            else { /* the catch-up fell short: the next one fetches these */
                zmq_msg_close(&pb->topic);
                zmq_msg_close(&pb->body);
            }
        }
        self->npubs = 0;
    }
}

/* Receives one whole message into p. Returns 0, or -1 when none waits. */
static int s_receive(annal_broker_t *self, pending_t *p, size_t *bytes)
{
    void *router = zsock_resolve(self->router);
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return -1;
    }
    memset(&p->req, 0, sizeof p->req);
    p->frames = 0;
    p->err = ANNAL_OK;
    p->enc = ANNAL_ENC_JSON;
    p->has_reply = false;
    bool too_many = false, too_big = false;
    while (zmq_msg_more(&frame)) {
        *bytes += zmq_msg_size(&frame);
        if (p->frames > 0 && zmq_msg_size(&frame) > ANNAL_ENVELOPE_FRAME) {
            too_big = true; /* not kept, not echoed */
            zmq_msg_close(&frame);
        }
        else if (p->frames < ANNAL_MAX_ENVELOPE) {
            zmq_msg_init(&p->envelope[p->frames]);
            zmq_msg_move(&p->envelope[p->frames++], &frame);
        }
        else {
            too_many = true;
            zmq_msg_close(&frame);
        }
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, router, 0) < 0)
            break;
    }
    size_t size = zmq_msg_size(&frame);
    *bytes += size;
    if (p->frames == 0) {
        /* a ROUTER always prepends the identity; no route back otherwise */
        zmq_msg_close(&frame);
        p->err = ANNAL_ERR_MALFORMED;
        return 0;
    }
    if (too_many || too_big) {
        p->err = ANNAL_ERR_MALFORMED;
        snprintf(p->why, WHY_MAX, "too many envelope frames (more than %d) or one over %d bytes",
                 ANNAL_MAX_ENVELOPE - 1, ANNAL_ENVELOPE_FRAME);
    }
    else if (size > self->config.limits.max_body) {
        p->err = ANNAL_ERR_MALFORMED;
        p->enc = annal_request_peek(zmq_msg_data(&frame), size, &p->req);
        snprintf(p->why, WHY_MAX, "request body of %zu bytes exceeds the limit of %zu bytes", size,
                 self->config.limits.max_body);
    }
    else
        p->err = annal_request_decode(zmq_msg_data(&frame), size, &self->config.limits, &p->req,
                                      &p->enc, p->why, WHY_MAX);
    zmq_msg_close(&frame);
    if (p->err)
        s_error_reply(self, p, p->err, p->why);
    return 0;
}

/* Stores each group's floor where it moved on, which drops the acks behind
   it from the store (loading a group then reads fewer marks). Once a beat;
   a failure leaves the older floor, which is still true. */
static void s_group_floors(annal_broker_t *self)
{
    bool shared = annal_store_shares_groups(self->store);
    for (group_t *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups)) {
        uint64_t at = annal_group_acked_through(g->engine), version, floor;
        if (at <= g->floor || annal_store_begin(self->store))
            continue;
        /* shared store: only from a copy that is the store's */
        if ((shared
             && (annal_store_group_sync(self->store, g->def.name, &version, &floor) != ANNAL_OK
                 || version != g->version))
            || annal_store_group_floor(self->store, g->def.name, at) != ANNAL_OK)
            annal_store_abort(self->store);
        else if (annal_store_commit(self->store) == ANNAL_OK)
            g->floor = at;
    }
}

/* Keeps p, a fetch that found nothing, until events come or its wait ends;
   p holds nothing afterwards. */
static void s_wait(annal_broker_t *self, pending_t *p)
{
    if (self->nwaiters == self->capwaiters) {
        size_t cap = self->capwaiters ? self->capwaiters * 2 : 16;
        waiter_t *more = realloc(self->waiters, cap * sizeof *more);
        if (!more) { /* out of memory: it waits no more */
            s_group_run(self, p, false);
            return;
        }
        self->waiters = more;
        self->capwaiters = cap;
    }
    waiter_t *w = &self->waiters[self->nwaiters++];
    s_pending_move(&w->p, p);
    w->deadline = zclock_mono() + w->p.req.wait_ms;
}

/* Runs the waiting fetches again: answers those that now find events, and
   those whose wait is over (with none). */
static void s_wake(annal_broker_t *self)
{
    int64_t now = zclock_mono();
    size_t kept = 0;
    for (size_t i = 0; i < self->nwaiters; i++) {
        waiter_t *w = &self->waiters[i];
        if (s_group_run(self, &w->p, now < w->deadline)) {
            if (kept != i) {
                s_pending_move(&self->waiters[kept].p, &w->p);
                self->waiters[kept].deadline = w->deadline;
            }
            kept++;
        }
        else
            s_send(self, &w->p);
    }
    self->nwaiters = kept;
}

/* When the waiting fetches are to run again at the latest: the first wait
   that ends, or the first lease that does (INT64_MAX: none waits). */
static int64_t s_next_wake(annal_broker_t *self)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->nwaiters; i++)
        next = self->waiters[i].deadline < next ? self->waiters[i].deadline : next;
    if (self->nwaiters)
        for (group_t *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups)) {
            int64_t d = annal_group_next_deadline(g->engine);
            next = d < next ? d : next;
        }
    return next;
}

/* Drains waiting requests into one batch, runs, commits and answers it. A
   group request runs alone, in its turn: one that comes after others waits
   in pending[0] for the next turn (self->carry). Returns whether events may
   have become ready for a waiting fetch. */
static bool s_turn(annal_broker_t *self)
{
    size_t bytes = 0, events = 0;
    if (self->carry) {
        self->carry = false;
        self->npending = 1;
    }
    while (self->npending < ANNAL_GROUP_MAX && bytes < BATCH_BYTES && events < ANNAL_GROUP_EVENTS
           && !(self->npending == 1 && s_is_group_request(&self->pending[0]))) {
        pending_t *p = &self->pending[self->npending];
        if (s_receive(self, p, &bytes))
            break;
        if (self->npending > 0 && s_is_group_request(p)) {
            self->carry = true; /* stays at pending[npending] until s_flush is done */
            break;
        }
        events += p->req.event_count;
        self->npending++;
    }
    if (self->npending == 0)
        return false;
    bool wake = false;
    if (self->npending == 1 && s_is_group_request(&self->pending[0])) {
        pending_t *p = &self->pending[0];
        if (s_group_run(self, p, true))
            s_wait(self, p);
        wake = p->req.cmd != ANNAL_CMD_GROUP_FETCH && p->req.cmd != ANNAL_CMD_GROUP_INFO;
    }
    else {
        bool work = false;
        for (size_t i = 0; i < self->npending; i++) {
            work |= self->pending[i].err == ANNAL_OK;
            wake |= self->pending[i].req.cmd == ANNAL_CMD_APPEND && !self->pending[i].err;
        }
        if (work)
            s_run_batch(self);
    }
    size_t carried = self->npending;
    s_flush(self);
    if (self->carry)
        s_pending_move(&self->pending[0], &self->pending[carried]);
    return wake && self->nwaiters;
}

/* One step of the sweep (docs/protocol.md, section 7: removed events'
   space freed within 10 s), in a batch of its own between turns: at most
   SWEEP_STEP events, so that appends wait for one step at most. */
#define SWEEP_STEP     500
#define SWEEP_PAUSE_MS 2 /* between steps, while there is more */
static void s_sweep(annal_broker_t *self)
{
    size_t freed = 0;
    annal_sweep_t next = ANNAL_SWEEP_IDLE;
    annal_err_t err = ANNAL_OK;
    if (annal_store_removes(self->store) && (err = annal_store_begin(self->store)) == ANNAL_OK) {
        if ((err = annal_store_sweep(self->store, SWEEP_STEP, &freed, &next)) == ANNAL_OK)
            err = annal_store_commit(self->store);
        else
            annal_store_abort(self->store);
    }
    if (err)
        next = ANNAL_SWEEP_LATER; /* tried again */
    self->sweep_due = next != ANNAL_SWEEP_IDLE;
    self->next_sweep = zclock_mono() + (next == ANNAL_SWEEP_MORE ? SWEEP_PAUSE_MS : 1000);
}

static void s_heartbeat(annal_broker_t *self)
{
    if (!self->pub)
        return;
    if (annal_store_shared(self->store))
        s_catch_up(self, UINT64_MAX); /* should an announcement have been lost */
    const uint8_t *body;
    size_t len;
    annal_body_begin_plain(self->reply);
    annal_body_u64(self->reply, "head_sequence", self->published);
    zmq_msg_t topic, msg;
    if (annal_body_view(self->reply, self->config.pub_format, &body, &len)
        || annal_pool_msg(self->pool, &msg, body, len))
        return;
    zmq_msg_init_size(&topic, 5);
    memcpy(zmq_msg_data(&topic), "$head", 5);
    void *pub = zsock_resolve(self->pub);
    if (zmq_msg_send(&topic, pub, ZMQ_SNDMORE) < 0)
        zmq_msg_close(&topic);
    if (zmq_msg_send(&msg, pub, 0) < 0)
        zmq_msg_close(&msg);
}

static void s_actor(zsock_t *pipe, void *args)
{
    annal_broker_t *self = args;
    zsock_signal(pipe, 0);
    zmq_pollitem_t items[] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
                              {zsock_resolve(self->router), 0, ZMQ_POLLIN, 0},
                              {NULL, -1, ZMQ_POLLIN, 0}};
    int64_t next_beat = zclock_mono();
    bool running = true;
    while (running) {
        int64_t now = zclock_mono();
        if (now >= next_beat) {
            s_heartbeat(self);
            s_group_floors(self);
            annal_store_checkpoint(self->store);
            if (self->turns == 0)
                malloc_trim(0); /* idle for a whole beat: give freed memory back */
            self->turns = 0;
            next_beat = now + self->config.heartbeat_ms;
        }
        /* a shared store's announcements that other brokers committed */
        items[2].fd = self->pub ? annal_store_watch_fd(self->store) : -1;
        items[2].revents = 0;
        int64_t wake_at = s_next_wake(self);
        if (now >= wake_at) {
            s_wake(self);
            wake_at = s_next_wake(self);
        }
        if (self->sweep_due && now >= self->next_sweep)
            s_sweep(self);
        if (self->sweep_due && self->next_sweep < wake_at)
            wake_at = self->next_sweep;
        int64_t until = wake_at < next_beat ? wake_at : next_beat;
        long wait = self->behind || self->carry ? 0 : (long) (until > now ? until - now : 0);
        if (zmq_poll(items, items[2].fd >= 0 ? 3 : 2, wait) < 0 && zmq_errno() != EINTR)
            break;
        if (items[2].revents & ZMQ_POLLIN) {
            uint64_t moved = annal_store_moved(self->store);
            if (moved > self->published)
                self->behind = true;
            /* another broker appended or changed a group: events may be ready */
            if (self->nwaiters)
                s_wake(self);
        }
        if (self->behind)
            s_catch_up(self, UINT64_MAX);
        if ((items[1].revents & ZMQ_POLLIN) || self->carry) {
            if (s_turn(self))
                s_wake(self);
            self->turns++;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv(pipe);
            running = !command || strcmp(command, "$TERM") != 0;
            zstr_free(&command);
        }
    }
    annal_store_close(&self->store); /* on the thread that wrote (annal_store.h) */
}

/* --- life cycle ------------------------------------------------------------------ */

static void s_free(annal_broker_t *self)
{
    for (size_t i = 0; i < self->nwaiters; i++)
        s_send(self, &self->waiters[i].p); /* unanswered: only freed */
    free(self->waiters);
    s_drop_removals(self);
    free(self->removals);
    if (self->carry)
        s_send(self, &self->pending[0]);
    zsock_destroy(&self->router);
    zsock_destroy(&self->pub);
    annal_gate_destroy(&self->gate); /* after the sockets it watches */
    zhashx_destroy(&self->groups);
    annal_store_close(&self->store);
    annal_body_destroy(&self->reply);
    annal_event_list_free(&self->list);
    s_drop_pubs(self);
    annal_pool_destroy(&self->pool); /* after its last frame here */
    free(self->pubs);
    free(self->pending);
    free(self->hints);
    free(self);
}

/* Binds sock to endpoint and records the endpoint bound. */
static int s_bind(zsock_t *sock, const char *endpoint, char *bound, size_t len)
{
    if (zsock_bind(sock, "%s", endpoint) < 0)
        return -1;
    char *last = zsock_last_endpoint(sock);
    snprintf(bound, len, "%s", last ? last : endpoint);
    free(last);
    return 0;
}

/* Puts both sockets behind the gate: the client count, and CURVE when
   configured. 0, or -1 with the reason in why. */
static int s_gate(annal_broker_t *self, const annal_broker_config_t *config, char *why,
                  size_t whylen)
{
    if (!config->curve_secret != !config->curve_allow) {
        snprintf(why, whylen, "CURVE needs both a secret certificate and an allow folder");
        return -1;
    }
    zcert_t *cert = NULL;
    if (config->curve_secret) {
        cert = zcert_load(config->curve_secret);
        if (!cert || !*zcert_secret_txt(cert) || strspn(zcert_secret_txt(cert), "0") == 40) {
            snprintf(why, whylen, "cannot read a CURVE secret key from %s", config->curve_secret);
            zcert_destroy(&cert);
            return -1;
        }
    }
    self->gate = annal_gate_new(config->curve_allow, self->config.limits.max_clients, why, whylen);
    int rc = self->gate ? 0 : -1;
    if (rc == 0)
        rc = annal_gate_watch(self->gate, self->router, "commands", cert, why, whylen);
    if (rc == 0 && self->pub)
        rc = annal_gate_watch(self->gate, self->pub, "events", cert, why, whylen);
    if (rc == 0)
        rc = annal_gate_start(self->gate, why, whylen);
    zcert_destroy(&cert);
    return rc;
}

/* Gives every unset limit its default. */
static void s_limits_fill(annal_limits_t *lim)
{
    annal_limits_t d = annal_limits_default();
#define FILL(field) lim->field = lim->field ? lim->field : d.field
    FILL(max_body);
    FILL(max_aggregate_id);
    FILL(max_event_type);
    FILL(max_batch);
    FILL(max_depth);
    FILL(read_cap);
    FILL(client_hwm);
    FILL(max_clients);
#undef FILL
}

annal_broker_t *annal_broker_new(const annal_broker_config_t *config, char *why, size_t whylen)
{
    annal_broker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    self->config = *config;
    s_limits_fill(&self->config.limits);
    if (self->config.heartbeat_ms <= 0)
        self->config.heartbeat_ms = 1000;
    self->started = zclock_mono();
    self->reply = annal_body_new();
    self->pool = annal_pool_new();
    self->pending = calloc(ANNAL_GROUP_MAX + 1, sizeof *self->pending); /* + a carried one */
    self->groups = zhashx_new();
    self->sweep_due = true; /* a removal may wait from before a restart */
    if (self->groups)
        zhashx_set_destructor(self->groups, s_group_destructor);
    self->hints = calloc(ANNAL_GROUP_MAX, sizeof *self->hints);
    if (!self->reply || !self->pending || !self->hints || !self->pool || !self->groups) {
        snprintf(why, whylen, "out of memory");
        s_free(self);
        return NULL;
    }
    annal_store_options_t opts = {.initial_map_size = config->initial_map_size};
    self->store = annal_store_open(config->store, &opts, why, whylen);
    if (!self->store) {
        s_free(self);
        return NULL;
    }
    annal_store_stats_t st = {0};
    if (annal_store_begin(self->store) == ANNAL_OK) {
        annal_store_stats(self->store, &st);
        annal_store_abort(self->store);
    }
    self->published = st.head_sequence;
    bool events = config->events && *config->events;
    self->router = zsock_new(ZMQ_ROUTER);
    self->pub = events ? zsock_new(ZMQ_PUB) : NULL;
    if (!self->router || (events && !self->pub)) {
        snprintf(why, whylen, "cannot create the sockets");
        s_free(self);
        return NULL;
    }
    /* a frame past twice the body limit closes that connection unanswered;
       between the two it is answered with error 12 */
    zsock_set_maxmsgsize(self->router, (int) (self->config.limits.max_body * 2 + 65536 < INT32_MAX
                                                  ? self->config.limits.max_body * 2 + 65536
                                                  : INT32_MAX));
    int hwm = self->config.limits.client_hwm < INT32_MAX / 10 ? (int) self->config.limits.client_hwm
                                                              : INT32_MAX / 10;
    zsock_set_rcvhwm(self->router, hwm);
    /* one turn may answer ANNAL_GROUP_MAX requests of one client at once: a
       queue shorter than that made ROUTER drop replies of a pipelining client */
    zsock_set_sndhwm(self->router, hwm * 10 + ANNAL_GROUP_MAX);
    zsock_set_linger(self->router, 1000);
    if (self->pub) {
        /* an event is two messages (topic, body) */
        zsock_set_sndhwm(self->pub,
                         2 * (config->pub_hwm > 0 ? config->pub_hwm : ANNAL_PUB_HWM_DEFAULT));
        zsock_set_linger(self->pub, 1000);
    }
    if (s_gate(self, config, why, whylen)) {
        s_free(self);
        return NULL;
    }
    if (s_bind(self->router, config->commands, self->commands, sizeof self->commands)) {
        snprintf(why, whylen, "cannot bind commands to %s: %s", config->commands,
                 zmq_strerror(zmq_errno()));
        s_free(self);
        return NULL;
    }
    if (self->pub && s_bind(self->pub, config->events, self->events, sizeof self->events)) {
        snprintf(why, whylen, "cannot bind events to %s: %s", config->events,
                 zmq_strerror(zmq_errno()));
        s_free(self);
        return NULL;
    }
    self->config.store = self->config.commands = self->config.events = NULL;
    self->actor = zactor_new(s_actor, self);
    if (!self->actor) {
        snprintf(why, whylen, "cannot start the broker thread");
        s_free(self);
        return NULL;
    }
    return self;
}

const char *annal_broker_commands(const annal_broker_t *self)
{
    return self->commands;
}

const char *annal_broker_events(const annal_broker_t *self)
{
    return self->events;
}

void annal_broker_destroy(annal_broker_t **self)
{
    if (*self) {
        zactor_destroy(&(*self)->actor); /* $TERM: the loop ends after its batch */
        s_free(*self);
        *self = NULL;
    }
}
