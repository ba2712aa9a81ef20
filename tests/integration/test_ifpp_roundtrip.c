/* Integration: one device through the whole in-factory flow of ARCHITECTURE.md §4 against
 * the software eUICC, on both curves: GetIfppInfo (CI -> EUM -> eUICC chain and every OTK
 * signature checked as the Key Maker does, IFPP.md §6.1/§6.4), binding of a TS.48 profile
 * to each verified OTK (pl_bpp_bind), the IfppPackage envelope signed and checked
 * (target, signature), the ES10f header + SGP.22 segments over STORE DATA, the PIR verified
 * with CERT.EUICC, NotificationSent, a Key-Maker-signed DeleteRemainingOtks with its signed
 * receipt, the lock, and the installed profiles listed and equal to their UPPs.
 * PL_TEST_SLOW */
#define _POSIX_C_SOURCE 200809L
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const PROFILES[] = {
    "TS48V1-A-UNIQUE.der",
    "TS48V4-SAIP2-3-BERTLV-UNIQUE.der",
    "TS48V5-SAIP2-3-BERTLV-SUCI-UNIQUE.der",
};
#define N_OTKS 5u /* 3 loaded, 2 deleted at the end of production */

/* The Key Maker's side of step 2: verify the eUICC data before ever binding. */
static void verify_info(const struct pl_et *t, const struct pl_es10f_info *info,
                        struct pl_eckey **euicc_pub)
{
    struct pl_cert *ce = NULL, *cm = NULL;
    cr_assert_eq(pl_cert_parse(info->cert_euicc.der, info->cert_euicc.len, &ce), PL_OK);
    cr_assert_eq(pl_cert_parse(info->cert_eum.der, info->cert_eum.len, &cm), PL_OK);
    const struct pl_cert *inter[1] = {cm};
    cr_assert_eq(pl_cert_verify_chain(ce, inter, 1, pl_pki_cert(t->pki, PL_PKI_CI),
                                      PL_CERT_ROLE_EUICC, time(NULL)),
                 PL_OK);
    uint8_t eid[16];
    cr_assert_eq(pl_cert_eid(ce, eid), PL_OK);
    cr_assert_eq(memcmp(eid, info->eid, 16), 0);
    cr_assert_eq(pl_cert_public_key(ce, euicc_pub), PL_OK);
    for (size_t i = 0; i < info->n_otk; i++) {
        struct pl_eckey *pt = NULL;
        cr_assert_eq(pl_ifpp_otk_verify(*euicc_pub, info->eid, &info->otk[i]), PL_OK);
        cr_assert_eq(pl_eckey_from_public(t->curve, info->otk[i].otpk, &pt), PL_OK);
        pl_eckey_free(pt);
    }
    pl_cert_free(ce);
    pl_cert_free(cm);
}

/* Key Maker: bind and seal one package for (eid, otk). */
static void make_package(struct pl_et *t, const struct pl_es10f_info *info,
                         const struct pl_ifpp_otk *otk, const uint8_t *upp, size_t upp_len,
                         struct pl_wr *out)
{
    struct pl_et_pkg b;
    cr_assert_eq(pl_et_bind(t, info->eid, otk->otpk, otk->otk_id, upp, upp_len, true, &b), PL_OK);
    struct pl_ifpp_pkg pkg;
    memset(&pkg, 0, sizeof(pkg));
    cr_assert_eq(t->rng.fill(t->rng.user, pkg.package_id, sizeof(pkg.package_id)), PL_OK);
    snprintf(pkg.batch_id, sizeof(pkg.batch_id), "batch-%u", otk->otk_id);
    memcpy(pkg.eid, info->eid, 16);
    pkg.otk_id = otk->otk_id;
    cr_assert_eq(pl_sha256(otk->otpk, PL_EC_PUB_LEN, pkg.otpk_hash), PL_OK);
    pkg.tid = b.tid;
    pkg.tid_len = b.tid_len;
    pkg.curve = t->curve;
    pkg.not_after = (uint64_t)time(NULL) + 3600;
    pkg.key_maker_seq = otk->otk_id;
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_DPF), &der, &der_len);
    pkg.dpf_chain.n = 1;
    pkg.dpf_chain.cert[0].der = der;
    pkg.dpf_chain.cert[0].len = der_len;
    pkg.bpp = b.bpp.buf;
    pkg.bpp_len = b.bpp.len;
    cr_assert_eq(pl_ifpp_pkg_encode_sign(&pkg, pl_pki_key(t->pki, PL_PKI_DPF), &t->rng, out),
                 PL_OK);
    pl_et_pkg_free(&b);
}

/* Station: check the envelope, load it, return the raw PIR. */
static void station_load(struct pl_et *t, struct pl_euicc *e, unsigned ch,
                         const struct pl_es10f_info *info, const struct pl_wr *sealed,
                         struct pl_wr *pir_out, uint8_t tid[16])
{
    struct pl_ifpp_pkg pkg;
    cr_assert_eq(pl_ifpp_pkg_decode(sealed->buf, sealed->len, &pkg), PL_OK);
    struct pl_eckey *km = NULL;
    uint8_t km_pub[PL_EC_PUB_LEN];
    cr_assert_eq(pl_eckey_public(pl_pki_key(t->pki, PL_PKI_DPF), km_pub), PL_OK);
    cr_assert_eq(pl_eckey_from_public(t->curve, km_pub, &km), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_verify(&pkg, km), PL_OK);
    pl_eckey_free(km);
    const struct pl_ifpp_otk *otk = pl_es10f_info_find_otk(info, pkg.otk_id);
    cr_assert_not_null(otk);
    cr_assert_eq(pl_ifpp_pkg_check_target(&pkg, info->eid, pkg.otk_id, otk->otpk), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_time(&pkg, (uint64_t)time(NULL)), PL_OK);
    memcpy(tid, pkg.tid, pkg.tid_len);

    struct pl_es10f_load_req h;
    struct pl_wr hdr;
    pl_wr_init_dyn(&hdr, PL_ES10F_LOAD_REQ_MAX);
    pl_es10f_load_req_from_pkg(&pkg, &h);
    cr_assert_eq(pl_es10f_load_req_encode(&h, &hdr), PL_OK);
    size_t n, sent;
    struct pl_bpp_span *s = pl_et_segments(pkg.bpp, pkg.bpp_len, &n);
    cr_assert_not_null(s);
    uint16_t sw = 0;
    cr_assert_eq(pl_et_send(e, ch, hdr.buf, hdr.len, s, n, pir_out, &sw, &sent), PL_OK, "sw %04x",
                 sw);
    cr_assert_eq(sent, n, "the PIR came before the last segment");
    cr_assert_gt(pir_out->len, 0);
    free(s);
    pl_wr_free(&hdr);
}

static void factory_line(enum pl_curve curve)
{
    struct pl_et t;
    char path[512];
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    unsigned ch;
    struct pl_wr w, rsp;
    uint16_t sw;

    cr_assert_eq(pl_et_init(&t, curve), PL_OK);
    cr_assert_eq(pl_et_mint(&t, "device.state", N_OTKS, NULL, path, sizeof(path)), PL_OK);
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(path, &o, &e), PL_OK);
    cr_assert_eq(pl_et_session(e, &ch), PL_OK);
    pl_wr_init_dyn(&w, 1 << 20);
    pl_wr_init_dyn(&rsp, 1 << 16);

    /* 1. Identify */
    uint8_t req[64];
    struct pl_wr q;
    pl_wr_init_fixed(&q, req, sizeof(req));
    cr_assert_eq(pl_es10f_get_info_req_encode(&q), PL_OK);
    cr_assert_eq(pl_et_es10(e, ch, q.buf, q.len, &rsp, &sw), PL_OK);
    struct pl_es10f_info *info = calloc(1, sizeof(*info));
    cr_assert_eq(pl_es10f_get_info_rsp_decode(rsp.buf, rsp.len, info), PL_OK);
    cr_assert(info->factory_mode);
    cr_assert_eq(info->n_otk, N_OTKS);
    /* 2. Collect and verify the OTKs */
    struct pl_eckey *euicc_pub = NULL;
    verify_info(&t, info, &euicc_pub);

    /* 3-5. Lease, load, report: one profile per OTK */
    const size_t n_prof = sizeof(PROFILES) / sizeof(PROFILES[0]);
    for (size_t i = 0; i < n_prof; i++) {
        size_t upp_len;
        uint8_t *upp = pl_et_upp(PROFILES[i], &upp_len);
        cr_assert_not_null(upp);
        pl_wr_reset(&w);
        make_package(&t, info, &info->otk[i], upp, upp_len, &w);

        /* the device is power-cycled between fixtures: reopen the state file */
        pl_euicc_close(e);
        cr_assert_eq(pl_euicc_open(path, &o, &e), PL_OK);
        cr_assert_eq(pl_et_session(e, &ch), PL_OK);

        struct pl_wr pir_raw;
        uint8_t tid[16];
        pl_wr_init_dyn(&pir_raw, PL_ES10F_PIR_MAX);
        station_load(&t, e, ch, info, &w, &pir_raw, tid);
        struct pl_pir pir;
        cr_assert_eq(pl_pir_decode(pir_raw.buf, pir_raw.len, &pir), PL_OK);
        cr_assert_eq(pl_pir_verify(&pir, euicc_pub), PL_OK);
        cr_assert(pir.success, "%s: error %lld", PROFILES[i], (long long)pir.reason);
        cr_assert_eq(memcmp(pir.tid, tid, pir.tid_len), 0);
        uint8_t iccid[PL_ICCID_LEN];
        cr_assert_eq(pl_upp_iccid(upp, upp_len, iccid), PL_OK);
        cr_assert(pir.meta.has_iccid);
        cr_assert_eq(memcmp(pir.meta.iccid, iccid, PL_ICCID_LEN), 0);

        /* the PIR is pending until the Key Maker acknowledged it; then NotificationSent */
        pl_wr_reset(&rsp);
        struct pl_notif_rnl_req rq = {.crit = PL_NOTIF_CRIT_SEQ, .seq = pir.meta.seq};
        pl_wr_reset(&q);
        cr_assert_eq(pl_notif_rnl_req_encode(&rq, &q), PL_OK);
        cr_assert_eq(pl_et_es10(e, ch, q.buf, q.len, &rsp, &sw), PL_OK);
        struct pl_notif_rnl_rsp *nl = calloc(1, sizeof(*nl));
        cr_assert_eq(pl_notif_rnl_rsp_decode(rsp.buf, rsp.len, nl), PL_OK);
        cr_assert_eq(nl->n, 1);
        cr_assert_eq(nl->items[0].raw_len, pir_raw.len);
        cr_assert_eq(memcmp(nl->items[0].raw, pir_raw.buf, pir_raw.len), 0);
        free(nl);
        pl_wr_reset(&q);
        cr_assert_eq(pl_notif_sent_req_encode(pir.meta.seq, &q), PL_OK);
        pl_wr_reset(&rsp);
        cr_assert_eq(pl_et_es10(e, ch, q.buf, q.len, &rsp, &sw), PL_OK);
        int64_t status;
        cr_assert_eq(pl_notif_sent_rsp_decode(rsp.buf, rsp.len, &status), PL_OK);
        cr_assert_eq(status, PL_NOTIF_SENT_OK);

        /* the installed profile is the UPP, byte for byte */
        struct pl_euicc_profile_info pi;
        cr_assert_eq(pl_euicc_profile_get(e, i, &pi), PL_OK);
        cr_assert_eq(pi.upp_len, upp_len);
        cr_assert_eq(memcmp(pi.upp, upp, upp_len), 0);
        pl_wr_free(&pir_raw);
        free(upp);
    }
    cr_assert_eq(pl_euicc_notif_count(e), 0);

    /* 6. Close production: token, receipt, lock */
    struct pl_es10f_delete_otks_req dq;
    memset(&dq, 0, sizeof(dq));
    memcpy(dq.token.eid, info->eid, 16);
    dq.token.counter = 1;
    dq.token.op = PL_ES10F_OP_DELETE_REMAINING_OTKS;
    cr_assert_eq(pl_es10f_token_sign(&dq.token, pl_pki_key(t.pki, PL_PKI_DPF), &t.rng, dq.sig),
                 PL_OK);
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(t.pki, PL_PKI_DPF), &der, &der_len);
    dq.signer_chain.n = 1;
    dq.signer_chain.cert[0].der = der;
    dq.signer_chain.cert[0].len = der_len;
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_delete_otks_req_encode(&dq, &w), PL_OK);
    pl_wr_reset(&rsp);
    cr_assert_eq(pl_et_es10(e, ch, w.buf, w.len, &rsp, &sw), PL_OK);
    struct pl_es10f_delete_otks_rsp dr;
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(rsp.buf, rsp.len, &dr), PL_OK);
    cr_assert(dr.ok);
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&dr, euicc_pub, &dq.token), PL_OK);
    cr_assert_eq(dr.receipt.n_deleted, N_OTKS - n_prof);
    for (size_t i = 0; i < dr.receipt.n_deleted; i++)
        cr_assert_eq(dr.receipt.deleted[i], info->otk[n_prof + i].otk_id);

    /* GENS13 / EUICCF04 both ways */
    pl_wr_reset(&rsp);
    pl_wr_reset(&q);
    cr_assert_eq(pl_es10f_get_info_req_encode(&q), PL_OK);
    cr_assert_eq(pl_et_es10(e, ch, q.buf, q.len, &rsp, &sw), PL_ERR_CARD_SW);
    cr_assert_eq(sw, PL_SW_CONDITIONS);
    static const uint8_t list[] = {0xBF, 0x2D, 0x00};
    pl_wr_reset(&rsp);
    cr_assert_eq(pl_et_es10(e, ch, list, sizeof(list), &rsp, &sw), PL_OK);
    struct pl_tlv top, seq, item;
    struct pl_der d, in, items;
    cr_assert_eq(pl_der_parse_one(rsp.buf, rsp.len, 0xBF2D, &top), PL_OK);
    pl_der_init(&d, rsp.buf, rsp.len);
    cr_assert_eq(pl_der_enter(&d, &top, &in), PL_OK);
    cr_assert_eq(pl_der_expect(&in, 0xA0, &seq), PL_OK);
    cr_assert_eq(pl_der_enter(&in, &seq, &items), PL_OK);
    size_t count = 0;
    while (!pl_der_done(&items)) {
        cr_assert_eq(pl_der_expect(&items, 0xE3, &item), PL_OK);
        count++;
    }
    cr_assert_eq(count, n_prof);

    pl_eckey_free(euicc_pub);
    free(info);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    pl_euicc_close(e);
    pl_et_free(&t);
}

Test(ifpp_roundtrip, factory_line_p256)
{
    factory_line(PL_CURVE_P256);
}

Test(ifpp_roundtrip, factory_line_brainpool)
{
    factory_line(PL_CURVE_BP256R1);
}
