/* Software eUICC: ES10b.LoadBoundProfilePackage, card side (GSMA SGP.22 v2.5 §5.7.6, BPP
 * §2.5.4, BSP §2.6.4 / Annex G), as SGP.41 in-factory provisioning uses it after provline's
 * ES10f LoadIfppPackage header (docs/ifpp-es10f.md). provline reference: IFPP.md §5.1-§5.7,
 * §6.2 steps a-e, §7 cases 1-3, 5-7, 18, 19, 21.
 *
 * Segment order (IFPP.md §5.7): (1) 'BF36' tag+length plus the whole 'BF23'; (2) the
 * whole 'A0'; (3) 'A1' tag+length; (4) each '88'; (5) the whole 'A2' if present; (6) 'A3'
 * tag+length; (7) each '86'. Anything else is scp03tStructureError(7).
 *
 * GENS08 (strict): the OTK is marked CONSUMED, and that is persisted together with the
 * in-progress marker, after smdpSign verified with otPK(otkId) and before any '87' is
 * processed; otSK is wiped in the same step. Session keys live in RAM only. */
#include "euicc_internal.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/der.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"

#include <stdlib.h>
#include <string.h>

void pl_euicc_load_reset(struct pl_euicc *e)
{
    struct pl_euicc_load *l = &e->load;
    pl_bsp_wipe(&l->bsp);
    pl_eckey_free(l->dpf_pub);
    l->dpf_pub = NULL;
    pl_wr_reset(&l->meta);
    pl_wr_reset(&l->upp);
    l->phase = PL_LOAD_IDLE;
    l->otk_id = 0;
    pl_memzero(l->tid, sizeof(l->tid));
    l->tid_len = 0;
    l->consumed = false;
    l->bpp_left = l->a1_left = l->a3_left = 0;
    pl_memzero(l->iccid, sizeof(l->iccid));
    l->has_iccid = false;
    pl_memzero(l->dp_oid, sizeof(l->dp_oid));
    l->dp_oid_len = 0;
    l->channel = 0;
}

/* The BPP command a load was at, for bppCommandId (SGP.22 BppCommandId). */
static int phase_cmd(enum pl_euicc_phase p)
{
    switch (p) {
    case PL_LOAD_IDLE:
    case PL_LOAD_HEADER:
        return PL_PIR_CMD_INITIALISE_SECURE_CHANNEL;
    case PL_LOAD_ISCR:
        return PL_PIR_CMD_CONFIGURE_ISDP;
    case PL_LOAD_A0:
    case PL_LOAD_A1:
        return PL_PIR_CMD_STORE_METADATA;
    case PL_LOAD_A1_DONE:
    case PL_LOAD_A2:
    case PL_LOAD_A3:
        return PL_PIR_CMD_LOAD_PROFILE_ELEMENTS;
    }
    return PL_PIR_CMD_LOAD_PROFILE_ELEMENTS;
}

/* The BPP command a segment with tag belongs to, when it arrives in phase p. */
static int segment_cmd(enum pl_euicc_phase p, uint32_t tag)
{
    if (p == PL_LOAD_A1_DONE && tag == 0xA2u)
        return PL_PIR_CMD_REPLACE_SESSION_KEYS;
    if (p == PL_LOAD_A1_DONE && tag == 0x88u)
        return PL_PIR_CMD_STORE_METADATA; /* one '88' too many */
    return phase_cmd(p);
}

int pl_euicc_load_abort(struct pl_euicc *e, int cmd, int reason, struct pl_wr *out)
{
    struct pl_euicc_load *l = &e->load;
    if (l->phase == PL_LOAD_IDLE)
        return PL_OK;
    if (cmd < 0)
        cmd = phase_cmd(l->phase);
    uint8_t tid[PL_EUICC_TID_MAX];
    size_t tid_len = l->tid_len;
    memcpy(tid, l->tid, tid_len);
    /* The partial ISD-P never left RAM: wiping the context deletes it. The PIR uses the
     * context's dpOid and ICCID, so wipe the secrets first and the rest after. */
    pl_bsp_wipe(&l->bsp);
    pl_wr_reset(&l->upp);
    int rc = pl_euicc_pir_emit(e, tid, tid_len, l->has_iccid ? l->iccid : NULL, NULL, cmd, reason,
                               l->consumed, out);
    pl_euicc_load_reset(e);
    return rc;
}

int pl_euicc_load_interrupt(struct pl_euicc *e)
{
    if (e->load.phase == PL_LOAD_IDLE)
        return PL_OK;
    if (!e->load.consumed) {
        pl_euicc_load_reset(e); /* a header alone: nothing happened, nothing to report */
        return PL_OK;
    }
    return pl_euicc_load_abort(e, -1, PL_PIR_REASON_INTERRUPTION, NULL);
}

/* ---- segment framing ---- */

/* Identifier and length octets of a TLV whose contents may not all be present (the
 * header-only segments 'BF36'+..., 'A1', 'A3'). Strict DER length. */
static int read_header(struct pl_rd *r, uint32_t *tag, size_t *len)
{
    return pl_der_read_header(r, PL_DER_MAX_LEN, tag, len);
}

/* A segment that is exactly a TLV header (tag+length) with tag `want`. */
static int header_only(const uint8_t *seg, size_t len, uint32_t want, size_t *clen, size_t *hlen)
{
    struct pl_rd r;
    uint32_t tag;
    pl_rd_init(&r, seg, len);
    int rc = read_header(&r, &tag, clen);
    if (rc)
        return rc;
    if (tag != want)
        return PL_ERR_DER_TAG;
    if (!pl_rd_done(&r))
        return PL_ERR_DER_TRAILING;
    *hlen = len;
    return PL_OK;
}

/* Takes n bytes of the enclosing TLV's remaining contents. */
static int take(size_t *left, size_t n)
{
    if (n > *left)
        return PL_ERR_DER_LENGTH;
    *left -= n;
    return PL_OK;
}

/* Maps a BSP/segment failure to the SGP.22 error reason. */
static int bsp_reason(int rc)
{
    switch (rc) {
    case PL_ERR_BAD_MAC:
        return PL_PIR_REASON_SCP03T_SECURITY_ERROR;
    case PL_ERR_NOMEM:
        return PL_PIR_REASON_INSUFFICIENT_MEMORY;
    default:
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    }
}

/* Opens every segment of a whole 'A0'/'A2' (tag list) or one '86'/'88' with the session's
 * BSP state, appending plaintexts to out. Returns a PIR reason (0 = ok). */
static int open_segment(struct pl_euicc *e, uint8_t seg_tag, bool enc, const uint8_t *tlv,
                        size_t len, struct pl_wr *out)
{
    if (len > PL_BSP_MAX_SEGMENT)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR; /* IFPP.md §5.4, §7 case 21 */
    int rc = pl_bsp_unwrap(&e->load.bsp, seg_tag, enc, tlv, len, out);
    if (rc && pl_wr_status(out) == PL_ERR_OVERFLOW)
        return PL_PIR_REASON_INSUFFICIENT_MEMORY; /* the profile outgrew the eUICC */
    return rc ? bsp_reason(rc) : 0;
}

static int open_list(struct pl_euicc *e, const uint8_t *seg, size_t len, uint32_t list_tag,
                     size_t max, struct pl_wr *out)
{
    struct pl_tlv t, s;
    struct pl_der d, in;
    size_t n = 0;
    int reason;
    if (pl_der_parse_one(seg, len, list_tag, &t) != PL_OK)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    pl_der_init(&d, seg, len);
    if (pl_der_enter(&d, &t, &in) != PL_OK)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    while (!pl_der_done(&in)) {
        if (pl_der_expect(&in, 0x87u, &s) != PL_OK || ++n > max)
            return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        if ((reason = open_segment(e, 0x87u, true, s.raw, s.raw_len, out)))
            return reason;
    }
    return n ? 0 : PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
}

/* ---- the steps ---- */

/* (1) 'BF36' header + 'BF23': IFPP.md §6.2 a-c. Returns a PIR reason (0 = ok, the OTK is
 * consumed and persisted) or a negative pl_err. */
static int step_iscr(struct pl_euicc *e, const uint8_t *seg, size_t len)
{
    struct pl_euicc_load *l = &e->load;
    struct pl_rd r;
    uint32_t tag;
    size_t bpp_len;
    struct pl_iscr iscr;
    struct pl_eckey *otsk = NULL;
    struct pl_bsp_keys keys;
    uint8_t z[PL_ECDH_Z_LEN];
    int rc, reason = 0;

    pl_rd_init(&r, seg, len);
    if (read_header(&r, &tag, &bpp_len) != PL_OK || tag != PL_TAG_BPP)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    size_t iscr_len = pl_rd_left(&r);
    if (iscr_len > bpp_len)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    rc = pl_iscr_decode(pl_rd_ptr(&r), iscr_len, &iscr);
    if (rc == PL_ERR_UNSUPPORTED)
        return PL_PIR_REASON_UNSUPPORTED_CRT_VALUES;
    if (rc)
        return PL_PIR_REASON_INCORRECT_INPUT_VALUES;
    /* The ES10f header announced this transactionId. From here the PIR carries the ISCR's
     * (the Key Maker matches on it). */
    bool same_tid = l->tid_len == iscr.tid_len && memcmp(l->tid, iscr.tid, iscr.tid_len) == 0;
    memcpy(l->tid, iscr.tid, iscr.tid_len);
    l->tid_len = iscr.tid_len;
    if (!same_tid)
        return PL_PIR_REASON_INVALID_TRANSACTION_ID;
    /* (a) the OTK named by the header is FREE (re-checked: single-use, GENS08) */
    struct pl_euicc_otk *otk = pl_euicc_otk_find(&e->st, l->otk_id);
    if (!otk || otk->state != PL_EUICC_OTK_FREE || !e->st.factory_mode)
        return PL_PIR_REASON_INCORRECT_INPUT_VALUES;
    /* (b) smdpSign over the ISCR signed part with otPK(otkId) appended: a package bound to
     * another chip or another OTK fails here, before anything changes (§7 cases 2, 3). */
    rc = pl_iscr_verify(&iscr, otk->pk, l->dpf_pub);
    if (rc == PL_ERR_BAD_SIGNATURE)
        return PL_PIR_REASON_INVALID_SIGNATURE;
    if (rc)
        return PL_PIR_REASON_INCORRECT_INPUT_VALUES;
    /* Session keys (SGP.22 §2.6.4.2): Z = ECDH(otSK.EUICC, otPK.DP), X9.63 KDF. */
    if ((rc = pl_eckey_from_private(e->st.curve, otk->sk, &otsk)))
        return rc;
    rc = pl_ecdh(otsk, iscr.smdp_otpk, z);
    pl_eckey_free(otsk);
    if (rc) {
        reason = PL_PIR_REASON_INCORRECT_INPUT_VALUES; /* otPK.DP not on the curve */
        rc = PL_OK;
        goto out;
    }
    if ((rc = pl_bsp_derive(z, iscr.host_id, iscr.host_id_len, e->st.eid, &keys)))
        goto out;
    pl_bsp_init(&l->bsp, &keys);
    pl_bsp_keys_wipe(&keys);
    /* (c) consume the OTK and wipe otSK, with the in-progress marker, in one write, before
     * any '87'. factoryMode ends with the last FREE OTK (IFPP.md §6.2 Lock). */
    otk->state = PL_EUICC_OTK_CONSUMED;
    pl_memzero(otk->sk, sizeof(otk->sk));
    e->st.loading.active = true;
    e->st.loading.otk_id = l->otk_id;
    memcpy(e->st.loading.tid, l->tid, l->tid_len);
    e->st.loading.tid_len = l->tid_len;
    if (pl_euicc_otk_free_count(&e->st) == 0)
        e->st.factory_mode = false;
    l->consumed = true;
    if ((rc = pl_euicc_persist(e)))
        goto out;
    l->bpp_left = bpp_len - iscr_len;
    l->phase = PL_LOAD_ISCR;
out:
    pl_memzero(z, sizeof(z));
    return rc ? rc : reason;
}

/* (2) 'A0' ConfigureISDP. */
static int step_a0(struct pl_euicc *e, const uint8_t *seg, size_t len)
{
    struct pl_euicc_load *l = &e->load;
    struct pl_wr plain;
    struct pl_configure_isdp cfg;
    uint8_t buf[PL_CONFIGURE_ISDP_DP_MAX + 16];
    int reason;

    if (take(&l->bpp_left, len) != PL_OK)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    pl_wr_init_fixed(&plain, buf, sizeof(buf));
    reason = open_list(e, seg, len, 0xA0u, PL_BPP_MAX_87_FIRST, &plain);
    if (reason)
        goto out;
    if (pl_configure_isdp_decode(plain.buf, plain.len, &cfg) != PL_OK) {
        reason = PL_PIR_REASON_INCORRECT_INPUT_VALUES;
        goto out;
    }
    if (cfg.has_dp && cfg.dp_oid_len <= sizeof(l->dp_oid)) {
        memcpy(l->dp_oid, cfg.dp_oid, cfg.dp_oid_len);
        l->dp_oid_len = cfg.dp_oid_len;
    }
    /* Creating the ISD-P needs a free profile slot. */
    if (e->st.n_prof >= PL_EUICC_MAX_PROFILES) {
        reason = PL_PIR_REASON_INSUFFICIENT_MEMORY;
        goto out;
    }
    l->phase = PL_LOAD_A0;
out:
    pl_wr_reset(&plain);
    return reason;
}

/* (3) 'A1' header. */
static int step_a1_header(struct pl_euicc *e, const uint8_t *seg, size_t len)
{
    struct pl_euicc_load *l = &e->load;
    size_t clen, hlen;
    if (header_only(seg, len, 0xA1u, &clen, &hlen) != PL_OK || clen == 0
        || take(&l->bpp_left, hlen) != PL_OK || take(&l->bpp_left, clen) != PL_OK)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    l->a1_left = clen;
    l->phase = PL_LOAD_A1;
    return 0;
}

/* The ICCID must not be on the eUICC yet (SGP.22 iccidAlreadyExistsOnEuicc). */
static bool iccid_present(const struct pl_euicc *e, const uint8_t iccid[PL_EUICC_ICCID_LEN])
{
    for (size_t i = 0; i < e->st.n_prof; i++)
        if (memcmp(e->st.prof[i].iccid, iccid, PL_EUICC_ICCID_LEN) == 0)
            return true;
    return false;
}

/* (4) each '88' StoreMetadata (MAC only). */
static int step_88(struct pl_euicc *e, const uint8_t *seg, size_t len)
{
    struct pl_euicc_load *l = &e->load;
    struct pl_tlv t;
    struct pl_smr smr;
    int reason;
    if (pl_der_parse_one(seg, len, 0x88u, &t) != PL_OK || take(&l->a1_left, len) != PL_OK)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    if ((reason = open_segment(e, 0x88u, false, seg, len, &l->meta)))
        return reason;
    if (l->a1_left > 0)
        return 0;
    /* 'A1' complete: StoreMetadata 'BF25'. */
    if (pl_smr_decode(l->meta.buf, l->meta.len, &smr) != PL_OK)
        return PL_PIR_REASON_INCORRECT_INPUT_VALUES;
    memcpy(l->iccid, smr.iccid, sizeof(l->iccid));
    l->has_iccid = true;
    if (iccid_present(e, smr.iccid))
        return PL_PIR_REASON_ICCID_ALREADY_EXISTS;
    l->phase = PL_LOAD_A1_DONE;
    return 0;
}

/* (5) 'A2' ReplaceSessionKeys: the '86' segments use the PPKs from here on. */
static int step_a2(struct pl_euicc *e, const uint8_t *seg, size_t len)
{
    struct pl_euicc_load *l = &e->load;
    uint8_t buf[128];
    struct pl_wr plain;
    struct pl_rsk rsk;
    struct pl_bsp_keys keys;
    int reason;
    memset(&rsk, 0, sizeof(rsk));
    if (take(&l->bpp_left, len) != PL_OK)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    pl_wr_init_fixed(&plain, buf, sizeof(buf));
    reason = open_list(e, seg, len, 0xA2u, PL_BPP_MAX_87_SECOND, &plain);
    if (reason)
        goto out;
    if (pl_rsk_decode(plain.buf, plain.len, &rsk) != PL_OK) {
        reason = PL_PIR_REASON_INCORRECT_INPUT_VALUES;
        goto out;
    }
    memcpy(keys.mcv, rsk.mcv, sizeof(keys.mcv));
    memcpy(keys.s_enc, rsk.ppk_enc, sizeof(keys.s_enc));
    memcpy(keys.s_mac, rsk.ppk_mac, sizeof(keys.s_mac));
    pl_bsp_replace(&l->bsp, &keys);
    pl_bsp_keys_wipe(&keys);
    l->phase = PL_LOAD_A2;
out:
    pl_memzero(&rsk, sizeof(rsk));
    pl_wr_reset(&plain);
    return reason;
}

/* (6) 'A3' header: the last element of 'BF36'. */
static int step_a3_header(struct pl_euicc *e, const uint8_t *seg, size_t len)
{
    struct pl_euicc_load *l = &e->load;
    size_t clen, hlen;
    if (header_only(seg, len, 0xA3u, &clen, &hlen) != PL_OK || clen == 0
        || take(&l->bpp_left, hlen) != PL_OK || take(&l->bpp_left, clen) != PL_OK
        || l->bpp_left != 0)
        return PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
    l->a3_left = clen;
    l->phase = PL_LOAD_A3;
    return 0;
}

/* The end of the last '86': install and answer with the success PIR (IFPP.md §6.2 d). */
static int install(struct pl_euicc *e, struct pl_wr *rsp, int *reason)
{
    struct pl_euicc_load *l = &e->load;
    uint8_t upp_iccid[PL_EUICC_ICCID_LEN];
    int rc;

    *reason = 0;
    if (pl_upp_iccid(l->upp.buf, l->upp.len, upp_iccid) != PL_OK) {
        *reason = PL_PIR_REASON_PE_PROCESSING_ERROR;
        return PL_OK;
    }
    if (memcmp(upp_iccid, l->iccid, sizeof(upp_iccid)) != 0) {
        *reason = PL_PIR_REASON_DATA_MISMATCH; /* ProfileHeader ICCID != StoreMetadata */
        return PL_OK;
    }
    struct pl_euicc_prof *p = &e->st.prof[e->st.n_prof];
    memset(p, 0, sizeof(*p));
    /* ISD-P AID: A0000005591010FFFFFFFF89 00 00 1n 00 (SGP.02/SGP.22 ISD-P range). */
    static const uint8_t aid_prefix[12] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10,
                                           0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89};
    memcpy(p->aid, aid_prefix, sizeof(aid_prefix));
    uint32_t n = 0x1000u + (e->st.isdp_next << 8);
    p->aid[12] = (uint8_t)(n >> 24);
    p->aid[13] = (uint8_t)(n >> 16);
    p->aid[14] = (uint8_t)(n >> 8);
    p->aid[15] = (uint8_t)n;
    memcpy(p->iccid, l->iccid, sizeof(p->iccid));
    p->enabled = false; /* SGP.22: a profile is installed Disabled */
    p->meta = pl_wr_take(&l->meta, &p->meta_len);
    p->upp = pl_wr_take(&l->upp, &p->upp_len);
    pl_wr_init_dyn(&l->meta, PL_EUICC_META_MAX);
    pl_wr_init_dyn(&l->upp, PL_EUICC_UPP_MAX);
    if (!p->meta || !p->upp) {
        pl_euicc_prof_free(p);
        return PL_ERR_NOMEM;
    }
    e->st.n_prof++;
    e->st.isdp_next++;
    uint8_t aid[PL_EUICC_AID_LEN];
    memcpy(aid, p->aid, sizeof(aid));
    /* Profile, PIR and marker clearing: one state write. */
    rc = pl_euicc_pir_emit(e, l->tid, l->tid_len, l->iccid, aid, 0, 0, true, rsp);
    if (rc && !e->dead) {
        /* The PIR could not be built: undo the install and report the error instead. */
        e->st.n_prof--;
        e->st.isdp_next--;
        pl_euicc_prof_free(&e->st.prof[e->st.n_prof]);
        *reason = PL_PIR_REASON_UNKNOWN_ERROR;
        return PL_OK;
    }
    pl_euicc_load_reset(e);
    return rc;
}

/* (7) each '86'. */
static int step_86(struct pl_euicc *e, const uint8_t *seg, size_t len, struct pl_wr *rsp,
                   int *reason)
{
    struct pl_euicc_load *l = &e->load;
    struct pl_tlv t;
    *reason = 0;
    if (len > PL_BSP_MAX_SEGMENT || pl_der_parse_one(seg, len, 0x86u, &t) != PL_OK
        || take(&l->a3_left, len) != PL_OK) {
        *reason = PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        return PL_OK;
    }
    if ((*reason = open_segment(e, 0x86u, true, seg, len, &l->upp)))
        return PL_OK;
    if (l->a3_left > 0)
        return PL_OK;
    return install(e, rsp, reason);
}

/* Whether tag is one of the BPP segment tags, in any position. */
bool pl_euicc_is_bpp_segment_tag(uint32_t tag)
{
    switch (tag) {
    case PL_TAG_BPP:
    case 0xA0u:
    case 0xA1u:
    case 0xA2u:
    case 0xA3u:
    case 0x86u:
    case 0x87u:
    case 0x88u:
        return true;
    default:
        return false;
    }
}

int pl_euicc_es10b_load_bpp_segment(struct pl_euicc *e, const uint8_t *seg, size_t len,
                                    struct pl_wr *rsp)
{
    struct pl_euicc_load *l = &e->load;
    struct pl_der d;
    uint32_t tag = 0;
    int reason = 0, rc = PL_OK;
    int cmd;

    pl_der_init(&d, seg, len);
    if (pl_der_peek_tag(&d, &tag) != PL_OK)
        tag = 0;
    cmd = segment_cmd(l->phase, tag);
    /* Each step accepts one tag; anything else is out of order. */
    switch (l->phase) {
    case PL_LOAD_HEADER:
        reason = tag == PL_TAG_BPP ? step_iscr(e, seg, len) : PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_ISCR:
        reason = tag == 0xA0u ? step_a0(e, seg, len) : PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_A0:
        reason = tag == 0xA1u ? step_a1_header(e, seg, len) : PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_A1:
        reason = tag == 0x88u ? step_88(e, seg, len) : PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_A1_DONE:
        if (tag == 0xA2u)
            reason = step_a2(e, seg, len);
        else if (tag == 0xA3u)
            reason = step_a3_header(e, seg, len);
        else
            reason = PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_A2:
        reason = tag == 0xA3u ? step_a3_header(e, seg, len) : PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_A3:
        if (tag == 0x86u)
            rc = step_86(e, seg, len, rsp, &reason);
        else
            reason = PL_PIR_REASON_SCP03T_STRUCTURE_ERROR;
        break;
    case PL_LOAD_IDLE:
        return PL_SW_CONDITIONS;
    }
    if (reason < 0) {
        rc = reason;
        reason = 0;
    }
    if (e->dead)
        return PL_ERR_STATE;
    if (rc < 0) {
        /* An internal failure (memory, crypto): still a signed answer, never silence. */
        reason = PL_PIR_REASON_UNKNOWN_ERROR;
    }
    if (reason > 0)
        return pl_euicc_load_abort(e, cmd, reason, rsp);
    return PL_OK;
}
