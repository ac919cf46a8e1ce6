/*  annal_msg.h: reading replies and events on the client side, in either
    encoding: a decoded message answers field by field, and hands out
    strings, JSON text and child messages that it owns until it is
    destroyed. Anything may arrive at a client's address, so every input
    is checked: a body that is not a map, or nests past 64 levels, is not a
    message. */
#ifndef ANNAL_MSG_H
#define ANNAL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct annal_msg_t annal_msg_t;

/* Decodes a body in either encoding; NULL when it is not a JSON object or a
   MessagePack map (or is nested past 64 levels). */
annal_msg_t *annal_msg_decode(const uint8_t *data, size_t size);

/* Frees the message and everything read from it; safe twice. */
void annal_msg_destroy(annal_msg_t **self);

/* Field key as a string (NUL-terminated, owned by the message); NULL when
   absent or not a string. */
const char *annal_msg_str(annal_msg_t *self, const char *key);

/* Field key as an integer; false when absent or not an integer. */
bool annal_msg_int(const annal_msg_t *self, const char *key, int64_t *value);

/* Whether field key is there and null. */
bool annal_msg_is_null(const annal_msg_t *self, const char *key);

/* Field key (or the whole message when key is NULL) as compact JSON text,
   owned by the message; NULL when absent. */
const char *annal_msg_json(annal_msg_t *self, const char *key);

/* Entries of array field key (0 when absent or not an array). */
size_t annal_msg_len(const annal_msg_t *self, const char *key);

/* Entry i of array field key as a message (owned by self); NULL when it is
   not a map. */
annal_msg_t *annal_msg_item(annal_msg_t *self, const char *key, size_t i);

/* Entry i of array field key as a string (owned by self), or NULL. */
const char *annal_msg_str_item(annal_msg_t *self, const char *key, size_t i);

#endif
