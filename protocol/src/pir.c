/* GSMA SGP.22 v2.5 ProfileInstallationResult (RSPDefinitions: ProfileInstallationResult,
 * ProfileInstallationResultData, SuccessResult, ErrorResult, BppCommandId, ErrorReason),
 * returned by §5.7.6 ES10b.LoadBoundProfilePackage. Tags listed in pir.h.
 * provline reference: IFPP.md §5.6. */
#include "provline/protocol/pir.h"

#include <string.h>

#include "provline/protocol/der.h"

#define TAG_TID 0x80u          /* transactionId [0] */
#define TAG_FINAL_RESULT 0xA2u /* finalResult [2] CHOICE: explicit */
#define TAG_SUCCESS 0xA0u      /* successResult (automatic [0]) */
#define TAG_ERROR 0xA1u        /* errorResult (automatic [1]) */
#define TAG_AID 0x4Fu          /* aid [APPLICATION 15] */
#define TAG_SIMA_OK 0x04u      /* SuccessResult.simaResponse: OCTET STRING, untagged */
#define TAG_CMD_ID 0x80u       /* ErrorResult.bppCommandId (automatic [0]) */
#define TAG_REASON 0x81u       /* ErrorResult.errorReason (automatic [1]) */
#define TAG_SIMA_ERR 0x82u     /* ErrorResult.simaResponse (automatic [2]) */
#define TAG_SIGN 0x5F37u       /* euiccSignPIR [APPLICATION 55] */

/* Cap on the temporary 'BF27' built for signing (simaResponse is the only large field). */
#define PIR_DATA_MAX (64u * 1024u)

const char *pl_pir_cmd_name(int64_t cmd)
{
    switch (cmd) {
    case PL_PIR_CMD_INITIALISE_SECURE_CHANNEL: return "initialiseSecureChannel";
    case PL_PIR_CMD_CONFIGURE_ISDP: return "configureISDP";
    case PL_PIR_CMD_STORE_METADATA: return "storeMetadata";
    case PL_PIR_CMD_STORE_METADATA2: return "storeMetadata2";
    case PL_PIR_CMD_REPLACE_SESSION_KEYS: return "replaceSessionKeys";
    case PL_PIR_CMD_LOAD_PROFILE_ELEMENTS: return "loadProfileElements";
    default: return "unknown";
    }
}

const char *pl_pir_reason_name(int64_t reason)
{
    switch (reason) {
    case PL_PIR_REASON_INCORRECT_INPUT_VALUES: return "incorrectInputValues";
    case PL_PIR_REASON_INVALID_SIGNATURE: return "invalidSignature";
    case PL_PIR_REASON_INVALID_TRANSACTION_ID: return "invalidTransactionId";
    case PL_PIR_REASON_UNSUPPORTED_CRT_VALUES: return "unsupportedCrtValues";
    case PL_PIR_REASON_UNSUPPORTED_REMOTE_OPERATION_TYPE: return "unsupportedRemoteOperationType";
    case PL_PIR_REASON_UNSUPPORTED_PROFILE_CLASS: return "unsupportedProfileClass";
    case PL_PIR_REASON_SCP03T_STRUCTURE_ERROR: return "scp03tStructureError";
    case PL_PIR_REASON_SCP03T_SECURITY_ERROR: return "scp03tSecurityError";
    case PL_PIR_REASON_ICCID_ALREADY_EXISTS: return "installFailedDueToIccidAlreadyExistsOnEuicc";
    case PL_PIR_REASON_INSUFFICIENT_MEMORY: return "installFailedDueToInsufficientMemoryForProfile";
    case PL_PIR_REASON_INTERRUPTION: return "installFailedDueToInterruption";
    case PL_PIR_REASON_PE_PROCESSING_ERROR: return "installFailedDueToPEProcessingError";
    case PL_PIR_REASON_DATA_MISMATCH: return "installFailedDueToDataMismatch";
    case PL_PIR_REASON_TEST_PROFILE_INVALID_NAA_KEY: return "testProfileInstallFailedDueToInvalidNaaKey";
    case PL_PIR_REASON_PPR_NOT_ALLOWED: return "pprNotAllowed";
    case PL_PIR_REASON_UNKNOWN_ERROR: return "installFailedDueToUnknownError";
    default: return "unknown";
    }
}

static int fail(struct pl_wr *w, int rc)
{
    pl_wr_fail(w, rc);
    return pl_wr_status(w);
}

static int get_nonneg(const struct pl_tlv *t, int64_t *v)
{
    int rc = pl_der_get_int(t, v);
    if (rc)
        return rc;
    return *v >= 0 ? PL_OK : PL_ERR_DER_VALUE;
}

static int final_result_parse(const struct pl_der *parent, const struct pl_tlv *a2, struct pl_pir *out)
{
    struct pl_der c, r;
    struct pl_tlv alt, f;
    bool present;
    int rc;

    if ((rc = pl_der_enter(parent, a2, &c)) || (rc = pl_der_next(&c, &alt)))
        return rc;
    if ((rc = pl_der_finish(&c)))
        return rc;
    if (alt.tag != TAG_SUCCESS && alt.tag != TAG_ERROR)
        return PL_ERR_DER_TAG;
    if ((rc = pl_der_enter(&c, &alt, &r)))
        return rc;
    if (alt.tag == TAG_SUCCESS) {
        out->success = true;
        if ((rc = pl_der_expect(&r, TAG_AID, &f))
            || (rc = pl_der_get_octets(&f, PL_PIR_AID_MIN, PL_PIR_AID_MAX, &out->aid, &out->aid_len)))
            return rc;
        if ((rc = pl_der_expect(&r, TAG_SIMA_OK, &f))
            || (rc = pl_der_get_octets(&f, 0, SIZE_MAX, &out->sima, &out->sima_len)))
            return rc;
    } else {
        out->success = false;
        if ((rc = pl_der_expect(&r, TAG_CMD_ID, &f)) || (rc = get_nonneg(&f, &out->cmd_id)))
            return rc;
        if ((rc = pl_der_expect(&r, TAG_REASON, &f)) || (rc = get_nonneg(&f, &out->reason)))
            return rc;
        if ((rc = pl_der_optional(&r, TAG_SIMA_ERR, &f, &present)))
            return rc;
        if (present && (rc = pl_der_get_octets(&f, 0, SIZE_MAX, &out->sima, &out->sima_len)))
            return rc;
    }
    return pl_der_finish(&r);
}

int pl_pir_decode(const uint8_t *p, size_t len, struct pl_pir *out)
{
    struct pl_der top, d, dd;
    struct pl_tlv t, data, f;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    pl_der_init(&top, p, len);
    if ((rc = pl_der_expect(&top, PL_TAG_PIR, &t)) || (rc = pl_der_finish(&top))
        || (rc = pl_der_enter(&top, &t, &d)))
        goto fail;

    if ((rc = pl_der_expect(&d, PL_TAG_PIR_DATA, &data)) || (rc = pl_der_enter(&d, &data, &dd)))
        goto fail;
    if ((rc = pl_der_expect(&dd, TAG_TID, &f))
        || (rc = pl_der_get_octets(&f, 1, PL_PIR_TID_MAX, &out->tid, &out->tid_len)))
        goto fail;
    if ((rc = pl_der_expect(&dd, PL_TAG_NOTIF_META, &f))
        || (rc = pl_notif_meta_decode(f.raw, f.raw_len, &out->meta)))
        goto fail;
    /* A PIR reports an installation: its metadata carries notificationInstall. */
    if (out->meta.ops != PL_NOTIF_EV_INSTALL) {
        rc = PL_ERR_DER_VALUE;
        goto fail;
    }
    /* smdpOid is mandatory in v2.5 (OPTIONAL only in earlier versions). */
    if ((rc = pl_der_expect(&dd, PL_TAG_OID, &f)) || (rc = pl_der_check_oid(&f)))
        goto fail;
    out->smdp_oid = f.value;
    out->smdp_oid_len = f.len;
    if ((rc = pl_der_expect(&dd, TAG_FINAL_RESULT, &f)) || (rc = final_result_parse(&dd, &f, out)))
        goto fail;
    if ((rc = pl_der_finish(&dd)))
        goto fail;

    if ((rc = pl_der_expect(&d, TAG_SIGN, &f))
        || (rc = pl_der_get_octets(&f, PL_ECDSA_SIG_LEN, PL_ECDSA_SIG_LEN, &out->sig, &n)))
        goto fail;
    if ((rc = pl_der_finish(&d)))
        goto fail;

    out->tbs = data.raw;
    out->tbs_len = data.raw_len;
    out->raw = t.raw;
    out->raw_len = t.raw_len;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

static int pir_fields_check(const struct pl_pir *in)
{
    struct pl_tlv oid = {.tag = PL_TAG_OID, .value = in->smdp_oid, .len = in->smdp_oid_len};
    if (!in->tid || in->tid_len < 1 || in->tid_len > PL_PIR_TID_MAX)
        return PL_ERR_INVAL;
    if (in->meta.ops != PL_NOTIF_EV_INSTALL)
        return PL_ERR_INVAL;
    if (!in->smdp_oid || pl_der_check_oid(&oid) != PL_OK)
        return PL_ERR_INVAL;
    if (in->sima_len && !in->sima)
        return PL_ERR_INVAL;
    if (in->success) {
        if (!in->aid || in->aid_len < PL_PIR_AID_MIN || in->aid_len > PL_PIR_AID_MAX)
            return PL_ERR_INVAL;
    } else if (in->cmd_id < 0 || in->reason < 0) {
        return PL_ERR_INVAL;
    }
    return PL_OK;
}

int pl_pir_encode_data(const struct pl_pir *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if ((rc = pir_fields_check(in)))
        return fail(w, rc);
    size_t m = pl_der_begin(w, PL_TAG_PIR_DATA);
    pl_der_put_tlv(w, TAG_TID, in->tid, in->tid_len);
    if ((rc = pl_notif_meta_encode(&in->meta, w)))
        return rc;
    pl_der_put_tlv(w, PL_TAG_OID, in->smdp_oid, in->smdp_oid_len);
    size_t fr = pl_der_begin(w, TAG_FINAL_RESULT);
    if (in->success) {
        size_t s = pl_der_begin(w, TAG_SUCCESS);
        pl_der_put_tlv(w, TAG_AID, in->aid, in->aid_len);
        pl_der_put_tlv(w, TAG_SIMA_OK, in->sima, in->sima_len);
        pl_der_end(w, s);
    } else {
        size_t e = pl_der_begin(w, TAG_ERROR);
        pl_der_put_int(w, TAG_CMD_ID, in->cmd_id);
        pl_der_put_int(w, TAG_REASON, in->reason);
        if (in->sima)
            pl_der_put_tlv(w, TAG_SIMA_ERR, in->sima, in->sima_len);
        pl_der_end(w, e);
    }
    pl_der_end(w, fr);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

int pl_pir_encode(const struct pl_pir *in, const struct pl_eckey *key, const struct pl_rng *rng,
                  struct pl_wr *w)
{
    struct pl_wr data;
    uint8_t sig[PL_ECDSA_SIG_LEN];
    int rc = pl_wr_status(w);

    if (rc)
        return rc;
    pl_wr_init_dyn(&data, PIR_DATA_MAX);
    if ((rc = pl_pir_encode_data(in, &data)))
        goto out;
    /* euiccSignPIR: ECDSA over the DER 'BF27' TLV (SGP.22 §5.7.6, IFPP.md §5.6). */
    if ((rc = pl_ecdsa_sign(key, data.buf, data.len, rng, sig)))
        goto out;
    size_t m = pl_der_begin(w, PL_TAG_PIR);
    pl_wr_bytes(w, data.buf, data.len);
    pl_der_put_tlv(w, TAG_SIGN, sig, sizeof(sig));
    pl_der_end(w, m);
    rc = pl_wr_status(w);
out:
    pl_wr_free(&data);
    if (rc)
        pl_wr_fail(w, rc);
    return rc;
}

int pl_pir_verify(const struct pl_pir *pir, const struct pl_eckey *euicc_pub)
{
    if (!pir->tbs || !pir->sig)
        return PL_ERR_INVAL;
    /* Over the received bytes, never a re-encoding (IFPP.md §5.6, STYLE.md §7.3 rule 3). */
    return pl_ecdsa_verify(euicc_pub, pir->tbs, pir->tbs_len, pir->sig);
}
