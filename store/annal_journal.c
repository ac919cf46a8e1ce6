/*  annal_journal.c: the write-ahead journal (see annal_journal.h). */
#include "annal_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC      "ANJ1"
#define GROW_STEP  ((uint64_t) 4 << 20) /* zero-fill this much ahead at a time */
#define ZERO_CHUNK (256 * 1024)

struct annal_journal_t {
    int fd;         /* the file */
    uint64_t size;  /* bytes of the file known to be allocated and written */
    uint64_t pos;   /* where the next record goes */
    uint64_t gen;   /* the current generation */
    uint32_t index; /* the next record's index in it */
};

/* --- CRC-32C ---------------------------------------------------------------------- */

static uint32_t s_table[256];

__attribute__((constructor)) static void s_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_table[i] = c;
    }
}

static uint32_t s_crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len--)
        crc = s_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t s_crc_hw(uint32_t crc, const uint8_t *p,
                                                           size_t len)
{
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    crc = (uint32_t) c;
    for (; len; p++, len--)
        crc = __builtin_ia32_crc32qi(crc, *p);
    return crc;
}
#endif

uint32_t annal_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~s_crc_hw(crc, data, len);
#endif
    return ~s_crc_table(crc, data, len);
}

/* --- the file ----------------------------------------------------------------------- */

annal_journal_t *annal_journal_open(const char *path, char *why, size_t whylen)
{
    annal_journal_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    self->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (self->fd < 0 || fstat(self->fd, &st)) {
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        if (self->fd >= 0)
            close(self->fd);
        free(self);
        return NULL;
    }
    self->size = (uint64_t) st.st_size;
    return self;
}

void annal_journal_close(annal_journal_t **self)
{
    if (*self) {
        close((*self)->fd);
        free(*self);
        *self = NULL;
    }
}

/* Reads (write false) or writes len bytes at off, all of them; 0 or -1. */
static int s_io(int fd, void *buf, size_t len, uint64_t off, bool write)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = write ? pwrite(fd, p, len, (off_t) off) : pread(fd, p, len, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n, len -= (size_t) n, off += (uint64_t) n;
    }
    return 0;
}

int64_t annal_journal_replay(annal_journal_t *self, uint64_t gen,
                             int (*fn)(void *arg, const uint8_t *payload, size_t len), void *arg)
{
    annal_journal_reset(self, gen);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t count = 0;
    for (;;) {
        uint8_t h[ANNAL_JOURNAL_HEADER];
        if (self->pos + sizeof h > self->size || s_io(self->fd, h, sizeof h, self->pos, false))
            break;
        uint64_t g;
        uint32_t crc, index, len;
        memcpy(&crc, h + 4, 4);
        memcpy(&g, h + 8, 8);
        memcpy(&index, h + 16, 4);
        memcpy(&len, h + 20, 4);
        if (memcmp(h, MAGIC, 4) != 0 || g != gen || index != self->index
            || len > self->size - self->pos - sizeof h)
            break;
        if (len > cap) {
            uint8_t *bigger = realloc(buf, len);
            if (!bigger) {
                count = -1;
                break;
            }
            buf = bigger, cap = len;
        }
        if (s_io(self->fd, buf, len, self->pos + sizeof h, false))
            break;
        if (annal_crc32c(annal_crc32c(0, h + 8, sizeof h - 8), buf, len) != crc)
            break;
        if (fn(arg, buf, len)) {
            count = -1;
            break;
        }
        self->pos += sizeof h + len;
        self->index++;
        count++;
    }
    free(buf);
    return count;
}

void annal_journal_reset(annal_journal_t *self, uint64_t gen)
{
    self->gen = gen;
    self->pos = 0;
    self->index = 0;
}

/* Zero-fills the file up to at least end, then flushes, so that later
   records overwrite allocated blocks. */
static annal_err_t s_grow(annal_journal_t *self, uint64_t end)
{
    uint64_t target = (end + GROW_STEP - 1) / GROW_STEP * GROW_STEP;
    uint8_t *zero = calloc(1, ZERO_CHUNK);
    if (!zero)
        return ANNAL_ERR_UNAVAILABLE;
    uint64_t at = self->size;
    while (at < target) {
        size_t n = target - at < ZERO_CHUNK ? (size_t) (target - at) : ZERO_CHUNK;
        if (s_io(self->fd, zero, n, at, true))
            break;
        at += n;
    }
    int err = at < target ? errno : 0;
    free(zero);
    if (!err && fdatasync(self->fd))
        err = errno;
    if (err) /* the records so far are untouched; the zeroes are not needed */
        return err == ENOSPC || err == EDQUOT || err == EFBIG ? ANNAL_ERR_NO_SPACE
                                                              : ANNAL_ERR_UNAVAILABLE;
    self->size = target;
    return ANNAL_OK;
}

annal_err_t annal_journal_write(annal_journal_t *self, uint8_t *rec, size_t len)
{
    if (len < ANNAL_JOURNAL_HEADER || len - ANNAL_JOURNAL_HEADER > UINT32_MAX)
        return ANNAL_ERR_INTERNAL;
    if (self->pos + len > self->size) {
        annal_err_t err = s_grow(self, self->pos + len);
        if (err)
            return err;
    }
    uint32_t plen = (uint32_t) (len - ANNAL_JOURNAL_HEADER);
    memcpy(rec, MAGIC, 4);
    memcpy(rec + 8, &self->gen, 8);
    memcpy(rec + 16, &self->index, 4);
    memcpy(rec + 20, &plen, 4);
    uint32_t crc = annal_crc32c(0, rec + 8, len - 8);
    memcpy(rec + 4, &crc, 4);
    if (s_io(self->fd, rec, len, self->pos, true) || fdatasync(self->fd))
        return ANNAL_ERR_INTERNAL;
    self->pos += len;
    self->index++;
    return ANNAL_OK;
}

int annal_journal_wipe(annal_journal_t *self)
{
    uint8_t *zero = calloc(1, ZERO_CHUNK);
    if (!zero)
        return -1;
    int rc = 0;
    for (uint64_t at = self->pos; at < self->size && !rc;) {
        size_t n = self->size - at < ZERO_CHUNK ? (size_t) (self->size - at) : ZERO_CHUNK;
        rc = s_io(self->fd, zero, n, at, true);
        at += n;
    }
    free(zero);
    return rc || fdatasync(self->fd) ? -1 : 0;
}

uint64_t annal_journal_used(const annal_journal_t *self)
{
    return self->pos;
}
