/*  annal-admin: administration of a store on annald's own machine (it links
    the store, which the client-side `annal` never does):
      annal-admin backup --data DIR DEST
      annal-admin migrate --from DIR --to postgresql://...
      annal-admin compact --data DIR
    Exit status: 0 done, 1 failed, 2 usage. */
#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "annal_admin.h"

#define EXIT_FAILED 1
#define EXIT_USAGE  2

/* The options of one invocation. */
typedef struct {
    const char *data, *from, *to; /* --data, --from, --to */
    const char *args[2];          /* positional arguments */
    int nargs;
    bool help;
} opts_t;

static int s_backup(const opts_t *o);
static int s_migrate(const opts_t *o);
static int s_compact(const opts_t *o);

static const struct {
    const char *name;           /* the command */
    const char *usage;          /* its synopsis and help */
    int nargs;                  /* positional arguments it takes */
    int (*run)(const opts_t *); /* what it does */
} s_commands[] = {
    {"backup",
     "backup --data DIR DEST\n"
     "  copies the store in DIR into the new folder DEST while annald goes on serving\n"
     "  it (run it on annald's machine); `annald --data DEST` serves the copy",
     1, s_backup},
    {"migrate",
     "migrate --from DIR --to postgresql://...\n"
     "  copies the LMDB store in DIR (stop its annald first) into an empty\n"
     "  PostgreSQL database, keeping sequence numbers, versions, event ids,\n"
     "  timestamps and snapshots; progress on stderr",
     0, s_migrate},
    {"compact",
     "compact --data DIR|postgresql://...\n"
     "  gives the space the store does not use back to the file system (after\n"
     "  deletions and retention). LMDB: refused while annald serves it, stop it first;\n"
     "  PostgreSQL: VACUUM FULL, brokers wait while a table is rewritten",
     0, s_compact},
};
#define NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

static void s_usage(FILE *out)
{
    fprintf(out, "usage: annal-admin COMMAND ...\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %s\n", s_commands[i].usage);
    fprintf(out, "exit status: 0 done, 1 failed, 2 usage\n");
}

static int s_backup(const opts_t *o)
{
    if (!o->data) {
        fprintf(stderr, "usage: annal-admin %s\n", s_commands[0].usage);
        return EXIT_USAGE;
    }
    char why[512];
    if (annal_store_backup(o->data, o->args[0], why, sizeof why)) {
        fprintf(stderr, "annal-admin: backup: %s\n", why);
        return EXIT_FAILED;
    }
    return 0;
}

static int s_compact(const opts_t *o)
{
    if (!o->data) {
        fprintf(stderr, "usage: annal-admin %s\n", s_commands[2].usage);
        return EXIT_USAGE;
    }
    char why[512];
    uint64_t before = 0, after = 0;
    if (annal_store_compact(o->data, &before, &after, why, sizeof why)) {
        fprintf(stderr, "annal-admin: compact: %s\n", why);
        return EXIT_FAILED;
    }
    if (before || after)
        printf("compacted %s: %" PRIu64 " bytes before, %" PRIu64 " after\n", o->data, before,
               after);
    else
        printf("compacted %s\n", o->data);
    return 0;
}

/* Progress of a migration on stderr: a line a second at most. */
typedef struct {
    int64_t start, last; /* monotonic ms */
} progress_t;

static void s_progress(void *arg, uint64_t events, uint64_t total, uint64_t snapshots)
{
    progress_t *pr = arg;
    int64_t now = zclock_mono();
    if (now - pr->last < 1000 && events < total)
        return;
    pr->last = now;
    fprintf(stderr,
            "annal-admin: migrate: %" PRIu64 " of %" PRIu64 " events (%d%%), %" PRIu64
            " snapshots, %.1f s\n",
            events, total, total ? (int) (events * 100 / total) : 100, snapshots,
            (double) (now - pr->start) / 1000);
}

static int s_migrate(const opts_t *o)
{
    if (!o->from || !o->to) {
        fprintf(stderr, "usage: annal-admin migrate --from DIR --to postgresql://...\n");
        return EXIT_USAGE;
    }
    char why[512];
    progress_t pr = {zclock_mono(), 0};
    if (annal_store_migrate(o->from, o->to, s_progress, &pr, why, sizeof why)) {
        fprintf(stderr, "annal-admin: migrate: %s; the target is unchanged\n", why);
        return EXIT_FAILED;
    }
    fprintf(stderr, "annal-admin: migrate: done in %.1f s\n",
            (double) (zclock_mono() - pr.start) / 1000);
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {0};
    const char *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = strcmp(a, "--data") == 0   ? &o.data
                             : strcmp(a, "--from") == 0 ? &o.from
                             : strcmp(a, "--to") == 0   ? &o.to
                                                        : NULL;
        if (value && i + 1 < argc)
            *value = argv[++i];
        else if (strcmp(a, "--help") == 0)
            o.help = true;
        else if (value || (strncmp(a, "--", 2) == 0 && a[2])) {
            fprintf(stderr, "annal-admin: unknown or incomplete option %s\n", a);
            return EXIT_USAGE;
        }
        else if (!cmd)
            cmd = a;
        else if (o.nargs < 2)
            o.args[o.nargs++] = a;
        else {
            fprintf(stderr, "annal-admin: too many arguments\n");
            return EXIT_USAGE;
        }
    }
    if (!cmd) {
        s_usage(o.help ? stdout : stderr);
        return o.help ? 0 : EXIT_USAGE;
    }
    for (size_t k = 0; k < NCOMMANDS; k++) {
        if (strcmp(s_commands[k].name, cmd) != 0)
            continue;
        if (o.help) {
            printf("usage: annal-admin %s\n", s_commands[k].usage);
            return 0;
        }
        if (o.nargs != s_commands[k].nargs) {
            fprintf(stderr, "usage: annal-admin %s\n", s_commands[k].usage);
            return EXIT_USAGE;
        }
        return s_commands[k].run(&o);
    }
    fprintf(stderr, "annal-admin: unknown command '%s'\n", cmd);
    s_usage(stderr);
    return EXIT_USAGE;
}
