/*  annal_admin.h: administration of a store on its own machine (annal-admin):
    online backup and migration. Only the admin tool calls these; the broker
    and the client side never do. */
#ifndef ANNAL_ADMIN_H
#define ANNAL_ADMIN_H

#include <stdint.h>

#include "annal_store.h"

/* Copies the store at location, while its annald goes on, into dest (a
   folder that must not exist, or be empty): a consistent store holding
   every event up to a point at or after the copy's start, to be served by
   `annald --data dest`. LMDB: a compacted copy of data.mdb as of its last
   checkpoint, from a read transaction, plus the journal's records after
   it (annal_lmdb_backup.c, s_backup).
   Returns 0, or -1 with the reason in why. */
int annal_store_backup(const char *location, const char *dest, char *why, size_t whylen);

/* Progress of a migration: events copied of total, snapshots copied. */
typedef void (*annal_progress_fn)(void *arg, uint64_t events, uint64_t total, uint64_t snapshots);

/* Copies the store at from (an LMDB folder, which no annald may be serving)
   into the empty store at to (a PostgreSQL database) as one transaction:
   every event with its sequence number, version, event_id and recorded_at,
   what idempotent retries need of its append, and every snapshot. A
   source that holds consumer groups is refused: the migration does not
   carry them yet, and must not drop them. Calls
   progress (when not NULL) now and then. Returns 0, or -1 with the reason
   in why (then the target is left as it was). */
int annal_store_migrate(const char *from, const char *to, annal_progress_fn progress, void *arg,
                        char *why, size_t whylen);

/* Gives the space the store at dir does not use back to the file system
   (docs/protocol.md, section 7). LMDB: its journal's batches checkpointed,
   data.mdb replaced by a compacted copy with no byte of unused space, the
   journal emptied; refused while an annald (or anything) has the store
   open: stop annald first; *before and *after get the folder's bytes in
   data.mdb and the journal. PostgreSQL: VACUUM FULL of the event and
   snapshot tables, with brokers running (they wait while a table is
   rewritten); *before and *after are 0. Returns 0, or -1 with the reason
   in why (the store is then as it was). */
int annal_store_compact(const char *dir, uint64_t *before, uint64_t *after, char *why,
                        size_t whylen);

/* The LMDB backend's halves of annal_store_backup and annal_store_compact
   (annal_lmdb_backup.c). */
int annal_lmdb_backup(const char *dir, const char *dest, char *why, size_t whylen);
int annal_lmdb_compact(const char *dir, uint64_t *before, uint64_t *after, char *why,
                       size_t whylen);

#endif
