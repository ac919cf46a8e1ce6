/*  annal_store.h: the storage interface of annal.

    A store is a backend (LMDB or PostgreSQL) behind a table of
    operations. The broker drives it in batches: begin, any number of
    operations, commit. Every write of a batch becomes durable together at
    commit (group commit); nothing of a batch is visible to other processes
    before it. Reads inside a batch see the batch's own writes.

    Invariants every backend keeps:
    1. Sequence numbers are 1, 2, 3 ... dense and increase in commit order.
    2. Versions of an aggregate are 1, 2, 3 ... dense.
    3. An event is immutable; an event_id names one event of one aggregate.
    4. recorded_at never decreases along the sequence.
    5. After commit returns OK the batch is on disk (fsync'd); after
       ANNAL_ERR_UNAVAILABLE from commit it may be there or not (a retry
       with the same event ids settles it); after any other failure nothing
       of the batch is (ANNAL_ERR_NO_SPACE: the disk is full; the store
       goes on serving reads, and takes writes again once space returns;
       ANNAL_ERR_REFUSED: the batch's writes failed before its commit, such
       as on a lock timeout).

    Event views (annal_event_t) returned by reads borrow the store's memory
    and stay valid until the next store call.

    A store is used by one thread at a time, and once a batch has written,
    by that thread only, up to and including close: a backend may keep
    state tied to the thread between batches (LMDB: its write lock). */
#ifndef ANNAL_STORE_H
#define ANNAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annal_event.h"
#include "annal_error.h"

typedef struct {
    size_t initial_map_size; /* LMDB: first map size in bytes (0: 64 MiB); it grows by itself */
} annal_store_options_t;

typedef struct {
    bool duplicate;          /* an identical earlier append: nothing written */
    uint64_t first_sequence; /* sequence of the first event */
    uint64_t last_sequence;  /* sequence of the last event */
    uint64_t version;        /* aggregate version after the last event */
    uint64_t actual_version; /* with ANNAL_ERR_CONFLICT: the version found */
    int64_t recorded_at;     /* commit time given to new events */
} annal_append_result_t;

typedef struct {
    uint64_t version;     /* the aggregate version the state is as of */
    bool folded;          /* the default fold (false: a client's state) */
    const uint8_t *state; /* canonical value, borrowed */
    size_t len;           /* bytes in state */
} annal_snapshot_t;

typedef struct {
    uint64_t head_sequence; /* last committed sequence number */
    uint64_t aggregates;    /* aggregates with at least one event */
    uint64_t events;        /* events stored */
    uint64_t snapshots;     /* snapshots stored */
} annal_store_stats_t;

/* One append a batch will make: its aggregate and events. */
typedef struct {
    const char *agg;
    const annal_new_event_t *events;
    size_t n;
} annal_append_hint_t;

/* A stored event, with what idempotency keeps of the append it came in
   (for moving a store: annal migrate). */
typedef struct {
    annal_event_t event;
    uint32_t append_size;  /* events in that append */
    uint32_t append_index; /* this event's place in it (0: the first) */
} annal_stored_t;

/* Where a store's dump goes: every event in sequence order, then every
   snapshot (of aggregate agg, alen bytes). An error stops the dump. */
typedef struct {
    void *arg;
    annal_err_t (*event)(void *arg, const annal_stored_t *rec, char *why, size_t whylen);
    annal_err_t (*snapshot)(void *arg, const char *agg, size_t alen, const annal_snapshot_t *snap,
                            char *why, size_t whylen);
} annal_sink_t;

/* A growable list of event views, reused across calls. */
typedef struct {
    annal_event_t *items; /* views, borrowed from the store */
    size_t count;         /* entries in use */
    size_t cap;           /* entries allocated */
} annal_event_list_t;

/* --- consumer groups (docs/protocol.md, section 6): their durable state.
   The broker's engine (broker/annal_group.h) decides what is ready, leased,
   acked or parked; the store keeps the group's settings, its floor and the
   marks above it, so that acks and parks outlive annald. */

/* A group as stored: its settings, fixed at creation, and its floor. */
typedef struct {
    const char *name;        /* the group */
    const char *prefix;      /* aggregate id prefix, "" for every aggregate */
    char *const *types;      /* event types, or NULL (ntypes 0) for every type */
    size_t ntypes;           /* entries in types */
    uint64_t start;          /* start_sequence */
    bool unordered;          /* ordering "none" (else "aggregate") */
    bool from_end;           /* created with from_sequence "end" (start: the head then + 1) */
    uint32_t ack_timeout_ms; /* lease length */
    uint32_t max_deliveries; /* deliveries before parking */
    uint64_t floor;          /* every group event up to it is acked or parked, but those
                                marked ANNAL_MARK_READY */
} annal_group_def_t;

/* What a mark says of one group event. */
typedef enum {
    ANNAL_MARK_ACKED = 1,  /* acked or skipped (above the floor only) */
    ANNAL_MARK_PARKED = 2, /* parked, with its delivery count and reason */
    ANNAL_MARK_READY = 3   /* a parked event at or below the floor, replayed: ready again */
} annal_mark_t;

/* One mark; reason is borrowed (not NUL-terminated). */
typedef struct {
    uint64_t sequence;  /* the event */
    annal_mark_t mark;  /* what it says */
    uint32_t delivery;  /* parked: the deliveries it had */
    const char *reason; /* parked: why, or NULL */
    size_t reason_len;  /* bytes in reason */
} annal_group_mark_t;

/* A growable list of marks, reused across calls; reasons borrowed from the
   store until its next call. */
typedef struct {
    annal_group_mark_t *items; /* marks, in sequence order */
    size_t count;              /* entries in use */
    size_t cap;                /* entries allocated */
} annal_mark_list_t;

/* A lease of a group shared by several brokers (group_lease, group_leases);
   consumer is borrowed. */
typedef struct {
    uint64_t sequence;    /* the event */
    const char *consumer; /* leased to, or the last one it was leased to */
    int64_t deadline;     /* when it ends, in wall-clock microseconds; 0: it has ended */
    uint32_t delivery;    /* its delivery */
} annal_lease_t;

/* A growable list of leases, reused across calls. */
typedef struct {
    annal_lease_t *items; /* leases, in sequence order */
    size_t count;         /* entries in use */
    size_t cap;           /* entries allocated */
} annal_lease_list_t;

/* What the sweep says is left to do. */
typedef enum {
    ANNAL_SWEEP_IDLE, /* nothing: no removed event stored, no retention policy */
    ANNAL_SWEEP_MORE, /* more is due now: sweep again soon */
    ANNAL_SWEEP_LATER /* nothing due now; retention policies make more due in time */
} annal_sweep_t;

/* A retention policy: each limit 0 for none. */
typedef struct {
    uint64_t max_count; /* events kept, the newest ones */
    uint64_t max_age_s; /* seconds an event is kept after recorded_at */
} annal_retention_t;

/* The operations a backend provides. Unless said otherwise each runs inside
   a batch (between begin and commit/abort) and returns ANNAL_OK or an
   error. LMDB's block on nothing but the disk; PostgreSQL's wait for the
   server's replies (the network). ANNAL_ERR_RETRY (LMDB: the map grew) means
   the batch was lost to a resize: abort it and run it again;
   ANNAL_ERR_NO_SPACE and ANNAL_ERR_REFUSED mean the batch's writes failed,
   whichever op found it out: abort it (nothing of it is written) and run
   its reads again. */
typedef struct {
    const char *name; /* "lmdb" or "postgresql", reported by status */
    /* Opens (creating if empty) the store at location. Blocking. */
    annal_err_t (*open)(const char *location, const annal_store_options_t *opts, void **self,
                        char *why, size_t whylen);
    /* Closes; any open batch is aborted. */
    void (*close)(void *self);
    /* Starts a batch. */
    annal_err_t (*begin)(void *self);
    /* Makes the batch durable (fsync'd) and visible; on error, what is
       written is as invariant 5 says. */
    annal_err_t (*commit)(void *self);
    /* Drops the batch. */
    void (*abort)(void *self);
    /* Called outside batches when the broker is idle: housekeeping that is
       due, such as moving journaled batches into the main store file. May
       block on the disk. Optional (NULL). */
    annal_err_t (*checkpoint)(void *self);
    /* Called at the start of a batch with the appends it will make, in
       order, so that a backend can fetch what they need at once
       (PostgreSQL: the fast path of a batch of many appends). Optional
       (NULL); an error fails the batch. */
    annal_err_t (*prepare)(void *self, const annal_append_hint_t *appends, size_t n);
    /* Appends n events to agg after the version check; idempotent on event
       ids (docs/protocol.md, section 4.1). On ANNAL_ERR_CONFLICT nothing is written
       and res->actual_version is set; on ANNAL_ERR_MALFORMED why says why. */
    annal_err_t (*append)(void *self, const char *agg, annal_expect_t expect, uint64_t expected,
                          const annal_new_event_t *events, size_t n, annal_append_result_t *res,
                          char *why, size_t whylen);
    /* The current version of agg (0 when it has no events). */
    annal_err_t (*version)(void *self, const char *agg, uint64_t *version);
    /* Up to max events of agg from version from (forward: upwards from
       from; backward: downwards), into out (cleared first). */
    annal_err_t (*read)(void *self, const char *agg, uint64_t from, bool backward, size_t max,
                        annal_event_list_t *out);
    /* Up to max events from sequence from matching the filters (prefix of
       plen bytes, or NULL; event types, or none), examining at most scan
       records. *next is where the next call continues. */
    annal_err_t (*read_all)(void *self, uint64_t from, size_t max, size_t scan, const char *prefix,
                            size_t plen, char *const *types, size_t ntypes, annal_event_list_t *out,
                            uint64_t *next);
    /* Stores a snapshot of agg at version (replacing one at that version);
       folded says whether state is the default fold (else a client's). */
    annal_err_t (*put_snapshot)(void *self, const char *agg, uint64_t version, bool folded,
                                const uint8_t *state, size_t len);
    /* The latest snapshot of agg at or below max_version (only default-fold
       ones when folded_only); ANNAL_ERR_NOT_FOUND when none. *state is
       borrowed (valid until the next call). */
    annal_err_t (*get_snapshot)(void *self, const char *agg, uint64_t max_version, bool folded_only,
                                annal_snapshot_t *out);
    /* Counters for status. */
    annal_err_t (*stats)(void *self, annal_store_stats_t *out);
    /* Shared stores (several brokers on one database) tell a broker that
       others committed. watch_fd: a file descriptor to poll for reading, or
       -1 for none now (it may change between calls). moved: called when it
       is readable; the highest sequence announced since the last call, 0
       for none, UINT64_MAX when unknown (announcements may have been lost).
       A consumer group's change (group_bump) makes it readable too.
       Outside batches. Optional (NULL) for stores only one broker uses. */
    int (*watch_fd)(void *self);
    uint64_t (*moved)(void *self);
    /* Moving a store (annal migrate), outside batches; each optional
       (LMDB has dump, PostgreSQL load_begin and load_end).
       dump: hands the whole store to sink, as of one moment. load_begin:
       readies an empty store to take a dump into sink (ANNAL_ERR_CONFLICT,
       with why, when it holds anything); nothing of it is visible before
       load_end, which makes it all durable and visible (keep) or drops it. */
    annal_err_t (*dump)(void *self, const annal_sink_t *sink, char *why, size_t whylen);
    annal_err_t (*load_begin)(void *self, annal_sink_t *sink, char *why, size_t whylen);
    annal_err_t (*load_end)(void *self, bool keep, char *why, size_t whylen);
    /* Consumer groups, inside batches; each optional (NULL: the backend
       keeps no groups, and annald answers their commands error 10).
       group_put: stores def (a new group, or a new floor for one); its
       strings are copied; ANNAL_ERR_MALFORMED for a name of no bytes or of
       more than ANNAL_MAX_AGGREGATE_ID (the codec lets neither through).
       group_get: the group named, or ANNAL_ERR_NOT_FOUND; out's strings
       and types are borrowed until the next call. group_each: calls fn for
       every group, in name order (def borrowed for the call); an error
       from fn stops it and is returned (fn may call the other ops, and
       write, but not group_each). group_delete: the group and all its
       marks, or ANNAL_ERR_NOT_FOUND. group_mark: puts a mark (replacing
       one of the same sequence; a reason of 0 bytes reads back as NULL),
       or ANNAL_ERR_NOT_FOUND when the group is not stored (no mark
       outlives its group). group_unmark: removes sequence's mark, if any.
       group_marks: up to max marks from sequence from on, of kind mark (0:
       any), into out (cleared first); *next is where the next call goes on,
       past the last mark given and at most at the next one of kind mark
       (LMDB: that one's sequence), or 0 when there is none: a full page
       that ends the list says so (tests/test_groups.py parked_replay).
       group_floor: stores a new floor and drops the ANNAL_MARK_ACKED marks
       at or below it, or ANNAL_ERR_NOT_FOUND. */
    annal_err_t (*group_put)(void *self, const annal_group_def_t *def);
    annal_err_t (*group_get)(void *self, const char *name, annal_group_def_t *out);
    annal_err_t (*group_each)(void *self,
                              annal_err_t (*fn)(void *arg, const annal_group_def_t *def),
                              void *arg);
    annal_err_t (*group_delete)(void *self, const char *name);
    annal_err_t (*group_mark)(void *self, const char *name, const annal_group_mark_t *mark);
    annal_err_t (*group_unmark)(void *self, const char *name, uint64_t sequence);
    annal_err_t (*group_marks)(void *self, const char *name, uint64_t from, size_t max,
                               annal_mark_t mark, annal_mark_list_t *out, uint64_t *next);
    annal_err_t (*group_floor)(void *self, const char *name, uint64_t floor);
    /* Groups shared by several brokers (PostgreSQL), inside batches; all
       four or none (NULL: one broker serves each group, and its leases live
       in that broker's memory).
       group_sync: takes the lock of the group name for the rest of the
       batch, whether a group of that name exists or not (so that its
       requests run one at a time across brokers), and gives its version
       (0: no such group) and floor. The version moves whenever a batch
       changes the group's state (group_bump), never back: a broker that
       holds a copy of an older version loads the group again.
       group_bump: when the batch wrote the group's marks or leases since
       group_sync, moves its version, announces it to the other brokers
       (watch_fd) and gives the new one; else gives group_sync's.
       group_lease: stores n leases, replacing those of the same sequences
       (an ended one, deadline 0, keeps its delivery and consumer); a mark
       (group_mark) removes its sequence's lease.
       group_leases: the group's leases, in sequence order, into out
       (cleared first; consumers borrowed until the next group_leases); a
       lease whose broker is gone (its session ended) reads as ended. */
    annal_err_t (*group_sync)(void *self, const char *name, uint64_t *version, uint64_t *floor);
    annal_err_t (*group_bump)(void *self, const char *name, uint64_t *version);
    annal_err_t (*group_lease)(void *self, const char *name, const annal_lease_t *leases, size_t n);
    annal_err_t (*group_leases)(void *self, const char *name, annal_lease_list_t *out);
    /* Deletion (docs/protocol.md, section 7), inside batches; both or
       neither (NULL: annald answers delete_aggregate error 10).
       remove: every event of agg up to version through, and every snapshot
       of agg up to it, is removed: from now on no read returns them (read
       starts after through, read_all skips them: holes that next moves
       past, stats counts them no more), and sweep frees their space; hard:
       agg takes no more appends (append answers ANNAL_ERR_GONE, before any
       other check). Removal is always of a prefix of agg's versions.
       sweep: frees up to max removed events for good (and finds those that
       retention policies remove); *next says when to sweep again. */
    annal_err_t (*remove)(void *self, const char *agg, uint64_t through, bool hard);
    annal_err_t (*sweep)(void *self, size_t max, size_t *freed, annal_sweep_t *next);
    /* Retention (docs/protocol.md, section 7), inside batches; both or
       neither (NULL: error 10). retention_put: agg's policy, replacing the
       one it had (both 0: none). From the call on, an event of agg is
       removed as by remove (but no snapshot) once it is not among agg's
       last max_count events, or was recorded max_age_s or more seconds
       ago, the newest event always kept; sweep frees them in time.
       retention_get: agg's policy (0 and 0 for none). */
    annal_err_t (*retention_put)(void *self, const char *agg, const annal_retention_t *policy);
    annal_err_t (*retention_get)(void *self, const char *agg, annal_retention_t *out);
    /* Rewrites the event and snapshot tables without their dead rows,
       outside batches, while brokers wait (PostgreSQL: VACUUM FULL; annal-
       admin compact). Optional: LMDB compacts a closed store instead
       (annal_admin.h). */
    annal_err_t (*compact)(void *self, char *why, size_t whylen);
} annal_store_ops_t;

typedef struct annal_store_t annal_store_t;

/* The backends' operations (annal_pg_ops only in a build with
   ANNAL_WITH_PG). */
extern const annal_store_ops_t annal_lmdb_ops;
extern const annal_store_ops_t annal_pg_ops;

/* Whether location names a PostgreSQL database (a postgresql:// or
   postgres:// connection URI) rather than an LMDB folder. */
bool annal_store_is_postgresql(const char *location);

/* Opens the store at location with the backend that location names (a
   folder: LMDB; a postgresql:// URI: PostgreSQL, in a build with it). NULL
   on failure, with the reason in why. */
annal_store_t *annal_store_open(const char *location, const annal_store_options_t *opts, char *why,
                                size_t whylen);
void annal_store_close(annal_store_t **self);

const char *annal_store_name(const annal_store_t *self);
annal_err_t annal_store_begin(annal_store_t *self);
annal_err_t annal_store_commit(annal_store_t *self);
void annal_store_abort(annal_store_t *self);
annal_err_t annal_store_checkpoint(annal_store_t *self);
annal_err_t annal_store_prepare(annal_store_t *self, const annal_append_hint_t *appends, size_t n);
bool annal_store_shared(const annal_store_t *self);
int annal_store_watch_fd(annal_store_t *self);
uint64_t annal_store_moved(annal_store_t *self);
annal_err_t annal_store_append(annal_store_t *self, const char *agg, annal_expect_t expect,
                               uint64_t expected, const annal_new_event_t *events, size_t n,
                               annal_append_result_t *res, char *why, size_t whylen);
annal_err_t annal_store_version(annal_store_t *self, const char *agg, uint64_t *version);
annal_err_t annal_store_read(annal_store_t *self, const char *agg, uint64_t from, bool backward,
                             size_t max, annal_event_list_t *out);
annal_err_t annal_store_read_all(annal_store_t *self, uint64_t from, size_t max, size_t scan,
                                 const char *prefix, size_t plen, char *const *types, size_t ntypes,
                                 annal_event_list_t *out, uint64_t *next);
annal_err_t annal_store_put_snapshot(annal_store_t *self, const char *agg, uint64_t version,
                                     bool folded, const uint8_t *state, size_t len);
annal_err_t annal_store_get_snapshot(annal_store_t *self, const char *agg, uint64_t max_version,
                                     bool folded_only, annal_snapshot_t *out);
annal_err_t annal_store_stats(annal_store_t *self, annal_store_stats_t *out);

/* Moving a store (annal_admin.h): the optional dump and load ops; an
   error when the backend has none. */
annal_err_t annal_store_dump(annal_store_t *self, const annal_sink_t *sink, char *why,
                             size_t whylen);
annal_err_t annal_store_load_begin(annal_store_t *self, annal_sink_t *sink, char *why,
                                   size_t whylen);
annal_err_t annal_store_load_end(annal_store_t *self, bool keep, char *why, size_t whylen);

/* Consumer groups (the ops above); ANNAL_ERR_UNKNOWN_TYPE when the backend
   keeps none. */
bool annal_store_has_groups(const annal_store_t *self);
annal_err_t annal_store_group_put(annal_store_t *self, const annal_group_def_t *def);
annal_err_t annal_store_group_get(annal_store_t *self, const char *name, annal_group_def_t *out);
annal_err_t annal_store_group_each(annal_store_t *self,
                                   annal_err_t (*fn)(void *arg, const annal_group_def_t *def),
                                   void *arg);
annal_err_t annal_store_group_delete(annal_store_t *self, const char *name);
annal_err_t annal_store_group_mark(annal_store_t *self, const char *name,
                                   const annal_group_mark_t *mark);
annal_err_t annal_store_group_unmark(annal_store_t *self, const char *name, uint64_t sequence);
annal_err_t annal_store_group_marks(annal_store_t *self, const char *name, uint64_t from,
                                    size_t max, annal_mark_t mark, annal_mark_list_t *out,
                                    uint64_t *next);
annal_err_t annal_store_group_floor(annal_store_t *self, const char *name, uint64_t floor);
/* Shared groups (the ops above); annal_store_shares_groups says whether the
   backend has them. */
bool annal_store_shares_groups(const annal_store_t *self);
annal_err_t annal_store_group_sync(annal_store_t *self, const char *name, uint64_t *version,
                                   uint64_t *floor);
annal_err_t annal_store_group_bump(annal_store_t *self, const char *name, uint64_t *version);
annal_err_t annal_store_group_lease(annal_store_t *self, const char *name,
                                    const annal_lease_t *leases, size_t n);
annal_err_t annal_store_group_leases(annal_store_t *self, const char *name,
                                     annal_lease_list_t *out);
void annal_lease_list_free(annal_lease_list_t *list);

/* Deletion (the ops above); annal_store_removes says whether the backend
   has them, the others answer ANNAL_ERR_UNKNOWN_TYPE when it has not. */
bool annal_store_removes(const annal_store_t *self);
annal_err_t annal_store_remove(annal_store_t *self, const char *agg, uint64_t through, bool hard);
annal_err_t annal_store_sweep(annal_store_t *self, size_t max, size_t *freed, annal_sweep_t *next);
bool annal_store_retains(const annal_store_t *self);
annal_err_t annal_store_compact_op(annal_store_t *self, char *why, size_t whylen);
annal_err_t annal_store_retention_put(annal_store_t *self, const char *agg,
                                      const annal_retention_t *policy);
annal_err_t annal_store_retention_get(annal_store_t *self, const char *agg, annal_retention_t *out);
void annal_mark_list_free(annal_mark_list_t *list);

/* Appends a view to list (growing it). Returns 0, or -1 out of memory. */
int annal_event_list_push(annal_event_list_t *list, const annal_event_t *ev);
void annal_event_list_free(annal_event_list_t *list);

#endif
