/* unit.ipa: the IPA (ipa/include/provline/ipa/ipa.h) against a scripted eIM that speaks ESipa
 * with the real codecs (sgp32_esipa.h, sgp32_euicc_package.h, sgp32_ipa_data.h) and the real
 * software eUICC (sim/), minted and taken through production (one OTK loaded, factory mode
 * closed, the initial eIM added with AddInitialEim).
 * GSMA SGP.32 v1.2 §3.1.1.1, §2.11, §5.9, §6.3.2.6-7; reference/EIM.md §1.3-§1.6. */
#define _POSIX_C_SOURCE 200809L

#include "pl_euicc_test.h"
#include "pl_ipa_test.h"
#include "pl_test.h"
#include "provline/ipa/ipa.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EIM_ID      "eim.test"
#define EIM_FQDN    "eim.example"
#define BACKOFF_MIN 1000u
#define BACKOFF_MAX 8000u

/* ------------------------------------------------------------------ clock ---- */

struct fclock {
    uint64_t now;
};
static uint64_t fclock_now(void *u)
{
    return ((struct fclock *)u)->now;
}

/* ------------------------------------------------------- APDU wrapper ---- */

/* Forwards to the software eUICC; can lose the eUICC's answer to LoadEuiccPackage before
 * the card sees it (drop_load) and counts LoadEuiccPackage requests. */
struct wrap {
    struct pl_euicc *e;
    uint8_t tag[2]; /* first bytes of the ES10 request in progress */
    bool drop_load; /* fail the last block of a BF51 with PL_ERR_IO, card untouched */
    unsigned loads; /* BF51 requests completed at the card */
    unsigned resets;
    unsigned apdus;
};

static int wrap_transmit(void *user, const uint8_t *c, size_t clen, uint8_t *r, size_t rcap,
                         size_t *rlen)
{
    struct wrap *w = user;
    w->apdus++;
    if (clen >= 7 && c[1] == PL_INS_STORE_DATA) {
        if (c[3] == 0) {
            w->tag[0] = c[5];
            w->tag[1] = c[6];
        }
        if (c[2] == PL_ES10_P1_LAST && w->tag[0] == 0xBF && w->tag[1] == 0x51) {
            if (w->drop_load) {
                w->drop_load = false;
                return PL_ERR_IO;
            }
            w->loads++;
        }
    }
    return pl_euicc_transmit(w->e, c, clen, r, rcap, rlen);
}

static int wrap_reset(void *user)
{
    struct wrap *w = user;
    w->resets++;
    return pl_euicc_reset(w->e);
}

/* ---------------------------------------------------------- scripted eIM ---- */

enum provide_mode {
    ACK_ALL = 0,   /* acknowledge every seqNumber found in the result */
    ACK_EMPTY = 1, /* emptyResponse */
    ACK_EXTRA = 2, /* every seqNumber plus one the IPA never delivered */
    REFUSE = 3,    /* provideEimPackageResultError eidNotFound */
    GARBAGE = 4,   /* not DER */
};

#define QMAX 16

struct feim {
    struct pl_wr q[QMAX]; /* GetEimPackage answers, in order */
    size_t n, next;
    enum provide_mode mode;
    unsigned fail_posts; /* next posts fail with fail_rc */
    int fail_rc;
    bool garbage_get; /* answer the next GetEimPackage with garbage */
    bool wrong_kind;  /* answer the next GetEimPackage with a BF50 */
    /* what the IPA sent */
    unsigned n_get, n_provide;
    int kinds[64];
    size_t n_kinds;
    bool last_notify;
    uint8_t last_eid[16];
    struct pl_wr last_result; /* the last ProvideEimPackageResult body */
    uint32_t acked[64];
    size_t n_acked;
    /* signing */
    const struct pl_eckey *key;
    bool has_token;
    int64_t token;
    uint32_t counter;
};

static struct pl_et T;
static char PATH[512], STATE[600];
static struct pl_euicc *E;
static struct wrap W;
static struct feim F;
static struct fclock CLK;
static struct pl_ipa *IPA;
static uint8_t EID[16];
static uint8_t ICCID[10];
static char LOG[65536];
static size_t LOG_LEN;

static void cap_log(void *user, enum pl_ipa_log_level level, const char *line)
{
    (void)user;
    int n = snprintf(LOG + LOG_LEN, sizeof(LOG) - LOG_LEN, "%d %s\n", (int)level, line);
    if (n > 0 && (size_t)n < sizeof(LOG) - LOG_LEN)
        LOG_LEN += (size_t)n;
}

/* The seqNumbers a ProvideEimPackageResult carries. */
static size_t result_seqs(const struct pl_sgp32_eim_package_result *res, uint32_t *seqs)
{
    size_t n = 0;
    cr_assert_eq(pl_it_result_seqs(res, seqs, 64, &n), PL_OK);
    return n;
}

static int feim_post(void *user, const uint8_t *req, size_t len, struct pl_wr *rsp, int timeout_ms)
{
    struct feim *f = user;
    struct pl_sgp32_esipa_ipa_msg m;
    struct pl_sgp32_esipa_eim_msg a;

    cr_assert_gt(timeout_ms, 0);
    if (f->fail_posts > 0) {
        f->fail_posts--;
        return f->fail_rc != 0 ? f->fail_rc : PL_ERR_TIMEOUT;
    }
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_decode(req, len, &m), PL_OK, "IPA sent invalid ESipa");
    cr_assert_lt(f->n_kinds, 64);
    f->kinds[f->n_kinds++] = (int)m.kind;
    memset(&a, 0, sizeof(a));
    if (m.kind == PL_SGP32_ESIPA_GET_EIM_PACKAGE) {
        f->n_get++;
        f->last_notify = m.get_eim_package.notify_state_change;
        memcpy(f->last_eid, m.get_eim_package.eid, 16);
        cr_assert_not(m.get_eim_package.has_state_change_cause);
        if (f->garbage_get) {
            f->garbage_get = false;
            pl_wr_bytes(rsp, "\x01\x02\x03", 3);
            return PL_OK;
        }
        if (f->wrong_kind) {
            f->wrong_kind = false;
            pl_wr_bytes(rsp, "\xBF\x50\x02\x30\x00", 5);
            return PL_OK;
        }
        if (f->next < f->n) {
            struct pl_wr *q = &f->q[f->next++];
            pl_wr_bytes(rsp, q->buf, q->len);
            return pl_wr_status(rsp);
        }
        a.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
        a.get_eim_package.kind = PL_SGP32_EIM_PACKAGE_ERROR;
        a.get_eim_package.error_code = PL_SGP32_EIM_PKG_ERR_NO_PACKAGE;
        return pl_sgp32_esipa_eim_msg_encode(&a, rsp);
    }
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT, "unexpected ESipa %d", m.kind);
    f->n_provide++;
    cr_assert(m.provide_result.has_eid);
    cr_assert_eq(memcmp(m.provide_result.eid, EID, 16), 0);
    pl_wr_reset(&f->last_result);
    pl_wr_bytes(&f->last_result, req, len);
    a.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    if (f->mode == GARBAGE) {
        pl_wr_bytes(rsp, "\xFF", 1);
        return PL_OK;
    }
    if (f->mode == REFUSE) {
        a.provide_result.kind = PL_SGP32_PROVIDE_RSP_ERROR;
        a.provide_result.error_code = 2;
        return pl_sgp32_esipa_eim_msg_encode(&a, rsp);
    }
    uint32_t seqs[128];
    size_t n = f->mode == ACK_EMPTY ? 0 : result_seqs(&m.provide_result.result, seqs);
    if (f->mode == ACK_EXTRA)
        seqs[n++] = 999;
    if (n == 0) {
        a.provide_result.kind = PL_SGP32_PROVIDE_RSP_EMPTY;
        return pl_sgp32_esipa_eim_msg_encode(&a, rsp);
    }
    struct pl_sgp32_eim_acknowledgements acks;
    memset(&acks, 0, sizeof(acks));
    for (size_t i = 0; i < n; i++) {
        acks.seq[acks.n++] = seqs[i];
        f->acked[f->n_acked++] = seqs[i];
    }
    uint8_t ab[512];
    struct pl_wr aw;
    pl_wr_init_fixed(&aw, ab, sizeof(ab));
    cr_assert_eq(pl_sgp32_eim_acknowledgements_encode(&acks, &aw), PL_OK);
    a.provide_result.kind = PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS;
    a.provide_result.acknowledgements.p = aw.buf;
    a.provide_result.acknowledgements.len = aw.len;
    return pl_sgp32_esipa_eim_msg_encode(&a, rsp);
}

static void q_raw(enum pl_sgp32_eim_package_kind kind, const uint8_t *p, size_t len, int64_t err)
{
    struct pl_sgp32_esipa_eim_msg a;
    cr_assert_lt(F.n, QMAX);
    memset(&a, 0, sizeof(a));
    a.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    a.get_eim_package.kind = kind;
    a.get_eim_package.raw.p = p;
    a.get_eim_package.raw.len = len;
    a.get_eim_package.error_code = err;
    pl_wr_init_dyn(&F.q[F.n], 1 << 16);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_encode(&a, &F.q[F.n]), PL_OK);
    F.n++;
}

static void q_error(int64_t code)
{
    q_raw(PL_SGP32_EIM_PACKAGE_ERROR, NULL, 0, code);
}

/* A PSMO package signed by the eIM (with key: NULL = the eIM's own key). */
static uint32_t q_psmo_key(const struct pl_sgp32_psmo *ops, size_t n, const char *txid,
                           const struct pl_eckey *key)
{
    struct pl_sgp32_euicc_package *pkg = calloc(1, sizeof(*pkg));
    struct pl_wr w;
    pkg->eim_id = pl_sgp32_str(EIM_ID);
    memcpy(pkg->eid, EID, 16);
    pkg->counter = ++F.counter;
    pkg->eim_txid = pl_sgp32_str(txid);
    pkg->kind = PL_SGP32_PACKAGE_PSMO;
    pkg->n_ops = n;
    for (size_t i = 0; i < n; i++)
        pkg->psmo[i] = ops[i];
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_sgp32_euicc_package_request_sign(pkg, F.has_token ? &F.token : NULL,
                                                     key != NULL ? key : F.key, &T.rng, &w),
                 PL_OK);
    q_raw(PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0);
    pl_wr_free(&w);
    free(pkg);
    return F.counter;
}

static uint32_t q_psmo(const struct pl_sgp32_psmo *ops, size_t n, const char *txid)
{
    return q_psmo_key(ops, n, txid, NULL);
}

static struct pl_sgp32_psmo psmo_profile(enum pl_sgp32_psmo_kind kind)
{
    struct pl_sgp32_psmo p;
    memset(&p, 0, sizeof(p));
    p.kind = kind;
    if (kind == PL_SGP32_PSMO_ENABLE)
        memcpy(p.enable.iccid, ICCID, 10);
    else
        memcpy(p.profile.iccid, ICCID, 10);
    return p;
}

static void q_edr(const uint8_t *tags, size_t n_tags, const char *txid,
                  const struct pl_sgp32_ipa_euicc_data_request *base)
{
    struct pl_sgp32_ipa_euicc_data_request q;
    struct pl_wr w;
    if (base != NULL)
        q = *base;
    else
        memset(&q, 0, sizeof(q));
    q.tag_list.p = tags;
    q.tag_list.len = n_tags;
    q.eim_txid = pl_sgp32_str(txid);
    pl_wr_init_dyn(&w, 4096);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_encode(&q, &w), PL_OK);
    q_raw(PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, w.buf, w.len, 0);
    pl_wr_free(&w);
}

/* The last result the eIM received, decoded (borrows F.last_result). */
static void last_result(struct pl_sgp32_provide_eim_package_result *out)
{
    struct pl_sgp32_esipa_ipa_msg m;
    cr_assert_gt(F.last_result.len, 0);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_decode(F.last_result.buf, F.last_result.len, &m), PL_OK);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT);
    *out = m.provide_result;
}

/* Decodes the EPR of the last result and verifies the eUICC's signature. */
static void last_epr(struct pl_sgp32_euicc_package_result *r, size_t *n_notifs)
{
    struct pl_sgp32_provide_eim_package_result pr;
    struct pl_eckey *pub = NULL;
    const uint8_t *der;
    size_t der_len;
    struct pl_cert *cert = NULL;

    last_result(&pr);
    cr_assert(pr.result.kind == PL_SGP32_EIM_RESULT_EPR
                  || pr.result.kind == PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS,
              "result kind %d", pr.result.kind);
    *n_notifs = pr.result.kind == PL_SGP32_EIM_RESULT_EPR ? 0 : pr.result.notifications.count;
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(pr.result.euicc_package_result.p,
                                                      pr.result.euicc_package_result.len, r),
                 PL_OK);
    if (r->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        return;
    pl_euicc_cert_euicc(E, &der, &der_len);
    cr_assert_eq(pl_cert_parse(der, der_len, &cert), PL_OK);
    cr_assert_eq(pl_cert_public_key(cert, &pub), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(r, F.has_token ? &F.token : NULL, pub), PL_OK,
                 "EPR signature");
    pl_eckey_free(pub);
    pl_cert_free(cert);
}

/* ------------------------------------------------------------- production ---- */

static void es10(const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    unsigned ch;
    uint16_t sw = 0;
    struct pl_apdu_ops ops = {pl_euicc_transmit, E};
    cr_assert_eq(pl_et_session(E, &ch), PL_OK);
    cr_assert_eq(pl_et_es10(E, ch, req, len, rsp, &sw), PL_OK, "sw %04X", sw);
    cr_assert_eq(pl_apdu_close_channel(&ops, ch, &sw), PL_OK);
}

/* The line's work: a profile through IFPP (its PIR stays pending, as if the station had not
 * acknowledged it), factory mode closed, the initial eIM configured. */
static void produce(void)
{
    struct pl_it_eim eim = {EIM_ID, EIM_FQDN, false, 0};
    cr_assert_eq(pl_it_produce(&T, E, &eim, ICCID), PL_OK);
    F.has_token = eim.has_token;
    F.token = eim.token;
}

static void open_card(bool lose)
{
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.lose_result_after_enable = lose;
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
    W.e = E;
}

static void ipa_open_cfg(bool reset_hook, unsigned attempts)
{
    struct pl_ipa_config c;
    pl_ipa_config_init(&c);
    c.apdu.transmit = wrap_transmit;
    c.apdu.user = &W;
    if (reset_hook) {
        c.card_reset = wrap_reset;
        c.card_reset_user = &W;
    }
    c.transport.post = feim_post;
    c.transport.user = &F;
    c.clock.now_ms = fclock_now;
    c.clock.user = &CLK;
    c.state_path = STATE;
    c.backoff_min_ms = BACKOFF_MIN;
    c.backoff_max_ms = BACKOFF_MAX;
    c.max_delivery_attempts = attempts;
    c.log = cap_log;
    cr_assert_eq(pl_ipa_new(&c, &IPA), PL_OK);
}

static void ipa_open(void)
{
    ipa_open_cfg(true, 0);
}

static void setup(void)
{
    memset(&W, 0, sizeof(W));
    memset(&F, 0, sizeof(F));
    LOG_LEN = 0;
    LOG[0] = '\0';
    CLK.now = 1700000000000ull;
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_et_mint(&T, "dev.state", 1, NULL, PATH, sizeof(PATH)), PL_OK);
    snprintf(STATE, sizeof(STATE), "%s/ipa.state", T.dir);
    open_card(false);
    pl_euicc_get_eid(E, EID);
    produce();
    F.key = pl_pki_key(T.pki, PL_PKI_EIM);
    pl_wr_init_dyn(&F.last_result, 1 << 17);
    ipa_open();
}

/* The eUICC again, now with the known-silicon knob: the answer to an enable is lost and
 * every command answers '6985' until the card is reset (EIM.md §1.6). */
static void losing_card(bool reset_hook)
{
    pl_ipa_free(IPA);
    IPA = NULL;
    pl_euicc_close(E);
    E = NULL;
    open_card(true);
    ipa_open_cfg(reset_hook, 0);
}

static void teardown(void)
{
    pl_ipa_free(IPA);
    IPA = NULL;
    pl_euicc_close(E);
    E = NULL;
    for (size_t i = 0; i < F.n; i++)
        pl_wr_free(&F.q[i]);
    pl_wr_free(&F.last_result);
    pl_et_free(&T);
}

static void reopen_ipa(void)
{
    pl_ipa_free(IPA);
    IPA = NULL;
    ipa_open();
}

static struct pl_ipa_status status(void)
{
    struct pl_ipa_status s;
    pl_ipa_get_status(IPA, &s);
    return s;
}

static bool profile_enabled(void)
{
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    return pi.enabled;
}

#define POLL(expect)                                                                               \
    do {                                                                                           \
        int prc_ = pl_ipa_poll(IPA);                                                               \
        cr_assert_eq(prc_, (expect), "poll -> %d (%s)\nlog:\n%s", prc_,                            \
                     prc_ < 0 ? pl_strerror(prc_) : "status", LOG);                                \
    } while (0)

/* ------------------------------------------------------------------ tests ---- */

TestSuite(ipa, .init = setup, .fini = teardown);

Test(ipa, config_rejected)
{
    struct pl_ipa_config c;
    struct pl_ipa *x = NULL;
    pl_ipa_config_init(&c);
    cr_assert_eq(pl_ipa_new(&c, &x), PL_ERR_INVAL); /* no seams */
    c.apdu.transmit = wrap_transmit;
    cr_assert_eq(pl_ipa_new(&c, &x), PL_ERR_INVAL); /* no transport */
    c.transport.post = feim_post;
    c.mss = 256;
    cr_assert_eq(pl_ipa_new(&c, &x), PL_ERR_INVAL);
    c.mss = 0;
    c.backoff_min_ms = 10;
    c.backoff_max_ms = 5;
    cr_assert_eq(pl_ipa_new(&c, &x), PL_ERR_INVAL);
    cr_assert_null(x);
    cr_assert_eq(pl_ipa_new(NULL, &x), PL_ERR_INVAL);
}

Test(ipa, first_poll_identifies_and_backs_off)
{
    POLL(PL_IPA_POLL_NO_PACKAGE);
    struct pl_ipa_status s = status();
    cr_assert(s.has_eid);
    cr_assert_eq(memcmp(s.eid, EID, 16), 0);
    cr_assert_str_eq(s.eim_id, EIM_ID);
    cr_assert_str_eq(s.eim_fqdn, EIM_FQDN);
    cr_assert_eq(F.n_get, 1);
    cr_assert_eq(memcmp(F.last_eid, EID, 16), 0);
    cr_assert_not(F.last_notify);
    cr_assert_eq(s.polls, 1);
    cr_assert_eq(s.last_poll_ms, CLK.now);

    /* bounded exponential back-off: 1, 2, 4, 8, 8 s */
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), BACKOFF_MIN);
    uint64_t expect[] = {2000, 4000, 8000, 8000};
    for (size_t i = 0; i < 4; i++) {
        POLL(PL_IPA_POLL_NO_PACKAGE);
        cr_assert_eq(pl_ipa_next_poll_ms(IPA), expect[i], "step %zu", i);
    }
    CLK.now += 3000;
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), 5000);
    CLK.now += 10000;
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), 0);

    /* work resets it */
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo(&en, 1, "T1");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), 0);
    cr_assert_eq(status().backoff_ms, 0);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), BACKOFF_MIN);
}

Test(ipa, euicc_package_result_notifications_and_acks)
{
    cr_assert_eq(pl_euicc_notif_count(E), 1); /* the factory PIR, still pending */
    cr_assert_not(profile_enabled());
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    uint32_t counter = q_psmo(&en, 1, "TX-ENABLE");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert(profile_enabled());
    cr_assert_eq(W.loads, 1);

    /* ProvideEimPackageResult: the eUICC-signed result plus the pending PIR */
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    size_t n_notifs = 0;
    last_epr(r, &n_notifs);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(r->counter, counter);
    cr_assert(pl_sgp32_buf_eq(r->eim_txid, pl_sgp32_str("TX-ENABLE")));
    cr_assert_eq(r->n_results, 1);
    cr_assert_eq(r->results[0].kind, PL_SGP32_RESULT_ENABLE);
    cr_assert_eq(r->results[0].code, PL_SGP32_RC_OK);
    cr_assert_eq(n_notifs, 1);
    uint32_t epr_seq = r->seq_number;
    free(r);

    /* the eIM acknowledged both: NotificationSent removed them from the eUICC */
    cr_assert_eq(F.n_acked, 2);
    cr_assert_eq(pl_euicc_notif_count(E), 0);
    cr_assert_eq(pl_euicc_epr_count(E), 0);
    struct pl_ipa_status s = status();
    cr_assert_eq(s.acks_applied, 2);
    cr_assert_eq(s.awaiting_ack, 0);
    cr_assert_not(s.result_pending);
    cr_assert_not(s.package_in_flight);
    cr_assert_not(pl_ipa_awaiting_ack(IPA, epr_seq));
    cr_assert_eq(s.packages, 1);

    /* a second package: disable; no notification pending any more -> plain EPR arm */
    struct pl_sgp32_psmo dis = psmo_profile(PL_SGP32_PSMO_DISABLE);
    q_psmo(&dis, 1, "TX-DISABLE");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_not(profile_enabled());
    struct pl_sgp32_provide_eim_package_result pr;
    last_result(&pr);
    cr_assert_eq(pr.result.kind, PL_SGP32_EIM_RESULT_EPR);
    cr_assert_eq(pl_euicc_epr_count(E), 0);
    /* order on the wire: get, provide, get, provide */
    cr_assert_eq(F.n_kinds, 4);
    cr_assert_eq(F.kinds[0], PL_SGP32_ESIPA_GET_EIM_PACKAGE);
    cr_assert_eq(F.kinds[1], PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT);
}

Test(ipa, acknowledgements_only_for_what_was_delivered)
{
    /* emptyResponse: nothing removed, the IPA still awaits both */
    F.mode = ACK_EMPTY;
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo(&en, 1, "A1");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(pl_euicc_epr_count(E), 1);
    cr_assert_eq(pl_euicc_notif_count(E), 1);
    cr_assert_eq(status().awaiting_ack, 2);
    cr_assert_not(status().result_pending);

    /* the next result is acknowledged together with a seqNumber never delivered (999) */
    F.mode = ACK_EXTRA;
    struct pl_sgp32_psmo dis = psmo_profile(PL_SGP32_PSMO_DISABLE);
    q_psmo(&dis, 1, "A2");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_not(pl_ipa_awaiting_ack(IPA, 999));
    cr_assert_not_null(strstr(LOG, "seq 999 ignored"));
    /* the PIR went again with this result and is gone now; the first EPR, never
     * acknowledged, is still stored on the card and awaited */
    cr_assert_eq(pl_euicc_epr_count(E), 1);
    cr_assert_eq(pl_euicc_notif_count(E), 0);
    cr_assert_eq(status().awaiting_ack, 1);

    /* the eIM re-queries the old result: IpaEuiccData A2, then acknowledges it */
    F.mode = ACK_ALL;
    static const uint8_t tags[] = {0xA0, 0xA2};
    q_edr(tags, sizeof(tags), "EDR-1", NULL);
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(pl_euicc_epr_count(E), 0);
    cr_assert_eq(pl_euicc_notif_count(E), 0);
    cr_assert_eq(status().awaiting_ack, 0);
}

Test(ipa, ipa_euicc_data_collected)
{
    static const uint8_t tags[] = {0xA0, 0x81, 0xA2, 0xBF, 0x20, 0xBF, 0x22,
                                   0x83, 0x84, 0xA5, 0xA6, 0xA8, 0xA9, 0x87};
    F.mode = ACK_EMPTY;
    q_edr(tags, sizeof(tags), "EDR-TX", NULL);
    POLL(PL_IPA_POLL_WORK_DONE);
    struct pl_sgp32_provide_eim_package_result pr;
    last_result(&pr);
    cr_assert_eq(pr.result.kind, PL_SGP32_EIM_RESULT_IPA_EUICC_DATA);
    struct pl_sgp32_ipa_euicc_data_response *d = calloc(1, sizeof(*d));
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(pr.result.ipa_euicc_data_response.p,
                                                         pr.result.ipa_euicc_data_response.len, d),
                 PL_OK);
    cr_assert_not(d->is_error, "error %lld\n%s", (long long)d->error_code, LOG);
    cr_assert(pl_sgp32_buf_eq(d->data.eim_txid, pl_sgp32_str("EDR-TX")));
    cr_assert_eq(d->data.notifications.count, 1); /* the factory PIR */
    cr_assert_not_null(d->data.epr_list.p);       /* present, empty */
    cr_assert_eq(d->data.epr_list.count, 0);
    cr_assert_not_null(d->data.euicc_info1.p);
    cr_assert_eq(d->data.euicc_info1.p[0], 0xBF);
    cr_assert_eq(d->data.euicc_info1.p[1], 0x20);
    cr_assert_not_null(d->data.euicc_info2.p);
    cr_assert_eq(d->data.euicc_info2.p[1], 0x22);
    cr_assert_eq(d->data.has_association_token, F.has_token);
    if (F.has_token)
        cr_assert_eq(d->data.association_token, F.token);
    /* CERT.EUICC / CERT.EUM: the certificate contents, byte for byte */
    const uint8_t *der;
    size_t der_len;
    struct pl_tlv t;
    pl_euicc_cert_euicc(E, &der, &der_len);
    cr_assert_eq(pl_der_parse_one(der, der_len, PL_TAG_SEQUENCE, &t), PL_OK);
    cr_assert_eq(d->data.euicc_certificate.len, t.len);
    cr_assert_eq(memcmp(d->data.euicc_certificate.p, t.value, t.len), 0);
    pl_euicc_cert_eum(E, &der, &der_len);
    cr_assert_eq(pl_der_parse_one(der, der_len, PL_TAG_SEQUENCE, &t), PL_OK);
    cr_assert_eq(memcmp(d->data.eum_certificate.p, t.value, t.len), 0);
    cr_assert(d->data.has_ipa_capabilities);
    cr_assert(d->data.has_ipa_supported_protocols);
    cr_assert_eq(d->data.ipa_supported_protocols, PL_SGP32_PROTO_RETRIEVE_COAPS);
    cr_assert_null(d->data.device_info.p); /* not configured: left out */
    /* the delivered PIR awaits an acknowledgement */
    cr_assert_eq(status().awaiting_ack, 1);
    free(d);
}

Test(ipa, ipa_euicc_data_errors)
{
    /* a tag that is no IpaEuiccData component: incorrectTagList, txid echoed */
    static const uint8_t bad[] = {0xBF, 0x20, 0x5A};
    q_edr(bad, sizeof(bad), "E1", NULL);
    POLL(PL_IPA_POLL_WORK_DONE);
    struct pl_sgp32_provide_eim_package_result pr;
    struct pl_sgp32_ipa_euicc_data_response *d = calloc(1, sizeof(*d));
    last_result(&pr);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(pr.result.ipa_euicc_data_response.p,
                                                         pr.result.ipa_euicc_data_response.len, d),
                 PL_OK);
    cr_assert(d->is_error);
    cr_assert_eq(d->error_code, PL_SGP32_EDR_INCORRECT_TAG_LIST);
    cr_assert(pl_sgp32_buf_eq(d->error_txid, pl_sgp32_str("E1")));
    cr_assert_eq(status().awaiting_ack, 0);

    /* a CI key identifier the eUICC does not know: euiccCiPKIdNotFound */
    static const uint8_t certs[] = {0xA6};
    static const uint8_t ski[20] = {1, 2, 3};
    struct pl_sgp32_ipa_euicc_data_request base;
    memset(&base, 0, sizeof(base));
    base.euicc_ci_pkid.p = ski;
    base.euicc_ci_pkid.len = sizeof(ski);
    q_edr(certs, sizeof(certs), "E2", &base);
    POLL(PL_IPA_POLL_WORK_DONE);
    last_result(&pr);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(pr.result.ipa_euicc_data_response.p,
                                                         pr.result.ipa_euicc_data_response.len, d),
                 PL_OK);
    cr_assert(d->is_error);
    cr_assert_eq(d->error_code, PL_SGP32_EDR_CI_PKID_NOT_FOUND);

    /* a request that does not decode: eimPackageResultResponseError invalidPackageFormat */
    static const uint8_t junk[] = {0xBF, 0x52, 0x02, 0x04, 0x00};
    q_raw(PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, junk, sizeof(junk), 0);
    POLL(PL_IPA_POLL_WORK_DONE);
    last_result(&pr);
    cr_assert_eq(pr.result.kind, PL_SGP32_EIM_RESULT_ERROR);
    cr_assert_eq(pr.result.error_code, PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT);
    free(d);
}

Test(ipa, profile_download_trigger_recorded)
{
    struct pl_sgp32_profile_download_trigger_request q;
    struct pl_wr w;
    memset(&q, 0, sizeof(q));
    q.kind = PL_SGP32_PDD_ACTIVATION_CODE;
    q.activation_code = pl_sgp32_str("1$smdp.example$MATCHING-ID");
    q.eim_txid = pl_sgp32_str("PDT1");
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_encode(&q, &w), PL_OK);
    q_raw(PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER, w.buf, w.len, 0);
    POLL(PL_IPA_POLL_WORK_DONE);

    struct pl_sgp32_provide_eim_package_result pr;
    struct pl_sgp32_profile_download_trigger_result r;
    last_result(&pr);
    cr_assert_eq(pr.result.kind, PL_SGP32_EIM_RESULT_PDT_RESULT);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_decode(pr.result.pdt_result.p,
                                                                 pr.result.pdt_result.len, &r),
                 PL_OK);
    cr_assert(r.is_error);
    cr_assert_eq(r.error_reason, PL_SGP32_PDT_UNDEFINED);
    cr_assert(pl_sgp32_buf_eq(r.eim_txid, pl_sgp32_str("PDT1")));

    const uint8_t *p;
    size_t len;
    cr_assert_eq(pl_ipa_last_trigger(IPA, &p, &len), PL_OK);
    cr_assert_eq(len, w.len);
    cr_assert_eq(memcmp(p, w.buf, len), 0);
    /* the record survives a restart */
    reopen_ipa();
    cr_assert(status().has_trigger);
    cr_assert_eq(pl_ipa_last_trigger(IPA, &p, &len), PL_OK);
    cr_assert_eq(memcmp(p, w.buf, len), 0);
    pl_wr_free(&w);
}

Test(ipa, eim_errors_and_bad_answers)
{
    const uint8_t *tp = NULL;
    size_t tl = 0;
    cr_assert_eq(pl_ipa_last_trigger(IPA, &tp, &tl), PL_ERR_NOT_FOUND);
    q_error(PL_SGP32_EIM_PKG_ERR_EID_NOT_FOUND);
    POLL(PL_IPA_POLL_EIM_ERROR);
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), BACKOFF_MIN);

    F.garbage_get = true;
    POLL(PL_ERR_MALFORMED);
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), 2 * BACKOFF_MIN);

    F.wrong_kind = true; /* a ProvideEimPackageResult answer to GetEimPackage */
    POLL(PL_ERR_MALFORMED);

    F.fail_posts = 1;
    F.fail_rc = PL_ERR_DENIED;
    POLL(PL_ERR_DENIED);
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), BACKOFF_MAX);

    /* a BF51 that is strict DER but no EuiccPackageRequest: never reaches the eUICC */
    static const uint8_t bogus[] = {0xBF, 0x51, 0x04, 0x30, 0x02, 0x80, 0x00};
    q_raw(PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, bogus, sizeof(bogus), 0);
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(W.loads, 0);
    struct pl_sgp32_provide_eim_package_result pr;
    last_result(&pr);
    cr_assert_eq(pr.result.kind, PL_SGP32_EIM_RESULT_ERROR);
    cr_assert_eq(pr.result.error_code, PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT);
}

Test(ipa, forged_package_gets_the_euiccs_unsigned_error)
{
    struct pl_eckey *rogue = NULL;
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &T.rng, &rogue), PL_OK);
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo_key(&en, 1, "FORGED", rogue);
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(W.loads, 1);
    cr_assert_not(profile_enabled());
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    size_t n = 0;
    last_epr(r, &n);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    cr_assert(pl_sgp32_buf_eq(r->eim_txid, pl_sgp32_str("FORGED")));
    free(r);
    pl_eckey_free(rogue);
}

Test(ipa, lost_result_recovered_after_reset)
{
    losing_card(true);
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    uint32_t counter = q_psmo(&en, 1, "LOST-1");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(W.resets, 1, "%s", LOG);
    cr_assert(profile_enabled());
    struct pl_ipa_status s = status();
    cr_assert_eq(s.results_recovered, 1);
    cr_assert_not(s.package_in_flight);
    /* the eIM got the eUICC's own signed result, not an invented one */
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    size_t n = 0;
    last_epr(r, &n);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(r->counter, counter);
    cr_assert_eq(r->results[0].kind, PL_SGP32_RESULT_ENABLE);
    cr_assert_eq(r->results[0].code, PL_SGP32_RC_OK);
    free(r);
    cr_assert_eq(pl_euicc_epr_count(E), 0); /* acknowledged and removed */
    cr_assert_not(pl_euicc_awaiting_reset(E));
}

Test(ipa, lost_result_kept_in_flight_until_the_card_answers)
{
    losing_card(false); /* this device cannot reset its eUICC */
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    uint32_t counter = q_psmo(&en, 1, "LOST-2");
    int rc = pl_ipa_poll(IPA);
    /* ipa.h: the eUICC could not be reached (it answers every command with an error SW) */
    cr_assert_eq(rc, PL_ERR_CARD_SW, "%s", pl_strerror(rc));
    cr_assert(status().package_in_flight);
    cr_assert_not(status().result_pending);
    cr_assert_eq(F.n_provide, 0); /* nothing invented */
    cr_assert_eq(pl_ipa_next_poll_ms(IPA), BACKOFF_MIN);

    /* the IPA restarts (state file) while the card still refuses everything */
    pl_ipa_free(IPA);
    IPA = NULL;
    ipa_open_cfg(false, 0);
    cr_assert(status().package_in_flight);
    rc = pl_ipa_poll(IPA);
    cr_assert_eq(rc, PL_ERR_CARD_SW, "%s", pl_strerror(rc));
    cr_assert_eq(F.n_provide, 0);

    /* the device resets the card: the stored result is fetched and delivered first */
    cr_assert_eq(pl_euicc_reset(E), PL_OK);
    unsigned gets = F.n_get;
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(F.n_get, gets); /* no GetEimPackage before the owed result */
    cr_assert_eq(F.n_provide, 1);
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    size_t n = 0;
    last_epr(r, &n);
    cr_assert_eq(r->counter, counter);
    free(r);
    cr_assert_eq(status().results_recovered, 1);
    cr_assert_not(status().package_in_flight);
}

Test(ipa, lost_request_reports_undefined_error)
{
    /* the link drops the package before the eUICC sees it: nothing stored there */
    W.drop_load = true;
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo(&en, 1, "NEVER");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(W.loads, 0);
    cr_assert_not(profile_enabled());
    struct pl_sgp32_provide_eim_package_result pr;
    last_result(&pr);
    cr_assert_eq(pr.result.kind, PL_SGP32_EIM_RESULT_ERROR);
    cr_assert_eq(pr.result.error_code, PL_SGP32_EIM_RESULT_ERR_UNDEFINED);
    cr_assert(pl_sgp32_buf_eq(pr.result.error_txid, pl_sgp32_str("NEVER")));
    cr_assert_eq(status().results_recovered, 0);
    /* the eIM may send it again (same counter is still unused on the eUICC) */
    F.counter--;
    q_psmo(&en, 1, "AGAIN");
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert(profile_enabled());
}

Test(ipa, pending_result_survives_restart_and_goes_first)
{
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo(&en, 1, "P1");
    /* The package arrives (through the public handler), the ProvideEimPackageResult is lost
     * on the way (transport timeout). */
    cr_assert_eq(F.n, 1);
    struct pl_wr *q = &F.q[F.next++];
    F.fail_posts = 1; /* the provide */
    F.fail_rc = PL_ERR_TIMEOUT;
    int rc = pl_ipa_handle_get_eim_package_response(IPA, q->buf, q->len);
    cr_assert_eq(rc, PL_ERR_TIMEOUT, "%d\n%s", rc, LOG);
    cr_assert(profile_enabled());
    struct pl_ipa_status s = status();
    cr_assert(s.result_pending);
    cr_assert_eq(s.result_attempts, 0); /* transport failures do not count */
    cr_assert_eq(F.n_provide, 0);

    /* restart: the result is still owed and goes before any GetEimPackage */
    reopen_ipa();
    cr_assert(status().result_pending);
    unsigned gets = F.n_get;
    POLL(PL_IPA_POLL_WORK_DONE);
    cr_assert_eq(F.n_get, gets);
    cr_assert_eq(F.n_provide, 1);
    cr_assert_not(status().result_pending);
    cr_assert_eq(pl_euicc_epr_count(E), 0);
    POLL(PL_IPA_POLL_NO_PACKAGE);
}

Test(ipa, refused_result_dropped_after_attempts)
{
    pl_ipa_free(IPA);
    IPA = NULL;
    ipa_open_cfg(true, 2);
    F.mode = REFUSE;
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo(&en, 1, "R1");
    POLL(PL_ERR_REMOTE);
    cr_assert(status().result_pending);
    cr_assert_eq(status().result_attempts, 1);
    F.mode = GARBAGE;
    POLL(PL_ERR_MALFORMED);
    cr_assert_not(status().result_pending); /* given up: the eUICC keeps its copy */
    cr_assert_eq(pl_euicc_epr_count(E), 1);
    F.mode = ACK_ALL;
    POLL(PL_IPA_POLL_NO_PACKAGE);
}

Test(ipa, notify_state_change_on_foreign_change)
{
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert_not(F.last_notify);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert_not(F.last_notify);

    /* an eIM package the IPA carried out is no foreign change */
    struct pl_sgp32_psmo en = psmo_profile(PL_SGP32_PSMO_ENABLE);
    q_psmo(&en, 1, "N1");
    POLL(PL_IPA_POLL_WORK_DONE);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert_not(F.last_notify);

    /* someone else disables the profile behind the IPA's back (a package sent directly) */
    struct pl_sgp32_euicc_package *pkg = calloc(1, sizeof(*pkg));
    struct pl_wr w, rsp;
    pkg->eim_id = pl_sgp32_str(EIM_ID);
    memcpy(pkg->eid, EID, 16);
    pkg->counter = ++F.counter;
    pkg->kind = PL_SGP32_PACKAGE_PSMO;
    pkg->n_ops = 1;
    pkg->psmo[0] = psmo_profile(PL_SGP32_PSMO_DISABLE);
    pl_wr_init_dyn(&w, 1 << 16);
    pl_wr_init_dyn(&rsp, 1 << 16);
    cr_assert_eq(
        pl_sgp32_euicc_package_request_sign(pkg, F.has_token ? &F.token : NULL, F.key, &T.rng, &w),
        PL_OK);
    es10(w.buf, w.len, &rsp);
    cr_assert_not(profile_enabled());

    /* the first poll after it carries notifyStateChange; a failed one keeps it owed */
    F.fail_posts = 1;
    cr_assert_eq(pl_ipa_poll(IPA), PL_ERR_TIMEOUT);
    cr_assert(status().notify_state_change);
    reopen_ipa();
    cr_assert(status().notify_state_change);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert(F.last_notify);
    cr_assert_not(status().notify_state_change);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert_not(F.last_notify);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    free(pkg);
}

Test(ipa, state_file_bound_to_the_euicc)
{
    POLL(PL_IPA_POLL_NO_PACKAGE);
    cr_assert_eq(status().polls, 1);
    reopen_ipa();
    struct pl_ipa_status s = status();
    cr_assert_eq(s.polls, 1);
    cr_assert_eq(s.backoff_ms, BACKOFF_MIN);
    cr_assert_str_eq(s.eim_id, EIM_ID);

    /* another eUICC in the same device: fresh state */
    char other[512];
    pl_euicc_close(E);
    E = NULL;
    cr_assert_eq(pl_et_mint(&T, "other.state", 1, NULL, other, sizeof(other)), PL_OK);
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(other, &o, &E), PL_OK);
    W.e = E;
    int rc = pl_ipa_poll(IPA); /* factory-mode card: no eIM configuration, still polls */
    cr_assert_eq(rc, PL_IPA_POLL_NO_PACKAGE, "%d\n%s", rc, LOG);
    s = status();
    uint8_t eid2[16];
    pl_euicc_get_eid(E, eid2);
    cr_assert_eq(memcmp(s.eid, eid2, 16), 0);
    cr_assert_eq(s.polls, 1);
    cr_assert_str_eq(s.eim_id, "");
    cr_assert_not_null(strstr(LOG, "another eUICC"));
}

Test(ipa, state_file_corruption_refused)
{
    POLL(PL_IPA_POLL_NO_PACKAGE);
    pl_ipa_free(IPA);
    IPA = NULL;
    size_t len;
    uint8_t *b = pl_test_read_file(STATE, &len);
    cr_assert_not_null(b);
    struct pl_ipa_config c;
    pl_ipa_config_init(&c);
    c.apdu.transmit = wrap_transmit;
    c.apdu.user = &W;
    c.transport.post = feim_post;
    c.transport.user = &F;
    c.state_path = STATE;
    for (size_t i = 0; i < len; i += 7) {
        b[i] ^= 0x40;
        FILE *f = fopen(STATE, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(b, 1, len, f), len);
        fclose(f);
        cr_assert_eq(pl_ipa_new(&c, &IPA), PL_ERR_MALFORMED, "byte %zu", i);
        cr_assert_null(IPA);
        b[i] ^= 0x40;
    }
    FILE *f = fopen(STATE, "wb");
    cr_assert_eq(fwrite(b, 1, len / 2, f), len / 2); /* torn */
    fclose(f);
    cr_assert_eq(pl_ipa_new(&c, &IPA), PL_ERR_MALFORMED);
    f = fopen(STATE, "wb");
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
    cr_assert_eq(pl_ipa_new(&c, &IPA), PL_OK);
    struct stat sb;
    cr_assert_eq(stat(STATE, &sb), 0);
    free(b);
}

Test(ipa, state_file_mode_and_no_leftover)
{
    POLL(PL_IPA_POLL_NO_PACKAGE);
    struct stat sb;
    cr_assert_eq(stat(STATE, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", STATE);
    cr_assert_neq(stat(tmp, &sb), 0);
}
