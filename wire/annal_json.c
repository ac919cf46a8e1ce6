/*  annal_json.c: JSON text and canonical blobs. Text is written straight
    from a blob into a growing buffer: no value tree, so a reply costs about
    its own size. Text is read into a blob with jansson (for client
    programs: annal_value_from_json_text).

    Output style: compact; strings escaped as Python's json.dumps escapes
    them (\" \\ \b \f \n \r \t, other control characters and DEL as \u00xx
    in lower-case hex), UTF-8 otherwise as is; floats in the shortest form
    that reads back to the same double, always with a '.' or an exponent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_limits.h"
#include "annal_value_private.h"

#define MAX_NEST 64 /* deeper blobs are not canonical (requests allow 32) */

void annal_buf_put(annal_buf_t *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void annal_buf_puts(annal_buf_t *b, const char *s)
{
    annal_buf_put(b, s, strlen(s));
}

void annal_buf_free(annal_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void annal_json_string(annal_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    annal_buf_put(b, "\"", 1);
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                u[6] = 0;
                esc = u;
            }
        }
        if (!esc)
            continue;
        annal_buf_put(b, s + run, i - run);
        annal_buf_puts(b, esc);
        run = i + 1;
    }
    annal_buf_put(b, s + run, n - run);
    annal_buf_put(b, "\"", 1);
}

void annal_json_double(annal_buf_t *b, double d)
{
    char text[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    if (!strpbrk(text, ".eEni")) /* "1" -> "1.0", as Python writes floats */
        strcat(text, ".0");
    annal_buf_puts(b, text);
}

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Writes the value at *off; -1 when the bytes are not a canonical blob. */
static int s_value(annal_buf_t *b, const uint8_t *p, size_t size, size_t *off, int depth)
{
    if (*off >= size || depth > MAX_NEST)
        return -1;
    uint8_t c = p[(*off)++];
    size_t left = size - *off;
    char num[32];
    uint64_t n = 0;
    int hdr = 0;
    if (c <= 0x7f) {
        snprintf(num, sizeof num, "%u", c);
        annal_buf_puts(b, num);
        return 0;
    }
    if (c >= 0xe0) {
        snprintf(num, sizeof num, "%d", (int8_t) c);
        annal_buf_puts(b, num);
        return 0;
    }
    switch (c) {
    case 0xc0: annal_buf_puts(b, "null"); return 0;
    case 0xc2: annal_buf_puts(b, "false"); return 0;
    case 0xc3: annal_buf_puts(b, "true"); return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
        int w = 1 << (c - 0xcc);
        if (left < (size_t) w)
            return -1;
        snprintf(num, sizeof num, "%llu", (unsigned long long) s_be(p + *off, w));
        *off += w;
        annal_buf_puts(b, num);
        return 0;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int w = 1 << (c - 0xd0);
        if (left < (size_t) w)
            return -1;
        uint64_t u = s_be(p + *off, w);
        int64_t v = w == 8 ? (int64_t) u : (int64_t) (u << (64 - 8 * w)) >> (64 - 8 * w);
        snprintf(num, sizeof num, "%lld", (long long) v);
        *off += w;
        annal_buf_puts(b, num);
        return 0;
    }
    case 0xca:
    case 0xcb: {
        double d;
        if (c == 0xca) {
            if (left < 4)
                return -1;
            uint32_t u = (uint32_t) s_be(p + *off, 4);
            float f;
            memcpy(&f, &u, 4);
            d = f;
            *off += 4;
        }
        else {
            if (left < 8)
                return -1;
            uint64_t u = s_be(p + *off, 8);
            memcpy(&d, &u, 8);
            *off += 8;
        }
        if (!isfinite(d))
            return -1;
        annal_json_double(b, d);
        return 0;
    }
    default: break;
    }
    if ((c & 0xe0) == 0xa0)
        n = c & 0x1f;
    else if (c == 0xd9 || c == 0xda || c == 0xdb)
        hdr = 1 << (c - 0xd9);
    if ((c & 0xe0) == 0xa0 || hdr) {
        if (hdr) {
            if (left < (size_t) hdr)
                return -1;
            n = s_be(p + *off, hdr);
            *off += hdr;
            left -= hdr;
        }
        if (n > left)
            return -1;
        annal_json_string(b, (const char *) p + *off, n);
        *off += n;
        return 0;
    }
    bool map;
    if ((c & 0xf0) == 0x80 || (c & 0xf0) == 0x90) {
        map = (c & 0xf0) == 0x80;
        n = c & 0x0f;
    }
    else if (c == 0xdc || c == 0xdd || c == 0xde || c == 0xdf) {
        map = c >= 0xde;
        hdr = (c == 0xdc || c == 0xde) ? 2 : 4;
        if (left < (size_t) hdr)
            return -1;
        n = s_be(p + *off, hdr);
        *off += hdr;
        left -= hdr;
    }
    else
        return -1; /* bin, ext: never in a canonical blob */
    if (n > left)
        return -1;
    annal_buf_put(b, map ? "{" : "[", 1);
    for (uint64_t i = 0; i < n; i++) {
        if (i)
            annal_buf_put(b, ",", 1);
        if (map) {
            if (*off >= size || !((p[*off] & 0xe0) == 0xa0 || (p[*off] >= 0xd9 && p[*off] <= 0xdb)))
                return -1; /* keys are strings */
            if (s_value(b, p, size, off, depth + 1))
                return -1;
            annal_buf_put(b, ":", 1);
        }
        if (s_value(b, p, size, off, depth + 1))
            return -1;
    }
    annal_buf_put(b, map ? "}" : "]", 1);
    return 0;
}

int annal_json_value(annal_buf_t *b, const uint8_t *blob, size_t size)
{
    size_t off = 0;
    if (s_value(b, blob, size, &off, 0) || off != size)
        return -1;
    return 0;
}

int annal_value_from_json_text(const char *text, size_t len, annal_blob_t *out, char *why,
                               size_t whylen)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) {
        snprintf(why, whylen, "invalid JSON: %s", err.text);
        return -1;
    }
    annal_node_t n = {v, NULL};
    int rc = annal_node_pack_value(&n, annal_limits_default().max_depth, out, why, whylen);
    json_decref(v);
    return rc;
}

char *annal_value_to_json_text(const uint8_t *data, size_t size)
{
    annal_buf_t b = {0};
    if (annal_json_value(&b, data, size) || b.failed || !b.data) {
        annal_buf_free(&b);
        return NULL;
    }
    return b.data;
}
