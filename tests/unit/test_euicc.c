/* Unit tests of the software eUICC (sim/euicc.h): state file, APDU front end, ES10f and
 * the SGP.22 BPP load in factory mode, and the eUICC rows of the IFPP failure matrix
 * (IFPP.md §7 cases 1-3, 5-7, 10, 15-19, 21). Packages are bound with pl_bpp_bind and
 * loaded through pl_es10_transceive over pl_euicc_transmit. */
#define _POSIX_C_SOURCE 200809L
#include "../../sim/src/euicc_internal.h" /* white-box: the state file codec */
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UPP_A "TS48V2-SAIP2-1-BERTLV-UNIQUE.der"
#define UPP_B "TS48V3-SAIP2-3-NOBERTLV-UNIQUE.der"

/* ---- fixture ---- */

static struct pl_et T;
static char PATH[512];
static struct pl_euicc *E;
static unsigned CH;
static uint8_t *UPP;
static size_t UPP_LEN;

static void open_card(void)
{
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
    cr_assert_eq(pl_et_session(E, &CH), PL_OK);
}

static void setup_curve(enum pl_curve c, unsigned n_otks)
{
    int rc = pl_et_init(&T, c);
    cr_assert_eq(rc, PL_OK, "test PKI: %s", pl_strerror(rc));
    cr_assert_eq(pl_et_mint(&T, "euicc.state", n_otks, NULL, PATH, sizeof(PATH)), PL_OK);
    UPP = pl_et_upp(UPP_A, &UPP_LEN);
    cr_assert_not_null(UPP);
    open_card();
}

static void setup(void)
{
    setup_curve(PL_CURVE_P256, 4);
}

static void teardown(void)
{
    pl_euicc_close(E);
    E = NULL;
    free(UPP);
    UPP = NULL;
    pl_et_free(&T);
}

static void reopen(void)
{
    pl_euicc_close(E);
    E = NULL;
    open_card();
}

static enum pl_euicc_otk_state otk_state(uint16_t id)
{
    struct pl_euicc_otk_info oi;
    cr_assert_eq(pl_euicc_otk_by_id(E, id, &oi), PL_OK);
    return oi.state;
}

/* Loads pkg and returns the verified PIR (pir must be an initialised writer). */
static void load_pir(const struct pl_et_pkg *p, struct pl_wr *w, struct pl_pir *pir)
{
    uint16_t sw = 0;
    cr_assert_eq(pl_et_load(E, CH, p, w, &sw), PL_OK, "sw %04x", sw);
    cr_assert_gt(w->len, 0, "no PIR");
    cr_assert_eq(pl_et_pir_check(E, w->buf, w->len, pir), PL_OK);
}

static void expect_error(const struct pl_pir *pir, int cmd, int reason)
{
    cr_assert_not(pir->success);
    cr_assert_eq(pir->cmd_id, cmd, "bppCommandId %lld", (long long)pir->cmd_id);
    cr_assert_eq(pir->reason, reason, "errorReason %lld (%s)", (long long)pir->reason,
                 pl_pir_reason_name(pir->reason));
}

/* ES10 request -> response data; returns the SW. */
static uint16_t es10(const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    uint16_t sw = 0;
    int rc = pl_et_es10(E, CH, req, len, rsp, &sw);
    cr_assert(rc == PL_OK || rc == PL_ERR_CARD_SW, "rc %d", rc);
    return sw;
}

/* Pending notifications, decoded. */
static size_t pending(struct pl_wr *buf, struct pl_notif_rnl_rsp *r)
{
    struct pl_wr q;
    uint8_t qb[16];
    struct pl_notif_rnl_req req = {.crit = PL_NOTIF_CRIT_NONE};
    pl_wr_init_fixed(&q, qb, sizeof(qb));
    cr_assert_eq(pl_notif_rnl_req_encode(&req, &q), PL_OK);
    pl_wr_reset(buf);
    cr_assert_eq(es10(q.buf, q.len, buf), PL_SW_OK);
    cr_assert_eq(pl_notif_rnl_rsp_decode(buf->buf, buf->len, r), PL_OK);
    cr_assert_not(r->is_error);
    return r->n;
}

/* ---- the happy path, both curves ---- */

static void roundtrip(bool rsk)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_bind_for(&T, E, 2, UPP, UPP_LEN, rsk, &p), PL_OK);
    load_pir(&p, &w, &pir);
    cr_assert(pir.success, "PIR error %lld/%lld", (long long)pir.cmd_id, (long long)pir.reason);
    cr_assert_eq(pir.tid_len, p.tid_len);
    cr_assert_eq(memcmp(pir.tid, p.tid, p.tid_len), 0);
    cr_assert_eq(pir.meta.seq, 1);
    cr_assert(pir.meta.has_iccid);

    cr_assert_eq(pl_euicc_profile_count(E), 1);
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    cr_assert_eq(pi.upp_len, UPP_LEN);
    cr_assert_eq(memcmp(pi.upp, UPP, UPP_LEN), 0, "installed profile differs from the UPP");
    cr_assert_eq(memcmp(pi.iccid, pir.meta.iccid, 10), 0);
    cr_assert_eq(pir.aid_len, 16);
    cr_assert_eq(memcmp(pir.aid, pi.aid, 16), 0);
    cr_assert_not(pi.enabled);
    cr_assert_eq(otk_state(2), PL_EUICC_OTK_CONSUMED);
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_FREE);
    cr_assert_not(pl_euicc_load_in_progress(E));
    cr_assert_eq(pl_euicc_notif_count(E), 1);

    /* Durable: the same after a power cycle, and the PIR is still pending. */
    reopen();
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    cr_assert_eq(memcmp(pi.upp, UPP, UPP_LEN), 0);
    struct pl_notif_rnl_rsp *r = calloc(1, sizeof(*r));
    struct pl_wr nb;
    pl_wr_init_dyn(&nb, 1 << 16);
    cr_assert_eq(pending(&nb, r), 1);
    cr_assert_eq(r->items[0].raw_len, w.len);
    cr_assert_eq(memcmp(r->items[0].raw, w.buf, w.len), 0);

    /* NotificationSent removes it (durably); a second time there is nothing to delete. */
    struct pl_wr q, a;
    uint8_t qb[32], ab[32];
    int64_t st;
    pl_wr_init_fixed(&q, qb, sizeof(qb));
    pl_wr_init_fixed(&a, ab, sizeof(ab));
    cr_assert_eq(pl_notif_sent_req_encode(pir.meta.seq, &q), PL_OK);
    cr_assert_eq(es10(q.buf, q.len, &a), PL_SW_OK);
    cr_assert_eq(pl_notif_sent_rsp_decode(a.buf, a.len, &st), PL_OK);
    cr_assert_eq(st, PL_NOTIF_SENT_OK);
    pl_wr_reset(&a);
    cr_assert_eq(es10(q.buf, q.len, &a), PL_SW_OK);
    cr_assert_eq(pl_notif_sent_rsp_decode(a.buf, a.len, &st), PL_OK);
    cr_assert_eq(st, PL_NOTIF_SENT_NOTHING_TO_DELETE);
    reopen();
    cr_assert_eq(pl_euicc_notif_count(E), 0);

    free(r);
    pl_wr_free(&nb);
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

Test(euicc, roundtrip_p256, .init = setup, .fini = teardown)
{
    roundtrip(false);
}

Test(euicc, roundtrip_p256_replace_session_keys, .init = setup, .fini = teardown)
{
    roundtrip(true);
}

static void setup_bp(void)
{
    setup_curve(PL_CURVE_BP256R1, 3);
}

Test(euicc, roundtrip_brainpool, .init = setup_bp, .fini = teardown)
{
    cr_assert_eq(pl_euicc_curve(E), PL_CURVE_BP256R1);
    roundtrip(false);
}

Test(euicc, roundtrip_brainpool_replace_session_keys, .init = setup_bp, .fini = teardown)
{
    roundtrip(true);
}

/* ---- IFPP.md §7 case 1: replay to the same chip ---- */

Test(euicc, replay_same_chip_refused, .init = setup, .fini = teardown)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    load_pir(&p, &w, &pir);
    cr_assert(pir.success);
    pl_wr_reset(&w);
    load_pir(&p, &w, &pir);
    expect_error(&pir, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INCORRECT_INPUT_VALUES);
    cr_assert_eq(memcmp(pir.tid, p.tid, p.tid_len), 0);
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_CONSUMED);
    cr_assert_eq(otk_state(2), PL_EUICC_OTK_FREE);
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

/* ---- case 2: a package for chip A on chip B; B's OTKs untouched ---- */

Test(euicc, package_for_other_chip_refused, .init = setup, .fini = teardown)
{
    char path_b[512];
    struct pl_euicc *a = NULL;
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_et_mint(&T, "chip-a.state", 4, NULL, path_b, sizeof(path_b)), PL_OK);
    cr_assert_eq(pl_euicc_open(path_b, &o, &a), PL_OK);
    cr_assert_eq(pl_et_bind_for(&T, a, 1, UPP, UPP_LEN, false, &p), PL_OK);
    pl_euicc_close(a);

    pl_wr_init_dyn(&w, 1 << 16);
    load_pir(&p, &w, &pir); /* E is chip B */
    expect_error(&pir, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_SIGNATURE);
    for (uint16_t id = 1; id <= 4; id++)
        cr_assert_eq(otk_state(id), PL_EUICC_OTK_FREE);
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    cr_assert(pl_euicc_factory_mode(E));
    /* The error PIR is a pending notification, and B is still fully usable. */
    cr_assert_eq(pl_euicc_notif_count(E), 1);
    struct pl_et_pkg good;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &good), PL_OK);
    pl_wr_reset(&w);
    load_pir(&good, &w, &pir);
    cr_assert(pir.success);
    cr_assert_eq(pir.meta.seq, 2);
    pl_et_pkg_free(&good);
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

/* ---- case 3: wrong otkId on the right chip ---- */

Test(euicc, wrong_otk_id_refused, .init = setup, .fini = teardown)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    struct pl_euicc_otk_info oi;
    uint8_t eid[16];
    pl_euicc_get_eid(E, eid);
    cr_assert_eq(pl_euicc_otk_by_id(E, 1, &oi), PL_OK);
    /* bound to OTK 1, header says OTK 3 */
    cr_assert_eq(pl_et_bind(&T, eid, oi.pk, 3, UPP, UPP_LEN, false, &p), PL_OK);
    pl_wr_init_dyn(&w, 1 << 16);
    load_pir(&p, &w, &pir);
    expect_error(&pir, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_SIGNATURE);
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_FREE);
    cr_assert_eq(otk_state(3), PL_EUICC_OTK_FREE);

    /* unknown otkId: incorrectInputValues, nothing consumed */
    pl_wr_reset(&p.hdr);
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &der, &der_len);
    cr_assert_eq(pl_et_header(99, p.tid, p.tid_len, &der, &der_len, 1, &p.hdr), PL_OK);
    pl_wr_reset(&w);
    load_pir(&p, &w, &pir);
    expect_error(&pir, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INCORRECT_INPUT_VALUES);
    for (uint16_t id = 1; id <= 4; id++)
        cr_assert_eq(otk_state(id), PL_EUICC_OTK_FREE);
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

/* ---- case 5: tampered smdpSign / ISCR / dpfChain; no state change ---- */

static void expect_no_spend(void)
{
    for (size_t i = 0; i < pl_euicc_otk_count(E); i++) {
        struct pl_euicc_otk_info oi;
        cr_assert_eq(pl_euicc_otk_get(E, i, &oi), PL_OK);
        cr_assert_eq(oi.state, PL_EUICC_OTK_FREE);
    }
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    cr_assert_not(pl_euicc_load_in_progress(E));
}

/* Offset of the first occurrence of needle in the BPP's ISCR segment. */
static size_t find(const struct pl_wr *b, const uint8_t *needle, size_t n)
{
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(b->buf + i, needle, n) == 0)
            return i;
    cr_assert_fail("pattern not found");
    return 0;
}

static void tampered_load(size_t off, int cmd, int reason)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    if (off == SIZE_MAX) {
        static const uint8_t sign_tag[] = {0x5F, 0x37, 0x40};
        off = find(&p.bpp, sign_tag, sizeof(sign_tag)) + 3 + 10;
    }
    p.bpp.buf[off] ^= 0x01;
    pl_wr_init_dyn(&w, 1 << 16);
    load_pir(&p, &w, &pir);
    expect_error(&pir, cmd, reason);
    expect_no_spend();
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

Test(euicc, tampered_smdp_sign, .init = setup, .fini = teardown)
{
    tampered_load(SIZE_MAX, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_SIGNATURE);
}

Test(euicc, tampered_iscr_otpk_dp, .init = setup, .fini = teardown)
{
    /* a byte of smdpOtpk (5F49 41 04 ...): the signature no longer covers it */
    struct pl_et_pkg p;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    static const uint8_t otpk_tag[] = {0x5F, 0x49, 0x41, 0x04};
    size_t off = find(&p.bpp, otpk_tag, sizeof(otpk_tag)) + 20;
    pl_et_pkg_free(&p);
    tampered_load(off, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_SIGNATURE);
}

Test(euicc, tampered_iscr_host_id, .init = setup, .fini = teardown)
{
    struct pl_et_pkg p;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    static const uint8_t host_tag[] = {0x84, 0x08, 'P', 'L'};
    size_t off = find(&p.bpp, host_tag, sizeof(host_tag)) + 5;
    pl_et_pkg_free(&p);
    tampered_load(off, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_SIGNATURE);
}

Test(euicc, iscr_transaction_id_differs_from_header, .init = setup, .fini = teardown)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    uint8_t tid[16];
    memcpy(tid, p.tid, 16);
    tid[0] ^= 0xFF;
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &der, &der_len);
    pl_wr_reset(&p.hdr);
    cr_assert_eq(pl_et_header(1, tid, 16, &der, &der_len, 1, &p.hdr), PL_OK);
    pl_wr_init_dyn(&w, 1 << 16);
    load_pir(&p, &w, &pir);
    expect_error(&pir, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_TRANSACTION_ID);
    expect_no_spend();
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

static void load_with_chain(const uint8_t *der, size_t der_len)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    pl_wr_reset(&p.hdr);
    cr_assert_eq(pl_et_header(1, p.tid, p.tid_len, &der, &der_len, 1, &p.hdr), PL_OK);
    pl_wr_init_dyn(&w, 1 << 16);
    load_pir(&p, &w, &pir);
    expect_error(&pir, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL, PL_PIR_REASON_INVALID_SIGNATURE);
    expect_no_spend();
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

Test(euicc, tampered_dpf_chain, .init = setup, .fini = teardown)
{
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &der, &der_len);
    uint8_t *bad = malloc(der_len);
    memcpy(bad, der, der_len);
    bad[der_len - 5] ^= 0x01; /* inside the CI's signature */
    load_with_chain(bad, der_len);
    free(bad);
}

Test(euicc, dpf_chain_wrong_role_or_foreign_ci, .init = setup, .fini = teardown)
{
    const uint8_t *der;
    size_t der_len;
    /* the eIM signing certificate is CI-signed but not an SM-DPf binding certificate */
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EIM), &der, &der_len);
    load_with_chain(der, der_len);
    /* an SM-DPf certificate from another CI */
    struct pl_et other;
    cr_assert_eq(pl_et_init(&other, PL_CURVE_P256), PL_OK);
    pl_cert_der(pl_pki_cert(other.pki, PL_PKI_DPF), &der, &der_len);
    load_with_chain(der, der_len);
    pl_et_free(&other);
}

Test(euicc, expired_dpf_certificate, .init = setup, .fini = teardown)
{
    /* the eUICC's clock is 30 years ahead: CERT.DPf has expired */
    struct pl_euicc_opts o;
    pl_euicc_close(E);
    pl_euicc_opts_init(&o);
    o.now = time(NULL) + 30LL * 365 * 24 * 3600;
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
    cr_assert_eq(pl_et_session(E, &CH), PL_OK);
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &der, &der_len);
    load_with_chain(der, der_len);
}

/* ---- case 6: tampered / reordered / duplicated / dropped segments ---- */

struct segs {
    struct pl_et_pkg p;
    struct pl_bpp_span *s;
    size_t n;
    size_t first86; /* index of the first '86' segment */
};

static void segs_init(struct segs *g, bool rsk)
{
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, rsk, &g->p), PL_OK);
    g->s = pl_et_segments(g->p.bpp.buf, g->p.bpp.len, &g->n);
    cr_assert_not_null(g->s);
    g->first86 = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->s[i].p[0] == 0xA3) {
            g->first86 = i + 1;
            break;
        }
    }
    cr_assert_gt(g->first86, 0);
    cr_assert_gt(g->n - g->first86, 4, "need several '86' segments");
}

static void segs_free(struct segs *g)
{
    free(g->s);
    pl_et_pkg_free(&g->p);
}

/* Sends header + the given segment list; expects a PIR error and the post-consumption state. */
static void send_expect(struct segs *g, const struct pl_bpp_span *list, size_t n, int cmd,
                        int reason)
{
    struct pl_wr w;
    struct pl_pir pir;
    uint16_t sw = 0;
    size_t sent;
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_send(E, CH, g->p.hdr.buf, g->p.hdr.len, list, n, &w, &sw, &sent), PL_OK,
                 "sw %04x", sw);
    cr_assert_gt(w.len, 0, "no PIR after %zu segments", sent);
    cr_assert_eq(pl_et_pir_check(E, w.buf, w.len, &pir), PL_OK);
    expect_error(&pir, cmd, reason);
    /* the OTK stays consumed, the partial profile is gone, the load is over */
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_CONSUMED);
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    cr_assert_not(pl_euicc_load_in_progress(E));
    reopen();
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_CONSUMED);
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    cr_assert_eq(pl_euicc_notif_count(E), 1);
    pl_wr_free(&w);
}

static struct pl_bpp_span *copy_spans(const struct segs *g)
{
    struct pl_bpp_span *c = calloc(g->n + 1, sizeof(*c));
    memcpy(c, g->s, g->n * sizeof(*c));
    return c;
}

Test(euicc, tampered_86, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    size_t k = g.first86 + 2;
    g.p.bpp.buf[g.s[k].off + 10] ^= 0x80;
    send_expect(&g, g.s, g.n, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS,
                PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    segs_free(&g);
}

Test(euicc, tampered_86_mac, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, true);
    size_t k = g.n - 1;
    g.p.bpp.buf[g.s[k].off + g.s[k].len - 1] ^= 0x01;
    send_expect(&g, g.s, g.n, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS,
                PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    segs_free(&g);
}

Test(euicc, tampered_87_configure_isdp, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    cr_assert_eq(g.s[1].p[0], 0xA0);
    g.p.bpp.buf[g.s[1].off + g.s[1].len - 3] ^= 0x01;
    send_expect(&g, g.s, g.n, PL_PIR_CMD_CONFIGURE_ISDP, PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    segs_free(&g);
}

Test(euicc, tampered_88_store_metadata, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    cr_assert_eq(g.s[3].p[0], 0x88);
    g.p.bpp.buf[g.s[3].off + 8] ^= 0x01;
    send_expect(&g, g.s, g.n, PL_PIR_CMD_STORE_METADATA, PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    segs_free(&g);
}

Test(euicc, tampered_87_replace_session_keys, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, true);
    size_t k = g.first86 - 2;
    cr_assert_eq(g.s[k].p[0], 0xA2);
    g.p.bpp.buf[g.s[k].off + 6] ^= 0x01;
    send_expect(&g, g.s, g.n, PL_PIR_CMD_REPLACE_SESSION_KEYS, PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    segs_free(&g);
}

Test(euicc, reordered_86, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = copy_spans(&g);
    struct pl_bpp_span t = c[g.first86 + 1];
    c[g.first86 + 1] = c[g.first86 + 2];
    c[g.first86 + 2] = t;
    send_expect(&g, c, g.n, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS, PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    free(c);
    segs_free(&g);
}

Test(euicc, duplicated_86, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = calloc(g.n + 1, sizeof(*c));
    size_t k = g.first86 + 1;
    memcpy(c, g.s, (k + 1) * sizeof(*c));
    c[k + 1] = g.s[k];
    memcpy(c + k + 2, g.s + k + 1, (g.n - k - 1) * sizeof(*c));
    send_expect(&g, c, g.n + 1, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS,
                PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    free(c);
    segs_free(&g);
}

Test(euicc, dropped_86, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = copy_spans(&g);
    size_t k = g.first86 + 1;
    memmove(c + k, c + k + 1, (g.n - k - 1) * sizeof(*c));
    send_expect(&g, c, g.n - 1, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS,
                PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    free(c);
    segs_free(&g);
}

Test(euicc, out_of_order_sections, .init = setup, .fini = teardown)
{
    /* 'A1' header before 'A0': a structure error at ConfigureISDP */
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = copy_spans(&g);
    struct pl_bpp_span t = c[1];
    c[1] = c[2];
    c[2] = t;
    send_expect(&g, c, g.n, PL_PIR_CMD_CONFIGURE_ISDP, PL_PIR_REASON_SCP03T_STRUCTURE_ERROR);
    free(c);
    segs_free(&g);
}

Test(euicc, out_of_order_86_before_a3, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = copy_spans(&g);
    struct pl_bpp_span t = c[g.first86 - 1];
    c[g.first86 - 1] = c[g.first86];
    c[g.first86] = t;
    send_expect(&g, c, g.n, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS, PL_PIR_REASON_SCP03T_STRUCTURE_ERROR);
    free(c);
    segs_free(&g);
}

/* ---- case 21: a segment over 1020 bytes ---- */

Test(euicc, oversized_86_segment, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    /* 86 82 0400 <1024 bytes>: 1028 bytes, over PL_BSP_MAX_SEGMENT */
    uint8_t *big = calloc(1, 1028);
    big[0] = 0x86;
    big[1] = 0x82;
    big[2] = 0x04;
    big[3] = 0x00;
    struct pl_bpp_span *c = copy_spans(&g);
    c[g.first86].p = big;
    c[g.first86].len = 1028;
    send_expect(&g, c, g.n, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS, PL_PIR_REASON_SCP03T_STRUCTURE_ERROR);
    free(big);
    free(c);
    segs_free(&g);
}

/* ---- case 7: truncated load, reported at the next session ---- */

static void truncated(bool power_cycle)
{
    struct segs g;
    struct pl_wr w;
    uint16_t sw;
    size_t sent;
    segs_init(&g, false);
    pl_wr_init_dyn(&w, 1 << 16);
    /* unplugged in the middle of the '86' segments */
    cr_assert_eq(pl_et_send(E, CH, g.p.hdr.buf, g.p.hdr.len, g.s, g.n - 2, &w, &sw, &sent), PL_OK);
    cr_assert_eq(w.len, 0, "no BF37 for a truncated load");
    cr_assert(pl_euicc_load_in_progress(E));
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_CONSUMED);
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    if (power_cycle)
        reopen();
    /* next session: the station asks for pending notifications */
    struct pl_notif_rnl_rsp *r = calloc(1, sizeof(*r));
    cr_assert_eq(pending(&w, r), 1);
    struct pl_pir pir;
    cr_assert_eq(pl_et_pir_check(E, r->items[0].raw, r->items[0].raw_len, &pir), PL_OK);
    cr_assert_eq(pir.reason, PL_PIR_REASON_INTERRUPTION);
    cr_assert_not(pir.success);
    cr_assert_eq(memcmp(pir.tid, g.p.tid, g.p.tid_len), 0);
    cr_assert_not(pl_euicc_load_in_progress(E));
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    /* the remaining segments are not accepted as a continuation */
    pl_wr_reset(&w);
    sw = 0;
    int rc = pl_et_es10(E, CH, g.s[g.n - 2].p, g.s[g.n - 2].len, &w, &sw);
    cr_assert_eq(rc, PL_ERR_CARD_SW);
    cr_assert_eq(sw, 0x6A88);
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    free(r);
    pl_wr_free(&w);
    segs_free(&g);
}

Test(euicc, truncated_load_power_cycle, .init = setup, .fini = teardown)
{
    truncated(true);
}

Test(euicc, truncated_load_next_command, .init = setup, .fini = teardown)
{
    truncated(false);
}

Test(euicc, channel_close_interrupts_load, .init = setup, .fini = teardown)
{
    struct segs g;
    struct pl_wr w;
    uint16_t sw;
    size_t sent;
    segs_init(&g, false);
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_send(E, CH, g.p.hdr.buf, g.p.hdr.len, g.s, g.first86 + 1, &w, &sw, &sent),
                 PL_OK);
    struct pl_apdu_ops ops = {pl_euicc_transmit, E};
    cr_assert_eq(pl_apdu_close_channel(&ops, CH, &sw), PL_OK);
    cr_assert_not(pl_euicc_load_in_progress(E));
    cr_assert_eq(pl_euicc_notif_count(E), 1);
    cr_assert_eq(pl_euicc_profile_count(E), 0);
    pl_wr_free(&w);
    segs_free(&g);
}

/* ---- case 10: forged PIR ---- */

Test(euicc, forged_pir_rejected, .init = setup, .fini = teardown)
{
    struct pl_et_pkg p;
    struct pl_wr w;
    struct pl_pir pir;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    pl_wr_init_dyn(&w, 1 << 16);
    load_pir(&p, &w, &pir);
    cr_assert(pir.success);
    /* flip one byte of the signed data (inside the transactionId) */
    size_t tid_off = (size_t)(pir.tid - w.buf);
    w.buf[tid_off] ^= 0x01;
    cr_assert_eq(pl_et_pir_check(E, w.buf, w.len, &pir), PL_ERR_BAD_SIGNATURE);
    w.buf[tid_off] ^= 0x01;
    /* flip one byte of the signature */
    w.buf[w.len - 1] ^= 0x01;
    cr_assert_neq(pl_et_pir_check(E, w.buf, w.len, &pir), PL_OK);
    w.buf[w.len - 1] ^= 0x01;
    cr_assert_eq(pl_et_pir_check(E, w.buf, w.len, &pir), PL_OK);
    /* another eUICC's certificate does not verify it */
    char other[512];
    struct pl_euicc *b = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_et_mint(&T, "other.state", 1, NULL, other, sizeof(other)), PL_OK);
    cr_assert_eq(pl_euicc_open(other, &o, &b), PL_OK);
    cr_assert_eq(pl_et_pir_check(b, w.buf, w.len, &pir), PL_ERR_BAD_SIGNATURE);
    pl_euicc_close(b);
    pl_wr_free(&w);
    pl_et_pkg_free(&p);
}

/* ---- case 19: ICCID already present; no memory ---- */

Test(euicc, iccid_already_exists, .init = setup, .fini = teardown)
{
    struct pl_et_pkg p1, p2;
    struct pl_wr w;
    struct pl_pir pir;
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p1), PL_OK);
    load_pir(&p1, &w, &pir);
    cr_assert(pir.success);
    cr_assert_eq(pl_et_bind_for(&T, E, 2, UPP, UPP_LEN, false, &p2), PL_OK);
    pl_wr_reset(&w);
    load_pir(&p2, &w, &pir);
    expect_error(&pir, PL_PIR_CMD_STORE_METADATA, PL_PIR_REASON_ICCID_ALREADY_EXISTS);
    cr_assert_eq(otk_state(2), PL_EUICC_OTK_CONSUMED); /* rebind with the next OTK */
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    /* the next OTK with another profile works */
    size_t len_b;
    uint8_t *upp_b = pl_et_upp(UPP_B, &len_b);
    struct pl_et_pkg p3;
    cr_assert_eq(pl_et_bind_for(&T, E, 3, upp_b, len_b, false, &p3), PL_OK);
    pl_wr_reset(&w);
    load_pir(&p3, &w, &pir);
    cr_assert(pir.success);
    cr_assert_eq(pl_euicc_profile_count(E), 2);
    free(upp_b);
    pl_et_pkg_free(&p3);
    pl_et_pkg_free(&p1);
    pl_et_pkg_free(&p2);
    pl_wr_free(&w);
}

static void setup_many(void)
{
    setup_curve(PL_CURVE_P256, PL_EUICC_MAX_PROFILES + 2);
}

Test(euicc, insufficient_memory, .init = setup_many, .fini = teardown)
{
    static const char *const names[] = {
        "TS48V1-A-UNIQUE.der",
        "TS48V1-B-UNIQUE.der",
        "TS48V2-SAIP2-1-BERTLV-UNIQUE.der",
        "TS48V2-SAIP2-1-NOBERTLV-UNIQUE.der",
        "TS48V2-SAIP2-3-BERTLV-UNIQUE.der",
        "TS48V2-SAIP2-3-NOBERTLV-UNIQUE.der",
        "TS48V3-SAIP2-1-BERTLV-UNIQUE.der",
        "TS48V3-SAIP2-1-NOBERTLV-UNIQUE.der",
        "TS48V3-SAIP2-3-BERTLV-UNIQUE.der",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == PL_EUICC_MAX_PROFILES + 1, "list");
    struct pl_wr w;
    struct pl_pir pir;
    pl_wr_init_dyn(&w, 1 << 16);
    for (size_t i = 0; i <= PL_EUICC_MAX_PROFILES; i++) {
        size_t len;
        uint8_t *upp = pl_et_upp(names[i], &len);
        struct pl_et_pkg p;
        cr_assert_eq(pl_et_bind_for(&T, E, (uint16_t)(i + 1), upp, len, false, &p), PL_OK);
        pl_wr_reset(&w);
        load_pir(&p, &w, &pir);
        if (i < PL_EUICC_MAX_PROFILES)
            cr_assert(pir.success, "profile %zu", i);
        else
            expect_error(&pir, PL_PIR_CMD_CONFIGURE_ISDP, PL_PIR_REASON_INSUFFICIENT_MEMORY);
        pl_et_pkg_free(&p);
        free(upp);
        /* acknowledge so the notification list never fills */
        struct pl_wr q, a;
        uint8_t qb[32], ab[32];
        pl_wr_init_fixed(&q, qb, sizeof(qb));
        pl_wr_init_fixed(&a, ab, sizeof(ab));
        cr_assert_eq(pl_notif_sent_req_encode(pir.meta.seq, &q), PL_OK);
        cr_assert_eq(es10(q.buf, q.len, &a), PL_SW_OK);
    }
    cr_assert_eq(pl_euicc_profile_count(E), PL_EUICC_MAX_PROFILES);
    pl_wr_free(&w);
}

/* ---- GetIfppInfo ---- */

static void get_info(struct pl_wr *w, struct pl_es10f_info *info)
{
    uint8_t qb[8];
    struct pl_wr q;
    pl_wr_init_fixed(&q, qb, sizeof(qb));
    cr_assert_eq(pl_es10f_get_info_req_encode(&q), PL_OK);
    pl_wr_reset(w);
    cr_assert_eq(es10(q.buf, q.len, w), PL_SW_OK);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(w->buf, w->len, info), PL_OK);
}

Test(euicc, get_ifpp_info_signed_otks, .init = setup, .fini = teardown)
{
    struct pl_wr w;
    struct pl_es10f_info *info = calloc(1, sizeof(*info));
    uint8_t eid[16];
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    get_info(&w, info);
    pl_euicc_get_eid(E, eid);
    cr_assert_eq(memcmp(info->eid, eid, 16), 0);
    cr_assert(info->factory_mode);
    cr_assert_eq(info->n_otk, 4);

    /* CERT.EUICC chains CI -> EUM -> eUICC and carries the EID; each OTK verifies */
    struct pl_cert *ce = NULL, *cm = NULL;
    struct pl_eckey *pk = NULL;
    cr_assert_eq(pl_cert_parse(info->cert_euicc.der, info->cert_euicc.len, &ce), PL_OK);
    cr_assert_eq(pl_cert_parse(info->cert_eum.der, info->cert_eum.len, &cm), PL_OK);
    const struct pl_cert *inter[1] = {cm};
    cr_assert_eq(pl_cert_verify_chain(ce, inter, 1, pl_pki_cert(T.pki, PL_PKI_CI),
                                      PL_CERT_ROLE_EUICC, time(NULL)),
                 PL_OK);
    uint8_t cert_eid[16];
    cr_assert_eq(pl_cert_eid(ce, cert_eid), PL_OK);
    cr_assert_eq(memcmp(cert_eid, eid, 16), 0);
    cr_assert_eq(pl_cert_public_key(ce, &pk), PL_OK);
    for (size_t i = 0; i < info->n_otk; i++) {
        cr_assert_eq(info->otk[i].otk_id, i + 1);
        cr_assert_eq(pl_ifpp_otk_verify(pk, eid, &info->otk[i]), PL_OK);
        struct pl_ifpp_otk forged = info->otk[i];
        forged.otpk[10] ^= 1;
        cr_assert_eq(pl_ifpp_otk_verify(pk, eid, &forged), PL_ERR_BAD_SIGNATURE);
    }

    /* after a load the consumed OTK is no longer offered */
    struct pl_et_pkg p;
    struct pl_wr pw;
    struct pl_pir pir;
    pl_wr_init_dyn(&pw, 1 << 16);
    cr_assert_eq(pl_et_bind_for(&T, E, 2, UPP, UPP_LEN, false, &p), PL_OK);
    load_pir(&p, &pw, &pir);
    get_info(&w, info);
    cr_assert_eq(info->n_otk, 3);
    cr_assert_null(pl_es10f_info_find_otk(info, 2));
    cr_assert_not_null(pl_es10f_info_find_otk(info, 3));
    pl_et_pkg_free(&p);
    pl_wr_free(&pw);
    pl_eckey_free(pk);
    pl_cert_free(ce);
    pl_cert_free(cm);
    pl_wr_free(&w);
    free(info);
}

/* ---- cases 15-17: lock rules and DeleteRemainingOtks ---- */

static void dotk_req(uint64_t counter, const struct pl_eckey *key, const uint8_t *cert,
                     size_t cert_len, struct pl_wr *req)
{
    uint8_t eid[16];
    pl_euicc_get_eid(E, eid);
    pl_wr_reset(req);
    cr_assert_eq(
        pl_et_dotk_req(eid, counter, PL_ES10F_OP_DELETE_REMAINING_OTKS, key, cert, cert_len, req),
        PL_OK);
}

static void dotk_dpf(uint64_t counter, struct pl_wr *req)
{
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &der, &der_len);
    dotk_req(counter, pl_pki_key(T.pki, PL_PKI_DPF), der, der_len, req);
}

/* Sends a DeleteRemainingOtks request; returns the decoded error (0 = receipt). */
static int dotk_send(const struct pl_wr *req, struct pl_es10f_delete_otks_rsp *r, struct pl_wr *w)
{
    pl_wr_reset(w);
    uint16_t sw = es10(req->buf, req->len, w);
    cr_assert_eq(sw, PL_SW_OK, "sw %04x", sw);
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(w->buf, w->len, r), PL_OK);
    return r->ok ? 0 : r->error;
}

static uint16_t list_profiles(struct pl_wr *w)
{
    static const uint8_t req[] = {0xBF, 0x2D, 0x00};
    pl_wr_reset(w);
    return es10(req, sizeof(req), w);
}

Test(euicc, lock_rules_and_delete_remaining_otks, .init = setup, .fini = teardown)
{
    struct pl_wr req, w;
    struct pl_es10f_delete_otks_rsp r;
    struct pl_pir pir;
    pl_wr_init_dyn(&req, 64 * 1024);
    pl_wr_init_dyn(&w, 64 * 1024);

    /* a profile first */
    struct pl_et_pkg p;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    load_pir(&p, &w, &pir);
    cr_assert(pir.success);

    /* case 16: IPA services refused while FREE OTKs remain */
    cr_assert_eq(list_profiles(&w), PL_SW_CONDITIONS);
    static const uint8_t add_eim[] = {0xBF, 0x57, 0x02, 0xA0, 0x00};
    cr_assert_eq(es10(add_eim, sizeof(add_eim), &w), PL_SW_CONDITIONS);

    /* case 17: unauthorised deletions refused, nothing deleted */
    struct pl_eckey *rogue = NULL;
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &T.rng, &rogue), PL_OK);
    const uint8_t *dpf;
    size_t dpf_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &dpf, &dpf_len);
    dotk_req(1, rogue, dpf, dpf_len, &req); /* right chain, wrong key */
    cr_assert_eq(dotk_send(&req, &r, &w), PL_ES10F_DOTK_INVALID_SIGNATURE);
    const uint8_t *eimc;
    size_t eimc_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EIM), &eimc, &eimc_len); /* not an SM-DPf */
    dotk_req(1, pl_pki_key(T.pki, PL_PKI_EIM), eimc, eimc_len, &req);
    cr_assert_eq(dotk_send(&req, &r, &w), PL_ES10F_DOTK_INVALID_CERTIFICATE);
    dotk_dpf(1, &req);
    req.buf[req.len - 70] ^= 0x01; /* tampered token signature */
    cr_assert_neq(dotk_send(&req, &r, &w), 0);
    dotk_dpf(0, &req);
    cr_assert_eq(dotk_send(&req, &r, &w), PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE);
    uint8_t other_eid[16];
    pl_euicc_get_eid(E, other_eid);
    other_eid[15] ^= 0x01;
    pl_wr_reset(&req);
    cr_assert_eq(pl_et_dotk_req(other_eid, 1, PL_ES10F_OP_DELETE_REMAINING_OTKS,
                                pl_pki_key(T.pki, PL_PKI_DPF), dpf, dpf_len, &req),
                 PL_OK);
    cr_assert_eq(dotk_send(&req, &r, &w), PL_ES10F_DOTK_INVALID_EID);
    for (uint16_t id = 2; id <= 4; id++)
        cr_assert_eq(otk_state(id), PL_EUICC_OTK_FREE);
    cr_assert(pl_euicc_factory_mode(E));

    /* the authorised one: receipt signed by the eUICC, lists the deleted OTKs */
    dotk_dpf(7, &req);
    cr_assert_eq(dotk_send(&req, &r, &w), 0);
    cr_assert_eq(r.receipt.n_deleted, 3);
    cr_assert_eq(r.receipt.deleted[0], 2);
    cr_assert_eq(r.receipt.deleted[2], 4);
    cr_assert_eq(r.receipt.counter, 7);
    const uint8_t *ce;
    size_t ce_len;
    struct pl_cert *cert = NULL;
    struct pl_eckey *pk = NULL;
    pl_euicc_cert_euicc(E, &ce, &ce_len);
    cr_assert_eq(pl_cert_parse(ce, ce_len, &cert), PL_OK);
    cr_assert_eq(pl_cert_public_key(cert, &pk), PL_OK);
    struct pl_es10f_delete_otks_req sent;
    cr_assert_eq(pl_es10f_delete_otks_req_decode(req.buf, req.len, &sent), PL_OK);
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&r, pk, &sent.token), PL_OK);
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_CONSUMED);
    for (uint16_t id = 2; id <= 4; id++)
        cr_assert_eq(otk_state(id), PL_EUICC_OTK_DELETED);
    cr_assert_not(pl_euicc_factory_mode(E));

    /* durable */
    reopen();
    cr_assert_not(pl_euicc_factory_mode(E));
    cr_assert_eq(otk_state(3), PL_EUICC_OTK_DELETED);

    /* case 15: FPA services after the lock answer 6985, a replayed token too */
    cr_assert_eq(es10(req.buf, req.len, &w), PL_SW_CONDITIONS);
    dotk_dpf(8, &req);
    cr_assert_eq(es10(req.buf, req.len, &w), PL_SW_CONDITIONS);
    static const uint8_t info_req[] = {0xFF, 0x72, 0x00};
    cr_assert_eq(es10(info_req, sizeof(info_req), &w), PL_SW_CONDITIONS);
    struct pl_et_pkg p2;
    cr_assert_eq(pl_et_bind_for(&T, E, 2, UPP, UPP_LEN, false, &p2), PL_OK);
    cr_assert_eq(es10(p2.hdr.buf, p2.hdr.len, &w), PL_SW_CONDITIONS);
    cr_assert_eq(es10(p2.bpp.buf, 200, &w), PL_SW_CONDITIONS); /* BF36 without header */

    /* case 16, other direction: IPA services now work */
    cr_assert_eq(list_profiles(&w), PL_SW_OK);
    struct pl_tlv t;
    cr_assert_eq(pl_der_parse_one(w.buf, w.len, 0xBF2D, &t), PL_OK);
    uint8_t iccid[10];
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    memcpy(iccid, pi.iccid, 10);
    /* BF2D { A0 { E3 { 5A iccid ... } } } */
    cr_assert_eq(w.buf[3], 0xA0);
    cr_assert_eq(find(&w, iccid, 10) > 0, true);
    static const char spn[] = "provline test SP";
    cr_assert_eq(find(&w, (const uint8_t *)spn, sizeof(spn) - 1) > 0, true);
    /* search by ICCID: one match; by an unknown ICCID: empty list */
    uint8_t by_iccid[] = {0xBF, 0x2D, 0x0E, 0xA0, 0x0C, 0x5A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(by_iccid + 7, iccid, 10);
    pl_wr_reset(&w);
    cr_assert_eq(es10(by_iccid, sizeof(by_iccid), &w), PL_SW_OK);
    cr_assert_gt(w.len, 20);
    by_iccid[16] ^= 0x11;
    pl_wr_reset(&w);
    cr_assert_eq(es10(by_iccid, sizeof(by_iccid), &w), PL_SW_OK);
    static const uint8_t empty[] = {0xBF, 0x2D, 0x02, 0xA0, 0x00};
    cr_assert_eq(w.len, sizeof(empty));
    cr_assert_eq(memcmp(w.buf, empty, sizeof(empty)), 0);

    pl_et_pkg_free(&p2);
    pl_et_pkg_free(&p);
    pl_eckey_free(pk);
    pl_cert_free(cert);
    pl_eckey_free(rogue);
    pl_wr_free(&req);
    pl_wr_free(&w);
}

Test(euicc, last_otk_consumed_closes_factory_mode, .init = setup, .fini = teardown)
{
    /* a 1-OTK eUICC: loading its only OTK ends production without a deletion token */
    char path1[512];
    pl_euicc_close(E);
    E = NULL;
    cr_assert_eq(pl_et_mint(&T, "one.state", 1, NULL, path1, sizeof(path1)), PL_OK);
    memcpy(PATH, path1, sizeof(path1));
    open_card();
    struct pl_wr w;
    struct pl_pir pir;
    struct pl_et_pkg p;
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(list_profiles(&w), PL_SW_CONDITIONS);
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    load_pir(&p, &w, &pir);
    cr_assert(pir.success);
    cr_assert_not(pl_euicc_factory_mode(E));
    cr_assert_eq(list_profiles(&w), PL_SW_OK);
    static const uint8_t info_req[] = {0xFF, 0x72, 0x00};
    cr_assert_eq(es10(info_req, sizeof(info_req), &w), PL_SW_CONDITIONS);
    /* notifications still work after the lock */
    struct pl_notif_rnl_rsp *r = calloc(1, sizeof(*r));
    cr_assert_eq(pending(&w, r), 1);
    free(r);
    pl_et_pkg_free(&p);
    pl_wr_free(&w);
}

/* White-box: the counter rule with a stored counter and FREE OTKs (a state only a
 * provisioning tool could create, since a successful deletion also locks). */
Test(euicc, delete_otks_counter_replay_and_lower, .init = setup, .fini = teardown)
{
    struct pl_euicc_state st;
    pl_euicc_close(E);
    E = NULL;
    cr_assert_eq(pl_euicc_state_read(PATH, &st), PL_OK);
    st.dotk_counter = 10;
    cr_assert_eq(pl_euicc_state_write(PATH, &st, false), PL_OK);
    pl_euicc_state_free(&st);
    open_card();

    struct pl_wr req, w;
    struct pl_es10f_delete_otks_rsp r;
    pl_wr_init_dyn(&req, 64 * 1024);
    pl_wr_init_dyn(&w, 64 * 1024);
    dotk_dpf(10, &req);
    cr_assert_eq(dotk_send(&req, &r, &w), PL_ES10F_DOTK_REPLAY_ERROR);
    dotk_dpf(3, &req);
    cr_assert_eq(dotk_send(&req, &r, &w), PL_ES10F_DOTK_REPLAY_ERROR);
    cr_assert(pl_euicc_factory_mode(E));
    cr_assert_eq(otk_state(1), PL_EUICC_OTK_FREE);
    dotk_dpf(11, &req);
    cr_assert_eq(dotk_send(&req, &r, &w), 0);
    cr_assert_not(pl_euicc_factory_mode(E));
    pl_wr_free(&req);
    pl_wr_free(&w);
}

/* ---- case 18: a power cut at every state write of a load ---- */

static void check_invariant(const uint8_t *tid, size_t tid_len, bool *done)
{
    /* OTK 1: FREE with nothing installed, or CONSUMED with a PIR (success or error) */
    enum pl_euicc_otk_state s = otk_state(1);
    cr_assert_not(pl_euicc_load_in_progress(E)); /* open closed any interrupted load */
    if (s == PL_EUICC_OTK_FREE) {
        cr_assert_eq(pl_euicc_profile_count(E), 0, "FREE OTK with a profile");
        cr_assert_eq(pl_euicc_notif_count(E), 0);
        *done = false;
        return;
    }
    cr_assert_eq(s, PL_EUICC_OTK_CONSUMED);
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 16);
    struct pl_notif_rnl_rsp *r = calloc(1, sizeof(*r));
    cr_assert_eq(pending(&w, r), 1, "CONSUMED OTK without exactly one PIR");
    struct pl_pir pir;
    cr_assert_eq(pl_et_pir_check(E, r->items[0].raw, r->items[0].raw_len, &pir), PL_OK);
    cr_assert_eq(pir.tid_len, tid_len);
    cr_assert_eq(memcmp(pir.tid, tid, tid_len), 0);
    if (pir.success) {
        cr_assert_eq(pl_euicc_profile_count(E), 1);
        struct pl_euicc_profile_info pi;
        cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
        cr_assert_eq(pi.upp_len, UPP_LEN);
        cr_assert_eq(memcmp(pi.upp, UPP, UPP_LEN), 0);
    } else {
        cr_assert_eq(pir.reason, PL_PIR_REASON_INTERRUPTION);
        cr_assert_eq(pl_euicc_profile_count(E), 0);
    }
    *done = pir.success;
    free(r);
    pl_wr_free(&w);
}

Test(euicc, power_cut_at_every_write, .init = setup, .fini = teardown)
{
    char snap[600];
    snprintf(snap, sizeof(snap), "%s.fresh", PATH);
    struct pl_et_pkg p;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, UPP, UPP_LEN, false, &p), PL_OK);
    pl_euicc_close(E);
    E = NULL;
    cr_assert_eq(pl_et_copy(PATH, snap), 0);

    unsigned cuts = 0;
    for (unsigned n = 1; n < 50; n++) {
        cr_assert_eq(pl_et_copy(snap, PATH), 0);
        struct pl_euicc_opts o;
        pl_euicc_opts_init(&o);
        o.fail_write_at = n;
        cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
        cr_assert_eq(pl_et_session(E, &CH), PL_OK);
        struct pl_wr w;
        uint16_t sw;
        pl_wr_init_dyn(&w, 1 << 16);
        int rc = pl_et_load(E, CH, &p, &w, &sw);
        bool cut = pl_euicc_is_dead(E);
        if (cut) {
            cr_assert_neq(rc, PL_OK, "a dead card answered");
            cr_assert_eq(pl_euicc_write_count(E), n);
            struct stat stt;
            char tmp[600];
            snprintf(tmp, sizeof(tmp), "%s.tmp", PATH);
            cr_assert_eq(stat(tmp, &stt), 0, "a cut write leaves its torn temp file");
            /* every later command fails like a card without power */
            uint8_t ra[300];
            size_t rl;
            static const uint8_t sel[] = {0x00, 0x70, 0x00, 0x00, 0x01};
            cr_assert_eq(pl_euicc_apdu(E, sel, sizeof(sel), ra, sizeof(ra), &rl), PL_ERR_STATE);
            cuts++;
        } else {
            cr_assert_eq(rc, PL_OK);
        }
        pl_wr_free(&w);
        pl_euicc_close(E);
        E = NULL;
        /* power back: reopen must give a consistent state */
        open_card();
        bool done = false;
        check_invariant(p.tid, p.tid_len, &done);
        if (!cut) {
            cr_assert(done, "an uncut load must succeed");
            break;
        }
        pl_euicc_close(E);
        E = NULL;
    }
    cr_assert_geq(cuts, 2, "a load writes at least twice (consume, install)");
    pl_et_pkg_free(&p);
}

/* Power cut during the recovery write at open, and during NotificationSent. */
Test(euicc, power_cut_during_recovery, .init = setup, .fini = teardown)
{
    struct segs g;
    struct pl_wr w;
    uint16_t sw;
    size_t sent;
    segs_init(&g, false);
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_send(E, CH, g.p.hdr.buf, g.p.hdr.len, g.s, g.n - 1, &w, &sw, &sent), PL_OK);
    pl_euicc_close(E);
    E = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.fail_write_at = 1;
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_ERR_IO);
    cr_assert_null(E);
    open_card();
    bool done;
    check_invariant(g.p.tid, g.p.tid_len, &done);
    cr_assert_not(done);
    pl_wr_free(&w);
    segs_free(&g);
}

/* ---- transport ---- */

static uint16_t apdu_sw(const uint8_t *c, size_t n, uint8_t *r, size_t *rl)
{
    cr_assert_eq(pl_euicc_apdu(E, c, n, r, 300, rl), PL_OK);
    cr_assert_geq(*rl, 2);
    return (uint16_t)((r[*rl - 2] << 8) | r[*rl - 1]);
}

Test(euicc, apdu_transport_errors, .init = setup, .fini = teardown)
{
    uint8_t r[300];
    size_t rl;
    /* unknown INS, unsupported CLA, malformed APDU */
    static const uint8_t bad_ins[] = {0x80, 0x12, 0x00, 0x00};
    cr_assert_eq(apdu_sw(bad_ins, sizeof(bad_ins), r, &rl), 0x6D00);
    static const uint8_t bad_cla[] = {0xFF, 0xE2, 0x91, 0x00, 0x01, 0x00};
    cr_assert_eq(apdu_sw(bad_cla, sizeof(bad_cla), r, &rl), 0x6E00);
    static const uint8_t short_apdu[] = {0x80, 0xE2};
    cr_assert_eq(apdu_sw(short_apdu, sizeof(short_apdu), r, &rl), 0x6700);
    /* a closed logical channel */
    static const uint8_t ch3[] = {0x83, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x3E, 0x00};
    cr_assert_eq(apdu_sw(ch3, sizeof(ch3), r, &rl), 0x6881);
    /* STORE DATA on the basic channel without SELECT ISD-R */
    static const uint8_t sd0[] = {0x80, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x3E, 0x00};
    cr_assert_eq(apdu_sw(sd0, sizeof(sd0), r, &rl), 0x6985);
    /* GET RESPONSE with nothing pending */
    uint8_t gr[5] = {0x80, 0xC0, 0x00, 0x00, 0x00};
    gr[0] = (uint8_t)(0x80 | CH);
    cr_assert_eq(apdu_sw(gr, sizeof(gr), r, &rl), 0x6985);
    /* SELECT of another AID */
    static const uint8_t sel_other[] = {0x00, 0xA4, 0x04, 0x00, 0x05, 1, 2, 3, 4, 5};
    cr_assert_eq(apdu_sw(sel_other, sizeof(sel_other), r, &rl), 0x6A82);
    /* out-of-order block number */
    uint8_t blk1[] = {0x80, 0xE2, 0x11, 0x01, 0x01, 0xBF};
    blk1[0] = (uint8_t)(0x80 | CH);
    cr_assert_neq(apdu_sw(blk1, sizeof(blk1), r, &rl), 0x9000);
    /* channels run out at 3 */
    static const uint8_t open[] = {0x00, 0x70, 0x00, 0x00, 0x01};
    cr_assert_eq(apdu_sw(open, sizeof(open), r, &rl), 0x9000);
    cr_assert_eq(apdu_sw(open, sizeof(open), r, &rl), 0x9000);
    cr_assert_eq(apdu_sw(open, sizeof(open), r, &rl), 0x6A81);
    /* arguments */
    cr_assert_eq(pl_euicc_apdu(E, open, sizeof(open), r, 10, &rl), PL_ERR_INVAL);
}

Test(euicc, es10_unknown_and_gated_tags, .init = setup, .fini = teardown)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 16);
    static const uint8_t unknown[] = {0xBF, 0x7F, 0x00};
    cr_assert_eq(es10(unknown, sizeof(unknown), &w), 0x6A88);
    static const uint8_t garbage[] = {0x00};
    cr_assert_neq(es10(garbage, sizeof(garbage), &w), PL_SW_OK);
    static const uint8_t enable[] = {0xBF, 0x31, 0x00};
    cr_assert_eq(es10(enable, sizeof(enable), &w), PL_SW_CONDITIONS);
    static const uint8_t bad_header[] = {0xFF, 0x71, 0x00};
    cr_assert_eq(es10(bad_header, sizeof(bad_header), &w), PL_SW_WRONG_DATA);
    /* GetEID, and a long response through 61xx + GET RESPONSE (GetIfppInfo, ~3 KiB) */
    static const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    pl_wr_reset(&w);
    cr_assert_eq(es10(get_eid, sizeof(get_eid), &w), PL_SW_OK);
    uint8_t eid[16];
    pl_euicc_get_eid(E, eid);
    cr_assert_eq(w.len, 21);
    cr_assert_eq(memcmp(w.buf + 5, eid, 16), 0);
    struct pl_es10f_info *info = calloc(1, sizeof(*info));
    get_info(&w, info);
    cr_assert_gt(w.len, 256);
    free(info);
    pl_wr_free(&w);
}

/* ---- state file ---- */

Test(euicc, state_file_corruption_detected, .init = setup, .fini = teardown)
{
    pl_euicc_close(E);
    E = NULL;
    size_t len;
    uint8_t *b = pl_test_read_file(PATH, &len);
    cr_assert_not_null(b);
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    char bad[600];
    snprintf(bad, sizeof(bad), "%s.bad", PATH);
    /* every single-byte flip is detected (a sample across the file) */
    for (size_t i = 0; i < len; i += len / 53 + 1) {
        b[i] ^= 0x20;
        FILE *f = fopen(bad, "wb");
        cr_assert_eq(fwrite(b, 1, len, f), len);
        fclose(f);
        cr_assert_eq(pl_euicc_open(bad, &o, &E), PL_ERR_MALFORMED, "flip at %zu", i);
        b[i] ^= 0x20;
    }
    /* truncated */
    FILE *f = fopen(bad, "wb");
    cr_assert_eq(fwrite(b, 1, len / 2, f), len / 2);
    fclose(f);
    cr_assert_eq(pl_euicc_open(bad, &o, &E), PL_ERR_MALFORMED);
    snprintf(bad, sizeof(bad), "%s/none", T.dir);
    cr_assert_eq(pl_euicc_open(bad, &o, &E), PL_ERR_NOT_FOUND);
    free(b);
    /* the original still opens */
    open_card();
}

Test(euicc, state_codec_roundtrip, .init = setup, .fini = teardown)
{
    struct pl_euicc_state st, st2;
    struct pl_wr w;
    pl_euicc_close(E);
    E = NULL;
    cr_assert_eq(pl_euicc_state_read(PATH, &st), PL_OK);
    cr_assert_eq(st.n_otk, 4);
    cr_assert(st.factory_mode);
    pl_wr_init_dyn(&w, PL_EUICC_STATE_MAX);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_OK);
    cr_assert_eq(memcmp(st.eid, st2.eid, 16), 0);
    cr_assert_eq(memcmp(st.otk[3].sk, st2.otk[3].sk, 32), 0);
    /* a marker that names a FREE OTK is inconsistent and refused */
    st.loading.active = true;
    st.loading.otk_id = 1;
    st.loading.tid_len = 1;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    pl_euicc_state_free(&st2);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    pl_euicc_state_free(&st);
    pl_wr_free(&w);
    open_card();
}

/* ---- minting ---- */

Test(euicc, mint_arguments_and_eid, .init = setup, .fini = teardown)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/m.state", T.dir);
    static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x63};
    cr_assert_eq(pl_euicc_mint(T.pki, PL_CURVE_P256, eid, 0, path, NULL), PL_ERR_INVAL);
    cr_assert_eq(pl_euicc_mint(T.pki, PL_CURVE_P256, eid, PL_EUICC_MAX_OTKS + 1, path, NULL),
                 PL_ERR_INVAL);
    cr_assert_eq(pl_euicc_mint(T.pki, PL_CURVE_BP256R1, eid, 1, path, NULL), PL_ERR_INVAL);
    static const uint8_t not_bcd[16] = {0x8A};
    cr_assert_eq(pl_euicc_mint(T.pki, PL_CURVE_P256, not_bcd, 1, path, NULL), PL_ERR_INVAL);
    cr_assert_eq(pl_euicc_mint(T.pki, PL_CURVE_P256, eid, 2, path, NULL), PL_OK);
    struct pl_euicc *m = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(path, &o, &m), PL_OK);
    uint8_t got[16];
    pl_euicc_get_eid(m, got);
    cr_assert_eq(memcmp(got, eid, 16), 0);
    cr_assert_eq(pl_euicc_otk_count(m), 2);
    cr_assert(pl_euicc_factory_mode(m));
    pl_euicc_close(m);
    /* random EIDs: 89049032 prefix, mod 97 == 1 (SGP.29) */
    pl_euicc_get_eid(E, got);
    cr_assert_eq(got[0], 0x89);
    cr_assert_eq(got[3], 0x32);
    unsigned r = 0;
    for (size_t i = 0; i < 16; i++) {
        r = (r * 10 + (got[i] >> 4)) % 97;
        r = (r * 10 + (got[i] & 15)) % 97;
    }
    cr_assert_eq(r, 1);
    /* no API returns a private key; the state file is private to its owner */
    struct stat st;
    cr_assert_eq(stat(PATH, &st), 0);
    cr_assert_eq(st.st_mode & 077, 0);
}

/* GENS08 strict: the OTK is CONSUMED on disk before the first '87' is even sent. */
Test(euicc, otk_consumed_on_disk_before_87, .init = setup, .fini = teardown)
{
    struct segs g;
    struct pl_wr w;
    uint16_t sw;
    size_t sent;
    segs_init(&g, false);
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_send(E, CH, g.p.hdr.buf, g.p.hdr.len, g.s, 1, &w, &sw, &sent), PL_OK);
    cr_assert_eq(w.len, 0);
    char copy[600];
    snprintf(copy, sizeof(copy), "%s.copy", PATH);
    cr_assert_eq(pl_et_copy(PATH, copy), 0);
    struct pl_euicc_state st;
    cr_assert_eq(pl_euicc_state_read(copy, &st), PL_OK);
    cr_assert_eq(st.otk[0].state, PL_EUICC_OTK_CONSUMED);
    static const uint8_t zero[32];
    cr_assert_eq(memcmp(st.otk[0].sk, zero, 32), 0, "otSK wiped");
    cr_assert(st.loading.active);
    cr_assert_eq(st.loading.tid_len, g.p.tid_len);
    pl_euicc_state_free(&st);
    /* only the header: nothing on disk changed */
    pl_wr_free(&w);
    segs_free(&g);
}

Test(euicc, header_alone_changes_nothing, .init = setup, .fini = teardown)
{
    struct segs g;
    struct pl_wr w;
    segs_init(&g, false);
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(es10(g.p.hdr.buf, g.p.hdr.len, &w), PL_SW_OK);
    cr_assert_eq(w.len, 0);
    cr_assert_eq(pl_euicc_write_count(E), 0);
    /* another command drops the header silently: no PIR, no write */
    static const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    cr_assert_eq(es10(get_eid, sizeof(get_eid), &w), PL_SW_OK);
    cr_assert_eq(pl_euicc_write_count(E), 0);
    cr_assert_eq(pl_euicc_notif_count(E), 0);
    expect_no_spend();
    pl_wr_free(&w);
    segs_free(&g);
}

Test(euicc, channel_close_after_header_changes_nothing, .init = setup, .fini = teardown)
{
    struct segs g;
    struct pl_wr w;
    uint16_t sw;
    segs_init(&g, false);
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(es10(g.p.hdr.buf, g.p.hdr.len, &w), PL_SW_OK);
    struct pl_apdu_ops ops = {pl_euicc_transmit, E};
    cr_assert_eq(pl_apdu_close_channel(&ops, CH, &sw), PL_OK);
    cr_assert_eq(pl_euicc_write_count(E), 0);
    cr_assert_eq(pl_euicc_notif_count(E), 0);
    expect_no_spend();
    pl_wr_free(&w);
    segs_free(&g);
}

Test(euicc, duplicated_88, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    cr_assert_eq(g.s[3].p[0], 0x88);
    cr_assert_eq(g.s[4].p[0], 0xA3, "one '88' expected in this package");
    struct pl_bpp_span *c = calloc(g.n + 1, sizeof(*c));
    memcpy(c, g.s, 4 * sizeof(*c));
    c[4] = g.s[3];
    memcpy(c + 5, g.s + 4, (g.n - 4) * sizeof(*c));
    send_expect(&g, c, g.n + 1, PL_PIR_CMD_STORE_METADATA, PL_PIR_REASON_SCP03T_STRUCTURE_ERROR);
    free(c);
    segs_free(&g);
}

Test(euicc, dropped_88, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = copy_spans(&g);
    memmove(c + 3, c + 4, (g.n - 4) * sizeof(*c));
    send_expect(&g, c, g.n - 1, PL_PIR_CMD_STORE_METADATA, PL_PIR_REASON_SCP03T_STRUCTURE_ERROR);
    free(c);
    segs_free(&g);
}

Test(euicc, dropped_a0, .init = setup, .fini = teardown)
{
    struct segs g;
    segs_init(&g, false);
    struct pl_bpp_span *c = copy_spans(&g);
    memmove(c + 1, c + 2, (g.n - 2) * sizeof(*c));
    send_expect(&g, c, g.n - 1, PL_PIR_CMD_CONFIGURE_ISDP, PL_PIR_REASON_SCP03T_STRUCTURE_ERROR);
    free(c);
    segs_free(&g);
}
