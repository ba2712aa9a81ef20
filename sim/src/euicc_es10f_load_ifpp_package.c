/* Software eUICC: ES10f LoadIfppPackage header 'FF71' (provline's FPA Service until GSMA
 * SGP.42 is public: docs/ifpp-es10f.md; es10f.h). It names the OTK and the transaction
 * and carries the SM-DPf chain; the SGP.22 BPP segments follow (IFPP.md §6.2 a-b, §7
 * cases 1, 3, 5). Nothing changes in the state here unless the header is refused, which
 * stores a signed error PIR (invalidSignature / incorrectInputValues at
 * initialiseSecureChannel) as a pending notification. */
#include "euicc_internal.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/pir.h"

#include <string.h>

int pl_euicc_es10f_load_header(struct pl_euicc *e, const uint8_t *req, size_t len,
                               struct pl_wr *rsp)
{
    struct pl_es10f_load_req h;
    struct pl_euicc_load *l = &e->load;
    int rc;

    if (!e->st.factory_mode)
        return PL_SW_CONDITIONS; /* GENS13: FPA Services locked for good */
    if (pl_es10f_load_req_decode(req, len, &h) != PL_OK)
        return PL_SW_WRONG_DATA;
    /* Every load ends in exactly one PIR: make sure there is room for it first. */
    if (e->st.n_notif >= PL_EUICC_MAX_NOTIFS)
        return PL_SW_MEMORY;
    pl_euicc_load_reset(e);
    l->phase = PL_LOAD_HEADER;
    l->otk_id = h.otk_id;
    memcpy(l->tid, h.tid, h.tid_len);
    l->tid_len = h.tid_len;

    /* (a) the OTK exists and is FREE: a consumed or deleted one refuses a replay
     * (§7 case 1) without any signature work. */
    struct pl_euicc_otk *otk = pl_euicc_otk_find(&e->st, h.otk_id);
    if (!otk || otk->state != PL_EUICC_OTK_FREE)
        return pl_euicc_load_abort(e, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL,
                                   PL_PIR_REASON_INCORRECT_INPUT_VALUES, rsp);
    /* (b, first half) dpfChain -> CI, role DPpb. */
    rc = pl_euicc_verify_dpf_chain(e, &h.dpf_chain, &l->dpf_pub);
    if (rc == PL_ERR_NOMEM)
        return rc;
    if (rc)
        return pl_euicc_load_abort(e, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL,
                                   PL_PIR_REASON_INVALID_SIGNATURE, rsp);
    return PL_OK;
}
