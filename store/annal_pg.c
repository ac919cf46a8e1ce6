/*  annal_pg.c: the PostgreSQL backend.

    NOTES ON THE DESIGN
    A batch that writes is one PostgreSQL transaction (READ COMMITTED),
    opened with its first write and committed with the new head in one
    round trip. Reads before a batch's first write run in one read-only
    REPEATABLE READ transaction, so that a reply's events, head and version
    come from one snapshot (two statements under READ COMMITTED did not).
    Values are the same canonical MessagePack blobs as in LMDB, in bytea
    columns; names are text (the database must be UTF8).

    The global sequence is dense and in commit order across any number of
    brokers because the one row of annal_head is the writers' lock: the
    first write of a batch locks it (FOR UPDATE), takes the next sequence
    numbers from it, and holds it until COMMIT. So write transactions commit
    one after another, each with the numbers right after the previous one's,
    and a reader that has seen sequence N can never later meet a smaller
    one. The cost: one writing transaction at a time across all brokers, for
    the length of its batch plus its commit flush. Group commit (one
    transaction per broker batch) is what keeps that affordable. Batches
    that only read take no lock.

    An append is one call of the prepared SQL function annal_append (one
    round trip): idempotency on event ids, the version check and the inserts
    happen there, next to the data. A batch of many appends takes the fast
    path instead (annal_pg_copy.c): a few round trips for the whole batch. The batch
    keeps the head in memory and writes annal_head once, with its COMMIT.
    Every event of one batch gets the same recorded_at, never smaller than
    the last one stored (annal_head keeps it), whatever the brokers' clocks
    say.

    The schema is created and migrated at connection under an advisory
    lock, so several brokers can start at once (annal_pg_schema.c, its steps
    in pg/schema-N.sql); annal_schema holds its version. The fast path and
    the COPY of a migrated store are annal_pg_copy.c's. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_event_id.h"
#include "annal_pg_private.h"
#include "annal_time.h"

/* Prepared once per connection: the statement of every append. */
#define APPEND_SQL                                                        \
    "SELECT status::int8, coalesce(first_seq, 0), coalesce(last_seq, 0)," \
    " coalesce(version, 0), coalesce(recorded, 0), coalesce(detail, '')"  \
    " FROM annal_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"

/* The events e of annal_events that no retention policy removes at now
   (a parameter: wall-clock us): docs/protocol.md, section 7. */
#define KEPT(now)                                                               \
    " NOT EXISTS (SELECT 1 FROM annal_retention r JOIN annal_aggregates a"      \
    " ON a.aggregate_id = r.aggregate_id WHERE r.aggregate_id = e.aggregate_id" \
    " AND e.version < a.version AND ((r.max_count IS NOT NULL"                  \
    " AND e.version <= a.version - r.max_count) OR (r.max_age_s IS NOT NULL"    \
    " AND e.recorded_at <= " now "::bigint - r.max_age_s::numeric * 1000000)))"

/* The sequences of the events retention policies remove at $1 (wall-clock
   us), at most $2 of them. */
#define EXPIRED                                                                \
    "SELECT e.sequence FROM annal_retention r JOIN annal_aggregates a"         \
    " ON a.aggregate_id = r.aggregate_id JOIN annal_events e"                  \
    " ON e.aggregate_id = r.aggregate_id AND e.version < a.version"            \
    " AND ((r.max_count IS NOT NULL AND e.version <= a.version - r.max_count)" \
    " OR (r.max_age_s IS NOT NULL AND e.recorded_at <= $1::bigint"             \
    " - r.max_age_s::numeric * 1000000))"

/* --- values in PostgreSQL's formats ------------------------------------------ */

/* A bigint of a binary result. */
uint64_t annal_pg_u64(const PGresult *r, int row, int col)
{
    uint64_t v = 0;
    const uint8_t *p = (const uint8_t *) PQgetvalue(r, row, col);
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The 36 characters of a UUID, into buf (ANNAL_EVENT_ID_TEXT bytes); buf. */
char *annal_pg_uuid_text(const uint8_t *u, char *buf)
{
    annal_event_id_format(u, buf);
    return buf;
}

/* --- the connection -------------------------------------------------------------- */

static void s_disconnect(annal_pg_t *self)
{
    PQclear(self->result);
    self->result = NULL;
    PQfinish(self->conn);
    self->conn = NULL;
    self->in_txn = false;
}

/* Whether a failed call lost the connection (then it is dropped, to be made
   again at the next batch). */
bool annal_pg_lost(annal_pg_t *self)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return false;
    s_disconnect(self);
    return true;
}

/* Maps a failed result to annal's error: a lost connection or a server
   that refuses work for now is unavailable, anything else internal. */
annal_err_t annal_pg_fail(annal_pg_t *self, PGresult *r)
{
    const char *field = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char state[6] = "";
    if (field)
        snprintf(state, sizeof state, "%s", field); /* it lives in r */
    PQclear(r);
    if (annal_pg_lost(self))
        return ANNAL_ERR_UNAVAILABLE;
    /* 08 connection, 53 resources (53100: disk full), 57 operator action
       (a cancel, a statement timeout), 40 serialization / deadlock, 55P03 a
       lock timeout: all worth a retry */
    if (*state
        && (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0
            || strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0
            || strcmp(state, "55P03") == 0))
        return strcmp(state, "53100") == 0 ? ANNAL_ERR_NO_SPACE : ANNAL_ERR_UNAVAILABLE;
    return ANNAL_ERR_INTERNAL;
}

/* Runs sql (no parameters); 0, or -1 with the server's message in why. */
int annal_pg_exec(PGconn *conn, const char *sql, char *why, size_t whylen)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && why)
        snprintf(why, whylen, "%s", PQerrorMessage(conn));
    PQclear(r);
    return ok ? 0 : -1;
}

/* PostgreSQL's notices (such as "already exists, skipping") are not for
   annald's users. */
static void s_no_notice(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

/* Connects to conninfo, with limits it may override: 5 s for the
   connection (a server that accepts and then says nothing held annald at
   start-up forever), and TCP keepalives that find a peer gone in about
   25 s. */
static PGconn *s_connectdb(const char *conninfo)
{
    static const char *const keys[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", "dbname",          NULL};
    const char *const values[] = {"5", "10", "5", "3", conninfo, NULL};
    return PQconnectdbParams(keys, values, 1);
}

/* Connects and checks the database; 0, or -1 with the reason in why. */
static int s_connect(annal_pg_t *self, char *why, size_t whylen)
{
    self->conn = s_connectdb(self->conninfo);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        snprintf(why, whylen, "cannot connect to PostgreSQL: %s", PQerrorMessage(self->conn));
        s_disconnect(self);
        return -1;
    }
    PQsetNoticeProcessor(self->conn, s_no_notice, NULL);
    const char *encoding = PQparameterStatus(self->conn, "server_encoding");
    if (!encoding || strcmp(encoding, "UTF8") != 0) {
        snprintf(why, whylen, "the database's encoding is %s; annal needs UTF8",
                 encoding ? encoding : "unknown");
        s_disconnect(self);
        return -1;
    }
    if (annal_pg_exec(self->conn, "SET synchronous_commit = on", why, whylen)
        || annal_pg_migrate(self->conn, why, whylen)) {
        s_disconnect(self);
        return -1;
    }
    PGresult *r = PQprepare(self->conn, "annal_append", APPEND_SQL, 10, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        snprintf(why, whylen, "cannot prepare the append: %s", PQerrorMessage(self->conn));
        s_disconnect(self);
        return -1;
    }
    return 0;
}

/* --- open and close ---------------------------------------------------------------- */

static void s_close(void *handle)
{
    annal_pg_t *self = handle;
    if (!self)
        return;
    if (self->in_txn && self->conn)
        annal_pg_exec(self->conn, "ROLLBACK", NULL, 0);
    s_disconnect(self);
    PQfinish(self->listen);
    PQclear(self->group_result);
    PQclear(self->lease_result);
    free(self->types);
    annal_pg_copy_free(self);
    free(self->conninfo);
    free(self);
}

static annal_err_t s_open(const char *location, const annal_store_options_t *opts, void **out,
                          char *why, size_t whylen)
{
    (void) opts;
    annal_pg_t *self = calloc(1, sizeof *self);
    if (!self || !(self->conninfo = strdup(location)) || annal_pg_copy_init(self)) {
        snprintf(why, whylen, "out of memory");
        s_close(self);
        return ANNAL_ERR_UNAVAILABLE;
    }
    if (s_connect(self, why, whylen)) {
        s_close(self);
        return ANNAL_ERR_UNAVAILABLE;
    }
    *out = self;
    return ANNAL_OK;
}

/* --- batches ----------------------------------------------------------------------- */

static void s_abort(void *handle);

static annal_err_t s_begin(void *handle)
{
    annal_pg_t *self = handle;
    if (self->in_txn)
        return ANNAL_ERR_INTERNAL;
    if (!self->conn) { /* lost: connect again, backing off while PostgreSQL is away */
        int64_t now = annal_time_mono_ms();
        if (now < self->retry_at)
            return ANNAL_ERR_UNAVAILABLE;
        char why[256];
        if (s_connect(self, why, sizeof why)) {
            self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 100;
            if (self->backoff_ms > 5000)
                self->backoff_ms = 5000;
            self->retry_at = now + self->backoff_ms;
            return ANNAL_ERR_UNAVAILABLE;
        }
        self->backoff_ms = 0;
    }
    self->in_txn = true;
    self->txn_open = self->read_only = self->locked = self->fast = false;
    self->now = annal_time_now();
    return ANNAL_OK;
}

/* Notes whether the server has a transaction open, an aborted one too,
   after a string of several statements that may have stopped half way. */
void annal_pg_sync_txn(annal_pg_t *self)
{
    self->txn_open = self->conn && PQtransactionStatus(self->conn) != PQTRANS_IDLE;
}

/* Before a batch's first statement: its reads see one snapshot, in a
   read-only REPEATABLE READ transaction (which its first write ends, at no
   cost: it wrote nothing). */
static annal_err_t s_read_txn(annal_pg_t *self)
{
    PGresult *r = PQexec(self->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    annal_pg_sync_txn(self);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return annal_pg_fail(self, r);
    PQclear(r);
    self->read_only = true;
    return ANNAL_OK;
}

/* Opens the batch's write transaction before its first write, and takes
   the writers' lock, reading the head, in one round trip. Once the lock is
   held no other broker can commit, so the batch's later statements all see
   the same state, its own writes added. Every write takes it first (a
   snapshot too), so two batches never wait on each other's row locks in
   opposite orders (a deadlock). */
annal_err_t annal_pg_write_txn(annal_pg_t *self)
{
    if (!self->in_txn || !self->conn)
        return ANNAL_ERR_INTERNAL;
    if (self->locked)
        return ANNAL_OK;
    char sql[160];
    snprintf(
        sql, sizeof sql, "%s%sSELECT head, recorded_at FROM annal_head WHERE id = 1 FOR UPDATE",
        self->read_only ? "COMMIT; " : "", self->txn_open && !self->read_only ? "" : "BEGIN; ");
    PGresult *r = PQexec(self->conn, sql);
    annal_pg_sync_txn(self); /* a failed SELECT leaves an aborted transaction to roll back */
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return annal_pg_fail(self, r);
    self->read_only = false;
    self->head = self->txn_head = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t last = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    self->recorded = last > self->now ? last : self->now; /* never backwards */
    self->locked = true;
    PQclear(r);
    return ANNAL_OK;
}

static annal_err_t s_commit(void *handle)
{
    annal_pg_t *self = handle;
    if (!self->in_txn)
        return ANNAL_ERR_INTERNAL;
    annal_err_t err = annal_pg_flush(self);
    if (err) { /* COMMIT was not sent: nothing is written */
        s_abort(self);
        return err == ANNAL_ERR_NO_SPACE ? err : ANNAL_ERR_REFUSED;
    }
    bool open = self->txn_open;
    self->in_txn = self->txn_open = self->read_only = self->fast = false;
    if (!open)
        return ANNAL_OK;
    char sql[256] = "COMMIT";
    if (self->locked && self->txn_head != self->head) /* the new head and its announcement */
        snprintf(sql, sizeof sql,
                 "UPDATE annal_head SET head = %llu, recorded_at = %lld WHERE id = 1;"
                 " SELECT pg_notify('annal_head', '%llu'); COMMIT",
                 (unsigned long long) self->txn_head, (long long) self->recorded,
                 (unsigned long long) self->txn_head);
    self->locked = false;
    PGresult *r = PQexec(self->conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        /* lost on the way: the batch may or may not be there */
        annal_err_t err = annal_pg_fail(self, r);
        if (self->conn)
            annal_pg_exec(self->conn, "ROLLBACK", NULL, 0); /* should the UPDATE have failed */
        return err == ANNAL_ERR_NO_SPACE ? err : ANNAL_ERR_UNAVAILABLE;
    }
    PQclear(r);
    return ANNAL_OK;
}

static void s_abort(void *handle)
{
    annal_pg_t *self = handle;
    if (!self->in_txn)
        return;
    bool open = self->txn_open;
    self->in_txn = self->txn_open = self->read_only = self->locked = self->fast = false;
    self->rows = self->copy_len = 0;
    if (open && self->conn && annal_pg_exec(self->conn, "ROLLBACK", NULL, 0))
        annal_pg_lost(self);
}

/* --- statements ---------------------------------------------------------------------- */

/* Runs a statement (sql, or the prepared one named by prepared) with text
   parameters (NULL lengths) or binary ones, and binary results; the result,
   or NULL after mapping the failure to *err. */
static PGresult *s_run(annal_pg_t *self, const char *prepared, const char *sql, int n,
                       const char *const *values, const int *lengths, const int *formats,
                       annal_err_t *err)
{
    if (!self->in_txn || !self->conn) {
        *err = ANNAL_ERR_INTERNAL;
        return NULL;
    }
    if (!self->txn_open && (*err = s_read_txn(self)))
        return NULL;
    if ((*err = annal_pg_flush(self))) { /* what the batch wrote comes first */
        if (*err != ANNAL_ERR_NO_SPACE)  /* the batch's writes failed, not this statement */
            *err = ANNAL_ERR_REFUSED;
        return NULL;
    }
    PGresult *r = prepared ? PQexecPrepared(self->conn, prepared, n, values, lengths, formats, 1)
                           : PQexecParams(self->conn, sql, n, NULL, values, lengths, formats, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        *err = annal_pg_fail(self, r);
        return NULL;
    }
    *err = ANNAL_OK;
    return r;
}

PGresult *annal_pg_query(annal_pg_t *self, const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats, annal_err_t *err)
{
    return s_run(self, NULL, sql, n, values, lengths, formats, err);
}

/* Keeps r as the rows event views point into, until the next read. */
static void s_keep(annal_pg_t *self, PGresult *r)
{
    PQclear(self->result);
    self->result = r;
}

/* Fills ev from row i of r (columns as EVENT_COLUMNS). */
static void s_event(const PGresult *r, int i, annal_event_t *ev)
{
    ev->sequence = annal_pg_u64(r, i, 0);
    ev->event_id = (const uint8_t *) PQgetvalue(r, i, 1);
    ev->aggregate_id = PQgetvalue(r, i, 2);
    ev->aggregate_id_len = (size_t) PQgetlength(r, i, 2);
    ev->version = annal_pg_u64(r, i, 3);
    ev->event_type = PQgetvalue(r, i, 4);
    ev->event_type_len = (size_t) PQgetlength(r, i, 4);
    ev->data = (const uint8_t *) PQgetvalue(r, i, 5);
    ev->data_len = (size_t) PQgetlength(r, i, 5);
    ev->metadata = (const uint8_t *) PQgetvalue(r, i, 6);
    ev->metadata_len = (size_t) PQgetlength(r, i, 6);
    ev->recorded_at = (int64_t) annal_pg_u64(r, i, 7);
}

/* Appends every row of r to out. */
static annal_err_t s_events(annal_pg_t *self, PGresult *r, annal_event_list_t *out)
{
    s_keep(self, r);
    for (int i = 0; i < PQntuples(r); i++) {
        annal_event_t ev;
        s_event(r, i, &ev);
        if (annal_event_list_push(out, &ev))
            return ANNAL_ERR_UNAVAILABLE;
    }
    return ANNAL_OK;
}

/* Items for annal_pg_array (annal_pg_item_fn). */
static const char *s_uuid_item(const void *arg, size_t i, char *buf)
{
    return annal_pg_uuid_text(((const annal_new_event_t *) arg)[i].event_id, buf);
}

static const char *s_client_item(const void *arg, size_t i, char *buf)
{
    (void) buf;
    return ((const annal_new_event_t *) arg)[i].client_id ? "t" : "f";
}

const char *annal_pg_string_item(const void *arg, size_t i, char *buf)
{
    (void) buf;
    return ((char *const *) arg)[i];
}

static const char *s_type_item(const void *arg, size_t i, char *buf)
{
    (void) buf;
    return ((const annal_new_event_t *) arg)[i].event_type;
}

/* Writes {"a","b",...} into a malloc'd string; NULL when out of memory. */
char *annal_pg_array(const void *arg, size_t n, annal_pg_item_fn item)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap), buf[40];
    if (!out)
        return NULL;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *s = item(arg, i, buf);
        size_t need = len + 2 * strlen(s) + 4;
        if (need > cap) {
            cap = need * 2;
            char *bigger = realloc(out, cap);
            if (!bigger) {
                free(out);
                return NULL;
            }
            out = bigger;
        }
        if (i)
            out[len++] = ',';
        out[len++] = '"';
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                out[len++] = '\\';
            out[len++] = *s;
        }
        out[len++] = '"';
    }
    out[len++] = '}';
    out[len] = 0;
    return out;
}

/* A binary bytea[] (PostgreSQL's array wire format) of the blobs chosen by
   meta; malloc'd, *len set; NULL when out of memory. */
static char *s_bytea_array(const annal_new_event_t *events, size_t n, bool meta, int *len)
{
    size_t total = 20 + 8;
    for (size_t i = 0; i < n; i++)
        total += 4 + (meta ? events[i].metadata.size : events[i].data.size);
    if (total > INT32_MAX)
        return NULL;
    char *out = malloc(total), *p = out;
    if (!out)
        return NULL;
    uint32_t hdr[5] = {htonl(1), 0, htonl(17 /* bytea */), htonl((uint32_t) n), htonl(1)};
    memcpy(p, hdr, sizeof hdr);
    p += sizeof hdr;
    for (size_t i = 0; i < n; i++) {
        const annal_blob_t *b = meta ? &events[i].metadata : &events[i].data;
        uint32_t l = htonl((uint32_t) b->size);
        memcpy(p, &l, 4);
        memcpy(p + 4, b->data, b->size);
        p += 4 + b->size;
    }
    *len = (int) (p - out);
    return out;
}

/* --- the operations ------------------------------------------------------------------ */

static annal_err_t s_append(void *handle, const char *agg, annal_expect_t expect, uint64_t expected,
                            const annal_new_event_t *events, size_t n, annal_append_result_t *res,
                            char *why, size_t whylen)
{
    annal_pg_t *self = handle;
    memset(res, 0, sizeof *res);
    if (n == 0 || n > INT32_MAX)
        return ANNAL_ERR_INTERNAL;
    annal_err_t err;
    if (annal_pg_append_fast(self, agg, expect, expected, events, n, res, &err) == ANNAL_PG_FAST) {
        if (err == ANNAL_ERR_UNAVAILABLE) /* out of memory with half a row: drop the batch */
            s_abort(self);
        return err;
    }
    if ((err = annal_pg_write_txn(self))) /* ANNAL_PG_SLOW: annal_append runs it */
        return err;
    char ex[4], exv[24], head[24], rec[24];
    snprintf(ex, sizeof ex, "%d",
             expect == ANNAL_EXPECT_EXACT    ? 1
             : expect == ANNAL_EXPECT_EXISTS ? 2
                                             : 0);
    snprintf(exv, sizeof exv, "%llu", (unsigned long long) expected);
    snprintf(head, sizeof head, "%llu", (unsigned long long) self->txn_head);
    snprintf(rec, sizeof rec, "%lld", (long long) self->recorded);
    int dlen = 0, mlen = 0;
    char *ids = annal_pg_array(events, n, s_uuid_item);
    char *client = annal_pg_array(events, n, s_client_item);
    char *types = annal_pg_array(events, n, s_type_item);
    char *data = s_bytea_array(events, n, false, &dlen);
    char *meta = s_bytea_array(events, n, true, &mlen);
    err = ANNAL_ERR_UNAVAILABLE;
    PGresult *r = NULL;
    if (ids && client && types && data && meta) {
        const char *values[10] = {agg, ex, exv, head, rec, ids, client, types, data, meta};
        int lengths[10] = {0, 0, 0, 0, 0, 0, 0, 0, dlen, mlen};
        int formats[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
        r = s_run(self, "annal_append", NULL, 10, values, lengths, formats, &err);
    }
    free(ids);
    free(client);
    free(types);
    free(data);
    free(meta);
    if (!r)
        return err;
    uint64_t status = annal_pg_u64(r, 0, 0);
    res->first_sequence = annal_pg_u64(r, 0, 1);
    res->last_sequence = annal_pg_u64(r, 0, 2);
    if (status == 0)
        self->txn_head = res->last_sequence;
    annal_pg_fast_learn(self, agg, events, n, status, annal_pg_u64(r, 0, 3));
    res->recorded_at = (int64_t) annal_pg_u64(r, 0, 4);
    err = ANNAL_OK;
    if (status == 1)
        res->duplicate = true;
    if (status == 2) {
        res->actual_version = annal_pg_u64(r, 0, 3);
        err = ANNAL_ERR_CONFLICT;
    }
    else
        res->version = annal_pg_u64(r, 0, 3);
    if (status == 3) {
        snprintf(why, whylen, "%s", PQgetvalue(r, 0, 5));
        err = ANNAL_ERR_MALFORMED;
    }
    if (status == 4) {
        snprintf(why, whylen, "aggregate '%.64s' was deleted for good: it takes no more appends",
                 agg);
        err = ANNAL_ERR_GONE;
    }
    PQclear(r);
    return err;
}

static annal_err_t s_version(void *handle, const char *agg, uint64_t *version)
{
    annal_pg_t *self = handle;
    annal_err_t err;
    const char *values[1] = {agg};
    PGresult *r =
        annal_pg_query(self, "SELECT version FROM annal_aggregates WHERE aggregate_id = $1", 1,
                       values, NULL, NULL, &err);
    if (!r)
        return err;
    *version = PQntuples(r) ? annal_pg_u64(r, 0, 0) : 0;
    PQclear(r);
    return ANNAL_OK;
}

static annal_err_t s_read(void *handle, const char *agg, uint64_t from, bool backward, size_t max,
                          annal_event_list_t *out)
{
    annal_pg_t *self = handle;
    out->count = 0;
    if (max == 0)
        return ANNAL_OK;
    if (backward && from == 0)
        return ANNAL_OK; /* as on LMDB: nothing below version 1 */
    char f[24], m[24];
    snprintf(f, sizeof f, "%llu", (unsigned long long) (from > INT64_MAX ? INT64_MAX : from));
    snprintf(m, sizeof m, "%zu",
             max > INT64_MAX ? (size_t) INT64_MAX : max); /* LIMIT is a bigint */
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long) annal_time_now());
    const char *values[4] = {agg, f, m, now};
    annal_err_t err;
    PGresult *r = annal_pg_query(self,
                                 backward ? "SELECT " EVENT_COLUMNS " FROM annal_events e"
                                            " WHERE aggregate_id = $1 AND version <= $2"
                                            " AND" KEPT("$4") " ORDER BY version DESC LIMIT $3"
                                          : "SELECT " EVENT_COLUMNS " FROM annal_events e"
                                            " WHERE aggregate_id = $1 AND version >= $2"
                                            " AND" KEPT("$4") " ORDER BY version LIMIT $3",
                                 4, values, NULL, NULL, &err);
    return r ? s_events(self, r, out) : err;
}

static annal_err_t s_read_all(void *handle, uint64_t from, size_t max, size_t scan,
                              const char *prefix, size_t plen, char *const *types, size_t ntypes,
                              annal_event_list_t *out, uint64_t *next)
{
    annal_pg_t *self = handle;
    out->count = 0;
    *next = from;
    if (max == 0)
        return ANNAL_OK;
    char f[24], to[24], m[24], *p = NULL, *t = NULL;
    if (from >= INT64_MAX)
        return ANNAL_OK;
    if (prefix && !(p = strndup(prefix, plen)))
        return ANNAL_ERR_UNAVAILABLE;
    if (ntypes && !(t = annal_pg_array(types, ntypes, annal_pg_string_item))) {
        free(p);
        return ANNAL_ERR_UNAVAILABLE;
    }
    /* the events examined are [first, stop), at most scan of them, or max
       (if fewer) without filters while sequences are dense: a window the
       planner cannot misjudge (a wide one was a bitmap scan and a sort
       spilled to disk). With holes (removed events, docs/protocol.md,
       section 7) a short page without filters is read again over scan. */
    uint64_t first = from ? from : 1;
    uint64_t window = prefix || ntypes || max > scan ? scan : max;
    PGresult *r = NULL;
    annal_err_t err = ANNAL_OK;
    uint64_t stop = first, head = 0;
    int rows = 0;
    for (int pass = 0; pass < 2; pass++) {
        stop = window > INT64_MAX - first ? INT64_MAX : first + window; /* no wrap */
        snprintf(f, sizeof f, "%llu", (unsigned long long) first);
        snprintf(to, sizeof to, "%llu", (unsigned long long) stop);
        snprintf(m, sizeof m, "%zu",
                 max > INT64_MAX ? (size_t) INT64_MAX : max); /* LIMIT is a bigint */
        char own[24], now[24];
        snprintf(own, sizeof own, "%llu", (unsigned long long) self->txn_head);
        snprintf(now, sizeof now, "%lld", (long long) annal_time_now());
        const char *values[7] = {f, to, m, p, t, self->locked ? own : NULL, now};
        /* the head comes from the same snapshot as the events: a commit
           between two statements must not move next past events this one
           did not see */
        PQclear(r);
        r = annal_pg_query(self,
                           "WITH h AS (SELECT coalesce($6::bigint, head) AS head, removed,"
                           " EXISTS (SELECT 1 FROM annal_retention) AS ret"
                           " FROM annal_head WHERE id = 1)"
                           " SELECT x.*, h.head, h.removed + h.ret::int FROM h LEFT JOIN LATERAL"
                           " (SELECT " EVENT_COLUMNS " FROM annal_events e"
                           " WHERE sequence >= $1 AND sequence < $2 AND sequence <= h.head"
                           " AND ($4::text IS NULL OR starts_with(aggregate_id, $4))"
                           " AND ($5::text[] IS NULL OR event_type = ANY($5))"
                           " AND (NOT h.ret OR" KEPT("$7") ")"
                                                           " ORDER BY sequence LIMIT $3) x ON true",
                           7, values, NULL, NULL, &err);
        if (!r)
            break;
        rows = PQntuples(r);
        head = rows ? annal_pg_u64(r, 0, 8) : 0;
        uint64_t holes = rows ? annal_pg_u64(r, 0, 9) : 0; /* removed, or policies */
        if (rows == 1 && PQgetisnull(r, 0, 0))
            rows = 0;
        if (window == scan || (size_t) rows == max || holes == 0 || stop > head)
            break;
        window = scan;
    }
    free(p);
    free(t);
    if (!r)
        return err;
    uint64_t end = stop < head + 1 ? stop : head + 1; /* as LMDB: after the last examined */
    if (rows == 0) {
        PQclear(r);
        *next = end > first ? end : from;
        return ANNAL_OK;
    }
    err = s_events(self, r, out);
    *next = (size_t) rows == max ? out->items[rows - 1].sequence + 1 : (end > first ? end : from);
    return err;
}

static annal_err_t s_put_snapshot(void *handle, const char *agg, uint64_t version, bool folded,
                                  const uint8_t *state, size_t len)
{
    annal_pg_t *self = handle;
    if (len > INT32_MAX)
        return ANNAL_ERR_MALFORMED;
    annal_err_t err = annal_pg_write_txn(self);
    if (err)
        return err;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long) version);
    const char *values[4] = {agg, v, folded ? "t" : "f", (const char *) state};
    int lengths[4] = {0, 0, 0, (int) len}, formats[4] = {0, 0, 0, 1};
    PGresult *r = annal_pg_query(self,
                                 "INSERT INTO annal_snapshots VALUES ($1, $2, $3, $4)"
                                 " ON CONFLICT (aggregate_id, version)"
                                 " DO UPDATE SET folded = excluded.folded, state = excluded.state",
                                 4, values, lengths, formats, &err);
    PQclear(r);
    return err;
}

static annal_err_t s_get_snapshot(void *handle, const char *agg, uint64_t max_version,
                                  bool folded_only, annal_snapshot_t *out)
{
    annal_pg_t *self = handle;
    char v[24];
    snprintf(v, sizeof v, "%llu",
             (unsigned long long) (max_version > INT64_MAX ? INT64_MAX : max_version));
    const char *values[3] = {agg, v, folded_only ? "t" : "f"};
    annal_err_t err;
    PGresult *r = annal_pg_query(self,
                                 "SELECT version, folded, state FROM annal_snapshots"
                                 " WHERE aggregate_id = $1 AND version <= $2::bigint"
                                 " AND (folded OR NOT $3::boolean)"
                                 " ORDER BY version DESC LIMIT 1",
                                 3, values, NULL, NULL, &err);
    if (!r)
        return err;
    s_keep(self, r);
    if (PQntuples(r) == 0)
        return ANNAL_ERR_NOT_FOUND;
    out->version = annal_pg_u64(r, 0, 0);
    out->folded = *PQgetvalue(r, 0, 1) != 0;
    out->state = (const uint8_t *) PQgetvalue(r, 0, 2);
    out->len = (size_t) PQgetlength(r, 0, 2);
    return ANNAL_OK;
}

static annal_err_t s_stats(void *handle, annal_store_stats_t *out)
{
    annal_pg_t *self = handle;
    annal_err_t err;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long) annal_time_now());
    const char *values[1] = {now};
    PGresult *r = annal_pg_query(self,
                                 "SELECT (SELECT head FROM annal_head WHERE id = 1),"
                                 " (SELECT count(*) FROM annal_aggregates),"
                                 " (SELECT count(*) FROM annal_snapshots),"
                                 " (SELECT removed FROM annal_head WHERE id = 1)"
                                 " + (SELECT count(*) FROM (" EXPIRED ") x)",
                                 1, values, NULL, NULL, &err);
    if (!r)
        return err;
    out->head_sequence = self->locked ? self->txn_head : annal_pg_u64(r, 0, 0);
    uint64_t removed = annal_pg_u64(r, 0, 3); /* or to be: docs/protocol.md, section 7 */
    out->events = out->head_sequence > removed ? out->head_sequence - removed : 0;
    out->aggregates = annal_pg_u64(r, 0, 1);
    out->snapshots = annal_pg_u64(r, 0, 2);
    PQclear(r);
    return ANNAL_OK;
}

/* --- deletion (docs/protocol.md, section 7) ----------------------------------------- */

/* Removes at once, in the batch (under the writers' lock): the rows go, so
   reads need no filter, and the sweep has nothing to do. What PostgreSQL
   keeps of dead rows until VACUUM is the README's "Deleting data". */
static annal_err_t s_remove(void *handle, const char *agg, uint64_t through, bool hard)
{
    annal_pg_t *self = handle;
    annal_err_t err = annal_pg_write_txn(self);
    if (err)
        return err;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long) (through > INT64_MAX ? INT64_MAX : through));
    const char *values[3] = {agg, v, hard ? "t" : "f"};
    PGresult *r = annal_pg_query(
        self,
        "WITH d AS (DELETE FROM annal_events WHERE aggregate_id = $1 AND version <= $2::bigint"
        " RETURNING 1),"
        " s AS (DELETE FROM annal_snapshots WHERE aggregate_id = $1 AND version <= $2::bigint),"
        " g AS (UPDATE annal_aggregates SET gone = true WHERE aggregate_id = $1 AND $3::boolean)"
        " UPDATE annal_head SET removed = removed + (SELECT count(*) FROM d) WHERE id = 1",
        3, values, NULL, NULL, &err);
    PQclear(r);
    return err;
}

/* Deletes up to max of the events retention policies remove now (of agg's
   alone, when not NULL); *deleted says how many. Under the writers' lock. */
static annal_err_t s_expire(annal_pg_t *self, const char *agg, size_t max, size_t *deleted)
{
    *deleted = 0;
    annal_err_t err = annal_pg_write_txn(self);
    if (err)
        return err;
    char now[24], limit[24];
    snprintf(now, sizeof now, "%lld", (long long) annal_time_now());
    snprintf(limit, sizeof limit, "%zu", max > INT64_MAX ? (size_t) INT64_MAX : max);
    const char *values[3] = {now, limit, agg};
    PGresult *r = annal_pg_query(
        self,
        "WITH d AS (DELETE FROM annal_events WHERE sequence IN (" EXPIRED
        " WHERE $3::text IS NULL OR r.aggregate_id = $3 LIMIT $2::bigint) RETURNING 1),"
        " u AS (UPDATE annal_head SET removed = removed + (SELECT count(*) FROM d) WHERE id = 1)"
        " SELECT count(*) FROM d",
        3, values, NULL, NULL, &err);
    if (!r)
        return err;
    *deleted = (size_t) annal_pg_u64(r, 0, 0);
    PQclear(r);
    return ANNAL_OK;
}

/* remove took its rows at once; the sweep deletes what retention policies
   remove, in steps. */
static annal_err_t s_sweep(void *handle, size_t max, size_t *freed, annal_sweep_t *next)
{
    annal_pg_t *self = handle;
    *next = ANNAL_SWEEP_IDLE;
    annal_err_t err;
    PGresult *r = annal_pg_query(self, "SELECT EXISTS (SELECT 1 FROM annal_retention)::int::int8",
                                 0, NULL, NULL, NULL, &err);
    if (!r)
        return err;
    bool policies = annal_pg_u64(r, 0, 0) != 0;
    PQclear(r);
    if (!policies)
        return ANNAL_OK;
    if ((err = s_expire(self, NULL, max, freed)))
        return err;
    *next = *freed == max ? ANNAL_SWEEP_MORE : ANNAL_SWEEP_LATER;
    return ANNAL_OK;
}

static annal_err_t s_retention_put(void *handle, const char *agg, const annal_retention_t *policy)
{
    annal_pg_t *self = handle;
    /* what the policy it had removes stays removed: never read again */
    size_t deleted;
    annal_err_t err = s_expire(self, agg, SIZE_MAX, &deleted);
    if (err)
        return err;
    char count[24], age[24];
    snprintf(count, sizeof count, "%llu", (unsigned long long) policy->max_count);
    snprintf(age, sizeof age, "%llu", (unsigned long long) policy->max_age_s);
    const char *values[3] = {agg, policy->max_count ? count : NULL, policy->max_age_s ? age : NULL};
    PGresult *r = annal_pg_query(
        self,
        policy->max_count || policy->max_age_s
            ? "INSERT INTO annal_retention VALUES ($1, $2::bigint, $3::bigint)"
              " ON CONFLICT (aggregate_id) DO UPDATE SET max_count = excluded.max_count,"
              " max_age_s = excluded.max_age_s"
            : "DELETE FROM annal_retention WHERE aggregate_id = $1 AND $2::bigint IS NULL"
              " AND $3::bigint IS NULL",
        3, values, NULL, NULL, &err);
    PQclear(r);
    return err;
}

static annal_err_t s_retention_get(void *handle, const char *agg, annal_retention_t *out)
{
    annal_pg_t *self = handle;
    const char *values[1] = {agg};
    annal_err_t err;
    PGresult *r = annal_pg_query(self,
                                 "SELECT coalesce(max_count, 0), coalesce(max_age_s, 0)"
                                 " FROM annal_retention WHERE aggregate_id = $1",
                                 1, values, NULL, NULL, &err);
    if (!r)
        return err;
    memset(out, 0, sizeof *out);
    if (PQntuples(r)) {
        out->max_count = annal_pg_u64(r, 0, 0);
        out->max_age_s = annal_pg_u64(r, 0, 1);
    }
    PQclear(r);
    return ANNAL_OK;
}

/* VACUUM FULL: PostgreSQL rewrites each table into new files without its
   dead rows, whose bytes VACUUM alone leaves in place (README, "Deleting
   data"); each table is locked while it is rewritten. */
static annal_err_t s_compact(void *handle, char *why, size_t whylen)
{
    annal_pg_t *self = handle;
    if (!self->conn || self->in_txn)
        return ANNAL_ERR_INTERNAL;
    static const char *const tables[] = {"annal_events", "annal_snapshots"};
    for (size_t i = 0; i < 2; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "VACUUM FULL %s", tables[i]);
        if (annal_pg_exec(self->conn, sql, why, whylen))
            return ANNAL_ERR_UNAVAILABLE;
    }
    return ANNAL_OK;
}

/* --- what other brokers commit ------------------------------------------------------ */

/* A commit that appended announces its new head on channel annal_head, one
   that changed a consumer group the group's name on annal_group; a second
   connection listens, so that every broker can publish every event and
   answer its waiting fetches. */
static int s_watch_fd(void *handle)
{
    annal_pg_t *self = handle;
    if (!self->listen) {
        /* not while the main connection is down: connecting blocks the
           broker's loop, for up to connect_timeout when the server is away
           (the heartbeat's catch-up brings the main one back) */
        int64_t now = annal_time_mono_ms();
        if (now < self->listen_retry_at || !self->conn)
            return -1;
        self->listen = s_connectdb(self->conninfo);
        if (PQstatus(self->listen) != CONNECTION_OK
            || annal_pg_exec(self->listen, "LISTEN annal_head; LISTEN annal_group", NULL, 0)) {
            PQfinish(self->listen);
            self->listen = NULL;
            self->listen_retry_at = now + 1000;
            return -1;
        }
    }
    return PQsocket(self->listen);
}

static uint64_t s_moved(void *handle)
{
    annal_pg_t *self = handle;
    if (!self->listen)
        return UINT64_MAX;
    if (!PQconsumeInput(self->listen) || PQstatus(self->listen) != CONNECTION_OK) {
        PQfinish(self->listen); /* announcements may be lost until it is back */
        self->listen = NULL;
        return UINT64_MAX;
    }
    uint64_t top = 0;
    PGnotify *n;
    while ((n = PQnotifies(self->listen))) {
        uint64_t head = strcmp(n->relname, "annal_head") == 0 ? strtoull(n->extra, NULL, 10) : 0;
        top = head > top ? head : top;
        PQfreemem(n);
    }
    return top;
}

const annal_store_ops_t annal_pg_ops = {
    .name = "postgresql",
    .open = s_open,
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .abort = s_abort,
    .checkpoint = NULL,
    .prepare = annal_pg_prepare,
    .append = s_append,
    .version = s_version,
    .read = s_read,
    .read_all = s_read_all,
    .put_snapshot = s_put_snapshot,
    .get_snapshot = s_get_snapshot,
    .stats = s_stats,
    .watch_fd = s_watch_fd,
    .moved = s_moved,
    .load_begin = annal_pg_load_begin,
    .load_end = annal_pg_load_end,
    .remove = s_remove,
    .sweep = s_sweep,
    .retention_put = s_retention_put,
    .retention_get = s_retention_get,
    .compact = s_compact,
    .group_put = annal_pg_group_put,
    .group_get = annal_pg_group_get,
    .group_each = annal_pg_group_each,
    .group_delete = annal_pg_group_delete,
    .group_mark = annal_pg_group_mark,
    .group_unmark = annal_pg_group_unmark,
    .group_marks = annal_pg_group_marks,
    .group_floor = annal_pg_group_floor,
    .group_sync = annal_pg_group_sync,
    .group_bump = annal_pg_group_bump,
    .group_lease = annal_pg_group_lease,
    .group_leases = annal_pg_group_leases,
};
