/*  annal_line.c: harness line protocol, on jansson. */
#define _GNU_SOURCE /* memmem */
#include "annal_line.h"

#include "annal_value_private.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct annal_line_t {
    json_t *msg_id; /* the body's "msg_id", or NULL */
    json_t *src;    /* the request's "src", or null */
    json_t *dest;   /* the request's "dest", or null */
    char *body;     /* the request body as compact JSON text */
};

int annal_line_parse(const char *text, size_t len, annal_line_t **self, char *why, size_t whylen)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i == len)
        return 1;
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    if (!root || !json_is_object(root)) {
        snprintf(why, whylen, "%s", root ? "a JSON value, but not an object" : err.text);
        json_decref(root);
        return -1;
    }
    annal_line_t *line = calloc(1, sizeof *line);
    json_t *body = json_object_get(root, "body");
    if (line)
        line->body = json_dumps(body ? body : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!line || !line->body) {
        snprintf(why, whylen, "out of memory");
        if (line)
            free(line);
        json_decref(root);
        return -1;
    }
    json_t *src = json_object_get(root, "src");
    json_t *dest = json_object_get(root, "dest");
    line->src = json_incref(src ? src : json_null());
    line->msg_id = json_incref(json_object_get(body, "msg_id"));
    line->dest = json_incref(dest ? dest : json_null());
    json_decref(root);
    *self = line;
    return 0;
}

const char *annal_line_body(const annal_line_t *self, size_t *len)
{
    *len = strlen(self->body);
    return self->body;
}

/* Appends JSON text in Python's json.dumps style: ", " and ": " between
   tokens, non-ASCII and DEL as \u escapes (surrogate pairs past U+FFFF),
   hex in lower case. Numbers and other escapes are copied as they are, so
   no value is re-rounded. Returns -1 when the text is not well formed. */
static int s_pythonize(annal_buf_t *b, const char *t, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) t[i];
        if (!in_string) {
            if (c == ',' || c == ':') {
                annal_buf_put(b, c == ',' ? ", " : ": ", 2);
                continue;
            }
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                continue;
            if (c == '"')
                in_string = true;
            annal_buf_put(b, t + i, 1);
            continue;
        }
        if (c == '"') {
            in_string = false;
            annal_buf_put(b, "\"", 1);
        }
        else if (c == '\\') {
            if (i + 1 >= n)
                return -1;
            char esc[6];
            size_t len = t[i + 1] == 'u' ? 6 : 2;
            if (i + len > n)
                return -1;
            for (size_t k = 0; k < len; k++)
                esc[k] = (char) (k >= 2 && t[i + k] >= 'A' && t[i + k] <= 'F' ? t[i + k] - 'A' + 'a'
                                                                              : t[i + k]);
            annal_buf_put(b, esc, len);
            i += len - 1;
        }
        else if (c >= 0x20 && c < 0x7f)
            annal_buf_put(b, t + i, 1);
        else {
            size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (i + len > n || !annal_utf8_valid(t + i, len))
                return -1;
            uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | ((unsigned char) t[i + k] & 0x3f);
            uint32_t units[2] = {cp, 0};
            int count = 1;
            if (cp > 0xffff) {
                cp -= 0x10000;
                units[0] = 0xd800 | (cp >> 10);
                units[1] = 0xdc00 | (cp & 0x3ff);
                count = 2;
            }
            for (int k = 0; k < count; k++) {
                char u[6] = {'\\',
                             'u',
                             hex[units[k] >> 12],
                             hex[(units[k] >> 8) & 15],
                             hex[(units[k] >> 4) & 15],
                             hex[units[k] & 15]};
                annal_buf_put(b, u, 6);
            }
            i += len - 1;
        }
    }
    return in_string ? -1 : 0;
}

/* Appends a JSON value dumped by jansson, in Python's style. */
static int s_python_dump(annal_buf_t *b, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return -1;
    int rc = s_pythonize(b, text, strlen(text));
    free(text);
    return rc;
}

/* The reply as the harness sees it (docs/protocol.md, section 3.4): without
   the fields annald adds on its socket to what the contract lists, which the
   harness compares key for key: a concurrency_error's actual_version, a
   group's lag (group_info, and each of group_list's groups). Returns a new
   JSON text to free, or NULL when reply is to go out as it is. */
static char *s_harness_view(const uint8_t *reply, size_t len)
{
    static const char *const markers[] = {"\"actual_version\"", "\"lag\""};
    bool marked = false;
    for (size_t i = 0; i < sizeof markers / sizeof *markers; i++)
        marked |= memmem(reply, len, markers[i], strlen(markers[i])) != NULL;
    if (!marked)
        return NULL;
    json_t *root = json_loadb((const char *) reply, len, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "type"));
    char *text = NULL;
    int removed = 0;
    if (type && strcmp(type, "concurrency_error") == 0)
        removed = json_object_del(root, "actual_version") == 0;
    else if (type && strcmp(type, "group") == 0)
        removed = json_object_del(root, "lag") == 0;
    else if (type && strcmp(type, "groups") == 0) {
        size_t i;
        json_t *g;
        json_array_foreach (json_object_get(root, "groups"), i, g)
            removed += json_object_del(g, "lag") == 0;
    }
    if (removed)
        text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

char *annal_line_reply(const annal_line_t *self, const uint8_t *reply, size_t len)
{
    char *view = s_harness_view(reply, len);
    if (view) {
        reply = (const uint8_t *) view;
        len = strlen(view);
    }
    annal_buf_t b = {0};
    annal_buf_puts(&b, "{\"src\": ");
    int rc = s_python_dump(&b, self->dest);
    annal_buf_puts(&b, ", \"dest\": ");
    rc |= s_python_dump(&b, self->src);
    annal_buf_puts(&b, ", \"body\": ");
    rc |= s_pythonize(&b, (const char *) reply, len);
    annal_buf_puts(&b, "}\n");
    free(view);
    if (rc || b.failed) {
        annal_buf_free(&b);
        return NULL;
    }
    return b.data;
}

bool annal_line_msg_id(const annal_line_t *self, int64_t *msg_id)
{
    if (!json_is_integer(self->msg_id))
        return false;
    *msg_id = json_integer_value(self->msg_id);
    return true;
}

void annal_line_destroy(annal_line_t **self)
{
    if (*self) {
        json_decref((*self)->src);
        json_decref((*self)->msg_id);
        json_decref((*self)->dest);
        free((*self)->body);
        free(*self);
        *self = NULL;
    }
}
