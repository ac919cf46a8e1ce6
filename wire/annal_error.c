/*  annal_error.c: error codes and texts, mapped in one table. */
#include "annal_error.h"

static const struct {
    int code;
    const char *text;
} s_errors[] = {
    [ANNAL_OK] = {0, "ok"},
    [ANNAL_ERR_UNKNOWN_TYPE] = {10, "unknown request type"},
    [ANNAL_ERR_UNAVAILABLE] = {11, "temporarily unavailable, retry later"},
    [ANNAL_ERR_MALFORMED] = {12, "malformed request"},
    [ANNAL_ERR_INTERNAL] = {13, "internal error"},
    [ANNAL_ERR_NOT_FOUND] = {20, "not found"},
    [ANNAL_ERR_CONFLICT] = {0, "concurrency conflict"},
    [ANNAL_ERR_RETRY] = {11, "store resized, retry"},
    [ANNAL_ERR_NO_SPACE] = {11, "no space left on the store's disk"},
    [ANNAL_ERR_REFUSED] = {11, "the store refused the batch for now"},
};

int annal_err_code(annal_err_t err)
{
    if ((unsigned) err >= sizeof s_errors / sizeof s_errors[0])
        return 13;
    return s_errors[err].code;
}

const char *annal_strerror(annal_err_t err)
{
    if ((unsigned) err >= sizeof s_errors / sizeof s_errors[0])
        return "unknown error";
    return s_errors[err].text;
}
