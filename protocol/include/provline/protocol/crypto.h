/* Crypto core on mbedTLS 2.28: SHA-256, EC keys on NIST P-256 and brainpoolP256r1,
 * ECDSA with plain r||s signatures (BSI TR-03111, 64 bytes) and DER conversion,
 * ECDH (x-coordinate), and the RNG seam. GSMA SGP.22 v2.5 §2.6.5 (crypto algorithms). */
#ifndef PROVLINE_PROTOCOL_CRYPTO_H
#define PROVLINE_PROTOCOL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

#define PL_SHA256_LEN 32u
#define PL_EC_PUB_LEN 65u  /* uncompressed point 04 || X || Y */
#define PL_EC_PRIV_LEN 32u
#define PL_ECDSA_SIG_LEN 64u /* r || s */
#define PL_ECDSA_DER_MAX 72u
#define PL_ECDH_Z_LEN 32u

enum pl_curve {
    PL_CURVE_NONE = 0,
    PL_CURVE_P256 = 1,     /* NIST P-256 / secp256r1 */
    PL_CURVE_BP256R1 = 2,  /* brainpoolP256r1 */
};
const char *pl_curve_name(enum pl_curve c); /* "P-256", "brainpoolP256r1" */
/* Parses "p256"/"P-256"/"nist"/"secp256r1" and "bp256"/"brainpoolP256r1"/"brainpool". */
PL_MUST_CHECK int pl_curve_from_name(const char *s, enum pl_curve *out);

/* RNG seam (STYLE.md rule 9). fill returns PL_OK or a negative pl_err. */
struct pl_rng {
    int (*fill)(void *user, uint8_t *buf, size_t len);
    void *user;
};
/* Process-independent default: a CTR_DRBG seeded from the OS entropy source, one
 * per thread of use; never NULL. The library owns it (no global state is exposed). */
PL_MUST_CHECK int pl_rng_system_fill(void *user, uint8_t *buf, size_t len);
#define PL_RNG_SYSTEM ((struct pl_rng){pl_rng_system_fill, NULL})

/* SHA-256 over one buffer, or over several (a scatter list). */
PL_MUST_CHECK int pl_sha256(const void *data, size_t len, uint8_t out[PL_SHA256_LEN]);
struct pl_iov {
    const void *p;
    size_t len;
};
PL_MUST_CHECK int pl_sha256_iov(const struct pl_iov *iov, size_t n, uint8_t out[PL_SHA256_LEN]);

/* EC key pair or public key (opaque). Private parts are zeroised on free.
 * One key object must not be used by two threads at the same time: mbedTLS caches
 * precomputed tables in the key's group on first use. Give each thread its own. */
struct pl_eckey;
PL_MUST_CHECK int pl_eckey_generate(enum pl_curve c, const struct pl_rng *rng, struct pl_eckey **out);
PL_MUST_CHECK int pl_eckey_from_private(enum pl_curve c, const uint8_t priv[PL_EC_PRIV_LEN],
                                        struct pl_eckey **out);
PL_MUST_CHECK int pl_eckey_from_public(enum pl_curve c, const uint8_t pub[PL_EC_PUB_LEN],
                                       struct pl_eckey **out);
/* PEM or DER: SEC1 / PKCS#8 private keys, SubjectPublicKeyInfo public keys. */
PL_MUST_CHECK int pl_eckey_parse(const uint8_t *buf, size_t len, struct pl_eckey **out);
/* Writes a PEM (SEC1 "EC PRIVATE KEY") for a private key. out is NUL-terminated. */
PL_MUST_CHECK int pl_eckey_write_pem(const struct pl_eckey *k, char *out, size_t cap);
/* Writes the public key as PEM SubjectPublicKeyInfo ("PUBLIC KEY"), NUL-terminated. */
PL_MUST_CHECK int pl_eckey_write_pub_pem(const struct pl_eckey *k, char *out, size_t cap);
void pl_eckey_free(struct pl_eckey *k);
enum pl_curve pl_eckey_curve(const struct pl_eckey *k);
bool pl_eckey_has_private(const struct pl_eckey *k);
PL_MUST_CHECK int pl_eckey_public(const struct pl_eckey *k, uint8_t out[PL_EC_PUB_LEN]);
/* Exports the private scalar (for the software eUICC's own state file only). */
PL_MUST_CHECK int pl_eckey_private(const struct pl_eckey *k, uint8_t out[PL_EC_PRIV_LEN]);

/* ECDSA with SHA-256 over msg; signature as r||s (64 bytes). The nonce is
 * deterministic (RFC 6979); rng only feeds mbedTLS's side-channel blinding. */
PL_MUST_CHECK int pl_ecdsa_sign(const struct pl_eckey *k, const void *msg, size_t len,
                                const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN]);
PL_MUST_CHECK int pl_ecdsa_sign_iov(const struct pl_eckey *k, const struct pl_iov *iov, size_t n,
                                    const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN]);
/* PL_OK or PL_ERR_BAD_SIGNATURE. */
PL_MUST_CHECK int pl_ecdsa_verify(const struct pl_eckey *k, const void *msg, size_t len,
                                  const uint8_t sig[PL_ECDSA_SIG_LEN]);
PL_MUST_CHECK int pl_ecdsa_verify_iov(const struct pl_eckey *k, const struct pl_iov *iov, size_t n,
                                      const uint8_t sig[PL_ECDSA_SIG_LEN]);
/* r||s <-> DER ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }), strict DER.
 * to_der: PL_ERR_INVAL for r = 0 or s = 0, PL_ERR_OVERFLOW if cap is too small
 * (PL_ECDSA_DER_MAX always suffices).
 * from_der: exactly one SEQUENCE of two minimal, positive INTEGERs of at most 32
 * bytes, nothing after it; r and s in [1, n-1] for n the order of P-256 (the larger
 * of the two supported orders). Errors are the PL_ERR_DER_* values. */
PL_MUST_CHECK int pl_ecdsa_sig_to_der(const uint8_t sig[PL_ECDSA_SIG_LEN], uint8_t *out,
                                      size_t cap, size_t *out_len);
PL_MUST_CHECK int pl_ecdsa_sig_from_der(const uint8_t *der, size_t len,
                                        uint8_t sig[PL_ECDSA_SIG_LEN]);
/* As pl_ecdsa_sig_from_der, with r and s checked against the order of curve c. */
PL_MUST_CHECK int pl_ecdsa_sig_from_der_curve(enum pl_curve c, const uint8_t *der, size_t len,
                                              uint8_t sig[PL_ECDSA_SIG_LEN]);

/* ECDH: Z = x-coordinate of priv * peer (32 bytes). Peer must be on k's curve. */
PL_MUST_CHECK int pl_ecdh(const struct pl_eckey *k, const uint8_t peer[PL_EC_PUB_LEN],
                          uint8_t z[PL_ECDH_Z_LEN]);

#endif
