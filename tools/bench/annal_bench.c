/*  annal-bench: the annal benchmark (workloads W1..W9, BENCHMARKS.md).

    Each workload runs against a running annald (--connect) or one it starts
    on a temporary store next to this binary. Requests are encoded once per
    client and only their msg_id (and the event's timestamp) are patched in
    place per send, so the clients spend their CPU on the sockets, not on
    encoding: on 2 cores the clients and annald share the machine.

    Output: a table, or with --json one JSON object per workload. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "annal_codec.h"

#define ID_BASE       ((int64_t) 1 << 33) /* msg_ids from here always take 9 MessagePack bytes */
#define T_PLACEHOLDER 1700000000000000000LL
#define MAX_BROKERS   8

typedef struct {
    const char *workload; /* W1 .. W9 */
    annal_encoding_t enc; /* request encoding */
    int clients, depth;   /* W1/W3/W7: concurrent clients, requests in flight each */
    int payload;          /* bytes of padding in event_data */
    double duration;      /* seconds per measured run */
    const char *connect;  /* running annald's commands endpoint(s, comma-separated), or NULL */
    const char *events;   /* its events endpoint (W7) */
    bool json;            /* JSON lines output */
    int writers;          /* W4 */
    int subscribers;      /* W7 */
    int consumers;        /* W9: group consumers */
    int fetch;            /* W9: events per fetch */
    int batch;            /* W3: events per append (0: 10, 100 and 1000) */
    char self_dir[4096];  /* the folder annal-bench runs from */
} opts_t;

typedef struct {
    pid_t pid;      /* annald we started, or 0 */
    char dir[4096]; /* its data folder */
    char commands[256], events[256];
    char brokers[MAX_BROKERS][256]; /* --connect's endpoints: client i uses i % nbrokers */
    int nbrokers;                   /* 1 unless --connect names several */
    bool echo;                      /* the ZMQ reference's echo, not annald */
} target_t;

typedef struct {
    uint64_t ok, errors, conflicts; /* replies */
    float *lat;                     /* latencies in ms */
    size_t nlat, caplat;
} stats_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t s_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_lat(stats_t *s, double ms)
{
    if (s->nlat == s->caplat) {
        s->caplat = s->caplat ? s->caplat * 2 : 4096;
        s->lat = realloc(s->lat, s->caplat * sizeof *s->lat);
    }
    s->lat[s->nlat++] = (float) ms;
}

static int s_cmp(const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;
    return x < y ? -1 : x > y;
}

static double s_pct(stats_t *s, double p)
{
    if (!s->nlat)
        return 0;
    size_t i = (size_t) (p * (double) (s->nlat - 1));
    return s->lat[i];
}

static void s_merge(stats_t *into, const stats_t *from)
{
    into->ok += from->ok;
    into->errors += from->errors;
    into->conflicts += from->conflicts;
    for (size_t i = 0; i < from->nlat; i++)
        s_lat(into, from->lat[i]);
}

/* --- annald ---------------------------------------------------------------------- */

static int s_rm(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void) st, (void) f, (void) w;
    return remove(p);
}

static int s_start(const opts_t *o, target_t *t, const char *extra)
{
    memset(t, 0, sizeof *t);
    t->nbrokers = 1;
    if (o->connect) {
        /* several brokers on one store: A,B,... */
        const char *p = o->connect;
        for (t->nbrokers = 0; *p && t->nbrokers < MAX_BROKERS; t->nbrokers++) {
            size_t n = strcspn(p, ",");
            snprintf(t->brokers[t->nbrokers], sizeof t->brokers[0], "%.*s", (int) n, p);
            p += n + (p[n] == ',');
        }
        snprintf(t->commands, sizeof t->commands, "%s", t->brokers[0]);
        snprintf(t->events, sizeof t->events, "%s", o->events ? o->events : "tcp://127.0.0.1:5556");
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/annal-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir))
        return -1;
    /* annald beside annal-bench (the build folder), else where the install
       puts it (annal-bench is in libexec/annal, annald in bin), else PATH */
    char annald[4200];
    snprintf(annald, sizeof annald, "%s/annald", o->self_dir);
    if (access(annald, X_OK) != 0)
        snprintf(annald, sizeof annald, "%s/%s/annald", o->self_dir, ANNAL_BENCH_TO_BINDIR);
    if (access(annald, X_OK) != 0)
        snprintf(annald, sizeof annald, "annald");
    int fds[2];
    if (pipe(fds))
        return -1;
    t->pid = fork();
    if (t->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execlp(annald, "annald", "--data", t->dir, "--commands", "tcp://127.0.0.1:*", "--events",
               "tcp://127.0.0.1:*", "--max-body", "8388608", extra, (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[1024];
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    line[n > 0 ? n : 0] = 0;
    if (sscanf(line, "%*s %*s ready: commands %255s events %255s", t->commands, t->events) != 2) {
        fprintf(stderr, "annal-bench: annald did not start (%s): %s\n", annald, line);
        return -1;
    }
    snprintf(t->brokers[0], sizeof t->brokers[0], "%s", t->commands);
    return 0;
}

/* annald's resident memory in KiB (VmRSS and RssAnon), 0 when unknown. */
static void s_rss(const target_t *t, long *rss, long *anon)
{
    *rss = *anon = 0;
    if (!t->pid)
        return;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) t->pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", rss);
        sscanf(line, "RssAnon: %ld", anon);
    }
    if (f)
        fclose(f);
}

static void s_stop(target_t *t)
{
    if (t->pid) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        nftw(t->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
        t->pid = 0;
    }
}

/* --- requests -------------------------------------------------------------------- */

/* An encoded request whose msg_id (and event timestamp) can be patched. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t id_at, t_at; /* offsets of the placeholder values (0: none) */
    annal_encoding_t enc;
} req_t;

static size_t s_find(const uint8_t *d, size_t n, annal_encoding_t enc, int64_t v)
{
    uint8_t pat[24];
    size_t plen;
    if (enc == ANNAL_ENC_MSGPACK) {
        pat[0] = 0xcf;
        for (int i = 0; i < 8; i++)
            pat[1 + i] = (uint8_t) ((uint64_t) v >> (56 - 8 * i));
        plen = 9;
    }
    else
        plen = (size_t) snprintf((char *) pat, sizeof pat, "%" PRId64, v);
    uint8_t *p = memmem(d, n, pat, plen);
    return p ? (size_t) (p - d) : 0;
}

static void s_patch(req_t *r, size_t at, int64_t v)
{
    if (!at)
        return;
    if (r->enc == ANNAL_ENC_MSGPACK)
        for (int i = 0; i < 8; i++)
            r->data[at + 1 + i] = (uint8_t) ((uint64_t) v >> (56 - 8 * i));
    else {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%" PRId64, v);
        memcpy(r->data + at, digits, (size_t) n);
    }
}

/* Finishes a built body into r, finding the placeholders. */
static void s_finish(annal_body_t *b, annal_encoding_t enc, req_t *r, bool with_t)
{
    annal_body_encode(b, enc, &r->data, &r->len);
    r->enc = enc;
    r->id_at = s_find(r->data, r->len, enc, ID_BASE);
    r->t_at = with_t ? s_find(r->data, r->len, enc, T_PLACEHOLDER) : 0;
}

/* An append of n events of payload bytes to agg (version "any", or exact). */
static void s_append_req(const opts_t *o, const char *agg, int n, int64_t version, req_t *r)
{
    char *json = malloc((size_t) o->payload + 64);
    memset(json, 0, (size_t) o->payload + 64);
    memcpy(json, "{\"p\":\"", 6);
    memset(json + 6, 'x', (size_t) o->payload);
    snprintf(json + 6 + o->payload, 58, "\",\"t\":%lld}", T_PLACEHOLDER);
    annal_blob_t blob = {0};
    char why[128];
    annal_value_from_json_text(json, strlen(json), &blob, why, sizeof why);
    free(json);
    annal_new_event_t *ev = calloc((size_t) n, sizeof *ev);
    for (int i = 0; i < n; i++) {
        ev[i].event_type = "BenchEvent";
        ev[i].data = blob;
    }
    annal_body_t *b = annal_body_new();
    annal_body_begin_plain(b);
    annal_body_str(b, "type", "append", 6);
    annal_body_int(b, "msg_id", ID_BASE);
    annal_body_str(b, "aggregate_id", agg, strlen(agg));
    if (version < 0)
        annal_body_str(b, "version", "any", 3);
    else
        annal_body_int(b, "version", version);
    if (n == 1) {
        annal_body_str(b, "event_type", "BenchEvent", 10);
        annal_body_value(b, "event_data", blob.data, blob.size);
    }
    else
        annal_body_new_events(b, "events", ev, (size_t) n);
    s_finish(b, o->enc, r, n == 1);
    annal_body_destroy(&b);
    free(ev);
    annal_blob_free(&blob);
}

static bool s_is(const uint8_t *reply, size_t n, const char *type)
{
    size_t look = n < 48 ? n : 48;
    return memmem(reply, look, type, strlen(type)) != NULL;
}

static void *s_socket(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = 100000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_connect(s, endpoint);
    return s;
}

/* --- pipelined append clients (W1, W2, W3, W7) ---------------------------------------- */

typedef struct {
    const opts_t *o;
    void *ctx;
    const char *endpoint;
    int id;       /* client number */
    int batch;    /* events per append */
    int depth;    /* in flight */
    double until; /* stop sending at */
    bool echo;    /* any reply counts (the ZMQ reference) */
    stats_t stats;
} client_t;

static void *s_client(void *arg)
{
    client_t *c = arg;
    void *sock = s_socket(c->ctx, c->endpoint);
    req_t reqs[16];
    int nreq = 16;
    for (int i = 0; i < nreq; i++) {
        char agg[64];
        snprintf(agg, sizeof agg, "bench-%d-%d", c->id, i);
        s_append_req(c->o, agg, c->batch, -1, &reqs[i]);
    }
    double *sent = calloc((size_t) c->depth + 1, sizeof *sent);
    size_t head = 0, tail = 0, cap = (size_t) c->depth + 1; /* FIFO of send times */
    int64_t id = ID_BASE;
    int inflight = 0;
    for (;;) {
        double now = s_now();
        while (inflight < c->depth && now < c->until) {
            req_t *r = &reqs[id % nreq];
            s_patch(r, r->id_at, id++);
            s_patch(r, r->t_at, s_wall_ns());
            if (zmq_send(sock, r->data, r->len, 0) < 0)
                break;
            sent[tail] = s_now();
            tail = (tail + 1) % cap;
            inflight++;
        }
        if (inflight == 0)
            break;
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10000) <= 0) {
            c->stats.errors += (uint64_t) inflight; /* no answer in 10 s */
            zmq_msg_close(&m);
            break;
        }
        zmq_msg_recv(&m, sock, 0);
        double lat = (s_now() - sent[head]) * 1000;
        head = (head + 1) % cap;
        inflight--;
        if (c->echo || s_is(zmq_msg_data(&m), zmq_msg_size(&m), "appended")) {
            c->stats.ok += (uint64_t) c->batch;
            s_lat(&c->stats, lat);
        }
        else
            c->stats.errors++;
        zmq_msg_close(&m);
    }
    for (int i = 0; i < nreq; i++)
        free(reqs[i].data);
    free(sent);
    zmq_close(sock);
    return NULL;
}

/* Runs clients appenders for the duration; returns merged stats and time. */
static double s_appenders(const opts_t *o, const target_t *t, void *ctx, int clients, int depth,
                          int batch, stats_t *total)
{
    client_t *cs = calloc((size_t) clients, sizeof *cs);
    pthread_t *th = calloc((size_t) clients, sizeof *th);
    double start = s_now();
    for (int i = 0; i < clients; i++) {
        cs[i] = (client_t){o,     ctx,   t->brokers[i % t->nbrokers], i,
                           batch, depth, start + o->duration,         t->pid == 0 && t->echo,
                           {0}};
        pthread_create(&th[i], NULL, s_client, &cs[i]);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        s_merge(total, &cs[i].stats);
        free(cs[i].stats.lat);
    }
    double elapsed = s_now() - start;
    free(cs);
    free(th);
    return elapsed;
}

/* --- one synchronous request ---------------------------------------------------------- */

static void s_send(void *sock, annal_body_t *b, annal_encoding_t enc)
{
    uint8_t *data;
    size_t len;
    annal_body_encode(b, enc, &data, &len);
    zmq_send(sock, data, len, 0);
    free(data);
}

/* The next reply on sock, decoded (NULL: none in 60 s, or not a reply). */
static annal_msg_t *s_reply(void *sock)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    annal_msg_t *msg = NULL;
    if (zmq_poll(&it, 1, 60000) > 0 && zmq_msg_recv(&m, sock, 0) >= 0)
        msg = annal_msg_decode(zmq_msg_data(&m), zmq_msg_size(&m));
    zmq_msg_close(&m);
    return msg;
}

static annal_msg_t *s_call(void *sock, annal_body_t *b, annal_encoding_t enc)
{
    s_send(sock, b, enc);
    return s_reply(sock);
}

/* Appends n events to agg in batches of 1000. */
static void s_preload(const opts_t *o, void *sock, const char *agg, int n)
{
    opts_t po = *o;
    po.enc = ANNAL_ENC_MSGPACK;
    req_t r;
    int per = n < 1000 ? n : 1000;
    s_append_req(&po, agg, per, -1, &r);
    int64_t id = ID_BASE;
    int inflight = 0;
    for (int done = 0; done < n || inflight;) {
        while (done < n && inflight < 8) {
            s_patch(&r, r.id_at, id++);
            zmq_send(sock, r.data, r.len, 0);
            done += per;
            inflight++;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
        inflight--;
    }
    free(r.data);
}

/* --- output ------------------------------------------------------------------------ */

typedef struct {
    const char *workload;
    const char *label;
    int clients, depth; /* as run */
    double events_per_s;
    stats_t *stats;
    uint64_t errors;
    const char *extra; /* more JSON members, or "" */
} result_t;

static void s_report(const opts_t *o, const target_t *t, result_t *r)
{
    long rss, anon;
    s_rss(t, &rss, &anon);
    double p50 = 0, p99 = 0, p999 = 0;
    if (r->stats && r->stats->nlat) {
        qsort(r->stats->lat, r->stats->nlat, sizeof(float), s_cmp);
        p50 = s_pct(r->stats, 0.5);
        p99 = s_pct(r->stats, 0.99);
        p999 = s_pct(r->stats, 0.999);
    }
    if (o->json)
        printf("{\"workload\": \"%s\", \"label\": \"%s\", \"encoding\": \"%s\", \"clients\": %d, "
               "\"depth\": %d, \"payload\": %d, \"events_per_s\": %.0f, \"p50_ms\": %.3f, "
               "\"p99_ms\": %.3f, \"p999_ms\": %.3f, \"errors\": %" PRIu64
               ", \"broker_rss_kib\": %ld, \"broker_rss_anon_kib\": %ld%s}\n",
               r->workload, r->label, o->enc == ANNAL_ENC_JSON ? "json" : "msgpack", r->clients,
               r->depth, o->payload, r->events_per_s, p50, p99, p999, r->errors, rss, anon,
               r->extra);
    else
        printf("%-4s %-28s %12.0f ev/s  p50 %7.3f  p99 %7.3f  p999 %7.3f ms  errors %" PRIu64
               "  rss %ld KiB %s\n",
               r->workload, r->label, r->events_per_s, p50, p99, p999, r->errors, rss, r->extra);
    fflush(stdout);
}

/* --- workloads ------------------------------------------------------------------------ */

static int s_w1(const opts_t *o, void *ctx, int clients, int depth, const char *name)
{
    target_t t;
    if (s_start(o, &t, NULL))
        return 1;
    if (clients < t.nbrokers) /* W2 on several brokers: a client on each */
        clients = t.nbrokers;
    stats_t st = {0};
    double secs = s_appenders(o, &t, ctx, clients, depth, 1, &st);
    char label[64];
    snprintf(label, sizeof label, "%d clients x %d in flight", clients, depth);
    result_t r = {name, label, clients, depth, (double) st.ok / secs, &st, st.errors, ""};
    s_report(o, &t, &r);
    free(st.lat);
    s_stop(&t);
    return 0;
}

static int s_w3(const opts_t *o, void *ctx)
{
    int sizes[] = {10, 100, 1000};
    for (int i = 0; i < 3; i++) {
        if (o->batch && o->batch != sizes[i])
            continue;
        target_t t;
        if (s_start(o, &t, NULL))
            return 1;
        stats_t st = {0};
        int clients = o->clients < 16 ? o->clients : 16;
        double secs = s_appenders(o, &t, ctx, clients, 4, sizes[i], &st);
        char label[64], extra[64];
        snprintf(label, sizeof label, "batches of %d, %d clients x 4", sizes[i], clients);
        snprintf(extra, sizeof extra, ", \"batch\": %d", sizes[i]);
        result_t r = {
            "W3", label, clients, 4, (double) st.ok / secs, &st, st.errors, o->json ? extra : ""};
        s_report(o, &t, &r);
        free(st.lat);
        s_stop(&t);
    }
    return 0;
}

typedef struct {
    const opts_t *o;
    void *ctx;
    const char *endpoint;
    double until;
    stats_t stats;
} writer_t;

/* W4: read the version, append at it, retry on conflict. */
static void *s_contender(void *arg)
{
    writer_t *w = arg;
    void *sock = s_socket(w->ctx, w->endpoint);
    annal_body_t *b = annal_body_new();
    int64_t id = 1;
    while (s_now() < w->until) {
        double t0 = s_now();
        annal_body_begin_plain(b);
        annal_body_str(b, "type", "read", 4);
        annal_body_int(b, "msg_id", id++);
        annal_body_str(b, "aggregate_id", "contended", 9);
        annal_body_str(b, "direction", "backward", 8);
        annal_body_int(b, "max_count", 1);
        annal_msg_t *m = s_call(sock, b, w->o->enc);
        int64_t version = 0;
        if (!m || !annal_msg_int(m, "version", &version)) {
            w->stats.errors++;
            annal_msg_destroy(&m);
            continue;
        }
        annal_msg_destroy(&m);
        req_t r;
        s_append_req(w->o, "contended", 1, version, &r);
        s_patch(&r, r.id_at, ID_BASE + id++);
        zmq_send(sock, r.data, r.len, 0);
        zmq_msg_t reply;
        zmq_msg_init(&reply);
        zmq_msg_recv(&reply, sock, 0);
        if (s_is(zmq_msg_data(&reply), zmq_msg_size(&reply), "appended")) {
            w->stats.ok++;
            s_lat(&w->stats, (s_now() - t0) * 1000);
        }
        else if (s_is(zmq_msg_data(&reply), zmq_msg_size(&reply), "concurrency_error"))
            w->stats.conflicts++;
        else
            w->stats.errors++;
        zmq_msg_close(&reply);
        free(r.data);
    }
    annal_body_destroy(&b);
    zmq_close(sock);
    return NULL;
}

static int s_w4(const opts_t *o, void *ctx)
{
    target_t t;
    if (s_start(o, &t, NULL))
        return 1;
    writer_t *ws = calloc((size_t) o->writers, sizeof *ws);
    pthread_t *th = calloc((size_t) o->writers, sizeof *th);
    double start = s_now();
    for (int i = 0; i < o->writers; i++) {
        ws[i] = (writer_t){o, ctx, t.commands, start + o->duration, {0}};
        pthread_create(&th[i], NULL, s_contender, &ws[i]);
    }
    stats_t st = {0};
    for (int i = 0; i < o->writers; i++) {
        pthread_join(th[i], NULL);
        s_merge(&st, &ws[i].stats);
        free(ws[i].stats.lat);
    }
    double secs = s_now() - start;
    char label[64], extra[96];
    snprintf(label, sizeof label, "%d writers on one aggregate", o->writers);
    snprintf(extra, sizeof extra, o->json ? ", \"conflicts_per_s\": %.0f" : "conflicts %.0f/s",
             (double) st.conflicts / secs);
    result_t r = {"W4", label, o->writers, 1, (double) st.ok / secs, &st, st.errors, extra};
    s_report(o, &t, &r);
    free(st.lat);
    free(ws);
    free(th);
    s_stop(&t);
    return 0;
}

/* W5: one reader of the whole log, pipelining pages. */
typedef struct {
    const opts_t *o;
    void *ctx;
    const char *endpoint;
    stats_t stats;
    uint64_t events;
} reader_t;

static void *s_catch_up(void *arg)
{
    reader_t *rd = arg;
    const opts_t *o = rd->o;
    stats_t st = {0};
    uint64_t events = 0;
    int64_t id = 1;
    void *sock = s_socket(rd->ctx, rd->endpoint);
    annal_body_t *b = annal_body_new();
    /* sequences are dense, so the next pages are known before the replies
       come; PAGES of them stay in flight */
    enum { PAGE = 10000, PAGES = 2 };
    uint64_t asked = 1;
    double sent[PAGES];
    int inflight = 0, head = 0;
    bool end = false;
    while (!end || inflight) {
        while (!end && inflight < PAGES) {
            annal_body_begin_plain(b);
            annal_body_str(b, "type", "read_all", 8);
            annal_body_int(b, "msg_id", id++);
            annal_body_u64(b, "from_sequence", asked);
            annal_body_int(b, "max_count", PAGE);
            sent[(head + inflight) % PAGES] = s_now();
            s_send(sock, b, o->enc);
            asked += PAGE;
            inflight++;
        }
        annal_msg_t *m = s_reply(sock);
        size_t got = m ? annal_msg_len(m, "events") : 0;
        const char *type = m ? annal_msg_str(m, "type") : NULL;
        if (!type || strcmp(type, "events") != 0)
            st.errors++;
        annal_msg_destroy(&m);
        s_lat(&st, (s_now() - sent[head]) * 1000);
        head = (head + 1) % PAGES;
        inflight--;
        events += got;
        end = end || got < PAGE || st.errors;
    }
    annal_body_destroy(&b);
    zmq_close(sock);
    rd->stats = st;
    rd->events = events;
    return NULL;
}

/* W5 (read_all catch-up, a reader on each broker) and W6 (read one aggregate). */
static int s_reads(const opts_t *o, void *ctx, bool all)
{
    target_t t;
    if (s_start(o, &t, NULL))
        return 1;
    void *sock = s_socket(ctx, t.commands);
    int n = all ? 1000000 : 10000;
    s_preload(o, sock, all ? "catchup" : "one", n);
    annal_body_t *b = annal_body_new();
    stats_t st = {0};
    uint64_t events = 0;
    int64_t id = 1;
    double start = s_now();
    int rounds = 0;
    if (all) { /* a reader on each broker */
        reader_t rs[MAX_BROKERS];
        pthread_t th[MAX_BROKERS];
        for (int i = 0; i < t.nbrokers; i++) {
            rs[i] = (reader_t){o, ctx, t.brokers[i], {0}, 0};
            pthread_create(&th[i], NULL, s_catch_up, &rs[i]);
        }
        for (int i = 0; i < t.nbrokers; i++) {
            pthread_join(th[i], NULL);
            s_merge(&st, &rs[i].stats);
            free(rs[i].stats.lat);
            events += rs[i].events;
        }
    }
    else
        do {
            uint64_t from = 1;
            for (;;) {
                double t0 = s_now();
                annal_body_begin_plain(b);
                annal_body_str(b, "type", "read", 4);
                annal_body_int(b, "msg_id", id++);
                annal_body_str(b, "aggregate_id", "one", 3);
                annal_body_u64(b, "from_version", from);
                annal_body_int(b, "max_count", 10000);
                annal_msg_t *m = s_call(sock, b, o->enc);
                size_t got = m ? annal_msg_len(m, "events") : 0;
                int64_t next = 0;
                bool more = m && annal_msg_int(m, "next_version", &next);
                annal_msg_destroy(&m);
                if (!m && !got && !more && from == 1) {
                    st.errors++;
                    break;
                }
                events += got;
                s_lat(&st, (s_now() - t0) * 1000);
                if (!got || !more || (uint64_t) next <= from)
                    break;
                from = (uint64_t) next;
            }
            rounds++;
        } while (s_now() - start < o->duration);
    double secs = s_now() - start;
    char label[64];
    if (all && t.nbrokers > 1)
        snprintf(label, sizeof label, "read_all of %d events x %d", n, t.nbrokers);
    else
        snprintf(label, sizeof label,
                 all ? "read_all of %d events" : "read of a %d-event aggregate", n);
    result_t r = {all ? "W5" : "W6", label, 1, 1, (double) events / secs, &st, st.errors, ""};
    s_report(o, &t, &r);
    free(st.lat);
    annal_body_destroy(&b);
    zmq_close(sock);
    s_stop(&t);
    return 0;
}

/* W7: subscribers counting what reaches them while W1 runs. */
typedef struct {
    void *ctx;
    const char *endpoint;
    volatile int *stop;
    uint64_t received;
    stats_t stats;
} sub_t;

static void *s_subscriber(void *arg)
{
    sub_t *s = arg;
    void *sock = zmq_socket(s->ctx, ZMQ_SUB);
    int zero = 0, hwm = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "bench-", 6);
    zmq_connect(sock, s->endpoint);
    while (!*s->stop) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        zmq_msg_recv(&topic, sock, 0);
        zmq_msg_recv(&body, sock, 0);
        const uint8_t *d = zmq_msg_data(&body);
        size_t n = zmq_msg_size(&body);
        const uint8_t *p = memmem(d, n, "\xa1t\xcf", 3);
        if (p && p + 11 <= d + n) {
            int64_t t = 0;
            for (int i = 0; i < 8; i++)
                t = (t << 8) | p[3 + i];
            s_lat(&s->stats, (double) (s_wall_ns() - t) / 1e6);
        }
        s->received++;
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
    zmq_close(sock);
    return NULL;
}

static int s_w7(const opts_t *o, void *ctx)
{
    target_t t;
    if (s_start(o, &t, NULL))
        return 1;
    volatile int stop = 0;
    sub_t *subs = calloc((size_t) o->subscribers, sizeof *subs);
    pthread_t *th = calloc((size_t) o->subscribers, sizeof *th);
    for (int i = 0; i < o->subscribers; i++) {
        subs[i] = (sub_t){ctx, t.events, &stop, 0, {0}};
        pthread_create(&th[i], NULL, s_subscriber, &subs[i]);
    }
    usleep(500000); /* subscriptions reach the PUB socket */
    stats_t st = {0};
    double secs = s_appenders(o, &t, ctx, o->clients, o->depth, 1, &st);
    usleep(1000000); /* what is in flight arrives */
    stop = 1;
    stats_t delivery = {0};
    uint64_t least = UINT64_MAX;
    for (int i = 0; i < o->subscribers; i++) {
        pthread_join(th[i], NULL);
        s_merge(&delivery, &subs[i].stats);
        free(subs[i].stats.lat);
        if (subs[i].received < least)
            least = subs[i].received;
    }
    char label[64], extra[160];
    snprintf(label, sizeof label, "%d subscribers during W1", o->subscribers);
    snprintf(extra, sizeof extra,
             o->json ? ", \"appended_per_s\": %.0f, \"lost\": %" PRIu64
                     : "appended %.0f/s lost %" PRIu64,
             (double) st.ok / secs, st.ok > least ? st.ok - least : 0);
    result_t r = {"W7",      label,     o->clients, o->depth, (double) least / secs,
                  &delivery, st.errors, extra};
    s_report(o, &t, &r);
    free(st.lat);
    free(delivery.lat);
    free(subs);
    free(th);
    s_stop(&t);
    return 0;
}

/* W9: consumers of a consumer group, fetching and acking, while W1 appends.
   Each consumer fetches up to --fetch events (a long poll of 100 ms) and
   acks them all at once; a sampler reads the group's lag every 100 ms. */
#define W9_WAIT_MS   100  /* a fetch's long poll */
#define W9_SAMPLE_MS 100  /* lag sampling interval */
#define W9_DRAIN_S   30   /* after the load, how long the group may take to catch up */
#define W9_SAMPLES   4096 /* lag samples kept */

typedef struct {
    void *ctx;
    const char *endpoint;
    const opts_t *o;
    const char *group;
    int id;
    volatile int *stop;
    atomic_ullong acked; /* events acked (counted by annald) */
    stats_t ack;         /* ack round trips */
    stats_t e2e;         /* append sent to ack confirmed, per event */
    uint64_t errors;     /* error replies, or none in time */
} consumer_t;

/* The send timestamps ("t") of the events in a raw group_events reply, in
   order, into ts (up to cap); returns how many. */
static size_t s_stamps(const uint8_t *d, size_t n, annal_encoding_t enc, int64_t *ts, size_t cap)
{
    size_t k = 0;
    const uint8_t *p = d, *end = d + n;
    while (k < cap && p < end) {
        if (enc == ANNAL_ENC_MSGPACK) {
            const uint8_t *m = memmem(p, (size_t) (end - p), "\xa1t\xcf", 3);
            if (!m || m + 11 > end)
                break;
            int64_t t = 0;
            for (int i = 0; i < 8; i++)
                t = (t << 8) | m[3 + i];
            ts[k++] = t;
            p = m + 11;
        }
        else {
            const uint8_t *m = memmem(p, (size_t) (end - p), "\"t\":", 4);
            if (!m)
                break;
            ts[k++] = strtoll((const char *) m + 4, NULL, 10);
            p = m + 4;
        }
    }
    return k;
}

/* Sends body and waits (60 s at most) for the reply, as raw bytes in *m
   (the caller closes it). */
static bool s_round_trip(void *sock, annal_body_t *b, annal_encoding_t enc, zmq_msg_t *m)
{
    s_send(sock, b, enc);
    zmq_msg_init(m);
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    return zmq_poll(&it, 1, 60000) > 0 && zmq_msg_recv(m, sock, 0) >= 0;
}

static void *s_consumer(void *arg)
{
    consumer_t *c = arg;
    const opts_t *o = c->o;
    void *sock = s_socket(c->ctx, c->endpoint);
    annal_body_t *b = annal_body_new();
    char name[32];
    snprintf(name, sizeof name, "c%d", c->id);
    size_t cap = (size_t) o->fetch;
    int64_t *stamps = calloc(cap, sizeof *stamps);
    char *seqs = malloc(cap * 21 + 3);
    int64_t id = 1;
    while (!*c->stop) {
        annal_body_begin_plain(b);
        annal_body_str(b, "type", "group_fetch", 11);
        annal_body_int(b, "msg_id", id++);
        annal_body_str(b, "group", c->group, strlen(c->group));
        annal_body_str(b, "consumer", name, strlen(name));
        annal_body_int(b, "max_count", o->fetch);
        annal_body_int(b, "wait_ms", W9_WAIT_MS);
        zmq_msg_t raw;
        if (!s_round_trip(sock, b, o->enc, &raw)) {
            zmq_msg_close(&raw);
            c->errors++;
            break;
        }
        size_t nstamps = s_stamps(zmq_msg_data(&raw), zmq_msg_size(&raw), o->enc, stamps, cap);
        annal_msg_t *m = annal_msg_decode(zmq_msg_data(&raw), zmq_msg_size(&raw));
        zmq_msg_close(&raw);
        size_t n = m ? annal_msg_len(m, "events") : 0;
        const char *type = m ? annal_msg_str(m, "type") : NULL;
        if (!type || strcmp(type, "group_events") != 0) {
            c->errors++;
            annal_msg_destroy(&m);
            continue;
        }
        char *at = seqs;
        *at++ = '[';
        for (size_t i = 0; i < n && i < cap; i++) {
            annal_msg_t *e = annal_msg_item(m, "events", i);
            int64_t seq = 0;
            if (e)
                annal_msg_int(e, "sequence_number", &seq);
            at += sprintf(at, "%s%" PRId64, i ? "," : "", seq);
        }
        *at++ = ']';
        annal_msg_destroy(&m);
        if (n == 0)
            continue;
        annal_blob_t blob = {0};
        char why[64];
        annal_value_from_json_text(seqs, (size_t) (at - seqs), &blob, why, sizeof why);
        annal_body_begin_plain(b);
        annal_body_str(b, "type", "group_ack", 9);
        annal_body_int(b, "msg_id", id++);
        annal_body_str(b, "group", c->group, strlen(c->group));
        annal_body_str(b, "consumer", name, strlen(name));
        annal_body_value(b, "sequences", blob.data, blob.size);
        double t0 = s_now();
        bool answered = s_round_trip(sock, b, o->enc, &raw);
        annal_blob_free(&blob);
        m = answered ? annal_msg_decode(zmq_msg_data(&raw), zmq_msg_size(&raw)) : NULL;
        zmq_msg_close(&raw);
        int64_t acked = 0;
        if (!m || !annal_msg_int(m, "acked", &acked))
            c->errors++;
        annal_msg_destroy(&m);
        if (!answered)
            break;
        s_lat(&c->ack, (s_now() - t0) * 1000);
        atomic_fetch_add(&c->acked, (unsigned long long) acked);
        int64_t now = s_wall_ns();
        for (size_t i = 0; i < nstamps; i++)
            s_lat(&c->e2e, (double) (now - stamps[i]) / 1e6);
    }
    free(stamps);
    free(seqs);
    annal_body_destroy(&b);
    zmq_close(sock);
    return NULL;
}

typedef struct {
    void *ctx;
    const char *endpoint;
    const char *group;
    volatile int *stop;
    double start;            /* when the load started */
    int64_t lag[W9_SAMPLES]; /* one per W9_SAMPLE_MS, -1 when info failed */
    double at[W9_SAMPLES];   /* when each was taken, s after start */
    size_t n;
} sampler_t;

/* The group's lag now, or -1. */
static int64_t s_lag(void *sock, annal_body_t *b, const char *group, int64_t id)
{
    annal_body_begin_plain(b);
    annal_body_str(b, "type", "group_info", 10);
    annal_body_int(b, "msg_id", id);
    annal_body_str(b, "group", group, strlen(group));
    annal_msg_t *m = s_call(sock, b, ANNAL_ENC_MSGPACK);
    int64_t lag = -1;
    if (!m || !annal_msg_int(m, "lag", &lag))
        lag = -1;
    annal_msg_destroy(&m);
    return lag;
}

static void *s_sampler(void *arg)
{
    sampler_t *s = arg;
    void *sock = s_socket(s->ctx, s->endpoint);
    annal_body_t *b = annal_body_new();
    double next = s_now();
    while (!*s->stop && s->n < W9_SAMPLES) {
        s->at[s->n] = s_now() - s->start;
        s->lag[s->n] = s_lag(sock, b, s->group, (int64_t) s->n + 1);
        s->n++;
        next += W9_SAMPLE_MS / 1000.0;
        double wait = next - s_now();
        if (wait > 0)
            usleep((useconds_t) (wait * 1e6));
    }
    annal_body_destroy(&b);
    zmq_close(sock);
    return NULL;
}

static int s_w9(const opts_t *o, void *ctx)
{
    target_t t;
    if (s_start(o, &t, NULL))
        return 1;
    char group[64];
    snprintf(group, sizeof group, "bench-w9-%d", (int) getpid());
    void *sock = s_socket(ctx, t.commands);
    annal_body_t *b = annal_body_new();
    annal_body_begin_plain(b);
    annal_body_str(b, "type", "group_create", 12);
    annal_body_int(b, "msg_id", 1);
    annal_body_str(b, "group", group, strlen(group));
    annal_body_str(b, "prefix", "bench-", 6);
    annal_body_str(b, "from_sequence", "end", 3);
    annal_msg_t *m = s_call(sock, b, ANNAL_ENC_MSGPACK);
    const char *type = m ? annal_msg_str(m, "type") : NULL;
    if (!type || strcmp(type, "group_created") != 0) {
        fprintf(stderr, "annal-bench: W9: group_create failed: %s\n",
                m ? annal_msg_json(m, NULL) : "no answer");
        annal_msg_destroy(&m);
        annal_body_destroy(&b);
        zmq_close(sock);
        s_stop(&t);
        return 1;
    }
    annal_msg_destroy(&m);
    volatile int stop = 0, sampling = 0;
    consumer_t *cs = calloc((size_t) o->consumers, sizeof *cs);
    pthread_t *th = calloc((size_t) o->consumers, sizeof *th);
    for (int i = 0; i < o->consumers; i++) {
        cs[i] = (consumer_t){ctx, t.brokers[i % t.nbrokers], o, group, i, &stop, 0, {0}, {0}, 0};
        atomic_init(&cs[i].acked, 0);
        pthread_create(&th[i], NULL, s_consumer, &cs[i]);
    }
    static sampler_t sampler;
    memset(&sampler, 0, sizeof sampler);
    sampler.ctx = ctx;
    sampler.endpoint = t.commands;
    sampler.group = group;
    sampler.stop = &sampling;
    stats_t st = {0};
    double start = sampler.start = s_now();
    pthread_t sampler_th;
    pthread_create(&sampler_th, NULL, s_sampler, &sampler);
    double secs = s_appenders(o, &t, ctx, o->clients, o->depth, 1, &st);
    uint64_t acked_in_load = 0;
    for (int i = 0; i < o->consumers; i++)
        acked_in_load += atomic_load(&cs[i].acked);
    /* the load is over: how long the group takes to be 0 behind */
    int64_t lag = -1;
    double drained = -1;
    for (int64_t id = 2; s_now() - start < secs + W9_DRAIN_S; id++) {
        lag = s_lag(sock, b, group, id);
        if (lag == 0) {
            drained = s_now() - start - secs;
            break;
        }
        usleep(20000);
    }
    stop = sampling = 1;
    stats_t acks = {0}, e2e = {0};
    uint64_t errors = st.errors;
    for (int i = 0; i < o->consumers; i++) {
        pthread_join(th[i], NULL);
        s_merge(&acks, &cs[i].ack);
        s_merge(&e2e, &cs[i].e2e);
        errors += cs[i].errors;
        free(cs[i].ack.lat);
        free(cs[i].e2e.lat);
    }
    pthread_join(sampler_th, NULL);
    size_t load_samples = 0; /* samples taken while the load ran */
    while (load_samples < sampler.n && sampler.at[load_samples] <= secs)
        load_samples++;
    int64_t lag_max = 0, lag_end = load_samples ? sampler.lag[load_samples - 1] : -1;
    for (size_t i = 0; i < load_samples; i++)
        if (sampler.lag[i] > lag_max)
            lag_max = sampler.lag[i];
    qsort(e2e.lat, e2e.nlat, sizeof(float), s_cmp);
    /* the lag once a second while the load ran, for how it moves */
    char series[2048] = "";
    size_t at = 0;
    for (size_t i = 0; i < load_samples && at < sizeof series - 32; i += 1000 / W9_SAMPLE_MS)
        at += (size_t) snprintf(series + at, sizeof series - at, "%s%" PRId64, i ? ", " : "",
                                sampler.lag[i]);
    char label[64], extra[2600];
    snprintf(label, sizeof label, "%d consumers during W1", o->consumers);
    snprintf(extra, sizeof extra,
             o->json ? ", \"consumers\": %d, \"appended_per_s\": %.0f, \"lag_max\": %" PRId64
                       ", \"lag_at_end\": %" PRId64 ", \"drain_s\": %.2f, \"e2e_p50_ms\": %.1f, "
                       "\"e2e_p99_ms\": %.1f, \"lag_per_s\": [%s]"
                     : "(%d consumers) appended %.0f/s lag max %" PRId64 " at end %" PRId64
                       " drained in %.2f s; append to ack p50 %.1f p99 %.1f ms; lag per s: %s",
             o->consumers, (double) st.ok / secs, lag_max, lag_end, drained, s_pct(&e2e, 0.5),
             s_pct(&e2e, 0.99), series);
    result_t r = {"W9",  label,  o->clients, o->depth, (double) acked_in_load / secs,
                  &acks, errors, extra};
    s_report(o, &t, &r);
    /* leave a running annald as it was */
    annal_body_begin_plain(b);
    annal_body_str(b, "type", "group_delete", 12);
    annal_body_int(b, "msg_id", 1);
    annal_body_str(b, "group", group, strlen(group));
    m = s_call(sock, b, ANNAL_ENC_MSGPACK);
    annal_msg_destroy(&m);
    free(st.lat);
    free(acks.lat);
    free(e2e.lat);
    free(cs);
    free(th);
    annal_body_destroy(&b);
    zmq_close(sock);
    s_stop(&t);
    return lag != 0;
}

/* W8: replay of a 10,000-event aggregate, without and with a snapshot. */
static int s_w8(const opts_t *o, void *ctx)
{
    target_t t;
    if (s_start(o, &t, NULL))
        return 1;
    void *sock = s_socket(ctx, t.commands);
    s_preload(o, sock, "replayed", 10000);
    annal_body_t *b = annal_body_new();
    double rate[2];
    stats_t st[2] = {{0}, {0}};
    int64_t id = 1;
    for (int with = 0; with < 2; with++) {
        if (with) {
            annal_body_begin_plain(b);
            annal_body_str(b, "type", "create_snapshot", 15);
            annal_body_int(b, "msg_id", id++);
            annal_body_str(b, "aggregate_id", "replayed", 8);
            annal_msg_t *m = s_call(sock, b, o->enc);
            annal_msg_destroy(&m);
        }
        double start = s_now();
        int n = 0;
        while (s_now() - start < o->duration / 2) {
            double t0 = s_now();
            annal_body_begin_plain(b);
            annal_body_str(b, "type", "replay", 6);
            annal_body_int(b, "msg_id", id++);
            annal_body_str(b, "aggregate_id", "replayed", 8);
            annal_body_bool(b, "use_snapshot", with);
            annal_msg_t *m = s_call(sock, b, o->enc);
            if (!m)
                st[with].errors++;
            annal_msg_destroy(&m);
            s_lat(&st[with], (s_now() - t0) * 1000);
            n++;
        }
        rate[with] = n / (s_now() - start);
    }
    for (int with = 0; with < 2; with++) {
        char extra[128];
        snprintf(extra, sizeof extra,
                 o->json ? ", \"replays_per_s\": %.1f, \"speedup\": %.1f"
                         : "replays %.1f/s speedup %.1fx",
                 rate[with], rate[1] / rate[0]);
        result_t r = {"W8",
                      with ? "replay from a snapshot" : "replay of 10000 events",
                      1,
                      1,
                      rate[with] * (with ? 1 : 10000),
                      &st[with],
                      st[with].errors,
                      extra};
        s_report(o, &t, &r);
        free(st[with].lat);
    }
    annal_body_destroy(&b);
    zmq_close(sock);
    s_stop(&t);
    return 0;
}

/* --- references: what the machine allows ------------------------------------------ */

/* DISK: 300-byte overwrites of a zero-filled file, each followed by
   fdatasync, as the journal does: the durable-commit ceiling. */
static int s_disk(const opts_t *o)
{
    const char *tmp = getenv("TMPDIR");
    char path[4200];
    snprintf(path, sizeof path, "%s/annal-bench-disk-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("annal-bench: disk probe");
        return 1;
    }
    unlink(path);
    static uint8_t block[1 << 20];
    for (int i = 0; i < 4; i++)
        if (pwrite(fd, block, sizeof block, (off_t) i << 20) != (ssize_t) sizeof block)
            return close(fd), 1;
    fsync(fd);
    memset(block, 'x', 300);
    stats_t st = {0};
    double start = s_now(), end = start + o->duration;
    off_t at = 0;
    while (s_now() < end) {
        double t0 = s_now();
        if (pwrite(fd, block, 300, at) != 300 || fdatasync(fd)) {
            st.errors++;
            break;
        }
        s_lat(&st, (s_now() - t0) * 1000);
        st.ok++;
        at = (at + 300) % (4 << 20);
    }
    double elapsed = s_now() - start;
    close(fd);
    target_t t = {0};
    result_t r = {"DISK", "300-byte write + fdatasync", 1, 1, st.ok / elapsed, &st, st.errors, ""};
    s_report(o, &t, &r);
    free(st.lat);
    return st.errors ? 1 : 0;
}

/* ZMQ: C clients x D pipelined requests of the append's size against a
   ROUTER that echoes them from one thread: the messaging ceiling. */
typedef struct {
    void *router;
    volatile int stop;
} echo_t;

static void *s_echo(void *arg)
{
    echo_t *e = arg;
    zmq_pollitem_t item = {e->router, 0, ZMQ_POLLIN, 0};
    while (!e->stop) {
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        for (int n = 0; n < 1024; n++) {
            zmq_msg_t id, body;
            zmq_msg_init(&id);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&id, e->router, ZMQ_DONTWAIT) < 0
                || zmq_msg_recv(&body, e->router, 0) < 0) {
                zmq_msg_close(&id);
                zmq_msg_close(&body);
                break;
            }
            zmq_msg_send(&id, e->router, ZMQ_SNDMORE);
            zmq_msg_send(&body, e->router, 0);
        }
    }
    zmq_close(e->router);
    return NULL;
}

static int s_zmq(const opts_t *o, void *ctx)
{
    target_t t = {0};
    echo_t e = {zmq_socket(ctx, ZMQ_ROUTER), 0};
    size_t len = sizeof t.commands;
    int zero = 0;
    zmq_setsockopt(e.router, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(e.router, "tcp://127.0.0.1:*")
        || zmq_getsockopt(e.router, ZMQ_LAST_ENDPOINT, t.commands, &len)) {
        zmq_close(e.router);
        return 1;
    }
    t.echo = true;
    t.nbrokers = 1;
    snprintf(t.brokers[0], sizeof t.brokers[0], "%s", t.commands);
    pthread_t th;
    pthread_create(&th, NULL, s_echo, &e);
    stats_t st = {0};
    double elapsed = s_appenders(o, &t, ctx, o->clients, o->depth, 1, &st);
    char label[64];
    snprintf(label, sizeof label, "echo, %d clients x %d in flight", o->clients, o->depth);
    result_t r = {"ZMQ", label, o->clients, o->depth, st.ok / elapsed, &st, st.errors, ""};
    s_report(o, &t, &r);
    e.stop = 1;
    pthread_join(th, NULL);
    free(st.lat);
    return 0;
}

static void s_usage(FILE *out)
{
    fprintf(
        out,
        "usage: annal-bench W1..W9|all [--encoding msgpack|json] [--clients C] [--depth D]\n"
        "       [--payload BYTES] [--duration S] [--connect ENDPOINT[,...]] [--events ENDPOINT]\n"
        "       [--writers K] [--subscribers S] [--batch N] [--consumers N] [--fetch N] [--json]\n"
        "  W1 appends from C clients x D in flight   W2 one client, one in flight (latency)\n"
        "  W3 batch appends of 10, 100, 1000          W4 K writers on one aggregate, retrying\n"
        "  W5 read_all of 1,000,000 events            W6 read of a 10,000-event aggregate\n"
        "  W7 S subscribers during W1                 W8 replay with and without a snapshot\n"
        "  W9 N consumers of a group during W1 (4; --fetch events a fetch, 500): events/s\n"
        "     acked, ack round trip, lag (max, at the end, per second), time to drain\n"
        "  DISK fdatasyncs/s of 300-byte writes      ZMQ pipelined echo requests/s (C x D)\n"
        "Without --connect each workload starts its own annald on a temporary store.\n"
        "--connect A,B: brokers on one store; client i uses broker i mod 2 (W2: a client\n"
        "on each; W5: a reader of the whole log on each, after the preload through A).\n");
}

int main(int argc, char **argv)
{
    opts_t o = {.enc = ANNAL_ENC_MSGPACK,
                .clients = 64,
                .depth = 16,
                .payload = 256,
                .duration = 5,
                .writers = 8,
                .subscribers = 4,
                .consumers = 4,
                .fetch = 500};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(o.self_dir, sizeof o.self_dir, "%s", dirname(self));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0)
            o.json = true;
        else if (strcmp(a, "--help") == 0) {
            s_usage(stdout);
            return 0;
        }
        else if (v && strcmp(a, "--encoding") == 0
                 && (strcmp(v, "json") == 0 || strcmp(v, "msgpack") == 0)) {
            o.enc = strcmp(v, "json") == 0 ? ANNAL_ENC_JSON : ANNAL_ENC_MSGPACK;
            i++;
        }
        else if (v && strcmp(a, "--clients") == 0 && (o.clients = atoi(v)) > 0)
            i++;
        else if (v && strcmp(a, "--depth") == 0 && (o.depth = atoi(v)) > 0)
            i++;
        else if (v && strcmp(a, "--payload") == 0 && (o.payload = atoi(v)) >= 0
                 && o.payload < (1 << 20))
            i++;
        else if (v && strcmp(a, "--duration") == 0 && (o.duration = atof(v)) > 0)
            i++;
        else if (v && strcmp(a, "--writers") == 0 && (o.writers = atoi(v)) > 0)
            i++;
        else if (v && strcmp(a, "--subscribers") == 0 && (o.subscribers = atoi(v)) > 0)
            i++;
        else if (v && strcmp(a, "--consumers") == 0 && (o.consumers = atoi(v)) > 0)
            i++;
        else if (v && strcmp(a, "--fetch") == 0 && (o.fetch = atoi(v)) > 0 && o.fetch <= 10000)
            i++;
        else if (v && strcmp(a, "--batch") == 0 && (o.batch = atoi(v)) > 0)
            i++;
        else if (v && strcmp(a, "--connect") == 0) {
            o.connect = v;
            i++;
        }
        else if (v && strcmp(a, "--events") == 0) {
            o.events = v;
            i++;
        }
        else if (!o.workload && a[0] != '-')
            o.workload = a;
        else {
            fprintf(stderr, "annal-bench: bad argument '%s'\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    if (!o.workload) {
        s_usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    void *ctx = zmq_ctx_new();
    int io = 1;
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, io);
    bool all = strcmp(o.workload, "all") == 0;
    int rc = 0, ran = 0;
    if (all || strcmp(o.workload, "W1") == 0)
        ran++, rc |= s_w1(&o, ctx, o.clients, o.depth, "W1");
    if (all || strcmp(o.workload, "W2") == 0)
        ran++, rc |= s_w1(&o, ctx, 1, 1, "W2");
    if (all || strcmp(o.workload, "W3") == 0)
        ran++, rc |= s_w3(&o, ctx);
    if (all || strcmp(o.workload, "W4") == 0)
        ran++, rc |= s_w4(&o, ctx);
    if (all || strcmp(o.workload, "W5") == 0)
        ran++, rc |= s_reads(&o, ctx, true);
    if (all || strcmp(o.workload, "W6") == 0)
        ran++, rc |= s_reads(&o, ctx, false);
    if (all || strcmp(o.workload, "W7") == 0)
        ran++, rc |= s_w7(&o, ctx);
    if (all || strcmp(o.workload, "W8") == 0)
        ran++, rc |= s_w8(&o, ctx);
    if (strcmp(o.workload, "W9") == 0)
        ran++, rc |= s_w9(&o, ctx);
    if (strcmp(o.workload, "DISK") == 0)
        ran++, rc |= s_disk(&o);
    if (strcmp(o.workload, "ZMQ") == 0)
        ran++, rc |= s_zmq(&o, ctx);
    zmq_ctx_term(ctx);
    if (!ran) {
        fprintf(stderr, "annal-bench: unknown workload '%s'\n", o.workload);
        return 2;
    }
    return rc;
}
