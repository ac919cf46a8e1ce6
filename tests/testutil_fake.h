/*  testutil_fake.h: a fake annald for the C tests of libannal: a ROUTER on
    a loopback port that answers each request with what the test says (any
    bytes, a reply of the wrong shape, an error, nothing, late), so that the
    client's handling of every reply can be checked. */
#ifndef ANNAL_TESTUTIL_FAKE_H
#define ANNAL_TESTUTIL_FAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <zmq.h>

#include "annal_codec.h"

typedef struct t_fake_t t_fake_t;

/* The reply to a request of type type: a printf format taking the
   request's msg_id (as a long long), or NULL for no answer. */
typedef const char *(*t_fake_fn)(t_fake_t *f, const char *type);

struct t_fake_t {
    void *ctx, *router;
    char endpoint[128]; /* where it listens */
    const char *reply;  /* the reply to every request (when fn is NULL) */
    size_t reply_len;   /* bytes of reply to send as they are (0: reply is a format) */
    t_fake_fn fn;       /* the reply by request type, or NULL */
    void *arg;          /* the test's, for fn */
    int delay_ms;       /* before each answer */
    atomic_int stop;    /* ends the thread */
    pthread_t thread;
};

static inline void *t_fake_loop(void *arg)
{
    t_fake_t *f = arg;
    while (!atomic_load(&f->stop)) {
        zmq_pollitem_t item = {f->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        zmq_msg_recv(&id, f->router, 0);
        zmq_msg_recv(&body, f->router, 0);
        annal_msg_t *req = annal_msg_decode(zmq_msg_data(&body), zmq_msg_size(&body));
        int64_t msg_id = 0;
        const char *type = req ? annal_msg_str(req, "type") : NULL;
        if (req)
            annal_msg_int(req, "msg_id", &msg_id);
        const char *reply = f->fn ? f->fn(f, type ? type : "") : f->reply;
        annal_msg_destroy(&req);
        if (reply) {
            usleep((useconds_t) f->delay_ms * 1000);
            char out[4096];
            size_t len = f->fn ? 0 : f->reply_len;
            if (len)
                memcpy(out, reply, len);
            else
                len = (size_t) snprintf(out, sizeof out, reply, (long long) msg_id);
            zmq_send(f->router, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
            zmq_send(f->router, out, len, 0);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    return NULL;
}

/* Starts a fake that answers every request with reply (reply_len bytes as
   they are, or a format when reply_len is 0) after delay_ms; set f->fn
   (and f->arg) before to answer by request type instead. */
static inline void t_fake_start(t_fake_t *f, const char *reply, size_t reply_len, int delay_ms)
{
    t_fake_fn fn = f->fn;
    void *fn_arg = f->arg;
    memset(f, 0, sizeof *f);
    f->fn = fn;
    f->arg = fn_arg;
    f->reply = reply;
    f->reply_len = reply_len;
    f->delay_ms = delay_ms;
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int zero = 0;
    size_t len = sizeof f->endpoint;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_bind(f->router, "tcp://127.0.0.1:*");
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
    pthread_create(&f->thread, NULL, t_fake_loop, f);
}

static inline void t_fake_stop(t_fake_t *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
}

#endif
