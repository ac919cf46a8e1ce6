/*  annald: the annal event store daemon. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_broker.h"
#include "annal_limits.h"
#include "annal_store.h"

/* The numeric settings: flag, where it goes, its range, what it is. */
typedef struct {
    const char *flag, *arg;
    size_t *value;
    long long min, max;
    const char *what;
} setting_t;

/* Prints the usage; called before parsing, so each setting shows its default. */
static void s_usage(FILE *out, const setting_t *settings)
{
    fprintf(out, "usage: annald [options]\n"
                 "  --data DIR                 data folder (default ./data)\n"
                 "  --store LOCATION           a data folder, or a PostgreSQL database as a\n"
                 "                             postgresql://user@host/db URI\n"
                 "  --commands ENDPOINT        ROUTER endpoint for commands\n"
                 "                             (default tcp://127.0.0.1:5555)\n"
                 "  --events ENDPOINT          PUB endpoint for events\n"
                 "                             (default tcp://127.0.0.1:5556)\n"
                 "  --pub-format FORMAT        msgpack (default) or json\n"
                 "  --curve-secret FILE        annald's CURVE secret certificate (annal keygen)\n"
                 "  --curve-allow DIR          public certificates of the clients admitted\n"
                 "                             (with --curve-secret: both sockets use CURVE)\n");
    for (const setting_t *s = settings; s->flag; s++)
        fprintf(out, "  --%s %-*s%s (default %zu, %lld..%lld)\n", s->flag,
                (int) (24 - strlen(s->flag)), s->arg, s->what, *s->value, s->min, s->max);
    fprintf(out, "  --help                     this text\n"
                 "  --version                  the version\n"
                 "Endpoints may use a wildcard port (tcp://127.0.0.1:*); annald prints the\n"
                 "endpoints it bound on its first line of output.\n");
}

/* Parses text as a whole number within s's range; -1 when it is not one. */
static int s_setting(const setting_t *s, const char *text, size_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < s->min || v > s->max) {
        fprintf(stderr, "annald: --%s must be a whole number from %lld to %lld, not '%s'\n",
                s->flag, s->min, s->max, text);
        return -1;
    }
    *out = (size_t) v;
    return 0;
}

/* True when endpoint reaches this machine only: ipc, inproc, or TCP on a
   loopback address. */
static bool s_local(const char *endpoint)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0;
    const char *host = endpoint + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0
           || strncmp(host, "[::1]:", 6) == 0;
}

/* Warns when a socket bound without CURVE can be reached from elsewhere. */
static void s_warn_open(const char *what, const char *endpoint, bool curve)
{
    if (!curve && *endpoint && !s_local(endpoint))
        fprintf(stderr,
                "annald: warning: %s at %s take anyone who can reach them; use CURVE "
                "(--curve-secret, --curve-allow) or bind to loopback\n",
                what, endpoint);
}

int main(int argc, char **argv)
{
    annal_broker_config_t config = {
        .store = "./data",
        .commands = "tcp://127.0.0.1:5555",
        .events = "tcp://127.0.0.1:5556",
        .pub_format = ANNAL_ENC_MSGPACK,
        .limits = annal_limits_default(),
    };
    annal_limits_t *lim = &config.limits;
    size_t pub_hwm = ANNAL_PUB_HWM_DEFAULT;
    const setting_t settings[] = {
        {"max-body", "BYTES", &lim->max_body, 1, (INT32_MAX - 65536) / 2, "request body limit"},
        {"max-aggregate-id", "BYTES", &lim->max_aggregate_id, 1, ANNAL_MAX_AGGREGATE_ID,
         "aggregate id limit"},
        {"max-event-type", "BYTES", &lim->max_event_type, 1, ANNAL_MAX_EVENT_TYPE,
         "event type limit"},
        {"max-batch", "N", &lim->max_batch, 1, ANNAL_MAX_BATCH_CEILING,
         "events in one batch append"},
        {"max-depth", "N", &lim->max_depth, ANNAL_MIN_DEPTH, ANNAL_MAX_DEPTH,
         "nesting of a request body"},
        {"max-count", "N", &lim->read_cap, 1, 1000000000,
         "server cap on max_count of read/read_all"},
        {"client-hwm", "N", &lim->client_hwm, 1, 1000000, "requests queued per client connection"},
        {"max-clients", "N", &lim->max_clients, 1, 1000000,
         "connections per socket served at once"},
        {"pub-hwm", "N", &pub_hwm, 1, INT32_MAX / 2,
         "events queued per subscriber before PUB drops"},
        {NULL, NULL, NULL, 0, 0, NULL},
    };
    enum { FIRST_SETTING = 256 };
    struct option options[32] = {
        {"data", required_argument, 0, 'd'},
        {"commands", required_argument, 0, 'c'},
        {"events", required_argument, 0, 'e'},
        {"pub-format", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"curve-secret", required_argument, 0, 's'},
        {"store", required_argument, 0, 'd'},
        {"curve-allow", required_argument, 0, 'a'},
    };
    size_t n = 0;
    while (options[n].name)
        n++;
    for (size_t i = 0; settings[i].flag; i++, n++)
        options[n] =
            (struct option){settings[i].flag, required_argument, 0, FIRST_SETTING + (int) i};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt >= FIRST_SETTING) {
            if (s_setting(&settings[opt - FIRST_SETTING], optarg,
                          settings[opt - FIRST_SETTING].value))
                return 2;
            continue;
        }
        switch (opt) {
        case 'd': config.store = optarg; break;
        case 'c': config.commands = optarg; break;
        case 'e': config.events = optarg; break;
        case 's': config.curve_secret = optarg; break;
        case 'a': config.curve_allow = optarg; break;
        case 'p':
            if (strcmp(optarg, "msgpack") == 0)
                config.pub_format = ANNAL_ENC_MSGPACK;
            else if (strcmp(optarg, "json") == 0)
                config.pub_format = ANNAL_ENC_JSON;
            else {
                fprintf(stderr, "annald: --pub-format must be msgpack or json, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': s_usage(stdout, settings); return 0;
        case 'V': printf("annald %s\n", ANNAL_VERSION); return 0;
        default:
            fprintf(stderr, "annald: unknown or incomplete option '%s'\n", argv[optind - 1]);
            s_usage(stderr, settings);
            return 2;
        }
    }
    config.pub_hwm = (int) pub_hwm;
    if (optind < argc) {
        fprintf(stderr, "annald: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    /* signals are taken here with sigwait, not by CZMQ's handler */
    zsys_handler_set(NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* past a file size limit (RLIMIT_FSIZE) a write fails with EFBIG, which
       the store treats as a full disk, instead of killing annald */
    signal(SIGXFSZ, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* the store as shown: a URI without its user and password */
    char shown[512];
    const char *at = strchr(config.store, '@'), *scheme = strstr(config.store, "://");
    if (annal_store_is_postgresql(config.store) && at && scheme && scheme < at)
        snprintf(shown, sizeof shown, "%.*s%s", (int) (scheme - config.store + 3), config.store,
                 at + 1);
    else
        snprintf(shown, sizeof shown, "%s", config.store);
    char why[512];
    annal_broker_t *broker = annal_broker_new(&config, why, sizeof why);
    if (!broker) {
        fprintf(stderr, "annald: %s\n", why);
        return 1;
    }
    bool curve = config.curve_secret != NULL;
    s_warn_open("commands", annal_broker_commands(broker), curve);
    s_warn_open("events", annal_broker_events(broker), curve);
    printf("annald %s ready: commands %s events %s store %s%s\n", ANNAL_VERSION,
           annal_broker_commands(broker),
           *annal_broker_events(broker) ? annal_broker_events(broker) : "(none)", shown,
           curve ? " (CURVE)" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "annald: %s, finishing\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    annal_broker_destroy(&broker);
    return 0;
}
