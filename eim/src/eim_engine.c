/* The eIM protocol engine: construction, logging, the eUICC trust check, and the helpers
 * the ESipa functions share.
 * GSMA SGP.32 v1.2 §2.11 (eUICC Packages and their results), §2.6 / SGP.22 v2.5 §4.5.2
 * (CERT.EUICC chain CI -> EUM -> eUICC), §2.11.1.4 (EimAcknowledgements carry the eUICC's
 * seqNumbers). Design: docs/eim-engine.md. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool claimer_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PL_EIM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '@' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int pl_eim_engine_new(struct pl_eim_store *store, const struct pl_eim_engine_config *cfg,
                      struct pl_eim_engine **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_engine *eng = NULL;
    if (out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (store == NULL || cfg == NULL || cfg->eim_id == NULL || cfg->signing_key == NULL
        || cfg->ci_roots == NULL || cfg->n_ci_roots == 0 || cfg->n_ci_roots > PL_EIM_MAX_CI_ROOTS)
        return PL_ERR_INVAL;
    size_t id_len = strlen(cfg->eim_id);
    if (id_len == 0 || id_len > PL_EIM_EIM_ID_MAX || !pl_eckey_has_private(cfg->signing_key))
        return PL_ERR_INVAL;
    const char *claimer = cfg->claimer ? cfg->claimer : "eim";
    if (!claimer_ok(claimer))
        return PL_ERR_INVAL;
    for (size_t i = 0; i < cfg->n_ci_roots; i++) {
        if (cfg->ci_roots[i] == NULL)
            return PL_ERR_INVAL;
    }
    eng = calloc(1, sizeof(*eng));
    if (eng == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    eng->store = store;
    memcpy(eng->eim_id, cfg->eim_id, id_len + 1);
    eng->key = cfg->signing_key;
    for (size_t i = 0; i < cfg->n_ci_roots; i++)
        eng->ci[i] = cfg->ci_roots[i];
    eng->n_ci = cfg->n_ci_roots;
    memcpy(eng->claimer, claimer, strlen(claimer) + 1);
    eng->result_timeout_ms =
        cfg->result_timeout_ms ? cfg->result_timeout_ms : PL_EIM_DEFAULT_RESULT_TIMEOUT_MS;
    eng->requery_timeout_ms =
        cfg->requery_timeout_ms ? cfg->requery_timeout_ms : PL_EIM_DEFAULT_REQUERY_TIMEOUT_MS;
    eng->clock = cfg->clock;
    if (eng->clock.now_ms == NULL)
        eng->clock = PL_CLOCK_REALTIME;
    eng->rng = cfg->rng;
    if (eng->rng.fill == NULL)
        eng->rng = PL_RNG_SYSTEM;
    eng->log = cfg->log;
    *out = eng;
    eng = NULL;
    rc = PL_OK;
out:
    free(eng);
    return rc;
}

void pl_eim_engine_free(struct pl_eim_engine *eng)
{
    if (eng == NULL)
        return;
    pl_memzero(eng, sizeof(*eng));
    free(eng);
}

void pl_eimi_eid_hex(const uint8_t eid[PL_EIM_EID_LEN], char out[2 * PL_EIM_EID_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < PL_EIM_EID_LEN; i++) {
        out[2 * i] = digits[eid[i] >> 4];
        out[2 * i + 1] = digits[eid[i] & 0x0F];
    }
    out[2 * PL_EIM_EID_LEN] = '\0';
}

void pl_eimi_log(const struct pl_eim_engine *eng, int level, const uint8_t *eid,
                 const struct pl_eim_op *op, const char *fmt, ...)
{
    if (eng == NULL || eng->log.log == NULL)
        return;
    char line[512];
    char eidhex[2 * PL_EIM_EID_LEN + 1] = "-";
    if (eid != NULL)
        pl_eimi_eid_hex(eid, eidhex);
    int n;
    if (op != NULL) {
        const char *st = pl_eim_op_state_name(op->state);
        const char *kind = pl_eim_op_kind_name(op->kind);
        n = snprintf(line, sizeof(line), "eim(%s){op %lld %s %s}: ", eidhex, (long long)op->id,
                     kind ? kind : "?", st ? st : "?");
    } else {
        n = snprintf(line, sizeof(line), "eim(%s): ", eidhex);
    }
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    eng->log.log(eng->log.user, level, line);
}

int64_t pl_eimi_now(const struct pl_eim_engine *eng)
{
    return (int64_t)pl_clock_now_ms(&eng->clock);
}

bool pl_eimi_is_fatal(int rc)
{
    return rc == PL_ERR_DB || rc == PL_ERR_NOMEM || rc == PL_ERR_INTERNAL || rc == PL_ERR_IO;
}

const int64_t *pl_eimi_token(const struct pl_eim_device *dev)
{
    return dev->has_assoc_token ? &dev->assoc_token : NULL;
}

void pl_eimi_acks_add(struct pl_eimi_acks *a, uint32_t seq)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->seq[i] == seq)
            return;
    }
    if (a->n < PL_SGP32_MAX_ACKS)
        a->seq[a->n++] = seq;
}

int pl_eimi_verify_euicc_certs(const struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN],
                               const uint8_t *euicc, size_t euicc_len, const uint8_t *eum,
                               size_t eum_len)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_cert *leaf = NULL, *mid = NULL;
    uint8_t cert_eid[PL_CERT_EID_LEN];
    if (euicc == NULL || eum == NULL || euicc_len == 0 || eum_len == 0)
        return PL_ERR_NOT_FOUND;
    rc = pl_cert_parse(euicc, euicc_len, &leaf);
    if (rc != PL_OK)
        goto out;
    rc = pl_cert_parse(eum, eum_len, &mid);
    if (rc != PL_OK)
        goto out;
    rc = pl_cert_eid(leaf, cert_eid);
    if (rc != PL_OK)
        goto out;
    if (memcmp(cert_eid, eid, PL_EIM_EID_LEN) != 0) {
        rc = PL_ERR_CERT_USAGE;
        goto out;
    }
    time_t now = (time_t)(pl_eimi_now(eng) / 1000);
    const struct pl_cert *chain[1] = {mid};
    rc = PL_ERR_CERT_CHAIN;
    for (size_t i = 0; i < eng->n_ci; i++) {
        rc = pl_cert_verify_chain(leaf, chain, 1, eng->ci[i], PL_CERT_ROLE_EUICC, now);
        if (rc == PL_OK)
            break;
    }
out:
    pl_cert_free(leaf);
    pl_cert_free(mid);
    return rc;
}

int pl_eimi_euicc_key(const struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                      struct pl_eckey **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_cert *leaf = NULL;
    *out = NULL;
    rc = pl_eimi_verify_euicc_certs(eng, dev->eid, dev->euicc_cert, dev->euicc_cert_len,
                                    dev->eum_cert, dev->eum_cert_len);
    if (rc != PL_OK)
        goto out;
    rc = pl_cert_parse(dev->euicc_cert, dev->euicc_cert_len, &leaf);
    if (rc != PL_OK)
        goto out;
    rc = pl_cert_public_key(leaf, out);
out:
    pl_cert_free(leaf);
    return rc;
}

int pl_eimi_inflight(const struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN],
                     struct pl_eim_op *out)
{
    struct pl_eim_op_summary s[4];
    size_t n = 0;
    unsigned mask =
        (1u << PL_EIM_OPS_CLAIMED) | (1u << PL_EIM_OPS_SENT) | (1u << PL_EIM_OPS_REQUERY);
    int rc = pl_eim_store_op_list(eng->store, eid, mask, s, 4, &n);
    if (rc != PL_OK)
        return rc;
    if (n == 0)
        return PL_ERR_NOT_FOUND;
    return pl_eim_store_op_get(eng->store, s[0].id, out);
}

int pl_eimi_keep_for_ack(const struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN],
                         uint32_t seq, const uint8_t *raw, size_t len, struct pl_eimi_acks *acks,
                         bool *inserted_out)
{
    struct pl_eim_notification n;
    memset(&n, 0, sizeof(n));
    memcpy(n.eid, eid, PL_EIM_EID_LEN);
    n.seq = seq;
    n.data = (uint8_t *)(uintptr_t)raw; /* borrowed: the store copies */
    n.len = len;
    n.received_ms = pl_eimi_now(eng);
    bool inserted = false;
    int rc = pl_eim_store_notif_put(eng->store, &n, &inserted);
    if (rc != PL_OK)
        return rc;
    if (inserted_out != NULL)
        *inserted_out = inserted;
    if (acks != NULL)
        pl_eimi_acks_add(acks, seq);
    return PL_OK;
}
