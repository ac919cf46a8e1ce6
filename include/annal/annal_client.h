/*  annal_client.h: the command client of libannal.

    One client is one DEALER connection to annald (MessagePack on the wire).
    Calls are synchronous with a timeout; appends can also be pipelined
    (annal_client_send_append / annal_client_recv_append) for throughput.
    Errors come back as values, never aborts: every call returns an
    annal_status_t and fills an annal_result_t with the protocol's code and
    text. A client is used by one thread at a time. */
#ifndef ANNAL_CLIENT_H
#define ANNAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annal_curve.h"
#include "annal_export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANNAL_ANY    (-1) /* expected version: no check */
#define ANNAL_EXISTS (-2) /* expected version: at least one event */

typedef enum {
    ANNAL_SUCCESS = 0,  /* done */
    ANNAL_CONFLICT = 1, /* concurrency_error: the aggregate was not at the expected version */
    ANNAL_FAILED = 2,   /* annald answered an error: result.code, an ANNAL_CODE_* */
    ANNAL_TIMEOUT = 3,  /* no answer in time (annald down or busy): the request may or may
                           not have been done; appends with event ids are safe to retry */
    ANNAL_INVALID = 4   /* bad arguments, refused before sending */
} annal_status_t;

/* The protocol's error codes, as result.code carries them with ANNAL_FAILED
   (docs/protocol.md, section 5). */
#define ANNAL_CODE_UNKNOWN_TYPE 10 /* annald does not know the request's type */
#define ANNAL_CODE_UNAVAILABLE  11 /* store busy, disk full, backend away: retry later */
#define ANNAL_CODE_MALFORMED    12 /* the request broke a rule; the text says which */
#define ANNAL_CODE_INTERNAL     13 /* a bug in annald; nothing partial was written */
#define ANNAL_CODE_NOT_FOUND    20 /* no such snapshot (or consumer group) */
#define ANNAL_CODE_DELETED      21 /* the aggregate was deleted for good */

/* A short name for status ("success", "conflict", ...); borrowed, static. */
ANNAL_EXPORT const char *annal_status_str(annal_status_t status);

typedef struct {
    annal_status_t status; /* as returned */
    int code;              /* the protocol error code with ANNAL_FAILED, else 0 */
    char text[512];        /* what went wrong, for a person ("" on success) */
} annal_result_t;

/* An event as stored; strings are owned by the page or message it came in. */
typedef struct {
    uint64_t sequence_number; /* global, dense */
    const char *event_id;     /* UUID text */
    const char *aggregate_id;
    uint64_t version; /* within the aggregate */
    const char *event_type;
    const char *event_data;  /* JSON text */
    const char *metadata;    /* JSON text */
    const char *recorded_at; /* RFC 3339 UTC */
    const char *json;        /* the whole record as one JSON object */
} annal_record_t;

/* One page of a read. */
typedef struct {
    annal_record_t *records; /* count records */
    size_t count;
    uint64_t version;       /* read: the aggregate's current version */
    uint64_t next;          /* read: next_version (0 at the end); read_all: next_sequence */
    uint64_t head_sequence; /* read_all: the store's head */
    void *internal;         /* owns the strings */
} annal_page_t;

/* An event to append. */
typedef struct {
    const char *event_type; /* required */
    const char *event_data; /* JSON text, required */
    const char *metadata;   /* JSON object text, or NULL for {} */
    const char *event_id;   /* UUID text, or NULL: the client makes a fresh one per call. Give
                               one (annal_uuid_new) to make a retry after ANNAL_TIMEOUT
                               idempotent: annald then answers it with the original reply */
} annal_event_spec_t;

typedef struct {
    char event_id[37];       /* the (first) event's id */
    uint64_t first_sequence; /* its sequence number */
    uint64_t last_sequence;  /* the last event's sequence number */
    uint64_t version;        /* the aggregate's version after it; 0 when the reply does not say
                                (a single append with ANNAL_ANY or ANNAL_EXISTS) */
} annal_appended_t;

typedef struct {
    char *state;               /* JSON text, malloc'd: free it */
    uint64_t version;          /* the last version applied */
    uint64_t events_replayed;  /* events folded */
    uint64_t snapshot_version; /* where the fold started (0: from the beginning) */
} annal_replayed_t;

typedef struct {
    uint64_t head_sequence, aggregates, events, snapshots, uptime_s;
    char store[32];   /* "lmdb" */
    char version[32]; /* annald's version */
} annal_store_status_t;

typedef struct annal_client_t annal_client_t;

/* Connects to annald's command endpoint (e.g. "tcp://127.0.0.1:5555").
   timeout_ms bounds every call (<= 0: 5000). NULL on a bad endpoint. */
ANNAL_EXPORT annal_client_t *annal_client_new(const char *endpoint, int timeout_ms);

/* The same over CURVE (curve NULL: plaintext). A key annald does not admit
   looks like an annald that does not answer: calls end ANNAL_TIMEOUT. */
ANNAL_EXPORT annal_client_t *annal_client_new_curve(const char *endpoint, int timeout_ms,
                                                    const annal_curve_t *curve);
ANNAL_EXPORT void annal_client_destroy(annal_client_t **self);

/* Appends n events (n == 1: single form, n > 1: one atomic batch) after
   checking expected (a version >= 0, ANNAL_ANY or ANNAL_EXISTS). */
ANNAL_EXPORT annal_status_t annal_client_append(annal_client_t *self, const char *aggregate_id,
                                                int64_t expected, const annal_event_spec_t *events,
                                                size_t n, annal_appended_t *out,
                                                annal_result_t *result);

/* Reads up to max events of one aggregate from version from (0: the start,
   or the end when backward). *page is the caller's: annal_page_destroy. */
ANNAL_EXPORT annal_status_t annal_client_read(annal_client_t *self, const char *aggregate_id,
                                              uint64_t from, size_t max, bool backward,
                                              annal_page_t **page, annal_result_t *result);

/* Reads up to max events of the global log from sequence from, optionally
   filtered by aggregate id prefix and event types. */
ANNAL_EXPORT annal_status_t annal_client_read_all(annal_client_t *self, uint64_t from, size_t max,
                                                  const char *prefix, const char *const *types,
                                                  size_t ntypes, annal_page_t **page,
                                                  annal_result_t *result);

ANNAL_EXPORT void annal_page_destroy(annal_page_t **page);

/* Saves a snapshot: state (JSON text) as given, or the default fold when
   NULL; version < 0 means the current version. *version_out: its version. */
ANNAL_EXPORT annal_status_t annal_client_snapshot(annal_client_t *self, const char *aggregate_id,
                                                  const char *state, int64_t version,
                                                  uint64_t *version_out, annal_result_t *result);

/* The latest snapshot; *state is malloc'd JSON text. ANNAL_FAILED, code 20,
   when there is none. */
ANNAL_EXPORT annal_status_t annal_client_get_snapshot(annal_client_t *self,
                                                      const char *aggregate_id, uint64_t *version,
                                                      char **state, annal_result_t *result);

/* Rebuilds state (up to version when >= 0), from the latest snapshot when
   use_snapshot. */
ANNAL_EXPORT annal_status_t annal_client_replay(annal_client_t *self, const char *aggregate_id,
                                                bool use_snapshot, int64_t version,
                                                annal_replayed_t *out, annal_result_t *result);

/* State as of timestamp (RFC 3339); *state is malloc'd JSON text. */
ANNAL_EXPORT annal_status_t annal_client_get_state(annal_client_t *self, const char *aggregate_id,
                                                   const char *timestamp, uint64_t *version,
                                                   char **state, annal_result_t *result);

ANNAL_EXPORT annal_status_t annal_client_status(annal_client_t *self, annal_store_status_t *out,
                                                annal_result_t *result);

/* Deletes aggregate_id (docs/protocol.md, section 7), checking expected as
   an append does (ANNAL_CONFLICT on a mismatch): a $deleted event is
   appended, every earlier event and snapshot removed; hard: no append is
   taken again (code 21). event_id (a UUID, or NULL for a new one) names
   the $deleted event: a delete sent again with it is answered as the
   first, and deletes nothing more. *version and *sequence (when not NULL)
   get the $deleted event's. */
ANNAL_EXPORT annal_status_t annal_client_delete(annal_client_t *self, const char *aggregate_id,
                                                int64_t expected, bool hard, const char *event_id,
                                                uint64_t *version, uint64_t *sequence,
                                                annal_result_t *result);

/* A retention policy: each limit 0 for none. */
typedef struct {
    uint64_t max_count; /* the newest events kept */
    uint64_t max_age_s; /* seconds an event is kept after it was recorded */
} annal_retention_t;

/* Sets aggregate_id's retention policy, replacing the one it had (both
   limits 0: none); what a policy removed stays removed. */
ANNAL_EXPORT annal_status_t annal_client_set_retention(annal_client_t *self,
                                                       const char *aggregate_id,
                                                       const annal_retention_t *policy,
                                                       annal_result_t *result);

/* aggregate_id's retention policy into *out (0s: none). */
ANNAL_EXPORT annal_status_t annal_client_get_retention(annal_client_t *self,
                                                       const char *aggregate_id,
                                                       annal_retention_t *out,
                                                       annal_result_t *result);

/* The last reply received, as JSON text (owned by the client, valid until
   the next call); NULL before any. */
ANNAL_EXPORT const char *annal_client_last_reply(annal_client_t *self);

/* Pipelined appends: send without waiting (*ticket names the request), then
   collect replies with recv (timeout_ms < 0: the client's). Do not mix them
   with synchronous calls on one client: a synchronous call drops replies to
   pipelined requests still outstanding. */
ANNAL_EXPORT annal_status_t annal_client_send_append(annal_client_t *self, const char *aggregate_id,
                                                     int64_t expected,
                                                     const annal_event_spec_t *events, size_t n,
                                                     uint64_t *ticket, annal_result_t *result);
ANNAL_EXPORT annal_status_t annal_client_recv_append(annal_client_t *self, uint64_t *ticket,
                                                     annal_appended_t *out, int timeout_ms,
                                                     annal_result_t *result);

/* Writes a new random UUID (RFC 4122 text, 36 characters and a NUL) into
   out, for an event id chosen before the first try. */
ANNAL_EXPORT void annal_uuid_new(char out[37]);

#ifdef __cplusplus
}
#endif

#endif
