/*  annal_gate.h: who may connect to annald.

    The gate is the process's ZAP handler (ZeroMQ's authentication hook,
    RFC 27): every connection to a watched socket is admitted or refused at
    its handshake, before a byte of a request is read.
    - With an allow folder, the sockets are CURVE servers and only clients
      whose public key is in the folder (certificates written by `annal
      keygen`, read with CZMQ's zcertstore) are admitted. The folder is read
      again whenever it changes: a key added or removed counts from the next
      connection, without a restart.
    - Each watched socket admits at most max_clients connections at once;
      one more is held at its handshake (ZAP status 300, temporary) for two
      seconds and dropped, and ZeroMQ on the client side connects again, so
      it gets in once another connection closes. A refused CURVE key (400)
      is final for that connection: libzmq does not reconnect after it, so
      a client whose key is added later connects anew.
    Handshakes must finish within those two seconds.
    There is one ZAP endpoint per process, so one gate per process. */
#ifndef ANNAL_GATE_H
#define ANNAL_GATE_H

#include <czmq.h>
#include <stddef.h>

typedef struct annal_gate_t annal_gate_t;

/* Starts the gate. allow_dir NULL: no CURVE, only the connection count.
   NULL on failure, with the reason in why. */
annal_gate_t *annal_gate_new(const char *allow_dir, size_t max_clients, char *why, size_t whylen);

/* Puts sock behind the gate, before it binds: its connections are counted
   under name, and with an allow folder it becomes a CURVE server with
   server_cert's keys. 0, or -1 with the reason in why. Call before
   annal_gate_start. */
int annal_gate_watch(annal_gate_t *self, zsock_t *sock, const char *name, zcert_t *server_cert,
                     char *why, size_t whylen);

/* Starts answering handshakes; 0, or -1 with the reason in why. */
int annal_gate_start(annal_gate_t *self, char *why, size_t whylen);

/* Stops the gate; safe twice. Destroy it after the sockets it watches. */
void annal_gate_destroy(annal_gate_t **self);

#endif
