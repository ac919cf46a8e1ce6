/*  annal_worker.c: a consumer of a consumer group (annal_worker.h).

    NOTES ON THE DESIGN
    The worker loops: fetch a batch (a long poll), hand its events to the
    handler one by one, then settle the batch: one ack for the events the
    handler took, one nack retry for those it failed for now and those it
    never got to, and a nack park per event it refused for good (each with
    its own reason). Acks held longer than ack_delay_ms go out before the
    batch ends, so a slow handler does not sit on finished events.

    State: owed acks (handled OK, not yet confirmed by annald) and owed
    retries (to give back), each at most max_count sequences. Invariants
    (s_invariants, in debug builds):
    1. A sequence is put in an ack only after the handler returned OK for
       it; nothing else ever reaches an ack.
    2. Before each fetch nothing is owed: every event of the batch before
       was confirmed acked, retried or parked (or, after a stop while
       annald was away, given up on: its lease ends, annald hands it out
       again).
    3. The handler is called for no event once a stop was asked, and for
       none whose lease has run out by the worker's clock (fetched at +
       the group's ack_timeout_ms, less a margin): those are given back.
    A request annald does not answer (ANNAL_TIMEOUT) may or may not have
    been done; acks and nacks are safe to send again (annald ignores what
    no longer counts), so an owed request is sent until annald answers,
    each time on a new connection (a new socket also gets past a CURVE
    refusal), backing off from 100 ms to 2 s. Error 11 waits the same way
    on the same connection. */
#include "annal_worker.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annal_client_private.h"

#define DEFAULT_MAX_COUNT 16   /* events per fetch */
#define DEFAULT_WAIT_MS   1000 /* a fetch's long poll */
#define DEFAULT_ACK_DELAY 100  /* ms an ack is held back at most */
#define BACKOFF_MIN_MS    100  /* first wait after annald did not answer */
#define BACKOFF_MAX_MS    2000 /* longest */
#define LEASE_MARGIN_MAX  2000 /* ms before a lease's end no handler starts */
#define SLICE_MS          20   /* a back-off sleeps in slices, to notice a stop */

struct annal_worker_t {
    annal_worker_config_t config;      /* settings; strings copied below */
    char *commands, *group, *consumer; /* owned copies */
    annal_curve_t curve;               /* config.curve's keys, when given */
    annal_worker_fn handler;           /* the application's */
    void *arg;                         /* its argument (on_acked's too) */
    annal_client_t *client;            /* NULL until connected, and after annald did not answer */
    uint32_t ack_timeout_ms;           /* the group's lease length, read when run starts */
    atomic_int stop;                   /* set by annal_worker_stop */
    int64_t stop_deadline;      /* after a stop: when owed requests are given up (0: not yet) */
    uint64_t *acks;             /* owed acks */
    size_t nacks;               /* entries in acks */
    int64_t acks_since;         /* when the oldest owed ack was added (ms) */
    uint64_t *backs;            /* owed nack retries */
    size_t nbacks;              /* entries in backs */
    int backoff_ms;             /* the next wait while annald is away (0: none yet) */
    annal_worker_stats_t stats; /* counters */
    char reason[ANNAL_MAX_REASON + 1]; /* the handler's reason, per call */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool s_stopping(const annal_worker_t *self)
{
    return atomic_load(&((annal_worker_t *) self)->stop) != 0;
}

static void s_invariants(const annal_worker_t *self)
{
#ifndef NDEBUG
    assert(self->nacks <= self->config.max_count && self->nbacks <= self->config.max_count);
    assert(!self->nacks || self->acks_since > 0);
#else
    (void) self;
#endif
}

annal_worker_t *annal_worker_new(const annal_worker_config_t *config, annal_worker_fn handler,
                                 void *arg)
{
    if (!config || !config->commands || !config->group || !config->consumer || !handler
        || annal_aggregate_id_check(config->group, strlen(config->group))
        || annal_aggregate_id_check(config->consumer, strlen(config->consumer))
        || config->wait_ms > ANNAL_WAIT_MAX || config->max_count > ANNAL_MAX_BATCH)
        return NULL;
    annal_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    annal_worker_config_t *c = &self->config;
    c->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 5000;
    c->max_count = c->max_count ? c->max_count : DEFAULT_MAX_COUNT;
    c->wait_ms = c->wait_ms > 0 ? c->wait_ms : DEFAULT_WAIT_MS;
    c->ack_delay_ms = c->ack_delay_ms > 0 ? c->ack_delay_ms : DEFAULT_ACK_DELAY;
    if (config->curve) {
        self->curve = *config->curve;
        c->curve = &self->curve;
    }
    self->commands = strdup(config->commands);
    self->group = strdup(config->group);
    self->consumer = strdup(config->consumer);
    c->commands = self->commands;
    c->group = self->group;
    c->consumer = self->consumer;
    self->handler = handler;
    self->arg = arg;
    self->acks = calloc(c->max_count, sizeof *self->acks);
    self->backs = calloc(c->max_count, sizeof *self->backs);
    if (!self->commands || !self->group || !self->consumer || !self->acks || !self->backs)
        annal_worker_destroy(&self);
    return self;
}

void annal_worker_destroy(annal_worker_t **self)
{
    annal_worker_t *w = *self;
    if (!w)
        return;
    annal_client_destroy(&w->client);
    free(w->commands);
    free(w->group);
    free(w->consumer);
    free(w->acks);
    free(w->backs);
    free(w);
    *self = NULL;
}

void annal_worker_stop(annal_worker_t *self)
{
    atomic_store(&self->stop, 1);
}

void annal_worker_stats(const annal_worker_t *self, annal_worker_stats_t *out)
{
    *out = self->stats;
}

/* --- talking to annald ------------------------------------------------------------------ */

/* The client, connected now if it is not. */
static annal_status_t s_connect(annal_worker_t *self, annal_result_t *res)
{
    if (!self->client)
        self->client =
            annal_client_new_curve(self->commands, self->config.timeout_ms, self->config.curve);
    if (!self->client)
        return annal_client_result(res, ANNAL_INVALID, 0, "cannot connect to %s", self->commands);
    return ANNAL_SUCCESS;
}

/* Whether st (with res) says annald is away or busy: worth trying again. */
static bool s_away(annal_status_t st, const annal_result_t *res)
{
    return st == ANNAL_TIMEOUT || (st == ANNAL_FAILED && res->code == ANNAL_CODE_UNAVAILABLE);
}

/* Sleeps ms, in slices; ends early on a stop when interruptible. */
static void s_sleep(annal_worker_t *self, int ms, bool interruptible)
{
    int64_t end = s_now_ms() + ms;
    for (int64_t left; (left = end - s_now_ms()) > 0;) {
        if (interruptible && s_stopping(self))
            return;
        int slice = left < SLICE_MS ? (int) left : SLICE_MS;
        struct timespec ts = {0, (long) slice * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* After annald did not answer (st, res): a new connection next time, and a
   wait that doubles each time up to BACKOFF_MAX_MS. */
static void s_backoff(annal_worker_t *self, annal_status_t st, bool interruptible)
{
    if (st == ANNAL_TIMEOUT && self->client) {
        annal_client_destroy(&self->client);
        self->stats.reconnects++;
    }
    self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (self->backoff_ms > BACKOFF_MAX_MS)
        self->backoff_ms = BACKOFF_MAX_MS;
    s_sleep(self, self->backoff_ms, interruptible);
}

/* Whether owed requests are to be given up: a stop came, and the client's
   timeout has passed since run noticed it. */
static bool s_give_up(annal_worker_t *self)
{
    if (!s_stopping(self))
        return false;
    int64_t now = s_now_ms();
    if (!self->stop_deadline)
        self->stop_deadline = now + self->config.timeout_ms;
    return now >= self->stop_deadline;
}

/* Sends an ack (ack) or a nack of n sequences until annald answers it. */
static annal_status_t s_settle(annal_worker_t *self, bool ack, const uint64_t *seqs, size_t n,
                               annal_nack_action_t action, const char *reason, annal_result_t *res)
{
    if (n == 0)
        return ANNAL_SUCCESS;
    for (;;) {
        annal_status_t st = s_connect(self, res);
        if (st == ANNAL_SUCCESS)
            st = ack ? annal_client_group_ack(self->client, self->group, self->consumer, seqs, n,
                                              NULL, res)
                     : annal_client_group_nack(self->client, self->group, self->consumer, seqs, n,
                                               action, reason, NULL, res);
        if (st == ANNAL_SUCCESS) {
            self->backoff_ms = 0;
            if (ack) {
                self->stats.acked += n;
                if (self->config.on_acked)
                    self->config.on_acked(seqs, n, self->arg);
            }
            return ANNAL_SUCCESS;
        }
        if (!s_away(st, res))
            return st;
        if (s_give_up(self))
            return annal_client_result(res, ANNAL_TIMEOUT, 0,
                                       "stopped while annald was away: %zu events not %s (they "
                                       "come back when their leases end): %s",
                                       n, ack ? "acked" : "given back", res->text);
        s_backoff(self, st, false);
    }
}

static annal_status_t s_flush_acks(annal_worker_t *self, annal_result_t *res)
{
    annal_status_t st =
        s_settle(self, true, self->acks, self->nacks, ANNAL_ACTION_RETRY, NULL, res);
    self->nacks = 0;
    return st;
}

/* Settles what the batch left owed: acks first (they free the aggregates'
   next events), then the retries. */
static annal_status_t s_flush(annal_worker_t *self, annal_result_t *res)
{
    annal_status_t st = s_flush_acks(self, res);
    annal_status_t back =
        s_settle(self, false, self->backs, self->nbacks, ANNAL_ACTION_RETRY, NULL, res);
    self->nbacks = 0;
    return st ? st : back;
}

/* Makes the handler's reason fit for the wire: text, never empty. */
static const char *s_reason(annal_worker_t *self)
{
    char *r = self->reason;
    r[sizeof self->reason - 1] = 0;
    size_t len = strlen(r);
    if (!annal_utf8_valid(r, len))
        for (size_t i = 0; i < len; i++)
            if ((unsigned char) r[i] >= 0x80)
                r[i] = '?';
    return len ? r : "refused by the handler";
}

/* --- the loop ------------------------------------------------------------------------ */

/* Hands a fetched batch to the handler and settles it; *done counts the
   handler calls. */
static annal_status_t s_batch(annal_worker_t *self, const annal_client_group_page_t *page,
                              uint64_t *done, annal_result_t *res)
{
    int64_t margin = self->ack_timeout_ms / 5;
    if (margin > LEASE_MARGIN_MAX)
        margin = LEASE_MARGIN_MAX;
    int64_t lease_end = s_now_ms() + self->ack_timeout_ms - margin;
    annal_status_t st = ANNAL_SUCCESS;
    size_t i = 0;
    for (; i < page->count && !st && !s_stopping(self) && s_now_ms() < lease_end; i++) {
        const annal_client_group_event_t *ev = &page->events[i];
        uint64_t seq = ev->record.sequence_number;
        self->reason[0] = 0;
        annal_worker_verdict_t verdict =
            self->handler(ev, self->reason, sizeof self->reason, self->arg);
        self->stats.handled++;
        (*done)++;
        if (verdict == ANNAL_WORKER_OK) {
            if (!self->nacks)
                self->acks_since = s_now_ms();
            self->acks[self->nacks++] = seq;
        }
        else if (verdict == ANNAL_WORKER_PERMANENT) {
            self->stats.parked++;
            st = s_settle(self, false, &seq, 1, ANNAL_ACTION_PARK, s_reason(self), res);
        }
        else { /* TRANSIENT, or a value out of range: retried, never lost */
            self->stats.retried++;
            self->backs[self->nbacks++] = seq;
        }
        if (!st && self->nacks && s_now_ms() - self->acks_since >= self->config.ack_delay_ms)
            st = s_flush_acks(self, res);
        s_invariants(self);
    }
    for (; i < page->count; i++) { /* stopped, or their leases are (nearly) over */
        self->stats.given_back++;
        self->backs[self->nbacks++] = page->events[i].record.sequence_number;
    }
    annal_status_t flushed = s_flush(self, res);
    return st ? st : flushed;
}

/* Reads the group's lease length (and so checks that it exists), waiting
   while annald is away. */
static annal_status_t s_start(annal_worker_t *self, annal_result_t *res)
{
    while (!s_stopping(self)) {
        annal_client_group_list_t *info = NULL;
        annal_status_t st = s_connect(self, res);
        if (st == ANNAL_SUCCESS)
            st = annal_client_group_info(self->client, self->group, &info, res);
        if (st == ANNAL_SUCCESS) {
            self->ack_timeout_ms = info->groups[0].ack_timeout_ms;
            annal_client_group_list_destroy(&info);
            self->backoff_ms = 0;
            return ANNAL_SUCCESS;
        }
        if (!s_away(st, res))
            return st;
        s_backoff(self, st, true);
    }
    return ANNAL_SUCCESS;
}

annal_status_t annal_worker_run(annal_worker_t *self, uint64_t count, annal_result_t *res)
{
    annal_result_t scratch;
    if (!res)
        res = &scratch;
    memset(res, 0, sizeof *res);
    annal_status_t st = s_start(self, res);
    uint64_t done = 0;
    while (!st && !s_stopping(self) && (!count || done < count)) {
        size_t want = self->config.max_count;
        if (count && count - done < want)
            want = (size_t) (count - done);
        annal_client_group_page_t *page = NULL;
        st = s_connect(self, res);
        if (st == ANNAL_SUCCESS)
            st = annal_client_group_fetch(self->client, self->group, self->consumer, want,
                                          self->config.wait_ms, &page, res);
        if (st != ANNAL_SUCCESS) {
            if (!s_away(st, res))
                break;
            s_backoff(self, st, true);
            st = ANNAL_SUCCESS;
            continue;
        }
        self->backoff_ms = 0;
        self->stats.fetches++;
        self->stats.fetched += page->count;
        st = s_batch(self, page, &done, res);
        annal_client_group_page_destroy(&page);
    }
    if (st == ANNAL_SUCCESS)
        memset(res, 0, sizeof *res);
    return st;
}
