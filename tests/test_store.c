/*  test_store.c: the storage interface and its LMDB backend, through
    annal_store.h, annal_fold.h and annal_admin.h only (and LMDB itself,
    to make stores of other formats and times). */
#include "testutil.h"

#include <lmdb.h>
#include <stdint.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil_request.h"
#include "annal_admin.h"
#include "annal_fold.h"
#include "annal_store.h"

static char why[512];

static annal_store_t *s_open(const char *dir, size_t map)
{
    annal_store_options_t opts = {.initial_map_size = map};
    annal_store_t *store = annal_store_open(dir, &opts, why, sizeof why);
    if (!store)
        fprintf(stderr, "  open %s: %s\n", dir, why);
    return store;
}

/* Appends in its own batch, running it again after a map resize. */
static annal_err_t s_append(annal_store_t *store, const char *json, annal_append_result_t *res)
{
    annal_request_t req = t_request(json);
    annal_err_t err;
    do {
        if ((err = annal_store_begin(store)))
            break;
        err = annal_store_append(store, req.aggregate_id, req.expect, req.expected_version,
                                 req.events, req.event_count, res, why, sizeof why);
        if (err == ANNAL_OK)
            err = annal_store_commit(store);
        else
            annal_store_abort(store);
    } while (err == ANNAL_ERR_RETRY);
    annal_request_reset(&req);
    return err;
}

static uint64_t s_head(annal_store_t *store)
{
    annal_store_stats_t st = {0};
    annal_store_begin(store);
    annal_store_stats(store, &st);
    annal_store_abort(store);
    return st.head_sequence;
}

static void t_append_read(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_append_result_t res;
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{\"n\":1},\"version\":0}",
                   &res)
          == ANNAL_OK);
    CHECK(res.first_sequence == 1 && res.version == 1 && !res.duplicate);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"b\",\"event_type\":\"T\","
                   "\"event_data\":{\"n\":2},\"version\":0}",
                   &res)
          == ANNAL_OK);
    CHECK(res.first_sequence == 2 && res.version == 1);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":1,"
                   "\"events\":[{\"event_type\":\"U\",\"event_data\":1},"
                   "{\"event_type\":\"V\",\"event_data\":[2]}]}",
                   &res)
          == ANNAL_OK);
    CHECK(res.first_sequence == 3 && res.last_sequence == 4 && res.version == 3);
    annal_event_list_t list = {0};
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_read(store, "a", 1, false, 100, &list) == ANNAL_OK);
    CHECK(list.count == 3);
    CHECK(list.items[0].sequence == 1 && list.items[1].sequence == 3
          && list.items[2].sequence == 4);
    CHECK(list.items[2].version == 3 && list.items[2].event_type_len == 1
          && list.items[2].event_type[0] == 'V');
    CHECK(annal_store_read(store, "a", 3, true, 2, &list) == ANNAL_OK);
    CHECK(list.count == 2 && list.items[0].version == 3 && list.items[1].version == 2);
    CHECK(annal_store_read(store, "nobody", 1, false, 100, &list) == ANNAL_OK && list.count == 0);
    uint64_t next;
    CHECK(annal_store_read_all(store, 1, 100, 1000, NULL, 0, NULL, 0, &list, &next) == ANNAL_OK);
    CHECK(list.count == 4 && next == 5);
    for (size_t i = 0; i < 4; i++)
        CHECK(list.items[i].sequence == i + 1);
    CHECK(annal_store_read_all(store, 1, 100, 1000, "b", 1, NULL, 0, &list, &next) == ANNAL_OK);
    CHECK(list.count == 1 && list.items[0].sequence == 2 && next == 5);
    char *types[] = {"U"};
    CHECK(annal_store_read_all(store, 1, 100, 2, NULL, 0, types, 1, &list, &next) == ANNAL_OK);
    CHECK(list.count == 0 && next == 3); /* scan cap 2: advanced past filtered records */
    annal_store_abort(store);
    annal_event_list_free(&list);
    annal_store_close(&store);
    t_rmdir(dir);
}

static void t_concurrency(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_append_result_t res;
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":5}",
                   &res)
          == ANNAL_ERR_CONFLICT);
    CHECK(res.actual_version == 0);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":\"exists\"}",
                   &res)
          == ANNAL_ERR_CONFLICT);
    CHECK(s_head(store) == 0);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":\"any\"}",
                   &res)
          == ANNAL_OK);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":\"exists\"}",
                   &res)
          == ANNAL_OK);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":1}",
                   &res)
          == ANNAL_ERR_CONFLICT);
    CHECK(res.actual_version == 2);
    /* a batch with a stale version writes none of its events */
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":0,"
                   "\"events\":[{\"event_type\":\"U\",\"event_data\":1},"
                   "{\"event_type\":\"V\",\"event_data\":2}]}",
                   &res)
          == ANNAL_ERR_CONFLICT);
    CHECK(s_head(store) == 2);
    annal_store_close(&store);
    t_rmdir(dir);
}

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define ID3 "33333333-3333-4333-8333-333333333333"

static void t_idempotency(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_append_result_t res;
    const char *one =
        "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
        "\"event_data\":{},\"version\":0,\"event_id\":\"" ID1 "\"}";
    CHECK(s_append(store, one, &res) == ANNAL_OK && !res.duplicate && res.first_sequence == 1);
    CHECK(s_append(store, one, &res) == ANNAL_OK && res.duplicate && res.first_sequence == 1);
    CHECK(s_head(store) == 1);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"b\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":0,\"event_id\":\"" ID1 "\"}",
                   &res)
          == ANNAL_ERR_MALFORMED);
    const char *batch =
        "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":1,"
        "\"events\":[{\"event_type\":\"U\",\"event_data\":1,\"event_id\":\"" ID2 "\"},"
        "{\"event_type\":\"V\",\"event_data\":2,\"event_id\":\"" ID3 "\"}]}";
    CHECK(s_append(store, batch, &res) == ANNAL_OK && res.first_sequence == 2);
    CHECK(s_append(store, batch, &res) == ANNAL_OK && res.duplicate);
    CHECK(res.first_sequence == 2 && res.last_sequence == 3 && res.version == 3);
    /* first id stored, second new: neither a retry nor new */
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":3,"
                   "\"events\":[{\"event_type\":\"U\",\"event_data\":1,\"event_id\":\"" ID2 "\"},"
                   "{\"event_type\":\"V\",\"event_data\":2}]}",
                   &res)
          == ANNAL_ERR_MALFORMED);
    /* a new first id with a stored second one */
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":3,"
                   "\"events\":[{\"event_type\":\"U\",\"event_data\":1},"
                   "{\"event_type\":\"V\",\"event_data\":2,\"event_id\":\"" ID3 "\"}]}",
                   &res)
          == ANNAL_ERR_MALFORMED);
    /* a batch retry must be the whole stored batch: not longer, not a tail */
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":1,"
                   "\"events\":[{\"event_type\":\"U\",\"event_data\":1,\"event_id\":\"" ID2 "\"},"
                   "{\"event_type\":\"V\",\"event_data\":2,\"event_id\":\"" ID3 "\"},"
                   "{\"event_type\":\"W\",\"event_data\":3}]}",
                   &res)
          == ANNAL_ERR_MALFORMED);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"version\":1,"
                   "\"events\":[{\"event_type\":\"V\",\"event_data\":2,\"event_id\":\"" ID3 "\"},"
                   "{\"event_type\":\"W\",\"event_data\":3}]}",
                   &res)
          == ANNAL_ERR_MALFORMED);
    /* one event may repeat any stored event: its own sequence comes back */
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"V\","
                   "\"event_data\":2,\"version\":7,\"event_id\":\"" ID3 "\"}",
                   &res)
          == ANNAL_OK);
    CHECK(res.duplicate && res.first_sequence == 3);
    CHECK(s_head(store) == 3);
    annal_store_close(&store);
    t_rmdir(dir);
}

static void t_reopen(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_append_result_t res;
    for (int i = 0; i < 10; i++)
        CHECK(s_append(
                  store,
                  "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                  "\"event_data\":{},\"version\":\"any\"}",
                  &res)
              == ANNAL_OK);
    annal_store_close(&store);
    store = s_open(dir, 0);
    CHECK(store);
    CHECK(s_head(store) == 10);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":10}",
                   &res)
          == ANNAL_OK);
    CHECK(res.first_sequence == 11 && res.version == 11);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* A child appends and is killed with SIGKILL; every batch it saw committed
   is there after reopening, whole. */
static void t_kill9(void)
{
    char *dir = t_tempdir();
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        annal_store_t *store = s_open(dir, 0);
        annal_append_result_t res;
        for (;;) {
            if (s_append(
                    store,
                    "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"k\",\"version\":\"any\","
                    "\"events\":[{\"event_type\":\"A\",\"event_data\":1},"
                    "{\"event_type\":\"B\",\"event_data\":2}]}",
                    &res))
                _exit(3);
            if (write(fds[1], &res.last_sequence, 8) != 8)
                _exit(4);
        }
    }
    close(fds[1]);
    uint64_t acked = 0, seq;
    while (acked < 200 && read(fds[0], &seq, 8) == 8)
        acked = seq;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    while (read(fds[0], &seq, 8) == 8)
        acked = seq;
    close(fds[0]);
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    uint64_t head = s_head(store);
    CHECK(head >= acked && head % 2 == 0);
    annal_event_list_t list = {0};
    uint64_t next;
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_read_all(store, 1, head, head, NULL, 0, NULL, 0, &list, &next) == ANNAL_OK);
    CHECK(list.count == head);
    for (size_t i = 0; i < list.count; i++)
        CHECK(list.items[i].sequence == i + 1 && list.items[i].version == i + 1);
    annal_store_abort(store);
    annal_event_list_free(&list);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* Runs fn(dir) in a child that then dies by SIGKILL without closing the
   store: no checkpoint, the batches are in the journal only. */
static void s_in_child(const char *dir, void (*fn)(const char *dir))
{
    pid_t pid = fork();
    if (pid == 0) {
        fn(dir);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void s_three_batches(const char *dir)
{
    annal_store_t *store = s_open(dir, 0);
    annal_append_result_t res;
    for (int i = 0; i < 3; i++)
        if (!store
            || s_append(store,
                        "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"j\","
                        "\"version\":\"any\",\"events\":[{\"event_type\":\"A\","
                        "\"event_data\":1},{\"event_type\":\"B\",\"event_data\":2}]}",
                        &res))
            _exit(3);
}

/* Offsets of the records in dir's journal, from their headers. */
static size_t s_records(const char *dir, long *at, size_t max)
{
    char path[512];
    snprintf(path, sizeof path, "%s/annal.journal", dir);
    FILE *f = fopen(path, "rb");
    size_t n = 0;
    if (!f)
        return 0;
    long pos = 0;
    uint8_t h[24];
    while (n < max && fseek(f, pos, SEEK_SET) == 0 && fread(h, 1, 24, f) == 24
           && memcmp(h, "ANJ1", 4) == 0) {
        uint32_t len;
        memcpy(&len, h + 20, 4);
        at[n++] = pos;
        pos += 24 + (long) len;
    }
    fclose(f);
    return n;
}

/* Batches that only reached the journal come back at open; a torn last
   record is dropped whole; records replayed once are not replayed again. */
static void t_journal(void)
{
    char *dir = t_tempdir();
    s_in_child(dir, s_three_batches);
    long at[8];
    CHECK(s_records(dir, at, 8) == 3);
    /* damage the last record's payload: that batch was never acknowledged */
    char path[512];
    snprintf(path, sizeof path, "%s/annal.journal", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f && fseek(f, at[2] + 40, SEEK_SET) == 0 && fputc('!', f) != EOF);
    fclose(f);
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    CHECK(s_head(store) == 4);
    annal_store_close(&store);
    store = s_open(dir, 0);
    CHECK(store && s_head(store) == 4);
    annal_append_result_t res;
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"j\",\"event_type\":\"C\","
                   "\"event_data\":3,\"version\":4}",
                   &res)
          == ANNAL_OK);
    CHECK(res.first_sequence == 5 && res.version == 5);
    annal_store_close(&store);
    /* whole records after a clean close are an old generation: ignored */
    store = s_open(dir, 0);
    CHECK(store && s_head(store) == 5);
    annal_event_list_t list = {0};
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_read(store, "j", 1, false, 100, &list) == ANNAL_OK);
    CHECK(list.count == 5 && list.items[4].event_type_len == 1
          && list.items[4].event_type[0] == 'C');
    annal_store_abort(store);
    annal_event_list_free(&list);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* A journal left without its data.mdb (deleted by hand) belongs to a store
   that is gone: a fresh store must not take its batches in. */
static void t_journal_orphan(void)
{
    char *dir = t_tempdir();
    s_in_child(dir, s_three_batches);
    long at[8];
    CHECK(s_records(dir, at, 8) == 3);
    char path[512];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    annal_store_t *store = s_open(dir, 0);
    CHECK(store && s_head(store) == 0);
    annal_store_close(&store);
    t_rmdir(dir);
}

static void s_big_batches(const char *dir)
{
    annal_store_t *store = s_open(dir, 0);
    static char json[300 * 1024];
    int n = snprintf(json, sizeof json,
                     "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"big\","
                     "\"event_type\":\"T\",\"version\":\"any\",\"event_data\":\"");
    memset(json + n, 'x', 256 * 1024);
    strcpy(json + n + 256 * 1024, "\"}");
    annal_append_result_t res;
    for (int i = 0; i < 40; i++) /* 10 MiB: past a checkpoint, and on into the next journal */
        if (!store || s_append(store, json, &res) || res.version != (uint64_t) i + 1)
            _exit(3);
}

/* A checkpoint in the middle of a run, then a crash: both halves are kept. */
static void t_journal_checkpoint(void)
{
    char *dir = t_tempdir();
    s_in_child(dir, s_big_batches);
    long at[64];
    size_t records = s_records(dir, at, 64);
    CHECK(records > 0 && records < 40); /* the journal was restarted by a checkpoint */
    annal_store_t *store = s_open(dir, 0);
    CHECK(store && s_head(store) == 40);
    annal_event_list_t list = {0};
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_read(store, "big", 1, false, 100, &list) == ANNAL_OK);
    CHECK(list.count == 40);
    for (size_t i = 0; i < list.count; i++)
        CHECK(list.items[i].version == i + 1 && list.items[i].data_len > 256 * 1024);
    annal_store_abort(store);
    annal_event_list_free(&list);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* A crash while a new store was being created leaves a data.mdb with
   nothing in it: it opens as a new store, not as "not an annal store". */
static void t_interrupted_create(void)
{
    char *dir = t_tempdir();
    pid_t pid = fork();
    if (pid == 0) {
        MDB_env *env;
        if (mdb_env_create(&env) || mdb_env_open(env, dir, 0, 0644))
            _exit(3);
        kill(getpid(), SIGKILL); /* before annal's first commit */
        _exit(4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    annal_store_t *store = s_open(dir, 0);
    CHECK(store && s_head(store) == 0);
    annal_append_result_t res;
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"c\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":0}",
                   &res)
          == ANNAL_OK);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* Closing with a batch open drops the batch (it is not checkpointed). */
static void t_close_drops_open_batch(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_append_result_t res;
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"o\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":0}",
                   &res)
          == ANNAL_OK);
    annal_request_t req = t_request("{\"type\":\"append\",\"msg_id\":2,\"aggregate_id\":\"o\","
                                    "\"event_type\":\"T\",\"event_data\":{},\"version\":1}");
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_append(store, req.aggregate_id, req.expect, req.expected_version, req.events,
                             req.event_count, &res, why, sizeof why)
          == ANNAL_OK);
    annal_request_reset(&req);
    annal_store_close(&store); /* no commit */
    store = s_open(dir, 0);
    CHECK(store && s_head(store) == 1);
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":3,\"aggregate_id\":\"o\",\"event_type\":\"T\","
                   "\"event_data\":{},\"version\":1}",
                   &res)
          == ANNAL_OK);
    CHECK(res.version == 2 && res.first_sequence == 2);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* The map starts at 256 KiB and must grow many times. */
static void t_map_growth(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 256 * 1024);
    CHECK(store);
    char json[2048];
    char pad[1001];
    memset(pad, 'x', 1000);
    pad[1000] = 0;
    annal_append_result_t res;
    for (int i = 0; i < 3000; i++) {
        snprintf(json, sizeof json,
                 "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"g-%d\",\"event_type\":\"T\","
                 "\"event_data\":{\"pad\":\"%s\"},\"version\":0}",
                 i, pad);
        CHECK(s_append(store, json, &res) == ANNAL_OK);
        CHECK(res.first_sequence == (uint64_t) i + 1);
    }
    annal_store_close(&store);
    store = s_open(dir, 256 * 1024);
    CHECK(store);
    CHECK(s_head(store) == 3000);
    annal_store_close(&store);
    t_rmdir(dir);
}

static void t_locked(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    pid_t pid = fork();
    if (pid == 0) {
        annal_store_t *other = annal_store_open(dir, NULL, why, sizeof why);
        _exit(other == NULL && strstr(why, "in use") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    annal_store_close(&store);
    t_rmdir(dir);
}

static void t_bad_folders(void)
{
    char *dir = t_tempdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    for (int i = 0; i < 20000; i++)
        fputc("garbage"[i % 7], f);
    fclose(f);
    annal_store_t *store = annal_store_open(dir, NULL, why, sizeof why);
    CHECK(store == NULL);
    CHECK(strstr(why, "not an annal store"));
    t_rmdir(dir);

    /* an LMDB environment of another format */
    dir = t_tempdir();
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    CHECK(mdb_env_open(env, dir, 0, 0644) == 0);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi);
    MDB_val k = {6, "format"}, v = {12, "annal-lmdb-9"};
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    store = annal_store_open(dir, NULL, why, sizeof why);
    CHECK(store == NULL);
    CHECK(strstr(why, "annal-lmdb-9"));
    t_rmdir(dir);

    /* a file where the folder should be */
    dir = t_tempdir();
    snprintf(path, sizeof path, "%s/file", dir);
    f = fopen(path, "w");
    fclose(f);
    store = annal_store_open(path, NULL, why, sizeof why);
    CHECK(store == NULL);
    t_rmdir(dir);
}

/* Folds the aggregate and compares with the expected JSON text. */
static int s_fold_is(annal_store_t *store, const char *agg, uint64_t to, int64_t until,
                     const char *want_json, uint64_t want_version)
{
    annal_fold_result_t fold;
    annal_store_begin(store);
    annal_err_t err = annal_fold_run(store, agg, NULL, 0, 0, to, until, &fold);
    annal_store_abort(store);
    if (err)
        return 0;
    annal_request_t want = t_request(want_json); /* {"type":"create_snapshot",...,"state":X} */
    int same = want.state.size == fold.state.size
               && memcmp(want.state.data, fold.state.data, fold.state.size) == 0
               && fold.version == want_version;
    if (!same)
        fprintf(stderr, "  fold of %s: version %llu, %zu bytes\n", agg,
                (unsigned long long) fold.version, fold.state.size);
    annal_request_reset(&want);
    annal_blob_free(&fold.state);
    return same;
}

#define STATE(x) \
    "{\"type\":\"create_snapshot\",\"msg_id\":1,\"aggregate_id\":\"x\",\"state\":" x "}"

static void t_fold(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_append_result_t res;
    CHECK(s_append(
              store,
              "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"f\",\"version\":0,\"events\":["
              "{\"event_type\":\"A\",\"event_data\":{\"name\":\"J\",\"addr\":{\"city\":\"X\","
              "\"zip\":1}}},"
              "{\"event_type\":\"B\",\"event_data\":{\"addr\":{\"zip\":null,\"street\":\"S\"},"
              "\"age\":3}},"
              "{\"event_type\":\"C\",\"event_data\":{\"name\":null}}]}",
              &res)
          == ANNAL_OK);
    CHECK(s_fold_is(store, "f", UINT64_MAX, INT64_MAX,
                    STATE("{\"addr\":{\"city\":\"X\",\"street\":\"S\"},\"age\":3}"), 3));
    CHECK(s_fold_is(store, "f", 1, INT64_MAX,
                    STATE("{\"name\":\"J\",\"addr\":{\"city\":\"X\",\"zip\":1}}"), 1));
    CHECK(s_fold_is(store, "f", UINT64_MAX, 0, STATE("{}"), 0)); /* before any event */
    CHECK(s_fold_is(store, "none", UINT64_MAX, INT64_MAX, STATE("{}"), 0));
    /* non-object data replaces the state; an object after it starts from {} */
    CHECK(s_append(
              store,
              "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"n\",\"version\":0,\"events\":["
              "{\"event_type\":\"A\",\"event_data\":{\"a\":1}},"
              "{\"event_type\":\"B\",\"event_data\":[1,2]}]}",
              &res)
          == ANNAL_OK);
    CHECK(s_fold_is(store, "n", UINT64_MAX, INT64_MAX, STATE("[1,2]"), 2));
    CHECK(s_append(store,
                   "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"n\",\"version\":2,"
                   "\"event_type\":\"C\",\"event_data\":{\"b\":null,\"c\":{\"d\":null}}}",
                   &res)
          == ANNAL_OK);
    CHECK(s_fold_is(store, "n", UINT64_MAX, INT64_MAX, STATE("{\"c\":{}}"), 3));
    annal_store_close(&store);
    t_rmdir(dir);
}

static void t_snapshots(void)
{
    char *dir = t_tempdir();
    annal_store_t *store = s_open(dir, 0);
    CHECK(store);
    annal_snapshot_t snap;
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_get_snapshot(store, "s", UINT64_MAX, false, &snap) == ANNAL_ERR_NOT_FOUND);
    const uint8_t a[] = {0x81, 0xa1, 'a', 0x01}, b[] = {0x80};
    CHECK(annal_store_put_snapshot(store, "s", 5, true, a, sizeof a) == ANNAL_OK);
    CHECK(annal_store_put_snapshot(store, "s", 9, false, b, sizeof b) == ANNAL_OK);
    CHECK(annal_store_put_snapshot(store, "s2", 1, true, b, sizeof b) == ANNAL_OK);
    CHECK(annal_store_commit(store) == ANNAL_OK);
    CHECK(annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_get_snapshot(store, "s", UINT64_MAX, false, &snap) == ANNAL_OK);
    CHECK(snap.version == 9 && !snap.folded && snap.len == 1);
    CHECK(annal_store_get_snapshot(store, "s", UINT64_MAX, true, &snap) == ANNAL_OK);
    CHECK(snap.version == 5 && snap.folded && snap.len == 4 && memcmp(snap.state, a, 4) == 0);
    CHECK(annal_store_get_snapshot(store, "s", 8, false, &snap) == ANNAL_OK && snap.version == 5);
    CHECK(annal_store_get_snapshot(store, "s", 4, false, &snap) == ANNAL_ERR_NOT_FOUND);
    CHECK(annal_store_get_snapshot(store, "", UINT64_MAX, false, &snap) == ANNAL_ERR_NOT_FOUND);
    annal_store_stats_t st;
    CHECK(annal_store_stats(store, &st) == ANNAL_OK && st.snapshots == 3);
    annal_store_abort(store);
    annal_store_close(&store);
    t_rmdir(dir);
}

/* --- consumer groups: the journal's deletes, older stores, backup, migrate ---------- */

/* A group with the fields the cases do not vary. */
static annal_group_def_t s_group(const char *name, uint64_t floor)
{
    return (annal_group_def_t){.name = name,
                               .prefix = "",
                               .start = 1,
                               .ack_timeout_ms = 30000,
                               .max_deliveries = 5,
                               .floor = floor};
}

/* Marks name's sequences (ended by 0) as kind, in the open batch. */
static annal_err_t s_mark(annal_store_t *store, const char *name, annal_mark_t kind,
                          const uint64_t *seqs)
{
    annal_err_t err = ANNAL_OK;
    for (; *seqs && !err; seqs++) {
        annal_group_mark_t m = {*seqs, kind, 2, kind == ANNAL_MARK_PARKED ? "no" : NULL,
                                kind == ANNAL_MARK_PARKED ? 2 : 0};
        err = annal_store_group_mark(store, name, &m);
    }
    return err;
}

#define SEQS(...) ((const uint64_t[]){__VA_ARGS__, 0})

/* Whether name's marks (in their own batch) are at want (ended by 0). */
static bool s_marks_are(annal_store_t *store, const char *name, const uint64_t *want)
{
    annal_mark_list_t list = {0};
    uint64_t next;
    annal_err_t err = annal_store_begin(store);
    if (!err)
        err = annal_store_group_marks(store, name, 0, 1000, 0, &list, &next);
    annal_store_abort(store);
    size_t n = 0;
    while (!err && want[n] && n < list.count && list.items[n].sequence == want[n])
        n++;
    bool same = !err && !want[n] && n == list.count;
    if (!same) {
        fprintf(stderr, "  marks of %s: error %d:", name, err);
        for (size_t i = 0; i < list.count; i++)
            fprintf(stderr, " %llu", (unsigned long long) list.items[i].sequence);
        fprintf(stderr, "\n");
    }
    annal_mark_list_free(&list);
    return same;
}

/* The floor of group name (in its own batch), UINT64_MAX when it has none. */
static uint64_t s_floor(annal_store_t *store, const char *name)
{
    annal_group_def_t def;
    uint64_t floor = UINT64_MAX;
    if (annal_store_begin(store) == ANNAL_OK
        && annal_store_group_get(store, name, &def) == ANNAL_OK)
        floor = def.floor;
    annal_store_abort(store);
    return floor;
}

/* Groups g and h with marks, then a floor, an unmark and a delete: six
   deletes in the journal (three acked marks, one unmarked, h and its mark);
   then an append. */
static void s_group_deletes(const char *dir)
{
    annal_store_t *store = s_open(dir, 0);
    annal_group_def_t g = s_group("g", 0), h = s_group("h", 0);
    annal_append_result_t res;
    if (!store || annal_store_begin(store) || annal_store_group_put(store, &g)
        || annal_store_group_put(store, &h)
        || s_mark(store, "g", ANNAL_MARK_ACKED, SEQS(1, 2, 3, 6))
        || s_mark(store, "g", ANNAL_MARK_PARKED, SEQS(4))
        || s_mark(store, "g", ANNAL_MARK_READY, SEQS(5))
        || s_mark(store, "h", ANNAL_MARK_PARKED, SEQS(1)) || annal_store_commit(store))
        _exit(3);
    if (annal_store_begin(store) || annal_store_group_floor(store, "g", 3)
        || annal_store_group_unmark(store, "g", 5) || annal_store_group_delete(store, "h")
        || annal_store_commit(store))
        _exit(3);
    if (s_append(store,
                 "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"j\",\"event_type\":\"A\","
                 "\"event_data\":1,\"version\":0}",
                 &res))
        _exit(3);
}

/* The journal ops of kind (0 put, 1 delete) in dir's journal's records;
   -1 when one is of another kind. */
static int s_journal_ops(const char *dir, int kind)
{
    long at[8];
    size_t records = s_records(dir, at, 8);
    char path[512];
    snprintf(path, sizeof path, "%s/annal.journal", dir);
    FILE *f = fopen(path, "rb");
    int found = 0;
    for (size_t r = 0; f && r < records && found >= 0; r++) {
        uint8_t h[24], op[8];
        uint32_t len;
        if (fseek(f, at[r], SEEK_SET) || fread(h, 1, 24, f) != 24)
            break;
        memcpy(&len, h + 20, 4);
        for (uint32_t used = 0; used + 8 <= len && fread(op, 1, 8, f) == 8;) {
            uint16_t klen;
            uint32_t vlen;
            memcpy(&klen, op + 2, 2);
            memcpy(&vlen, op + 4, 4);
            found = op[1] > 1 ? -1 : found + (op[1] == kind);
            used += 8 + klen + vlen;
            fseek(f, klen + vlen, SEEK_CUR);
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* A journal that holds deletes (a floor, an unmark, a group deleted with its
   mark) replays them after a SIGKILL, in order with the puts before them. */
static void t_group_journal(void)
{
    char *dir = t_tempdir();
    s_in_child(dir, s_group_deletes);
    long at[8];
    CHECK(s_records(dir, at, 8) == 3); /* no checkpoint: every batch is in the journal */
    CHECK(s_journal_ops(dir, 1) == 6);
    for (int round = 0; round < 2; round++) { /* replayed, then checkpointed */
        annal_store_t *store = s_open(dir, 0);
        CHECK(store && s_head(store) == 1);
        CHECK(s_floor(store, "g") == 3 && s_floor(store, "h") == UINT64_MAX);
        CHECK(s_marks_are(store, "g", SEQS(4, 6)) && s_marks_are(store, "h", SEQS(0)));
        annal_store_close(&store);
    }
    t_rmdir(dir);
}

/* Drops groups and group_marks from dir's data.mdb, as a store made before
   them is. 0, or an LMDB error. */
static int s_drop_group_dbs(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc)
        return rc;
    mdb_env_set_maxdbs(env, 16);
    if (!(rc = mdb_env_open(env, dir, 0, 0644)) && !(rc = mdb_txn_begin(env, NULL, 0, &txn))) {
        if (!(rc = mdb_dbi_open(txn, "groups", 0, &dbi)) && !(rc = mdb_drop(txn, dbi, 1))
            && !(rc = mdb_dbi_open(txn, "group_marks", 0, &dbi)) && !(rc = mdb_drop(txn, dbi, 1)))
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (!rc && !(rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) { /* gone */
        rc = mdb_dbi_open(txn, "groups", 0, &dbi) == MDB_NOTFOUND ? 0 : MDB_INVALID;
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return rc;
}

/* A store made before groups (no groups, no group_marks), with a journal of
   that time (puts only), opens, replays it, and gains groups that last. */
static void t_group_old_store(void)
{
    char *dir = t_tempdir();
    s_in_child(dir, s_three_batches);
    CHECK(s_drop_group_dbs(dir) == 0);
    CHECK(s_journal_ops(dir, 1) == 0 && s_journal_ops(dir, 0) > 0);
    annal_store_t *store = s_open(dir, 0);
    CHECK(store && s_head(store) == 6 && annal_store_has_groups(store));
    annal_group_def_t g = s_group("g", 4);
    CHECK(annal_store_begin(store) == ANNAL_OK && annal_store_group_put(store, &g) == ANNAL_OK);
    CHECK(s_mark(store, "g", ANNAL_MARK_PARKED, SEQS(5)) == ANNAL_OK);
    CHECK(annal_store_commit(store) == ANNAL_OK);
    annal_store_close(&store);
    store = s_open(dir, 0);
    CHECK(store && s_head(store) == 6 && s_floor(store, "g") == 4);
    CHECK(s_marks_are(store, "g", SEQS(5)));
    annal_store_close(&store);
    t_rmdir(dir);
}

/* After a checkpointed group, one in the journal only, with a delete. */
static void s_journaled_group(const char *dir)
{
    annal_store_t *store = s_open(dir, 0);
    annal_group_def_t j = s_group("journaled", 7);
    if (!store || annal_store_begin(store) || annal_store_group_put(store, &j)
        || s_mark(store, "journaled", ANNAL_MARK_PARKED, SEQS(8))
        || annal_store_group_unmark(store, "kept", 2) || annal_store_commit(store))
        _exit(3);
}

/* A backup copies the groups: those in data.mdb and those in the journal
   only (the store's annald was killed). */
static void t_group_backup(void)
{
    char *dir = t_tempdir(), *dest = t_tempdir();
    char copy[4200];
    snprintf(copy, sizeof copy, "%s/copy", dest);
    annal_store_t *store = s_open(dir, 0);
    annal_group_def_t kept = s_group("kept", 1);
    CHECK(store && annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_group_put(store, &kept) == ANNAL_OK);
    CHECK(s_mark(store, "kept", ANNAL_MARK_ACKED, SEQS(2, 3)) == ANNAL_OK);
    CHECK(annal_store_commit(store) == ANNAL_OK);
    annal_store_close(&store); /* a checkpoint */
    s_in_child(dir, s_journaled_group);
    CHECK(annal_store_backup(dir, copy, why, sizeof why) == 0);
    store = s_open(copy, 0);
    CHECK(store && s_floor(store, "kept") == 1 && s_floor(store, "journaled") == 7);
    CHECK(s_marks_are(store, "kept", SEQS(3)) && s_marks_are(store, "journaled", SEQS(8)));
    annal_store_close(&store);
    t_rmdir(dir);
    t_rmdir(dest);
}

/* migrate refuses a source that holds a group (PostgreSQL keeps none yet),
   before it reaches the target. */
static void t_group_migrate(void)
{
    char *dir = t_tempdir();
    const char *target = "postgresql:///annal?host=/nonexistent-annal-test";
    annal_store_t *store = s_open(dir, 0);
    annal_group_def_t g = s_group("orders", 0);
    CHECK(store && annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_group_put(store, &g) == ANNAL_OK && annal_store_commit(store) == ANNAL_OK);
    annal_store_close(&store);
    CHECK(annal_store_migrate(dir, target, NULL, NULL, why, sizeof why) == -1);
    CHECK(strstr(why, "groups cannot be migrated yet") && strstr(why, "\"orders\""));
    store = s_open(dir, 0);
    CHECK(store && annal_store_begin(store) == ANNAL_OK);
    CHECK(annal_store_group_delete(store, "orders") == ANNAL_OK);
    CHECK(annal_store_commit(store) == ANNAL_OK);
    annal_store_close(&store);
    /* without groups it goes on to the target (unreachable here) */
    CHECK(annal_store_migrate(dir, target, NULL, NULL, why, sizeof why) == -1);
    CHECK(!strstr(why, "groups"));
    t_rmdir(dir);
}

static const t_case_t s_cases[] = {
    {"append_read", t_append_read},
    {"concurrency", t_concurrency},
    {"idempotency", t_idempotency},
    {"reopen", t_reopen},
    {"kill9", t_kill9},
    {"journal", t_journal},
    {"journal_checkpoint", t_journal_checkpoint},
    {"journal_orphan", t_journal_orphan},
    {"interrupted_create", t_interrupted_create},
    {"close_drops_open_batch", t_close_drops_open_batch},
    {"map_growth", t_map_growth},
    {"locked", t_locked},
    {"bad_folders", t_bad_folders},
    {"fold", t_fold},
    {"snapshots", t_snapshots},
    {"group_journal", t_group_journal},
    {"group_old_store", t_group_old_store},
    {"group_backup", t_group_backup},
    {"group_migrate", t_group_migrate},
};

int main(int argc, char **argv)
{
    return t_main(argc, argv, s_cases, sizeof s_cases / sizeof s_cases[0]);
}
