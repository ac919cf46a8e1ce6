/*  annal_admin.c: administration of a store on its own machine: online
    backup (LMDB) and moving an LMDB store into PostgreSQL, through the
    storage interface. */
#include "annal_admin.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "annal_limits.h"

/* --- backup ---------------------------------------------------------------------- */

int annal_store_backup(const char *location, const char *dest, char *why, size_t whylen)
{
    if (annal_store_is_postgresql(location)) {
        snprintf(why, whylen, "back up a PostgreSQL store with PostgreSQL's own tools");
        return -1;
    }
    return annal_lmdb_backup(location, dest, why, whylen);
}

int annal_store_compact(const char *dir, uint64_t *before, uint64_t *after, char *why,
                        size_t whylen)
{
    if (!annal_store_is_postgresql(dir))
        return annal_lmdb_compact(dir, before, after, why, whylen);
    annal_store_options_t opts = {0};
    annal_store_t *store = annal_store_open(dir, &opts, why, whylen);
    if (!store)
        return -1;
    *before = *after = 0; /* PostgreSQL's files are its own to count */
    annal_err_t err = annal_store_compact_op(store, why, whylen);
    annal_store_close(&store);
    return err ? -1 : 0;
}

/* --- moving a store ------------------------------------------------------------ */

typedef struct {
    annal_store_t *to;      /* the target */
    annal_sink_t sink;      /* where the target takes the dump */
    uint64_t events, total; /* copied, and in the source */
    uint64_t snapshots;     /* copied */
    annal_progress_fn progress;
    void *arg;
} migration_t;

#define PROGRESS_EVERY 10000

static annal_err_t s_copy_event(void *arg, const annal_stored_t *rec, char *why, size_t whylen)
{
    migration_t *m = arg;
    if (rec->event.sequence != m->events + 1 || m->snapshots) {
        snprintf(why, whylen, "the source's sequence jumps from %llu to %llu: it is damaged",
                 (unsigned long long) m->events, (unsigned long long) rec->event.sequence);
        return ANNAL_ERR_INTERNAL;
    }
    annal_err_t err = m->sink.event(m->sink.arg, rec, why, whylen);
    if (!err && ++m->events % PROGRESS_EVERY == 0 && m->progress)
        m->progress(m->arg, m->events, m->total, 0);
    return err;
}

static annal_err_t s_copy_snapshot(void *arg, const char *agg, size_t alen,
                                   const annal_snapshot_t *snap, char *why, size_t whylen)
{
    migration_t *m = arg;
    annal_err_t err = m->sink.snapshot(m->sink.arg, agg, alen, snap, why, whylen);
    if (!err && ++m->snapshots % PROGRESS_EVERY == 0 && m->progress)
        m->progress(m->arg, m->events, m->total, m->snapshots);
    return err;
}

/* group_each's fn for s_first_group: keeps the first name, and stops. */
static annal_err_t s_take_name(void *arg, const annal_group_def_t *def)
{
    snprintf(arg, ANNAL_MAX_AGGREGATE_ID + 1, "%s", def->name);
    return ANNAL_ERR_CONFLICT;
}

/* Whether store holds a consumer group (the first one's name into name,
   ANNAL_MAX_AGGREGATE_ID + 1 bytes); -1 when it cannot tell (why says). */
static int s_first_group(annal_store_t *store, char *name, char *why, size_t whylen)
{
    *name = 0;
    if (!annal_store_has_groups(store))
        return 0;
    annal_err_t err = annal_store_begin(store);
    if (!err) {
        err = annal_store_group_each(store, s_take_name, name);
        annal_store_abort(store);
    }
    if (err && err != ANNAL_ERR_CONFLICT) {
        snprintf(why, whylen, "cannot read the source's consumer groups: %s", annal_strerror(err));
        return -1;
    }
    return *name != 0;
}

/* The number of events in store (0 when it cannot tell). */
static uint64_t s_count(annal_store_t *store)
{
    annal_store_stats_t st = {0};
    if (annal_store_begin(store) == ANNAL_OK) {
        annal_store_stats(store, &st);
        annal_store_abort(store);
    }
    return st.events;
}

int annal_store_migrate(const char *from, const char *to, annal_progress_fn progress, void *arg,
                        char *why, size_t whylen)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", from);
    if (annal_store_is_postgresql(from) || stat(path, &st) != 0) {
        snprintf(why, whylen, "%s is not an annal LMDB folder (no data.mdb)", from);
        return -1;
    }
    if (!annal_store_is_postgresql(to)) {
        snprintf(why, whylen, "the target must be a PostgreSQL database (postgresql://...)");
        return -1;
    }
    migration_t m = {.progress = progress, .arg = arg};
    annal_store_t *source = annal_store_open(from, NULL, why, whylen);
    if (!source)
        return -1;
    int rc = -1;
    /* the migration carries no groups yet: refuse rather than drop them */
    char group[ANNAL_MAX_AGGREGATE_ID + 1];
    int groups = s_first_group(source, group, why, whylen);
    if (groups > 0)
        snprintf(why, whylen,
                 "%s holds consumer groups (\"%s\", maybe more): "
                 "groups cannot be migrated yet; delete them first (group_delete) "
                 "or keep the store on LMDB",
                 from, group);
    if (groups != 0 || !(m.to = annal_store_open(to, NULL, why, whylen)))
        goto done;
    m.total = s_count(source);
    if (annal_store_load_begin(m.to, &m.sink, why, whylen))
        goto done;
    if (progress)
        progress(arg, 0, m.total, 0);
    annal_sink_t copy = {&m, s_copy_event, s_copy_snapshot};
    bool keep = annal_store_dump(source, &copy, why, whylen) == ANNAL_OK;
    if (keep && m.events != m.total) {
        snprintf(why, whylen, "the source held %llu events but %llu were read",
                 (unsigned long long) m.total, (unsigned long long) m.events);
        keep = false;
    }
    char end_why[512];
    if (annal_store_load_end(m.to, keep, end_why, sizeof end_why) && keep) {
        snprintf(why, whylen, "%s", end_why);
        keep = false;
    }
    if (keep && progress)
        progress(arg, m.events, m.total, m.snapshots);
    rc = keep ? 0 : -1;
done:
    annal_store_close(&m.to);
    annal_store_close(&source);
    return rc;
}
