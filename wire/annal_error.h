/*  annal_error.h: the one error enum of annal, its mapping to the
    protocol's error codes (docs/protocol.md, section 5), and what the
    broker does with a batch when a request's store call or the commit
    returns it (its disposition). All three are columns of one table in
    annal_error.c. */
#ifndef ANNAL_ERROR_H
#define ANNAL_ERROR_H

typedef enum {
    ANNAL_OK = 0,
    ANNAL_ERR_UNKNOWN_TYPE, /* request type not supported -> 10 */
    ANNAL_ERR_UNAVAILABLE,  /* store busy, disk full, backend down -> 11 */
    ANNAL_ERR_MALFORMED,    /* bad request -> 12 */
    ANNAL_ERR_INTERNAL,     /* a bug; nothing partial written -> 13 */
    ANNAL_ERR_NOT_FOUND,    /* no such snapshot / version -> 20 */
    ANNAL_ERR_CONFLICT,     /* expected version mismatch (concurrency_error) */
    ANNAL_ERR_RETRY,        /* store grew its map: run the whole batch again */
    ANNAL_ERR_NO_SPACE,     /* the disk is full: nothing written, retry later -> 11 */
    ANNAL_ERR_REFUSED,      /* the store refused a commit for now: nothing written -> 11 */
    ANNAL_ERR_GONE          /* the aggregate was deleted for good (hard) -> 21 */
} annal_err_t;

/* What a batch does about an error (broker/annal_broker.c, s_run_batch).
   The zero value is the cautious one, so that an error given no
   disposition is treated as of unknown extent. */
typedef enum {
    ANNAL_DISP_ABORT_UNKNOWN = 0, /* unknown extent: answer this request with it, drop
                                     the batch, run the rest again; at commit: answer
                                     the whole batch "may or may not be stored" */
    ANNAL_DISP_DONE,              /* no error: the request answered itself, go on */
    ANNAL_DISP_ANSWER,            /* answer this request with it; nothing was written
                                     by it; go on */
    ANNAL_DISP_RERUN,             /* the batch was lost (the map grew): run it all again */
    ANNAL_DISP_REFUSE_WRITES      /* the batch's writes failed, not this request: answer
                                     every write "nothing was written", run the reads
                                     again */
} annal_disposition_t;

/* The protocol error code of err (10, 11, 12, 13, 20, 21); 0 for OK and CONFLICT. */
int annal_err_code(annal_err_t err);

/* A short text for err; borrowed, static. */
const char *annal_strerror(annal_err_t err);

/* What a batch does when a store call returns err; ANNAL_DISP_ABORT_UNKNOWN
   for a value that is not an annal_err_t. */
annal_disposition_t annal_err_disposition(annal_err_t err);

#endif
