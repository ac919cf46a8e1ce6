/*  annal_codec.h: the codec, the only place that knows JSON and MessagePack.

    Requests (docs/protocol.md, section 4) are decoded into one annal_request_t,
    whatever their encoding; replies, published events and heartbeats are
    built field by field with annal_body_t and encoded in the requested
    encoding at the end. The caller carries the encoding as an opaque value
    and never branches on it. */
#ifndef ANNAL_CODEC_H
#define ANNAL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annal_error.h"
#include "annal_event.h"
#include "annal_limits.h"
#include "annal_value.h"

typedef enum { ANNAL_ENC_JSON = 0, ANNAL_ENC_MSGPACK = 1 } annal_encoding_t;

typedef enum {
    ANNAL_CMD_APPEND,
    ANNAL_CMD_CREATE_SNAPSHOT,
    ANNAL_CMD_GET_SNAPSHOT,
    ANNAL_CMD_REPLAY,
    ANNAL_CMD_GET_STATE,
    ANNAL_CMD_READ,
    ANNAL_CMD_READ_ALL,
    ANNAL_CMD_STATUS,
    ANNAL_CMD_INIT,
    ANNAL_CMD_COUNT
} annal_cmd_t;

/* A decoded request; every pointer is owned and freed by annal_request_reset. */
typedef struct {
    annal_cmd_t cmd;          /* which command */
    bool has_msg_id;          /* false: in_reply_to is null */
    int64_t msg_id;           /* the request's msg_id */
    char *aggregate_id;       /* validated, NUL-terminated, or NULL */
    annal_expect_t expect;    /* append: kind of version check */
    uint64_t expected_version; /* append: with ANNAL_EXPECT_EXACT */
    bool batch;               /* append: "events" form */
    annal_new_event_t *events; /* append: 1 (single) or more (batch) */
    size_t event_count;       /* entries in events */
    bool has_state;           /* create_snapshot: client state given */
    annal_blob_t state;       /* create_snapshot: the client state */
    bool has_version;         /* create_snapshot, replay: version given */
    uint64_t version;         /* create_snapshot, replay: as of this version */
    bool use_snapshot;        /* replay */
    char *timestamp;          /* get_state: the text as given (echoed) */
    int64_t timestamp_us;     /* get_state: parsed */
    bool has_from;            /* read: from_version given */
    uint64_t from;            /* read: from_version; read_all: from_sequence */
    uint64_t max_count;       /* read, read_all: as asked, before the cap */
    bool backward;            /* read: direction */
    char *prefix;             /* read_all: aggregate id prefix, or NULL */
    size_t prefix_len;        /* read_all: bytes in prefix */
    char **event_types;       /* read_all: type filter, or NULL */
    size_t event_type_count;  /* read_all: entries in event_types */
} annal_request_t;

/* A new event id: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds then
   74 random bits (arc4random). Ids made in sequence order sort together,
   so the store's id index grows at its end instead of at random pages. */
void annal_event_id_new(uint8_t id[16]);

/* The name of cmd as it appears in "type"; borrowed, static. */
const char *annal_cmd_name(annal_cmd_t cmd);

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

/* --- replies, events and heartbeats ------------------------------------------ */

typedef struct annal_body_t annal_body_t;

/* A new reusable reply builder; NULL out of memory. */
annal_body_t *annal_body_new(void);
void annal_body_destroy(annal_body_t **self);

/* Starts a reply {"type": type, "in_reply_to": msg_id or null}. */
void annal_body_begin(annal_body_t *self, const char *type, bool has_id, int64_t msg_id);
/* Starts a body with no type and no in_reply_to (heartbeats). */
void annal_body_begin_plain(annal_body_t *self);

/* Adds a field; every pointer is borrowed until annal_body_encode. */
void annal_body_str(annal_body_t *self, const char *key, const char *s, size_t len);
void annal_body_u64(annal_body_t *self, const char *key, uint64_t v);
void annal_body_int(annal_body_t *self, const char *key, int64_t v);
void annal_body_value(annal_body_t *self, const char *key, const uint8_t *blob, size_t len);
void annal_body_uuid(annal_body_t *self, const char *key, const uint8_t *id);
void annal_body_uuids(annal_body_t *self, const char *key, const uint8_t *ids, size_t n);
void annal_body_events(annal_body_t *self, const char *key, const annal_event_t *events,
                        size_t n);

void annal_body_bool(annal_body_t *self, const char *key, bool v);
void annal_body_strs(annal_body_t *self, const char *key, const char *const *strs, size_t n);
/* Events to append: [{"event_type", "event_data", "metadata", "event_id"}]. */
void annal_body_new_events(annal_body_t *self, const char *key, const annal_new_event_t *events,
                           size_t n);

/* A complete error reply (docs/protocol.md, section 5) for err with text. */
void annal_body_error(annal_body_t *self, bool has_id, int64_t msg_id, annal_err_t err,
                       const char *text);

/* Encodes the built body in enc into a new buffer (caller frees).
   Returns 0, or -1 out of memory or when a stored value is damaged. */
int annal_body_encode(annal_body_t *self, annal_encoding_t enc, uint8_t **out, size_t *len);

/* Like annal_body_encode, into memory of self's (for one thread that sends
   many messages): *out stays valid until the next call on self.
   annal_body_event_view encodes one event record as published (docs/protocol.md,
   section 1). */
int annal_body_view(annal_body_t *self, annal_encoding_t enc, const uint8_t **out, size_t *len);
int annal_body_event_view(annal_body_t *self, const annal_event_t *ev, annal_encoding_t enc,
                          const uint8_t **out, size_t *len);

/* --- reading replies and events (client side) --------------------------------- */

typedef struct annal_msg_t annal_msg_t;

/* Decodes a body in either encoding; NULL when it is not a JSON object or a
   MessagePack map (or is nested past 64 levels). */
annal_msg_t *annal_msg_decode(const uint8_t *data, size_t size);

/* Frees the message and everything read from it; safe twice. */
void annal_msg_destroy(annal_msg_t **self);

/* Field key as a string (NUL-terminated, owned by the message); NULL when
   absent or not a string. */
const char *annal_msg_str(annal_msg_t *self, const char *key);

/* Field key as an integer; false when absent or not an integer. */
bool annal_msg_int(const annal_msg_t *self, const char *key, int64_t *value);

/* Field key (or the whole message when key is NULL) as compact JSON text,
   owned by the message; NULL when absent. */
const char *annal_msg_json(annal_msg_t *self, const char *key);

/* Entries of array field key (0 when absent or not an array). */
size_t annal_msg_len(const annal_msg_t *self, const char *key);

/* Entry i of array field key as a message (owned by self); NULL when it is
   not a map. */
annal_msg_t *annal_msg_item(annal_msg_t *self, const char *key, size_t i);

/* Entry i of array field key as a string (owned by self), or NULL. */
const char *annal_msg_str_item(annal_msg_t *self, const char *key, size_t i);

/* Parses JSON text (any value) into a canonical blob. Returns 0, or -1 with
   a reason. */
int annal_value_from_json_text(const char *text, size_t len, annal_blob_t *out, char *why,
                               size_t whylen);

/* A canonical blob as compact JSON text; caller frees; NULL when damaged. */
char *annal_value_to_json_text(const uint8_t *data, size_t size);

#endif
