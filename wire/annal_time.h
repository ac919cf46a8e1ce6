/*  annal_time.h: RFC 3339 timestamps <-> microseconds since the Unix epoch. */
#ifndef ANNAL_TIME_H
#define ANNAL_TIME_H

#include <stddef.h>
#include <stdint.h>

#define ANNAL_TIME_TEXT 40 /* room for "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" and a NUL */

/* Parses an RFC 3339 date-time ("2024-01-15T09:00:00Z", any offset, up to
   nanosecond digits, which are truncated to microseconds). Returns 0 and
   sets *us, or -1 when the text is not a valid date-time. */
int annal_time_parse(const char *text, size_t len, int64_t *us);

/* Writes us as RFC 3339 UTC with microseconds into buf (ANNAL_TIME_TEXT). */
void annal_time_format(int64_t us, char *buf);

/* The current wall-clock time in microseconds. */
int64_t annal_time_now(void);

/* A monotonic clock in milliseconds, for intervals. */
int64_t annal_time_mono_ms(void);

#endif
