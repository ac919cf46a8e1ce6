/*  annal_client_private.h: what the other modules of libannal borrow from
    the client (the subscription, the consumer group calls, the worker).
    Hidden: none of it is exported by libannal.so. */
#ifndef ANNAL_CLIENT_PRIVATE_H
#define ANNAL_CLIENT_PRIVATE_H

#include "annal_client.h"
#include "annal_codec.h"
#include "annal_curve_private.h"

/* Fills r from an event message (strings owned by m). Returns 0, or -1 when
   a field is missing. */
int annal_record_from_msg(annal_msg_t *m, annal_record_t *r);

/* Fills res (when not NULL) with status, code and the formatted text, and
   returns status. */
annal_status_t annal_client_result(annal_result_t *res, annal_status_t status, int code,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Starts a request of command cmd with a fresh msg_id (returned); *body is
   the client's builder, to add the command's fields to before the call. */
int64_t annal_client_begin(annal_client_t *self, annal_cmd_t cmd, annal_body_t **body);

/* Sends the built request and waits for its reply, for the client's timeout
   plus wait_ms (a long poll's wait, >= 0): error replies become statuses,
   a reply of another type than want_type is ANNAL_FAILED (code 13). */
annal_status_t annal_client_call(annal_client_t *self, int64_t msg_id, const char *want_type,
                                 int wait_ms, annal_result_t *res);

/* The last reply (borrowed, until the next call), or NULL. */
annal_msg_t *annal_client_reply(annal_client_t *self);

/* The last reply, now the caller's (annal_msg_destroy), or NULL. */
annal_msg_t *annal_client_take_reply(annal_client_t *self);

#endif
