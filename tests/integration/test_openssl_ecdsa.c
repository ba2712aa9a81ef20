/* Integration: ECDSA interoperability with the OpenSSL command line, both curves.
 * Our plain r||s signatures (BSI TR-03111), converted to DER (SEC 1 §4.1.3), with the
 * public key written as a SubjectPublicKeyInfo PEM, must pass
 *   openssl dgst -sha256 -verify pub.pem -signature sig.der msg.bin
 * and a tampered message must fail. The other way round, signatures made by openssl
 * with our SEC1 private-key PEM must verify with pl_ecdsa_verify after
 * pl_ecdsa_sig_from_der. GSMA SGP.22 v2.5 §2.6.5. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Runs openssl dgst -verify in dir; returns its exit status, output in out. */
static int openssl_verify(const char *dir, const char *msg, char *out, size_t cap)
{
    char cmd[1400];

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && openssl dgst -sha256 -verify pub.pem -signature sig.der %s 2>&1", dir,
             msg);
    return pl_test_run(cmd, out, cap);
}

static void one_curve(enum pl_curve c)
{
    char dir[256], out[1024], pem[1024];
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *k = NULL;

    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    cr_assert_eq(pl_eckey_generate(c, &rng, &k), PL_OK);
    cr_assert_eq(pl_eckey_write_pub_pem(k, pem, sizeof(pem)), PL_OK);
    write_file(dir, "pub.pem", pem, strlen(pem));
    cr_assert_eq(pl_eckey_write_pem(k, pem, sizeof(pem)), PL_OK);
    write_file(dir, "key.pem", pem, strlen(pem));

    /* Several messages, so that r and s of various sizes (with and without the 00
     * prefix in DER) are exercised. */
    for (int i = 0; i < 6; i++) {
        uint8_t msg[64], sig[PL_ECDSA_SIG_LEN], der[PL_ECDSA_DER_MAX];
        size_t mlen = 10 + (size_t)i * 9, dlen = 0;
        int st;

        cr_assert_eq(pl_rng_system_fill(NULL, msg, mlen), PL_OK);
        cr_assert_eq(pl_ecdsa_sign(k, msg, mlen, &rng, sig), PL_OK);
        cr_assert_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &dlen), PL_OK);
        write_file(dir, "msg.bin", msg, mlen);
        write_file(dir, "sig.der", der, dlen);
        msg[mlen / 2] ^= 0x01;
        write_file(dir, "tampered.bin", msg, mlen);

        st = openssl_verify(dir, "msg.bin", out, sizeof(out));
        cr_expect_eq(st, 0, "%s: openssl exit %d: %s", pl_curve_name(c), st, out);
        cr_expect_not_null(strstr(out, "Verified OK"), "%s: %s", pl_curve_name(c), out);

        st = openssl_verify(dir, "tampered.bin", out, sizeof(out));
        cr_expect_neq(st, 0, "%s: tampered message accepted: %s", pl_curve_name(c), out);
        cr_expect_null(strstr(out, "Verified OK"), "%s: %s", pl_curve_name(c), out);
    }

    /* openssl signs with our private-key PEM; we verify its DER signature. */
    {
        static const char text[] = "signed by openssl";
        char cmd[1400], path[600];
        size_t dlen = 0;
        uint8_t *der, sig[PL_ECDSA_SIG_LEN];
        int st;

        write_file(dir, "text.bin", text, sizeof(text) - 1);
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && openssl dgst -sha256 -sign key.pem -out osig.der text.bin 2>&1", dir);
        st = pl_test_run(cmd, out, sizeof(out));
        cr_assert_eq(st, 0, "openssl could not sign with our PEM: %s", out);
        snprintf(path, sizeof(path), "%s/osig.der", dir);
        der = pl_test_read_file(path, &dlen);
        cr_assert_not_null(der);
        cr_assert_eq(pl_ecdsa_sig_from_der_curve(c, der, dlen, sig), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(k, text, sizeof(text) - 1, sig), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(k, text, sizeof(text) - 2, sig), PL_ERR_BAD_SIGNATURE);
        free(der);
    }

    pl_eckey_free(k);
    pl_test_rmtree(dir);
}

Test(openssl_ecdsa, p256)
{
    one_curve(PL_CURVE_P256);
}

Test(openssl_ecdsa, brainpoolp256r1)
{
    one_curve(PL_CURVE_BP256R1);
}
