/* `provline demo`: temporary, honest placeholder for the one-machine line demo
 * (ARCHITECTURE.md §7). It runs only what exists today: the test PKI generator and
 * X.509 chain verification (GSMA SGP.22 v2.5 §4.5.2, SGP.32 v1.2 §2.6), and says so.
 *
 *   provline demo [--dir DIR] [--keep]
 *     --dir DIR  make the PKIs in DIR/p256 and DIR/bp256 and keep them
 *     --keep     keep the temporary directory (default: removed at the end) */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/x509.h"
#include "provline/sim/pki.h"

static void remove_pki(const char *dir)
{
    char path[PL_PKI_PATH_MAX];
    static const char *const ext[] = {".key", ".crt", ".der"};
    for (int it = 0; it < PL_PKI_ITEMS; it++) {
        for (size_t e = 0; e < 3; e++) {
            int n = snprintf(path, sizeof(path), "%s/%s%s", dir,
                             pl_pki_item_name((enum pl_pki_item)it), ext[e]);
            if (n > 0 && (size_t)n < sizeof(path))
                (void)unlink(path);
        }
    }
    (void)rmdir(dir);
}

/* An EID from its first 30 decimal digits plus the two SGP.29 check digits
 * (ISO/IEC 7064 MOD 97-10: the 32-digit number mod 97 equals 1). */
static int make_eid(const char digits30[31], uint8_t eid[PL_PKI_EID_LEN])
{
    char text[33];
    unsigned r = 0;
    size_t n = 0;
    for (size_t i = 0; i < 30; i++) {
        if (digits30[i] < '0' || digits30[i] > '9')
            return PL_ERR_INVAL;
        r = (r * 10u + (unsigned)(digits30[i] - '0')) % 97u;
        text[i] = digits30[i];
    }
    r = (r * 100u) % 97u;
    unsigned check = 98u - r;
    text[30] = (char)('0' + check / 10u);
    text[31] = (char)('0' + check % 10u);
    text[32] = '\0';
    int rc = pl_hex_decode(text, eid, PL_PKI_EID_LEN, &n);
    return rc == PL_OK && n == PL_PKI_EID_LEN ? PL_OK : PL_ERR_INVAL;
}

/* One curve: make, load, verify every chain, mint two eUICCs and verify them, and
 * check that the other curve's CI does not accept them. */
static int demo_curve(const char *dir, enum pl_curve curve, const struct pl_cert *other_ci,
                      time_t now, struct pl_cert **ci_out)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_pki *pki = NULL;
    enum pl_pki_item bad = PL_PKI_CI;
    int rc;

    printf("[%s] creating test PKI in %s\n", pl_curve_name(curve), dir);
    if ((rc = pl_pki_init(dir, curve, &rng, now)) != PL_OK) {
        fprintf(stderr, "provline demo: pki init %s: %s\n", dir, pl_strerror(rc));
        return 1;
    }
    if ((rc = pl_pki_load(dir, &pki)) != PL_OK) {
        fprintf(stderr, "provline demo: pki load %s: %s\n", dir, pl_strerror(rc));
        return 1;
    }
    if ((rc = pl_pki_verify(pki, now, &bad)) != PL_OK) {
        fprintf(stderr, "provline demo: %s does not verify: %s\n", pl_pki_item_name(bad),
                pl_strerror(rc));
        pl_pki_free(pki);
        return 1;
    }
    printf("[%s] verified: CI->EUM, CI->SM-DPf (DPpb), CI->eIM, CI->EUM->eUICC (sample), "
           "TLS CA->Key Maker TLS, TLS CA->eIM TLS\n",
           pl_curve_name(curve));

    int status = 0;
    for (uint8_t k = 1; k <= 2 && status == 0; k++) {
        uint8_t eid[PL_PKI_EID_LEN];
        char digits[31];
        snprintf(digits, sizeof(digits), "89049032%020d%02u", 0, (unsigned)k);
        uint8_t der[PL_CERT_MAX_DER];
        size_t len = 0;
        struct pl_eckey *key = NULL;
        struct pl_cert *cert = NULL;
        char serial[64] = "";

        rc = make_eid(digits, eid);
        if (rc == PL_OK)
            rc = pl_pki_mint_euicc_with(pki, eid, &rng, now, &key, der, sizeof(der), &len);
        if (rc == PL_OK)
            rc = pl_cert_parse(der, len, &cert);
        const struct pl_cert *im[1] = {pl_pki_cert(pki, PL_PKI_EUM)};
        if (rc == PL_OK)
            rc = pl_cert_verify_chain(cert, im, 1, pl_pki_cert(pki, PL_PKI_CI), PL_CERT_ROLE_EUICC,
                                      now);
        if (rc == PL_OK)
            rc = pl_cert_subject_serial(cert, serial, sizeof(serial));
        if (rc != PL_OK) {
            fprintf(stderr, "provline demo: minting eUICC %u: %s\n", (unsigned)k, pl_strerror(rc));
            status = 1;
        } else {
            printf("[%s] minted eUICC EID %s (%zu-byte CERT.EUICC), CI->EUM->eUICC verified\n",
                   pl_curve_name(curve), serial, len);
            if (other_ci) {
                int neg = pl_cert_verify_chain(cert, im, 1, other_ci, PL_CERT_ROLE_EUICC, now);
                if (neg == PL_OK) {
                    fprintf(stderr, "provline demo: the other curve's CI accepted this eUICC\n");
                    status = 1;
                } else {
                    printf("[%s]   and the other PKI's CI rejects it (%s), as it must\n",
                           pl_curve_name(curve), pl_strerror(neg));
                }
            }
        }
        pl_cert_free(cert);
        pl_eckey_free(key);
    }
    if (status == 0 && ci_out) {
        const uint8_t *ci_der;
        size_t ci_len;
        pl_cert_der(pl_pki_cert(pki, PL_PKI_CI), &ci_der, &ci_len);
        if (pl_cert_parse(ci_der, ci_len, ci_out) != PL_OK)
            status = 1;
    }
    pl_pki_free(pki);
    return status;
}

int pl_cli_demo(int argc, char **argv)
{
    const char *dir = NULL;
    bool keep = false;
    char base[PL_PKI_PATH_MAX];
    char p256[PL_PKI_PATH_MAX], bp256[PL_PKI_PATH_MAX];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: provline demo [--dir DIR] [--keep]\n");
            return 0;
        } else {
            fprintf(stderr, "usage: provline demo [--dir DIR] [--keep]\n");
            return 2;
        }
    }
    bool temp = dir == NULL;
    if (temp) {
        const char *tmp = getenv("TMPDIR");
        int n = snprintf(base, sizeof(base), "%s/provline-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof(base) || !mkdtemp(base)) {
            fprintf(stderr, "provline demo: cannot create a temporary directory\n");
            return 1;
        }
    } else {
        int n = snprintf(base, sizeof(base), "%s", dir);
        if (n < 0 || (size_t)n >= sizeof(base)) {
            fprintf(stderr, "provline demo: path too long\n");
            return 2;
        }
        if (mkdir(base, 0700) != 0) {
            struct stat st;
            if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "provline demo: cannot create %s\n", base);
                return 1;
            }
        }
    }
    int n1 = snprintf(p256, sizeof(p256), "%s/p256", base);
    int n2 = snprintf(bp256, sizeof(bp256), "%s/bp256", base);
    if (n1 < 0 || (size_t)n1 >= sizeof(p256) || n2 < 0 || (size_t)n2 >= sizeof(bp256)) {
        fprintf(stderr, "provline demo: path too long\n");
        return 2;
    }

    printf("provline demo: placeholder: runs the parts of the line that exist today\n");
    time_t now = time(NULL);
    struct pl_cert *ci_p256 = NULL;
    int status = demo_curve(p256, PL_CURVE_P256, NULL, now, &ci_p256);
    if (status == 0)
        status = demo_curve(bp256, PL_CURVE_BP256R1, ci_p256, now, NULL);
    pl_cert_free(ci_p256);

    if (temp && !keep) {
        remove_pki(p256);
        remove_pki(bp256);
        (void)rmdir(base);
        printf("removed %s\n", base);
    } else {
        printf("PKIs kept in %s (TEST KEYS ONLY)\n", base);
    }
    if (status == 0)
        printf("provline demo: the full line (station, Key Maker, virtual devices) is not built "
               "yet; this demo ran what exists: test PKI generation and chain verification\n"
               "  (2 test PKIs generated, P-256 and brainpoolP256r1; every chain verified; "
               "4 eUICCs minted and verified; cross-curve rejection checked)\n");
    else
        fprintf(stderr, "provline demo: FAILED\n");
    return status;
}
