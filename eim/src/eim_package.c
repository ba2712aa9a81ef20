/* Building eIM Packages from queued operations: the signed eUICC Package (EuiccPackageRequest
 * 'BF51' with one PSMO or eCO), and the dispatch to the unsigned packages (IpaEuiccDataRequest
 * 'BF52', ProfileDownloadTriggerRequest 'BF54').
 *
 * GSMA SGP.32 v1.2 §2.11.1.1 (EuiccPackageRequest; "the eIM SHALL sign euiccPackageSigned
 * concatenated with associationToken ... if none configured use '84 01 00'"; counterValue
 * strictly increasing per eUICC), §2.11.1.1.2 eCOs, §2.11.1.1.3 PSMOs.
 * Counter discipline (ARCHITECTURE.md §5; docs/eim-engine.md §3): the counter value is
 * reserved and COMMITTED by the store before anything is signed, and the exact signed bytes
 * are committed with the operation (op_mark_sent) before they are handed to the transport. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/iccid.h"
#include "eim_package_json.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pl_eimi_arena_free(struct pl_eimi_arena *a)
{
    if (a == NULL)
        return;
    if (a->json != NULL)
        json_decref((json_t *)a->json);
    for (size_t i = 0; i < a->n; i++)
        free(a->bufs[i]);
    memset(a, 0, sizeof(*a));
}

/* ---- JSON helpers (eim_package_json.h) ---- */

void pl_eimi_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

int pl_eimi_json_open(const uint8_t *params, size_t len, struct pl_eimi_arena *arena,
                      const char *const *allowed, json_t **obj, char *err, size_t cap)
{
    json_t *root;
    if (params == NULL || len == 0) {
        root = json_object();
    } else {
        json_error_t jerr;
        root = json_loadb((const char *)params, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL) {
            pl_eimi_err(err, cap, "parameters are not JSON: %s", jerr.text);
            return PL_ERR_INVAL;
        }
    }
    if (root == NULL)
        return PL_ERR_NOMEM;
    arena->json = root;
    if (!json_is_object(root)) {
        pl_eimi_err(err, cap, "parameters must be a JSON object");
        return PL_ERR_INVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            pl_eimi_err(err, cap, "unknown parameter \"%s\"", key);
            return PL_ERR_INVAL;
        }
    }
    *obj = root;
    return PL_OK;
}

int pl_eimi_json_str(json_t *obj, const char *key, bool required, size_t min, size_t max,
                     struct pl_sgp32_buf *out, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    out->p = NULL;
    out->len = 0;
    if (v == NULL) {
        if (required) {
            pl_eimi_err(err, cap, "missing parameter \"%s\"", key);
            return PL_ERR_INVAL;
        }
        return PL_OK;
    }
    if (!json_is_string(v)) {
        pl_eimi_err(err, cap, "\"%s\" must be a string", key);
        return PL_ERR_INVAL;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n < min || n > max || strlen(s) != n) {
        pl_eimi_err(err, cap, "\"%s\" has a bad length", key);
        return PL_ERR_INVAL;
    }
    out->p = (const uint8_t *)s;
    out->len = n;
    return PL_OK;
}

int pl_eimi_json_hex(json_t *obj, const char *key, bool required, size_t min, size_t max,
                     struct pl_eimi_arena *arena, struct pl_sgp32_buf *out, char *err, size_t cap)
{
    struct pl_sgp32_buf s;
    int rc = pl_eimi_json_str(obj, key, required, 0, 2 * max, &s, err, cap);
    out->p = NULL;
    out->len = 0;
    if (rc != PL_OK || s.p == NULL)
        return rc;
    if (arena->n >= sizeof(arena->bufs) / sizeof(arena->bufs[0]))
        return PL_ERR_OVERFLOW;
    uint8_t *b = malloc(max ? max : 1);
    if (b == NULL)
        return PL_ERR_NOMEM;
    arena->bufs[arena->n++] = b;
    size_t n = 0;
    if (pl_hex_decode((const char *)s.p, b, max, &n) != PL_OK || n < min) {
        pl_eimi_err(err, cap, "\"%s\" must be hex of the right length", key);
        return PL_ERR_INVAL;
    }
    out->p = b;
    out->len = n;
    return PL_OK;
}

int pl_eimi_json_bool(json_t *obj, const char *key, bool *present, bool *out, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (v == NULL)
        return PL_OK;
    if (!json_is_boolean(v)) {
        pl_eimi_err(err, cap, "\"%s\" must be true or false", key);
        return PL_ERR_INVAL;
    }
    *present = true;
    *out = json_is_true(v);
    return PL_OK;
}

int pl_eimi_json_int(json_t *obj, const char *key, bool *present, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (v == NULL)
        return PL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        pl_eimi_err(err, cap, "\"%s\" must be an integer in range", key);
        return PL_ERR_INVAL;
    }
    *present = true;
    *out = (int64_t)json_integer_value(v);
    return PL_OK;
}

int pl_eimi_json_iccid(json_t *obj, const char *key, bool required, bool *present,
                       uint8_t iccid[PL_SGP32_ICCID_LEN], char *err, size_t cap)
{
    struct pl_sgp32_buf s;
    int rc = pl_eimi_json_str(obj, key, required, 1, 20, &s, err, cap);
    *present = false;
    if (rc != PL_OK || s.p == NULL)
        return rc;
    char txt[21];
    memcpy(txt, s.p, s.len);
    txt[s.len] = '\0';
    if (pl_iccid_parse(txt, iccid) != PL_OK) {
        pl_eimi_err(err, cap, "\"%s\" must be an ICCID (18 to 20 digits, F for padding)", key);
        return PL_ERR_INVAL;
    }
    *present = true;
    return PL_OK;
}

/* "1.2.840..." -> OBJECT IDENTIFIER contents octets (X.690 §8.19). */
static int oid_encode(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    uint64_t arcs[32];
    size_t n = 0;
    const char *p = s;
    while (*p) {
        if (n == 32 || *p < '0' || *p > '9')
            return PL_ERR_INVAL;
        uint64_t v = 0;
        const char *start = p;
        while (*p >= '0' && *p <= '9') {
            if (v > (UINT64_MAX - 9) / 10)
                return PL_ERR_INVAL;
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (p - start > 1 && *start == '0')
            return PL_ERR_INVAL;
        arcs[n++] = v;
        if (*p == '.') {
            p++;
            if (*p == '\0')
                return PL_ERR_INVAL;
        } else if (*p != '\0') {
            return PL_ERR_INVAL;
        }
    }
    if (n < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) || arcs[1] > UINT64_MAX - 80)
        return PL_ERR_INVAL;
    size_t o = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t v = i == 1 ? arcs[0] * 40 + arcs[1] : arcs[i];
        uint8_t tmp[10];
        size_t k = 0;
        do {
            tmp[k++] = (uint8_t)(v & 0x7F);
            v >>= 7;
        } while (v != 0);
        if (o + k > cap)
            return PL_ERR_INVAL;
        while (k > 0) {
            k--;
            out[o++] = (uint8_t)(tmp[k] | (k ? 0x80 : 0));
        }
    }
    *len = o;
    return PL_OK;
}

/* ---- PSMO / eCO parameters ---- */

static int params_key_data(json_t *obj, const char *spki_key, const char *cert_key,
                           struct pl_eimi_arena *arena, struct pl_sgp32_key_data *kd, char *err,
                           size_t cap)
{
    struct pl_sgp32_buf spki, cert;
    int rc = pl_eimi_json_hex(obj, spki_key, false, 2, PL_EIM_CERT_MAX, arena, &spki, err, cap);
    if (rc != PL_OK)
        return rc;
    rc = pl_eimi_json_hex(obj, cert_key, false, 2, PL_EIM_CERT_MAX, arena, &cert, err, cap);
    if (rc != PL_OK)
        return rc;
    if (spki.p != NULL && cert.p != NULL) {
        pl_eimi_err(err, cap, "\"%s\" and its certificate form are exclusive", spki_key);
        return PL_ERR_INVAL;
    }
    kd->kind = PL_SGP32_KEY_NONE;
    if (spki.p == NULL && cert.p == NULL)
        return PL_OK;
    rc = pl_sgp32_key_data_from_der(spki.p ? PL_SGP32_KEY_SPKI : PL_SGP32_KEY_CERT,
                                    spki.p ? spki.p : cert.p, spki.p ? spki.len : cert.len, kd);
    if (rc != PL_OK) {
        pl_eimi_err(err, cap, "\"%s\" is not one DER SEQUENCE", spki.p ? spki_key : cert_key);
        return PL_ERR_INVAL;
    }
    return PL_OK;
}

static int params_eim_config(json_t *obj, struct pl_eimi_arena *arena,
                             struct pl_sgp32_eim_config *cfg, char *err, size_t cap)
{
    static const char *const protos[] = {"retrieveHttps", "retrieveCoaps", "injectHttps",
                                         "injectCoaps", "proprietary"};
    bool present;
    int64_t v;
    int rc;
    memset(cfg, 0, sizeof(*cfg));
    if ((rc = pl_eimi_json_str(obj, "eimId", true, 1, PL_SGP32_EIM_ID_MAX, &cfg->eim_id, err, cap)))
        return rc;
    if ((rc = pl_eimi_json_str(obj, "eimFqdn", false, 1, PL_SGP32_ADDR_MAX, &cfg->eim_fqdn, err,
                               cap)))
        return rc;
    if ((rc = pl_eimi_json_int(obj, "eimIdType", &present, 1, 3, &v, err, cap)))
        return rc;
    cfg->has_eim_id_type = present;
    cfg->eim_id_type = v;
    if ((rc = pl_eimi_json_int(obj, "counterValue", &present, 0, PL_SGP32_COUNTER_MAX, &v, err,
                               cap)))
        return rc;
    cfg->has_counter = present;
    cfg->counter = present ? (uint32_t)v : 0;
    if ((rc = pl_eimi_json_int(obj, "associationToken", &present, -1, INT64_MAX, &v, err, cap)))
        return rc;
    cfg->has_association_token = present;
    cfg->association_token = v;
    if ((rc = params_key_data(obj, "eimPublicKey", "eimCertificate", arena,
                              &cfg->eim_public_key_data, err, cap)))
        return rc;
    if ((rc = params_key_data(obj, "trustedPublicKeyTls", "trustedCertificateTls", arena,
                              &cfg->trusted_public_key_data_tls, err, cap)))
        return rc;
    json_t *pv = json_object_get(obj, "supportedProtocols");
    if (pv != NULL) {
        if (!json_is_array(pv)) {
            pl_eimi_err(err, cap, "\"%s\" must be an array", "supportedProtocols");
            return PL_ERR_INVAL;
        }
        size_t i;
        json_t *e;
        cfg->has_supported_protocol = true;
        json_array_foreach(pv, i, e)
        {
            const char *s = json_string_value(e);
            size_t k = 0;
            while (s != NULL && k < 5 && strcmp(s, protos[k]) != 0)
                k++;
            if (s == NULL || k == 5) {
                pl_eimi_err(err, cap, "unknown protocol in \"%s\"", "supportedProtocols");
                return PL_ERR_INVAL;
            }
            cfg->supported_protocol |= 1u << k;
        }
    }
    if ((rc = pl_eimi_json_hex(obj, "euiccCiPKId", false, 1, 64, arena, &cfg->euicc_ci_pkid, err,
                               cap)))
        return rc;
    bool flag = false;
    if ((rc = pl_eimi_json_bool(obj, "indirectProfileDownload", &present, &flag, err, cap)))
        return rc;
    cfg->indirect_profile_download = present && flag;
    return PL_OK;
}

static int params_psmo(enum pl_eim_op_kind kind, json_t *obj, struct pl_eimi_arena *arena,
                       struct pl_sgp32_psmo *op, char *err, size_t cap)
{
    bool present, flag = false;
    int rc = PL_OK;
    memset(op, 0, sizeof(*op));
    switch (kind) {
    case PL_EIM_OP_ENABLE:
        op->kind = PL_SGP32_PSMO_ENABLE;
        if ((rc = pl_eimi_json_iccid(obj, "iccid", true, &present, op->enable.iccid, err, cap)))
            return rc;
        if ((rc = pl_eimi_json_bool(obj, "rollback", &present, &flag, err, cap)))
            return rc;
        op->enable.rollback = present && flag;
        return PL_OK;
    case PL_EIM_OP_DISABLE:
    case PL_EIM_OP_DELETE:
    case PL_EIM_OP_SET_FALLBACK_ATTRIBUTE:
        op->kind = kind == PL_EIM_OP_DISABLE  ? PL_SGP32_PSMO_DISABLE
                   : kind == PL_EIM_OP_DELETE ? PL_SGP32_PSMO_DELETE
                                              : PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE;
        return pl_eimi_json_iccid(obj, "iccid", true, &present, op->profile.iccid, err, cap);
    case PL_EIM_OP_LIST_PROFILE_INFO: {
        op->kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
        int64_t pc = 0;
        bool has_iccid, has_class;
        if ((rc = pl_eimi_json_iccid(obj, "iccid", false, &has_iccid, op->list_profile_info.iccid,
                                     err, cap)))
            return rc;
        if ((rc = pl_eimi_json_hex(obj, "isdpAid", false, 1, 16, arena,
                                   &op->list_profile_info.isdp_aid, err, cap)))
            return rc;
        if ((rc = pl_eimi_json_int(obj, "profileClass", &has_class, 0, 2, &pc, err, cap)))
            return rc;
        int n = (int)has_iccid + (op->list_profile_info.isdp_aid.p != NULL) + (int)has_class;
        if (n > 1) {
            pl_eimi_err(err, cap, "at most one search criterion");
            return PL_ERR_INVAL;
        }
        op->list_profile_info.search = has_iccid ? PL_SGP32_SEARCH_ICCID
                                       : op->list_profile_info.isdp_aid.p != NULL
                                           ? PL_SGP32_SEARCH_ISDP_AID
                                       : has_class ? PL_SGP32_SEARCH_PROFILE_CLASS
                                                   : PL_SGP32_SEARCH_NONE;
        op->list_profile_info.profile_class = pc;
        return pl_eimi_json_hex(obj, "tagList", false, 1, 64, arena,
                                &op->list_profile_info.tag_list, err, cap);
    }
    case PL_EIM_OP_GET_RAT:
        op->kind = PL_SGP32_PSMO_GET_RAT;
        return PL_OK;
    case PL_EIM_OP_UNSET_FALLBACK_ATTRIBUTE:
        op->kind = PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE;
        return PL_OK;
    case PL_EIM_OP_CONFIGURE_IMMEDIATE_ENABLE: {
        op->kind = PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE;
        if ((rc = pl_eimi_json_bool(obj, "immediateEnable", &present, &flag, err, cap)))
            return rc;
        if (!present) {
            pl_eimi_err(err, cap, "missing parameter \"%s\"", "immediateEnable");
            return PL_ERR_INVAL;
        }
        op->configure_immediate_enable.immediate_enable_flag = flag;
        struct pl_sgp32_buf oid;
        if ((rc = pl_eimi_json_str(obj, "defaultSmdpOid", false, 3, 200, &oid, err, cap)))
            return rc;
        if (oid.p != NULL) {
            char txt[201];
            memcpy(txt, oid.p, oid.len);
            txt[oid.len] = '\0';
            if (arena->n >= sizeof(arena->bufs) / sizeof(arena->bufs[0]))
                return PL_ERR_OVERFLOW;
            uint8_t *b = malloc(128);
            if (b == NULL)
                return PL_ERR_NOMEM;
            arena->bufs[arena->n++] = b;
            size_t olen = 0;
            if (oid_encode(txt, b, 128, &olen) != PL_OK) {
                pl_eimi_err(err, cap, "\"%s\" is not a dotted OID", "defaultSmdpOid");
                return PL_ERR_INVAL;
            }
            op->configure_immediate_enable.default_smdp_oid.p = b;
            op->configure_immediate_enable.default_smdp_oid.len = olen;
        }
        return pl_eimi_json_str(obj, "defaultSmdpAddress", false, 1, PL_SGP32_ADDR_MAX,
                                &op->configure_immediate_enable.default_smdp_address, err, cap);
    }
    case PL_EIM_OP_SET_DEFAULT_DP_ADDRESS:
        op->kind = PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS;
        return pl_eimi_json_str(obj, "address", true, 1, PL_SGP32_ADDR_MAX,
                                &op->set_default_dp_address.default_dp_address, err, cap);
    default:
        return PL_ERR_INVAL;
    }
}

static const char *const *allowed_keys(enum pl_eim_op_kind kind)
{
    static const char *const none[] = {NULL};
    static const char *const enable[] = {"iccid", "rollback", NULL};
    static const char *const iccid[] = {"iccid", NULL};
    static const char *const list[] = {"iccid", "isdpAid", "profileClass", "tagList", NULL};
    static const char *const cie[] = {"immediateEnable", "defaultSmdpOid", "defaultSmdpAddress",
                                      NULL};
    static const char *const dp[] = {"address", NULL};
    static const char *const eimcfg[] = {"eimId",
                                         "eimFqdn",
                                         "eimIdType",
                                         "counterValue",
                                         "associationToken",
                                         "eimPublicKey",
                                         "eimCertificate",
                                         "trustedPublicKeyTls",
                                         "trustedCertificateTls",
                                         "supportedProtocols",
                                         "euiccCiPKId",
                                         "indirectProfileDownload",
                                         NULL};
    static const char *const eimid[] = {"eimId", NULL};
    switch (kind) {
    case PL_EIM_OP_ENABLE:
        return enable;
    case PL_EIM_OP_DISABLE:
    case PL_EIM_OP_DELETE:
    case PL_EIM_OP_SET_FALLBACK_ATTRIBUTE:
        return iccid;
    case PL_EIM_OP_LIST_PROFILE_INFO:
        return list;
    case PL_EIM_OP_CONFIGURE_IMMEDIATE_ENABLE:
        return cie;
    case PL_EIM_OP_SET_DEFAULT_DP_ADDRESS:
        return dp;
    case PL_EIM_OP_ADD_EIM:
    case PL_EIM_OP_UPDATE_EIM:
        return eimcfg;
    case PL_EIM_OP_DELETE_EIM:
        return eimid;
    case PL_EIM_OP_GET_RAT:
    case PL_EIM_OP_UNSET_FALLBACK_ATTRIBUTE:
    case PL_EIM_OP_LIST_EIM:
    default:
        return none;
    }
}

int pl_eimi_params_package(enum pl_eim_op_kind kind, const uint8_t *params, size_t len,
                           struct pl_eimi_arena *arena, struct pl_sgp32_euicc_package *pkg,
                           char *err, size_t err_cap)
{
    json_t *obj = NULL;
    int rc;
    if (!pl_eim_op_kind_is_signed(kind))
        return PL_ERR_INVAL;
    if ((rc = pl_eimi_json_open(params, len, arena, allowed_keys(kind), &obj, err, err_cap)))
        return rc;
    pkg->n_ops = 1;
    switch (kind) {
    case PL_EIM_OP_ADD_EIM:
    case PL_EIM_OP_UPDATE_EIM:
        pkg->kind = PL_SGP32_PACKAGE_ECO;
        memset(&pkg->eco[0], 0, sizeof(pkg->eco[0]));
        pkg->eco[0].kind =
            kind == PL_EIM_OP_ADD_EIM ? PL_SGP32_ECO_ADD_EIM : PL_SGP32_ECO_UPDATE_EIM;
        return params_eim_config(obj, arena, &pkg->eco[0].eim_config, err, err_cap);
    case PL_EIM_OP_DELETE_EIM:
        pkg->kind = PL_SGP32_PACKAGE_ECO;
        memset(&pkg->eco[0], 0, sizeof(pkg->eco[0]));
        pkg->eco[0].kind = PL_SGP32_ECO_DELETE_EIM;
        return pl_eimi_json_str(obj, "eimId", true, 1, PL_SGP32_EIM_ID_MAX,
                                &pkg->eco[0].delete_eim_id, err, err_cap);
    case PL_EIM_OP_LIST_EIM:
        pkg->kind = PL_SGP32_PACKAGE_ECO;
        memset(&pkg->eco[0], 0, sizeof(pkg->eco[0]));
        pkg->eco[0].kind = PL_SGP32_ECO_LIST_EIM;
        return PL_OK;
    default:
        pkg->kind = PL_SGP32_PACKAGE_PSMO;
        return params_psmo(kind, obj, arena, &pkg->psmo[0], err, err_cap);
    }
}

int pl_eim_engine_check_params(enum pl_eim_op_kind kind, const uint8_t *params, size_t len,
                               char *err, size_t err_cap)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eimi_arena arena;
    memset(&arena, 0, sizeof(arena));
    if (err != NULL && err_cap > 0)
        err[0] = '\0';
    if (kind == PL_EIM_OP_IPA_EUICC_DATA_REQUEST) {
        struct pl_sgp32_ipa_euicc_data_request req;
        rc = pl_eimi_params_edr(params, len, &arena, &req, err, err_cap);
    } else if (kind == PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER) {
        struct pl_sgp32_profile_download_trigger_request req;
        rc = pl_eimi_params_pdt(params, len, &arena, &req, err, err_cap);
    } else if (pl_eim_op_kind_is_signed(kind)) {
        struct pl_sgp32_euicc_package *pkg = calloc(1, sizeof(*pkg));
        if (pkg == NULL) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        rc = pl_eimi_params_package(kind, params, len, &arena, pkg, err, err_cap);
        free(pkg);
    } else {
        pl_eimi_err(err, err_cap, "unknown operation kind");
        rc = PL_ERR_INVAL;
    }
out:
    pl_eimi_arena_free(&arena);
    return rc;
}

/* ---- building ---- */

static int new_txid(struct pl_eim_engine *eng, uint8_t txid[PL_EIMI_TXID_LEN])
{
    return eng->rng.fill(eng->rng.user, txid, PL_EIMI_TXID_LEN);
}

/* The eUICC Package of a claimed PSMO/eCO: parse, reserve the counter (committed), sign. */
static int build_signed(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                        const struct pl_eim_op *op, struct pl_eim_op *sent, struct pl_wr *pkgw,
                        const char **fail)
{
    int rc = PL_ERR_INTERNAL;
    char err[160] = "";
    struct pl_eimi_arena arena;
    struct pl_sgp32_euicc_package *pkg = calloc(1, sizeof(*pkg));
    memset(&arena, 0, sizeof(arena));
    if (pkg == NULL)
        return PL_ERR_NOMEM;
    rc =
        pl_eimi_params_package(op->kind, op->params, op->params_len, &arena, pkg, err, sizeof(err));
    if (rc != PL_OK) {
        if (!pl_eimi_is_fatal(rc)) {
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, op, "invalid parameters: %s", err);
            *fail = "invalidParameters";
            rc = PL_ERR_INVAL;
        }
        goto out;
    }
    pkg->eim_id = pl_sgp32_str(dev->eim_id != NULL ? dev->eim_id : eng->eim_id);
    memcpy(pkg->eid, dev->eid, PL_SGP32_EID_LEN);
    if ((rc = new_txid(eng, sent->txid)) != PL_OK)
        goto out;
    sent->txid_len = PL_EIMI_TXID_LEN;
    pkg->eim_txid.p = sent->txid;
    pkg->eim_txid.len = PL_EIMI_TXID_LEN;
    /* ARCHITECTURE.md §5: "eIM counters are per eUICC, strictly increasing, stored durably
     * before a package is sent". The store commits the reservation before returning. */
    uint32_t counter = 0;
    rc = pl_eim_store_reserve_counter(eng->store, dev->eid, &counter);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_ERR, dev->eid, op, "counter reservation failed: %s",
                    pl_strerror(rc));
        if (rc == PL_ERR_OVERFLOW) {
            /* counter_max reached: this eUICC takes no more packages from this eIM until an
             * updateEim resets the counter (EIM.md §4.3). */
            *fail = "counterExhausted";
            rc = PL_ERR_INVAL;
        }
        goto out;
    }
    pkg->counter = counter;
    sent->has_counter = true;
    sent->counter = counter;
    /* §2.11.1.1: eimSignature over DER(euiccPackageSigned) ‖ associationToken TLV, r‖s. */
    rc = pl_sgp32_euicc_package_request_sign(pkg, pl_eimi_token(dev), eng->key, &eng->rng, pkgw);
    if (rc == PL_OK)
        rc = pl_wr_status(pkgw);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_ERR, dev->eid, op, "signing failed: %s", pl_strerror(rc));
        if (rc == PL_ERR_INVAL || rc == PL_ERR_OVERFLOW) {
            /* parameters outside the codec's constraints, or a package over its cap: the
             * counter reserved for it is skipped (gaps are allowed) */
            *fail = "invalidParameters";
            rc = PL_ERR_INVAL;
        }
        goto out;
    }
out:
    pl_eimi_arena_free(&arena);
    free(pkg);
    return rc;
}

static int build_unsigned(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                          const struct pl_eim_op *op, struct pl_eim_op *sent, struct pl_wr *pkgw,
                          const char **fail)
{
    int rc = PL_ERR_INTERNAL;
    char err[160] = "";
    struct pl_eimi_arena arena;
    memset(&arena, 0, sizeof(arena));
    if ((rc = new_txid(eng, sent->txid)) != PL_OK)
        goto out;
    sent->txid_len = PL_EIMI_TXID_LEN;
    struct pl_sgp32_buf txid = {sent->txid, PL_EIMI_TXID_LEN};
    if (op->kind == PL_EIM_OP_IPA_EUICC_DATA_REQUEST) {
        struct pl_sgp32_ipa_euicc_data_request req;
        rc = pl_eimi_params_edr(op->params, op->params_len, &arena, &req, err, sizeof(err));
        if (rc == PL_OK) {
            req.eim_txid = txid;
            rc = pl_sgp32_ipa_euicc_data_request_encode(&req, pkgw);
        }
    } else {
        struct pl_sgp32_profile_download_trigger_request req;
        rc = pl_eimi_params_pdt(op->params, op->params_len, &arena, &req, err, sizeof(err));
        if (rc == PL_OK) {
            req.eim_txid = txid;
            rc = pl_sgp32_profile_download_trigger_request_encode(&req, pkgw);
        }
    }
    if (rc == PL_OK)
        rc = pl_wr_status(pkgw);
    if (rc != PL_OK && !pl_eimi_is_fatal(rc)) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, op, "invalid parameters: %s",
                    err[0] ? err : pl_strerror(rc));
        *fail = "invalidParameters";
        rc = PL_ERR_INVAL;
    }
out:
    pl_eimi_arena_free(&arena);
    return rc;
}

int pl_eimi_package_build(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                          const struct pl_eim_op *op, struct pl_wr *out, const char **fail)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_wr pkgw;
    struct pl_eim_op sent;
    memset(&sent, 0, sizeof(sent));
    *fail = NULL;
    pl_wr_init_dyn(&pkgw, PL_EIMI_PKG_MAX);
    if (pl_eim_op_kind_is_signed(op->kind))
        rc = build_signed(eng, dev, op, &sent, &pkgw, fail);
    else
        rc = build_unsigned(eng, dev, op, &sent, &pkgw, fail);
    if (rc != PL_OK)
        goto out;
    sent.package = pkgw.buf;
    sent.package_len = pkgw.len;
    /* The exact bytes go to the store first: a re-delivery or a crash never re-signs. */
    rc = pl_eim_store_op_mark_sent(eng->store, op->id, eng->claimer, &sent);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_ERR, dev->eid, op, "storing the package failed: %s (%s)",
                    pl_strerror(rc), pl_eim_store_last_error(eng->store));
        goto out;
    }
    if (sent.has_counter)
        pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, op, "sent, counterValue %u, %zu bytes",
                    (unsigned)sent.counter, pkgw.len);
    else
        pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, op, "sent, %zu bytes", pkgw.len);
    rc = pl_wr_bytes(out, pkgw.buf, pkgw.len);
    if (rc == PL_OK)
        rc = pl_wr_status(out);
out:
    pl_wr_free(&pkgw);
    pl_memzero(&sent, sizeof(sent));
    return rc;
}
