/* Symmetric primitives on mbedTLS 2.28:
 *  - ANSI X9.63-2001 §5.6.3 KDF with SHA-256 (also SEC 1 v2 §3.6.1), hand-built: mbedTLS
 *    has none. Used by GSMA SGP.22 v2.5 §2.6.4.2 / Annex G for the BSP session keys.
 *  - AES-128 (FIPS 197) single block and CBC without padding (NIST SP 800-38A §6.2).
 *  - AES-CMAC (NIST SP 800-38B, RFC 4493).
 * The BSP (SGP.22 §2.6.4, reference/IFPP.md §5.4) is built from these. */
#include <mbedtls/aes.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/sha256.h>
#include <string.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/sym.h"

PL_MUST_CHECK int pl_x963_kdf_sha256(const uint8_t *z, size_t zlen, const uint8_t *info,
                                     size_t info_len, uint8_t *out, size_t out_len)
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_sha256_context ctx;
    uint8_t block[PL_SHA256_LEN];
    uint8_t ctr_be[4];
    uint32_t ctr = 1;
    size_t done = 0;

    if (z == NULL || zlen == 0 || (info == NULL && info_len != 0) ||
        (out == NULL && out_len != 0))
        return PL_ERR_INVAL;
    /* X9.63 §5.6.3 step 2: keydatalen < hashlen * (2^32 - 1). */
    if (out_len / PL_SHA256_LEN >= (size_t)UINT32_MAX)
        return PL_ERR_INVAL;

    mbedtls_sha256_init(&ctx);
    while (done < out_len) {
        size_t take = out_len - done;

        if (take > PL_SHA256_LEN)
            take = PL_SHA256_LEN;
        /* K_i = SHA-256(Z || Counter_i || SharedInfo), Counter a 32-bit big-endian
         * integer starting at 1 (X9.63 §5.6.3 step 4). */
        ctr_be[0] = (uint8_t)(ctr >> 24);
        ctr_be[1] = (uint8_t)(ctr >> 16);
        ctr_be[2] = (uint8_t)(ctr >> 8);
        ctr_be[3] = (uint8_t)ctr;
        if (mbedtls_sha256_starts_ret(&ctx, 0) != 0 ||
            mbedtls_sha256_update_ret(&ctx, z, zlen) != 0 ||
            mbedtls_sha256_update_ret(&ctx, ctr_be, sizeof(ctr_be)) != 0 ||
            (info_len != 0 && mbedtls_sha256_update_ret(&ctx, info, info_len) != 0) ||
            mbedtls_sha256_finish_ret(&ctx, block) != 0) {
            rc = PL_ERR_CRYPTO;
            goto out;
        }
        memcpy(out + done, block, take);
        done += take;
        ctr++;
    }
    rc = PL_OK;
out:
    if (rc != PL_OK && out != NULL)
        pl_memzero(out, out_len);
    pl_memzero(block, sizeof(block));
    mbedtls_sha256_free(&ctx);
    return rc;
}

static int pl_aes128_cbc(int mode, const uint8_t key[16], const uint8_t iv[16], const uint8_t *in,
                         size_t len, uint8_t *out)
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_aes_context aes;
    unsigned char ivbuf[PL_AES_BLOCK];
    int kr;

    if (key == NULL || iv == NULL || len % PL_AES_BLOCK != 0)
        return PL_ERR_INVAL;
    if (len == 0)
        return PL_OK;
    if (in == NULL || out == NULL)
        return PL_ERR_INVAL;

    mbedtls_aes_init(&aes);
    /* mbedTLS updates the IV in place; the caller's stays untouched. */
    memcpy(ivbuf, iv, sizeof(ivbuf));
    if (mode == MBEDTLS_AES_ENCRYPT)
        kr = mbedtls_aes_setkey_enc(&aes, key, 128);
    else
        kr = mbedtls_aes_setkey_dec(&aes, key, 128);
    if (kr != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    if (mbedtls_aes_crypt_cbc(&aes, mode, len, ivbuf, in, out) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = PL_OK;
out:
    pl_memzero(ivbuf, sizeof(ivbuf));
    mbedtls_aes_free(&aes); /* zeroises the key schedule */
    return rc;
}

PL_MUST_CHECK int pl_aes128_cbc_encrypt(const uint8_t key[16], const uint8_t iv[16],
                                        const uint8_t *in, size_t len, uint8_t *out)
{
    return pl_aes128_cbc(MBEDTLS_AES_ENCRYPT, key, iv, in, len, out);
}

PL_MUST_CHECK int pl_aes128_cbc_decrypt(const uint8_t key[16], const uint8_t iv[16],
                                        const uint8_t *in, size_t len, uint8_t *out)
{
    return pl_aes128_cbc(MBEDTLS_AES_DECRYPT, key, iv, in, len, out);
}

PL_MUST_CHECK int pl_aes128_ecb_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_aes_context aes;

    if (key == NULL || in == NULL || out == NULL)
        return PL_ERR_INVAL;
    mbedtls_aes_init(&aes);
    if (mbedtls_aes_setkey_enc(&aes, key, 128) != 0 ||
        mbedtls_aes_crypt_ecb(&aes, MBEDTLS_AES_ENCRYPT, in, out) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = PL_OK;
out:
    mbedtls_aes_free(&aes);
    return rc;
}

PL_MUST_CHECK int pl_aes_cmac(const uint8_t key[16], const struct pl_iov *iov, size_t n,
                              uint8_t mac[16])
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_cipher_context_t cipher;
    const mbedtls_cipher_info_t *info;

    if (key == NULL || mac == NULL || (iov == NULL && n != 0))
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (iov[i].p == NULL && iov[i].len != 0)
            return PL_ERR_INVAL;
    }
    info = mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_128_ECB);
    if (info == NULL)
        return PL_ERR_UNSUPPORTED;

    mbedtls_cipher_init(&cipher);
    switch (mbedtls_cipher_setup(&cipher, info)) {
    case 0:
        break;
    case MBEDTLS_ERR_CIPHER_ALLOC_FAILED:
        rc = PL_ERR_NOMEM;
        goto out;
    default:
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    /* mbedtls_cipher_cmac_starts allocates the CMAC state: map that failure too. */
    switch (mbedtls_cipher_cmac_starts(&cipher, key, 128)) {
    case 0:
        break;
    case MBEDTLS_ERR_CIPHER_ALLOC_FAILED:
        rc = PL_ERR_NOMEM;
        goto out;
    default:
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (iov[i].len == 0)
            continue;
        if (mbedtls_cipher_cmac_update(&cipher, iov[i].p, iov[i].len) != 0) {
            rc = PL_ERR_CRYPTO;
            goto out;
        }
    }
    if (mbedtls_cipher_cmac_finish(&cipher, mac) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = PL_OK;
out:
    mbedtls_cipher_free(&cipher); /* zeroises the key schedule and the CMAC state */
    return rc;
}
