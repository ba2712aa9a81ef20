/* Fuzz target: SGP.32 EuiccPackageRequest and EuiccPackageResult decoders (GSMA SGP.32 v1.2
 * §2.11.1.1, §2.11.2.1). Any input must be rejected or decode into views that stay inside
 * the input, and every accepted input must re-encode idempotently (sgp32_fuzz.h). */
#include "provline/protocol/sgp32_euicc_package.h"
#include "sgp32_fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dec_req(const uint8_t *b, size_t n, void *o)
{
    return pl_sgp32_euicc_package_request_decode(b, n, o);
}

static int enc_req(const void *o, struct pl_wr *w)
{
    const struct pl_sgp32_euicc_package_request *r = o;
    return pl_sgp32_euicc_package_request_encode(&r->pkg, r->signature.p, r->signature.len, w);
}

static int dec_res(const uint8_t *b, size_t n, void *o)
{
    return pl_sgp32_euicc_package_result_decode(b, n, o);
}

static int enc_res(const void *o, struct pl_wr *w)
{
    const struct pl_sgp32_euicc_package_result *r = o;
    return pl_sgp32_euicc_package_result_encode(r, r->signature.p, r->signature.len, w);
}

static void inside(const uint8_t *buf, size_t size, struct pl_sgp32_buf b)
{
    if (b.p != NULL && (b.p < buf || b.p + b.len > buf + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact bounds for ASan */
    struct pl_sgp32_euicc_package_request *req = malloc(2 * sizeof(*req));
    struct pl_sgp32_euicc_package_result *res = malloc(2 * sizeof(*res));
    if (!buf || !req || !res)
        goto out;
    memcpy(buf, data, size);

    if (pl_sgp32_euicc_package_request_decode(buf, size, req) == PL_OK) {
        inside(buf, size, req->signed_raw);
        inside(buf, size, req->signature);
        inside(buf, size, req->pkg.eim_id);
        if (req->pkg.n_ops > PL_SGP32_MAX_OPS)
            abort();
        sgp32_fuzz_idempotent(req, req + 1, dec_req, enc_req);
    }
    if (pl_sgp32_euicc_package_result_decode(buf, size, res) == PL_OK) {
        inside(buf, size, res->signed_raw);
        inside(buf, size, res->signature);
        if (res->n_results > PL_SGP32_MAX_RESULTS)
            abort();
        for (size_t i = 0; i < res->n_results; i++)
            sgp32_fuzz_walk(&res->results[i].list);
        sgp32_fuzz_idempotent(res, res + 1, dec_res, enc_res);
    }
out:
    free(res);
    free(req);
    free(buf);
    return 0;
}
