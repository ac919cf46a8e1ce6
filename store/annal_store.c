/*  annal_store.c: the storage interface's dispatch to a backend. */
#include "annal_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct annal_store_t {
    const annal_store_ops_t *ops; /* the backend */
    void *backend;                /* its state */
};

bool annal_store_is_postgresql(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

annal_store_t *annal_store_open(const char *location, const annal_store_options_t *opts,
                                char *why, size_t whylen)
{
    static const annal_store_options_t defaults = {0};
    const annal_store_ops_t *ops = annal_store_is_postgresql(location) ? &annal_pg_ops
                                                                        : &annal_lmdb_ops;
    annal_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    self->ops = ops;
    if (ops->open(location, opts ? opts : &defaults, &self->backend, why, whylen) != ANNAL_OK) {
        free(self);
        return NULL;
    }
    return self;
}

int annal_lmdb_backup(const char *dir, const char *dest, char *why, size_t whylen);

int annal_store_backup(const char *location, const char *dest, char *why, size_t whylen)
{
    if (annal_store_is_postgresql(location)) {
        snprintf(why, whylen, "back up a PostgreSQL store with PostgreSQL's own tools");
        return -1;
    }
    return annal_lmdb_backup(location, dest, why, whylen);
}

void annal_store_close(annal_store_t **self)
{
    if (*self) {
        (*self)->ops->close((*self)->backend);
        free(*self);
        *self = NULL;
    }
}

const char *annal_store_name(const annal_store_t *self)
{
    return self->ops->name;
}

annal_err_t annal_store_begin(annal_store_t *self)
{
    return self->ops->begin(self->backend);
}

annal_err_t annal_store_commit(annal_store_t *self)
{
    return self->ops->commit(self->backend);
}

void annal_store_abort(annal_store_t *self)
{
    self->ops->abort(self->backend);
}

annal_err_t annal_store_checkpoint(annal_store_t *self)
{
    return self->ops->checkpoint ? self->ops->checkpoint(self->backend) : ANNAL_OK;
}

annal_err_t annal_store_prepare(annal_store_t *self, const annal_append_hint_t *appends,
                                size_t n)
{
    return self->ops->prepare && n ? self->ops->prepare(self->backend, appends, n) : ANNAL_OK;
}

bool annal_store_shared(const annal_store_t *self)
{
    return self->ops->watch_fd != NULL;
}

int annal_store_watch_fd(annal_store_t *self)
{
    return self->ops->watch_fd ? self->ops->watch_fd(self->backend) : -1;
}

uint64_t annal_store_moved(annal_store_t *self)
{
    return self->ops->moved ? self->ops->moved(self->backend) : 0;
}

annal_err_t annal_store_append(annal_store_t *self, const char *agg, annal_expect_t expect,
                               uint64_t expected, const annal_new_event_t *events, size_t n,
                               annal_append_result_t *res, char *why, size_t whylen)
{
    return self->ops->append(self->backend, agg, expect, expected, events, n, res, why, whylen);
}

annal_err_t annal_store_version(annal_store_t *self, const char *agg, uint64_t *version)
{
    return self->ops->version(self->backend, agg, version);
}

annal_err_t annal_store_read(annal_store_t *self, const char *agg, uint64_t from, bool backward,
                             size_t max, annal_event_list_t *out)
{
    return self->ops->read(self->backend, agg, from, backward, max, out);
}

annal_err_t annal_store_read_all(annal_store_t *self, uint64_t from, size_t max, size_t scan,
                                 const char *prefix, size_t plen, char *const *types,
                                 size_t ntypes, annal_event_list_t *out, uint64_t *next)
{
    return self->ops->read_all(self->backend, from, max, scan, prefix, plen, types, ntypes, out,
                               next);
}

annal_err_t annal_store_put_snapshot(annal_store_t *self, const char *agg, uint64_t version,
                                     bool folded, const uint8_t *state, size_t len)
{
    return self->ops->put_snapshot(self->backend, agg, version, folded, state, len);
}

annal_err_t annal_store_get_snapshot(annal_store_t *self, const char *agg, uint64_t max_version,
                                     bool folded_only, annal_snapshot_t *out)
{
    return self->ops->get_snapshot(self->backend, agg, max_version, folded_only, out);
}

annal_err_t annal_store_stats(annal_store_t *self, annal_store_stats_t *out)
{
    return self->ops->stats(self->backend, out);
}

/* --- moving a store ------------------------------------------------------------ */

typedef struct {
    annal_store_t *to;       /* the target */
    annal_sink_t sink;       /* where the target takes the dump */
    uint64_t events, total;  /* copied, and in the source */
    uint64_t snapshots;      /* copied */
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
    if (!(m.to = annal_store_open(to, NULL, why, whylen)))
        goto done;
    m.total = s_count(source);
    if (m.to->ops->load_begin(m.to->backend, &m.sink, why, whylen))
        goto done;
    if (progress)
        progress(arg, 0, m.total, 0);
    annal_sink_t copy = {&m, s_copy_event, s_copy_snapshot};
    bool keep = source->ops->dump(source->backend, &copy, why, whylen) == ANNAL_OK;
    if (keep && m.events != m.total) {
        snprintf(why, whylen, "the source held %llu events but %llu were read",
                 (unsigned long long) m.total, (unsigned long long) m.events);
        keep = false;
    }
    char end_why[512];
    if (m.to->ops->load_end(m.to->backend, keep, end_why, sizeof end_why) && keep) {
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

int annal_event_list_push(annal_event_list_t *list, const annal_event_t *ev)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        annal_event_t *items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return -1;
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = *ev;
    return 0;
}

void annal_event_list_free(annal_event_list_t *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}
