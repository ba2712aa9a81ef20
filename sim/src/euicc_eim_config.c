/* Software eUICC, field mode: the associated eIMs. GSMA SGP.32 v1.2 §2.11.1.1.1
 * EimConfigurationData (eimId, counterValue, associationToken, eimPublicKeyData,
 * euiccCiPKId, ...), as AddInitialEim (§5.9.4), the addEim / updateEim eCOs (§2.11.1.1.2)
 * and GetEimConfigurationData (§5.9.18) use them. provline reference: EIM.md §1.2, §4.3,
 * §4.4; docs/software-euicc.md §9.
 *
 * Checks applied to a configuration before it is associated (decision, documented):
 *  - eimPublicKeyData is required (the eUICC could never verify a package otherwise) and
 *    must be an EC public key on P-256 or brainpoolP256r1: else commandError(7);
 *  - an eimCertificate must chain to the eUICC's CI as an eIM certificate, and an
 *    euiccCiPKId, if given, must name that CI: else ciPKUnknown(3);
 *  - an initial counterValue above PL_EUICC_COUNTER_MAX: counterValueOutOfRange(6);
 *  - a configuration too large to store: insufficientMemory(1).
 * associationToken present (any value, onomondo-eim sends -1) asks the eUICC for a token:
 * it hands out token_last + 1. */
#include "euicc_internal.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/x509.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pl_euicc_eim *pl_euicc_eim_find(struct pl_euicc_state *s, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < s->n_eim; i++)
        if (s->eim[i].id_len == len && memcmp(s->eim[i].id, id, len) == 0)
            return &s->eim[i];
    return NULL;
}

void pl_euicc_eim_remove(struct pl_euicc_state *s, size_t i)
{
    if (i >= s->n_eim)
        return;
    memmove(&s->eim[i], &s->eim[i + 1], (s->n_eim - i - 1) * sizeof(s->eim[0]));
    s->n_eim--;
    memset(&s->eim[s->n_eim], 0, sizeof(s->eim[0]));
}

int pl_euicc_ci_ski(const struct pl_euicc *e, uint8_t out[PL_EUICC_SKI_MAX], size_t *len)
{
    struct pl_cert *ci = NULL;
    int rc = pl_cert_parse(e->st.cert_ci, e->st.cert_ci_len, &ci);
    if (rc == PL_OK)
        rc = pl_cert_subject_key_id(ci, out, PL_EUICC_SKI_MAX, len);
    pl_cert_free(ci);
    return rc;
}

/* The body of eimPublicKeyData re-wrapped in its '30' header (sgp32_eim_config.h). */
static int rewrap(const struct pl_sgp32_key_data *kd, struct pl_wr *w)
{
    pl_der_put_tlv(w, PL_TAG_SEQUENCE, kd->body.p, kd->body.len);
    return pl_wr_status(w);
}

/* Key from a SubjectPublicKeyInfo: public only, on a supported curve. */
static int key_from_spki(const uint8_t *der, size_t len, struct pl_eckey **out)
{
    struct pl_eckey *k = NULL;
    int rc = pl_eckey_parse(der, len, &k);
    if (rc)
        return rc;
    if (pl_eckey_has_private(k)) {
        pl_eckey_free(k);
        return PL_ERR_BAD_KEY;
    }
    *out = k;
    return PL_OK;
}

/* Parses eimPublicKeyData: *key owned; *cert owned when it was a certificate (else NULL). */
static int key_data_parse(const struct pl_sgp32_key_data *kd, struct pl_eckey **key,
                          struct pl_cert **cert)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_wr w;

    *key = NULL;
    *cert = NULL;
    pl_wr_init_dyn(&w, PL_EUICC_EIM_CFG_MAX);
    if (kd->kind != PL_SGP32_KEY_SPKI && kd->kind != PL_SGP32_KEY_CERT) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    if ((rc = rewrap(kd, &w)))
        goto out;
    if (kd->kind == PL_SGP32_KEY_SPKI) {
        rc = key_from_spki(w.buf, w.len, key);
        goto out;
    }
    if ((rc = pl_cert_parse(w.buf, w.len, cert)))
        goto out;
    if ((rc = pl_cert_public_key(*cert, key))) {
        pl_cert_free(*cert);
        *cert = NULL;
    }
out:
    pl_wr_free(&w);
    return rc;
}

int pl_euicc_eim_check(const struct pl_euicc *e, const struct pl_sgp32_eim_config *cfg, int *code)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eckey *key = NULL;
    struct pl_cert *cert = NULL, *ci = NULL;
    uint8_t ski[PL_EUICC_SKI_MAX];
    size_t ski_len = 0;
    struct pl_wr w;

    *code = PL_SGP32_ADD_EIM_UNDEFINED;
    pl_wr_init_dyn(&w, PL_EUICC_EIM_CFG_MAX);
    if (cfg->eim_id.len == 0 || cfg->eim_id.len > PL_EUICC_EIM_ID_MAX) {
        *code = PL_SGP32_ADD_EIM_COMMAND_ERROR;
        rc = PL_OK;
        goto out;
    }
    rc = key_data_parse(&cfg->eim_public_key_data, &key, &cert);
    if (rc == PL_ERR_NOMEM)
        goto out;
    if (rc) {
        *code = PL_SGP32_ADD_EIM_COMMAND_ERROR;
        rc = PL_OK;
        goto out;
    }
    if ((rc = pl_euicc_ci_ski(e, ski, &ski_len)))
        goto out;
    if (cfg->euicc_ci_pkid.p
        && (cfg->euicc_ci_pkid.len != ski_len || memcmp(cfg->euicc_ci_pkid.p, ski, ski_len) != 0)) {
        *code = PL_SGP32_ADD_EIM_CI_PK_UNKNOWN;
        goto out;
    }
    if (cert) {
        if ((rc = pl_cert_parse(e->st.cert_ci, e->st.cert_ci_len, &ci)))
            goto out;
        time_t now = e->opts.now ? e->opts.now : time(NULL);
        if (pl_cert_verify_chain(cert, NULL, 0, ci, PL_CERT_ROLE_EIM, now) != PL_OK) {
            *code = PL_SGP32_ADD_EIM_CI_PK_UNKNOWN;
            goto out;
        }
    }
    if (cfg->has_counter && cfg->counter > PL_EUICC_COUNTER_MAX) {
        *code = PL_SGP32_ADD_EIM_COUNTER_OUT_OF_RANGE;
        goto out;
    }
    /* The stored form must fit. */
    struct pl_sgp32_eim_config c = *cfg;
    c.has_counter = false;
    c.has_association_token = false;
    rc = pl_sgp32_eim_config_encode(&c, &w);
    if (rc == PL_ERR_OVERFLOW) {
        *code = PL_SGP32_ADD_EIM_INSUFFICIENT_MEMORY;
        rc = PL_OK;
        goto out;
    }
    if (rc == PL_ERR_INVAL) {
        *code = PL_SGP32_ADD_EIM_COMMAND_ERROR; /* a field the encoder will not emit */
        rc = PL_OK;
        goto out;
    }
    if (rc)
        goto out;
    *code = PL_SGP32_ADD_EIM_OK;
out:
    pl_wr_free(&w);
    pl_cert_free(ci);
    pl_cert_free(cert);
    pl_eckey_free(key);
    return rc;
}

int pl_euicc_eim_make(struct pl_euicc *e, const struct pl_sgp32_eim_config *cfg,
                      struct pl_euicc_eim *out)
{
    struct pl_wr w;
    struct pl_sgp32_eim_config c = *cfg;
    int rc;

    memset(out, 0, sizeof(*out));
    if (cfg->eim_id.len == 0 || cfg->eim_id.len > sizeof(out->id))
        return PL_ERR_INVAL;
    c.has_counter = false;
    c.has_association_token = false;
    pl_wr_init_fixed(&w, out->cfg, sizeof(out->cfg));
    if ((rc = pl_sgp32_eim_config_encode(&c, &w)))
        return rc;
    out->cfg_len = w.len;
    memcpy(out->id, cfg->eim_id.p, cfg->eim_id.len);
    out->id_len = cfg->eim_id.len;
    out->counter = cfg->has_counter ? cfg->counter : 0;
    if (cfg->has_association_token) {
        if (e->st.field.token_last >= INT64_MAX)
            return PL_ERR_OVERFLOW;
        out->has_token = true;
        out->token = ++e->st.field.token_last;
    }
    return PL_OK;
}

int pl_euicc_eim_key(const struct pl_euicc_eim *eim, struct pl_eckey **out)
{
    struct pl_sgp32_eim_config cfg;
    struct pl_cert *cert = NULL;
    int rc = pl_sgp32_eim_config_decode(eim->cfg, eim->cfg_len, &cfg);
    if (rc)
        return rc;
    rc = key_data_parse(&cfg.eim_public_key_data, out, &cert);
    pl_cert_free(cert);
    return rc;
}
