/*  fuzz_line.c: libFuzzer target for the bridge's line parser (the test
    harness's line protocol, docs/protocol.md, section 3), and for building a
    reply line from it. */
#include <stdint.h>
#include <stdlib.h>

#include "annal_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    annal_line_t *line = NULL;
    char why[256];
    if (annal_line_parse((const char *) data, size, &line, why, sizeof why) == 0 && line) {
        size_t len;
        int64_t id;
        annal_line_body(line, &len);
        annal_line_msg_id(line, &id);
        static const uint8_t reply[] = "{\"type\":\"ok\",\"in_reply_to\":1}";
        free(annal_line_reply(line, reply, sizeof reply - 1));
        annal_line_destroy(&line);
    }
    return 0;
}
