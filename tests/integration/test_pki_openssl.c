/* Integration: `provline pki init` (the real binary from PL_BIN_DIR) makes PKIs that an
 * independent verifier, `openssl verify -x509_strict`, accepts chain by chain, for
 * P-256 and brainpoolP256r1; and openssl rejects each chain under the other curve's
 * roots. Acceptance criterion of the test PKI (docs/decisions/0008-test-pki.md).
 * RFC 5280 §6.1 path validation as implemented by OpenSSL; GSMA SGP.22 v2.5 §4.5.2. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pl_test.h"

static char tmp[256];
static char bin[1024];

static void setup(void)
{
    const char *dir = getenv("PL_BIN_DIR");
    cr_assert(dir && *dir, "PL_BIN_DIR is not set (run through ctest)");
    snprintf(bin, sizeof(bin), "%s/provline", dir);
    cr_assert_eq(access(bin, X_OK), 0, "%s is not executable", bin);
    cr_assert_eq(pl_test_run("openssl version >/dev/null 2>&1", NULL, 0), 0, "openssl missing");
    cr_assert_eq(pl_test_tmpdir(tmp, sizeof(tmp)), 0);
}

static void teardown(void)
{
    pl_test_rmtree(tmp);
}

TestSuite(pki_openssl, .init = setup, .fini = teardown, .timeout = 120);

static char out[16384];

/* Runs a shell command (stderr folded into the output); returns its exit status. */
#if defined(__GNUC__) || defined(__clang__)
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof(cmd) - 8);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, " 2>&1");
    return pl_test_run(cmd, out, sizeof(out));
}

static const char *const curves[] = {"p256", "bp256"};
static const char *const items[] = {"ci",     "eum",          "dpf",    "eim", "euicc-sample",
                                    "tls-ca", "keymaker-tls", "eim-tls"};

static void init_pki(void)
{
    int rc = run("'%s' pki init '%s/pki'", bin, tmp);
    cr_assert_eq(rc, 0, "provline pki init failed:\n%s", out);
}

Test(pki_openssl, every_chain_verifies_with_openssl)
{
    init_pki();
    for (size_t c = 0; c < 2; c++) {
        char d[512];
        snprintf(d, sizeof(d), "%s/pki/%s", tmp, curves[c]);
        /* CI -> EUM, CI -> SM-DPf binding, CI -> eIM */
        static const char *const ci_leaves[] = {"eum", "dpf", "eim"};
        for (size_t i = 0; i < 3; i++) {
            int rc = run("openssl verify -x509_strict -CAfile '%s/ci.crt' '%s/%s.crt'", d, d,
                         ci_leaves[i]);
            cr_assert_eq(rc, 0, "%s/%s:\n%s", curves[c], ci_leaves[i], out);
            cr_assert(strstr(out, ": OK"), "%s", out);
        }
        /* CI -> EUM -> eUICC */
        int rc = run("openssl verify -x509_strict -CAfile '%s/ci.crt' -untrusted '%s/eum.crt' "
                     "'%s/euicc-sample.crt'",
                     d, d, d);
        cr_assert_eq(rc, 0, "%s euicc-sample:\n%s", curves[c], out);
        /* TLS CA -> servers, as TLS servers for localhost and 127.0.0.1 */
        static const char *const tls[] = {"keymaker-tls", "eim-tls"};
        for (size_t i = 0; i < 2; i++) {
            rc = run("openssl verify -x509_strict -purpose sslserver -verify_hostname localhost "
                     "-CAfile '%s/tls-ca.crt' '%s/%s.crt'",
                     d, d, tls[i]);
            cr_assert_eq(rc, 0, "%s/%s:\n%s", curves[c], tls[i], out);
            rc = run("openssl verify -x509_strict -purpose sslserver -verify_ip 127.0.0.1 "
                     "-CAfile '%s/tls-ca.crt' '%s/%s.crt'",
                     d, d, tls[i]);
            cr_assert_eq(rc, 0, "%s/%s by IP:\n%s", curves[c], tls[i], out);
            rc = run("openssl verify -purpose sslserver -verify_hostname example.com "
                     "-CAfile '%s/tls-ca.crt' '%s/%s.crt'",
                     d, d, tls[i]);
            cr_assert_neq(rc, 0, "%s/%s accepted for example.com", curves[c], tls[i]);
        }
        /* The roots verify as self-signed trust anchors. */
        rc = run("openssl verify -x509_strict -CAfile '%s/ci.crt' '%s/ci.crt'", d, d);
        cr_assert_eq(rc, 0, "%s ci:\n%s", curves[c], out);
        rc = run("openssl verify -x509_strict -CAfile '%s/tls-ca.crt' '%s/tls-ca.crt'", d, d);
        cr_assert_eq(rc, 0, "%s tls-ca:\n%s", curves[c], out);
    }
}

Test(pki_openssl, other_curves_roots_are_rejected)
{
    init_pki();
    for (size_t c = 0; c < 2; c++) {
        char d[512], o[512];
        snprintf(d, sizeof(d), "%s/pki/%s", tmp, curves[c]);
        snprintf(o, sizeof(o), "%s/pki/%s", tmp, curves[1 - c]);
        static const char *const ci_leaves[] = {"eum", "dpf", "eim"};
        for (size_t i = 0; i < 3; i++) {
            int rc = run("openssl verify -CAfile '%s/ci.crt' '%s/%s.crt'", o, d, ci_leaves[i]);
            cr_assert_neq(rc, 0, "%s/%s accepted under %s's CI:\n%s", curves[c], ci_leaves[i],
                          curves[1 - c], out);
        }
        int rc = run("openssl verify -CAfile '%s/ci.crt' -untrusted '%s/eum.crt' "
                     "'%s/euicc-sample.crt'",
                     o, d, d);
        cr_assert_neq(rc, 0, "%s eUICC accepted under the other CI:\n%s", curves[c], out);
        /* The other EUM as intermediate, with the right CI, is rejected too. */
        rc = run("openssl verify -CAfile '%s/ci.crt' -untrusted '%s/eum.crt' "
                 "'%s/euicc-sample.crt'",
                 d, o, d);
        cr_assert_neq(rc, 0, "%s eUICC accepted with the other EUM:\n%s", curves[c], out);
        rc = run("openssl verify -CAfile '%s/tls-ca.crt' '%s/eim-tls.crt'", o, d);
        cr_assert_neq(rc, 0, "%s eim-tls accepted under the other TLS CA:\n%s", curves[c], out);
        /* and an RSP root is no TLS root */
        rc = run("openssl verify -CAfile '%s/ci.crt' '%s/eim-tls.crt'", d, d);
        cr_assert_neq(rc, 0, "%s eim-tls accepted under the CI:\n%s", curves[c], out);
    }
}

Test(pki_openssl, files_and_keys_agree_with_openssl)
{
    init_pki();
    for (size_t c = 0; c < 2; c++) {
        char d[512];
        snprintf(d, sizeof(d), "%s/pki/%s", tmp, curves[c]);
        for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
            /* The private key is a valid EC key and matches the certificate... */
            int rc = run("openssl ec -check -noout -in '%s/%s.key'", d, items[i]);
            cr_assert_eq(rc, 0, "%s/%s.key:\n%s", curves[c], items[i], out);
            rc = run("test \"$(openssl pkey -in '%s/%s.key' -pubout)\" = "
                     "\"$(openssl x509 -in '%s/%s.crt' -noout -pubkey)\"",
                     d, items[i], d, items[i]);
            cr_assert_eq(rc, 0, "%s/%s: key does not match certificate\n%s", curves[c], items[i],
                         out);
            /* ...and the .der is the .crt in DER. */
            rc = run("test \"$(openssl x509 -inform DER -in '%s/%s.der' -outform PEM)\" = "
                     "\"$(openssl x509 -in '%s/%s.crt' -outform PEM)\"",
                     d, items[i], d, items[i]);
            cr_assert_eq(rc, 0, "%s/%s: .der and .crt differ\n%s", curves[c], items[i], out);
            /* private keys are 0600 */
            rc = run("test \"$(stat -c %%a '%s/%s.key')\" = 600", d, items[i]);
            cr_assert_eq(rc, 0, "%s/%s.key is not mode 0600", curves[c], items[i]);
        }
        /* RSP part on the requested curve, TLS part on P-256. */
        int rc = run("openssl x509 -in '%s/eum.crt' -noout -text", d);
        cr_assert_eq(rc, 0);
        cr_assert(strstr(out, c == 0 ? "prime256v1" : "brainpoolP256r1"), "%s", out);
        cr_assert(strstr(out, "2.23.146.1.2.1.2"), "EUM without id-rspRole-eum:\n%s", out);
        rc = run("openssl x509 -in '%s/euicc-sample.crt' -noout -text", d);
        cr_assert_eq(rc, 0);
        cr_assert(strstr(out, "2.23.146.1.2.1.1"), "eUICC without id-rspRole-euicc:\n%s", out);
        cr_assert(strstr(out, "Dec 31 23:59:59 9999 GMT"), "eUICC notAfter:\n%s", out);
        rc = run("openssl x509 -in '%s/eim-tls.crt' -noout -text", d);
        cr_assert_eq(rc, 0);
        cr_assert(strstr(out, "prime256v1"), "%s", out);
        cr_assert(strstr(out, "DNS:localhost, IP Address:127.0.0.1"), "%s", out);
        cr_assert(strstr(out, "TLS Web Server Authentication"), "%s", out);
    }
}

Test(pki_openssl, cli_show_curve_option_and_refusals)
{
    init_pki();
    int rc = run("'%s' pki show '%s/pki'", bin, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "chain ci -> eum -> euicc-sample as eUICC: OK"), "%s", out);
    cr_assert(strstr(out, "RSP part on brainpoolP256r1"), "%s", out);
    /* Never overwrites an existing PKI. */
    rc = run("'%s' pki init '%s/pki'", bin, tmp);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "already holds a PKI"), "%s", out);
    /* One curve only. */
    rc = run("'%s' pki init '%s/one' --curve bp256", bin, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    rc = run("test -f '%s/one/bp256/ci.crt' && test ! -e '%s/one/p256'", tmp, tmp);
    cr_assert_eq(rc, 0, "--curve bp256 layout");
    rc = run("'%s' pki init '%s/two' --curve ed25519", bin, tmp);
    cr_assert_eq(rc, 2, "%s", out);
    rc = run("'%s' pki show '%s/nothing'", bin, tmp);
    cr_assert_eq(rc, 1, "%s", out);
    rc = run("'%s' pki", bin);
    cr_assert_eq(rc, 2, "%s", out);
}
