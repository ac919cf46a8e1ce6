/*  fuzz_fold.c: libFuzzer target for the merge-patch fold (RFC 7386). The
    first byte splits the input into a target value and a patch, both
    MessagePack blobs; neither need be canonical. Checked: applying a patch
    never crashes, a rejected patch leaves the target unchanged, and merge
    patch is idempotent (applying the same patch twice changes nothing the
    second time). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_value.h"

static int s_same(const annal_value_t *a, const annal_value_t *b)
{
    annal_blob_t x = {0}, y = {0};
    int same = annal_value_encode(a, &x) == 0 && annal_value_encode(b, &y) == 0 && x.size == y.size
               && memcmp(x.data, y.data, x.size) == 0;
    annal_blob_free(&x);
    annal_blob_free(&y);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] < size - 1 ? data[0] : size - 1;
    const uint8_t *t = data + 1, *p = data + 1 + split;
    size_t tlen = split, plen = size - 1 - split;
    annal_value_t *target = annal_value_decode(t, tlen);
    if (!target)
        target = annal_value_new_object();
    annal_value_t *before = annal_value_decode(t, tlen);
    if (!before)
        before = annal_value_new_object();
    if (annal_value_merge_patch(&target, p, plen) != 0) {
        if (!s_same(target, before)) {
            fprintf(stderr, "a rejected patch changed the target\n");
            abort();
        }
    }
    else {
        annal_blob_t once = {0};
        if (annal_value_encode(target, &once) == 0) {
            if (annal_value_merge_patch(&target, p, plen) != 0) {
                fprintf(stderr, "a patch accepted once was rejected the second time\n");
                abort();
            }
            annal_value_t *again = annal_value_decode(once.data, once.size);
            if (!again || !s_same(target, again)) {
                fprintf(stderr, "merge patch is not idempotent here\n");
                abort();
            }
            annal_value_destroy(&again);
        }
        annal_blob_free(&once);
    }
    annal_value_destroy(&target);
    annal_value_destroy(&before);
    return 0;
}
