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

annal_store_t *annal_store_open(const char *location, const annal_store_options_t *opts, char *why,
                                size_t whylen)
{
    static const annal_store_options_t defaults = {0};
    const annal_store_ops_t *ops = &annal_lmdb_ops;
    if (annal_store_is_postgresql(location)) {
#ifdef ANNAL_WITH_PG
        ops = &annal_pg_ops;
#else
        snprintf(why, whylen, "this annal was built without PostgreSQL (ANNAL_WITH_PG=OFF)");
        return NULL;
#endif
    }
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

annal_err_t annal_store_prepare(annal_store_t *self, const annal_append_hint_t *appends, size_t n)
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
                                 const char *prefix, size_t plen, char *const *types, size_t ntypes,
                                 annal_event_list_t *out, uint64_t *next)
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

annal_err_t annal_store_dump(annal_store_t *self, const annal_sink_t *sink, char *why,
                             size_t whylen)
{
    if (!self->ops->dump) {
        snprintf(why, whylen, "a %s store cannot be dumped", self->ops->name);
        return ANNAL_ERR_MALFORMED;
    }
    return self->ops->dump(self->backend, sink, why, whylen);
}

annal_err_t annal_store_load_begin(annal_store_t *self, annal_sink_t *sink, char *why,
                                   size_t whylen)
{
    if (!self->ops->load_begin) {
        snprintf(why, whylen, "a %s store cannot be loaded", self->ops->name);
        return ANNAL_ERR_MALFORMED;
    }
    return self->ops->load_begin(self->backend, sink, why, whylen);
}

annal_err_t annal_store_load_end(annal_store_t *self, bool keep, char *why, size_t whylen)
{
    return self->ops->load_end(self->backend, keep, why, whylen);
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

/* --- consumer groups --------------------------------------------------------------- */

bool annal_store_has_groups(const annal_store_t *self)
{
    return self->ops->group_put != NULL;
}

#define OPTIONAL_OP(op, ...) \
    (self->ops->op ? self->ops->op(self->backend, __VA_ARGS__) : ANNAL_ERR_UNKNOWN_TYPE)

annal_err_t annal_store_group_put(annal_store_t *self, const annal_group_def_t *def)
{
    return OPTIONAL_OP(group_put, def);
}

annal_err_t annal_store_group_get(annal_store_t *self, const char *name, annal_group_def_t *out)
{
    return OPTIONAL_OP(group_get, name, out);
}

annal_err_t annal_store_group_each(annal_store_t *self,
                                   annal_err_t (*fn)(void *arg, const annal_group_def_t *def),
                                   void *arg)
{
    return OPTIONAL_OP(group_each, fn, arg);
}

annal_err_t annal_store_group_delete(annal_store_t *self, const char *name)
{
    return OPTIONAL_OP(group_delete, name);
}

annal_err_t annal_store_group_mark(annal_store_t *self, const char *name,
                                   const annal_group_mark_t *mark)
{
    return OPTIONAL_OP(group_mark, name, mark);
}

annal_err_t annal_store_group_unmark(annal_store_t *self, const char *name, uint64_t sequence)
{
    return OPTIONAL_OP(group_unmark, name, sequence);
}

annal_err_t annal_store_group_marks(annal_store_t *self, const char *name, uint64_t from,
                                    size_t max, annal_mark_t mark, annal_mark_list_t *out,
                                    uint64_t *next)
{
    return OPTIONAL_OP(group_marks, name, from, max, mark, out, next);
}

annal_err_t annal_store_group_floor(annal_store_t *self, const char *name, uint64_t floor)
{
    return OPTIONAL_OP(group_floor, name, floor);
}

bool annal_store_shares_groups(const annal_store_t *self)
{
    return self->ops->group_sync != NULL;
}

annal_err_t annal_store_group_sync(annal_store_t *self, const char *name, uint64_t *version,
                                   uint64_t *floor)
{
    return OPTIONAL_OP(group_sync, name, version, floor);
}

annal_err_t annal_store_group_bump(annal_store_t *self, const char *name, uint64_t *version)
{
    return OPTIONAL_OP(group_bump, name, version);
}

annal_err_t annal_store_group_lease(annal_store_t *self, const char *name,
                                    const annal_lease_t *leases, size_t n)
{
    return OPTIONAL_OP(group_lease, name, leases, n);
}

annal_err_t annal_store_group_leases(annal_store_t *self, const char *name, annal_lease_list_t *out)
{
    return OPTIONAL_OP(group_leases, name, out);
}

bool annal_store_removes(const annal_store_t *self)
{
    return self->ops->remove != NULL;
}

annal_err_t annal_store_remove(annal_store_t *self, const char *agg, uint64_t through, bool hard)
{
    return OPTIONAL_OP(remove, agg, through, hard);
}

annal_err_t annal_store_sweep(annal_store_t *self, size_t max, size_t *freed, annal_sweep_t *next)
{
    *freed = 0;
    *next = ANNAL_SWEEP_IDLE;
    return OPTIONAL_OP(sweep, max, freed, next);
}

bool annal_store_retains(const annal_store_t *self)
{
    return self->ops->retention_put != NULL;
}

annal_err_t annal_store_retention_put(annal_store_t *self, const char *agg,
                                      const annal_retention_t *policy)
{
    return OPTIONAL_OP(retention_put, agg, policy);
}

annal_err_t annal_store_retention_get(annal_store_t *self, const char *agg, annal_retention_t *out)
{
    memset(out, 0, sizeof *out);
    return OPTIONAL_OP(retention_get, agg, out);
}

annal_err_t annal_store_compact_op(annal_store_t *self, char *why, size_t whylen)
{
    if (!self->ops->compact) {
        snprintf(why, whylen, "the %s store does not compact so", annal_store_name(self));
        return ANNAL_ERR_UNKNOWN_TYPE;
    }
    return self->ops->compact(self->backend, why, whylen);
}

#undef OPTIONAL_OP

void annal_mark_list_free(annal_mark_list_t *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

void annal_lease_list_free(annal_lease_list_t *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}
