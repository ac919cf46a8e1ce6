/*  type_counter.c: a live count of events per event type.

    Subscribes (from now, or --from N) and prints the counts as one JSON
    object per line every --interval milliseconds when they changed.

    usage: type_counter [--commands EP] [--events EP] [--from N] [--interval MS] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <annal/annal.h>

#define MAX_TYPES 1024

typedef struct {
    char *names[MAX_TYPES]; /* event types seen */
    unsigned long counts[MAX_TYPES];
    size_t n;     /* types in use */
    bool changed; /* since the last print */
} counter_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static int s_count(const annal_record_t *r, void *arg)
{
    counter_t *c = arg;
    size_t i = 0;
    while (i < c->n && strcmp(c->names[i], r->event_type) != 0)
        i++;
    if (i == c->n) {
        if (c->n == MAX_TYPES)
            return 0; /* counted no more: a demo's limit */
        c->names[c->n++] = strdup(r->event_type);
    }
    c->counts[i]++;
    c->changed = true;
    return 0;
}

/* Writes s as a JSON string. */
static void s_quote(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static void s_print(counter_t *c)
{
    putchar('{');
    for (size_t i = 0; i < c->n; i++) {
        if (i)
            fputs(", ", stdout);
        s_quote(c->names[i]);
        printf(": %lu", c->counts[i]);
    }
    puts("}");
    fflush(stdout);
    c->changed = false;
}

int main(int argc, char **argv)
{
    const char *commands = getenv("ANNAL_COMMANDS"), *events = getenv("ANNAL_EVENTS");
    unsigned long long from = ANNAL_FROM_NOW;
    int interval = 1000;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--commands") == 0)
            commands = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--events") == 0)
            events = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--from") == 0)
            from = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--interval") == 0)
            interval = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: type_counter [--commands EP] [--events EP] [--from N] "
                            "[--interval MS]\n");
            return 2;
        }
    }
    annal_subscription_config_t config = {
        .commands = commands ? commands : "tcp://127.0.0.1:5555",
        .events = events ? events : "tcp://127.0.0.1:5556",
        .from = from,
    };
    static counter_t counter;
    annal_subscription_t *sub = annal_subscription_new(&config, s_count, &counter);
    if (!sub) {
        fprintf(stderr, "type_counter: cannot subscribe\n");
        return 1;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    while (!s_stop) {
        annal_result_t res;
        if (annal_subscription_run(sub, interval > 0 ? interval : 1000, &res) != ANNAL_SUCCESS) {
            fprintf(stderr, "type_counter: %s\n", res.text);
            break;
        }
        if (counter.changed)
            s_print(&counter);
    }
    annal_subscription_destroy(&sub);
    for (size_t i = 0; i < counter.n; i++)
        free(counter.names[i]);
    return 0;
}
