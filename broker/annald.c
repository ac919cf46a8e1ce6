/*  annald: the annal event store daemon. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annal_broker.h"
#include "annal_limits.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: annald [options]\n"
            "  --data DIR             data folder (default ./data)\n"
            "  --commands ENDPOINT    ROUTER endpoint for commands (default tcp://127.0.0.1:5555)\n"
            "  --events ENDPOINT      PUB endpoint for events (default tcp://127.0.0.1:5556)\n"
            "  --pub-format FORMAT    msgpack (default) or json\n"
            "  --max-body BYTES       request body limit (default %d)\n"
            "  --max-count N          server cap on max_count of read/read_all (default %d)\n"
            "  --pub-hwm N            events queued per subscriber before PUB drops (default %d)\n"
            "  --help                 this text\n"
            "  --version              the version\n"
            "Endpoints may use a wildcard port (tcp://127.0.0.1:*); annald prints the\n"
            "endpoints it bound on its first line of output.\n",
            ANNAL_MAX_BODY_DEFAULT, ANNAL_READ_CAP_DEFAULT, ANNAL_PUB_HWM_DEFAULT);
}

/* Parses a positive size; -1 when text is not one. */
static long long s_size(const char *text)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v <= 0)
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    annal_broker_config_t config = {
        .store = "./data",
        .commands = "tcp://127.0.0.1:5555",
        .events = "tcp://127.0.0.1:5556",
        .pub_format = ANNAL_ENC_MSGPACK,
    };
    static const struct option options[] = {
        {"data", required_argument, 0, 'd'},     {"commands", required_argument, 0, 'c'},
        {"events", required_argument, 0, 'e'},   {"pub-format", required_argument, 0, 'p'},
        {"max-body", required_argument, 0, 'b'}, {"max-count", required_argument, 0, 'm'},
        {"pub-hwm", required_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},           {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int opt;
    long long v;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'd': config.store = optarg; break;
        case 'c': config.commands = optarg; break;
        case 'e': config.events = optarg; break;
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
        case 'b':
            if ((v = s_size(optarg)) < 0) {
                fprintf(stderr, "annald: --max-body must be a positive number of bytes\n");
                return 2;
            }
            config.max_body = (size_t) v;
            break;
        case 'm':
            if ((v = s_size(optarg)) < 0) {
                fprintf(stderr, "annald: --max-count must be a positive number\n");
                return 2;
            }
            config.read_cap = (size_t) v;
            break;
        case 'H':
            if ((v = s_size(optarg)) < 0 || v > INT32_MAX) {
                fprintf(stderr, "annald: --pub-hwm must be a positive number\n");
                return 2;
            }
            config.pub_hwm = (int) v;
            break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("annald %s\n", ANNAL_VERSION); return 0;
        default:
            fprintf(stderr, "annald: unknown or incomplete option '%s'\n", argv[optind - 1]);
            s_usage(stderr);
            return 2;
        }
    }
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
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char why[512];
    annal_broker_t *broker = annal_broker_new(&config, why, sizeof why);
    if (!broker) {
        fprintf(stderr, "annald: %s\n", why);
        return 1;
    }
    printf("annald %s ready: commands %s events %s store %s\n", ANNAL_VERSION,
           annal_broker_commands(broker),
           *annal_broker_events(broker) ? annal_broker_events(broker) : "(none)", config.store);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "annald: %s, finishing\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    annal_broker_destroy(&broker);
    return 0;
}
