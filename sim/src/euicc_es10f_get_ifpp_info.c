/* Software eUICC: ES10f GetIfppInfo 'FF72' -> 'FF73' (provline's FPA Service until GSMA
 * SGP.42 is public: docs/ifpp-es10f.md; es10f.h). EID, factoryMode, CERT.EUICC, CERT.EUM
 * and the FREE one-time keys, each otPK signed with SK.EUICC.SIG over
 * "IFPP-OTK" || EID || otkId || otPK (ARCHITECTURE.md §4 step 1, IFPP.md §6.1). */
#include "euicc_internal.h"
#include "provline/protocol/es10f.h"

#include <stdlib.h>
#include <string.h>

int pl_euicc_es10f_get_ifpp_info(struct pl_euicc *e, const uint8_t *req, size_t len,
                                 struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_es10f_info *info = NULL;

    if (!e->st.factory_mode)
        return PL_SW_CONDITIONS; /* GENS13 */
    if (pl_es10f_get_info_req_decode(req, len) != PL_OK)
        return PL_SW_WRONG_DATA;
    info = calloc(1, sizeof(*info));
    if (!info)
        return PL_ERR_NOMEM;
    memcpy(info->eid, e->st.eid, sizeof(info->eid));
    info->factory_mode = e->st.factory_mode;
    info->cert_euicc.der = e->st.cert_euicc;
    info->cert_euicc.len = e->st.cert_euicc_len;
    info->cert_eum.der = e->st.cert_eum;
    info->cert_eum.len = e->st.cert_eum_len;
    for (size_t i = 0; i < e->st.n_otk && info->n_otk < PL_ES10F_OTK_MAX; i++) {
        const struct pl_euicc_otk *o = &e->st.otk[i];
        if (o->state != PL_EUICC_OTK_FREE)
            continue;
        struct pl_ifpp_otk *so = &info->otk[info->n_otk];
        so->otk_id = o->id;
        memcpy(so->otpk, o->pk, sizeof(so->otpk));
        if ((rc = pl_ifpp_otk_sign(e->sk, e->st.eid, so, &e->rng)))
            goto out;
        info->n_otk++;
    }
    rc = pl_es10f_get_info_rsp_encode(info, rsp);
out:
    free(info);
    return rc;
}
