/*  worker_pool.c: one worker of a pool that shares a consumer group.

    Run it as several processes with the same --group and each its own
    --consumer: annald hands each event to one of them at a time, an
    aggregate's events in version order, and hands the events of a worker
    that dies (kill -9) to the others once their leases end. The "work" is
    a sleep of --work-ms; an event of type Poison can never succeed and is
    parked with a reason.

    Each worker writes what it did to --log, one line per event with one
    write(2) on an O_APPEND file, so a kill -9 loses no line that was
    written (--fsync: each line flushed to disk too, to survive the machine):
      handled SEQUENCE AGGREGATE VERSION DELIVERY CONSUMER NANOSECONDS
      acked SEQUENCE          (annald confirmed the ack)

    usage: worker_pool --group G --consumer C --log FILE [--commands EP]
                       [--prefix P] [--ack-timeout MS] [--work-ms N] [--max N] [--fsync] */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <annal/annal.h>

typedef struct {
    const char *consumer; /* this worker's name */
    int log;              /* the log's file descriptor */
    bool fsync;           /* flush each line to disk */
    int work_ms;          /* per event */
} pool_t;

static annal_worker_t *s_worker;

static void s_on_signal(int sig)
{
    (void) sig;
    if (s_worker)
        annal_worker_stop(s_worker);
}

/* Appends one line to the log. */
static void s_log(const pool_t *p, const char *line, size_t len)
{
    if (write(p->log, line, len) != (ssize_t) len)
        perror("worker_pool: log");
    if (p->fsync)
        fsync(p->log);
}

static annal_worker_verdict_t s_handle(const annal_client_group_event_t *ev, char *reason,
                                       size_t size, void *arg)
{
    pool_t *p = arg;
    const annal_record_t *r = &ev->record;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[512];
    int n = snprintf(line, sizeof line, "handled %" PRIu64 " %s %" PRIu64 " %u %s %lld\n",
                     r->sequence_number, r->aggregate_id, r->version, ev->delivery, p->consumer,
                     (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
    s_log(p, line, n > 0 && (size_t) n < sizeof line ? (size_t) n : 0);
    if (strcmp(r->event_type, "Poison") == 0) {
        snprintf(reason, size, "cannot process a Poison event");
        return ANNAL_WORKER_PERMANENT;
    }
    if (p->work_ms)
        usleep((useconds_t) p->work_ms * 1000);
    return ANNAL_WORKER_OK;
}

static void s_acked(const uint64_t *seqs, size_t n, void *arg)
{
    pool_t *p = arg;
    for (size_t i = 0; i < n; i++) {
        char line[64];
        int len = snprintf(line, sizeof line, "acked %" PRIu64 "\n", seqs[i]);
        s_log(p, line, (size_t) len);
    }
}

static int s_usage(void)
{
    fprintf(stderr, "usage: worker_pool --group G --consumer C --log FILE [--commands EP]\n"
                    "                   [--prefix P] [--ack-timeout MS] [--work-ms N] [--max N]"
                    " [--fsync]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *commands = getenv("ANNAL_COMMANDS"), *group = NULL, *log = NULL;
    annal_client_group_settings_t settings = {0};
    pool_t pool = {0};
    size_t max = 8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--fsync") == 0) {
            pool.fsync = true;
            continue;
        }
        if (!v)
            return s_usage();
        i++;
        if (strcmp(a, "--commands") == 0)
            commands = v;
        else if (strcmp(a, "--group") == 0)
            group = v;
        else if (strcmp(a, "--consumer") == 0)
            pool.consumer = v;
        else if (strcmp(a, "--log") == 0)
            log = v;
        else if (strcmp(a, "--prefix") == 0)
            settings.prefix = v;
        else if (strcmp(a, "--ack-timeout") == 0)
            settings.ack_timeout_ms = (uint32_t) strtoul(v, NULL, 10);
        else if (strcmp(a, "--work-ms") == 0)
            pool.work_ms = atoi(v);
        else if (strcmp(a, "--max") == 0)
            max = strtoul(v, NULL, 10);
        else
            return s_usage();
    }
    if (!group || !pool.consumer || !log)
        return s_usage();
    commands = commands && *commands ? commands : "tcp://127.0.0.1:5555";
    pool.log = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (pool.log < 0) {
        perror(log);
        return 1;
    }
    /* every worker creates the group at its start: the same settings, the
       same group */
    annal_client_t *c = annal_client_new(commands, 5000);
    annal_result_t res = {.text = "bad endpoint"};
    annal_status_t st =
        c ? annal_client_group_create(c, group, &settings, NULL, &res) : ANNAL_INVALID;
    annal_client_destroy(&c);
    if (st) {
        fprintf(stderr, "worker_pool: cannot create group %s: %s\n", group, res.text);
        close(pool.log);
        return 1;
    }
    annal_worker_config_t config = {.commands = commands,
                                    .group = group,
                                    .consumer = pool.consumer,
                                    .max_count = max,
                                    .on_acked = s_acked};
    s_worker = annal_worker_new(&config, s_handle, &pool);
    if (!s_worker) {
        fprintf(stderr, "worker_pool: bad settings\n");
        close(pool.log);
        return 2;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    st = annal_worker_run(s_worker, 0, &res);
    annal_worker_stats_t stats;
    annal_worker_stats(s_worker, &stats);
    fprintf(stderr,
            "worker_pool %s: handled %" PRIu64 ", acked %" PRIu64 ", parked %" PRIu64
            ", given back %" PRIu64 ", reconnects %" PRIu64 "%s%s\n",
            pool.consumer, stats.handled, stats.acked, stats.parked, stats.given_back,
            stats.reconnects, st ? ": " : "", st ? res.text : "");
    annal_worker_destroy(&s_worker);
    close(pool.log);
    return st ? 1 : 0;
}
