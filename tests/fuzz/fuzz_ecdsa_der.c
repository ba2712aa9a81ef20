/* Fuzz target: pl_ecdsa_sig_from_der (strict DER ECDSA-Sig-Value, SEC 1 v2 §4.1.3,
 * ITU-T X.690 §10) on arbitrary bytes. Invariants:
 *  - it succeeds or returns a negative pl_err, never touching memory outside the input;
 *  - on success the input is the one strict encoding of (r, s): converting back with
 *    pl_ecdsa_sig_to_der gives exactly the input bytes, and parsing that again gives
 *    the same r||s; the P-256 variant agrees, the brainpool one may only add a range
 *    error;
 *  - on failure the curve variants fail too;
 *  - read as a raw r||s, the first 64 bytes survive to_der -> from_der unchanged
 *    whenever both halves are in [1, n-1]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t n_p256[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

static int in_range(const uint8_t v[32])
{
    static const uint8_t zero[32];

    return memcmp(v, zero, 32) != 0 && memcmp(v, n_p256, 32) < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sig[PL_ECDSA_SIG_LEN], back[PL_ECDSA_SIG_LEN], der[PL_ECDSA_DER_MAX];
    size_t len = 0;
    int rc = pl_ecdsa_sig_from_der(data, size, sig);
    int rc_p = pl_ecdsa_sig_from_der_curve(PL_CURVE_P256, data, size, back);
    int rc_b = pl_ecdsa_sig_from_der_curve(PL_CURVE_BP256R1, data, size, back);

    if (rc > 0 || rc_p > 0 || rc_b > 0)
        abort();
    if (rc == PL_OK) {
        if (size > PL_ECDSA_DER_MAX)
            abort();
        if (pl_ecdsa_sig_to_der(sig, der, sizeof(der), &len) != PL_OK)
            abort();
        if (len != size || memcmp(der, data, size) != 0)
            abort(); /* accepted a non-canonical encoding */
        if (pl_ecdsa_sig_from_der(der, len, back) != PL_OK || memcmp(back, sig, sizeof(sig)) != 0)
            abort();
        if (rc_p != PL_OK)
            abort();
        if (rc_b != PL_OK && rc_b != PL_ERR_DER_VALUE)
            abort();
    } else if (rc_p == PL_OK || rc_b == PL_OK) {
        abort();
    }

    if (size >= PL_ECDSA_SIG_LEN && in_range(data) && in_range(data + 32)) {
        if (pl_ecdsa_sig_to_der(data, der, sizeof(der), &len) != PL_OK)
            abort();
        if (pl_ecdsa_sig_from_der(der, len, back) != PL_OK || memcmp(back, data, 64) != 0)
            abort();
    }
    return 0;
}
