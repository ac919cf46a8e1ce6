/*  annal_worker.h: a consumer of a consumer group, with the bookkeeping
    done: it fetches (a long poll), hands each event to a handler, and
    acknowledges or gives back each event according to what the handler
    says. Run any number of workers, in threads or processes, on one group:
    annald shares the events among them (docs/protocol.md, section 6).

    What the handler returns decides the event's fate:
      ANNAL_WORKER_OK         done: acked (acks are batched, never sent
                              before the handler returned)
      ANNAL_WORKER_TRANSIENT  failed, may work later: nack retry, ready again
                              at once for any worker (it uses up a delivery;
                              after max_deliveries annald parks it)
      ANNAL_WORKER_PERMANENT  will never work: nack park, with the reason the
                              handler wrote, kept for group_parked and replay

    Delivery is at least once: an event whose handler returned OK is handed
    out again only when its ack could not reach annald before the lease
    ended (a worker killed, annald away), so a handler should be idempotent.
    While annald is away (no answer, error 11) the worker reconnects and
    tries again, backing off, and sends what it owes (acks, nacks) once
    annald answers; it never acks an event that was not handled. */
#ifndef ANNAL_WORKER_H
#define ANNAL_WORKER_H

#include "annal_client_group.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ANNAL_WORKER_OK = 0,        /* handled: ack */
    ANNAL_WORKER_TRANSIENT = 1, /* failed for now: nack retry */
    ANNAL_WORKER_PERMANENT = 2  /* can never succeed: nack park with the reason */
} annal_worker_verdict_t;

/* Called once per event handed to this worker, in the order fetched (with
   ordering by aggregate, an aggregate's events in version order across all
   workers). reason (reason_size bytes, empty on entry) is where a failing
   handler says why; a PERMANENT event is parked with it. The event and its
   strings are valid during the call only. */
typedef annal_worker_verdict_t (*annal_worker_fn)(const annal_client_group_event_t *event,
                                                  char *reason, size_t reason_size, void *arg);

/* Called after annald confirmed an ack of n events (for a checkpoint, a
   metric, a test); sequences are valid during the call only. */
typedef void (*annal_worker_acked_fn)(const uint64_t *sequences, size_t n, void *arg);

typedef struct {
    const char *commands;           /* annald's command endpoint */
    const annal_curve_t *curve;     /* CURVE keys, or NULL (copied) */
    int timeout_ms;                 /* per request, on top of a fetch's wait (<= 0: 5000) */
    const char *group;              /* the group; it must exist (annal_client_group_create) */
    const char *consumer;           /* this worker's name: unique among the group's workers */
    size_t max_count;               /* events per fetch, at most 10,000 (0: 16) */
    int wait_ms;                    /* how long a fetch waits for events, up to 30000 (<= 0:
                                       1000); a stop while idle takes up to this long */
    int ack_delay_ms;               /* the longest an ack is held back to batch it (<= 0:
                                       100); acks also go at the end of each fetched batch */
    annal_worker_acked_fn on_acked; /* or NULL */
} annal_worker_config_t;

typedef struct annal_worker_t annal_worker_t;

/* A new worker (not connected until run); NULL on bad settings (no
   endpoint, group or consumer, names that break the aggregate id rules, no
   handler, a wait or a max_count out of range). Strings are copied. */
ANNAL_EXPORT annal_worker_t *annal_worker_new(const annal_worker_config_t *config,
                                              annal_worker_fn handler, void *arg);
ANNAL_EXPORT void annal_worker_destroy(annal_worker_t **self);

/* Fetches and handles events until stopped or, when count > 0, until count
   more events were handled (it never fetches more than that), and returns
   ANNAL_SUCCESS then, once what it holds is settled: the acks owed are
   sent, the events fetched but not handled are nacked retry. While annald
   is away it keeps trying. It returns ANNAL_FAILED (result says why) when
   annald refuses the group (an unknown group: code 20), and ANNAL_TIMEOUT
   when a stop came while annald was away and some acks or nacks could not
   be sent in the client's timeout (those events come back to the group
   when their leases end). */
ANNAL_EXPORT annal_status_t annal_worker_run(annal_worker_t *self, uint64_t count,
                                             annal_result_t *result);

/* Asks run to finish: the handler running now completes, nothing more is
   handed out, and run settles what it holds and returns. Safe from a
   signal handler or another thread; every later run returns at once. */
ANNAL_EXPORT void annal_worker_stop(annal_worker_t *self);

typedef struct {
    uint64_t fetches;    /* group_fetch requests answered */
    uint64_t fetched;    /* events received */
    uint64_t handled;    /* handler calls */
    uint64_t acked;      /* events in acks annald confirmed */
    uint64_t retried;    /* events the handler called TRANSIENT (given back: nack retry) */
    uint64_t parked;     /* events the handler called PERMANENT (nack park) */
    uint64_t given_back; /* events nacked retry without a handler call: a stop, or a lease
                            that ran out before the handler got to it */
    uint64_t reconnects; /* times annald did not answer and the connection was made anew */
} annal_worker_stats_t;

/* Counters, for monitoring; read them from the thread that runs the worker
   (or after run returned). */
ANNAL_EXPORT void annal_worker_stats(const annal_worker_t *self, annal_worker_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
