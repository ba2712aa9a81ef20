/* ProfileDownloadTriggerRequest 'BF54' packages: the eIM asks the IPA to download a profile
 * directly from an SM-DP+ (activation code), from the eUICC's default SM-DP+, or via an SM-DS.
 * GSMA SGP.32 v1.2 §2.11.1.3 (ProfileDownloadTriggerRequest: profileDownloadData CHOICE
 * {activationCode [0] UTF8String (SIZE(0..255)), contactDefaultSmdp [1] NULL,
 * contactSmds [2] {smdsAddress OPTIONAL}} OPTIONAL, eimTransactionId [2] OPTIONAL);
 * SGP.22 v2.5 §4.1 (activation code format "1$SM-DP+ address$matching id[...]"). */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "eim_package_json.h"

#include <jansson.h>
#include <string.h>

/* SGP.22 §4.1: AC_Format "1", then '$'-separated fields; the SM-DP+ address is not empty. */
static bool activation_code_ok(struct pl_sgp32_buf ac)
{
    if (ac.len < 4 || ac.p[0] != '1' || ac.p[1] != '$')
        return false;
    size_t i = 2;
    while (i < ac.len && ac.p[i] != '$')
        i++;
    return i > 2 && i < ac.len;
}

int pl_eimi_params_pdt(const uint8_t *params, size_t len, struct pl_eimi_arena *arena,
                       struct pl_sgp32_profile_download_trigger_request *req, char *err,
                       size_t err_cap)
{
    static const char *const allowed[] = {"activationCode", "contactDefaultSmdp", "contactSmds",
                                          "smdsAddress", NULL};
    json_t *obj = NULL;
    bool has_dp = false, dp = false, has_ds = false, ds = false;
    int rc;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_eimi_json_open(params, len, arena, allowed, &obj, err, err_cap)))
        return rc;
    if ((rc = pl_eimi_json_str(obj, "activationCode", false, 1, PL_SGP32_AC_MAX,
                               &req->activation_code, err, err_cap)))
        return rc;
    if ((rc = pl_eimi_json_bool(obj, "contactDefaultSmdp", &has_dp, &dp, err, err_cap)))
        return rc;
    if ((rc = pl_eimi_json_bool(obj, "contactSmds", &has_ds, &ds, err, err_cap)))
        return rc;
    if ((rc = pl_eimi_json_str(obj, "smdsAddress", false, 1, PL_SGP32_ADDR_MAX, &req->smds_address,
                               err, err_cap)))
        return rc;
    if ((has_dp && !dp) || (has_ds && !ds)) {
        pl_eimi_err(err, err_cap, "contactDefaultSmdp / contactSmds may only be true");
        return PL_ERR_INVAL;
    }
    int arms = (req->activation_code.p != NULL) + (int)dp + (int)ds;
    if (arms > 1) {
        pl_eimi_err(err, err_cap,
                    "activationCode, contactDefaultSmdp and contactSmds are "
                    "exclusive");
        return PL_ERR_INVAL;
    }
    if (req->smds_address.p != NULL && !ds) {
        pl_eimi_err(err, err_cap, "\"%s\" needs contactSmds", "smdsAddress");
        return PL_ERR_INVAL;
    }
    if (req->activation_code.p != NULL) {
        if (!activation_code_ok(req->activation_code)) {
            pl_eimi_err(err, err_cap, "\"%s\" is not an SGP.22 activation code", "activationCode");
            return PL_ERR_INVAL;
        }
        req->kind = PL_SGP32_PDD_ACTIVATION_CODE;
    } else if (dp) {
        req->kind = PL_SGP32_PDD_CONTACT_DEFAULT_SMDP;
    } else if (ds) {
        req->kind = PL_SGP32_PDD_CONTACT_SMDS;
    } else {
        req->kind = PL_SGP32_PDD_NONE;
    }
    return PL_OK;
}
