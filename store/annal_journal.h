/*  annal_journal.h: a write-ahead journal, the durability point of a store.

    A batch is durable once its record is in the journal: one write and one
    fdatasync. The main store file takes the batches later, many at once, at
    a checkpoint; the journal then starts again at its beginning under the
    next generation number. After a crash, the records of the current
    generation are replayed in order up to the first that is not whole.

    The file is zero-filled ahead of the writes and reused from the start
    after every checkpoint, so a record's fdatasync flushes data only: the
    file's size and blocks do not change under it.

    Record: header, then payload; integers in the host's native order
    (not portable across endianness, as the LMDB store it serves is not:
    annal_lmdb.c).
    | offset | size | field                                        |
    | ------ | ---- | -------------------------------------------- |
    | 0      | 4    | magic "ANJ1"                                 |
    | 4      | 4    | CRC-32C of bytes 8 .. end of payload         |
    | 8      | 8    | generation (u64)                             |
    | 16     | 4    | index of the record in its generation (u32)  |
    | 20     | 4    | payload length (u32)                         |
    The payload's meaning belongs to the store that writes it. */
#ifndef ANNAL_JOURNAL_H
#define ANNAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "annal_error.h"

#define ANNAL_JOURNAL_HEADER 24

typedef struct annal_journal_t annal_journal_t;

/* Opens, creating it if missing, the journal file at path. NULL on failure,
   with the reason in why. */
annal_journal_t *annal_journal_open(const char *path, char *why, size_t whylen);
void annal_journal_close(annal_journal_t **self);

/* Calls fn(arg, payload, len) for each whole record of generation gen, from
   the beginning, in order, and positions the journal after the last one.
   Returns the number of records, or -1 when fn failed or the file cannot be
   read. */
int64_t annal_journal_replay(annal_journal_t *self, uint64_t gen,
                             int (*fn)(void *arg, const uint8_t *payload, size_t len), void *arg);

/* Starts generation gen at the beginning of the file: every record before
   is in the main store. */
void annal_journal_reset(annal_journal_t *self, uint64_t gen);

/* Writes the record in rec (len bytes, the first ANNAL_JOURNAL_HEADER of
   them left for the header, which this fills in) and makes it durable.
   ANNAL_ERR_NO_SPACE when the file cannot grow for lack of space, and
   ANNAL_ERR_UNAVAILABLE for another reason (either way nothing of the
   record is in the journal); ANNAL_ERR_INTERNAL when the write or the flush failed
   (the record may or may not be there: the caller must stop and recover). */
annal_err_t annal_journal_write(annal_journal_t *self, uint8_t *rec, size_t len);

/* Zero-fills the file from the end of the current generation's records
   on, and flushes: no byte of an earlier generation stays in it
   (docs/protocol.md, section 7: removed means gone). 0, or -1. */
int annal_journal_wipe(annal_journal_t *self);

/* Bytes written in the current generation. */
uint64_t annal_journal_used(const annal_journal_t *self);

/* CRC-32C (Castagnoli) of len bytes, continuing from crc (0 to start). */
uint32_t annal_crc32c(uint32_t crc, const void *data, size_t len);

#endif
