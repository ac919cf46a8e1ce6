/*  annal_body.h: replies, published events and heartbeats, built field by
    field and encoded in the requested encoding at the end (docs/protocol.md,
    sections 1 and 4-5). The caller states each body once and carries the
    encoding as an opaque value; it never branches on it.

    A builder holds at most 16 fields, borrowed until the body is encoded;
    a builder is one thread's. */
#ifndef ANNAL_BODY_H
#define ANNAL_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annal_encoding.h"
#include "annal_error.h"
#include "annal_event.h"

typedef struct annal_body_t annal_body_t;

/* An event a consumer group hands out, or keeps parked: the record, its
   delivery count, and a parked one's reason (docs/protocol.md, section 6). */
typedef struct {
    annal_event_t event; /* the record, borrowed */
    uint32_t delivery;   /* "delivery" */
    const char *reason;  /* "reason" (not NUL-terminated), or NULL for none */
    size_t reason_len;   /* bytes in reason */
} annal_group_event_t;

/* A consumer group as group_info and group_list describe it; borrowed. */
typedef struct {
    const char *group;  /* its name */
    const char *prefix; /* "" for all */
    char *const *types; /* event types, or NULL: "event_types": null */
    size_t ntypes;      /* entries in types */
    bool unordered;     /* "ordering": "none" (else "aggregate") */
    uint32_t ack_timeout_ms;
    uint32_t max_deliveries;
    uint64_t start_sequence;
    uint64_t acked_through; /* the low-water mark */
    uint64_t leased;        /* events leased now */
    uint64_t parked;        /* events parked now */
    uint64_t head_sequence; /* the store's head */
} annal_group_info_t;

/* A new reusable reply builder; NULL out of memory. */
annal_body_t *annal_body_new(void);
void annal_body_destroy(annal_body_t **self);

/* Starts a reply {"type": type, "in_reply_to": msg_id or null}. */
void annal_body_begin(annal_body_t *self, const char *type, bool has_id, int64_t msg_id);
/* Starts a body with no type and no in_reply_to (heartbeats). */
void annal_body_begin_plain(annal_body_t *self);

/* Adds a field; every pointer is borrowed until annal_body_encode. */
void annal_body_str(annal_body_t *self, const char *key, const char *s, size_t len);
void annal_body_null(annal_body_t *self, const char *key);
void annal_body_u64(annal_body_t *self, const char *key, uint64_t v);
void annal_body_int(annal_body_t *self, const char *key, int64_t v);
void annal_body_value(annal_body_t *self, const char *key, const uint8_t *blob, size_t len);
void annal_body_uuid(annal_body_t *self, const char *key, const uint8_t *id);
void annal_body_uuids(annal_body_t *self, const char *key, const uint8_t *ids, size_t n);
void annal_body_events(annal_body_t *self, const char *key, const annal_event_t *events, size_t n);

void annal_body_group_events(annal_body_t *self, const char *key, const annal_group_event_t *events,
                             size_t n);
/* The fields of group_info's reply from "group" on, in place. */
void annal_body_group(annal_body_t *self, const annal_group_info_t *group);
/* An array of objects with those fields (group_list). */
void annal_body_groups(annal_body_t *self, const char *key, const annal_group_info_t *groups,
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

#endif
