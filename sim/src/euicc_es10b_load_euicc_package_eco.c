/* Software eUICC, field mode: the eIM Configuration Operations of an eUICC Package
 * (GSMA SGP.32 v1.2 §2.11.1.1.2 Eco, executed by ES10b.LoadEuiccPackage §5.9.1) and their
 * EuiccResultData (§2.11.2.1), with the result codes of SGP32Definitions:
 *
 *  addEim [8]     associatedEimAlreadyExists(2) for an eimId already associated;
 *                 insufficientMemory(1) past PL_EUICC_MAX_EIMS; then the checks of
 *                 euicc_eim_config.c (ciPKUnknown(3), counterValueOutOfRange(6),
 *                 commandError(7)); success: the association token handed out when the
 *                 configuration asked for one (associationToken [4]), else ok(0).
 *  deleteEim [9]  eimNotFound(1); ok(0), or lastEimDeleted(2) when no eIM is left (the
 *                 eUICC accepts AddInitialEim again, EIM.md §4.4).
 *  updateEim [10] eimNotFound(1). The eimId names the eIM; every component present in the
 *                 update replaces the stored one, absent ones are kept (decision). A
 *                 counterValue resynchronises the counter, in either direction (EIM.md
 *                 §4.3); an associationToken is ignored (UpdateEimResult cannot carry a
 *                 new token, so the eIM keeps its token). The merged configuration passes
 *                 the addEim checks: ciPKUnknown(3), counterValueOutOfRange(6),
 *                 commandError(7) (also for a merged configuration too large to store).
 *  listEim [11]   the EimIdInfo list; eimIdType only for the OID and FQDN types, as the
 *                 ASN.1 comment says.
 *
 * Everything happens in RAM; the caller writes the state once for the whole package or
 * rolls back (euicc_es10b_load_euicc_package.c). provline reference: EIM.md §1.2, §4.3,
 * §4.4; docs/software-euicc.md §9. */
#include "euicc_internal.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <string.h>

#define DELETE_EIM_OK           0
#define DELETE_EIM_NOT_FOUND    1
#define DELETE_EIM_LAST_DELETED 2
#define UPDATE_EIM_OK           0
#define UPDATE_EIM_NOT_FOUND    1
#define UPDATE_EIM_COMMAND      7

static int find_index(const struct pl_euicc_state *s, struct pl_sgp32_buf id, size_t *idx)
{
    for (size_t i = 0; i < s->n_eim; i++) {
        if (s->eim[i].id_len == id.len && memcmp(s->eim[i].id, id.p, id.len) == 0) {
            *idx = i;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

static int do_add(struct pl_euicc_exec *x, const struct pl_sgp32_eim_config *cfg,
                  struct pl_sgp32_euicc_result *res)
{
    struct pl_euicc_state *s = &x->e->st;
    size_t idx;
    int code, rc;

    res->kind = PL_SGP32_RESULT_ADD_EIM;
    if (find_index(s, cfg->eim_id, &idx) == PL_OK) {
        res->code = PL_SGP32_ADD_EIM_ALREADY_EXISTS;
        return PL_OK;
    }
    if (s->n_eim >= PL_EUICC_MAX_EIMS) {
        res->code = PL_SGP32_ADD_EIM_INSUFFICIENT_MEMORY;
        return PL_OK;
    }
    if ((rc = pl_euicc_eim_check(x->e, cfg, &code)))
        return rc;
    if (code != PL_SGP32_ADD_EIM_OK) {
        res->code = code;
        return PL_OK;
    }
    struct pl_euicc_eim *n = &s->eim[s->n_eim];
    if ((rc = pl_euicc_eim_make(x->e, cfg, n)))
        return rc;
    s->n_eim++;
    res->code = PL_SGP32_ADD_EIM_OK;
    res->has_association_token = n->has_token;
    res->association_token = n->token;
    return PL_OK;
}

static void do_delete(struct pl_euicc_exec *x, struct pl_sgp32_buf id,
                      struct pl_sgp32_euicc_result *res)
{
    struct pl_euicc_state *s = &x->e->st;
    size_t idx;
    res->kind = PL_SGP32_RESULT_DELETE_EIM;
    if (find_index(s, id, &idx) != PL_OK) {
        res->code = DELETE_EIM_NOT_FOUND;
        return;
    }
    pl_euicc_eim_remove(s, idx);
    res->code = s->n_eim == 0 ? DELETE_EIM_LAST_DELETED : DELETE_EIM_OK;
}

/* updateEim: buf holds a copy of the stored configuration (the views of the merged one
 * point into it while the stored entry is replaced). */
static int do_update(struct pl_euicc_exec *x, const struct pl_sgp32_eim_config *upd,
                     struct pl_wr *buf, struct pl_sgp32_euicc_result *res)
{
    struct pl_euicc_state *s = &x->e->st;
    struct pl_sgp32_eim_config m;
    struct pl_euicc_eim n;
    size_t idx;
    int code, rc;

    res->kind = PL_SGP32_RESULT_UPDATE_EIM;
    if (find_index(s, upd->eim_id, &idx) != PL_OK) {
        res->code = UPDATE_EIM_NOT_FOUND;
        return PL_OK;
    }
    struct pl_euicc_eim *cur = &s->eim[idx];
    pl_wr_reset(buf);
    if ((rc = pl_wr_bytes(buf, cur->cfg, cur->cfg_len)))
        return rc;
    if ((rc = pl_sgp32_eim_config_decode(buf->buf, buf->len, &m)))
        return rc; /* our own stored bytes: internal error */
    if (upd->eim_fqdn.p)
        m.eim_fqdn = upd->eim_fqdn;
    if (upd->has_eim_id_type) {
        m.has_eim_id_type = true;
        m.eim_id_type = upd->eim_id_type;
    }
    if (upd->eim_public_key_data.kind != PL_SGP32_KEY_NONE)
        m.eim_public_key_data = upd->eim_public_key_data;
    if (upd->trusted_public_key_data_tls.kind != PL_SGP32_KEY_NONE)
        m.trusted_public_key_data_tls = upd->trusted_public_key_data_tls;
    if (upd->has_supported_protocol) {
        m.has_supported_protocol = true;
        m.supported_protocol = upd->supported_protocol;
    }
    if (upd->euicc_ci_pkid.p)
        m.euicc_ci_pkid = upd->euicc_ci_pkid;
    if (upd->indirect_profile_download)
        m.indirect_profile_download = true;
    m.has_counter = upd->has_counter;
    m.counter = upd->counter;
    m.has_association_token = false; /* the eIM keeps its token */
    if ((rc = pl_euicc_eim_check(x->e, &m, &code)))
        return rc;
    if (code == PL_SGP32_ADD_EIM_INSUFFICIENT_MEMORY)
        code = UPDATE_EIM_COMMAND; /* UpdateEimResult has no insufficientMemory */
    if (code != PL_SGP32_ADD_EIM_OK) {
        res->code = code;
        return PL_OK;
    }
    if ((rc = pl_euicc_eim_make(x->e, &m, &n)))
        return rc;
    n.counter = upd->has_counter ? upd->counter : cur->counter;
    n.has_token = cur->has_token;
    n.token = cur->token;
    *cur = n;
    res->code = UPDATE_EIM_OK;
    return PL_OK;
}

/* listEim: the eimIds are copied into buf first, the views set once buf stops growing. */
static int do_list(struct pl_euicc_exec *x, struct pl_wr *buf, struct pl_sgp32_euicc_result *res)
{
    const struct pl_euicc_state *s = &x->e->st;
    size_t off[PL_EUICC_MAX_EIMS];
    int rc;

    res->kind = PL_SGP32_RESULT_LIST_EIM;
    pl_wr_reset(buf);
    for (size_t i = 0; i < s->n_eim && i < PL_SGP32_MAX_EIMS; i++) {
        struct pl_sgp32_eim_config c;
        off[i] = buf->len;
        if ((rc = pl_wr_bytes(buf, s->eim[i].id, s->eim[i].id_len)))
            return rc;
        if ((rc = pl_sgp32_eim_config_decode(s->eim[i].cfg, s->eim[i].cfg_len, &c)))
            return rc;
        struct pl_sgp32_eim_id_info *info = &res->eims[i];
        info->has_eim_id_type = c.has_eim_id_type
                                && (c.eim_id_type == PL_SGP32_EIM_ID_TYPE_OID
                                    || c.eim_id_type == PL_SGP32_EIM_ID_TYPE_FQDN);
        info->eim_id_type = info->has_eim_id_type ? c.eim_id_type : 0;
        res->n_eims++;
    }
    for (size_t i = 0; i < res->n_eims; i++) {
        res->eims[i].eim_id.p = buf->buf + off[i];
        res->eims[i].eim_id.len = s->eim[i].id_len;
    }
    x->result_bytes += buf->len;
    return PL_OK;
}

int pl_euicc_eco_execute(struct pl_euicc_exec *x, const struct pl_sgp32_eco *op, struct pl_wr *buf,
                         struct pl_sgp32_euicc_result *res)
{
    memset(res, 0, sizeof(*res));
    switch (op->kind) {
    case PL_SGP32_ECO_ADD_EIM:
        return do_add(x, &op->eim_config, res);
    case PL_SGP32_ECO_DELETE_EIM:
        do_delete(x, op->delete_eim_id, res);
        return PL_OK;
    case PL_SGP32_ECO_UPDATE_EIM:
        return do_update(x, &op->eim_config, buf, res);
    case PL_SGP32_ECO_LIST_EIM:
        return do_list(x, buf, res);
    default:
        return PL_ERR_INVAL; /* the decoder admits no other arm */
    }
}
