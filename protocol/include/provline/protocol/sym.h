/* Symmetric primitives: ANSI X9.63 KDF (SHA-256), AES-128-CBC without padding,
 * AES-128 single block (ECB), AES-CMAC (NIST SP 800-38B, RFC 4493). */
#ifndef PROVLINE_PROTOCOL_SYM_H
#define PROVLINE_PROTOCOL_SYM_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

#define PL_AES_KEY_LEN 16u
#define PL_AES_BLOCK 16u

/* ANSI X9.63 KDF, SHA-256: K_i = SHA-256(Z || ctr32be || sharedInfo), ctr from 1. */
PL_MUST_CHECK int pl_x963_kdf_sha256(const uint8_t *z, size_t zlen, const uint8_t *info,
                                     size_t info_len, uint8_t *out, size_t out_len);
/* len must be a multiple of 16 (PL_ERR_INVAL otherwise); in and out may alias. */
PL_MUST_CHECK int pl_aes128_cbc_encrypt(const uint8_t key[16], const uint8_t iv[16],
                                        const uint8_t *in, size_t len, uint8_t *out);
PL_MUST_CHECK int pl_aes128_cbc_decrypt(const uint8_t key[16], const uint8_t iv[16],
                                        const uint8_t *in, size_t len, uint8_t *out);
PL_MUST_CHECK int pl_aes128_ecb_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);
/* AES-CMAC over the concatenation of n buffers. */
struct pl_iov;
PL_MUST_CHECK int pl_aes_cmac(const uint8_t key[16], const struct pl_iov *iov, size_t n,
                              uint8_t mac[16]);

#endif
