/*  annal_checkpoint.h: a projection's position, kept in a file that is
    replaced atomically (write, fsync, rename, fsync the folder), so after a
    crash it holds either the old or the new position, never a torn one. */
#ifndef ANNAL_CHECKPOINT_H
#define ANNAL_CHECKPOINT_H

#include <stdint.h>

#include "annal_export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the position saved at path into *position. Returns 0, 1 when there
   is no checkpoint yet (*position = 1: from the beginning), -1 when the file
   is unreadable or damaged. */
ANNAL_EXPORT int annal_checkpoint_load(const char *path, uint64_t *position);

/* Saves position atomically and durably. Returns 0 or -1 (errno set). */
ANNAL_EXPORT int annal_checkpoint_save(const char *path, uint64_t position);

#ifdef __cplusplus
}
#endif

#endif
