/*  annal_error.c: error codes, texts and batch dispositions, mapped in one
    table, a row per error.

    The dispositions are the broker's batch rules (broker/annal_broker.c,
    design notes 4-6) as data. Errors that no store call returns (unknown
    type, conflict: the append handler answers a conflict itself and
    returns OK) keep the cautious ANNAL_DISP_ABORT_UNKNOWN, which a row
    without a disposition gets too. */
#include "annal_error.h"

static const struct {
    int code;                        /* protocol error code */
    const char *text;                /* default text of an error reply */
    annal_disposition_t disposition; /* what a batch does about it */
} s_errors[] = {
    [ANNAL_OK] = {0, "ok", ANNAL_DISP_DONE},
    [ANNAL_ERR_UNKNOWN_TYPE] = {10, "unknown request type", ANNAL_DISP_ABORT_UNKNOWN},
    [ANNAL_ERR_UNAVAILABLE] = {11, "temporarily unavailable, retry later",
                               ANNAL_DISP_ABORT_UNKNOWN},
    [ANNAL_ERR_MALFORMED] = {12, "malformed request", ANNAL_DISP_ANSWER},
    [ANNAL_ERR_INTERNAL] = {13, "internal error", ANNAL_DISP_ABORT_UNKNOWN},
    [ANNAL_ERR_NOT_FOUND] = {20, "not found", ANNAL_DISP_ANSWER},
    [ANNAL_ERR_CONFLICT] = {0, "concurrency conflict", ANNAL_DISP_ABORT_UNKNOWN},
    [ANNAL_ERR_RETRY] = {11, "store resized, retry", ANNAL_DISP_RERUN},
    [ANNAL_ERR_NO_SPACE] = {11, "no space left on the store's disk", ANNAL_DISP_REFUSE_WRITES},
    [ANNAL_ERR_REFUSED] = {11, "the store refused the batch for now", ANNAL_DISP_REFUSE_WRITES},
    [ANNAL_ERR_GONE] = {21, "the aggregate was deleted for good", ANNAL_DISP_ANSWER},
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

annal_disposition_t annal_err_disposition(annal_err_t err)
{
    if ((unsigned) err >= sizeof s_errors / sizeof s_errors[0])
        return ANNAL_DISP_ABORT_UNKNOWN;
    return s_errors[err].disposition;
}
