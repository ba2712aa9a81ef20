/* Software eUICC, field mode: the Profile State Management Operations of an eUICC Package
 * (GSMA SGP.32 v1.2 §2.11.1.1.3 Psmo, executed by ES10b.LoadEuiccPackage §5.9.1) and their
 * EuiccResultData (§2.11.2.1), with the result codes of SGP32Definitions:
 *
 *  enable [3]     iccidOrAidNotFound(1); profileNotInDisabledState(2) when it is already
 *                 enabled; rollbackNotAvailable(20) when rollbackFlag is set (this eUICC
 *                 does not implement ProfileRollback, so it never promises one); else the
 *                 enabled profile (if any) is disabled and this one enabled: ok(0).
 *  disable [4]    iccidOrAidNotFound(1); profileNotInEnabledState(2); ok(0).
 *  delete [5]     iccidOrAidNotFound(1); profileNotInDisabledState(2) for the enabled
 *                 profile (never deleted); returnFallbackProfile(21) for the profile that
 *                 holds the Fallback Attribute (the profile the eUICC would return to;
 *                 unset the attribute first); ok(0).
 *  listProfileInfo [45]  the SGP32-ProfileInfo list (euicc_es10c_list_profile_info.c);
 *                 incorrectInputValues(1) for a tagList that is not a list of tags.
 *  getRAT [6]     the Rules Authorisation Table: empty (no Profile Policy Rule is
 *                 authorised for any operator).
 *  configureImmediateEnable [7]  stores immediateEnableFlag, defaultSmdpOid and
 *                 defaultSmdpAddress (absent = cleared); insufficientMemory(1) when an OID
 *                 does not fit PL_EUICC_OID_MAX; ok(0).
 *  setFallbackAttribute [8] -> [13]  iccidOrAidNotFound(1); fallbackProfileEnabled(3) when
 *                 another profile holds the attribute and is enabled; else the attribute
 *                 moves to this profile (at most one profile has it): ok(0).
 *  unsetFallbackAttribute [9] -> [14]  noFallbackAttribute(2); fallbackProfileEnabled(3)
 *                 when the profile holding it is enabled; ok(0).
 *  setDefaultDpAddress [101]  stores the default SM-DP+ address (empty = cleared): ok(0).
 *
 * Everything happens in RAM; the caller writes the state once for the whole package, or
 * rolls back (euicc_es10b_load_euicc_package.c). provline reference: EIM.md §1.2-§1.3;
 * docs/software-euicc.md §9. */
#include "euicc_internal.h"

#include <string.h>

#define RC_OK                         0
#define RC_NOT_FOUND                  1  /* iccidOrAidNotFound */
#define RC_WRONG_STATE                2  /* profileNot{In,Enabled}State */
#define RC_ROLLBACK_NOT_AVAILABLE     20 /* rollbackNotAvailable */
#define RC_RETURN_FALLBACK_PROFILE    21 /* returnFallbackProfile */
#define RC_FALLBACK_PROFILE_ENABLED   3  /* fallbackProfileEnabled */
#define RC_NO_FALLBACK_ATTRIBUTE      2  /* noFallbackAttribute */
#define RC_INSUFFICIENT_MEMORY        1  /* ConfigureImmediateEnableResult */
#define RC_PIL_INCORRECT_INPUT_VALUES 1  /* SGP32-ProfileInfoListError */

static struct pl_euicc_prof *by_iccid(struct pl_euicc_state *s, const uint8_t *iccid)
{
    for (size_t i = 0; i < s->n_prof; i++)
        if (memcmp(s->prof[i].iccid, iccid, PL_EUICC_ICCID_LEN) == 0)
            return &s->prof[i];
    return NULL;
}

static struct pl_euicc_prof *enabled_profile(struct pl_euicc_state *s)
{
    for (size_t i = 0; i < s->n_prof; i++)
        if (s->prof[i].enabled)
            return &s->prof[i];
    return NULL;
}

static struct pl_euicc_prof *fallback_profile(struct pl_euicc_state *s)
{
    for (size_t i = 0; i < s->n_prof; i++)
        if (s->prof[i].fallback)
            return &s->prof[i];
    return NULL;
}

static int64_t do_enable(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op)
{
    struct pl_euicc_state *s = &x->e->st;
    struct pl_euicc_prof *p = by_iccid(s, op->enable.iccid);
    if (!p)
        return RC_NOT_FOUND;
    if (p->enabled)
        return RC_WRONG_STATE;
    if (op->enable.rollback)
        return RC_ROLLBACK_NOT_AVAILABLE;
    struct pl_euicc_prof *cur = enabled_profile(s);
    if (cur)
        cur->enabled = false;
    p->enabled = true;
    x->enabled = true;
    return RC_OK;
}

static int64_t do_disable(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op)
{
    struct pl_euicc_prof *p = by_iccid(&x->e->st, op->profile.iccid);
    if (!p)
        return RC_NOT_FOUND;
    if (!p->enabled)
        return RC_WRONG_STATE;
    p->enabled = false;
    return RC_OK;
}

static int64_t do_delete(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op)
{
    struct pl_euicc_state *s = &x->e->st;
    struct pl_euicc_prof *p = by_iccid(s, op->profile.iccid);
    if (!p)
        return RC_NOT_FOUND;
    if (p->enabled)
        return RC_WRONG_STATE;
    if (p->fallback)
        return RC_RETURN_FALLBACK_PROFILE;
    /* Parked, not freed: the caller frees it at commit or puts it back on rollback. */
    size_t i = (size_t)(p - s->prof);
    x->deleted[x->n_deleted++] = *p;
    memmove(&s->prof[i], &s->prof[i + 1], (s->n_prof - i - 1) * sizeof(s->prof[0]));
    s->n_prof--;
    memset(&s->prof[s->n_prof], 0, sizeof(s->prof[0]));
    return RC_OK;
}

static int do_list(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op, struct pl_wr *buf,
                   struct pl_sgp32_euicc_result *res)
{
    struct pl_euicc_pil_query q;
    size_t n = 0;
    memset(&q, 0, sizeof(q));
    q.search = op->list_profile_info.search;
    q.aid = op->list_profile_info.isdp_aid.p;
    q.aid_len = op->list_profile_info.isdp_aid.len;
    memcpy(q.iccid, op->list_profile_info.iccid, sizeof(q.iccid));
    q.profile_class = op->list_profile_info.profile_class;
    q.has_tag_list = op->list_profile_info.tag_list.p != NULL;
    q.tag_list = op->list_profile_info.tag_list.p;
    q.tag_list_len = op->list_profile_info.tag_list.len;
    int rc = pl_euicc_profile_info_put(x->e, &q, buf, &n);
    if (rc == PL_ERR_OVERFLOW) {
        /* more than one result may hold: the caller ends the package here with
         * processingTerminated resultSizeOverflow */
        pl_wr_free(buf);
        x->result_bytes = PL_EUICC_RESULTS_MAX + 1;
        return PL_OK;
    }
    if (rc == PL_ERR_MALFORMED) {
        pl_wr_reset(buf);
        res->is_error = true;
        res->code = RC_PIL_INCORRECT_INPUT_VALUES;
        return PL_OK;
    }
    if (rc)
        return rc;
    res->list.p = buf->buf;
    res->list.len = buf->len;
    res->list.count = n;
    x->result_bytes += buf->len;
    return PL_OK;
}

static int64_t do_configure_immediate_enable(struct pl_euicc_exec *x,
                                             const struct pl_sgp32_psmo *op)
{
    struct pl_euicc_field *f = &x->e->st.field;
    const struct pl_sgp32_buf *oid = &op->configure_immediate_enable.default_smdp_oid;
    const struct pl_sgp32_buf *addr = &op->configure_immediate_enable.default_smdp_address;
    if (oid->len > sizeof(f->ie_oid) || addr->len > sizeof(f->ie_addr))
        return RC_INSUFFICIENT_MEMORY;
    f->immediate_enable = op->configure_immediate_enable.immediate_enable_flag;
    f->has_ie_oid = oid->p != NULL;
    f->ie_oid_len = oid->p ? oid->len : 0;
    if (f->ie_oid_len)
        memcpy(f->ie_oid, oid->p, oid->len);
    f->has_ie_addr = addr->p != NULL;
    f->ie_addr_len = addr->p ? addr->len : 0;
    if (f->ie_addr_len)
        memcpy(f->ie_addr, addr->p, addr->len);
    return RC_OK;
}

static int64_t do_set_fallback(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op)
{
    struct pl_euicc_state *s = &x->e->st;
    struct pl_euicc_prof *p = by_iccid(s, op->profile.iccid);
    if (!p)
        return RC_NOT_FOUND;
    struct pl_euicc_prof *cur = fallback_profile(s);
    if (cur && cur != p && cur->enabled)
        return RC_FALLBACK_PROFILE_ENABLED;
    if (cur)
        cur->fallback = false;
    p->fallback = true;
    return RC_OK;
}

static int64_t do_unset_fallback(struct pl_euicc_exec *x)
{
    struct pl_euicc_prof *cur = fallback_profile(&x->e->st);
    if (!cur)
        return RC_NO_FALLBACK_ATTRIBUTE;
    if (cur->enabled)
        return RC_FALLBACK_PROFILE_ENABLED;
    cur->fallback = false;
    return RC_OK;
}

static int64_t do_set_default_dp(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op)
{
    struct pl_euicc_field *f = &x->e->st.field;
    const struct pl_sgp32_buf *a = &op->set_default_dp_address.default_dp_address;
    if (a->len > sizeof(f->default_dp))
        return PL_SGP32_RC_UNDEFINED;
    f->has_default_dp = a->len > 0;
    f->default_dp_len = a->len;
    if (a->len)
        memcpy(f->default_dp, a->p, a->len);
    return RC_OK;
}

int pl_euicc_psmo_execute(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op,
                          struct pl_wr *buf, struct pl_sgp32_euicc_result *res)
{
    memset(res, 0, sizeof(*res));
    switch (op->kind) {
    case PL_SGP32_PSMO_ENABLE:
        res->kind = PL_SGP32_RESULT_ENABLE;
        res->code = do_enable(x, op);
        return PL_OK;
    case PL_SGP32_PSMO_DISABLE:
        res->kind = PL_SGP32_RESULT_DISABLE;
        res->code = do_disable(x, op);
        return PL_OK;
    case PL_SGP32_PSMO_DELETE:
        res->kind = PL_SGP32_RESULT_DELETE;
        res->code = do_delete(x, op);
        return PL_OK;
    case PL_SGP32_PSMO_LIST_PROFILE_INFO:
        res->kind = PL_SGP32_RESULT_LIST_PROFILE_INFO;
        return do_list(x, op, buf, res);
    case PL_SGP32_PSMO_GET_RAT:
        res->kind = PL_SGP32_RESULT_GET_RAT; /* empty RulesAuthorisationTable */
        return PL_OK;
    case PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE:
        res->kind = PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE;
        res->code = do_configure_immediate_enable(x, op);
        return PL_OK;
    case PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE:
        res->kind = PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE;
        res->code = do_set_fallback(x, op);
        return PL_OK;
    case PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE:
        res->kind = PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE;
        res->code = do_unset_fallback(x);
        return PL_OK;
    case PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS:
        res->kind = PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS;
        res->code = do_set_default_dp(x, op);
        return PL_OK;
    default:
        return PL_ERR_INVAL; /* the decoder admits no other arm */
    }
}
