/* Software eUICC: ES10f DeleteRemainingOtks 'FF74' -> 'FF75' (SGP.41 v1.0 EUICCF03 "secure
 * mechanism to delete all unused OTKs", DMF03, GENS13; provline's own command until GSMA
 * SGP.42 is public: docs/ifpp-es10f.md §5; es10f.h). Counter anti-replay after the SGP.32
 * v1.2 EuiccPackageRequest pattern (IFPP.md §5.8). provline reference: IFPP.md §6.2, §7
 * cases 15-17.
 *
 * Who may sign the token (decision, docs/software-euicc.md §4): any SM-DPf whose binding
 * certificate (role DPpb) chains to the CI this eUICC trusts, i.e. the same authority that
 * may bind profiles to its OTKs. The request carries that chain (signerChain); the eUICC
 * keeps no other trust anchor and no memory of earlier loads' signers. */
#include "euicc_internal.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/secret.h"

#include <string.h>

static int answer_error(int code, struct pl_wr *rsp)
{
    struct pl_es10f_delete_otks_rsp r;
    memset(&r, 0, sizeof(r));
    r.ok = false;
    r.error = code;
    return pl_es10f_delete_otks_rsp_encode(&r, rsp);
}

int pl_euicc_es10f_delete_otks(struct pl_euicc *e, const uint8_t *req, size_t len,
                               struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_es10f_delete_otks_req q;
    struct pl_es10f_delete_otks_rsp r;
    struct pl_eckey *signer = NULL;
    int reason = 0;

    if (!e->st.factory_mode)
        return PL_SW_CONDITIONS; /* GENS13: locked for good */
    if (pl_es10f_delete_otks_req_decode(req, len, &q) != PL_OK)
        return PL_SW_WRONG_DATA;
    rc = pl_euicc_verify_dpf_chain(e, &q.signer_chain, &signer);
    if (rc == PL_ERR_NOMEM)
        goto out;
    if (rc) {
        rc = answer_error(PL_ES10F_DOTK_INVALID_CERTIFICATE, rsp);
        goto out;
    }
    /* signature over the received token, EID, counter (strictly increasing), operation */
    rc = pl_es10f_delete_otks_req_check(&q, signer, e->st.eid, e->st.dotk_counter, &reason);
    if (rc || reason) {
        rc = answer_error(reason ? reason : PL_ES10F_DOTK_UNDEFINED_ERROR, rsp);
        goto out;
    }

    memset(&r, 0, sizeof(r));
    r.ok = true;
    pl_es10f_receipt_init(&r.receipt, &q.token);
    for (size_t i = 0; i < e->st.n_otk; i++) {
        if (e->st.otk[i].state != PL_EUICC_OTK_FREE)
            continue;
        if (r.receipt.n_deleted >= PL_ES10F_OTK_MAX) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        r.receipt.deleted[r.receipt.n_deleted++] = e->st.otk[i].id;
    }
    /* Sign first, change the state after: nothing can fail between the change and the
     * write, and the receipt is only returned once the write succeeded. */
    if ((rc = pl_es10f_receipt_sign(&r.receipt, e->sk, &e->rng, r.sig)))
        goto out;
    for (size_t i = 0; i < e->st.n_otk; i++) {
        struct pl_euicc_otk *o = &e->st.otk[i];
        if (o->state != PL_EUICC_OTK_FREE)
            continue;
        o->state = PL_EUICC_OTK_DELETED;
        pl_memzero(o->sk, sizeof(o->sk));
    }
    e->st.dotk_counter = q.token.counter;
    e->st.factory_mode = false; /* EndOfProduction: FPA Services close, IPA Services open */
    if ((rc = pl_euicc_persist(e)))
        goto out;
    rc = pl_es10f_delete_otks_rsp_encode(&r, rsp);
out:
    pl_eckey_free(signer);
    return rc;
}
