/*  test_codec.c: the codec through annal_codec.h, annal_time.h and
    annal_line.h: the request corpus (tests/corpora/requests, whose file
    names start with the expected protocol code, or "ok"), replies in both
    encodings, timestamps, names and the harness line style. */
#include "testutil.h"

#include <time.h>

#include <dirent.h>
#include <stdint.h>

#include <math.h>
#include <msgpack.h>

#include "annal_codec.h"
#include "annal_value.h"
#include "annal_line.h"
#include "annal_time.h"

static void t_corpus(void)
{
    DIR *d = opendir(ANNAL_CORPORA "/requests");
    CHECK(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/requests/%s", ANNAL_CORPORA, e->d_name);
        FILE *f = fopen(path, "rb");
        CHECK(f);
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        annal_request_t req;
        annal_encoding_t enc;
        char why[512];
        annal_err_t err = annal_request_decode(buf, n, NULL, &req, &enc, why, sizeof why);
        int want = strncmp(e->d_name, "ok", 2) == 0 ? 0 : atoi(e->d_name);
        int got = annal_err_code(err);
        if (got != want)
            fprintf(stderr, "  %s: want code %d, got %d (%s)\n", e->d_name, want, got, why);
        CHECK(got == want);
        CHECK(err == ANNAL_OK || why[0]); /* every error says why */
        if (strstr(e->d_name, ".msgpack"))
            CHECK(enc == ANNAL_ENC_MSGPACK);
        annal_request_reset(&req);
        files++;
    }
    closedir(d);
    CHECK(files > 50);
}

/* Decodes text, expects err, and that msg_id survived for in_reply_to. */
static void t_msg_id_kept(void)
{
    const char *text = "{\"type\":\"append\",\"msg_id\":42,\"aggregate_id\":\"\"}";
    annal_request_t req;
    annal_encoding_t enc;
    char why[256];
    CHECK(annal_request_decode((const uint8_t *) text, strlen(text), NULL, &req, &enc, why,
                               sizeof why)
          == ANNAL_ERR_MALFORMED);
    CHECK(req.has_msg_id && req.msg_id == 42);
    CHECK(strstr(why, "aggregate_id"));
    annal_request_reset(&req);
    /* a body that is not decoded (over the size limit, say) answers the
       msg_id that a decoded one would: the last one */
    const uint8_t twice[] = {0x83, 0xa6, 'm', 's', 'g', '_', 'i',  'd',  0x01, 0xa6,
                             'm',  's',  'g', '_', 'i', 'd', 0x02, 0xa1, 'x',  0xc1};
    CHECK(annal_request_peek(twice, sizeof twice, &req) == ANNAL_ENC_MSGPACK);
    CHECK(req.has_msg_id && req.msg_id == 2);
    annal_request_reset(&req);
    const uint8_t then_text[] = {0x82, 0xa6, 'm', 's', 'g', '_', 'i', 'd',  0x01,
                                 0xa6, 'm',  's', 'g', '_', 'i', 'd', 0xa1, 'x'};
    CHECK(annal_request_peek(then_text, sizeof then_text, &req) == ANNAL_ENC_MSGPACK);
    CHECK(!req.has_msg_id);
    annal_request_reset(&req);
}

static void t_reply_both(void)
{
    annal_body_t *r = annal_body_new();
    CHECK(r);
    const uint8_t id[16] = {0x0b, 0x7e, 0x6d, 0x2a, 0x5c, 0x1f, 0x4d, 0x3e,
                            0x9a, 0x8b, 0x7c, 0x6d, 0x5e, 0x4f, 0x3a, 0x2b};
    const uint8_t data[] = {0x81, 0xa1, 'a', 0x92, 0x01, 0xc3}; /* {"a":[1,true]} */
    annal_event_t ev = {.sequence = 7,
                        .event_id = id,
                        .aggregate_id = "user-1",
                        .aggregate_id_len = 6,
                        .version = 2,
                        .event_type = "T",
                        .event_type_len = 1,
                        .data = data,
                        .data_len = sizeof data,
                        .metadata = (const uint8_t *) "\x80",
                        .metadata_len = 1,
                        .recorded_at = 1705309200123456};
    annal_body_begin(r, "events", true, 9);
    annal_body_events(r, "events", &ev, 1);
    annal_body_u64(r, "version", 2);
    uint8_t *out;
    size_t len;
    CHECK(annal_body_encode(r, ANNAL_ENC_JSON, &out, &len) == 0);
    const char *want =
        "{\"type\":\"events\",\"in_reply_to\":9,\"events\":[{\"sequence_number\":7,"
        "\"event_id\":\"0b7e6d2a-5c1f-4d3e-9a8b-7c6d5e4f3a2b\",\"aggregate_id\":\"user-1\","
        "\"version\":2,\"event_type\":\"T\",\"event_data\":{\"a\":[1,true]},\"metadata\":{},"
        "\"recorded_at\":\"2024-01-15T09:00:00.123456Z\"}],\"version\":2}";
    if (len != strlen(want) || memcmp(out, want, len))
        fprintf(stderr, "  got %.*s\n", (int) len, out);
    CHECK(len == strlen(want) && memcmp(out, want, len) == 0);
    free(out);
    CHECK(annal_body_encode(r, ANNAL_ENC_MSGPACK, &out, &len) == 0);
    CHECK(out[0] == 0x84);                      /* a map of four */
    CHECK(memmem(out, len, data, sizeof data)); /* the stored value, as stored */
    free(out);
    annal_body_error(r, false, 0, ANNAL_ERR_NOT_FOUND, "no snapshot");
    CHECK(annal_body_encode(r, ANNAL_ENC_JSON, &out, &len) == 0);
    want = "{\"type\":\"error\",\"in_reply_to\":null,\"code\":20,\"text\":\"no snapshot\"}";
    CHECK(len == strlen(want) && memcmp(out, want, len) == 0);
    free(out);
    annal_body_destroy(&r);
}

static void t_time(void)
{
    static const struct {
        const char *text;
        int ok;
        int64_t us;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 1, 0},
        {"2024-01-15T09:00:00Z", 1, 1705309200000000},
        {"2024-01-15T11:00:00+02:00", 1, 1705309200000000},
        {"2024-01-15T09:00:00.5Z", 1, 1705309200500000},
        {"2024-01-15t09:00:00.123456789z", 1, 1705309200123456},
        {"2024-02-29T00:00:00Z", 1, 1709164800000000},
        {"2023-02-29T00:00:00Z", 0, 0},
        {"2024-01-15 09:00:00Z", 0, 0},
        {"2024-01-15T09:00:00", 0, 0},
        {"2024-01-15T24:00:00Z", 0, 0},
        {"2024-01-15T09:00:00.Z", 0, 0},
        {"2024-01-15T09:00:00+2:00", 0, 0},
        {"yesterday", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t us = -1;
        int rc = annal_time_parse(cases[i].text, strlen(cases[i].text), &us);
        if ((rc == 0) != cases[i].ok || (cases[i].ok && us != cases[i].us))
            fprintf(stderr, "  %s: rc %d us %lld\n", cases[i].text, rc, (long long) us);
        CHECK((rc == 0) == cases[i].ok);
        CHECK(!cases[i].ok || us == cases[i].us);
    }
    char buf[ANNAL_TIME_TEXT];
    annal_time_format(1705309200000001, buf);
    CHECK(strcmp(buf, "2024-01-15T09:00:00.000001Z") == 0);
    annal_time_format(-1, buf);
    CHECK(strcmp(buf, "1969-12-31T23:59:59.999999Z") == 0);
    annal_time_format(INT64_MAX, buf);
    CHECK(strcmp(buf, "9999-12-31T23:59:59.999999Z") == 0);
    annal_time_format(INT64_MIN / 2, buf);
    CHECK(strcmp(buf, "0000-01-01T00:00:00.000000Z") == 0);
    /* against gmtime_r, and back through the parser, years 1 to 9999 */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t lo = -62135596800000000, hi = 253402300799999999;
        int64_t us = lo + (int64_t) (x % (uint64_t) (hi - lo));
        annal_time_format(us, buf);
        int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
        time_t tt = (time_t) secs;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char want[64];
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int) (us - secs * 1000000));
        int64_t back = 0;
        if (strcmp(buf, want) != 0 || annal_time_parse(buf, strlen(buf), &back) || back != us) {
            fprintf(stderr, "  %lld: %s, want %s\n", (long long) us, buf, want);
            CHECK(0);
        }
    }
}

/* Top-level strings, "" included, decode and merge like any value, and ""
   is a key like any other (a top-level "" and then a "" key failed to
   decode: found by fuzz_fold). */
static void t_values(void)
{
    static const uint8_t empty[] = {0xa0}, obj[] = {0x81, 0xa1, 'b', 0x02};
    annal_value_t *v = annal_value_decode(empty, 1);
    CHECK(v != NULL);
    annal_value_destroy(&v);
    v = annal_value_new_object();
    CHECK(annal_value_merge_patch(&v, empty, 1) == 0); /* a non-object patch replaces */
    annal_blob_t out = {0};
    CHECK(annal_value_encode(v, &out) == 0 && out.size == 1 && out.data[0] == 0xa0);
    annal_blob_free(&out);
    CHECK(annal_value_merge_patch(&v, obj, sizeof obj) == 0);
    CHECK(annal_value_encode(v, &out) == 0 && out.size == sizeof obj
          && memcmp(out.data, obj, sizeof obj) == 0);
    annal_blob_free(&out);
    annal_value_destroy(&v);
    /* a length header that claims more than the bytes hold is refused, not
       allocated (found by fuzz_fold) */
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    CHECK(annal_value_decode(huge, sizeof huge) == NULL);
    static const uint8_t empty_key[] = {0x81, 0xa0, 0x01};
    v = annal_value_decode(empty_key, sizeof empty_key);
    CHECK(v != NULL);
    CHECK(v && annal_value_encode(v, &out) == 0 && out.size == sizeof empty_key
          && memcmp(out.data, empty_key, sizeof empty_key) == 0);
    annal_blob_free(&out);
    annal_value_destroy(&v);
}

/* A MessagePack append of one event to "a", up to its "event_data" key:
   the value comes next. */
static void s_pack_append(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    const char *fields[] = {"type",       "append", "aggregate_id", "a",
                            "event_type", "T",      "version",      "any"};
    for (int i = 0; i < 8; i++)
        msgpack_pack_str_with_body(pk, fields[i], strlen(fields[i]));
    msgpack_pack_str_with_body(pk, "msg_id", 6);
    msgpack_pack_int(pk, 1);
    msgpack_pack_str_with_body(pk, "event_data", 10);
}

/* The event_data of a one-event append in enc whose map has the keys and
   values given (repeats allowed), as the codec stores it. */
static annal_blob_t s_stored_map(bool msgpack, const char *const *keys, const int *values, int n)
{
    char json[2048];
    int len = snprintf(json, sizeof json,
                       "{\"type\":\"append\",\"msg_id\":1,\"aggregate_id\":\"a\","
                       "\"event_type\":\"T\",\"version\":\"any\",\"event_data\":{");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    s_pack_append(&pk);
    msgpack_pack_map(&pk, (size_t) n);
    for (int i = 0; i < n; i++) {
        len += snprintf(json + len, sizeof json - (size_t) len, "%s\"%s\":%d", i ? "," : "",
                        keys[i], values[i]);
        msgpack_pack_str_with_body(&pk, keys[i], strlen(keys[i]));
        msgpack_pack_int(&pk, values[i]);
    }
    snprintf(json + len, sizeof json - (size_t) len, "}}");
    annal_request_t req;
    annal_encoding_t enc;
    char why[256];
    const uint8_t *body = msgpack ? (const uint8_t *) sb.data : (const uint8_t *) json;
    size_t size = msgpack ? sb.size : strlen(json);
    annal_blob_t out = {0};
    if (annal_request_decode(body, size, NULL, &req, &enc, why, sizeof why) == ANNAL_OK) {
        out = req.events[0].data;
        req.events[0].data = (annal_blob_t){0}; /* now out's */
    }
    else
        fprintf(stderr, "  %s\n", why);
    annal_request_reset(&req);
    msgpack_sbuffer_destroy(&sb);
    return out;
}

/* A map that names a key twice is stored the same from either encoding:
   the key in its first place with its last value (as jansson parses JSON);
   small maps and large ones (sorted) alike. */
static void t_repeated_keys(void)
{
    const char *small_k[] = {"k", "a", "k", "b", "a"};
    const int small_v[] = {1, 2, 3, 4, 5};
    const char *big_k[40];
    int big_v[40];
    char names[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i % 25); /* 15 repeats */
        big_k[i] = names[i];
        big_v[i] = i;
    }
    struct {
        const char *const *k;
        const int *v;
        int n;
        int distinct;
    } maps[] = {{small_k, small_v, 5, 3}, {big_k, big_v, 40, 25}, {small_k + 1, small_v + 1, 2, 2}};
    for (size_t m = 0; m < sizeof maps / sizeof maps[0]; m++) {
        annal_blob_t j = s_stored_map(false, maps[m].k, maps[m].v, maps[m].n);
        annal_blob_t p = s_stored_map(true, maps[m].k, maps[m].v, maps[m].n);
        CHECK(j.size && j.size == p.size && memcmp(j.data, p.data, j.size) == 0);
        char *text = annal_value_to_json_text(p.data, p.size);
        CHECK(text);
        size_t keys = 0;
        for (const char *c = text; c && *c; c++)
            keys += *c == ':';
        CHECK(keys == (size_t) maps[m].distinct);
        if (m == 0)
            CHECK(text && strcmp(text, "{\"k\":3,\"a\":5,\"b\":4}") == 0);
        free(text);
        annal_blob_free(&j);
        annal_blob_free(&p);
    }
}

/* The consumer group commands (docs/protocol.md, section 6): every field
   checked, the defaults filled in. */
static void t_group_requests(void)
{
    static const struct {
        const char *json; /* the request, less "msg_id" */
        annal_err_t rc;   /* what decoding it gives */
    } cases[] = {
        {"\"type\":\"group_create\",\"group\":\"g\"", ANNAL_OK},
        {"\"type\":\"group_create\",\"group\":\"g\",\"prefix\":\"user-\",\"event_types\":[\"A\"],"
         "\"from_sequence\":\"end\",\"ordering\":\"none\",\"ack_timeout_ms\":100,"
         "\"max_deliveries\":1000",
         ANNAL_OK},
        {"\"type\":\"group_create\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"$g\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\\u0001\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":7", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"ack_timeout_ms\":99", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"ack_timeout_ms\":3600001",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"max_deliveries\":0", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"max_deliveries\":1001", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"ordering\":\"x\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"from_sequence\":0", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"from_sequence\":\"start\"",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_create\",\"group\":\"g\",\"event_types\":\"A\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_fetch\",\"group\":\"g\",\"consumer\":\"c\"", ANNAL_OK},
        {"\"type\":\"group_fetch\",\"group\":\"g\",\"consumer\":\"c\",\"wait_ms\":30000", ANNAL_OK},
        {"\"type\":\"group_fetch\",\"group\":\"g\",\"consumer\":\"c\",\"wait_ms\":30001",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_fetch\",\"group\":\"g\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_ack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[1,2]", ANNAL_OK},
        {"\"type\":\"group_ack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[]", ANNAL_OK},
        {"\"type\":\"group_ack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[0]",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_ack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[\"1\"]",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_ack\",\"group\":\"g\",\"consumer\":\"c\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_nack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[3],"
         "\"action\":\"park\",\"reason\":\"bad data\"",
         ANNAL_OK},
        {"\"type\":\"group_nack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[3]",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_nack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[3],"
         "\"action\":\"drop\"",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_nack\",\"group\":\"g\",\"consumer\":\"c\",\"sequences\":[3],"
         "\"action\":\"retry\",\"reason\":5",
         ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_info\",\"group\":\"g\"", ANNAL_OK},
        {"\"type\":\"group_list\"", ANNAL_OK},
        {"\"type\":\"group_delete\"", ANNAL_ERR_MALFORMED},
        {"\"type\":\"group_parked\",\"group\":\"g\",\"from_sequence\":5,\"max_count\":10",
         ANNAL_OK},
        {"\"type\":\"group_replay_parked\",\"group\":\"g\"", ANNAL_OK},
        {"\"type\":\"group_replay_parked\",\"group\":\"g\",\"sequences\":[4]", ANNAL_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512], why[256];
        snprintf(body, sizeof body, "{\"msg_id\":9,%s}", cases[i].json);
        annal_request_t req;
        annal_encoding_t enc;
        annal_err_t rc = annal_request_decode((const uint8_t *) body, strlen(body), NULL, &req,
                                              &enc, why, sizeof why);
        if (rc != cases[i].rc)
            fprintf(stderr, "  %s: %d (%s)\n", body, (int) rc, why);
        CHECK(rc == cases[i].rc && req.has_msg_id && req.msg_id == 9);
        if (i == 0) /* the defaults */
            CHECK(req.cmd == ANNAL_CMD_GROUP_CREATE && strcmp(req.group, "g") == 0 && req.from == 1
                  && !req.from_end && !req.unordered && req.ack_timeout_ms == 30000
                  && req.max_deliveries == 5 && !req.prefix && !req.event_types);
        if (i == 1)
            CHECK(req.from_end && req.unordered && req.ack_timeout_ms == 100
                  && req.max_deliveries == 1000 && strcmp(req.prefix, "user-") == 0
                  && req.event_type_count == 1 && strcmp(req.event_types[0], "A") == 0);
        if (strstr(cases[i].json, "group_fetch") && rc == ANNAL_OK)
            CHECK(strcmp(req.consumer, "c") == 0 && req.max_count == 100
                  && req.wait_ms == (strstr(cases[i].json, "wait_ms") ? 30000u : 0u));
        if (strstr(cases[i].json, "[1,2]"))
            CHECK(req.has_sequences && req.sequence_count == 2 && req.sequences[0] == 1
                  && req.sequences[1] == 2);
        if (strstr(cases[i].json, "bad data"))
            CHECK(req.action == ANNAL_NACK_PARK && strcmp(req.reason, "bad data") == 0
                  && req.sequence_count == 1 && req.sequences[0] == 3);
        if (strstr(cases[i].json, "group_parked"))
            CHECK(req.from == 5 && req.max_count == 10);
        if (strstr(cases[i].json, "group_replay_parked"))
            CHECK(req.has_sequences == (strstr(cases[i].json, "[4]") != NULL));
        annal_request_reset(&req);
    }
}

/* A value that a repeated key replaces is not stored, but it still breaks
   the request when it breaks a value rule, as before repeats were folded
   (and as JSON's parser refuses such a value wherever it stands). */
static void t_repeated_keys_checked(void)
{
    for (int bad = 0; bad < 4; bad++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        s_pack_append(&pk);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "k", 1);
        if (bad == 0)
            msgpack_pack_double(&pk, NAN);
        else if (bad == 1)
            msgpack_pack_str_with_body(&pk, "\xff", 1);
        else if (bad == 2)
            msgpack_pack_uint64(&pk, UINT64_MAX);
        else {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_int(&pk, 1);
            msgpack_pack_int(&pk, 2);
        }
        msgpack_pack_str_with_body(&pk, "k", 1);
        msgpack_pack_int(&pk, 1);
        annal_request_t req;
        annal_encoding_t enc;
        char why[256];
        CHECK(annal_request_decode((const uint8_t *) sb.data, sb.size, NULL, &req, &enc, why,
                                   sizeof why)
              == ANNAL_ERR_MALFORMED);
        annal_request_reset(&req);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void t_names(void)
{
    CHECK(annal_aggregate_id_check("user-1", 6) == NULL);
    CHECK(annal_aggregate_id_check("\xc3\xa9t\xc3\xa9", 5) == NULL);
    CHECK(annal_aggregate_id_check("$all", 4) != NULL);
    CHECK(annal_aggregate_id_check("a\x1f", 2) != NULL);
    CHECK(annal_aggregate_id_check("\xc0\xaf", 2) != NULL);     /* overlong */
    CHECK(annal_aggregate_id_check("\xed\xa0\x80", 3) != NULL); /* surrogate */
    CHECK(annal_aggregate_id_check("\xe2\x82", 2) != NULL);     /* truncated */
    char big[300];
    memset(big, 'a', sizeof big);
    CHECK(annal_aggregate_id_check(big, 256) == NULL);
    CHECK(annal_aggregate_id_check(big, 257) != NULL);
}

static void t_line_style(void)
{
    const char *in = "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"init\",\"msg_id\":1}}\n";
    annal_line_t *line = NULL;
    char why[128];
    CHECK(annal_line_parse(in, strlen(in), &line, why, sizeof why) == 0);
    size_t len;
    const char *body = annal_line_body(line, &len);
    CHECK(strcmp(body, "{\"type\":\"init\",\"msg_id\":1}") == 0);
    const char *reply =
        "{\"type\":\"x\",\"in_reply_to\":1,\"s\":\"\xc3\xa9\\\\u00E9\",\"a\":[1,2]}";
    char *out = annal_line_reply(line, (const uint8_t *) reply, strlen(reply));
    CHECK(out);
    const char *want = "{\"src\": \"n1\", \"dest\": \"c1\", \"body\": {\"type\": \"x\", "
                       "\"in_reply_to\": 1, \"s\": \"\\u00e9\\\\u00E9\", \"a\": [1, 2]}}\n";
    if (strcmp(out, want))
        fprintf(stderr, "  got %s", out);
    CHECK(strcmp(out, want) == 0);
    free(out);
    annal_line_destroy(&line);
    CHECK(annal_line_parse("   \n", 4, &line, why, sizeof why) == 1);
    CHECK(annal_line_parse("[1]\n", 4, &line, why, sizeof why) == -1);
    CHECK(annal_line_parse("{\"src\":", 7, &line, why, sizeof why) == -1);
}

static const t_case_t s_cases[] = {
    {"corpus", t_corpus},
    {"msg_id_kept", t_msg_id_kept},
    {"reply_both", t_reply_both},
    {"time", t_time},
    {"names", t_names},
    {"values", t_values},
    {"line_style", t_line_style},
    {"repeated_keys", t_repeated_keys},
    {"group_requests", t_group_requests},
    {"repeated_keys_checked", t_repeated_keys_checked},
};

int main(int argc, char **argv)
{
    return t_main(argc, argv, s_cases, sizeof s_cases / sizeof s_cases[0]);
}
