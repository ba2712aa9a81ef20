/* `provline pki`: create and inspect the lab test PKI (sim/pki.h).
 * GSMA SGP.22 v2.5 §4.5.2 (RSP certificate profiles), SGP.32 v1.2 §2.6 (eIM);
 * decision record docs/decisions/0008-test-pki.md.
 *
 *   provline pki init DIR [--curve p256|bp256|both]   (default both)
 *       creates DIR/p256/ and/or DIR/bp256/, one complete PKI each; the layout is
 *       always DIR/<curve>/ so tools find a curve's PKI at the same place whichever
 *       subset was made.
 *   provline pki show DIR
 *       DIR is a PKI directory, or a directory holding p256/ and/or bp256/. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/x509.h"
#include "provline/sim/pki.h"

struct curve_dir {
    const char *sub;
    enum pl_curve curve;
};

static const struct curve_dir curve_dirs[] = {
    {"p256", PL_CURVE_P256},
    {"bp256", PL_CURVE_BP256R1},
};
#define N_CURVE_DIRS (sizeof(curve_dirs) / sizeof(curve_dirs[0]))

static void pki_usage(FILE *out)
{
    fprintf(out,
            "usage: provline pki init DIR [--curve p256|bp256|both]\n"
            "       provline pki show DIR\n"
            "\n"
            "init  creates a throw-away test PKI (CI, EUM, SM-DPf binding, eIM, a sample eUICC,\n"
            "      TLS CA, Key Maker and eIM TLS servers) in DIR/p256/ and/or DIR/bp256/.\n"
            "      TEST KEYS ONLY: never configure them as a production trust anchor.\n"
            "show  prints subjects, curves and validity, and verifies every chain.\n");
}

static int join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static void fmt_time(int64_t t, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "%lld", (long long)t);
}

static int pki_init(const char *dir, const char *curve_arg)
{
    bool want[N_CURVE_DIRS] = {true, true};
    char path[PL_PKI_PATH_MAX];

    if (curve_arg && strcmp(curve_arg, "both") != 0) {
        enum pl_curve c;
        if (pl_curve_from_name(curve_arg, &c) != PL_OK) {
            fprintf(stderr, "provline pki: unknown curve '%s' (p256, bp256 or both)\n", curve_arg);
            return 2;
        }
        for (size_t i = 0; i < N_CURVE_DIRS; i++)
            want[i] = curve_dirs[i].curve == c;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "provline pki: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    struct pl_rng rng = PL_RNG_SYSTEM;
    time_t now = time(NULL);
    for (size_t i = 0; i < N_CURVE_DIRS; i++) {
        if (!want[i])
            continue;
        if (join(path, sizeof(path), dir, curve_dirs[i].sub) != 0) {
            fprintf(stderr, "provline pki: path too long\n");
            return 1;
        }
        int rc = pl_pki_init(path, curve_dirs[i].curve, &rng, now);
        if (rc == PL_ERR_EXISTS) {
            fprintf(stderr, "provline pki: %s already holds a PKI; remove it first\n", path);
            return 1;
        }
        if (rc != PL_OK) {
            fprintf(stderr, "provline pki: creating %s failed: %s\n", path, pl_strerror(rc));
            return 1;
        }
        struct pl_pki *pki = NULL;
        rc = pl_pki_load(path, &pki);
        if (rc == PL_OK) {
            enum pl_pki_item bad = PL_PKI_CI;
            rc = pl_pki_verify(pki, now, &bad);
            if (rc != PL_OK)
                fprintf(stderr, "provline pki: %s/%s does not verify: %s\n", path,
                        pl_pki_item_name(bad), pl_strerror(rc));
        } else {
            fprintf(stderr, "provline pki: reading back %s failed: %s\n", path, pl_strerror(rc));
        }
        pl_pki_free(pki);
        if (rc != PL_OK)
            return 1;
        printf("%s: test PKI on %s (TLS part on P-256):", path, pl_curve_name(curve_dirs[i].curve));
        for (int it = 0; it < PL_PKI_ITEMS; it++)
            printf(" %s", pl_pki_item_name((enum pl_pki_item)it));
        printf("\n  each as NAME.key (PEM, mode 0600), NAME.crt (PEM), NAME.der; all chains verified\n");
    }
    printf("TEST KEYS ONLY: never configure them as a production trust anchor.\n");
    return 0;
}

static int show_one(const char *path, time_t now)
{
    struct pl_pki *pki = NULL;
    int rc = pl_pki_load(path, &pki);
    if (rc != PL_OK) {
        fprintf(stderr, "provline pki: cannot load %s: %s\n", path, pl_strerror(rc));
        return 1;
    }
    int status = 0;
    printf("%s: test PKI, RSP part on %s\n", path, pl_curve_name(pl_pki_curve(pki)));
    for (int it = 0; it < PL_PKI_ITEMS; it++) {
        enum pl_pki_item item = (enum pl_pki_item)it;
        const struct pl_cert *c = pl_pki_cert(pki, item);
        char subject[512], issuer[512], nb[40], na[40];
        int64_t t0, t1;
        if (pl_cert_subject(c, subject, sizeof(subject)) != PL_OK)
            snprintf(subject, sizeof(subject), "(too long)");
        if (pl_cert_issuer(c, issuer, sizeof(issuer)) != PL_OK)
            snprintf(issuer, sizeof(issuer), "(too long)");
        pl_cert_validity(c, &t0, &t1);
        fmt_time(t0, nb, sizeof(nb));
        fmt_time(t1, na, sizeof(na));

        enum pl_pki_item root;
        int inter;
        enum pl_cert_role role;
        char verdict[160];
        rc = pl_pki_item_chain(item, &root, &inter, &role);
        if (rc == PL_ERR_NOT_FOUND) {
            snprintf(verdict, sizeof(verdict), "trust anchor (self-signed root)");
        } else {
            const struct pl_cert *im[1];
            size_t n = 0;
            if (inter >= 0)
                im[n++] = pl_pki_cert(pki, (enum pl_pki_item)inter);
            rc = pl_cert_verify_chain(c, im, n, pl_pki_cert(pki, root), role, now);
            snprintf(verdict, sizeof(verdict), "chain %s -> %s%s%s as %s: %s",
                     pl_pki_item_name(root),
                     inter >= 0 ? pl_pki_item_name((enum pl_pki_item)inter) : "",
                     inter >= 0 ? " -> " : "", pl_pki_item_name(item), pl_cert_role_name(role),
                     rc == PL_OK ? "OK" : pl_strerror(rc));
            if (rc != PL_OK)
                status = 1;
        }
        printf("  %-13s %s\n", pl_pki_item_name(item), subject);
        printf("  %-13s issuer  %s\n", "", issuer);
        printf("  %-13s curve   %s, valid %s .. %s\n", "", pl_curve_name(pl_cert_curve(c)), nb, na);
        printf("  %-13s %s\n", "", verdict);
    }
    pl_pki_free(pki);
    return status;
}

static int pki_show(const char *dir)
{
    char path[PL_PKI_PATH_MAX];
    struct stat st;
    time_t now = time(NULL);

    if (join(path, sizeof(path), dir, "ci.crt") == 0 && stat(path, &st) == 0)
        return show_one(dir, now);
    int found = 0, status = 0;
    for (size_t i = 0; i < N_CURVE_DIRS; i++) {
        if (join(path, sizeof(path), dir, curve_dirs[i].sub) != 0 || stat(path, &st) != 0)
            continue;
        found++;
        if (show_one(path, now) != 0)
            status = 1;
    }
    if (!found) {
        fprintf(stderr, "provline pki: no PKI in %s (expected ci.crt, p256/ or bp256/)\n", dir);
        return 1;
    }
    return status;
}

int pl_cli_pki(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        pki_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "init") == 0) {
        const char *dir = NULL, *curve = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--curve") == 0 && i + 1 < argc) {
                curve = argv[++i];
            } else if (strncmp(argv[i], "--curve=", 8) == 0) {
                curve = argv[i] + 8;
            } else if (argv[i][0] != '-' && !dir) {
                dir = argv[i];
            } else {
                pki_usage(stderr);
                return 2;
            }
        }
        if (!dir) {
            pki_usage(stderr);
            return 2;
        }
        return pki_init(dir, curve);
    }
    if (strcmp(argv[1], "show") == 0) {
        if (argc != 3) {
            pki_usage(stderr);
            return 2;
        }
        return pki_show(argv[2]);
    }
    fprintf(stderr, "provline pki: unknown sub-command '%s'\n", argv[1]);
    pki_usage(stderr);
    return 2;
}
