/*  annal_pg_schema.c: the PostgreSQL backend's schema, created and
    migrated when a broker connects.

    The schema's migration steps are SQL files, pg/schema-N.sql, embedded
    at build time (pg/embed.cmake); step N takes a database from version
    N - 1 to N, in one transaction with the bump of annal_schema.version,
    under an advisory lock so that brokers starting together migrate once.
    A step that has shipped is never edited, not even by a byte: add the
    next (and its hash to pg/SHA256SUMS, which the build checks).

    | step | what it does                                                   |
    | ---- | -------------------------------------------------------------- |
    | 1    | tables annal_head (one row: the head and the last recorded_at), |
    |      | annal_events, annal_aggregates, annal_snapshots; function      |
    |      | annal_append(p_agg, p_expect, p_expected, p_now, ids, ...),    |
    |      | which moved annal_head itself                                  |
    | 2    | annal_append(p_agg, p_expect, p_expected, h, rec, ids, ...):   |
    |      | appends after sequence h at recorded_at rec; the caller holds  |
    |      | the lock on annal_head and moves it (annal_pg.c)               |
    | 3    | consumer groups: annal_groups, annal_group_marks, the UNLOGGED |
    |      | annal_group_leases, sequence annal_group_versions              |
    |      | (annal_pg_group.c)                                             |

    annal_append's status: 0 appended, 1 an earlier identical append, 2 a
    version conflict (version: the current one), 3 malformed (detail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_pg_private.h"
#include "annal_pg_schema_sql.h" /* s_schema[]: the steps, generated from pg/schema-N.sql */

#define SCHEMA_LOCK 7234001 /* pg_advisory_lock key for migrations */

/* Creates or checks the schema, under an advisory lock so that brokers
   starting together do it once. */
int annal_pg_migrate(PGconn *conn, char *why, size_t whylen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%d)", SCHEMA_LOCK);
    if (annal_pg_exec(conn, sql, why, whylen))
        return -1;
    int rc = annal_pg_exec(
        conn, "CREATE TABLE IF NOT EXISTS annal_schema (version integer NOT NULL)", why, whylen);
    PGresult *r = rc ? NULL : PQexec(conn, "SELECT version FROM annal_schema");
    if (!rc && PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, whylen, "%s", PQerrorMessage(conn));
        rc = -1;
    }
    int version = !rc && PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    int known = (int) (sizeof s_schema / sizeof s_schema[0]);
    if (!rc && version > known) {
        snprintf(why, whylen, "the database has annal schema %d; this annald knows up to %d",
                 version, known);
        rc = -1;
    }
    for (; !rc && version < known; version++) {
        const char *step = s_schema[version];
        char *sql_step = malloc(strlen(step) + 160);
        if (!sql_step) {
            rc = -1;
            break;
        }
        sprintf(sql_step, "BEGIN; %s %s; COMMIT;", step,
                version == 0 ? "INSERT INTO annal_schema VALUES (1)"
                             : "UPDATE annal_schema SET version = version + 1");
        rc = annal_pg_exec(conn, sql_step, why, whylen);
        if (rc)
            annal_pg_exec(conn, "ROLLBACK", NULL, 0);
        free(sql_step);
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d)", SCHEMA_LOCK);
    annal_pg_exec(conn, sql, NULL, 0);
    return rc;
}
