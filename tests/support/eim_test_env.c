/* Test support: the eIM engine over a SQLite store on a fake clock, with a scripted
 * "IPA + eUICC" (eim_test_env.h). GSMA SGP.32 v1.2 §2.11, §6.3. Never in a product. */
#define _POSIX_C_SOURCE 200809L

#include "eim_test_env.h"

#include "pl_test.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WR_MAX (256u * 1024u)

static int64_t store_now(void *user)
{
    return ((struct pl_eimt *)user)->now_ms;
}

static uint64_t engine_now(void *user)
{
    return (uint64_t)((struct pl_eimt *)user)->now_ms;
}

static void engine_log(void *user, int level, const char *line)
{
    struct pl_eimt *t = user;
    size_t have = strlen(t->log);
    (void)level;
    if (have + strlen(line) + 2 < sizeof(t->log)) {
        memcpy(t->log + have, line, strlen(line));
        t->log[have + strlen(line)] = '\n';
        t->log[have + strlen(line) + 1] = '\0';
    }
}

static int in_process(void *user, const uint8_t *req, size_t len, uint8_t **rsp, size_t *rsp_len,
                      int *code)
{
    struct pl_eimt *t = user;
    struct pl_wr w;
    enum pl_eim_esipa_code c = PL_EIM_ESIPA_SERVER_ERROR;
    pl_wr_init_dyn(&w, WR_MAX);
    int rc = pl_eim_esipa_handle(t->eng, NULL, req, len, 0, &w, &c);
    *code = (int)c;
    *rsp = NULL;
    *rsp_len = 0;
    if (rc == PL_OK && w.len > 0)
        *rsp = pl_wr_take(&w, rsp_len);
    pl_wr_free(&w);
    return rc;
}

static struct pl_eim_store_options store_opts(struct pl_eimt *t)
{
    struct pl_eim_store_options o;
    memset(&o, 0, sizeof(o));
    o.guard_path = t->guard_path;
    o.now = store_now;
    o.now_user = t;
    return o;
}

int pl_eimt_open_store(const struct pl_eimt *t, struct pl_eim_store **out)
{
    struct pl_eim_store_options o = store_opts((struct pl_eimt *)(uintptr_t)t);
    return pl_eim_store_open_sqlite(t->store_path, &o, out);
}

void pl_eimt_iccid(const char *digits, uint8_t out[10])
{
    size_t n = strlen(digits);
    for (size_t i = 0; i < 10; i++) {
        char a = 2 * i < n ? digits[2 * i] : 'F';
        char b = 2 * i + 1 < n ? digits[2 * i + 1] : 'F';
        uint8_t lo = a >= '0' && a <= '9' ? (uint8_t)(a - '0') : 0x0F;
        uint8_t hi = b >= '0' && b <= '9' ? (uint8_t)(b - '0') : 0x0F;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

int pl_eimt_init(struct pl_eimt *t, uint64_t result_timeout_ms)
{
    int rc;
    char pkidir[300];
    struct pl_rng rng = PL_RNG_SYSTEM;
    memset(t, 0, sizeof(*t));
    if (pl_test_tmpdir(t->dir, sizeof(t->dir)) != 0)
        return PL_ERR_IO;
    time_t now = time(NULL);
    t->now_ms = (int64_t)now * 1000;
    snprintf(pkidir, sizeof(pkidir), "%s/pki", t->dir);
    snprintf(t->store_path, sizeof(t->store_path), "%s/eim.db", t->dir);
    snprintf(t->guard_path, sizeof(t->guard_path), "%s/eim.guard", t->dir);
    if ((rc = pl_pki_init(pkidir, PL_CURVE_P256, &rng, now)) != PL_OK)
        return rc;
    if ((rc = pl_pki_load(pkidir, &t->pki)) != PL_OK)
        return rc;
    if ((rc = pl_cert_public_key(pl_pki_cert(t->pki, PL_PKI_EIM), &t->eim_pub)) != PL_OK)
        return rc;
    size_t n = 0;
    if ((rc = pl_hex_decode(PL_EIMT_EID_HEX, t->eid, sizeof(t->eid), &n)) != PL_OK)
        return rc;
    if ((rc = pl_pki_mint_euicc_with(t->pki, t->eid, &rng, now, &t->euicc_key, t->euicc_cert,
                                     sizeof(t->euicc_cert), &t->euicc_cert_len))
        != PL_OK)
        return rc;
    struct pl_eim_store_options o = store_opts(t);
    if ((rc = pl_eim_store_open_sqlite(t->store_path, &o, &t->store)) != PL_OK)
        return rc;
    /* the device, as a production line would register it */
    const uint8_t *eum = NULL;
    size_t eum_len = 0;
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_EUM), &eum, &eum_len);
    static uint8_t psk[16];
    memset(psk, 0x42, sizeof(psk));
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    memcpy(d.eid, t->eid, 16);
    d.euicc_cert = t->euicc_cert;
    d.euicc_cert_len = t->euicc_cert_len;
    d.eum_cert = (uint8_t *)(uintptr_t)eum;
    d.eum_cert_len = eum_len;
    d.eim_id = (char *)(uintptr_t)PL_EIMT_EIM_ID;
    d.psk_identity = (char *)(uintptr_t) "dev-0163";
    d.psk_key = psk;
    d.psk_key_len = sizeof(psk);
    if ((rc = pl_eim_store_device_put(t->store, "test", &d)) != PL_OK)
        return rc;
    const struct pl_cert *ci = pl_pki_cert(t->pki, PL_PKI_CI);
    struct pl_eim_engine_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.eim_id = PL_EIMT_EIM_ID;
    cfg.signing_key = pl_pki_key(t->pki, PL_PKI_EIM);
    cfg.ci_roots = &ci;
    cfg.n_ci_roots = 1;
    cfg.claimer = "eim-test";
    cfg.result_timeout_ms = result_timeout_ms;
    cfg.clock.now_ms = engine_now;
    cfg.clock.user = t;
    cfg.log.log = engine_log;
    cfg.log.user = t;
    if ((rc = pl_eim_engine_new(t->store, &cfg, &t->eng)) != PL_OK)
        return rc;
    t->exchange = in_process;
    t->exchange_user = t;
    t->euicc_seq = 10;
    return PL_OK;
}

void pl_eimt_free(struct pl_eimt *t)
{
    pl_eim_engine_free(t->eng);
    pl_eim_store_close(t->store);
    pl_eckey_free(t->euicc_key);
    pl_eckey_free(t->eim_pub);
    pl_pki_free(t->pki);
    if (t->dir[0] != '\0')
        pl_test_rmtree(t->dir);
    memset(t, 0, sizeof(*t));
}

int64_t pl_eimt_enqueue(struct pl_eimt *t, enum pl_eim_op_kind kind, const char *params)
{
    struct pl_eim_op op;
    int64_t id = 0;
    memset(&op, 0, sizeof(op));
    memcpy(op.eid, t->eid, 16);
    op.kind = kind;
    op.params = (uint8_t *)(uintptr_t)params;
    op.params_len = params ? strlen(params) : 0;
    int rc = pl_eim_store_op_enqueue(t->store, "test", &op, &id);
    return rc == PL_OK ? id : rc;
}

int pl_eimt_raw(struct pl_eimt *t, const uint8_t *req, size_t len, uint8_t **rsp, size_t *rsp_len,
                int *code)
{
    return t->exchange(t->exchange_user, req, len, rsp, rsp_len, code);
}

static int send_msg(struct pl_eimt *t, const struct pl_sgp32_esipa_ipa_msg *req,
                    struct pl_sgp32_esipa_eim_msg *m, uint8_t **buf)
{
    struct pl_wr w;
    uint8_t *rsp = NULL;
    size_t rsp_len = 0;
    int code = 0;
    *buf = NULL;
    pl_wr_init_dyn(&w, WR_MAX);
    int rc = pl_sgp32_esipa_ipa_msg_encode(req, &w);
    if (rc == PL_OK)
        rc = pl_wr_status(&w);
    if (rc == PL_OK)
        rc = t->exchange(t->exchange_user, w.buf, w.len, &rsp, &rsp_len, &code);
    pl_wr_free(&w);
    if (rc != PL_OK)
        return rc;
    if (code != PL_EIM_ESIPA_CHANGED) {
        free(rsp);
        return -1000 - code;
    }
    memset(m, 0, sizeof(*m));
    if (rsp_len == 0) {
        free(rsp);
        return PL_OK;
    }
    rc = pl_sgp32_esipa_eim_msg_decode(rsp, rsp_len, m);
    if (rc != PL_OK) {
        free(rsp);
        return rc;
    }
    *buf = rsp;
    return PL_OK;
}

int pl_eimt_get_package(struct pl_eimt *t, bool notify, struct pl_sgp32_esipa_eim_msg *m,
                        uint8_t **buf)
{
    struct pl_sgp32_esipa_ipa_msg req;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(req.get_eim_package.eid, t->eid, 16);
    if (notify) {
        req.get_eim_package.notify_state_change = true;
        req.get_eim_package.has_state_change_cause = true;
        req.get_eim_package.state_change_cause = PL_SGP32_STATE_CHANGE_LOCAL;
    }
    return send_msg(t, &req, m, buf);
}

int pl_eimt_provide(struct pl_eimt *t, const struct pl_sgp32_eim_package_result *r,
                    struct pl_sgp32_esipa_eim_msg *m, uint8_t **buf)
{
    struct pl_sgp32_esipa_ipa_msg req;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    req.provide_result.has_eid = true;
    memcpy(req.provide_result.eid, t->eid, 16);
    req.provide_result.result = *r;
    return send_msg(t, &req, m, buf);
}

int pl_eimt_provide_epr(struct pl_eimt *t, const uint8_t *epr, size_t len,
                        struct pl_sgp32_esipa_eim_msg *m, uint8_t **buf)
{
    struct pl_sgp32_eim_package_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_EIM_RESULT_EPR;
    r.euicc_package_result.p = epr;
    r.euicc_package_result.len = len;
    return pl_eimt_provide(t, &r, m, buf);
}

int pl_eimt_euicc_accept(struct pl_eimt *t, const uint8_t *bf51, size_t len,
                         struct pl_sgp32_euicc_package_request *req)
{
    int rc = pl_sgp32_euicc_package_request_decode(bf51, len, req);
    if (rc != PL_OK)
        return rc;
    if (memcmp(req->pkg.eid, t->eid, 16) != 0)
        return PL_ERR_INVAL;
    rc = pl_sgp32_euicc_package_request_verify(req, t->has_token ? &t->token : NULL, t->eim_pub);
    if (rc != PL_OK)
        return rc;
    if (req->pkg.counter <= t->euicc_counter)
        return PL_ERR_REPLAY;
    t->euicc_counter = req->pkg.counter;
    return PL_OK;
}

static int sign_der(struct pl_eimt *t, const struct pl_sgp32_euicc_package_result *res,
                    const struct pl_eckey *key, struct pl_wr *w)
{
    struct pl_wr data;
    uint8_t tok[PL_SGP32_TOKEN_TLV_MAX], rs[64], der[PL_ECDSA_DER_MAX];
    size_t tok_len = 0, der_len = 0;
    struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(&data, WR_MAX);
    int rc = pl_sgp32_euicc_package_result_data_encode(res, &data);
    if (rc == PL_OK)
        rc = pl_wr_status(&data);
    if (rc == PL_OK)
        rc = pl_sgp32_token_tlv(t->has_token ? &t->token : NULL, tok, &tok_len);
    if (rc == PL_OK) {
        struct pl_iov iov[2] = {{data.buf, data.len}, {tok, tok_len}};
        rc = pl_ecdsa_sign_iov(key, iov, 2, &rng, rs);
    }
    if (rc == PL_OK)
        rc = pl_ecdsa_sig_to_der(rs, der, sizeof(der), &der_len);
    if (rc == PL_OK)
        rc = pl_sgp32_euicc_package_result_encode(res, der, der_len, w);
    pl_wr_free(&data);
    return rc;
}

static int finish(struct pl_wr *w, int rc, uint8_t **out, size_t *out_len)
{
    if (rc == PL_OK)
        rc = pl_wr_status(w);
    if (rc == PL_OK)
        *out = pl_wr_take(w, out_len);
    pl_wr_free(w);
    return rc == PL_OK && *out == NULL ? PL_ERR_NOMEM : rc;
}

int pl_eimt_epr(struct pl_eimt *t, const struct pl_sgp32_euicc_package_request *req,
                const struct pl_sgp32_euicc_result *results, size_t n, const struct pl_eckey *key,
                bool der_sig, uint8_t **out, size_t *out_len)
{
    struct pl_sgp32_euicc_package_result *res = calloc(1, sizeof(*res));
    struct pl_wr w;
    struct pl_rng rng = PL_RNG_SYSTEM;
    if (res == NULL || n > PL_SGP32_MAX_RESULTS) {
        free(res);
        return PL_ERR_NOMEM;
    }
    pl_wr_init_dyn(&w, WR_MAX);
    res->kind = PL_SGP32_EPR_RESULT_SIGNED;
    res->eim_id = req->pkg.eim_id;
    res->counter = req->pkg.counter;
    res->eim_txid = req->pkg.eim_txid;
    res->seq_number = t->euicc_seq++;
    res->n_results = n;
    for (size_t i = 0; i < n; i++)
        res->results[i] = results[i];
    const struct pl_eckey *k = key != NULL ? key : t->euicc_key;
    int rc = der_sig ? sign_der(t, res, k, &w)
                     : pl_sgp32_euicc_package_result_sign(res, t->has_token ? &t->token : NULL, k,
                                                          &rng, &w);
    free(res);
    return finish(&w, rc, out, out_len);
}

int pl_eimt_epe(struct pl_eimt *t, const struct pl_sgp32_euicc_package_request *req, int64_t code,
                uint8_t **out, size_t *out_len)
{
    struct pl_sgp32_euicc_package_result *res = calloc(1, sizeof(*res));
    struct pl_wr w;
    struct pl_rng rng = PL_RNG_SYSTEM;
    if (res == NULL)
        return PL_ERR_NOMEM;
    pl_wr_init_dyn(&w, WR_MAX);
    res->kind = PL_SGP32_EPR_ERROR_SIGNED;
    res->eim_id = req->pkg.eim_id;
    res->counter = req->pkg.counter;
    res->eim_txid = req->pkg.eim_txid;
    res->error_code = code;
    int rc = pl_sgp32_euicc_package_result_sign(res, t->has_token ? &t->token : NULL, t->euicc_key,
                                                &rng, &w);
    free(res);
    return finish(&w, rc, out, out_len);
}

int pl_eimt_pir(struct pl_eimt *t, const uint8_t iccid[10], uint8_t **out, size_t *out_len)
{
    static const uint8_t tid[4] = {1, 2, 3, 4};
    static const uint8_t oid[3] = {0x88, 0x37, 0x01};
    static const uint8_t aid[16] = {0xA0, 0,    0,    5,    0x59, 0x10, 0x10, 0xFF,
                                    0xFF, 0xFF, 0xFF, 0x89, 0,    0,    0x10, 0};
    static const uint8_t sima[3] = {0x30, 0x01, 0x00};
    struct pl_pir *p = calloc(1, sizeof(*p));
    struct pl_wr w;
    struct pl_rng rng = PL_RNG_SYSTEM;
    if (p == NULL)
        return PL_ERR_NOMEM;
    pl_wr_init_dyn(&w, WR_MAX);
    p->tid = tid;
    p->tid_len = sizeof(tid);
    p->meta.seq = t->euicc_seq++;
    p->meta.ops = PL_NOTIF_EV_INSTALL;
    snprintf(p->meta.addr, sizeof(p->meta.addr), "smdp.example.com");
    p->meta.has_iccid = true;
    memcpy(p->meta.iccid, iccid, 10);
    p->smdp_oid = oid;
    p->smdp_oid_len = sizeof(oid);
    p->success = true;
    p->aid = aid;
    p->aid_len = sizeof(aid);
    p->sima = sima;
    p->sima_len = sizeof(sima);
    int rc = pl_pir_encode(p, t->euicc_key, &rng, &w);
    free(p);
    return finish(&w, rc, out, out_len);
}

int pl_eimt_other_notif(struct pl_eimt *t, uint8_t event, const uint8_t iccid[10], uint8_t **out,
                        size_t *out_len)
{
    struct pl_notif_other *n = calloc(1, sizeof(*n));
    struct pl_wr w;
    struct pl_rng rng = PL_RNG_SYSTEM;
    const uint8_t *eum = NULL;
    size_t eum_len = 0;
    if (n == NULL)
        return PL_ERR_NOMEM;
    pl_wr_init_dyn(&w, WR_MAX);
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_EUM), &eum, &eum_len);
    n->meta.seq = t->euicc_seq++;
    n->meta.ops = event;
    snprintf(n->meta.addr, sizeof(n->meta.addr), "smdp.example.com");
    n->meta.has_iccid = true;
    memcpy(n->meta.iccid, iccid, 10);
    n->euicc_cert = t->euicc_cert;
    n->euicc_cert_len = t->euicc_cert_len;
    n->eum_cert = eum;
    n->eum_cert_len = eum_len;
    int rc = pl_notif_other_encode(n, t->euicc_key, &rng, &w);
    free(n);
    return finish(&w, rc, out, out_len);
}

int pl_eimt_op(struct pl_eimt *t, int64_t id, struct pl_eim_op *op)
{
    memset(op, 0, sizeof(*op));
    return pl_eim_store_op_get(t->store, id, op);
}

static char *dup_or_empty(const char *s)
{
    const char *v = s ? s : "";
    char *r = malloc(strlen(v) + 1);
    if (r != NULL)
        memcpy(r, v, strlen(v) + 1);
    return r;
}

char *pl_eimt_profiles(struct pl_eimt *t)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    if (pl_eim_store_device_get(t->store, t->eid, &d) != PL_OK)
        return NULL;
    char *r = dup_or_empty(d.profiles_json);
    pl_eim_device_clear(&d);
    return r;
}

char *pl_eimt_eims(struct pl_eimt *t)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    if (pl_eim_store_device_get(t->store, t->eid, &d) != PL_OK)
        return NULL;
    char *r = dup_or_empty(d.eims_json);
    pl_eim_device_clear(&d);
    return r;
}

uint32_t pl_eimt_store_counter(struct pl_eimt *t)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    if (pl_eim_store_device_get(t->store, t->eid, &d) != PL_OK)
        return 0;
    uint32_t c = d.counter;
    pl_eim_device_clear(&d);
    return c;
}
