/*  driver.c: the conformance driver for libannal (tests/conformance/README.md
    gives the line protocol every client's driver speaks).

    driver COMMANDS EVENTS: reads one JSON operation per line on stdin,
    runs it through libannal's public API only, and writes one JSON result
    line on stdout, flushed, before it reads the next. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <annal/annal.h>

static const char *s_commands, *s_events;
static annal_client_t *s_client;

static json_t *s_error(annal_status_t st, const annal_result_t *res)
{
    const char *kind = "other";
    json_t *actual = json_null();
    if (st == ANNAL_CONFLICT) {
        kind = "concurrency";
        json_t *reply = json_loads(annal_client_last_reply(s_client), 0, NULL);
        json_t *v = reply ? json_object_get(reply, "actual_version") : NULL;
        if (json_is_integer(v))
            actual = json_integer(json_integer_value(v));
        json_decref(reply);
    }
    else if (st == ANNAL_TIMEOUT || res->code == ANNAL_CODE_UNAVAILABLE)
        kind = "unavailable";
    else if (st == ANNAL_INVALID || res->code == ANNAL_CODE_MALFORMED)
        kind = "invalid";
    else if (res->code == ANNAL_CODE_NOT_FOUND)
        kind = "not_found";
    else if (res->code == ANNAL_CODE_DELETED)
        kind = "gone";
    json_t *code = st == ANNAL_FAILED ? json_integer(res->code) : json_null();
    if (st == ANNAL_TIMEOUT)
        code = json_integer(ANNAL_CODE_UNAVAILABLE);
    return json_pack("{s:{s:s,s:o,s:o}}", "error", "kind", kind, "code", code, "actual_version",
                     actual);
}

/* An error the driver itself reports (no code, no version). */
static json_t *s_fault(const char *kind)
{
    return json_pack("{s:{s:s,s:n,s:n}}", "error", "kind", kind, "code", "actual_version");
}

static json_t *s_ok(json_t *value)
{
    return json_pack("{s:o}", "ok", value);
}

/* An expected version from the op: an integer, "any" or "exists". */
static int64_t s_expected(const json_t *op)
{
    const json_t *v = json_object_get(op, "expected_version");
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v) && strcmp(json_string_value(v), "exists") == 0)
        return ANNAL_EXISTS;
    return ANNAL_ANY;
}

static const char *s_str(const json_t *op, const char *key)
{
    return json_string_value(json_object_get(op, key));
}

static uint64_t s_uint(const json_t *op, const char *key, uint64_t otherwise)
{
    const json_t *v = json_object_get(op, key);
    return json_is_integer(v) ? (uint64_t) json_integer_value(v) : otherwise;
}

static json_t *s_record(const annal_record_t *r)
{
    json_t *e = json_loads(r->json, JSON_DECODE_ANY, NULL);
    return e ? e : json_null();
}

static json_t *s_append(const json_t *op)
{
    char *data = json_dumps(json_object_get(op, "event_data"), JSON_ENCODE_ANY | JSON_COMPACT);
    annal_event_spec_t ev = {s_str(op, "event_type"), data, NULL, s_str(op, "event_id")};
    annal_appended_t out;
    annal_result_t res;
    annal_status_t st = annal_client_append(s_client, s_str(op, "aggregate_id"), s_expected(op),
                                            &ev, 1, &out, &res);
    free(data);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    return s_ok(json_pack("{s:I,s:s}", "sequence_number", (json_int_t) out.first_sequence,
                          "event_id", out.event_id));
}

static json_t *s_append_batch(const json_t *op)
{
    const json_t *list = json_object_get(op, "events");
    size_t n = json_array_size(list);
    annal_event_spec_t *evs = calloc(n ? n : 1, sizeof *evs);
    char **datas = calloc(n ? n : 1, sizeof *datas);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        datas[i] = json_dumps(json_object_get(e, "event_data"), JSON_ENCODE_ANY | JSON_COMPACT);
        evs[i] = (annal_event_spec_t){s_str(e, "event_type"), datas[i], NULL, NULL};
    }
    annal_appended_t out;
    annal_result_t res;
    annal_status_t st = annal_client_append(s_client, s_str(op, "aggregate_id"), s_expected(op),
                                            evs, n, &out, &res);
    for (size_t i = 0; i < n; i++)
        free(datas[i]);
    free(datas);
    free(evs);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    return s_ok(json_pack("{s:I,s:I,s:I}", "first_sequence_number", (json_int_t) out.first_sequence,
                          "last_sequence_number", (json_int_t) out.last_sequence, "version",
                          (json_int_t) out.version));
}

static json_t *s_read(const json_t *op)
{
    bool backward = s_str(op, "direction") && strcmp(s_str(op, "direction"), "backward") == 0;
    uint64_t from = s_uint(op, "from_version", 0);
    size_t size = s_uint(op, "page_size", 1000);
    json_t *events = json_array();
    for (;;) {
        annal_page_t *page = NULL;
        annal_result_t res;
        annal_status_t st = annal_client_read(s_client, s_str(op, "aggregate_id"), from, size,
                                              backward, &page, &res);
        if (st != ANNAL_SUCCESS) {
            json_decref(events);
            return s_error(st, &res);
        }
        for (size_t i = 0; i < page->count; i++)
            json_array_append_new(events, s_record(&page->records[i]));
        from = page->next;
        annal_page_destroy(&page);
        if (from == 0)
            return s_ok(events);
    }
}

static json_t *s_read_all(const json_t *op)
{
    uint64_t from = s_uint(op, "from_sequence", 1);
    size_t size = s_uint(op, "page_size", 1000);
    const json_t *types = json_object_get(op, "event_types");
    size_t ntypes = json_array_size(types);
    const char *type[64];
    for (size_t i = 0; i < ntypes && i < 64; i++)
        type[i] = json_string_value(json_array_get(types, i));
    json_t *events = json_array();
    for (;;) {
        annal_page_t *page = NULL;
        annal_result_t res;
        annal_status_t st = annal_client_read_all(s_client, from, size, s_str(op, "prefix"),
                                                  ntypes ? type : NULL, ntypes, &page, &res);
        if (st != ANNAL_SUCCESS) {
            json_decref(events);
            return s_error(st, &res);
        }
        for (size_t i = 0; i < page->count; i++)
            json_array_append_new(events, s_record(&page->records[i]));
        from = page->next;
        bool end = page->next > page->head_sequence;
        annal_page_destroy(&page);
        if (end)
            return s_ok(events);
    }
}

static json_t *s_snapshot(const json_t *op)
{
    const json_t *state = json_object_get(op, "state");
    char *text = state ? json_dumps(state, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    uint64_t version = 0;
    annal_result_t res;
    annal_status_t st =
        annal_client_snapshot(s_client, s_str(op, "aggregate_id"), text, -1, &version, &res);
    free(text);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    return s_ok(json_pack("{s:I}", "version", (json_int_t) version));
}

static json_t *s_get_snapshot(const json_t *op)
{
    uint64_t version = 0;
    char *state = NULL;
    annal_result_t res;
    annal_status_t st =
        annal_client_get_snapshot(s_client, s_str(op, "aggregate_id"), &version, &state, &res);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    json_t *value = json_loads(state, JSON_DECODE_ANY, NULL);
    free(state);
    return s_ok(json_pack("{s:I,s:o}", "version", (json_int_t) version, "state",
                          value ? value : json_null()));
}

static json_t *s_delete(const json_t *op)
{
    uint64_t version = 0, sequence = 0;
    annal_result_t res;
    annal_status_t st = annal_client_delete(s_client, s_str(op, "aggregate_id"), s_expected(op),
                                            json_is_true(json_object_get(op, "hard")), NULL,
                                            &version, &sequence, &res);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    return s_ok(json_pack("{s:I,s:I}", "version", (json_int_t) version, "sequence_number",
                          (json_int_t) sequence));
}

typedef struct {
    json_t *seen;
    size_t want;
} seen_t;

static int s_on_event(const annal_record_t *r, void *arg)
{
    seen_t *s = arg;
    json_array_append_new(s->seen, json_pack("[I,s,s]", (json_int_t) r->sequence_number,
                                             r->aggregate_id, r->event_type));
    return json_array_size(s->seen) >= s->want ? 1 : 0;
}

static json_t *s_subscribe(const json_t *op)
{
    const json_t *from = json_object_get(op, "from_sequence");
    annal_subscription_config_t config = {
        .commands = s_commands,
        .events = s_events,
        .prefix = s_str(op, "prefix"),
        .from = json_is_integer(from) ? (uint64_t) json_integer_value(from) : ANNAL_FROM_NOW,
        .timeout_ms = 1000,
        .rcvhwm = (int) s_uint(op, "queue", 0)};
    seen_t s = {json_array(), s_uint(op, "count", 1)};
    annal_subscription_t *sub = annal_subscription_new(&config, s_on_event, &s);
    if (!sub) {
        json_decref(s.seen);
        return s_fault("invalid");
    }
    int ms = (int) s_uint(op, "timeout_ms", 30000);
    annal_result_t res = {0};
    annal_status_t st = annal_subscription_run(sub, ms, &res);
    annal_subscription_destroy(&sub);
    if (st != ANNAL_SUCCESS) {
        json_decref(s.seen);
        return s_error(st, &res);
    }
    return s_ok(s.seen);
}

static json_t *s_group_create(const json_t *op)
{
    const char *ordering = s_str(op, "ordering");
    annal_client_group_settings_t settings = {
        .prefix = s_str(op, "prefix"),
        .ordering = ordering && strcmp(ordering, "none") == 0 ? ANNAL_ORDERING_NONE
                                                              : ANNAL_ORDERING_AGGREGATE,
        .ack_timeout_ms = (uint32_t) s_uint(op, "ack_timeout_ms", 0),
        .max_deliveries = (uint32_t) s_uint(op, "max_deliveries", 0)};
    uint64_t start = 0;
    annal_result_t res;
    annal_status_t st =
        annal_client_group_create(s_client, s_str(op, "group"), &settings, &start, &res);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    return s_ok(json_pack("{s:I}", "start_sequence", (json_int_t) start));
}

/* The handler every driver runs: event_data.park parks, event_data.fail_once
   fails its first delivery, anything else succeeds and is recorded. */
static annal_worker_verdict_t s_handle(const annal_client_group_event_t *e, char *reason,
                                       size_t reason_size, void *arg)
{
    json_t *data = json_loads(e->record.event_data, JSON_DECODE_ANY, NULL);
    annal_worker_verdict_t v = ANNAL_WORKER_OK;
    if (json_is_true(json_object_get(data, "park"))) {
        snprintf(reason, reason_size, "park requested");
        v = ANNAL_WORKER_PERMANENT;
    }
    else if (json_is_true(json_object_get(data, "fail_once")) && e->delivery == 1) {
        snprintf(reason, reason_size, "first delivery fails");
        v = ANNAL_WORKER_TRANSIENT;
    }
    else
        json_array_append_new(arg, json_pack("[I,s,I,I]", (json_int_t) e->record.sequence_number,
                                             e->record.aggregate_id, (json_int_t) e->record.version,
                                             (json_int_t) e->delivery));
    json_decref(data);
    return v;
}

static json_t *s_consume(const json_t *op)
{
    annal_worker_config_t config = {.commands = s_commands,
                                    .timeout_ms = 2000,
                                    .group = s_str(op, "group"),
                                    .consumer = s_str(op, "consumer"),
                                    .max_count = 10,
                                    .wait_ms = 200};
    json_t *handled = json_array();
    annal_worker_t *w = annal_worker_new(&config, s_handle, handled);
    if (!w) {
        json_decref(handled);
        return s_fault("invalid");
    }
    annal_result_t res = {0};
    annal_status_t st = annal_worker_run(w, s_uint(op, "count", 1), &res);
    annal_worker_destroy(&w);
    if (st != ANNAL_SUCCESS) {
        json_decref(handled);
        return s_error(st, &res);
    }
    return s_ok(handled);
}

static json_t *s_group_info(const json_t *op)
{
    annal_client_group_list_t *list = NULL;
    annal_result_t res;
    annal_status_t st = annal_client_group_info(s_client, s_str(op, "group"), &list, &res);
    if (st != ANNAL_SUCCESS)
        return s_error(st, &res);
    const annal_client_group_info_t *g = &list->groups[0];
    json_t *out = json_pack("{s:I,s:I,s:I,s:I}", "acked_through", (json_int_t) g->acked_through,
                            "leased", (json_int_t) g->leased, "parked", (json_int_t) g->parked,
                            "lag", (json_int_t) g->lag);
    annal_client_group_list_destroy(&list);
    return s_ok(out);
}

static json_t *s_run(const json_t *op)
{
    static const struct {
        const char *name;
        json_t *(*fn)(const json_t *);
    } ops[] = {{"append", s_append},
               {"append_batch", s_append_batch},
               {"read", s_read},
               {"read_all", s_read_all},
               {"create_snapshot", s_snapshot},
               {"get_snapshot", s_get_snapshot},
               {"delete", s_delete},
               {"subscribe", s_subscribe},
               {"group_create", s_group_create},
               {"consume", s_consume},
               {"group_info", s_group_info}};
    const char *name = s_str(op, "op");
    for (size_t i = 0; name && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(name, ops[i].name) == 0)
            return ops[i].fn(op);
    return s_fault("unknown_op");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s COMMANDS EVENTS\n", argv[0]);
        return 2;
    }
    s_commands = argv[1];
    s_events = argv[2];
    s_client = annal_client_new(s_commands, 2000);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        json_t *op = json_loads(line, 0, NULL);
        json_t *out = op ? s_run(op) : s_fault("bad_line");
        char *text = json_dumps(out, JSON_COMPACT);
        printf("%s\n", text);
        fflush(stdout);
        free(text);
        json_decref(out);
        json_decref(op);
    }
    free(line);
    annal_client_destroy(&s_client);
    return 0;
}
