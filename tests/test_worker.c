/*  test_worker.c: libannal's group worker (annal_worker.h) against a real
    annald: what each verdict does (ack, nack retry, park with the handler's
    reason), acks batched but never ahead of the handler, ordering by
    aggregate held, a count, a stop from another thread in the middle of a
    batch (the rest given back at once) and from a signal handler while a
    fetch waits, leases that run out before the handler gets to them, an
    annald that is killed (SIGKILL) and comes back, one that is not there
    yet, one that answers error 11 (busy) to fetches and acks for a while
    (a fake annald), and an unknown group. */
#include "testutil_annald.h"
#include "testutil_fake.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define GROUP  "g"
#define MAX_EV 4096 /* handler calls one case records */

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One handler call. */
typedef struct {
    uint64_t seq, version;
    int agg; /* the n of aggregate "x-n" */
    uint32_t delivery;
    annal_worker_verdict_t verdict;
} call_t;

/* What a case's handler does and saw. */
typedef struct {
    call_t calls[MAX_EV];
    atomic_int ncalls;
    bool ok[MAX_EV];    /* by sequence: the handler returned OK for it */
    bool acked[MAX_EV]; /* by sequence: on_acked named it */
    atomic_int nok;     /* distinct sequences handled OK */
    int stop_at;        /* stop the worker when nok reaches it (0: never) */
    int sleep_ms;       /* per call */
    bool verdicts;      /* poison (n % 13 == 5) parks, n % 7 == 3 fails once */
    int ack_calls;      /* on_acked calls */
    int early_acks;     /* acks of events not handled OK: must stay 0 */
    int double_acks;    /* events acked twice */
    annal_worker_t *w;  /* to stop */
} seen_t;

static annal_worker_verdict_t s_handler(const annal_client_group_event_t *ev, char *reason,
                                        size_t size, void *arg)
{
    seen_t *s = arg;
    const annal_record_t *r = &ev->record;
    int n = -1, agg = -1;
    sscanf(r->event_data, "{\"n\":%d}", &n);
    sscanf(r->aggregate_id, "%*[^-]-%d", &agg);
    annal_worker_verdict_t v = ANNAL_WORKER_OK;
    if (s->verdicts && n % 13 == 5) {
        snprintf(reason, size, "poison n=%d", n);
        v = ANNAL_WORKER_PERMANENT;
    }
    else if (s->verdicts && n % 7 == 3 && ev->delivery == 1)
        v = ANNAL_WORKER_TRANSIENT;
    if (s->sleep_ms)
        usleep((useconds_t) s->sleep_ms * 1000);
    int i = atomic_fetch_add(&s->ncalls, 1);
    if (i < MAX_EV)
        s->calls[i] = (call_t){r->sequence_number, r->version, agg, ev->delivery, v};
    bool done = v != ANNAL_WORKER_TRANSIENT;
    if (v == ANNAL_WORKER_OK && r->sequence_number < MAX_EV && !s->ok[r->sequence_number])
        s->ok[r->sequence_number] = true;
    else
        done = done && v == ANNAL_WORKER_PERMANENT;
    if (done && atomic_fetch_add(&s->nok, 1) + 1 == s->stop_at)
        annal_worker_stop(s->w);
    return v;
}

static void s_on_acked(const uint64_t *seqs, size_t n, void *arg)
{
    seen_t *s = arg;
    s->ack_calls++;
    for (size_t i = 0; i < n; i++) {
        if (seqs[i] >= MAX_EV || !s->ok[seqs[i]])
            s->early_acks++;
        else if (s->acked[seqs[i]])
            s->double_acks++;
        else
            s->acked[seqs[i]] = true;
    }
}

static seen_t s_seen_store; /* the running case's */

/* The handler's record, emptied. */
static seen_t *s_fresh(void)
{
    memset(&s_seen_store, 0, sizeof s_seen_store);
    return &s_seen_store;
}

static annal_worker_t *s_worker(const t_daemon_t *d, seen_t *s, size_t max_count, int wait_ms)
{
    annal_worker_config_t config = {.commands = d->commands,
                                    .timeout_ms = 500,
                                    .group = GROUP,
                                    .consumer = "w1",
                                    .max_count = max_count,
                                    .wait_ms = wait_ms,
                                    .on_acked = s_on_acked};
    s->w = annal_worker_new(&config, s_handler, s);
    return s->w;
}

static int s_create(const char *endpoint, uint32_t ack_timeout_ms)
{
    annal_client_t *c = annal_client_new(endpoint, 5000);
    annal_client_group_settings_t settings = {.ack_timeout_ms = ack_timeout_ms};
    annal_result_t res;
    annal_status_t st = annal_client_group_create(c, GROUP, &settings, NULL, &res);
    if (st)
        fprintf(stderr, "  create: %s\n", res.text);
    annal_client_destroy(&c);
    return st ? -1 : 0;
}

/* A new annald with the group (leases of ack_timeout_ms) and n events on
   x-0 .. x-9 ({"n": 0 .. n-1}); NULL when any of it failed. */
static t_daemon_t *s_group(uint32_t ack_timeout_ms, int n)
{
    t_daemon_t *d = t_daemon(NULL);
    if (!d || s_create(d->commands, ack_timeout_ms) || t_append(d->commands, "x", n, 0, 0) != n)
        return NULL;
    return d;
}

/* The group's counters (false when info failed). */
static bool s_info(const char *endpoint, annal_client_group_info_t *out)
{
    annal_client_t *c = annal_client_new(endpoint, 5000);
    annal_client_group_list_t *l = NULL;
    annal_result_t res;
    bool ok = annal_client_group_info(c, GROUP, &l, &res) == ANNAL_SUCCESS;
    if (ok) {
        *out = l->groups[0];
        out->group = out->prefix = out->json = NULL; /* the list owned them */
        out->event_types = NULL;
    }
    else
        fprintf(stderr, "  info: %s\n", res.text);
    annal_client_group_list_destroy(&l);
    annal_client_destroy(&c);
    return ok;
}

/* Each aggregate's events were handled in version order: a version is
   followed by itself (handed out again) or the next one. */
static bool s_in_order(const seen_t *s)
{
    uint64_t last[10] = {0};
    int n = atomic_load(&s->ncalls);
    for (int i = 0; i < n && i < MAX_EV; i++) {
        const call_t *c = &s->calls[i];
        if (c->agg < 0 || c->agg > 9)
            return false;
        if (c->version != last[c->agg] && c->version != last[c->agg] + 1) {
            fprintf(stderr, "  x-%d: version %llu after %llu\n", c->agg,
                    (unsigned long long) c->version, (unsigned long long) last[c->agg]);
            return false;
        }
        last[c->agg] = c->version;
    }
    return true;
}

static void t_verdicts(void)
{
    t_daemon_t *d = s_group(5000, 40);
    CHECK(d);
    seen_t *s = s_fresh();
    s->verdicts = true;
    s->stop_at = 40; /* every event acked or parked */
    annal_worker_t *w = s_worker(d, s, 8, 200);
    CHECK(w);
    annal_result_t res;
    CHECK(annal_worker_run(w, 0, &res) == ANNAL_SUCCESS);
    annal_worker_stats_t st;
    annal_worker_stats(w, &st);
    annal_worker_destroy(&w);
    /* poison: n = 5, 18, 31; failing once: n = 3, 10, 17, 24, 38 (31 is poison) */
    CHECK(st.parked == 3 && st.retried == 5 && st.acked == 37 && st.handled == 45);
    CHECK(st.given_back == 0 && st.fetched == 45);
    CHECK(s->early_acks == 0 && s->double_acks == 0);
    CHECK(s->ack_calls > 0 && (uint64_t) s->ack_calls < st.acked / 2); /* batched */
    CHECK(s_in_order(s));
    annal_client_group_info_t g;
    CHECK(s_info(d->commands, &g));
    CHECK(g.acked_through == 40 && g.lag == 0 && g.parked == 3 && g.leased == 0);
    annal_client_t *c = annal_client_new(d->commands, 5000);
    annal_client_group_page_t *p = NULL;
    CHECK(annal_client_group_parked(c, GROUP, 0, 0, &p, &res) == ANNAL_SUCCESS && p->count == 3);
    CHECK(strcmp(p->events[0].reason, "poison n=5") == 0);
    CHECK(strcmp(p->events[2].reason, "poison n=31") == 0 && p->events[2].delivery == 1);
    annal_client_group_page_destroy(&p);
    annal_client_destroy(&c);
    t_daemon_stop(d);
}

/* run with a count handles that many and leases no more. */
static void t_count(void)
{
    t_daemon_t *d = s_group(30000, 20);
    CHECK(d);
    seen_t *s = s_fresh();
    annal_worker_t *w = s_worker(d, s, 4, 200);
    annal_result_t res;
    CHECK(annal_worker_run(w, 5, &res) == ANNAL_SUCCESS);
    annal_worker_stats_t st;
    annal_worker_stats(w, &st);
    CHECK(st.handled == 5 && st.fetched == 5 && st.acked == 5);
    annal_client_group_info_t g;
    CHECK(s_info(d->commands, &g) && g.acked_through == 5 && g.leased == 0);
    CHECK(annal_worker_run(w, 3, &res) == ANNAL_SUCCESS);
    annal_worker_stats(w, &st);
    CHECK(st.handled == 8 && st.fetched == 8);
    CHECK(s_info(d->commands, &g) && g.acked_through == 8 && g.leased == 0);
    annal_worker_destroy(&w);
    CHECK(s->early_acks == 0);
    t_daemon_stop(d);
}

typedef struct {
    annal_worker_t *w;
    seen_t *s;
    int after_calls; /* stop once the handler was called this often */
} stopper_t;

static void *s_stopper(void *arg)
{
    stopper_t *st = arg;
    int64_t end = s_now_ms() + 30000;
    while (atomic_load(&st->s->ncalls) < st->after_calls && s_now_ms() < end)
        usleep(1000);
    annal_worker_stop(st->w);
    return NULL;
}

/* A stop from another thread in the middle of a batch: the handler in hand
   finishes (and is acked), the rest is given back, ready at once. */
static void t_stop_mid_batch(void)
{
    t_daemon_t *d = s_group(30000, 10);
    CHECK(d);
    seen_t *s = s_fresh();
    s->sleep_ms = 100;
    annal_worker_t *w = s_worker(d, s, 10, 200);
    stopper_t stop = {w, s, 2}; /* after the second call, or in the third */
    pthread_t t;
    pthread_create(&t, NULL, s_stopper, &stop);
    annal_result_t res;
    CHECK(annal_worker_run(w, 0, &res) == ANNAL_SUCCESS);
    pthread_join(t, NULL);
    annal_worker_stats_t st;
    annal_worker_stats(w, &st);
    CHECK(st.fetched == 10 && st.handled >= 1 && st.handled < 10);
    CHECK(st.given_back == 10 - st.handled && st.acked == st.handled);
    CHECK(annal_worker_run(w, 0, &res) == ANNAL_SUCCESS); /* stopped for good */
    annal_worker_destroy(&w);
    annal_client_group_info_t g;
    CHECK(s_info(d->commands, &g) && g.leased == 0 && g.acked_through == st.handled);
    /* the rest is ready now (not when the 30 s leases would have ended) */
    annal_client_t *c = annal_client_new(d->commands, 5000);
    annal_client_group_page_t *p = NULL;
    CHECK(annal_client_group_fetch(c, GROUP, "w2", 10, 0, &p, &res) == ANNAL_SUCCESS);
    CHECK(p->count == 10 - st.handled && p->events[0].delivery == 2);
    CHECK(p->events[0].record.sequence_number == st.handled + 1);
    annal_client_group_page_destroy(&p);
    annal_client_destroy(&c);
    t_daemon_stop(d);
}

static annal_worker_t *s_signalled; /* stopped by SIGALRM */

static void s_on_alarm(int sig)
{
    (void) sig;
    annal_worker_stop(s_signalled);
}

/* A stop from a signal handler while a fetch waits: run returns once the
   fetch's wait is over, not later and not with an error. */
static void t_stop_from_signal(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(s_create(d->commands, 30000) == 0);
    seen_t *s = s_fresh();
    s_signalled = s_worker(d, s, 10, 1000);
    struct sigaction sa = {0}, old;
    sa.sa_handler = s_on_alarm;
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = {{0, 0}, {0, 300000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int64_t t0 = s_now_ms();
    annal_result_t res;
    annal_status_t st = annal_worker_run(s_signalled, 0, &res);
    int64_t took = s_now_ms() - t0;
    sigaction(SIGALRM, &old, NULL);
    if (st)
        fprintf(stderr, "  run: %s\n", res.text);
    CHECK(st == ANNAL_SUCCESS);
    CHECK(took >= 250 && took < 6000);
    annal_worker_stats_t stats;
    annal_worker_stats(s_signalled, &stats);
    CHECK(stats.handled == 0 && stats.reconnects == 0);
    annal_worker_destroy(&s_signalled);
    t_daemon_stop(d);
}

/* Leases of 1000 ms and a handler of 120 ms: no handler starts in a lease's
   last 200 ms; what it did not get to is given back and handled in a later
   batch, each event once. */
static void t_lease_runs_out(void)
{
    t_daemon_t *d = s_group(1000, 10);
    CHECK(d);
    seen_t *s = s_fresh();
    s->sleep_ms = 120;
    s->stop_at = 10;
    annal_worker_t *w = s_worker(d, s, 10, 200);
    annal_result_t res;
    CHECK(annal_worker_run(w, 0, &res) == ANNAL_SUCCESS);
    annal_worker_stats_t st;
    annal_worker_stats(w, &st);
    annal_worker_destroy(&w);
    CHECK(st.given_back >= 1 && st.handled == 10 && st.acked == 10);
    CHECK(st.fetched == 10 + st.given_back);
    CHECK(s->early_acks == 0 && s->double_acks == 0);
    annal_client_group_info_t g;
    CHECK(s_info(d->commands, &g) && g.acked_through == 10);
    t_daemon_stop(d);
}

typedef struct {
    annal_worker_t *w;
    annal_status_t st;
    annal_result_t res;
} runner_t;

static void *s_runner(void *arg)
{
    runner_t *r = arg;
    r->st = annal_worker_run(r->w, 0, &r->res);
    return NULL;
}

/* Waits until the handler has made at least n distinct events done. */
static bool s_wait_done(seen_t *s, int n, int timeout_ms)
{
    int64_t end = s_now_ms() + timeout_ms;
    while (atomic_load(&s->nok) < n && s_now_ms() < end)
        usleep(10000);
    return atomic_load(&s->nok) >= n;
}

/* Runs a worker (8 a fetch) in a thread while middle acts on annald, until
   the handler has made s->stop_at events done (60 s at most), and destroys
   it. True when middle and the worker did all they should; *st: its
   counters. */
static bool s_run_around(t_daemon_t *d, seen_t *s, bool (*middle)(t_daemon_t *d, seen_t *s),
                         annal_worker_stats_t *st)
{
    runner_t r = {s_worker(d, s, 8, 300), ANNAL_SUCCESS, {0}};
    if (!r.w)
        return false;
    pthread_t t;
    pthread_create(&t, NULL, s_runner, &r);
    bool acted = middle(d, s);
    bool finished = s_wait_done(s, s->stop_at, 60000);
    if (!finished)
        annal_worker_stop(r.w);
    pthread_join(t, NULL);
    annal_worker_stats(r.w, st);
    annal_worker_destroy(&r.w);
    if (r.st)
        fprintf(stderr, "  run: %s\n", r.res.text);
    if (!acted || !finished)
        fprintf(stderr, "  acted %d, %d of %d events done\n", acted, atomic_load(&s->nok),
                s->stop_at);
    return acted && finished && r.st == ANNAL_SUCCESS;
}

/* Kills annald (SIGKILL) once 30 events are done, starts it again 0.7 s
   later, and appends 50 more. */
static bool s_kill_and_restart(t_daemon_t *d, seen_t *s)
{
    bool started = s_wait_done(s, 30, 20000);
    t_daemon_kill(d, SIGKILL);
    usleep(700000);
    return started && t_daemon_start(d) == 0 && t_append(d->commands, "x", 50, 100, 0) == 50;
}

/* annald killed (SIGKILL) while the worker runs, and started again: the
   worker reconnects, and every event is handled and acked. */
static void t_annald_away(void)
{
    t_daemon_t *d = s_group(2000, 100);
    CHECK(d);
    seen_t *s = s_fresh();
    s->sleep_ms = 2;
    s->stop_at = 150;
    annal_worker_stats_t st;
    CHECK(s_run_around(d, s, s_kill_and_restart, &st));
    CHECK(st.reconnects >= 1 && st.handled >= 150);
    CHECK(s->early_acks == 0);
    CHECK(s_in_order(s));
    annal_client_group_info_t g;
    CHECK(s_info(d->commands, &g) && g.acked_through == 150 && g.lag == 0);
    t_daemon_stop(d);
}

/* Starts annald after 0.8 s, and appends 5 events. */
static bool s_start_late(t_daemon_t *d, seen_t *s)
{
    (void) s;
    usleep(800000);
    return t_daemon_start(d) == 0 && t_append(d->commands, "x", 5, 0, 0) == 5;
}

/* A worker started while annald is down: it waits, then works. */
static void t_waits_for_annald(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(s_create(d->commands, 30000) == 0);
    t_daemon_kill(d, SIGTERM);
    seen_t *s = s_fresh();
    s->stop_at = 5;
    annal_worker_stats_t st;
    CHECK(s_run_around(d, s, s_start_late, &st));
    CHECK(st.reconnects >= 1 && st.acked == 5);
    t_daemon_stop(d);
}

static void t_unknown_group(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    seen_t *s = s_fresh();
    annal_worker_t *w = s_worker(d, s, 8, 300);
    annal_result_t res;
    CHECK(annal_worker_run(w, 0, &res) == ANNAL_FAILED);
    CHECK(res.code == ANNAL_CODE_NOT_FOUND && strstr(res.text, GROUP));
    annal_worker_destroy(&w);
    annal_worker_destroy(&w); /* safe twice */
    /* settings refused at once */
    annal_worker_config_t bad = {.commands = d->commands, .group = "$g", .consumer = "c"};
    CHECK(annal_worker_new(&bad, s_handler, s) == NULL);
    bad.group = GROUP;
    bad.consumer = NULL;
    CHECK(annal_worker_new(&bad, s_handler, s) == NULL);
    bad.consumer = "c";
    bad.wait_ms = 30001;
    CHECK(annal_worker_new(&bad, s_handler, s) == NULL);
    bad.wait_ms = 0;
    CHECK(annal_worker_new(&bad, NULL, s) == NULL);
    t_daemon_stop(d);
}

/* What the fake annald of t_unavailable answers: error 11 to the first
   three fetches and the first ack, then one event, then nothing to do. */
typedef struct {
    int fetches, acks, infos;
} busy_t;

static const char *s_busy(t_fake_t *f, const char *type)
{
    busy_t *b = f->arg;
    static const char *const busy =
        "{\"type\":\"error\",\"in_reply_to\":%lld,\"code\":11,\"text\":\"busy: nothing was "
        "written\"}";
    if (strcmp(type, "group_info") == 0)
        return b->infos++, "{\"type\":\"group\",\"in_reply_to\":%lld,\"group\":\"g\",\"prefix\":"
                           "\"\",\"event_types\":null,\"ordering\":\"aggregate\","
                           "\"ack_timeout_ms\":30000,\"max_deliveries\":5,\"start_sequence\":1,"
                           "\"acked_through\":0,\"leased\":0,\"parked\":0,\"head_sequence\":1}";
    if (strcmp(type, "group_fetch") == 0) {
        if (b->fetches++ < 3)
            return busy;
        return b->fetches == 4
                   ? "{\"type\":\"group_events\",\"in_reply_to\":%lld,\"group\":\"g\",\"events\":"
                     "[{\"sequence_number\":1,\"event_id\":\"01a23e88-f17b-7da6-a001-"
                     "89b9cc813d34\",\"aggregate_id\":\"x-1\",\"version\":1,\"event_type\":\"T\","
                     "\"event_data\":{\"n\":0},\"metadata\":{},\"recorded_at\":\"2024-01-15T09:00:"
                     "00.123456Z\",\"delivery\":1}],\"head_sequence\":1}"
                   : "{\"type\":\"group_events\",\"in_reply_to\":%lld,\"group\":\"g\",\"events\":"
                     "[],\"head_sequence\":1}";
    }
    if (strcmp(type, "group_ack") == 0)
        return b->acks++ < 1 ? busy
                             : "{\"type\":\"group_acked\",\"in_reply_to\":%lld,\"group\":\"g\","
                               "\"acked\":1}";
    return NULL;
}

/* Error 11 (annald busy, its store away): the worker waits and asks again
   on the same connection, fetches as acks, and loses nothing. */
static void t_unavailable(void)
{
    busy_t busy = {0};
    t_fake_t f = {.fn = s_busy, .arg = &busy};
    t_fake_start(&f, NULL, 0, 0);
    t_daemon_t d = {0}; /* only its endpoint */
    snprintf(d.commands, sizeof d.commands, "%s", f.endpoint);
    seen_t *s = s_fresh();
    s->stop_at = 1;
    annal_worker_t *w = s_worker(&d, s, 8, 300);
    int64_t t0 = s_now_ms();
    annal_result_t res;
    annal_status_t st = annal_worker_run(w, 0, &res);
    int64_t took = s_now_ms() - t0;
    annal_worker_stats_t stats;
    annal_worker_stats(w, &stats);
    annal_worker_destroy(&w);
    t_fake_stop(&f);
    CHECK(st == ANNAL_SUCCESS);
    CHECK(stats.handled == 1 && stats.acked == 1 && stats.reconnects == 0);
    CHECK(busy.fetches == 4 && busy.acks == 2 && busy.infos == 1);
    CHECK(s->ack_calls == 1 && s->early_acks == 0 && s->acked[1]);
    CHECK(took >= 100 + 200 + 400 + 100); /* backing off: 3 fetches, then the ack */
}

static const t_case_t s_cases[] = {
    {"verdicts", t_verdicts},
    {"count", t_count},
    {"stop_mid_batch", t_stop_mid_batch},
    {"stop_from_signal", t_stop_from_signal},
    {"lease_runs_out", t_lease_runs_out},
    {"annald_away", t_annald_away},
    {"waits_for_annald", t_waits_for_annald},
    {"unavailable", t_unavailable},
    {"unknown_group", t_unknown_group},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    t_after = t_daemon_cleanup;
    return t_main(argc, argv, s_cases, sizeof s_cases / sizeof s_cases[0]);
}
