/*  fuzz_msg.c: libFuzzer target for the client's reply and event reader
    (libannal reads what a server, or anything at its address, sends). */
#include <stdint.h>

#include "annal_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    annal_msg_t *m = annal_msg_decode(data, size);
    if (m) {
        int64_t v;
        annal_msg_str(m, "type");
        annal_msg_int(m, "in_reply_to", &v);
        annal_msg_json(m, NULL);
        size_t n = annal_msg_len(m, "events");
        for (size_t i = 0; i < n && i < 8; i++) {
            annal_msg_t *e = annal_msg_item(m, "events", i);
            if (e)
                annal_msg_json(e, "event_data");
        }
        annal_msg_destroy(&m);
    }
    return 0;
}
