/* The IPA's ESipa transport on libcoap 4.3.1 (GnuTLS): CON POST of the ESipa body to
 * /gsma/rsp2/asn1 over DTLS (PSK or certificates) or, for tests only, plain UDP; block-wise
 * both ways; one exchange at a time with an overall deadline.
 *
 * Sources: GSMA SGP.32 v1.2 §6.2 (CoAP binding of ESipa: POST, Uri-Path, no Content-Format,
 * RFC 7959 block-wise, DTLS 1.2), §2.6.3 (server-authenticated (D)TLS); RFC 7252 §5.8.2 POST,
 * §4.2 CON/ACK and retransmission; RFC 7959 Block1/Block2 (+ Size1, Request-Tag by libcoap);
 * RFC 4279 PSK; RFC 6125 §6.4 (the server's name must be in the certificate's
 * subjectAltName: dNSName, or iPAddress for an IP literal; no wildcards, no CN fallback);
 * RFC 5280 §4.2.1.6 subjectAltName. libcoap 4.3.1 API and gotchas: DEPENDENCIES.md §3
 * (client token via coap_session_new_token + coap_add_token, coap_io_process(ctx, 0) blocks
 * forever, COAP_BLOCK_USE_LIBCOAP|COAP_BLOCK_SINGLE_BODY, coap_add_data_large_request,
 * coap_new_client_session_psk2, .version = COAP_DTLS_PKI_SETUP_VERSION, wrong PSK ->
 * NACK COAP_NACK_TLS_FAILED). reference/EIM.md §1.5. */
#define _POSIX_C_SOURCE 200809L

#include "provline/ipa/ipa_coap.h"

#include "provline/protocol/clock.h"
#include "provline/protocol/der.h"
#include "provline/protocol/secret.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HOST_MAX     255u
#define PATH_MAX_LEN 255u
#define CA_PATH_MAX  4096u
#define TOKEN_MAX    8u
#define IO_SLICE_MS  250u

struct pl_ipa_coap {
    char host[HOST_MAX + 1];
    char sni[HOST_MAX + 1];
    uint16_t port;
    char path[PATH_MAX_LEN + 1];
    enum pl_ipa_coap_security security;
    char identity[PL_IPA_COAP_PSK_ID_MAX + 1];
    uint8_t key[PL_IPA_COAP_PSK_MAX];
    size_t key_len;
    char ca_file[CA_PATH_MAX + 1];
    unsigned ack_timeout_ms;
    uint16_t max_retransmit;
    void (*log)(void *user, const char *line);
    void *log_user;

    coap_context_t *ctx;
    coap_session_t *session;
    uint8_t *body; /* the request being sent (libcoap reads it until the transfer ends) */
    /* the exchange in progress */
    bool waiting, done, broken;
    bool closed;       /* the session went down during the exchange */
    int closed_result; /* what that means if no NACK explains it */
    int result;
    uint8_t token[TOKEN_MAX];
    size_t token_len;
    struct pl_wr *rsp;
};

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void
coap_ipa_log(const struct pl_ipa_coap *c, const char *fmt, ...)
{
    char line[300];
    va_list ap;

    if (c->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->log(c->log_user, line);
}

/* libcoap logs to stderr by default; a library must not print. Process-wide setting. */
static void coap_log_silent(coap_log_t level, const char *message)
{
    (void)level;
    (void)message;
}

void pl_ipa_coap_config_init(struct pl_ipa_coap_config *c)
{
    memset(c, 0, sizeof(*c));
}

static struct pl_ipa_coap *from_session(coap_session_t *s)
{
    return coap_get_app_data(coap_session_get_context(s));
}

/* ---------------------------------------------------------------- handlers ---- */

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent,
                                   const coap_pdu_t *received, const coap_mid_t mid)
{
    struct pl_ipa_coap *c = from_session(s);
    coap_bin_const_t tok = coap_pdu_get_token(received);
    coap_pdu_code_t code = coap_pdu_get_code(received);
    const uint8_t *data = NULL;
    size_t len = 0, offset = 0, total = 0;

    (void)sent;
    (void)mid;
    if (c == NULL || !c->waiting || c->done)
        return COAP_RESPONSE_OK;
    if (tok.length != c->token_len || (tok.length > 0 && memcmp(tok.s, c->token, tok.length) != 0))
        return COAP_RESPONSE_OK; /* not ours (a late answer to an abandoned exchange) */
    c->done = true;
    if (COAP_RESPONSE_CLASS(code) != 2) {
        coap_ipa_log(c, "eIM answered %d.%02d", COAP_RESPONSE_CLASS(code), (int)(code & 0x1F));
        c->result = PL_ERR_REMOTE;
        return COAP_RESPONSE_OK;
    }
    if (coap_get_data_large(received, &len, &data, &offset, &total)) {
        if (offset != 0 || len != total) {
            coap_ipa_log(c, "incomplete body (%zu of %zu bytes)", len, total);
            c->result = PL_ERR_IO;
            return COAP_RESPONSE_OK;
        }
        pl_wr_bytes(c->rsp, data, len);
    }
    c->result = pl_wr_status(c->rsp) == PL_OK ? PL_OK : PL_ERR_OVERFLOW;
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
    struct pl_ipa_coap *c = from_session(s);

    (void)sent;
    (void)mid;
    if (c == NULL || !c->waiting || c->done)
        return;
    c->done = true;
    c->broken = true;
    switch (reason) {
    case COAP_NACK_TLS_FAILED:
        coap_ipa_log(c, "DTLS handshake failed (key or certificate refused)");
        c->result = PL_ERR_DENIED;
        break;
    case COAP_NACK_TOO_MANY_RETRIES:
        coap_ipa_log(c, "no answer after the retransmissions");
        c->result = PL_ERR_TIMEOUT;
        break;
    default:
        coap_ipa_log(c, "request not delivered (NACK %d)", (int)reason);
        c->result = PL_ERR_IO;
        break;
    }
}

static int on_event(coap_session_t *s, const coap_event_t event)
{
    struct pl_ipa_coap *c = from_session(s);

    if (c == NULL || s != c->session)
        return 0;
    switch (event) {
    case COAP_EVENT_DTLS_ERROR:
    case COAP_EVENT_DTLS_CLOSED:
    case COAP_EVENT_SESSION_CLOSED:
    case COAP_EVENT_SESSION_FAILED:
        /* The NACK that usually follows in the same round tells why (TLS failure, ICMP);
         * the post loop decides if none comes. */
        c->broken = true;
        if (c->waiting && !c->done && !c->closed) {
            c->closed = true;
            c->closed_result = event == COAP_EVENT_DTLS_ERROR ? PL_ERR_DENIED : PL_ERR_IO;
        }
        break;
    case COAP_EVENT_XMIT_BLOCK_FAIL:
        if (c->waiting && !c->done) {
            coap_ipa_log(c, "block-wise transfer failed");
            c->done = true;
            c->result = PL_ERR_IO;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------- certificate name check ---- */

/* Does the DER certificate's subjectAltName name `name` (RFC 6125 §6.4)? */
static bool san_matches(const uint8_t *cert, size_t len, const char *name)
{
    static const uint8_t san_oid[] = {0x55, 0x1D, 0x11};
    uint8_t ip[16];
    size_t ip_len = 0;
    struct pl_der d, c, tbs, exts, seq, ext, gn, names;
    struct pl_tlv t, x, e, oid, val, n;

    if (inet_pton(AF_INET, name, ip) == 1)
        ip_len = 4;
    else if (inet_pton(AF_INET6, name, ip) == 1)
        ip_len = 16;
    pl_der_init(&d, cert, len);
    if (pl_der_expect(&d, PL_TAG_SEQUENCE, &t) != PL_OK || pl_der_enter(&d, &t, &c) != PL_OK
        || pl_der_expect(&c, PL_TAG_SEQUENCE, &t) != PL_OK || pl_der_enter(&c, &t, &tbs) != PL_OK)
        return false;
    /* skip to extensions [3] */
    for (;;) {
        if (pl_der_next(&tbs, &x) != PL_OK)
            return false;
        if (x.tag == 0xA3u)
            break;
    }
    if (pl_der_enter(&tbs, &x, &exts) != PL_OK || pl_der_expect(&exts, PL_TAG_SEQUENCE, &t) != PL_OK
        || pl_der_enter(&exts, &t, &seq) != PL_OK)
        return false;
    while (!pl_der_done(&seq)) {
        bool crit_present;
        if (pl_der_expect(&seq, PL_TAG_SEQUENCE, &e) != PL_OK
            || pl_der_enter(&seq, &e, &ext) != PL_OK
            || pl_der_expect(&ext, PL_TAG_OID, &oid) != PL_OK
            || pl_der_optional(&ext, PL_TAG_BOOLEAN, &x, &crit_present) != PL_OK
            || pl_der_expect(&ext, PL_TAG_OCTET_STRING, &val) != PL_OK)
            return false;
        if (oid.len != sizeof(san_oid) || memcmp(oid.value, san_oid, sizeof(san_oid)) != 0)
            continue;
        pl_der_init(&gn, val.value, val.len);
        if (pl_der_expect(&gn, PL_TAG_SEQUENCE, &t) != PL_OK
            || pl_der_enter(&gn, &t, &names) != PL_OK)
            return false;
        while (!pl_der_done(&names)) {
            if (pl_der_next(&names, &n) != PL_OK)
                return false;
            if (ip_len == 0 && n.tag == 0x82u && n.len == strlen(name)
                && strncasecmp((const char *)n.value, name, n.len) == 0)
                return true;
            if (ip_len != 0 && n.tag == 0x87u && n.len == ip_len
                && memcmp(n.value, ip, ip_len) == 0)
                return true;
        }
        return false;
    }
    return false;
}

static int validate_cn(const char *cn, const uint8_t *asn1_public_cert, size_t asn1_length,
                       coap_session_t *s, unsigned int depth, int validated, void *arg)
{
    struct pl_ipa_coap *c = arg;

    (void)s;
    if (!validated)
        return 0;
    if (depth > 0)
        return 1; /* CA certificates: the chain check already ran */
    if (!san_matches(asn1_public_cert, asn1_length, c->sni)) {
        coap_ipa_log(c, "certificate (CN %s) does not name %s", cn != NULL ? cn : "-", c->sni);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- set-up ---- */

static int parse_uri(struct pl_ipa_coap *c, const struct pl_ipa_coap_config *cfg)
{
    coap_uri_t u;
    const char *path = cfg->path != NULL ? cfg->path : PL_IPA_COAP_DEFAULT_PATH;

    if (cfg->uri == NULL || coap_split_uri((const uint8_t *)cfg->uri, strlen(cfg->uri), &u) != 0)
        return PL_ERR_INVAL;
    if (u.scheme == COAP_URI_SCHEME_COAPS) {
        if (cfg->security == PL_IPA_COAP_PLAIN)
            return PL_ERR_INVAL;
    } else if (u.scheme == COAP_URI_SCHEME_COAP) {
        if (cfg->security != PL_IPA_COAP_PLAIN || !cfg->allow_plain)
            return PL_ERR_INVAL;
    } else {
        return PL_ERR_INVAL;
    }
    if (u.host.length == 0 || u.host.length > HOST_MAX || u.query.length != 0)
        return PL_ERR_INVAL;
    memcpy(c->host, u.host.s, u.host.length);
    c->host[u.host.length] = '\0';
    c->port = u.port;
    if (u.path.length > 0) {
        if (u.path.length > PATH_MAX_LEN)
            return PL_ERR_INVAL;
        memcpy(c->path, u.path.s, u.path.length);
        c->path[u.path.length] = '\0';
    } else {
        if (strlen(path) > PATH_MAX_LEN)
            return PL_ERR_INVAL;
        snprintf(c->path, sizeof(c->path), "%s", path[0] == '/' ? path + 1 : path);
    }
    return PL_OK;
}

int pl_ipa_coap_new(const struct pl_ipa_coap_config *cfg, struct pl_ipa_coap **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_ipa_coap *c = NULL;

    if (out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (cfg == NULL)
        return PL_ERR_INVAL;
    coap_startup();
    coap_set_log_handler(coap_log_silent);
    coap_set_log_level(LOG_EMERG);
    coap_dtls_set_log_level(LOG_EMERG);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PL_ERR_NOMEM;
    c->security = cfg->security;
    c->log = cfg->log;
    c->log_user = cfg->log_user;
    c->ack_timeout_ms = cfg->ack_timeout_ms != 0 ? cfg->ack_timeout_ms : 2000u;
    if (cfg->max_retransmit > 20u || cfg->ack_timeout_ms > 60000u) {
        rc = PL_ERR_INVAL;
        goto out;
    }
    c->max_retransmit = (uint16_t)(cfg->max_retransmit != 0 ? cfg->max_retransmit : 4u);
    if ((rc = parse_uri(c, cfg)) != PL_OK) {
        coap_ipa_log(c, "bad eIM URI or scheme/security mismatch");
        goto out;
    }
    if (cfg->server_name != NULL
        && (cfg->server_name[0] == '\0' || strlen(cfg->server_name) > HOST_MAX)) {
        rc = PL_ERR_INVAL;
        goto out;
    }
    snprintf(c->sni, sizeof(c->sni), "%s", cfg->server_name != NULL ? cfg->server_name : c->host);
    switch (cfg->security) {
    case PL_IPA_COAP_PSK:
        if (cfg->psk_identity == NULL || cfg->psk_identity[0] == '\0'
            || strlen(cfg->psk_identity) > PL_IPA_COAP_PSK_ID_MAX || cfg->psk == NULL
            || cfg->psk_len == 0 || cfg->psk_len > PL_IPA_COAP_PSK_MAX) {
            rc = PL_ERR_INVAL;
            goto out;
        }
        snprintf(c->identity, sizeof(c->identity), "%s", cfg->psk_identity);
        memcpy(c->key, cfg->psk, cfg->psk_len);
        c->key_len = cfg->psk_len;
        break;
    case PL_IPA_COAP_CERT:
        if (cfg->ca_file == NULL || cfg->ca_file[0] == '\0' || strlen(cfg->ca_file) > CA_PATH_MAX) {
            rc = PL_ERR_INVAL;
            goto out;
        }
        snprintf(c->ca_file, sizeof(c->ca_file), "%s", cfg->ca_file);
        break;
    case PL_IPA_COAP_PLAIN:
        break;
    default:
        rc = PL_ERR_INVAL;
        goto out;
    }
    if (cfg->security != PL_IPA_COAP_PLAIN && !coap_dtls_is_supported()) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    c->ctx = coap_new_context(NULL);
    if (c->ctx == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    coap_context_set_block_mode(c->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_register_response_handler(c->ctx, on_response);
    coap_register_nack_handler(c->ctx, on_nack);
    coap_register_event_handler(c->ctx, on_event);
    coap_set_app_data(c->ctx, c);
    *out = c;
    c = NULL;
    rc = PL_OK;
out:
    pl_ipa_coap_free(c);
    return rc;
}

static void drop_session(struct pl_ipa_coap *c)
{
    if (c->session != NULL) {
        coap_session_release(c->session);
        c->session = NULL;
    }
    free(c->body);
    c->body = NULL;
    c->broken = false;
}

void pl_ipa_coap_free(struct pl_ipa_coap *c)
{
    if (c == NULL)
        return;
    drop_session(c);
    if (c->ctx != NULL)
        coap_free_context(c->ctx);
    pl_memzero(c->key, sizeof(c->key));
    free(c);
}

struct pl_esipa_transport_ops pl_ipa_coap_transport(struct pl_ipa_coap *c)
{
    struct pl_esipa_transport_ops t = {pl_ipa_coap_post, c};
    return t;
}

static int resolve(const struct pl_ipa_coap *c, coap_address_t *dst)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)c->port);
    if ((rc = getaddrinfo(c->host, port, &hints, &res)) != 0 || res == NULL) {
        coap_ipa_log(c, "cannot resolve %s: %s", c->host, gai_strerror(rc));
        return PL_ERR_IO;
    }
    coap_address_init(dst);
    if (res->ai_addrlen > sizeof(dst->addr)) {
        freeaddrinfo(res);
        return PL_ERR_IO;
    }
    dst->size = res->ai_addrlen;
    memcpy(&dst->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return PL_OK;
}

static int connect_session(struct pl_ipa_coap *c)
{
    coap_address_t dst;
    coap_fixed_point_t ack = {(uint16_t)(c->ack_timeout_ms / 1000u),
                              (uint16_t)(c->ack_timeout_ms % 1000u)};
    int rc;

    if ((rc = resolve(c, &dst)) != PL_OK)
        return rc;
    if (c->security == PL_IPA_COAP_PSK) {
        coap_dtls_cpsk_t setup;
        memset(&setup, 0, sizeof(setup));
        setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
        setup.client_sni = c->sni;
        setup.psk_info.identity.s = (const uint8_t *)c->identity;
        setup.psk_info.identity.length = strlen(c->identity);
        setup.psk_info.key.s = c->key;
        setup.psk_info.key.length = c->key_len;
        c->session = coap_new_client_session_psk2(c->ctx, NULL, &dst, COAP_PROTO_DTLS, &setup);
    } else if (c->security == PL_IPA_COAP_CERT) {
        coap_dtls_pki_t setup;
        memset(&setup, 0, sizeof(setup));
        setup.version = COAP_DTLS_PKI_SETUP_VERSION;
        setup.verify_peer_cert = 1;
        setup.check_common_ca = 0;
        setup.allow_self_signed = 0;
        setup.allow_expired_certs = 0;
        setup.cert_chain_validation = 1;
        setup.cert_chain_verify_depth = 3;
        setup.validate_cn_call_back = validate_cn;
        setup.cn_call_back_arg = c;
        setup.client_sni = c->sni;
        setup.pki_key.key_type = COAP_PKI_KEY_PEM;
        setup.pki_key.key.pem.ca_file = c->ca_file;
        c->session = coap_new_client_session_pki(c->ctx, NULL, &dst, COAP_PROTO_DTLS, &setup);
    } else {
        c->session = coap_new_client_session(c->ctx, NULL, &dst, COAP_PROTO_UDP);
    }
    if (c->session == NULL) {
        coap_ipa_log(c, "cannot create the CoAP session to %s:%u", c->host, (unsigned)c->port);
        return c->security == PL_IPA_COAP_CERT ? PL_ERR_CONFIG : PL_ERR_IO;
    }
    coap_session_set_ack_timeout(c->session, ack);
    coap_session_set_max_retransmit(c->session, c->max_retransmit);
    return PL_OK;
}

static int build_request(struct pl_ipa_coap *c, const uint8_t *req, size_t len, coap_pdu_t **out)
{
    coap_pdu_t *pdu;
    const char *seg = c->path;

    *out = NULL;
    pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, coap_new_message_id(c->session),
                        coap_session_max_pdu_size(c->session));
    if (pdu == NULL)
        return PL_ERR_NOMEM;
    coap_session_new_token(c->session, &c->token_len, c->token);
    if (!coap_add_token(pdu, c->token_len, c->token))
        goto fail;
    while (*seg != '\0') {
        const char *end = strchr(seg, '/');
        size_t n = end != NULL ? (size_t)(end - seg) : strlen(seg);
        if (n > 0 && coap_add_option(pdu, COAP_OPTION_URI_PATH, n, (const uint8_t *)seg) == 0)
            goto fail;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    if (len > 0) {
        c->body = malloc(len);
        if (c->body == NULL)
            goto fail;
        memcpy(c->body, req, len);
        if (!coap_add_data_large_request(c->session, pdu, len, c->body, NULL, NULL))
            goto fail;
    }
    *out = pdu;
    return PL_OK;
fail:
    coap_delete_pdu(pdu);
    return PL_ERR_NOMEM;
}

int pl_ipa_coap_post(void *user, const uint8_t *req, size_t len, struct pl_wr *rsp, int timeout_ms)
{
    struct pl_ipa_coap *c = user;
    coap_pdu_t *pdu = NULL;
    uint64_t deadline;
    int rc;

    if (c == NULL || rsp == NULL || timeout_ms <= 0 || (req == NULL && len > 0))
        return PL_ERR_INVAL;
    if (c->broken)
        drop_session(c);
    free(c->body); /* the previous exchange is over */
    c->body = NULL;
    if (c->session == NULL && (rc = connect_session(c)) != PL_OK)
        return rc;
    if ((rc = build_request(c, req, len, &pdu)) != PL_OK)
        return rc;
    c->rsp = rsp;
    c->waiting = true;
    c->done = false;
    c->closed = false;
    c->result = PL_ERR_TIMEOUT;
    if (coap_send(c->session, pdu) == COAP_INVALID_MID) {
        coap_ipa_log(c, "request not sent");
        c->waiting = false;
        c->rsp = NULL;
        drop_session(c);
        return PL_ERR_IO;
    }
    deadline = pl_clock_monotonic_ms(NULL) + (uint64_t)timeout_ms;
    while (!c->done) {
        uint64_t now = pl_clock_monotonic_ms(NULL);
        if (now >= deadline)
            break;
        uint64_t wait = deadline - now;
        if (wait > IO_SLICE_MS)
            wait = IO_SLICE_MS;
        /* never 0: coap_io_process(ctx, 0) waits forever (DEPENDENCIES.md §3) */
        if (coap_io_process(c->ctx, (uint32_t)(wait > 0 ? wait : 1)) < 0) {
            c->result = PL_ERR_IO;
            c->broken = true;
            break;
        }
        if (!c->done && c->closed) {
            /* let a NACK still queued explain the close before deciding */
            if (coap_io_process(c->ctx, COAP_IO_NO_WAIT) < 0)
                c->broken = true;
        }
        if (!c->done && c->closed) {
            if (c->closed_result == PL_ERR_DENIED)
                coap_ipa_log(c, "DTLS error");
            c->done = true;
            c->result = c->closed_result;
        }
    }
    rc = c->result;
    if (!c->done && rc == PL_ERR_TIMEOUT) {
        coap_ipa_log(c, "no answer within %d ms", timeout_ms);
        c->broken = true; /* abandon the exchange: a late answer must not be taken */
    }
    c->waiting = false;
    c->rsp = NULL;
    if (c->broken)
        drop_session(c);
    return rc;
}
