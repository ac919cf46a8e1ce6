/*  annal: the command-line client of annal, built on libannal.
    Output is JSON lines (one object per line) for jq; errors go to stderr.
    Exit status: 0 done, 1 failed, 2 usage, 3 concurrency conflict,
    4 not found, 5 annald unreachable or too slow. */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "annal_codec.h"
#include <annal/annal.h>

#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define EXIT_CONFLICT    3
#define EXIT_NOT_FOUND   4
#define EXIT_UNREACHABLE 5
#define IMPORT_BATCH     500
#define IMPORT_BYTES     (256 * 1024)
#define PARKED_PAGE      1000 /* parked events asked for at a time */
#define PARK_EXIT        100  /* consume --exec: the command's exit status that parks */

extern char **environ;

/* Options of one invocation. */
typedef struct {
    const char *commands, *events; /* endpoints */
    int timeout_ms;                /* per request */
    const char *expect, *metadata, *event_id, *prefix, *types, *state, *at;
    const char *from, *max, *version;
    const char *curve_key, *curve_server; /* CURVE certificate files */
    annal_curve_t curve;                  /* their keys, when given */
    bool backward, use_snapshot, help;
    bool hard;                       /* delete */
    const char *max_count, *max_age; /* retention */
    /* consumer groups */
    const char *consumer, *ordering, *ack_timeout, *max_deliveries, *wait, *count;
    const char *exec, *park_exit, *action, *reason;
    const char **type_list; /* --type, once per type */
    size_t ntypes;
    const char **args; /* positional arguments (argc slots) */
    int nargs;
} opts_t;

typedef enum {
    ARGS_EXACT,    /* nargs positional arguments */
    ARGS_OPTIONAL, /* nargs or none */
    ARGS_MORE      /* nargs or more */
} arity_t;

typedef enum {
    RUN_CLIENT, /* run(client, opts): talks to annald's command socket */
    RUN_ALONE   /* run(NULL, opts): connects by itself, or not at all */
} run_kind_t;

static int s_append(annal_client_t *c, opts_t *o);
static int s_read(annal_client_t *c, opts_t *o);
static int s_read_all(annal_client_t *c, opts_t *o);
static int s_tail(annal_client_t *c, opts_t *o);
static int s_snapshot(annal_client_t *c, opts_t *o);
static int s_get_snapshot(annal_client_t *c, opts_t *o);
static int s_replay(annal_client_t *c, opts_t *o);
static int s_state(annal_client_t *c, opts_t *o);
static int s_status(annal_client_t *c, opts_t *o);
static int s_delete(annal_client_t *c, opts_t *o);
static int s_retention(annal_client_t *c, opts_t *o);
static int s_export(annal_client_t *c, opts_t *o);
static int s_keygen(annal_client_t *c, opts_t *o);
static int s_import(annal_client_t *c, opts_t *o);
static int s_group_create(annal_client_t *c, opts_t *o);
static int s_group_info(annal_client_t *c, opts_t *o);
static int s_group_list(annal_client_t *c, opts_t *o);
static int s_group_delete(annal_client_t *c, opts_t *o);
static int s_group_parked(annal_client_t *c, opts_t *o);
static int s_group_replay_parked(annal_client_t *c, opts_t *o);
static int s_group_fetch(annal_client_t *c, opts_t *o);
static int s_group_ack(annal_client_t *c, opts_t *o);
static int s_group_nack(annal_client_t *c, opts_t *o);
static int s_group_consume(annal_client_t *c, opts_t *o);

/* One row per command: the CLI's table, dispatched by name ("group create":
   the word group and its subcommand). */
static const struct {
    const char *name;  /* the command */
    const char *usage; /* its synopsis and help */
    int nargs;         /* positional arguments it takes */
    arity_t arity;     /* exactly nargs, or also none, or also more */
    run_kind_t kind;   /* what run needs */
    int (*run)(annal_client_t *c, opts_t *o);
} s_commands[] = {
    {"append",
     "append AGGREGATE TYPE DATA [--expect V|any|exists] [--metadata JSON] [--event-id UUID]\n"
     "  appends one event (DATA is JSON); default --expect any",
     3, ARGS_EXACT, RUN_CLIENT, s_append},
    {"read",
     "read AGGREGATE [--from VERSION] [--max N] [--backward]\n"
     "  prints the aggregate's events, one JSON object per line",
     1, ARGS_EXACT, RUN_CLIENT, s_read},
    {"read-all",
     "read-all [--from SEQUENCE] [--prefix P] [--types T1,T2] [--max N]\n"
     "  prints the global log up to its current head",
     0, ARGS_EXACT, RUN_CLIENT, s_read_all},
    {"tail",
     "tail [--from SEQUENCE] [--prefix P]\n"
     "  a subscription: history from --from (default: only new events), then live;\n"
     "  one JSON event per line until interrupted",
     0, ARGS_EXACT, RUN_ALONE, s_tail},
    {"snapshot",
     "snapshot AGGREGATE [--version V] [--state JSON]\n"
     "  saves a snapshot (the default fold, or STATE as given)",
     1, ARGS_EXACT, RUN_CLIENT, s_snapshot},
    {"get-snapshot", "get-snapshot AGGREGATE\n  prints the latest snapshot", 1, ARGS_EXACT,
     RUN_CLIENT, s_get_snapshot},
    {"replay", "replay AGGREGATE [--use-snapshot] [--version V]\n  rebuilds the state", 1,
     ARGS_EXACT, RUN_CLIENT, s_replay},
    {"state", "state AGGREGATE --at TIMESTAMP\n  the state as of an RFC 3339 time", 1, ARGS_EXACT,
     RUN_CLIENT, s_state},
    {"status", "status\n  the store's counters", 0, ARGS_EXACT, RUN_CLIENT, s_status},
    {"delete",
     "delete AGGREGATE [--expect V|any|exists] [--hard] [--event-id UUID]\n"
     "  appends $deleted and removes every earlier event and snapshot of the aggregate;\n"
     "  --hard: it takes no more appends, ever (default --expect any); sent again with\n"
     "  the same --event-id, it is answered as the first time",
     1, ARGS_EXACT, RUN_CLIENT, s_delete},
    {"retention",
     "retention AGGREGATE [--max-count N|none] [--max-age AGE|none]\n"
     "  prints the aggregate's retention policy, or changes it: keep the last N events,\n"
     "  or those younger than AGE (90s, 15m, 12h, 30d, 2w; a number is seconds); a\n"
     "  limit not given stays as it is",
     1, ARGS_EXACT, RUN_CLIENT, s_retention},
    {"export",
     "export [--from SEQUENCE] [--prefix P]\n"
     "  writes events as JSON lines (progress on stderr when it is a terminal)",
     0, ARGS_EXACT, RUN_CLIENT, s_export},
    {"keygen",
     "keygen NAME\n"
     "  writes a new CURVE key pair: NAME (the public certificate, to hand out or to\n"
     "  put in annald's --curve-allow folder) and NAME_secret (keep it private)",
     1, ARGS_EXACT, RUN_ALONE, s_keygen},
    {"import",
     "import [FILE]\n"
     "  appends exported JSON lines (FILE or stdin) in batches, keeping event ids,\n"
     "  types, data, metadata and versions (sequence numbers too, into an empty\n"
     "  store, unless events were removed); deletions ($deleted) are done again;\n"
     "  running it again writes nothing twice",
     1, ARGS_OPTIONAL, RUN_CLIENT, s_import},
    {"group create",
     "group create NAME [--prefix P] [--type T]... [--from SEQUENCE|end]\n"
     "             [--ordering aggregate|none] [--ack-timeout MS] [--max-deliveries N]\n"
     "  creates a consumer group (again with the same settings: the same answer); by\n"
     "  default every event from sequence 1, one at a time per aggregate, 30000 ms\n"
     "  leases, parked after 5 deliveries",
     1, ARGS_EXACT, RUN_CLIENT, s_group_create},
    {"group info",
     "group info NAME\n"
     "  the group's settings and counters: acked_through, leased, parked, head_sequence,\n"
     "  and lag (how many sequences the group is behind the head)",
     1, ARGS_EXACT, RUN_CLIENT, s_group_info},
    {"group list", "group list\n  every group, one JSON object per line (the fields of group info)",
     0, ARGS_EXACT, RUN_CLIENT, s_group_list},
    {"group delete", "group delete NAME\n  deletes the group, its acks and its parked events", 1,
     ARGS_EXACT, RUN_CLIENT, s_group_delete},
    {"group parked",
     "group parked NAME [--from SEQUENCE] [--max N]\n"
     "  the parked events, one per line, with their delivery count and reason",
     1, ARGS_EXACT, RUN_CLIENT, s_group_parked},
    {"group replay-parked",
     "group replay-parked NAME [SEQUENCE...]\n"
     "  makes parked events ready again (all of them when none is named), delivery\n"
     "  count back to 0",
     1, ARGS_MORE, RUN_CLIENT, s_group_replay_parked},
    {"group fetch",
     "group fetch NAME --consumer C [--max N] [--wait MS]\n"
     "  leases up to N ready events (default 100) to consumer C and prints them, one per\n"
     "  line, with their delivery count; --wait: wait up to MS (at most 30000) when none\n"
     "  is ready. Ack or nack them before their lease ends",
     1, ARGS_EXACT, RUN_CLIENT, s_group_fetch},
    {"group ack", "group ack NAME SEQUENCE... --consumer C\n  acknowledges events leased to C", 2,
     ARGS_MORE, RUN_CLIENT, s_group_ack},
    {"group nack",
     "group nack NAME SEQUENCE... --consumer C [--action retry|park|skip] [--reason TEXT]\n"
     "  gives events leased to C back: retry (the default: ready again now, a delivery\n"
     "  used up), park (set aside with the reason) or skip (as acked)",
     2, ARGS_MORE, RUN_CLIENT, s_group_nack},
    {"group consume",
     "group consume NAME --consumer C [--max N] [--wait MS] [--count N]\n"
     "              [--exec CMD [--park-exit CODE]]\n"
     "  a worker: fetches events (N at a time, default 16; each fetch waits up to MS,\n"
     "  default 1000, for events) until interrupted (SIGINT, SIGTERM) or --count events.\n"
     "  Without --exec, prints each event as a JSON line and acks it once printed.\n"
     "  With --exec, runs sh -c CMD per event, the event's JSON on its stdin and\n"
     "  ANNAL_GROUP, ANNAL_SEQUENCE, ANNAL_AGGREGATE_ID, ANNAL_VERSION, ANNAL_EVENT_TYPE,\n"
     "  ANNAL_EVENT_ID, ANNAL_DELIVERY in its environment: exit status 0 acks the\n"
     "  event, CODE (default 100) parks it, anything else (or a signal) retries it.\n"
     "  A stop lets the event in hand finish and gives back the rest",
     1, ARGS_EXACT, RUN_CLIENT, s_group_consume},
};

/* The length of a usage's synopsis: its lines up to the first that
   describes (two spaces, then a word). */
static int s_synopsis(const char *usage)
{
    const char *line = usage;
    for (const char *nl; (nl = strchr(line, '\n')); line = nl + 1)
        if (nl[1] == ' ' && nl[2] == ' ' && nl[3] != ' ')
            return (int) (nl - usage);
    return (int) strlen(usage);
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: annal [--commands ENDPOINT] [--events ENDPOINT] [--timeout MS]\n"
                 "             [--curve-key NAME_secret --curve-server ANNALD_PUBLIC] COMMAND ...\n"
                 "endpoints default to $ANNAL_COMMANDS / $ANNAL_EVENTS, then\n"
                 "tcp://127.0.0.1:5555 and tcp://127.0.0.1:5556; --curve-key (this client's\n"
                 "secret certificate) and --curve-server (annald's public one) speak CURVE\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        const char *usage = s_commands[i].usage;
        bool group = strncmp(s_commands[i].name, "group ", 6) == 0;
        fprintf(out, "  %.*s\n", group ? s_synopsis(usage) : (int) strlen(usage), usage);
    }
    fprintf(out, "  (annal group SUBCOMMAND --help says more of each group subcommand)\n");
    fprintf(out, "exit status: 0 done, 1 failed, 2 usage, 3 concurrency conflict, 4 not found,\n"
                 "5 annald unreachable\n");
}

static int s_exit(const annal_result_t *res)
{
    fprintf(stderr, "annal: %s\n", res->text);
    switch (res->status) {
    case ANNAL_SUCCESS: return 0;
    case ANNAL_CONFLICT: return EXIT_CONFLICT;
    case ANNAL_TIMEOUT: return EXIT_UNREACHABLE;
    case ANNAL_INVALID: return EXIT_USAGE;
    default: return res->code == ANNAL_CODE_NOT_FOUND ? EXIT_NOT_FOUND : EXIT_FAILED;
    }
}

static bool s_number(const char *text, int64_t *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text || *end || n < 0)
        return false;
    *v = n;
    return true;
}

/* --- commands ------------------------------------------------------------------ */

/* --expect as append's and delete's expected version (default any);
   false when it is none of a version, any or exists. */
static bool s_expected(const opts_t *o, int64_t *expected)
{
    *expected = ANNAL_ANY;
    if (o->expect && strcmp(o->expect, "exists") == 0)
        *expected = ANNAL_EXISTS;
    else if (o->expect && strcmp(o->expect, "any") != 0 && !s_number(o->expect, expected)) {
        fprintf(stderr, "annal: --expect takes a version, any or exists\n");
        return false;
    }
    return true;
}

static int s_append(annal_client_t *c, opts_t *o)
{
    int64_t expected;
    if (!s_expected(o, &expected))
        return EXIT_USAGE;
    char id[37];
    if (!o->event_id)
        annal_uuid_new(id); /* chosen here, so the user can retry with it */
    annal_event_spec_t ev = {o->args[1], o->args[2], o->metadata, o->event_id ? o->event_id : id};
    annal_result_t res;
    if (annal_client_append(c, o->args[0], expected, &ev, 1, NULL, &res)) {
        if (res.status == ANNAL_TIMEOUT)
            fprintf(stderr,
                    "annal: the append may or may not have been written; retry it with "
                    "--event-id %s to be sure it is written once\n",
                    ev.event_id);
        return s_exit(&res);
    }
    printf("%s\n", annal_client_last_reply(c));
    return 0;
}

/* Prints every record of a page; returns how many. */
static size_t s_print(const annal_page_t *page)
{
    for (size_t i = 0; i < page->count; i++)
        printf("%s\n", page->records[i].json);
    return page->count;
}

static int s_read(annal_client_t *c, opts_t *o)
{
    int64_t from = 0, max = INT64_MAX;
    if ((o->from && !s_number(o->from, &from)) || (o->max && !s_number(o->max, &max))) {
        fprintf(stderr, "annal: --from and --max take numbers\n");
        return EXIT_USAGE;
    }
    for (;;) {
        annal_page_t *page = NULL;
        annal_result_t res;
        size_t want = max > 1000 ? 1000 : (size_t) max;
        if (annal_client_read(c, o->args[0], (uint64_t) from, want, o->backward, &page, &res))
            return s_exit(&res);
        max -= (int64_t) s_print(page);
        bool more = page->next && page->count && max > 0;
        from = (int64_t) page->next;
        annal_page_destroy(&page);
        if (!more)
            return 0;
    }
}

/* Pages through read_all to the head seen at the start; progress on a tty. */
static int s_scan(annal_client_t *c, opts_t *o, bool progress)
{
    int64_t from = 1, max = INT64_MAX;
    if ((o->from && !s_number(o->from, &from)) || (o->max && !s_number(o->max, &max))) {
        fprintf(stderr, "annal: --from and --max take numbers\n");
        return EXIT_USAGE;
    }
    const char *types[64];
    size_t ntypes = 0;
    char *list = o->types ? strdup(o->types) : NULL;
    for (char *save, *t = list ? strtok_r(list, ",", &save) : NULL; t && ntypes < 64;
         t = strtok_r(NULL, ",", &save))
        types[ntypes++] = t;
    progress = progress && isatty(2);
    uint64_t end = 0, printed = 0;
    int rc = 0;
    for (;;) {
        annal_page_t *page = NULL;
        annal_result_t res;
        size_t want = max > 1000 ? 1000 : (size_t) max;
        if (annal_client_read_all(c, (uint64_t) from, want, o->prefix, types, ntypes, &page,
                                  &res)) {
            rc = s_exit(&res);
            break;
        }
        if (!end)
            end = page->head_sequence;
        printed += s_print(page);
        max -= (int64_t) page->count;
        from = (int64_t) page->next;
        if (progress)
            fprintf(stderr, "\rexport: %" PRIu64 " events, sequence %" PRId64 " of %" PRIu64,
                    printed, from - 1, end);
        bool done = max <= 0 || (uint64_t) from > end
                    || (page->count == 0 && (uint64_t) from > page->head_sequence);
        annal_page_destroy(&page);
        if (done)
            break;
    }
    if (progress)
        fprintf(stderr, "\n");
    free(list);
    return rc;
}

static int s_read_all(annal_client_t *c, opts_t *o)
{
    return s_scan(c, o, false);
}

static int s_export(annal_client_t *c, opts_t *o)
{
    return s_scan(c, o, true);
}

static annal_subscription_t *s_tailing;

static annal_worker_t *s_consuming; /* group consume's worker, while it runs */

/* SIGINT, SIGTERM: tail and group consume stop cleanly. */
static void s_on_signal(int sig)
{
    (void) sig;
    if (s_tailing)
        annal_subscription_stop(s_tailing);
    if (s_consuming)
        annal_worker_stop(s_consuming);
}

/* SIGINT and SIGTERM stop what runs (s_on_signal); a write to stdout that
   they interrupt goes on (SA_RESTART: the event in hand is printed whole);
   a closed stdout is an error to report, not a reason to die. */
static void s_catch_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int s_print_event(const annal_record_t *r, void *arg)
{
    (void) arg;
    printf("%s\n", r->json);
    fflush(stdout);
    return ferror(stdout) ? -1 : 0;
}

static int s_tail(annal_client_t *c, opts_t *o)
{
    (void) c;
    int64_t from = ANNAL_FROM_NOW;
    if (o->from && !s_number(o->from, &from)) {
        fprintf(stderr, "annal: --from takes a sequence number\n");
        return EXIT_USAGE;
    }
    annal_subscription_config_t config = {.commands = o->commands,
                                          .events = o->events,
                                          .prefix = o->prefix,
                                          .from = (uint64_t) from,
                                          .timeout_ms = o->timeout_ms,
                                          .curve = o->curve_key ? &o->curve : NULL};
    s_tailing = annal_subscription_new(&config, s_print_event, NULL);
    if (!s_tailing) {
        fprintf(stderr, "annal: cannot subscribe to %s / %s\n", o->commands, o->events);
        return EXIT_USAGE;
    }
    s_catch_signals();
    annal_result_t res;
    annal_status_t st = annal_subscription_run(s_tailing, -1, &res);
    annal_subscription_destroy(&s_tailing);
    return st ? s_exit(&res) : 0;
}

/* Prints the reply of a command that succeeded, or says why it failed. */
static int s_reply(annal_client_t *c, annal_status_t st, const annal_result_t *res)
{
    if (st)
        return s_exit(res);
    printf("%s\n", annal_client_last_reply(c));
    return 0;
}

static int s_delete(annal_client_t *c, opts_t *o)
{
    int64_t expected;
    if (!s_expected(o, &expected))
        return EXIT_USAGE;
    annal_result_t res;
    return s_reply(
        c, annal_client_delete(c, o->args[0], expected, o->hard, o->event_id, NULL, NULL, &res),
        &res);
}

/* A retention limit as given: "none" (0), a count, or (age) a number of
   seconds with an optional unit s, m, h, d or w. */
static bool s_limit(const char *text, bool age, uint64_t *out)
{
    if (strcmp(text, "none") == 0) {
        *out = 0;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    uint64_t unit = 1;
    if (age && *end && !end[1]) {
        const char *units = "smhdw";
        static const uint64_t seconds[] = {1, 60, 3600, 86400, 604800};
        const char *u = strchr(units, *end);
        if (u) {
            unit = seconds[u - units];
            end++;
        }
    }
    if (errno || end == text || *end || *text == '-' || n == 0 || n > INT64_MAX / unit)
        return false;
    *out = (uint64_t) n * unit;
    return true;
}

static int s_retention(annal_client_t *c, opts_t *o)
{
    annal_result_t res;
    annal_retention_t policy;
    if (!o->max_count && !o->max_age)
        return s_reply(c, annal_client_get_retention(c, o->args[0], &policy, &res), &res);
    uint64_t count = 0, age = 0;
    if (o->max_count && !s_limit(o->max_count, false, &count)) {
        fprintf(stderr, "annal: --max-count takes a number >= 1, or none\n");
        return EXIT_USAGE;
    }
    if (o->max_age && !s_limit(o->max_age, true, &age)) {
        fprintf(stderr, "annal: --max-age takes an age (90s, 15m, 12h, 30d, 2w), or none\n");
        return EXIT_USAGE;
    }
    /* a limit not given stays as it is */
    if (annal_client_get_retention(c, o->args[0], &policy, &res))
        return s_exit(&res);
    if (o->max_count)
        policy.max_count = count;
    if (o->max_age)
        policy.max_age_s = age;
    return s_reply(c, annal_client_set_retention(c, o->args[0], &policy, &res), &res);
}

/* --version as a number, or -1 when not given; false when it is not one. */
static bool s_version(const opts_t *o, int64_t *version)
{
    *version = -1;
    if (o->version && !s_number(o->version, version)) {
        fprintf(stderr, "annal: --version takes a number\n");
        return false;
    }
    return true;
}

static int s_snapshot(annal_client_t *c, opts_t *o)
{
    int64_t version;
    if (!s_version(o, &version))
        return EXIT_USAGE;
    annal_result_t res;
    return s_reply(c, annal_client_snapshot(c, o->args[0], o->state, version, NULL, &res), &res);
}

static int s_get_snapshot(annal_client_t *c, opts_t *o)
{
    annal_result_t res;
    char *state = NULL;
    annal_status_t st = annal_client_get_snapshot(c, o->args[0], NULL, &state, &res);
    free(state);
    return s_reply(c, st, &res);
}

static int s_replay(annal_client_t *c, opts_t *o)
{
    int64_t version;
    if (!s_version(o, &version))
        return EXIT_USAGE;
    annal_result_t res;
    annal_replayed_t replayed = {0};
    annal_status_t st =
        annal_client_replay(c, o->args[0], o->use_snapshot, version, &replayed, &res);
    free(replayed.state);
    return s_reply(c, st, &res);
}

static int s_state(annal_client_t *c, opts_t *o)
{
    if (!o->at) {
        fprintf(stderr, "annal: state needs --at TIMESTAMP\n");
        return EXIT_USAGE;
    }
    annal_result_t res;
    char *state = NULL;
    annal_status_t st = annal_client_get_state(c, o->args[0], o->at, NULL, &state, &res);
    free(state);
    return s_reply(c, st, &res);
}

static int s_status(annal_client_t *c, opts_t *o)
{
    (void) o;
    annal_result_t res;
    return s_reply(c, annal_client_status(c, NULL, &res), &res);
}

/* One batch of the import: consecutive events of one aggregate. */
typedef struct {
    annal_msg_t *msgs[IMPORT_BATCH]; /* decoded lines */
    annal_event_spec_t specs[IMPORT_BATCH];
    size_t n, bytes;
    const char *aggregate;  /* owned by msgs[0] */
    uint64_t first_version; /* version of msgs[0] */
} batch_t;

static int s_flush(annal_client_t *c, batch_t *b, uint64_t *done)
{
    int rc = 0;
    if (b->n) {
        annal_result_t res;
        if (annal_client_append(c, b->aggregate, (int64_t) b->first_version - 1, b->specs, b->n,
                                NULL, &res)) {
            rc = s_exit(&res);
            if (res.status == ANNAL_INVALID)
                rc = EXIT_FAILED; /* bad data in the file, not bad usage */
        }
        else
            *done += b->n;
    }
    for (size_t i = 0; i < b->n; i++)
        annal_msg_destroy(&b->msgs[i]);
    b->n = b->bytes = 0;
    return rc;
}

/* Exports leave removed events out (docs/protocol.md, section 7), so an
   aggregate's versions in an export may not start at 1, and the import
   keeps them where it can: past a deletion (a $deleted event) or past the
   first events retention removed, the aggregate's events go on after what
   the target has of it, their versions moved down by as many. */

/* An exported $deleted event (docs/protocol.md, section 7) of agg at
   version: the deletion again, soft or hard as it was. The events it
   removed are not in the export, so the aggregate may be at a lower
   version here: the $deleted lands after what it has, and *shift (the
   versions the aggregate's later events move down by) grows by the
   difference. */
static int s_import_delete(annal_client_t *c, annal_msg_t *m, const char *agg, int64_t version,
                           int64_t *shift)
{
    const char *data = annal_msg_json(m, "event_data");
    bool hard = data && strstr(data, "\"hard\":true");
    annal_result_t res;
    uint64_t at = 0;
    if (annal_client_delete(c, agg, ANNAL_ANY, hard, annal_msg_str(m, "event_id"), &at, NULL, &res))
        return s_exit(&res);
    *shift = version - (int64_t) at;
    return 0;
}

static int s_import(annal_client_t *c, opts_t *o)
{
    FILE *in = o->nargs && strcmp(o->args[0], "-") ? fopen(o->args[0], "r") : stdin;
    if (!in) {
        fprintf(stderr, "annal: cannot open %s: %s\n", o->args[0], strerror(errno));
        return EXIT_FAILED;
    }
    struct stat st;
    off_t total = fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
    bool progress = isatty(2);
    static batch_t b;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t done = 0, lineno = 0;
    off_t read_bytes = 0;
    int rc = 0;
    /* per aggregate, the versions its events move down by after a
       deletion imported (s_import_delete): int64_t, allocated */
    zhashx_t *shifts = zhashx_new();
    if (!shifts) {
        if (in != stdin)
            fclose(in);
        fprintf(stderr, "annal: out of memory\n");
        return EXIT_FAILED;
    }
    zhashx_set_destructor(shifts, (zhashx_destructor_fn *) zstr_free);
    while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        read_bytes += len;
        if (len <= 1)
            continue;
        annal_msg_t *m = annal_msg_decode((const uint8_t *) line, (size_t) len);
        int64_t version = 0;
        annal_event_spec_t spec = {0};
        const char *agg = m ? annal_msg_str(m, "aggregate_id") : NULL;
        if (m) {
            spec.event_type = annal_msg_str(m, "event_type");
            spec.event_data = annal_msg_json(m, "event_data");
            spec.metadata = annal_msg_json(m, "metadata");
            spec.event_id = annal_msg_str(m, "event_id");
        }
        if (!agg || !spec.event_type || !spec.event_data || !annal_msg_int(m, "version", &version)
            || version < 1) {
            fprintf(stderr, "annal: line %" PRIu64 " is not an exported event\n", lineno);
            annal_msg_destroy(&m);
            rc = EXIT_FAILED;
            break;
        }
        int64_t *shift = zhashx_lookup(shifts, agg);
        if (strcmp(spec.event_type, "$deleted") == 0) {
            int64_t moved = 0;
            if (!(rc = s_flush(c, &b, &done))
                && !(rc = s_import_delete(c, m, agg, version, &moved))) {
                if (!shift && (shift = calloc(1, sizeof *shift)))
                    zhashx_insert(shifts, agg, shift);
                if (shift)
                    *shift = moved;
                else
                    rc = EXIT_FAILED;
                done++;
            }
            annal_msg_destroy(&m);
            continue;
        }
        if (!shift && version > 1 && !(b.n && strcmp(agg, b.aggregate) == 0)) {
            /* an aggregate whose first events were removed (retention): it
               goes on here after what the target has of it */
            annal_page_t *page = NULL;
            annal_result_t res;
            if ((rc = s_flush(c, &b, &done))
                || (annal_client_read(c, agg, 1, 1, false, &page, &res) && (rc = s_exit(&res)))
                || !(shift = calloc(1, sizeof *shift))) {
                annal_page_destroy(&page);
                annal_msg_destroy(&m);
                rc = rc ? rc : EXIT_FAILED;
                break;
            }
            if (page->version < (uint64_t) version - 1)
                *shift = version - 1 - (int64_t) page->version;
            annal_page_destroy(&page);
            zhashx_insert(shifts, agg, shift);
        }
        version -= shift ? *shift : 0;
        bool joins = b.n && strcmp(agg, b.aggregate) == 0
                     && (uint64_t) version == b.first_version + b.n && b.n < IMPORT_BATCH
                     && b.bytes + (size_t) len < IMPORT_BYTES;
        if (!joins && (rc = s_flush(c, &b, &done))) {
            annal_msg_destroy(&m);
            break;
        }
        if (b.n == 0) {
            b.aggregate = agg;
            b.first_version = (uint64_t) version;
        }
        b.msgs[b.n] = m;
        b.specs[b.n++] = spec;
        b.bytes += (size_t) len;
        if (progress && lineno % 1000 == 0)
            fprintf(stderr, "\rimport: %" PRIu64 " events%s%.0f%%", done, total ? ", " : "",
                    total ? 100.0 * (double) read_bytes / (double) total : 0.0);
    }
    if (rc == 0)
        rc = s_flush(c, &b, &done);
    else
        for (size_t i = 0; i < b.n; i++)
            annal_msg_destroy(&b.msgs[i]);
    if (progress)
        fprintf(stderr, "\rimport: %" PRIu64 " events\n", done);
    zhashx_destroy(&shifts);
    free(line);
    if (in != stdin)
        fclose(in);
    return rc;
}

/* --- consumer groups ---------------------------------------------------------------- */

/* The number in text (flag's value) when it is in lo..hi, else says so;
   *v is def when text is NULL. */
static bool s_ranged(const char *text, const char *flag, int64_t lo, int64_t hi, int64_t def,
                     int64_t *v)
{
    *v = def;
    if (!text)
        return true;
    if (s_number(text, v) && *v >= lo && *v <= hi)
        return true;
    fprintf(stderr, "annal: %s takes a number from %" PRId64 " to %" PRId64 "\n", flag, lo, hi);
    return false;
}

/* The index of text in the NULL-terminated words, or -1 (said on stderr). */
static int s_word(const char *text, const char *flag, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (strcmp(words[i], text) == 0)
            return i;
    fprintf(stderr, "annal: %s takes", flag);
    for (int i = 0; words[i]; i++)
        fprintf(stderr, "%s%s", i == 0 ? " " : words[i + 1] ? ", " : " or ", words[i]);
    fprintf(stderr, "\n");
    return -1;
}

/* The arguments from o->args[1] on as sequence numbers, into a new array
   (*seqs: the caller frees); false when one is not a sequence number. */
static bool s_seqs(const opts_t *o, uint64_t **seqs, size_t *n)
{
    *n = (size_t) (o->nargs > 1 ? o->nargs - 1 : 0);
    *seqs = calloc(*n ? *n : 1, sizeof **seqs);
    if (!*seqs) {
        fprintf(stderr, "annal: out of memory\n");
        return false;
    }
    for (size_t i = 0; i < *n; i++) {
        int64_t v;
        if (!s_number(o->args[i + 1], &v) || v < 1) {
            fprintf(stderr, "annal: '%s' is not a sequence number\n", o->args[i + 1]);
            free(*seqs);
            *seqs = NULL;
            return false;
        }
        (*seqs)[i] = (uint64_t) v;
    }
    return true;
}

static bool s_need_consumer(const opts_t *o)
{
    if (o->consumer)
        return true;
    fprintf(stderr, "annal: this group command needs --consumer NAME\n");
    return false;
}

static int s_group_create(annal_client_t *c, opts_t *o)
{
    static const char *const orderings[] = {"aggregate", "none", NULL};
    annal_client_group_settings_t s = {
        .prefix = o->prefix, .event_types = o->type_list, .ntypes = o->ntypes};
    int64_t from, ack_timeout, max_deliveries;
    int ordering = o->ordering ? s_word(o->ordering, "--ordering", orderings) : 0;
    bool end = o->from && strcmp(o->from, "end") == 0;
    if (!end && o->from && !s_number(o->from, &from)) {
        fprintf(stderr, "annal: --from takes a sequence number or end\n");
        return EXIT_USAGE;
    }
    if (ordering < 0 || !s_ranged(end ? NULL : o->from, "--from", 1, INT64_MAX, 0, &from)
        || !s_ranged(o->ack_timeout, "--ack-timeout", ANNAL_ACK_TIMEOUT_MIN, ANNAL_ACK_TIMEOUT_MAX,
                     0, &ack_timeout)
        || !s_ranged(o->max_deliveries, "--max-deliveries", 1, ANNAL_MAX_DELIVERIES_CEILING, 0,
                     &max_deliveries))
        return EXIT_USAGE;
    s.from_sequence = end ? ANNAL_FROM_END : (uint64_t) from;
    s.ordering = (annal_ordering_t) ordering;
    s.ack_timeout_ms = (uint32_t) ack_timeout;
    s.max_deliveries = (uint32_t) max_deliveries;
    annal_result_t res;
    return s_reply(c, annal_client_group_create(c, o->args[0], &s, NULL, &res), &res);
}

static int s_group_info(annal_client_t *c, opts_t *o)
{
    annal_client_group_list_t *info = NULL;
    annal_result_t res;
    if (annal_client_group_info(c, o->args[0], &info, &res))
        return s_exit(&res);
    printf("%s\n", info->groups[0].json);
    annal_client_group_list_destroy(&info);
    return 0;
}

static int s_group_list(annal_client_t *c, opts_t *o)
{
    (void) o;
    annal_client_group_list_t *list = NULL;
    annal_result_t res;
    if (annal_client_group_list(c, &list, &res))
        return s_exit(&res);
    for (size_t i = 0; i < list->count; i++)
        printf("%s\n", list->groups[i].json);
    annal_client_group_list_destroy(&list);
    return 0;
}

static int s_group_delete(annal_client_t *c, opts_t *o)
{
    annal_result_t res;
    return s_reply(c, annal_client_group_delete(c, o->args[0], &res), &res);
}

/* Prints the events of a group page, one per line. */
static void s_print_group_page(const annal_client_group_page_t *page)
{
    for (size_t i = 0; i < page->count; i++)
        printf("%s\n", page->events[i].record.json);
}

static int s_group_parked(annal_client_t *c, opts_t *o)
{
    int64_t from, max;
    if (!s_ranged(o->from, "--from", 1, INT64_MAX, 1, &from)
        || !s_ranged(o->max, "--max", 1, INT64_MAX, INT64_MAX, &max))
        return EXIT_USAGE;
    while (max > 0) {
        annal_client_group_page_t *page = NULL;
        annal_result_t res;
        size_t want = max > PARKED_PAGE ? PARKED_PAGE : (size_t) max;
        if (annal_client_group_parked(c, o->args[0], (uint64_t) from, want, &page, &res))
            return s_exit(&res);
        s_print_group_page(page);
        max -= (int64_t) page->count;
        from = (int64_t) page->next_sequence;
        bool more = page->count && page->next_sequence;
        annal_client_group_page_destroy(&page);
        if (!more)
            break;
    }
    return 0;
}

static int s_group_replay_parked(annal_client_t *c, opts_t *o)
{
    uint64_t *seqs;
    size_t n;
    if (!s_seqs(o, &seqs, &n))
        return EXIT_USAGE;
    annal_result_t res;
    annal_status_t st =
        annal_client_group_replay_parked(c, o->args[0], n ? seqs : NULL, n, NULL, &res);
    free(seqs);
    return s_reply(c, st, &res);
}

static int s_group_fetch(annal_client_t *c, opts_t *o)
{
    int64_t max, wait;
    if (!s_need_consumer(o) || !s_ranged(o->max, "--max", 1, INT64_MAX, 0, &max)
        || !s_ranged(o->wait, "--wait", 0, ANNAL_WAIT_MAX, 0, &wait))
        return EXIT_USAGE;
    annal_client_group_page_t *page = NULL;
    annal_result_t res;
    if (annal_client_group_fetch(c, o->args[0], o->consumer, (size_t) max, (int) wait, &page, &res))
        return s_exit(&res);
    s_print_group_page(page);
    annal_client_group_page_destroy(&page);
    return 0;
}

/* group ack and group nack: the sequences named, settled one way. */
static int s_settle(annal_client_t *c, opts_t *o, bool ack)
{
    static const char *const actions[] = {"retry", "park", "skip", NULL};
    int action = o->action && !ack ? s_word(o->action, "--action", actions) : 0;
    uint64_t *seqs;
    size_t n;
    if (!s_need_consumer(o) || action < 0 || !s_seqs(o, &seqs, &n))
        return EXIT_USAGE;
    annal_result_t res;
    annal_status_t st =
        ack ? annal_client_group_ack(c, o->args[0], o->consumer, seqs, n, NULL, &res)
            : annal_client_group_nack(c, o->args[0], o->consumer, seqs, n,
                                      (annal_nack_action_t) action, o->reason, NULL, &res);
    free(seqs);
    return s_reply(c, st, &res);
}

static int s_group_ack(annal_client_t *c, opts_t *o)
{
    return s_settle(c, o, true);
}

static int s_group_nack(annal_client_t *c, opts_t *o)
{
    return s_settle(c, o, false);
}

/* What a consume's handler needs. */
typedef struct {
    const char *group;  /* the group, for ANNAL_GROUP */
    const char *exec;   /* the command to run per event, or NULL: print */
    int park_exit;      /* its exit status that parks */
    bool output_failed; /* stdout could not be written: stop */
} consume_t;

/* Prints an event; acked once it is out of the process (flushed). */
static annal_worker_verdict_t s_print_one(const annal_client_group_event_t *ev, char *reason,
                                          size_t size, void *arg)
{
    consume_t *k = arg;
    printf("%s\n", ev->record.json);
    if (fflush(stdout) == 0 && !ferror(stdout))
        return ANNAL_WORKER_OK;
    k->output_failed = true;
    annal_worker_stop(s_consuming);
    snprintf(reason, size, "the consumer could not write it out");
    return ANNAL_WORKER_TRANSIENT;
}

/* name=value in a new string (free it), or NULL out of memory. */
static char *s_env(const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *entry = malloc(n + v + 2);
    if (entry) {
        memcpy(entry, name, n);
        entry[n] = '=';
        memcpy(entry + n + 1, value, v + 1);
    }
    return entry;
}

/* n as decimal text in buf. */
static const char *s_u64_text(char buf[24], uint64_t n)
{
    snprintf(buf, 24, "%" PRIu64, n);
    return buf;
}

#define EXEC_VARS 7 /* the ANNAL_* variables a --exec command gets */

/* The environment of a --exec command: ours, with the event's ANNAL_*
   variables in place of any of those names. Freed with s_env_free. */
static char **s_exec_env(const consume_t *k, const annal_client_group_event_t *ev)
{
    const annal_record_t *r = &ev->record;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + EXEC_VARS + 1, sizeof *env);
    if (!env)
        return NULL;
    char num[24];
    env[0] = s_env("ANNAL_GROUP", k->group);
    env[1] = s_env("ANNAL_SEQUENCE", s_u64_text(num, r->sequence_number));
    env[2] = s_env("ANNAL_AGGREGATE_ID", r->aggregate_id);
    env[3] = s_env("ANNAL_VERSION", s_u64_text(num, r->version));
    env[4] = s_env("ANNAL_EVENT_TYPE", r->event_type);
    env[5] = s_env("ANNAL_EVENT_ID", r->event_id);
    env[6] = s_env("ANNAL_DELIVERY", s_u64_text(num, ev->delivery));
    size_t at = EXEC_VARS;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(environ[i], "=");
        bool ours = false;
        for (size_t j = 0; j < EXEC_VARS && !ours; j++)
            ours = env[j] && strncmp(env[j], environ[i], len + 1) == 0;
        if (!ours)
            env[at++] = environ[i];
    }
    for (size_t j = 0; j < EXEC_VARS; j++)
        if (!env[j]) {
            for (size_t i = 0; i < EXEC_VARS; i++)
                free(env[i]);
            free(env);
            return NULL;
        }
    return env;
}

static void s_env_free(char **env)
{
    for (size_t j = 0; env && j < EXEC_VARS; j++)
        free(env[j]);
    free(env);
}

/* Writes all of data to fd, as far as the reader takes it. */
static void s_write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the command does not read its stdin: its exit status says */
        data += n;
        len -= (size_t) n;
    }
}

/* Runs the --exec command for an event: sh -c CMD, the event on its
   stdin. Its exit status is the verdict. */
static annal_worker_verdict_t s_exec_one(const annal_client_group_event_t *ev, char *reason,
                                         size_t size, void *arg)
{
    consume_t *k = arg;
    int in[2] = {-1, -1};
    char **env = s_exec_env(k, ev);
    posix_spawn_file_actions_t files;
    posix_spawnattr_t attr;
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE); /* ignored here, but not for the command */
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawn_file_actions_init(&files);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = env && pipe(in) == 0 ? 0 : errno ? errno : ENOMEM;
    if (rc == 0) {
        posix_spawn_file_actions_adddup2(&files, in[0], 0);
        posix_spawn_file_actions_addclose(&files, in[0]);
        posix_spawn_file_actions_addclose(&files, in[1]);
        char *argv[] = {"sh", "-c", (char *) k->exec, NULL};
        fflush(stdout);
        rc = posix_spawn(&pid, "/bin/sh", &files, &attr, argv, env);
    }
    if (in[0] >= 0)
        close(in[0]);
    if (rc == 0)
        s_write_all(in[1], ev->record.json, strlen(ev->record.json));
    if (rc == 0)
        s_write_all(in[1], "\n", 1);
    if (in[1] >= 0)
        close(in[1]);
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
    s_env_free(env);
    if (rc) {
        snprintf(reason, size, "cannot run the command: %s", strerror(rc));
        return ANNAL_WORKER_TRANSIENT;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(reason, size, "cannot wait for the command: %s", strerror(errno));
            return ANNAL_WORKER_TRANSIENT;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return ANNAL_WORKER_OK;
    if (WIFEXITED(status))
        snprintf(reason, size, "the command exited with status %d", WEXITSTATUS(status));
    else
        snprintf(reason, size, "the command was killed by signal %d", WTERMSIG(status));
    bool park = WIFEXITED(status) && WEXITSTATUS(status) == k->park_exit;
    return park ? ANNAL_WORKER_PERMANENT : ANNAL_WORKER_TRANSIENT;
}

static int s_group_consume(annal_client_t *c, opts_t *o)
{
    int64_t max, wait, count, park_exit;
    if (!s_need_consumer(o) || !s_ranged(o->max, "--max", 1, 10000, 16, &max)
        || !s_ranged(o->wait, "--wait", 1, ANNAL_WAIT_MAX, 1000, &wait)
        || !s_ranged(o->count, "--count", 1, INT64_MAX, 0, &count)
        || !s_ranged(o->park_exit, "--park-exit", 1, 255, PARK_EXIT, &park_exit))
        return EXIT_USAGE;
    if (o->exec && !*o->exec) {
        fprintf(stderr, "annal: --exec takes a command\n");
        return EXIT_USAGE;
    }
    /* the group first, so that a wrong name or an annald that is not there
       is said at once (the worker would wait for annald) */
    annal_client_group_list_t *info = NULL;
    annal_result_t res;
    if (annal_client_group_info(c, o->args[0], &info, &res))
        return s_exit(&res);
    annal_client_group_list_destroy(&info);
    consume_t k = {o->args[0], o->exec, (int) park_exit, false};
    annal_worker_config_t config = {.commands = o->commands,
                                    .curve = o->curve_key ? &o->curve : NULL,
                                    .timeout_ms = o->timeout_ms,
                                    .group = o->args[0],
                                    .consumer = o->consumer,
                                    .max_count = (size_t) max,
                                    .wait_ms = (int) wait};
    s_consuming = annal_worker_new(&config, o->exec ? s_exec_one : s_print_one, &k);
    if (!s_consuming) {
        fprintf(stderr, "annal: --consumer '%s' is not a valid name\n", o->consumer);
        return EXIT_USAGE;
    }
    s_catch_signals();
    annal_status_t st = annal_worker_run(s_consuming, (uint64_t) count, &res);
    annal_worker_destroy(&s_consuming);
    if (k.output_failed) {
        fprintf(stderr, "annal: cannot write to stdout\n");
        return EXIT_FAILED;
    }
    return st ? s_exit(&res) : 0;
}

/* annal's options. */
static const struct {
    const char *name; /* --name */
    size_t offset;    /* where its value goes in opts_t */
    bool flag;        /* takes no value */
} s_options[] = {
    {"--commands", offsetof(opts_t, commands), false},
    {"--events", offsetof(opts_t, events), false},
    {"--expect", offsetof(opts_t, expect), false},
    {"--metadata", offsetof(opts_t, metadata), false},
    {"--event-id", offsetof(opts_t, event_id), false},
    {"--prefix", offsetof(opts_t, prefix), false},
    {"--types", offsetof(opts_t, types), false},
    {"--state", offsetof(opts_t, state), false},
    {"--at", offsetof(opts_t, at), false},
    {"--from", offsetof(opts_t, from), false},
    {"--max", offsetof(opts_t, max), false},
    {"--version", offsetof(opts_t, version), false},
    {"--backward", offsetof(opts_t, backward), true},
    {"--use-snapshot", offsetof(opts_t, use_snapshot), true},
    {"--hard", offsetof(opts_t, hard), true},
    {"--max-count", offsetof(opts_t, max_count), false},
    {"--max-age", offsetof(opts_t, max_age), false},
    {"--help", offsetof(opts_t, help), true},
    {"--curve-key", offsetof(opts_t, curve_key), false},
    {"--curve-server", offsetof(opts_t, curve_server), false},
    {"--consumer", offsetof(opts_t, consumer), false},
    {"--ordering", offsetof(opts_t, ordering), false},
    {"--ack-timeout", offsetof(opts_t, ack_timeout), false},
    {"--max-deliveries", offsetof(opts_t, max_deliveries), false},
    {"--wait", offsetof(opts_t, wait), false},
    {"--count", offsetof(opts_t, count), false},
    {"--exec", offsetof(opts_t, exec), false},
    {"--park-exit", offsetof(opts_t, park_exit), false},
    {"--action", offsetof(opts_t, action), false},
    {"--reason", offsetof(opts_t, reason), false},
};

/* Whether a is one of annal's options (--timeout too); *value: whether it
   takes a value. */
static bool s_is_option(const char *a, bool *value)
{
    *value = true;
    if (strcmp(a, "--timeout") == 0 || strcmp(a, "--type") == 0)
        return true;
    for (size_t k = 0; k < sizeof s_options / sizeof s_options[0]; k++)
        if (strcmp(s_options[k].name, a) == 0) {
            *value = !s_options[k].flag;
            return true;
        }
    return false;
}

/* Whether a is an option of annal-admin's backup or migrate. */
static bool s_is_admin_option(const char *a)
{
    return strcmp(a, "--data") == 0 || strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0
           || strcmp(a, "--help") == 0;
}

/* The old spellings of annal-admin's commands (backup, migrate), kept for
   one release: runs annal-admin from this program's folder, else from PATH.
   argv[at] is the command. The old annal took options anywhere, so
   annal-admin gets the command, then the rest of argv in order, without
   annal's own options (--commands, --timeout ...), which backup and migrate
   never used. */
static int s_admin(int argc, char **argv, int at)
{
    const char *cmd = argv[at];
    fprintf(stderr,
            "annal: `annal %s` is now `annal-admin %s` (it runs on the store's "
            "machine); this spelling goes away in the next release\n",
            cmd, cmd);
    char **args = calloc((size_t) argc + 2, sizeof *args);
    if (!args) {
        fprintf(stderr, "annal: out of memory\n");
        return EXIT_FAILED;
    }
    int n = 1;
    args[n++] = (char *) cmd;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool value;
        if (i == at)
            continue;
        if (s_is_admin_option(a)) {
            args[n++] = argv[i];
            if (strcmp(a, "--help") != 0 && i + 1 < argc)
                args[n++] = argv[++i]; /* its value, even a word such as "backup" */
        }
        else if (s_is_option(a, &value))
            i += value; /* annal's option, and its value */
        else
            args[n++] = argv[i];
    }
    char self[4096], path[4096 + 16];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(path, sizeof path, "%s/annal-admin", self);
            args[0] = path;
            execv(path, args);
        }
    }
    args[0] = "annal-admin";
    execvp("annal-admin", args);
    fprintf(stderr, "annal: cannot run annal-admin: %s\n", strerror(errno));
    free(args);
    return EXIT_FAILED;
}

/* Writes a new CURVE key pair as NAME and NAME_secret (CZMQ certificates). */
static int s_keygen(annal_client_t *c, opts_t *o)
{
    (void) c;
    const char *name = o->args[0];
    zcert_t *cert = zcert_new();
    int rc = cert ? zcert_save(cert, name) : -1;
    if (rc == 0)
        printf("%s\n", zcert_public_txt(cert));
    else
        fprintf(stderr, "annal: keygen: cannot write %s and %s_secret\n", name, name);
    zcert_destroy(&cert);
    return rc ? EXIT_FAILED : 0;
}

/* --- main ------------------------------------------------------------------------ */

/* The group subcommands' synopses, for `annal group` alone or unknown. */
static void s_group_usage(FILE *out)
{
    fprintf(out, "usage: annal group SUBCOMMAND ... (annal group SUBCOMMAND --help)\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strncmp(s_commands[i].name, "group ", 6) == 0)
            fprintf(out, "  %.*s\n", s_synopsis(s_commands[i].usage), s_commands[i].usage);
}

/* The row of the command named name, or -1. */
static int s_find_command(const char *name)
{
    for (size_t k = 0; k < sizeof s_commands / sizeof s_commands[0]; k++)
        if (strcmp(s_commands[k].name, name) == 0)
            return (int) k;
    return -1;
}

/* Runs the command cmd (NULL: none given) with the parsed options; "group"
   takes its subcommand from the first argument. */
static int s_dispatch(const char *cmd, opts_t *o)
{
    if (!cmd) {
        s_usage(o->help ? stdout : stderr);
        return o->help ? 0 : EXIT_USAGE;
    }
    char name[64];
    bool group = strcmp(cmd, "group") == 0;
    if (group) {
        if (o->nargs == 0) {
            s_group_usage(o->help ? stdout : stderr);
            return o->help ? 0 : EXIT_USAGE;
        }
        snprintf(name, sizeof name, "group %s", o->args[0]);
        cmd = name;
    }
    int k = s_find_command(cmd);
    if (k < 0) {
        fprintf(stderr, "annal: unknown %s '%s'\n", group ? "group subcommand" : "command",
                group ? o->args[0] : cmd);
        if (group)
            s_group_usage(stderr);
        else
            s_usage(stderr);
        return EXIT_USAGE;
    }
    if (group) {
        o->args++;
        o->nargs--;
    }
    if (o->help) {
        printf("usage: annal %s\n", s_commands[k].usage);
        return 0;
    }
    arity_t arity = s_commands[k].arity;
    bool fits = o->nargs == s_commands[k].nargs || (arity == ARGS_OPTIONAL && o->nargs == 0)
                || (arity == ARGS_MORE && o->nargs > s_commands[k].nargs);
    if (!fits) {
        fprintf(stderr, "usage: annal %s\n", s_commands[k].usage);
        return EXIT_USAGE;
    }
    if (!o->curve_key != !o->curve_server) {
        fprintf(stderr, "annal: CURVE needs both --curve-key and --curve-server\n");
        return EXIT_USAGE;
    }
    if (o->curve_key && annal_curve_load(&o->curve, o->curve_key, o->curve_server)) {
        fprintf(stderr, "annal: cannot read the CURVE keys from %s and %s\n", o->curve_key,
                o->curve_server);
        return EXIT_USAGE;
    }
    annal_client_t *c = NULL;
    if (s_commands[k].kind == RUN_CLIENT) {
        c = annal_client_new_curve(o->commands, o->timeout_ms, o->curve_key ? &o->curve : NULL);
        if (!c) {
            fprintf(stderr, "annal: cannot connect to %s\n", o->commands);
            return EXIT_USAGE;
        }
    }
    int rc = s_commands[k].run(c, o);
    annal_client_destroy(&c);
    if (fflush(stdout) || ferror(stdout))
        rc = rc ? rc : EXIT_FAILED;
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o = {0};
    o.commands = getenv("ANNAL_COMMANDS");
    o.events = getenv("ANNAL_EVENTS");
    if (!o.commands || !*o.commands)
        o.commands = "tcp://127.0.0.1:5555";
    if (!o.events || !*o.events)
        o.events = "tcp://127.0.0.1:5556";
    o.timeout_ms = 5000;
    const char *cmd = NULL;
    /* The old spellings (annal backup, annal migrate): the command is the
       first word that is neither an option nor an option's value, annal's
       (--from ...) or annal-admin's (--data, --to). */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool value;
        if ((s_is_admin_option(a) && strcmp(a, "--help") != 0)
            || (s_is_option(a, &value) && value)) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) == 0 && a[2])
            continue;
        if (strcmp(a, "backup") == 0 || strcmp(a, "migrate") == 0)
            return s_admin(argc, argv, i);
        break;
    }
    const char **args = calloc((size_t) argc, sizeof *args);
    const char **types = calloc((size_t) argc, sizeof *types);
    if (!args || !types) {
        fprintf(stderr, "annal: out of memory\n");
        free(args);
        free(types);
        return EXIT_FAILED;
    }
    o.args = args;
    o.type_list = types;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            int64_t t;
            if (!s_number(argv[++i], &t) || t == 0 || t > 3600000) {
                fprintf(stderr, "annal: --timeout takes milliseconds\n");
                rc = EXIT_USAGE;
            }
            o.timeout_ms = (int) t;
            continue;
        }
        if (strcmp(a, "--type") == 0 && i + 1 < argc) {
            o.type_list[o.ntypes++] = argv[++i];
            continue;
        }
        if (strncmp(a, "--", 2) == 0 && a[2]) {
            size_t k = 0, n = sizeof s_options / sizeof s_options[0];
            while (k < n && strcmp(s_options[k].name, a) != 0)
                k++;
            if (k == n || (!s_options[k].flag && i + 1 >= argc)) {
                fprintf(stderr, "annal: unknown or incomplete option %s\n", a);
                rc = EXIT_USAGE;
            }
            else if (s_options[k].flag)
                *(bool *) ((char *) &o + s_options[k].offset) = true;
            else
                *(const char **) ((char *) &o + s_options[k].offset) = argv[++i];
            continue;
        }
        if (!cmd)
            cmd = a;
        else
            o.args[o.nargs++] = a;
    }
    if (!rc)
        rc = s_dispatch(cmd, &o);
    free(args);
    free(types);
    return rc;
}
