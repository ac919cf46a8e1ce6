/*  test_backend.c: the storage backends held to one behaviour. One table of
    cases runs through annal_store.h against LMDB (a new folder per case),
    or, when ANNAL_TEST_PG names an empty throwaway PostgreSQL server
    (tests/pg_cluster.sh sets it), against PostgreSQL (a new database per
    case): versions, the global sequence, idempotency, batches, reads,
    snapshots, counters, recorded_at and reopening; and consumer groups,
    where the backend keeps them (the cases skip themselves where not).
    What only LMDB has (its journal, map growth, crashes) stays in
    test_store.c. */
#include "testutil.h"

#ifdef ANNAL_WITH_PG
#include <libpq-fe.h>
#endif
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>

#include "testutil_request.h"
#include "annal_limits.h"
#include "annal_store.h"
#include "annal_time.h"

static char why[512];
static const char *s_pg; /* ANNAL_TEST_PG while the cases run on PostgreSQL */
#ifdef ANNAL_WITH_PG
static PGconn *s_admin; /* to ANNAL_TEST_PG: creates and drops the databases */
static int s_made;      /* databases made so far */
#endif
static char s_db[64];                    /* the case's database */
static char *s_loc;                      /* the case's store: a folder, or s_db's URI */
static annal_store_t *s_store;           /* open on s_loc */
static annal_event_list_t s_list;        /* the last read */
static annal_mark_list_t s_marks;        /* the last group_marks */
static int s_calls;                      /* s_each_fn calls since s_each */
static char s_names[8][300];             /* the names s_each_fn was given, in order */
static annal_err_t s_stop_at;            /* s_each_fn: returned at call s_stop_after */
static int s_stop_after;                 /* 0: never */
static bool s_delete_each;               /* s_each_fn: deletes each group it is given */
static const annal_group_def_t *s_first; /* s_each_fn: the def its first call should get */
static bool s_first_held;                /* ... and still had after a group_get */

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"
#define ID4 "44444444-4444-4444-8444-444444444444"
#define ID5 "55555555-5555-4555-8555-555555555555"
#define ID6 "66666666-6666-4666-8666-666666666666"

/* Append requests: ONE appends one event, MANY the events EV, EV_ID. */
#define AP(agg, ver) \
    "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"" agg "\",\"version\":" ver
#define EV(type)            "{\"event_type\":\"" type "\",\"event_data\":{}}"
#define EV_ID(type, id)     "{\"event_type\":\"" type "\",\"event_data\":{},\"event_id\":\"" id "\"}"
#define ONE(agg, ver, type) AP(agg, ver) ",\"event_type\":\"" type "\",\"event_data\":{}}"
#define ONE_ID(agg, ver, type, id) \
    AP(agg, ver) ",\"event_type\":\"" type "\",\"event_data\":{},\"event_id\":\"" id "\"}"
#define MANY(agg, ver, events) AP(agg, ver) ",\"events\":[" events "]}"
#define ANY                    "\"any\""
#define EXISTS                 "\"exists\""
/* How an append ends, for s_was: new events (first and last sequence,
   version), an earlier append's, a conflict (the version found), malformed. */
#define NEW(f, l, v) ANNAL_OK, f, l, v, false
#define DUP(f, l, v) ANNAL_OK, f, l, v, true
#define CONFLICT(v)  ANNAL_ERR_CONFLICT, 0, 0, v, false
#define MALFORMED    ANNAL_ERR_MALFORMED, 0, 0, 0, false
#define SEQS(...)    ((const uint64_t[]){__VA_ARGS__, 0})
#define NONE         ((const uint64_t[]){0})

#ifdef ANNAL_WITH_PG
/* Runs sql on ANNAL_TEST_PG; 0, or -1 (said on stderr). */
static int s_sql(const char *sql)
{
    PGresult *r = PQexec(s_admin, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "  %s: %s", sql, PQerrorMessage(s_admin));
    PQclear(r);
    return rc;
}

/* A new empty database on ANNAL_TEST_PG; its URI (malloc'd), or NULL. */
static char *s_new_database(void)
{
    char sql[128];
    snprintf(s_db, sizeof s_db, "annal_backend_%ld_%d", (long) getpid(), ++s_made);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s_db);
    if (s_sql(sql))
        return NULL;
    /* ANNAL_TEST_PG with s_db for its path: scheme://authority/s_db?query */
    const char *auth = strstr(s_pg, "://") + 3, *rest = auth + strcspn(auth, "/?");
    int head = (int) (rest - s_pg);
    if (*rest == '/')
        rest += strcspn(rest, "?");
    char *uri = malloc(strlen(s_pg) + sizeof s_db + 2);
    sprintf(uri, "%.*s/%s%s", head, s_pg, s_db, rest);
    return uri;
}

#else
static int s_sql(const char *sql)
{
    (void) sql;
    return -1;
}

static char *s_new_database(void)
{
    return NULL;
}
#endif

/* Opens s_loc (again: closing it first). */
static annal_store_t *s_reopen(void)
{
    annal_store_close(&s_store);
    if (!(s_store = annal_store_open(s_loc, NULL, why, sizeof why)))
        fprintf(stderr, "  open %s: %s\n", s_loc, why);
    else if (strcmp(annal_store_name(s_store), s_pg ? "postgresql" : "lmdb") != 0) {
        fprintf(stderr, "  %s opened as %s\n", s_loc, annal_store_name(s_store));
        annal_store_close(&s_store);
    }
    return s_store;
}

/* Opens the case's new empty store. */
static annal_store_t *s_fresh(void)
{
    s_loc = s_pg ? s_new_database() : t_tempdir();
    return s_loc ? s_reopen() : NULL;
}

/* After each case: closes and removes its store. */
static void s_cleanup(void)
{
    annal_store_close(&s_store);
    annal_event_list_free(&s_list);
    annal_mark_list_free(&s_marks);
    s_stop_after = 0, s_delete_each = false, s_first = NULL;
    if (s_loc && s_pg) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", s_db);
        s_sql(sql);
        free(s_loc);
    }
    else if (s_loc)
        t_rmdir(s_loc);
    s_loc = NULL;
}

/* Runs the appends as one batch, as the broker does: prepare with them all
   (when hints), append each (its outcome into errs[i] and res[i]; a
   conflict or a malformed append fails alone), then commit, or leave the
   batch open when open. Runs it again after ANNAL_ERR_RETRY. Returns the
   batch's error. */
static annal_err_t s_run(annal_request_t *req, size_t n, bool hints, bool open, annal_err_t *errs,
                         annal_append_result_t *res)
{
    annal_append_hint_t hint[16];
    for (size_t i = 0; i < n; i++)
        hint[i] = (annal_append_hint_t){req[i].aggregate_id, req[i].events, req[i].event_count};
    annal_err_t err;
    do {
        if ((err = annal_store_begin(s_store)))
            return err;
        if (hints)
            err = annal_store_prepare(s_store, hint, n);
        for (size_t i = 0; !err && i < n; i++) {
            errs[i] = annal_store_append(s_store, req[i].aggregate_id, req[i].expect,
                                         req[i].expected_version, req[i].events, req[i].event_count,
                                         &res[i], why, sizeof why);
            if (errs[i] && errs[i] != ANNAL_ERR_CONFLICT && errs[i] != ANNAL_ERR_MALFORMED)
                err = errs[i];
        }
        if (err)
            annal_store_abort(s_store);
        else if (!open)
            err = annal_store_commit(s_store);
    } while (err == ANNAL_ERR_RETRY);
    return err;
}

/* s_run on JSON requests. */
static annal_err_t s_batch(const char *const *json, size_t n, bool hints, bool open,
                           annal_err_t *errs, annal_append_result_t *res)
{
    annal_request_t req[16];
    for (size_t i = 0; i < n; i++)
        req[i] = t_request(json[i]);
    annal_err_t err = s_run(req, n, hints, open, errs, res);
    for (size_t i = 0; i < n; i++)
        annal_request_reset(&req[i]);
    return err;
}

/* Whether an append ended as want (see NEW, DUP, CONFLICT, MALFORMED). */
static bool s_was(annal_err_t err, const annal_append_result_t *r, annal_err_t want, uint64_t first,
                  uint64_t last, uint64_t version, bool dup)
{
    if (err == want
        && (want == ANNAL_ERR_MALFORMED || want == ANNAL_ERR_GONE
            || (want == ANNAL_ERR_CONFLICT && r->actual_version == version)
            || (want == ANNAL_OK && r->first_sequence == first && r->version == version
                && r->last_sequence == last && r->duplicate == dup)))
        return true;
    fprintf(stderr, "  append: error %d, sequences %llu-%llu, version %llu (actual %llu)%s\n", err,
            (unsigned long long) r->first_sequence, (unsigned long long) r->last_sequence,
            (unsigned long long) r->version, (unsigned long long) r->actual_version,
            r->duplicate ? ", a duplicate" : "");
    return false;
}

/* One append in its own batch; whether it ended as want. */
static bool s_one(const char *json, annal_err_t want, uint64_t first, uint64_t last,
                  uint64_t version, bool dup)
{
    annal_append_result_t res = {0};
    annal_err_t one = ANNAL_OK, err = s_batch(&json, 1, true, false, &one, &res);
    return s_was(err ? err : one, &res, want, first, last, version, dup);
}

/* One append inside the open batch; whether it ended as want. */
static bool s_in(const char *json, annal_err_t want, uint64_t first, uint64_t last,
                 uint64_t version, bool dup)
{
    annal_request_t req = t_request(json);
    annal_append_result_t res;
    annal_err_t err =
        annal_store_append(s_store, req.aggregate_id, req.expect, req.expected_version, req.events,
                           req.event_count, &res, why, sizeof why);
    annal_request_reset(&req);
    return s_was(err, &res, want, first, last, version, dup);
}

/* An append of n events (types T0, T1 ...) to agg, version check ver. */
static const char *s_events(const char *agg, const char *ver, int n)
{
    static char json[4096];
    int len = snprintf(json, sizeof json, AP("%s", "%s") ",\"events\":[", agg, ver);
    for (int i = 0; i < n; i++)
        len += snprintf(json + len, sizeof json - len,
                        "%s{\"event_type\":\"T%d\",\"event_data\":%d}", i ? "," : "", i, i);
    snprintf(json + len, sizeof json - len, "]}");
    return json;
}

/* Whether the counters (in the open batch) are these; events == head. */
static bool s_counts_in(uint64_t head, uint64_t aggregates, uint64_t snapshots)
{
    annal_store_stats_t st = {0};
    annal_err_t err = annal_store_stats(s_store, &st);
    if (!err && st.head_sequence == head && st.events == head && st.aggregates == aggregates
        && st.snapshots == snapshots)
        return true;
    fprintf(stderr, "  stats: error %d head %llu events %llu aggregates %llu snapshots %llu\n", err,
            (unsigned long long) st.head_sequence, (unsigned long long) st.events,
            (unsigned long long) st.aggregates, (unsigned long long) st.snapshots);
    return false;
}

/* s_counts_in in a batch of its own. */
static bool s_counts(uint64_t head, uint64_t aggregates, uint64_t snapshots)
{
    bool same = annal_store_begin(s_store) == ANNAL_OK && s_counts_in(head, aggregates, snapshots);
    annal_store_abort(s_store);
    return same;
}

/* The version of agg, in the open batch (UINT64_MAX on error). */
static uint64_t s_version_in(const char *agg)
{
    uint64_t v;
    return annal_store_version(s_store, agg, &v) ? UINT64_MAX : v;
}

/* s_version_in in a batch of its own. */
static uint64_t s_version(const char *agg)
{
    uint64_t v = annal_store_begin(s_store) == ANNAL_OK ? s_version_in(agg) : UINT64_MAX;
    annal_store_abort(s_store);
    return v;
}

/* Whether s_list holds the events at sequences want (ended by 0), in order. */
static bool s_are(const uint64_t *want)
{
    size_t n = 0;
    while (want[n] && n < s_list.count && s_list.items[n].sequence == want[n])
        n++;
    if (!want[n] && n == s_list.count)
        return true;
    fprintf(stderr, "  got sequences");
    for (size_t i = 0; i < s_list.count; i++)
        fprintf(stderr, " %llu", (unsigned long long) s_list.items[i].sequence);
    fprintf(stderr, "\n");
    return false;
}

/* read inside the open batch into s_list; whether it holds want. */
static bool s_read_is(const char *agg, uint64_t from, bool backward, size_t max,
                      const uint64_t *want)
{
    return annal_store_read(s_store, agg, from, backward, max, &s_list) == ANNAL_OK && s_are(want);
}

/* read_all inside the open batch into s_list; next (UINT64_MAX on error). */
static uint64_t s_all(uint64_t from, size_t max, size_t scan, const char *prefix,
                      char *const *types, size_t ntypes)
{
    uint64_t next;
    if (annal_store_read_all(s_store, from, max, scan, prefix, prefix ? strlen(prefix) : 0, types,
                             ntypes, &s_list, &next))
        return UINT64_MAX;
    return next;
}

/* Whether ev is event i of req, stored at sequence seq as version version. */
static bool s_same(const annal_event_t *ev, const annal_request_t *req, size_t i, uint64_t seq,
                   uint64_t version)
{
    const annal_new_event_t *e = &req->events[i];
    size_t alen = strlen(req->aggregate_id), tlen = strlen(e->event_type);
    return ev->sequence == seq && ev->version == version && ev->aggregate_id_len == alen
           && memcmp(ev->aggregate_id, req->aggregate_id, alen) == 0 && ev->event_type_len == tlen
           && memcmp(ev->event_type, e->event_type, tlen) == 0 && ev->data_len == e->data.size
           && memcmp(ev->data, e->data.data, e->data.size) == 0
           && ev->metadata_len == e->metadata.size
           && memcmp(ev->metadata, e->metadata.data, e->metadata.size) == 0
           && memcmp(ev->event_id, e->event_id, 16) == 0;
}

/* Puts a snapshot in its own batch. */
static annal_err_t s_snap(const char *agg, uint64_t version, bool folded, const uint8_t *state,
                          size_t len)
{
    annal_err_t err;
    do {
        if ((err = annal_store_begin(s_store)))
            return err;
        if ((err = annal_store_put_snapshot(s_store, agg, version, folded, state, len)))
            annal_store_abort(s_store);
        else
            err = annal_store_commit(s_store);
    } while (err == ANNAL_ERR_RETRY);
    return err;
}

/* Whether get_snapshot (in the open batch) finds the one at version, with
   folded and state (or, for version 0, none). */
static bool s_snap_is(const char *agg, uint64_t max, bool folded_only, uint64_t version,
                      bool folded, const uint8_t *state, size_t len)
{
    annal_snapshot_t snap;
    annal_err_t err = annal_store_get_snapshot(s_store, agg, max, folded_only, &snap);
    if (!version)
        return err == ANNAL_ERR_NOT_FOUND;
    return err == ANNAL_OK && snap.version == version && snap.folded == folded && snap.len == len
           && memcmp(snap.state, state, len) == 0;
}

/* --- the cases ------------------------------------------------------------------- */

/* Versions are 1, 2, 3 ... per aggregate; a failed check writes nothing. */
static void t_versions(void)
{
    CHECK(s_fresh());
    CHECK(s_one(ONE("a", "0", "T"), NEW(1, 1, 1)));
    CHECK(s_one(ONE("a", "0", "T"), CONFLICT(1)) && s_one(ONE("a", "2", "T"), CONFLICT(1)));
    CHECK(s_one(ONE("b", EXISTS, "T"), CONFLICT(0)) && s_one(ONE("b", "1", "T"), CONFLICT(0)));
    CHECK(s_one(ONE("b", ANY, "T"), NEW(2, 2, 1)));
    CHECK(s_one(ONE("b", EXISTS, "T"), NEW(3, 3, 2)));
    CHECK(s_one(ONE("b", ANY, "T"), NEW(4, 4, 3)));
    CHECK(s_one(ONE("b", "3", "T"), NEW(5, 5, 4)));
    CHECK(s_one(MANY("a", "1", EV("U") "," EV("V") "," EV("W")), NEW(6, 8, 4)));
    /* a stale batch writes none of its events */
    CHECK(s_one(MANY("a", "3", EV("X") "," EV("Y")), CONFLICT(4)));
    CHECK(s_one(MANY("c", EXISTS, EV("X") "," EV("Y")), CONFLICT(0)));
    CHECK(s_counts(8, 2, 0));
    CHECK(s_version("a") == 4 && s_version("b") == 4 && s_version("c") == 0);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_read_is("a", 1, false, 100, SEQS(1, 6, 7, 8)));
    for (size_t i = 0; i < s_list.count; i++)
        CHECK(s_list.items[i].version == i + 1);
    CHECK(s_read_is("c", 1, false, 100, NONE));
    annal_store_abort(s_store);
    CHECK(s_one(ONE("a", "4", "Z"), NEW(9, 9, 5))); /* the conflicts took no numbers */
}

/* The global sequence is 1, 2, 3 ... across aggregates, in commit order. */
static void t_sequence(void)
{
    CHECK(s_fresh());
    uint64_t seq = 0, version[5] = {0}, seen[5] = {0};
    for (int i = 0; i < 30; i++) {
        char agg[16];
        int a = i * 3 % 5, n = 1 + i % 3;
        snprintf(agg, sizeof agg, "agg-%d", a);
        CHECK(s_one(s_events(agg, ANY, n), NEW(seq + 1, seq + n, version[a] + n)));
        seq += n, version[a] += n;
        if (i % 7 == 0) /* a failure in between takes no number */
            CHECK(s_one(s_events(agg, "0", 2), CONFLICT(version[a])));
    }
    CHECK(s_counts(seq, 5, 0) && annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all(1, 1000, 1000, NULL, NULL, 0) == seq + 1 && s_list.count == seq);
    for (size_t i = 0; i < s_list.count; i++) { /* agg-N */
        const annal_event_t *ev = &s_list.items[i];
        CHECK(ev->sequence == i + 1 && ev->version == ++seen[ev->aggregate_id[4] - '0']);
    }
    annal_store_abort(s_store);
    CHECK(memcmp(seen, version, sizeof seen) == 0);
}

/* An event_id names one event of one aggregate; a retry gets its numbers. */
static void t_idempotency(void)
{
    CHECK(s_fresh());
    CHECK(s_one(ONE_ID("a", "0", "T", ID1), NEW(1, 1, 1)));
    CHECK(s_one(ONE_ID("a", "0", "T", ID1), DUP(1, 1, 1)));
    CHECK(s_one(ONE_ID("b", "0", "T", ID1), MALFORMED) && strstr(why, "another aggregate"));
    CHECK(s_counts(1, 1, 0));
    const char *batch = MANY("a", "1", EV_ID("U", ID2) "," EV_ID("V", ID3));
    CHECK(s_one(batch, NEW(2, 3, 3)));
    CHECK(s_one(batch, DUP(2, 3, 3)));
    CHECK(s_one(MANY("b", "0", EV_ID("U", ID2) "," EV_ID("V", ID3)), MALFORMED));
    /* first id stored, second new (or the other way): neither a retry nor new */
    CHECK(s_one(MANY("a", "3", EV_ID("U", ID2) "," EV("V")), MALFORMED));
    CHECK(s_one(MANY("a", "3", EV("U") "," EV_ID("V", ID3)), MALFORMED));
    CHECK(s_one(MANY("a", "3", EV_ID("U", ID4) "," EV_ID("V", ID3)), MALFORMED));
    /* the same ids in another order, a longer batch, a tail */
    CHECK(s_one(MANY("a", "1", EV_ID("V", ID3) "," EV_ID("U", ID2)), MALFORMED));
    CHECK(s_one(MANY("a", "1", EV_ID("U", ID2) "," EV_ID("V", ID3) "," EV("W")), MALFORMED));
    CHECK(s_one(MANY("a", "1", EV_ID("V", ID3) "," EV("W")), MALFORMED));
    CHECK(s_counts(3, 1, 0));
    /* one event may repeat any stored event, whatever its version check */
    CHECK(s_one(ONE_ID("a", "7", "V", ID3), DUP(3, 3, 3)));
    CHECK(s_one(ONE_ID("a", EXISTS, "U", ID2), DUP(2, 2, 2)));
    /* a batch retry is one whole stored batch: not a part of one, nor two appends */
    const char *three = MANY("c", "0", EV_ID("X", ID4) "," EV_ID("Y", ID5) "," EV_ID("Z", ID6));
    CHECK(s_one(three, NEW(4, 6, 3)) && s_one(three, DUP(4, 6, 3)));
    CHECK(s_one(MANY("c", "0", EV_ID("X", ID4) "," EV_ID("Y", ID5)), MALFORMED));
    CHECK(s_one(MANY("c", "1", EV_ID("Y", ID5) "," EV_ID("Z", ID6)), MALFORMED));
    CHECK(s_one(MANY("a", "0", EV_ID("T", ID1) "," EV_ID("U", ID2)), MALFORMED));
    CHECK(s_one(ONE_ID("c", ANY, "Y", ID5), DUP(5, 5, 2)));
    CHECK(s_counts(6, 2, 0) && s_version("b") == 0); /* b took nothing from the failures */
    CHECK(s_one(ONE("b", "0", "T"), NEW(7, 7, 1)));
}

/* One batch of appends to several aggregates, some failing alone (hints:
   announced with prepare first, as the broker does: PostgreSQL's fast
   path). The others commit together, with numbers one after another. */
static void s_mixed_batch(bool hints)
{
    CHECK(s_fresh());
    annal_append_result_t res[12];
    annal_err_t errs[12];
    CHECK(s_one(ONE_ID("p", "0", "A", ID1), NEW(1, 1, 1)));
    const char *json[12] = {
        ONE("p", "1", "B"),                                  /* 2 */
        ONE("q", "0", "C"),                                  /* 3 */
        ONE("p", "1", "D"),                                  /* conflict: p is at 2 */
        MANY("q", "1", EV_ID("E", ID2) "," EV_ID("F", ID3)), /* 4, 5 */
        ONE_ID("p", ANY, "A", ID1),                          /* stored before: 1 */
        MANY("q", "1", EV_ID("E", ID2) "," EV_ID("F", ID3)), /* stored by this batch */
        ONE_ID("r", "0", "G", ID2),                          /* q's id */
        ONE("p", EXISTS, "H"),                               /* 6 */
        ONE("r", EXISTS, "I"),                               /* conflict: r is empty */
        ONE_ID("q", "0", "J", ID4),                          /* conflict: q is at 3 */
        ONE_ID("q", "3", "J", ID4),                          /* 7: the id is still free */
        ONE("q", "4", "K"),                                  /* 8 */
    };
    CHECK(s_batch(json, 12, hints, false, errs, res) == ANNAL_OK);
    CHECK(s_was(errs[0], &res[0], NEW(2, 2, 2)) && s_was(errs[1], &res[1], NEW(3, 3, 1)));
    CHECK(s_was(errs[2], &res[2], CONFLICT(2)) && s_was(errs[3], &res[3], NEW(4, 5, 3)));
    CHECK(s_was(errs[4], &res[4], DUP(1, 1, 1)) && s_was(errs[5], &res[5], DUP(4, 5, 3)));
    CHECK(s_was(errs[6], &res[6], MALFORMED) && s_was(errs[7], &res[7], NEW(6, 6, 3)));
    CHECK(s_was(errs[8], &res[8], CONFLICT(0)) && s_was(errs[9], &res[9], CONFLICT(3)));
    CHECK(s_was(errs[10], &res[10], NEW(7, 7, 4)) && s_was(errs[11], &res[11], NEW(8, 8, 5)));
    CHECK(s_counts(8, 2, 0));
    CHECK(s_version("p") == 3 && s_version("q") == 5 && s_version("r") == 0);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all(1, 100, 100, NULL, NULL, 0) == 9 && s_are(SEQS(1, 2, 3, 4, 5, 6, 7, 8)));
    CHECK(s_read_is("p", 1, false, 100, SEQS(1, 2, 6)));
    CHECK(s_read_is("q", 1, false, 100, SEQS(3, 4, 5, 7, 8)));
    CHECK(s_list.items[2].version == 3 && s_list.items[2].event_type[0] == 'F');
    annal_store_abort(s_store);
}

static void t_batch(void)
{
    s_mixed_batch(false);
}

static void t_batch_prepared(void)
{
    s_mixed_batch(true);
}

/* Reads inside a batch see the batch's own writes. */
static void t_batch_reads(void)
{
    CHECK(s_fresh());
    annal_append_result_t res[4];
    annal_err_t errs[4];
    const uint8_t state[] = {0x80};
    CHECK(s_one(ONE("a", "0", "T"), NEW(1, 1, 1)));
    const char *json[4] = {ONE("a", "1", "U"), MANY("b", "0", EV_ID("V", ID1) "," EV("W")),
                           ONE("c", "0", "X"), ONE("a", "2", "Y")};
    CHECK(s_batch(json, 4, true, true, errs, res) == ANNAL_OK);
    CHECK(s_was(errs[3], &res[3], NEW(6, 6, 3)));
    CHECK(s_version_in("a") == 3 && s_version_in("b") == 2 && s_counts_in(6, 3, 0));
    CHECK(s_read_is("a", 1, false, 100, SEQS(1, 2, 6)) && s_read_is("a", 3, true, 2, SEQS(6, 2)));
    CHECK(s_all(1, 100, 100, NULL, NULL, 0) == 7 && s_are(SEQS(1, 2, 3, 4, 5, 6)));
    CHECK(s_all(3, 100, 100, "b", NULL, 0) == 7 && s_are(SEQS(3, 4)));
    CHECK(s_in(ONE_ID("b", ANY, "V", ID1), DUP(3, 3, 1))); /* an event of this batch again */
    CHECK(s_in(ONE_ID("c", ANY, "V", ID1), MALFORMED));
    CHECK(annal_store_put_snapshot(s_store, "c", 1, true, state, 1) == ANNAL_OK);
    CHECK(s_snap_is("c", UINT64_MAX, true, 1, true, state, 1) && s_counts_in(6, 3, 1));
    CHECK(s_in(ONE("c", "1", "Z"), NEW(7, 7, 2)) && s_in(ONE("b", "2", "Z"), NEW(8, 8, 3)));
    CHECK(s_all(7, 100, 100, NULL, NULL, 0) == 9 && s_are(SEQS(7, 8)));
    CHECK(annal_store_commit(s_store) == ANNAL_OK);
    CHECK(s_counts(8, 3, 1));
}

/* An aborted batch leaves nothing behind, not even sequence numbers. */
static void t_abort(void)
{
    CHECK(s_fresh());
    annal_append_result_t res[5];
    annal_err_t errs[5];
    const uint8_t state[] = {0x80};
    CHECK(s_one(ONE_ID("a", "0", "T", ID1), NEW(1, 1, 1)));
    const char *json[5] = {ONE("a", "1", "U"), MANY("b", "0", EV_ID("V", ID2) "," EV("W")),
                           ONE_ID("c", "0", "X", ID3), ONE("a", "2", "Y"), ONE("d", ANY, "Z")};
    for (int hints = 0; hints < 2; hints++) {
        CHECK(s_batch(json, 5, hints, true, errs, res) == ANNAL_OK);
        CHECK(s_was(errs[4], &res[4], NEW(7, 7, 1)));
        CHECK(annal_store_put_snapshot(s_store, "a", 1, true, state, 1) == ANNAL_OK);
        CHECK(s_counts_in(7, 4, 1));
        annal_store_abort(s_store);
        CHECK(s_counts(1, 1, 0));
        CHECK(s_version("a") == 1 && s_version("b") == 0 && s_version("d") == 0);
        CHECK(annal_store_begin(s_store) == ANNAL_OK);
        CHECK(s_all(1, 100, 100, NULL, NULL, 0) == 2 && s_are(SEQS(1)));
        CHECK(s_read_is("b", 1, false, 100, NONE));
        CHECK(s_snap_is("a", UINT64_MAX, false, 0, false, NULL, 0));
        annal_store_abort(s_store);
    }
    /* run again, the batch is new: its ids were not kept */
    CHECK(s_batch(json, 5, true, false, errs, res) == ANNAL_OK);
    CHECK(s_was(errs[0], &res[0], NEW(2, 2, 2)) && s_was(errs[1], &res[1], NEW(3, 4, 2)));
    CHECK(s_was(errs[2], &res[2], NEW(5, 5, 1)) && s_was(errs[4], &res[4], NEW(7, 7, 1)));
    CHECK(s_counts(7, 4, 0));
}

/* read: an aggregate's events up or down from a version, at most max. */
static void t_read(void)
{
    CHECK(s_fresh());
    annal_request_t req[3] = {
        /* kept: the ids the codec made for them */
        t_request(MANY("a", "0",
                       "{\"event_type\":\"Opened\",\"event_data\":{\"n\":1,\"s\":\"x\"},"
                       "\"metadata\":{\"by\":\"me\"},\"event_id\":\"" ID1 "\"},"
                       "{\"event_type\":\"Noted\",\"event_data\":[1,\"two\",3.5,null,true]},"
                       "{\"event_type\":\"Noted\",\"event_data\":\"text\"}")),
        t_request(ONE("ab", "0", "Other")), /* a neighbour in key order */
        t_request(MANY("a", "3", EV("Closed") "," EV_ID("Closed", ID2))),
    };
    annal_append_result_t res;
    annal_err_t err;
    for (int i = 0; i < 3; i++)
        CHECK(s_run(&req[i], 1, true, false, &err, &res) == ANNAL_OK && err == ANNAL_OK);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_read_is("a", 1, false, 100, SEQS(1, 2, 3, 5, 6)));
    for (size_t i = 0; i < 3; i++)
        CHECK(s_same(&s_list.items[i], &req[0], i, i + 1, i + 1));
    CHECK(s_same(&s_list.items[3], &req[2], 0, 5, 4) && s_same(&s_list.items[4], &req[2], 1, 6, 5));
    CHECK(s_read_is("a", 0, false, 100, SEQS(1, 2, 3, 5, 6)));
    CHECK(s_read_is("a", 2, false, 2, SEQS(2, 3)) && s_read_is("a", 5, false, 10, SEQS(6)));
    CHECK(s_read_is("a", 6, false, 10, NONE) && s_read_is("a", 1, false, 0, NONE));
    CHECK(s_read_is("a", 5, true, 2, SEQS(6, 5)) && s_read_is("a", 3, true, 100, SEQS(3, 2, 1)));
    CHECK(s_read_is("a", 100, true, 100, SEQS(6, 5, 3, 2, 1)));
    CHECK(s_read_is("a", UINT64_MAX, true, 1, SEQS(6)) && s_read_is("a", 0, true, 100, NONE));
    CHECK(s_read_is("ab", 1, false, 100, SEQS(4)) && s_same(&s_list.items[0], &req[1], 0, 4, 1));
    CHECK(s_read_is("ab", 1, true, 100, SEQS(4)));
    CHECK(s_read_is("A", 1, false, 100, NONE) && s_read_is("abc", 1, false, 100, NONE));
    annal_store_abort(s_store);
    for (int i = 0; i < 3; i++)
        annal_request_reset(&req[i]);
}

/* read_all: every aggregate's events from a sequence, filtered. */
static void t_read_all(void)
{
    CHECK(s_fresh());
    const char *json[8] = {ONE("order-1", ANY, "Created"), ONE("user-1", ANY, "Created"),
                           ONE("order-2", ANY, "Created"), ONE("order-1", ANY, "Paid"),
                           ONE("\xc3\xbc-1", ANY, "Paid"), ONE("order-1", ANY, "Shipped"),
                           ONE("user-1", ANY, "Paid"),     ONE("orders", ANY, "Created")};
    for (uint64_t i = 0; i < 8; i++)
        CHECK(s_one(json[i], ANNAL_OK, i + 1, i + 1, i == 3 || i == 6 ? 2 : i == 5 ? 3 : 1, false));
    char *paid[] = {"Paid"}, *later[] = {"Shipped", "Paid"}, *open[] = {"Created", "Paid"};
    char *cased[] = {"paid", "Refunded"};
    uint64_t next;
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all(1, 100, 1000, NULL, NULL, 0) == 9 && s_are(SEQS(1, 2, 3, 4, 5, 6, 7, 8)));
    CHECK(s_all(0, 100, 1000, NULL, NULL, 0) == 9 && s_list.count == 8);
    CHECK(s_all(3, 2, 1000, NULL, NULL, 0) == 5 && s_are(SEQS(3, 4)));
    CHECK(s_all(9, 100, 1000, NULL, NULL, 0) == 9 && s_are(NONE));
    CHECK(s_all(100, 100, 1000, NULL, NULL, 0) == 100 && s_are(NONE));
    CHECK(s_all(1, 0, 1000, NULL, NULL, 0) == 1 && s_are(NONE));
    CHECK(s_all(1, 100, 1000, "order-", NULL, 0) == 9 && s_are(SEQS(1, 3, 4, 6)));
    CHECK(s_all(1, 100, 1000, "order", NULL, 0) == 9 && s_are(SEQS(1, 3, 4, 6, 8)));
    CHECK(s_all(1, 100, 1000, "\xc3\xbc", NULL, 0) == 9 && s_are(SEQS(5)));
    CHECK(s_all(1, 100, 1000, "", NULL, 0) == 9 && s_list.count == 8);
    CHECK(s_all(1, 100, 1000, "Order", NULL, 0) == 9 && s_are(NONE));
    /* a prefix is bytes, not a pattern; plen of them, not up to a NUL */
    CHECK(s_all(1, 100, 1000, "order_", NULL, 0) == 9 && s_are(NONE));
    CHECK(s_all(1, 100, 1000, "order%", NULL, 0) == 9 && s_are(NONE));
    CHECK(annal_store_read_all(s_store, 1, 100, 1000, "order-1", 6, NULL, 0, &s_list, &next)
          == ANNAL_OK);
    CHECK(next == 9 && s_are(SEQS(1, 3, 4, 6)));
    CHECK(s_all(1, 100, 1000, NULL, paid, 1) == 9 && s_are(SEQS(4, 5, 7)));
    CHECK(s_all(1, 100, 1000, NULL, later, 2) == 9 && s_are(SEQS(4, 5, 6, 7)));
    CHECK(s_all(1, 100, 1000, NULL, cased, 2) == 9 && s_are(NONE));
    CHECK(s_all(1, 100, 1000, "order-", open, 2) == 9 && s_are(SEQS(1, 3, 4)));
    CHECK(s_all(1, 100, 1000, "user", paid, 1) == 9 && s_are(SEQS(7)));
    /* paging with next: after the last event returned */
    CHECK(s_all(1, 2, 1000, "order-", NULL, 0) == 4 && s_are(SEQS(1, 3)));
    CHECK(s_all(4, 2, 1000, "order-", NULL, 0) == 7 && s_are(SEQS(4, 6)));
    CHECK(s_all(7, 2, 1000, "order-", NULL, 0) == 9 && s_are(NONE));
    CHECK(s_all(1, 3, 1000, NULL, later, 2) == 7 && s_are(SEQS(4, 5, 6)));
    CHECK(s_all(7, 3, 1000, NULL, later, 2) == 9 && s_are(SEQS(7)));
    annal_store_abort(s_store);
}

/* read_all examines at most scan records; next says where it stopped. */
static void t_scan_cap(void)
{
    CHECK(s_fresh());
    CHECK(s_one(s_events("x", ANY, 6), NEW(1, 6, 6))); /* types T0 ... T5 */
    CHECK(s_one(MANY("y", ANY, EV("B") "," EV("B") "," EV("B") "," EV("B")), NEW(7, 10, 4)));
    char *b[] = {"B"}, *t[] = {"T4", "T5"};
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all(1, 100, 3, NULL, b, 1) == 4 && s_are(NONE));
    CHECK(s_all(4, 100, 3, NULL, b, 1) == 7 && s_are(NONE));
    CHECK(s_all(7, 100, 3, NULL, b, 1) == 10 && s_are(SEQS(7, 8, 9)));
    CHECK(s_all(10, 100, 3, NULL, b, 1) == 11 && s_are(SEQS(10)));
    CHECK(s_all(1, 100, 3, "y", NULL, 0) == 4 && s_are(NONE));
    CHECK(s_all(1, 2, 8, "y", NULL, 0) == 9 && s_are(SEQS(7, 8)));
    CHECK(s_all(1, 100, 4, NULL, NULL, 0) == 5 && s_are(SEQS(1, 2, 3, 4)));
    CHECK(s_all(1, 3, 4, NULL, NULL, 0) == 4 && s_are(SEQS(1, 2, 3)));
    CHECK(s_all(0, 100, 2, NULL, NULL, 0) == 3 && s_are(SEQS(1, 2)));
    CHECK(s_all(3, 100, 100, NULL, t, 2) == 11 && s_are(SEQS(5, 6)));
    CHECK(s_all(5, 100, 0, NULL, NULL, 0) == 5 && s_are(NONE));
    /* paging by next finds every match once */
    uint64_t from = 1, found = 0, calls = 0;
    while (from <= 10 && calls++ < 20) {
        uint64_t next = s_all(from, 100, 2, NULL, b, 1);
        CHECK(next > from && next <= 11);
        for (size_t i = 0; i < s_list.count; i++)
            CHECK(s_list.items[i].sequence == 7 + found++);
        from = next;
    }
    CHECK(from == 11 && found == 4 && calls == 5);
    /* bounds past any wire limit: no wrap-around, no error */
    CHECK(s_all(1, SIZE_MAX, SIZE_MAX, NULL, NULL, 0) == 11 && s_list.count == 10);
    CHECK(s_all(9, SIZE_MAX, SIZE_MAX, "y", NULL, 0) == 11 && s_are(SEQS(9, 10)));
    CHECK(s_read_is("y", 1, false, SIZE_MAX, SEQS(7, 8, 9, 10)));
    annal_store_abort(s_store);
}

/* Snapshots: the latest at or below a version, of either kind or folded. */
static void t_snapshots(void)
{
    CHECK(s_fresh());
    const uint8_t a[] = {0x81, 0xa1, 'a', 0x01}, b[] = {0x80}, c[] = {0x92, 0x01, 0x02};
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_snap_is("s", UINT64_MAX, false, 0, false, NULL, 0));
    annal_store_abort(s_store);
    CHECK(s_snap("s", 5, true, a, sizeof a) == ANNAL_OK);
    CHECK(s_snap("s", 9, false, b, sizeof b) == ANNAL_OK);
    CHECK(s_snap("s2", 1, true, b, sizeof b) == ANNAL_OK);
    CHECK(s_snap("s-x", 3, false, c, sizeof c) == ANNAL_OK);
    CHECK(s_snap("t", 2, false, c, sizeof c) == ANNAL_OK);
    CHECK(s_counts(0, 0, 5));
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_snap_is("s", UINT64_MAX, false, 9, false, b, sizeof b));
    CHECK(s_snap_is("s", UINT64_MAX, true, 5, true, a, sizeof a));
    CHECK(s_snap_is("s", 9, false, 9, false, b, sizeof b));
    CHECK(s_snap_is("s", 8, false, 5, true, a, sizeof a));
    CHECK(s_snap_is("s", 5, true, 5, true, a, sizeof a));
    CHECK(s_snap_is("s", 4, false, 0, false, NULL, 0)
          && s_snap_is("s", 0, false, 0, false, NULL, 0));
    CHECK(s_snap_is("s-x", 100, false, 3, false, c, sizeof c));
    CHECK(s_snap_is("s-x", 100, true, 0, false, NULL, 0));
    CHECK(s_snap_is("s2", 100, true, 1, true, b, sizeof b));
    CHECK(s_snap_is("t", 1, false, 0, false, NULL, 0));
    CHECK(s_snap_is("r", UINT64_MAX, false, 0, false, NULL, 0));
    CHECK(s_snap_is("u", UINT64_MAX, false, 0, false, NULL, 0));
    annal_store_abort(s_store);
    CHECK(s_snap("s", 9, true, c, sizeof c) == ANNAL_OK); /* replaces the one at 9 */
    CHECK(s_counts(0, 0, 5));
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_snap_is("s", UINT64_MAX, true, 9, true, c, sizeof c));
    annal_store_abort(s_store);
}

/* The counters: head (== events), aggregates with events, snapshots. */
static void t_stats(void)
{
    const uint8_t state[] = {0x80};
    CHECK(s_fresh());
    CHECK(s_counts(0, 0, 0) && s_version("a") == 0);
    CHECK(annal_store_begin(s_store) == ANNAL_OK); /* an empty store */
    CHECK(s_read_is("a", 1, false, 100, NONE) && s_read_is("a", UINT64_MAX, true, 100, NONE));
    CHECK(s_all(1, 100, 100, NULL, NULL, 0) == 1 && s_all(0, 100, 100, NULL, NULL, 0) == 0);
    CHECK(s_are(NONE) && s_snap_is("a", UINT64_MAX, false, 0, false, NULL, 0));
    annal_store_abort(s_store);
    CHECK(s_one(s_events("a", "0", 3), NEW(1, 3, 3)) && s_one(s_events("c", "0", 2), NEW(4, 5, 2)));
    CHECK(s_one(ONE_ID("b", "0", "T", ID1), NEW(6, 6, 1)) && s_counts(6, 3, 0));
    CHECK(s_one(ONE("b", "0", "T"), CONFLICT(1))
          && s_one(ONE_ID("b", ANY, "T", ID1), DUP(6, 6, 1)));
    CHECK(s_one(ONE_ID("d", ANY, "T", ID1), MALFORMED) && s_counts(6, 3, 0));
    CHECK(s_snap("a", 3, true, state, 1) == ANNAL_OK
          && s_snap("a", 1, false, state, 1) == ANNAL_OK);
    CHECK(s_snap("a", 3, false, state, 1) == ANNAL_OK
          && s_snap("e", 1, true, state, 1) == ANNAL_OK);
    CHECK(s_counts(6, 3, 3)); /* a snapshot makes no aggregate; one replaced counts once */
    CHECK(s_one(ONE("e", "0", "T"), NEW(7, 7, 1)) && s_counts(7, 4, 3));
}

/* recorded_at: the clock at commit, one per batch, never decreasing. */
static void t_recorded_at(void)
{
    CHECK(s_fresh());
    int64_t start = annal_time_now(), given[6];
    annal_append_result_t res[3];
    annal_err_t errs[3];
    uint64_t last[6];
    for (int i = 0; i < 6; i++) { /* batches of 1, 2, 3 appends, 1 to 3 events */
        const char *json[3] = {s_events("a", ANY, 1 + i % 3), ONE("b", ANY, "T"),
                               ONE("c", ANY, "T")};
        CHECK(s_batch(json, 1 + i % 3, true, false, errs, res) == ANNAL_OK);
        for (int k = 0; k <= i % 3; k++)
            CHECK(errs[k] == ANNAL_OK && res[k].recorded_at == res[0].recorded_at);
        given[i] = res[0].recorded_at, last[i] = res[i % 3].last_sequence;
        usleep(i == 2 ? 2000 : 0);
    }
    int64_t end = annal_time_now();
    CHECK(given[5] > given[0]);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all(1, 100, 100, NULL, NULL, 0) == last[5] + 1 && s_list.count == last[5]);
    for (size_t i = 0, b = 0; i < s_list.count; i++) {
        const annal_event_t *ev = &s_list.items[i];
        b += ev->sequence > last[b];
        CHECK(ev->recorded_at == given[b] && ev->recorded_at >= start && ev->recorded_at <= end);
        CHECK(i == 0 || ev->recorded_at >= s_list.items[i - 1].recorded_at);
    }
    annal_store_abort(s_store);
}

/* Everything committed stays across close and open; a batch open at close
   is dropped. */
static void t_reopen(void)
{
    CHECK(s_fresh());
    annal_append_result_t res;
    annal_err_t err;
    const char *batch = MANY("a", "0", EV_ID("U", ID1) "," EV_ID("V", ID2));
    const uint8_t state[] = {0x81, 0xa1, 'a', 0x01};
    CHECK(s_one(batch, NEW(1, 2, 2)));
    CHECK(s_batch((const char *[]){ONE("b", "0", "T")}, 1, true, false, &err, &res) == ANNAL_OK);
    CHECK(s_snap("a", 2, true, state, sizeof state) == ANNAL_OK);
    for (int round = 0; round < 2; round++) {
        CHECK(s_reopen());
        CHECK(s_counts(3, 2, 1) && s_version("a") == 2 && s_version("b") == 1);
    }
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all(1, 100, 100, NULL, NULL, 0) == 4 && s_are(SEQS(1, 2, 3)));
    CHECK(s_list.items[2].recorded_at == res.recorded_at && s_list.items[1].event_type[0] == 'V');
    CHECK(s_snap_is("a", UINT64_MAX, true, 2, true, state, sizeof state));
    annal_store_abort(s_store);
    CHECK(s_one(batch, DUP(1, 2, 2)));
    int64_t last = res.recorded_at;
    CHECK(s_batch((const char *[]){ONE("a", "2", "W")}, 1, true, false, &err, &res) == ANNAL_OK);
    CHECK(s_was(err, &res, NEW(4, 4, 3)) && res.recorded_at >= last);
    const char *json[4] = {ONE("a", "3", "X"), ONE_ID("c", "0", "Y", ID3), ONE("d", ANY, "Z"),
                           ONE("a", "4", "X")};
    annal_append_result_t four[4];
    annal_err_t errs[4];
    CHECK(s_batch(json, 4, true, true, errs, four) == ANNAL_OK);
    CHECK(s_was(errs[3], &four[3], NEW(8, 8, 5)));
    CHECK(annal_store_put_snapshot(s_store, "c", 1, true, state, 1) == ANNAL_OK);
    CHECK(s_reopen()); /* closes without commit */
    CHECK(s_counts(4, 2, 1) && s_version("a") == 3 && s_version("c") == 0);
    CHECK(s_one(ONE_ID("c", "0", "Y", ID3), NEW(5, 5, 1)));
}

/* --- consumer groups (optional ops: skipped where the backend has none) ------------ */

/* Whether the backend keeps groups; says so when it does not (the case then
   ends, passing). */
static bool s_groups(void)
{
    if (annal_store_has_groups(s_store))
        return true;
    printf("  (skipped: the %s backend keeps no consumer groups)\n", annal_store_name(s_store));
    return false;
}

/* A group's def, in the fields the cases vary. */
static annal_group_def_t s_def(const char *name, const char *prefix, char *const *types,
                               size_t ntypes, uint64_t start, uint64_t floor)
{
    return (annal_group_def_t){.name = name,
                               .prefix = prefix,
                               .types = types,
                               .ntypes = ntypes,
                               .start = start,
                               .unordered = ntypes % 2 == 1,
                               .from_end = start % 2 == 0,
                               .ack_timeout_ms = 30000 + (uint32_t) ntypes,
                               .max_deliveries = 5 + (uint32_t) ntypes,
                               .floor = floor};
}

/* Whether got is want, field by field (types in order). */
static bool s_def_is(const annal_group_def_t *got, const annal_group_def_t *want)
{
    bool same = strcmp(got->name, want->name) == 0 && strcmp(got->prefix, want->prefix) == 0
                && got->ntypes == want->ntypes && (got->ntypes > 0) == (got->types != NULL)
                && got->start == want->start && got->unordered == want->unordered
                && got->from_end == want->from_end && got->ack_timeout_ms == want->ack_timeout_ms
                && got->max_deliveries == want->max_deliveries && got->floor == want->floor;
    for (size_t i = 0; same && i < want->ntypes; i++)
        same = strcmp(got->types[i], want->types[i]) == 0;
    if (!same)
        fprintf(stderr,
                "  group '%.40s': prefix '%.40s', %zu types%s, start %llu, %s, ack %u ms, "
                "max %u, floor %llu\n",
                got->name, got->prefix, got->ntypes, got->types ? "" : " (NULL)",
                (unsigned long long) got->start, got->unordered ? "unordered" : "ordered",
                got->ack_timeout_ms, got->max_deliveries, (unsigned long long) got->floor);
    return same;
}

/* Whether group_get (in the open batch) finds name as want (NULL: none). */
static bool s_get_is(const char *name, const annal_group_def_t *want)
{
    annal_group_def_t got;
    annal_err_t err = annal_store_group_get(s_store, name, &got);
    if (!want)
        return err == ANNAL_ERR_NOT_FOUND;
    return err == ANNAL_OK && s_def_is(&got, want);
}

/* A mark, without a reason unless given. */
static annal_group_mark_t s_mark(uint64_t sequence, annal_mark_t mark, uint32_t delivery,
                                 const char *reason)
{
    return (annal_group_mark_t){sequence, mark, delivery, reason, reason ? strlen(reason) : 0};
}

/* group_mark (in the open batch) of several sequences, one kind. */
static bool s_mark_all(const char *name, annal_mark_t mark, const uint64_t *seqs)
{
    for (; *seqs; seqs++) {
        annal_group_mark_t m = s_mark(*seqs, mark, 1, mark == ANNAL_MARK_PARKED ? "why" : NULL);
        if (annal_store_group_mark(s_store, name, &m) != ANNAL_OK)
            return false;
    }
    return true;
}

/* group_marks (in the open batch) into s_marks; whether it holds the marks
   at sequences want (ended by 0) and *next came back as next. */
static bool s_marks_are(const char *name, uint64_t from, size_t max, annal_mark_t kind,
                        const uint64_t *want, uint64_t next)
{
    uint64_t got_next = 12345;
    annal_err_t err = annal_store_group_marks(s_store, name, from, max, kind, &s_marks, &got_next);
    size_t n = 0;
    while (!err && want[n] && n < s_marks.count && s_marks.items[n].sequence == want[n]
           && (!kind || s_marks.items[n].mark == kind))
        n++;
    if (!err && !want[n] && n == s_marks.count && got_next == next)
        return true;
    fprintf(stderr, "  marks of %s: error %d, next %llu, sequences", name, err,
            (unsigned long long) got_next);
    for (size_t i = 0; i < s_marks.count; i++)
        fprintf(stderr, " %llu(%d)", (unsigned long long) s_marks.items[i].sequence,
                s_marks.items[i].mark);
    fprintf(stderr, "\n");
    return false;
}

/* Whether s_marks.items[i] is mark. */
static bool s_mark_is(size_t i, const annal_group_mark_t *mark)
{
    const annal_group_mark_t *m = &s_marks.items[i];
    return i < s_marks.count && m->sequence == mark->sequence && m->mark == mark->mark
           && m->delivery == mark->delivery && m->reason_len == mark->reason_len
           && (m->reason_len ? memcmp(m->reason, mark->reason, m->reason_len) == 0
                             : m->reason == NULL);
}

static annal_err_t s_each_fn(void *arg, const annal_group_def_t *def)
{
    (void) arg;
    if (s_calls < 8)
        snprintf(s_names[s_calls], sizeof s_names[0], "%s", def->name);
    if (s_calls == 0 && s_first) { /* a group_get inside: def stays as it was */
        annal_group_def_t other;
        s_first_held = annal_store_group_get(s_store, "b", &other) == ANNAL_OK
                       && strcmp(other.name, "b") == 0 && s_def_is(def, s_first);
    }
    if (s_delete_each && annal_store_group_delete(s_store, def->name) != ANNAL_OK)
        return ANNAL_ERR_INTERNAL;
    return ++s_calls == s_stop_after ? s_stop_at : ANNAL_OK;
}

/* group_each (in the open batch); whether fn was given the names want (in
   order, ended by NULL) and each returned err. */
static bool s_each_is(annal_err_t err, const char *const *want)
{
    s_calls = 0;
    annal_err_t got = annal_store_group_each(s_store, s_each_fn, NULL);
    int n = 0;
    while (want[n] && n < s_calls && strcmp(s_names[n], want[n]) == 0)
        n++;
    if (got == err && !want[n] && n == s_calls)
        return true;
    fprintf(stderr, "  group_each: error %d, %d calls:", got, s_calls);
    for (int i = 0; i < s_calls && i < 8; i++)
        fprintf(stderr, " '%.20s'", s_names[i]);
    fprintf(stderr, "\n");
    return false;
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_NAMES   ((const char *const[]){NULL})

/* Ends the open batch with a commit; whether it went through. */
static bool s_commit(void)
{
    return annal_store_commit(s_store) == ANNAL_OK;
}

/* put and get give back every field: prefix "" or not, no types or some
   (in their order), ordering, and each number at its bounds; the strings
   are copied; a name is matched whole. */
static void t_group_put_get(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    static char name[ANNAL_MAX_AGGREGATE_ID + 1], prefix[ANNAL_MAX_AGGREGATE_ID + 1];
    static char many[ANNAL_MAX_EVENT_TYPES][ANNAL_MAX_EVENT_TYPE + 1];
    char *types[ANNAL_MAX_EVENT_TYPES], mine[] = "order-", t0[] = "Shipped";
    char *three[] = {t0, "Created", "\xc3\xbc Paid"};
    memset(name, 'n', ANNAL_MAX_AGGREGATE_ID);
    memset(prefix, 'p', ANNAL_MAX_AGGREGATE_ID);
    for (int i = 0; i < ANNAL_MAX_EVENT_TYPES; i++) {
        memset(many[i], 'a' + i % 26, ANNAL_MAX_EVENT_TYPE);
        many[i][0] = (char) ('0' + i % 10);
        types[i] = many[i];
    }
    annal_group_def_t all = s_def("all", "", NULL, 0, 1, 0);
    annal_group_def_t orders = s_def("orders", mine, three, 3, 1043, 1044);
    annal_group_def_t big =
        s_def(name, prefix, types, ANNAL_MAX_EVENT_TYPES, UINT64_MAX, UINT64_MAX);
    big.ack_timeout_ms = UINT32_MAX, big.max_deliveries = UINT32_MAX, big.unordered = true;
    annal_group_def_t zero = s_def("z\xc3\xbc-0", "\xc3\xbc", NULL, 0, 0, 0);
    zero.ack_timeout_ms = 0, zero.max_deliveries = 0;
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_get_is("all", NULL));
    CHECK(annal_store_group_put(s_store, &all) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &orders) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &big) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &zero) == ANNAL_OK);
    CHECK(s_get_is("orders", &orders)); /* in the batch that wrote it */
    CHECK(s_commit());
    strcpy(mine, "xxxxx-"), strcpy(t0, "Xxxxxxx"); /* put copied them */
    orders.prefix = "order-", three[0] = "Shipped";
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_get_is("all", &all) && s_get_is("orders", &orders));
    CHECK(s_get_is(name, &big) && s_get_is("z\xc3\xbc-0", &zero));
    annal_group_def_t got;
    CHECK(annal_store_group_get(s_store, "all", &got) == ANNAL_OK && got.types == NULL);
    /* a view: NUL-terminated strings, types in their order */
    CHECK(annal_store_group_get(s_store, "orders", &got) == ANNAL_OK);
    CHECK(s_def_is(&got, &orders) && strcmp(got.types[2], "\xc3\xbc Paid") == 0);
    CHECK(s_get_is("order", NULL) && s_get_is("ordersx", NULL) && s_get_is("Orders", NULL));
    CHECK(s_get_is("al", NULL) && s_get_is("", NULL) && s_get_is("z", NULL));
    /* names the codec never lets through */
    static char longer[ANNAL_MAX_AGGREGATE_ID + 2];
    memset(longer, 'n', ANNAL_MAX_AGGREGATE_ID + 1);
    annal_group_def_t bad = s_def(longer, "", NULL, 0, 1, 0);
    CHECK(annal_store_group_put(s_store, &bad) == ANNAL_ERR_MALFORMED && s_get_is(longer, NULL));
    bad.name = "";
    CHECK(annal_store_group_put(s_store, &bad) == ANNAL_ERR_MALFORMED);
    annal_store_abort(s_store);
}

/* put of a stored group replaces it: a new floor (its marks stay). */
static void t_group_replace(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    char *types[] = {"A", "B"};
    annal_group_def_t g = s_def("g", "p-", types, 2, 10, 9);
    annal_group_mark_t parked = s_mark(12, ANNAL_MARK_PARKED, 5, "timeout");
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK);
    CHECK(annal_store_group_mark(s_store, "g", &parked) == ANNAL_OK);
    CHECK(s_mark_all("g", ANNAL_MARK_ACKED, SEQS(11, 13)) && s_commit());
    g.floor = 11;
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK && s_get_is("g", &g));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_get_is("g", &g) && s_marks_are("g", 0, 100, 0, SEQS(11, 12, 13), 0));
    CHECK(s_mark_is(1, &parked));
    g.floor = 3; /* a put stores what it is given, even a lower floor */
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK && s_get_is("g", &g));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_get_is("g", &g));
    annal_store_abort(s_store);
}

/* each: every group once, in name order (bytes); an error from fn stops
   it; fn may read and write. */
static void t_group_each(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    char *types[] = {"T1", "T2", "T3"};
    const char *names[] = {"b", "\xc3\xbc", "ab", "a-b", "a", "B"};
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_each_is(ANNAL_OK, NO_NAMES)); /* none yet */
    for (int i = 0; i < 6; i++) {
        annal_group_def_t def = s_def(names[i], "", i == 5 ? types : NULL, i == 5 ? 3 : 0, i, 0);
        CHECK(annal_store_group_put(s_store, &def) == ANNAL_OK);
    }
    const char *const *sorted = NAMES("B", "a", "a-b", "ab", "b", "\xc3\xbc");
    CHECK(s_each_is(ANNAL_OK, sorted)); /* in the batch that wrote them */
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    /* the def fn is given first ("B", with its types) holds across a get */
    annal_group_def_t first = s_def("B", "", types, 3, 5, 0);
    s_first = &first;
    CHECK(s_each_is(ANNAL_OK, sorted) && s_first_held);
    s_first = NULL;
    s_stop_at = ANNAL_ERR_CONFLICT, s_stop_after = 3;
    CHECK(s_each_is(ANNAL_ERR_CONFLICT, NAMES("B", "a", "a-b")));
    s_stop_after = 0, s_delete_each = true;
    CHECK(s_each_is(ANNAL_OK, sorted)); /* deleting each as it goes */
    s_delete_each = false;
    CHECK(s_each_is(ANNAL_OK, NO_NAMES) && s_get_is("a", NULL));
    annal_store_abort(s_store);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_each_is(ANNAL_OK, sorted)); /* the deletes were aborted */
    annal_store_abort(s_store);
}

/* delete: the group and every mark of it, no other group's (names that
   begin alike); an unknown group is NOT_FOUND; a new group of the name
   starts with none. */
static void t_group_delete(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    const char *names[] = {"g", "g-2", "gg", "f"};
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_delete(s_store, "g") == ANNAL_ERR_NOT_FOUND);
    for (int i = 0; i < 4; i++) {
        annal_group_def_t def = s_def(names[i], "", NULL, 0, 1, 2);
        CHECK(annal_store_group_put(s_store, &def) == ANNAL_OK);
        CHECK(s_mark_all(names[i], ANNAL_MARK_ACKED, SEQS(3, 7)));
        CHECK(s_mark_all(names[i], ANNAL_MARK_PARKED, SEQS(1, 5, UINT64_MAX)));
        CHECK(s_mark_all(names[i], ANNAL_MARK_READY, SEQS(2)));
    }
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_delete(s_store, "g") == ANNAL_OK);
    CHECK(s_get_is("g", NULL) && s_marks_are("g", 0, 100, 0, NONE, 0));
    CHECK(annal_store_group_delete(s_store, "g") == ANNAL_ERR_NOT_FOUND);
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_get_is("g", NULL) && s_marks_are("g", 0, 100, 0, NONE, 0));
    CHECK(s_each_is(ANNAL_OK, NAMES("f", "g-2", "gg")));
    for (int i = 1; i < 4; i++)
        CHECK(s_marks_are(names[i], 0, 100, 0, SEQS(1, 2, 3, 5, 7, UINT64_MAX), 0));
    CHECK(annal_store_group_delete(s_store, "G") == ANNAL_ERR_NOT_FOUND);
    CHECK(annal_store_group_delete(s_store, "") == ANNAL_ERR_NOT_FOUND);
    CHECK(annal_store_group_delete(s_store, "g-") == ANNAL_ERR_NOT_FOUND);
    annal_group_def_t again = s_def("g", "x", NULL, 0, 9, 9);
    CHECK(annal_store_group_put(s_store, &again) == ANNAL_OK);
    CHECK(s_get_is("g", &again) && s_marks_are("g", 0, 100, 0, NONE, 0));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_marks_are("g", 0, 100, 0, NONE, 0));
    CHECK(s_marks_are("gg", 0, 100, 0, SEQS(1, 2, 3, 5, 7, UINT64_MAX), 0));
    annal_store_abort(s_store);
}

/* mark, unmark, and a mark replacing another of its sequence; every field
   back; reason_len bytes of a reason, no more; a mark needs its group. */
static void t_group_mark(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    annal_group_def_t g = s_def("g", "", NULL, 0, 1, 0);
    annal_group_mark_t parked = s_mark(5, ANNAL_MARK_PARKED, 3, "handler: boom \xc3\xbc");
    annal_group_mark_t cut = {6, ANNAL_MARK_PARKED, UINT32_MAX, "abcdef", 3};
    annal_group_mark_t acked = s_mark(5, ANNAL_MARK_ACKED, 0, NULL);
    annal_group_mark_t first = s_mark(1, ANNAL_MARK_READY, 0, NULL);
    annal_group_mark_t last = s_mark(UINT64_MAX, ANNAL_MARK_PARKED, 1, "last");
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_mark(s_store, "g", &parked) == ANNAL_ERR_NOT_FOUND);
    CHECK(s_marks_are("g", 0, 100, 0, NONE, 0));
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK);
    CHECK(annal_store_group_mark(s_store, "g", &parked) == ANNAL_OK);
    CHECK(annal_store_group_mark(s_store, "g", &cut) == ANNAL_OK);
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(5, 6), 0) && s_mark_is(0, &parked));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(5, 6), 0));
    CHECK(s_mark_is(0, &parked) && s_mark_is(1, &cut) && s_marks.items[1].reason_len == 3);
    CHECK(annal_store_group_mark(s_store, "g", &acked) == ANNAL_OK); /* replaces */
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(5, 6), 0) && s_mark_is(0, &acked));
    CHECK(annal_store_group_mark(s_store, "g", &first) == ANNAL_OK);
    CHECK(annal_store_group_mark(s_store, "g", &last) == ANNAL_OK);
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(1, 5, 6, UINT64_MAX), 0));
    CHECK(s_mark_is(0, &first) && s_mark_is(1, &acked) && s_mark_is(3, &last));
    CHECK(annal_store_group_unmark(s_store, "g", 6) == ANNAL_OK);
    CHECK(annal_store_group_unmark(s_store, "g", 6) == ANNAL_OK); /* none: no error */
    CHECK(annal_store_group_unmark(s_store, "g", 7) == ANNAL_OK);
    CHECK(annal_store_group_unmark(s_store, "nobody", 5) == ANNAL_OK);
    CHECK(annal_store_group_unmark(s_store, "g", UINT64_MAX) == ANNAL_OK);
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(1, 5), 0));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(1, 5), 0) && s_mark_is(1, &acked));
    CHECK(s_marks_are("nobody", 0, 100, 0, NONE, 0));
    annal_store_abort(s_store);
}

/* marks: from a sequence on, at most max, of one kind or any; *next is
   past the last one given, at most at the next one of the kind, 0 when
   none is left (a full page that ends the list too); paging by it finds
   each once; no other group's marks. */
static void t_group_marks(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    const char *names[] = {"f", "g", "g-2"};
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    for (int i = 0; i < 3; i++) {
        annal_group_def_t def = s_def(names[i], "", NULL, 0, 1, 0);
        CHECK(annal_store_group_put(s_store, &def) == ANNAL_OK);
    }
    for (uint64_t s = 1; s <= 20; s++) { /* g: 4k parked, odd acked, the rest ready */
        annal_mark_t kind = s % 4 == 0   ? ANNAL_MARK_PARKED
                            : s % 2 == 1 ? ANNAL_MARK_ACKED
                                         : ANNAL_MARK_READY;
        annal_group_mark_t m =
            s_mark(s, kind, (uint32_t) s, kind == ANNAL_MARK_PARKED ? "p" : NULL);
        CHECK(annal_store_group_mark(s_store, "g", &m) == ANNAL_OK);
        CHECK(s_mark_all("f", ANNAL_MARK_PARKED, SEQS(s)) && s_mark_all("g-2", kind, SEQS(s + 20)));
    }
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    const uint64_t *every =
        SEQS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20);
    CHECK(s_marks_are("g", 0, 100, 0, every, 0) && s_marks_are("g", 1, SIZE_MAX, 0, every, 0));
    CHECK(s_marks.items[3].delivery == 4 && s_marks.items[3].reason_len == 1);
    CHECK(s_marks.items[3].reason[0] == 'p' && s_marks.items[4].reason == NULL);
    CHECK(s_marks_are("g", 5, 3, 0, SEQS(5, 6, 7), 8));
    CHECK(s_marks_are("g", 1, 2, ANNAL_MARK_PARKED, SEQS(4, 8), 12));
    CHECK(s_marks_are("g", 9, 2, ANNAL_MARK_PARKED, SEQS(12, 16), 20));
    CHECK(s_marks_are("g", 17, 2, ANNAL_MARK_PARKED, SEQS(20), 0));
    CHECK(s_marks_are("g", 0, 100, ANNAL_MARK_READY, SEQS(2, 6, 10, 14, 18), 0));
    CHECK(s_marks_are("g", 19, 1, ANNAL_MARK_ACKED, SEQS(19), 0));
    CHECK(s_marks_are("g", 0, 5, ANNAL_MARK_READY, SEQS(2, 6, 10, 14, 18), 0)); /* full, last */
    CHECK(s_marks_are("g", 0, 4, ANNAL_MARK_READY, SEQS(2, 6, 10, 14), 18));
    CHECK(s_marks_are("g", 20, 1, ANNAL_MARK_ACKED, NONE, 0));
    CHECK(s_marks_are("g", 20, 1, 0, SEQS(20), 0) && s_marks_are("g", 21, 10, 0, NONE, 0));
    CHECK(s_marks_are("g", 19, 1, 0, SEQS(19), 20));
    CHECK(s_marks_are("g", UINT64_MAX, 10, 0, NONE, 0));
    CHECK(s_marks_are("g", 3, 0, 0, NONE, 3) && s_marks_are("g", 3, 0, ANNAL_MARK_PARKED, NONE, 4));
    CHECK(s_marks_are("h", 0, 100, 0, NONE, 0) && s_marks_are("", 0, 100, 0, NONE, 0));
    CHECK(s_marks_are("f", 0, 100, ANNAL_MARK_ACKED, NONE, 0));
    CHECK(s_marks_are("g-2", 0, 100, ANNAL_MARK_PARKED, SEQS(24, 28, 32, 36, 40), 0));
    /* paging by next: 3 at a time */
    uint64_t from = 0, next = 0, found = 0;
    int calls = 0;
    do {
        CHECK(annal_store_group_marks(s_store, "g", from, 3, ANNAL_MARK_ACKED, &s_marks, &next)
              == ANNAL_OK);
        CHECK(next == 0 || next > from);
        for (size_t i = 0; i < s_marks.count; i++)
            CHECK(s_marks.items[i].sequence == 2 * found++ + 1);
        from = next;
    } while (next && ++calls < 20);
    CHECK(found == 10 && calls == 3);
    annal_store_abort(s_store);
}

/* floor: the new floor, and the acked marks at or below it gone; parked
   and ready ones stay, so do marks above it and other groups'. */
static void t_group_floor(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    char *types[] = {"T"};
    annal_group_def_t g = s_def("g", "a-", types, 1, 1, 0), g2 = s_def("g-2", "", NULL, 0, 1, 0);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_floor(s_store, "g", 5) == ANNAL_ERR_NOT_FOUND);
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &g2) == ANNAL_OK);
    CHECK(s_mark_all("g", ANNAL_MARK_ACKED, SEQS(1, 4, 5, 7, 11)));
    CHECK(s_mark_all("g", ANNAL_MARK_PARKED, SEQS(2, 6)));
    CHECK(s_mark_all("g", ANNAL_MARK_READY, SEQS(3, 9)));
    CHECK(s_mark_all("g-2", ANNAL_MARK_ACKED, SEQS(1, 2, 3, 4, 5, 6, 7)));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_floor(s_store, "g", 5) == ANNAL_OK);
    g.floor = 5;
    CHECK(s_get_is("g", &g) && s_marks_are("g", 0, 100, 0, SEQS(2, 3, 6, 7, 9, 11), 0));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_get_is("g", &g) && s_get_is("g-2", &g2));
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(2, 3, 6, 7, 9, 11), 0));
    CHECK(s_marks_are("g", 0, 100, ANNAL_MARK_PARKED, SEQS(2, 6), 0));
    CHECK(s_marks_are("g-2", 0, 100, 0, SEQS(1, 2, 3, 4, 5, 6, 7), 0));
    CHECK(annal_store_group_floor(s_store, "g", 5) == ANNAL_OK); /* again: nothing more */
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(2, 3, 6, 7, 9, 11), 0));
    CHECK(annal_store_group_floor(s_store, "g", 10) == ANNAL_OK);
    g.floor = 10;
    CHECK(s_get_is("g", &g) && s_marks_are("g", 0, 100, 0, SEQS(2, 3, 6, 9, 11), 0));
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_floor(s_store, "g-2", UINT64_MAX) == ANNAL_OK);
    CHECK(s_marks_are("g-2", 0, 100, 0, NONE, 0));
    CHECK(annal_store_group_floor(s_store, "nobody", 1) == ANNAL_ERR_NOT_FOUND);
    CHECK(annal_store_group_floor(s_store, "", 1) == ANNAL_ERR_NOT_FOUND);
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    g2.floor = UINT64_MAX;
    CHECK(s_get_is("g", &g) && s_get_is("g-2", &g2) && s_marks_are("g-2", 0, 100, 0, NONE, 0));
    CHECK(s_marks_are("g", 0, 100, 0, SEQS(2, 3, 6, 9, 11), 0));
    annal_store_abort(s_store);
}

/* Inside a batch every group op sees the batch's own writes, events'
   too; an aborted batch leaves none of them, and undoes its deletes. */
static void t_group_batch(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    annal_group_def_t keep = s_def("keep", "k-", NULL, 0, 1, 0),
                      add = s_def("new", "", NULL, 0, 2, 0);
    annal_group_mark_t parked = s_mark(2, ANNAL_MARK_PARKED, 5, "slow");
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &keep) == ANNAL_OK);
    CHECK(annal_store_group_mark(s_store, "keep", &parked) == ANNAL_OK);
    CHECK(s_mark_all("keep", ANNAL_MARK_ACKED, SEQS(1, 3)));
    CHECK(s_in(ONE("k-1", "0", "T"), NEW(1, 1, 1)) && s_commit());
    for (int round = 0; round < 2; round++) { /* aborted, then committed */
        CHECK(annal_store_begin(s_store) == ANNAL_OK);
        CHECK(s_in(ONE("k-1", "1", "U"), NEW(2, 2, 2)));
        CHECK(annal_store_group_put(s_store, &add) == ANNAL_OK && s_get_is("new", &add));
        CHECK(s_mark_all("new", ANNAL_MARK_ACKED, SEQS(1, 2, 4)));
        CHECK(s_mark_all("new", ANNAL_MARK_PARKED, SEQS(3)));
        CHECK(s_marks_are("new", 0, 100, 0, SEQS(1, 2, 3, 4), 0));
        CHECK(annal_store_group_floor(s_store, "new", 3) == ANNAL_OK);
        add.floor = 3;
        CHECK(s_get_is("new", &add) && s_marks_are("new", 0, 100, 0, SEQS(3, 4), 0));
        CHECK(annal_store_group_unmark(s_store, "keep", 3) == ANNAL_OK);
        CHECK(s_marks_are("keep", 0, 100, 0, SEQS(1, 2), 0));
        CHECK(s_each_is(ANNAL_OK, NAMES("keep", "new")));
        CHECK(annal_store_group_delete(s_store, "keep") == ANNAL_OK);
        CHECK(s_get_is("keep", NULL) && s_marks_are("keep", 0, 100, 0, NONE, 0));
        CHECK(annal_store_group_mark(s_store, "keep", &parked) == ANNAL_ERR_NOT_FOUND);
        CHECK(s_each_is(ANNAL_OK, NAMES("new")) && s_version_in("k-1") == 2);
        if (round == 1)
            break;
        annal_store_abort(s_store);
        add.floor = 0;
        CHECK(annal_store_begin(s_store) == ANNAL_OK);
        CHECK(s_get_is("new", NULL) && s_marks_are("new", 0, 100, 0, NONE, 0));
        CHECK(s_each_is(ANNAL_OK, NAMES("keep")) && s_get_is("keep", &keep));
        CHECK(s_marks_are("keep", 0, 100, 0, SEQS(1, 2, 3), 0) && s_mark_is(1, &parked));
        CHECK(s_version_in("k-1") == 1);
        annal_store_abort(s_store);
    }
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_each_is(ANNAL_OK, NAMES("new")) && s_get_is("new", &add));
    CHECK(s_marks_are("new", 0, 100, 0, SEQS(3, 4), 0) && s_marks_are("keep", 0, 100, 0, NONE, 0));
    CHECK(s_version_in("k-1") == 2);
    annal_store_abort(s_store);
}

/* Runs fn on the case's store in a child that then dies by SIGKILL without
   closing it (LMDB: no checkpoint, its batches are in the journal only),
   and opens the store again. Whether fn and the reopening succeeded. */
static bool s_killed_after(bool (*fn)(void))
{
    annal_store_close(&s_store);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!s_reopen() || !fn())
            _exit(3);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fprintf(stderr, "  the child ended with status %d\n", status);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && s_reopen();
}

static char *s_ab[] = {"A", "B"};

/* The groups of t_group_reopen: three groups marked, then a floor, an
   unmark, a delete and a put again, in two batches. */
static bool s_group_writes(void)
{
    annal_group_def_t a = s_def("a", "x-", s_ab, 2, 1, 0), b = s_def("b", "", NULL, 0, 1, 0);
    annal_group_def_t c = s_def("c", "", NULL, 0, 4, 0);
    annal_group_mark_t parked = s_mark(2, ANNAL_MARK_PARKED, 5, "timeout");
    if (annal_store_begin(s_store) || annal_store_group_put(s_store, &a)
        || annal_store_group_put(s_store, &b) || annal_store_group_put(s_store, &c)
        || !s_mark_all("a", ANNAL_MARK_ACKED, SEQS(1, 4))
        || !s_mark_all("a", ANNAL_MARK_READY, SEQS(3))
        || annal_store_group_mark(s_store, "a", &parked)
        || !s_mark_all("b", ANNAL_MARK_PARKED, SEQS(1))
        || !s_mark_all("c", ANNAL_MARK_ACKED, SEQS(5)) || !s_commit())
        return false;
    b.floor = 7;
    return annal_store_begin(s_store) == ANNAL_OK
           && annal_store_group_floor(s_store, "a", 3) == ANNAL_OK
           && annal_store_group_unmark(s_store, "a", 3) == ANNAL_OK
           && annal_store_group_delete(s_store, "c") == ANNAL_OK
           && annal_store_group_put(s_store, &b) == ANNAL_OK && s_commit();
}

/* What a later batch of t_group_reopen does: a mark, a floor that drops
   one, a delete, a new group. */
static bool s_more_group_writes(void)
{
    annal_group_def_t d = s_def("d", "", NULL, 0, 9, 8);
    return annal_store_begin(s_store) == ANNAL_OK && s_mark_all("a", ANNAL_MARK_PARKED, SEQS(5))
           && annal_store_group_floor(s_store, "a", 4) == ANNAL_OK
           && annal_store_group_delete(s_store, "b") == ANNAL_OK
           && annal_store_group_put(s_store, &d) == ANNAL_OK && s_commit();
}

/* Groups and marks, deletes included, outlast close and open, and the
   death of their writer (LMDB: a replay of its journal); a batch open at
   close is dropped. */
static void t_group_reopen(void)
{
    CHECK(s_fresh());
    if (!s_groups())
        return;
    annal_group_def_t a = s_def("a", "x-", s_ab, 2, 1, 3), b = s_def("b", "", NULL, 0, 1, 7);
    annal_group_def_t d = s_def("d", "", NULL, 0, 9, 8);
    annal_group_mark_t parked = s_mark(2, ANNAL_MARK_PARKED, 5, "timeout");
    CHECK(s_group_writes());
    for (int round = 0; round < 2; round++) {
        CHECK(s_reopen());
        CHECK(annal_store_begin(s_store) == ANNAL_OK);
        CHECK(s_each_is(ANNAL_OK, NAMES("a", "b")) && s_get_is("a", &a) && s_get_is("b", &b));
        CHECK(s_marks_are("a", 0, 100, 0, SEQS(2, 4), 0) && s_mark_is(0, &parked));
        CHECK(s_marks_are("b", 0, 100, 0, SEQS(1), 0) && s_marks_are("c", 0, 100, 0, NONE, 0));
        annal_store_abort(s_store);
    }
    CHECK(s_killed_after(s_more_group_writes));
    a.floor = 4;
    for (int round = 0; round < 2; round++) {
        CHECK(annal_store_begin(s_store) == ANNAL_OK);
        CHECK(s_each_is(ANNAL_OK, NAMES("a", "d")) && s_get_is("a", &a) && s_get_is("d", &d));
        CHECK(s_marks_are("a", 0, 100, 0, SEQS(2, 5), 0) && s_mark_is(0, &parked));
        CHECK(s_marks_are("b", 0, 100, 0, NONE, 0) && s_get_is("b", NULL));
        annal_store_abort(s_store);
        CHECK(s_reopen());
    }
    /* open at close: dropped */
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_delete(s_store, "a") == ANNAL_OK);
    CHECK(annal_store_group_put(s_store, &b) == ANNAL_OK);
    CHECK(s_reopen());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_each_is(ANNAL_OK, NAMES("a", "d")) && s_marks_are("a", 0, 100, 0, SEQS(2, 5), 0));
    annal_store_abort(s_store);
}

/* read_all from 1 inside the open batch into s_list; whether it holds want
   and moved next to next. */
static bool s_all_is(const uint64_t *want, uint64_t next)
{
    uint64_t got = 0;
    annal_err_t err = annal_store_read_all(s_store, 1, 100, 100, NULL, 0, NULL, 0, &s_list, &got);
    if (!err && s_are(want) && got == next)
        return true;
    fprintf(stderr, "  read_all: error %d, next %llu\n", err, (unsigned long long) got);
    return false;
}

/* Deletion (docs/protocol.md, section 7): removed events are read by
   nothing from the call on, a prefix of an aggregate's versions; snapshots
   up to the removal go too; a hard removal refuses appends; the sweep
   frees them in steps, across a reopen. */
static void t_remove(void)
{
    CHECK(s_fresh());
    if (!annal_store_removes(s_store)) {
        printf("  (skipped: the %s backend does not remove yet)\n", annal_store_name(s_store));
        return;
    }
    CHECK(s_one(MANY("a", "0", EV("T") "," EV("T") "," EV("T")), NEW(1, 3, 3)));
    CHECK(s_one(ONE("b", "0", "T"), NEW(4, 4, 1)));
    CHECK(s_one(MANY("a", "3", EV("T") "," EV("T")), NEW(5, 6, 5)));
    CHECK(s_snap("a", 2, true, ANNAL_VALUE_EMPTY_OBJECT, 1) == ANNAL_OK);
    CHECK(s_snap("a", 5, true, ANNAL_VALUE_EMPTY_OBJECT, 1) == ANNAL_OK);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_remove(s_store, "a", 3, false) == ANNAL_OK);
    CHECK(s_read_is("a", 1, false, 100, SEQS(5, 6)) && s_read_is("a", 2, false, 1, SEQS(5)));
    CHECK(s_read_is("a", 5, true, 100, SEQS(6, 5)) && s_read_is("a", 3, true, 100, NONE));
    CHECK(s_all_is(SEQS(4, 5, 6), 7));
    CHECK(s_snap_is("a", UINT64_MAX, false, 5, true, ANNAL_VALUE_EMPTY_OBJECT, 1));
    CHECK(s_snap_is("a", 4, false, 0, true, NULL, 0));
    annal_store_stats_t st;
    CHECK(annal_store_stats(s_store, &st) == ANNAL_OK && st.events == 3 && st.head_sequence == 6);
    CHECK(s_commit());
    CHECK(s_one(ONE("a", "5", "T"), NEW(7, 7, 6))); /* soft: appends go on */
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_remove(s_store, "b", 1, true) == ANNAL_OK); /* all of it, for good */
    CHECK(s_commit());
    CHECK(s_one(ONE("b", ANY, "T"), ANNAL_ERR_GONE, 0, 0, 0, false));
    CHECK(s_one(ONE("b", "1", "T"), ANNAL_ERR_GONE, 0, 0, 0, false));
    CHECK(s_version("b") == 1);
    /* LMDB frees in the sweep, in steps; PostgreSQL removed the rows at once */
    bool steps = strcmp(annal_store_name(s_store), "lmdb") == 0;
    size_t freed;
    annal_sweep_t next;
    for (int round = 0; round < 2; round++) {
        CHECK(annal_store_begin(s_store) == ANNAL_OK);
        CHECK(s_all_is(SEQS(5, 6, 7), 8) && s_read_is("b", 1, false, 100, NONE));
        annal_store_stats_t now;
        CHECK(annal_store_stats(s_store, &now) == ANNAL_OK && now.events == 3);
        CHECK(annal_store_sweep(s_store, round ? 100 : 2, &freed, &next) == ANNAL_OK);
        CHECK(steps ? freed == 2 && next == (round ? ANNAL_SWEEP_IDLE : ANNAL_SWEEP_MORE)
                    : freed == 0 && next == ANNAL_SWEEP_IDLE);
        CHECK(s_all_is(SEQS(5, 6, 7), 8));
        CHECK(s_commit());
        CHECK(s_reopen()); /* what is left to sweep is still removed */
    }
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_sweep(s_store, 100, &freed, &next) == ANNAL_OK && freed == 0
          && next == ANNAL_SWEEP_IDLE);
    annal_store_abort(s_store);
    CHECK(s_reopen());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(s_all_is(SEQS(5, 6, 7), 8) && s_read_is("a", 1, false, 100, SEQS(5, 6, 7)));
    CHECK(annal_store_stats(s_store, &st) == ANNAL_OK && st.events == 3 && st.head_sequence == 7);
    CHECK(annal_store_remove(s_store, "zz", 5, false) == ANNAL_OK); /* nothing stored: nothing */
    annal_store_abort(s_store);
}

/* Groups several brokers share (PostgreSQL): versions that move with each
   change and never come back, leases read back as stored, a mark or a
   delete that removes them. */
static void t_group_shared(void)
{
    CHECK(s_fresh());
    if (!annal_store_shares_groups(s_store)) {
        printf("  (skipped: the %s backend's groups are one broker's)\n",
               annal_store_name(s_store));
        return;
    }
    uint64_t v0, v1, v2, v3, floor;
    annal_group_def_t g = s_def("g", "", NULL, 0, 1, 4);
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_sync(s_store, "g", &v0, &floor) == ANNAL_OK && v0 == 0);
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK);
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_sync(s_store, "g", &v1, &floor) == ANNAL_OK && v1 > 0 && floor == 4);
    CHECK(annal_store_group_bump(s_store, "g", &v2) == ANNAL_OK && v2 == v1); /* wrote nothing */
    const annal_lease_t leases[] = {
        {5, "w1", 1700000000000000, 1}, {6, "w\xc3\xbc", 0, 3}, {UINT64_MAX, "w1", 1, 2}};
    CHECK(annal_store_group_lease(s_store, "g", leases, 3) == ANNAL_OK);
    CHECK(annal_store_group_bump(s_store, "g", &v2) == ANNAL_OK && v2 > v1);
    CHECK(s_commit());
    annal_lease_list_t got = {0};
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_sync(s_store, "g", &v3, &floor) == ANNAL_OK && v3 == v2);
    CHECK(annal_store_group_leases(s_store, "g", &got) == ANNAL_OK && got.count == 3);
    for (size_t i = 0; i < 3 && i < got.count; i++)
        CHECK(got.items[i].sequence == leases[i].sequence
              && strcmp(got.items[i].consumer, leases[i].consumer) == 0
              && got.items[i].deadline == leases[i].deadline
              && got.items[i].delivery == leases[i].delivery);
    const annal_lease_t again = {6, "w2", 9, 4}; /* replaces the lease of 6 */
    CHECK(annal_store_group_lease(s_store, "g", &again, 1) == ANNAL_OK);
    annal_group_mark_t acked = s_mark(5, ANNAL_MARK_ACKED, 1, NULL);
    CHECK(annal_store_group_mark(s_store, "g", &acked) == ANNAL_OK); /* ends 5's lease */
    CHECK(annal_store_group_leases(s_store, "g", &got) == ANNAL_OK && got.count == 2);
    CHECK(got.count == 2 && got.items[0].sequence == 6 && strcmp(got.items[0].consumer, "w2") == 0
          && got.items[0].delivery == 4 && got.items[1].sequence == UINT64_MAX);
    annal_store_abort(s_store); /* none of it */
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_leases(s_store, "g", &got) == ANNAL_OK && got.count == 3);
    CHECK(annal_store_group_sync(s_store, "g", &v3, &floor) == ANNAL_OK && v3 == v2);
    CHECK(annal_store_group_delete(s_store, "g") == ANNAL_OK);
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_leases(s_store, "g", &got) == ANNAL_OK && got.count == 0);
    CHECK(annal_store_group_put(s_store, &g) == ANNAL_OK); /* made again: a new version */
    CHECK(s_commit());
    CHECK(annal_store_begin(s_store) == ANNAL_OK);
    CHECK(annal_store_group_sync(s_store, "g", &v3, &floor) == ANNAL_OK && v3 > v2);
    annal_store_abort(s_store);
    annal_lease_list_free(&got);
}

static const t_case_t s_cases[] = {
    {"versions", t_versions},
    {"sequence", t_sequence},
    {"idempotency", t_idempotency},
    {"batch", t_batch},
    {"batch_prepared", t_batch_prepared},
    {"batch_reads", t_batch_reads},
    {"abort", t_abort},
    {"read", t_read},
    {"read_all", t_read_all},
    {"scan_cap", t_scan_cap},
    {"snapshots", t_snapshots},
    {"stats", t_stats},
    {"recorded_at", t_recorded_at},
    {"reopen", t_reopen},
    {"group_put_get", t_group_put_get},
    {"group_replace", t_group_replace},
    {"group_each", t_group_each},
    {"group_delete", t_group_delete},
    {"group_mark", t_group_mark},
    {"group_marks", t_group_marks},
    {"group_floor", t_group_floor},
    {"group_batch", t_group_batch},
    {"group_reopen", t_group_reopen},
    {"group_shared", t_group_shared},
    {"remove", t_remove},
};

/* LMDB; or PostgreSQL when ANNAL_TEST_PG is set (tests/pg_cluster.sh). */
int main(int argc, char **argv)
{
    size_t n = sizeof s_cases / sizeof s_cases[0];
    t_after = s_cleanup;
    const char *pg = getenv("ANNAL_TEST_PG");
    if (!pg || !*pg) {
        printf("lmdb:\n");
        return t_main(argc, argv, s_cases, n);
    }
#ifdef ANNAL_WITH_PG
    s_admin = PQconnectdb(pg);
    if (!annal_store_is_postgresql(pg) || PQstatus(s_admin) != CONNECTION_OK) {
        fprintf(stderr, "ANNAL_TEST_PG (%s) must be the postgresql:// URI of a server: %s", pg,
                PQerrorMessage(s_admin));
        PQfinish(s_admin);
        return 1;
    }
    s_pg = pg;
    printf("postgresql:\n");
    int rc = t_main(argc, argv, s_cases, n);
    PQfinish(s_admin);
    return rc;
#else
    printf("skipped: built without PostgreSQL (ANNAL_WITH_PG=OFF)\n");
    return 77;
#endif
}
