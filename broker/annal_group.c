/*  annal_group.c: the engine of one consumer group (see annal_group.h).

    The window is an array of the fed events in sequence order, from the
    first one not done on (items[lo..n)); done events at its front are
    dropped as soon as they are there, so it holds what is pending plus
    what was done out of order behind it. A fetch walks it from the front:
    with ordering by aggregate, the first event not done of each aggregate
    is the only one that may be leased, so the walk remembers the
    aggregates it has passed an event of (a small hash set made per walk). */
#include "annal_group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One fed event. */
typedef struct {
    uint64_t sequence;         /* the event */
    char *aggregate;           /* its aggregate id, owned */
    size_t alen;               /* bytes in aggregate */
    annal_group_state_t state; /* where it is */
    uint32_t delivery;         /* times leased so far */
    char *consumer;            /* the last consumer it was leased to, owned, or NULL */
    int64_t deadline;          /* while leased: when the lease ends */
} entry_t;

struct annal_group_t {
    uint64_t start;          /* the group's first sequence */
    bool by_aggregate;       /* ordering "aggregate" */
    uint32_t ack_timeout_ms; /* lease length */
    uint32_t max_deliveries; /* leases of one event, at most */
    entry_t *items;          /* the window is items[lo..n) */
    size_t lo, n, cap;       /* its front, its end, entries allocated */
    uint64_t scanned;        /* every event below it was fed, when it matched */
    size_t leased;           /* entries leased now */
    int64_t next_deadline;   /* no lease ends before it (INT64_MAX: none leased) */
};

annal_group_t *annal_group_new(uint64_t start, bool by_aggregate, uint32_t ack_timeout_ms,
                               uint32_t max_deliveries)
{
    annal_group_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->start = start ? start : 1;
    self->by_aggregate = by_aggregate;
    self->ack_timeout_ms = ack_timeout_ms;
    self->max_deliveries = max_deliveries ? max_deliveries : 1;
    self->scanned = self->start;
    self->next_deadline = INT64_MAX;
    return self;
}

static void s_free_entry(entry_t *e)
{
    free(e->aggregate);
    free(e->consumer);
}

void annal_group_destroy(annal_group_t **self)
{
    if (!*self)
        return;
    for (size_t i = (*self)->lo; i < (*self)->n; i++)
        s_free_entry(&(*self)->items[i]);
    free((*self)->items);
    free(*self);
    *self = NULL;
}

static bool s_done(const entry_t *e)
{
    return e->state == ANNAL_GROUP_ACKED || e->state == ANNAL_GROUP_PARKED;
}

/* Drops the done events at the window's front; moves the window to the
   array's start when half of it is behind. */
static void s_trim(annal_group_t *self)
{
    while (self->lo < self->n && s_done(&self->items[self->lo]))
        s_free_entry(&self->items[self->lo++]);
    if (self->lo == self->n)
        self->lo = self->n = 0;
    else if (self->lo > self->cap / 2) {
        memmove(self->items, self->items + self->lo, (self->n - self->lo) * sizeof *self->items);
        self->n -= self->lo;
        self->lo = 0;
    }
}

/* Room for one more entry at the end. 0, or -1 out of memory. */
static int s_reserve(annal_group_t *self)
{
    if (self->n < self->cap)
        return 0;
    size_t cap = self->cap ? self->cap * 2 : 64;
    entry_t *items = realloc(self->items, cap * sizeof *items);
    if (!items)
        return -1;
    self->items = items;
    self->cap = cap;
    return 0;
}

/* The window index of sequence, or SIZE_MAX. */
static size_t s_find(const annal_group_t *self, uint64_t sequence)
{
    size_t a = self->lo, b = self->n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (self->items[m].sequence < sequence)
            a = m + 1;
        else
            b = m;
    }
    return a < self->n && self->items[a].sequence == sequence ? a : SIZE_MAX;
}

/* A new ready entry for sequence at window index at (entries from at on
   move up one). 0, or -1 out of memory. */
static int s_insert(annal_group_t *self, size_t at, uint64_t sequence, const char *aggregate,
                    size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy || s_reserve(self)) {
        free(copy);
        return -1;
    }
    memcpy(copy, aggregate, len);
    copy[len] = 0;
    memmove(self->items + at + 1, self->items + at, (self->n - at) * sizeof *self->items);
    self->items[at] = (entry_t){sequence, copy, len, ANNAL_GROUP_READY, 0, NULL, 0};
    self->n++;
    return 0;
}

int annal_group_feed(annal_group_t *self, uint64_t sequence, const char *aggregate, size_t len)
{
    if (sequence < self->scanned
        || (self->n > self->lo && sequence <= self->items[self->n - 1].sequence))
        return -1;
    if (s_insert(self, self->n, sequence, aggregate, len))
        return -1;
    self->scanned = sequence + 1;
    return 0;
}

void annal_group_scanned(annal_group_t *self, uint64_t next)
{
    if (next > self->scanned)
        self->scanned = next;
}

uint64_t annal_group_scan_position(const annal_group_t *self)
{
    return self->scanned;
}

/* Ends e's lease: ready again. */
static void s_unlease(annal_group_t *self, entry_t *e)
{
    if (e->state == ANNAL_GROUP_LEASED)
        self->leased--;
    e->state = ANNAL_GROUP_READY;
}

size_t annal_group_expire(annal_group_t *self, int64_t now, uint64_t *to_park, size_t cap)
{
    if (now < self->next_deadline)
        return 0;
    size_t parks = 0;
    int64_t next = INT64_MAX;
    for (size_t i = self->lo; i < self->n; i++) {
        entry_t *e = &self->items[i];
        if (e->state != ANNAL_GROUP_LEASED)
            continue;
        if (e->deadline > now) {
            next = e->deadline < next ? e->deadline : next;
            continue;
        }
        if (e->delivery >= self->max_deliveries) {
            /* stays leased (nobody may take it) until the park is durable */
            if (parks < cap)
                to_park[parks] = e->sequence;
            parks++;
            next = now < next ? now : next;
            continue;
        }
        s_unlease(self, e);
    }
    self->next_deadline = next;
    return parks;
}

/* A set of aggregate ids, for one walk of the window: open addressing
   over FNV-1a hashes, sized at twice the entries it may take. */
typedef struct {
    const entry_t **slots; /* an entry whose aggregate is in the set, or NULL */
    size_t mask;           /* slots - 1 (a power of two) */
} agg_set_t;

static uint64_t s_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char) s[i]) * 1099511628211ull;
    return h;
}

/* Adds e's aggregate; returns whether it was there already. */
static bool s_set_add(agg_set_t *set, const entry_t *e)
{
    for (size_t i = s_hash(e->aggregate, e->alen) & set->mask;; i = (i + 1) & set->mask) {
        const entry_t *o = set->slots[i];
        if (!o) {
            set->slots[i] = e;
            return false;
        }
        if (o->alen == e->alen && memcmp(o->aggregate, e->aggregate, e->alen) == 0)
            return true;
    }
}

/* Whether e's aggregate is in the set, without adding it. */
static bool s_set_has(const agg_set_t *set, const entry_t *e)
{
    for (size_t i = s_hash(e->aggregate, e->alen) & set->mask; set->slots[i];
         i = (i + 1) & set->mask)
        if (set->slots[i]->alen == e->alen
            && memcmp(set->slots[i]->aggregate, e->aggregate, e->alen) == 0)
            return true;
    return false;
}

size_t annal_group_fetch(annal_group_t *self, const char *consumer, int64_t now, size_t max,
                         annal_group_lease_t *out)
{
    size_t got = 0, pending = annal_group_pending(self);
    if (max == 0 || pending == self->leased)
        return 0;
    /* by aggregate: passed holds the aggregates of the pending events the
       walk has passed; busy those with an event leased anywhere (one
       replayed behind a leased one may not be leased beside it) */
    agg_set_t passed = {NULL, 0}, busy = {NULL, 0};
    if (self->by_aggregate) {
        size_t slots = 16;
        while (slots < 2 * pending)
            slots *= 2;
        passed.slots = calloc(slots, sizeof *passed.slots);
        busy.slots = calloc(slots, sizeof *busy.slots);
        if (!passed.slots || !busy.slots) {
            free(passed.slots);
            free(busy.slots);
            return 0; /* out of memory: nothing leased, the fetch finds none */
        }
        passed.mask = busy.mask = slots - 1;
        for (size_t i = self->lo; i < self->n; i++)
            if (self->items[i].state == ANNAL_GROUP_LEASED)
                s_set_add(&busy, &self->items[i]);
    }
    for (size_t i = self->lo; i < self->n && got < max; i++) {
        entry_t *e = &self->items[i];
        if (s_done(e))
            continue;
        bool held = self->by_aggregate && (s_set_add(&passed, e) || s_set_has(&busy, e));
        if (e->state != ANNAL_GROUP_READY || held)
            continue;
        char *who = strdup(consumer);
        if (!who)
            break;
        free(e->consumer);
        e->consumer = who;
        e->state = ANNAL_GROUP_LEASED;
        e->delivery++;
        e->deadline = now + self->ack_timeout_ms;
        if (e->deadline < self->next_deadline)
            self->next_deadline = e->deadline;
        self->leased++;
        out[got++] = (annal_group_lease_t){e->sequence, e->delivery};
    }
    free(passed.slots);
    free(busy.slots);
    return got;
}

bool annal_group_counts(const annal_group_t *self, const char *consumer, uint64_t sequence)
{
    size_t i = s_find(self, sequence);
    if (i == SIZE_MAX)
        return false;
    const entry_t *e = &self->items[i];
    return (e->state == ANNAL_GROUP_LEASED || e->state == ANNAL_GROUP_READY) && e->consumer
           && strcmp(e->consumer, consumer) == 0;
}

int annal_group_mark(annal_group_t *self, uint64_t sequence, annal_group_state_t state)
{
    size_t i = s_find(self, sequence);
    if (i == SIZE_MAX || state == ANNAL_GROUP_LEASED)
        return -1;
    entry_t *e = &self->items[i];
    s_unlease(self, e);
    e->state = state;
    s_trim(self);
    return 0;
}

int annal_group_replay(annal_group_t *self, uint64_t sequence, const char *aggregate, size_t len)
{
    size_t i = s_find(self, sequence);
    if (i != SIZE_MAX) {
        entry_t *e = &self->items[i];
        if (e->state == ANNAL_GROUP_PARKED) {
            e->state = ANNAL_GROUP_READY;
            e->delivery = 0;
            free(e->consumer); /* nobody's lease of it ended: nobody's ack counts */
            e->consumer = NULL;
        }
        return 0;
    }
    if (sequence < self->start || sequence >= self->scanned)
        return -1;
    /* done and dropped: it goes back in at its place (the front, since only
       the front is ever dropped), and acked_through moves back before it */
    size_t at = self->lo;
    while (at < self->n && self->items[at].sequence < sequence)
        at++;
    return s_insert(self, at, sequence, aggregate, len);
}

int annal_group_restore(annal_group_t *self, uint64_t sequence, const char *consumer,
                        int64_t deadline, uint32_t delivery)
{
    size_t i = s_find(self, sequence);
    if (i == SIZE_MAX || s_done(&self->items[i]) || delivery == 0)
        return -1;
    entry_t *e = &self->items[i];
    char *who = strdup(consumer);
    if (!who)
        return -1;
    free(e->consumer);
    e->consumer = who;
    e->delivery = delivery;
    e->deadline = deadline;
    if (e->state != ANNAL_GROUP_LEASED)
        self->leased++;
    e->state = ANNAL_GROUP_LEASED;
    if (deadline < self->next_deadline)
        self->next_deadline = deadline;
    return 0;
}

size_t annal_group_forget(annal_group_t *self, const char *aggregate, size_t len, uint64_t before)
{
    size_t n = 0;
    for (size_t i = self->lo; i < self->n && self->items[i].sequence < before; i++) {
        entry_t *e = &self->items[i];
        if (s_done(e) || e->alen != len || memcmp(e->aggregate, aggregate, len) != 0)
            continue;
        s_unlease(self, e);
        e->state = ANNAL_GROUP_ACKED;
        n++;
    }
    s_trim(self);
    return n;
}

bool annal_group_spent(const annal_group_t *self, uint64_t sequence)
{
    size_t i = s_find(self, sequence);
    return i != SIZE_MAX && self->items[i].delivery >= self->max_deliveries;
}

bool annal_group_state(const annal_group_t *self, uint64_t sequence, annal_group_state_t *state,
                       uint32_t *delivery)
{
    size_t i = s_find(self, sequence);
    if (i == SIZE_MAX)
        return false;
    *state = self->items[i].state;
    *delivery = self->items[i].delivery;
    return true;
}

uint64_t annal_group_acked_through(const annal_group_t *self)
{
    return self->lo < self->n ? self->items[self->lo].sequence - 1 : self->scanned - 1;
}

size_t annal_group_leased(const annal_group_t *self)
{
    return self->leased;
}

size_t annal_group_pending(const annal_group_t *self)
{
    size_t pending = 0;
    for (size_t i = self->lo; i < self->n; i++)
        pending += !s_done(&self->items[i]);
    return pending;
}

int64_t annal_group_next_deadline(const annal_group_t *self)
{
    return self->leased ? self->next_deadline : INT64_MAX;
}

int annal_group_check(const annal_group_t *self, char *why, size_t whylen)
{
    size_t leased = 0;
    for (size_t i = self->lo; i < self->n; i++) {
        const entry_t *e = &self->items[i];
        if (i == self->lo && s_done(e)) {
            snprintf(why, whylen, "1: the window starts with a done event (%llu)",
                     (unsigned long long) e->sequence);
            return -1;
        }
        if (i > self->lo && e->sequence <= self->items[i - 1].sequence) {
            snprintf(why, whylen, "1: the window is out of order at %llu",
                     (unsigned long long) e->sequence);
            return -1;
        }
        if (e->state == ANNAL_GROUP_LEASED) {
            leased++;
            if (e->delivery == 0 || e->delivery > self->max_deliveries) {
                snprintf(why, whylen, "4: %llu is leased for delivery %u",
                         (unsigned long long) e->sequence, e->delivery);
                return -1;
            }
            for (size_t k = self->lo; self->by_aggregate && k < i; k++) {
                const entry_t *o = &self->items[k];
                if (o->state == ANNAL_GROUP_LEASED && o->alen == e->alen
                    && memcmp(o->aggregate, e->aggregate, e->alen) == 0) {
                    snprintf(why, whylen, "3: %llu is leased beside %llu of its aggregate",
                             (unsigned long long) e->sequence, (unsigned long long) o->sequence);
                    return -1;
                }
            }
        }
    }
    if (leased != self->leased) {
        snprintf(why, whylen, "the lease count says %zu, the window %zu", self->leased, leased);
        return -1;
    }
    if (annal_group_acked_through(self) + 1 < self->start) {
        snprintf(why, whylen, "2: acked_through is below the start");
        return -1;
    }
    return 0;
}
