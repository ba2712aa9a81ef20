/* The ESipa CoAP server: one POST resource (default /gsma/rsp2/asn1) on a DTLS endpoint
 * (PSK with per-device identities from the store, and/or the eIM's certificate), or plain
 * UDP for tests behind an explicit flag.
 * GSMA SGP.32 v1.2 §6.2 (CoAP binding), §6.1 (ASN.1 binding), §2.6.3 (DTLS 1.2); IETF RFC 7252
 * (CoAP), RFC 7959 (block-wise; §2.9.3 4.13 with Size1), RFC 4279 (TLS-PSK).
 * libcoap 4.3.1 with GnuTLS (reference/DEPENDENCIES.md §3).
 *
 * Block-wise request bodies are reassembled here, not by libcoap: with
 * COAP_BLOCK_SINGLE_BODY libcoap 4.3.1 allocates whatever Size1 a client announces (and grows
 * the body to any block number) before the handler runs, so a body cap could only be
 * checked after the memory was spent. libcoap still does Block2 for the answers
 * (coap_add_data_large_response) and the 2.31 Continue bookkeeping of Block1. Decision:
 * docs/eim-engine.md §7. */
#define _POSIX_C_SOURCE 200809L

#include "provline/eim/esipa_server.h"

#include "eim_engine_internal.h"
#include "provline/protocol/clock.h"
#include "provline/protocol/secret.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTIAL_IDLE_MS       60000u /* a block-wise body not continued for this long is dropped */
#define PL_EIM_ESIPA_PATH_MAX 4096u

struct partial {
    coap_session_t *session; /* NULL: free slot */
    uint8_t *buf;
    size_t len;
    uint64_t touched_ms;
};

struct pl_eim_esipa_server {
    coap_context_t *ctx;
    coap_endpoint_t *ep;
    struct pl_eim_engine *eng;
    struct pl_eim_store *store;
    size_t max_body;
    uint16_t port;
    char hint[64];
    char cert_file[PL_EIM_ESIPA_PATH_MAX]; /* libcoap keeps the pointers: owned copies */
    char key_file[PL_EIM_ESIPA_PATH_MAX];
    char ca_file[PL_EIM_ESIPA_PATH_MAX];
    uint8_t psk_key[PL_EIM_PSK_KEY_MAX];
    coap_bin_const_t psk_reply;
    struct partial partial[PL_EIM_ESIPA_MAX_PARTIAL];
};

/* ---- block-wise reassembly ---- */

static void partial_drop(struct partial *p)
{
    if (p->buf != NULL) {
        pl_memzero(p->buf, p->len);
        free(p->buf);
    }
    memset(p, 0, sizeof(*p));
}

static struct partial *partial_find(struct pl_eim_esipa_server *s, coap_session_t *session)
{
    for (size_t i = 0; i < PL_EIM_ESIPA_MAX_PARTIAL; i++) {
        if (s->partial[i].session == session)
            return &s->partial[i];
    }
    return NULL;
}

/* A fresh slot for session: a free one, else the least recently used. */
static struct partial *partial_new(struct pl_eim_esipa_server *s, coap_session_t *session)
{
    struct partial *best = NULL;
    for (size_t i = 0; i < PL_EIM_ESIPA_MAX_PARTIAL; i++) {
        struct partial *p = &s->partial[i];
        if (p->session == NULL) {
            best = p;
            break;
        }
        if (best == NULL || p->touched_ms < best->touched_ms)
            best = p;
    }
    partial_drop(best);
    best->buf = malloc(s->max_body);
    if (best->buf == NULL)
        return NULL;
    best->session = session;
    best->touched_ms = pl_clock_monotonic_ms(NULL);
    return best;
}

static void partial_expire(struct pl_eim_esipa_server *s)
{
    uint64_t now = pl_clock_monotonic_ms(NULL);
    for (size_t i = 0; i < PL_EIM_ESIPA_MAX_PARTIAL; i++) {
        struct partial *p = &s->partial[i];
        if (p->session != NULL && now - p->touched_ms > PARTIAL_IDLE_MS)
            partial_drop(p);
    }
}

static int event_handler(coap_session_t *session, const coap_event_t event)
{
    struct pl_eim_esipa_server *s = coap_get_app_data(coap_session_get_context(session));
    if (s == NULL)
        return 0;
    if (event == COAP_EVENT_SERVER_SESSION_DEL || event == COAP_EVENT_DTLS_CLOSED
        || event == COAP_EVENT_DTLS_ERROR) {
        struct partial *p = partial_find(s, session);
        if (p != NULL)
            partial_drop(p);
    }
    return 0;
}

/* ---- PSK ---- */

/* RFC 4279: the identity selects the key; libcoap duplicates what is returned. An unknown
 * identity (or a device without a key) returns NULL and the handshake fails. */
static const coap_bin_const_t *psk_lookup(coap_bin_const_t *identity, coap_session_t *session,
                                          void *arg)
{
    struct pl_eim_esipa_server *s = arg;
    struct pl_eim_device dev;
    char id[PL_EIM_PSK_ID_MAX + 1];
    (void)session;
    pl_memzero(s->psk_key, sizeof(s->psk_key));
    if (identity == NULL || identity->length == 0 || identity->length > PL_EIM_PSK_ID_MAX
        || memchr(identity->s, 0, identity->length) != NULL)
        return NULL;
    memcpy(id, identity->s, identity->length);
    id[identity->length] = '\0';
    memset(&dev, 0, sizeof(dev));
    if (pl_eim_store_device_find_psk(s->store, id, &dev) != PL_OK)
        return NULL;
    const coap_bin_const_t *ret = NULL;
    if (dev.psk_key != NULL && dev.psk_key_len > 0 && dev.psk_key_len <= sizeof(s->psk_key)) {
        memcpy(s->psk_key, dev.psk_key, dev.psk_key_len);
        s->psk_reply.s = s->psk_key;
        s->psk_reply.length = dev.psk_key_len;
        ret = &s->psk_reply;
    }
    pl_eim_device_clear(&dev);
    return ret;
}

/* The EID bound to the session's PSK identity. PL_ERR_NOT_FOUND: not a PSK session;
 * PL_ERR_DENIED: an identity no longer registered. */
static int session_eid(struct pl_eim_esipa_server *s, coap_session_t *session,
                       uint8_t eid[PL_EIM_EID_LEN])
{
    const coap_bin_const_t *identity = coap_session_get_psk_identity(session);
    if (coap_session_get_proto(session) != COAP_PROTO_DTLS || identity == NULL
        || identity->length == 0)
        return PL_ERR_NOT_FOUND;
    char id[PL_EIM_PSK_ID_MAX + 1];
    if (identity->length > PL_EIM_PSK_ID_MAX || memchr(identity->s, 0, identity->length))
        return PL_ERR_DENIED;
    memcpy(id, identity->s, identity->length);
    id[identity->length] = '\0';
    struct pl_eim_device dev;
    memset(&dev, 0, sizeof(dev));
    int rc = pl_eim_store_device_find_psk(s->store, id, &dev);
    if (rc == PL_OK)
        memcpy(eid, dev.eid, PL_EIM_EID_LEN);
    pl_eim_device_clear(&dev);
    return rc == PL_OK ? PL_OK : rc == PL_ERR_NOT_FOUND ? PL_ERR_DENIED : rc;
}

/* ---- the resource ---- */

static void set_code(coap_pdu_t *resp, enum pl_eim_esipa_code code)
{
    coap_pdu_set_code(resp, (coap_pdu_code_t)COAP_RESPONSE_CODE((int)code));
}

static void too_large(coap_pdu_t *resp, size_t max)
{
    uint8_t buf[4];
    set_code(resp, PL_EIM_ESIPA_TOO_LARGE);
    (void)coap_add_option(resp, COAP_OPTION_SIZE1,
                          coap_encode_var_safe(buf, sizeof(buf), (unsigned)max), buf);
}

static void release_body(coap_session_t *session, void *app_ptr)
{
    (void)session;
    free(app_ptr);
}

static void hnd_post(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *req,
                     const coap_string_t *query, coap_pdu_t *resp)
{
    struct pl_eim_esipa_server *s = coap_resource_get_userdata(resource);
    const uint8_t *data = NULL;
    size_t len = 0, offset = 0, total = 0;
    coap_block_b_t block;
    coap_opt_iterator_t oi;
    struct partial *p = NULL;
    const uint8_t *body;
    size_t body_len;

    partial_expire(s);
    if (!coap_get_data_large(req, &len, &data, &offset, &total)) {
        data = NULL;
        len = 0;
        offset = 0;
    }
    memset(&block, 0, sizeof(block));
    if (coap_get_block_b(session, req, COAP_OPTION_BLOCK1, &block)) {
        coap_opt_t *size1 = coap_check_option(req, COAP_OPTION_SIZE1, &oi);
        if (size1 != NULL
            && coap_decode_var_bytes(coap_opt_value(size1), coap_opt_length(size1)) > s->max_body) {
            p = partial_find(s, session);
            if (p != NULL)
                partial_drop(p);
            too_large(resp, s->max_body);
            return;
        }
        p = partial_find(s, session);
        if (block.num == 0) {
            p = partial_new(s, session);
            if (p == NULL) {
                set_code(resp, PL_EIM_ESIPA_SERVER_ERROR);
                return;
            }
        }
        if (p == NULL || offset != p->len) {
            if (p != NULL)
                partial_drop(p);
            set_code(resp, PL_EIM_ESIPA_INCOMPLETE);
            return;
        }
        if (len > s->max_body - p->len) {
            partial_drop(p);
            too_large(resp, s->max_body);
            return;
        }
        if (len > 0)
            memcpy(p->buf + p->len, data, len);
        p->len += len;
        p->touched_ms = pl_clock_monotonic_ms(NULL);
        if (block.m) {
            /* libcoap turns a 2.xx into 2.31 Continue with the Block1 option. */
            set_code(resp, PL_EIM_ESIPA_CHANGED);
            return;
        }
        body = p->buf;
        body_len = p->len;
    } else {
        if (len > s->max_body) {
            too_large(resp, s->max_body);
            return;
        }
        body = data;
        body_len = len;
    }

    uint8_t eid[PL_EIM_EID_LEN];
    const uint8_t *peer = NULL;
    enum pl_eim_esipa_code code = PL_EIM_ESIPA_SERVER_ERROR;
    struct pl_wr out;
    pl_wr_init_dyn(&out, PL_EIMI_PKG_MAX + PL_EIMI_RSP_MAX);
    int rc = session_eid(s, session, eid);
    if (rc == PL_OK) {
        peer = eid;
    } else if (rc == PL_ERR_DENIED) {
        code = PL_EIM_ESIPA_FORBIDDEN;
        goto done;
    } else if (rc != PL_ERR_NOT_FOUND) {
        goto done;
    }
    if (pl_eim_esipa_handle(s->eng, peer, body, body_len, s->max_body, &out, &code) != PL_OK)
        code = PL_EIM_ESIPA_SERVER_ERROR;
done:
    if (p != NULL)
        partial_drop(p);
    if (code == PL_EIM_ESIPA_TOO_LARGE) {
        too_large(resp, s->max_body);
    } else {
        set_code(resp, code);
    }
    if (code == PL_EIM_ESIPA_CHANGED && out.len > 0) {
        size_t n = 0;
        uint8_t *b = pl_wr_take(&out, &n);
        if (b == NULL
            || !coap_add_data_large_response(resource, session, req, resp, query, 0, -1, 0, n, b,
                                             release_body, b)) {
            /* On failure libcoap 4.3.1 has already called release_body. */
            set_code(resp, PL_EIM_ESIPA_SERVER_ERROR);
        }
    }
    pl_wr_free(&out);
}

/* ---- lifecycle ---- */

static int parse_address(const char *address, uint16_t port, coap_address_t *a)
{
    coap_address_init(a);
    const char *host = address != NULL ? address : "127.0.0.1";
    if (inet_pton(AF_INET, host, &a->addr.sin.sin_addr) == 1) {
        a->addr.sin.sin_family = AF_INET;
        a->addr.sin.sin_port = htons(port);
        a->size = sizeof(a->addr.sin);
        return PL_OK;
    }
    if (inet_pton(AF_INET6, host, &a->addr.sin6.sin6_addr) == 1) {
        a->addr.sin6.sin6_family = AF_INET6;
        a->addr.sin6.sin6_port = htons(port);
        a->size = sizeof(a->addr.sin6);
        return PL_OK;
    }
    return PL_ERR_INVAL;
}

/* coap_endpoint_str() prints the bound address: "127.0.0.1:5684 DTLS", "[::1]:5684 UDP". */
static uint16_t endpoint_port(const coap_endpoint_t *ep)
{
    const char *str = coap_endpoint_str(ep);
    const char *sp = strchr(str, ' ');
    const char *end = sp != NULL ? sp : str + strlen(str);
    const char *colon = NULL;
    for (const char *c = str; c < end; c++) {
        if (*c == ':')
            colon = c;
    }
    if (colon == NULL)
        return 0;
    unsigned v = 0;
    for (const char *c = colon + 1; c < end; c++) {
        if (*c < '0' || *c > '9' || v > 65535u)
            return 0;
        v = v * 10u + (unsigned)(*c - '0');
    }
    return v <= 65535u ? (uint16_t)v : 0;
}

int pl_eim_esipa_start(const struct pl_eim_esipa_config *cfg, struct pl_eim_engine *eng,
                       struct pl_eim_store *store, struct pl_eim_esipa_server **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_esipa_server *s = NULL;
    coap_address_t addr;
    if (out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (cfg == NULL || eng == NULL || store == NULL)
        return PL_ERR_INVAL;
    unsigned sec = cfg->security & (PL_EIM_ESIPA_SEC_PSK | PL_EIM_ESIPA_SEC_PKI);
    if (sec != cfg->security || (sec == 0 && !cfg->insecure_plain_udp))
        return PL_ERR_INVAL;
    if ((sec & PL_EIM_ESIPA_SEC_PKI) && (cfg->cert_file == NULL || cfg->key_file == NULL))
        return PL_ERR_INVAL;
    size_t max_body = cfg->max_body ? cfg->max_body : PL_EIM_ESIPA_DEFAULT_MAX_BODY;
    if (max_body > PL_EIM_ESIPA_MAX_BODY_LIMIT)
        return PL_ERR_INVAL;
    const char *path = cfg->path != NULL ? cfg->path : PL_EIM_ESIPA_DEFAULT_PATH;
    if (path[0] == '\0' || path[0] == '/' || strlen(path) > 255)
        return PL_ERR_INVAL;
    if (cfg->psk_hint != NULL && strlen(cfg->psk_hint) >= sizeof(s->hint))
        return PL_ERR_INVAL;
    const char *files[3] = {cfg->cert_file, cfg->key_file, cfg->ca_file};
    for (size_t i = 0; i < 3; i++) {
        if (files[i] != NULL && strlen(files[i]) >= PL_EIM_ESIPA_PATH_MAX)
            return PL_ERR_INVAL;
    }
    if ((rc = parse_address(cfg->address, cfg->port, &addr)) != PL_OK)
        return rc;
    coap_startup();
    if (sec != 0 && !coap_dtls_is_supported())
        return PL_ERR_UNSUPPORTED;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PL_ERR_NOMEM;
    s->eng = eng;
    s->store = store;
    s->max_body = max_body;
    s->ctx = coap_new_context(NULL);
    if (s->ctx == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    coap_set_app_data(s->ctx, s);
    /* Block2 for answers by libcoap; Block1 bodies reassembled in hnd_post (see top). */
    coap_context_set_block_mode(s->ctx, COAP_BLOCK_USE_LIBCOAP);
    if (cfg->max_idle_sessions)
        coap_context_set_max_idle_sessions(s->ctx, cfg->max_idle_sessions);
    coap_register_event_handler(s->ctx, event_handler);
    if (sec & PL_EIM_ESIPA_SEC_PSK) {
        coap_dtls_spsk_t psk;
        memset(&psk, 0, sizeof(psk));
        psk.version = COAP_DTLS_SPSK_SETUP_VERSION;
        psk.validate_id_call_back = psk_lookup;
        psk.id_call_back_arg = s;
        if (cfg->psk_hint != NULL) {
            memcpy(s->hint, cfg->psk_hint, strlen(cfg->psk_hint) + 1);
            psk.psk_info.hint.s = (const uint8_t *)s->hint;
            psk.psk_info.hint.length = strlen(s->hint);
        }
        if (!coap_context_set_psk2(s->ctx, &psk)) {
            rc = PL_ERR_CONFIG;
            goto out;
        }
    }
    if (sec & PL_EIM_ESIPA_SEC_PKI) {
        coap_dtls_pki_t pki;
        memset(&pki, 0, sizeof(pki));
        pki.version = COAP_DTLS_PKI_SETUP_VERSION;
        pki.verify_peer_cert = cfg->ca_file != NULL;
        pki.check_common_ca = cfg->ca_file != NULL;
        pki.cert_chain_validation = 1;
        pki.cert_chain_verify_depth = 3;
        pki.pki_key.key_type = COAP_PKI_KEY_PEM;
        memcpy(s->cert_file, cfg->cert_file, strlen(cfg->cert_file) + 1);
        memcpy(s->key_file, cfg->key_file, strlen(cfg->key_file) + 1);
        if (cfg->ca_file != NULL)
            memcpy(s->ca_file, cfg->ca_file, strlen(cfg->ca_file) + 1);
        pki.pki_key.key.pem.ca_file = cfg->ca_file != NULL ? s->ca_file : NULL;
        pki.pki_key.key.pem.public_cert = s->cert_file;
        pki.pki_key.key.pem.private_key = s->key_file;
        if (!coap_context_set_pki(s->ctx, &pki)) {
            rc = PL_ERR_CONFIG;
            goto out;
        }
    }
    s->ep = coap_new_endpoint(s->ctx, &addr, sec != 0 ? COAP_PROTO_DTLS : COAP_PROTO_UDP);
    if (s->ep == NULL) {
        rc = PL_ERR_IO;
        goto out;
    }
    s->port = endpoint_port(s->ep);
    /* The resource keeps the URI: an owned copy, freed with the resource. */
    coap_str_const_t *uri = coap_new_str_const((const uint8_t *)path, strlen(path));
    coap_resource_t *r =
        uri != NULL ? coap_resource_init(uri, COAP_RESOURCE_FLAGS_RELEASE_URI) : NULL;
    if (r == NULL) {
        coap_delete_str_const(uri);
        rc = PL_ERR_NOMEM;
        goto out;
    }
    coap_resource_set_userdata(r, s);
    coap_register_handler(r, COAP_REQUEST_POST, hnd_post);
    coap_add_resource(s->ctx, r);
    *out = s;
    s = NULL;
    rc = PL_OK;
out:
    pl_eim_esipa_stop(s);
    return rc;
}

int pl_eim_esipa_poll(struct pl_eim_esipa_server *s, unsigned timeout_ms)
{
    if (s == NULL)
        return PL_ERR_INVAL;
    /* DEPENDENCIES.md §3: coap_io_process(ctx, 0) would block forever. */
    int r = coap_io_process(s->ctx, timeout_ms == 0 ? COAP_IO_NO_WAIT : (uint32_t)timeout_ms);
    pl_memzero(s->psk_key, sizeof(s->psk_key));
    return r < 0 ? PL_ERR_IO : PL_OK;
}

int pl_eim_esipa_fd(const struct pl_eim_esipa_server *s)
{
    return s != NULL ? coap_context_get_coap_fd(s->ctx) : -1;
}

uint16_t pl_eim_esipa_port(const struct pl_eim_esipa_server *s)
{
    return s != NULL ? s->port : 0;
}

void pl_eim_esipa_stop(struct pl_eim_esipa_server *s)
{
    if (s == NULL)
        return;
    if (s->ctx != NULL) {
        coap_set_app_data(s->ctx, NULL);
        coap_free_context(s->ctx);
    }
    for (size_t i = 0; i < PL_EIM_ESIPA_MAX_PARTIAL; i++)
        partial_drop(&s->partial[i]);
    pl_memzero(s, sizeof(*s));
    free(s);
}
