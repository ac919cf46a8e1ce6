/*  projection.c: a read model of account balances in SQLite, fed by a
    libannal catch-up subscription.

    Each event is applied in one SQLite transaction together with the new
    checkpoint, so a crash at any point leaves the read model and its
    position in step: no event is lost and none is applied twice. The table
    applied(sequence PRIMARY KEY) makes a double application an error you
    would see, not a silent drift.

    usage: projection DB [--commands EP] [--events EP] [--prefix account-] */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <annal/annal.h>

static annal_subscription_t *s_sub;

static void s_on_signal(int sig)
{
    (void) sig;
    if (s_sub)
        annal_subscription_stop(s_sub);
}

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL,"
    "  events INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS applied (sequence INTEGER PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  position INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO checkpoint VALUES (1, 1);";

/* Applies one event and moves the checkpoint, atomically. */
static int s_apply(const annal_record_t *r, void *arg)
{
    sqlite3 *db = arg;
    sqlite3_stmt *st = NULL;
    int sign = strcmp(r->event_type, "Deposited") == 0   ? 1
               : strcmp(r->event_type, "Withdrawn") == 0 ? -1
                                                         : 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    int ok = sqlite3_prepare_v2(db, "INSERT INTO applied VALUES (?1)", -1, &st, NULL) == SQLITE_OK
             && sqlite3_bind_int64(st, 1, (sqlite3_int64) r->sequence_number) == SQLITE_OK
             && sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (ok && sign) {
        ok = sqlite3_prepare_v2(
                 db,
                 "INSERT INTO accounts VALUES (?1, ?2 * json_extract(?3, '$.amount'), 1)"
                 " ON CONFLICT (id) DO UPDATE SET"
                 " balance = balance + ?2 * json_extract(?3, '$.amount'),"
                 " events = events + 1",
                 -1, &st, NULL)
                 == SQLITE_OK
             && sqlite3_bind_text(st, 1, r->aggregate_id, -1, SQLITE_STATIC) == SQLITE_OK
             && sqlite3_bind_int(st, 2, sign) == SQLITE_OK
             && sqlite3_bind_text(st, 3, r->event_data, -1, SQLITE_STATIC) == SQLITE_OK
             && sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    if (ok) {
        ok = sqlite3_prepare_v2(db, "UPDATE checkpoint SET position = ?1", -1, &st, NULL)
                 == SQLITE_OK
             && sqlite3_bind_int64(st, 1, (sqlite3_int64) r->sequence_number + 1) == SQLITE_OK
             && sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    if (!ok || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "projection: event %llu: %s\n", (unsigned long long) r->sequence_number,
                sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1; /* not applied: the position stays on it */
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *commands = getenv("ANNAL_COMMANDS"), *events = getenv("ANNAL_EVENTS");
    const char *prefix = "account-", *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--commands") == 0)
            commands = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--events") == 0)
            events = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--prefix") == 0)
            prefix = argv[++i];
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else {
            fprintf(stderr, "usage: projection DB [--commands EP] [--events EP] [--prefix P]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: projection DB [--commands EP] [--events EP] [--prefix P]\n");
        return 2;
    }
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 10000) != SQLITE_OK
        || sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL)
        || sqlite3_exec(db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "projection: %s: %s\n", path, sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_int64 position = 1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT position FROM checkpoint", -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        position = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    annal_subscription_config_t config = {
        .commands = commands ? commands : "tcp://127.0.0.1:5555",
        .events = events ? events : "tcp://127.0.0.1:5556",
        .prefix = prefix,
        .from = (uint64_t) position,
    };
    s_sub = annal_subscription_new(&config, s_apply, db);
    if (!s_sub) {
        fprintf(stderr, "projection: cannot subscribe\n");
        return 1;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    fprintf(stderr, "projection: from sequence %lld, prefix '%s'\n", (long long) position, prefix);
    annal_result_t res;
    annal_status_t rc = annal_subscription_run(s_sub, -1, &res);
    if (rc != ANNAL_SUCCESS)
        fprintf(stderr, "projection: stopped at sequence %llu: %s\n",
                (unsigned long long) annal_subscription_position(s_sub), res.text);
    annal_subscription_destroy(&s_sub);
    sqlite3_close(db);
    return rc == ANNAL_SUCCESS ? 0 : 1;
}
