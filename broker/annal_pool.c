/*  annal_pool.c: frames that return to a pool (see annal_pool.h). */
#include "annal_pool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 3
static const size_t s_size[CLASSES] = {512, 2048, 16384}; /* data bytes of a frame */
static const size_t s_keep[CLASSES] = {4096, 1024, 64};   /* idle frames kept per class */

typedef struct frame_t {
    struct frame_t *next; /* in a free list */
    annal_pool_t *pool;   /* where it returns */
    int cls;              /* its size class */
    /* data follows, 16-byte aligned */
} frame_t;

#define HEAD ((sizeof(frame_t) + 15) / 16 * 16)

struct annal_pool_t {
    _Atomic(frame_t *) returned[CLASSES]; /* pushed by any thread */
    frame_t *idle[CLASSES];               /* the owner's, ready to use */
    size_t nidle[CLASSES];                /* frames in idle */
    atomic_size_t refs;                   /* frames inside ZeroMQ, plus one for the owner */
    atomic_bool closing;                  /* the owner is gone */
};

annal_pool_t *annal_pool_new(void)
{
    annal_pool_t *self = calloc(1, sizeof *self);
    if (self)
        atomic_init(&self->refs, 1);
    return self;
}

static void s_free_list(frame_t *f)
{
    while (f) {
        frame_t *next = f->next;
        free(f);
        f = next;
    }
}

/* Frees the pool: its last reference is gone, nothing else touches it. */
static void s_free(annal_pool_t *self)
{
    for (int c = 0; c < CLASSES; c++) {
        s_free_list(self->idle[c]);
        s_free_list(atomic_load(&self->returned[c]));
    }
    free(self);
}

static void s_unref(annal_pool_t *self)
{
    if (atomic_fetch_sub(&self->refs, 1) == 1)
        s_free(self);
}

void annal_pool_destroy(annal_pool_t **self)
{
    if (*self) {
        atomic_store(&(*self)->closing, true);
        s_unref(*self);
        *self = NULL;
    }
}

/* ZeroMQ is done with a frame (any thread). */
static void s_release(void *data, void *hint)
{
    (void) data;
    frame_t *f = hint;
    annal_pool_t *pool = f->pool;
    if (atomic_load(&pool->closing))
        free(f);
    else {
        f->next = atomic_load(&pool->returned[f->cls]);
        while (!atomic_compare_exchange_weak(&pool->returned[f->cls], &f->next, f))
            ;
    }
    s_unref(pool);
}

/* A frame of class c: an idle one, one come back, or a new one. */
static frame_t *s_take(annal_pool_t *self, int c)
{
    if (!self->idle[c]) {
        /* the owner is the only one to take from the stack: taking it whole
           is safe against pushes (no ABA) */
        frame_t *back = atomic_exchange(&self->returned[c], NULL);
        size_t n = 0;
        while (back) {
            frame_t *next = back->next;
            if (n < s_keep[c]) {
                back->next = self->idle[c];
                self->idle[c] = back;
                n++;
            }
            else
                free(back);
            back = next;
        }
        self->nidle[c] = n;
    }
    frame_t *f = self->idle[c];
    if (f) {
        self->idle[c] = f->next;
        self->nidle[c]--;
        return f;
    }
    f = malloc(HEAD + s_size[c]);
    if (f) {
        f->pool = self;
        f->cls = c;
    }
    return f;
}

int annal_pool_msg(annal_pool_t *self, zmq_msg_t *msg, const void *data, size_t len)
{
    int c = 0;
    while (c < CLASSES && len > s_size[c])
        c++;
    if (c == CLASSES || len <= 32) { /* large, or small enough to live inside msg */
        if (zmq_msg_init_size(msg, len))
            return -1;
        memcpy(zmq_msg_data(msg), data, len);
        return 0;
    }
    frame_t *f = s_take(self, c);
    if (!f)
        return -1;
    uint8_t *dst = (uint8_t *) f + HEAD;
    memcpy(dst, data, len);
    atomic_fetch_add(&self->refs, 1);
    if (zmq_msg_init_data(msg, dst, len, s_release, f)) {
        atomic_fetch_sub(&self->refs, 1);
        free(f);
        return -1;
    }
    return 0;
}
