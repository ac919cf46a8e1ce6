/*  test_group.c: the consumer group engine (broker/annal_group.h) alone,
    through its header: ordering, leases and their ends, acks, parks,
    replays, acked_through, and random runs checked against the
    invariants. */
#include "testutil.h"

#include <stdint.h>

#include "annal_group.h"

#define NONE (-1)

static annal_group_t *s_group; /* the case's group */

static void s_after(void)
{
    annal_group_destroy(&s_group);
}

/* Feeds events start, start+1 ... of the aggregates named by the letters
   of aggs ("aab": a, a, b). */
static int s_feed(uint64_t start, const char *aggs)
{
    for (size_t i = 0; aggs[i]; i++)
        if (annal_group_feed(s_group, start + i, &aggs[i], 1))
            return -1;
    return 0;
}

/* Whether a fetch by consumer at now leases exactly the sequences want
   (ending in 0), with the deliveries delivery (one for all). */
static bool s_fetch_is(const char *consumer, int64_t now, size_t max, const uint64_t *want,
                       uint32_t delivery)
{
    annal_group_lease_t got[64];
    size_t n = annal_group_fetch(s_group, consumer, now, max, got);
    size_t k = 0;
    for (; want[k]; k++)
        if (k >= n || got[k].sequence != want[k] || got[k].delivery != delivery)
            break;
    bool ok = want[k] == 0 && k == n;
    if (!ok) {
        fprintf(stderr, "  fetch got");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %llu/%u", (unsigned long long) got[i].sequence, got[i].delivery);
        fprintf(stderr, "\n");
    }
    char why[128];
    if (annal_group_check(s_group, why, sizeof why)) {
        fprintf(stderr, "  %s\n", why);
        ok = false;
    }
    return ok;
}

#define SEQS(...) ((const uint64_t[]){__VA_ARGS__, 0})
#define NOTHING   ((const uint64_t[]){0})

/* By aggregate: an aggregate's next event waits until the one before it
   is done; other aggregates go on. */
static void t_ordering(void)
{
    CHECK((s_group = annal_group_new(1, true, 1000, 5)));
    CHECK(s_feed(1, "aabcb") == 0);
    CHECK(annal_group_acked_through(s_group) == 0);
    CHECK(s_fetch_is("w1", 0, 10, SEQS(1, 3, 4), 1));
    CHECK(s_fetch_is("w2", 0, 10, NOTHING, 1));
    CHECK(annal_group_leased(s_group) == 3 && annal_group_pending(s_group) == 5);
    CHECK(annal_group_counts(s_group, "w1", 1) && !annal_group_counts(s_group, "w2", 1));
    CHECK(annal_group_mark(s_group, 1, ANNAL_GROUP_ACKED) == 0);
    CHECK(annal_group_acked_through(s_group) == 1);
    CHECK(s_fetch_is("w2", 0, 10, SEQS(2), 1));
    CHECK(annal_group_mark(s_group, 4, ANNAL_GROUP_ACKED) == 0); /* out of order */
    CHECK(annal_group_acked_through(s_group) == 1);
    CHECK(annal_group_mark(s_group, 3, ANNAL_GROUP_PARKED) == 0); /* parked frees b */
    CHECK(s_fetch_is("w1", 0, 10, SEQS(5), 1));
    CHECK(annal_group_mark(s_group, 2, ANNAL_GROUP_ACKED) == 0);
    CHECK(annal_group_acked_through(s_group) == 4); /* 3 parked, 4 acked */
    CHECK(annal_group_mark(s_group, 5, ANNAL_GROUP_ACKED) == 0);
    CHECK(annal_group_acked_through(s_group) == 5 && annal_group_pending(s_group) == 0);
    CHECK(annal_group_mark(s_group, 5, ANNAL_GROUP_ACKED) == -1); /* gone from the window */
}

/* ordering "none": any ready event, max_count at a time. */
static void t_unordered(void)
{
    CHECK((s_group = annal_group_new(1, false, 1000, 5)));
    CHECK(s_feed(1, "aaaab") == 0);
    CHECK(s_fetch_is("w1", 0, 3, SEQS(1, 2, 3), 1));
    CHECK(s_fetch_is("w2", 0, 3, SEQS(4, 5), 1));
    CHECK(s_fetch_is("w3", 0, 3, NOTHING, 1));
    CHECK(s_fetch_is("w3", 0, 0, NOTHING, 1));
}

/* A lease ends at its deadline: ready again (the consumer whose lease
   ended may still ack it until someone else leases it); on its last
   delivery it stays leased until parked. */
static void t_leases(void)
{
    uint64_t park[4];
    CHECK((s_group = annal_group_new(1, true, 100, 2)));
    CHECK(s_feed(1, "ab") == 0);
    CHECK(s_fetch_is("w1", 0, 1, SEQS(1), 1));
    CHECK(annal_group_next_deadline(s_group) == 100);
    CHECK(annal_group_expire(s_group, 99, park, 4) == 0 && annal_group_leased(s_group) == 1);
    CHECK(annal_group_expire(s_group, 100, park, 4) == 0 && annal_group_leased(s_group) == 0);
    CHECK(annal_group_next_deadline(s_group) == INT64_MAX);
    CHECK(annal_group_counts(s_group, "w1", 1) && !annal_group_counts(s_group, "w2", 1));
    CHECK(s_fetch_is("w2", 150, 1, SEQS(1), 2));
    CHECK(!annal_group_counts(s_group, "w1", 1) && annal_group_counts(s_group, "w2", 1));
    CHECK(annal_group_spent(s_group, 1) && !annal_group_spent(s_group, 2));
    CHECK(annal_group_expire(s_group, 250, park, 4) == 1 && park[0] == 1);
    CHECK(annal_group_leased(s_group) == 1); /* until the park is durable */
    CHECK(s_fetch_is("w3", 250, 5, SEQS(2), 1));
    CHECK(annal_group_expire(s_group, 251, park, 4) == 1 && park[0] == 1);
    CHECK(annal_group_mark(s_group, 1, ANNAL_GROUP_PARKED) == 0);
    CHECK(annal_group_acked_through(s_group) == 1);
    /* a nack retry: ready at once, the same delivery count */
    CHECK(annal_group_mark(s_group, 2, ANNAL_GROUP_READY) == 0);
    CHECK(s_fetch_is("w3", 260, 5, SEQS(2), 2));
    CHECK(annal_group_mark(s_group, 2, ANNAL_GROUP_LEASED) == -1);
}

/* acked_through: start - 1 at first, past events that did not match (the
   scan position), back before a parked event replayed. */
static void t_acked_through(void)
{
    CHECK((s_group = annal_group_new(5, true, 100, 5)));
    CHECK(annal_group_acked_through(s_group) == 4);
    annal_group_scanned(s_group, 9);
    CHECK(annal_group_acked_through(s_group) == 8 && annal_group_scan_position(s_group) == 9);
    CHECK(annal_group_feed(s_group, 8, "a", 1) == -1); /* behind the scan */
    CHECK(annal_group_feed(s_group, 9, "a", 1) == 0 && annal_group_feed(s_group, 12, "b", 1) == 0);
    CHECK(annal_group_feed(s_group, 12, "b", 1) == -1);
    CHECK(annal_group_acked_through(s_group) == 8);
    CHECK(s_fetch_is("w1", 0, 5, SEQS(9, 12), 1));
    CHECK(annal_group_mark(s_group, 9, ANNAL_GROUP_PARKED) == 0);
    CHECK(annal_group_mark(s_group, 12, ANNAL_GROUP_ACKED) == 0);
    CHECK(annal_group_acked_through(s_group) == 12);
    annal_group_scanned(s_group, 20);
    CHECK(annal_group_acked_through(s_group) == 19);
    /* replaying 9, dropped from the window: back in, delivery 0 */
    CHECK(annal_group_replay(s_group, 9, "a", 1) == 0);
    CHECK(annal_group_acked_through(s_group) == 8);
    CHECK(!annal_group_counts(s_group, "w1", 9));
    CHECK(s_fetch_is("w2", 0, 5, SEQS(9), 1));
    CHECK(annal_group_replay(s_group, 20, "a", 1) == -1); /* never scanned */
    CHECK(annal_group_replay(s_group, 4, "a", 1) == -1);  /* before the start */
    CHECK(annal_group_mark(s_group, 9, ANNAL_GROUP_ACKED) == 0);
    CHECK(annal_group_acked_through(s_group) == 19);
}

/* Replaying a parked event still in the window (behind a pending one). */
static void t_replay_in_window(void)
{
    CHECK((s_group = annal_group_new(1, false, 100, 5)));
    CHECK(s_feed(1, "abc") == 0);
    CHECK(s_fetch_is("w1", 0, 5, SEQS(1, 2, 3), 1));
    CHECK(annal_group_mark(s_group, 2, ANNAL_GROUP_PARKED) == 0);
    CHECK(annal_group_replay(s_group, 2, "b", 1) == 0);
    annal_group_state_t st;
    uint32_t delivery;
    CHECK(annal_group_state(s_group, 2, &st, &delivery) && st == ANNAL_GROUP_READY
          && delivery == 0);
    CHECK(s_fetch_is("w2", 0, 5, SEQS(2), 1));
}

/* Random runs: feeds, fetches by three consumers, acks, retries, parks,
   replays and lease ends, checking the invariants at every step, and that
   no event is ever leased again once done. */
static void t_random(void)
{
    for (unsigned seed = 1; seed <= 40; seed++) {
        srand(seed);
        bool by_aggregate = seed % 2;
        CHECK((s_group = annal_group_new(1, by_aggregate, 50, 3)));
        static bool done[2001];
        static char agg_of[2001];
        static bool parked[2001];
        memset(done, 0, sizeof done);
        memset(parked, 0, sizeof parked);
        uint64_t fed = 0;
        int64_t now = 0;
        for (int step = 0; step < 3000; step++) {
            int op = rand() % 6;
            char consumer[2] = {(char) ('a' + rand() % 3), 0};
            now += rand() % 10;
            if (op == 0 && fed < 2000) {
                char agg = (char) ('p' + rand() % 5);
                CHECK(annal_group_feed(s_group, ++fed, &agg, 1) == 0);
                agg_of[fed] = agg;
            }
            else if (op == 1) {
                uint64_t park[64];
                size_t n = annal_group_expire(s_group, now, park, 64);
                for (size_t i = 0; i < n && i < 64; i++) {
                    CHECK(annal_group_mark(s_group, park[i], ANNAL_GROUP_PARKED) == 0);
                    done[park[i]] = parked[park[i]] = true;
                }
                annal_group_lease_t got[8];
                n = annal_group_fetch(s_group, consumer, now, (size_t) (rand() % 8), got);
                for (size_t i = 0; i < n; i++) {
                    uint64_t g = got[i].sequence;
                    CHECK(!done[g] && got[i].delivery <= 3);
                    /* by aggregate: every earlier event of its aggregate is done */
                    for (uint64_t t = 1; by_aggregate && t < g; t++)
                        CHECK(done[t] || agg_of[t] != agg_of[g]);
                }
            }
            else if (fed && op <= 4) {
                uint64_t seq = 1 + (uint64_t) rand() % fed;
                if (!annal_group_counts(s_group, consumer, seq))
                    continue;
                annal_group_state_t st = op == 2 ? ANNAL_GROUP_ACKED
                                         : op == 3 && !annal_group_spent(s_group, seq)
                                             ? ANNAL_GROUP_READY
                                             : ANNAL_GROUP_PARKED;
                CHECK(annal_group_mark(s_group, seq, st) == 0);
                done[seq] = st != ANNAL_GROUP_READY;
                parked[seq] = st == ANNAL_GROUP_PARKED;
            }
            else if (fed && op == 5) {
                uint64_t seq = 1 + (uint64_t) rand() % fed;
                annal_group_state_t st;
                uint32_t delivery;
                bool in = annal_group_state(s_group, seq, &st, &delivery);
                if (done[seq] && (!in || st == ANNAL_GROUP_PARKED) && parked[seq]
                    && rand() % 4 == 0) {
                    CHECK(annal_group_replay(s_group, seq, &agg_of[seq], 1) == 0);
                    done[seq] = parked[seq] = false;
                }
            }
            char why[128];
            if (annal_group_check(s_group, why, sizeof why)) {
                fprintf(stderr, "  seed %u step %d: %s\n", seed, step, why);
                CHECK(0);
            }
            uint64_t through = annal_group_acked_through(s_group);
            for (uint64_t s = 1; s <= through && s <= fed; s++)
                CHECK(done[s]);
        }
        annal_group_destroy(&s_group);
    }
}

/* Leases put back from a shared store: held until their deadline, by
   their consumer, with their delivery; an ended one ends at the next
   expire (to park on its last delivery); none for an event not fed or
   done. */
static void t_restore(void)
{
    uint64_t park[4];
    CHECK((s_group = annal_group_new(1, true, 100, 3)));
    CHECK(s_feed(1, "aab") == 0);
    CHECK(annal_group_restore(s_group, 1, "w1", 500, 2) == 0);
    CHECK(annal_group_restore(s_group, 3, "w2", 10, 3) == 0);
    CHECK(annal_group_restore(s_group, 9, "w1", 500, 1) == -1);
    CHECK(annal_group_restore(s_group, 2, "w1", 500, 0) == -1);
    CHECK(annal_group_leased(s_group) == 2 && annal_group_next_deadline(s_group) == 10);
    CHECK(annal_group_counts(s_group, "w1", 1) && !annal_group_counts(s_group, "w2", 1));
    CHECK(s_fetch_is("w3", 0, 5, NOTHING, 1)); /* 2 waits behind 1; 3 is leased */
    CHECK(annal_group_expire(s_group, 10, park, 4) == 1 && park[0] == 3); /* its last */
    CHECK(annal_group_mark(s_group, 3, ANNAL_GROUP_PARKED) == 0);
    CHECK(annal_group_restore(s_group, 3, "w2", 900, 1) == -1); /* done */
    CHECK(annal_group_expire(s_group, 500, park, 4) == 0 && annal_group_leased(s_group) == 0);
    CHECK(s_fetch_is("w3", 500, 5, SEQS(1), 3)); /* its third delivery */
}

/* Events of a removed aggregate leave the window as if acked, leased or
   not: the next of another aggregate is fetched, and acked_through moves. */
static void t_forget(void)
{
    CHECK((s_group = annal_group_new(1, true, 100, 3)));
    CHECK(s_feed(1, "aabab") == 0);
    CHECK(s_fetch_is("w1", 0, 5, SEQS(1, 3), 1));
    CHECK(annal_group_forget(s_group, "a", 1, 4) == 2); /* 1 (leased) and 2; 4 is later */
    CHECK(annal_group_leased(s_group) == 1 && annal_group_acked_through(s_group) == 2);
    CHECK(!annal_group_counts(s_group, "w1", 1));
    CHECK(s_fetch_is("w2", 0, 5, SEQS(4), 1));
    CHECK(annal_group_forget(s_group, "c", 1, 99) == 0);
    CHECK(annal_group_forget(s_group, "b", 1, 99) == 2);
    CHECK(annal_group_acked_through(s_group) == 3 && annal_group_leased(s_group) == 1);
}

static const t_case_t s_cases[] = {
    {"ordering", t_ordering},
    {"unordered", t_unordered},
    {"leases", t_leases},
    {"acked_through", t_acked_through},
    {"replay_in_window", t_replay_in_window},
    {"restore", t_restore},
    {"forget", t_forget},
    {"random", t_random},
};

int main(int argc, char **argv)
{
    t_after = s_after;
    return t_main(argc, argv, s_cases, sizeof s_cases / sizeof s_cases[0]);
}
