/* ES8+ / GSMA SGP.22 v2.5 §2.5.4 Bound Profile Package generation, §2.6.4 / Annex G
 * (session keys, BSP), §5.5.1-§5.5.4 (ISCR, ConfigureISDP, StoreMetadata,
 * ReplaceSessionKeys), as the SGP.41 SM-DPf binds a profile to one eUICC one-time key:
 * reference/IFPP.md §5.1-§5.5, §6.1; GENS06 (PFS per binding).
 * SAIP ProfileHeader: TCA Interoperable Profile, PEDefinitions.asn (shared/asn1/). */
#include "provline/protocol/bpp_bind.h"

#include "provline/protocol/bsp.h"
#include "provline/protocol/der.h"
#include "provline/protocol/iccid.h"
#include "provline/protocol/secret.h"

#include <stdlib.h>
#include <string.h>

#define TAG_PE_HEADER 0xA0u /* ProfileElement CHOICE header [0] ProfileHeader */
#define TAG_PH_MAJOR  0x80u /* major-version [0] UInt8 */
#define TAG_PH_MINOR  0x81u /* minor-version [1] UInt8 */
#define TAG_PH_TYPE   0x82u /* profileType [2] UTF8String (SIZE (1..100)) OPTIONAL */
#define TAG_PH_ICCID  0x83u /* iccid [3] OCTET STRING (SIZE (10)) */
#define PH_TYPE_MAX   100u

#define TAG_SEG86 0x86u
#define TAG_SEG87 0x87u
#define TAG_SEG88 0x88u

int pl_upp_iccid(const uint8_t *upp, size_t len, uint8_t iccid[PL_ICCID_LEN])
{
    struct pl_der top, hdr;
    struct pl_tlv pe, f;
    uint64_t ver;
    bool present;
    char type[4 * PH_TYPE_MAX + 1];
    int rc = PL_ERR_INTERNAL;

    if (upp == NULL || iccid == NULL || len == 0)
        return PL_ERR_INVAL;
    pl_der_init(&top, upp, len);
    /* "The first ProfileElement shall be the ProfileHeader" (SAIP §8.1.1). */
    if ((rc = pl_der_expect(&top, TAG_PE_HEADER, &pe)))
        return rc;
    if ((rc = pl_der_enter(&top, &pe, &hdr)))
        return rc;
    if ((rc = pl_der_expect(&hdr, TAG_PH_MAJOR, &f)) || (rc = pl_der_get_uint(&f, &ver)))
        return rc;
    if (ver > 255u)
        return PL_ERR_DER_VALUE;
    if ((rc = pl_der_expect(&hdr, TAG_PH_MINOR, &f)) || (rc = pl_der_get_uint(&f, &ver)))
        return rc;
    if (ver > 255u)
        return PL_ERR_DER_VALUE;
    if ((rc = pl_der_optional(&hdr, TAG_PH_TYPE, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_der_get_utf8(&f, type, sizeof(type))))
            return rc;
        if (type[0] == '\0')
            return PL_ERR_DER_VALUE;
    }
    if ((rc = pl_der_expect(&hdr, TAG_PH_ICCID, &f)))
        return rc;
    uint8_t natural[PL_ICCID_LEN];
    if ((rc = pl_der_get_fixed(&f, natural, PL_ICCID_LEN)))
        return rc;
    /* The header holds the digits in natural order; SGP.22 carries EF.ICCID coding. */
    pl_iccid_swap(natural, iccid);
    /* The remaining ProfileElements: each one well-formed TLV, nothing trailing. */
    while (!pl_der_done(&top)) {
        if ((rc = pl_der_next(&top, &pe)))
            return rc;
    }
    return PL_OK;
}

/* Where each segment of a list sits in the segment buffer (pointers are taken only
 * after the buffer stops growing). */
struct seg_list {
    size_t n;
    size_t cap;
    size_t *off;
    size_t *len;
};

static int seg_list_alloc(struct seg_list *l, size_t cap)
{
    l->n = 0;
    l->cap = cap;
    l->off = calloc(cap, sizeof(size_t));
    l->len = calloc(cap, sizeof(size_t));
    return (l->off && l->len) ? PL_OK : PL_ERR_NOMEM;
}

static void seg_list_free(struct seg_list *l)
{
    free(l->off);
    free(l->len);
    l->off = l->len = NULL;
}

/* Protects pt in chunks of at most `chunk` bytes, one segment each. */
static int wrap_chunks(struct pl_bsp *b, uint8_t tag, bool encrypt, const uint8_t *pt, size_t len,
                       size_t chunk, struct pl_wr *segs, struct seg_list *l)
{
    size_t done = 0;
    int rc = PL_ERR_INTERNAL;

    while (done < len) {
        size_t n = len - done < chunk ? len - done : chunk;
        size_t start = segs->len;
        if (l->n >= l->cap)
            return PL_ERR_OVERFLOW;
        if ((rc = pl_bsp_wrap(b, tag, encrypt, pt + done, n, segs)))
            return rc;
        if (segs->len - start > PL_BSP_MAX_SEGMENT)
            return PL_ERR_INTERNAL;
        l->off[l->n] = start;
        l->len[l->n] = segs->len - start;
        l->n++;
        done += n;
    }
    return PL_OK;
}

static void seg_list_export(const struct seg_list *l, const struct pl_wr *segs,
                            struct pl_bpp_seg *dst)
{
    for (size_t i = 0; i < l->n; i++) {
        dst[i].tlv = segs->buf + l->off[i];
        dst[i].len = l->len[i];
    }
}

static int params_check(const struct pl_bind_params *p)
{
    if (p == NULL || p->dp_key == NULL || p->euicc_otpk == NULL || p->eid == NULL
        || p->host_id == NULL || p->tid == NULL || p->upp == NULL || p->rng == NULL
        || p->rng->fill == NULL)
        return PL_ERR_INVAL;
    if (p->curve != PL_CURVE_P256 && p->curve != PL_CURVE_BP256R1)
        return PL_ERR_INVAL;
    if (pl_eckey_curve(p->dp_key) != p->curve || !pl_eckey_has_private(p->dp_key))
        return PL_ERR_INVAL;
    if (p->host_id_len < 1 || p->host_id_len > PL_BPP_HOST_ID_MAX || p->tid_len < 1
        || p->tid_len > PL_BPP_TID_MAX)
        return PL_ERR_INVAL;
    if (p->upp_len == 0 || p->upp_len > PL_BIND_UPP_MAX)
        return PL_ERR_INVAL;
    if (p->profile_class < -1 || p->profile_class > 2)
        return PL_ERR_INVAL;
    if ((p->dp_oid == NULL) != (p->dp_oid_len == 0))
        return PL_ERR_INVAL;
    if (p->euicc_otpk[0] != 0x04u)
        return PL_ERR_BAD_KEY;
    return PL_OK;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return PL_ERR_INVAL;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return PL_OK;
}

int pl_bpp_bind(const struct pl_bind_params *p, struct pl_wr *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eckey *eph = NULL;
    struct pl_bpp *bpp = NULL;
    struct pl_smr *smr = NULL;
    uint8_t otpk_dp[PL_EC_PUB_LEN];
    uint8_t sig[PL_ECDSA_SIG_LEN];
    uint8_t z[PL_ECDH_Z_LEN];
    uint8_t pc_tlv[3];
    struct pl_bsp_keys keys, ppk;
    struct pl_bsp bsp;
    struct pl_rsk rsk;
    struct pl_wr plain, segs;
    struct seg_list l87a = {0}, l88 = {0}, l87b = {0}, l86 = {0};
    struct pl_configure_isdp cfg;

    if (out == NULL)
        return PL_ERR_INVAL;
    memset(&keys, 0, sizeof(keys));
    memset(&ppk, 0, sizeof(ppk));
    memset(&bsp, 0, sizeof(bsp));
    memset(&rsk, 0, sizeof(rsk));
    pl_wr_init_dyn(&plain, 64u * 1024u);
    pl_wr_init_dyn(&segs, PL_BIND_BPP_MAX);
    if ((rc = pl_wr_status(out)))
        goto out;
    if ((rc = params_check(p)))
        goto out;

    bpp = calloc(1, sizeof(*bpp));
    smr = calloc(1, sizeof(*smr));
    if (!bpp || !smr) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = seg_list_alloc(&l87a, PL_BPP_MAX_87_FIRST))
        || (rc = seg_list_alloc(&l88, PL_BPP_MAX_88))
        || (rc = seg_list_alloc(&l87b, PL_BPP_MAX_87_SECOND))
        || (rc = seg_list_alloc(&l86, PL_BPP_MAX_86)))
        goto out;

    /* StoreMetadata from the UPP's own ProfileHeader, so '88' and the profile agree
     * (SGP.22 errorReason iccidMismatch(13) otherwise). */
    if ((rc = pl_upp_iccid(p->upp, p->upp_len, smr->iccid)))
        goto out;
    if ((rc = copy_str(smr->spn, sizeof(smr->spn), p->spn))
        || (rc = copy_str(smr->name, sizeof(smr->name), p->profile_name)))
        goto out;
    if (p->profile_class >= 0) {
        pc_tlv[0] = 0x95u; /* profileClass [21] INTEGER */
        pc_tlv[1] = 0x01u;
        pc_tlv[2] = (uint8_t)p->profile_class;
        smr->opt[PL_SMR_PROFILE_CLASS].tlv = pc_tlv;
        smr->opt[PL_SMR_PROFILE_CLASS].len = sizeof(pc_tlv);
    }

    /* 1. Ephemeral key per binding: PFS (SGP.41 GENS06, SGP.22 §2.6.4.2 otSK.DP.ECKA). */
    if ((rc = pl_eckey_generate(p->curve, p->rng, &eph)))
        goto out;
    if ((rc = pl_eckey_public(eph, otpk_dp)))
        goto out;

    /* 2. Z = ECDH(otSK.DP, otPK.EUICC); session keys (SGP.22 Annex G, IFPP.md §5.3). */
    if ((rc = pl_ecdh(eph, p->euicc_otpk, z)))
        goto out;
    pl_eckey_free(eph); /* zeroises otSK.DP: no longer needed */
    eph = NULL;
    if ((rc = pl_bsp_derive(z, p->host_id, p->host_id_len, p->eid, &keys)))
        goto out;
    pl_memzero(z, sizeof(z));
    pl_bsp_init(&bsp, &keys);
    pl_bsp_keys_wipe(&keys);

    /* 3. 'A0': ConfigureISDP, encrypted and MACed. */
    memset(&cfg, 0, sizeof(cfg));
    if (p->dp_oid) {
        cfg.has_dp = true;
        cfg.dp_oid = p->dp_oid;
        cfg.dp_oid_len = p->dp_oid_len;
    }
    if ((rc = pl_configure_isdp_encode(&cfg, &plain)))
        goto out;
    if ((rc = wrap_chunks(&bsp, TAG_SEG87, true, plain.buf, plain.len, PL_BSP_MAX_PLAIN_ENC, &segs,
                          &l87a)))
        goto out;
    pl_wr_reset(&plain);

    /* 4. 'A1': StoreMetadata, MAC only (readable by the factory: IFPP.md §5.1). */
    if ((rc = pl_smr_encode(smr, &plain)))
        goto out;
    if ((rc = wrap_chunks(&bsp, TAG_SEG88, false, plain.buf, plain.len, PL_BSP_MAX_PLAIN_MAC, &segs,
                          &l88)))
        goto out;
    pl_wr_reset(&plain);

    /* 5. 'A2': ReplaceSessionKeys with fresh PPKs; '86' then runs under them. */
    if (p->replace_session_keys) {
        if ((rc = p->rng->fill(p->rng->user, rsk.mcv, sizeof(rsk.mcv)))
            || (rc = p->rng->fill(p->rng->user, rsk.ppk_enc, sizeof(rsk.ppk_enc)))
            || (rc = p->rng->fill(p->rng->user, rsk.ppk_mac, sizeof(rsk.ppk_mac))))
            goto out;
        if ((rc = pl_rsk_encode(&rsk, &plain)))
            goto out;
        if ((rc = wrap_chunks(&bsp, TAG_SEG87, true, plain.buf, plain.len, PL_BSP_MAX_PLAIN_ENC,
                              &segs, &l87b)))
            goto out;
        pl_wr_reset(&plain);
        memcpy(ppk.mcv, rsk.mcv, sizeof(ppk.mcv));
        memcpy(ppk.s_enc, rsk.ppk_enc, sizeof(ppk.s_enc));
        memcpy(ppk.s_mac, rsk.ppk_mac, sizeof(ppk.s_mac));
        pl_memzero(&rsk, sizeof(rsk));
        pl_bsp_replace(&bsp, &ppk);
        pl_bsp_keys_wipe(&ppk);
    }

    /* 6. 'A3': the UPP; at most 1007 plaintext bytes per segment so that, with the
     * mandatory padding and the MAC, every TLV stays within 1020 bytes (IFPP.md §5.4). */
    if ((rc = wrap_chunks(&bsp, TAG_SEG86, true, p->upp, p->upp_len, PL_BSP_MAX_PLAIN_ENC, &segs,
                          &l86)))
        goto out;
    pl_bsp_wipe(&bsp);
    if ((rc = pl_wr_status(&segs)))
        goto out;

    /* 7. ISCR and smdpSign over its signed part plus otPK.EUICC (IFPP.md §5.2). */
    bpp->iscr.tid = p->tid;
    bpp->iscr.tid_len = p->tid_len;
    bpp->iscr.host_id = p->host_id;
    bpp->iscr.host_id_len = p->host_id_len;
    bpp->iscr.smdp_otpk = otpk_dp;
    if ((rc = pl_iscr_sign(&bpp->iscr, p->euicc_otpk, p->dp_key, p->rng, sig)))
        goto out;
    bpp->iscr.smdp_sign = sig;

    bpp->n87_first = l87a.n;
    seg_list_export(&l87a, &segs, bpp->first87);
    bpp->n88 = l88.n;
    seg_list_export(&l88, &segs, bpp->seq88);
    bpp->has_second87 = p->replace_session_keys;
    bpp->n87_second = l87b.n;
    seg_list_export(&l87b, &segs, bpp->second87);
    bpp->n86 = l86.n;
    seg_list_export(&l86, &segs, bpp->seq86);
    rc = pl_bpp_encode(bpp, out);

out:
    if (eph)
        pl_eckey_free(eph);
    pl_memzero(z, sizeof(z));
    pl_bsp_keys_wipe(&keys);
    pl_bsp_keys_wipe(&ppk);
    pl_bsp_wipe(&bsp);
    pl_memzero(&rsk, sizeof(rsk));
    pl_wr_free(&plain);
    pl_wr_free(&segs);
    seg_list_free(&l87a);
    seg_list_free(&l88);
    seg_list_free(&l87b);
    seg_list_free(&l86);
    free(bpp);
    free(smr);
    if (rc != PL_OK)
        pl_wr_fail(out, rc);
    return rc;
}
