/* Software eUICC, field mode: ES10b.AddInitialEim (GSMA SGP.32 v1.2 §5.9.4,
 * AddInitialEimRequest / AddInitialEimResponse 'BF57', sgp32_eim_config.h). It configures
 * the first eIM(s) of an eUICC that has none: the last step of production
 * (ARCHITECTURE.md §4 step 6) or, after the last eIM was deleted (deleteEim ->
 * lastEimDeleted), the bootstrap of a new one (EIM.md §4.4: "A new eIM is added only by the
 * current eIM (signed addEim) or by AddInitialEim on a virgin eUICC"). Unsigned, hence only
 * then. An IPA Service: 6985 while a FREE OTK remains (SGP.41 EUICCF04, in the dispatcher).
 *
 * All or nothing: the first configuration that fails its check (euicc_eim_config.c)
 * answers addInitialEimError with its code and nothing is stored. Errors:
 * associatedEimAlreadyExists(2) when an eIM is configured; commandError(7) for an empty
 * list or one eimId twice; insufficientMemory(1) over PL_EUICC_MAX_EIMS; then the per-
 * configuration checks. On success one write stores every eIM; the response lists, per
 * configuration, the association token the eUICC handed out or addOk. */
#include "euicc_internal.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <stdlib.h>
#include <string.h>

static int check_all(struct pl_euicc *e, const struct pl_sgp32_add_initial_eim_request *q,
                     int *code)
{
    int rc;
    *code = PL_SGP32_ADD_EIM_OK;
    if (e->st.n_eim > 0) {
        *code = PL_SGP32_ADD_EIM_ALREADY_EXISTS;
        return PL_OK;
    }
    if (q->n_eims == 0) {
        *code = PL_SGP32_ADD_EIM_COMMAND_ERROR;
        return PL_OK;
    }
    if (q->n_eims > PL_EUICC_MAX_EIMS) {
        *code = PL_SGP32_ADD_EIM_INSUFFICIENT_MEMORY;
        return PL_OK;
    }
    for (size_t i = 0; i < q->n_eims; i++) {
        for (size_t j = 0; j < i; j++) {
            if (pl_sgp32_buf_eq(q->eims[i].eim_id, q->eims[j].eim_id)) {
                *code = PL_SGP32_ADD_EIM_COMMAND_ERROR;
                return PL_OK;
            }
        }
        if ((rc = pl_euicc_eim_check(e, &q->eims[i], code)))
            return rc;
        if (*code != PL_SGP32_ADD_EIM_OK)
            return PL_OK;
    }
    return PL_OK;
}

int pl_euicc_es10b_add_initial_eim(struct pl_euicc *e, const uint8_t *req, size_t len,
                                   struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_add_initial_eim_request *q = malloc(sizeof(*q));
    struct pl_sgp32_add_initial_eim_response *r = calloc(1, sizeof(*r));
    int code;

    if (!q || !r) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (pl_sgp32_add_initial_eim_request_decode(req, len, q) != PL_OK) {
        rc = PL_SW_WRONG_DATA;
        goto out;
    }
    if ((rc = check_all(e, q, &code)))
        goto out;
    if (code != PL_SGP32_ADD_EIM_OK) {
        r->is_error = true;
        r->error_code = code;
        rc = pl_sgp32_add_initial_eim_response_encode(r, rsp);
        goto out;
    }
    /* Store them all in RAM, then one write; undone in RAM if anything fails first. */
    int64_t token_last = e->st.field.token_last;
    for (size_t i = 0; i < q->n_eims; i++) {
        struct pl_euicc_eim *x = &e->st.eim[e->st.n_eim];
        if ((rc = pl_euicc_eim_make(e, &q->eims[i], x))) {
            for (size_t j = 0; j < e->st.n_eim; j++)
                memset(&e->st.eim[j], 0, sizeof(e->st.eim[j]));
            e->st.n_eim = 0;
            e->st.field.token_last = token_last;
            goto out;
        }
        e->st.n_eim++;
        r->results[i].has_association_token = x->has_token;
        r->results[i].association_token = x->token;
    }
    r->n_results = q->n_eims;
    if ((rc = pl_euicc_persist(e)))
        goto out;
    rc = pl_sgp32_add_initial_eim_response_encode(r, rsp);
out:
    free(q);
    free(r);
    return rc;
}
