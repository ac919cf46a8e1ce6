/*  annal_line.h: the harness's line protocol (docs/protocol.md, section 3):
    {"src": S, "dest": D, "body": {...}} in, {"src": D, "dest": S,
    "body": reply} out, one JSON text per line in Python's json.dumps style. */
#ifndef ANNAL_LINE_H
#define ANNAL_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct annal_line_t annal_line_t;

/* Parses one input line. Returns 0 with *self set (owned by the caller),
   1 for a blank line, or -1 with a reason in why when the line is not a
   JSON object. */
int annal_line_parse(const char *text, size_t len, annal_line_t **self, char *why, size_t whylen);

/* The request body as compact JSON text ("null" when the line had none);
   borrowed from self. */
const char *annal_line_body(const annal_line_t *self, size_t *len);

/* The reply line for reply (JSON text), src and dest swapped, ending in
   "\n"; caller frees. NULL when reply is not JSON or out of memory. */
char *annal_line_reply(const annal_line_t *self, const uint8_t *reply, size_t len);

/* The body's msg_id, when it has an integer one. */
bool annal_line_msg_id(const annal_line_t *self, int64_t *msg_id);

void annal_line_destroy(annal_line_t **self);

#endif
