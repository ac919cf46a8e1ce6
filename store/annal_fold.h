/*  annal_fold.h: the default state fold (docs/protocol.md, section 1): an
    aggregate's state is {} with each event's data applied in version order
    as JSON Merge Patch (RFC 7386). Used by create_snapshot, replay and
    get_state. */
#ifndef ANNAL_FOLD_H
#define ANNAL_FOLD_H

#include "annal_store.h"

typedef struct {
    annal_blob_t state; /* the folded state, owned (free with annal_blob_free) */
    uint64_t version;   /* the last version applied (the start version if none) */
    uint64_t applied;   /* events applied */
} annal_fold_result_t;

/* Folds agg inside the store's open batch: starts from state (a blob; NULL
   means {}) at version from, applies events from+1 .. to (inclusive) whose
   recorded_at is <= until (INT64_MAX: no time limit). */
annal_err_t annal_fold_run(annal_store_t *store, const char *agg, const uint8_t *state,
                           size_t state_len, uint64_t from, uint64_t to, int64_t until,
                           annal_fold_result_t *out);

#endif
