/* provline-vdevice, CoAP mode: a libcoap 4.3.1 server with one resource (POST /fpa) taking a
 * fixture request as the body and answering the FPA's response as the body, block-wise both
 * ways (COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY), over UDP or DTLS-PSK
 * (coap_context_set_psk2, identity checked).
 *
 * Packet faults (--drop-rate, --corrupt-rate, --unplug-after-bytes) need packets to act on:
 * with any of them the server listens on an internal loopback port and a small UDP relay on
 * the public port carries every datagram between the station and the server, dropping a
 * datagram with probability P or flipping one byte of it with probability P, each direction.
 *
 * Sources: RFC 7252 (§5.8.2 POST, §5.9.1.4 2.04 Changed, §4.2 CON / ACK), RFC 7959
 * (Block1/Block2), RFC 4279 (PSK identity); libcoap 4.3.1 API and DEPENDENCIES.md §3 (block
 * mode on the context, coap_add_data_large_response, coap_get_data_large, COAP_IO_NO_WAIT,
 * syslog LOG_* levels); docs/fixture-protocol.md §5.3, §6. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "provline/proto/fx_msg.h"
#include "vdevice.h"

struct vcoap {
    struct vdev *v;
    coap_context_t *ctx;
    coap_bin_const_t psk; /* for the identity check */
    /* the fault relay (fds -1 when off) */
    int pub;                 /* the public socket the station talks to */
    int up;                  /* connected to the internal server endpoint */
    struct sockaddr_storage client;
    socklen_t client_len;
};

static void release_rsp(coap_session_t *session, void *app_ptr)
{
    (void)session;
    free(app_ptr);
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void hnd_post(coap_resource_t *resource, coap_session_t *session,
                     const coap_pdu_t *request, const coap_string_t *query, coap_pdu_t *response)
{
    struct vcoap *c = coap_get_app_data(coap_session_get_context(session));
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    struct pl_wr out;

    if (!coap_get_data_large(request, &len, &data, &offset, &total) || offset != 0
        || len != total) {
        vdev_log("coap: request without a complete body");
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_BAD_REQUEST);
        return;
    }
    if (len > PL_FX_MSG_MAX) {
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE);
        return;
    }
    pl_wr_init_dyn(&out, PL_FX_MSG_MAX);
    int rc = vdev_handle(c->v, data, len, &out);
    if (rc != PL_OK || out.len == 0) {
        vdev_log("coap: no answer could be built: %s", pl_strerror(rc));
        pl_wr_free(&out);
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
        return;
    }
    if (c->v->f.delay_ms > 0)
        sleep_ms(c->v->f.delay_ms);
    size_t n = 0;
    uint8_t *body = pl_wr_take(&out, &n);
    pl_wr_free(&out);
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_CHANGED);
    /* libcoap owns body from here: release_rsp frees it when the transfer ends. */
    if (!coap_add_data_large_response(resource, session, request, response, query,
                                      COAP_MEDIATYPE_APPLICATION_OCTET_STREAM, -1, 0, n, body,
                                      release_rsp, body)) {
        vdev_log("coap: cannot attach the answer");
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
    }
}

static const coap_bin_const_t *check_identity(coap_bin_const_t *identity,
                                              coap_session_t *session, void *arg)
{
    struct vcoap *c = arg;
    (void)session;
    const char *want = c->v->psk_id;
    if (identity == NULL || identity->length != strlen(want)
        || memcmp(identity->s, want, identity->length) != 0) {
        vdev_log("coap: DTLS client with an unknown PSK identity refused");
        return NULL;
    }
    return &c->psk;
}

static int parse_hostport(const char *s, struct sockaddr_in *sin)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || colon[1] == '\0' || port > 65535)
        return -1;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/* The port of an endpoint, from coap_endpoint_str ("127.0.0.1:5683 UDP"). */
static int endpoint_port(coap_endpoint_t *ep)
{
    const char *d = coap_endpoint_str(ep);
    const char *sp = d != NULL ? strchr(d, ' ') : NULL;
    const char *colon = NULL;
    for (const char *p = d; p != NULL && *p != '\0' && p != sp; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL)
        return -1;
    int port = atoi(colon + 1);
    return port > 0 && port <= 65535 ? port : -1;
}

/* ---- the fault relay ---- */

static int relay_open(struct vcoap *c, const struct sockaddr_in *pub, uint16_t inner_port,
                      uint16_t *pub_port)
{
    struct sockaddr_in a = *pub, in;
    socklen_t al = sizeof(a);
    c->pub = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->up = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->pub < 0 || c->up < 0 || bind(c->pub, (const struct sockaddr *)&a, sizeof(a)) != 0
        || getsockname(c->pub, (struct sockaddr *)&a, &al) != 0) {
        vdev_log("coap: relay socket: %s", strerror(errno));
        return -1;
    }
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons(inner_port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->up, (const struct sockaddr *)&in, sizeof(in)) != 0) {
        vdev_log("coap: relay connect: %s", strerror(errno));
        return -1;
    }
    *pub_port = ntohs(a.sin_port);
    return 0;
}

/* One datagram through the relay: dropped, corrupted or passed on. */
static bool relay_fault(struct vdev_faults *f, uint8_t *buf, size_t n)
{
    if (f->drop > 0.0 && vdev_rand01(f) < f->drop) {
        f->dropped++;
        return false;
    }
    if (n > 0 && f->corrupt > 0.0 && vdev_rand01(f) < f->corrupt) {
        buf[(size_t)(vdev_rand01(f) * (double)n) % n] ^= vdev_rand_byte(f);
        f->corrupted++;
    }
    return true;
}

static void relay_pump(struct vcoap *c)
{
    uint8_t buf[2048];
    struct vdev_faults *f = &c->v->f;
    for (;;) { /* station -> server */
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t r = recvfrom(c->pub, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            break;
        memcpy(&c->client, &from, fl);
        c->client_len = fl;
        f->bytes_in += (uint64_t)r;
        if (f->unplug_after > 0 && f->bytes_in >= f->unplug_after) {
            close(c->pub);
            close(c->up);
            vdev_unplug(c->v);
        }
        if (relay_fault(f, buf, (size_t)r) && send(c->up, buf, (size_t)r, 0) < 0)
            vdev_log("coap: relay to the server: %s", strerror(errno));
    }
    for (;;) { /* server -> station */
        ssize_t r = recv(c->up, buf, sizeof(buf), 0);
        if (r < 0)
            break;
        if (c->client_len == 0)
            continue;
        if (relay_fault(f, buf, (size_t)r)
            && sendto(c->pub, buf, (size_t)r, 0, (const struct sockaddr *)&c->client,
                      c->client_len) < 0)
            vdev_log("coap: relay to the station: %s", strerror(errno));
    }
}

int vdev_run_coap(struct vdev *v)
{
    struct vcoap c;
    struct sockaddr_in pub;
    coap_address_t addr;
    int exit_code = VDEV_EXIT_RUNTIME;
    bool relay = vdev_any_packet_fault(&v->f);
    bool dtls = v->psk_id != NULL;

    memset(&c, 0, sizeof(c));
    c.v = v;
    c.pub = c.up = -1;
    if (parse_hostport(v->coap, &pub) != 0) {
        vdev_log("coap: --coap needs IPv4:PORT, got %s", v->coap);
        return VDEV_EXIT_USAGE;
    }
    coap_startup();
    coap_set_log_level(LOG_ERR);
    coap_dtls_set_log_level(LOG_ERR);
    if (dtls && !coap_dtls_is_supported()) {
        vdev_log("coap: this libcoap has no DTLS");
        return VDEV_EXIT_USAGE;
    }
    c.ctx = coap_new_context(NULL);
    if (c.ctx == NULL)
        goto out;
    coap_set_app_data(c.ctx, &c);
    coap_context_set_block_mode(c.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    if (dtls) {
        coap_dtls_spsk_t sp;
        memset(&sp, 0, sizeof(sp));
        sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
        sp.validate_id_call_back = check_identity;
        sp.id_call_back_arg = &c;
        sp.psk_info.key.s = v->psk;
        sp.psk_info.key.length = v->psk_len;
        c.psk.s = v->psk;
        c.psk.length = v->psk_len;
        if (!coap_context_set_psk2(c.ctx, &sp)) {
            vdev_log("coap: cannot set the PSK");
            goto out;
        }
    }
    coap_address_init(&addr);
    addr.addr.sin = pub;
    addr.size = sizeof(addr.addr.sin);
    if (relay) {
        /* The server on an internal port; the relay owns the public one. */
        addr.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.addr.sin.sin_port = 0;
    }
    coap_endpoint_t *ep = coap_new_endpoint(c.ctx, &addr, dtls ? COAP_PROTO_DTLS : COAP_PROTO_UDP);
    int port = ep != NULL ? endpoint_port(ep) : -1;
    if (port < 0) {
        vdev_log("coap: cannot listen on %s", v->coap);
        goto out;
    }
    coap_resource_t *r = coap_resource_init(
        coap_make_str_const(v->resource != NULL ? v->resource : "fpa"), 0);
    if (r == NULL)
        goto out;
    coap_register_handler(r, COAP_REQUEST_POST, hnd_post);
    coap_add_resource(c.ctx, r);
    uint16_t pub_port = (uint16_t)port;
    if (relay && relay_open(&c, &pub, (uint16_t)port, &pub_port) != 0)
        goto out;
    char host[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &pub.sin_addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    vdev_log("coap: %s on %s:%u resource=/%s%s", dtls ? "DTLS-PSK" : "UDP", host,
             (unsigned)pub_port, v->resource != NULL ? v->resource : "fpa",
             relay ? " (fault relay)" : "");
    printf("READY coap %s:%u %s\n", host, (unsigned)pub_port, dtls ? "dtls" : "udp");
    fflush(stdout);

    while (!*v->stop) {
        coap_tick_t now;
        coap_ticks(&now);
        unsigned int t = coap_io_prepare_epoll(c.ctx, now);
        int timeout = (t == 0 || t > 200u) ? 200 : (int)t;
        struct pollfd pf[3];
        nfds_t nf = 0;
        pf[nf++] = (struct pollfd){.fd = coap_context_get_coap_fd(c.ctx), .events = POLLIN};
        if (relay) {
            pf[nf++] = (struct pollfd){.fd = c.pub, .events = POLLIN};
            pf[nf++] = (struct pollfd){.fd = c.up, .events = POLLIN};
        }
        if (pf[0].fd < 0)
            timeout = timeout > 10 ? 10 : timeout;
        int pr = poll(pf[0].fd < 0 ? pf + 1 : pf, pf[0].fd < 0 ? nf - 1 : nf, timeout);
        if (pr < 0 && errno != EINTR) {
            vdev_log("coap: poll: %s", strerror(errno));
            goto out;
        }
        if (relay)
            relay_pump(&c);
        if (coap_io_process(c.ctx, COAP_IO_NO_WAIT) < 0) {
            vdev_log("coap: I/O processing failed");
            goto out;
        }
        if (relay)
            relay_pump(&c);
    }
    exit_code = VDEV_EXIT_OK;
out:
    if (c.ctx != NULL)
        coap_free_context(c.ctx);
    if (c.pub >= 0)
        close(c.pub);
    if (c.up >= 0)
        close(c.up);
    return exit_code;
}
