/*  annal_subscription.c: catch-up subscriptions.

    NOTES ON THE DESIGN
    State: position, the next sequence number to consider. Invariants:
    1. Every matching event with a sequence below position has been handed
       to the handler, exactly once, in sequence order.
    2. An event is handed over only when its sequence is position (live) or
       it comes from a read_all that started at position (catch-up).
    The SUB socket is connected before the first read, so nothing committed
    after the read can slip between history and live. Live events below
    position are duplicates of what a read already delivered and are
    skipped. A read whose head is below position means annald now serves
    another (or a restored) store: run fails rather than skip events. A live
    event above position means a hole: lost events, or (with
    a prefix) events of other aggregates, which the PUB filter never sends;
    either way one read_all from position settles it. A $head heartbeat at
    or past position means events may have been lost at the tail: read
    again. Missing heartbeats (annald down) mean the same, with back-off
    until annald answers again. */
#include "annal_subscription.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "annal_client_private.h"

#define PAGE           1000 /* events per catch-up read */
#define SILENCE_MS     3000 /* no heartbeat for this long: check with a read */
#define BACKOFF_MAX_MS 2000 /* longest wait between reads while annald is away */

struct annal_subscription_t {
    annal_subscription_config_t config; /* settings; strings copied below */
    char *commands, *events, *prefix;   /* owned copies */
    annal_handler_fn handler;           /* the application's */
    void *arg;                          /* its argument */
    void *ctx, *sub;                    /* ZeroMQ context and SUB socket */
    annal_client_t *client;             /* for read_all */
    annal_curve_t curve;                /* config.curve's keys, when given */
    uint64_t position;                  /* next sequence to consider */
    bool started;                       /* position known, sockets up */
    bool catch_up;                      /* a read from position is due */
    int backoff_ms;                     /* current wait after a failed read */
    volatile sig_atomic_t stop;         /* set by annal_subscription_stop */
    annal_subscription_stats_t stats;   /* counters */
    int64_t last_beat;                  /* when annald was last heard (ms, monotonic) */
    bool behind;                        /* the store's head is behind position */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *s_dup(const char *s)
{
    return strdup(s ? s : "");
}

annal_subscription_t *annal_subscription_new(const annal_subscription_config_t *config,
                                             annal_handler_fn handler, void *arg)
{
    if (!config || !config->commands || !config->events || !handler)
        return NULL;
    annal_subscription_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (self->config.timeout_ms <= 0)
        self->config.timeout_ms = 5000;
    if (self->config.rcvhwm <= 0)
        self->config.rcvhwm = 10000;
    self->commands = s_dup(config->commands);
    self->events = s_dup(config->events);
    self->prefix = s_dup(config->prefix);
    self->handler = handler;
    self->arg = arg;
    self->position = config->from;
    self->ctx = zmq_ctx_new();
    self->sub = self->ctx ? zmq_socket(self->ctx, ZMQ_SUB) : NULL;
    if (config->curve) {
        self->curve = *config->curve;
        self->config.curve = &self->curve;
    }
    self->client =
        annal_client_new_curve(self->commands, self->config.timeout_ms, self->config.curve);
    int zero = 0;
    if (!self->commands || !self->events || !self->prefix || !self->sub || !self->client
        || zmq_setsockopt(self->sub, ZMQ_LINGER, &zero, sizeof zero)
        || zmq_setsockopt(self->sub, ZMQ_RCVHWM, &self->config.rcvhwm, sizeof(int))
        || zmq_setsockopt(self->sub, ZMQ_SUBSCRIBE, self->prefix, strlen(self->prefix))
        || (*self->prefix && zmq_setsockopt(self->sub, ZMQ_SUBSCRIBE, "$head", 5))
        || annal_curve_apply(self->sub, self->config.curve)
        || zmq_connect(self->sub, self->events)) {
        annal_subscription_destroy(&self);
        return NULL;
    }
    return self;
}

void annal_subscription_destroy(annal_subscription_t **self)
{
    annal_subscription_t *s = *self;
    if (!s)
        return;
    if (s->sub)
        zmq_close(s->sub);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    annal_client_destroy(&s->client);
    free(s->commands);
    free(s->events);
    free(s->prefix);
    free(s);
    *self = NULL;
}

void annal_subscription_stop(annal_subscription_t *self)
{
    self->stop = 1;
}

uint64_t annal_subscription_position(const annal_subscription_t *self)
{
    return self->position;
}

void annal_subscription_stats(const annal_subscription_t *self, annal_subscription_stats_t *out)
{
    *out = self->stats;
}

/* Hands one event over; returns the handler's word (see the header). */
static int s_deliver(annal_subscription_t *self, const annal_record_t *r)
{
    int rc = self->handler(r, self->arg);
    if (rc >= 0)
        self->position = r->sequence_number + 1;
    return rc;
}

/* What a read or a live message asks of the loop. */
enum { GO_ON = 0, CAUGHT_UP = 1, STOP_AFTER = 2, REFUSED = 3, AWAY = -1, FATAL = -2 };

/* One catch-up read from position: CAUGHT_UP when position passed the head
   the read saw, GO_ON when there is more, AWAY when annald did not answer
   (or is busy), FATAL for an error retrying cannot mend (res says which),
   or the handler's STOP_AFTER / REFUSED. */
static int s_read(annal_subscription_t *self, annal_result_t *res)
{
    annal_page_t *page = NULL;
    annal_status_t st = annal_client_read_all(self->client, self->position, PAGE, self->prefix,
                                              NULL, 0, &page, res);
    self->stats.reads++;
    if (st == ANNAL_TIMEOUT || (st == ANNAL_FAILED && res->code == ANNAL_CODE_UNAVAILABLE))
        return AWAY;
    if (st != ANNAL_SUCCESS)
        return FATAL;
    self->last_beat = s_now_ms();
    /* a read's head covers every event delivered before it was sent (live
       events are published after commit), so a head below position means
       annald serves another store */
    if (page->head_sequence + 1 < self->position) {
        self->behind = true;
        annal_page_destroy(&page);
        return GO_ON;
    }
    int rc = GO_ON;
    for (size_t i = 0; i < page->count && rc == GO_ON; i++) {
        if (page->records[i].sequence_number < self->position)
            continue;
        int h = s_deliver(self, &page->records[i]);
        if (h >= 0)
            self->stats.read++;
        rc = h > 0 ? STOP_AFTER : h < 0 ? REFUSED : GO_ON;
    }
    if (rc == GO_ON) {
        if (page->next > self->position)
            self->position = page->next;
        if (page->count == 0 && self->position > page->head_sequence)
            rc = CAUGHT_UP;
    }
    annal_page_destroy(&page);
    return rc;
}

/* Learns the head for ANNAL_FROM_NOW. */
static int s_start(annal_subscription_t *self, annal_result_t *res)
{
    if (self->position != ANNAL_FROM_NOW)
        return 0;
    annal_page_t *page = NULL;
    if (annal_client_read_all(self->client, 1, 0, NULL, NULL, 0, &page, res) != ANNAL_SUCCESS)
        return -1;
    self->position = page->head_sequence + 1;
    annal_page_destroy(&page);
    return 0;
}

/* Handles one live message: GO_ON, or the handler's STOP_AFTER / REFUSED. */
static int s_live(annal_subscription_t *self, const void *topic, size_t tlen, const void *body,
                  size_t blen)
{
    annal_msg_t *msg = annal_msg_decode(body, blen);
    if (!msg)
        return GO_ON; /* not ours to judge: a read settles what matters */
    int rc = GO_ON;
    if (tlen == 5 && memcmp(topic, "$head", 5) == 0) {
        int64_t head = 0;
        self->last_beat = s_now_ms();
        /* at or past position: events may have been lost, read them. Below
           position - 1: a hint only (it may have left annald before the read
           that moved position, on another socket); a read tells whether
           annald now serves another store */
        if (annal_msg_int(msg, "head_sequence", &head)
            && ((uint64_t) head >= self->position || (uint64_t) head + 1 < self->position))
            self->catch_up = true;
    }
    else {
        annal_record_t r;
        if (annal_record_from_msg(msg, &r) == 0 && !self->catch_up) {
            if (r.sequence_number == self->position) {
                int h = s_deliver(self, &r);
                if (h >= 0)
                    self->stats.live++;
                rc = h > 0 ? STOP_AFTER : h < 0 ? REFUSED : GO_ON;
            }
            else if (r.sequence_number > self->position)
                self->catch_up = true; /* a hole: lost, or filtered out; read settles it */
        }
    }
    annal_msg_destroy(&msg);
    return rc;
}

/* The status run returns for a read or handler outcome. */
static annal_status_t s_finish(annal_subscription_t *self, int rc, annal_result_t *res)
{
    if (rc == STOP_AFTER) {
        memset(res, 0, sizeof *res);
        return ANNAL_SUCCESS;
    }
    if (rc == REFUSED) {
        res->status = ANNAL_FAILED;
        res->code = 0;
        snprintf(res->text, sizeof res->text, "the handler refused event %llu",
                 (unsigned long long) self->position);
        return ANNAL_FAILED;
    }
    if (self->behind) {
        res->status = ANNAL_FAILED;
        res->code = 0;
        snprintf(res->text, sizeof res->text,
                 "annald's store is behind this subscription's position %llu: is it another or "
                 "a restored store?",
                 (unsigned long long) self->position);
        return ANNAL_FAILED;
    }
    return res->status ? res->status : ANNAL_FAILED; /* FATAL: res says why */
}

annal_status_t annal_subscription_run(annal_subscription_t *self, int duration_ms,
                                      annal_result_t *result)
{
    annal_result_t scratch;
    annal_result_t *res = result ? result : &scratch;
    memset(res, 0, sizeof *res);
    int64_t deadline = duration_ms < 0 ? INT64_MAX : s_now_ms() + duration_ms;
    int64_t next_try = 0;
    if (!self->last_beat)
        self->last_beat = s_now_ms();
    while (!self->stop && s_now_ms() < deadline) {
        int64_t now = s_now_ms();
        if (!self->started && now >= next_try) {
            if (s_start(self, res) == 0) {
                self->started = true;
                self->catch_up = true;
                self->backoff_ms = 0;
            }
            else {
                if (self->backoff_ms < BACKOFF_MAX_MS)
                    self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 100;
                next_try = now + self->backoff_ms;
            }
        }
        if (self->started && now - self->last_beat > SILENCE_MS) {
            self->catch_up = true; /* annald quiet: restarted, or heartbeats lost */
            self->last_beat = now;
        }
        while (self->started && self->catch_up && !self->stop && now >= next_try
               && s_now_ms() < deadline) {
            int rc = s_read(self, res);
            if (self->behind || rc == STOP_AFTER || rc == REFUSED || rc == FATAL)
                return s_finish(self, rc, res);
            if (rc == AWAY) {
                if (self->backoff_ms < BACKOFF_MAX_MS)
                    self->backoff_ms = self->backoff_ms ? self->backoff_ms * 2 : 50;
                next_try = s_now_ms() + self->backoff_ms;
                break;
            }
            self->backoff_ms = 0;
            if (rc == CAUGHT_UP)
                self->catch_up = false;
        }
        int64_t wait = deadline - s_now_ms();
        if (wait > 200)
            wait = 200; /* wake up to notice stop and silences */
        if (wait < 0)
            wait = 0;
        zmq_pollitem_t item = {self->sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long) wait) <= 0)
            continue;
        /* drain what is waiting, in order */
        for (int n = 0; n < 10000 && !self->stop; n++) {
            zmq_msg_t topic, body;
            zmq_msg_init(&topic);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&topic, self->sub, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&topic);
                zmq_msg_close(&body);
                break;
            }
            int rc = GO_ON;
            if (zmq_msg_more(&topic) && zmq_msg_recv(&body, self->sub, 0) >= 0 && self->started)
                rc = s_live(self, zmq_msg_data(&topic), zmq_msg_size(&topic), zmq_msg_data(&body),
                            zmq_msg_size(&body));
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            if (rc != GO_ON || self->behind)
                return s_finish(self, rc, res);
        }
    }
    memset(res, 0, sizeof *res);
    return ANNAL_SUCCESS;
}
