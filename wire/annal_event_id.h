/*  annal_event_id.h: event ids, 16 bytes: new ones (UUIDv7) and their text
    form, the 36 lower-case characters of RFC 9562 ("8-4-4-4-12"), which
    is how every reply and published event writes them. */
#ifndef ANNAL_EVENT_ID_H
#define ANNAL_EVENT_ID_H

#include <stddef.h>
#include <stdint.h>

#define ANNAL_EVENT_ID_TEXT 37 /* bytes of an id's text form, NUL included */

/* A new event id: a UUIDv7 (RFC 9562), 48 bits of Unix milliseconds then
   74 random bits (arc4random). Ids made in sequence order sort together,
   so the store's id index grows at its end instead of at random pages. */
void annal_event_id_new(uint8_t id[16]);

/* Writes id's text form (36 characters and a NUL) into text. */
void annal_event_id_format(const uint8_t id[16], char text[ANNAL_EVENT_ID_TEXT]);

/* Parses len bytes of text (not NUL-terminated) as a UUID in the text form,
   either case. Returns 0 and sets id, or -1 (id unchanged) when it is not
   one. */
int annal_event_id_parse(const char *text, size_t len, uint8_t id[16]);

#endif
