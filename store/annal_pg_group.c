/*  annal_pg_group.c: consumer groups on PostgreSQL (the group ops of
    annal_store.h), shared by every broker on the database.

    NOTES ON THE DESIGN
    Tables (pg/schema-3.sql): annal_groups (settings, floor, version),
    annal_group_marks (acked, parked, replayed events above or at the
    floor, as on LMDB) and annal_group_leases (UNLOGGED: what each event's
    last lease was, to whom, until when, by which broker's session).

    Each broker's engine (broker/annal_group.h) holds a copy of a group's
    state. Three rules keep the copies right across brokers:
    1. A group request runs in one transaction that first takes the group
       name's advisory lock (group_sync), so requests of one group run one
       at a time across brokers; the lock is taken before the group row is
       read, in a statement of its own, so the read sees what the lock's
       last holder committed (READ COMMITTED takes a snapshot per
       statement).
    2. A transaction that wrote a group's marks or leases moves the group's
       version (group_bump) to a number never used before (a sequence), so
       a broker whose copy has another version loads the group again:
       marks, then leases. Storing a floor changes no state and moves no
       version.
    3. A lease row names the session (pid, backend_start) of the broker
       that took it; a lease whose session is gone reads as ended, so that
       the leases of a broker that died are ready again, as on LMDB after a
       restart. Deadlines are wall-clock microseconds: brokers on several
       hosts need clocks in step (NTP) for lease lengths to hold.

    A group write first turns the batch's transaction into a READ
    COMMITTED one that may write (it never takes annal_head's lock: groups
    append nothing). Group reads run in whatever transaction is open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_limits.h"
#include "annal_pg_private.h"

#define GROUP_LOCK 7234002 /* pg_advisory_xact_lock's first key: group names */

/* The columns of a group as get and each select them, one row per type. */
#define GROUP_SELECT                                                                           \
    "SELECT g.name, g.prefix, g.start::text, g.unordered::int4::int8, g.from_end::int4::int8," \
    " g.ack_timeout_ms, g.max_deliveries, g.floor::text, t.type"                               \
    " FROM annal_groups g LEFT JOIN LATERAL unnest(g.types) WITH ORDINALITY AS t(type, i) ON true"

/* Turns the batch's transaction into one that may write groups. */
static annal_err_t s_group_txn(annal_pg_t *self)
{
    if (!self->in_txn || !self->conn)
        return ANNAL_ERR_INTERNAL;
    if (self->txn_open && !self->read_only)
        return ANNAL_OK;
    PGresult *r = PQexec(self->conn, self->read_only ? "COMMIT; BEGIN" : "BEGIN");
    annal_pg_sync_txn(self);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return annal_pg_fail(self, r);
    PQclear(r);
    self->read_only = false;
    return ANNAL_OK;
}

/* Runs a group write: the transaction made ready first, then the statement;
   the result, or NULL with *err. */
static PGresult *s_write(annal_pg_t *self, const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats, annal_err_t *err)
{
    if ((*err = s_group_txn(self)))
        return NULL;
    PGresult *r = annal_pg_query(self, sql, n, values, lengths, formats, err);
    if (r)
        self->group_wrote = true;
    return r;
}

/* Whether name is one a group may have (as the codec lets through). */
static bool s_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len > 0 && len <= ANNAL_MAX_AGGREGATE_ID;
}

/* A number as text, into buf (24 bytes); returns buf. */
static const char *s_num(uint64_t v, char *buf)
{
    snprintf(buf, 24, "%llu", (unsigned long long) v);
    return buf;
}

/* Column col of row, a numeric(20) selected as text, as a number. */
static uint64_t s_u64(const PGresult *r, int row, int col)
{
    return strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* The first count of a result's first row (count(*) queries). */
static uint64_t s_count(const PGresult *r)
{
    return PQntuples(r) ? annal_pg_u64(r, 0, 0) : 0;
}

annal_err_t annal_pg_group_put(void *handle, const annal_group_def_t *def)
{
    annal_pg_t *self = handle;
    if (!s_name_ok(def->name) || (def->ntypes && !def->types))
        return ANNAL_ERR_MALFORMED;
    char *types =
        def->ntypes ? annal_pg_array(def->types, def->ntypes, annal_pg_string_item) : NULL;
    if (def->ntypes && !types)
        return ANNAL_ERR_INTERNAL;
    char start[24], timeout[24], max[24], floor[24];
    const char *values[] = {def->name,
                            def->prefix ? def->prefix : "",
                            types,
                            s_num(def->start, start),
                            def->unordered ? "t" : "f",
                            def->from_end ? "t" : "f",
                            s_num(def->ack_timeout_ms, timeout),
                            s_num(def->max_deliveries, max),
                            s_num(def->floor, floor)};
    annal_err_t err;
    PGresult *r = s_write(
        self,
        "INSERT INTO annal_groups (name, prefix, types, start, unordered, from_end,"
        " ack_timeout_ms, max_deliveries, floor) VALUES ($1, $2, $3::text[], $4::numeric, $5, $6, "
        "$7,"
        " $8, $9::numeric) ON CONFLICT (name) DO UPDATE SET prefix = excluded.prefix, types = "
        "excluded.types,"
        " start = excluded.start, unordered = excluded.unordered, from_end = excluded.from_end,"
        " ack_timeout_ms = excluded.ack_timeout_ms, max_deliveries = excluded.max_deliveries,"
        " floor = excluded.floor",
        9, values, NULL, NULL, &err);
    PQclear(r);
    free(types);
    return err;
}

/* The group of rows [*row, ...) of r (GROUP_SELECT's columns, one row per
   type) into def, its types into *types (grown as needed); *row moves past
   the group's rows. */
static annal_err_t s_decode(const PGresult *r, int *row, annal_group_def_t *def, char ***types,
                            size_t *cap)
{
    int at = *row, rows = PQntuples(r);
    const char *name = PQgetvalue(r, at, 0);
    *def = (annal_group_def_t){.name = name,
                               .prefix = PQgetvalue(r, at, 1),
                               .start = s_u64(r, at, 2),
                               .unordered = annal_pg_u64(r, at, 3) != 0,
                               .from_end = annal_pg_u64(r, at, 4) != 0,
                               .ack_timeout_ms = (uint32_t) annal_pg_u64(r, at, 5),
                               .max_deliveries = (uint32_t) annal_pg_u64(r, at, 6),
                               .floor = s_u64(r, at, 7)};
    for (; at < rows && strcmp(PQgetvalue(r, at, 0), name) == 0; at++) {
        if (PQgetisnull(r, at, 8))
            continue;
        if (def->ntypes == *cap) {
            size_t more = *cap ? *cap * 2 : 8;
            char **bigger = realloc(*types, more * sizeof *bigger);
            if (!bigger)
                return ANNAL_ERR_INTERNAL;
            *types = bigger, *cap = more;
        }
        (*types)[def->ntypes++] = PQgetvalue(r, at, 8);
    }
    def->types = def->ntypes ? *types : NULL;
    *row = at;
    return ANNAL_OK;
}

annal_err_t annal_pg_group_get(void *handle, const char *name, annal_group_def_t *out)
{
    annal_pg_t *self = handle;
    if (!s_name_ok(name))
        return ANNAL_ERR_NOT_FOUND;
    annal_err_t err;
    const char *values[] = {name};
    PGresult *r = annal_pg_query(self, GROUP_SELECT " WHERE g.name = $1 ORDER BY t.i", 1, values,
                                 NULL, NULL, &err);
    if (!r)
        return err;
    PQclear(self->group_result); /* out borrows this one until the next call */
    self->group_result = r;
    if (PQntuples(r) == 0)
        return ANNAL_ERR_NOT_FOUND;
    int row = 0;
    return s_decode(r, &row, out, &self->types, &self->types_cap);
}

annal_err_t annal_pg_group_each(void *handle,
                                annal_err_t (*fn)(void *arg, const annal_group_def_t *def),
                                void *arg)
{
    annal_pg_t *self = handle;
    annal_err_t err;
    PGresult *r =
        annal_pg_query(self, GROUP_SELECT " ORDER BY g.name, t.i", 0, NULL, NULL, NULL, &err);
    if (!r)
        return err;
    /* its own rows and types: fn may call the other ops */
    char **types = NULL;
    size_t cap = 0;
    for (int row = 0; row < PQntuples(r) && !err;) {
        annal_group_def_t def;
        if (!(err = s_decode(r, &row, &def, &types, &cap)))
            err = fn(arg, &def);
    }
    free(types);
    PQclear(r);
    return err;
}

annal_err_t annal_pg_group_delete(void *handle, const char *name)
{
    annal_pg_t *self = handle;
    if (!s_name_ok(name))
        return ANNAL_ERR_NOT_FOUND;
    annal_err_t err;
    const char *values[] = {name};
    PGresult *r = s_write(self,
                          "WITH l AS (DELETE FROM annal_group_leases WHERE name = $1),"
                          " g AS (DELETE FROM annal_groups WHERE name = $1 RETURNING 1)"
                          " SELECT count(*) FROM g",
                          1, values, NULL, NULL, &err);
    if (!r)
        return err;
    uint64_t n = s_count(r);
    PQclear(r);
    return n ? ANNAL_OK : ANNAL_ERR_NOT_FOUND;
}

annal_err_t annal_pg_group_mark(void *handle, const char *name, const annal_group_mark_t *mark)
{
    annal_pg_t *self = handle;
    if (!s_name_ok(name))
        return ANNAL_ERR_NOT_FOUND;
    char seq[24], kind[24], delivery[24];
    bool reason = mark->reason && mark->reason_len;
    const char *values[] = {name, s_num(mark->sequence, seq), s_num(mark->mark, kind),
                            s_num(mark->delivery, delivery), reason ? mark->reason : NULL};
    const int lengths[] = {0, 0, 0, 0, reason ? (int) mark->reason_len : 0};
    const int formats[] = {0, 0, 0, 0, 1};
    annal_err_t err;
    /* the mark replaces the event's lease: it is not leased any more */
    PGresult *r = s_write(
        self,
        "WITH l AS (DELETE FROM annal_group_leases WHERE name = $1 AND sequence = $2::numeric),"
        " m AS (INSERT INTO annal_group_marks SELECT $1, $2::numeric, $3::int2, $4::int8, $5::bytea"
        " WHERE EXISTS (SELECT 1 FROM annal_groups WHERE name = $1)"
        " ON CONFLICT (name, sequence) DO UPDATE SET mark = excluded.mark,"
        " delivery = excluded.delivery, reason = excluded.reason RETURNING 1)"
        " SELECT count(*) FROM m",
        5, values, lengths, formats, &err);
    if (!r)
        return err;
    uint64_t n = s_count(r);
    PQclear(r);
    return n ? ANNAL_OK : ANNAL_ERR_NOT_FOUND;
}

annal_err_t annal_pg_group_unmark(void *handle, const char *name, uint64_t sequence)
{
    annal_pg_t *self = handle;
    if (!s_name_ok(name))
        return ANNAL_OK;
    char seq[24];
    const char *values[] = {name, s_num(sequence, seq)};
    annal_err_t err;
    PGresult *r =
        s_write(self, "DELETE FROM annal_group_marks WHERE name = $1 AND sequence = $2::numeric", 2,
                values, NULL, NULL, &err);
    PQclear(r);
    return err;
}

annal_err_t annal_pg_group_marks(void *handle, const char *name, uint64_t from, size_t max,
                                 annal_mark_t mark, annal_mark_list_t *out, uint64_t *next)
{
    annal_pg_t *self = handle;
    out->count = 0;
    *next = 0;
    if (!s_name_ok(name))
        return ANNAL_OK;
    char at[24], kind[24], limit[24];
    /* LIMIT NULL: no limit */
    const char *values[] = {name, s_num(from, at), s_num(mark, kind),
                            max < INT64_MAX ? s_num(max + 1, limit) : NULL};
    annal_err_t err;
    /* one more than asked: whether it exists says if the list goes on */
    PGresult *r = annal_pg_query(self,
                                 "SELECT sequence::text, mark::int8, delivery, reason"
                                 " FROM annal_group_marks WHERE name = $1"
                                 " AND sequence >= $2::numeric"
                                 " AND ($3::int2 = 0 OR mark = $3::int2)"
                                 " ORDER BY annal_group_marks.sequence LIMIT $4::int8",
                                 4, values, NULL, NULL, &err);
    if (!r)
        return err;
    PQclear(self->group_result); /* the reasons borrow it until the next call */
    self->group_result = r;
    size_t rows = (size_t) PQntuples(r);
    if (rows > max) {
        *next = s_u64(r, (int) max, 0);
        rows = max;
    }
    if (rows > out->cap) {
        annal_group_mark_t *bigger = realloc(out->items, rows * sizeof *bigger);
        if (!bigger)
            return ANNAL_ERR_UNAVAILABLE;
        out->items = bigger, out->cap = rows;
    }
    for (size_t i = 0; i < rows; i++) {
        int row = (int) i;
        bool reason = !PQgetisnull(r, row, 3) && PQgetlength(r, row, 3) > 0;
        uint64_t kind_of = annal_pg_u64(r, row, 1);
        if (kind_of < ANNAL_MARK_ACKED || kind_of > ANNAL_MARK_READY)
            return ANNAL_ERR_INTERNAL; /* not a mark annal wrote */
        out->items[out->count++] = (annal_group_mark_t){
            s_u64(r, row, 0), (annal_mark_t) kind_of, (uint32_t) annal_pg_u64(r, row, 2),
            reason ? PQgetvalue(r, row, 3) : NULL, reason ? (size_t) PQgetlength(r, row, 3) : 0};
    }
    return ANNAL_OK;
}

annal_err_t annal_pg_group_floor(void *handle, const char *name, uint64_t floor)
{
    annal_pg_t *self = handle;
    if (!s_name_ok(name))
        return ANNAL_ERR_NOT_FOUND;
    char at[24];
    const char *values[] = {name, s_num(floor, at)};
    annal_err_t err = s_group_txn(self);
    PGresult *r = err ? NULL
                      : annal_pg_query(self,
                                       "WITH u AS (UPDATE annal_groups SET floor = $2::numeric"
                                       " WHERE name = $1 RETURNING 1),"
                                       " d AS (DELETE FROM annal_group_marks WHERE name = $1"
                                       " AND sequence <= $2::numeric AND mark = 1)"
                                       " SELECT count(*) FROM u",
                                       2, values, NULL, NULL, &err);
    if (!r)
        return err;
    uint64_t n = s_count(r); /* not a change of state: the version stays (rule 2) */
    PQclear(r);
    return n ? ANNAL_OK : ANNAL_ERR_NOT_FOUND;
}

annal_err_t annal_pg_group_sync(void *handle, const char *name, uint64_t *version, uint64_t *floor)
{
    annal_pg_t *self = handle;
    *version = *floor = 0;
    self->group_wrote = false;
    annal_err_t err = s_group_txn(self);
    if (err)
        return err;
    if (!s_name_ok(name))
        return ANNAL_OK;
    char *literal = PQescapeLiteral(self->conn, name, strlen(name));
    if (!literal)
        return annal_pg_lost(self) ? ANNAL_ERR_UNAVAILABLE : ANNAL_ERR_INTERNAL;
    /* two statements in one round trip: the second one's snapshot is taken
       once the lock is held (rule 1) */
    size_t len = 2 * strlen(literal) + 200;
    char *sql = malloc(len);
    if (!sql) {
        PQfreemem(literal);
        return ANNAL_ERR_INTERNAL;
    }
    snprintf(sql, len,
             "SELECT pg_advisory_xact_lock(%d, hashtext(%s));"
             " SELECT version, floor::text FROM annal_groups WHERE name = %s",
             GROUP_LOCK, literal, literal);
    PQfreemem(literal);
    PGresult *r = PQexec(self->conn, sql);
    free(sql);
    annal_pg_sync_txn(self);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return annal_pg_fail(self, r);
    if (PQntuples(r) == 1) {
        *version = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        *floor = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    }
    self->group_version = *version;
    PQclear(r);
    return ANNAL_OK;
}

annal_err_t annal_pg_group_bump(void *handle, const char *name, uint64_t *version)
{
    annal_pg_t *self = handle;
    *version = self->group_version;
    if (!self->group_wrote || !s_name_ok(name))
        return ANNAL_OK;
    const char *values[] = {name};
    annal_err_t err;
    PGresult *r = annal_pg_query(
        self,
        "WITH u AS (UPDATE annal_groups SET version = nextval('annal_group_versions')"
        " WHERE name = $1 RETURNING version)"
        " SELECT version, pg_notify('annal_group', $1)::text FROM u",
        1, values, NULL, NULL, &err);
    if (!r)
        return err;
    *version = self->group_version = PQntuples(r) ? annal_pg_u64(r, 0, 0) : 0;
    self->group_wrote = false;
    PQclear(r);
    return ANNAL_OK;
}

/* Items for annal_pg_array (annal_pg_item_fn) over leases. */
static const char *s_lease_seq(const void *arg, size_t i, char *buf)
{
    return s_num(((const annal_lease_t *) arg)[i].sequence, buf);
}

static const char *s_lease_consumer(const void *arg, size_t i, char *buf)
{
    (void) buf;
    return ((const annal_lease_t *) arg)[i].consumer;
}

static const char *s_lease_deadline(const void *arg, size_t i, char *buf)
{
    int64_t d = ((const annal_lease_t *) arg)[i].deadline;
    return s_num(d > 0 ? (uint64_t) d : 0, buf);
}

static const char *s_lease_delivery(const void *arg, size_t i, char *buf)
{
    return s_num(((const annal_lease_t *) arg)[i].delivery, buf);
}

annal_err_t annal_pg_group_lease(void *handle, const char *name, const annal_lease_t *leases,
                                 size_t n)
{
    annal_pg_t *self = handle;
    if (n == 0)
        return ANNAL_OK;
    if (!s_name_ok(name))
        return ANNAL_ERR_NOT_FOUND;
    char *arrays[4] = {
        annal_pg_array(leases, n, s_lease_seq), annal_pg_array(leases, n, s_lease_consumer),
        annal_pg_array(leases, n, s_lease_deadline), annal_pg_array(leases, n, s_lease_delivery)};
    annal_err_t err = ANNAL_ERR_INTERNAL;
    if (arrays[0] && arrays[1] && arrays[2] && arrays[3]) {
        const char *values[] = {name, arrays[0], arrays[1], arrays[2], arrays[3]};
        PGresult *r = s_write(
            self,
            "INSERT INTO annal_group_leases (name, sequence, consumer, deadline, delivery, pid,"
            " started) SELECT $1, s, c, d, v, pg_backend_pid(),"
            " (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())"
            " FROM unnest($2::numeric[], $3::text[], $4::int8[], $5::int8[]) AS u(s, c, d, v)"
            " ON CONFLICT (name, sequence) DO UPDATE SET consumer = excluded.consumer,"
            " deadline = excluded.deadline, delivery = excluded.delivery, pid = excluded.pid,"
            " started = excluded.started",
            5, values, NULL, NULL, &err);
        PQclear(r);
    }
    for (int i = 0; i < 4; i++)
        free(arrays[i]);
    return err;
}

annal_err_t annal_pg_group_leases(void *handle, const char *name, annal_lease_list_t *out)
{
    annal_pg_t *self = handle;
    out->count = 0;
    if (!s_name_ok(name))
        return ANNAL_OK;
    const char *values[] = {name};
    annal_err_t err;
    /* rule 3: a lease whose broker's session is gone has ended */
    PGresult *r = annal_pg_query(
        self,
        "SELECT l.sequence::text, l.consumer, CASE WHEN a.pid IS NULL THEN 0 ELSE l.deadline END,"
        " l.delivery FROM annal_group_leases l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " AND (l.started IS NULL OR a.backend_start IS NULL OR a.backend_start = l.started)"
        " WHERE l.name = $1 ORDER BY l.sequence",
        1, values, NULL, NULL, &err);
    if (!r)
        return err;
    PQclear(self->lease_result); /* the consumers borrow it until the next call */
    self->lease_result = r;
    size_t rows = (size_t) PQntuples(r);
    if (rows > out->cap) {
        annal_lease_t *bigger = realloc(out->items, rows * sizeof *bigger);
        if (!bigger)
            return ANNAL_ERR_UNAVAILABLE;
        out->items = bigger, out->cap = rows;
    }
    for (size_t i = 0; i < rows; i++)
        out->items[out->count++] = (annal_lease_t){s_u64(r, (int) i, 0), PQgetvalue(r, (int) i, 1),
                                                   (int64_t) annal_pg_u64(r, (int) i, 2),
                                                   (uint32_t) annal_pg_u64(r, (int) i, 3)};
    return ANNAL_OK;
}
