/* EC keys, ECDSA with plain r||s signatures, DER signature conversion and ECDH on
 * NIST P-256 and brainpoolP256r1, on mbedTLS 2.28.
 *  - GSMA SGP.22 v2.5 §2.6.5: ECDSA/ECKA on P-256 and brainpoolP256r1, SHA-256.
 *  - BSI TR-03111 §5.2.1: signature as the plain concatenation r || s (64 bytes).
 *  - SEC 1 v2 §4.1.3 / RFC 5480 §2.2: DER ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER }
 *    (ITU-T X.690 §8.3, §10: minimal two's complement, definite short lengths).
 *  - SEC 1 v2 §3.3.1 (ECDH primitive): Z = x-coordinate of d * Q.
 *  - RFC 6979: deterministic ECDSA nonces; the RNG only feeds mbedTLS's blinding.
 *  - SEC 1 v2 §3.2.2.1: public keys are checked to be valid points on the curve. */
#include <mbedtls/base64.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"

/* The mbedTLS key pair sits behind a pointer so that a const struct pl_eckey can
 * still hand mbedTLS the (formally non-const) group it needs for arithmetic. */
struct pl_eckey {
    enum pl_curve curve;
    bool has_priv;
    mbedtls_ecp_keypair *kp;
};

#define PL_EC_COORD_LEN 32u

/* ------------------------------------------------------------------------- */
/* Curves */

const char *pl_curve_name(enum pl_curve c)
{
    switch (c) {
    case PL_CURVE_P256:
        return "P-256";
    case PL_CURVE_BP256R1:
        return "brainpoolP256r1";
    case PL_CURVE_NONE:
        return "none";
    default:
        return "unknown";
    }
}

static bool pl_name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char ca = *a, cb = *b;

        if (ca >= 'A' && ca <= 'Z')
            ca = (char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (char)(cb - 'A' + 'a');
        if (ca != cb)
            return false;
        if (ca == '\0')
            return true;
    }
}

PL_MUST_CHECK int pl_curve_from_name(const char *s, enum pl_curve *out)
{
    static const char *const p256[] = {"p256", "P-256", "nist", "secp256r1", "prime256v1"};
    static const char *const bp256[] = {"bp256", "brainpoolP256r1", "brainpool", "bp256r1"};

    if (s == NULL || out == NULL)
        return PL_ERR_INVAL;
    for (size_t i = 0; i < sizeof(p256) / sizeof(p256[0]); i++) {
        if (pl_name_eq(s, p256[i])) {
            *out = PL_CURVE_P256;
            return PL_OK;
        }
    }
    for (size_t i = 0; i < sizeof(bp256) / sizeof(bp256[0]); i++) {
        if (pl_name_eq(s, bp256[i])) {
            *out = PL_CURVE_BP256R1;
            return PL_OK;
        }
    }
    return PL_ERR_UNSUPPORTED;
}

static mbedtls_ecp_group_id pl_grp_id(enum pl_curve c)
{
    switch (c) {
    case PL_CURVE_P256:
        return MBEDTLS_ECP_DP_SECP256R1;
    case PL_CURVE_BP256R1:
        return MBEDTLS_ECP_DP_BP256R1;
    case PL_CURVE_NONE:
    default:
        return MBEDTLS_ECP_DP_NONE;
    }
}

static enum pl_curve pl_curve_of(mbedtls_ecp_group_id id)
{
    switch (id) {
    case MBEDTLS_ECP_DP_SECP256R1:
        return PL_CURVE_P256;
    case MBEDTLS_ECP_DP_BP256R1:
        return PL_CURVE_BP256R1;
    default:
        return PL_CURVE_NONE;
    }
}

/* ------------------------------------------------------------------------- */
/* Glue */

static int pl_err_from_mbedtls(int ret)
{
    switch (ret) {
    case 0:
        return PL_OK;
    case MBEDTLS_ERR_MPI_ALLOC_FAILED:
    case MBEDTLS_ERR_ECP_ALLOC_FAILED:
    case MBEDTLS_ERR_PK_ALLOC_FAILED:
        return PL_ERR_NOMEM;
    case MBEDTLS_ERR_ECP_INVALID_KEY:
        return PL_ERR_BAD_KEY;
    case MBEDTLS_ERR_ECP_VERIFY_FAILED:
        return PL_ERR_BAD_SIGNATURE;
    default:
        return PL_ERR_CRYPTO;
    }
}

/* mbedTLS f_rng over the pl_rng seam. p points to a (mutable) copy of the caller's
 * struct pl_rng. */
static int pl_mbedtls_rng(void *p, unsigned char *buf, size_t len)
{
    struct pl_rng *rng = p;

    return rng->fill(rng->user, buf, len) == PL_OK ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

static int pl_eckey_alloc(enum pl_curve c, struct pl_eckey **out)
{
    struct pl_eckey *k;
    mbedtls_ecp_group_id id = pl_grp_id(c);
    int ret;

    if (id == MBEDTLS_ECP_DP_NONE)
        return PL_ERR_UNSUPPORTED;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return PL_ERR_NOMEM;
    k->kp = calloc(1, sizeof(*k->kp));
    if (k->kp == NULL) {
        free(k);
        return PL_ERR_NOMEM;
    }
    mbedtls_ecp_keypair_init(k->kp);
    k->curve = c;
    ret = mbedtls_ecp_group_load(&k->kp->grp, id);
    if (ret != 0) {
        pl_eckey_free(k);
        return pl_err_from_mbedtls(ret);
    }
    *out = k;
    return PL_OK;
}

void pl_eckey_free(struct pl_eckey *k)
{
    if (k == NULL)
        return;
    if (k->kp != NULL) {
        mbedtls_ecp_keypair_free(k->kp); /* zeroises d (mbedtls_mpi_free) */
        free(k->kp);
    }
    pl_memzero(k, sizeof(*k));
    free(k);
}

enum pl_curve pl_eckey_curve(const struct pl_eckey *k)
{
    return k != NULL ? k->curve : PL_CURVE_NONE;
}

bool pl_eckey_has_private(const struct pl_eckey *k)
{
    return k != NULL && k->has_priv;
}

/* Reads an uncompressed point 04||X||Y of the key's curve into pt and checks that
 * it is a valid public key there (on the curve, not the point at infinity). */
static int pl_read_point(const mbedtls_ecp_group *grp, const uint8_t pub[PL_EC_PUB_LEN],
                         mbedtls_ecp_point *pt)
{
    int ret;

    if (pub[0] != 0x04)
        return PL_ERR_BAD_KEY;
    ret = mbedtls_ecp_point_read_binary(grp, pt, pub, PL_EC_PUB_LEN);
    if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED)
        return PL_ERR_NOMEM;
    if (ret != 0)
        return PL_ERR_BAD_KEY;
    ret = mbedtls_ecp_check_pubkey(grp, pt);
    if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED)
        return PL_ERR_NOMEM;
    if (ret != 0)
        return PL_ERR_BAD_KEY;
    return PL_OK;
}

/* ------------------------------------------------------------------------- */
/* Key construction */

PL_MUST_CHECK int pl_eckey_generate(enum pl_curve c, const struct pl_rng *rng,
                                    struct pl_eckey **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eckey *k = NULL;
    struct pl_rng r;

    if (out == NULL || rng == NULL || rng->fill == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    r = *rng;
    rc = pl_eckey_alloc(c, &k);
    if (rc != PL_OK)
        goto out;
    rc = pl_err_from_mbedtls(
        mbedtls_ecp_gen_keypair(&k->kp->grp, &k->kp->d, &k->kp->Q, pl_mbedtls_rng, &r));
    if (rc != PL_OK)
        goto out;
    k->has_priv = true;
    *out = k;
    k = NULL;
    rc = PL_OK;
out:
    pl_eckey_free(k);
    return rc;
}

PL_MUST_CHECK int pl_eckey_from_private(enum pl_curve c, const uint8_t priv[PL_EC_PRIV_LEN],
                                        struct pl_eckey **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eckey *k = NULL;
    struct pl_rng sys = PL_RNG_SYSTEM;

    if (out == NULL || priv == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    rc = pl_eckey_alloc(c, &k);
    if (rc != PL_OK)
        goto out;
    rc = pl_err_from_mbedtls(mbedtls_mpi_read_binary(&k->kp->d, priv, PL_EC_PRIV_LEN));
    if (rc != PL_OK)
        goto out;
    /* d must lie in [1, n-1] (SEC 1 v2 §3.2.1). */
    if (mbedtls_ecp_check_privkey(&k->kp->grp, &k->kp->d) != 0) {
        rc = PL_ERR_BAD_KEY;
        goto out;
    }
    rc = pl_err_from_mbedtls(mbedtls_ecp_mul(&k->kp->grp, &k->kp->Q, &k->kp->d, &k->kp->grp.G,
                                             pl_mbedtls_rng, &sys));
    if (rc != PL_OK)
        goto out;
    k->has_priv = true;
    *out = k;
    k = NULL;
    rc = PL_OK;
out:
    pl_eckey_free(k);
    return rc;
}

PL_MUST_CHECK int pl_eckey_from_public(enum pl_curve c, const uint8_t pub[PL_EC_PUB_LEN],
                                       struct pl_eckey **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eckey *k = NULL;

    if (out == NULL || pub == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    rc = pl_eckey_alloc(c, &k);
    if (rc != PL_OK)
        goto out;
    rc = pl_read_point(&k->kp->grp, pub, &k->kp->Q);
    if (rc != PL_OK)
        goto out;
    *out = k;
    k = NULL;
    rc = PL_OK;
out:
    pl_eckey_free(k);
    return rc;
}

/* True if buf holds a PEM armour line anywhere (PEM files may carry an
 * "EC PARAMETERS" block or text before the key). */
static bool pl_looks_pem(const uint8_t *buf, size_t len)
{
    static const char marker[] = "-----BEGIN ";
    const size_t mlen = sizeof(marker) - 1;

    for (size_t i = 0; i + mlen <= len; i++) {
        if (memcmp(&buf[i], marker, mlen) == 0)
            return true;
    }
    return false;
}

PL_MUST_CHECK int pl_eckey_parse(const uint8_t *buf, size_t len, struct pl_eckey **out)
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_pk_context pk;
    uint8_t *copy = NULL;
    size_t copy_len = 0;
    const uint8_t *p = buf;
    size_t plen = len;
    bool priv = true;
    struct pl_eckey *k = NULL;
    const mbedtls_ecp_keypair *src;
    enum pl_curve c;
    int ret;

    if (out == NULL || buf == NULL || len == 0)
        return PL_ERR_INVAL;
    *out = NULL;
    mbedtls_pk_init(&pk);

    /* mbedTLS only takes PEM when the buffer is NUL-terminated and the NUL is
     * counted in the length. */
    if (buf[len - 1] != '\0' && pl_looks_pem(buf, len)) {
        copy_len = len + 1;
        copy = malloc(copy_len);
        if (copy == NULL) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        memcpy(copy, buf, len);
        copy[len] = '\0';
        p = copy;
        plen = copy_len;
    }

    ret = mbedtls_pk_parse_key(&pk, p, plen, NULL, 0);
    if (ret != 0) {
        mbedtls_pk_free(&pk);
        mbedtls_pk_init(&pk);
        priv = false;
        ret = mbedtls_pk_parse_public_key(&pk, p, plen);
    }
    if (ret == MBEDTLS_ERR_PK_ALLOC_FAILED) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (ret == MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (ret != 0) {
        rc = PL_ERR_BAD_KEY;
        goto out;
    }
    if (!mbedtls_pk_can_do(&pk, MBEDTLS_PK_ECKEY)) {
        rc = PL_ERR_UNSUPPORTED; /* RSA and friends */
        goto out;
    }
    src = mbedtls_pk_ec(pk);
    if (src == NULL) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    c = pl_curve_of(src->grp.id);
    if (c == PL_CURVE_NONE) {
        rc = PL_ERR_UNSUPPORTED; /* e.g. P-384, secp256k1 */
        goto out;
    }
    rc = pl_eckey_alloc(c, &k);
    if (rc != PL_OK)
        goto out;
    rc = pl_err_from_mbedtls(mbedtls_ecp_copy(&k->kp->Q, &src->Q));
    if (rc != PL_OK)
        goto out;
    if (mbedtls_ecp_check_pubkey(&k->kp->grp, &k->kp->Q) != 0) {
        rc = PL_ERR_BAD_KEY;
        goto out;
    }
    if (priv) {
        rc = pl_err_from_mbedtls(mbedtls_mpi_copy(&k->kp->d, &src->d));
        if (rc != PL_OK)
            goto out;
        /* A SEC1 key may carry a public key that does not belong to d. */
        if (mbedtls_ecp_check_privkey(&k->kp->grp, &k->kp->d) != 0 ||
            mbedtls_ecp_check_pub_priv(k->kp, k->kp) != 0) {
            rc = PL_ERR_BAD_KEY;
            goto out;
        }
        k->has_priv = true;
    }
    *out = k;
    k = NULL;
    rc = PL_OK;
out:
    pl_eckey_free(k);
    mbedtls_pk_free(&pk); /* zeroises the parsed private key */
    if (copy != NULL) {
        pl_memzero(copy, copy_len);
        free(copy);
    }
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Export */

PL_MUST_CHECK int pl_eckey_public(const struct pl_eckey *k, uint8_t out[PL_EC_PUB_LEN])
{
    size_t olen = 0;
    int ret;

    if (k == NULL || out == NULL)
        return PL_ERR_INVAL;
    ret = mbedtls_ecp_point_write_binary(&k->kp->grp, &k->kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED,
                                         &olen, out, PL_EC_PUB_LEN);
    if (ret != 0 || olen != PL_EC_PUB_LEN)
        return PL_ERR_CRYPTO;
    return PL_OK;
}

PL_MUST_CHECK int pl_eckey_private(const struct pl_eckey *k, uint8_t out[PL_EC_PRIV_LEN])
{
    if (k == NULL || out == NULL)
        return PL_ERR_INVAL;
    if (!k->has_priv)
        return PL_ERR_BAD_KEY;
    if (mbedtls_mpi_write_binary(&k->kp->d, out, PL_EC_PRIV_LEN) != 0)
        return PL_ERR_CRYPTO;
    return PL_OK;
}

/* Copies k into a fresh mbedTLS pk context (private part only when with_priv). */
static int pl_eckey_to_pk(const struct pl_eckey *k, bool with_priv, mbedtls_pk_context *pk)
{
    mbedtls_ecp_keypair *dst;
    int ret;

    ret = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (ret != 0)
        return pl_err_from_mbedtls(ret);
    dst = mbedtls_pk_ec(*pk);
    if (dst == NULL)
        return PL_ERR_INTERNAL;
    ret = mbedtls_ecp_group_load(&dst->grp, k->kp->grp.id);
    if (ret == 0)
        ret = mbedtls_ecp_copy(&dst->Q, &k->kp->Q);
    if (ret == 0 && with_priv)
        ret = mbedtls_mpi_copy(&dst->d, &k->kp->d);
    return pl_err_from_mbedtls(ret);
}

/* Writes der as PEM (RFC 7468: 64 base64 characters per line) with the given label,
 * NUL-terminated, into out. */
static int pl_pem_armour(const char *label, const uint8_t *der, size_t der_len, char *out,
                         size_t cap)
{
    size_t pos = 0;
    size_t lab = strlen(label);
    size_t n;

    /* "-----BEGIN " label "-----\n" */
    if (cap < 11 + lab + 6 + 1)
        return PL_ERR_OVERFLOW;
    memcpy(out, "-----BEGIN ", 11);
    memcpy(out + 11, label, lab);
    memcpy(out + 11 + lab, "-----\n", 6);
    pos = 11 + lab + 6;
    for (size_t off = 0; off < der_len; off += 48) {
        size_t chunk = der_len - off < 48 ? der_len - off : 48;
        size_t olen = 0;

        /* mbedtls_base64_encode writes the characters and a NUL. */
        if (mbedtls_base64_encode((unsigned char *)out + pos, cap - pos, &olen, der + off,
                                  chunk) != 0)
            return PL_ERR_OVERFLOW;
        pos += olen;
        if (pos + 1 >= cap)
            return PL_ERR_OVERFLOW;
        out[pos++] = '\n';
    }
    n = 9 + lab + 6; /* "-----END " label "-----\n" */
    if (pos + n + 1 > cap)
        return PL_ERR_OVERFLOW;
    memcpy(out + pos, "-----END ", 9);
    memcpy(out + pos + 9, label, lab);
    memcpy(out + pos + 9 + lab, "-----\n", 6);
    pos += n;
    out[pos] = '\0';
    return PL_OK;
}

/* Large enough for a SEC1 ECPrivateKey or a SubjectPublicKeyInfo of a 256-bit curve
 * (121 and 91 bytes for P-256; brainpool OIDs are a little longer). */
#define PL_EC_DER_MAX 160u

static int pl_eckey_write_pem_common(const struct pl_eckey *k, bool priv, char *out, size_t cap)
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_pk_context pk;
    uint8_t der[PL_EC_DER_MAX];
    int n;

    if (k == NULL || out == NULL || cap == 0)
        return PL_ERR_INVAL;
    if (priv && !k->has_priv)
        return PL_ERR_BAD_KEY;
    out[0] = '\0';
    mbedtls_pk_init(&pk);
    rc = pl_eckey_to_pk(k, priv, &pk);
    if (rc != PL_OK)
        goto out;
    /* Both writers fill the buffer from its end and return the length. */
    n = priv ? mbedtls_pk_write_key_der(&pk, der, sizeof(der))
             : mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
    if (n <= 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = pl_pem_armour(priv ? "EC PRIVATE KEY" : "PUBLIC KEY", der + sizeof(der) - (size_t)n,
                       (size_t)n, out, cap);
    if (rc != PL_OK)
        pl_memzero(out, cap);
out:
    pl_memzero(der, sizeof(der));
    mbedtls_pk_free(&pk);
    return rc;
}

PL_MUST_CHECK int pl_eckey_write_pem(const struct pl_eckey *k, char *out, size_t cap)
{
    return pl_eckey_write_pem_common(k, true, out, cap);
}

PL_MUST_CHECK int pl_eckey_write_pub_pem(const struct pl_eckey *k, char *out, size_t cap)
{
    return pl_eckey_write_pem_common(k, false, out, cap);
}

/* ------------------------------------------------------------------------- */
/* ECDSA */

PL_MUST_CHECK int pl_ecdsa_sign(const struct pl_eckey *k, const void *msg, size_t len,
                                const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN])
{
    struct pl_iov one = {msg, len};

    return pl_ecdsa_sign_iov(k, &one, 1, rng, sig);
}

PL_MUST_CHECK int pl_ecdsa_sign_iov(const struct pl_eckey *k, const struct pl_iov *iov, size_t n,
                                    const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN])
{
    int rc = PL_ERR_INTERNAL;
    uint8_t hash[PL_SHA256_LEN];
    mbedtls_mpi r, s;
    struct pl_rng rcopy;

    if (k == NULL || sig == NULL || rng == NULL || rng->fill == NULL)
        return PL_ERR_INVAL;
    if (!k->has_priv)
        return PL_ERR_BAD_KEY;
    rcopy = *rng;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    rc = pl_sha256_iov(iov, n, hash);
    if (rc != PL_OK)
        goto out;
#if defined(MBEDTLS_ECDSA_DETERMINISTIC)
    /* RFC 6979 nonce: a weak or repeating RNG cannot leak the key through k. */
    rc = pl_err_from_mbedtls(mbedtls_ecdsa_sign_det_ext(&k->kp->grp, &r, &s, &k->kp->d, hash,
                                                        sizeof(hash), MBEDTLS_MD_SHA256,
                                                        pl_mbedtls_rng, &rcopy));
#else
    rc = pl_err_from_mbedtls(mbedtls_ecdsa_sign(&k->kp->grp, &r, &s, &k->kp->d, hash,
                                                sizeof(hash), pl_mbedtls_rng, &rcopy));
#endif
    if (rc != PL_OK)
        goto out;
    if (mbedtls_mpi_write_binary(&r, sig, PL_EC_COORD_LEN) != 0 ||
        mbedtls_mpi_write_binary(&s, sig + PL_EC_COORD_LEN, PL_EC_COORD_LEN) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = PL_OK;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}

PL_MUST_CHECK int pl_ecdsa_verify(const struct pl_eckey *k, const void *msg, size_t len,
                                  const uint8_t sig[PL_ECDSA_SIG_LEN])
{
    struct pl_iov one = {msg, len};

    return pl_ecdsa_verify_iov(k, &one, 1, sig);
}

PL_MUST_CHECK int pl_ecdsa_verify_iov(const struct pl_eckey *k, const struct pl_iov *iov, size_t n,
                                      const uint8_t sig[PL_ECDSA_SIG_LEN])
{
    int rc = PL_ERR_INTERNAL;
    uint8_t hash[PL_SHA256_LEN];
    mbedtls_mpi r, s;
    int ret;

    if (k == NULL || sig == NULL)
        return PL_ERR_INVAL;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    rc = pl_sha256_iov(iov, n, hash);
    if (rc != PL_OK)
        goto out;
    if (mbedtls_mpi_read_binary(&r, sig, PL_EC_COORD_LEN) != 0 ||
        mbedtls_mpi_read_binary(&s, sig + PL_EC_COORD_LEN, PL_EC_COORD_LEN) != 0) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* mbedtls_ecdsa_verify rejects r or s outside [1, n-1] (SEC 1 v2 §4.1.4 step 1). */
    ret = mbedtls_ecdsa_verify(&k->kp->grp, hash, sizeof(hash), &k->kp->Q, &r, &s);
    switch (ret) {
    case 0:
        rc = PL_OK;
        break;
    case MBEDTLS_ERR_ECP_VERIFY_FAILED:
    case MBEDTLS_ERR_ECP_BAD_INPUT_DATA:
        rc = PL_ERR_BAD_SIGNATURE;
        break;
    default:
        rc = pl_err_from_mbedtls(ret);
        break;
    }
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* r||s <-> DER */

/* Appends INTEGER v (32-byte unsigned big-endian, non-zero) in minimal DER. */
static size_t pl_der_uint32b(const uint8_t v[PL_EC_COORD_LEN], uint8_t *out)
{
    size_t skip = 0;
    size_t len;
    size_t pos = 0;

    while (skip < PL_EC_COORD_LEN - 1 && v[skip] == 0)
        skip++;
    len = PL_EC_COORD_LEN - skip;
    out[pos++] = 0x02;
    /* A leading 1 bit would read as negative (X.690 §8.3.3): prepend 00. */
    out[pos++] = (uint8_t)(len + ((v[skip] & 0x80) ? 1u : 0u));
    if (v[skip] & 0x80)
        out[pos++] = 0x00;
    memcpy(out + pos, v + skip, len);
    return pos + len;
}

static bool pl_is_zero32(const uint8_t v[PL_EC_COORD_LEN])
{
    uint8_t acc = 0;

    for (size_t i = 0; i < PL_EC_COORD_LEN; i++)
        acc |= v[i];
    return acc == 0;
}

PL_MUST_CHECK int pl_ecdsa_sig_to_der(const uint8_t sig[PL_ECDSA_SIG_LEN], uint8_t *out,
                                      size_t cap, size_t *out_len)
{
    uint8_t tmp[PL_ECDSA_DER_MAX];
    size_t body;

    if (sig == NULL || out == NULL || out_len == NULL)
        return PL_ERR_INVAL;
    /* r = 0 or s = 0 is never a signature (and has no round trip through
     * pl_ecdsa_sig_from_der). */
    if (pl_is_zero32(sig) || pl_is_zero32(sig + PL_EC_COORD_LEN))
        return PL_ERR_INVAL;
    body = pl_der_uint32b(sig, tmp + 2);
    body += pl_der_uint32b(sig + PL_EC_COORD_LEN, tmp + 2 + body);
    tmp[0] = 0x30;
    tmp[1] = (uint8_t)body; /* at most 70: short form */
    if (body + 2 > cap)
        return PL_ERR_OVERFLOW;
    memcpy(out, tmp, body + 2);
    *out_len = body + 2;
    return PL_OK;
}

/* Reads a DER definite length (X.690 §8.1.3, §10.1: minimal). Lengths above max are
 * PL_ERR_DER_TOOBIG. */
static int pl_sig_der_len(struct pl_rd *r, size_t max, size_t *out)
{
    uint8_t b;
    size_t v = 0;
    unsigned n;

    if (pl_rd_u8(r, &b) != PL_OK)
        return PL_ERR_TRUNCATED;
    if (b < 0x80) {
        v = b;
    } else if (b == 0x80) {
        return PL_ERR_DER_INDEFINITE;
    } else {
        n = b & 0x7fu;
        if (n > 4)
            return PL_ERR_DER_TOOBIG;
        for (unsigned i = 0; i < n; i++) {
            if (pl_rd_u8(r, &b) != PL_OK)
                return PL_ERR_TRUNCATED;
            if (i == 0 && b == 0)
                return PL_ERR_DER_NONMINIMAL;
            v = (v << 8) | b;
        }
        if (v < 0x80)
            return PL_ERR_DER_NONMINIMAL;
    }
    if (v > max)
        return PL_ERR_DER_TOOBIG;
    *out = v;
    return PL_OK;
}

/* Reads INTEGER that must be a positive value of at most 32 bytes, minimally
 * encoded, into out (right-aligned, zero-padded). */
static int pl_sig_der_int(struct pl_rd *r, uint8_t out[PL_EC_COORD_LEN])
{
    struct pl_rd v;
    uint8_t tag, first, second;
    size_t len;
    int rc;

    if (pl_rd_u8(r, &tag) != PL_OK)
        return PL_ERR_TRUNCATED;
    if (tag != 0x02)
        return PL_ERR_DER_TAG;
    rc = pl_sig_der_len(r, PL_EC_COORD_LEN + 1, &len);
    if (rc != PL_OK)
        return rc;
    if (pl_rd_sub(r, len, &v) != PL_OK)
        return PL_ERR_DER_LENGTH;
    if (pl_rd_peek_u8(&v, &first) != PL_OK)
        return PL_ERR_DER_VALUE; /* X.690 §8.3.1: at least one octet */
    if (first & 0x80)
        return PL_ERR_DER_VALUE; /* negative */
    if (first == 0x00 && len > 1) {
        if (pl_rd_skip(&v, 1) != PL_OK || pl_rd_peek_u8(&v, &second) != PL_OK)
            return PL_ERR_INTERNAL;
        if (!(second & 0x80))
            return PL_ERR_DER_NONMINIMAL; /* X.690 §8.3.2 */
        len--;
    }
    if (len > PL_EC_COORD_LEN)
        return PL_ERR_DER_TOOBIG;
    memset(out, 0, PL_EC_COORD_LEN);
    if (pl_rd_copy(&v, out + PL_EC_COORD_LEN - len, len) != PL_OK)
        return PL_ERR_INTERNAL;
    if (pl_is_zero32(out))
        return PL_ERR_DER_VALUE; /* r, s >= 1 */
    return PL_OK;
}

/* Order of P-256, the larger of the two supported group orders: every valid r or s
 * is below it, whichever the curve. */
static const uint8_t pl_p256_n[PL_EC_COORD_LEN] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

PL_MUST_CHECK int pl_ecdsa_sig_from_der(const uint8_t *der, size_t len,
                                        uint8_t sig[PL_ECDSA_SIG_LEN])
{
    struct pl_rd r, seq;
    uint8_t tag;
    size_t slen;
    uint8_t tmp[PL_ECDSA_SIG_LEN];
    int rc;

    if ((der == NULL && len != 0) || sig == NULL)
        return PL_ERR_INVAL;
    pl_rd_init(&r, der, len);
    if (pl_rd_u8(&r, &tag) != PL_OK)
        return PL_ERR_TRUNCATED;
    if (tag != 0x30)
        return PL_ERR_DER_TAG;
    rc = pl_sig_der_len(&r, PL_ECDSA_DER_MAX - 2, &slen);
    if (rc != PL_OK)
        return rc;
    if (pl_rd_sub(&r, slen, &seq) != PL_OK)
        return PL_ERR_DER_LENGTH;
    if (!pl_rd_done(&r))
        return PL_ERR_DER_TRAILING;
    rc = pl_sig_der_int(&seq, tmp);
    if (rc != PL_OK)
        return rc;
    rc = pl_sig_der_int(&seq, tmp + PL_EC_COORD_LEN);
    if (rc != PL_OK)
        return rc;
    if (!pl_rd_done(&seq))
        return PL_ERR_DER_TRAILING;
    if (memcmp(tmp, pl_p256_n, PL_EC_COORD_LEN) >= 0 ||
        memcmp(tmp + PL_EC_COORD_LEN, pl_p256_n, PL_EC_COORD_LEN) >= 0)
        return PL_ERR_DER_VALUE;
    memcpy(sig, tmp, sizeof(tmp));
    return PL_OK;
}

PL_MUST_CHECK int pl_ecdsa_sig_from_der_curve(enum pl_curve c, const uint8_t *der, size_t len,
                                              uint8_t sig[PL_ECDSA_SIG_LEN])
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_ecp_group grp;
    mbedtls_mpi v;
    uint8_t tmp[PL_ECDSA_SIG_LEN];
    mbedtls_ecp_group_id id = pl_grp_id(c);

    if (id == MBEDTLS_ECP_DP_NONE)
        return PL_ERR_UNSUPPORTED;
    if (sig == NULL)
        return PL_ERR_INVAL;
    rc = pl_ecdsa_sig_from_der(der, len, tmp);
    if (rc != PL_OK)
        return rc;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&v);
    rc = pl_err_from_mbedtls(mbedtls_ecp_group_load(&grp, id));
    if (rc != PL_OK)
        goto out;
    for (size_t i = 0; i < 2; i++) {
        rc = pl_err_from_mbedtls(
            mbedtls_mpi_read_binary(&v, tmp + i * PL_EC_COORD_LEN, PL_EC_COORD_LEN));
        if (rc != PL_OK)
            goto out;
        if (mbedtls_mpi_cmp_mpi(&v, &grp.N) >= 0) {
            rc = PL_ERR_DER_VALUE;
            goto out;
        }
    }
    memcpy(sig, tmp, sizeof(tmp));
    rc = PL_OK;
out:
    mbedtls_mpi_free(&v);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* ECDH */

PL_MUST_CHECK int pl_ecdh(const struct pl_eckey *k, const uint8_t peer[PL_EC_PUB_LEN],
                          uint8_t z[PL_ECDH_Z_LEN])
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_ecp_point q;
    mbedtls_mpi zm;
    struct pl_rng sys = PL_RNG_SYSTEM;
    int ret;

    if (k == NULL || peer == NULL || z == NULL)
        return PL_ERR_INVAL;
    if (!k->has_priv)
        return PL_ERR_BAD_KEY;
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&zm);
    /* SEC 1 v2 §3.2.2.1: the peer key is validated on our curve, so a point of the
     * other curve (or off any curve) never reaches the scalar multiplication. */
    rc = pl_read_point(&k->kp->grp, peer, &q);
    if (rc != PL_OK)
        goto out;
    ret = mbedtls_ecdh_compute_shared(&k->kp->grp, &zm, &q, &k->kp->d, pl_mbedtls_rng, &sys);
    if (ret != 0) {
        rc = ret == MBEDTLS_ERR_ECP_BAD_INPUT_DATA ? PL_ERR_BAD_KEY : pl_err_from_mbedtls(ret);
        goto out;
    }
    if (mbedtls_mpi_write_binary(&zm, z, PL_ECDH_Z_LEN) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    rc = PL_OK;
out:
    mbedtls_mpi_free(&zm); /* zeroises Z */
    mbedtls_ecp_point_free(&q);
    return rc;
}
