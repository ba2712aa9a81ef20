/* ES10f "FPA Services" commands. PROVLINE'S OWN COMMAND SET until GSMA SGP.42 is public:
 * docs/ifpp-es10f.md §3-§7 (wire, sequencing, lock rules, ASN.1), docs/decisions/0004.
 * Sources: GSMA SGP.41 v1.0 GENS08, GENS13, EUICCF03, EUICCF04 (IFPP.md §3-§4); IFPP.md
 * §6.1-§6.2; the GSMA SGP.32 v1.2 §2.11 EuiccPackageRequest counter pattern (IFPP.md
 * §5.8, EIM.md §1.3); ARCHITECTURE.md §4 steps 1 and 6. Strict DER through der.h only. */
#include "provline/protocol/es10f.h"

#include <string.h>

#include "provline/protocol/der.h"

/* GetIfppInfoResponse fields */
#define T_INFO_EID          0x80u
#define T_INFO_FACTORY_MODE 0x81u
#define T_INFO_CERT_EUICC   0xA2u
#define T_INFO_CERT_EUM     0xA3u
#define T_INFO_OTK_LIST     0xA4u
/* SignedOtk fields */
#define T_OTK_ID  0x80u
#define T_OTK_PK  0x81u
#define T_OTK_SIG 0x82u
/* LoadIfppPackageRequest fields */
#define T_LOAD_OTK_ID 0x80u
#define T_LOAD_TID    0x81u
#define T_LOAD_CHAIN  0xA2u
/* DeleteRemainingOtksRequest fields */
#define T_DOTK_CHAIN 0xA0u
/* DeleteOtksToken / OtkDeletionReceipt fields */
#define T_TOK_EID      0x80u
#define T_TOK_COUNTER  0x81u
#define T_TOK_OP       0x82u
#define T_TOK_TID      0x83u
#define T_RCPT_DELETED 0xA4u
/* DeleteRemainingOtksResponse CHOICE arms */
#define T_DOTK_RECEIPT 0xA0u
#define T_DOTK_ERROR   0x81u

#define TOKEN_TBS_MAX   128u
#define RECEIPT_TBS_MAX PL_ES10F_DELETE_OTKS_RSP_MAX

static int wr_fail(struct pl_wr *w, int err)
{
    pl_wr_fail(w, err);
    return pl_wr_status(w);
}

static int get_u16(const struct pl_tlv *t, uint16_t *out)
{
    uint64_t v;
    int rc = pl_der_get_uint(t, &v);
    if (rc)
        return rc;
    if (v > UINT16_MAX)
        return PL_ERR_DER_VALUE;
    *out = (uint16_t)v;
    return PL_OK;
}

static int get_u32(const struct pl_tlv *t, uint32_t *out)
{
    uint64_t v;
    int rc = pl_der_get_uint(t, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return PL_ERR_DER_VALUE;
    *out = (uint32_t)v;
    return PL_OK;
}

/* Opens the one outermost TLV of a command: exactly [p, p+len), tag, within cap. */
static int open_outer(const uint8_t *p, size_t len, uint32_t tag, size_t cap, struct pl_der *d,
                      struct pl_tlv *outer, struct pl_der *inner)
{
    int rc = PL_ERR_INTERNAL;
    if (!p && len)
        return PL_ERR_INVAL;
    if (len > cap)
        return PL_ERR_DER_TOOBIG;
    pl_der_init_limits(d, p, len, PL_DER_MAX_DEPTH, cap);
    if ((rc = pl_der_expect(d, tag, outer)) || (rc = pl_der_finish(d)))
        return rc;
    return pl_der_enter(d, outer, inner);
}

/* '[n] EXPLICIT Certificate': tag { '30' ... } with exactly one certificate. */
static int get_wrapped_cert(const struct pl_der *parent, const struct pl_tlv *tlv,
                            struct pl_ifpp_cert *out)
{
    struct pl_der d;
    struct pl_tlv t;
    int rc = pl_der_enter(parent, tlv, &d);
    if (rc || (rc = pl_der_expect(&d, PL_TAG_SEQUENCE, &t)) || (rc = pl_der_finish(&d)))
        return rc;
    if (t.raw_len > PL_IFPP_CERT_MAX)
        return PL_ERR_OVERFLOW;
    if ((rc = pl_der_validate(t.raw, t.raw_len, 0)))
        return rc;
    out->der = t.raw;
    out->len = t.raw_len;
    return PL_OK;
}

static bool cert_ok(const struct pl_ifpp_cert *c)
{
    struct pl_tlv t;
    if (!c->der || c->len == 0 || c->len > PL_IFPP_CERT_MAX)
        return false;
    if (pl_der_parse_one(c->der, c->len, PL_TAG_SEQUENCE, &t) != PL_OK)
        return false;
    return pl_der_validate(c->der, c->len, 0) == PL_OK;
}

static bool tid_ok(const uint8_t *tid, size_t len)
{
    return tid && len >= 1 && len <= PL_IFPP_TID_MAX;
}

static bool opt_tid_ok(const uint8_t *tid, size_t len)
{
    return len == 0 || tid_ok(tid, len);
}

/* ------------------------------------------------------------------- one-time keys - */

void pl_ifpp_otk_signed_data(const uint8_t eid[PL_IFPP_EID_LEN], uint16_t otk_id,
                             const uint8_t otpk[PL_EC_PUB_LEN], uint8_t out[PL_IFPP_OTK_MSG_LEN])
{
    memcpy(out, PL_IFPP_OTK_LABEL, PL_IFPP_OTK_LABEL_LEN);
    memcpy(out + PL_IFPP_OTK_LABEL_LEN, eid, PL_IFPP_EID_LEN);
    out[PL_IFPP_OTK_LABEL_LEN + PL_IFPP_EID_LEN] = (uint8_t)(otk_id >> 8);
    out[PL_IFPP_OTK_LABEL_LEN + PL_IFPP_EID_LEN + 1] = (uint8_t)(otk_id & 0xFFu);
    memcpy(out + PL_IFPP_OTK_LABEL_LEN + PL_IFPP_EID_LEN + 2, otpk, PL_EC_PUB_LEN);
}

int pl_ifpp_otk_sign(const struct pl_eckey *euicc_sk, const uint8_t eid[PL_IFPP_EID_LEN],
                     struct pl_ifpp_otk *otk, const struct pl_rng *rng)
{
    uint8_t msg[PL_IFPP_OTK_MSG_LEN];
    if (!euicc_sk || !eid || !otk)
        return PL_ERR_INVAL;
    pl_ifpp_otk_signed_data(eid, otk->otk_id, otk->otpk, msg);
    return pl_ecdsa_sign(euicc_sk, msg, sizeof(msg), rng, otk->sig);
}

int pl_ifpp_otk_verify(const struct pl_eckey *euicc_pub, const uint8_t eid[PL_IFPP_EID_LEN],
                       const struct pl_ifpp_otk *otk)
{
    uint8_t msg[PL_IFPP_OTK_MSG_LEN];
    if (!euicc_pub || !eid || !otk)
        return PL_ERR_INVAL;
    pl_ifpp_otk_signed_data(eid, otk->otk_id, otk->otpk, msg);
    return pl_ecdsa_verify(euicc_pub, msg, sizeof(msg), otk->sig);
}

/* -------------------------------------------------------------------- GetIfppInfo - */

int pl_es10f_get_info_req_encode(struct pl_wr *w)
{
    if (!w)
        return PL_ERR_INVAL;
    return pl_der_put_tlv(w, PL_TAG_ES10F_GET_INFO_REQ, NULL, 0);
}

int pl_es10f_get_info_req_decode(const uint8_t *p, size_t len)
{
    struct pl_der d, in;
    struct pl_tlv outer;
    int rc = open_outer(p, len, PL_TAG_ES10F_GET_INFO_REQ, 16, &d, &outer, &in);
    if (rc)
        return rc;
    return pl_der_finish(&in); /* GetIfppInfoRequest has no fields */
}

int pl_es10f_get_info_rsp_encode(const struct pl_es10f_info *in, struct pl_wr *w)
{
    if (!w)
        return PL_ERR_INVAL;
    if (!in || !cert_ok(&in->cert_euicc) || !cert_ok(&in->cert_eum) || in->n_otk > PL_ES10F_OTK_MAX)
        return wr_fail(w, PL_ERR_INVAL);
    for (size_t i = 1; i < in->n_otk; i++)
        if (in->otk[i].otk_id <= in->otk[i - 1].otk_id)
            return wr_fail(w, PL_ERR_INVAL); /* strictly increasing */
    size_t mark = pl_der_begin(w, PL_TAG_ES10F_GET_INFO_RSP);
    pl_der_put_tlv(w, T_INFO_EID, in->eid, PL_IFPP_EID_LEN);
    pl_der_put_bool(w, T_INFO_FACTORY_MODE, in->factory_mode);
    pl_der_put_tlv(w, T_INFO_CERT_EUICC, in->cert_euicc.der, in->cert_euicc.len);
    pl_der_put_tlv(w, T_INFO_CERT_EUM, in->cert_eum.der, in->cert_eum.len);
    size_t list = pl_der_begin(w, T_INFO_OTK_LIST);
    for (size_t i = 0; i < in->n_otk; i++) {
        size_t m = pl_der_begin(w, PL_TAG_SEQUENCE);
        pl_der_put_uint(w, T_OTK_ID, in->otk[i].otk_id);
        pl_der_put_tlv(w, T_OTK_PK, in->otk[i].otpk, PL_EC_PUB_LEN);
        pl_der_put_tlv(w, T_OTK_SIG, in->otk[i].sig, PL_ECDSA_SIG_LEN);
        pl_der_end(w, m);
    }
    pl_der_end(w, list);
    return pl_der_end(w, mark);
}

static int get_otk_list(const struct pl_der *parent, const struct pl_tlv *tlv,
                        struct pl_es10f_info *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d;
    if ((rc = pl_der_enter(parent, tlv, &d)))
        goto out;
    while (!pl_der_done(&d)) {
        struct pl_tlv e, t;
        struct pl_der f;
        struct pl_ifpp_otk *o;
        if ((rc = pl_der_expect(&d, PL_TAG_SEQUENCE, &e)))
            goto out;
        if (out->n_otk == PL_ES10F_OTK_MAX) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        o = &out->otk[out->n_otk];
        if ((rc = pl_der_enter(&d, &e, &f)))
            goto out;
        if ((rc = pl_der_expect(&f, T_OTK_ID, &t)) || (rc = get_u16(&t, &o->otk_id)))
            goto out;
        if ((rc = pl_der_expect(&f, T_OTK_PK, &t))
            || (rc = pl_der_get_fixed(&t, o->otpk, PL_EC_PUB_LEN)))
            goto out;
        if ((rc = pl_der_expect(&f, T_OTK_SIG, &t))
            || (rc = pl_der_get_fixed(&t, o->sig, PL_ECDSA_SIG_LEN)))
            goto out;
        if ((rc = pl_der_finish(&f)))
            goto out;
        if (out->n_otk > 0 && o->otk_id <= out->otk[out->n_otk - 1].otk_id) {
            rc = PL_ERR_DER_VALUE; /* unsorted or duplicate otkId */
            goto out;
        }
        out->n_otk++;
    }
    rc = PL_OK;
out:
    return rc;
}

int pl_es10f_get_info_rsp_decode(const uint8_t *p, size_t len, struct pl_es10f_info *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d, s;
    struct pl_tlv outer, t;
    if (!out)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if ((rc = open_outer(p, len, PL_TAG_ES10F_GET_INFO_RSP, PL_ES10F_GET_INFO_RSP_MAX, &d, &outer,
                         &s)))
        goto out;
    if ((rc = pl_der_expect(&s, T_INFO_EID, &t))
        || (rc = pl_der_get_fixed(&t, out->eid, PL_IFPP_EID_LEN)))
        goto out;
    if ((rc = pl_der_expect(&s, T_INFO_FACTORY_MODE, &t))
        || (rc = pl_der_get_bool(&t, &out->factory_mode)))
        goto out;
    if ((rc = pl_der_expect(&s, T_INFO_CERT_EUICC, &t))
        || (rc = get_wrapped_cert(&s, &t, &out->cert_euicc)))
        goto out;
    if ((rc = pl_der_expect(&s, T_INFO_CERT_EUM, &t))
        || (rc = get_wrapped_cert(&s, &t, &out->cert_eum)))
        goto out;
    if ((rc = pl_der_expect(&s, T_INFO_OTK_LIST, &t)) || (rc = get_otk_list(&s, &t, out)))
        goto out;
    rc = pl_der_finish(&s);
out:
    return rc;
}

const struct pl_ifpp_otk *pl_es10f_info_find_otk(const struct pl_es10f_info *info, uint16_t otk_id)
{
    if (!info)
        return NULL;
    for (size_t i = 0; i < info->n_otk && i < PL_ES10F_OTK_MAX; i++)
        if (info->otk[i].otk_id == otk_id)
            return &info->otk[i];
    return NULL;
}

/* ---------------------------------------------------------------- LoadIfppPackage - */

int pl_es10f_load_req_encode(const struct pl_es10f_load_req *in, struct pl_wr *w)
{
    int rc = PL_ERR_INTERNAL;
    if (!w)
        return PL_ERR_INVAL;
    if (!in || !tid_ok(in->tid, in->tid_len))
        return wr_fail(w, PL_ERR_INVAL);
    size_t mark = pl_der_begin(w, PL_TAG_ES10F_LOAD_REQ);
    pl_der_put_uint(w, T_LOAD_OTK_ID, in->otk_id);
    pl_der_put_tlv(w, T_LOAD_TID, in->tid, in->tid_len);
    if ((rc = pl_ifpp_chain_encode(w, T_LOAD_CHAIN, &in->dpf_chain)))
        return rc;
    return pl_der_end(w, mark);
}

int pl_es10f_load_req_decode(const uint8_t *p, size_t len, struct pl_es10f_load_req *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d, s;
    struct pl_tlv outer, t;
    if (!out)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if ((rc = open_outer(p, len, PL_TAG_ES10F_LOAD_REQ, PL_ES10F_LOAD_REQ_MAX, &d, &outer, &s)))
        goto out;
    if ((rc = pl_der_expect(&s, T_LOAD_OTK_ID, &t)) || (rc = get_u16(&t, &out->otk_id)))
        goto out;
    if ((rc = pl_der_expect(&s, T_LOAD_TID, &t))
        || (rc = pl_der_get_octets(&t, 1, PL_IFPP_TID_MAX, &out->tid, &out->tid_len)))
        goto out;
    if ((rc = pl_der_expect(&s, T_LOAD_CHAIN, &t))
        || (rc = pl_ifpp_chain_decode(&s, &t, &out->dpf_chain)))
        goto out;
    rc = pl_der_finish(&s);
out:
    return rc;
}

void pl_es10f_load_req_from_pkg(const struct pl_ifpp_pkg *pkg, struct pl_es10f_load_req *out)
{
    out->otk_id = pkg->otk_id;
    out->tid = pkg->tid;
    out->tid_len = pkg->tid_len;
    out->dpf_chain = pkg->dpf_chain;
}

static int pir_check(const uint8_t *p, size_t len)
{
    struct pl_tlv t;
    if (len > PL_ES10F_PIR_MAX)
        return PL_ERR_DER_TOOBIG;
    int rc = pl_der_parse_one(p, len, PL_TAG_ES10F_PIR, &t);
    if (rc)
        return rc;
    return pl_der_validate(p, len, 0);
}

int pl_es10f_load_rsp_encode(const struct pl_es10f_load_rsp *in, struct pl_wr *w)
{
    if (!w)
        return PL_ERR_INVAL;
    if (!in)
        return wr_fail(w, PL_ERR_INVAL);
    if (!in->has_pir)
        return pl_wr_status(w);
    if (!in->pir || pir_check(in->pir, in->pir_len) != PL_OK)
        return wr_fail(w, PL_ERR_INVAL);
    pl_wr_bytes(w, in->pir, in->pir_len);
    return pl_wr_status(w);
}

int pl_es10f_load_rsp_decode(const uint8_t *p, size_t len, struct pl_es10f_load_rsp *out)
{
    int rc = PL_ERR_INTERNAL;
    if (!out || (!p && len))
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return PL_OK; /* segment accepted: send the next one */
    if ((rc = pir_check(p, len)))
        return rc;
    out->has_pir = true;
    out->pir = p;
    out->pir_len = len;
    return PL_OK;
}

/* ------------------------------------------------------------ DeleteRemainingOtks - */

const char *pl_es10f_dotk_error_name(int code)
{
    switch (code) {
    case PL_ES10F_DOTK_INCORRECT_INPUT_VALUES:
        return "incorrectInputValues";
    case PL_ES10F_DOTK_INVALID_SIGNATURE:
        return "invalidSignature";
    case PL_ES10F_DOTK_INVALID_EID:
        return "invalidEid";
    case PL_ES10F_DOTK_REPLAY_ERROR:
        return "replayError";
    case PL_ES10F_DOTK_UNSUPPORTED_OPERATION:
        return "unsupportedOperation";
    case PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE:
        return "counterValueOutOfRange";
    case PL_ES10F_DOTK_NOT_IN_FACTORY_MODE:
        return "notInFactoryMode";
    case PL_ES10F_DOTK_INVALID_CERTIFICATE:
        return "invalidCertificate";
    case PL_ES10F_DOTK_UNDEFINED_ERROR:
        return "undefinedError";
    default:
        return "unknown";
    }
}

int pl_es10f_counter_check(uint64_t last, uint64_t value)
{
    if (value == 0 || value > PL_ES10F_COUNTER_MAX)
        return PL_ERR_INVAL;
    if (value <= last)
        return PL_ERR_REPLAY;
    return PL_OK;
}

int pl_es10f_counter_next(uint64_t last, uint64_t *next)
{
    if (!next)
        return PL_ERR_INVAL;
    if (last >= PL_ES10F_COUNTER_MAX)
        return PL_ERR_OVERFLOW;
    *next = last + 1;
    return PL_OK;
}

/* The common head of DeleteOtksToken and OtkDeletionReceipt. */
static void put_token_fields(struct pl_wr *w, const uint8_t eid[PL_IFPP_EID_LEN], uint64_t counter,
                             uint32_t op, const uint8_t *tid, size_t tid_len)
{
    pl_der_put_tlv(w, T_TOK_EID, eid, PL_IFPP_EID_LEN);
    pl_der_put_uint(w, T_TOK_COUNTER, counter);
    pl_der_put_uint(w, T_TOK_OP, op);
    if (tid_len)
        pl_der_put_tlv(w, T_TOK_TID, tid, tid_len);
}

static int get_token_fields(struct pl_der *s, uint8_t eid[PL_IFPP_EID_LEN], uint64_t *counter,
                            uint32_t *op, const uint8_t **tid, size_t *tid_len)
{
    struct pl_tlv t;
    bool present;
    int rc;
    if ((rc = pl_der_expect(s, T_TOK_EID, &t)) || (rc = pl_der_get_fixed(&t, eid, PL_IFPP_EID_LEN)))
        return rc;
    if ((rc = pl_der_expect(s, T_TOK_COUNTER, &t)) || (rc = pl_der_get_uint(&t, counter)))
        return rc;
    if ((rc = pl_der_expect(s, T_TOK_OP, &t)) || (rc = get_u32(&t, op)))
        return rc;
    *tid = NULL;
    *tid_len = 0;
    if ((rc = pl_der_optional(s, T_TOK_TID, &t, &present)))
        return rc;
    if (present)
        return pl_der_get_octets(&t, 1, PL_IFPP_TID_MAX, tid, tid_len);
    return PL_OK;
}

int pl_es10f_token_encode(const struct pl_es10f_token *t, struct pl_wr *w)
{
    if (!w)
        return PL_ERR_INVAL;
    if (!t || !opt_tid_ok(t->tid, t->tid_len))
        return wr_fail(w, PL_ERR_INVAL);
    size_t mark = pl_der_begin(w, PL_TAG_ES10F_TOKEN);
    put_token_fields(w, t->eid, t->counter, t->op, t->tid, t->tid_len);
    return pl_der_end(w, mark);
}

int pl_es10f_token_sign(const struct pl_es10f_token *t, const struct pl_eckey *key,
                        const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN])
{
    uint8_t buf[TOKEN_TBS_MAX];
    struct pl_wr w;
    int rc = PL_ERR_INTERNAL;
    if (!t || !key || !sig)
        return PL_ERR_INVAL;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    if ((rc = pl_es10f_token_encode(t, &w)))
        goto out;
    rc = pl_ecdsa_sign(key, w.buf, w.len, rng, sig);
out:
    return rc;
}

int pl_es10f_delete_otks_req_encode(const struct pl_es10f_delete_otks_req *in, struct pl_wr *w)
{
    int rc = PL_ERR_INTERNAL;
    if (!w)
        return PL_ERR_INVAL;
    if (!in)
        return wr_fail(w, PL_ERR_INVAL);
    size_t mark = pl_der_begin(w, PL_TAG_ES10F_DELETE_OTKS_REQ);
    if ((rc = pl_es10f_token_encode(&in->token, w)))
        return rc;
    pl_der_put_tlv(w, PL_TAG_IFPP_SIGNATURE, in->sig, PL_ECDSA_SIG_LEN);
    if ((rc = pl_ifpp_chain_encode(w, T_DOTK_CHAIN, &in->signer_chain)))
        return rc;
    return pl_der_end(w, mark);
}

int pl_es10f_delete_otks_req_decode(const uint8_t *p, size_t len,
                                    struct pl_es10f_delete_otks_req *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d, s, tok;
    struct pl_tlv outer, tbs, t;
    if (!out)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if ((rc = open_outer(p, len, PL_TAG_ES10F_DELETE_OTKS_REQ, PL_ES10F_DELETE_OTKS_REQ_MAX, &d,
                         &outer, &s)))
        goto out;
    if ((rc = pl_der_expect(&s, PL_TAG_ES10F_TOKEN, &tbs)) || (rc = pl_der_enter(&s, &tbs, &tok)))
        goto out;
    if ((rc = get_token_fields(&tok, out->token.eid, &out->token.counter, &out->token.op,
                               &out->token.tid, &out->token.tid_len))
        || (rc = pl_der_finish(&tok)))
        goto out;
    if ((rc = pl_der_expect(&s, PL_TAG_IFPP_SIGNATURE, &t))
        || (rc = pl_der_get_fixed(&t, out->sig, PL_ECDSA_SIG_LEN)))
        goto out;
    if ((rc = pl_der_expect(&s, T_DOTK_CHAIN, &t))
        || (rc = pl_ifpp_chain_decode(&s, &t, &out->signer_chain)))
        goto out;
    if ((rc = pl_der_finish(&s)))
        goto out;
    out->raw = outer.raw;
    out->raw_len = outer.raw_len;
    out->signed_raw = tbs.raw;
    out->signed_raw_len = tbs.raw_len;
    rc = PL_OK;
out:
    return rc;
}

int pl_es10f_delete_otks_req_verify(const struct pl_es10f_delete_otks_req *req,
                                    const struct pl_eckey *signer_pub)
{
    if (!req || !signer_pub || !req->signed_raw || req->signed_raw_len == 0)
        return PL_ERR_INVAL;
    return pl_ecdsa_verify(signer_pub, req->signed_raw, req->signed_raw_len, req->sig);
}

int pl_es10f_delete_otks_req_check(const struct pl_es10f_delete_otks_req *req,
                                   const struct pl_eckey *signer_pub,
                                   const uint8_t eid[PL_IFPP_EID_LEN], uint64_t last_counter,
                                   int *reason)
{
    int rc = PL_ERR_INTERNAL;
    if (!reason)
        return PL_ERR_INVAL;
    *reason = PL_ES10F_DOTK_UNDEFINED_ERROR;
    if (!req || !signer_pub || !eid)
        return PL_ERR_INVAL;
    /* 1. Authenticity first, so an unauthenticated sender learns nothing about the
     *    eUICC's EID or counter. */
    rc = pl_es10f_delete_otks_req_verify(req, signer_pub);
    if (rc == PL_ERR_INVAL)
        return rc;
    if (rc) {
        *reason = PL_ES10F_DOTK_INVALID_SIGNATURE;
        return PL_ERR_BAD_SIGNATURE;
    }
    /* 2. Addressed to this eUICC. */
    if (memcmp(req->token.eid, eid, PL_IFPP_EID_LEN) != 0) {
        *reason = PL_ES10F_DOTK_INVALID_EID;
        return PL_ERR_DENIED;
    }
    /* 3. Fresh: counterValue > the last accepted one (SGP.32 replayError /
     *    counterValueOutOfRange semantics). */
    rc = pl_es10f_counter_check(last_counter, req->token.counter);
    if (rc == PL_ERR_INVAL) {
        *reason = PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE;
        return rc;
    }
    if (rc) {
        *reason = PL_ES10F_DOTK_REPLAY_ERROR;
        return PL_ERR_REPLAY;
    }
    /* 4. An operation this eUICC knows. */
    if (req->token.op != PL_ES10F_OP_DELETE_REMAINING_OTKS) {
        *reason = PL_ES10F_DOTK_UNSUPPORTED_OPERATION;
        return PL_ERR_UNSUPPORTED;
    }
    *reason = 0;
    return PL_OK;
}

void pl_es10f_receipt_init(struct pl_es10f_receipt *r, const struct pl_es10f_token *t)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->eid, t->eid, PL_IFPP_EID_LEN);
    r->counter = t->counter;
    r->op = t->op;
    r->tid = t->tid;
    r->tid_len = t->tid_len;
}

int pl_es10f_receipt_encode(const struct pl_es10f_receipt *r, struct pl_wr *w)
{
    if (!w)
        return PL_ERR_INVAL;
    if (!r || !opt_tid_ok(r->tid, r->tid_len) || r->n_deleted > PL_ES10F_OTK_MAX)
        return wr_fail(w, PL_ERR_INVAL);
    for (size_t i = 1; i < r->n_deleted; i++)
        if (r->deleted[i] <= r->deleted[i - 1])
            return wr_fail(w, PL_ERR_INVAL);
    size_t mark = pl_der_begin(w, PL_TAG_ES10F_RECEIPT);
    put_token_fields(w, r->eid, r->counter, r->op, r->tid, r->tid_len);
    size_t list = pl_der_begin(w, T_RCPT_DELETED);
    for (size_t i = 0; i < r->n_deleted; i++)
        pl_der_put_uint(w, PL_TAG_INTEGER, r->deleted[i]);
    pl_der_end(w, list);
    return pl_der_end(w, mark);
}

int pl_es10f_receipt_sign(const struct pl_es10f_receipt *r, const struct pl_eckey *key,
                          const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN])
{
    uint8_t buf[RECEIPT_TBS_MAX];
    struct pl_wr w;
    int rc = PL_ERR_INTERNAL;
    if (!r || !key || !sig)
        return PL_ERR_INVAL;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    if ((rc = pl_es10f_receipt_encode(r, &w)))
        goto out;
    rc = pl_ecdsa_sign(key, w.buf, w.len, rng, sig);
out:
    return rc;
}

int pl_es10f_delete_otks_rsp_encode(const struct pl_es10f_delete_otks_rsp *in, struct pl_wr *w)
{
    int rc = PL_ERR_INTERNAL;
    if (!w)
        return PL_ERR_INVAL;
    if (!in)
        return wr_fail(w, PL_ERR_INVAL);
    if (!in->ok) {
        if (in->error < 1 || in->error > 127)
            return wr_fail(w, PL_ERR_INVAL);
        size_t mark = pl_der_begin(w, PL_TAG_ES10F_DELETE_OTKS_RSP);
        pl_der_put_uint(w, T_DOTK_ERROR, (uint64_t)in->error);
        return pl_der_end(w, mark);
    }
    size_t mark = pl_der_begin(w, PL_TAG_ES10F_DELETE_OTKS_RSP);
    size_t arm = pl_der_begin(w, T_DOTK_RECEIPT);
    if ((rc = pl_es10f_receipt_encode(&in->receipt, w)))
        return rc;
    pl_der_put_tlv(w, PL_TAG_IFPP_SIGNATURE, in->sig, PL_ECDSA_SIG_LEN);
    pl_der_end(w, arm);
    return pl_der_end(w, mark);
}

static int get_deleted(const struct pl_der *parent, const struct pl_tlv *tlv,
                       struct pl_es10f_receipt *r)
{
    struct pl_der d;
    int rc = pl_der_enter(parent, tlv, &d);
    if (rc)
        return rc;
    while (!pl_der_done(&d)) {
        struct pl_tlv t;
        uint16_t id;
        if ((rc = pl_der_expect(&d, PL_TAG_INTEGER, &t)) || (rc = get_u16(&t, &id)))
            return rc;
        if (r->n_deleted == PL_ES10F_OTK_MAX)
            return PL_ERR_OVERFLOW;
        if (r->n_deleted > 0 && id <= r->deleted[r->n_deleted - 1])
            return PL_ERR_DER_VALUE; /* unsorted or duplicate otkId */
        r->deleted[r->n_deleted++] = id;
    }
    return PL_OK;
}

int pl_es10f_delete_otks_rsp_decode(const uint8_t *p, size_t len,
                                    struct pl_es10f_delete_otks_rsp *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d, s, arm, rc_d;
    struct pl_tlv outer, choice, tbs, t;
    struct pl_es10f_receipt *r;
    if (!out)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    r = &out->receipt;
    if ((rc = open_outer(p, len, PL_TAG_ES10F_DELETE_OTKS_RSP, PL_ES10F_DELETE_OTKS_RSP_MAX, &d,
                         &outer, &s)))
        goto out;
    if ((rc = pl_der_next(&s, &choice)) || (rc = pl_der_finish(&s)))
        goto out;
    if (choice.tag == T_DOTK_ERROR) {
        uint64_t v;
        if ((rc = pl_der_get_uint(&choice, &v)))
            goto out;
        if (v < 1 || v > 127) {
            rc = PL_ERR_DER_VALUE;
            goto out;
        }
        out->ok = false;
        out->error = (int)v;
        rc = PL_OK;
        goto out;
    }
    if (choice.tag != T_DOTK_RECEIPT) {
        rc = PL_ERR_DER_TAG;
        goto out;
    }
    if ((rc = pl_der_enter(&s, &choice, &arm)))
        goto out;
    if ((rc = pl_der_expect(&arm, PL_TAG_ES10F_RECEIPT, &tbs))
        || (rc = pl_der_enter(&arm, &tbs, &rc_d)))
        goto out;
    if ((rc = get_token_fields(&rc_d, r->eid, &r->counter, &r->op, &r->tid, &r->tid_len)))
        goto out;
    if ((rc = pl_der_expect(&rc_d, T_RCPT_DELETED, &t)) || (rc = get_deleted(&rc_d, &t, r))
        || (rc = pl_der_finish(&rc_d)))
        goto out;
    if ((rc = pl_der_expect(&arm, PL_TAG_IFPP_SIGNATURE, &t))
        || (rc = pl_der_get_fixed(&t, out->sig, PL_ECDSA_SIG_LEN)) || (rc = pl_der_finish(&arm)))
        goto out;
    out->ok = true;
    out->signed_raw = tbs.raw;
    out->signed_raw_len = tbs.raw_len;
    rc = PL_OK;
out:
    return rc;
}

int pl_es10f_delete_otks_rsp_verify(const struct pl_es10f_delete_otks_rsp *rsp,
                                    const struct pl_eckey *euicc_pub,
                                    const struct pl_es10f_token *sent)
{
    int rc = PL_ERR_INTERNAL;
    if (!rsp || !euicc_pub || !sent)
        return PL_ERR_INVAL;
    if (!rsp->ok)
        return PL_ERR_STATE;
    if (!rsp->signed_raw || rsp->signed_raw_len == 0)
        return PL_ERR_INVAL;
    if ((rc = pl_ecdsa_verify(euicc_pub, rsp->signed_raw, rsp->signed_raw_len, rsp->sig)))
        return rc;
    const struct pl_es10f_receipt *r = &rsp->receipt;
    if (memcmp(r->eid, sent->eid, PL_IFPP_EID_LEN) != 0 || r->counter != sent->counter
        || r->op != sent->op || r->tid_len != sent->tid_len
        || (r->tid_len && memcmp(r->tid, sent->tid, r->tid_len) != 0))
        return PL_ERR_REPLAY;
    return PL_OK;
}
