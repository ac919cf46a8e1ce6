/*  annal_pg_private.h: what the PostgreSQL backend's files share, and
    nothing outside them may use:
    - annal_pg.c: the connection, batches, statements and the operations
      (the design note: transactions, the writers' lock, annal_append);
    - annal_pg_schema.c: the schema, created and migrated at connection
      (its steps in pg/schema-N.sql);
    - annal_pg_copy.c: COPY rows, for the fast path of a batch of many
      appends (the prepare op, the row buffer, the flush) and for taking a
      migrated store (load_begin, load_end);
    - annal_pg_group.c: consumer groups, shared by the brokers (the design
      note: locks, versions, leases). */
#ifndef ANNAL_PG_PRIVATE_H
#define ANNAL_PG_PRIVATE_H

#include <czmq.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annal_store.h"

/* annal_events' columns as reads select them, and as COPY sends them. */
#define EVENT_COLUMNS \
    "sequence, event_id, aggregate_id, version, event_type, event_data, metadata, recorded_at"

/* What a COPY under way fills (annal_pg_t.loading). */
enum { LOAD_NONE, LOAD_OPEN, LOAD_EVENTS, LOAD_SNAPSHOTS };

/* A PostgreSQL store: one broker's connections and its open batch. */
typedef struct {
    char *conninfo;          /* the connection string */
    PGconn *conn;            /* the connection, or NULL while down */
    PGconn *listen;          /* LISTEN annal_head, or NULL while down */
    int64_t listen_retry_at; /* no new listen connection before this (monotonic ms) */
    PGresult *result;        /* the last read's rows, which event views borrow */
    bool in_txn;             /* a batch is open */
    bool txn_open;           /* a transaction is open on the server (ROLLBACK is owed) */
    bool read_only;          /* it is the read-only one of a batch that has not written */
    int64_t now;             /* the clock at the batch's start */
    bool locked;             /* the batch holds annal_head's row lock */
    uint64_t head, txn_head; /* annal_head when locked, and after the batch's appends */
    int64_t recorded;        /* recorded_at of the batch's events */
    int64_t retry_at;        /* no reconnection before this (monotonic ms) */
    int backoff_ms;          /* the next wait after a failed connection */
    /* annal_pg_copy.c's; annal_pg.c only clears fast as a batch begins
       and ends, and rows and copy_len when one aborts */
    int loading;        /* migration, and the fast path's flush: LOAD_* */
    bool fast;          /* this batch's appends take the fast path (annal_pg_prepare) */
    zhashx_t *versions; /* fast path: aggregate id -> agg_t, each one the batch appends to */
    zhashx_t *ids;      /* fast path: client event ids (text) stored, or written by the batch */
    size_t rows;        /* fast path: events in copy, not yet sent */
    char *copy;         /* COPY rows not sent yet (migration, fast path) */
    size_t copy_len, copy_cap; /* bytes used and allocated in copy */
    /* annal_pg_group.c's */
    PGresult *group_result; /* group_get's and group_marks' rows, which their outputs borrow */
    PGresult *lease_result; /* group_leases' rows, which its output borrows */
    char **types;           /* group_get's event types, pointing into group_result */
    size_t types_cap;       /* entries allocated in types */
    bool group_wrote;       /* the batch wrote a group since group_sync */
    uint64_t group_version; /* the version group_sync found, or group_bump made */
} annal_pg_t;

/* Which path an append takes: what annal_pg_append_fast answers. Private
   to the PostgreSQL backend; it never leaves annal_pg.c's append. */
typedef enum {
    ANNAL_PG_FAST, /* the fast path took the append; its outcome is in *err */
    ANNAL_PG_SLOW  /* not for the fast path: annal_append must run it */
} annal_pg_path_t;

/* --- annal_pg.c -------------------------------------------------------------------- */

/* Column col of row (binary format, 8 bytes) as a number. */
uint64_t annal_pg_u64(const PGresult *r, int row, int col);

/* Whether a failed call lost the connection (then it is dropped, to be made
   again at the next batch). */
bool annal_pg_lost(annal_pg_t *self);

/* Maps a failed result (freed) to annal's error: a lost connection or a
   server that refuses work for now is unavailable, anything else internal. */
annal_err_t annal_pg_fail(annal_pg_t *self, PGresult *r);

/* Runs sql (no parameters); 0, or -1 with the server's message in why (when
   not NULL). */
int annal_pg_exec(PGconn *conn, const char *sql, char *why, size_t whylen);

/* Notes whether the server has a transaction open, an aborted one too,
   after a string of several statements that may have stopped half way. */
void annal_pg_sync_txn(annal_pg_t *self);

/* Opens the batch's write transaction, if not yet open, and takes the
   writers' lock. */
annal_err_t annal_pg_write_txn(annal_pg_t *self);

/* Runs a statement of the batch (the fast path's rows sent first) with
   text parameters (NULL lengths) or binary ones, and binary results; the
   result, or NULL after mapping the failure to *err. */
PGresult *annal_pg_query(annal_pg_t *self, const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats, annal_err_t *err);

/* The 36 characters of a UUID, into buf (37 bytes); returns buf. */
char *annal_pg_uuid_text(const uint8_t *u, char *buf);

/* Item i of arg as text, for annal_pg_array; buf (40 bytes) may hold it. */
typedef const char *(*annal_pg_item_fn)(const void *arg, size_t i, char *buf);

/* The item of a char *[]. */
const char *annal_pg_string_item(const void *arg, size_t i, char *buf);

/* A PostgreSQL array literal {"a","b",...} of n items given by item(i),
   each quoted; malloc'd, NULL when out of memory. */
char *annal_pg_array(const void *arg, size_t n, annal_pg_item_fn item);

/* --- annal_pg_schema.c ------------------------------------------------------------- */

/* Creates or migrates the schema to the newest version this annald knows
   (under an advisory lock, so that brokers starting together do it once);
   0, or -1 with the reason in why. */
int annal_pg_migrate(PGconn *conn, char *why, size_t whylen);

/* --- annal_pg_copy.c --------------------------------------------------------------- */

/* Readies and frees the fast path's state; init: 0, or -1 out of memory. */
int annal_pg_copy_init(annal_pg_t *self);
void annal_pg_copy_free(annal_pg_t *self);

/* The prepare op: a batch of many appends takes the fast path. */
annal_err_t annal_pg_prepare(void *handle, const annal_append_hint_t *appends, size_t n);

/* The fast path of an append: ANNAL_PG_SLOW when it is not for it
   (annal_append must run), else ANNAL_PG_FAST with the outcome, as the
   append op's, in *err. */
annal_pg_path_t annal_pg_append_fast(annal_pg_t *self, const char *agg, annal_expect_t expect,
                                     uint64_t expected, const annal_new_event_t *events, size_t n,
                                     annal_append_result_t *res, annal_err_t *err);

/* Tells the fast path what annal_append made of an append to agg: its
   status (0 appended, 1 an earlier identical append, 2 a version conflict,
   3 malformed) and the version it reported. */
void annal_pg_fast_learn(annal_pg_t *self, const char *agg, const annal_new_event_t *events,
                         size_t n, uint64_t status, uint64_t version);

/* Sends the fast path's buffered rows, then the aggregates' new versions:
   before the batch's next statement, and before its COMMIT. */
annal_err_t annal_pg_flush(annal_pg_t *self);

/* The load_begin and load_end ops: taking a migrated store with COPY. */
annal_err_t annal_pg_load_begin(void *handle, annal_sink_t *sink, char *why, size_t whylen);
annal_err_t annal_pg_load_end(void *handle, bool keep, char *why, size_t whylen);

/* --- annal_pg_group.c -------------------------------------------------------------- */

/* The group ops of annal_store.h (annal_store_ops_t), shared by the brokers. */
annal_err_t annal_pg_group_put(void *handle, const annal_group_def_t *def);
annal_err_t annal_pg_group_get(void *handle, const char *name, annal_group_def_t *out);
annal_err_t annal_pg_group_each(void *handle,
                                annal_err_t (*fn)(void *arg, const annal_group_def_t *def),
                                void *arg);
annal_err_t annal_pg_group_delete(void *handle, const char *name);
annal_err_t annal_pg_group_mark(void *handle, const char *name, const annal_group_mark_t *mark);
annal_err_t annal_pg_group_unmark(void *handle, const char *name, uint64_t sequence);
annal_err_t annal_pg_group_marks(void *handle, const char *name, uint64_t from, size_t max,
                                 annal_mark_t mark, annal_mark_list_t *out, uint64_t *next);
annal_err_t annal_pg_group_floor(void *handle, const char *name, uint64_t floor);
annal_err_t annal_pg_group_sync(void *handle, const char *name, uint64_t *version, uint64_t *floor);
annal_err_t annal_pg_group_bump(void *handle, const char *name, uint64_t *version);
annal_err_t annal_pg_group_lease(void *handle, const char *name, const annal_lease_t *leases,
                                 size_t n);
annal_err_t annal_pg_group_leases(void *handle, const char *name, annal_lease_list_t *out);

#endif
