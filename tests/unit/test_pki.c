/* Unit tests: the test PKI generator (sim/pki.h): generation for P-256 and
 * brainpoolP256r1, loading back, chain verification of every item with
 * pl_cert_verify_chain, eUICC minting (SGP.22 v2.5 §4.5.2.1.0.3 profile), file modes,
 * reproducibility with an injected RNG, and failure paths. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/x509.h"
#include "provline/sim/pki.h"

#define NOW ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DAY ((time_t)86400)

static char tmp[256];

static void setup(void)
{
    cr_assert_eq(pl_test_tmpdir(tmp, sizeof(tmp)), 0);
}

static void teardown(void)
{
    pl_test_rmtree(tmp);
}

TestSuite(pki, .init = setup, .fini = teardown);

static const char *sub(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp, name);
    return out;
}

/* A deterministic RNG: SHA-256(seed || counter) blocks. */
struct det_rng {
    uint8_t seed[8];
    uint64_t ctr;
};

static int det_fill(void *user, uint8_t *buf, size_t len)
{
    struct det_rng *d = user;
    while (len) {
        uint8_t block[PL_SHA256_LEN];
        uint8_t ctr[8];
        for (int i = 0; i < 8; i++)
            ctr[i] = (uint8_t)(d->ctr >> (8 * i));
        d->ctr++;
        struct pl_iov iov[2] = {{d->seed, sizeof(d->seed)}, {ctr, sizeof(ctr)}};
        if (pl_sha256_iov(iov, 2, block) != PL_OK)
            return PL_ERR_CRYPTO;
        size_t n = len < sizeof(block) ? len : sizeof(block);
        memcpy(buf, block, n);
        buf += n;
        len -= n;
    }
    return PL_OK;
}

static int failing_fill(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    (void)buf;
    (void)len;
    return PL_ERR_CRYPTO;
}

static void check_modes(const char *dir)
{
    char path[640];
    for (int it = 0; it < PL_PKI_ITEMS; it++) {
        const char *name = pl_pki_item_name((enum pl_pki_item)it);
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s.key", dir, name);
        cr_assert_eq(stat(path, &st), 0, "%s", path);
        cr_assert_eq(st.st_mode & 0777, 0600, "%s has mode %o", path, st.st_mode & 0777);
        snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
        cr_assert_eq(stat(path, &st), 0, "%s", path);
        cr_assert_eq(st.st_mode & 0022, 0, "%s writable by others", path);
        snprintf(path, sizeof(path), "%s/%s.der", dir, name);
        cr_assert_eq(stat(path, &st), 0, "%s", path);
    }
}

static void init_and_check(enum pl_curve curve, const char *name)
{
    char dir[512];
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_pki *pki = NULL;
    enum pl_pki_item bad = PL_PKI_CI;

    sub(dir, sizeof(dir), name);
    cr_assert_eq(pl_pki_init(dir, curve, &rng, NOW), PL_OK);
    check_modes(dir);
    cr_assert_eq(pl_pki_load(dir, &pki), PL_OK);
    cr_assert_eq(pl_pki_curve(pki), curve);
    cr_assert_str_eq(pl_pki_dir(pki), dir);
    cr_assert_eq(pl_pki_verify(pki, NOW, &bad), PL_OK, "item %s", pl_pki_item_name(bad));

    /* Every chain, one by one, with pl_cert_verify_chain. */
    for (int it = 0; it < PL_PKI_ITEMS; it++) {
        enum pl_pki_item item = (enum pl_pki_item)it, root;
        enum pl_cert_role role;
        int inter;
        const struct pl_cert *c = pl_pki_cert(pki, item);
        cr_assert(c);
        cr_assert(pl_pki_key(pki, item));
        bool tls = item == PL_PKI_TLS_CA || item == PL_PKI_KEYMAKER_TLS || item == PL_PKI_EIM_TLS;
        cr_assert_eq(pl_cert_curve(c), tls ? PL_CURVE_P256 : curve, "%s", pl_pki_item_name(item));
        cr_assert_eq(pl_eckey_curve(pl_pki_key(pki, item)), pl_cert_curve(c));
        int rc = pl_pki_item_chain(item, &root, &inter, &role);
        if (rc == PL_ERR_NOT_FOUND) {
            cr_assert(pl_cert_is_ca(c));
            continue;
        }
        cr_assert_eq(rc, PL_OK);
        const struct pl_cert *im[1];
        size_t n = 0;
        if (inter >= 0)
            im[n++] = pl_pki_cert(pki, (enum pl_pki_item)inter);
        cr_assert_eq(pl_cert_verify_chain(c, im, n, pl_pki_cert(pki, root), role, NOW), PL_OK,
                     "%s", pl_pki_item_name(item));
        /* ...and not under the other root. */
        enum pl_pki_item other = root == PL_PKI_CI ? PL_PKI_TLS_CA : PL_PKI_CI;
        cr_assert_neq(pl_cert_verify_chain(c, im, n, pl_pki_cert(pki, other), role, NOW), PL_OK,
                      "%s", pl_pki_item_name(item));
    }

    /* Validity: notBefore = now - 1 day; DPf/eIM/TLS leaves last 10 years, CAs 20. */
    cr_assert_eq(pl_pki_verify(pki, NOW - DAY, &bad), PL_OK);
    cr_assert_eq(pl_pki_verify(pki, NOW - DAY - 1, &bad), PL_ERR_CERT_VALIDITY);
    cr_assert_eq(pl_pki_verify(pki, NOW + 11 * 365 * DAY, &bad), PL_ERR_CERT_VALIDITY);
    cr_assert_eq(bad, PL_PKI_DPF);

    /* The sample eUICC carries the documented EID and the SGP.22 "no expiry". */
    char serial[64];
    int64_t nb, na;
    cr_assert_eq(pl_cert_subject_serial(pl_pki_cert(pki, PL_PKI_EUICC_SAMPLE), serial,
                                        sizeof(serial)),
                 PL_OK);
    cr_assert_str_eq(serial, PL_PKI_SAMPLE_EID);
    pl_cert_validity(pl_pki_cert(pki, PL_PKI_EUICC_SAMPLE), &nb, &na);
    cr_assert_eq(nb, (int64_t)(NOW - DAY));
    cr_assert_eq(na, PL_PKI_EUICC_NOT_AFTER);

    /* Paths. */
    char path[512], want[600];
    cr_assert_eq(pl_pki_path(pki, PL_PKI_EUM, PL_PKI_FILE_KEY, path, sizeof(path)), PL_OK);
    snprintf(want, sizeof(want), "%s/eum.key", dir);
    cr_assert_str_eq(path, want);
    cr_assert_eq(pl_pki_path(pki, PL_PKI_EIM_TLS, PL_PKI_FILE_CRT, path, sizeof(path)), PL_OK);
    snprintf(want, sizeof(want), "%s/eim-tls.crt", dir);
    cr_assert_str_eq(path, want);
    cr_assert_eq(pl_pki_path(pki, PL_PKI_CI, PL_PKI_FILE_DER, path, 8), PL_ERR_OVERFLOW);
    pl_pki_free(pki);

    /* A second init into the same directory refuses to overwrite. */
    cr_assert_eq(pl_pki_init(dir, curve, &rng, NOW), PL_ERR_EXISTS);
}

Test(pki, init_load_verify_p256)
{
    init_and_check(PL_CURVE_P256, "p256");
}

Test(pki, init_load_verify_brainpool)
{
    init_and_check(PL_CURVE_BP256R1, "bp256");
}

static void mint_and_check(const char *dir, struct pl_pki *pki, const char *eid_hex)
{
    uint8_t eid[PL_PKI_EID_LEN], got[PL_CERT_EID_LEN];
    size_t n = 0, len = 0;
    uint8_t der[PL_CERT_MAX_DER];
    struct pl_eckey *key = NULL;
    struct pl_cert *cert = NULL;
    struct pl_rng rng = PL_RNG_SYSTEM;

    cr_assert_eq(pl_hex_decode(eid_hex, eid, sizeof(eid), &n), PL_OK);
    cr_assert_eq(pl_pki_mint_euicc(dir, pl_pki_curve(pki), eid, &rng, NOW, &key, der,
                                   sizeof(der), &len),
                 PL_OK);
    cr_assert(key);
    cr_assert_eq(pl_cert_parse(der, len, &cert), PL_OK);
    const struct pl_cert *im[1] = {pl_pki_cert(pki, PL_PKI_EUM)};
    cr_assert_eq(pl_cert_verify_chain(cert, im, 1, pl_pki_cert(pki, PL_PKI_CI), PL_CERT_ROLE_EUICC,
                                      NOW),
                 PL_OK);
    cr_assert_eq(pl_cert_eid(cert, got), PL_OK);
    cr_assert_arr_eq(got, eid, sizeof(eid));
    int64_t nb, na;
    pl_cert_validity(cert, &nb, &na);
    cr_assert_eq(na, PL_PKI_EUICC_NOT_AFTER);
    /* The returned key is the certified one: it signs, the certificate's key verifies. */
    uint8_t pub_k[PL_EC_PUB_LEN], pub_c[PL_EC_PUB_LEN], sig[PL_ECDSA_SIG_LEN];
    cr_assert_eq(pl_eckey_curve(key), pl_pki_curve(pki));
    cr_assert_eq(pl_eckey_public(key, pub_k), PL_OK);
    cr_assert_eq(pl_cert_public_point(cert, pub_c), PL_OK);
    cr_assert_arr_eq(pub_k, pub_c, sizeof(pub_k));
    struct pl_eckey *pk = NULL;
    cr_assert_eq(pl_cert_public_key(cert, &pk), PL_OK);
    cr_assert_eq(pl_ecdsa_sign(key, eid, sizeof(eid), &rng, sig), PL_OK);
    cr_assert_eq(pl_ecdsa_verify(pk, eid, sizeof(eid), sig), PL_OK);
    pl_eckey_free(pk);
    pl_eckey_free(key);
    pl_cert_free(cert);
}

Test(pki, mint_euiccs_both_curves)
{
    static const char *const names[] = {"p256", "bp256"};
    static const enum pl_curve curves[] = {PL_CURVE_P256, PL_CURVE_BP256R1};
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_pki *pki[2] = {NULL, NULL};
    char dir[2][512];

    for (int i = 0; i < 2; i++) {
        sub(dir[i], sizeof(dir[i]), names[i]);
        cr_assert_eq(pl_pki_init(dir[i], curves[i], &rng, NOW), PL_OK);
        cr_assert_eq(pl_pki_load(dir[i], &pki[i]), PL_OK);
        mint_and_check(dir[i], pki[i], "89049032000000000000000000001234");
        mint_and_check(dir[i], pki[i], "89049032000000000000000000005678");
    }

    /* Two mints give two different keys; an eUICC from one PKI fails under the other. */
    uint8_t eid[PL_PKI_EID_LEN] = {0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
    uint8_t d1[PL_CERT_MAX_DER], d2[PL_CERT_MAX_DER], p1[PL_EC_PUB_LEN], p2[PL_EC_PUB_LEN];
    size_t l1 = 0, l2 = 0;
    struct pl_eckey *k1 = NULL, *k2 = NULL;
    struct pl_cert *c1 = NULL;
    cr_assert_eq(pl_pki_mint_euicc_with(pki[0], eid, &rng, NOW, &k1, d1, sizeof(d1), &l1), PL_OK);
    cr_assert_eq(pl_pki_mint_euicc_with(pki[0], eid, &rng, NOW, &k2, d2, sizeof(d2), &l2), PL_OK);
    cr_assert_eq(pl_eckey_public(k1, p1), PL_OK);
    cr_assert_eq(pl_eckey_public(k2, p2), PL_OK);
    cr_assert(memcmp(p1, p2, sizeof(p1)) != 0);
    cr_assert_eq(pl_cert_parse(d1, l1, &c1), PL_OK);
    const struct pl_cert *im_other[1] = {pl_pki_cert(pki[1], PL_PKI_EUM)};
    const struct pl_cert *im_own[1] = {pl_pki_cert(pki[0], PL_PKI_EUM)};
    cr_assert_eq(pl_cert_verify_chain(c1, im_other, 1, pl_pki_cert(pki[1], PL_PKI_CI),
                                      PL_CERT_ROLE_EUICC, NOW),
                 PL_ERR_CERT_CHAIN);
    cr_assert_eq(pl_cert_verify_chain(c1, im_own, 1, pl_pki_cert(pki[1], PL_PKI_CI),
                                      PL_CERT_ROLE_EUICC, NOW),
                 PL_ERR_CERT_CHAIN);

    /* Wrong curve for the directory, too small an output buffer. */
    struct pl_eckey *k3 = NULL;
    size_t l3 = 0;
    cr_assert_eq(pl_pki_mint_euicc(dir[0], PL_CURVE_BP256R1, eid, &rng, NOW, &k3, d1, sizeof(d1),
                                   &l3),
                 PL_ERR_INVAL);
    cr_assert_null(k3);
    cr_assert_eq(pl_pki_mint_euicc_with(pki[0], eid, &rng, NOW, &k3, d1, 100, &l3),
                 PL_ERR_OVERFLOW);
    cr_assert_null(k3);
    cr_assert_eq(l3, 0);

    pl_cert_free(c1);
    pl_eckey_free(k1);
    pl_eckey_free(k2);
    pl_pki_free(pki[0]);
    pl_pki_free(pki[1]);
}

Test(pki, reproducible_with_injected_rng)
{
    char a[512], b[512], c[512], pa[600], pb[600], pc[600];
    struct det_rng s1 = {{1, 2, 3, 4, 5, 6, 7, 8}, 0}, s2 = s1, s3 = {{9, 9, 9, 9, 9, 9, 9, 9}, 0};
    struct pl_rng r1 = {det_fill, &s1}, r2 = {det_fill, &s2}, r3 = {det_fill, &s3};

    cr_assert_eq(pl_pki_init(sub(a, sizeof(a), "a"), PL_CURVE_P256, &r1, NOW), PL_OK);
    cr_assert_eq(pl_pki_init(sub(b, sizeof(b), "b"), PL_CURVE_P256, &r2, NOW), PL_OK);
    cr_assert_eq(pl_pki_init(sub(c, sizeof(c), "c"), PL_CURVE_P256, &r3, NOW), PL_OK);
    for (int it = 0; it < PL_PKI_ITEMS; it++) {
        const char *name = pl_pki_item_name((enum pl_pki_item)it);
        size_t la = 0, lb = 0, lc = 0;
        snprintf(pa, sizeof(pa), "%s/%s.der", a, name);
        snprintf(pb, sizeof(pb), "%s/%s.der", b, name);
        snprintf(pc, sizeof(pc), "%s/%s.der", c, name);
        uint8_t *da = pl_test_read_file(pa, &la), *db = pl_test_read_file(pb, &lb),
                *dc = pl_test_read_file(pc, &lc);
        cr_assert(da && db && dc);
        cr_assert_eq(la, lb, "%s", name);
        cr_assert_arr_eq(da, db, la, "%s differs under the same RNG", name);
        cr_assert(la != lc || memcmp(da, dc, la) != 0, "%s equal under another RNG", name);
        free(da);
        free(db);
        free(dc);
    }
}

Test(pki, failures_leave_nothing_behind)
{
    char dir[512], path[600];
    struct pl_rng bad = {failing_fill, NULL};
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct stat st;

    sub(dir, sizeof(dir), "failed");
    cr_assert_eq(pl_pki_init(dir, PL_CURVE_P256, &bad, NOW), PL_ERR_CRYPTO);
    snprintf(path, sizeof(path), "%s/ci.key", dir);
    cr_assert_neq(stat(path, &st), 0);
    /* ...so a retry with a working RNG succeeds. */
    cr_assert_eq(pl_pki_init(dir, PL_CURVE_P256, &rng, NOW), PL_OK);

    /* Bad arguments. */
    cr_assert_eq(pl_pki_init(NULL, PL_CURVE_P256, &rng, NOW), PL_ERR_INVAL);
    cr_assert_eq(pl_pki_init(sub(dir, sizeof(dir), "x"), PL_CURVE_NONE, &rng, NOW), PL_ERR_INVAL);
    cr_assert_eq(pl_pki_init(sub(dir, sizeof(dir), "x"), PL_CURVE_P256, NULL, NOW), PL_ERR_INVAL);
    cr_assert_eq(pl_pki_init(sub(dir, sizeof(dir), "x"), PL_CURVE_P256, &rng, 0), PL_ERR_INVAL);
    /* The parent directory must exist. */
    cr_assert_eq(pl_pki_init(sub(dir, sizeof(dir), "no/such/dir"), PL_CURVE_P256, &rng, NOW),
                 PL_ERR_IO);
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    uint8_t *buf = pl_test_read_file(from, &len);
    cr_assert(buf, "%s", from);
    FILE *f = fopen(to, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

Test(pki, load_rejects_broken_directories)
{
    char dir[512], a[600], b[600];
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_pki *pki = NULL;

    cr_assert_eq(pl_pki_load(sub(dir, sizeof(dir), "none"), &pki), PL_ERR_NOT_FOUND);
    cr_assert_null(pki);
    cr_assert_eq(pl_pki_init(sub(dir, sizeof(dir), "pki"), PL_CURVE_P256, &rng, NOW), PL_OK);

    /* A key that does not belong to its certificate. */
    snprintf(a, sizeof(a), "%s/dpf.key", dir);
    snprintf(b, sizeof(b), "%s/eum.key", dir);
    char saved[600];
    snprintf(saved, sizeof(saved), "%s/eum.key.saved", dir);
    copy_file(b, saved);
    copy_file(a, b);
    cr_assert_eq(pl_pki_load(dir, &pki), PL_ERR_BAD_KEY);
    cr_assert_null(pki);
    copy_file(saved, b);
    cr_assert_eq(pl_pki_load(dir, &pki), PL_OK);
    pl_pki_free(pki);
    pki = NULL;

    /* .crt and .der of one item disagree. */
    snprintf(a, sizeof(a), "%s/eim.der", dir);
    snprintf(b, sizeof(b), "%s/dpf.der", dir);
    snprintf(saved, sizeof(saved), "%s/dpf.der.saved", dir);
    copy_file(b, saved);
    copy_file(a, b);
    cr_assert_eq(pl_pki_load(dir, &pki), PL_ERR_CERT);
    cr_assert_null(pki);
    copy_file(saved, b);

    /* A missing file. */
    cr_assert_eq(unlink(a), 0);
    cr_assert_eq(pl_pki_load(dir, &pki), PL_ERR_NOT_FOUND);
    cr_assert_null(pki);
    pl_pki_free(NULL);
}
