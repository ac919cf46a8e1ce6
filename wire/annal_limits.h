/*  annal_limits.h: every named limit of annal, in one place.
    The ones a running annald enforces per request or per client are in
    annal_limits_t, each settable by an annald flag (see annald --help and
    the README's "Limits"); their defaults and ceilings are here. The rest
    are fixed. */
#ifndef ANNAL_LIMITS_H
#define ANNAL_LIMITS_H

#include <stddef.h>

#define ANNAL_MAX_BODY_DEFAULT (1024 * 1024) /* request body bytes (--max-body) */
/* aggregate id bytes: the protocol's ceiling (--max-aggregate-id may only lower it) */
#define ANNAL_MAX_AGGREGATE_ID  256
#define ANNAL_MAX_EVENT_TYPE    256     /* event type bytes (--max-event-type: ceiling) */
#define ANNAL_MAX_BATCH         10000   /* events in one batch append (--max-batch) */
#define ANNAL_MAX_BATCH_CEILING 1000000 /* the most --max-batch may be */
/* nesting of a request body, body = level 1: the ceiling of --max-depth,
   since msgpack-c's reader stops at 32 levels */
#define ANNAL_MAX_DEPTH 32
/* the least --max-depth may be: a batch's event_data sits at level 4 */
#define ANNAL_MIN_DEPTH 5
/* one event_data, metadata or state nests at most max_depth - 4 levels, so
   that a read reply (3 levels above it) stays within max_depth */
#define ANNAL_VALUE_DEPTH_BELOW 4
#define ANNAL_READ_CAP_DEFAULT  10000  /* server cap on max_count (--max-count) */
#define ANNAL_READ_DEFAULT      1000   /* max_count when the request has none */
#define ANNAL_SCAN_CAP          100000 /* records one filtered read_all may examine */
#define ANNAL_MAX_ENVELOPE      16     /* ZeroMQ envelope frames before the body */
#define ANNAL_MAX_EVENT_TYPES   64     /* entries in read_all's event_types filter */
#define ANNAL_GROUP_MAX         1024   /* requests committed together, at most */
/* events committed together, at most (one append may exceed it alone):
   bounds LMDB's dirty pages, which random event ids scatter over the
   event_ids tree */
#define ANNAL_GROUP_EVENTS     8192
#define ANNAL_CHECKPOINT_BYTES (8u << 20) /* journal bytes that make the store checkpoint */
#define ANNAL_CHECKPOINT_MS    1000       /* age of the oldest journal record that does too */
#define ANNAL_ENVELOPE_FRAME   256        /* bytes in one envelope frame (identities) */
#define ANNAL_REPLY_BUDGET     (16 * 1024 * 1024) /* stored bytes of events in one reply */
#define ANNAL_PUB_HWM_DEFAULT  50000 /* events queued per subscriber before PUB drops */
#define ANNAL_CLIENT_HWM       1000  /* requests queued per client connection (--client-hwm) */
#define ANNAL_MAX_CLIENTS      1024  /* client connections at once (--max-clients) */
/* consumer groups (docs/protocol.md, section 6) */
#define ANNAL_ACK_TIMEOUT_DEFAULT    30000   /* ms a lease lasts, unless group_create says */
#define ANNAL_ACK_TIMEOUT_MIN        100     /* the least ack_timeout_ms */
#define ANNAL_ACK_TIMEOUT_MAX        3600000 /* the most ack_timeout_ms */
#define ANNAL_MAX_DELIVERIES_DEFAULT 5       /* deliveries before an event is parked */
#define ANNAL_MAX_DELIVERIES_CEILING 1000    /* the most max_deliveries */
#define ANNAL_FETCH_DEFAULT          100     /* group_fetch's max_count when it has none */
#define ANNAL_WAIT_MAX               30000   /* the longest wait_ms of a group_fetch */
#define ANNAL_MAX_REASON             1024    /* bytes of a group_nack's reason */

/* The limits annald enforces, each an annald flag. */
typedef struct {
    size_t max_body;         /* request body bytes */
    size_t max_aggregate_id; /* aggregate id bytes, 1..ANNAL_MAX_AGGREGATE_ID */
    size_t max_event_type;   /* event type bytes, 1..ANNAL_MAX_EVENT_TYPE */
    size_t max_batch;        /* events in one batch append */
    size_t max_depth;        /* nesting of a request body, ANNAL_MIN_DEPTH..ANNAL_MAX_DEPTH */
    size_t read_cap;         /* server cap on max_count */
    size_t client_hwm;       /* requests (and replies) queued per client connection */
    size_t max_clients;      /* client connections served at once */
} annal_limits_t;

/* The defaults, as a value. */
annal_limits_t annal_limits_default(void);

#endif
