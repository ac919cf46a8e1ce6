/*  annal_error.h: the one error enum of annal and its mapping to the
    protocol's error codes (docs/protocol.md, section 5). */
#ifndef ANNAL_ERROR_H
#define ANNAL_ERROR_H

typedef enum {
    ANNAL_OK = 0,
    ANNAL_ERR_UNKNOWN_TYPE,   /* request type not supported -> 10 */
    ANNAL_ERR_UNAVAILABLE,    /* store busy, disk full, backend down -> 11 */
    ANNAL_ERR_MALFORMED,      /* bad request -> 12 */
    ANNAL_ERR_INTERNAL,       /* a bug; nothing partial written -> 13 */
    ANNAL_ERR_NOT_FOUND,      /* no such snapshot / version -> 20 */
    ANNAL_ERR_CONFLICT,       /* expected version mismatch (concurrency_error) */
    ANNAL_ERR_RETRY,          /* store grew its map: run the whole batch again */
    ANNAL_ERR_NO_SPACE,       /* the disk is full: nothing written, retry later -> 11 */
    ANNAL_ERR_REFUSED         /* the store refused a commit for now: nothing written -> 11 */
} annal_err_t;

/* The protocol error code of err (10, 11, 12, 13, 20); 0 for OK and CONFLICT. */
int annal_err_code(annal_err_t err);

/* A short text for err; borrowed, static. */
const char *annal_strerror(annal_err_t err);

#endif
