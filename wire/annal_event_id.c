/*  annal_event_id.c: event ids (see annal_event_id.h); the only wire file
    that calls libuuid. */
#include "annal_event_id.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

void annal_event_id_new(uint8_t id[16])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t) (ms >> (40 - 8 * i));
    arc4random_buf(id + 6, 10);
    id[6] = (uint8_t) (0x70 | (id[6] & 0x0f)); /* version 7 */
    id[8] = (uint8_t) (0x80 | (id[8] & 0x3f)); /* RFC variant */
}

void annal_event_id_format(const uint8_t id[16], char text[ANNAL_EVENT_ID_TEXT])
{
    uuid_unparse_lower(id, text);
}

int annal_event_id_parse(const char *text, size_t len, uint8_t id[16])
{
    char copy[ANNAL_EVENT_ID_TEXT];
    if (len != ANNAL_EVENT_ID_TEXT - 1)
        return -1;
    memcpy(copy, text, len);
    copy[len] = 0;
    return uuid_parse(copy, id) ? -1 : 0;
}
