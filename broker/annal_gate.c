/*  annal_gate.c: the ZAP handler (see annal_gate.h).

    NOTES ON THE DESIGN
    ZAP tells the handler about handshakes, not about connections that end,
    so each watched socket also has a monitor (ACCEPTED, DISCONNECTED) whose
    events the gate counts. A socket emits ACCEPTED before the handshake that
    asks ZAP, so draining the monitors before each answer counts the asking
    connection too: it is admitted while the count is at most max_clients.
    Every accepted connection ends in exactly one DISCONNECTED, refused ones
    included. */
#include "annal_gate.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_WATCHED  4
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define HELD_MS      2000 /* how long a client past max_clients waits before it asks again */

typedef struct {
    char name[32];    /* the ZAP domain of the socket */
    zsock_t *monitor; /* PAIR fed by zmq_socket_monitor */
    long open;        /* connections accepted and not yet gone */
} watched_t;

struct annal_gate_t {
    char *allow_dir;    /* CURVE allow folder, or NULL */
    size_t max_clients; /* connections per socket */
    zsock_t *zap;       /* the ZAP endpoint (REP) */
    zactor_t *actor;    /* answers handshakes */
    watched_t watched[MAX_WATCHED];
    size_t nwatched;
};

/* Takes one monitor event off w; false when none waits. */
static bool s_monitor_event(watched_t *w)
{
    zmq_msg_t head, addr;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, zsock_resolve(w->monitor), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return false;
    }
    uint16_t event = 0;
    if (zmq_msg_size(&head) >= 2)
        memcpy(&event, zmq_msg_data(&head), 2);
    bool more = zmq_msg_more(&head);
    zmq_msg_close(&head);
    if (more) { /* the endpoint frame */
        zmq_msg_init(&addr);
        zmq_msg_recv(&addr, zsock_resolve(w->monitor), 0);
        zmq_msg_close(&addr);
    }
    if (event == ZMQ_EVENT_ACCEPTED)
        w->open++;
    else if (event == ZMQ_EVENT_DISCONNECTED && w->open > 0)
        w->open--;
    return true;
}

/* The ZAP verdict on one handshake: status code and text. */
static const char *s_verdict(annal_gate_t *self, zcertstore_t *certs, const char *domain,
                             const char *mechanism, zframe_t *key, const char **text)
{
    for (size_t i = 0; i < self->nwatched; i++) {
        watched_t *w = &self->watched[i];
        while (s_monitor_event(w))
            ;
        if (strcmp(w->name, domain) == 0 && (size_t) w->open > self->max_clients) {
            *text = "too many clients";
            return "300";
        }
    }
    if (!certs) {
        *text = "OK";
        return "200";
    }
    char z85[41];
    if (strcmp(mechanism, "CURVE") != 0 || !key || zframe_size(key) != 32) {
        *text = "CURVE required";
        return "400";
    }
    zmq_z85_encode(z85, zframe_data(key), 32);
    if (!zcertstore_lookup(certs, z85)) {
        *text = "unknown key";
        return "400";
    }
    *text = "OK";
    return "200";
}

/* Answers one ZAP request (RFC 27) waiting on the REP socket. */
static void s_answer(annal_gate_t *self, zcertstore_t *certs)
{
    zmsg_t *req = zmsg_recv(self->zap);
    if (!req)
        return;
    char *version = zmsg_popstr(req), *id = zmsg_popstr(req), *domain = zmsg_popstr(req);
    char *address = zmsg_popstr(req), *identity = zmsg_popstr(req);
    char *mechanism = zmsg_popstr(req);
    zframe_t *key = zmsg_pop(req); /* CURVE: the client's public key */
    const char *text = "malformed ZAP request", *status = "500";
    if (version && strcmp(version, "1.0") == 0 && id && domain && mechanism)
        status = s_verdict(self, certs, domain, mechanism, key, &text);
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_addstr(reply, id ? id : "");
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, "");    /* user id */
    zmsg_addmem(reply, "", 0); /* metadata */
    zmsg_send(&reply, self->zap);
    zframe_destroy(&key);
    zstr_free(&version);
    zstr_free(&id);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&identity);
    zstr_free(&mechanism);
    zmsg_destroy(&req);
}

static void s_actor(zsock_t *pipe, void *args)
{
    annal_gate_t *self = args;
    zcertstore_t *certs = self->allow_dir ? zcertstore_new(self->allow_dir) : NULL;
    zpoller_t *poller = zpoller_new(pipe, self->zap, NULL);
    zsock_signal(pipe, 0);
    while (poller) {
        void *which = zpoller_wait(poller, -1);
        if (which == self->zap)
            s_answer(self, certs);
        else
            break; /* $TERM, or interrupted */
    }
    zpoller_destroy(&poller);
    zcertstore_destroy(&certs);
}

annal_gate_t *annal_gate_new(const char *allow_dir, size_t max_clients, char *why, size_t whylen)
{
    annal_gate_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    self->max_clients = max_clients;
    int mode = allow_dir ? zsys_file_mode(allow_dir) : 0;
    if (allow_dir && (mode < 0 || !S_ISDIR(mode))) {
        snprintf(why, whylen, "the CURVE allow folder %s is not a folder", allow_dir);
        annal_gate_destroy(&self);
        return NULL;
    }
    self->allow_dir = allow_dir ? strdup(allow_dir) : NULL;
    self->zap = zsock_new(ZMQ_REP);
    if (!self->zap || zsock_bind(self->zap, ZAP_ENDPOINT) < 0) {
        snprintf(why, whylen, "cannot start the ZAP handler (another one runs in this process)");
        annal_gate_destroy(&self);
        return NULL;
    }
    return self;
}

int annal_gate_watch(annal_gate_t *self, zsock_t *sock, const char *name, zcert_t *server_cert,
                     char *why, size_t whylen)
{
    if (self->nwatched == MAX_WATCHED || self->actor) {
        snprintf(why, whylen, "the gate watches at most %d sockets, set before it starts",
                 MAX_WATCHED);
        return -1;
    }
    watched_t *w = &self->watched[self->nwatched];
    snprintf(w->name, sizeof w->name, "%s", name);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://annal-gate-%s", name);
    if (zmq_socket_monitor(zsock_resolve(sock), endpoint,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)
        || !(w->monitor = zsock_new_pair(endpoint))) {
        snprintf(why, whylen, "cannot watch the %s socket: %s", name, zmq_strerror(zmq_errno()));
        return -1;
    }
    self->nwatched++;
    zsock_set_zap_domain(sock, name);
    /* a handshake refused with 300 is left hanging by libzmq (no ERROR is
       sent, so the client does not give up): this ends it, and the client's
       ZeroMQ connects again and asks again */
    zsock_set_handshake_ivl(sock, HELD_MS);
    if (self->allow_dir) {
        zcert_apply(server_cert, sock);
        zsock_set_curve_server(sock, 1);
    }
    return 0;
}

int annal_gate_start(annal_gate_t *self, char *why, size_t whylen)
{
    self->actor = zactor_new(s_actor, self);
    if (!self->actor) {
        snprintf(why, whylen, "cannot start the gate's thread");
        return -1;
    }
    return 0;
}

void annal_gate_destroy(annal_gate_t **self_p)
{
    annal_gate_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy(&self->actor);
    for (size_t i = 0; i < self->nwatched; i++)
        zsock_destroy(&self->watched[i].monitor);
    zsock_destroy(&self->zap);
    free(self->allow_dir);
    free(self);
    *self_p = NULL;
}
