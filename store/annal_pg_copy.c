/*  annal_pg_copy.c: COPY rows into PostgreSQL, for the fast path of a batch
    of many appends (the prepare op, the row buffer, the flush) and for
    taking a migrated store (load_begin, load_end).

    NOTES ON THE DESIGN
    A batch with FAST_MIN appends or more takes the writers' lock at once
    (annal_pg_prepare) and reads, in one statement, the current versions of
    the aggregates it appends to and which of its client event ids are
    stored. As nobody else can append while the lock is held, each append's
    checks then run here, and its rows go into a COPY buffer, sent with the
    aggregates' new versions before the batch's next statement or at
    commit: a few round trips per batch instead of one per append. An
    append whose event ids are already stored (a retry, or a mistake), or
    that prepare did not announce, takes the slow path (ANNAL_PG_SLOW):
    annal_pg.c flushes the buffer and runs annal_append, which knows every
    such case.

    Invariants, while fast is set:
    1. The batch holds annal_head's lock (locked), taken by prepare.
    2. versions holds each aggregate prepare was told of, with its version
       as of the batch's appends so far; a dirty one is ahead of
       annal_aggregates until the next flush.
    3. ids holds every client event id of the batch that is stored, or
       that the batch has written or tried to: an append that meets one
       takes the slow path.
    4. The buffer holds rows events, unsent; they go before any other
       statement of the batch and before its COMMIT (annal_pg_flush), so
       every statement sees the batch's appends. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_pg_private.h"

#define FAST_MIN 4 /* appends in a batch for the fast path (fewer: annal_append each) */

/* Fast path: an aggregate's version as the batch goes. */
typedef struct {
    uint64_t version; /* current, the batch's appends included */
    bool dirty;       /* annal_aggregates lags behind */
    bool gone;        /* deleted for good: annal_append answers its appends */
} agg_t;

/* --- the fast path's state ------------------------------------------------------------ */

/* The destructor of versions' items. */
static void s_free_agg(void **item)
{
    free(*item);
    *item = NULL;
}

/* The fast path's maps, at open; -1 out of memory. */
int annal_pg_copy_init(annal_pg_t *self)
{
    if (!(self->versions = zhashx_new()) || !(self->ids = zhashx_new()))
        return -1;
    zhashx_set_destructor(self->versions, s_free_agg);
    return 0;
}

/* Frees the maps and the COPY buffer, at close; safe twice. */
void annal_pg_copy_free(annal_pg_t *self)
{
    zhashx_destroy(&self->versions);
    zhashx_destroy(&self->ids);
    free(self->copy);
    self->copy = NULL;
    self->copy_len = self->copy_cap = 0;
}

/* --- COPY rows (migration, and batches of many appends) ---------------------------- */

#define COPY_CHUNK (256u << 10) /* migration: bytes of rows sent at a time */
#define COPY_KEEP  (16u << 20)  /* a bigger buffer is freed after use */

/* Room for need more bytes in the COPY buffer; -1 out of memory. */
static int s_room(annal_pg_t *self, size_t need)
{
    if (self->copy_len + need <= self->copy_cap)
        return 0;
    size_t cap = (self->copy_len + need) * 2;
    char *bigger = realloc(self->copy, cap);
    if (!bigger)
        return -1;
    self->copy = bigger;
    self->copy_cap = cap;
    return 0;
}

/* Adds text to the row, escaped for COPY's text format. */
static void s_copy_text(annal_pg_t *self, const char *text, size_t len)
{
    char *p = self->copy + self->copy_len;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        const char *esc = c == '\\'   ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                                      : NULL;
        if (esc) {
            memcpy(p, esc, 2);
            p += 2;
        }
        else
            *p++ = c;
    }
    self->copy_len = (size_t) (p - self->copy);
}

/* Adds a bytea in hex (\\x...) to the row. */
static void s_copy_bytes(annal_pg_t *self, const uint8_t *b, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *p = self->copy + self->copy_len;
    memcpy(p, "\\\\x", 3);
    p += 3;
    for (size_t i = 0; i < len; i++) {
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    self->copy_len = (size_t) (p - self->copy);
}

static void s_copy_printf(annal_pg_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void s_copy_printf(annal_pg_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(self->copy + self->copy_len, self->copy_cap - self->copy_len, fmt, ap);
    va_end(ap);
    self->copy_len += n > 0 ? (size_t) n : 0;
}

/* Sends the buffered rows (all, or once there are enough). */
static annal_err_t s_copy_send(annal_pg_t *self, bool all, char *why, size_t whylen)
{
    if (self->copy_len == 0 || (!all && self->copy_len < COPY_CHUNK))
        return ANNAL_OK;
    if (PQputCopyData(self->conn, self->copy, (int) self->copy_len) != 1) {
        snprintf(why, whylen, "COPY failed: %s", PQerrorMessage(self->conn));
        return ANNAL_ERR_UNAVAILABLE;
    }
    self->copy_len = 0;
    return ANNAL_OK;
}

/* Ends the COPY under way, if any. */
static annal_err_t s_copy_end(annal_pg_t *self, char *why, size_t whylen)
{
    if (self->loading != LOAD_EVENTS && self->loading != LOAD_SNAPSHOTS)
        return ANNAL_OK;
    self->loading = LOAD_OPEN;
    annal_err_t err = s_copy_send(self, true, why, whylen);
    if (PQputCopyEnd(self->conn, err ? "annal migrate stopped" : NULL) != 1 && !err) {
        snprintf(why, whylen, "COPY failed: %s", PQerrorMessage(self->conn));
        err = ANNAL_ERR_UNAVAILABLE;
    }
    PGresult *r;
    while (self->conn && (r = PQgetResult(self->conn))) {
        if (PQresultStatus(r) == PGRES_COMMAND_OK || err) {
            PQclear(r);
            continue;
        }
        snprintf(why, whylen, "COPY failed: %s", PQresultErrorMessage(r));
        err = annal_pg_fail(self, r); /* a lock timeout or a full disk is not a bug */
    }
    return err;
}

/* Starts COPY of table when it is not the one under way. */
static annal_err_t s_copy_start(annal_pg_t *self, int what, const char *sql, char *why,
                                size_t whylen)
{
    if (self->loading == what)
        return ANNAL_OK;
    annal_err_t err = s_copy_end(self, why, whylen);
    if (err)
        return err;
    PGresult *r = PQexec(self->conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        snprintf(why, whylen, "cannot start COPY: %s", PQerrorMessage(self->conn));
        return annal_pg_fail(self, r);
    }
    PQclear(r);
    self->loading = what;
    return ANNAL_OK;
}

#define COPY_EVENTS "COPY annal_events (" EVENT_COLUMNS ", append_size, append_index) FROM STDIN"

/* Adds event e (the index-th of an append of size events) as a row of
   COPY annal_events; -1 out of memory. */
static int s_copy_row(annal_pg_t *self, const annal_event_t *e, uint32_t size, uint32_t index)
{
    if (s_room(self, 200 + 2 * (e->aggregate_id_len + e->event_type_len)
                         + 2 * (e->data_len + e->metadata_len)))
        return -1;
    char id[37];
    s_copy_printf(self, "%llu\t%s\t", (unsigned long long) e->sequence,
                  annal_pg_uuid_text(e->event_id, id));
    s_copy_text(self, e->aggregate_id, e->aggregate_id_len);
    s_copy_printf(self, "\t%llu\t", (unsigned long long) e->version);
    s_copy_text(self, e->event_type, e->event_type_len);
    s_copy_printf(self, "\t");
    s_copy_bytes(self, e->data, e->data_len);
    s_copy_printf(self, "\t");
    s_copy_bytes(self, e->metadata, e->metadata_len);
    s_copy_printf(self, "\t%lld\t%u\t%u\n", (long long) e->recorded_at, size, index);
    return 0;
}

/* --- the fast path: a batch of many appends (see the design note) ------------------- */

/* Sends the buffered rows, then the new versions of the aggregates. */
annal_err_t annal_pg_flush(annal_pg_t *self)
{
    if (!self->rows)
        return ANNAL_OK;
    char why[256];
    annal_err_t err = s_copy_start(self, LOAD_EVENTS, COPY_EVENTS, why, sizeof why);
    if (!err)
        err = s_copy_end(self, why, sizeof why);
    self->loading = LOAD_NONE;
    self->rows = self->copy_len = 0;
    if (self->copy_cap > COPY_KEEP) { /* do not keep a huge batch's buffer */
        free(self->copy);
        self->copy = NULL;
        self->copy_cap = 0;
    }
    /* the aggregates behind, and their versions as text */
    size_t n = 0, cap = zhashx_size(self->versions);
    char **names = err ? NULL : calloc(cap + 1, sizeof *names), **numbers = NULL;
    char(*text)[24] = err ? NULL : calloc(cap + 1, sizeof *text), *aggs = NULL, *versions = NULL;
    if (!err && (!names || !text || !(numbers = calloc(cap + 1, sizeof *numbers))))
        err = ANNAL_ERR_UNAVAILABLE;
    for (agg_t *a = err ? NULL : zhashx_first(self->versions); a; a = zhashx_next(self->versions)) {
        if (!a->dirty)
            continue;
        a->dirty = false;
        snprintf(text[n], sizeof text[n], "%llu", (unsigned long long) a->version);
        names[n] = (char *) zhashx_cursor(self->versions);
        numbers[n] = text[n];
        n++;
    }
    if (!err && n
        && (!(aggs = annal_pg_array(names, n, annal_pg_string_item))
            || !(versions = annal_pg_array(numbers, n, annal_pg_string_item))))
        err = ANNAL_ERR_UNAVAILABLE;
    if (!err && n) {
        const char *values[2] = {aggs, versions};
        PGresult *r = PQexecParams(self->conn,
                                   "INSERT INTO annal_aggregates"
                                   " SELECT * FROM unnest($1::text[], $2::bigint[])"
                                   " ON CONFLICT (aggregate_id) DO UPDATE"
                                   " SET version = excluded.version",
                                   2, NULL, values, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            err = annal_pg_fail(self, r);
        else
            PQclear(r);
    }
    free(names);
    free(numbers);
    free(text);
    free(aggs);
    free(versions);
    if (err) {
        annal_pg_sync_txn(self);
        if (annal_pg_lost(self))
            err = ANNAL_ERR_UNAVAILABLE;
    }
    return err;
}

/* The item of a uint8_t[][16] of event ids (annal_pg_item_fn). */
static const char *s_id_item(const void *arg, size_t i, char *buf)
{
    return annal_pg_uuid_text(((const uint8_t(*)[16]) arg)[i], buf);
}

/* Takes the lock and reads what the batch's appends need (the design
   note); a batch of fewer than FAST_MIN appends takes the slow path. */
annal_err_t annal_pg_prepare(void *handle, const annal_append_hint_t *appends, size_t n)
{
    annal_pg_t *self = handle;
    self->fast = false;
    if (n < FAST_MIN)
        return ANNAL_OK;
    annal_err_t err = annal_pg_write_txn(self);
    if (err)
        return err;
    zhashx_purge(self->versions);
    zhashx_purge(self->ids);
    size_t nids = 0;
    char **aggs = calloc(n + 1, sizeof *aggs);
    for (size_t i = 0; i < n; i++) {
        if (aggs)
            aggs[i] = (char *) appends[i].agg;
        for (size_t k = 0; k < appends[i].n; k++)
            nids += appends[i].events[k].client_id;
    }
    uint8_t(*ids)[16] = calloc(nids + 1, sizeof *ids);
    for (size_t i = 0, j = 0; ids && i < n; i++)
        for (size_t k = 0; k < appends[i].n; k++)
            if (appends[i].events[k].client_id)
                memcpy(ids[j++], appends[i].events[k].event_id, 16);
    char *agg_array = aggs ? annal_pg_array(aggs, n, annal_pg_string_item) : NULL;
    char *id_array = ids ? annal_pg_array(ids, nids, s_id_item) : NULL;
    PGresult *r = NULL;
    err = ANNAL_ERR_UNAVAILABLE;
    if (agg_array && id_array) {
        const char *values[2] = {agg_array, id_array};
        r = annal_pg_query(self,
                           "SELECT aggregate_id, version, NULL::uuid, gone::int4::int8"
                           " FROM annal_aggregates WHERE aggregate_id = ANY($1::text[])"
                           " UNION ALL SELECT NULL, NULL, event_id, NULL FROM annal_events"
                           " WHERE event_id = ANY($2::uuid[])",
                           2, values, NULL, NULL, &err);
    }
    free(aggs);
    free(ids);
    free(agg_array);
    free(id_array);
    if (!r)
        return err;
    for (size_t i = 0; i < n && !err; i++) {
        agg_t *a = zhashx_lookup(self->versions, appends[i].agg);
        if (!a && (!(a = calloc(1, sizeof *a)) || zhashx_insert(self->versions, appends[i].agg, a)))
            err = ANNAL_ERR_UNAVAILABLE;
    }
    for (int row = 0; row < PQntuples(r) && !err; row++) {
        if (!PQgetisnull(r, row, 0)) {
            agg_t *a = zhashx_lookup(self->versions, PQgetvalue(r, row, 0));
            if (a) {
                a->version = annal_pg_u64(r, row, 1);
                a->gone = annal_pg_u64(r, row, 3) != 0;
            }
            continue;
        }
        char text[37];
        annal_pg_uuid_text((const uint8_t *) PQgetvalue(r, row, 2), text);
        zhashx_update(self->ids, text, (void *) 1);
    }
    PQclear(r);
    self->fast = !err;
    return err;
}

/* The fast path of an append (see the design note): ANNAL_PG_SLOW when it
   is not for it, else ANNAL_PG_FAST with *err as the append op's. */
annal_pg_path_t annal_pg_append_fast(annal_pg_t *self, const char *agg, annal_expect_t expect,
                                     uint64_t expected, const annal_new_event_t *events, size_t n,
                                     annal_append_result_t *res, annal_err_t *err)
{
    agg_t *a = self->fast && self->locked ? zhashx_lookup(self->versions, agg) : NULL;
    if (!a || a->gone)
        return ANNAL_PG_SLOW; /* not announced to prepare, no fast path in this batch, or
                                 deleted for good (annal_append says so) */
    char text[37];
    for (size_t i = 0; i < n; i++) /* noted as written: a later use goes to annal_append */
        if (events[i].client_id
            && zhashx_insert(self->ids, annal_pg_uuid_text(events[i].event_id, text), (void *) 1))
            return ANNAL_PG_SLOW; /* stored, or used earlier in the batch */
    uint64_t cur = a->version;
    if ((expect == ANNAL_EXPECT_EXACT && cur != expected)
        || (expect == ANNAL_EXPECT_EXISTS && cur == 0)) {
        res->actual_version = cur;
        *err = ANNAL_ERR_CONFLICT;
        return ANNAL_PG_FAST;
    }
    size_t alen = strlen(agg);
    for (size_t i = 0; i < n; i++) {
        const annal_new_event_t *e = &events[i];
        annal_event_t ev = {self->txn_head + 1 + i,
                            e->event_id,
                            agg,
                            alen,
                            cur + 1 + i,
                            e->event_type,
                            strlen(e->event_type),
                            e->data.data,
                            e->data.size,
                            e->metadata.data,
                            e->metadata.size,
                            self->recorded};
        if (s_copy_row(self, &ev, (uint32_t) n, (uint32_t) i)) {
            *err = ANNAL_ERR_UNAVAILABLE;
            return ANNAL_PG_FAST;
        }
        self->rows++;
    }
    a->version = cur + n;
    a->dirty = true;
    res->first_sequence = self->txn_head + 1;
    res->last_sequence = self->txn_head = self->txn_head + n;
    res->version = a->version;
    res->recorded_at = self->recorded;
    *err = ANNAL_OK;
    return ANNAL_PG_FAST;
}

/* What annal_append did (the slow path) is what the fast path knows from
   then on: the aggregate's version, as annal_aggregates has it (not
   dirty), and the client event ids it stored. */
void annal_pg_fast_learn(annal_pg_t *self, const char *agg, const annal_new_event_t *events,
                         size_t n, uint64_t status, uint64_t version)
{
    agg_t *a = self->fast ? zhashx_lookup(self->versions, agg) : NULL;
    if (a && (status == 0 || status == 2)) /* annal_aggregates has it: not dirty */
        a->version = version;
    char text[37];
    for (size_t i = 0; self->fast && status == 0 && i < n; i++) /* stored now */
        if (events[i].client_id)
            zhashx_update(self->ids, annal_pg_uuid_text(events[i].event_id, text), (void *) 1);
}

/* --- taking a migrated store ------------------------------------------------------- */

/* The dump goes in with COPY (text format) in the transaction load_begin
   opens, which holds the writers' lock throughout: brokers on the database
   wait, and see nothing of it before load_end commits. */

static annal_err_t s_load_event(void *arg, const annal_stored_t *rec, char *why, size_t whylen)
{
    annal_pg_t *self = arg;
    annal_err_t err = s_copy_start(self, LOAD_EVENTS, COPY_EVENTS, why, whylen);
    if (!err && s_copy_row(self, &rec->event, rec->append_size, rec->append_index)) {
        snprintf(why, whylen, "out of memory");
        err = ANNAL_ERR_UNAVAILABLE;
    }
    return err ? err : s_copy_send(self, false, why, whylen);
}

static annal_err_t s_load_snapshot(void *arg, const char *agg, size_t alen,
                                   const annal_snapshot_t *snap, char *why, size_t whylen)
{
    annal_pg_t *self = arg;
    annal_err_t err = s_copy_start(self, LOAD_SNAPSHOTS,
                                   "COPY annal_snapshots (aggregate_id, version, folded, state)"
                                   " FROM STDIN",
                                   why, whylen);
    if (err)
        return err;
    if (s_room(self, 64 + 2 * alen + 2 * snap->len)) {
        snprintf(why, whylen, "out of memory");
        return ANNAL_ERR_UNAVAILABLE;
    }
    s_copy_text(self, agg, alen);
    s_copy_printf(self, "\t%llu\t%c\t", (unsigned long long) snap->version,
                  snap->folded ? 't' : 'f');
    s_copy_bytes(self, snap->state, snap->len);
    s_copy_printf(self, "\n");
    return s_copy_send(self, false, why, whylen);
}

annal_err_t annal_pg_load_begin(void *handle, annal_sink_t *sink, char *why, size_t whylen)
{
    annal_pg_t *self = handle;
    if (self->in_txn || !self->conn || self->loading)
        return ANNAL_ERR_INTERNAL;
    PGresult *r = PQexec(self->conn, "BEGIN; SELECT head, (SELECT count(*) FROM annal_snapshots)"
                                     " FROM annal_head WHERE id = 1 FOR UPDATE");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(why, whylen, "cannot lock the target: %s", PQerrorMessage(self->conn));
        PQclear(r);
        annal_pg_exec(self->conn, "ROLLBACK", NULL, 0);
        return ANNAL_ERR_UNAVAILABLE;
    }
    unsigned long long head = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    unsigned long long snaps = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (head || snaps) {
        snprintf(why, whylen,
                 "the target already holds %llu events and %llu snapshots; "
                 "annal-admin migrate copies into an empty store only",
                 head, snaps);
        annal_pg_exec(self->conn, "ROLLBACK", NULL, 0);
        return ANNAL_ERR_CONFLICT;
    }
    self->loading = LOAD_OPEN;
    sink->arg = self;
    sink->event = s_load_event;
    sink->snapshot = s_load_snapshot;
    return ANNAL_OK;
}

annal_err_t annal_pg_load_end(void *handle, bool keep, char *why, size_t whylen)
{
    annal_pg_t *self = handle;
    if (!self->loading)
        return ANNAL_ERR_INTERNAL;
    annal_err_t err = s_copy_end(self, why, whylen);
    self->loading = LOAD_NONE;
    self->copy_len = 0;
    if (err || !keep) {
        annal_pg_exec(self->conn, "ROLLBACK", NULL, 0);
        return err;
    }
    /* the head and the aggregates' versions follow from the events */
    if (annal_pg_exec(
            self->conn,
            "INSERT INTO annal_aggregates SELECT aggregate_id, max(version)"
            " FROM annal_events GROUP BY aggregate_id;"
            " UPDATE annal_head SET (head, recorded_at) = (SELECT coalesce(max(sequence), 0),"
            " coalesce(max(recorded_at), 0) FROM annal_events) WHERE id = 1;"
            " SELECT pg_notify('annal_head', head::text) FROM annal_head WHERE id = 1;"
            " COMMIT",
            why, whylen)) {
        annal_pg_exec(self->conn, "ROLLBACK", NULL, 0);
        return ANNAL_ERR_INTERNAL;
    }
    annal_pg_exec(self->conn, "ANALYZE annal_events, annal_aggregates, annal_snapshots", NULL, 0);
    return ANNAL_OK;
}
