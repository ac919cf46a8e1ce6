/*  testutil_annald.h: annald as a child process for the C tests of
    libannal: a fresh data folder and IPC endpoints in a folder of its own,
    started, killed (any signal) and started again on the same folder and
    endpoints; pipelined appends. A test defines ANNALD_PATH (the annald to
    run).

    Not loopback TCP ports: a port freed by a killed annald can be bound by
    another test's annald running at the same time (ctest -j), and ZeroMQ's
    reconnect would then carry this test's requests to it. A socket file in a
    private folder cannot be taken over. */
#ifndef ANNAL_TESTUTIL_ANNALD_H
#define ANNAL_TESTUTIL_ANNALD_H

#include "testutil.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#include <annal/annal.h>

typedef struct {
    pid_t pid;          /* annald, or 0 */
    char *data;         /* its data folder */
    char *sockets;      /* the folder of its IPC endpoints */
    char commands[128]; /* endpoints */
    char events[128];
    const char *extra; /* one more option, or NULL */
} t_daemon_t;

/* Starts annald on d->data and d's endpoints; waits for its ready line. */
static inline int t_daemon_start(t_daemon_t *d)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    d->pid = fork();
    if (d->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(ANNALD_PATH, "annald", "--data", d->data, "--commands", d->commands, "--events",
              d->events, d->extra ? d->extra : (char *) NULL, (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[512];
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    line[n > 0 ? n : 0] = 0;
    return strstr(line, "ready") ? 0 : -1;
}

static t_daemon_t t_daemons[4]; /* the running case's, for cleanup */

/* Stops what a case left running, and removes the folders (set t_after to
   it: a case that fails returns early). */
static inline void t_daemon_cleanup(void)
{
    for (int i = 0; i < 4; i++) {
        t_daemon_t *d = &t_daemons[i];
        if (d->pid > 0) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
        }
        if (d->data)
            t_rmdir(d->data);
        if (d->sockets)
            t_rmdir(d->sockets);
        memset(d, 0, sizeof *d);
    }
}

/* A new annald on a new folder and new endpoints (extra: one more option, or
   NULL), started unless start is false; NULL when it did not start (or 4
   are in use). */
static inline t_daemon_t *t_daemon_new(const char *extra, bool start)
{
    t_daemon_t *d = NULL;
    for (int i = 0; i < 4 && !d; i++)
        if (!t_daemons[i].data)
            d = &t_daemons[i];
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    d->extra = extra;
    d->data = t_tempdir();
    d->sockets = t_tempdir();
    snprintf(d->commands, sizeof d->commands, "ipc://%s/commands", d->sockets);
    snprintf(d->events, sizeof d->events, "ipc://%s/events", d->sockets);
    return !start || t_daemon_start(d) == 0 ? d : NULL;
}

static inline t_daemon_t *t_daemon(const char *extra)
{
    return t_daemon_new(extra, true);
}

static inline void t_daemon_kill(t_daemon_t *d, int sig)
{
    kill(d->pid, sig);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

/* Stops annald (SIGTERM) and removes its folder. */
static inline void t_daemon_stop(t_daemon_t *d)
{
    t_daemon_kill(d, SIGTERM);
    d->pid = 0;
    t_rmdir(d->data);
    d->data = NULL;
}

/* Appends n events to aggregates prefix-0 .. prefix-9 ({"n": start + i}),
   pipelined; returns how many were acknowledged. */
static inline int t_append(const char *endpoint, const char *prefix, int n, int start, int pause_us)
{
    annal_client_t *c = annal_client_new(endpoint, 10000);
    int acked = 0, inflight = 0;
    char agg[64], data[64];
    for (int i = 0; i < n; i++) {
        snprintf(agg, sizeof agg, "%s-%d", prefix, i % 10);
        snprintf(data, sizeof data, "{\"n\":%d}", start + i);
        annal_event_spec_t ev = {"Counted", data, NULL, NULL};
        annal_result_t res;
        uint64_t ticket;
        if (annal_client_send_append(c, agg, ANNAL_ANY, &ev, 1, &ticket, &res) == ANNAL_SUCCESS)
            inflight++;
        else
            fprintf(stderr, "  send: %s\n", res.text);
        while (inflight >= 16 || (i == n - 1 && inflight > 0)) {
            if (annal_client_recv_append(c, &ticket, NULL, -1, &res) != ANNAL_SUCCESS) {
                fprintf(stderr, "  append: %s\n", res.text);
                goto done;
            }
            acked++;
            inflight--;
        }
        if (pause_us && i % 50 == 0)
            usleep(pause_us);
    }
done:
    annal_client_destroy(&c);
    return acked;
}

#endif
