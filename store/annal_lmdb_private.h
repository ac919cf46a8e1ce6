/*  annal_lmdb_private.h: what the LMDB backend's files share, and nothing
    outside them may use: annal_lmdb.c (the store, its on-disk format in
    its design note) and annal_lmdb_backup.c (the online backup, which
    reads a store that an annald may be serving). */
#ifndef ANNAL_LMDB_PRIVATE_H
#define ANNAL_LMDB_PRIVATE_H

#define MAX_DBS     16        /* mdb_env_set_maxdbs: the named databases, with room */
#define META_DB     "meta"    /* the database of the store's own entries */
#define JOURNAL_KEY "journal" /* meta: the journal generation data.mdb holds (u64) */

/* Makes the folder's entries (a new file's name) durable. */
void annal_lmdb_sync_dir(const char *dir);

#endif
