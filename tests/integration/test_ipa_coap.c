/* integration.ipa_coap: the IPA's ESipa transport (ipa/include/provline/ipa/ipa_coap.h) and
 * provline-ipa against a minimal eIM written here on libcoap 4.3.1: POST /gsma/rsp2/asn1 over
 * DTLS-PSK, DTLS with the test PKI's eim-tls certificate, or plain UDP, block-wise both ways,
 * answering ESipa bodies built with the codecs and checking what the IPA sent.
 * GSMA SGP.32 v1.2 §6.2, §6.3; RFC 7252, RFC 7959, RFC 4279; DEPENDENCIES.md §3. */
#define _POSIX_C_SOURCE 200809L

#include "pl_euicc_test.h"
#include "pl_ipa_test.h"
#include "pl_test.h"
#include "provline/ipa/ipa.h"
#include "provline/ipa/ipa_coap.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/sgp32_esipa.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PSK_ID "dev-0001"
#define EIM_ID "eim.coap.test"
static const uint8_t PSK[16] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F};

/* ---------------------------------------------------------------- server ---- */

enum srv_mode {
    SRV_PSK = 0,
    SRV_CERT = 1,
    SRV_PLAIN = 2,
};

enum srv_script {
    SCRIPT_ECHO_KIND = 0, /* GetEimPackage -> noEimPackageAvailable; others: emptyResponse */
    SCRIPT_BIG = 1,       /* any body -> big_rsp */
    SCRIPT_EIM = 2,       /* queue of GetEimPackage answers, then noPackage; acks results */
};

struct srv {
    enum srv_mode mode;
    enum srv_script script;
    uint16_t port;
    coap_context_t *ctx;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    /* what arrived */
    unsigned requests, gets, provides;
    bool last_notify;
    uint8_t last_eid[16];
    uint8_t *last_body;
    size_t last_len;
    char bad_identity[64];
    /* SCRIPT_BIG */
    uint8_t *big_rsp;
    size_t big_len;
    /* SCRIPT_EIM */
    struct pl_wr q[8];
    size_t n, next;
    unsigned acks_sent;
};

static struct srv S;
static struct pl_et T;
static char PKI[600];

static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void release_buf(coap_session_t *s, void *p)
{
    (void)s;
    free(p);
}

static void answer(struct srv *v, const uint8_t *body, size_t len, struct pl_wr *out)
{
    struct pl_sgp32_esipa_ipa_msg m;
    if (v->script == SCRIPT_BIG) {
        pl_wr_bytes(out, v->big_rsp, v->big_len);
        return;
    }
    if (pl_sgp32_esipa_ipa_msg_decode(body, len, &m) != PL_OK)
        return; /* empty answer: the client sees a decode failure */
    if (m.kind == PL_SGP32_ESIPA_GET_EIM_PACKAGE) {
        v->gets++;
        v->last_notify = m.get_eim_package.notify_state_change;
        memcpy(v->last_eid, m.get_eim_package.eid, 16);
        if (v->script == SCRIPT_EIM && v->next < v->n) {
            struct pl_wr *q = &v->q[v->next++];
            pl_wr_bytes(out, q->buf, q->len);
            return;
        }
        (void)pl_it_error_response(PL_SGP32_EIM_PKG_ERR_NO_PACKAGE, out);
        return;
    }
    if (m.kind == PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT) {
        uint32_t seqs[64];
        size_t n = 0;
        v->provides++;
        if (pl_it_result_seqs(&m.provide_result.result, seqs, 64, &n) != PL_OK)
            n = 0;
        v->acks_sent += (unsigned)n;
        (void)pl_it_ack_response(seqs, n, out);
    }
}

static void hnd_post(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                     const coap_string_t *query, coap_pdu_t *response)
{
    struct srv *v = coap_get_app_data(coap_session_get_context(session));
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    struct pl_wr out;

    if (!coap_get_data_large(request, &len, &data, &offset, &total)) {
        len = 0;
        data = NULL;
    } else if (offset != 0 || len != total) {
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_BAD_REQUEST);
        return;
    }
    pthread_mutex_lock(&v->mu);
    v->requests++;
    free(v->last_body);
    v->last_body = malloc(len + 1);
    if (len > 0)
        memcpy(v->last_body, data, len);
    v->last_len = len;
    pl_wr_init_dyn(&out, 1 << 20);
    answer(v, data, len, &out);
    pthread_mutex_unlock(&v->mu);
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_CHANGED);
    if (out.len > 0) {
        size_t n = 0;
        uint8_t *copy = pl_wr_take(&out, &n);
        coap_add_data_large_response(resource, session, request, response, query,
                                     COAP_MEDIATYPE_APPLICATION_OCTET_STREAM, -1, 0, n, copy,
                                     release_buf, copy);
    }
    pl_wr_free(&out);
}

static const coap_bin_const_t *check_id(coap_bin_const_t *identity, coap_session_t *s, void *arg)
{
    static const coap_bin_const_t key = {sizeof(PSK), PSK};
    struct srv *v = arg;
    (void)s;
    if (identity->length == strlen(PSK_ID) && memcmp(identity->s, PSK_ID, identity->length) == 0)
        return &key;
    pthread_mutex_lock(&v->mu);
    snprintf(v->bad_identity, sizeof(v->bad_identity), "%.*s", (int)identity->length,
             (const char *)identity->s);
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

static void *srv_loop(void *arg)
{
    struct srv *v = arg;
    while (!v->stop)
        coap_io_process(v->ctx, 50);
    return NULL;
}

static void silent(coap_log_t level, const char *message)
{
    (void)level;
    (void)message;
}

static void srv_start(enum srv_mode mode, enum srv_script script)
{
    coap_address_t addr;
    coap_resource_t *r;

    pthread_mutex_init(&S.mu, NULL);
    S.mode = mode;
    S.script = script;
    coap_startup();
    coap_set_log_handler(silent);
    coap_set_log_level(LOG_EMERG);
    coap_dtls_set_log_level(LOG_EMERG);
    S.ctx = coap_new_context(NULL);
    cr_assert_not_null(S.ctx);
    coap_context_set_block_mode(S.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_set_app_data(S.ctx, &S);
    if (mode == SRV_PSK) {
        coap_dtls_spsk_t sp;
        memset(&sp, 0, sizeof(sp));
        sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
        sp.validate_id_call_back = check_id;
        sp.id_call_back_arg = &S;
        sp.psk_info.hint.s = (const uint8_t *)"provline-eim";
        sp.psk_info.hint.length = 12;
        sp.psk_info.key.s = PSK;
        sp.psk_info.key.length = sizeof(PSK);
        cr_assert(coap_context_set_psk2(S.ctx, &sp));
    } else if (mode == SRV_CERT) {
        static char crt[700], key[700];
        coap_dtls_pki_t pk;
        cr_assert_eq(pl_pki_path(T.pki, PL_PKI_EIM_TLS, PL_PKI_FILE_CRT, crt, sizeof(crt)), PL_OK);
        cr_assert_eq(pl_pki_path(T.pki, PL_PKI_EIM_TLS, PL_PKI_FILE_KEY, key, sizeof(key)), PL_OK);
        memset(&pk, 0, sizeof(pk));
        pk.version = COAP_DTLS_PKI_SETUP_VERSION;
        pk.pki_key.key_type = COAP_PKI_KEY_PEM;
        pk.pki_key.key.pem.public_cert = crt;
        pk.pki_key.key.pem.private_key = key;
        cr_assert(coap_context_set_pki(S.ctx, &pk));
    }
    S.port = free_udp_port();
    coap_address_init(&addr);
    addr.size = sizeof(struct sockaddr_in);
    addr.addr.sin.sin_family = AF_INET;
    addr.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.addr.sin.sin_port = htons(S.port);
    cr_assert_not_null(
        coap_new_endpoint(S.ctx, &addr, mode == SRV_PLAIN ? COAP_PROTO_UDP : COAP_PROTO_DTLS));
    r = coap_resource_init(coap_make_str_const("gsma/rsp2/asn1"), 0);
    coap_register_request_handler(r, COAP_REQUEST_POST, hnd_post);
    coap_add_resource(S.ctx, r);
    S.stop = 0;
    cr_assert_eq(pthread_create(&S.th, NULL, srv_loop, &S), 0);
}

static void srv_stop(void)
{
    if (S.ctx == NULL)
        return;
    S.stop = 1;
    pthread_join(S.th, NULL);
    coap_free_context(S.ctx);
    S.ctx = NULL;
    free(S.last_body);
    free(S.big_rsp);
    for (size_t i = 0; i < S.n; i++)
        pl_wr_free(&S.q[i]);
    pthread_mutex_destroy(&S.mu);
    memset(&S, 0, sizeof(S));
}

static void setup(void)
{
    memset(&S, 0, sizeof(S));
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    snprintf(PKI, sizeof(PKI), "%s/pki", T.dir);
}

static void teardown(void)
{
    srv_stop();
    pl_et_free(&T);
}

/* ---------------------------------------------------------------- client ---- */

static char URI[128];
static char CLOG[8192];

static void client_log(void *user, const char *line)
{
    (void)user;
    size_t n = strlen(CLOG);
    snprintf(CLOG + n, sizeof(CLOG) - n, "%s\n", line);
}

static struct pl_ipa_coap *client(enum pl_ipa_coap_security sec, const uint8_t *psk, const char *ca,
                                  const char *name)
{
    struct pl_ipa_coap_config c;
    struct pl_ipa_coap *t = NULL;
    pl_ipa_coap_config_init(&c);
    snprintf(URI, sizeof(URI), "%s://127.0.0.1:%u", sec == PL_IPA_COAP_PLAIN ? "coap" : "coaps",
             (unsigned)S.port);
    c.uri = URI;
    c.security = sec;
    c.psk_identity = PSK_ID;
    c.psk = psk != NULL ? psk : PSK;
    c.psk_len = sizeof(PSK);
    c.ca_file = ca;
    c.server_name = name;
    c.allow_plain = true;
    c.ack_timeout_ms = 500;
    c.max_retransmit = 2;
    c.log = client_log;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_OK);
    return t;
}

static void get_req(const uint8_t eid[16], bool notify, struct pl_wr *w)
{
    struct pl_sgp32_esipa_ipa_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(m.get_eim_package.eid, eid, 16);
    m.get_eim_package.notify_state_change = notify;
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&m, w), PL_OK);
}

static void expect_no_package(const struct pl_wr *rsp)
{
    struct pl_sgp32_esipa_eim_msg a;
    cr_assert_eq(pl_sgp32_esipa_eim_msg_decode(rsp->buf, rsp->len, &a), PL_OK);
    cr_assert_eq(a.kind, PL_SGP32_ESIPA_GET_EIM_PACKAGE);
    cr_assert_eq(a.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_ERROR);
    cr_assert_eq(a.get_eim_package.error_code, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
}

TestSuite(ipa_coap, .init = setup, .fini = teardown, .timeout = 120);

Test(ipa_coap, config_rejected)
{
    struct pl_ipa_coap_config c;
    struct pl_ipa_coap *t = NULL;
    pl_ipa_coap_config_init(&c);
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* no URI */
    c.uri = "coap://127.0.0.1:5683";
    c.security = PL_IPA_COAP_PLAIN;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* plain without the test flag */
    c.security = PL_IPA_COAP_PSK;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* coap:// for a DTLS mode */
    c.uri = "coaps://127.0.0.1:5684";
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* no PSK */
    c.psk_identity = PSK_ID;
    c.psk = PSK;
    c.psk_len = PL_IPA_COAP_PSK_MAX + 1;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* PSK too long */
    c.security = PL_IPA_COAP_CERT;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* no CA file */
    c.uri = "http://127.0.0.1/";
    c.security = PL_IPA_COAP_PSK;
    c.psk_len = 16;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_ERR_INVAL); /* not CoAP */
    cr_assert_null(t);
    c.uri = "coaps://127.0.0.1:5684/custom/path";
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_OK);
    pl_ipa_coap_free(t);
}

Test(ipa_coap, psk_get_eim_package_on_the_wire)
{
    srv_start(SRV_PSK, SCRIPT_ECHO_KIND);
    struct pl_ipa_coap *t = client(PL_IPA_COAP_PSK, NULL, NULL, NULL);
    static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    struct pl_wr req, rsp;
    pl_wr_init_dyn(&req, 256);
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    get_req(eid, true, &req);
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 10000), PL_OK);
    expect_no_package(&rsp);
    /* the server saw exactly the body, on /gsma/rsp2/asn1 */
    pthread_mutex_lock(&S.mu);
    cr_assert_eq(S.gets, 1);
    cr_assert(S.last_notify);
    cr_assert_eq(memcmp(S.last_eid, eid, 16), 0);
    cr_assert_eq(S.last_len, req.len);
    cr_assert_eq(memcmp(S.last_body, req.buf, req.len), 0);
    pthread_mutex_unlock(&S.mu);
    /* the DTLS session is reused for the next exchange */
    pl_wr_reset(&rsp);
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 10000), PL_OK);
    expect_no_package(&rsp);
    cr_assert_eq(S.gets, 2);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    pl_ipa_coap_free(t);
}

Test(ipa_coap, wrong_psk_is_denied)
{
    srv_start(SRV_PSK, SCRIPT_ECHO_KIND);
    uint8_t bad[16];
    memcpy(bad, PSK, 16);
    bad[0] ^= 0xFF;
    struct pl_ipa_coap *t = client(PL_IPA_COAP_PSK, bad, NULL, NULL);
    struct pl_wr req, rsp;
    static const uint8_t eid[16] = {0x89};
    pl_wr_init_dyn(&req, 256);
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    get_req(eid, false, &req);
    int rc = pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000);
    cr_assert_eq(rc, PL_ERR_DENIED, "%s\n%s", pl_strerror(rc), CLOG);
    cr_assert_eq(rsp.len, 0);
    cr_assert_eq(S.requests, 0);
    /* and it stays denied (a fresh handshake each time), never a silent success */
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000), PL_ERR_DENIED);
    pl_ipa_coap_free(t);

    /* an identity the server does not know: denied too */
    struct pl_ipa_coap_config c;
    pl_ipa_coap_config_init(&c);
    snprintf(URI, sizeof(URI), "coaps://127.0.0.1:%u", (unsigned)S.port);
    c.uri = URI;
    c.security = PL_IPA_COAP_PSK;
    c.psk_identity = "intruder";
    c.psk = PSK;
    c.psk_len = sizeof(PSK);
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_OK);
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000), PL_ERR_DENIED);
    cr_assert_str_eq(S.bad_identity, "intruder");
    cr_assert_eq(S.requests, 0);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    pl_ipa_coap_free(t);
}

Test(ipa_coap, blockwise_large_bodies_both_ways)
{
    srv_start(SRV_PSK, SCRIPT_BIG);
    struct pl_rng rng = PL_RNG_SYSTEM;
    S.big_len = 40000;
    S.big_rsp = malloc(S.big_len);
    cr_assert_eq(pl_rng_system_fill(NULL, S.big_rsp, S.big_len), PL_OK);
    uint8_t *big = malloc(30000);
    cr_assert_eq(rng.fill(rng.user, big, 30000), PL_OK);
    struct pl_ipa_coap *t = client(PL_IPA_COAP_PSK, NULL, NULL, NULL);
    struct pl_wr rsp;
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    cr_assert_eq(pl_ipa_coap_post(t, big, 30000, &rsp, 30000), PL_OK);
    cr_assert_eq(S.last_len, 30000);
    cr_assert_eq(memcmp(S.last_body, big, 30000), 0);
    cr_assert_eq(rsp.len, S.big_len);
    cr_assert_eq(memcmp(rsp.buf, S.big_rsp, S.big_len), 0);

    /* a body over the caller's cap is refused, not truncated */
    struct pl_wr small;
    pl_wr_init_dyn(&small, 1000);
    cr_assert_eq(pl_ipa_coap_post(t, big, 100, &small, 30000), PL_ERR_OVERFLOW);
    pl_wr_free(&small);
    /* and the transport still works afterwards */
    pl_wr_reset(&rsp);
    cr_assert_eq(pl_ipa_coap_post(t, big, 10, &rsp, 30000), PL_OK);
    cr_assert_eq(rsp.len, S.big_len);
    pl_wr_free(&rsp);
    free(big);
    pl_ipa_coap_free(t);
}

Test(ipa_coap, certificate_mode_checks_ca_and_name)
{
    srv_start(SRV_CERT, SCRIPT_ECHO_KIND);
    char ca[700];
    cr_assert_eq(pl_pki_path(T.pki, PL_PKI_TLS_CA, PL_PKI_FILE_CRT, ca, sizeof(ca)), PL_OK);
    static const uint8_t eid[16] = {0x89, 0x04};
    struct pl_wr req, rsp;
    pl_wr_init_dyn(&req, 256);
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    get_req(eid, false, &req);

    struct pl_ipa_coap *t = client(PL_IPA_COAP_CERT, NULL, ca, NULL); /* name 127.0.0.1 */
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000), PL_OK);
    expect_no_package(&rsp);
    pl_ipa_coap_free(t);

    pl_wr_reset(&rsp);
    t = client(PL_IPA_COAP_CERT, NULL, ca, "localhost"); /* the SAN dNSName */
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000), PL_OK);
    pl_ipa_coap_free(t);

    /* a name the certificate does not carry */
    pl_wr_reset(&rsp);
    t = client(PL_IPA_COAP_CERT, NULL, ca, "eim.elsewhere.example");
    int rc = pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000);
    cr_assert_eq(rc, PL_ERR_DENIED, "%s\n%s", pl_strerror(rc), CLOG);
    pl_ipa_coap_free(t);

    /* another PKI's TLS CA: the eIM is not trusted */
    struct pl_et other;
    char other_ca[700];
    cr_assert_eq(pl_et_init(&other, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_pki_path(other.pki, PL_PKI_TLS_CA, PL_PKI_FILE_CRT, other_ca, sizeof(other_ca)),
                 PL_OK);
    unsigned before = S.requests;
    t = client(PL_IPA_COAP_CERT, NULL, other_ca, NULL);
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 20000), PL_ERR_DENIED);
    cr_assert_eq(S.requests, before);
    pl_ipa_coap_free(t);
    pl_et_free(&other);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

Test(ipa_coap, plain_udp_and_error_answers)
{
    srv_start(SRV_PLAIN, SCRIPT_ECHO_KIND);
    struct pl_ipa_coap *t = client(PL_IPA_COAP_PLAIN, NULL, NULL, NULL);
    static const uint8_t eid[16] = {0x89, 0x05};
    struct pl_wr req, rsp;
    pl_wr_init_dyn(&req, 256);
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    get_req(eid, false, &req);
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 10000), PL_OK);
    expect_no_package(&rsp);
    pl_ipa_coap_free(t);

    /* another resource path: 4.04 from the server -> PL_ERR_REMOTE */
    struct pl_ipa_coap_config c;
    pl_ipa_coap_config_init(&c);
    snprintf(URI, sizeof(URI), "coap://127.0.0.1:%u/gsma/other", (unsigned)S.port);
    c.uri = URI;
    c.security = PL_IPA_COAP_PLAIN;
    c.allow_plain = true;
    cr_assert_eq(pl_ipa_coap_new(&c, &t), PL_OK);
    pl_wr_reset(&rsp);
    cr_assert_eq(pl_ipa_coap_post(t, req.buf, req.len, &rsp, 10000), PL_ERR_REMOTE);
    pl_ipa_coap_free(t);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

Test(ipa_coap, nobody_listening_is_not_success)
{
    S.port = free_udp_port(); /* nothing bound there */
    struct pl_ipa_coap *t = client(PL_IPA_COAP_PLAIN, NULL, NULL, NULL);
    struct pl_wr rsp;
    pl_wr_init_dyn(&rsp, 1024);
    int rc = pl_ipa_coap_post(t, (const uint8_t *)"\xBF\x4F\x00", 3, &rsp, 3000);
    cr_assert(rc == PL_ERR_TIMEOUT || rc == PL_ERR_IO, "%d", rc);
    pl_ipa_coap_free(t);
    t = client(PL_IPA_COAP_PSK, NULL, NULL, NULL);
    rc = pl_ipa_coap_post(t, (const uint8_t *)"\xBF\x4F\x00", 3, &rsp, 3000);
    cr_assert(rc == PL_ERR_TIMEOUT || rc == PL_ERR_IO || rc == PL_ERR_DENIED, "%d", rc);
    cr_assert_eq(rsp.len, 0);
    pl_wr_free(&rsp);
    pl_ipa_coap_free(t);
}

/* ---------------------------------------------------- the IPA end to end ---- */

Test(ipa_coap, ipa_library_over_dtls)
{
    /* a produced eUICC, the IPA library and this server: one package, acks, back to idle */
    char path[512];
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts eo;
    struct pl_it_eim eim = {EIM_ID, "127.0.0.1", false, 0};
    uint8_t iccid[10], eid[16];
    cr_assert_eq(pl_et_mint(&T, "dev.state", 1, NULL, path, sizeof(path)), PL_OK);
    pl_euicc_opts_init(&eo);
    cr_assert_eq(pl_euicc_open(path, &eo, &e), PL_OK);
    cr_assert_eq(pl_it_produce(&T, e, &eim, iccid), PL_OK);
    pl_euicc_get_eid(e, eid);

    srv_start(SRV_PSK, SCRIPT_EIM);
    struct pl_sgp32_psmo en;
    memset(&en, 0, sizeof(en));
    en.kind = PL_SGP32_PSMO_ENABLE;
    memcpy(en.enable.iccid, iccid, 10);
    pl_wr_init_dyn(&S.q[0], 1 << 16);
    cr_assert_eq(pl_it_psmo_response(&eim, pl_pki_key(T.pki, PL_PKI_EIM), eid, 1, "E2E", &en, 1,
                                     &T.rng, &S.q[0]),
                 PL_OK);
    S.n = 1;

    struct pl_ipa_coap *t = client(PL_IPA_COAP_PSK, NULL, NULL, NULL);
    struct pl_ipa_config c;
    struct pl_ipa *ipa = NULL;
    pl_ipa_config_init(&c);
    c.apdu.transmit = pl_euicc_transmit;
    c.apdu.user = e;
    c.transport = pl_ipa_coap_transport(t);
    c.timeout_ms = 20000;
    cr_assert_eq(pl_ipa_new(&c, &ipa), PL_OK);
    cr_assert_eq(pl_ipa_poll(ipa), PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(pl_ipa_poll(ipa), PL_IPA_POLL_NO_PACKAGE);
    cr_assert_eq(S.gets, 2);
    cr_assert_eq(S.provides, 1);
    cr_assert_eq(S.acks_sent, 2); /* the result and the factory PIR */
    cr_assert_eq(memcmp(S.last_eid, eid, 16), 0);
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
    cr_assert(pi.enabled);
    cr_assert_eq(pl_euicc_epr_count(e), 0);
    cr_assert_eq(pl_euicc_notif_count(e), 0);
    pl_ipa_free(ipa);
    pl_ipa_coap_free(t);
    pl_euicc_close(e);
}

/* Runs provline-ipa with args; returns its exit status, stdout in out. */
static int run_tool(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    const char *bin = getenv("PL_BIN_DIR");
    cr_assert_not_null(bin, "PL_BIN_DIR not set");
    snprintf(cmd, sizeof(cmd), "%s/provline-ipa %s 2>%s/tool.err", bin, args, T.dir);
    return pl_test_run(cmd, out, cap);
}

static void tool_flow(bool lose)
{
    char path[512], state[600], args[1536], out[4096], hex[33];
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts eo;
    struct pl_it_eim eim = {EIM_ID, "127.0.0.1", false, 0};
    uint8_t iccid[10], eid[16];
    cr_assert_eq(pl_et_mint(&T, "dev.state", 1, NULL, path, sizeof(path)), PL_OK);
    pl_euicc_opts_init(&eo);
    cr_assert_eq(pl_euicc_open(path, &eo, &e), PL_OK);
    cr_assert_eq(pl_it_produce(&T, e, &eim, iccid), PL_OK);
    pl_euicc_get_eid(e, eid);
    pl_euicc_close(e); /* the tool opens the state file itself */

    srv_start(SRV_PSK, SCRIPT_EIM);
    struct pl_sgp32_psmo en;
    memset(&en, 0, sizeof(en));
    en.kind = PL_SGP32_PSMO_ENABLE;
    memcpy(en.enable.iccid, iccid, 10);
    pl_wr_init_dyn(&S.q[0], 1 << 16);
    cr_assert_eq(pl_it_psmo_response(&eim, pl_pki_key(T.pki, PL_PKI_EIM), eid, 1, "TOOL", &en, 1,
                                     &T.rng, &S.q[0]),
                 PL_OK);
    S.n = 1;
    cr_assert_eq(pl_hex_encode(PSK, sizeof(PSK), hex, sizeof(hex)), PL_OK);
    snprintf(state, sizeof(state), "%s/ipa.state", T.dir);
    snprintf(args, sizeof(args),
             "--euicc %s --eim coaps://127.0.0.1:%u --psk-id %s --psk %s --state %s --once%s", path,
             (unsigned)S.port, PSK_ID, hex, state, lose ? " --lose-result-after-enable" : "");
    int st = run_tool(args, out, sizeof(out));
    char errpath[600];
    snprintf(errpath, sizeof(errpath), "%s/tool.err", T.dir);
    size_t elen = 0;
    uint8_t *err = pl_test_read_file(errpath, &elen);
    cr_assert_eq(st, 0, "exit %d\nstdout: %s\nstderr: %s", st, out, err ? (char *)err : "");
    cr_assert_not_null(strstr(out, "packages=1"), "%s", out);
    cr_assert_not_null(strstr(out, "pending=0 in_flight=0"), "%s", out);
    cr_assert_not_null(strstr(out, lose ? "recovered=1" : "recovered=0"), "%s", out);
    cr_assert_not_null(strstr(out, "eim=" EIM_ID), "%s", out);
    cr_assert_not_null(strstr(out, "last=no-package"), "%s", out);
    free(err);
    cr_assert_eq(S.provides, 1);
    cr_assert_eq(S.acks_sent, 2);

    /* the eUICC's state file: enabled, result and PIR acknowledged away */
    cr_assert_eq(pl_euicc_open(path, &eo, &e), PL_OK);
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
    cr_assert(pi.enabled);
    cr_assert_eq(pl_euicc_epr_count(e), 0);
    cr_assert_eq(pl_euicc_notif_count(e), 0);
    pl_euicc_close(e);
}

Test(ipa_coap, tool_once_executes_and_acknowledges)
{
    tool_flow(false);
}

Test(ipa_coap, tool_recovers_a_lost_result)
{
    tool_flow(true);
}

Test(ipa_coap, tool_usage_errors)
{
    char out[1024];
    cr_assert_eq(run_tool("", out, sizeof(out)), 2);
    cr_assert_eq(run_tool("--euicc /nonexistent --eim coaps://127.0.0.1:1", out, sizeof(out)), 2);
    cr_assert_eq(
        run_tool("--euicc x --eim coaps://127.0.0.1:1 --psk-id a --psk zz", out, sizeof(out)),
        1); /* the eUICC file does not exist: failure before the PSK is looked at */
    cr_assert_eq(run_tool("--euicc x --eim y --plain --once --interval-ms 5", out, sizeof(out)), 2);
}

Test(ipa_coap, tool_sigterm_exits_cleanly)
{
    char path[512], args[1536], hex[33], cmd[2048];
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts eo;
    struct pl_it_eim eim = {EIM_ID, "127.0.0.1", false, 0};
    uint8_t iccid[10];
    cr_assert_eq(pl_et_mint(&T, "dev.state", 1, NULL, path, sizeof(path)), PL_OK);
    pl_euicc_opts_init(&eo);
    cr_assert_eq(pl_euicc_open(path, &eo, &e), PL_OK);
    cr_assert_eq(pl_it_produce(&T, e, &eim, iccid), PL_OK);
    pl_euicc_close(e);
    srv_start(SRV_PSK, SCRIPT_ECHO_KIND);
    cr_assert_eq(pl_hex_encode(PSK, sizeof(PSK), hex, sizeof(hex)), PL_OK);
    snprintf(args, sizeof(args),
             "--euicc %s --eim coaps://127.0.0.1:%u --psk-id %s --psk %s --interval-ms 20 "
             "--max-interval-ms 40",
             path, (unsigned)S.port, PSK_ID, hex);
    snprintf(cmd, sizeof(cmd), "%s/provline-ipa", getenv("PL_BIN_DIR"));
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char *argv[32];
        int n = 0;
        argv[n++] = cmd;
        char *save = NULL;
        for (char *tok = strtok_r(args, " ", &save); tok != NULL && n < 31;
             tok = strtok_r(NULL, " ", &save))
            argv[n++] = tok;
        argv[n] = NULL;
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execv(cmd, argv);
        _exit(127);
    }
    /* wait until it has polled a few times (a guard, not a timed assertion) */
    unsigned gets = 0;
    for (int i = 0; i < 2000 && gets < 3; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&S.mu);
        gets = S.gets;
        pthread_mutex_unlock(&S.mu);
    }
    cr_assert_geq(gets, 3);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "not a clean exit (signal %d)", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
}
