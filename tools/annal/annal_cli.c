/*  annal: the command-line client of annal, built on libannal.
    Output is JSON lines (one object per line) for jq; errors go to stderr.
    Exit status: 0 done, 1 failed, 2 usage, 3 concurrency conflict,
    4 not found, 5 annald unreachable or too slow. */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Options of one invocation. */
typedef struct {
    const char *commands, *events; /* endpoints */
    int timeout_ms;                /* per request */
    const char *expect, *metadata, *event_id, *prefix, *types, *state, *at;
    const char *from, *max, *version;
    const char *curve_key, *curve_server; /* CURVE certificate files */
    annal_curve_t curve;                  /* their keys, when given */
    bool backward, use_snapshot, help;
    const char *args[4]; /* positional arguments */
    int nargs;
} opts_t;

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
static int s_export(annal_client_t *c, opts_t *o);
static int s_keygen(annal_client_t *c, opts_t *o);
static int s_import(annal_client_t *c, opts_t *o);

/* One row per command: the CLI's table, dispatched by name. */
static const struct {
    const char *name;  /* the command */
    const char *usage; /* its synopsis and help */
    int nargs;         /* positional arguments it takes */
    bool optional_arg; /* nargs or none */
    run_kind_t kind;   /* what run needs */
    int (*run)(annal_client_t *c, opts_t *o);
} s_commands[] = {
    {"append",
     "append AGGREGATE TYPE DATA [--expect V|any|exists] [--metadata JSON] [--event-id UUID]\n"
     "  appends one event (DATA is JSON); default --expect any",
     3, false, RUN_CLIENT, s_append},
    {"read",
     "read AGGREGATE [--from VERSION] [--max N] [--backward]\n"
     "  prints the aggregate's events, one JSON object per line",
     1, false, RUN_CLIENT, s_read},
    {"read-all",
     "read-all [--from SEQUENCE] [--prefix P] [--types T1,T2] [--max N]\n"
     "  prints the global log up to its current head",
     0, false, RUN_CLIENT, s_read_all},
    {"tail",
     "tail [--from SEQUENCE] [--prefix P]\n"
     "  a subscription: history from --from (default: only new events), then live;\n"
     "  one JSON event per line until interrupted",
     0, false, RUN_ALONE, s_tail},
    {"snapshot",
     "snapshot AGGREGATE [--version V] [--state JSON]\n"
     "  saves a snapshot (the default fold, or STATE as given)",
     1, false, RUN_CLIENT, s_snapshot},
    {"get-snapshot", "get-snapshot AGGREGATE\n  prints the latest snapshot", 1, false, RUN_CLIENT,
     s_get_snapshot},
    {"replay", "replay AGGREGATE [--use-snapshot] [--version V]\n  rebuilds the state", 1, false,
     RUN_CLIENT, s_replay},
    {"state", "state AGGREGATE --at TIMESTAMP\n  the state as of an RFC 3339 time", 1, false,
     RUN_CLIENT, s_state},
    {"status", "status\n  the store's counters", 0, false, RUN_CLIENT, s_status},
    {"export",
     "export [--from SEQUENCE] [--prefix P]\n"
     "  writes events as JSON lines (progress on stderr when it is a terminal)",
     0, false, RUN_CLIENT, s_export},
    {"keygen",
     "keygen NAME\n"
     "  writes a new CURVE key pair: NAME (the public certificate, to hand out or to\n"
     "  put in annald's --curve-allow folder) and NAME_secret (keep it private)",
     1, false, RUN_ALONE, s_keygen},
    {"import",
     "import [FILE]\n"
     "  appends exported JSON lines (FILE or stdin) in batches, keeping event ids,\n"
     "  types, data, metadata and versions (sequence numbers too, into an empty\n"
     "  store); running it again writes nothing twice",
     1, true, RUN_CLIENT, s_import},
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: annal [--commands ENDPOINT] [--events ENDPOINT] [--timeout MS]\n"
                 "             [--curve-key NAME_secret --curve-server ANNALD_PUBLIC] COMMAND ...\n"
                 "endpoints default to $ANNAL_COMMANDS / $ANNAL_EVENTS, then\n"
                 "tcp://127.0.0.1:5555 and tcp://127.0.0.1:5556; --curve-key (this client's\n"
                 "secret certificate) and --curve-server (annald's public one) speak CURVE\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  %s\n", s_commands[i].usage);
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

static int s_append(annal_client_t *c, opts_t *o)
{
    int64_t expected = ANNAL_ANY;
    if (o->expect && strcmp(o->expect, "exists") == 0)
        expected = ANNAL_EXISTS;
    else if (o->expect && strcmp(o->expect, "any") != 0 && !s_number(o->expect, &expected)) {
        fprintf(stderr, "annal: --expect takes a version, any or exists\n");
        return EXIT_USAGE;
    }
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

static void s_on_signal(int sig)
{
    (void) sig;
    if (s_tailing)
        annal_subscription_stop(s_tailing);
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
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
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
    free(line);
    if (in != stdin)
        fclose(in);
    return rc;
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
    {"--help", offsetof(opts_t, help), true},
    {"--curve-key", offsetof(opts_t, curve_key), false},
    {"--curve-server", offsetof(opts_t, curve_server), false},
};

/* Whether a is one of annal's options (--timeout too); *value: whether it
   takes a value. */
static bool s_is_option(const char *a, bool *value)
{
    *value = true;
    if (strcmp(a, "--timeout") == 0)
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            int64_t t;
            if (!s_number(argv[++i], &t) || t == 0 || t > 3600000) {
                fprintf(stderr, "annal: --timeout takes milliseconds\n");
                return EXIT_USAGE;
            }
            o.timeout_ms = (int) t;
            continue;
        }
        if (strncmp(a, "--", 2) == 0 && a[2]) {
            size_t k = 0, n = sizeof s_options / sizeof s_options[0];
            while (k < n && strcmp(s_options[k].name, a) != 0)
                k++;
            if (k == n || (!s_options[k].flag && i + 1 >= argc)) {
                fprintf(stderr, "annal: unknown or incomplete option %s\n", a);
                return EXIT_USAGE;
            }
            if (s_options[k].flag)
                *(bool *) ((char *) &o + s_options[k].offset) = true;
            else
                *(const char **) ((char *) &o + s_options[k].offset) = argv[++i];
            continue;
        }
        if (!cmd)
            cmd = a;
        else if (o.nargs < 4)
            o.args[o.nargs++] = a;
        else {
            fprintf(stderr, "annal: too many arguments\n");
            return EXIT_USAGE;
        }
    }
    if (!cmd) {
        s_usage(o.help ? stdout : stderr);
        return o.help ? 0 : EXIT_USAGE;
    }
    size_t k = 0, n = sizeof s_commands / sizeof s_commands[0];
    while (k < n && strcmp(s_commands[k].name, cmd) != 0)
        k++;
    if (k == n) {
        fprintf(stderr, "annal: unknown command '%s'\n", cmd);
        s_usage(stderr);
        return EXIT_USAGE;
    }
    if (o.help) {
        printf("usage: annal %s\n", s_commands[k].usage);
        return 0;
    }
    if (o.nargs != s_commands[k].nargs && !(s_commands[k].optional_arg && o.nargs == 0)) {
        fprintf(stderr, "usage: annal %s\n", s_commands[k].usage);
        return EXIT_USAGE;
    }
    if (!o.curve_key != !o.curve_server) {
        fprintf(stderr, "annal: CURVE needs both --curve-key and --curve-server\n");
        return EXIT_USAGE;
    }
    if (o.curve_key && annal_curve_load(&o.curve, o.curve_key, o.curve_server)) {
        fprintf(stderr, "annal: cannot read the CURVE keys from %s and %s\n", o.curve_key,
                o.curve_server);
        return EXIT_USAGE;
    }
    annal_client_t *c = NULL;
    if (s_commands[k].kind == RUN_CLIENT) {
        c = annal_client_new_curve(o.commands, o.timeout_ms, o.curve_key ? &o.curve : NULL);
        if (!c) {
            fprintf(stderr, "annal: cannot connect to %s\n", o.commands);
            return EXIT_USAGE;
        }
    }
    int rc = s_commands[k].run(c, &o);
    annal_client_destroy(&c);
    if (fflush(stdout) || ferror(stdout))
        rc = rc ? rc : EXIT_FAILED;
    return rc;
}
