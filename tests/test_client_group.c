/*  test_client_group.c: libannal's consumer group calls (annal_client_group.h)
    against a real annald (every command, its settings and counters, the
    long poll with a client timeout shorter than its wait, unknown groups,
    arguments refused before sending), and against a fake annald that
    answers with replies of the wrong shape, each of which must be an
    error, never a crash or a half-filled page. */
#define _GNU_SOURCE
#include "testutil_annald.h"
#include "testutil_fake.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define GROUP "g"

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The info of group (or NULL); the caller destroys it. */
static annal_client_group_list_t *s_info(annal_client_t *c, const char *group)
{
    annal_client_group_list_t *info = NULL;
    annal_result_t res;
    if (annal_client_group_info(c, group, &info, &res)) {
        fprintf(stderr, "  info: %s\n", res.text);
        return NULL;
    }
    return info;
}

/* --- against annald ------------------------------------------------------------------ */

static void t_create_info_list_delete(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "user", 5, 0, 0) == 5);
    annal_client_t *c = annal_client_new(d->commands, 5000);
    annal_result_t res;
    const char *types[] = {"Counted", "Other"};
    annal_client_group_settings_t s = {.prefix = "user-",
                                       .event_types = types,
                                       .ntypes = 2,
                                       .from_sequence = ANNAL_FROM_END,
                                       .ordering = ANNAL_ORDERING_NONE,
                                       .ack_timeout_ms = 2500,
                                       .max_deliveries = 3};
    uint64_t start = 0;
    CHECK(annal_client_group_create(c, "mailer", &s, &start, &res) == ANNAL_SUCCESS);
    CHECK(start == 6);
    CHECK(t_append(d->commands, "user", 2, 5, 0) == 2);
    uint64_t again = 0; /* the same settings after more appends: the same group */
    CHECK(annal_client_group_create(c, "mailer", &s, &again, &res) == ANNAL_SUCCESS);
    CHECK(again == 6);
    s.max_deliveries = 4; /* other settings: refused */
    CHECK(annal_client_group_create(c, "mailer", &s, NULL, &res) == ANNAL_FAILED);
    CHECK(res.code == ANNAL_CODE_MALFORMED && res.text[0]);
    CHECK(annal_client_group_create(c, "plain", NULL, &start, &res) == ANNAL_SUCCESS);
    CHECK(start == 1);

    annal_client_group_list_t *info = s_info(c, "mailer");
    CHECK(info && info->count == 1);
    annal_client_group_info_t *g = &info->groups[0];
    CHECK(strcmp(g->group, "mailer") == 0 && strcmp(g->prefix, "user-") == 0);
    CHECK(g->ntypes == 2 && strcmp(g->event_types[0], "Counted") == 0
          && strcmp(g->event_types[1], "Other") == 0);
    CHECK(g->ordering == ANNAL_ORDERING_NONE && g->ack_timeout_ms == 2500
          && g->max_deliveries == 3);
    CHECK(g->start_sequence == 6 && g->acked_through == 5 && g->head_sequence == 7);
    CHECK(g->lag == 2 && g->leased == 0 && g->parked == 0);
    CHECK(strstr(g->json, "\"type\":\"group\"") && strstr(g->json, "\"lag\":2"));
    annal_client_group_list_destroy(&info);
    CHECK(info == NULL);
    annal_client_group_list_destroy(&info); /* safe twice */

    annal_client_group_list_t *list = NULL;
    CHECK(annal_client_group_list(c, &list, &res) == ANNAL_SUCCESS);
    CHECK(list->count == 2);
    CHECK(strcmp(list->groups[0].group, "mailer") == 0
          && strcmp(list->groups[1].group, "plain") == 0);
    CHECK(list->groups[1].event_types == NULL && list->groups[1].ntypes == 0);
    CHECK(list->groups[1].ordering == ANNAL_ORDERING_AGGREGATE && list->groups[1].lag == 7);
    CHECK(strstr(list->groups[1].json, "\"group\":\"plain\"")
          && !strstr(list->groups[1].json, "\"type\""));
    annal_client_group_list_destroy(&list);

    CHECK(annal_client_group_delete(c, "plain", &res) == ANNAL_SUCCESS);
    CHECK(annal_client_group_delete(c, "plain", &res) == ANNAL_FAILED);
    CHECK(res.code == ANNAL_CODE_NOT_FOUND && strstr(res.text, "plain"));
    CHECK(annal_client_group_list(c, &list, &res) == ANNAL_SUCCESS && list->count == 1);
    annal_client_group_list_destroy(&list);
    annal_client_destroy(&c);
    t_daemon_stop(d);
}

/* Sequences of a page, for comparing. */
static bool s_got(const annal_client_group_page_t *p, size_t n, const uint64_t *seqs,
                  const uint32_t *deliveries)
{
    if (p->count != n) {
        fprintf(stderr, "  page has %zu events, want %zu\n", p->count, n);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (p->events[i].record.sequence_number != seqs[i]
            || p->events[i].delivery != deliveries[i]) {
            fprintf(stderr, "  event %zu: %llu delivery %u\n", i,
                    (unsigned long long) p->events[i].record.sequence_number,
                    p->events[i].delivery);
            return false;
        }
    return true;
}

static void t_fetch_ack_nack_park(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    CHECK(t_append(d->commands, "a", 30, 0, 0) == 30); /* a-0 .. a-9, three events each */
    annal_client_t *c = annal_client_new(d->commands, 5000);
    annal_result_t res;
    CHECK(annal_client_group_create(c, GROUP, NULL, NULL, &res) == ANNAL_SUCCESS);
    annal_client_group_page_t *p = NULL;
    /* by aggregate: the first event of a-0 .. a-3 */
    CHECK(annal_client_group_fetch(c, GROUP, "w1", 4, 0, &p, &res) == ANNAL_SUCCESS);
    CHECK(s_got(p, 4, (uint64_t[]){1, 2, 3, 4}, (uint32_t[]){1, 1, 1, 1}));
    CHECK(p->head_sequence == 30 && p->events[0].reason == NULL);
    const annal_record_t *r = &p->events[0].record;
    CHECK(strcmp(r->aggregate_id, "a-0") == 0 && r->version == 1);
    CHECK(strcmp(r->event_data, "{\"n\":0}") == 0 && strstr(r->json, "\"delivery\":1"));
    annal_client_group_page_destroy(&p);
    CHECK(p == NULL);

    size_t n = 0;
    CHECK(annal_client_group_ack(c, GROUP, "w1", (uint64_t[]){1, 1, 99}, 3, &n, &res) == 0);
    CHECK(n == 1); /* named twice, counts once; 99 is not leased */
    CHECK(annal_client_group_ack(c, GROUP, "w2", (uint64_t[]){2}, 1, &n, &res) == 0 && n == 0);
    CHECK(annal_client_group_nack(c, GROUP, "w1", (uint64_t[]){2}, 1, ANNAL_ACTION_RETRY, NULL, &n,
                                  &res)
          == ANNAL_SUCCESS);
    CHECK(n == 1);
    CHECK(annal_client_group_nack(c, GROUP, "w1", (uint64_t[]){3}, 1, ANNAL_ACTION_PARK,
                                  "bad \"address\"", &n, &res)
          == ANNAL_SUCCESS);
    CHECK(annal_client_group_nack(c, GROUP, "w1", (uint64_t[]){4}, 1, ANNAL_ACTION_SKIP, NULL, &n,
                                  &res)
          == ANNAL_SUCCESS);
    /* 2 again (its second delivery), then the lowest ready: 5 and 6 */
    CHECK(annal_client_group_fetch(c, GROUP, "w2", 3, 0, &p, &res) == ANNAL_SUCCESS);
    CHECK(s_got(p, 3, (uint64_t[]){2, 5, 6}, (uint32_t[]){2, 1, 1}));
    annal_client_group_page_destroy(&p);

    annal_client_group_list_t *info = s_info(c, GROUP);
    CHECK(info && info->groups[0].parked == 1 && info->groups[0].leased == 3);
    CHECK(info->groups[0].acked_through == 1 && info->groups[0].lag == 29);
    annal_client_group_list_destroy(&info);

    CHECK(annal_client_group_parked(c, GROUP, 0, 0, &p, &res) == ANNAL_SUCCESS);
    CHECK(p->count == 1 && p->events[0].record.sequence_number == 3);
    CHECK(p->events[0].delivery == 1 && strcmp(p->events[0].reason, "bad \"address\"") == 0);
    CHECK(p->next_sequence == 0);
    annal_client_group_page_destroy(&p);
    CHECK(annal_client_group_parked(c, GROUP, 4, 10, &p, &res) == ANNAL_SUCCESS && p->count == 0);
    annal_client_group_page_destroy(&p);

    /* an empty list replays nothing; none (NULL) replays every parked event */
    CHECK(annal_client_group_replay_parked(c, GROUP, (uint64_t[]){0}, 0, &n, &res) == 0 && n == 0);
    CHECK(annal_client_group_replay_parked(c, GROUP, NULL, 0, &n, &res) == 0 && n == 1);
    CHECK(annal_client_group_fetch(c, GROUP, "w3", 1, 0, &p, &res) == ANNAL_SUCCESS);
    CHECK(s_got(p, 1, (uint64_t[]){3}, (uint32_t[]){1}));
    annal_client_group_page_destroy(&p);
    annal_client_destroy(&c);
    t_daemon_stop(d);
}

/* What an appender thread does: after delay_ms, n events. */
typedef struct {
    const char *endpoint;
    int delay_ms, n;
} later_t;

static void *s_append_later(void *arg)
{
    later_t *l = arg;
    usleep((useconds_t) l->delay_ms * 1000);
    t_append(l->endpoint, "late", l->n, 0, 0);
    return NULL;
}

/* A fetch waits its wait_ms on top of the client's timeout (300 ms here),
   and ends as soon as events are appended. */
static void t_long_poll(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    annal_client_t *c = annal_client_new(d->commands, 300);
    annal_result_t res;
    CHECK(annal_client_group_create(c, GROUP, NULL, NULL, &res) == ANNAL_SUCCESS);
    annal_client_group_page_t *p = NULL;
    int64_t t0 = s_now_ms();
    CHECK(annal_client_group_fetch(c, GROUP, "w", 10, 1200, &p, &res) == ANNAL_SUCCESS);
    int64_t waited = s_now_ms() - t0;
    CHECK(p->count == 0 && waited >= 1100);
    annal_client_group_page_destroy(&p);
    later_t l = {d->commands, 400, 3};
    pthread_t t;
    pthread_create(&t, NULL, s_append_later, &l);
    t0 = s_now_ms();
    CHECK(annal_client_group_fetch(c, GROUP, "w", 10, 10000, &p, &res) == ANNAL_SUCCESS);
    waited = s_now_ms() - t0;
    pthread_join(t, NULL);
    CHECK(p->count >= 1 && waited < 5000);
    annal_client_group_page_destroy(&p);
    annal_client_destroy(&c);
    t_daemon_stop(d);
}

/* Every command on a group that does not exist: error 20. */
static void t_unknown_group(void)
{
    t_daemon_t *d = t_daemon(NULL);
    CHECK(d);
    annal_client_t *c = annal_client_new(d->commands, 5000);
    annal_result_t res;
    annal_client_group_page_t *p = NULL;
    annal_client_group_list_t *l = NULL;
    uint64_t one = 1;
    size_t n;
    annal_status_t st[] = {
        annal_client_group_fetch(c, "nope", "w", 1, 0, &p, &res),
        annal_client_group_ack(c, "nope", "w", &one, 1, &n, &res),
        annal_client_group_nack(c, "nope", "w", &one, 1, ANNAL_ACTION_PARK, "x", &n, &res),
        annal_client_group_info(c, "nope", &l, &res),
        annal_client_group_delete(c, "nope", &res),
        annal_client_group_parked(c, "nope", 0, 0, &p, &res),
        annal_client_group_replay_parked(c, "nope", NULL, 0, &n, &res),
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        CHECK(st[i] == ANNAL_FAILED);
    CHECK(res.code == ANNAL_CODE_NOT_FOUND && strstr(res.text, "no consumer group 'nope'"));
    CHECK(p == NULL && l == NULL);
    annal_client_destroy(&c);
    t_daemon_stop(d);
}

/* Bad arguments are refused before anything is sent. */
static void t_bad_arguments(void)
{
    annal_client_t *c = annal_client_new("tcp://127.0.0.1:1", 200); /* nobody there */
    annal_result_t res;
    annal_client_group_page_t *p = NULL;
    annal_client_group_list_t *l = NULL;
    char long_reason[2000];
    memset(long_reason, 'r', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = 0;
    const char *empty_type[] = {""};
    annal_client_group_settings_t bad_types = {.event_types = empty_type, .ntypes = 1};
    annal_client_group_settings_t bad_order = {.ordering = (annal_ordering_t) 7};
    annal_client_group_settings_t bad_from = {.from_sequence = (uint64_t) INT64_MAX + 1};
    uint64_t zero = 0, one = 1;
    size_t n;
    annal_status_t st[] = {
        annal_client_group_create(c, "", NULL, NULL, &res),
        annal_client_group_create(c, "$g", NULL, NULL, &res),
        annal_client_group_create(c, NULL, NULL, NULL, &res),
        annal_client_group_create(c, GROUP, &bad_types, NULL, &res),
        annal_client_group_create(c, GROUP, &bad_order, NULL, &res),
        annal_client_group_create(c, GROUP, &bad_from, NULL, &res),
        annal_client_group_fetch(c, GROUP, "", 1, 0, &p, &res),
        annal_client_group_fetch(c, GROUP, "w", 1, 30001, &p, &res),
        annal_client_group_fetch(c, GROUP, "w", 1, -1, &p, &res),
        annal_client_group_fetch(c, GROUP, "w", 1, 0, NULL, &res),
        annal_client_group_ack(c, GROUP, "w", &zero, 1, &n, &res),
        annal_client_group_ack(c, GROUP, "w", NULL, 1, &n, &res),
        annal_client_group_nack(c, GROUP, "w", &one, 1, (annal_nack_action_t) 3, NULL, &n, &res),
        annal_client_group_nack(c, GROUP, "w", &one, 1, ANNAL_ACTION_PARK, long_reason, &n, &res),
        annal_client_group_info(c, "a\nb", &l, &res),
        annal_client_group_list(c, NULL, &res),
        annal_client_group_parked(c, GROUP, UINT64_MAX, 0, &p, &res),
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        if (st[i] != ANNAL_INVALID)
            fprintf(stderr, "  call %zu: %s\n", i, annal_status_str(st[i]));
        CHECK(st[i] == ANNAL_INVALID);
    }
    CHECK(p == NULL && l == NULL && res.text[0]);
    /* and with nobody there, a good call times out */
    CHECK(annal_client_group_delete(c, GROUP, &res) == ANNAL_TIMEOUT);
    annal_client_destroy(&c);
}

/* --- against a fake annald ------------------------------------------------------------ */

typedef enum {
    C_CREATE,
    C_FETCH,
    C_ACK,
    C_NACK,
    C_INFO,
    C_LIST,
    C_DELETE,
    C_PARKED,
    C_REPLAY
} call_t;

/* One call on group "g" with fixed arguments (two sequences for ack, nack
   and replay); what came back is checked below. */
static annal_status_t s_call(annal_client_t *c, call_t call, int wait_ms, annal_result_t *res,
                             annal_client_group_page_t **p, annal_client_group_list_t **l)
{
    uint64_t seqs[] = {1, 2}, start;
    size_t n;
    switch (call) {
    case C_CREATE: return annal_client_group_create(c, GROUP, NULL, &start, res);
    case C_FETCH: return annal_client_group_fetch(c, GROUP, "w", 10, wait_ms, p, res);
    case C_ACK: return annal_client_group_ack(c, GROUP, "w", seqs, 2, &n, res);
    case C_NACK:
        return annal_client_group_nack(c, GROUP, "w", seqs, 2, ANNAL_ACTION_RETRY, "r", &n, res);
    case C_INFO: return annal_client_group_info(c, GROUP, l, res);
    case C_LIST: return annal_client_group_list(c, l, res);
    case C_DELETE: return annal_client_group_delete(c, GROUP, res);
    case C_PARKED: return annal_client_group_parked(c, GROUP, 0, 0, p, res);
    case C_REPLAY: return annal_client_group_replay_parked(c, GROUP, seqs, 2, &n, res);
    }
    return ANNAL_INVALID;
}

#define HEAD(type) "{\"type\":\"" type "\",\"in_reply_to\":%lld,\"group\":\"g\""
#define EVENT_FIELDS                                                                 \
    "\"sequence_number\":1,\"event_id\":\"01a23e88-f17b-7da6-a001-89b9cc813d34\","   \
    "\"aggregate_id\":\"a-1\",\"version\":1,\"event_type\":\"T\",\"event_data\":{}," \
    "\"metadata\":{},\"recorded_at\":\"2024-01-15T09:00:00.123456Z\""
#define EVENT "{" EVENT_FIELDS ",\"delivery\":1}"
#define GROUP_FIELDS                                                                            \
    "\"prefix\":\"\",\"event_types\":null,\"ordering\":\"aggregate\",\"ack_timeout_ms\":30000," \
    "\"max_deliveries\":5,\"start_sequence\":1,\"acked_through\":3,\"leased\":0,\"parked\":0,"  \
    "\"head_sequence\":10"

/* One reply from the fake and what the call must make of it. */
typedef struct {
    const char *what;
    call_t call;
    const char *reply; /* printf format (in_reply_to), or NULL: no answer */
    annal_status_t status;
    int code;
} shape_t;

static const shape_t s_shapes[] = {
    {"fetch, good", C_FETCH, HEAD("group_events") ",\"events\":[" EVENT "],\"head_sequence\":5}",
     ANNAL_SUCCESS, 0},
    {"fetch, no head", C_FETCH, HEAD("group_events") ",\"events\":[" EVENT "]}", ANNAL_FAILED, 13},
    {"fetch, no events", C_FETCH, HEAD("group_events") ",\"head_sequence\":5}", ANNAL_FAILED, 13},
    {"fetch, events an object", C_FETCH, HEAD("group_events") ",\"events\":{},\"head_sequence\":5}",
     ANNAL_FAILED, 13},
    {"fetch, an event a number", C_FETCH,
     HEAD("group_events") ",\"events\":[1],\"head_sequence\":5}", ANNAL_FAILED, 13},
    {"fetch, no delivery", C_FETCH,
     HEAD("group_events") ",\"events\":[{" EVENT_FIELDS "}],\"head_sequence\":5}", ANNAL_FAILED,
     13},
    {"fetch, delivery 0", C_FETCH,
     HEAD("group_events") ",\"events\":[{" EVENT_FIELDS ",\"delivery\":0}],\"head_sequence\":5}",
     ANNAL_FAILED, 13},
    {"fetch, delivery a string", C_FETCH,
     HEAD("group_events") ",\"events\":[{" EVENT_FIELDS
                          ",\"delivery\":\"1\"}],\"head_sequence\":5}",
     ANNAL_FAILED, 13},
    {"fetch, delivery too big", C_FETCH,
     HEAD("group_events") ",\"events\":[{" EVENT_FIELDS
                          ",\"delivery\":4294967296}],\"head_sequence\":5}",
     ANNAL_FAILED, 13},
    {"fetch, an event without its id", C_FETCH,
     HEAD("group_events") ",\"events\":[{\"sequence_number\":1,\"delivery\":1}],\"head_sequence\":"
                          "5}",
     ANNAL_FAILED, 13},
    {"fetch, another group", C_FETCH,
     "{\"type\":\"group_events\",\"in_reply_to\":%lld,\"group\":\"h\",\"events\":[],"
     "\"head_sequence\":5}",
     ANNAL_FAILED, 13},
    {"fetch, another type", C_FETCH, HEAD("group_acked") ",\"acked\":0}", ANNAL_FAILED, 13},
    {"fetch, error 20", C_FETCH,
     "{\"type\":\"error\",\"in_reply_to\":%lld,\"code\":20,\"text\":\"no consumer group 'g'\"}",
     ANNAL_FAILED, 20},
    {"fetch, error 11", C_FETCH,
     "{\"type\":\"error\",\"in_reply_to\":%lld,\"code\":11,\"text\":\"busy\"}", ANNAL_FAILED, 11},
    {"fetch, no answer", C_FETCH, NULL, ANNAL_TIMEOUT, 0},
    {"ack, good", C_ACK, HEAD("group_acked") ",\"acked\":2}", ANNAL_SUCCESS, 0},
    {"ack, more than asked", C_ACK, HEAD("group_acked") ",\"acked\":3}", ANNAL_FAILED, 13},
    {"ack, negative", C_ACK, HEAD("group_acked") ",\"acked\":-1}", ANNAL_FAILED, 13},
    {"ack, no count", C_ACK, HEAD("group_acked") "}", ANNAL_FAILED, 13},
    {"nack, count a string", C_NACK, HEAD("group_nacked") ",\"count\":\"2\"}", ANNAL_FAILED, 13},
    {"nack, good", C_NACK, HEAD("group_nacked") ",\"count\":0}", ANNAL_SUCCESS, 0},
    {"info, good without lag", C_INFO, HEAD("group") "," GROUP_FIELDS "}", ANNAL_SUCCESS, 0},
    {"info, ordering unknown", C_INFO,
     HEAD("group") ",\"prefix\":\"\",\"event_types\":null,\"ordering\":\"weird\"}", ANNAL_FAILED,
     13},
    {"info, event_types a string", C_INFO,
     HEAD("group") ",\"prefix\":\"\",\"event_types\":\"T\",\"ordering\":\"none\"}", ANNAL_FAILED,
     13},
    {"info, event_types of numbers", C_INFO,
     HEAD("group") ",\"prefix\":\"\",\"event_types\":[1],\"ordering\":\"none\"}", ANNAL_FAILED, 13},
    {"info, no prefix", C_INFO, HEAD("group") "}", ANNAL_FAILED, 13},
    {"info, lag negative", C_INFO, HEAD("group") "," GROUP_FIELDS ",\"lag\":-1}", ANNAL_FAILED, 13},
    {"info, start 0", C_INFO,
     HEAD("group") ",\"prefix\":\"\",\"event_types\":null,\"ordering\":\"aggregate\","
                   "\"ack_timeout_ms\":30000,\"max_deliveries\":5,\"start_sequence\":0}",
     ANNAL_FAILED, 13},
    {"list, groups an object", C_LIST, "{\"type\":\"groups\",\"in_reply_to\":%lld,\"groups\":{}}",
     ANNAL_FAILED, 13},
    {"list, a group a number", C_LIST, "{\"type\":\"groups\",\"in_reply_to\":%lld,\"groups\":[1]}",
     ANNAL_FAILED, 13},
    {"list, a group without counters", C_LIST,
     "{\"type\":\"groups\",\"in_reply_to\":%lld,\"groups\":[{\"group\":\"g\",\"prefix\":\"\"}]}",
     ANNAL_FAILED, 13},
    {"list, good", C_LIST,
     "{\"type\":\"groups\",\"in_reply_to\":%lld,\"groups\":[{\"group\":\"g\"," GROUP_FIELDS
     "},{\"group\":\"h\"," GROUP_FIELDS "}]}",
     ANNAL_SUCCESS, 0},
    {"create, start 0", C_CREATE, HEAD("group_created") ",\"start_sequence\":0}", ANNAL_FAILED, 13},
    {"create, no group", C_CREATE,
     "{\"type\":\"group_created\",\"in_reply_to\":%lld,\"start_sequence\":1}", ANNAL_FAILED, 13},
    {"delete, another group", C_DELETE,
     "{\"type\":\"group_deleted\",\"in_reply_to\":%lld,\"group\":\"x\"}", ANNAL_FAILED, 13},
    {"parked, no reason", C_PARKED, HEAD("parked") ",\"events\":[" EVENT "]}", ANNAL_FAILED, 13},
    {"parked, next a string", C_PARKED, HEAD("parked") ",\"events\":[],\"next_sequence\":\"x\"}",
     ANNAL_FAILED, 13},
    {"parked, good", C_PARKED,
     HEAD("parked") ",\"events\":[{" EVENT_FIELDS ",\"delivery\":5,\"reason\":\"r\"}],"
                    "\"next_sequence\":7}",
     ANNAL_SUCCESS, 0},
    {"replay, no count", C_REPLAY, HEAD("group_replayed") "}", ANNAL_FAILED, 13},
    {"replay, more than named", C_REPLAY, HEAD("group_replayed") ",\"count\":3}", ANNAL_FAILED, 13},
};

static void t_reply_shapes(void)
{
    for (size_t i = 0; i < sizeof s_shapes / sizeof s_shapes[0]; i++) {
        const shape_t *s = &s_shapes[i];
        t_fake_t f = {0};
        t_fake_start(&f, s->reply, 0, 0);
        annal_client_t *c = annal_client_new(f.endpoint, 300);
        annal_result_t res;
        annal_client_group_page_t *p = NULL;
        annal_client_group_list_t *l = NULL;
        annal_status_t st = s_call(c, s->call, 0, &res, &p, &l);
        bool ok = st == s->status && (st != ANNAL_FAILED || res.code == s->code)
                  && (st == ANNAL_SUCCESS || (p == NULL && l == NULL && res.text[0]));
        if (!ok)
            fprintf(stderr, "  %s: %s %d %s\n", s->what, annal_status_str(st), res.code, res.text);
        if (ok && st == ANNAL_SUCCESS && s->call == C_INFO)
            ok = l->count == 1 && l->groups[0].lag == 7; /* computed when annald leaves it out */
        if (ok && st == ANNAL_SUCCESS && s->call == C_LIST)
            ok = l->count == 2 && strcmp(l->groups[1].group, "h") == 0;
        if (ok && st == ANNAL_SUCCESS && s->call == C_PARKED)
            ok = p->count == 1 && p->next_sequence == 7 && p->events[0].delivery == 5
                 && strcmp(p->events[0].reason, "r") == 0;
        if (ok && st == ANNAL_SUCCESS && s->call == C_FETCH)
            ok = p->count == 1 && p->head_sequence == 5
                 && strcmp(p->events[0].record.aggregate_id, "a-1") == 0;
        annal_client_group_page_destroy(&p);
        annal_client_group_list_destroy(&l);
        annal_client_destroy(&c);
        t_fake_stop(&f);
        if (!ok)
            fprintf(stderr, "  case '%s' failed\n", s->what);
        CHECK(ok);
    }
}

/* Bytes that decode as nothing, and a map that is not a reply. */
static void t_reply_garbage(void)
{
    const char *bodies[] = {"\x01\x02\x03", "[1,2]", "{\"type\":\"group_events\"}"};
    for (size_t i = 0; i < 3; i++) {
        t_fake_t f = {0};
        t_fake_start(&f, bodies[i], strlen(bodies[i]), 0);
        annal_client_t *c = annal_client_new(f.endpoint, 300);
        annal_result_t res;
        annal_client_group_page_t *p = NULL;
        annal_status_t st = s_call(c, C_FETCH, 0, &res, &p, NULL);
        annal_client_destroy(&c);
        t_fake_stop(&f);
        /* undecodable: an error at once; a reply to no request: ignored, so no answer */
        CHECK(p == NULL);
        CHECK(i < 2 ? st == ANNAL_FAILED && res.code == 13 : st == ANNAL_TIMEOUT);
    }
}

/* A long poll's reply may come after the client's timeout, within the
   wait: it is still the answer; one that comes after both is a timeout. */
static void t_late_reply(void)
{
    const char *reply = HEAD("group_events") ",\"events\":[],\"head_sequence\":5}";
    t_fake_t f = {0};
    t_fake_start(&f, reply, 0, 700);
    annal_client_t *c = annal_client_new(f.endpoint, 300);
    annal_result_t res;
    annal_client_group_page_t *p = NULL;
    CHECK(s_call(c, C_FETCH, 1500, &res, &p, NULL) == ANNAL_SUCCESS && p->count == 0);
    annal_client_group_page_destroy(&p);
    /* a call without a wait gets only the client's timeout */
    CHECK(s_call(c, C_FETCH, 0, &res, &p, NULL) == ANNAL_TIMEOUT && p == NULL);
    annal_client_destroy(&c);
    t_fake_stop(&f);
}

static const t_case_t s_cases[] = {
    {"create_info_list_delete", t_create_info_list_delete},
    {"fetch_ack_nack_park", t_fetch_ack_nack_park},
    {"long_poll", t_long_poll},
    {"unknown_group", t_unknown_group},
    {"bad_arguments", t_bad_arguments},
    {"reply_shapes", t_reply_shapes},
    {"reply_garbage", t_reply_garbage},
    {"late_reply", t_late_reply},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    t_after = t_daemon_cleanup;
    return t_main(argc, argv, s_cases, sizeof s_cases / sizeof s_cases[0]);
}
