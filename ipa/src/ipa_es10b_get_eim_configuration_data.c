/* ES10b.GetEimConfigurationData (GSMA SGP.32 v1.2 §5.9.18, ASN.1 'BF55'): the IPA learns which
 * eIM the eUICC is associated with (eimId, eimFqdn) and the associationToken it reports in
 * IpaEuiccData (§2.11.2.2 'associationToken [4]').
 *   GetEimConfigurationDataRequest  BF55 { [A0 { 80 eimId }] }   (no criteria: every eIM)
 *   GetEimConfigurationDataResponse BF55 { A0 { 30 EimConfigurationData ... } }
 * Codec: provline/protocol/sgp32_eim_config.h. With several eIMs the IPA keeps the one it
 * already knew (by eimId), else the first; docs/ipa.md §3. */
#include "ipa_internal.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <stdlib.h>
#include <string.h>

static bool same_id(const struct pl_sgp32_buf *id, const char *known)
{
    return known[0] != '\0' && id->len == strlen(known) && memcmp(id->p, known, id->len) == 0;
}

int pl_ipa_es10b_get_eim_configuration_data(struct pl_ipa *ipa)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_get_eim_config_request q = {{NULL, 0}};
    struct pl_sgp32_get_eim_config_response *r = NULL;
    const struct pl_sgp32_eim_config *c;
    uint8_t rq[16];
    struct pl_wr req, rsp;
    uint16_t sw = 0;
    size_t pick = 0;

    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_dyn(&rsp, PL_IPA_ES10_RSP_MAX);
    if ((rc = pl_sgp32_get_eim_config_request_encode(&q, &req)) != PL_OK)
        goto out;
    rc = pl_ipa_es10(ipa, req.buf, req.len, &rsp, &sw, true);
    if (rc == PL_ERR_CARD_SW && pl_ipa_sw_unsupported(sw)) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (rc != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEimConfigurationData: %s (SW %04X)", pl_strerror(rc),
                   (unsigned)sw);
        goto out;
    }
    r = malloc(sizeof(*r));
    if (r == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = pl_sgp32_get_eim_config_response_decode(rsp.buf, rsp.len, r)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEimConfigurationData response: %s", pl_strerror(rc));
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if (r->n_eims == 0) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    for (size_t i = 0; i < r->n_eims; i++) {
        if (same_id(&r->eims[i].eim_id, ipa->st.eim_id)) {
            pick = i;
            break;
        }
    }
    c = &r->eims[pick];
    memcpy(ipa->st.eim_id, c->eim_id.p, c->eim_id.len);
    ipa->st.eim_id[c->eim_id.len] = '\0';
    ipa->st.eim_fqdn[0] = '\0';
    if (c->eim_fqdn.p != NULL) {
        memcpy(ipa->st.eim_fqdn, c->eim_fqdn.p, c->eim_fqdn.len);
        ipa->st.eim_fqdn[c->eim_fqdn.len] = '\0';
    }
    ipa->has_token = c->has_association_token;
    ipa->token = c->association_token;
    ipa->eim_config_read = true;
    rc = PL_OK;
out:
    free(r);
    pl_wr_free(&rsp);
    return rc;
}
