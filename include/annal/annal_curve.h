/*  annal_curve.h: CURVE keys (encryption and authentication), for an annald
    started with --curve-secret and --curve-allow. Part of libannal's API;
    the harness bridge uses the same loader. */
#ifndef ANNAL_CURVE_H
#define ANNAL_CURVE_H

#include "annal_export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The client's key pair and annald's public key, each 40 characters of Z85
   text. */
typedef struct {
    char public_key[41];
    char secret_key[41];
    char server_key[41];
} annal_curve_t;

/* Reads the keys from certificate files written by `annal keygen`: the
   client's secret certificate (NAME_secret) and annald's public one (NAME).
   0, or -1 when either cannot be read or the first holds no secret key. */
ANNAL_EXPORT int annal_curve_load(annal_curve_t *out, const char *client_secret_file,
                                  const char *server_public_file);

#ifdef __cplusplus
}
#endif

#endif
