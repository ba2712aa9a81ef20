/* Integration: the eIM's ESipa server over CoAP (libcoap 4.3.1, GnuTLS): DTLS-PSK with
 * per-device identities from the store, DTLS with the eim-tls certificate of the test PKI,
 * plain UDP only behind its flag; GetEimPackage and ProvideEimPackageResult end to end with a
 * libcoap client playing the IPA (and the test eUICC signing); block-wise bodies both ways;
 * wrong or unknown PSK fails the handshake; 4.13 / 4.00 / 4.03 answers change nothing.
 * The server runs in-process, driven in one thread alternately with the client (no threads,
 * no timing assertions: loops are bounded by iteration counts).
 * GSMA SGP.32 v1.2 §6.1, §6.2, §6.3; RFC 7252, RFC 7959; docs/eim-engine.md §7. */
#define _POSIX_C_SOURCE 200809L

#include "eim_test_env.h"
#include "pl_test.h"
#include "provline/protocol/notif.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 12000 /* loop bound: 12000 x 5 ms at most (a refused handshake takes ~6 s) */

static struct pl_eimt T;
static struct pl_eim_esipa_server *SRV;

struct client {
    coap_context_t *ctx;
    coap_session_t *session;
    bool done;
    int code;
    int nack;
    uint8_t *body;
    size_t len;
};

static struct client *from_session(coap_session_t *s)
{
    return coap_get_app_data(coap_session_get_context(s));
}

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent,
                                   const coap_pdu_t *received, const coap_mid_t mid)
{
    struct client *c = from_session(s);
    const uint8_t *data = NULL;
    size_t len = 0, offset = 0, total = 0;
    (void)sent;
    (void)mid;
    coap_pdu_code_t code = coap_pdu_get_code(received);
    c->code = COAP_RESPONSE_CLASS(code) * 100 + (int)(code & 0x1F);
    free(c->body);
    c->body = NULL;
    c->len = 0;
    if (coap_get_data_large(received, &len, &data, &offset, &total) && len > 0) {
        c->body = malloc(len);
        memcpy(c->body, data, len);
        c->len = len;
    }
    c->done = true;
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    from_session(s)->nack = (int)reason + 1;
}

static void client_free(struct client *c)
{
    if (c->session != NULL)
        coap_session_release(c->session);
    if (c->ctx != NULL)
        coap_free_context(c->ctx);
    free(c->body);
    memset(c, 0, sizeof(*c));
}

static void server_addr(coap_address_t *a)
{
    coap_address_init(a);
    a->addr.sin.sin_family = AF_INET;
    a->addr.sin.sin_port = htons(pl_eim_esipa_port(SRV));
    inet_pton(AF_INET, "127.0.0.1", &a->addr.sin.sin_addr);
    a->size = sizeof(a->addr.sin);
}

static void client_ctx(struct client *c)
{
    memset(c, 0, sizeof(*c));
    coap_startup();
    /* libcoap's own logging is process-global: quiet in tests (the server never sets it). */
    coap_set_log_level(LOG_EMERG);
    coap_dtls_set_log_level(LOG_EMERG);
    c->ctx = coap_new_context(NULL);
    cr_assert_not_null(c->ctx);
    coap_context_set_block_mode(c->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_register_response_handler(c->ctx, on_response);
    coap_register_nack_handler(c->ctx, on_nack);
    coap_set_app_data(c->ctx, c);
}

static void client_psk(struct client *c, const char *identity, const uint8_t *key, size_t key_len)
{
    coap_address_t dst;
    coap_dtls_cpsk_t setup;
    client_ctx(c);
    server_addr(&dst);
    memset(&setup, 0, sizeof(setup));
    setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
    setup.psk_info.identity.s = (const uint8_t *)identity;
    setup.psk_info.identity.length = strlen(identity);
    setup.psk_info.key.s = key;
    setup.psk_info.key.length = key_len;
    c->session = coap_new_client_session_psk2(c->ctx, NULL, &dst, COAP_PROTO_DTLS, &setup);
    cr_assert_not_null(c->session);
}

static void client_pki(struct client *c, const char *ca_file)
{
    coap_address_t dst;
    coap_dtls_pki_t setup;
    client_ctx(c);
    server_addr(&dst);
    memset(&setup, 0, sizeof(setup));
    setup.version = COAP_DTLS_PKI_SETUP_VERSION;
    setup.verify_peer_cert = 1;
    setup.check_common_ca = 1;
    setup.cert_chain_validation = 1;
    setup.cert_chain_verify_depth = 3;
    setup.pki_key.key_type = COAP_PKI_KEY_PEM;
    setup.pki_key.key.pem.ca_file = ca_file;
    c->session = coap_new_client_session_pki(c->ctx, NULL, &dst, COAP_PROTO_DTLS, &setup);
    cr_assert_not_null(c->session);
}

static void client_udp(struct client *c)
{
    coap_address_t dst;
    client_ctx(c);
    server_addr(&dst);
    c->session = coap_new_client_session(c->ctx, NULL, &dst, COAP_PROTO_UDP);
    cr_assert_not_null(c->session);
}

/* POSTs body to path and runs both sides until an answer or a NACK. Returns the CoAP code
 * (class*100+detail), or -nack. */
static int post(struct client *c, const char *path, const uint8_t *body, size_t len)
{
    uint8_t token[8];
    size_t tlen = 0;
    c->done = false;
    c->nack = 0;
    c->code = 0;
    coap_pdu_t *pdu =
        coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, coap_new_message_id(c->session),
                      coap_session_max_pdu_size(c->session));
    cr_assert_not_null(pdu);
    coap_session_new_token(c->session, &tlen, token);
    cr_assert(coap_add_token(pdu, tlen, token));
    char p[256];
    snprintf(p, sizeof(p), "%s", path);
    for (char *seg = strtok(p, "/"); seg != NULL; seg = strtok(NULL, "/"))
        coap_add_option(pdu, COAP_OPTION_URI_PATH, strlen(seg), (const uint8_t *)seg);
    if (len > 0)
        cr_assert(coap_add_data_large_request(c->session, pdu, len, body, NULL, NULL));
    cr_assert_neq(coap_send(c->session, pdu), COAP_INVALID_MID);
    for (int i = 0; i < STEPS && !c->done && c->nack == 0; i++) {
        cr_assert_eq(pl_eim_esipa_poll(SRV, 0), PL_OK);
        coap_io_process(c->ctx, 5);
    }
    cr_assert(c->done || c->nack != 0, "no answer and no NACK");
    return c->done ? c->code : -c->nack;
}

static struct client *CLIENT;

static int coap_exchange(void *user, const uint8_t *req, size_t len, uint8_t **rsp, size_t *rsp_len,
                         int *code)
{
    struct client *c = user;
    int r = post(c, PL_EIM_ESIPA_DEFAULT_PATH, req, len);
    *code = r;
    *rsp = c->body;
    *rsp_len = c->len;
    c->body = NULL;
    c->len = 0;
    return r > 0 ? PL_OK : PL_ERR_IO;
}

static void start(unsigned security, size_t max_body, bool plain)
{
    char cert[512], key[512];
    struct pl_eim_esipa_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.security = security;
    cfg.insecure_plain_udp = plain;
    cfg.max_body = max_body;
    cr_assert_eq(pl_pki_path(T.pki, PL_PKI_EIM_TLS, PL_PKI_FILE_CRT, cert, sizeof(cert)), PL_OK);
    cr_assert_eq(pl_pki_path(T.pki, PL_PKI_EIM_TLS, PL_PKI_FILE_KEY, key, sizeof(key)), PL_OK);
    if (security & PL_EIM_ESIPA_SEC_PKI) {
        cfg.cert_file = cert;
        cfg.key_file = key;
    }
    int rc = pl_eim_esipa_start(&cfg, T.eng, T.store, &SRV);
    cr_assert_eq(rc, PL_OK, "start: %s", pl_strerror(rc));
    cr_assert_gt(pl_eim_esipa_port(SRV), 0);
}

static const uint8_t PSK[16] = {0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
                                0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

static void setup(void)
{
    int rc = pl_eimt_init(&T, 60000);
    cr_assert_eq(rc, PL_OK, "env: %s", pl_strerror(rc));
    SRV = NULL;
    CLIENT = calloc(1, sizeof(*CLIENT));
}

static void teardown(void)
{
    if (CLIENT != NULL)
        client_free(CLIENT);
    free(CLIENT);
    CLIENT = NULL;
    pl_eim_esipa_stop(SRV);
    SRV = NULL;
    pl_eimt_free(&T);
}

TestSuite(esipa_coap, .init = setup, .fini = teardown, .timeout = 120);

/* Through the transport: every exchange of pl_eimt_* goes over the CoAP client. */
static void use_client(struct client *c)
{
    T.exchange = coap_exchange;
    T.exchange_user = c;
}

/* One enable, queued -> signed -> verified -> state, all over DTLS-PSK. */
static void enable_cycle(void)
{
    struct pl_sgp32_esipa_eim_msg m;
    struct pl_sgp32_euicc_package_request req;
    uint8_t *buf = NULL, *epr = NULL, *b2 = NULL;
    size_t len = 0;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"89001012012341234012\"}");
    cr_assert_gt(id, 0);
    cr_assert_eq(pl_eimt_get_package(&T, false, &m, &buf), PL_OK, "%s", T.log);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST);
    cr_assert_eq(pl_eimt_euicc_accept(&T, m.get_eim_package.raw.p, m.get_eim_package.raw.len, &req),
                 PL_OK);
    struct pl_sgp32_euicc_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_RESULT_ENABLE;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    cr_assert_eq(pl_eimt_provide_epr(&T, epr, len, &m, &b2), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS, "%s", T.log);
    struct pl_eim_op op;
    cr_assert_eq(pl_eimt_op(&T, id, &op), PL_OK);
    cr_assert_eq(op.state, PL_EIM_OPS_DONE);
    pl_eim_op_clear(&op);
    char *v = pl_eimt_profiles(&T);
    cr_assert(strstr(v, "\"state\":\"enabled\"") != NULL, "%s", v);
    free(v);
    free(b2);
    free(epr);
    free(buf);
}

Test(esipa_coap, dtls_psk_get_package_and_result)
{
    start(PL_EIM_ESIPA_SEC_PSK, 0, false);
    client_psk(CLIENT, "dev-0163", PSK, sizeof(PSK));
    use_client(CLIENT);
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *buf = NULL;
    cr_assert_eq(pl_eimt_get_package(&T, false, &m, &buf), PL_OK, "%s", T.log);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_ERROR);
    cr_assert_eq(m.get_eim_package.error_code, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
    free(buf);
    enable_cycle();
}

/* The PSK identity binds the session to its device: another EID is 4.03. */
Test(esipa_coap, psk_identity_bound_to_its_eid)
{
    start(PL_EIM_ESIPA_SEC_PSK, 0, false);
    client_psk(CLIENT, "dev-0163", PSK, sizeof(PSK));
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_LIST_EIM, NULL);
    struct pl_sgp32_esipa_ipa_msg req;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(req.get_eim_package.eid, T.eid, 16);
    req.get_eim_package.eid[15] ^= 0x01;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &w), PL_OK);
    cr_assert_eq(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, w.buf, w.len), 403);
    pl_wr_free(&w);
    struct pl_eim_op op;
    cr_assert_eq(pl_eimt_op(&T, id, &op), PL_OK);
    cr_assert_eq(op.state, PL_EIM_OPS_QUEUED);
    pl_eim_op_clear(&op);
}

Test(esipa_coap, wrong_psk_fails_handshake)
{
    start(PL_EIM_ESIPA_SEC_PSK, 0, false);
    uint8_t bad[16];
    memset(bad, 0x43, sizeof(bad));
    client_psk(CLIENT, "dev-0163", bad, sizeof(bad));
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_LIST_EIM, NULL);
    static const uint8_t body[] = {0xBF, 0x4F, 0x12, 0x5A, 0x10, 0x89, 0x04, 0x90, 0x32, 0,   0, 0,
                                   0,    0,    0,    0,    0,    0,    0,    0x01, 0x23, 0x45};
    int r = post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, body, sizeof(body));
    cr_assert_lt(r, 0, "no answer over a failed handshake (got %d)", r);
    cr_assert_eq(-r - 1, COAP_NACK_TLS_FAILED, "NACK reason %d", -r - 1);
    client_free(CLIENT);
    /* an identity the store does not know */
    client_psk(CLIENT, "nobody", PSK, sizeof(PSK));
    r = post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, body, sizeof(body));
    cr_assert_lt(r, 0);
    struct pl_eim_op op;
    cr_assert_eq(pl_eimt_op(&T, id, &op), PL_OK);
    cr_assert_eq(op.state, PL_EIM_OPS_QUEUED, "nothing served");
    pl_eim_op_clear(&op);
}

Test(esipa_coap, oversize_malformed_and_unknown_path)
{
    start(PL_EIM_ESIPA_SEC_PSK, 4096, false);
    client_psk(CLIENT, "dev-0163", PSK, sizeof(PSK));
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_LIST_EIM, NULL);
    /* block-wise body beyond the cap: 4.13 */
    size_t big = 10000;
    uint8_t *b = malloc(big);
    memset(b, 0x30, big);
    cr_assert_eq(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, b, big), 413);
    /* one datagram over a small cap: 4.13 as well */
    pl_eim_esipa_stop(SRV);
    client_free(CLIENT);
    start(PL_EIM_ESIPA_SEC_PSK, 256, false);
    client_psk(CLIENT, "dev-0163", PSK, sizeof(PSK));
    cr_assert_eq(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, b, 600), 413);
    /* malformed bodies: 4.00 */
    cr_assert_eq(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, b, 100), 400);
    static const uint8_t truncated[] = {0xBF, 0x4F, 0x12, 0x5A, 0x10, 0x89};
    cr_assert_eq(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, truncated, sizeof(truncated)), 400);
    cr_assert_eq(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, NULL, 0), 400);
    /* another path */
    cr_assert_eq(post(CLIENT, "gsma/rsp2/json", truncated, sizeof(truncated)), 404);
    struct pl_eim_op op;
    cr_assert_eq(pl_eimt_op(&T, id, &op), PL_OK);
    cr_assert_eq(op.state, PL_EIM_OPS_QUEUED, "nothing changed");
    pl_eim_op_clear(&op);
    cr_assert_eq(pl_eimt_store_counter(&T), 0);
    free(b);
}

/* Bodies over one block both ways: a ProvideEimPackageResult with notifications (Block1) and
 * an addEim package carrying certificates (Block2). */
Test(esipa_coap, blockwise_request_and_answer)
{
    start(PL_EIM_ESIPA_SEC_PSK, 0, false);
    client_psk(CLIENT, "dev-0163", PSK, sizeof(PSK));
    use_client(CLIENT);
    /* Block2: addEim with the eIM certificate and a TLS certificate in its parameters */
    const uint8_t *c1 = NULL, *c2 = NULL;
    size_t l1 = 0, l2 = 0;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EIM), &c1, &l1);
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EIM_TLS), &c2, &l2);
    char *params = malloc(2 * (l1 + l2) + 512);
    char *p = params;
    p += sprintf(p, "{\"eimId\":\"eim-big\",\"eimFqdn\":\"");
    for (int i = 0; i < 50; i++)
        p += sprintf(p, "abcd");
    p += sprintf(p, ".example\",\"eimCertificate\":\"");
    for (size_t i = 0; i < l1; i++)
        p += sprintf(p, "%02X", c1[i]);
    p += sprintf(p, "\",\"trustedCertificateTls\":\"");
    for (size_t i = 0; i < l2; i++)
        p += sprintf(p, "%02X", c2[i]);
    sprintf(p, "\"}");
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ADD_EIM, params);
    free(params);
    struct pl_sgp32_esipa_eim_msg m;
    struct pl_sgp32_euicc_package_request req;
    uint8_t *buf = NULL, *b2 = NULL;
    cr_assert_eq(pl_eimt_get_package(&T, false, &m, &buf), PL_OK, "%s", T.log);
    cr_assert_gt(m.get_eim_package.raw.len, 1300, "answer spans several blocks (%zu)",
                 m.get_eim_package.raw.len);
    cr_assert_eq(pl_eimt_euicc_accept(&T, m.get_eim_package.raw.p, m.get_eim_package.raw.len, &req),
                 PL_OK);
    cr_assert_eq(req.pkg.eco[0].eim_config.eim_public_key_data.kind, PL_SGP32_KEY_CERT);

    /* Block1: the result with three signed notifications (~1 KB each) */
    struct pl_sgp32_euicc_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_RESULT_ADD_EIM;
    uint8_t *epr = NULL;
    size_t len = 0;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    uint8_t iccid[10];
    pl_eimt_iccid("89001012012341234012", iccid);
    struct pl_wr notes;
    pl_wr_init_dyn(&notes, 65536);
    uint32_t first = T.euicc_seq;
    for (int i = 0; i < 3; i++) {
        uint8_t *n = NULL;
        size_t nl = 0;
        cr_assert_eq(pl_eimt_other_notif(&T, PL_NOTIF_EV_DISABLE, iccid, &n, &nl), PL_OK);
        cr_assert_eq(pl_wr_bytes(&notes, n, nl), PL_OK);
        free(n);
    }
    struct pl_sgp32_eim_package_result pr;
    memset(&pr, 0, sizeof(pr));
    pr.kind = PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS;
    pr.euicc_package_result.p = epr;
    pr.euicc_package_result.len = len;
    pr.notifications.p = notes.buf;
    pr.notifications.len = notes.len;
    pr.notifications.count = 3;
    cr_assert_gt(notes.len, 2048, "request spans several blocks");
    cr_assert_eq(pl_eimt_provide(&T, &pr, &m, &b2), PL_OK, "%s", T.log);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS, "%s", T.log);
    struct pl_sgp32_eim_acknowledgements a;
    cr_assert_eq(pl_sgp32_eim_acknowledgements_decode(m.provide_result.acknowledgements.p,
                                                      m.provide_result.acknowledgements.len, &a),
                 PL_OK);
    cr_assert_eq(a.n, 4, "EPR and three notifications");
    bool seen = false;
    for (size_t i = 0; i < a.n; i++)
        seen |= a.seq[i] == first + 2;
    cr_assert(seen);
    struct pl_eim_op op;
    cr_assert_eq(pl_eimt_op(&T, id, &op), PL_OK);
    cr_assert_eq(op.state, PL_EIM_OPS_DONE);
    pl_eim_op_clear(&op);
    pl_wr_free(&notes);
    free(epr);
    free(b2);
    free(buf);
}

/* Certificate mode: the client checks the eim-tls certificate against the TLS CA; requests
 * carry no DTLS identity, so the EID comes from the body. */
Test(esipa_coap, dtls_certificate_mode)
{
    char ca[512];
    cr_assert_eq(pl_pki_path(T.pki, PL_PKI_TLS_CA, PL_PKI_FILE_CRT, ca, sizeof(ca)), PL_OK);
    start(PL_EIM_ESIPA_SEC_PKI, 0, false);
    client_pki(CLIENT, ca);
    use_client(CLIENT);
    enable_cycle();
    client_free(CLIENT);
    /* a client trusting another CA refuses the server */
    char other[512];
    cr_assert_eq(pl_pki_path(T.pki, PL_PKI_CI, PL_PKI_FILE_CRT, other, sizeof(other)), PL_OK);
    client_pki(CLIENT, other);
    static const uint8_t body[] = {0x30, 0x00};
    cr_assert_lt(post(CLIENT, PL_EIM_ESIPA_DEFAULT_PATH, body, sizeof(body)), 0);
}

Test(esipa_coap, plain_udp_only_behind_its_flag)
{
    struct pl_eim_esipa_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cr_assert_eq(pl_eim_esipa_start(&cfg, T.eng, T.store, &SRV), PL_ERR_INVAL);
    cr_assert_null(SRV);
    cfg.security = PL_EIM_ESIPA_SEC_PKI; /* without its files */
    cr_assert_eq(pl_eim_esipa_start(&cfg, T.eng, T.store, &SRV), PL_ERR_INVAL);
    start(0, 0, true);
    client_udp(CLIENT);
    use_client(CLIENT);
    enable_cycle();
}

/* The service of `provline-eim serve`: engine and server from an "esipa" section. */
static struct pl_eim_esipa_service *SVC;

Test(esipa_coap, service_from_configuration_section)
{
    char key[512], dir[512];
    cr_assert_eq(pl_pki_path(T.pki, PL_PKI_EIM, PL_PKI_FILE_KEY, key, sizeof(key)), PL_OK);
    snprintf(dir, sizeof(dir), "%s", key);
    *strrchr(dir, '/') = '\0';
    const uint8_t *ci = NULL;
    size_t ci_len = 0;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_CI), &ci, &ci_len);
    struct pl_eim_esipa_service_options o;
    memset(&o, 0, sizeof(o));
    o.base_dir = dir;
    o.roots = &ci;
    o.root_len = &ci_len;
    o.n_roots = 1;
    o.default_eim_id = PL_EIMT_EIM_ID;
    o.store = T.store;
    char err[256];
    /* configuration errors name the member */
    const char *bad[] = {
        "{\"port\":0}",
        "{\"signing_key\":\"eim.key\",\"port\":70000}",
        "{\"signing_key\":\"eim.key\",\"colour\":\"blue\"}",
        "{\"signing_key\":\"eim.crt\",\"port\":0}",
        "{\"signing_key\":\"eim.key\",\"security\":[\"pki\"],\"port\":0}",
        "{\"signing_key\":\"eim.key\",\"security\":[],\"port\":0}",
    };
    const char *where[] = {"signing_key", "port",        "colour",
                           "signing_key", "certificate", "security"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *sec = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(sec);
        o.section = sec;
        cr_assert_neq(pl_eim_esipa_service_start(&o, &SVC, err, sizeof(err)), PL_OK, "%s", bad[i]);
        cr_assert_null(SVC);
        cr_assert(strstr(err, where[i]) != NULL, "%s -> %s", bad[i], err);
        json_decref(sec);
    }
    json_t *sec = json_loads("{\"signing_key\":\"eim.key\",\"port\":0,\"claimer\":\"eim-1\","
                             "\"security\":[\"psk\",\"pki\"],\"certificate\":\"eim-tls.crt\","
                             "\"private_key\":\"eim-tls.key\",\"max_body\":8192}",
                             0, NULL);
    o.section = sec;
    int rc = pl_eim_esipa_service_start(&o, &SVC, err, sizeof(err));
    cr_assert_eq(rc, PL_OK, "%s", err);
    json_decref(sec);
    cr_assert_gt(pl_eim_esipa_service_port(SVC), 0);
    /* a client over DTLS-PSK against the service's port */
    coap_address_t dst;
    coap_dtls_cpsk_t setup;
    client_ctx(CLIENT);
    coap_address_init(&dst);
    dst.addr.sin.sin_family = AF_INET;
    dst.addr.sin.sin_port = htons(pl_eim_esipa_service_port(SVC));
    inet_pton(AF_INET, "127.0.0.1", &dst.addr.sin.sin_addr);
    dst.size = sizeof(dst.addr.sin);
    memset(&setup, 0, sizeof(setup));
    setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
    setup.psk_info.identity.s = (const uint8_t *)"dev-0163";
    setup.psk_info.identity.length = 8;
    setup.psk_info.key.s = PSK;
    setup.psk_info.key.length = sizeof(PSK);
    CLIENT->session =
        coap_new_client_session_psk2(CLIENT->ctx, NULL, &dst, COAP_PROTO_DTLS, &setup);
    cr_assert_not_null(CLIENT->session);
    pl_eimt_enqueue(&T, PL_EIM_OP_LIST_EIM, NULL);
    struct pl_sgp32_esipa_ipa_msg req;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(req.get_eim_package.eid, T.eid, 16);
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &w), PL_OK);
    uint8_t token[8];
    size_t tlen = 0;
    coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST,
                                    coap_new_message_id(CLIENT->session),
                                    coap_session_max_pdu_size(CLIENT->session));
    coap_session_new_token(CLIENT->session, &tlen, token);
    coap_add_token(pdu, tlen, token);
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 4, (const uint8_t *)"gsma");
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 4, (const uint8_t *)"rsp2");
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 4, (const uint8_t *)"asn1");
    coap_add_data_large_request(CLIENT->session, pdu, w.len, w.buf, NULL, NULL);
    cr_assert_neq(coap_send(CLIENT->session, pdu), COAP_INVALID_MID);
    for (int i = 0; i < STEPS && !CLIENT->done && CLIENT->nack == 0; i++) {
        cr_assert_eq(pl_eim_esipa_service_poll(SVC, 0), PL_OK);
        coap_io_process(CLIENT->ctx, 5);
    }
    cr_assert(CLIENT->done);
    cr_assert_eq(CLIENT->code, 204);
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_sgp32_esipa_eim_msg_decode(CLIENT->body, CLIENT->len, &m), PL_OK);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST);
    struct pl_sgp32_euicc_package_request pkg;
    cr_assert_eq(pl_eimt_euicc_accept(&T, m.get_eim_package.raw.p, m.get_eim_package.raw.len, &pkg),
                 PL_OK, "signed with the key of the section");
    pl_wr_free(&w);
    /* run() returns when told to stop */
    atomic_int stop;
    atomic_init(&stop, 1);
    cr_assert_eq(pl_eim_esipa_service_run(SVC, &stop), PL_OK);
    pl_eim_esipa_service_stop(SVC);
    SVC = NULL;
}
