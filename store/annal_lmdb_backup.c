/*  annal_lmdb_backup.c: the online backup of an LMDB store
    (annal_lmdb_backup, for annal_store_backup in annal_admin.h): a copy
    that an annald serving the store goes on through, and that annald
    --data can serve as it is. How the copy stays consistent without a
    lock between the two: s_backup. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annal_admin.h"
#include "annal_journal.h"
#include "annal_lmdb_private.h"

/* Copies file name from dir to dest and flushes it. */
static int s_copy_file(const char *dir, const char *dest, const char *name)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", dest, name);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? 0 : -1; /* a store that never journaled */
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = out < 0 ? -1 : 0;
    static char buf[1 << 16];
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(out, buf, (size_t) n) != n)
            rc = -1;
    }
    if (rc == 0 && fsync(out))
        rc = -1;
    close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* The journal generation data.mdb names now (its last checkpoint's). */
static int s_generation(MDB_env *env, uint64_t *gen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    for (int tries = 0; rc == MDB_MAP_RESIZED && tries < 5; tries++) /* annald grew the map */
        if ((rc = mdb_env_set_mapsize(env, 0)) == 0)
            rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_dbi dbi;
    MDB_val key = {strlen(JOURNAL_KEY), JOURNAL_KEY}, val;
    rc = mdb_dbi_open(txn, META_DB, 0, &dbi);
    if (rc == 0)
        rc = mdb_get(txn, dbi, &key, &val);
    *gen = 0;
    if (rc == 0 && val.mv_size == sizeof *gen)
        memcpy(gen, val.mv_data, sizeof *gen);
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* annal_journal_replay's callback that takes every record as it is. */
static int s_no_record(void *arg, const uint8_t *payload, size_t len)
{
    (void) arg;
    (void) payload;
    (void) len;
    return 0;
}

/* data.mdb first, as of annald's last checkpoint: a compacting copy, which
   reads one snapshot in a read transaction. (LMDB's plain copy takes the
   writer lock to read the meta pages; annald holds it between checkpoints
   and takes it again at once under load, and the lock is not fair: backups
   waited for minutes.) Then the journal: its records of the generation the
   copy names are the batches after that checkpoint, in order, each whole or
   dropped at replay. When no checkpoint came between the start of the one
   and the end of the other, the copy holds every batch up to the end of the
   journal's copy. Otherwise the journal is of a later generation (ignored
   at replay), and the copy is as of its data.mdb, whose checkpoint may
   predate the backup: then everything is copied again, and the second
   data.mdb is of a checkpoint made after the backup began. Recovery (a
   rebuild from the journal, which ends with a checkpoint) is one more
   checkpoint to it, so annald and backups need no lock between them: a
   backup never stops annald. A store whose annald is down is copied whole,
   its journal included. */
static int s_backup(const char *dir, const char *dest, const char *path, char *why, size_t whylen)
{
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/annal.journal", dest);
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) {
        snprintf(why, whylen, "opening %s: %s", dir, mdb_strerror(rc));
        return -1;
    }
    mdb_env_set_maxdbs(env, MAX_DBS);
    rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0644);
    if (rc)
        snprintf(why, whylen, "opening %s: %s", dir, mdb_strerror(rc));
    uint64_t before = 0, after = 0;
    for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
        unlink(path);
        unlink(jpath);
        rc = s_generation(env, &before);
        for (int tries = 0; rc == 0 && tries < 5; tries++) {
            rc = mdb_env_copy2(env, dest, MDB_CP_COMPACT); /* one read transaction */
            if (rc != MDB_MAP_RESIZED)
                break;
            unlink(path); /* annald grew the map meanwhile: map the new size, again */
            rc = mdb_env_set_mapsize(env, 0);
        }
        if (rc) {
            snprintf(why, whylen, "copying %s/data.mdb: %s", dir, mdb_strerror(rc));
            break;
        }
        if (s_copy_file(dir, dest, "annal.journal")) {
            snprintf(why, whylen, "copying %s/annal.journal: %s", dir, strerror(errno));
            rc = -1;
            break;
        }
        if ((rc = s_generation(env, &after))) {
            snprintf(why, whylen, "reading %s/data.mdb: %s", dir, mdb_strerror(rc));
            break;
        }
        if (after == before)
            break;
    }
    MDB_stat st;
    if (rc == 0 && (rc = mdb_env_stat(env, &st)))
        snprintf(why, whylen, "reading %s/data.mdb: %s", dir, mdb_strerror(rc));
    mdb_env_close(env);
    if (rc)
        return -1;
    /* removed means gone (docs/protocol.md, section 7): the journal's copy
       ends with the records of the generation the copy names (past them the
       file may hold older generations' bytes), and the copy of data.mdb
       keeps the bytes its pages held outside their nodes: they go (a
       compact copy has no free pages) */
    if (access(jpath, F_OK) == 0) {
        char jwhy[256] = "cannot read it";
        annal_journal_t *j = annal_journal_open(jpath, jwhy, sizeof jwhy);
        int64_t records = j ? annal_journal_replay(j, after, s_no_record, NULL) : -1;
        uint64_t used = j ? annal_journal_used(j) : 0;
        annal_journal_close(&j);
        if (records < 0 || truncate(jpath, (off_t) used)) {
            snprintf(why, whylen, "trimming %s: %s", jpath, records < 0 ? jwhy : strerror(errno));
            return -1;
        }
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat fs;
    size_t pages = fd >= 0 && fstat(fd, &fs) == 0 ? (size_t) fs.st_size / st.ms_psize : 0, end;
    uint8_t *map = calloc(pages ? pages : 1, 1);
    bool clean = map && annal_lmdb_zero_unused(fd, st.ms_psize, 0, pages, map, &end) == 0;
    free(map);
    if (fd < 0 || !clean || fsync(fd)) {
        snprintf(why, whylen, "flushing %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    annal_lmdb_sync_dir(dest);
    return 0;
}

/* annal_admin.h: checks the folders, then s_backup. */
int annal_lmdb_backup(const char *dir, const char *dest, char *why, size_t whylen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (access(path, R_OK)) {
        snprintf(why, whylen, "%s is not an annal store: %s", dir, strerror(errno));
        return -1;
    }
    if (mkdir(dest, 0755) && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %s: %s", dest, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/data.mdb", dest);
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/annal.journal", dest);
    if (access(path, F_OK) == 0 || access(jpath, F_OK) == 0) {
        snprintf(why, whylen, "%s already holds a store; back up into a new folder", dest);
        return -1;
    }
    return s_backup(dir, dest, path, why, whylen);
}

/* --- compaction (annal_store_compact) ------------------------------------------------ */

/* The bytes of data.mdb and the journal in dir. */
static uint64_t s_store_bytes(const char *dir)
{
    uint64_t total = 0;
    const char *names[] = {"data.mdb", "annal.journal"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            total += (uint64_t) st.st_size;
    }
    return total;
}

/* Opening the store checkpoints its journal (annal_lmdb.c, s_recover) and
   refuses a store in use; then, under the store's own lock (annal.lock, so
   that no annald starts meanwhile), a compacted copy of data.mdb with its
   unused space zeroed takes the file's place, and the journal, empty after
   the checkpoint, is truncated. A crash leaves either file whole: the copy
   is renamed over data.mdb once flushed. */
int annal_lmdb_compact(const char *dir, uint64_t *before, uint64_t *after, char *why, size_t whylen)
{
    char path[4096], tmp[4096], lock[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (access(path, R_OK)) {
        snprintf(why, whylen, "%s is not an annal store: %s", dir, strerror(errno));
        return -1;
    }
    *before = s_store_bytes(dir);
    annal_store_options_t opts = {0};
    annal_store_t *store = annal_store_open(dir, &opts, why, whylen);
    if (!store)
        return -1; /* in use: "in use by another annal process (pid N)" */
    annal_store_close(&store);
    snprintf(lock, sizeof lock, "%s/annal.lock", dir);
    int lfd = open(lock, O_RDWR | O_CLOEXEC);
    if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB)) {
        snprintf(why, whylen, "data folder %s is in use by another annal process", dir);
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/compact.tmp", dir);
    int rc = -1;
    MDB_env *env;
    if (mkdir(tmp, 0755) && errno != EEXIST)
        snprintf(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
    else if (mdb_env_create(&env) == 0) {
        mdb_env_set_maxdbs(env, MAX_DBS);
        int mrc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0644);
        MDB_stat st;
        unlink(strcat(strcpy(path, tmp), "/data.mdb"));
        if (!mrc && !(mrc = mdb_env_copy2(env, tmp, MDB_CP_COMPACT)))
            mrc = mdb_env_stat(env, &st);
        mdb_env_close(env);
        if (mrc)
            snprintf(why, whylen, "copying %s/data.mdb: %s", dir, mdb_strerror(mrc));
        else {
            int fd = open(path, O_RDWR | O_CLOEXEC);
            struct stat fs;
            size_t pages = fd >= 0 && fstat(fd, &fs) == 0 ? (size_t) fs.st_size / st.ms_psize : 0;
            size_t end;
            uint8_t *map = calloc(pages ? pages : 1, 1);
            bool ok = map && annal_lmdb_zero_unused(fd, st.ms_psize, 0, pages, map, &end) == 0
                      && fsync(fd) == 0;
            free(map);
            if (fd >= 0)
                close(fd);
            char dest[4096], journal[4096];
            snprintf(dest, sizeof dest, "%s/data.mdb", dir);
            snprintf(journal, sizeof journal, "%s/annal.journal", dir);
            if (!ok || rename(path, dest))
                snprintf(why, whylen, "replacing %s: %s", dest, strerror(errno));
            else {
                annal_lmdb_sync_dir(dir);
                /* the journal is empty after the checkpoint: its bytes go */
                rc = truncate(journal, 0) && errno != ENOENT ? -1 : 0; /* none: no journal */
                if (rc)
                    snprintf(why, whylen, "emptying %s: %s", journal, strerror(errno));
            }
        }
    }
    else
        snprintf(why, whylen, "opening %s: out of memory", dir);
    unlink(path);
    rmdir(tmp);
    flock(lfd, LOCK_UN);
    close(lfd);
    *after = s_store_bytes(dir);
    return rc;
}
