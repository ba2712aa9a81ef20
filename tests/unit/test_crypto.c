/* Unit tests: crypto.h and secret.h. SHA-256 (FIPS 180-2), ECDSA on P-256 and
 * brainpoolP256r1 (RFC 6979 A.2.5 KAT, round trips, tampering, wrong curves), r||s <->
 * DER (SEC 1 §4.1.3, X.690 strict cases), ECDH (NIST CAVS CDH, RFC 7027 A.1), keys in
 * PEM, the system RNG and the constant-time helpers. Vectors in tests/vectors/. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <threads.h>
#include <unistd.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/secret.h"
#include "vecfile.h"

static const enum pl_curve curves[] = {PL_CURVE_P256, PL_CURVE_BP256R1};

/* Order of P-256 (FIPS 186-4 D.1.2.3) and brainpoolP256r1 (RFC 5639 §3.4). */
static const uint8_t n_p256[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const uint8_t n_bp256[32] = {
    0xa9, 0xfb, 0x57, 0xdb, 0xa1, 0xee, 0xa9, 0xbc, 0x3e, 0x66, 0x0a, 0x90, 0x9d, 0x83, 0x8d, 0x71,
    0x8c, 0x39, 0x7a, 0xa3, 0xb5, 0x61, 0xa6, 0xf7, 0x90, 0x1e, 0x0e, 0x82, 0x97, 0x48, 0x56, 0xa7};

/* Deterministic test RNG: a running counter, so tests are reproducible. */
static int counter_fill(void *user, uint8_t *buf, size_t len)
{
    uint32_t *c = user;

    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((*c)++ * 2654435761u >> 24);
    return PL_OK;
}

static int failing_fill(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    (void)buf;
    (void)len;
    return PL_ERR_IO;
}

static struct pl_eckey *gen(enum pl_curve c)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *k = NULL;

    cr_assert_eq(pl_eckey_generate(c, &rng, &k), PL_OK);
    cr_assert_not_null(k);
    return k;
}

/* ---------------------------------------------------------------- SHA-256 */

Test(sha256, fips180_vectors)
{
    struct pl_vec_file *vf = pl_vec_load("sha256.txt");

    cr_assert_geq(vf->nrec, 3);
    for (size_t i = 0; i < vf->nrec; i++) {
        uint8_t msg[128], md[32], got[32];
        size_t n = pl_vec_hex(&vf->rec[i], "Msg", msg, sizeof(msg));

        pl_vec_hex_n(&vf->rec[i], "MD", md, 32);
        cr_assert_eq(pl_sha256(n ? msg : NULL, n, got), PL_OK);
        cr_expect_arr_eq(got, md, 32, "line %u", vf->rec[i].line);
        /* the same message one byte per iov */
        struct pl_iov iov[128];
        for (size_t j = 0; j < n; j++) {
            iov[j].p = msg + j;
            iov[j].len = 1;
        }
        cr_assert_eq(pl_sha256_iov(iov, n, got), PL_OK);
        cr_expect_arr_eq(got, md, 32);
    }
    pl_vec_free(vf);
}

Test(sha256, rejects_bad_arguments)
{
    uint8_t out[32];
    struct pl_iov bad = {NULL, 1};

    cr_expect_eq(pl_sha256(NULL, 1, out), PL_ERR_INVAL);
    cr_expect_eq(pl_sha256("a", 1, NULL), PL_ERR_INVAL);
    cr_expect_eq(pl_sha256_iov(NULL, 1, out), PL_ERR_INVAL);
    cr_expect_eq(pl_sha256_iov(&bad, 1, out), PL_ERR_INVAL);
}

/* ---------------------------------------------------------------- curves */

Test(curve, names)
{
    static const struct {
        const char *s;
        enum pl_curve c;
    } ok[] = {{"p256", PL_CURVE_P256},         {"P-256", PL_CURVE_P256},
              {"nist", PL_CURVE_P256},         {"secp256r1", PL_CURVE_P256},
              {"NIST", PL_CURVE_P256},         {"bp256", PL_CURVE_BP256R1},
              {"brainpoolP256r1", PL_CURVE_BP256R1}, {"brainpool", PL_CURVE_BP256R1},
              {"BRAINPOOLP256R1", PL_CURVE_BP256R1}};
    enum pl_curve c;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        c = PL_CURVE_NONE;
        cr_expect_eq(pl_curve_from_name(ok[i].s, &c), PL_OK, "%s", ok[i].s);
        cr_expect_eq(c, ok[i].c, "%s", ok[i].s);
    }
    cr_expect_neq(pl_curve_from_name("p384", &c), PL_OK);
    cr_expect_neq(pl_curve_from_name("", &c), PL_OK);
    cr_expect_neq(pl_curve_from_name("p256x", &c), PL_OK);
    cr_expect_neq(pl_curve_from_name("p25", &c), PL_OK);
    cr_expect_eq(pl_curve_from_name(NULL, &c), PL_ERR_INVAL);
    cr_expect_str_eq(pl_curve_name(PL_CURVE_P256), "P-256");
    cr_expect_str_eq(pl_curve_name(PL_CURVE_BP256R1), "brainpoolP256r1");
    cr_expect_not_null(pl_curve_name((enum pl_curve)77));
}

/* ---------------------------------------------------------------- RNG */

Test(rng, system_fills_and_differs)
{
    uint8_t a[64] = {0}, b[64] = {0}, zero[64] = {0};

    cr_assert_eq(pl_rng_system_fill(NULL, a, sizeof(a)), PL_OK);
    cr_assert_eq(pl_rng_system_fill(NULL, b, sizeof(b)), PL_OK);
    cr_expect_neq(memcmp(a, zero, 64), 0);
    cr_expect_neq(memcmp(a, b, 64), 0);
    cr_expect_eq(pl_rng_system_fill(NULL, NULL, 0), PL_OK);
    cr_expect_eq(pl_rng_system_fill(NULL, NULL, 1), PL_ERR_INVAL);
}

Test(rng, large_request_is_chunked)
{
    /* More than the CTR_DRBG per-request maximum (1024 bytes). */
    size_t n = 5000;
    uint8_t *buf = calloc(1, n);
    size_t zeros = 0;

    cr_assert_not_null(buf);
    cr_assert_eq(pl_rng_system_fill(NULL, buf, n), PL_OK);
    /* The tail beyond the first chunk is filled too (a 64-byte all-zero run has
     * probability 2^-512). */
    for (size_t i = n - 64; i < n; i++)
        zeros += buf[i] == 0;
    cr_expect_lt(zeros, 64);
    free(buf);
}

Test(rng, fork_child_gets_its_own_stream)
{
    uint8_t warm[16], mine[32], theirs[32];
    int fds[2];
    pid_t pid;
    int st = 0;

    /* Seed this thread's generator before forking, so the child inherits it. */
    cr_assert_eq(pl_rng_system_fill(NULL, warm, sizeof(warm)), PL_OK);
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        uint8_t out[32];

        close(fds[0]);
        if (pl_rng_system_fill(NULL, out, sizeof(out)) != PL_OK)
            _exit(2);
        if (write(fds[1], out, sizeof(out)) != (ssize_t)sizeof(out))
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    cr_assert_eq(pl_rng_system_fill(NULL, mine, sizeof(mine)), PL_OK);
    cr_assert_eq(read(fds[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_expect_neq(memcmp(mine, theirs, sizeof(mine)), 0, "parent and child drew the same bytes");
}

/* Threads draw from their own generators and use their own keys concurrently. */
#define N_THREADS 4
struct thread_job {
    enum pl_curve curve;
    uint8_t first[32];
    int failures;
};

static int thread_main(void *arg)
{
    struct thread_job *job = arg;
    struct pl_rng rng = PL_RNG_SYSTEM;

    if (pl_rng_system_fill(NULL, job->first, sizeof(job->first)) != PL_OK)
        job->failures++;
    for (int i = 0; i < 10; i++) {
        struct pl_eckey *a = NULL, *b = NULL;
        uint8_t sig[64], pa[65], pb[65], za[32], zb[32];

        if (pl_eckey_generate(job->curve, &rng, &a) != PL_OK ||
            pl_eckey_generate(job->curve, &rng, &b) != PL_OK ||
            pl_ecdsa_sign(a, job->first, 32, &rng, sig) != PL_OK ||
            pl_ecdsa_verify(a, job->first, 32, sig) != PL_OK || pl_eckey_public(a, pa) != PL_OK ||
            pl_eckey_public(b, pb) != PL_OK || pl_ecdh(a, pb, za) != PL_OK ||
            pl_ecdh(b, pa, zb) != PL_OK || memcmp(za, zb, 32) != 0)
            job->failures++;
        pl_eckey_free(a);
        pl_eckey_free(b);
    }
    return 0;
}

Test(rng, threads_use_their_own_generators)
{
    thrd_t t[N_THREADS];
    struct thread_job jobs[N_THREADS];

    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i].curve = curves[i % 2];
        cr_assert_eq(thrd_create(&t[i], thread_main, &jobs[i]), thrd_success);
    }
    for (int i = 0; i < N_THREADS; i++)
        cr_assert_eq(thrd_join(t[i], NULL), thrd_success);
    for (int i = 0; i < N_THREADS; i++) {
        cr_expect_eq(jobs[i].failures, 0, "thread %d", i);
        for (int j = 0; j < i; j++)
            cr_expect_neq(memcmp(jobs[i].first, jobs[j].first, 32), 0, "threads %d and %d", i, j);
    }
}

/* ---------------------------------------------------------------- secret.h */

Test(secret, memzero_and_ct_equal)
{
    uint8_t a[33], b[33];

    memset(a, 0x5a, sizeof(a));
    pl_memzero(a, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++)
        cr_expect_eq(a[i], 0);
    pl_memzero(NULL, 0);

    memset(a, 7, sizeof(a));
    memset(b, 7, sizeof(b));
    cr_expect(pl_ct_equal(a, b, sizeof(a)));
    cr_expect(pl_ct_equal(a, b, 0));
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x01;
        cr_expect_not(pl_ct_equal(a, b, sizeof(a)), "difference at %zu", i);
        b[i] ^= 0x81;
        cr_expect_not(pl_ct_equal(a, b, sizeof(a)), "difference at %zu", i);
        b[i] ^= 0x80;
    }
    cr_expect(pl_ct_equal(a, b, sizeof(a)));
}

/* ---------------------------------------------------------------- EC keys */

Test(eckey, rfc6979_p256_kat)
{
    struct pl_vec_file *vf = pl_vec_load("ecdsa_rfc6979_p256.txt");
    uint32_t ctr = 1;
    struct pl_rng rng = {counter_fill, &ctr};

    cr_assert_eq(vf->nrec, 2);
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        uint8_t x[32], pub[65], got_pub[65], msg[64], sig[64], got[64];
        size_t mlen;
        struct pl_eckey *k = NULL, *pk = NULL;

        pl_vec_hex_n(r, "x", x, 32);
        pub[0] = 0x04;
        pl_vec_hex_n(r, "Ux", pub + 1, 32);
        pl_vec_hex_n(r, "Uy", pub + 33, 32);
        mlen = pl_vec_hex(r, "Msg", msg, sizeof(msg));
        pl_vec_hex_n(r, "r", sig, 32);
        pl_vec_hex_n(r, "s", sig + 32, 32);

        cr_assert_eq(pl_eckey_from_private(PL_CURVE_P256, x, &k), PL_OK);
        cr_assert_eq(pl_eckey_public(k, got_pub), PL_OK);
        cr_expect_arr_eq(got_pub, pub, 65, "public key, line %u", r->line);
        /* RFC 6979 nonces: the signature is exactly the published one. */
        cr_assert_eq(pl_ecdsa_sign(k, msg, mlen, &rng, got), PL_OK);
        cr_expect_arr_eq(got, sig, 64, "signature, line %u", r->line);
        cr_assert_eq(pl_eckey_from_public(PL_CURVE_P256, pub, &pk), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, mlen, sig), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, mlen - 1, sig), PL_ERR_BAD_SIGNATURE);
        pl_eckey_free(k);
        pl_eckey_free(pk);
    }
    pl_vec_free(vf);
}

Test(eckey, private_export_round_trip)
{
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *k = gen(curves[i]), *k2 = NULL;
        uint8_t d[32], p1[65], p2[65];

        cr_expect_eq(pl_eckey_curve(k), curves[i]);
        cr_expect(pl_eckey_has_private(k));
        cr_assert_eq(pl_eckey_private(k, d), PL_OK);
        cr_assert_eq(pl_eckey_from_private(curves[i], d, &k2), PL_OK);
        cr_assert_eq(pl_eckey_public(k, p1), PL_OK);
        cr_assert_eq(pl_eckey_public(k2, p2), PL_OK);
        cr_expect_arr_eq(p1, p2, 65);
        cr_expect_eq(p1[0], 0x04);
        pl_memzero(d, sizeof(d));
        pl_eckey_free(k);
        pl_eckey_free(k2);
    }
}

Test(eckey, rejects_invalid_private_scalars)
{
    uint8_t d[32];
    struct pl_eckey *k = (struct pl_eckey *)(uintptr_t)1;

    memset(d, 0, 32);
    cr_expect_eq(pl_eckey_from_private(PL_CURVE_P256, d, &k), PL_ERR_BAD_KEY, "d = 0");
    cr_expect_null(k);
    cr_expect_eq(pl_eckey_from_private(PL_CURVE_P256, n_p256, &k), PL_ERR_BAD_KEY, "d = n");
    cr_expect_eq(pl_eckey_from_private(PL_CURVE_BP256R1, n_bp256, &k), PL_ERR_BAD_KEY, "d = n");
    memset(d, 0xff, 32);
    cr_expect_eq(pl_eckey_from_private(PL_CURVE_P256, d, &k), PL_ERR_BAD_KEY, "d > n");
    cr_expect_eq(pl_eckey_from_private(PL_CURVE_BP256R1, d, &k), PL_ERR_BAD_KEY, "d > n");
    d[0] = 1;
    cr_expect_eq(pl_eckey_from_private(PL_CURVE_NONE, d, &k), PL_ERR_UNSUPPORTED);
    cr_expect_eq(pl_eckey_from_private((enum pl_curve)9, d, &k), PL_ERR_UNSUPPORTED);
}

Test(eckey, rejects_invalid_public_points)
{
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *k = gen(curves[i]), *pk = NULL;
        uint8_t pub[65], bad[65];

        cr_assert_eq(pl_eckey_public(k, pub), PL_OK);
        cr_assert_eq(pl_eckey_from_public(curves[i], pub, &pk), PL_OK);
        cr_expect_not(pl_eckey_has_private(pk));
        pl_eckey_free(pk);
        pk = NULL;

        memcpy(bad, pub, 65);
        bad[64] ^= 0x01; /* y changed: off the curve */
        cr_expect_eq(pl_eckey_from_public(curves[i], bad, &pk), PL_ERR_BAD_KEY);
        cr_expect_null(pk);
        memcpy(bad, pub, 65);
        bad[0] = 0x02; /* compressed prefix is not accepted */
        cr_expect_eq(pl_eckey_from_public(curves[i], bad, &pk), PL_ERR_BAD_KEY);
        bad[0] = 0x00;
        cr_expect_eq(pl_eckey_from_public(curves[i], bad, &pk), PL_ERR_BAD_KEY);
        memset(bad, 0, 65);
        bad[0] = 0x04; /* (0, 0) */
        cr_expect_eq(pl_eckey_from_public(curves[i], bad, &pk), PL_ERR_BAD_KEY);
        memset(bad + 1, 0xff, 64); /* coordinates >= p */
        cr_expect_eq(pl_eckey_from_public(curves[i], bad, &pk), PL_ERR_BAD_KEY);
        /* the point of one curve is not a point of the other */
        cr_expect_eq(pl_eckey_from_public(curves[1 - i], pub, &pk), PL_ERR_BAD_KEY);
        pl_eckey_free(k);
    }
}

Test(eckey, public_only_key_cannot_sign_or_export)
{
    struct pl_eckey *k = gen(PL_CURVE_P256), *pk = NULL;
    uint8_t pub[65], d[32], sig[64], z[32];
    struct pl_rng rng = PL_RNG_SYSTEM;
    char pem[512];

    cr_assert_eq(pl_eckey_public(k, pub), PL_OK);
    cr_assert_eq(pl_eckey_from_public(PL_CURVE_P256, pub, &pk), PL_OK);
    cr_expect_eq(pl_eckey_private(pk, d), PL_ERR_BAD_KEY);
    cr_expect_eq(pl_ecdsa_sign(pk, "m", 1, &rng, sig), PL_ERR_BAD_KEY);
    cr_expect_eq(pl_ecdh(pk, pub, z), PL_ERR_BAD_KEY);
    cr_expect_eq(pl_eckey_write_pem(pk, pem, sizeof(pem)), PL_ERR_BAD_KEY);
    pl_eckey_free(k);
    pl_eckey_free(pk);
    pl_eckey_free(NULL);
    cr_expect_eq(pl_eckey_curve(NULL), PL_CURVE_NONE);
    cr_expect_not(pl_eckey_has_private(NULL));
}

Test(eckey, generate_with_failing_rng)
{
    struct pl_rng bad = {failing_fill, NULL};
    struct pl_eckey *k = (struct pl_eckey *)(uintptr_t)1;

    cr_expect_neq(pl_eckey_generate(PL_CURVE_P256, &bad, &k), PL_OK);
    cr_expect_null(k);
    cr_expect_eq(pl_eckey_generate(PL_CURVE_P256, NULL, &k), PL_ERR_INVAL);
    cr_expect_eq(pl_eckey_generate(PL_CURVE_NONE, &PL_RNG_SYSTEM, &k), PL_ERR_UNSUPPORTED);
}

Test(eckey, deterministic_rng_gives_same_key)
{
    uint32_t c1 = 5, c2 = 5;
    struct pl_rng r1 = {counter_fill, &c1}, r2 = {counter_fill, &c2};
    struct pl_eckey *a = NULL, *b = NULL;
    uint8_t pa[65], pb[65];

    cr_assert_eq(pl_eckey_generate(PL_CURVE_BP256R1, &r1, &a), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_BP256R1, &r2, &b), PL_OK);
    cr_assert_eq(pl_eckey_public(a, pa), PL_OK);
    cr_assert_eq(pl_eckey_public(b, pb), PL_OK);
    cr_expect_arr_eq(pa, pb, 65, "the RNG seam drives key generation");
    pl_eckey_free(a);
    pl_eckey_free(b);
}

/* ---------------------------------------------------------------- PEM */

static void check_same_key(const struct pl_eckey *a, const struct pl_eckey *b)
{
    uint8_t pa[65], pb[65];

    cr_assert_eq(pl_eckey_curve(a), pl_eckey_curve(b));
    cr_assert_eq(pl_eckey_public(a, pa), PL_OK);
    cr_assert_eq(pl_eckey_public(b, pb), PL_OK);
    cr_expect_arr_eq(pa, pb, 65);
}

Test(pem, private_and_public_round_trip)
{
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *k = gen(curves[i]), *k2 = NULL, *k3 = NULL;
        char pem[1024], pub[1024];
        uint8_t d1[32], d2[32];

        cr_assert_eq(pl_eckey_write_pem(k, pem, sizeof(pem)), PL_OK);
        cr_expect_not_null(strstr(pem, "-----BEGIN EC PRIVATE KEY-----\n"));
        cr_expect_not_null(strstr(pem, "-----END EC PRIVATE KEY-----\n"));
        /* PEM without its NUL, as read from a file */
        cr_assert_eq(pl_eckey_parse((const uint8_t *)pem, strlen(pem), &k2), PL_OK);
        cr_expect(pl_eckey_has_private(k2));
        check_same_key(k, k2);
        cr_assert_eq(pl_eckey_private(k, d1), PL_OK);
        cr_assert_eq(pl_eckey_private(k2, d2), PL_OK);
        cr_expect_arr_eq(d1, d2, 32);

        cr_assert_eq(pl_eckey_write_pub_pem(k, pub, sizeof(pub)), PL_OK);
        cr_expect_not_null(strstr(pub, "-----BEGIN PUBLIC KEY-----\n"));
        /* with the NUL counted, as mbedTLS likes it */
        cr_assert_eq(pl_eckey_parse((const uint8_t *)pub, strlen(pub) + 1, &k3), PL_OK);
        cr_expect_not(pl_eckey_has_private(k3));
        check_same_key(k, k3);

        /* too small a buffer */
        cr_expect_eq(pl_eckey_write_pem(k, pem, 40), PL_ERR_OVERFLOW);
        cr_expect_eq(pl_eckey_write_pub_pem(k, pub, 100), PL_ERR_OVERFLOW);
        pl_eckey_free(k);
        pl_eckey_free(k2);
        pl_eckey_free(k3);
    }
}

Test(pem, sgp26_test_keys)
{
    static const char *const pairs[][2] = {
        {"tests/data/sgp26/pysim-dppb/SK_S_SM_DPpb_ECDSA_NIST.pem",
         "tests/data/sgp26/pysim-dppb/PK_S_SM_DPpb_ECDSA_NIST.pem"},
        {"tests/data/sgp26/pysim-dppb/SK_S_SM_DPpb_ECDSA_BRP.pem",
         "tests/data/sgp26/pysim-dppb/PK_S_SM_DPpb_ECDSA_BRP.pem"},
    };
    static const enum pl_curve want[] = {PL_CURVE_P256, PL_CURVE_BP256R1};
    struct pl_rng rng = PL_RNG_SYSTEM;

    for (size_t i = 0; i < 2; i++) {
        char path[512];
        size_t slen = 0, plen = 0;
        uint8_t *sk_pem = pl_test_read_file(pl_test_src(path, sizeof(path), pairs[i][0]), &slen);
        uint8_t *pk_pem, sig[64];
        struct pl_eckey *sk = NULL, *pk = NULL;

        cr_assert_not_null(sk_pem, "%s", path);
        pk_pem = pl_test_read_file(pl_test_src(path, sizeof(path), pairs[i][1]), &plen);
        cr_assert_not_null(pk_pem, "%s", path);
        cr_assert_eq(pl_eckey_parse(sk_pem, slen, &sk), PL_OK, "%s", pairs[i][0]);
        cr_assert_eq(pl_eckey_parse(pk_pem, plen, &pk), PL_OK, "%s", pairs[i][1]);
        cr_expect_eq(pl_eckey_curve(sk), want[i]);
        cr_expect(pl_eckey_has_private(sk));
        cr_expect_not(pl_eckey_has_private(pk));
        check_same_key(sk, pk);
        cr_assert_eq(pl_ecdsa_sign(sk, "smdpSign", 8, &rng, sig), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(pk, "smdpSign", 8, sig), PL_OK);
        pl_eckey_free(sk);
        pl_eckey_free(pk);
        free(sk_pem);
        free(pk_pem);
    }
}

Test(pem, rejects_other_curves_and_garbage)
{
    static const char *const other[] = {"tests/vectors/ec_p384_key.pem",
                                        "tests/vectors/ec_secp256k1_key.pem"};
    struct pl_eckey *k = (struct pl_eckey *)(uintptr_t)1;
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const char broken[] = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";

    for (size_t i = 0; i < 2; i++) {
        char path[512];
        size_t len = 0;
        uint8_t *pem = pl_test_read_file(pl_test_src(path, sizeof(path), other[i]), &len);

        cr_assert_not_null(pem, "%s", path);
        cr_expect_eq(pl_eckey_parse(pem, len, &k), PL_ERR_UNSUPPORTED, "%s", other[i]);
        cr_expect_null(k);
        free(pem);
    }
    cr_expect_eq(pl_eckey_parse(junk, sizeof(junk), &k), PL_ERR_BAD_KEY);
    cr_expect_eq(pl_eckey_parse((const uint8_t *)broken, strlen(broken), &k), PL_ERR_BAD_KEY);
    cr_expect_eq(pl_eckey_parse(junk, 0, &k), PL_ERR_INVAL);
}

/* ---------------------------------------------------------------- ECDSA */

Test(ecdsa, round_trip_and_tamper_both_curves)
{
    static const uint8_t msg[] = "InitialiseSecureChannelRequest signed part";

    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *k = gen(curves[i]), *pk = NULL;
        struct pl_rng rng = PL_RNG_SYSTEM;
        uint8_t pub[65], sig[64], bad[64], m2[sizeof(msg)];

        cr_assert_eq(pl_eckey_public(k, pub), PL_OK);
        cr_assert_eq(pl_eckey_from_public(curves[i], pub, &pk), PL_OK);
        cr_assert_eq(pl_ecdsa_sign(k, msg, sizeof(msg), &rng, sig), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), sig), PL_OK);
        cr_expect_eq(pl_ecdsa_verify(k, msg, sizeof(msg), sig), PL_OK);

        /* message tampered, every byte */
        for (size_t j = 0; j < sizeof(msg); j++) {
            memcpy(m2, msg, sizeof(msg));
            m2[j] ^= 0x01;
            cr_expect_eq(pl_ecdsa_verify(pk, m2, sizeof(m2), sig), PL_ERR_BAD_SIGNATURE,
                         "message byte %zu", j);
        }
        /* r tampered, s tampered */
        memcpy(bad, sig, 64);
        bad[31] ^= 0x01;
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), bad), PL_ERR_BAD_SIGNATURE, "r");
        memcpy(bad, sig, 64);
        bad[32] ^= 0x40;
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), bad), PL_ERR_BAD_SIGNATURE, "s");
        /* r, s swapped */
        memcpy(bad, sig + 32, 32);
        memcpy(bad + 32, sig, 32);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), bad), PL_ERR_BAD_SIGNATURE, "swap");
        /* out of range: r = 0, s = 0, r = n */
        memcpy(bad, sig, 64);
        memset(bad, 0, 32);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), bad), PL_ERR_BAD_SIGNATURE, "r=0");
        memcpy(bad, sig, 64);
        memset(bad + 32, 0, 32);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), bad), PL_ERR_BAD_SIGNATURE, "s=0");
        memcpy(bad, sig, 64);
        memcpy(bad, curves[i] == PL_CURVE_P256 ? n_p256 : n_bp256, 32);
        cr_expect_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), bad), PL_ERR_BAD_SIGNATURE, "r=n");
        /* another key of the same curve */
        struct pl_eckey *other = gen(curves[i]);
        cr_expect_eq(pl_ecdsa_verify(other, msg, sizeof(msg), sig), PL_ERR_BAD_SIGNATURE);
        pl_eckey_free(other);
        pl_eckey_free(k);
        pl_eckey_free(pk);
    }
}

Test(ecdsa, wrong_curve_key_rejects)
{
    /* The same private scalar on the other curve is a different key: a signature made
     * on one curve never verifies on the other. */
    uint8_t d[32], sig[64];
    struct pl_eckey *kp = NULL, *kb = NULL;
    struct pl_rng rng = PL_RNG_SYSTEM;

    memset(d, 0x0a, 32);
    cr_assert_eq(pl_eckey_from_private(PL_CURVE_P256, d, &kp), PL_OK);
    cr_assert_eq(pl_eckey_from_private(PL_CURVE_BP256R1, d, &kb), PL_OK);
    cr_assert_eq(pl_ecdsa_sign(kp, "x", 1, &rng, sig), PL_OK);
    cr_expect_eq(pl_ecdsa_verify(kp, "x", 1, sig), PL_OK);
    cr_expect_eq(pl_ecdsa_verify(kb, "x", 1, sig), PL_ERR_BAD_SIGNATURE);
    cr_assert_eq(pl_ecdsa_sign(kb, "x", 1, &rng, sig), PL_OK);
    cr_expect_eq(pl_ecdsa_verify(kb, "x", 1, sig), PL_OK);
    cr_expect_eq(pl_ecdsa_verify(kp, "x", 1, sig), PL_ERR_BAD_SIGNATURE);
    pl_eckey_free(kp);
    pl_eckey_free(kb);
}

Test(ecdsa, iov_matches_concatenation)
{
    static const uint8_t a[] = {0x82, 0x01, 0x01}, b[] = {0x80, 0x02, 0x12, 0x34};
    uint8_t cat[7], s1[64], s2[64];
    struct pl_iov iov[2] = {{a, 3}, {b, 4}};
    struct pl_rng rng = PL_RNG_SYSTEM;

    memcpy(cat, a, 3);
    memcpy(cat + 3, b, 4);
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *k = gen(curves[i]);

        cr_assert_eq(pl_ecdsa_sign_iov(k, iov, 2, &rng, s1), PL_OK);
        cr_assert_eq(pl_ecdsa_sign(k, cat, sizeof(cat), &rng, s2), PL_OK);
        cr_expect_arr_eq(s1, s2, 64, "deterministic nonces: same message, same signature");
        cr_expect_eq(pl_ecdsa_verify(k, cat, sizeof(cat), s1), PL_OK);
        cr_expect_eq(pl_ecdsa_verify_iov(k, iov, 2, s2), PL_OK);
        cr_expect_eq(pl_ecdsa_verify_iov(k, iov, 1, s2), PL_ERR_BAD_SIGNATURE);
        pl_eckey_free(k);
    }
}

Test(ecdsa, signatures_interoperate_with_mbedtls_der)
{
    /* Our r||s, converted to DER, verifies with mbedTLS's own DER ECDSA reader. */
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *k = gen(curves[i]);
        struct pl_rng rng = PL_RNG_SYSTEM;
        uint8_t pub[65], sig[64], der[PL_ECDSA_DER_MAX], hash[32];
        size_t dlen = 0;
        mbedtls_ecdsa_context ctx;

        cr_assert_eq(pl_eckey_public(k, pub), PL_OK);
        cr_assert_eq(pl_ecdsa_sign(k, "abc", 3, &rng, sig), PL_OK);
        cr_assert_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &dlen), PL_OK);
        cr_assert_eq(mbedtls_sha256_ret((const unsigned char *)"abc", 3, hash, 0), 0);
        mbedtls_ecdsa_init(&ctx);
        cr_assert_eq(mbedtls_ecp_group_load(&ctx.grp, curves[i] == PL_CURVE_P256
                                                          ? MBEDTLS_ECP_DP_SECP256R1
                                                          : MBEDTLS_ECP_DP_BP256R1),
                     0);
        cr_assert_eq(mbedtls_ecp_point_read_binary(&ctx.grp, &ctx.Q, pub, 65), 0);
        cr_expect_eq(mbedtls_ecdsa_read_signature(&ctx, hash, 32, der, dlen), 0);
        hash[0] ^= 1;
        cr_expect_neq(mbedtls_ecdsa_read_signature(&ctx, hash, 32, der, dlen), 0);
        mbedtls_ecdsa_free(&ctx);
        pl_eckey_free(k);
    }
}

/* ---------------------------------------------------------------- DER sig */

static int der_err_from_name(const char *s)
{
    static const struct {
        const char *name;
        int err;
    } map[] = {
        {"ok", PL_OK},
        {"truncated", PL_ERR_TRUNCATED},
        {"trailing", PL_ERR_DER_TRAILING},
        {"tag", PL_ERR_DER_TAG},
        {"indefinite", PL_ERR_DER_INDEFINITE},
        {"nonminimal", PL_ERR_DER_NONMINIMAL},
        {"length", PL_ERR_DER_LENGTH},
        {"toobig", PL_ERR_DER_TOOBIG},
        {"value", PL_ERR_DER_VALUE},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, s) == 0)
            return map[i].err;
    cr_assert_fail("unknown expectation '%s'", s);
    return 1;
}

Test(ecdsa_der, vector_file)
{
    char path[512];
    FILE *f = fopen(pl_test_src(path, sizeof(path), "tests/vectors/ecdsa_sig_der.txt"), "r");
    char line[1024];
    int cases = 0, oks = 0, lineno = 0;

    cr_assert_not_null(f, "cannot open %s", path);
    while (fgets(line, sizeof(line), f)) {
        char name[32], *hex, *hash;
        int off = 0, want, got;
        uint8_t der[256], sig[64], back[PL_ECDSA_DER_MAX];
        size_t len = 0, blen = 0;

        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        cr_assert_eq(sscanf(line, "%31s %n", name, &off), 1);
        hex = line + off;
        hash = strchr(hex, '#');
        if (hash)
            *hash = 0;
        if (hex[0] == '-')
            hex[0] = ' '; /* "-" is the empty input */
        cr_assert_eq(pl_hex_decode_loose(hex, der, sizeof(der), &len), PL_OK, "line %d", lineno);
        want = der_err_from_name(name);
        memset(sig, 0xa5, sizeof(sig));
        got = pl_ecdsa_sig_from_der(len ? der : NULL, len, sig);
        cr_expect_eq(got, want, "line %d: got %d (%s), want %d (%s)", lineno, got,
                     pl_strerror(got), want, pl_strerror(want));
        if (want == PL_OK && got == PL_OK) {
            cr_assert_eq(pl_ecdsa_sig_to_der(sig, back, sizeof(back), &blen), PL_OK);
            cr_expect_eq(blen, len, "line %d: round trip length", lineno);
            cr_expect_arr_eq(back, der, len, "line %d: round trip bytes", lineno);
            oks++;
        }
        cases++;
    }
    fclose(f);
    cr_expect_geq(cases, 30);
    cr_expect_geq(oks, 4);
}

Test(ecdsa_der, round_trip_random_and_edge_values)
{
    uint8_t sig[64], back[64], der[PL_ECDSA_DER_MAX];
    size_t len = 0;

    for (int i = 0; i < 200; i++) {
        cr_assert_eq(pl_rng_system_fill(NULL, sig, 64), PL_OK);
        /* every fourth: leading zero bytes, to exercise stripping */
        if (i % 4 == 1)
            memset(sig, 0, 5);
        if (i % 4 == 2)
            memset(sig + 32, 0, 31);
        sig[0] &= 0x7f; /* keep r below the P-256 order */
        sig[32] &= 0x7f;
        sig[31] |= 1;
        sig[63] |= 1;
        cr_assert_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &len), PL_OK);
        cr_assert_leq(len, PL_ECDSA_DER_MAX);
        cr_assert_eq(pl_ecdsa_sig_from_der(der, len, back), PL_OK);
        cr_expect_arr_eq(back, sig, 64);
    }
    /* high bit set on both: 2 + 2*(2+33) = 72 bytes */
    memcpy(sig, n_p256, 32);
    memcpy(sig + 32, n_p256, 32);
    sig[31] -= 1;
    sig[63] -= 1;
    cr_assert_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &len), PL_OK);
    cr_expect_eq(len, 72);
    cr_expect_eq(pl_ecdsa_sig_to_der(sig, der, 71, &len), PL_ERR_OVERFLOW);
    /* zero r or s cannot be encoded as a signature */
    memset(sig, 0, 32);
    cr_expect_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &len), PL_ERR_INVAL);
}

Test(ecdsa_der, curve_order_check)
{
    /* r = n(brainpool): below n(P-256), so fine for P-256, out of range for brainpool. */
    uint8_t sig[64], der[PL_ECDSA_DER_MAX], out[64];
    size_t len = 0;

    memcpy(sig, n_bp256, 32);
    memset(sig + 32, 0, 32);
    sig[63] = 1;
    cr_assert_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &len), PL_OK);
    cr_expect_eq(pl_ecdsa_sig_from_der(der, len, out), PL_OK);
    cr_expect_eq(pl_ecdsa_sig_from_der_curve(PL_CURVE_P256, der, len, out), PL_OK);
    cr_expect_arr_eq(out, sig, 64);
    cr_expect_eq(pl_ecdsa_sig_from_der_curve(PL_CURVE_BP256R1, der, len, out), PL_ERR_DER_VALUE);
    sig[31] -= 1; /* n - 1 */
    cr_assert_eq(pl_ecdsa_sig_to_der(sig, der, sizeof(der), &len), PL_OK);
    cr_expect_eq(pl_ecdsa_sig_from_der_curve(PL_CURVE_BP256R1, der, len, out), PL_OK);
    cr_expect_eq(pl_ecdsa_sig_from_der_curve(PL_CURVE_NONE, der, len, out), PL_ERR_UNSUPPORTED);
}

/* ---------------------------------------------------------------- ECDH */

Test(ecdh, known_answers)
{
    struct pl_vec_file *vf = pl_vec_load("ecdh_kat.txt");
    size_t per_curve[3] = {0};

    cr_assert_geq(vf->nrec, 3);
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        uint8_t d[32], q[65], peer[65], z[32], got[65];
        enum pl_curve c = PL_CURVE_NONE;
        struct pl_eckey *k = NULL;

        cr_assert_eq(pl_curve_from_name(pl_vec_get(r, "curve"), &c), PL_OK);
        per_curve[c]++;
        pl_vec_hex_n(r, "d", d, 32);
        q[0] = peer[0] = 0x04;
        pl_vec_hex_n(r, "Qx", q + 1, 32);
        pl_vec_hex_n(r, "Qy", q + 33, 32);
        pl_vec_hex_n(r, "peerx", peer + 1, 32);
        pl_vec_hex_n(r, "peery", peer + 33, 32);
        pl_vec_hex_n(r, "Z", z, 32);
        cr_assert_eq(pl_eckey_from_private(c, d, &k), PL_OK);
        cr_assert_eq(pl_eckey_public(k, got), PL_OK);
        cr_expect_arr_eq(got, q, 65, "public key, line %u", r->line);
        cr_assert_eq(pl_ecdh(k, peer, got), PL_OK);
        cr_expect_arr_eq(got, z, 32, "Z, line %u", r->line);
        pl_eckey_free(k);
    }
    cr_expect_geq(per_curve[PL_CURVE_P256], 1);
    cr_expect_geq(per_curve[PL_CURVE_BP256R1], 1);
    pl_vec_free(vf);
}

Test(ecdh, agreement_both_curves)
{
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *a = gen(curves[i]), *b = gen(curves[i]);
        uint8_t pa[65], pb[65], za[32], zb[32], zero[32] = {0};

        cr_assert_eq(pl_eckey_public(a, pa), PL_OK);
        cr_assert_eq(pl_eckey_public(b, pb), PL_OK);
        cr_assert_eq(pl_ecdh(a, pb, za), PL_OK);
        cr_assert_eq(pl_ecdh(b, pa, zb), PL_OK);
        cr_expect_arr_eq(za, zb, 32, "%s", pl_curve_name(curves[i]));
        cr_expect_neq(memcmp(za, zero, 32), 0);
        pl_eckey_free(a);
        pl_eckey_free(b);
    }
}

Test(ecdh, rejects_invalid_and_foreign_points)
{
    for (size_t i = 0; i < 2; i++) {
        struct pl_eckey *a = gen(curves[i]), *other = gen(curves[1 - i]);
        uint8_t peer[65], z[32];

        cr_assert_eq(pl_eckey_public(other, peer), PL_OK);
        cr_expect_eq(pl_ecdh(a, peer, z), PL_ERR_BAD_KEY, "point of the other curve");
        cr_assert_eq(pl_eckey_public(a, peer), PL_OK);
        peer[40] ^= 0x10;
        cr_expect_eq(pl_ecdh(a, peer, z), PL_ERR_BAD_KEY, "off-curve point");
        memset(peer, 0, 65);
        peer[0] = 0x04;
        cr_expect_eq(pl_ecdh(a, peer, z), PL_ERR_BAD_KEY, "(0, 0)");
        peer[0] = 0x00;
        cr_expect_eq(pl_ecdh(a, peer, z), PL_ERR_BAD_KEY, "infinity encoding");
        cr_expect_eq(pl_ecdh(a, NULL, z), PL_ERR_INVAL);
        pl_eckey_free(a);
        pl_eckey_free(other);
    }
}
