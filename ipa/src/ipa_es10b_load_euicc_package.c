/* ES10b.LoadEuiccPackage (GSMA SGP.32 v1.2 §5.9.1): the eIM-signed EuiccPackageRequest
 * 'BF51' goes to the ISD-R byte for byte (the eUICC verifies eimSignature over the received
 * EuiccPackageSigned, so nothing may be re-encoded); the eUICC answers the eUICC-signed
 * EuiccPackageResult 'BF51' (§2.11.2.1), which the IPA checks with the codec
 * (sgp32_euicc_package.h) and forwards raw. Never retried: a second send of a package the
 * eUICC may have executed would only earn a replayError and hide the real result
 * (EIM.md §1.6); the caller recovers a lost answer instead. */
#include "ipa_internal.h"
#include "provline/protocol/sgp32_euicc_package.h"

#include <stdlib.h>

int pl_ipa_es10b_load_euicc_package(struct pl_ipa *ipa, const uint8_t *req, size_t len,
                                    struct pl_wr *epr, uint16_t *sw)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_euicc_package_result *res = NULL;

    if (len > (size_t)PL_ES10_MAX_BLOCKS * ipa->cfg.mss)
        return PL_ERR_OVERFLOW;
    if ((rc = pl_ipa_es10(ipa, req, len, epr, sw, false)) != PL_OK)
        return rc;
    if (epr->len == 0)
        return PL_ERR_TRUNCATED; /* '9000' without the result */
    res = malloc(sizeof(*res));
    if (res == NULL)
        return PL_ERR_NOMEM;
    rc = pl_sgp32_euicc_package_result_decode(epr->buf, epr->len, res);
    free(res);
    return rc == PL_OK ? PL_OK : PL_ERR_MALFORMED;
}
