/*  annal_pool.h: frames for outgoing ZeroMQ messages that return to a pool.

    ZeroMQ frees a sent message's memory on its I/O thread. Memory that the
    broker's thread took from malloc would go back into that thread's malloc
    arena from the I/O thread, and the two threads would queue on the
    arena's lock for every reply and every published event. A pool frame
    goes back onto a lock-free stack instead, which the broker's thread
    drains when it needs frames; only the broker's thread calls malloc and
    free for them.

    One thread (the owner) calls annal_pool_msg and annal_pool_destroy; any
    thread may release frames (ZeroMQ does, through the message). */
#ifndef ANNAL_POOL_H
#define ANNAL_POOL_H

#include <stddef.h>
#include <zmq.h>

typedef struct annal_pool_t annal_pool_t;

annal_pool_t *annal_pool_new(void);

/* Gives up the owner's hold; the pool's memory goes when the last frame
   still inside ZeroMQ comes back. */
void annal_pool_destroy(annal_pool_t **self);

/* Initialises msg with a copy of len bytes of data: in a pool frame up to
   16 KiB, in ZeroMQ's own memory beyond. Returns 0, or -1 out of memory. */
int annal_pool_msg(annal_pool_t *self, zmq_msg_t *msg, const void *data, size_t len);

#endif
