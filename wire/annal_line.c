/*  annal_line.c: harness line protocol, on jansson. */
#include "annal_line.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct annal_line_t {
    json_t *src;  /* the request's "src", or null */
    json_t *dest; /* the request's "dest", or null */
    char *body;   /* the request body as compact JSON text */
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

char *annal_line_reply(const annal_line_t *self, const uint8_t *reply, size_t len)
{
    json_error_t err;
    json_t *body = json_loadb((const char *) reply, len, JSON_ALLOW_NUL, &err);
    if (!body)
        return NULL;
    json_t *out = json_object();
    json_object_set(out, "src", self->dest);
    json_object_set(out, "dest", self->src);
    json_object_set_new(out, "body", body);
    /* no JSON_COMPACT: ", " and ": " separators, as Python's json.dumps */
    char *text = json_dumps(out, JSON_ENSURE_ASCII);
    json_decref(out);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    /* Python writes \u escapes in lower-case hex; jansson in upper-case */
    for (size_t i = 0; i + 1 < n; i++) {
        if (text[i] != '\\')
            continue;
        if (text[i + 1] == 'u')
            for (size_t k = i + 2; k < i + 6 && k < n; k++)
                if (text[k] >= 'A' && text[k] <= 'F')
                    text[k] = (char) (text[k] - 'A' + 'a');
        i++; /* skip the escaped character */
    }
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    return line;
}

void annal_line_destroy(annal_line_t **self)
{
    if (*self) {
        json_decref((*self)->src);
        json_decref((*self)->dest);
        free((*self)->body);
        free(*self);
        *self = NULL;
    }
}
