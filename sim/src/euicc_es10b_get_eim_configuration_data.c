/* Software eUICC, field mode: ES10b.GetEimConfigurationData (GSMA SGP.32 v1.2 §5.9.18,
 * GetEimConfigurationDataRequest / Response 'BF55', sgp32_eim_config.h): the IPA reads
 * which eIM(s) it serves and how to reach them. v1.2 adds searchCriteria eimId; an eimId
 * that is not associated gives an empty list. Each entry is the configuration as
 * associated, with counterValue = the last counter the eUICC accepted from that eIM and
 * the associationToken the eUICC handed out (when one was asked for). An IPA Service:
 * 6985 while a FREE OTK remains (SGP.41 EUICCF04, in the dispatcher). */
#include "euicc_internal.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <stdlib.h>
#include <string.h>

int pl_euicc_es10b_get_eim_configuration_data(struct pl_euicc *e, const uint8_t *req, size_t len,
                                              struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_get_eim_config_request q;
    struct pl_sgp32_get_eim_config_response *r = calloc(1, sizeof(*r));

    if (!r)
        return PL_ERR_NOMEM;
    if (pl_sgp32_get_eim_config_request_decode(req, len, &q) != PL_OK) {
        rc = PL_SW_WRONG_DATA;
        goto out;
    }
    for (size_t i = 0; i < e->st.n_eim && r->n_eims < PL_SGP32_MAX_EIMS; i++) {
        const struct pl_euicc_eim *x = &e->st.eim[i];
        if (q.eim_id.p && (q.eim_id.len != x->id_len || memcmp(q.eim_id.p, x->id, x->id_len) != 0))
            continue;
        struct pl_sgp32_eim_config *c = &r->eims[r->n_eims];
        if ((rc = pl_sgp32_eim_config_decode(x->cfg, x->cfg_len, c)))
            goto out;
        c->has_counter = true;
        c->counter = x->counter;
        c->has_association_token = x->has_token;
        c->association_token = x->token;
        r->n_eims++;
    }
    rc = pl_sgp32_get_eim_config_response_encode(r, rsp);
out:
    free(r);
    return rc;
}
