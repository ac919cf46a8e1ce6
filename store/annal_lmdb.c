/*  annal_lmdb.c: the embedded LMDB backend.

    NOTES ON THE DESIGN
    A batch is durable when its record is in the journal (annal_journal.h):
    one write and one flush, where an LMDB commit costs two (data pages,
    then the meta page). The batches themselves go into one long-lived LMDB
    write transaction, the root, which reads see them through; a failed
    batch is undone by rebuilding the root from the journal (rare). A
    checkpoint commits the root (LMDB's own durable commit) once the journal
    holds ANNAL_CHECKPOINT_BYTES or its oldest record is ANNAL_CHECKPOINT_MS
    old, and at close; the journal then starts again under the generation
    number the commit stored in meta. LMDB's copy-on-write B-trees switch to
    a new root only when the meta page is written, so after a crash at any
    moment data.mdb is the last checkpoint, whole, and opening replays the
    journal's records of that generation on top of it (and checkpoints).

    Byte order: every integer the store writes, in its databases and in
    its journal, is in the host's native order (the value's bytes as they
    are in memory), except the version in the keys of streams and
    snapshots and the sequence in the keys of group_marks, which are
    big-endian so that those keys sort in version (sequence) order. On a
    little-endian host (x86-64, arm64) native is little-endian; on a
    big-endian one it would be big-endian. So a store is not portable
    across endianness, and not across word size either (the events key is
    a size_t, which the code takes to be 8 bytes); nor is LMDB's own
    data.mdb, whose pages are native too. Copy a store's files only to a
    machine of the same kind. Another byte order would be another format
    (FORMAT_VALUE).

    Databases (all keys compared as bytes unless said):
    | db          | key                                      | value                   |
    | ----------- | ---------------------------------------- | ----------------------- |
    | meta        | "format"                                 | "annal-lmdb-1"          |
    | meta        | "journal"                                | generation (u64 native) |
    | events      | sequence (size_t native, MDB_INTEGERKEY) | event record (below)    |
    | streams     | aggregate_id, 0x00, version (u64 BE)     | sequence (u64 native)   |
    | aggregates  | aggregate_id                             | version (u64 native)    |
    | event_ids   | event_id (16 bytes)                      | sequence (u64 native)   |
    | snapshots   | aggregate_id, 0x00, version (u64 BE)     | kind (1 byte), state    |
    | groups      | group name                               | group record (below)    |
    | group_marks | group name, 0x00, sequence (u64 BE)      | mark (below)            |
    | removals    | aggregate_id                             | floor, left (u64 native each) |
    | retention   | aggregate_id                             | max_count, max_age_s (u64 native each) |
    An aggregates value of 9 bytes is an aggregate deleted for good (hard,
    docs/protocol.md, section 7): its version, then a byte of flags
    (AGG_GONE). A removals entry is a removal the sweep has not finished:
    every version of the aggregate up to floor is removed (reads skip them
    from the moment remove is called), left of them are still stored.
    Removal is always of a prefix of an aggregate's versions, so the
    versions stored of an aggregate are always a dense run ending at its
    version, and the global head is never removed (it is the newest event
    of its aggregate). A retention entry is a policy (0: no such limit);
    reads apply it to each event of the aggregate as they meet it, and the
    sweep turns what it removes into a removals entry (its snapshots stay).
    removals and retention came after groups, and are created like them.
    Snapshot kind: 0 = the default fold, 1 = a client's own state; the state
    is a canonical blob. Aggregate ids hold no 0x00, so "id, 0x00" sorts each aggregate's keys
    together and in version order; group names hold none either (the codec
    gives them the aggregate id rules), so "name, 0x00" sorts a group's marks
    together and in sequence order. groups and group_marks came after the
    others: a store made before them gains them, empty, at its next open.
    The format (FORMAT_VALUE) stays: nothing stored before changed meaning,
    an annal from before groups serves such a store's events as they are
    (it never opens the two), and refuses its journal while that holds
    group writes (see the journal payload below).

    Event record (integers native; the code names its offsets once: REC_*):
    | offset | size | field                      |
    | ------ | ---- | -------------------------- |
    | 0      | 1    | record format, 1           |
    | 1      | 16   | event_id                   |
    | 17     | 8    | version                    |
    | 25     | 8    | recorded_at (us, signed)   |
    | 33     | 2    | aggregate_id length A      |
    | 35     | 2    | event_type length T        |
    | 37     | 4    | event_data length D        |
    | 41     | 4    | metadata length M          |
    | 45     | 4    | append size: events in the append it came in |
    | 49     | 4    | its index in that append (0 = first)          |
    | 53     | A+T+D+M | the four fields, in order |

    Group record (a consumer group's settings and floor, annal_group_def_t;
    integers native; offsets GREC_*):
    | offset | size | field                                         |
    | ------ | ---- | --------------------------------------------- |
    | 0      | 1    | record format, 1                              |
    | 1      | 1    | flags: 1 = ordering "none" (else by aggregate), 2 = from "end" |
    | 2      | 2    | prefix length P                               |
    | 4      | 2    | event type count N (0 = every type)           |
    | 6      | 4    | ack_timeout_ms                                |
    | 10     | 4    | max_deliveries                                |
    | 14     | 8    | start_sequence                                |
    | 22     | 8    | floor                                         |
    | 30     | P    | the prefix                                    |
    | 30+P   | ...  | N event types, each: u16 length L, L bytes    |

    Mark (one group event's state above the floor, annal_group_mark_t;
    integers native; offsets MARK_*):
    | offset | size | field                                           |
    | ------ | ---- | ----------------------------------------------- |
    | 0      | 1    | mark: 1 acked, 2 parked, 3 ready (annal_mark_t) |
    | 1      | 4    | delivery count                                  |
    | 5      | R    | reason (R = value length - 5; 0: none)          |

    Invariants (see annal_store.h) plus:
    1. head == the largest key of events; entries of events == the events
       readable + the sum of removals' left.
    2. aggregates[id] == the largest version in streams for id.
    3. Every event_ids entry points at an event with that id.
    4. Every group_marks key's name has a groups record (group_mark needs
       one; group_delete drops the marks with the record).
    The map starts small and doubles when LMDB reports it full: the batch is
    dropped, the root checkpointed, the map grown, and the broker runs the
    batch again.

    Journal payload: the batch's writes, in order, each (integers native;
    offsets OP_*)
    | u8 db | u8 kind | u16 key length K | u32 value length V | key | value |
    with db the index in dbi[] below (an index never changes meaning: new
    databases take new ones) and kind 0 a put (of the value), 1 a delete
    (of the key; V is 0). Replay does them again, in order; a delete of a
    key that is not there is no error. Journals written before deletes
    existed hold kind 0 only (that byte was always 0): they replay as they
    did. An annal from before groups refuses a journal that writes them (a
    db index past its own), rather than dropping part of a batch. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annal_event_id.h"
#include "annal_journal.h"
#include "annal_limits.h"
#include "annal_lmdb_private.h"
#include "annal_store.h"
#include "annal_time.h"

#define FORMAT_KEY      "format"
#define FORMAT_VALUE    "annal-lmdb-1"
#define RECORD_FORMAT   1
#define SNAPSHOT_FOLDED 0
#define SNAPSHOT_CLIENT 1
#define DEFAULT_MAP     (64u << 20)
#define MAX_STEP        ((size_t) 4 << 30) /* grow by doubling, at most 4 GiB at a time */
#define KEY_MAX         (ANNAL_MAX_AGGREGATE_ID + 9)
#define GROUP_FORMAT    1
#define GROUP_NAME_MAX  ANNAL_MAX_AGGREGATE_ID /* group names follow the aggregate id rules */

/* The journal names a database by its index here: append only. */
enum {
    DB_META,
    DB_EVENTS,
    DB_STREAMS,
    DB_AGGREGATES,
    DB_EVENT_IDS,
    DB_SNAPSHOTS,
    DB_GROUPS,
    DB_GROUP_MARKS,
    DB_REMOVALS,
    DB_RETENTION,
    DB_COUNT
};
_Static_assert(DB_COUNT <= MAX_DBS, "MAX_DBS holds every named database");

/* The event record's header (the table above): where each field starts. */
enum {
    REC_FORMAT = 0,        /* u8: RECORD_FORMAT */
    REC_EVENT_ID = 1,      /* 16 bytes */
    REC_VERSION = 17,      /* u64 */
    REC_RECORDED_AT = 25,  /* i64, microseconds */
    REC_AGG_LEN = 33,      /* u16: aggregate_id length A */
    REC_TYPE_LEN = 35,     /* u16: event_type length T */
    REC_DATA_LEN = 37,     /* u32: event_data length D */
    REC_META_LEN = 41,     /* u32: metadata length M */
    REC_APPEND_SIZE = 45,  /* u32: events in the append it came in */
    REC_APPEND_INDEX = 49, /* u32: its index in that append (0 = first) */
    REC_HEADER = 53        /* the header's size: aggregate_id, event_type, data, metadata follow */
};

/* The group record's flags (GREC_FLAGS). */
#define GREC_UNORDERED 1 /* ordering "none" (else "aggregate") */
#define GREC_FROM_END  2 /* created with from_sequence "end" */

/* The group record's header (the table above). */
enum {
    GREC_FORMAT = 0,          /* u8: GROUP_FORMAT */
    GREC_FLAGS = 1,           /* u8: GREC_UNORDERED | GREC_FROM_END */
    GREC_PREFIX_LEN = 2,      /* u16: prefix length P */
    GREC_NTYPES = 4,          /* u16: event type count N */
    GREC_ACK_TIMEOUT = 6,     /* u32: ack_timeout_ms */
    GREC_MAX_DELIVERIES = 10, /* u32: max_deliveries */
    GREC_START = 14,          /* u64: start_sequence */
    GREC_FLOOR = 22,          /* u64: floor */
    GREC_HEADER = 30          /* the header's size: the prefix, then the types, follow */
};

/* A mark's value (the table above). */
enum {
    MARK_KIND = 0,     /* u8: annal_mark_t */
    MARK_DELIVERY = 1, /* u32: delivery count */
    MARK_HEADER = 5    /* the header's size: the reason follows */
};

/* A journal op's header (the payload table above). */
enum {
    OP_DB = 0,    /* u8: the db's index in dbi[] */
    OP_KIND = 1,  /* u8: OP_PUT or OP_DELETE */
    OP_KLEN = 2,  /* u16: key length K */
    OP_VLEN = 4,  /* u32: value length V */
    OP_HEADER = 8 /* the header's size: the key, then the value, follow */
};

/* A journal op's kind (OP_KIND). */
enum {
    OP_PUT = 0,   /* put the value under the key (every op of journals before groups) */
    OP_DELETE = 1 /* delete the key, if there; no value */
};

/* Each field ends where the next begins: it is as wide as the C value it
   is read into and written from. */
#define FIELD(at, value, next) _Static_assert((next) - (at) == sizeof(value), #at " is " #value)
FIELD(REC_FORMAT, uint8_t, REC_EVENT_ID);
FIELD(REC_EVENT_ID, ((annal_new_event_t *) 0)->event_id, REC_VERSION);
FIELD(REC_VERSION, ((annal_event_t *) 0)->version, REC_RECORDED_AT);
FIELD(REC_RECORDED_AT, ((annal_event_t *) 0)->recorded_at, REC_AGG_LEN);
FIELD(REC_AGG_LEN, uint16_t, REC_TYPE_LEN);
FIELD(REC_TYPE_LEN, uint16_t, REC_DATA_LEN);
FIELD(REC_DATA_LEN, uint32_t, REC_META_LEN);
FIELD(REC_META_LEN, uint32_t, REC_APPEND_SIZE);
FIELD(REC_APPEND_SIZE, ((annal_stored_t *) 0)->append_size, REC_APPEND_INDEX);
FIELD(REC_APPEND_INDEX, ((annal_stored_t *) 0)->append_index, REC_HEADER);
FIELD(GREC_FORMAT, uint8_t, GREC_FLAGS);
FIELD(GREC_FLAGS, uint8_t, GREC_PREFIX_LEN);
FIELD(GREC_PREFIX_LEN, uint16_t, GREC_NTYPES);
FIELD(GREC_NTYPES, uint16_t, GREC_ACK_TIMEOUT);
FIELD(GREC_ACK_TIMEOUT, ((annal_group_def_t *) 0)->ack_timeout_ms, GREC_MAX_DELIVERIES);
FIELD(GREC_MAX_DELIVERIES, ((annal_group_def_t *) 0)->max_deliveries, GREC_START);
FIELD(GREC_START, ((annal_group_def_t *) 0)->start, GREC_FLOOR);
FIELD(GREC_FLOOR, ((annal_group_def_t *) 0)->floor, GREC_HEADER);
FIELD(MARK_KIND, uint8_t, MARK_DELIVERY);
FIELD(MARK_DELIVERY, ((annal_group_mark_t *) 0)->delivery, MARK_HEADER);
FIELD(OP_DB, uint8_t, OP_KIND);
FIELD(OP_KIND, uint8_t, OP_KLEN);
FIELD(OP_KLEN, uint16_t, OP_VLEN);
FIELD(OP_VLEN, uint32_t, OP_HEADER);
#undef FIELD

/* Memory a view of a group lives in, reused (a group's strings are not
   NUL-terminated in its record). */
typedef struct {
    void *buf;  /* the view's types array, then its strings */
    size_t cap; /* bytes allocated */
} scratch_t;

typedef struct {
    MDB_env *env;             /* the environment */
    MDB_dbi dbi[DB_COUNT];    /* see the table */
    MDB_txn *root;            /* every batch since the last checkpoint, or NULL */
    pthread_t root_thread;    /* the thread that began root: LMDB's write lock is its */
    MDB_txn *txn;             /* the open batch (a child of root), or NULL */
    annal_journal_t *journal; /* where batches become durable */
    uint64_t gen;             /* the journal's generation since the last checkpoint */
    int64_t since;            /* monotonic ms of the generation's first record */
    uint8_t *jbuf;            /* the open batch's journal record */
    size_t jlen, jcap;        /* bytes used and allocated in jbuf */
    int lock_fd;              /* holds the folder's flock */
    uint64_t head;            /* last committed sequence */
    uint64_t txn_head;        /* last sequence inside the open batch */
    int64_t last_recorded;    /* recorded_at of the last committed event */
    int64_t txn_recorded;     /* recorded_at given to the open batch */
    size_t map_size;          /* current map size */
    bool grow;                /* the open batch hit MDB_MAP_FULL */
    bool failed;              /* a failure of unknown outcome: rebuild from the journal first */
    int64_t retry_at;         /* no checkpoint before this (monotonic ms): the last one found
                              the disk full */
    bool env_ready;           /* open has finished */
    int replay_rc;            /* the LMDB error that stopped a replay */
    char *dir;                /* the data folder */
    bool scrub_fresh;         /* no page buffer holds removed bytes (the env is new since) */
    bool scrub_skipped;       /* the scrub's pass left free pages that were still reachable */
    char ret_at[ANNAL_MAX_AGGREGATE_ID]; /* the sweep's place among the retention policies */
    size_t ret_at_len;                   /* bytes in ret_at; 0: from the first */
    scratch_t got;                       /* group_get's view of a group */
    scratch_t each;                      /* group_each's view of the group fn is called with */
} lmdb_t;

/* Integers in native order (the design note), at any alignment. */
static void s_put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, sizeof v);
}

static uint16_t s_get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void s_put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t s_get64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Big-endian, for the keys that sort by version. */
static void s_put_be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t) v;
}

static uint64_t s_get_be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The key "agg, 0x00, version BE" into buf; returns its length. */
static size_t s_vkey(uint8_t *buf, const char *agg, size_t alen, uint64_t version)
{
    memcpy(buf, agg, alen);
    buf[alen] = 0;
    s_put_be(buf + alen + 1, version);
    return alen + 9;
}

/* Maps an LMDB error to annal's; notes a full map or a failed store. */
static annal_err_t s_err(lmdb_t *self, int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return ANNAL_OK;
    case MDB_NOTFOUND: return ANNAL_ERR_NOT_FOUND;
    case MDB_MAP_FULL: self->grow = true; return ANNAL_ERR_RETRY;
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return ANNAL_ERR_NO_SPACE;
    case MDB_TXN_FULL:
    case ENOMEM:
    case MDB_READERS_FULL: return ANNAL_ERR_UNAVAILABLE;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_BAD_TXN: self->failed = true; return ANNAL_ERR_INTERNAL;
    default: self->failed = true; return ANNAL_ERR_UNAVAILABLE;
    }
}

/* Decodes the record at val into ev; -1 when it is damaged. */
static int s_decode(uint64_t seq, const MDB_val *val, annal_event_t *ev)
{
    const uint8_t *p = val->mv_data;
    if (val->mv_size < REC_HEADER || p[REC_FORMAT] != RECORD_FORMAT)
        return -1;
    uint16_t alen = s_get16(p + REC_AGG_LEN), tlen = s_get16(p + REC_TYPE_LEN);
    uint32_t dlen = s_get32(p + REC_DATA_LEN), mlen = s_get32(p + REC_META_LEN);
    if ((uint64_t) REC_HEADER + alen + tlen + dlen + mlen != val->mv_size)
        return -1;
    ev->sequence = seq;
    ev->event_id = p + REC_EVENT_ID;
    ev->version = s_get64(p + REC_VERSION);
    memcpy(&ev->recorded_at, p + REC_RECORDED_AT, sizeof ev->recorded_at);
    ev->aggregate_id = (const char *) p + REC_HEADER;
    ev->aggregate_id_len = alen;
    ev->event_type = ev->aggregate_id + alen;
    ev->event_type_len = tlen;
    ev->data = (const uint8_t *) ev->event_type + tlen;
    ev->data_len = dlen;
    ev->metadata = ev->data + dlen;
    ev->metadata_len = mlen;
    return 0;
}

/* Fetches and decodes event seq. */
static annal_err_t s_event(lmdb_t *self, uint64_t seq, annal_event_t *ev)
{
    size_t k = (size_t) seq;
    MDB_val key = {sizeof k, &k}, val;
    int rc = mdb_get(self->txn, self->dbi[DB_EVENTS], &key, &val);
    if (rc)
        return rc == MDB_NOTFOUND ? (self->failed = true, ANNAL_ERR_INTERNAL) : s_err(self, rc);
    if (s_decode(seq, &val, ev)) {
        self->failed = true;
        return ANNAL_ERR_INTERNAL;
    }
    return ANNAL_OK;
}

#define AGG_GONE 1 /* flag of a 9-byte aggregates value: deleted for good */

/* agg's (alen bytes) version, and whether it was deleted for good (a
   hard delete). */
static annal_err_t s_aggregate(lmdb_t *self, const char *agg, size_t alen, uint64_t *version,
                               bool *gone)
{
    MDB_val key = {alen, (void *) agg}, val;
    int rc = mdb_get(self->txn, self->dbi[DB_AGGREGATES], &key, &val);
    *version = 0;
    *gone = false;
    if (rc == MDB_NOTFOUND)
        return ANNAL_OK;
    if (rc)
        return s_err(self, rc);
    *version = s_get64(val.mv_data);
    *gone = val.mv_size > 8 && (((const uint8_t *) val.mv_data)[8] & AGG_GONE);
    return ANNAL_OK;
}

static annal_err_t s_version(lmdb_t *self, const char *agg, uint64_t *version)
{
    bool gone;
    return s_aggregate(self, agg, strlen(agg), version, &gone);
}

/* agg's (alen bytes) entry in db (removals, retention): two u64 into *a
   and *b; 0 and 0 when there is none. */
static annal_err_t s_pair(lmdb_t *self, int db, const char *agg, size_t alen, uint64_t *a,
                          uint64_t *b)
{
    MDB_val key = {alen, (void *) agg}, val;
    int rc = mdb_get(self->txn, self->dbi[db], &key, &val);
    *a = *b = 0;
    if (rc == MDB_NOTFOUND)
        return ANNAL_OK;
    if (rc)
        return s_err(self, rc);
    if (val.mv_size != 16) {
        self->failed = true;
        return ANNAL_ERR_INTERNAL;
    }
    *a = s_get64(val.mv_data);
    *b = s_get64((const uint8_t *) val.mv_data + 8);
    return ANNAL_OK;
}

/* The removal of agg (alen bytes) the sweep has not finished: versions up
   to *floor removed, *left of them still stored; 0 and 0 for none. */
static annal_err_t s_removal(lmdb_t *self, const char *agg, size_t alen, uint64_t *floor,
                             uint64_t *left)
{
    return s_pair(self, DB_REMOVALS, agg, alen, floor, left);
}

/* The first version of agg (alen bytes) still stored, or 0 when none is. */
static annal_err_t s_first_stored(lmdb_t *self, const char *agg, size_t alen, uint64_t *first)
{
    uint8_t kb[KEY_MAX];
    MDB_val key = {s_vkey(kb, agg, alen, 0), kb}, val;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_STREAMS], &cur);
    if (rc)
        return s_err(self, rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    *first = 0;
    if (rc == 0 && key.mv_size == alen + 9 && memcmp(key.mv_data, agg, alen) == 0
        && ((const uint8_t *) key.mv_data)[alen] == 0)
        *first = s_get_be((const uint8_t *) key.mv_data + alen + 1);
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? s_err(self, rc) : ANNAL_OK;
}

/* Sequence of version v of agg. */
static annal_err_t s_seq_of(lmdb_t *self, const char *agg, uint64_t v, uint64_t *seq)
{
    uint8_t kb[KEY_MAX];
    MDB_val key = {s_vkey(kb, agg, strlen(agg), v), kb}, val;
    int rc = mdb_get(self->txn, self->dbi[DB_STREAMS], &key, &val);
    if (rc)
        return rc == MDB_NOTFOUND ? (self->failed = true, ANNAL_ERR_INTERNAL) : s_err(self, rc);
    *seq = s_get64(val.mv_data);
    return ANNAL_OK;
}

/* Whether db holds any entry (removals, retention: then reads check each
   event against it). */
static bool s_any(lmdb_t *self, int db)
{
    MDB_stat st;
    return mdb_stat(self->txn, self->dbi[db], &st) == 0 && st.ms_entries > 0;
}

/* agg's (alen bytes) retention policy; 0 and 0 for none. */
static annal_err_t s_policy(lmdb_t *self, const char *agg, size_t alen, annal_retention_t *out)
{
    return s_pair(self, DB_RETENTION, agg, alen, &out->max_count, &out->max_age_s);
}

/* Whether policy p removes, at now (wall-clock us), version v recorded at
   recorded of an aggregate at version cur: v is not among the last
   max_count, or is max_age_s old; the newest is always kept. */
static bool s_expired(const annal_retention_t *p, uint64_t v, int64_t recorded, uint64_t cur,
                      int64_t now)
{
    if (v >= cur)
        return false;
    if (p->max_count && cur - v >= p->max_count)
        return true;
    if (!p->max_age_s || (uint64_t) (now / 1000000) < p->max_age_s)
        return false; /* (an age past the epoch keeps everything) */
    return recorded <= now - (int64_t) p->max_age_s * 1000000;
}

/* Whether ev is removed now (docs/protocol.md, section 7): by a removal
   the sweep has not finished (with removals: some exist), or by its
   aggregate's retention policy at now (with retention: some exist). */
static annal_err_t s_is_removed(lmdb_t *self, const annal_event_t *ev, bool removals,
                                bool retention, int64_t now, bool *removed)
{
    uint64_t floor = 0, left, cur;
    bool gone;
    annal_retention_t p = {0};
    annal_err_t err = ANNAL_OK;
    *removed = false;
    if (removals)
        err = s_removal(self, ev->aggregate_id, ev->aggregate_id_len, &floor, &left);
    if (!err && ev->version > floor && retention)
        err = s_policy(self, ev->aggregate_id, ev->aggregate_id_len, &p);
    if (!err && (p.max_count || p.max_age_s))
        err = s_aggregate(self, ev->aggregate_id, ev->aggregate_id_len, &cur, &gone);
    if (err)
        return err;
    *removed =
        ev->version <= floor
        || ((p.max_count || p.max_age_s) && s_expired(&p, ev->version, ev->recorded_at, cur, now));
    return ANNAL_OK;
}

/* Every version of agg (NUL-terminated) up to *through is removed at now:
   by a removal not yet swept, or by its retention policy (a prefix too:
   the versions kept are the newest, and recorded_at never decreases along
   them). */
static annal_err_t s_removed_through(lmdb_t *self, const char *agg, int64_t now, uint64_t *through)
{
    size_t alen = strlen(agg);
    uint64_t left, cur, first;
    bool gone;
    annal_retention_t p;
    annal_err_t err = s_removal(self, agg, alen, through, &left);
    if (err || !s_any(self, DB_RETENTION))
        return err;
    if ((err = s_policy(self, agg, alen, &p)) || (!p.max_count && !p.max_age_s)
        || (err = s_aggregate(self, agg, alen, &cur, &gone)) || cur < 2)
        return err;
    if (p.max_count && cur > p.max_count && cur - p.max_count > *through)
        *through = cur - p.max_count;
    if (!p.max_age_s || (err = s_first_stored(self, agg, alen, &first)) || !first)
        return err;
    /* the last version kept by count alone that its age removes: a binary
       search over the stored versions, which are a dense run up to cur */
    uint64_t lo = (*through + 1 > first ? *through + 1 : first), hi = cur - 1;
    while (lo <= hi) {
        uint64_t mid = lo + (hi - lo) / 2, seq;
        annal_event_t ev;
        if ((err = s_seq_of(self, agg, mid, &seq)) || (err = s_event(self, seq, &ev)))
            return err;
        if (s_expired(&p, mid, ev.recorded_at, cur, now)) {
            *through = mid;
            lo = mid + 1;
        }
        else
            hi = mid - 1;
    }
    return ANNAL_OK;
}

/* --- the journal ------------------------------------------------------------------ */

/* Adds an op of kind to the open batch's journal record and returns where
   its value goes (vlen bytes, for the caller to fill), or NULL out of
   memory. The pointer is valid until the next call. */
static uint8_t *s_log_op(lmdb_t *self, int kind, int db, const void *key, size_t klen, size_t vlen)
{
    size_t need = self->jlen + OP_HEADER + klen + vlen;
    if (need > self->jcap) {
        size_t cap = self->jcap ? self->jcap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *bigger = realloc(self->jbuf, cap);
        if (!bigger)
            return NULL;
        self->jbuf = bigger, self->jcap = cap;
    }
    uint8_t *p = self->jbuf + self->jlen;
    p[OP_DB] = (uint8_t) db;
    p[OP_KIND] = (uint8_t) kind;
    s_put16(p + OP_KLEN, (uint16_t) klen);
    s_put32(p + OP_VLEN, (uint32_t) vlen);
    memcpy(p + OP_HEADER, key, klen);
    self->jlen = need;
    return p + OP_HEADER + klen;
}

/* s_log_op for a put. */
static uint8_t *s_log(lmdb_t *self, int db, const void *key, size_t klen, size_t vlen)
{
    return s_log_op(self, OP_PUT, db, key, klen, vlen);
}

/* Puts key and val into db inside the open batch, and into its journal
   record. Returns an LMDB code. */
static int s_put(lmdb_t *self, int db, const void *key, size_t klen, const void *val, size_t vlen,
                 unsigned flags)
{
    uint8_t *v = s_log(self, db, key, klen, vlen);
    if (!v)
        return ENOMEM;
    memcpy(v, val, vlen);
    MDB_val k = {klen, (void *) key}, d = {vlen, v};
    return mdb_put(self->txn, self->dbi[db], &k, &d, flags);
}

/* Deletes key from db inside the open batch, and into its journal record.
   The delete is logged first, as a put is: a write the journal lacked
   would survive an abort, which rebuilds the root only when the batch
   logged something. Returns an LMDB code; MDB_NOTFOUND, with nothing
   logged, when key is not there. */
/* Overwrites the value of key in db with zeros where it is, then deletes
   it: LMDB leaves a deleted node's bytes in the free space of its page
   (docs/protocol.md, section 7: removed means gone). An LMDB code. */
static int s_wipe_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    MDB_val old;
    int rc = mdb_get(txn, dbi, k, &old);
    if (rc)
        return rc;
    MDB_val z = {old.mv_size, NULL};
    if ((rc = mdb_put(txn, dbi, k, &z, MDB_RESERVE)))
        return rc;
    memset(z.mv_data, 0, z.mv_size);
    return mdb_del(txn, dbi, k, NULL);
}

static int s_del(lmdb_t *self, int db, const void *key, size_t klen)
{
    size_t at = self->jlen;
    if (!s_log_op(self, OP_DELETE, db, key, klen, 0))
        return ENOMEM;
    MDB_val k = {klen, (void *) key};
    int rc = s_wipe_del(self->txn, self->dbi[db], &k);
    if (rc == MDB_NOTFOUND)
        self->jlen = at;
    return rc;
}

/* Replays one journal record into the root transaction. */
static int s_replay_record(void *arg, const uint8_t *p, size_t len)
{
    lmdb_t *self = arg;
    while (len) {
        if (len < OP_HEADER || p[OP_DB] >= DB_COUNT
            || (p[OP_KIND] != OP_PUT && p[OP_KIND] != OP_DELETE))
            return -1;
        uint16_t klen = s_get16(p + OP_KLEN);
        uint32_t vlen = s_get32(p + OP_VLEN);
        if ((uint64_t) OP_HEADER + klen + vlen > len || (p[OP_KIND] == OP_DELETE && vlen))
            return -1;
        MDB_val k = {klen, (void *) (p + OP_HEADER)}, d = {vlen, (void *) (p + OP_HEADER + klen)};
        int rc = p[OP_KIND] == OP_PUT ? mdb_put(self->root, self->dbi[p[OP_DB]], &k, &d, 0)
                                      : s_wipe_del(self->root, self->dbi[p[OP_DB]], &k);
        if (rc == MDB_NOTFOUND && p[OP_KIND] == OP_DELETE)
            rc = 0; /* the design note: a delete of a key not there changes nothing */
        if (rc) {
            self->replay_rc = rc;
            return -1;
        }
        p += OP_HEADER + klen + vlen;
        len -= OP_HEADER + klen + vlen;
    }
    return 0;
}

/* Reads head and last_recorded from the root transaction. */
static int s_load_head(lmdb_t *self)
{
    MDB_cursor *cur;
    MDB_val key, val;
    self->head = 0;
    self->last_recorded = 0;
    int rc = mdb_cursor_open(self->root, self->dbi[DB_EVENTS], &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == 0) {
        annal_event_t ev;
        self->head = s_get64(key.mv_data);
        if (s_decode(self->head, &val, &ev) || self->head == 0)
            rc = MDB_CORRUPTED;
        else
            self->last_recorded = ev.recorded_at;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* --- removed means gone (docs/protocol.md, section 7) ------------------------------- */

/* What LMDB leaves of a removed event: s_wipe_del zeroes its value where
   it is before the delete, but LMDB writes a changed page anew and frees
   the old copy untouched, and a delete moves the page's other nodes over
   the free space without clearing what they leave behind; the journal
   keeps the record that appended the event until overwritten. So while a
   removal waits to be scrubbed (meta SCRUB_KEY present: a batch that
   removes sets it), each checkpoint goes on with a pass over data.mdb,
   SCRUB_PAGES pages at a time, with no transaction open: a free page is
   zeroed whole, a page in use (a branch or leaf: LMDB's page header, 16
   bytes, lower and upper at 12 and 14) has its free space zeroed, an
   overflow run is data only and skipped; then the journal past its
   records. A free page is touched only when no meta page and no reader
   can reach it: freed by a transaction older than both the last one and
   the oldest reader's (as LMDB itself reuses pages; a small transaction
   after the checkpoint, the key's update, ages what the checkpoint freed,
   and frees only pages of meta); the others are taken as in use, and the
   pass ends only when it left none and finds none. LMDB also reuses the
   memory of the pages it wrote for new ones without clearing their free
   space, and the sweep leaves removed bytes there: so the pass begins
   only once the sweep is over, in an environment opened again (which
   lets go of that memory); a removal since marks the buffers unclean
   again (scrub_fresh). SCRUB_KEY's value is where the
   pass goes on. */
#define SCRUB_PAGES 8192
#define PAGE_HEADER 16 /* LMDB's page header: pgno 8, pad 2, flags 2, lower 2, upper 2 */
#define P_BRANCH    0x01
#define P_LEAF      0x02
#define P_OVERFLOW  0x04

static int s_env_reopen(lmdb_t *self);

/* mdb_reader_list's callback: the smallest txnid of an active reader. */
static int s_reader(const char *line, void *arg)
{
    uint64_t *oldest = arg;
    int pid;
    size_t thread;
    char txnid[32];
    if (sscanf(line, "%d %zx %31s", &pid, &thread, txnid) == 3 && txnid[0] != '-') {
        uint64_t t = strtoull(txnid, NULL, 10);
        if (t && t < *oldest)
            *oldest = t;
    }
    return 0;
}

/* Marks the batch as one that removes: the scrub is due at the next
   checkpoints (its pass, when one is under way, goes on). */
static int s_scrub_due(lmdb_t *self)
{
    self->scrub_fresh = false; /* the batch's page buffers hold removed bytes */
    MDB_val key = {strlen(SCRUB_KEY), SCRUB_KEY}, val;
    if (mdb_get(self->txn, self->dbi[DB_META], &key, &val) == 0)
        return 0;
    uint8_t zero[8] = {0};
    return s_put(self, DB_META, SCRUB_KEY, strlen(SCRUB_KEY), zero, 8, 0);
}

/* The free pages in [from, from + n) into map (a byte each: 1 free and
   safe to zero, 2 free but maybe still reachable); whether any page of
   the whole free list is of the second kind. */
static bool s_free_map(lmdb_t *self, uint64_t limit, uint64_t last, size_t from, size_t n,
                       uint8_t *map)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    bool young = false;
    if (mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn))
        return true;
    if (mdb_cursor_open(txn, 0 /* LMDB's FREE_DBI */, &cur) == 0) {
        MDB_val k, v;
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            size_t txnid, count;
            memcpy(&txnid, k.mv_data, sizeof txnid);
            memcpy(&count, v.mv_data, sizeof count);
            if (v.mv_size < (count + 1) * sizeof(size_t))
                continue;
            young |= txnid >= limit && txnid < last; /* last's: the key's update, no data */
            for (size_t i = 0; i < count; i++) {
                size_t pg;
                memcpy(&pg, (const uint8_t *) v.mv_data + (i + 1) * sizeof pg, sizeof pg);
                if (pg >= from && pg < from + n)
                    map[pg - from] = txnid < limit ? 1 : 2;
            }
        }
        mdb_cursor_close(cur);
    }
    else
        young = true;
    mdb_txn_abort(txn);
    return young;
}

int annal_lmdb_zero_unused(int fd, size_t psize, size_t from, size_t n, const uint8_t *map,
                           size_t *end)
{
    uint8_t *page = malloc(psize), *zero = calloc(1, psize);
    int rc = page && zero ? 0 : -1;
    size_t pg = from;
    while (!rc && pg < from + n) {
        if (map[pg - from] == 1) {
            rc = pwrite(fd, zero, psize, (off_t) (pg * psize)) == (ssize_t) psize ? 0 : -1;
            pg++;
            continue;
        }
        if (map[pg - from] == 2 || pg < 2) { /* maybe reachable, or a meta page */
            pg++;
            continue;
        }
        if (pread(fd, page, psize, (off_t) (pg * psize)) != (ssize_t) psize) {
            rc = -1;
            break;
        }
        uint64_t pgno = s_get64(page);
        uint16_t flags = s_get16(page + 10), lower = s_get16(page + 12), upper = s_get16(page + 14);
        if (pgno == pg && (flags & P_OVERFLOW)) {
            pg += s_get32(page + 12) ? s_get32(page + 12) : 1; /* its pages: data only */
            continue;
        }
        if (pgno == pg && (flags & (P_BRANCH | P_LEAF)) && lower >= PAGE_HEADER && lower <= upper
            && upper <= psize && upper > lower)
            rc = pwrite(fd, zero, upper - lower, (off_t) (pg * psize + lower))
                         == (ssize_t) (upper - lower)
                     ? 0
                     : -1;
        pg++;
    }
    free(page);
    free(zero);
    *end = pg;
    return rc;
}

/* After a checkpoint, with no transaction open: the scrub's next step, if
   one is due (see above). A failure leaves it due for the next one. */
static void s_scrub(lmdb_t *self)
{
    MDB_txn *txn;
    MDB_val key = {strlen(SCRUB_KEY), SCRUB_KEY}, val;
    MDB_stat removals;
    /* due, and the sweep over (it puts removed bytes in page buffers) */
    if (mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn))
        return;
    bool due = mdb_get(txn, self->dbi[DB_META], &key, &val) == 0
               && mdb_stat(txn, self->dbi[DB_REMOVALS], &removals) == 0 && removals.ms_entries == 0;
    mdb_txn_abort(txn);
    if (!due || (!self->scrub_fresh && s_env_reopen(self)))
        return;
    self->scrub_fresh = true;
    if (mdb_txn_begin(self->env, NULL, 0, &txn))
        return;
    int rc = mdb_get(txn, self->dbi[DB_META], &key, &val);
    uint64_t at = rc == 0 && val.mv_size == 8 ? s_get64(val.mv_data) : 0;
    uint8_t b[8];
    s_put64(b, at);
    MDB_val nval = {8, b};
    /* the key's update is the small transaction that ages the pages */
    if (rc || mdb_put(txn, self->dbi[DB_META], &key, &nval, 0)) {
        mdb_txn_abort(txn);
        return;
    }
    if (mdb_txn_commit(txn))
        return;
    MDB_envinfo info;
    MDB_stat st;
    uint64_t limit = UINT64_MAX;
    mdb_reader_list(self->env, s_reader, &limit);
    if (mdb_env_info(self->env, &info) || mdb_env_stat(self->env, &st))
        return;
    uint64_t last = info.me_last_txnid;
    if (last < limit)
        limit = last;
    size_t pages = (size_t) info.me_last_pgno + 1, from = at < pages ? (size_t) at : pages;
    size_t n = pages - from < SCRUB_PAGES ? pages - from : SCRUB_PAGES, end = from;
    uint8_t *map = calloc(n ? n : 1, 1);
    int fd;
    if (from == 0)
        self->scrub_skipped = false; /* a pass begins */
    bool young = !map || s_free_map(self, limit, last, from, n, map);
    for (size_t i = 0; map && i < n; i++)
        self->scrub_skipped |= map[i] == 2;
    bool ok = map && mdb_env_get_fd(self->env, &fd) == 0
              && annal_lmdb_zero_unused(fd, st.ms_psize, from, n, map, &end) == 0
              && fdatasync(fd) == 0 && annal_journal_wipe(self->journal) == 0;
    free(map);
    if (!ok || mdb_txn_begin(self->env, NULL, 0, &txn))
        return;
    /* the pass goes on, starts again (it left free pages that were still
       reachable, or some are now), or is over */
    bool over = end >= pages;
    bool done = over && !young && !self->scrub_skipped;
    s_put64(b, over ? 0 : end);
    rc = done ? mdb_del(txn, self->dbi[DB_META], &key, NULL)
              : mdb_put(txn, self->dbi[DB_META], &key, &nval, 0);
    if (rc)
        mdb_txn_abort(txn);
    else
        mdb_txn_commit(txn);
}

/* Commits the root with the next journal generation: a checkpoint. The
   root is gone afterwards, committed or not. Returns an LMDB code. */
static int s_commit_root(lmdb_t *self)
{
    uint8_t g[8];
    s_put64(g, self->gen + 1);
    MDB_val key = {strlen(JOURNAL_KEY), JOURNAL_KEY}, val = {8, g};
    int rc = mdb_put(self->root, self->dbi[DB_META], &key, &val, 0);
    if (rc)
        mdb_txn_abort(self->root);
    else
        rc = mdb_txn_commit(self->root);
    self->root = NULL;
    if (rc == 0) {
        self->gen++;
        self->retry_at = 0;
        annal_journal_reset(self->journal, self->gen);
        s_scrub(self);
    }
    return rc;
}

/* Grows the map after LMDB reported it full (no transaction open). */
static int s_grow(lmdb_t *self)
{
    size_t step = self->map_size < MAX_STEP ? self->map_size : MAX_STEP;
    int rc = mdb_env_set_mapsize(self->env, self->map_size + step);
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(self->env, &info);
        self->map_size = info.me_mapsize;
    }
    self->grow = false;
    return rc;
}

/* Rebuilds the root from data.mdb plus the journal's current generation
   and checkpoints it, growing the map as needed: at open, and after a
   failure that may have lost batches from memory (they are in the
   journal). When the checkpoint fails after open (the disk is full: LMDB
   reports ENOSPC, or EIO for a short write), the rebuilt root stays open
   uncommitted instead: the journal keeps its batches durable, reads go on,
   and the checkpoint is tried again a second later (s_due). A failed LMDB
   commit leaves data.mdb at the last checkpoint: its meta page is written
   last. Returns an LMDB code. */
static int s_recover(lmdb_t *self)
{
    if (self->root)
        mdb_txn_abort(self->root); /* the open batch's too: it is the root */
    self->txn = self->root = NULL;
    if (!self->env)
        return EINVAL; /* s_env_reopen failed */
    bool keep = self->env_ready && annal_time_mono_ms() < self->retry_at;
    for (;;) {
        int rc = mdb_txn_begin(self->env, NULL, 0, &self->root);
        if (rc) {
            self->root = NULL;
            return rc;
        }
        MDB_val key = {strlen(JOURNAL_KEY), JOURNAL_KEY}, val;
        rc = mdb_get(self->root, self->dbi[DB_META], &key, &val);
        self->gen = rc == 0 && val.mv_size == 8 ? s_get64(val.mv_data) : 0;
        if (rc == 0 && val.mv_size != 8)
            rc = MDB_CORRUPTED;
        if (rc == MDB_NOTFOUND)
            rc = 0;
        self->replay_rc = 0;
        if (!rc && annal_journal_replay(self->journal, self->gen, s_replay_record, self) < 0)
            rc = self->replay_rc ? self->replay_rc : MDB_CORRUPTED;
        if (!rc)
            rc = s_load_head(self);
        if (!rc && keep) {
            self->root_thread = pthread_self();
            return 0;
        }
        bool committed = false;
        if (!rc) {
            rc = s_commit_root(self);
            committed = true;
        }
        if (self->root)
            mdb_txn_abort(self->root);
        self->root = NULL;
        if (committed && rc && rc != MDB_MAP_FULL && self->env_ready && !keep) {
            self->retry_at = annal_time_mono_ms() + ANNAL_CHECKPOINT_MS;
            keep = true;
            continue;
        }
        if (rc != MDB_MAP_FULL)
            return rc;
        if ((rc = s_grow(self)))
            return rc;
    }
}

/* Checkpoints the root; on failure rebuilds it from the journal (when the
   disk is full, the rebuilt root stays open: s_recover). */
static int s_checkpoint(lmdb_t *self)
{
    if (!self->root)
        return 0;
    if (annal_journal_used(self->journal) == 0) {
        mdb_txn_abort(self->root); /* nothing in it */
        self->root = NULL;
        return 0;
    }
    int rc = s_commit_root(self);
    if (rc) {
        if (rc != MDB_MAP_FULL) /* the disk: rebuild without it, try again later */
            self->retry_at = annal_time_mono_ms() + ANNAL_CHECKPOINT_MS;
        rc = s_recover(self);
        self->failed = rc != 0;
    }
    return rc;
}

/* Whether the journal is due for a checkpoint. */
static bool s_due(lmdb_t *self)
{
    int64_t now = annal_time_mono_ms();
    uint64_t used = annal_journal_used(self->journal);
    if (now < self->retry_at)
        return false;
    return used >= ANNAL_CHECKPOINT_BYTES || (used > 0 && now - self->since >= ANNAL_CHECKPOINT_MS);
}

/* --- open and close ------------------------------------------------------------ */

static void s_abort(void *handle);

static void s_close(void *handle)
{
    lmdb_t *self = handle;
    if (!self)
        return;
    bool mine = !self->root || pthread_equal(self->root_thread, pthread_self());
    if (self->txn && mine)
        s_abort(self); /* an open batch is dropped, not checkpointed */
    self->txn = NULL;
    if (self->root && mine && !self->failed)
        s_checkpoint(self);
    if (self->root && mine)
        mdb_txn_abort(self->root);
    if (self->env && mine) /* else the journal has the batches; the process ends */
        mdb_env_close(self->env);
    annal_journal_close(&self->journal);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    free(self->jbuf);
    free(self->dir);
    free(self->got.buf);
    free(self->each.buf);
    free(self);
}

static annal_err_t s_fail_open(lmdb_t *self, char *why, size_t whylen, const char *fmt,
                               const char *dir, const char *detail)
{
    snprintf(why, whylen, fmt, dir, detail);
    s_close(self);
    return ANNAL_ERR_UNAVAILABLE;
}

/* Makes the folder's entries (a new file's name) durable. */
void annal_lmdb_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Opens the databases after meta in txn (create: a new store). An LMDB
   code. */
static int s_open_dbs(lmdb_t *self, MDB_txn *txn, unsigned create)
{
    int rc;
    if ((rc = mdb_dbi_open(txn, "events", create | MDB_INTEGERKEY, &self->dbi[DB_EVENTS]))
        || (rc = mdb_dbi_open(txn, "streams", create, &self->dbi[DB_STREAMS]))
        || (rc = mdb_dbi_open(txn, "aggregates", create, &self->dbi[DB_AGGREGATES]))
        || (rc = mdb_dbi_open(txn, "event_ids", create, &self->dbi[DB_EVENT_IDS]))
        || (rc = mdb_dbi_open(txn, "snapshots", create, &self->dbi[DB_SNAPSHOTS]))
        /* created in a store made before them (the design note) */
        || (rc = mdb_dbi_open(txn, "groups", MDB_CREATE, &self->dbi[DB_GROUPS]))
        || (rc = mdb_dbi_open(txn, "group_marks", MDB_CREATE, &self->dbi[DB_GROUP_MARKS]))
        || (rc = mdb_dbi_open(txn, "removals", MDB_CREATE, &self->dbi[DB_REMOVALS])))
        return rc;
    return mdb_dbi_open(txn, "retention", MDB_CREATE, &self->dbi[DB_RETENTION]);
}

/* Creates and opens the environment of the data folder at map_size. An
   LMDB code. */
static int s_env_open(lmdb_t *self)
{
    int rc = mdb_env_create(&self->env);
    if (rc) {
        self->env = NULL;
        return rc;
    }
    mdb_env_set_mapsize(self->env, self->map_size);
    mdb_env_set_maxdbs(self->env, MAX_DBS);
    return mdb_env_open(self->env, self->dir, MDB_NOTLS | MDB_NORDAHEAD, 0644);
}

/* Closes and opens the environment again, with no transaction open: LMDB
   lets go of its page buffers (the scrub, below). An LMDB code; on failure
   the store is unusable (failed) until reopened. */
static int s_env_reopen(lmdb_t *self)
{
    mdb_env_close(self->env);
    MDB_txn *txn;
    int rc = s_env_open(self);
    if (!rc && !(rc = mdb_txn_begin(self->env, NULL, 0, &txn))) {
        if ((rc = mdb_dbi_open(txn, META_DB, 0, &self->dbi[DB_META]))
            || (rc = s_open_dbs(self, txn, 0)))
            mdb_txn_abort(txn);
        else
            rc = mdb_txn_commit(txn);
    }
    if (rc)
        self->failed = true;
    return rc;
}

static annal_err_t s_open(const char *dir, const annal_store_options_t *opts, void **out, char *why,
                          size_t whylen)
{
    lmdb_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, whylen, "out of memory");
        return ANNAL_ERR_UNAVAILABLE;
    }
    self->lock_fd = -1;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return s_fail_open(self, why, whylen, "cannot create data folder %s: %s", dir,
                           strerror(errno));
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return s_fail_open(self, why, whylen, "data folder %s is not a folder%s", dir, "");
    char path[4096];
    snprintf(path, sizeof path, "%s/annal.lock", dir);
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock_fd < 0)
        return s_fail_open(self, why, whylen, "cannot open %s/annal.lock: %s", dir,
                           strerror(errno));
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "";
        ssize_t n = pread(self->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        return s_fail_open(self, why, whylen,
                           "data folder %s is in use by another annal process (pid %s)", dir,
                           *pid ? pid : "unknown");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long) getpid());
    if (ftruncate(self->lock_fd, 0) || pwrite(self->lock_fd, pid, n, 0) != n)
        return s_fail_open(self, why, whylen, "cannot write %s/annal.lock: %s", dir,
                           strerror(errno));

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    bool fresh = access(path, F_OK) != 0;
    if (!(self->dir = strdup(dir)))
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, "out of memory");
    self->scrub_fresh = true;
    self->map_size = opts->initial_map_size ? opts->initial_map_size : DEFAULT_MAP;
    if (!fresh && stat(path, &st) == 0 && (size_t) st.st_size > self->map_size)
        self->map_size = (size_t) st.st_size;
    int rc = s_env_open(self);
    if (rc && !self->env)
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, mdb_strerror(rc));
    if (rc) {
        const char *what = rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH
                               ? "data.mdb is not an annal store (another format, or damaged)"
                               : mdb_strerror(rc);
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, what);
    }
    MDB_envinfo info;
    mdb_env_info(self->env, &info);
    self->map_size = info.me_mapsize;

    MDB_txn *txn;
    if ((rc = mdb_txn_begin(self->env, NULL, 0, &txn)))
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, mdb_strerror(rc));
    if (!fresh) {
        /* a store whose creation a crash cut short has a data.mdb with
           nothing in it (not even "meta"): it is still a new store */
        MDB_dbi main;
        MDB_stat ms;
        if (mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_stat(txn, main, &ms) == 0
            && ms.ms_entries == 0)
            fresh = true;
    }
    unsigned create = fresh ? MDB_CREATE : 0;
    MDB_val key = {strlen(FORMAT_KEY), FORMAT_KEY}, val;
    rc = mdb_dbi_open(txn, META_DB, create, &self->dbi[DB_META]);
    if (rc == 0 && fresh) {
        MDB_val fv = {strlen(FORMAT_VALUE), FORMAT_VALUE};
        rc = mdb_put(txn, self->dbi[DB_META], &key, &fv, 0);
    }
    else if (rc == 0) {
        rc = mdb_get(txn, self->dbi[DB_META], &key, &val);
        if (rc == 0
            && (val.mv_size != strlen(FORMAT_VALUE)
                || memcmp(val.mv_data, FORMAT_VALUE, val.mv_size) != 0)) {
            char found[64];
            snprintf(found, sizeof found, "%.*s", (int) (val.mv_size < 40 ? val.mv_size : 40),
                     (const char *) val.mv_data);
            mdb_txn_abort(txn);
            snprintf(why, whylen,
                     "data folder %s has store format '%s'; this annal reads '" FORMAT_VALUE "'",
                     dir, found);
            s_close(self);
            return ANNAL_ERR_UNAVAILABLE;
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return s_fail_open(self, why, whylen, "data folder %s is not an annal store (%s)", dir,
                           mdb_strerror(rc));
    }
    if ((rc = s_open_dbs(self, txn, create))) {
        mdb_txn_abort(txn);
        return s_fail_open(self, why, whylen, "data folder %s is not an annal store (%s)", dir,
                           mdb_strerror(rc));
    }
    if ((rc = mdb_txn_commit(txn)))
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, mdb_strerror(rc));

    snprintf(path, sizeof path, "%s/annal.journal", dir);
    if (fresh)
        unlink(path); /* a journal without its data.mdb belongs to another store */
    bool new_journal = access(path, F_OK) != 0;
    char jwhy[256];
    if (!(self->journal = annal_journal_open(path, jwhy, sizeof jwhy)))
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, jwhy);
    if (new_journal)
        annal_lmdb_sync_dir(dir);
    if ((rc = s_recover(self))) {
        const char *what = rc == MDB_CORRUPTED ? "the journal or the last event record is damaged"
                                               : mdb_strerror(rc);
        return s_fail_open(self, why, whylen, "data folder %s: %s", dir, what);
    }
    self->env_ready = true;
    *out = self;
    return ANNAL_OK;
}

/* --- batches -------------------------------------------------------------------- */

static annal_err_t s_begin(void *handle)
{
    lmdb_t *self = handle;
    if (self->txn)
        return ANNAL_ERR_INTERNAL;
    if (self->root && !pthread_equal(self->root_thread, pthread_self()))
        return ANNAL_ERR_INTERNAL; /* batches from two threads: not allowed */
    if (self->failed) {            /* an earlier failure: rebuild from the journal */
        if (s_recover(self))
            return ANNAL_ERR_UNAVAILABLE;
        self->failed = false;
    }
    if (self->root && s_due(self) && s_checkpoint(self))
        return ANNAL_ERR_UNAVAILABLE;
    int rc = 0;
    if (!self->root) {
        if ((rc = mdb_txn_begin(self->env, NULL, 0, &self->root)))
            self->root = NULL;
        self->root_thread = pthread_self();
    }
    if (rc)
        return s_err(self, rc);
    self->txn = self->root;
    self->jlen = ANNAL_JOURNAL_HEADER;
    self->txn_head = self->head;
    int64_t now = annal_time_now();
    self->txn_recorded = now > self->last_recorded ? now : self->last_recorded;
    self->grow = false;
    return ANNAL_OK;
}

/* Ends the root when it holds no batch that data.mdb lacks, so that no
   write transaction stays open between batches without need. */
static void s_release(lmdb_t *self)
{
    if (self->root && annal_journal_used(self->journal) == 0) {
        mdb_txn_abort(self->root);
        self->root = NULL;
    }
}

/* Ends the open batch. One that wrote is undone by rebuilding the root
   from data.mdb and the journal (a failed batch is rare; a nested LMDB
   transaction per batch would cost a copy of every page it touches). */
static void s_end(lmdb_t *self, bool undo)
{
    self->txn = NULL;
    self->jlen = 0;
    if (undo && s_recover(self))
        self->failed = true;
    s_release(self);
}

static void s_abort(void *handle)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return;
    s_end(self, self->jlen > ANNAL_JOURNAL_HEADER);
    if (self->grow && !self->failed) {
        /* a batch found the map full: checkpoint what came before, then grow */
        self->grow = false;
        if (s_checkpoint(self) || s_grow(self))
            self->failed = true;
    }
}

static annal_err_t s_commit(void *handle)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    if (self->jlen > ANNAL_JOURNAL_HEADER) {
        bool first = annal_journal_used(self->journal) == 0;
        annal_err_t err = annal_journal_write(self->journal, self->jbuf, self->jlen);
        if (err == ANNAL_ERR_INTERNAL) { /* the record may be there: rebuild at next use */
            self->txn = NULL;
            self->failed = true;
        }
        if (err) {
            s_end(self, self->txn != NULL);
            return err == ANNAL_ERR_NO_SPACE ? err : ANNAL_ERR_UNAVAILABLE;
        }
        if (first)
            self->since = annal_time_mono_ms();
    }
    if (self->jcap > 16u << 20) { /* do not keep a huge batch's buffer */
        free(self->jbuf);
        self->jbuf = NULL;
        self->jcap = 0;
    }
    if (self->txn_head != self->head) {
        self->head = self->txn_head;
        self->last_recorded = self->txn_recorded;
    }
    s_end(self, false);
    return ANNAL_OK;
}

static annal_err_t s_checkpoint_op(void *handle)
{
    lmdb_t *self = handle;
    /* a reader that died mid-read (a killed backup) keeps its slot, and
       every page freed after its snapshot from reuse, until cleared */
    mdb_reader_check(self->env, NULL);
    if (self->txn || (self->root && !pthread_equal(self->root_thread, pthread_self())))
        return ANNAL_OK;
    if (self->failed) {
        if (s_recover(self))
            return ANNAL_ERR_UNAVAILABLE;
        self->failed = false;
    }
    if (!self->root || !s_due(self))
        return ANNAL_OK;
    return s_checkpoint(self) ? ANNAL_ERR_UNAVAILABLE : ANNAL_OK;
}

/* --- append ----------------------------------------------------------------------- */

/* Checks a retry of an earlier append whose first event is stored at seq:
   one event may repeat any stored event of agg; a batch must repeat a
   stored batch exactly (same events, same count, in order). */
static annal_err_t s_retry(lmdb_t *self, const char *agg, const annal_new_event_t *events, size_t n,
                           uint64_t seq, annal_append_result_t *res, char *why, size_t whylen)
{
    size_t k = (size_t) seq;
    MDB_val key = {sizeof k, &k}, val;
    int rc = mdb_get(self->txn, self->dbi[DB_EVENTS], &key, &val);
    annal_event_t ev;
    if (rc || s_decode(seq, &val, &ev)) {
        self->failed = true;
        return ANNAL_ERR_INTERNAL;
    }
    size_t alen = strlen(agg);
    char text[ANNAL_EVENT_ID_TEXT];
    annal_event_id_format(events[0].event_id, text);
    if (ev.aggregate_id_len != alen || memcmp(ev.aggregate_id, agg, alen) != 0) {
        snprintf(why, whylen, "event_id %s is already stored for another aggregate", text);
        return ANNAL_ERR_MALFORMED;
    }
    uint32_t size = s_get32((const uint8_t *) val.mv_data + REC_APPEND_SIZE);
    uint32_t index = s_get32((const uint8_t *) val.mv_data + REC_APPEND_INDEX);
    if (n > 1 && (index != 0 || size != n)) {
        snprintf(why, whylen,
                 "event_id %s is already stored, but not as the first of a batch of %zu "
                 "events: a retry must resend the same batch",
                 text, n);
        return ANNAL_ERR_MALFORMED;
    }
    uint64_t v0 = ev.version, last = seq;
    for (size_t i = 1; i < n; i++) {
        annal_err_t err = s_seq_of(self, agg, v0 + i, &last);
        if (!err)
            err = s_event(self, last, &ev);
        if (err)
            return err;
        if (!events[i].client_id || memcmp(ev.event_id, events[i].event_id, 16) != 0) {
            snprintf(why, whylen,
                     "the batch's first event_id is already stored but events[%zu] does not "
                     "match the stored batch: a retry must resend the same events",
                     i);
            return ANNAL_ERR_MALFORMED;
        }
    }
    res->duplicate = true;
    res->first_sequence = seq;
    res->last_sequence = last;
    res->version = v0 + n - 1;
    return ANNAL_OK;
}

static annal_err_t s_append(void *handle, const char *agg, annal_expect_t expect, uint64_t expected,
                            const annal_new_event_t *events, size_t n, annal_append_result_t *res,
                            char *why, size_t whylen)
{
    lmdb_t *self = handle;
    memset(res, 0, sizeof *res);
    if (!self->txn || n == 0)
        return ANNAL_ERR_INTERNAL;
    size_t alen = strlen(agg);
    bool gone;
    uint64_t at;
    annal_err_t gerr = s_aggregate(self, agg, alen, &at, &gone);
    if (gerr)
        return gerr;
    if (gone) {
        snprintf(why, whylen, "aggregate '%.64s' was deleted for good: it takes no more appends",
                 agg);
        return ANNAL_ERR_GONE;
    }
    int rc;
    for (size_t i = 0; i < n; i++) {
        if (!events[i].client_id)
            continue;
        MDB_val key = {16, (void *) events[i].event_id}, val;
        rc = mdb_get(self->txn, self->dbi[DB_EVENT_IDS], &key, &val);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            return s_err(self, rc);
        if (i == 0)
            return s_retry(self, agg, events, n, s_get64(val.mv_data), res, why, whylen);
        char text[ANNAL_EVENT_ID_TEXT];
        annal_event_id_format(events[i].event_id, text);
        snprintf(why, whylen,
                 "events[%zu]: event_id %s is already stored; a batch is either a retry of an "
                 "earlier batch or all new events",
                 i, text);
        return ANNAL_ERR_MALFORMED;
    }
    uint64_t current;
    annal_err_t err = s_version(self, agg, &current);
    if (err)
        return err;
    if ((expect == ANNAL_EXPECT_EXACT && current != expected)
        || (expect == ANNAL_EXPECT_EXISTS && current == 0)) {
        res->actual_version = current;
        return ANNAL_ERR_CONFLICT;
    }
    for (size_t i = 0; i < n; i++)
        if (events[i].data.size > UINT32_MAX || events[i].metadata.size > UINT32_MAX
            || strlen(events[i].event_type) > UINT16_MAX || alen > UINT16_MAX) {
            snprintf(why, whylen, "events[%zu] is too large to store", i);
            return ANNAL_ERR_MALFORMED; /* checked before anything is written */
        }
    res->first_sequence = self->txn_head + 1;
    res->recorded_at = self->txn_recorded;
    for (size_t i = 0; i < n; i++) {
        const annal_new_event_t *e = &events[i];
        uint64_t seq = self->txn_head + 1, version = current + i + 1;
        size_t tlen = strlen(e->event_type);
        size_t total = REC_HEADER + alen + tlen + e->data.size + e->metadata.size;
        size_t k = (size_t) seq;
        uint8_t *p = s_log(self, DB_EVENTS, &k, sizeof k, total);
        if (!p)
            return ANNAL_ERR_UNAVAILABLE;
        MDB_val key = {sizeof k, &k}, val = {total, p};
        p[REC_FORMAT] = RECORD_FORMAT;
        memcpy(p + REC_EVENT_ID, e->event_id, sizeof e->event_id);
        s_put64(p + REC_VERSION, version);
        memcpy(p + REC_RECORDED_AT, &self->txn_recorded, sizeof self->txn_recorded);
        s_put16(p + REC_AGG_LEN, (uint16_t) alen);
        s_put16(p + REC_TYPE_LEN, (uint16_t) tlen);
        s_put32(p + REC_DATA_LEN, (uint32_t) e->data.size);
        s_put32(p + REC_META_LEN, (uint32_t) e->metadata.size);
        s_put32(p + REC_APPEND_SIZE, (uint32_t) n);
        s_put32(p + REC_APPEND_INDEX, (uint32_t) i);
        uint8_t *f = p + REC_HEADER;
        memcpy(f, agg, alen);
        memcpy(f + alen, e->event_type, tlen);
        memcpy(f + alen + tlen, e->data.data, e->data.size);
        memcpy(f + alen + tlen + e->data.size, e->metadata.data, e->metadata.size);
        if ((rc = mdb_put(self->txn, self->dbi[DB_EVENTS], &key, &val, MDB_APPEND)))
            return s_err(self, rc);

        uint8_t kb[KEY_MAX], sv[8];
        s_put64(sv, seq);
        size_t klen = s_vkey(kb, agg, alen, version);
        if ((rc = s_put(self, DB_STREAMS, kb, klen, sv, 8, MDB_NOOVERWRITE)))
            return rc == MDB_KEYEXIST ? (self->failed = true, ANNAL_ERR_INTERNAL) : s_err(self, rc);
        if ((rc = s_put(self, DB_EVENT_IDS, e->event_id, 16, sv, 8, MDB_NOOVERWRITE)))
            return rc == MDB_KEYEXIST ? ANNAL_ERR_INTERNAL : s_err(self, rc);
        self->txn_head = seq;
    }
    uint8_t vv[8];
    s_put64(vv, current + n);
    if ((rc = s_put(self, DB_AGGREGATES, agg, alen, vv, 8, 0)))
        return s_err(self, rc);
    res->last_sequence = self->txn_head;
    res->version = current + n;
    return ANNAL_OK;
}

static annal_err_t s_version_op(void *handle, const char *agg, uint64_t *version)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    return s_version(self, agg, version);
}

/* --- reads ---------------------------------------------------------------------- */

static annal_err_t s_read(void *handle, const char *agg, uint64_t from, bool backward, size_t max,
                          annal_event_list_t *out)
{
    lmdb_t *self = handle;
    out->count = 0;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    uint64_t current;
    annal_err_t err = s_version(self, agg, &current);
    if (err || current == 0 || max == 0)
        return err;
    size_t alen = strlen(agg);
    uint64_t floor; /* versions up to floor are removed (docs/protocol.md, section 7) */
    if ((err = s_removed_through(self, agg, annal_time_now(), &floor)))
        return err;
    if (backward && from > current)
        from = current;
    if (!backward && from <= floor)
        from = floor + 1;
    if (from == 0 || from > current || from <= floor)
        return ANNAL_OK;
    uint8_t kb[KEY_MAX];
    MDB_val key = {s_vkey(kb, agg, alen, from), kb}, val;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_STREAMS], &cur);
    if (rc)
        return s_err(self, rc);
    /* versions removed and swept are not stored: forward starts at the
       first one stored; backward finds from stored, or nothing at or below
       it is */
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && backward
        && (key.mv_size != alen + 9 || s_get_be((const uint8_t *) key.mv_data + alen + 1) != from))
        rc = MDB_NOTFOUND;
    while (rc == 0 && out->count < max) {
        if (key.mv_size != alen + 9 || memcmp(key.mv_data, agg, alen) != 0
            || s_get_be((const uint8_t *) key.mv_data + alen + 1) <= floor)
            break;
        annal_event_t ev;
        if ((err = s_event(self, s_get64(val.mv_data), &ev)))
            break;
        if (annal_event_list_push(out, &ev)) {
            err = ANNAL_ERR_UNAVAILABLE;
            break;
        }
        rc = mdb_cursor_get(cur, &key, &val, backward ? MDB_PREV : MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = s_err(self, rc);
    return err;
}

static bool s_match(const annal_event_t *ev, const char *prefix, size_t plen, char *const *types,
                    size_t ntypes)
{
    if (prefix && (ev->aggregate_id_len < plen || memcmp(ev->aggregate_id, prefix, plen) != 0))
        return false;
    if (ntypes == 0)
        return true;
    for (size_t i = 0; i < ntypes; i++)
        if (strlen(types[i]) == ev->event_type_len
            && memcmp(types[i], ev->event_type, ev->event_type_len) == 0)
            return true;
    return false;
}

static annal_err_t s_read_all(void *handle, uint64_t from, size_t max, size_t scan,
                              const char *prefix, size_t plen, char *const *types, size_t ntypes,
                              annal_event_list_t *out, uint64_t *next)
{
    lmdb_t *self = handle;
    out->count = 0;
    *next = from;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    if (max == 0 || from > self->txn_head)
        return ANNAL_OK;
    size_t k = (size_t) from;
    MDB_val key = {sizeof k, &k}, val;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_EVENTS], &cur);
    if (rc)
        return s_err(self, rc);
    annal_err_t err = ANNAL_OK;
    size_t examined = 0;
    /* removed events still stored, or retention policies: each event checked */
    bool removals = s_any(self, DB_REMOVALS), retention = s_any(self, DB_RETENTION);
    int64_t now = annal_time_now();
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && out->count < max && examined < scan) {
        annal_event_t ev;
        uint64_t seq = s_get64(key.mv_data);
        bool removed = false;
        if (s_decode(seq, &val, &ev)) {
            self->failed = true;
            err = ANNAL_ERR_INTERNAL;
            break;
        }
        examined++;
        *next = seq + 1;
        if ((removals || retention)
            && (err = s_is_removed(self, &ev, removals, retention, now, &removed)))
            break;
        if (!removed && s_match(&ev, prefix, plen, types, ntypes)
            && annal_event_list_push(out, &ev)) {
            err = ANNAL_ERR_UNAVAILABLE;
            break;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = s_err(self, rc);
    return err;
}

/* --- snapshots and counters ---------------------------------------------------------- */

static annal_err_t s_put_snapshot(void *handle, const char *agg, uint64_t version, bool folded,
                                  const uint8_t *state, size_t len)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    uint8_t kb[KEY_MAX];
    size_t klen = s_vkey(kb, agg, strlen(agg), version);
    uint8_t *p = s_log(self, DB_SNAPSHOTS, kb, klen, len + 1);
    if (!p)
        return ANNAL_ERR_UNAVAILABLE;
    p[0] = folded ? SNAPSHOT_FOLDED : SNAPSHOT_CLIENT;
    memcpy(p + 1, state, len);
    MDB_val key = {klen, kb}, val = {len + 1, p};
    int rc = mdb_put(self->txn, self->dbi[DB_SNAPSHOTS], &key, &val, 0);
    return rc ? s_err(self, rc) : ANNAL_OK;
}

static annal_err_t s_get_snapshot(void *handle, const char *agg, uint64_t max_version,
                                  bool folded_only, annal_snapshot_t *out)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t alen = strlen(agg);
    uint8_t kb[KEY_MAX];
    MDB_val key = {s_vkey(kb, agg, alen, max_version), kb}, val;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_SNAPSHOTS], &cur);
    if (rc)
        return s_err(self, rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    else if (rc == 0 && (key.mv_size != alen + 9 || memcmp(key.mv_data, kb, alen + 9) != 0))
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    annal_err_t err = ANNAL_ERR_NOT_FOUND;
    /* walk down this aggregate's snapshots to the first that qualifies */
    while (rc == 0 && key.mv_size == alen + 9 && memcmp(key.mv_data, agg, alen) == 0
           && ((const uint8_t *) key.mv_data)[alen] == 0) {
        const uint8_t *p = val.mv_data;
        if (val.mv_size < 2 || (p[0] != SNAPSHOT_FOLDED && p[0] != SNAPSHOT_CLIENT)) {
            self->failed = true;
            err = ANNAL_ERR_INTERNAL;
            break;
        }
        uint64_t v = s_get_be((const uint8_t *) key.mv_data + alen + 1);
        if (v <= max_version && (!folded_only || p[0] == SNAPSHOT_FOLDED)) {
            out->version = v;
            out->folded = p[0] == SNAPSHOT_FOLDED;
            out->state = p + 1;
            out->len = val.mv_size - 1;
            err = ANNAL_OK;
            break;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    }
    if (err == ANNAL_ERR_NOT_FOUND && rc && rc != MDB_NOTFOUND)
        err = s_err(self, rc);
    mdb_cursor_close(cur);
    return err;
}

static annal_err_t s_stats(void *handle, annal_store_stats_t *out)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    MDB_stat a, s, e;
    int rc = mdb_stat(self->txn, self->dbi[DB_AGGREGATES], &a);
    if (!rc)
        rc = mdb_stat(self->txn, self->dbi[DB_SNAPSHOTS], &s);
    if (!rc)
        rc = mdb_stat(self->txn, self->dbi[DB_EVENTS], &e);
    if (rc)
        return s_err(self, rc);
    /* the events readable: those stored, less those removed but not swept
       (removals' left, of the aggregates without a policy) and those their
       retention policies remove now */
    uint64_t unswept = 0;
    int64_t now = annal_time_now();
    annal_err_t err = ANNAL_OK;
    for (int db = DB_REMOVALS; db <= DB_RETENTION && !err; db++) {
        MDB_cursor *cur;
        MDB_val key, val;
        if ((rc = mdb_cursor_open(self->txn, self->dbi[db], &cur)))
            return s_err(self, rc);
        for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && !err;
             rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
            char agg[ANNAL_MAX_AGGREGATE_ID + 1];
            annal_retention_t p = {0};
            uint64_t through, first;
            if (key.mv_size == 0 || key.mv_size >= sizeof agg || val.mv_size != 16) {
                self->failed = true;
                err = ANNAL_ERR_INTERNAL;
                break;
            }
            if (db == DB_REMOVALS) { /* the others come with the policies */
                if (!(err = s_policy(self, key.mv_data, key.mv_size, &p)) && !p.max_count
                    && !p.max_age_s)
                    unswept += s_get64((const uint8_t *) val.mv_data + 8);
                continue;
            }
            memcpy(agg, key.mv_data, key.mv_size);
            agg[key.mv_size] = 0;
            if (!(err = s_removed_through(self, agg, now, &through))
                && !(err = s_first_stored(self, agg, key.mv_size, &first)) && first
                && first <= through)
                unswept += through - first + 1;
        }
        mdb_cursor_close(cur);
        if (!err && rc != MDB_NOTFOUND)
            err = s_err(self, rc);
    }
    if (err)
        return err;
    out->head_sequence = self->txn_head;
    out->events = e.ms_entries > unswept ? e.ms_entries - unswept : 0;
    out->aggregates = a.ms_entries;
    out->snapshots = s.ms_entries;
    return ANNAL_OK;
}

/* --- deletion (docs/protocol.md, section 7) ----------------------------------------- */

/* Whether key is one of agg's (alen bytes) in streams or snapshots, of a
   version at most through. */
static bool s_key_upto(const MDB_val *key, const char *agg, size_t alen, uint64_t through)
{
    const uint8_t *k = key->mv_data;
    return key->mv_size == alen + 9 && memcmp(k, agg, alen) == 0 && k[alen] == 0
           && s_get_be(k + alen + 1) <= through;
}

/* The first key of agg's (alen bytes) in db of a version at most through,
   into kb (KEY_MAX bytes); *found says whether there is one. */
static annal_err_t s_first_key(lmdb_t *self, int db, const char *agg, size_t alen, uint64_t through,
                               uint8_t *kb, MDB_val *val, bool *found)
{
    MDB_val key = {s_vkey(kb, agg, alen, 0), kb};
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[db], &cur);
    if (rc)
        return s_err(self, rc);
    rc = mdb_cursor_get(cur, &key, val, MDB_SET_RANGE);
    *found = rc == 0 && s_key_upto(&key, agg, alen, through);
    if (*found)
        memcpy(kb, key.mv_data, key.mv_size);
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? s_err(self, rc) : ANNAL_OK;
}

/* Removes agg's (alen bytes) versions up to through: a removals entry for
   the sweep, when it removes more than the one agg has and some of them
   are stored. */
static annal_err_t s_mark_removed(lmdb_t *self, const char *agg, size_t alen, uint64_t through)
{
    uint64_t floor, left, first;
    annal_err_t err = s_removal(self, agg, alen, &floor, &left);
    if (err || through <= floor || (err = s_first_stored(self, agg, alen, &first)) || !first
        || first > through)
        return err;
    uint8_t v[16];
    s_put64(v, through);
    s_put64(v + 8, through - first + 1); /* the stored versions are a dense run */
    int rc = s_put(self, DB_REMOVALS, agg, alen, v, 16, 0);
    return rc ? s_err(self, rc) : ANNAL_OK;
}

static annal_err_t s_remove(void *handle, const char *agg, uint64_t through, bool hard)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t alen = strlen(agg);
    if (alen == 0 || alen > ANNAL_MAX_AGGREGATE_ID)
        return ANNAL_ERR_MALFORMED;
    uint64_t current;
    annal_err_t err = s_version(self, agg, &current);
    through = through < current ? through : current;
    if (err || (err = s_mark_removed(self, agg, alen, through)))
        return err;
    int rc;
    /* the snapshots now, the events by the sweep */
    if ((rc = s_scrub_due(self)))
        return s_err(self, rc);
    uint8_t kb[KEY_MAX];
    MDB_val val;
    bool found = true;
    while (!err && found
           && !(err = s_first_key(self, DB_SNAPSHOTS, agg, alen, through, kb, &val, &found))
           && found)
        if ((rc = s_del(self, DB_SNAPSHOTS, kb, alen + 9)))
            err = s_err(self, rc);
    if (!err && hard) {
        uint8_t v[9];
        s_put64(v, current);
        v[8] = AGG_GONE;
        if ((rc = s_put(self, DB_AGGREGATES, agg, alen, v, 9, 0)))
            err = s_err(self, rc);
    }
    return err;
}

/* Frees the stored events of the first removal, up to *budget of them;
   *budget goes down by what was freed. */
static annal_err_t s_sweep_one(lmdb_t *self, size_t *budget, bool *none)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_REMOVALS], &cur);
    if (rc)
        return s_err(self, rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    char agg[ANNAL_MAX_AGGREGATE_ID];
    size_t alen = key.mv_size;
    bool ok = rc == 0 && alen > 0 && alen <= sizeof agg && val.mv_size == 16;
    uint64_t floor = ok ? s_get64(val.mv_data) : 0;
    uint64_t left = ok ? s_get64((const uint8_t *) val.mv_data + 8) : 0;
    if (ok)
        memcpy(agg, key.mv_data, alen);
    mdb_cursor_close(cur);
    *none = rc == MDB_NOTFOUND;
    if (*none)
        return ANNAL_OK;
    if (rc)
        return s_err(self, rc);
    if (!ok) {
        self->failed = true;
        return ANNAL_ERR_INTERNAL;
    }
    uint8_t kb[KEY_MAX];
    bool found = true;
    annal_err_t err = ANNAL_OK;
    while (*budget > 0 && !err
           && !(err = s_first_key(self, DB_STREAMS, agg, alen, floor, kb, &val, &found)) && found) {
        size_t seq = (size_t) s_get64(val.mv_data);
        MDB_val ek = {sizeof seq, &seq}, ev;
        uint8_t id[16];
        if ((rc = mdb_get(self->txn, self->dbi[DB_EVENTS], &ek, &ev)) || ev.mv_size < REC_HEADER) {
            self->failed = true;
            return rc && rc != MDB_NOTFOUND ? s_err(self, rc) : ANNAL_ERR_INTERNAL;
        }
        memcpy(id, (const uint8_t *) ev.mv_data + REC_EVENT_ID, 16);
        if ((rc = s_del(self, DB_EVENTS, &seq, sizeof seq))
            || (rc = s_del(self, DB_EVENT_IDS, id, 16))
            || (rc = s_del(self, DB_STREAMS, kb, alen + 9)))
            return s_err(self, rc);
        left -= left > 0;
        --*budget;
    }
    if (err || (rc = s_scrub_due(self)))
        return err ? err : s_err(self, rc);
    if (!found) /* all of it freed */
        rc = s_del(self, DB_REMOVALS, agg, alen);
    else {
        uint8_t v[16];
        s_put64(v, floor);
        s_put64(v + 8, left);
        rc = s_put(self, DB_REMOVALS, agg, alen, v, 16, 0);
    }
    return rc ? s_err(self, rc) : ANNAL_OK;
}

#define SWEEP_POLICIES 256 /* retention policies one sweep looks at, at most */

/* Looks at up to SWEEP_POLICIES retention policies, after the last one
   looked at: what each removes now becomes a removals entry. *round says
   whether the look came back to the first policy. */
static annal_err_t s_sweep_policies(lmdb_t *self, int64_t now, bool *round)
{
    MDB_cursor *cur;
    MDB_val key = {self->ret_at_len, self->ret_at}, val;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_RETENTION], &cur);
    if (rc)
        return s_err(self, rc);
    rc = mdb_cursor_get(cur, &key, &val, self->ret_at_len ? MDB_SET_RANGE : MDB_FIRST);
    if (rc == 0 && self->ret_at_len && key.mv_size == self->ret_at_len
        && memcmp(key.mv_data, self->ret_at, key.mv_size) == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT); /* past the last one looked at */
    /* the aggregates first, then their removals: no write under the cursor */
    char aggs[SWEEP_POLICIES][ANNAL_MAX_AGGREGATE_ID + 1];
    size_t n = 0;
    for (; rc == 0 && n < SWEEP_POLICIES; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size == 0 || key.mv_size > ANNAL_MAX_AGGREGATE_ID)
            continue;
        memcpy(aggs[n], key.mv_data, key.mv_size);
        aggs[n++][key.mv_size] = 0;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return s_err(self, rc);
    *round = rc == MDB_NOTFOUND;
    self->ret_at_len = 0;
    if (!*round && n) {
        self->ret_at_len = strlen(aggs[n - 1]);
        memcpy(self->ret_at, aggs[n - 1], self->ret_at_len);
    }
    annal_err_t err = ANNAL_OK;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t through;
        if (!(err = s_removed_through(self, aggs[i], now, &through)))
            err = s_mark_removed(self, aggs[i], strlen(aggs[i]), through);
    }
    return err;
}

static annal_err_t s_sweep(void *handle, size_t max, size_t *freed, annal_sweep_t *next)
{
    lmdb_t *self = handle;
    *freed = 0;
    *next = ANNAL_SWEEP_IDLE;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t budget = max;
    bool none = false, round = true;
    annal_err_t err = ANNAL_OK;
    while (budget > 0 && !none && !err)
        err = s_sweep_one(self, &budget, &none);
    if (!err && budget > 0 && s_any(self, DB_RETENTION))
        err = s_sweep_policies(self, annal_time_now(), &round);
    *freed = max - budget;
    if (!err)
        *next = s_any(self, DB_REMOVALS) || !round ? ANNAL_SWEEP_MORE
                : s_any(self, DB_RETENTION)        ? ANNAL_SWEEP_LATER
                                                   : ANNAL_SWEEP_IDLE;
    return err;
}

static annal_err_t s_retention_put(void *handle, const char *agg, const annal_retention_t *policy)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t alen = strlen(agg);
    if (alen == 0 || alen > ANNAL_MAX_AGGREGATE_ID)
        return ANNAL_ERR_MALFORMED;
    /* what the policy it had removes stays removed: never read again */
    uint64_t through;
    annal_err_t err = s_removed_through(self, agg, annal_time_now(), &through);
    if (err || (err = s_mark_removed(self, agg, alen, through)))
        return err;
    int rc;
    if (!policy->max_count && !policy->max_age_s) {
        rc = s_del(self, DB_RETENTION, agg, alen);
        return rc && rc != MDB_NOTFOUND ? s_err(self, rc) : ANNAL_OK;
    }
    uint8_t v[16];
    s_put64(v, policy->max_count);
    s_put64(v + 8, policy->max_age_s);
    rc = s_put(self, DB_RETENTION, agg, alen, v, 16, 0);
    return rc ? s_err(self, rc) : ANNAL_OK;
}

static annal_err_t s_retention_get(void *handle, const char *agg, annal_retention_t *out)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    return s_policy(self, agg, strlen(agg), out);
}

/* --- consumer groups --------------------------------------------------------------- */

/* The length of name when a group may have it (1 .. GROUP_NAME_MAX bytes,
   as the codec lets through), else 0: no group is stored under it. */
static size_t s_group_name(const char *name)
{
    size_t len = strlen(name);
    return len <= GROUP_NAME_MAX ? len : 0;
}

/* Whether key is a mark of the group name (nlen bytes). */
static bool s_mark_of(const MDB_val *key, const char *name, size_t nlen)
{
    const uint8_t *k = key->mv_data;
    return key->mv_size == nlen + 9 && memcmp(k, name, nlen) == 0 && k[nlen] == 0;
}

/* Bytes the view of the group record val (of a name of nlen bytes) needs,
   or 0 when the record is damaged. */
static size_t s_group_size(const MDB_val *val, size_t nlen)
{
    const uint8_t *p = val->mv_data, *end = p + val->mv_size;
    if (val->mv_size < GREC_HEADER || p[GREC_FORMAT] != GROUP_FORMAT
        || (p[GREC_FLAGS] & ~(GREC_UNORDERED | GREC_FROM_END)))
        return 0;
    size_t plen = s_get16(p + GREC_PREFIX_LEN), ntypes = s_get16(p + GREC_NTYPES);
    size_t need = ntypes * sizeof(char *) + nlen + 1 + plen + 1;
    const uint8_t *t = p + GREC_HEADER;
    if ((size_t) (end - t) < plen)
        return 0;
    t += plen;
    for (size_t i = 0; i < ntypes; i++) {
        if (end - t < 2 || (size_t) (end - t - 2) < s_get16(t))
            return 0;
        need += s_get16(t) + 1u;
        t += 2 + s_get16(t);
    }
    return t == end ? need : 0;
}

/* Decodes the group record val of name (nlen bytes, not NUL-terminated)
   into def, which borrows sc for its strings and types. */
static annal_err_t s_group_decode(lmdb_t *self, scratch_t *sc, const void *name, size_t nlen,
                                  const MDB_val *val, annal_group_def_t *def)
{
    size_t need = s_group_size(val, nlen);
    if (!need) {
        self->failed = true;
        return ANNAL_ERR_INTERNAL;
    }
    if (need > sc->cap) {
        void *bigger = realloc(sc->buf, need);
        if (!bigger)
            return ANNAL_ERR_UNAVAILABLE;
        sc->buf = bigger, sc->cap = need;
    }
    const uint8_t *p = val->mv_data, *t = p + GREC_HEADER;
    size_t plen = s_get16(p + GREC_PREFIX_LEN), ntypes = s_get16(p + GREC_NTYPES);
    char **types = sc->buf, *s = (char *) (types + ntypes);
    def->name = s;
    memcpy(s, name, nlen);
    s[nlen] = 0;
    s += nlen + 1;
    def->prefix = s;
    memcpy(s, t, plen);
    s[plen] = 0;
    s += plen + 1, t += plen;
    for (size_t i = 0; i < ntypes; i++) {
        size_t tlen = s_get16(t);
        types[i] = s;
        memcpy(s, t + 2, tlen);
        s[tlen] = 0;
        s += tlen + 1, t += 2 + tlen;
    }
    def->types = ntypes ? types : NULL;
    def->ntypes = ntypes;
    def->unordered = p[GREC_FLAGS] & GREC_UNORDERED;
    def->from_end = p[GREC_FLAGS] & GREC_FROM_END;
    def->ack_timeout_ms = s_get32(p + GREC_ACK_TIMEOUT);
    def->max_deliveries = s_get32(p + GREC_MAX_DELIVERIES);
    def->start = s_get64(p + GREC_START);
    def->floor = s_get64(p + GREC_FLOOR);
    return ANNAL_OK;
}

/* Decodes the mark at key and val (of a group name of nlen bytes) into m;
   -1 when it is damaged. m->reason borrows val. */
static int s_mark_decode(const MDB_val *key, const MDB_val *val, size_t nlen, annal_group_mark_t *m)
{
    const uint8_t *v = val->mv_data;
    if (val->mv_size < MARK_HEADER
        || (v[MARK_KIND] != ANNAL_MARK_ACKED && v[MARK_KIND] != ANNAL_MARK_PARKED
            && v[MARK_KIND] != ANNAL_MARK_READY))
        return -1;
    m->sequence = s_get_be((const uint8_t *) key->mv_data + nlen + 1);
    m->mark = (annal_mark_t) v[MARK_KIND];
    m->delivery = s_get32(v + MARK_DELIVERY);
    m->reason_len = val->mv_size - MARK_HEADER;
    m->reason = m->reason_len ? (const char *) v + MARK_HEADER : NULL;
    return 0;
}

/* Appends m to list (growing it). Returns 0, or -1 out of memory. */
static int s_mark_push(annal_mark_list_t *list, const annal_group_mark_t *m)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        annal_group_mark_t *bigger = realloc(list->items, cap * sizeof *bigger);
        if (!bigger)
            return -1;
        list->items = bigger, list->cap = cap;
    }
    list->items[list->count++] = *m;
    return 0;
}

/* Deletes the marks of name (nlen bytes) at or below through: every one,
   or the ANNAL_MARK_ACKED ones only. */
static annal_err_t s_drop_marks(lmdb_t *self, const char *name, size_t nlen, uint64_t through,
                                bool acked_only)
{
    uint8_t kb[KEY_MAX];
    MDB_val key = {s_vkey(kb, name, nlen, 0), kb}, val;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_GROUP_MARKS], &cur);
    if (rc)
        return s_err(self, rc);
    annal_err_t err = ANNAL_OK;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && s_mark_of(&key, name, nlen)) {
        annal_group_mark_t m;
        if (acked_only && s_mark_decode(&key, &val, nlen, &m)) {
            self->failed = true;
            err = ANNAL_ERR_INTERNAL;
            break;
        }
        if (s_get_be((const uint8_t *) key.mv_data + nlen + 1) > through)
            break;
        if (acked_only && m.mark != ANNAL_MARK_ACKED) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            continue;
        }
        size_t klen = key.mv_size;
        memcpy(kb, key.mv_data, klen); /* the page it is on changes */
        if ((rc = s_del(self, DB_GROUP_MARKS, kb, klen)))
            break;
        key = (MDB_val){klen, kb}; /* the next one: the first key after it */
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = s_err(self, rc);
    return err;
}

static annal_err_t s_group_put(void *handle, const annal_group_def_t *def)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    const char *prefix = def->prefix ? def->prefix : "";
    size_t nlen = s_group_name(def->name), plen = strlen(prefix), size = GREC_HEADER + plen;
    if (!nlen || plen > UINT16_MAX || def->ntypes > UINT16_MAX || (def->ntypes && !def->types))
        return ANNAL_ERR_MALFORMED; /* checked before anything is written */
    for (size_t i = 0; i < def->ntypes; i++) {
        size_t tlen = strlen(def->types[i]);
        if (tlen > UINT16_MAX)
            return ANNAL_ERR_MALFORMED;
        size += 2 + tlen;
    }
    if (size > UINT32_MAX) /* a journal op's value length */
        return ANNAL_ERR_MALFORMED;
    uint8_t *p = s_log(self, DB_GROUPS, def->name, nlen, size);
    if (!p)
        return ANNAL_ERR_UNAVAILABLE;
    p[GREC_FORMAT] = GROUP_FORMAT;
    p[GREC_FLAGS] =
        (uint8_t) ((def->unordered ? GREC_UNORDERED : 0) | (def->from_end ? GREC_FROM_END : 0));
    s_put16(p + GREC_PREFIX_LEN, (uint16_t) plen);
    s_put16(p + GREC_NTYPES, (uint16_t) def->ntypes);
    s_put32(p + GREC_ACK_TIMEOUT, def->ack_timeout_ms);
    s_put32(p + GREC_MAX_DELIVERIES, def->max_deliveries);
    s_put64(p + GREC_START, def->start);
    s_put64(p + GREC_FLOOR, def->floor);
    uint8_t *t = p + GREC_HEADER;
    memcpy(t, prefix, plen);
    t += plen;
    for (size_t i = 0; i < def->ntypes; i++) {
        size_t tlen = strlen(def->types[i]);
        s_put16(t, (uint16_t) tlen);
        memcpy(t + 2, def->types[i], tlen);
        t += 2 + tlen;
    }
    MDB_val key = {nlen, (void *) def->name}, val = {size, p};
    int rc = mdb_put(self->txn, self->dbi[DB_GROUPS], &key, &val, 0);
    return rc ? s_err(self, rc) : ANNAL_OK;
}

static annal_err_t s_group_get(void *handle, const char *name, annal_group_def_t *out)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t nlen = s_group_name(name);
    if (!nlen)
        return ANNAL_ERR_NOT_FOUND;
    MDB_val key = {nlen, (void *) name}, val;
    int rc = mdb_get(self->txn, self->dbi[DB_GROUPS], &key, &val);
    if (rc)
        return s_err(self, rc);
    return s_group_decode(self, &self->got, name, nlen, &val, out);
}

/* fn gets a view in self->each, apart from group_get's, so that it may call
   group_get; it may write too (delete the group it is given, or others):
   the walk finds its place again by name after each call. */
static annal_err_t
s_group_each(void *handle, annal_err_t (*fn)(void *arg, const annal_group_def_t *def), void *arg)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_GROUPS], &cur);
    if (rc)
        return s_err(self, rc);
    annal_err_t err = ANNAL_OK;
    MDB_val key, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        annal_group_def_t def;
        if ((err = s_group_decode(self, &self->each, key.mv_data, key.mv_size, &val, &def))
            || (err = fn(arg, &def)))
            break;
        size_t nlen = strlen(def.name);
        key = (MDB_val){nlen, (void *) def.name};
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc == 0 && key.mv_size == nlen && memcmp(key.mv_data, def.name, nlen) == 0)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!err && rc != MDB_NOTFOUND)
        err = s_err(self, rc);
    return err;
}

static annal_err_t s_group_delete(void *handle, const char *name)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t nlen = s_group_name(name);
    if (!nlen)
        return ANNAL_ERR_NOT_FOUND;
    int rc = s_del(self, DB_GROUPS, name, nlen);
    if (rc)
        return s_err(self, rc);
    return s_drop_marks(self, name, nlen, UINT64_MAX, false);
}

static annal_err_t s_group_mark(void *handle, const char *name, const annal_group_mark_t *mark)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t rlen = mark->reason ? mark->reason_len : 0;
    if ((mark->mark != ANNAL_MARK_ACKED && mark->mark != ANNAL_MARK_PARKED
         && mark->mark != ANNAL_MARK_READY)
        || rlen > UINT32_MAX - MARK_HEADER)
        return ANNAL_ERR_MALFORMED;
    size_t nlen = s_group_name(name);
    if (!nlen)
        return ANNAL_ERR_NOT_FOUND;
    MDB_val gkey = {nlen, (void *) name}, gval;
    int rc = mdb_get(self->txn, self->dbi[DB_GROUPS], &gkey, &gval);
    if (rc) /* invariant 4: no marks without their group */
        return s_err(self, rc);
    uint8_t kb[KEY_MAX];
    size_t klen = s_vkey(kb, name, nlen, mark->sequence);
    uint8_t *p = s_log(self, DB_GROUP_MARKS, kb, klen, MARK_HEADER + rlen);
    if (!p)
        return ANNAL_ERR_UNAVAILABLE;
    p[MARK_KIND] = (uint8_t) mark->mark;
    s_put32(p + MARK_DELIVERY, mark->delivery);
    if (rlen)
        memcpy(p + MARK_HEADER, mark->reason, rlen);
    MDB_val key = {klen, kb}, val = {MARK_HEADER + rlen, p};
    rc = mdb_put(self->txn, self->dbi[DB_GROUP_MARKS], &key, &val, 0);
    return rc ? s_err(self, rc) : ANNAL_OK;
}

static annal_err_t s_group_unmark(void *handle, const char *name, uint64_t sequence)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t nlen = s_group_name(name);
    if (!nlen)
        return ANNAL_OK;
    uint8_t kb[KEY_MAX];
    int rc = s_del(self, DB_GROUP_MARKS, kb, s_vkey(kb, name, nlen, sequence));
    return rc && rc != MDB_NOTFOUND ? s_err(self, rc) : ANNAL_OK;
}

static annal_err_t s_group_marks(void *handle, const char *name, uint64_t from, size_t max,
                                 annal_mark_t mark, annal_mark_list_t *out, uint64_t *next)
{
    lmdb_t *self = handle;
    out->count = 0;
    *next = 0;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t nlen = s_group_name(name);
    if (!nlen)
        return ANNAL_OK;
    uint8_t kb[KEY_MAX];
    MDB_val key = {s_vkey(kb, name, nlen, from), kb}, val;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[DB_GROUP_MARKS], &cur);
    if (rc)
        return s_err(self, rc);
    annal_err_t err = ANNAL_OK;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && s_mark_of(&key, name, nlen)) {
        annal_group_mark_t m;
        if (s_mark_decode(&key, &val, nlen, &m)) {
            self->failed = true;
            err = ANNAL_ERR_INTERNAL;
            break;
        }
        if (mark && m.mark != mark) {
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            continue;
        }
        if (out->count == max) { /* one more: so a full page that ends the list says so */
            *next = m.sequence;
            break;
        }
        if (s_mark_push(out, &m)) {
            err = ANNAL_ERR_UNAVAILABLE;
            break;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = s_err(self, rc);
    return err;
}

static annal_err_t s_group_floor(void *handle, const char *name, uint64_t floor)
{
    lmdb_t *self = handle;
    if (!self->txn)
        return ANNAL_ERR_INTERNAL;
    size_t nlen = s_group_name(name);
    if (!nlen)
        return ANNAL_ERR_NOT_FOUND;
    MDB_val key = {nlen, (void *) name}, val;
    int rc = mdb_get(self->txn, self->dbi[DB_GROUPS], &key, &val);
    if (rc)
        return s_err(self, rc);
    if (!s_group_size(&val, nlen)) {
        self->failed = true;
        return ANNAL_ERR_INTERNAL;
    }
    uint8_t *p = s_log(self, DB_GROUPS, name, nlen, val.mv_size);
    if (!p)
        return ANNAL_ERR_UNAVAILABLE;
    memcpy(p, val.mv_data, val.mv_size);
    s_put64(p + GREC_FLOOR, floor);
    MDB_val nval = {val.mv_size, p};
    if ((rc = mdb_put(self->txn, self->dbi[DB_GROUPS], &key, &nval, 0)))
        return s_err(self, rc);
    return s_drop_marks(self, name, nlen, floor, true);
}

/* --- moving the store ------------------------------------------------------------ */

/* Hands every event, then every snapshot, of db to sink. */
static annal_err_t s_dump_db(lmdb_t *self, int db, const annal_sink_t *sink, char *why,
                             size_t whylen)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc = mdb_cursor_open(self->txn, self->dbi[db], &cur);
    if (rc) {
        snprintf(why, whylen, "cannot read the store: %s", mdb_strerror(rc));
        return s_err(self, rc);
    }
    annal_err_t err = ANNAL_OK;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && !err;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const uint8_t *k = key.mv_data, *v = val.mv_data;
        if (db == DB_EVENTS) {
            annal_stored_t rec;
            if (s_decode(s_get64(k), &val, &rec.event)) {
                snprintf(why, whylen, "event %llu is damaged", (unsigned long long) s_get64(k));
                err = ANNAL_ERR_INTERNAL;
                break;
            }
            rec.append_size = s_get32(v + REC_APPEND_SIZE);
            rec.append_index = s_get32(v + REC_APPEND_INDEX);
            err = sink->event(sink->arg, &rec, why, whylen);
            continue;
        }
        if (key.mv_size < 10 || k[key.mv_size - 9] != 0 || val.mv_size < 2
            || (v[0] != SNAPSHOT_FOLDED && v[0] != SNAPSHOT_CLIENT)) {
            snprintf(why, whylen, "a snapshot is damaged");
            err = ANNAL_ERR_INTERNAL;
            break;
        }
        annal_snapshot_t snap = {s_get_be(k + key.mv_size - 8), v[0] == SNAPSHOT_FOLDED, v + 1,
                                 val.mv_size - 1};
        err = sink->snapshot(sink->arg, (const char *) k, key.mv_size - 9, &snap, why, whylen);
    }
    mdb_cursor_close(cur);
    if (!err && rc != MDB_NOTFOUND) {
        snprintf(why, whylen, "cannot read the store: %s", mdb_strerror(rc));
        err = s_err(self, rc);
    }
    return err;
}

static annal_err_t s_dump(void *handle, const annal_sink_t *sink, char *why, size_t whylen)
{
    lmdb_t *self = handle;
    annal_err_t err = s_begin(self);
    if (err) {
        snprintf(why, whylen, "cannot read the store: %s", annal_strerror(err));
        return err;
    }
    err = s_dump_db(self, DB_EVENTS, sink, why, whylen);
    if (!err)
        err = s_dump_db(self, DB_SNAPSHOTS, sink, why, whylen);
    s_abort(self);
    return err;
}

const annal_store_ops_t annal_lmdb_ops = {
    .name = "lmdb",
    .open = s_open,
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .abort = s_abort,
    .checkpoint = s_checkpoint_op,
    .append = s_append,
    .version = s_version_op,
    .read = s_read,
    .read_all = s_read_all,
    .put_snapshot = s_put_snapshot,
    .get_snapshot = s_get_snapshot,
    .stats = s_stats,
    .dump = s_dump,
    .group_put = s_group_put,
    .group_get = s_group_get,
    .group_each = s_group_each,
    .group_delete = s_group_delete,
    .group_mark = s_group_mark,
    .group_unmark = s_group_unmark,
    .group_marks = s_group_marks,
    .group_floor = s_group_floor,
    .remove = s_remove,
    .sweep = s_sweep,
    .retention_put = s_retention_put,
    .retention_get = s_retention_get,
};
