/*  annal_fold.c: JSON Merge Patch fold over an aggregate's events. */
#include "annal_fold.h"

#include <string.h>

#define FOLD_CHUNK 1024 /* events read per store call */

annal_err_t annal_fold_run(annal_store_t *store, const char *agg, const uint8_t *state,
                           size_t state_len, uint64_t from, uint64_t to, int64_t until,
                           annal_fold_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->version = from;
    annal_value_t *value = state ? annal_value_decode(state, state_len) : annal_value_new_object();
    if (!value)
        return ANNAL_ERR_INTERNAL;
    annal_event_list_t list = {0};
    annal_err_t err = ANNAL_OK;
    bool done = false;
    while (!done && out->version < to) {
        uint64_t want = to - out->version;
        err = annal_store_read(store, agg, out->version + 1, false,
                               want < FOLD_CHUNK ? want : FOLD_CHUNK, &list);
        if (err)
            break;
        if (list.count == 0)
            break;
        for (size_t i = 0; i < list.count; i++) {
            const annal_event_t *ev = &list.items[i];
            if (ev->recorded_at > until) {
                done = true;
                break;
            }
            if (ev->event_type_len == sizeof ANNAL_DELETED_TYPE - 1
                && memcmp(ev->event_type, ANNAL_DELETED_TYPE, ev->event_type_len) == 0) {
                /* docs/protocol.md, section 7: the state starts again */
                annal_value_destroy(&value);
                if (!(value = annal_value_new_object())) {
                    err = ANNAL_ERR_INTERNAL;
                    break;
                }
            }
            else if (annal_value_merge_patch(&value, ev->data, ev->data_len)) {
                err = ANNAL_ERR_INTERNAL;
                done = true;
                break;
            }
            out->version = ev->version;
            out->applied++;
        }
    }
    annal_event_list_free(&list);
    if (!err && annal_value_encode(value, &out->state))
        err = ANNAL_ERR_INTERNAL;
    annal_value_destroy(&value);
    return err;
}
