/*  fuzz_request.c: libFuzzer target for the request decoders (JSON and
    MessagePack, told apart by the first byte as annald does). Whatever the
    bytes, decoding ends in a request or an error with a reason, and the
    reset that follows either leaves nothing behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "annal_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    annal_request_t req;
    annal_encoding_t enc;
    char why[256];
    why[0] = 0;
    annal_err_t err = annal_request_decode(data, size, NULL, &req, &enc, why, sizeof why);
    annal_request_reset(&req); /* after success or failure, as annal_request.h says */
    if (err != ANNAL_OK && !why[0]) {
        fprintf(stderr, "error %d without a reason\n", (int) err);
        abort();
    }
    return 0;
}
