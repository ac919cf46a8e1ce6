/*  annal_group.h: the engine of one consumer group (docs/protocol.md,
    section 6): which of the group's events are ready, leased, acked or
    parked, and which may be leased next.

    The engine is memory only and knows no store: the broker feeds it the
    group's events as it scans them (read_all with the group's filters, in
    sequence order), asks it what to lease, and tells it what became
    durable (acks, parks). It is written to be driven in two steps where a
    change must be durable first: annal_group_counts says whether an ack or
    a nack counts, the broker writes the marks, then annal_group_mark
    applies them. Leases need no store (they are lost at a restart, as the
    protocol says), so annal_group_fetch takes them at once.

    Invariants (checked by annal_group_check, in the tests):
    1. The window holds the fed events from the first one not done (acked
       or parked) on, in sequence order, each once.
    2. acked_through is the sequence before the first event not done, or
       the scan position - 1 when every fed event is done; never below
       start - 1.
    3. With ordering by aggregate, at most one event of an aggregate is
       leased at a time, and a fetch leases only the aggregate's first
       event not done (a replayed parked event may be an earlier one than
       a lease already out: it waits for that lease to end).
    4. An event is leased at most max_deliveries times; its lease of the
       last delivery ends in a park, never in ready. */
#ifndef ANNAL_GROUP_H
#define ANNAL_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct annal_group_t annal_group_t;

/* An event's state in its group. */
typedef enum {
    ANNAL_GROUP_READY,  /* may be leased (when its aggregate lets it) */
    ANNAL_GROUP_LEASED, /* handed to a consumer until a deadline */
    ANNAL_GROUP_ACKED,  /* done (acked or skipped) */
    ANNAL_GROUP_PARKED  /* given up on, kept for inspection and replay */
} annal_group_state_t;

/* One event handed out by a fetch. */
typedef struct {
    uint64_t sequence; /* the event */
    uint32_t delivery; /* its delivery, 1 the first time */
} annal_group_lease_t;

/* A new group whose events start at start. NULL out of memory. */
annal_group_t *annal_group_new(uint64_t start, bool by_aggregate, uint32_t ack_timeout_ms,
                               uint32_t max_deliveries);
void annal_group_destroy(annal_group_t **self);

/* Feeds the next matching event: its sequence must be past every one fed
   before and the scan position. 0, or -1 out of memory or out of order. */
int annal_group_feed(annal_group_t *self, uint64_t sequence, const char *aggregate, size_t len);

/* Every event below next has been fed, when it matched: where the next
   scan starts. It never moves back. */
void annal_group_scanned(annal_group_t *self, uint64_t next);
uint64_t annal_group_scan_position(const annal_group_t *self);

/* Ends the leases whose deadline is at or before now. Those on their last
   delivery stay leased and go into to_park (up to cap; returns how many
   there are), for the broker to park durably (annal_group_mark); the
   others are ready again. */
size_t annal_group_expire(annal_group_t *self, int64_t now, uint64_t *to_park, size_t cap);

/* Leases up to max ready events, lowest sequence first, to consumer until
   now + ack_timeout_ms, into out. Returns how many. Call annal_group_expire
   first. */
size_t annal_group_fetch(annal_group_t *self, const char *consumer, int64_t now, size_t max,
                         annal_group_lease_t *out);

/* Whether an ack or a nack of sequence by consumer counts: the event is
   leased to consumer, or ready because consumer's lease of it ended and
   nobody leased it since. */
bool annal_group_counts(const annal_group_t *self, const char *consumer, uint64_t sequence);

/* Sets the state of a fed event: ACKED or PARKED (once durable), READY (a
   nack retry: the lease ends now). 0, or -1 when sequence is not in the
   window. */
int annal_group_mark(annal_group_t *self, uint64_t sequence, annal_group_state_t state);

/* Puts back a lease taken through another broker (a store several brokers
   share: annal_store.h, group_leases): fed event sequence, not done, is
   leased to consumer until deadline, for its delivery-th time. A deadline
   at or before now makes a lease that has ended: the next annal_group_expire
   ends it (ready again, or to park on its last delivery). 0, or -1 when
   sequence is not in the window or is done, delivery is 0, or out of
   memory. */
int annal_group_restore(annal_group_t *self, uint64_t sequence, const char *consumer,
                        int64_t deadline, uint32_t delivery);

/* Takes every fed event of aggregate (len bytes) below sequence before
   that is not done as acked: their events were removed (docs/protocol.md,
   section 7: "as if acked"). Returns how many. */
size_t annal_group_forget(annal_group_t *self, const char *aggregate, size_t len, uint64_t before);

/* Whether sequence has had all its deliveries: a nack retry of it parks it
   instead ("max deliveries"). */
bool annal_group_spent(const annal_group_t *self, uint64_t sequence);

/* A parked event made ready again (group_replay_parked), its delivery count
   back to 0, wherever it is: in the window, or below acked_through (then
   acked_through moves back before it). 0, or -1 out of memory. */
int annal_group_replay(annal_group_t *self, uint64_t sequence, const char *aggregate, size_t len);

/* The state and delivery count of a fed event; false when it is not in the
   window (done and dropped, or never fed). */
bool annal_group_state(const annal_group_t *self, uint64_t sequence, annal_group_state_t *state,
                       uint32_t *delivery);

uint64_t annal_group_acked_through(const annal_group_t *self);
size_t annal_group_leased(const annal_group_t *self);
/* Events in the window that are not done (ready or leased). */
size_t annal_group_pending(const annal_group_t *self);
/* The earliest lease deadline, or INT64_MAX when nothing is leased. */
int64_t annal_group_next_deadline(const annal_group_t *self);

/* Checks the invariants above; 0, or -1 with the first one broken in why. */
int annal_group_check(const annal_group_t *self, char *why, size_t whylen);

#endif
