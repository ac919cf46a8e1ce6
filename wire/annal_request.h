/*  annal_request.h: requests in (docs/protocol.md, section 4), JSON or
    MessagePack, decoded into one annal_request_t whatever their encoding.

    Every field rule is checked on decode, so what the broker receives is
    valid: names are checked UTF-8 without control characters, values are
    canonical blobs (annal_value.h) within the depth limit, event ids are
    set (the client's, or new ones). The first rule broken is the error
    text. */
#ifndef ANNAL_REQUEST_H
#define ANNAL_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annal_command.h"
#include "annal_encoding.h"
#include "annal_error.h"
#include "annal_event.h"
#include "annal_limits.h"
#include "annal_value.h"

/* What group_nack does with the events it names. */
typedef enum {
    ANNAL_NACK_RETRY, /* ready again now */
    ANNAL_NACK_PARK,  /* parked, with the reason */
    ANNAL_NACK_SKIP   /* as acked */
} annal_nack_t;

/* A decoded request; every pointer is owned and freed by annal_request_reset. */
typedef struct {
    annal_cmd_t cmd;           /* which command */
    bool has_msg_id;           /* false: in_reply_to is null */
    int64_t msg_id;            /* the request's msg_id */
    char *aggregate_id;        /* validated, NUL-terminated, or NULL */
    annal_expect_t expect;     /* append: kind of version check */
    uint64_t expected_version; /* append: with ANNAL_EXPECT_EXACT */
    bool batch;                /* append: "events" form */
    annal_new_event_t *events; /* append: 1 (single) or more (batch) */
    size_t event_count;        /* entries in events */
    bool has_state;            /* create_snapshot: client state given */
    annal_blob_t state;        /* create_snapshot: the client state */
    bool has_version;          /* create_snapshot, replay: version given */
    uint64_t version;          /* create_snapshot, replay: as of this version */
    bool use_snapshot;         /* replay */
    char *timestamp;           /* get_state: the text as given (echoed) */
    int64_t timestamp_us;      /* get_state: parsed */
    bool has_from;             /* read: from_version given */
    uint64_t from;             /* read: from_version; read_all: from_sequence */
    uint64_t max_count;        /* read, read_all: as asked, before the cap */
    bool backward;             /* read: direction */
    char *prefix;              /* read_all: aggregate id prefix, or NULL */
    size_t prefix_len;         /* read_all: bytes in prefix */
    char **event_types;        /* read_all, group_create: type filter, or NULL */
    size_t event_type_count;   /* read_all, group_create: entries in event_types */
    /* consumer groups (docs/protocol.md, section 6); read_all's fields above
       carry group_create's prefix, event_types and from_sequence (from),
       and group_parked's from_sequence and max_count */
    char *group;             /* group_*: the group's name, validated */
    char *consumer;          /* group_fetch, _ack, _nack: the consumer's name, validated */
    bool from_end;           /* group_create: from_sequence "end" */
    bool unordered;          /* group_create: ordering "none" (else "aggregate") */
    uint32_t ack_timeout_ms; /* group_create: lease length */
    uint32_t max_deliveries; /* group_create: deliveries before parking */
    uint32_t wait_ms;        /* group_fetch: how long to wait for events, 0: not */
    uint64_t *sequences;     /* group_ack, _nack, _replay_parked: the events named */
    size_t sequence_count;   /* entries in sequences */
    bool has_sequences;      /* group_replay_parked: named (else all parked) */
    annal_nack_t action;     /* group_nack */
    char *reason;            /* group_nack: why (parked events keep it), or NULL */
    /* deletion and retention (docs/protocol.md, section 7); delete_aggregate's
       version check is append's (expect, expected_version) */
    bool hard;             /* delete_aggregate: for good (else soft) */
    uint8_t delete_id[16]; /* delete_aggregate: its $deleted event's id (annal's own field) */
    bool has_delete_id;    /* ... given by the client: a retry is answered as the first */
    uint64_t keep_count;   /* set_retention: max_count, 0 for none */
    uint64_t keep_age_s;   /* set_retention: max_age_s, 0 for none */
} annal_request_t;

/* Decodes one request body under limits (NULL: the defaults; max_body is
   the caller's to check). Detects the encoding from the first byte and sets
   *enc (JSON when the body is undecodable). On failure req holds what was
   decoded of msg_id (for in_reply_to), why holds the reason, and the result
   is ANNAL_ERR_MALFORMED or ANNAL_ERR_UNKNOWN_TYPE. Always call
   annal_request_reset afterwards. */
annal_err_t annal_request_decode(const uint8_t *body, size_t size, const annal_limits_t *limits,
                                 annal_request_t *req, annal_encoding_t *enc, char *why,
                                 size_t whylen);

/* What can be known of a body that will not be decoded (over the size
   limit) without reading all of it: its encoding, from the first byte, and
   for MessagePack its top-level msg_id (into req, for in_reply_to). */
annal_encoding_t annal_request_peek(const uint8_t *body, size_t size, annal_request_t *req);

/* Frees what req owns and zeroes it. */
void annal_request_reset(annal_request_t *req);

/* Checks an aggregate id against docs/protocol.md, section 1. Returns NULL when
   valid, else the reason; borrowed, static. */
const char *annal_aggregate_id_check(const char *id, size_t len);

#endif
