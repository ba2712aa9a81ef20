/* Fuzz target: X.509 parsing and chain verification (protocol/x509.h; RFC 5280 §4.1,
 * GSMA SGP.22 v2.5 §4.5.2). Any input must be rejected with an error or handled
 * without touching memory outside it.
 *
 * Input: one certificate (DER or PEM), or "pair" mode: 0xFF, a 16-bit big-endian
 * length n, a certificate A of n bytes, then a certificate B; A is verified with B as
 * its issuer (as intermediate and as root), which reaches the linkage, signature and
 * EUM name-constraint code. Seeds: tests/fuzz/corpus/x509/ (SGP.26 certificates). */
#include <stdint.h>
#include <stdlib.h>

#include "provline/protocol/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW ((time_t)1735689600) /* 2025-01-01T00:00:00Z */

static const enum pl_cert_role roles[] = {PL_CERT_ROLE_EUM, PL_CERT_ROLE_EUICC,
                                          PL_CERT_ROLE_DPPB, PL_CERT_ROLE_EIM,
                                          PL_CERT_ROLE_TLS_SERVER};

static void exercise(const struct pl_cert *c)
{
    uint8_t buf[PL_CERT_KEYID_MAX], pub[PL_EC_PUB_LEN], eid[PL_CERT_EID_LEN];
    char text[512];
    size_t n;
    int64_t nb, na;
    const uint8_t *der;
    struct pl_eckey *k = NULL;

    pl_cert_der(c, &der, &n);
    pl_cert_validity(c, &nb, &na);
    (void)pl_cert_curve(c);
    (void)pl_cert_is_ca(c);
    int sink = pl_cert_subject_key_id(c, buf, sizeof(buf), &n);
    sink |= pl_cert_authority_key_id(c, buf, sizeof(buf), &n);
    sink |= pl_cert_subject(c, text, sizeof(text));
    sink |= pl_cert_issuer(c, text, sizeof(text));
    sink |= pl_cert_subject_serial(c, text, sizeof(text));
    sink |= pl_cert_eid(c, eid);
    sink |= pl_cert_public_point(c, pub);
    if (pl_cert_public_key(c, &k) == PL_OK)
        pl_eckey_free(k);
    (void)sink;
}

static void verify_pair(const struct pl_cert *a, const struct pl_cert *b)
{
    const struct pl_cert *im[1] = {b};
    int sink = 0;
    for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
        sink |= pl_cert_verify_chain(a, NULL, 0, b, roles[r], FUZZ_NOW);
        sink |= pl_cert_verify_chain(a, im, 1, b, roles[r], FUZZ_NOW);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_cert *a = NULL, *b = NULL;

    if (size >= 3 && data[0] == 0xFF) {
        size_t n = ((size_t)data[1] << 8) | data[2];
        if (n > size - 3)
            return 0;
        if (pl_cert_parse(data + 3, n, &a) == PL_OK
            && pl_cert_parse(data + 3 + n, size - 3 - n, &b) == PL_OK) {
            exercise(a);
            exercise(b);
            verify_pair(a, b);
            verify_pair(b, a);
        }
        pl_cert_free(a);
        pl_cert_free(b);
        return 0;
    }
    if (pl_cert_parse(data, size, &a) == PL_OK) {
        exercise(a);
        verify_pair(a, a);
    }
    pl_cert_free(a);
    return 0;
}
