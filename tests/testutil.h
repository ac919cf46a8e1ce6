/*  testutil.h: the few helpers the C tests share: checks that report the
    line, temp folders, and a runner over a table of named cases. */
#ifndef ANNAL_TESTUTIL_H
#define ANNAL_TESTUTIL_H

#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_failed;
static void (*t_after)(void); /* run after each case, when set (cleanup) */

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            t_failed = 1;                                                              \
            return;                                                                    \
        }                                                                              \
    } while (0)

typedef struct {
    const char *name;  /* case name, one line each */
    void (*run)(void); /* the case */
} t_case_t;

static inline int t_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

/* A new empty folder under TMPDIR; the caller frees the string. */
static inline char *t_tempdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/annal-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        exit(1);
    }
    return path;
}

static inline void t_rmdir(char *path)
{
    nftw(path, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

/* Runs every case (or the one named in argv[1]); prints "N passed, M failed". */
static inline int t_main(int argc, char **argv, const t_case_t *cases, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        t_failed = 0;
        cases[i].run();
        if (t_after)
            t_after();
        printf("%s %s\n", t_failed ? "FAIL" : "ok  ", cases[i].name);
        fflush(stdout);
        if (t_failed)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
