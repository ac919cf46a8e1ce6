/*  annal_broker.h: the annal broker, a CZMQ actor serving the command set
    of docs/protocol.md on a ROUTER socket and publishing committed events on a
    PUB socket. annald runs one; annal-bridge embeds one. */
#ifndef ANNAL_BROKER_H
#define ANNAL_BROKER_H

#include <stddef.h>

#include "annal_codec.h"
#include "annal_limits.h"

typedef struct {
    const char *store;           /* store location (a data folder) */
    const char *commands;        /* ROUTER endpoint to bind */
    const char *events;          /* PUB endpoint to bind, or NULL for none */
    annal_encoding_t pub_format; /* encoding of published events */
    annal_limits_t limits;       /* the limits enforced (a field of 0: its default) */
    size_t initial_map_size;     /* store's first map size (0: default) */
    int heartbeat_ms;            /* $head interval (0: 1000) */
    int pub_hwm;                 /* events queued per subscriber (0: default) */
    const char *curve_secret;    /* annald's CURVE certificate (a secret file written by
                                   `annal keygen`), or NULL for plaintext */
    const char *curve_allow;     /* folder of the public certificates of the clients
                                   admitted; required with curve_secret */
} annal_broker_config_t;

typedef struct annal_broker_t annal_broker_t;

/* Opens the store, binds the sockets and starts serving. NULL on failure,
   with the reason in why. */
annal_broker_t *annal_broker_new(const annal_broker_config_t *config, char *why, size_t whylen);

/* The endpoints actually bound (wildcard ports resolved); borrowed. */
const char *annal_broker_commands(const annal_broker_t *self);
const char *annal_broker_events(const annal_broker_t *self);

/* Finishes the batch in flight, closes the store and frees; safe twice. */
void annal_broker_destroy(annal_broker_t **self);

#endif
