/* SHA-256 (FIPS 180-4) over one buffer or a scatter list, on mbedTLS 2.28.
 * GSMA SGP.22 v2.5 §2.6.5: SHA-256 is the hash of every ECDSA signature and of the
 * X9.63 KDF used by the BSP. */
#include <mbedtls/sha256.h>

#include "provline/protocol/crypto.h"

PL_MUST_CHECK int pl_sha256(const void *data, size_t len, uint8_t out[PL_SHA256_LEN])
{
    struct pl_iov one = {data, len};

    return pl_sha256_iov(&one, 1, out);
}

PL_MUST_CHECK int pl_sha256_iov(const struct pl_iov *iov, size_t n, uint8_t out[PL_SHA256_LEN])
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_sha256_context ctx;

    if (out == NULL || (iov == NULL && n != 0))
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (iov[i].p == NULL && iov[i].len != 0)
            return PL_ERR_INVAL;
    }

    mbedtls_sha256_init(&ctx);
    if (mbedtls_sha256_starts_ret(&ctx, 0) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (iov[i].len == 0)
            continue;
        if (mbedtls_sha256_update_ret(&ctx, iov[i].p, iov[i].len) != 0) {
            rc = PL_ERR_CRYPTO;
            goto out;
        }
    }
    if (mbedtls_sha256_finish_ret(&ctx, out) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = PL_OK;
out:
    /* The context holds (part of) the message, which may be secret (KDF input). */
    mbedtls_sha256_free(&ctx);
    return rc;
}
