/*  annal_time.c: strict RFC 3339 parsing and formatting. */
#include "annal_time.h"

#include <stdbool.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static int s_digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t s_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int annal_time_parse(const char *t, size_t len, int64_t *us)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, s;
    if (len < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':'
        || t[16] != ':')
        return -1;
    if (s_digits(t, 4, &y) || s_digits(t + 5, 2, &mo) || s_digits(t + 8, 2, &d)
        || s_digits(t + 11, 2, &h) || s_digits(t + 14, 2, &mi) || s_digits(t + 17, 2, &s))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60)
        return -1;
    if (d > mdays[mo - 1] + (mo == 2 && s_leap(y)))
        return -1;
    if (s == 60)
        s = 59; /* a leap second sorts with the second before it */
    size_t i = 19;
    int64_t frac = 0;
    if (i < len && t[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && t[i] >= '0' && t[i] <= '9') {
            if (i - start < 6)
                frac = frac * 10 + (t[i] - '0');
            i++;
        }
        if (i == start || i - start > 9)
            return -1;
        for (size_t k = i - start; k < 6; k++)
            frac *= 10;
    }
    int offset = 0;
    if (i < len && (t[i] == 'Z' || t[i] == 'z'))
        i++;
    else if (i + 6 == len && (t[i] == '+' || t[i] == '-') && t[i + 3] == ':') {
        int oh, om;
        if (s_digits(t + i + 1, 2, &oh) || s_digits(t + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = (oh * 60 + om) * (t[i] == '-' ? -1 : 1);
        i += 6;
    }
    else
        return -1;
    if (i != len)
        return -1;
    int64_t secs = s_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - (int64_t) offset * 60;
    *us = secs * 1000000 + frac;
    return 0;
}

/* Writes v as exactly n decimal digits at p. */
static void s_put_digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char) ('0' + v % 10);
}

void annal_time_format(int64_t us, char *buf)
{
    /* days to civil date (H. Hinnant's algorithm): no gmtime_r, whose time
       zone lock and snprintf cost more than the rest of an event's encoding */
    int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
    int64_t micro = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t sod = secs - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    if (year < 0 || year > 9999) { /* not representable in RFC 3339: clamp */
        bool low = year < 0;
        year = low ? 0 : 9999;
        month = low ? 1 : 12;
        day = low ? 1 : 31;
        sod = low ? 0 : 86399;
        micro = low ? 0 : 999999;
    }
    memcpy(buf, "0000-00-00T00:00:00.000000Z", 28);
    s_put_digits(buf, year, 4);
    s_put_digits(buf + 5, month, 2);
    s_put_digits(buf + 8, day, 2);
    s_put_digits(buf + 11, sod / 3600, 2);
    s_put_digits(buf + 14, sod / 60 % 60, 2);
    s_put_digits(buf + 17, sod % 60, 2);
    s_put_digits(buf + 20, micro, 6);
}

int64_t annal_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t annal_time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
