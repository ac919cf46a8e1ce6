/*  annal_limits.h: every named limit of annal, in one place.
    Each default can be overridden where its consumer takes a setting
    (annald flags, store options); the protocol rules (PROTOCOL.md section 1)
    are fixed. */
#ifndef ANNAL_LIMITS_H
#define ANNAL_LIMITS_H

#define ANNAL_MAX_BODY_DEFAULT   (1024 * 1024) /* request body bytes (--max-body) */
#define ANNAL_MAX_AGGREGATE_ID   256    /* aggregate id bytes (protocol rule) */
#define ANNAL_MAX_EVENT_TYPE     256    /* event type bytes */
#define ANNAL_MAX_BATCH          10000  /* events in one batch append */
#define ANNAL_MAX_DEPTH          32     /* nesting of a request body, body = level 1 */
#define ANNAL_MAX_VALUE_DEPTH    28     /* nesting of one event_data, metadata or state, so
                                           that a read reply (3 levels above it) stays within
                                           ANNAL_MAX_DEPTH and every MessagePack reader copes */
#define ANNAL_READ_CAP_DEFAULT   10000  /* server cap on max_count */
#define ANNAL_READ_DEFAULT       1000   /* max_count when the request has none */
#define ANNAL_SCAN_CAP           100000 /* records one filtered read_all may examine */
#define ANNAL_MAX_ENVELOPE       16     /* ZeroMQ envelope frames before the body */
#define ANNAL_MAX_EVENT_TYPES    64     /* entries in read_all's event_types filter */
#define ANNAL_GROUP_MAX          1024   /* requests committed together, at most */
#define ANNAL_GROUP_EVENTS       8192   /* events committed together, at most (one append may
                                           exceed it alone): bounds LMDB's dirty pages, which
                                           random event ids scatter over the event_ids tree */
#define ANNAL_CHECKPOINT_BYTES   (8u << 20) /* journal bytes that make the store checkpoint */
#define ANNAL_CHECKPOINT_MS      1000   /* age of the oldest journal record that does too */
#define ANNAL_ENVELOPE_FRAME     256    /* bytes in one envelope frame (identities) */
#define ANNAL_REPLY_BUDGET       (16 * 1024 * 1024) /* stored bytes of events in one reply */
#define ANNAL_PUB_HWM_DEFAULT    50000  /* events queued per subscriber before PUB drops */
#define ANNAL_CLIENT_HWM         1000   /* requests queued per client connection */

#endif
