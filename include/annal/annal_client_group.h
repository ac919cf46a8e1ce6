/*  annal_client_group.h: consumer groups, from the client side
    (docs/protocol.md, section 6).

    A consumer group is held by annald: it shares the matching events of the
    log among any number of consumers, each event leased to one consumer at
    a time until one acknowledges it. Each call here is one group command on
    an annal_client_t (annal_client_group_fetch is group_fetch), with the
    client's rules: synchronous, errors as values. An unknown group is
    ANNAL_FAILED with code ANNAL_CODE_NOT_FOUND. Every reply is checked for
    its shape before anything is read from it: a reply that lacks a field or
    has one of the wrong type is ANNAL_FAILED with code ANNAL_CODE_INTERNAL,
    and nothing is returned.

    Ownership: a page or a list returned through ** is the caller's, freed
    with its _destroy; the strings in it are borrowed from it.

    The names are the client's (annal_client_group_*), not annal_group_*:
    annald's own group engine uses those. annal_worker.h runs a handler over
    a group on top of these calls. */
#ifndef ANNAL_CLIENT_GROUP_H
#define ANNAL_CLIENT_GROUP_H

#include "annal_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* settings.from_sequence: start at the head at creation + 1 ("end"). */
#define ANNAL_FROM_END UINT64_MAX

typedef enum {
    ANNAL_ORDERING_AGGREGATE = 0, /* one event of an aggregate at a time, in version order */
    ANNAL_ORDERING_NONE = 1       /* any ready event */
} annal_ordering_t;

/* What a nack does with the events it names. */
typedef enum {
    ANNAL_ACTION_RETRY = 0, /* ready again now (it uses up a delivery) */
    ANNAL_ACTION_PARK = 1,  /* set aside with the reason, for group_parked and a replay */
    ANNAL_ACTION_SKIP = 2   /* as acked */
} annal_nack_action_t;

/* A group's settings, fixed at creation. Zero values are annald's defaults:
   a {0} struct (or NULL) is every event from sequence 1, by aggregate. */
typedef struct {
    const char *prefix;             /* aggregate id prefix; NULL or "": every aggregate */
    const char *const *event_types; /* ntypes event types; NULL or 0: every type */
    size_t ntypes;                  /* entries in event_types (at most 64) */
    uint64_t from_sequence;         /* the group's start (0: 1), or ANNAL_FROM_END */
    annal_ordering_t ordering;      /* default ANNAL_ORDERING_AGGREGATE */
    uint32_t ack_timeout_ms;        /* a lease's length, 100..3600000 (0: 30000) */
    uint32_t max_deliveries;        /* deliveries before parking, 1..1000 (0: 5) */
} annal_client_group_settings_t;

/* An event as a group hands it out (or keeps it parked). */
typedef struct {
    annal_record_t record; /* the event; record.json has "delivery" (and "reason") too */
    uint32_t delivery;     /* how many times it has been handed out, this one included */
    const char *reason;    /* parked events: why; NULL in a fetch */
} annal_client_group_event_t;

/* Events of a fetch or of group_parked. */
typedef struct {
    annal_client_group_event_t *events; /* count events, lowest sequence first */
    size_t count;
    uint64_t head_sequence; /* fetch: the store's head when annald answered */
    uint64_t next_sequence; /* parked: where the next page starts; 0 at the end */
    void *internal;         /* owns the strings */
} annal_client_group_page_t;

/* A group as group_info and group_list describe it. */
typedef struct {
    const char *group;              /* its name */
    const char *prefix;             /* "" for every aggregate */
    const char *const *event_types; /* ntypes types, or NULL (and 0) for every type */
    size_t ntypes;
    annal_ordering_t ordering;
    uint32_t ack_timeout_ms;
    uint32_t max_deliveries;
    uint64_t start_sequence; /* its first sequence */
    uint64_t acked_through;  /* every group event up to it is acked or parked */
    uint64_t leased;         /* events leased now */
    uint64_t parked;         /* events parked now */
    uint64_t head_sequence;  /* the store's head */
    uint64_t lag;            /* head_sequence - acked_through: how far behind it is */
    const char *json;        /* the group as annald described it, as JSON text (for
                                group_info, its whole reply) */
} annal_client_group_info_t;

/* Groups, from group_info (one) or group_list (all, by name). */
typedef struct {
    annal_client_group_info_t *groups; /* count groups */
    size_t count;
    void *internal; /* owns the strings */
} annal_client_group_list_t;

/* Creates a group (settings NULL: the defaults). Creating one that exists
   with the same settings succeeds again (a service may create its group at
   every start); with other settings it is ANNAL_FAILED, code 12.
   *start_sequence (when not NULL): the group's first sequence. */
ANNAL_EXPORT annal_status_t annal_client_group_create(annal_client_t *self, const char *group,
                                                      const annal_client_group_settings_t *settings,
                                                      uint64_t *start_sequence,
                                                      annal_result_t *result);

/* Leases up to max_count ready events (0: annald's default, 100) to
   consumer. With none ready it waits up to wait_ms (0..30000) for some:
   the call then waits wait_ms plus the client's timeout for the reply. An
   empty page is no error. *page is the caller's: annal_client_group_page_destroy.
   A fetch that ends ANNAL_TIMEOUT may have leased events that never
   arrived: they are ready again when their lease ends. */
ANNAL_EXPORT annal_status_t annal_client_group_fetch(annal_client_t *self, const char *group,
                                                     const char *consumer, size_t max_count,
                                                     int wait_ms, annal_client_group_page_t **page,
                                                     annal_result_t *result);

/* Acknowledges n events leased to consumer (at most annald's --max-batch,
   10,000 by default). *acked (when
   not NULL): how many counted; events not leased to consumer (acked, parked,
   leased to another since) are ignored, so an ack may be sent again after
   ANNAL_TIMEOUT. */
ANNAL_EXPORT annal_status_t annal_client_group_ack(annal_client_t *self, const char *group,
                                                   const char *consumer, const uint64_t *sequences,
                                                   size_t n, size_t *acked, annal_result_t *result);

/* Gives n leased events back: retry, park (with reason) or skip. reason:
   text of at most 1024 bytes, or NULL. *count: how many counted. */
ANNAL_EXPORT annal_status_t annal_client_group_nack(annal_client_t *self, const char *group,
                                                    const char *consumer, const uint64_t *sequences,
                                                    size_t n, annal_nack_action_t action,
                                                    const char *reason, size_t *count,
                                                    annal_result_t *result);

/* One group's settings and counters (a list of one). */
ANNAL_EXPORT annal_status_t annal_client_group_info(annal_client_t *self, const char *group,
                                                    annal_client_group_list_t **info,
                                                    annal_result_t *result);

/* Every group. */
ANNAL_EXPORT annal_status_t annal_client_group_list(annal_client_t *self,
                                                    annal_client_group_list_t **list,
                                                    annal_result_t *result);

/* Deletes a group; a group created again with its name starts afresh. */
ANNAL_EXPORT annal_status_t annal_client_group_delete(annal_client_t *self, const char *group,
                                                      annal_result_t *result);

/* Up to max_count parked events (0: annald's default) from sequence from
   (0: the first); page->next_sequence is where the next page starts. */
ANNAL_EXPORT annal_status_t annal_client_group_parked(annal_client_t *self, const char *group,
                                                      uint64_t from, size_t max_count,
                                                      annal_client_group_page_t **page,
                                                      annal_result_t *result);

/* Makes parked events ready again, their delivery count back to 0: the n
   sequences named, or every parked event when sequences is NULL. *count:
   how many were parked and are ready now. */
ANNAL_EXPORT annal_status_t annal_client_group_replay_parked(annal_client_t *self,
                                                             const char *group,
                                                             const uint64_t *sequences, size_t n,
                                                             size_t *count, annal_result_t *result);

ANNAL_EXPORT void annal_client_group_page_destroy(annal_client_group_page_t **page);
ANNAL_EXPORT void annal_client_group_list_destroy(annal_client_group_list_t **list);

#ifdef __cplusplus
}
#endif

#endif
