/*  annal_lmdb_private.h: what the LMDB backend's files share, and nothing
    outside them may use: annal_lmdb.c (the store, its on-disk format in
    its design note) and annal_lmdb_backup.c (the online backup, which
    reads a store that an annald may be serving). */
#ifndef ANNAL_LMDB_PRIVATE_H
#define ANNAL_LMDB_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#define MAX_DBS     16        /* mdb_env_set_maxdbs: the named databases, with room */
#define META_DB     "meta"    /* the database of the store's own entries */
#define JOURNAL_KEY "journal" /* meta: the journal generation data.mdb holds (u64) */
/* meta: the page the scrub's pass goes on from (u64); absent: no removal
   to scrub (annal_lmdb.c, "removed means gone") */
#define SCRUB_KEY "scrub"

/* Makes the folder's entries (a new file's name) durable. */
void annal_lmdb_sync_dir(const char *dir);

/* Zeroes, in data.mdb (fd, pages of psize bytes), what pages [from,
   from + n) hold of no live data (docs/protocol.md, section 7): the free
   pages whole (map[i] == 1 for page from + i; 2: free but maybe still
   reachable, left as it is), the free space between the nodes of a branch
   or leaf page; meta pages and overflow runs are left. *end is past the
   last page looked at (an overflow run may end past from + n). 0, or -1. */
int annal_lmdb_zero_unused(int fd, size_t psize, size_t from, size_t n, const uint8_t *map,
                           size_t *end);

#endif
