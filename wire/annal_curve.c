/*  annal_curve.c: CURVE certificates (CZMQ's zcert files) for the client
    side, libannal and the harness bridge alike. */
#include "annal_curve_private.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

int annal_curve_load(annal_curve_t *out, const char *client_secret_file,
                     const char *server_public_file)
{
    zcert_t *mine = zcert_load(client_secret_file);
    zcert_t *server = zcert_load(server_public_file);
    int rc = -1;
    if (mine && server && strspn(zcert_secret_txt(mine), "0") != 40) {
        snprintf(out->public_key, sizeof out->public_key, "%s", zcert_public_txt(mine));
        snprintf(out->secret_key, sizeof out->secret_key, "%s", zcert_secret_txt(mine));
        snprintf(out->server_key, sizeof out->server_key, "%s", zcert_public_txt(server));
        rc = 0;
    }
    zcert_destroy(&mine);
    zcert_destroy(&server);
    return rc;
}

int annal_curve_apply(void *sock, const annal_curve_t *curve)
{
    if (!curve)
        return 0;
    return zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, curve->server_key, 41)
                   || zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, curve->public_key, 41)
                   || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve->secret_key, 41)
               ? -1
               : 0;
}
