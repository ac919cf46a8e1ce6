/*  annal-bridge: the harness's line protocol on stdin/stdout
    (docs/protocol.md, section 3), served by an embedded broker on a throwaway store, or by a
    running annald (--connect). */
#define _XOPEN_SOURCE 700
#include <czmq.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annal_broker.h"
#include "annal_codec.h"
#include "annal_curve_private.h"
#include "annal_line.h"

#define REPLY_TIMEOUT_MS 30000

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static int s_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

/* A DEALER to endpoint (over CURVE when curve is given), or NULL. */
static zsock_t *s_connect(const char *endpoint, const annal_curve_t *curve)
{
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    if (!dealer)
        return NULL;
    zsock_set_rcvtimeo(dealer, REPLY_TIMEOUT_MS);
    zsock_set_linger(dealer, 0);
    if (annal_curve_apply(zsock_resolve(dealer), curve)
        || zsock_connect(dealer, "%s", endpoint) < 0)
        zsock_destroy(&dealer);
    return dealer;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: annal-bridge [options]\n"
            "Reads {\"src\",\"dest\",\"body\"} lines on stdin, answers each on stdout.\n"
            "  --data DIR           keep the store in DIR (default: a fresh temporary store,\n"
            "                       removed at exit)\n"
            "  --connect ENDPOINT   forward to a running annald instead of an embedded broker\n"
            "  --curve-key FILE     with --connect: this client's CURVE secret certificate\n"
            "  --curve-server FILE  with --connect: annald's public certificate\n"
            "  --commands ENDPOINT  also bind the embedded broker's commands here\n"
            "  --events ENDPOINT    bind the embedded broker's events here\n"
            "  --pub-format FORMAT  msgpack (default) or json\n"
            "  --help, --version\n");
}

/* The error reply the bridge itself gives when the broker does not answer. */
static char *s_local_error(const annal_line_t *msg, const char *text)
{
    annal_body_t *reply = annal_body_new();
    uint8_t *out = NULL;
    size_t len = 0;
    int64_t msg_id = 0;
    bool has_id = annal_line_msg_id(msg, &msg_id);
    if (reply) {
        annal_body_error(reply, has_id, msg_id, ANNAL_ERR_UNAVAILABLE, text);
        annal_body_encode(reply, ANNAL_ENC_JSON, &out, &len);
        annal_body_destroy(&reply);
    }
    return (char *) out;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *connect = NULL, *commands = NULL, *events = NULL;
    const char *curve_key = NULL, *curve_server = NULL;
    annal_encoding_t pub_format = ANNAL_ENC_MSGPACK;
    static const struct option options[] = {
        {"data", required_argument, 0, 'd'},
        {"connect", required_argument, 0, 'C'},
        {"commands", required_argument, 0, 'c'},
        {"events", required_argument, 0, 'e'},
        {"pub-format", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"curve-key", required_argument, 0, 'k'},
        {"curve-server", required_argument, 0, 's'},
        {0, 0, 0, 0},
    };
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'd': data = optarg; break;
        case 'C': connect = optarg; break;
        case 'c': commands = optarg; break;
        case 'e': events = optarg; break;
        case 'k': curve_key = optarg; break;
        case 's': curve_server = optarg; break;
        case 'p':
            if (strcmp(optarg, "json") == 0)
                pub_format = ANNAL_ENC_JSON;
            else if (strcmp(optarg, "msgpack") != 0) {
                fprintf(stderr, "annal-bridge: --pub-format must be msgpack or json\n");
                return 2;
            }
            break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("annal-bridge %s\n", ANNAL_VERSION); return 0;
        default:
            fprintf(stderr, "annal-bridge: unknown or incomplete option '%s'\n", argv[optind - 1]);
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc || (connect && (data || commands || events))) {
        fprintf(stderr, "annal-bridge: --connect excludes --data, --commands and --events\n");
        return 2;
    }
    if (!curve_key != !curve_server || (curve_key && !connect)) {
        fprintf(stderr, "annal-bridge: --curve-key and --curve-server go together, with "
                        "--connect\n");
        return 2;
    }
    annal_curve_t keys, *curve = curve_key ? &keys : NULL;
    if (curve && annal_curve_load(curve, curve_key, curve_server)) {
        fprintf(stderr, "annal-bridge: cannot read the CURVE keys from %s and %s\n", curve_key,
                curve_server);
        return 2;
    }
    zsys_handler_set(NULL);
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char temp[4096] = "";
    char inproc[128];
    annal_broker_t *broker = NULL;
    int status = 0;
    if (!connect) {
        if (!data) {
            const char *tmp = getenv("TMPDIR");
            snprintf(temp, sizeof temp, "%s/annal-bridge-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(temp)) {
                fprintf(stderr, "annal-bridge: cannot create a temporary store: %s\n",
                        strerror(errno));
                return 1;
            }
            data = temp;
        }
        snprintf(inproc, sizeof inproc, "inproc://annal-bridge-%ld", (long) getpid());
        annal_broker_config_t config = {
            .store = data,
            .commands = commands ? commands : inproc,
            .events = events,
            .pub_format = pub_format,
        };
        char why[512];
        broker = annal_broker_new(&config, why, sizeof why);
        if (!broker) {
            fprintf(stderr, "annal-bridge: %s\n", why);
            status = 1;
            goto cleanup;
        }
        connect = annal_broker_commands(broker);
    }
    zsock_t *dealer = s_connect(connect, curve);
    if (!dealer) {
        fprintf(stderr, "annal-bridge: cannot connect to %s\n", connect);
        status = 1;
        goto cleanup;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!s_stop && (n = getline(&line, &cap, stdin)) >= 0) {
        annal_line_t *msg = NULL;
        char why[256];
        int rc = annal_line_parse(line, (size_t) n, &msg, why, sizeof why);
        if (rc == 1)
            continue;
        if (rc < 0) {
            fprintf(stderr, "annal-bridge: skipped a line that is not a JSON object: %s\n", why);
            continue;
        }
        size_t blen;
        const char *body = annal_line_body(msg, &blen);
        zframe_t *frame = zframe_new(body, blen);
        char *reply_text = NULL;
        zframe_t *reply = NULL;
        if (zframe_send(&frame, dealer, 0) == 0)
            reply = zframe_recv(dealer);
        char *out;
        if (reply)
            out = annal_line_reply(msg, zframe_data(reply), zframe_size(reply));
        else {
            /* a late reply must not answer the next line: start a new socket */
            zsock_destroy(&dealer);
            dealer = s_connect(connect, curve);
            if (!dealer) {
                fprintf(stderr, "annal-bridge: cannot reconnect to %s\n", connect);
                status = 1;
            }
            reply_text = s_local_error(msg, "the broker did not answer in time");
            out = reply_text ? annal_line_reply(msg, (uint8_t *) reply_text, strlen(reply_text))
                             : NULL;
        }
        if (out) {
            fputs(out, stdout);
            fflush(stdout);
        }
        else
            fprintf(stderr, "annal-bridge: could not write a reply line\n");
        free(out);
        free(reply_text);
        zframe_destroy(&reply);
        annal_line_destroy(&msg);
        if (!dealer)
            break;
    }
    free(line);
    zsock_destroy(&dealer);
cleanup:
    annal_broker_destroy(&broker);
    if (*temp)
        nftw(temp, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
