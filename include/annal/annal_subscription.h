/*  annal_subscription.h: catch-up subscriptions.

    A subscription delivers every committed event whose aggregate id starts
    with a prefix, from a sequence number on, exactly once and in sequence
    order, to a handler: history through read_all, then the live PUB stream.
    ZeroMQ PUB drops silently (a slow subscriber past its high-water mark, a
    reconnect, a late join); the subscription notices from the sequence
    numbers and the $head heartbeat and fetches what it missed with
    read_all. It rides out annald restarts by itself.

    position is the next sequence number to consider: every matching event
    before it has been delivered. Save it (annal_checkpoint_save, or in the
    projection's own transaction) and start from it again after a restart. */
#ifndef ANNAL_SUBSCRIPTION_H
#define ANNAL_SUBSCRIPTION_H

#include "annal_client.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANNAL_FROM_NOW 0 /* config.from: only events committed after the start */

typedef struct {
    const char *commands;       /* annald's command endpoint */
    const char *events;         /* annald's event endpoint */
    const char *prefix;         /* aggregate id prefix; NULL or "" for every event */
    uint64_t from;              /* first sequence to deliver (1: all history), or ANNAL_FROM_NOW */
    int timeout_ms;             /* per request (<= 0: 5000) */
    int rcvhwm;                 /* live messages buffered before ZeroMQ drops (<= 0: 10000) */
    const annal_curve_t *curve; /* CURVE keys for both sockets, or NULL (copied) */
} annal_subscription_config_t;

/* Called once per event, in sequence order. Return 0 to go on, > 0 to stop
   after this event, < 0 to stop without it (the position stays on it). */
typedef int (*annal_handler_fn)(const annal_record_t *record, void *arg);

typedef struct annal_subscription_t annal_subscription_t;

ANNAL_EXPORT annal_subscription_t *annal_subscription_new(const annal_subscription_config_t *config,
                                                          annal_handler_fn handler, void *arg);
ANNAL_EXPORT void annal_subscription_destroy(annal_subscription_t **self);

/* Delivers events until stopped, the handler says stop, or duration_ms
   passes (< 0: no limit), and returns ANNAL_SUCCESS then. While annald is
   away it keeps trying. It returns ANNAL_FAILED (result says why) when the
   handler refused an event, when annald refuses the subscription (a prefix
   that is not valid: error 12), and when the store's head is behind the
   position (annald now serves another or a restored store: continuing
   would skip events silently). */
ANNAL_EXPORT annal_status_t annal_subscription_run(annal_subscription_t *self, int duration_ms,
                                                   annal_result_t *result);

/* Asks run to return soon, and every later run at once; safe from a signal
   handler or another thread. */
ANNAL_EXPORT void annal_subscription_stop(annal_subscription_t *self);

/* The next sequence number to consider. */
ANNAL_EXPORT uint64_t annal_subscription_position(const annal_subscription_t *self);

typedef struct {
    uint64_t live;  /* events delivered from the PUB stream */
    uint64_t read;  /* events delivered from read_all (history, or recovered) */
    uint64_t reads; /* read_all requests made */
} annal_subscription_stats_t;

/* Counters, for monitoring: a subscriber that keeps falling back on reads
   is too slow for the live stream. */
ANNAL_EXPORT void annal_subscription_stats(const annal_subscription_t *self,
                                           annal_subscription_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
