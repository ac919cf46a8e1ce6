/*  test_subscription.c: libannal's catch-up subscription against a real
    annald process: exactly once and in order across the history/live seam,
    a SIGKILL and restart of annald, forced drops (a one-message high-water
    mark and a slow handler), a restart from a checkpoint, prefix isolation
    and "from now". */
#include "testutil_annald.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* What a handler saw. */
typedef struct {
    uint64_t *seqs; /* sequence numbers, in delivery order */
    char **aggs;    /* their aggregate ids */
    size_t count;   /* delivered */
    size_t stop_at; /* return 1 at this count (0: never) */
    int slow_us;    /* sleep per event */
} seen_t;

static int s_handler(const annal_record_t *r, void *arg)
{
    seen_t *s = arg;
    s->seqs[s->count] = r->sequence_number;
    s->aggs[s->count] = strdup(r->aggregate_id);
    s->count++;
    if (s->slow_us)
        usleep(s->slow_us);
    return s->stop_at && s->count == s->stop_at ? 1 : 0;
}

static seen_t *s_seen(size_t cap)
{
    seen_t *s = calloc(1, sizeof *s);
    s->seqs = calloc(cap, sizeof *s->seqs);
    s->aggs = calloc(cap, sizeof *s->aggs);
    return s;
}

static void s_seen_free(seen_t *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->aggs[i]);
    free(s->seqs);
    free(s->aggs);
    free(s);
}

/* Runs sub until want events were seen or 30 s passed. */
static void s_run(annal_subscription_t *sub, seen_t *s, size_t want)
{
    time_t end = time(NULL) + 30;
    while (s->count < want && time(NULL) < end) {
        annal_result_t res;
        if (annal_subscription_run(sub, 200, &res) != ANNAL_SUCCESS)
            fprintf(stderr, "  run: %s\n", res.text);
    }
}

/* True when s saw exactly sequences first .. first+n-1, in order. */
static bool s_exact(const seen_t *s, uint64_t first, size_t n)
{
    if (s->count != n) {
        fprintf(stderr, "  saw %zu events, want %zu\n", s->count, n);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (s->seqs[i] != first + i) {
            fprintf(stderr, "  event %zu has sequence %llu, want %llu\n", i,
                    (unsigned long long) s->seqs[i], (unsigned long long) (first + i));
            return false;
        }
    return true;
}

static annal_subscription_t *s_sub(t_daemon_t *d, const char *prefix, uint64_t from, int hwm,
                                   seen_t *s)
{
    annal_subscription_config_t config = {.commands = d->commands,
                                          .events = d->events,
                                          .prefix = prefix,
                                          .from = from,
                                          .timeout_ms = 1000,
                                          .rcvhwm = hwm};
    return annal_subscription_new(&config, s_handler, s);
}

static void t_history(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "h", 500, 0, 0) == 500);
    seen_t *s = s_seen(1000);
    annal_subscription_t *sub = s_sub(d, "", 1, 0, s);
    CHECK(sub);
    s_run(sub, s, 500);
    CHECK(s_exact(s, 1, 500));
    annal_subscription_stats_t st;
    annal_subscription_stats(sub, &st);
    CHECK(st.read == 500 && annal_subscription_position(sub) == 501);
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_daemon_stop(d);
}

typedef struct {
    t_daemon_t *d; /* the daemon to write to */
    const char *prefix;
    int n, pause_us; /* events, pause every 50 */
    int acked;       /* result */
    bool chaos;      /* kill -9 and restart annald half way */
} writer_t;

static void *s_writer(void *arg)
{
    writer_t *w = arg;
    if (!w->chaos) {
        w->acked = t_append(w->d->commands, w->prefix, w->n, 0, w->pause_us);
        return NULL;
    }
    w->acked = t_append(w->d->commands, w->prefix, w->n / 2, 0, w->pause_us);
    t_daemon_kill(w->d, SIGKILL);
    usleep(300000);
    if (t_daemon_start(w->d) == 0)
        w->acked += t_append(w->d->commands, w->prefix, w->n - w->n / 2, w->n / 2, w->pause_us);
    return NULL;
}

/* Appends run across the seam between history and live. */
static void t_seam(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "s", 300, 0, 0) == 300);
    writer_t w = {d, "s", 3000, 2000, 0, false};
    pthread_t t;
    pthread_create(&t, NULL, s_writer, &w);
    seen_t *s = s_seen(4000);
    annal_subscription_t *sub = s_sub(d, "", 1, 0, s);
    CHECK(sub);
    s_run(sub, s, 3300);
    pthread_join(t, NULL);
    CHECK(w.acked == 3000);
    s_run(sub, s, 3300);
    CHECK(s_exact(s, 1, 3300));
    /* a subscriber slower than the writers (ASan, a loaded machine) may
       read all of them; once caught up, appends one at a time come live */
    for (int k = 0; k < 10; k++) {
        CHECK(t_append(d->commands, "s", 1, 3000 + k, 0) == 1);
        s_run(sub, s, 3301 + (size_t) k);
    }
    CHECK(s_exact(s, 1, 3310));
    annal_subscription_stats_t st;
    annal_subscription_stats(sub, &st);
    CHECK(st.live > 0 && st.read >= 300);
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_daemon_stop(d);
}

static void t_kill9_restart(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    writer_t w = {d, "k", 2000, 3000, 0, true};
    seen_t *s = s_seen(3000);
    annal_subscription_t *sub = s_sub(d, "", 1, 0, s);
    CHECK(sub);
    pthread_t t;
    pthread_create(&t, NULL, s_writer, &w);
    s_run(sub, s, 2000);
    pthread_join(t, NULL);
    CHECK(w.acked == 2000);
    s_run(sub, s, 2000);
    CHECK(s_exact(s, 1, 2000));
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_daemon_stop(d);
}

/* A one-message high-water mark and a slow handler: ZeroMQ drops, the
   subscription notices and reads what it lost. */
static void t_forced_drops(void)
{
    t_daemon_t *d = t_daemon("--pub-hwm=10");
    CHECK(d);
    seen_t *s = s_seen(3000);
    s->slow_us = 300;
    annal_subscription_t *sub = s_sub(d, "", ANNAL_FROM_NOW, 1, s);
    CHECK(sub);
    annal_subscription_run(sub, 300, NULL); /* live from here */
    writer_t w = {d, "f", 2000, 0, 0, false};
    pthread_t t;
    pthread_create(&t, NULL, s_writer, &w);
    s_run(sub, s, 2000);
    pthread_join(t, NULL);
    s_run(sub, s, 2000);
    CHECK(w.acked == 2000);
    CHECK(s_exact(s, 1, 2000));
    annal_subscription_stats_t st;
    annal_subscription_stats(sub, &st);
    if (st.reads < 2 || st.read == 0)
        fprintf(stderr, "  live %llu read %llu reads %llu\n", (unsigned long long) st.live,
                (unsigned long long) st.read, (unsigned long long) st.reads);
    CHECK(st.read > 0); /* some events had to be fetched again */
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_daemon_stop(d);
}

static void t_checkpoint(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "c", 300, 0, 0) == 300);
    char path[4200];
    snprintf(path, sizeof path, "%s/projection.checkpoint", d->data);
    uint64_t pos;
    CHECK(annal_checkpoint_load(path, &pos) == 1 && pos == 1);
    seen_t *s = s_seen(1000);
    s->stop_at = 120;
    annal_subscription_t *sub = s_sub(d, "", pos, 0, s);
    s_run(sub, s, 120);
    CHECK(annal_subscription_position(sub) == 121);
    CHECK(annal_checkpoint_save(path, annal_subscription_position(sub)) == 0);
    annal_subscription_destroy(&sub);
    /* a new process would start here */
    CHECK(annal_checkpoint_load(path, &pos) == 0 && pos == 121);
    s->stop_at = 0;
    sub = s_sub(d, "", pos, 0, s);
    s_run(sub, s, 300);
    CHECK(s_exact(s, 1, 300));
    annal_subscription_destroy(&sub);
    FILE *f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    CHECK(annal_checkpoint_load(path, &pos) == -1);
    f = fopen(path, "w");
    fputs("-1\n", f);
    fclose(f);
    CHECK(annal_checkpoint_load(path, &pos) == -1);
    s_seen_free(s);
    t_daemon_stop(d);
}

static void t_prefix(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "a", 100, 0, 0) == 100);
    CHECK(t_append(d->commands, "b", 100, 0, 0) == 100);
    seen_t *s = s_seen(1000);
    annal_subscription_t *sub = s_sub(d, "a-", 1, 0, s);
    s_run(sub, s, 100);
    writer_t wa = {d, "a", 150, 1000, 0, false}, wb = {d, "b", 150, 1000, 0, false};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, s_writer, &wa);
    pthread_create(&tb, NULL, s_writer, &wb);
    s_run(sub, s, 250);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    s_run(sub, s, 250);
    annal_subscription_run(sub, 1500, NULL); /* nothing more may arrive */
    CHECK(s->count == 250);
    /* the same events, in the same order, as the store's own filtered read */
    annal_client_t *c = annal_client_new(d->commands, 5000);
    annal_page_t *page = NULL;
    annal_result_t res;
    CHECK(annal_client_read_all(c, 1, 1000, "a-", NULL, 0, &page, &res) == ANNAL_SUCCESS);
    CHECK(page->count == 250);
    for (size_t i = 0; i < 250; i++)
        CHECK(s->seqs[i] == page->records[i].sequence_number && strncmp(s->aggs[i], "a-", 2) == 0);
    annal_page_destroy(&page);
    annal_client_destroy(&c);
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_daemon_stop(d);
}

static void t_from_now(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "n", 10, 0, 0) == 10);
    seen_t *s = s_seen(100);
    annal_subscription_t *sub = s_sub(d, "", ANNAL_FROM_NOW, 0, s);
    annal_subscription_run(sub, 300, NULL);
    CHECK(s->count == 0 && annal_subscription_position(sub) == 11);
    CHECK(t_append(d->commands, "n", 10, 10, 0) == 10);
    s_run(sub, s, 10);
    CHECK(s_exact(s, 11, 10));
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_daemon_stop(d);
}

/* annald comes back with another (empty) store: the subscription must fail,
   not wait for sequence numbers it already delivered and skip new events. */
static void t_store_behind(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "r", 20, 0, 0) == 20);
    seen_t *s = s_seen(100);
    annal_subscription_t *sub = s_sub(d, "", 1, 0, s);
    s_run(sub, s, 20);
    CHECK(s_exact(s, 1, 20));
    t_daemon_kill(d, SIGKILL);
    char *old = d->data;
    d->data = t_tempdir(); /* a new, empty store on the same endpoints */
    CHECK(t_daemon_start(d) == 0);
    CHECK(t_append(d->commands, "r", 3, 0, 0) == 3);
    annal_result_t res;
    annal_status_t st = ANNAL_SUCCESS;
    for (int i = 0; i < 50 && st == ANNAL_SUCCESS; i++)
        st = annal_subscription_run(sub, 200, &res);
    CHECK(st == ANNAL_FAILED && strstr(res.text, "behind"));
    CHECK(s->count == 20);
    annal_subscription_destroy(&sub);
    s_seen_free(s);
    t_rmdir(old);
    t_daemon_stop(d);
}

static int s_refuse_third(const annal_record_t *r, void *arg)
{
    (void) r;
    return ++*(int *) arg == 3 ? -1 : 0;
}

/* A handler that refuses an event stops the run with an error; the
   position stays on that event, so a restart delivers it again. */
static void t_refused(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "x", 5, 0, 0) == 5);
    int calls = 0;
    annal_subscription_config_t config = {.commands = d->commands, .events = d->events, .from = 1};
    annal_subscription_t *sub = annal_subscription_new(&config, s_refuse_third, &calls);
    annal_result_t res;
    CHECK(annal_subscription_run(sub, 5000, &res) == ANNAL_FAILED);
    CHECK(strstr(res.text, "refused event 3"));
    CHECK(annal_subscription_position(sub) == 3 && calls == 3);
    annal_subscription_destroy(&sub);
    /* a prefix annald refuses (not UTF-8) is an error, not an endless retry */
    config.prefix = "\xff\xfe";
    sub = annal_subscription_new(&config, s_refuse_third, &calls);
    CHECK(annal_subscription_run(sub, 5000, &res) == ANNAL_FAILED && res.code == 12);
    annal_subscription_destroy(&sub);
    t_daemon_stop(d);
}

static const t_case_t s_cases[] = {
    {"store_behind", t_store_behind},
    {"refused", t_refused},
    {"history", t_history},
    {"seam", t_seam},
    {"kill9_restart", t_kill9_restart},
    {"forced_drops", t_forced_drops},
    {"checkpoint", t_checkpoint},
    {"prefix", t_prefix},
    {"from_now", t_from_now},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    t_after = t_daemon_cleanup;
    return t_main(argc, argv, s_cases, sizeof s_cases / sizeof s_cases[0]);
}
