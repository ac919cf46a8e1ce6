/*  annal_value.h: JSON values as the store keeps them.

    Every event_data, metadata and snapshot state is held as one canonical
    MessagePack value (a "blob"): compact, self-describing, and the same
    whichever encoding the request came in. The codec makes blobs from
    requests and turns them back into JSON or MessagePack; the fold works on
    annal_value_t trees. Nothing outside wire/ looks inside a blob.

    Canonical form: str keys only; int (int64 range), float64, str (valid
    UTF-8), nil, bool, array, map; no bin, no ext. */
#ifndef ANNAL_VALUE_H
#define ANNAL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data; /* owned MessagePack bytes, or NULL when empty */
    size_t size;   /* bytes in data */
} annal_blob_t;

/* The canonical empty object {} (one byte, 0x80); borrowed, static. */
extern const uint8_t ANNAL_VALUE_EMPTY_OBJECT[1];

/* Frees b's bytes and zeroes it; safe twice. */
void annal_blob_free(annal_blob_t *b);

/* Copies size bytes into a new blob. Returns 0, or -1 out of memory. */
int annal_blob_copy(annal_blob_t *b, const uint8_t *data, size_t size);

/* True when the blob holds a map (an object). */
bool annal_value_is_object(const uint8_t *data, size_t size);

/* Parses JSON text (any value) into a canonical blob, under the default
   limits' depth rule for a stored value (annal_limits.h). Returns 0, or -1
   with a reason. */
int annal_value_from_json_text(const char *text, size_t len, annal_blob_t *out, char *why,
                               size_t whylen);

/* A canonical blob as compact JSON text; caller frees; NULL when damaged. */
char *annal_value_to_json_text(const uint8_t *data, size_t size);

/* True when s (len bytes) is valid UTF-8 (no overlongs, no surrogates). */
bool annal_utf8_valid(const char *s, size_t len);

/* A mutable value tree, for folding. */
typedef struct annal_value_t annal_value_t;

/* A new empty object {}; NULL out of memory. */
annal_value_t *annal_value_new_object(void);

/* Decodes a canonical blob into a tree; NULL when it is not one. */
annal_value_t *annal_value_decode(const uint8_t *data, size_t size);

/* Applies patch (a blob) to *target as JSON Merge Patch (RFC 7386); a
   non-object patch replaces the target. Returns 0, or -1 when the patch is
   not a canonical blob (target unchanged). */
int annal_value_merge_patch(annal_value_t **target, const uint8_t *patch, size_t size);

/* Encodes a tree into a new blob. Returns 0, or -1 out of memory. */
int annal_value_encode(const annal_value_t *value, annal_blob_t *out);

/* Frees *value and sets it to NULL; safe twice. */
void annal_value_destroy(annal_value_t **value);

#endif
