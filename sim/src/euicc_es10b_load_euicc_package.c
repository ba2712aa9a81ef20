/* Software eUICC, field mode: ES10b.LoadEuiccPackage (GSMA SGP.32 v1.2 §5.9.1;
 * EuiccPackageRequest / EuiccPackageResult 'BF51', §2.11.1.1, §2.11.2.1;
 * sgp32_euicc_package.h). provline reference: EIM.md §1.3, §1.6, §4.1-§4.4;
 * docs/software-euicc.md §9.
 *
 * Checks, in this order, and the answer to each failure (nothing changes on any of them):
 *  1. the request decodes (strict DER, every arm known): else SW 6A80;
 *  2. eimId names an associated eIM: else euiccPackageErrorUnsigned {eimId, txid};
 *  3. eimSignature verifies with that eIM's eimPublicKeyData over the received
 *     EuiccPackageSigned bytes followed by its associationToken TLV ('84 01 00' without
 *     one; §2.11.1.1): else euiccPackageErrorUnsigned {eimId, txid, associationToken}
 *     (the eUICC cannot know who sent it, so it signs nothing);
 *  4. eidValue is this eUICC's EID: else signed invalidEid(3);
 *  5. counterValue <= PL_EUICC_COUNTER_MAX: else signed counterValueOutOfRange(6);
 *  6. counterValue > the last one accepted from that eIM: else signed replayError(4);
 *  7. room for one more pending result: else SW 6A84 (like a load when the notification
 *     list is full; the counter is not consumed).
 * Signed errors are signed with SK.EUICC.SIG over EuiccPackageErrorDataSigned ‖ the
 * eIM's token TLV, echo eimId, counterValue and eimTransactionId, and are not stored
 * (they carry no seqNumber to acknowledge).
 *
 * Then every PSMO / eCO runs in order on the RAM state (…_psmo.c, …_eco.c), each with its
 * own result; a result list that grows past PL_EUICC_RESULTS_MAX ends the package with
 * processingTerminated resultSizeOverflow(1). The EuiccPackageResultSigned gets the next
 * seqNumber (one sequence with the notifications, so an EimAcknowledgements seqNumber is
 * never ambiguous), is signed over EuiccPackageResultDataSigned ‖ token TLV, and is stored
 * as a pending result together with the new counter and every effect of the package in
 * ONE state write: after a power cut either nothing happened or all of it did and the
 * result is retrievable (RetrieveNotificationsList, euicc_es10b_notifications.c). Any
 * internal failure before that write restores the RAM state.
 *
 * The known-silicon knob (pl_euicc_opts.lose_result_after_enable, EIM.md §1.6): when an
 * enable succeeded, the stored result stays but the answer is SW 6985 and the card
 * refuses every ES10 command until reset. */
#include "euicc_internal.h"

#include <stdlib.h>
#include <string.h>

#define PROCESSING_RESULT_SIZE_OVERFLOW 1

/* What a package may change, saved before it runs. Profiles are copied shallowly: a
 * deleted profile's memory is parked in the exec context and freed only at commit. */
struct backup {
    struct pl_euicc_prof prof[PL_EUICC_MAX_PROFILES];
    size_t n_prof;
    struct pl_euicc_eim eim[PL_EUICC_MAX_EIMS];
    size_t n_eim;
    struct pl_euicc_field field;
};

static void backup_take(const struct pl_euicc_state *s, struct backup *b)
{
    memcpy(b->prof, s->prof, sizeof(b->prof));
    b->n_prof = s->n_prof;
    memcpy(b->eim, s->eim, sizeof(b->eim));
    b->n_eim = s->n_eim;
    b->field = s->field;
}

static void backup_restore(struct pl_euicc_state *s, const struct backup *b)
{
    memcpy(s->prof, b->prof, sizeof(s->prof));
    s->n_prof = b->n_prof;
    memcpy(s->eim, b->eim, sizeof(s->eim));
    s->n_eim = b->n_eim;
    s->field = b->field;
}

static int answer_unsigned(const struct pl_sgp32_euicc_package *pkg, const struct pl_euicc_eim *eim,
                           struct pl_wr *rsp)
{
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    if (!r)
        return PL_ERR_NOMEM;
    r->kind = PL_SGP32_EPR_ERROR_UNSIGNED;
    r->eim_id = pkg->eim_id;
    r->eim_txid = pkg->eim_txid;
    if (eim && eim->has_token) {
        r->has_association_token = true;
        r->association_token = eim->token;
    }
    int rc = pl_sgp32_euicc_package_result_encode(r, NULL, 0, rsp);
    free(r);
    return rc;
}

static int answer_signed_error(struct pl_euicc *e, const struct pl_sgp32_euicc_package *pkg,
                               const struct pl_euicc_eim *eim, int64_t code, struct pl_wr *rsp)
{
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    if (!r)
        return PL_ERR_NOMEM;
    r->kind = PL_SGP32_EPR_ERROR_SIGNED;
    r->eim_id = pkg->eim_id;
    r->counter = pkg->counter;
    r->eim_txid = pkg->eim_txid;
    r->error_code = code;
    int rc = pl_sgp32_euicc_package_result_sign(r, eim->has_token ? &eim->token : NULL, e->sk,
                                                &e->rng, rsp);
    free(r);
    return rc;
}

/* Runs the operations, signs the result and commits it in one write. *enabled: an
 * enable PSMO succeeded. */
static int execute(struct pl_euicc *e, const struct pl_sgp32_euicc_package *pkg,
                   struct pl_euicc_eim *sender, struct pl_wr *rsp, bool *enabled)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_euicc_state *s = &e->st;
    struct backup *b = malloc(sizeof(*b));
    struct pl_euicc_exec *x = calloc(1, sizeof(*x));
    struct pl_sgp32_euicc_package_result *res = calloc(1, sizeof(*res));
    struct pl_wr bufs[PL_SGP32_MAX_RESULTS];
    struct pl_wr epr;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool restore = false;

    for (size_t i = 0; i < PL_SGP32_MAX_RESULTS; i++)
        pl_wr_init_dyn(&bufs[i], PL_EUICC_RESULTS_MAX + PL_EUICC_EIM_CFG_MAX);
    pl_wr_init_dyn(&epr, PL_EUICC_EPR_MAX);
    if (!b || !x || !res) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    backup_take(s, b);
    restore = true;
    x->e = e;
    /* The result is signed with the token the eIM had when it signed the package, even if
     * the package changes or removes that eIM. */
    bool has_token = sender->has_token;
    int64_t token = sender->token;
    sender->counter = pkg->counter;

    res->kind = PL_SGP32_EPR_RESULT_SIGNED;
    res->eim_id = pkg->eim_id;
    res->counter = pkg->counter;
    res->eim_txid = pkg->eim_txid;
    if (s->pir_seq >= PL_SGP32_COUNTER_MAX) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }
    res->seq_number = (uint32_t)(s->pir_seq + 1);
    for (size_t i = 0; i < pkg->n_ops && i < PL_SGP32_MAX_RESULTS; i++) {
        struct pl_sgp32_euicc_result *r = &res->results[i];
        if (pkg->kind == PL_SGP32_PACKAGE_PSMO)
            rc = pl_euicc_psmo_execute(x, &pkg->psmo[i], &bufs[i], r);
        else
            rc = pl_euicc_eco_execute(x, &pkg->eco[i], &bufs[i], r);
        if (rc)
            goto out;
        res->n_results++;
        if (x->result_bytes > PL_EUICC_RESULTS_MAX) {
            memset(r, 0, sizeof(*r));
            r->kind = PL_SGP32_RESULT_PROCESSING_TERMINATED;
            r->code = PROCESSING_RESULT_SIZE_OVERFLOW;
            break;
        }
    }
    if ((rc = pl_sgp32_euicc_package_result_sign(res, has_token ? &token : NULL, e->sk, &e->rng,
                                                 &epr)))
        goto out;
    if ((rc = pl_wr_bytes(rsp, epr.buf, epr.len)))
        goto out;
    raw = pl_wr_take(&epr, &raw_len);
    if (!raw) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* Commit: nothing below can fail before the write. */
    restore = false;
    for (size_t i = 0; i < x->n_deleted; i++)
        pl_euicc_prof_free(&x->deleted[i]);
    s->pir_seq++;
    rc = PL_EUICC_EPR_ADD(s, s->pir_seq, raw, raw_len); /* room checked by the caller */
    raw = NULL;
    if (rc)
        goto out;
    *enabled = x->enabled;
    rc = pl_euicc_persist(e);
out:
    if (restore && b)
        backup_restore(s, b);
    free(raw);
    pl_wr_free(&epr);
    for (size_t i = 0; i < PL_SGP32_MAX_RESULTS; i++)
        pl_wr_free(&bufs[i]);
    free(res);
    free(x);
    free(b);
    return rc;
}

int pl_euicc_es10b_load_euicc_package(struct pl_euicc *e, const uint8_t *req, size_t len,
                                      struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_euicc_package_request *q = malloc(sizeof(*q));
    struct pl_eckey *key = NULL;
    bool enabled = false;

    if (!q)
        return PL_ERR_NOMEM;
    if (pl_sgp32_euicc_package_request_decode(req, len, q) != PL_OK) {
        rc = PL_SW_WRONG_DATA;
        goto out;
    }
    const struct pl_sgp32_euicc_package *pkg = &q->pkg;
    struct pl_euicc_eim *eim = pl_euicc_eim_find(&e->st, pkg->eim_id.p, pkg->eim_id.len);
    if (!eim) {
        rc = answer_unsigned(pkg, NULL, rsp);
        goto out;
    }
    if ((rc = pl_euicc_eim_key(eim, &key)))
        goto out;
    if (pl_sgp32_euicc_package_request_verify(q, eim->has_token ? &eim->token : NULL, key)
        != PL_OK) {
        rc = answer_unsigned(pkg, eim, rsp);
        goto out;
    }
    if (memcmp(pkg->eid, e->st.eid, PL_EUICC_EID_LEN) != 0) {
        rc = answer_signed_error(e, pkg, eim, PL_SGP32_EPE_INVALID_EID, rsp);
        goto out;
    }
    if (pkg->counter > PL_EUICC_COUNTER_MAX) {
        rc = answer_signed_error(e, pkg, eim, PL_SGP32_EPE_COUNTER_OUT_OF_RANGE, rsp);
        goto out;
    }
    if (pkg->counter <= eim->counter) {
        rc = answer_signed_error(e, pkg, eim, PL_SGP32_EPE_REPLAY, rsp);
        goto out;
    }
    if (e->st.n_epr >= PL_EUICC_MAX_EPRS) {
        rc = PL_SW_MEMORY;
        goto out;
    }
    if ((rc = execute(e, pkg, eim, rsp, &enabled)))
        goto out;
    if (enabled && e->opts.lose_result_after_enable) {
        /* Known silicon: executed and stored, but the answer never reaches the IPA. */
        pl_wr_reset(rsp);
        e->await_reset = true;
        rc = PL_SW_CONDITIONS;
    }
out:
    pl_eckey_free(key);
    free(q);
    return rc;
}
