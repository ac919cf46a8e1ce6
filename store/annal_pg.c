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
    path instead (below): a few round trips for the whole batch. The batch
    keeps the head in memory and writes annal_head once, with its COMMIT.
    Every event of one batch gets the same recorded_at, never smaller than
    the last one stored (annal_head keeps it), whatever the brokers' clocks
    say.

    The schema is created and migrated at open under an advisory lock, so
    several brokers can start at once; annal_schema holds its version. */
#include <arpa/inet.h>
#include <czmq.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_store.h"
#include "annal_time.h"

#define SCHEMA_LOCK 7234001 /* pg_advisory_lock key for migrations */

/* The schema's migrations, in order: migration i takes a database from
   version i to i + 1. Each runs in one transaction. Never edit one that has
   shipped: add the next. */
static const char *s_schema_v1 =
    "CREATE TABLE annal_head (id smallint PRIMARY KEY CHECK (id = 1),"
    "  head bigint NOT NULL, recorded_at bigint NOT NULL);"
    "INSERT INTO annal_head VALUES (1, 0, 0);"
    "CREATE TABLE annal_events (sequence bigint PRIMARY KEY, event_id uuid NOT NULL UNIQUE,"
    "  aggregate_id text NOT NULL, version bigint NOT NULL, event_type text NOT NULL,"
    "  event_data bytea NOT NULL, metadata bytea NOT NULL, recorded_at bigint NOT NULL,"
    "  append_size integer NOT NULL, append_index integer NOT NULL,"
    "  UNIQUE (aggregate_id, version));"
    "CREATE TABLE annal_aggregates (aggregate_id text PRIMARY KEY, version bigint NOT NULL);"
    "CREATE TABLE annal_snapshots (aggregate_id text NOT NULL, version bigint NOT NULL,"
    "  folded boolean NOT NULL, state bytea NOT NULL, PRIMARY KEY (aggregate_id, version));"
    /* status: 0 appended, 1 an earlier identical append, 2 version conflict
       (version: the current one), 3 malformed (detail) */
    "CREATE FUNCTION annal_append(p_agg text, p_expect int, p_expected bigint, p_now bigint,"
    "  p_ids uuid[], p_client boolean[], p_types text[], p_data bytea[], p_meta bytea[],"
    "  OUT status int, OUT first_seq bigint, OUT last_seq bigint, OUT version bigint,"
    "  OUT recorded bigint, OUT detail text) LANGUAGE plpgsql AS $f$\n"
    "DECLARE n int := cardinality(p_ids); h bigint; rec bigint; cur bigint; s bigint;\n"
    "  e annal_events; other uuid; k int;\n"
    "BEGIN\n"
    "  SELECT head, recorded_at INTO h, rec FROM annal_head WHERE id = 1 FOR UPDATE;\n"
    "  FOR k IN 1..n LOOP\n"
    "    CONTINUE WHEN NOT p_client[k];\n"
    "    SELECT sequence INTO s FROM annal_events WHERE event_id = p_ids[k];\n"
    "    CONTINUE WHEN NOT FOUND;\n"
    "    status := 3;\n"
    "    IF k > 1 THEN\n"
    "      detail := format('events[%s]: event_id %s is already stored; a batch is either a '\n"
    "        'retry of an earlier batch or all new events', k - 1, p_ids[k]); RETURN;\n"
    "    END IF;\n"
    "    SELECT * INTO e FROM annal_events WHERE sequence = s;\n"
    "    IF e.aggregate_id <> p_agg THEN\n"
    "      detail := format('event_id %s is already stored for another aggregate', p_ids[1]);\n"
    "      RETURN;\n"
    "    END IF;\n"
    "    IF n > 1 AND (e.append_index <> 0 OR e.append_size <> n) THEN\n"
    "      detail := format('event_id %s is already stored, but not as the first of a batch '\n"
    "        'of %s events: a retry must resend the same batch', p_ids[1], n); RETURN;\n"
    "    END IF;\n"
    "    last_seq := s;\n"
    "    FOR k IN 2..n LOOP\n"
    "      SELECT a.sequence, a.event_id INTO s, other FROM annal_events a\n"
    "        WHERE a.aggregate_id = p_agg AND a.version = e.version + k - 1;\n"
    "      IF NOT FOUND OR NOT p_client[k] OR other <> p_ids[k] THEN\n"
    "        detail := format('the batch''s first event_id is already stored but events[%s] '\n"
    "          'does not match the stored batch: a retry must resend the same events', k - 1);\n"
    "        RETURN;\n"
    "      END IF;\n"
    "      last_seq := s;\n"
    "    END LOOP;\n"
    "    status := 1; first_seq := e.sequence; version := e.version + n - 1;\n"
    "    recorded := e.recorded_at; RETURN;\n"
    "  END LOOP;\n"
    "  SELECT a.version INTO cur FROM annal_aggregates a WHERE a.aggregate_id = p_agg;\n"
    "  cur := coalesce(cur, 0);\n"
    "  IF (p_expect = 1 AND cur <> p_expected) OR (p_expect = 2 AND cur = 0) THEN\n"
    "    status := 2; version := cur; RETURN;\n"
    "  END IF;\n"
    "  rec := greatest(rec, p_now);\n"
    "  INSERT INTO annal_events SELECT h + i, p_ids[i], p_agg, cur + i, p_types[i], p_data[i],\n"
    "    p_meta[i], rec, n, i - 1 FROM generate_series(1, n) i;\n"
    "  INSERT INTO annal_aggregates VALUES (p_agg, cur + n)\n"
    "    ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version;\n"
    "  UPDATE annal_head SET head = h + n, recorded_at = rec WHERE id = 1;\n"
    "  PERFORM pg_notify('annal_head', (h + n)::text);\n"
    "  status := 0; first_seq := h + 1; last_seq := h + n; version := cur + n; recorded := rec;\n"
    "END $f$;";

static const char *s_schema_v2 =
    "DROP FUNCTION annal_append(text, int, bigint, bigint, uuid[], boolean[], text[], bytea[],"
    "  bytea[]);"
    /* Appends after sequence h, at recorded_at rec (the caller holds the
       lock on annal_head). status: 0 appended, 1 an earlier identical
       append, 2 version conflict (version: the current one), 3 malformed
       (detail) */
    "CREATE FUNCTION annal_append(p_agg text, p_expect int, p_expected bigint, h bigint,"
    "  rec bigint,"
    "  p_ids uuid[], p_client boolean[], p_types text[], p_data bytea[], p_meta bytea[],"
    /* version 1 had p_now where h, rec are, and moved annal_head itself */
    "  OUT status int, OUT first_seq bigint, OUT last_seq bigint, OUT version bigint,"
    "  OUT recorded bigint, OUT detail text) LANGUAGE plpgsql AS $f$\n"
    "DECLARE n int := cardinality(p_ids); cur bigint; s bigint;\n"
    "  e annal_events; other uuid; k int;\n"
    "BEGIN\n"

    "  FOR k IN 1..n LOOP\n"
    "    CONTINUE WHEN NOT p_client[k];\n"
    "    SELECT sequence INTO s FROM annal_events WHERE event_id = p_ids[k];\n"
    "    CONTINUE WHEN NOT FOUND;\n"
    "    status := 3;\n"
    "    IF k > 1 THEN\n"
    "      detail := format('events[%s]: event_id %s is already stored; a batch is either a '\n"
    "        'retry of an earlier batch or all new events', k - 1, p_ids[k]); RETURN;\n"
    "    END IF;\n"
    "    SELECT * INTO e FROM annal_events WHERE sequence = s;\n"
    "    IF e.aggregate_id <> p_agg THEN\n"
    "      detail := format('event_id %s is already stored for another aggregate', p_ids[1]);\n"
    "      RETURN;\n"
    "    END IF;\n"
    "    IF n > 1 AND (e.append_index <> 0 OR e.append_size <> n) THEN\n"
    "      detail := format('event_id %s is already stored, but not as the first of a batch '\n"
    "        'of %s events: a retry must resend the same batch', p_ids[1], n); RETURN;\n"
    "    END IF;\n"
    "    last_seq := s;\n"
    "    FOR k IN 2..n LOOP\n"
    "      SELECT a.sequence, a.event_id INTO s, other FROM annal_events a\n"
    "        WHERE a.aggregate_id = p_agg AND a.version = e.version + k - 1;\n"
    "      IF NOT FOUND OR NOT p_client[k] OR other <> p_ids[k] THEN\n"
    "        detail := format('the batch''s first event_id is already stored but events[%s] '\n"
    "          'does not match the stored batch: a retry must resend the same events', k - 1);\n"
    "        RETURN;\n"
    "      END IF;\n"
    "      last_seq := s;\n"
    "    END LOOP;\n"
    "    status := 1; first_seq := e.sequence; version := e.version + n - 1;\n"
    "    recorded := e.recorded_at; RETURN;\n"
    "  END LOOP;\n"
    "  SELECT a.version INTO cur FROM annal_aggregates a WHERE a.aggregate_id = p_agg;\n"
    "  cur := coalesce(cur, 0);\n"
    "  IF (p_expect = 1 AND cur <> p_expected) OR (p_expect = 2 AND cur = 0) THEN\n"
    "    status := 2; version := cur; RETURN;\n"
    "  END IF;\n"

    "  INSERT INTO annal_events SELECT h + i, p_ids[i], p_agg, cur + i, p_types[i], p_data[i],\n"
    "    p_meta[i], rec, n, i - 1 FROM generate_series(1, n) i;\n"
    "  INSERT INTO annal_aggregates VALUES (p_agg, cur + n)\n"
    "    ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version;\n"

    "  status := 0; first_seq := h + 1; last_seq := h + n; version := cur + n; recorded := rec;\n"
    "END $f$;";

/* Prepared once per connection: the statement of every append. */
#define APPEND_SQL                                                                               \
    "SELECT status::int8, coalesce(first_seq, 0), coalesce(last_seq, 0),"                     \
    " coalesce(version, 0), coalesce(recorded, 0), coalesce(detail, '')"                        \
    " FROM annal_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"

#define EVENT_COLUMNS                                                                            \
    "sequence, event_id, aggregate_id, version, event_type, event_data, metadata, recorded_at"

typedef struct {
    char *conninfo;    /* the connection string */
    PGconn *conn;      /* the connection, or NULL while down */
    PGconn *listen;    /* LISTEN annal_head, or NULL while down */
    int64_t listen_retry_at; /* no new listen connection before this (monotonic ms) */
    PGresult *result;  /* the last read's rows, which event views borrow */
    bool in_txn;       /* a batch is open */
    bool txn_open;     /* a transaction is open on the server (ROLLBACK is owed) */
    bool read_only;    /* it is the read-only one of a batch that has not written */
    int64_t now;       /* the clock at the batch's start */
    bool locked;       /* the batch holds annal_head's row lock */
    uint64_t head, txn_head; /* annal_head when locked, and after the batch's appends */
    int64_t recorded;  /* recorded_at of the batch's events */
    int64_t retry_at;  /* no reconnection before this (monotonic ms) */
    int backoff_ms;    /* the next wait after a failed connection */
    int loading;       /* migration, and the fast path's flush: LOAD_* */
    bool fast;         /* this batch's appends take the fast path (s_prepare) */
    zhashx_t *versions; /* fast path: aggregate id -> agg_t, each one the batch appends to */
    zhashx_t *ids;     /* fast path: client event ids (text) stored, or written by the batch */
    size_t rows;       /* fast path: events in copy, not yet sent */
    char *copy;        /* COPY rows not sent yet (migration, fast path) */
    size_t copy_len, copy_cap;
} pg_t;

enum { LOAD_NONE, LOAD_OPEN, LOAD_EVENTS, LOAD_SNAPSHOTS };

/* Fast path: an aggregate's version as the batch goes. */
typedef struct {
    uint64_t version; /* current, the batch's appends included */
    bool dirty;       /* annal_aggregates lags behind */
} agg_t;

#define FAST_MIN 4 /* appends in a batch for the fast path (fewer: annal_append each) */

/* --- values in PostgreSQL's binary format ------------------------------------- */

static uint64_t s_u64(const PGresult *r, int row, int col)
{
    uint64_t v = 0;
    const uint8_t *p = (const uint8_t *) PQgetvalue(r, row, col);
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* --- the connection -------------------------------------------------------------- */

static void s_disconnect(pg_t *self)
{
    PQclear(self->result);
    self->result = NULL;
    PQfinish(self->conn);
    self->conn = NULL;
    self->in_txn = false;
}

/* Whether a failed call lost the connection (then it is dropped, to be made
   again at the next batch). */
static bool s_lost(pg_t *self)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return false;
    s_disconnect(self);
    return true;
}

/* Maps a failed result to annal's error: a lost connection or a server
   that refuses work for now is unavailable, anything else internal. */
static annal_err_t s_fail(pg_t *self, PGresult *r)
{
    const char *field = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char state[6] = "";
    if (field)
        snprintf(state, sizeof state, "%s", field); /* it lives in r */
    PQclear(r);
    if (s_lost(self))
        return ANNAL_ERR_UNAVAILABLE;
    /* 08 connection, 53 resources (53100: disk full), 57 operator action
       (a cancel, a statement timeout), 40 serialization / deadlock, 55P03 a
       lock timeout: all worth a retry */
    if (*state && (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0
                   || strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0
                   || strcmp(state, "55P03") == 0))
        return strcmp(state, "53100") == 0 ? ANNAL_ERR_NO_SPACE : ANNAL_ERR_UNAVAILABLE;
    return ANNAL_ERR_INTERNAL;
}

/* Runs sql (no parameters); 0, or -1 with the server's message in why. */
static int s_exec(PGconn *conn, const char *sql, char *why, size_t whylen)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && why)
        snprintf(why, whylen, "%s", PQerrorMessage(conn));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Creates or checks the schema, under an advisory lock so that brokers
   starting together do it once. */
static int s_migrate(PGconn *conn, char *why, size_t whylen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d)", SCHEMA_LOCK);
    if (s_exec(conn, sql, why, whylen))
        return -1;
    int rc = s_exec(conn, "CREATE TABLE IF NOT EXISTS annal_schema (version integer NOT NULL)",
                    why, whylen);
    PGresult *r = rc ? NULL : PQexec(conn, "SELECT version FROM annal_schema");
    if (!rc && PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, whylen, "%s", PQerrorMessage(conn));
        rc = -1;
    }
    int version = !rc && PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    const char *const migrations[] = {s_schema_v1, s_schema_v2};
    int known = (int) (sizeof migrations / sizeof migrations[0]);
    if (!rc && version > known) {
        snprintf(why, whylen, "the database has annal schema %d; this annald knows up to %d",
                 version, known);
        rc = -1;
    }
    for (; !rc && version < known; version++) {
        const char *step = migrations[version];
        char *sql_step = malloc(strlen(step) + 160);
        if (!sql_step) {
            rc = -1;
            break;
        }
        sprintf(sql_step, "BEGIN; %s %s; COMMIT;", step,
                version == 0 ? "INSERT INTO annal_schema VALUES (1)"
                             : "UPDATE annal_schema SET version = version + 1");
        rc = s_exec(conn, sql_step, why, whylen);
        if (rc)
            s_exec(conn, "ROLLBACK", NULL, 0);
        free(sql_step);
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d)", SCHEMA_LOCK);
    s_exec(conn, sql, NULL, 0);
    return rc;
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
    static const char *const keys[] = {"connect_timeout", "keepalives_idle",
                                       "keepalives_interval", "keepalives_count", "dbname", NULL};
    const char *const values[] = {"5", "10", "5", "3", conninfo, NULL};
    return PQconnectdbParams(keys, values, 1);
}

/* Connects and checks the database; 0, or -1 with the reason in why. */
static int s_connect(pg_t *self, char *why, size_t whylen)
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
    if (s_exec(self->conn, "SET synchronous_commit = on", why, whylen)
        || s_migrate(self->conn, why, whylen)) {
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

static void s_free_agg(void **item)
{
    free(*item);
    *item = NULL;
}

static void s_close(void *handle)
{
    pg_t *self = handle;
    if (!self)
        return;
    if (self->in_txn && self->conn)
        s_exec(self->conn, "ROLLBACK", NULL, 0);
    s_disconnect(self);
    PQfinish(self->listen);
    zhashx_destroy(&self->versions);
    zhashx_destroy(&self->ids);
    free(self->copy);
    free(self->conninfo);
    free(self);
}

static annal_err_t s_open(const char *location, const annal_store_options_t *opts, void **out,
                          char *why, size_t whylen)
{
    (void) opts;
    pg_t *self = calloc(1, sizeof *self);
    if (!self || !(self->conninfo = strdup(location)) || !(self->versions = zhashx_new())
        || !(self->ids = zhashx_new())) {
        snprintf(why, whylen, "out of memory");
        s_close(self);
        return ANNAL_ERR_UNAVAILABLE;
    }
    zhashx_set_destructor(self->versions, s_free_agg);
    if (s_connect(self, why, whylen)) {
        s_close(self);
        return ANNAL_ERR_UNAVAILABLE;
    }
    *out = self;
    return ANNAL_OK;
}

/* --- COPY rows (migration, and batches of many appends) ---------------------------- */

/* The 36 characters of a UUID, into buf (37 bytes). */
static char *s_uuid_text(const uint8_t *u, char *buf)
{
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
             u[13], u[14], u[15]);
    return buf;
}

#define COPY_CHUNK (256u << 10) /* migration: bytes of rows sent at a time */
#define COPY_KEEP (16u << 20)   /* a bigger buffer is freed after use */

/* Room for need more bytes in the COPY buffer; -1 out of memory. */
static int s_room(pg_t *self, size_t need)
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
static void s_copy_text(pg_t *self, const char *text, size_t len)
{
    char *p = self->copy + self->copy_len;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        const char *esc = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : NULL;
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
static void s_copy_bytes(pg_t *self, const uint8_t *b, size_t len)
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

static void s_copy_printf(pg_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_copy_printf(pg_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(self->copy + self->copy_len, self->copy_cap - self->copy_len, fmt, ap);
    va_end(ap);
    self->copy_len += n > 0 ? (size_t) n : 0;
}

/* Sends the buffered rows (all, or once there are enough). */
static annal_err_t s_copy_send(pg_t *self, bool all, char *why, size_t whylen)
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
static annal_err_t s_copy_end(pg_t *self, char *why, size_t whylen)
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
        err = s_fail(self, r); /* a lock timeout or a full disk is not a bug */
    }
    return err;
}

/* Starts COPY of table when it is not the one under way. */
static annal_err_t s_copy_start(pg_t *self, int what, const char *sql, char *why, size_t whylen)
{
    if (self->loading == what)
        return ANNAL_OK;
    annal_err_t err = s_copy_end(self, why, whylen);
    if (err)
        return err;
    PGresult *r = PQexec(self->conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        snprintf(why, whylen, "cannot start COPY: %s", PQerrorMessage(self->conn));
        return s_fail(self, r);
    }
    PQclear(r);
    self->loading = what;
    return ANNAL_OK;
}

#define COPY_EVENTS "COPY annal_events (" EVENT_COLUMNS ", append_size, append_index) FROM STDIN"

/* Adds event e (the index-th of an append of size events) as a row of
   COPY annal_events; -1 out of memory. */
static int s_copy_row(pg_t *self, const annal_event_t *e, uint32_t size, uint32_t index)
{
    if (s_room(self, 200 + 2 * (e->aggregate_id_len + e->event_type_len)
                         + 2 * (e->data_len + e->metadata_len)))
        return -1;
    char id[37];
    s_copy_printf(self, "%llu\t%s\t", (unsigned long long) e->sequence,
                  s_uuid_text(e->event_id, id));
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

/* --- batches ----------------------------------------------------------------------- */

static void s_abort(void *handle);
static annal_err_t s_flush_rows(pg_t *self);
static PGresult *s_query(pg_t *self, const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats, annal_err_t *err);

static annal_err_t s_begin(void *handle)
{
    pg_t *self = handle;
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
static void s_sync_txn(pg_t *self)
{
    self->txn_open = self->conn && PQtransactionStatus(self->conn) != PQTRANS_IDLE;
}

/* Before a batch's first statement: its reads see one snapshot, in a
   read-only REPEATABLE READ transaction (which its first write ends, at no
   cost: it wrote nothing). */
static annal_err_t s_read_txn(pg_t *self)
{
    PGresult *r = PQexec(self->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    s_sync_txn(self);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_fail(self, r);
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
static annal_err_t s_write_txn(pg_t *self)
{
    if (!self->in_txn || !self->conn)
        return ANNAL_ERR_INTERNAL;
    if (self->locked)
        return ANNAL_OK;
    char sql[160];
    snprintf(sql, sizeof sql, "%s%sSELECT head, recorded_at FROM annal_head WHERE id = 1 FOR UPDATE",
             self->read_only ? "COMMIT; " : "", self->txn_open && !self->read_only ? "" : "BEGIN; ");
    PGresult *r = PQexec(self->conn, sql);
    s_sync_txn(self); /* a failed SELECT leaves an aborted transaction to roll back */
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return s_fail(self, r);
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
    pg_t *self = handle;
    if (!self->in_txn)
        return ANNAL_ERR_INTERNAL;
    annal_err_t err = s_flush_rows(self);
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
        annal_err_t err = s_fail(self, r);
        if (self->conn)
            s_exec(self->conn, "ROLLBACK", NULL, 0); /* should the UPDATE have failed */
        return err == ANNAL_ERR_NO_SPACE ? err : ANNAL_ERR_UNAVAILABLE;
    }
    PQclear(r);
    return ANNAL_OK;
}

static void s_abort(void *handle)
{
    pg_t *self = handle;
    if (!self->in_txn)
        return;
    bool open = self->txn_open;
    self->in_txn = self->txn_open = self->read_only = self->locked = self->fast = false;
    self->rows = self->copy_len = 0;
    if (open && self->conn && s_exec(self->conn, "ROLLBACK", NULL, 0))
        s_lost(self);
}

/* --- statements ---------------------------------------------------------------------- */

/* Runs a statement (sql, or the prepared one named by prepared) with text
   parameters (NULL lengths) or binary ones, and binary results; the result,
   or NULL after mapping the failure to *err. */
static PGresult *s_run(pg_t *self, const char *prepared, const char *sql, int n,
                       const char *const *values, const int *lengths, const int *formats,
                       annal_err_t *err)
{
    if (!self->in_txn || !self->conn) {
        *err = ANNAL_ERR_INTERNAL;
        return NULL;
    }
    if (!self->txn_open && (*err = s_read_txn(self)))
        return NULL;
    if ((*err = s_flush_rows(self))) { /* what the batch wrote comes first */
        if (*err != ANNAL_ERR_NO_SPACE) /* the batch's writes failed, not this statement */
            *err = ANNAL_ERR_REFUSED;
        return NULL;
    }
    PGresult *r = prepared ? PQexecPrepared(self->conn, prepared, n, values, lengths, formats, 1)
                           : PQexecParams(self->conn, sql, n, NULL, values, lengths, formats, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        *err = s_fail(self, r);
        return NULL;
    }
    *err = ANNAL_OK;
    return r;
}

static PGresult *s_query(pg_t *self, const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats, annal_err_t *err)
{
    return s_run(self, NULL, sql, n, values, lengths, formats, err);
}

/* Keeps r as the rows event views point into, until the next read. */
static void s_keep(pg_t *self, PGresult *r)
{
    PQclear(self->result);
    self->result = r;
}

/* Fills ev from row i of r (columns as EVENT_COLUMNS). */
static void s_event(const PGresult *r, int i, annal_event_t *ev)
{
    ev->sequence = s_u64(r, i, 0);
    ev->event_id = (const uint8_t *) PQgetvalue(r, i, 1);
    ev->aggregate_id = PQgetvalue(r, i, 2);
    ev->aggregate_id_len = (size_t) PQgetlength(r, i, 2);
    ev->version = s_u64(r, i, 3);
    ev->event_type = PQgetvalue(r, i, 4);
    ev->event_type_len = (size_t) PQgetlength(r, i, 4);
    ev->data = (const uint8_t *) PQgetvalue(r, i, 5);
    ev->data_len = (size_t) PQgetlength(r, i, 5);
    ev->metadata = (const uint8_t *) PQgetvalue(r, i, 6);
    ev->metadata_len = (size_t) PQgetlength(r, i, 6);
    ev->recorded_at = (int64_t) s_u64(r, i, 7);
}

/* Appends every row of r to out. */
static annal_err_t s_events(pg_t *self, PGresult *r, annal_event_list_t *out)
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

/* A PostgreSQL array literal of n items given by item(i), each quoted. */
typedef const char *(*item_fn)(const void *arg, size_t i, char *buf);

static const char *s_uuid_item(const void *arg, size_t i, char *buf)
{
    return s_uuid_text(((const annal_new_event_t *) arg)[i].event_id, buf);
}

static const char *s_client_item(const void *arg, size_t i, char *buf)
{
    (void) buf;
    return ((const annal_new_event_t *) arg)[i].client_id ? "t" : "f";
}

static const char *s_id_item(const void *arg, size_t i, char *buf)
{
    return s_uuid_text(((const uint8_t (*)[16]) arg)[i], buf);
}

static const char *s_string_item(const void *arg, size_t i, char *buf)
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
static char *s_array(const void *arg, size_t n, item_fn item)
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

/* --- the fast path: a batch of many appends ------------------------------------------ */

/* A batch with FAST_MIN appends or more takes the writers' lock at once
   (s_prepare) and reads, in one statement, the current versions of the
   aggregates it appends to and which of its client event ids are stored.
   As nobody else can append while the lock is held, each append's checks
   then run here, and its rows go into a COPY buffer, sent with the
   aggregates' new versions before the batch's next statement or at commit:
   a few round trips per batch instead of one per append. An append whose
   event ids are already stored (a retry, or a mistake) flushes the buffer
   and runs annal_append, which knows every such case. */

/* Sends the buffered rows, then the new versions of the aggregates. */
static annal_err_t s_flush_rows(pg_t *self)
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
    char (*text)[24] = err ? NULL : calloc(cap + 1, sizeof *text), *aggs = NULL, *versions = NULL;
    if (!err && (!names || !text || !(numbers = calloc(cap + 1, sizeof *numbers))))
        err = ANNAL_ERR_UNAVAILABLE;
    for (agg_t *a = err ? NULL : zhashx_first(self->versions); a;
         a = zhashx_next(self->versions)) {
        if (!a->dirty)
            continue;
        a->dirty = false;
        snprintf(text[n], sizeof text[n], "%llu", (unsigned long long) a->version);
        names[n] = (char *) zhashx_cursor(self->versions);
        numbers[n] = text[n];
        n++;
    }
    if (!err && n && (!(aggs = s_array(names, n, s_string_item))
                      || !(versions = s_array(numbers, n, s_string_item))))
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
            err = s_fail(self, r);
        else
            PQclear(r);
    }
    free(names);
    free(numbers);
    free(text);
    free(aggs);
    free(versions);
    if (err) {
        s_sync_txn(self);
        if (s_lost(self))
            err = ANNAL_ERR_UNAVAILABLE;
    }
    return err;
}

static annal_err_t s_prepare(void *handle, const annal_append_hint_t *appends, size_t n)
{
    pg_t *self = handle;
    self->fast = false;
    if (n < FAST_MIN)
        return ANNAL_OK;
    annal_err_t err = s_write_txn(self);
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
    uint8_t (*ids)[16] = calloc(nids + 1, sizeof *ids);
    for (size_t i = 0, j = 0; ids && i < n; i++)
        for (size_t k = 0; k < appends[i].n; k++)
            if (appends[i].events[k].client_id)
                memcpy(ids[j++], appends[i].events[k].event_id, 16);
    char *agg_array = aggs ? s_array(aggs, n, s_string_item) : NULL;
    char *id_array = ids ? s_array(ids, nids, s_id_item) : NULL;
    PGresult *r = NULL;
    err = ANNAL_ERR_UNAVAILABLE;
    if (agg_array && id_array) {
        const char *values[2] = {agg_array, id_array};
        r = s_query(self,
                    "SELECT aggregate_id, version, NULL::uuid FROM annal_aggregates"
                    " WHERE aggregate_id = ANY($1::text[])"
                    " UNION ALL SELECT NULL, NULL, event_id FROM annal_events"
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
        if (!a && (!(a = calloc(1, sizeof *a))
                   || zhashx_insert(self->versions, appends[i].agg, a)))
            err = ANNAL_ERR_UNAVAILABLE;
    }
    for (int row = 0; row < PQntuples(r) && !err; row++) {
        if (!PQgetisnull(r, row, 0)) {
            agg_t *a = zhashx_lookup(self->versions, PQgetvalue(r, row, 0));
            if (a)
                a->version = s_u64(r, row, 1);
            continue;
        }
        char text[37];
        s_uuid_text((const uint8_t *) PQgetvalue(r, row, 2), text);
        zhashx_update(self->ids, text, (void *) 1);
    }
    PQclear(r);
    self->fast = !err;
    return err;
}

/* The fast path of an append (see above): ANNAL_ERR_RETRY when it is not
   for it (annal_append must run), else as s_append. */
static annal_err_t s_append_fast(pg_t *self, const char *agg, annal_expect_t expect,
                                 uint64_t expected, const annal_new_event_t *events, size_t n,
                                 annal_append_result_t *res)
{
    agg_t *a = self->fast && self->locked ? zhashx_lookup(self->versions, agg) : NULL;
    if (!a)
        return ANNAL_ERR_RETRY;
    char text[37];
    for (size_t i = 0; i < n; i++) /* noted as written: a later use goes to annal_append */
        if (events[i].client_id
            && zhashx_insert(self->ids, s_uuid_text(events[i].event_id, text), (void *) 1))
            return ANNAL_ERR_RETRY;
    uint64_t cur = a->version;
    if ((expect == ANNAL_EXPECT_EXACT && cur != expected)
        || (expect == ANNAL_EXPECT_EXISTS && cur == 0)) {
        res->actual_version = cur;
        return ANNAL_ERR_CONFLICT;
    }
    size_t alen = strlen(agg);
    for (size_t i = 0; i < n; i++) {
        const annal_new_event_t *e = &events[i];
        annal_event_t ev = {self->txn_head + 1 + i, e->event_id, agg, alen, cur + 1 + i,
                            e->event_type, strlen(e->event_type), e->data.data, e->data.size,
                            e->metadata.data, e->metadata.size, self->recorded};
        if (s_copy_row(self, &ev, (uint32_t) n, (uint32_t) i))
            return ANNAL_ERR_UNAVAILABLE;
        self->rows++;
    }
    a->version = cur + n;
    a->dirty = true;
    res->first_sequence = self->txn_head + 1;
    res->last_sequence = self->txn_head = self->txn_head + n;
    res->version = a->version;
    res->recorded_at = self->recorded;
    return ANNAL_OK;
}

static annal_err_t s_append(void *handle, const char *agg, annal_expect_t expect,
                            uint64_t expected, const annal_new_event_t *events, size_t n,
                            annal_append_result_t *res, char *why, size_t whylen)
{
    pg_t *self = handle;
    memset(res, 0, sizeof *res);
    if (n == 0 || n > INT32_MAX)
        return ANNAL_ERR_INTERNAL;
    annal_err_t err = s_append_fast(self, agg, expect, expected, events, n, res);
    if (err != ANNAL_ERR_RETRY) {
        if (err == ANNAL_ERR_UNAVAILABLE) /* out of memory with half a row: drop the batch */
            s_abort(self);
        return err;
    }
    if ((err = s_write_txn(self)))
        return err;
    char ex[4], exv[24], head[24], rec[24];
    snprintf(ex, sizeof ex, "%d",
             expect == ANNAL_EXPECT_EXACT ? 1 : expect == ANNAL_EXPECT_EXISTS ? 2 : 0);
    snprintf(exv, sizeof exv, "%llu", (unsigned long long) expected);
    snprintf(head, sizeof head, "%llu", (unsigned long long) self->txn_head);
    snprintf(rec, sizeof rec, "%lld", (long long) self->recorded);
    int dlen = 0, mlen = 0;
    char *ids = s_array(events, n, s_uuid_item), *client = s_array(events, n, s_client_item);
    char *types = s_array(events, n, s_type_item);
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
    uint64_t status = s_u64(r, 0, 0);
    res->first_sequence = s_u64(r, 0, 1);
    res->last_sequence = s_u64(r, 0, 2);
    if (status == 0)
        self->txn_head = res->last_sequence;
    agg_t *a = self->fast ? zhashx_lookup(self->versions, agg) : NULL;
    if (a && (status == 0 || status == 2)) /* annal_aggregates has it: not dirty */
        a->version = s_u64(r, 0, 3);
    char text[37];
    for (size_t i = 0; self->fast && status == 0 && i < n; i++) /* stored now */
        if (events[i].client_id)
            zhashx_update(self->ids, s_uuid_text(events[i].event_id, text), (void *) 1);
    res->recorded_at = (int64_t) s_u64(r, 0, 4);
    err = ANNAL_OK;
    if (status == 1)
        res->duplicate = true;
    if (status == 2) {
        res->actual_version = s_u64(r, 0, 3);
        err = ANNAL_ERR_CONFLICT;
    }
    else
        res->version = s_u64(r, 0, 3);
    if (status == 3) {
        snprintf(why, whylen, "%s", PQgetvalue(r, 0, 5));
        err = ANNAL_ERR_MALFORMED;
    }
    PQclear(r);
    return err;
}

static annal_err_t s_version(void *handle, const char *agg, uint64_t *version)
{
    pg_t *self = handle;
    annal_err_t err;
    const char *values[1] = {agg};
    PGresult *r = s_query(self, "SELECT version FROM annal_aggregates WHERE aggregate_id = $1",
                          1, values, NULL, NULL, &err);
    if (!r)
        return err;
    *version = PQntuples(r) ? s_u64(r, 0, 0) : 0;
    PQclear(r);
    return ANNAL_OK;
}

static annal_err_t s_read(void *handle, const char *agg, uint64_t from, bool backward, size_t max,
                          annal_event_list_t *out)
{
    pg_t *self = handle;
    out->count = 0;
    if (max == 0)
        return ANNAL_OK;
    if (backward && from == 0)
        return ANNAL_OK; /* as on LMDB: nothing below version 1 */
    char f[24], m[24];
    snprintf(f, sizeof f, "%llu", (unsigned long long) (from > INT64_MAX ? INT64_MAX : from));
    snprintf(m, sizeof m, "%zu", max);
    const char *values[3] = {agg, f, m};
    annal_err_t err;
    PGresult *r = s_query(self,
                          backward ? "SELECT " EVENT_COLUMNS " FROM annal_events"
                                     " WHERE aggregate_id = $1 AND version <= $2"
                                     " ORDER BY version DESC LIMIT $3"
                                   : "SELECT " EVENT_COLUMNS " FROM annal_events"
                                     " WHERE aggregate_id = $1 AND version >= $2"
                                     " ORDER BY version LIMIT $3",
                          3, values, NULL, NULL, &err);
    return r ? s_events(self, r, out) : err;
}

static annal_err_t s_read_all(void *handle, uint64_t from, size_t max, size_t scan,
                              const char *prefix, size_t plen, char *const *types, size_t ntypes,
                              annal_event_list_t *out, uint64_t *next)
{
    pg_t *self = handle;
    out->count = 0;
    *next = from;
    if (max == 0)
        return ANNAL_OK;
    char f[24], to[24], m[24], *p = NULL, *t = NULL;
    if (from >= INT64_MAX)
        return ANNAL_OK;
    /* sequences are dense: the events examined are [first, stop), at most
       scan of them, or max (if fewer) without filters: a window the planner
       cannot misjudge (a wide one was a bitmap scan and a sort spilled to
       disk) */
    uint64_t first = from ? from : 1, window = prefix || ntypes || max > scan ? scan : max;
    uint64_t stop = first + window > INT64_MAX ? INT64_MAX : first + window;
    snprintf(f, sizeof f, "%llu", (unsigned long long) first);
    snprintf(to, sizeof to, "%llu", (unsigned long long) stop);
    snprintf(m, sizeof m, "%zu", max);
    if (prefix && !(p = strndup(prefix, plen)))
        return ANNAL_ERR_UNAVAILABLE;
    if (ntypes && !(t = s_array(types, ntypes, s_string_item))) {
        free(p);
        return ANNAL_ERR_UNAVAILABLE;
    }
    char own[24];
    snprintf(own, sizeof own, "%llu", (unsigned long long) self->txn_head);
    const char *values[6] = {f, to, m, p, t, self->locked ? own : NULL};
    annal_err_t err;
    /* the head comes from the same snapshot as the events: a commit between
       two statements must not move next past events this one did not see */
    PGresult *r = s_query(self,
                          "WITH h AS (SELECT coalesce($6::bigint, head) AS head FROM annal_head"
                          " WHERE id = 1)"
                          " SELECT e.*, h.head FROM h LEFT JOIN LATERAL (SELECT " EVENT_COLUMNS
                          " FROM annal_events WHERE sequence >= $1 AND sequence < $2"
                          " AND sequence <= h.head"
                          " AND ($4::text IS NULL OR starts_with(aggregate_id, $4))"
                          " AND ($5::text[] IS NULL OR event_type = ANY($5))"
                          " ORDER BY sequence LIMIT $3) e ON true",
                          6, values, NULL, NULL, &err);
    free(p);
    free(t);
    if (!r)
        return err;
    int rows = PQntuples(r);
    uint64_t head = rows ? s_u64(r, 0, 8) : 0;
    bool none = rows == 1 && PQgetisnull(r, 0, 0);
    if (none)
        rows = 0;
    uint64_t end = stop < head + 1 ? stop : head + 1; /* as LMDB: after the last examined */
    if (none) {
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
    pg_t *self = handle;
    if (len > INT32_MAX)
        return ANNAL_ERR_MALFORMED;
    annal_err_t err = s_write_txn(self);
    if (err)
        return err;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long) version);
    const char *values[4] = {agg, v, folded ? "t" : "f", (const char *) state};
    int lengths[4] = {0, 0, 0, (int) len}, formats[4] = {0, 0, 0, 1};
    PGresult *r = s_query(self,
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
    pg_t *self = handle;
    char v[24];
    snprintf(v, sizeof v, "%llu",
             (unsigned long long) (max_version > INT64_MAX ? INT64_MAX : max_version));
    const char *values[3] = {agg, v, folded_only ? "t" : "f"};
    annal_err_t err;
    PGresult *r = s_query(self,
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
    out->version = s_u64(r, 0, 0);
    out->folded = *PQgetvalue(r, 0, 1) != 0;
    out->state = (const uint8_t *) PQgetvalue(r, 0, 2);
    out->len = (size_t) PQgetlength(r, 0, 2);
    return ANNAL_OK;
}

static annal_err_t s_stats(void *handle, annal_store_stats_t *out)
{
    pg_t *self = handle;
    annal_err_t err;
    PGresult *r = s_query(self,
                          "SELECT (SELECT head FROM annal_head WHERE id = 1),"
                          " (SELECT count(*) FROM annal_aggregates),"
                          " (SELECT count(*) FROM annal_snapshots)",
                          0, NULL, NULL, NULL, &err);
    if (!r)
        return err;
    out->head_sequence = out->events = self->locked ? self->txn_head : s_u64(r, 0, 0);
    out->aggregates = s_u64(r, 0, 1);
    out->snapshots = s_u64(r, 0, 2);
    PQclear(r);
    return ANNAL_OK;
}

/* --- what other brokers commit ------------------------------------------------------ */

/* A commit that appended announces its new head on channel annal_head; a
   second connection listens, so that every broker can publish every event. */
static int s_watch_fd(void *handle)
{
    pg_t *self = handle;
    if (!self->listen) {
        /* not while the main connection is down: connecting blocks the
           broker's loop, for up to connect_timeout when the server is away
           (the heartbeat's catch-up brings the main one back) */
        int64_t now = annal_time_mono_ms();
        if (now < self->listen_retry_at || !self->conn)
            return -1;
        self->listen = s_connectdb(self->conninfo);
        if (PQstatus(self->listen) != CONNECTION_OK
            || s_exec(self->listen, "LISTEN annal_head", NULL, 0)) {
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
    pg_t *self = handle;
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
        uint64_t head = strtoull(n->extra, NULL, 10);
        top = head > top ? head : top;
        PQfreemem(n);
    }
    return top;
}

/* --- taking a migrated store ------------------------------------------------------- */

/* The dump goes in with COPY (text format) in the transaction load_begin
   opens, which holds the writers' lock throughout: brokers on the database
   wait, and see nothing of it before load_end commits. */

static annal_err_t s_load_event(void *arg, const annal_stored_t *rec, char *why, size_t whylen)
{
    pg_t *self = arg;
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
    pg_t *self = arg;
    annal_err_t err = s_copy_start(self, LOAD_SNAPSHOTS,
                                   "COPY annal_snapshots (aggregate_id, version, folded, state)"
                                   " FROM STDIN", why, whylen);
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

static annal_err_t s_load_begin(void *handle, annal_sink_t *sink, char *why, size_t whylen)
{
    pg_t *self = handle;
    if (self->in_txn || !self->conn || self->loading)
        return ANNAL_ERR_INTERNAL;
    PGresult *r = PQexec(self->conn,
                         "BEGIN; SELECT head, (SELECT count(*) FROM annal_snapshots)"
                         " FROM annal_head WHERE id = 1 FOR UPDATE");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(why, whylen, "cannot lock the target: %s", PQerrorMessage(self->conn));
        PQclear(r);
        s_exec(self->conn, "ROLLBACK", NULL, 0);
        return ANNAL_ERR_UNAVAILABLE;
    }
    unsigned long long head = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    unsigned long long snaps = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (head || snaps) {
        snprintf(why, whylen, "the target already holds %llu events and %llu snapshots; "
                              "annal migrate copies into an empty store only", head, snaps);
        s_exec(self->conn, "ROLLBACK", NULL, 0);
        return ANNAL_ERR_CONFLICT;
    }
    self->loading = LOAD_OPEN;
    sink->arg = self;
    sink->event = s_load_event;
    sink->snapshot = s_load_snapshot;
    return ANNAL_OK;
}

static annal_err_t s_load_end(void *handle, bool keep, char *why, size_t whylen)
{
    pg_t *self = handle;
    if (!self->loading)
        return ANNAL_ERR_INTERNAL;
    annal_err_t err = s_copy_end(self, why, whylen);
    self->loading = LOAD_NONE;
    self->copy_len = 0;
    if (err || !keep) {
        s_exec(self->conn, "ROLLBACK", NULL, 0);
        return err;
    }
    /* the head and the aggregates' versions follow from the events */
    if (s_exec(self->conn,
               "INSERT INTO annal_aggregates SELECT aggregate_id, max(version)"
               " FROM annal_events GROUP BY aggregate_id;"
               " UPDATE annal_head SET (head, recorded_at) = (SELECT coalesce(max(sequence), 0),"
               " coalesce(max(recorded_at), 0) FROM annal_events) WHERE id = 1;"
               " SELECT pg_notify('annal_head', head::text) FROM annal_head WHERE id = 1;"
               " COMMIT",
               why, whylen)) {
        s_exec(self->conn, "ROLLBACK", NULL, 0);
        return ANNAL_ERR_INTERNAL;
    }
    s_exec(self->conn, "ANALYZE annal_events, annal_aggregates, annal_snapshots", NULL, 0);
    return ANNAL_OK;
}

const annal_store_ops_t annal_pg_ops = {
    .name = "postgresql",
    .open = s_open,
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .abort = s_abort,
    .checkpoint = NULL,
    .prepare = s_prepare,
    .append = s_append,
    .version = s_version,
    .read = s_read,
    .read_all = s_read_all,
    .put_snapshot = s_put_snapshot,
    .get_snapshot = s_get_snapshot,
    .stats = s_stats,
    .watch_fd = s_watch_fd,
    .moved = s_moved,
    .load_begin = s_load_begin,
    .load_end = s_load_end,
};
