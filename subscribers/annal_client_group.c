/*  annal_client_group.c: the consumer group commands of the client
    (annal_client_group.h; docs/protocol.md, section 6).

    Each call checks its arguments, builds its request on the client's
    builder, and waits for the reply through the client (annal_client_call:
    a fetch waits its wait_ms on top of the client's timeout). A reply is
    checked whole before the call hands anything out: every field the
    contract lists for it, with its type and range. Pages and lists take
    the reply itself (annal_client_take_reply), so their strings need no
    copies. */
#include "annal_client_group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_client_private.h"

/* sequences one request may name: annald's --max-batch says (10,000 by
   default); this only bounds what the client builds */
#define MAX_SEQUENCES ANNAL_MAX_BATCH_CEILING

/* What a page or a list owns: the reply, and the event types' pointers. */
typedef struct {
    annal_msg_t *reply; /* the reply the strings live in */
    const char **types; /* every group's event types, one array */
} owner_t;

static void s_owner_destroy(owner_t **self)
{
    owner_t *o = *self;
    if (!o)
        return;
    annal_msg_destroy(&o->reply);
    free(o->types);
    free(o);
    *self = NULL;
}

static const char *const s_actions[] = {"retry", "park", "skip"};
static const char *const s_orderings[] = {"aggregate", "none"};

/* --- arguments ------------------------------------------------------------------------ */

/* Checks a group or consumer name: the aggregate id rules. */
static annal_status_t s_check_name(const char *what, const char *name, annal_result_t *res)
{
    const char *why = name ? annal_aggregate_id_check(name, strlen(name)) : "is missing";
    if (why)
        return annal_client_result(res, ANNAL_INVALID, 0, "%s name %s", what, why);
    return ANNAL_SUCCESS;
}

/* Adds "sequences": [n integers] to body; *blob holds them until the
   request is sent (the caller frees it). */
static annal_status_t s_sequences(annal_body_t *body, const uint64_t *seqs, size_t n,
                                  annal_blob_t *blob, annal_result_t *res)
{
    if (n > MAX_SEQUENCES)
        return annal_client_result(res, ANNAL_INVALID, 0, "more than %d sequences", MAX_SEQUENCES);
    if (n && !seqs)
        return annal_client_result(res, ANNAL_INVALID, 0, "no sequences given");
    char *text = malloc(n * 21 + 3), *at = text;
    if (!text)
        return annal_client_result(res, ANNAL_INVALID, 0, "out of memory");
    *at++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (seqs[i] < 1 || seqs[i] > INT64_MAX) {
            free(text);
            return annal_client_result(res, ANNAL_INVALID, 0,
                                       "sequence %llu is not a sequence number",
                                       (unsigned long long) seqs[i]);
        }
        at += sprintf(at, "%s%llu", i ? "," : "", (unsigned long long) seqs[i]);
    }
    *at++ = ']';
    char why[128];
    int rc = annal_value_from_json_text(text, (size_t) (at - text), blob, why, sizeof why);
    free(text);
    if (rc)
        return annal_client_result(res, ANNAL_INVALID, 0, "sequences: %s", why);
    annal_body_value(body, "sequences", blob->data, blob->size);
    return ANNAL_SUCCESS;
}

/* --- reply shapes ------------------------------------------------------------------- */

static annal_status_t s_malformed(annal_result_t *res, const char *type, const char *field)
{
    return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL,
                               "annald's %s reply has no valid '%s'", type, field);
}

/* Field key of m as an integer in lo..hi. */
static bool s_int(const annal_msg_t *m, const char *key, int64_t lo, int64_t hi, uint64_t *out)
{
    int64_t v;
    if (!annal_msg_int(m, key, &v) || v < lo || v > hi)
        return false;
    *out = (uint64_t) v;
    return true;
}

/* Whether field key of m is an array (annal_msg_len cannot tell [] from
   absent). */
static bool s_array(annal_msg_t *m, const char *key)
{
    if (annal_msg_len(m, key))
        return true;
    const char *json = annal_msg_json(m, key);
    return json && strcmp(json, "[]") == 0;
}

/* Whether field key of m is the string name (the group a reply is for). */
static bool s_names(annal_msg_t *m, const char *key, const char *name)
{
    const char *s = annal_msg_str(m, key);
    return s && strcmp(s, name) == 0;
}

/* Reads the reply's events into a new page; parked events carry a reason.
   The page takes the reply from the client. */
static annal_status_t s_page(annal_client_t *c, const char *type, bool parked,
                             annal_client_group_page_t **out, annal_result_t *res)
{
    annal_msg_t *m = annal_client_reply(c);
    if (!s_array(m, "events"))
        return s_malformed(res, type, "events");
    size_t n = annal_msg_len(m, "events");
    annal_client_group_page_t *page = calloc(1, sizeof *page);
    owner_t *owner = calloc(1, sizeof *owner);
    if (page)
        page->events = calloc(n ? n : 1, sizeof *page->events);
    if (!page || !owner || !page->events) {
        if (page)
            free(page->events);
        free(page);
        s_owner_destroy(&owner);
        return annal_client_result(res, ANNAL_FAILED, ANNAL_CODE_INTERNAL, "out of memory");
    }
    annal_status_t st = ANNAL_SUCCESS;
    for (size_t i = 0; i < n && !st; i++) {
        annal_client_group_event_t *ev = &page->events[i];
        annal_msg_t *item = annal_msg_item(m, "events", i);
        uint64_t delivery, version;
        if (!item || annal_record_from_msg(item, &ev->record)
            || !s_int(item, "version", 1, INT64_MAX, &version)
            || !s_int(item, "delivery", parked ? 0 : 1, UINT32_MAX, &delivery))
            st = s_malformed(res, type, "events");
        else if (parked && !(ev->reason = annal_msg_str(item, "reason")))
            st = s_malformed(res, type, "reason");
        else
            ev->delivery = (uint32_t) delivery;
    }
    if (!st && !parked && !s_int(m, "head_sequence", 0, INT64_MAX, &page->head_sequence))
        st = s_malformed(res, type, "head_sequence");
    if (!st && parked && annal_msg_json(m, "next_sequence")
        && !s_int(m, "next_sequence", 1, INT64_MAX, &page->next_sequence))
        st = s_malformed(res, type, "next_sequence");
    if (st) {
        free(page->events);
        free(page);
        s_owner_destroy(&owner);
        return st;
    }
    page->count = n;
    owner->reply = annal_client_take_reply(c);
    page->internal = owner;
    *out = page;
    return ANNAL_SUCCESS;
}

void annal_client_group_page_destroy(annal_client_group_page_t **page)
{
    annal_client_group_page_t *p = *page;
    if (!p)
        return;
    owner_t *owner = p->internal;
    s_owner_destroy(&owner);
    free(p->events);
    free(p);
    *page = NULL;
}

/* Reads one group description (group_info's fields from "group" on) from
   m; its event types go into types (room for ANNAL_MAX_EVENT_TYPES, as
   many as annald takes). Returns the field that is wrong, or NULL. */
static const char *s_info(annal_msg_t *m, annal_client_group_info_t *g, const char **types)
{
    g->group = annal_msg_str(m, "group");
    g->prefix = annal_msg_str(m, "prefix");
    if (!g->group)
        return "group";
    if (!g->prefix)
        return "prefix";
    const char *types_json = annal_msg_json(m, "event_types");
    if (!types_json)
        return "event_types";
    if (strcmp(types_json, "null") != 0) {
        if (!s_array(m, "event_types"))
            return "event_types";
        g->ntypes = annal_msg_len(m, "event_types");
        if (g->ntypes > ANNAL_MAX_EVENT_TYPES)
            return "event_types";
        for (size_t i = 0; i < g->ntypes; i++)
            if (!(types[i] = annal_msg_str_item(m, "event_types", i)))
                return "event_types";
        g->event_types = types;
    }
    const char *ordering = annal_msg_str(m, "ordering");
    if (ordering && strcmp(ordering, "aggregate") == 0)
        g->ordering = ANNAL_ORDERING_AGGREGATE;
    else if (ordering && strcmp(ordering, "none") == 0)
        g->ordering = ANNAL_ORDERING_NONE;
    else
        return "ordering";
    uint64_t v;
    if (!s_int(m, "ack_timeout_ms", 1, UINT32_MAX, &v))
        return "ack_timeout_ms";
    g->ack_timeout_ms = (uint32_t) v;
    if (!s_int(m, "max_deliveries", 1, UINT32_MAX, &v))
        return "max_deliveries";
    g->max_deliveries = (uint32_t) v;
    if (!s_int(m, "start_sequence", 1, INT64_MAX, &g->start_sequence))
        return "start_sequence";
    if (!s_int(m, "acked_through", 0, INT64_MAX, &g->acked_through))
        return "acked_through";
    if (!s_int(m, "leased", 0, INT64_MAX, &g->leased))
        return "leased";
    if (!s_int(m, "parked", 0, INT64_MAX, &g->parked))
        return "parked";
    if (!s_int(m, "head_sequence", 0, INT64_MAX, &g->head_sequence))
        return "head_sequence";
    /* annal's own field; an annald without it (or the bridge) leaves it out */
    g->lag = g->head_sequence > g->acked_through ? g->head_sequence - g->acked_through : 0;
    if (annal_msg_json(m, "lag") && !s_int(m, "lag", 0, INT64_MAX, &g->lag))
        return "lag";
    return (g->json = annal_msg_json(m, NULL)) ? NULL : "(out of memory)";
}

/* Reads groups (the reply itself for group_info, each entry of its
   "groups" for group_list) into a new list that takes the reply. */
static annal_status_t s_list(annal_client_t *c, const char *type, bool one,
                             annal_client_group_list_t **out, annal_result_t *res)
{
    annal_msg_t *m = annal_client_reply(c);
    if (!one && !s_array(m, "groups"))
        return s_malformed(res, type, "groups");
    size_t n = one ? 1 : annal_msg_len(m, "groups");
    annal_client_group_list_t *list = calloc(1, sizeof *list);
    owner_t *owner = calloc(1, sizeof *owner);
    if (list)
        list->groups = calloc(n ? n : 1, sizeof *list->groups);
    if (owner)
        owner->types = calloc(n ? n * ANNAL_MAX_EVENT_TYPES : 1, sizeof *owner->types);
    const char *bad = NULL;
    if (!list || !owner || !list->groups || !owner->types)
        bad = "(out of memory)";
    for (size_t i = 0; i < n && !bad; i++) {
        annal_msg_t *g = one ? m : annal_msg_item(m, "groups", i);
        bad = g ? s_info(g, &list->groups[i], owner->types + i * ANNAL_MAX_EVENT_TYPES) : "groups";
    }
    if (bad) {
        if (list)
            free(list->groups);
        free(list);
        s_owner_destroy(&owner);
        return s_malformed(res, type, bad);
    }
    list->count = n;
    owner->reply = annal_client_take_reply(c);
    list->internal = owner;
    *out = list;
    return ANNAL_SUCCESS;
}

void annal_client_group_list_destroy(annal_client_group_list_t **list)
{
    annal_client_group_list_t *l = *list;
    if (!l)
        return;
    owner_t *owner = l->internal;
    s_owner_destroy(&owner);
    free(l->groups);
    free(l);
    *list = NULL;
}

/* --- the commands ----------------------------------------------------------------------- */

annal_status_t annal_client_group_create(annal_client_t *self, const char *group,
                                         const annal_client_group_settings_t *settings,
                                         uint64_t *start_sequence, annal_result_t *res)
{
    static const annal_client_group_settings_t none = {0};
    const annal_client_group_settings_t *s = settings ? settings : &none;
    annal_status_t st = s_check_name("group", group, res);
    if (st)
        return st;
    if (s->prefix && strlen(s->prefix) > ANNAL_MAX_AGGREGATE_ID)
        return annal_client_result(res, ANNAL_INVALID, 0, "prefix is longer than %d bytes",
                                   ANNAL_MAX_AGGREGATE_ID);
    if (s->ntypes && !s->event_types)
        return annal_client_result(res, ANNAL_INVALID, 0, "no event types given");
    for (size_t i = 0; i < s->ntypes; i++)
        if (!s->event_types[i] || !*s->event_types[i])
            return annal_client_result(res, ANNAL_INVALID, 0, "event type %zu is empty", i);
    if ((unsigned) s->ordering > ANNAL_ORDERING_NONE)
        return annal_client_result(res, ANNAL_INVALID, 0, "ordering is not a known value");
    if (s->from_sequence != ANNAL_FROM_END && s->from_sequence > INT64_MAX)
        return annal_client_result(res, ANNAL_INVALID, 0, "from_sequence is out of range");
    annal_body_t *body;
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_CREATE, &body);
    annal_body_str(body, "group", group, strlen(group));
    if (s->prefix && *s->prefix)
        annal_body_str(body, "prefix", s->prefix, strlen(s->prefix));
    if (s->ntypes)
        annal_body_strs(body, "event_types", s->event_types, s->ntypes);
    if (s->from_sequence == ANNAL_FROM_END)
        annal_body_str(body, "from_sequence", "end", 3);
    else if (s->from_sequence > 1)
        annal_body_u64(body, "from_sequence", s->from_sequence);
    if (s->ordering != ANNAL_ORDERING_AGGREGATE)
        annal_body_str(body, "ordering", s_orderings[s->ordering],
                       strlen(s_orderings[s->ordering]));
    if (s->ack_timeout_ms)
        annal_body_u64(body, "ack_timeout_ms", s->ack_timeout_ms);
    if (s->max_deliveries)
        annal_body_u64(body, "max_deliveries", s->max_deliveries);
    if ((st = annal_client_call(self, id, "group_created", 0, res)))
        return st;
    annal_msg_t *m = annal_client_reply(self);
    uint64_t start;
    if (!s_names(m, "group", group))
        return s_malformed(res, "group_created", "group");
    if (!s_int(m, "start_sequence", 1, INT64_MAX, &start))
        return s_malformed(res, "group_created", "start_sequence");
    if (start_sequence)
        *start_sequence = start;
    return ANNAL_SUCCESS;
}

annal_status_t annal_client_group_fetch(annal_client_t *self, const char *group,
                                        const char *consumer, size_t max_count, int wait_ms,
                                        annal_client_group_page_t **page, annal_result_t *res)
{
    annal_status_t st = s_check_name("group", group, res);
    if (st || (st = s_check_name("consumer", consumer, res)))
        return st;
    if (wait_ms < 0 || wait_ms > ANNAL_WAIT_MAX)
        return annal_client_result(res, ANNAL_INVALID, 0, "wait_ms must be from 0 to %d",
                                   ANNAL_WAIT_MAX);
    if (!page)
        return annal_client_result(res, ANNAL_INVALID, 0, "no page to fill");
    annal_body_t *body;
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_FETCH, &body);
    annal_body_str(body, "group", group, strlen(group));
    annal_body_str(body, "consumer", consumer, strlen(consumer));
    if (max_count)
        annal_body_u64(body, "max_count", max_count);
    if (wait_ms)
        annal_body_int(body, "wait_ms", wait_ms);
    if ((st = annal_client_call(self, id, "group_events", wait_ms, res)))
        return st;
    if (!s_names(annal_client_reply(self), "group", group))
        return s_malformed(res, "group_events", "group");
    return s_page(self, "group_events", false, page, res);
}

/* group_ack and group_nack: the same request but for the action, and a
   count back ("acked" or "count"). */
static annal_status_t s_settle(annal_client_t *self, annal_cmd_t cmd, const char *group,
                               const char *consumer, const uint64_t *seqs, size_t n,
                               annal_nack_action_t action, const char *reason, size_t *count,
                               annal_result_t *res)
{
    bool nack = cmd == ANNAL_CMD_GROUP_NACK;
    const char *type = nack ? "group_nacked" : "group_acked";
    const char *field = nack ? "count" : "acked";
    annal_status_t st = s_check_name("group", group, res);
    if (st || (st = s_check_name("consumer", consumer, res)))
        return st;
    if (nack && (unsigned) action > ANNAL_ACTION_SKIP)
        return annal_client_result(res, ANNAL_INVALID, 0, "the nack's action is not known");
    if (nack && reason && strlen(reason) > ANNAL_MAX_REASON)
        return annal_client_result(res, ANNAL_INVALID, 0, "reason is longer than %d bytes",
                                   ANNAL_MAX_REASON);
    annal_body_t *body;
    annal_blob_t blob = {0};
    int64_t id = annal_client_begin(self, cmd, &body);
    annal_body_str(body, "group", group, strlen(group));
    annal_body_str(body, "consumer", consumer, strlen(consumer));
    if ((st = s_sequences(body, seqs, n, &blob, res)))
        return st;
    if (nack) {
        annal_body_str(body, "action", s_actions[action], strlen(s_actions[action]));
        if (reason)
            annal_body_str(body, "reason", reason, strlen(reason));
    }
    st = annal_client_call(self, id, type, 0, res);
    annal_blob_free(&blob);
    if (st)
        return st;
    annal_msg_t *m = annal_client_reply(self);
    uint64_t counted;
    if (!s_names(m, "group", group))
        return s_malformed(res, type, "group");
    if (!s_int(m, field, 0, (int64_t) n, &counted))
        return s_malformed(res, type, field);
    if (count)
        *count = (size_t) counted;
    return ANNAL_SUCCESS;
}

annal_status_t annal_client_group_ack(annal_client_t *self, const char *group, const char *consumer,
                                      const uint64_t *sequences, size_t n, size_t *acked,
                                      annal_result_t *res)
{
    return s_settle(self, ANNAL_CMD_GROUP_ACK, group, consumer, sequences, n, ANNAL_ACTION_SKIP,
                    NULL, acked, res);
}

annal_status_t annal_client_group_nack(annal_client_t *self, const char *group,
                                       const char *consumer, const uint64_t *sequences, size_t n,
                                       annal_nack_action_t action, const char *reason,
                                       size_t *count, annal_result_t *res)
{
    return s_settle(self, ANNAL_CMD_GROUP_NACK, group, consumer, sequences, n, action, reason,
                    count, res);
}

annal_status_t annal_client_group_info(annal_client_t *self, const char *group,
                                       annal_client_group_list_t **info, annal_result_t *res)
{
    annal_status_t st = s_check_name("group", group, res);
    if (st)
        return st;
    if (!info)
        return annal_client_result(res, ANNAL_INVALID, 0, "no list to fill");
    annal_body_t *body;
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_INFO, &body);
    annal_body_str(body, "group", group, strlen(group));
    if ((st = annal_client_call(self, id, "group", 0, res)))
        return st;
    if (!s_names(annal_client_reply(self), "group", group))
        return s_malformed(res, "group", "group");
    return s_list(self, "group", true, info, res);
}

annal_status_t annal_client_group_list(annal_client_t *self, annal_client_group_list_t **list,
                                       annal_result_t *res)
{
    if (!list)
        return annal_client_result(res, ANNAL_INVALID, 0, "no list to fill");
    annal_body_t *body;
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_LIST, &body);
    annal_status_t st = annal_client_call(self, id, "groups", 0, res);
    return st ? st : s_list(self, "groups", false, list, res);
}

annal_status_t annal_client_group_delete(annal_client_t *self, const char *group,
                                         annal_result_t *res)
{
    annal_status_t st = s_check_name("group", group, res);
    if (st)
        return st;
    annal_body_t *body;
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_DELETE, &body);
    annal_body_str(body, "group", group, strlen(group));
    if ((st = annal_client_call(self, id, "group_deleted", 0, res)))
        return st;
    if (!s_names(annal_client_reply(self), "group", group))
        return s_malformed(res, "group_deleted", "group");
    return ANNAL_SUCCESS;
}

annal_status_t annal_client_group_parked(annal_client_t *self, const char *group, uint64_t from,
                                         size_t max_count, annal_client_group_page_t **page,
                                         annal_result_t *res)
{
    annal_status_t st = s_check_name("group", group, res);
    if (st)
        return st;
    if (!page)
        return annal_client_result(res, ANNAL_INVALID, 0, "no page to fill");
    if (from > INT64_MAX)
        return annal_client_result(res, ANNAL_INVALID, 0, "from is out of range");
    annal_body_t *body;
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_PARKED, &body);
    annal_body_str(body, "group", group, strlen(group));
    if (from > 1)
        annal_body_u64(body, "from_sequence", from);
    if (max_count)
        annal_body_u64(body, "max_count", max_count);
    if ((st = annal_client_call(self, id, "parked", 0, res)))
        return st;
    if (!s_names(annal_client_reply(self), "group", group))
        return s_malformed(res, "parked", "group");
    return s_page(self, "parked", true, page, res);
}

annal_status_t annal_client_group_replay_parked(annal_client_t *self, const char *group,
                                                const uint64_t *sequences, size_t n, size_t *count,
                                                annal_result_t *res)
{
    annal_status_t st = s_check_name("group", group, res);
    if (st)
        return st;
    annal_body_t *body;
    annal_blob_t blob = {0};
    int64_t id = annal_client_begin(self, ANNAL_CMD_GROUP_REPLAY_PARKED, &body);
    annal_body_str(body, "group", group, strlen(group));
    if (sequences && (st = s_sequences(body, sequences, n, &blob, res)))
        return st;
    st = annal_client_call(self, id, "group_replayed", 0, res);
    annal_blob_free(&blob);
    if (st)
        return st;
    annal_msg_t *m = annal_client_reply(self);
    uint64_t replayed;
    if (!s_names(m, "group", group))
        return s_malformed(res, "group_replayed", "group");
    if (!s_int(m, "count", 0, sequences ? (int64_t) n : INT64_MAX, &replayed))
        return s_malformed(res, "group_replayed", "count");
    if (count)
        *count = (size_t) replayed;
    return ANNAL_SUCCESS;
}
