/* Benchmark: provline's crypto wrappers against the same work done with raw mbedTLS
 * 2.28 calls. ECDSA sign/verify (SHA-256, r||s) and ECDH on P-256 and brainpoolP256r1
 * (GSMA SGP.22 v2.5 §2.6.5), and BSP segment wrap (SGP.22 §2.6.4, AES-128-CBC + CMAC,
 * 1007-byte plaintext = a full 1020-byte segment). The figure that matters is the ratio
 * ours/raw: the wrappers should cost nothing measurable (~1.0x). Absolute rates are
 * mbedTLS's (DEPENDENCIES.md §4 lists reference numbers).
 *
 * Each raw baseline does the same job as the wrapper, the way a careful direct caller
 * would: hash the message, sign with RFC 6979 nonces and blinding from a CTR_DRBG,
 * write r||s; read r||s and verify; parse and validate the untrusted peer point before
 * ECDH; derive the ICV, encrypt, CMAC over MCV || header || ciphertext.
 *
 * Usage: bench_crypto [seconds per measurement, default 0.5]. Prints one line per
 * operation; not part of CTest. For stable numbers pin it: taskset -c 0 bench_crypto. */
#define _POSIX_C_SOURCE 200809L

#include <mbedtls/aes.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/wr.h"

#define ROUNDS 5 /* ours and raw alternate; the best round of each counts (noise only slows) */

static double g_seconds = 0.5;
static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "bench_crypto: %s failed\n", what);
    exit(1);
}

/* One operation under test: returns 0 on success. */
typedef int (*op_fn)(void *ctx);

/* Runs op for about g_seconds; returns operations per second. */
static double rate(op_fn op, void *ctx)
{
    double t0 = now(), t;
    long n = 0;

    do {
        if (op(ctx) != 0)
            die("operation");
        n++;
        t = now();
    } while (t - t0 < g_seconds);
    return (double)n / (t - t0);
}

static void compare(const char *name, op_fn ours, void *octx, op_fn raw, void *rctx)
{
    double best_o = 0, best_r = 0;

    for (int i = 0; i < ROUNDS; i++) {
        double o = rate(ours, octx), r = rate(raw, rctx);

        best_o = o > best_o ? o : best_o;
        best_r = r > best_r ? r : best_r;
    }
    printf("%-34s %12.1f %12.1f %8.3fx\n", name, best_o, best_r, best_o / best_r);
    fflush(stdout);
}

/* ------------------------------------------------------------------ ECDSA / ECDH */

static const uint8_t g_msg[] = "82 01 01 | 80 10 transactionId | A6 .. | 5F49 otPK.DP | 5F49 otPK.EUICC";

struct ec_ctx {
    enum pl_curve curve;
    struct pl_eckey *key;      /* ours: signer / ECDH private key */
    uint8_t sig[64];           /* a valid r||s over g_msg */
    uint8_t peer[65];          /* a peer public key */
    mbedtls_ecp_keypair raw;   /* the same key for the raw calls */
};

static int ours_sign(void *p)
{
    struct ec_ctx *c = p;
    struct pl_rng rng = PL_RNG_SYSTEM;
    uint8_t sig[64];

    return pl_ecdsa_sign(c->key, g_msg, sizeof(g_msg), &rng, sig);
}

static int raw_sign(void *p)
{
    struct ec_ctx *c = p;
    uint8_t hash[32], sig[64];
    mbedtls_mpi r, s;
    int ret;

    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ret = mbedtls_sha256_ret(g_msg, sizeof(g_msg), hash, 0);
    if (ret == 0)
        ret = mbedtls_ecdsa_sign_det_ext(&c->raw.grp, &r, &s, &c->raw.d, hash, 32,
                                         MBEDTLS_MD_SHA256, mbedtls_ctr_drbg_random, &g_drbg);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&r, sig, 32);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&s, sig + 32, 32);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ret;
}

static int ours_verify(void *p)
{
    struct ec_ctx *c = p;

    return pl_ecdsa_verify(c->key, g_msg, sizeof(g_msg), c->sig);
}

static int raw_verify(void *p)
{
    struct ec_ctx *c = p;
    uint8_t hash[32];
    mbedtls_mpi r, s;
    int ret;

    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ret = mbedtls_sha256_ret(g_msg, sizeof(g_msg), hash, 0);
    if (ret == 0)
        ret = mbedtls_mpi_read_binary(&r, c->sig, 32);
    if (ret == 0)
        ret = mbedtls_mpi_read_binary(&s, c->sig + 32, 32);
    if (ret == 0)
        ret = mbedtls_ecdsa_verify(&c->raw.grp, hash, 32, &c->raw.Q, &r, &s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ret;
}

static int ours_ecdh(void *p)
{
    struct ec_ctx *c = p;
    uint8_t z[32];

    return pl_ecdh(c->key, c->peer, z);
}

static int raw_ecdh(void *p)
{
    struct ec_ctx *c = p;
    mbedtls_ecp_point q;
    mbedtls_mpi z;
    uint8_t out[32];
    int ret;

    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&z);
    ret = mbedtls_ecp_point_read_binary(&c->raw.grp, &q, c->peer, 65);
    if (ret == 0)
        ret = mbedtls_ecp_check_pubkey(&c->raw.grp, &q);
    if (ret == 0)
        ret = mbedtls_ecdh_compute_shared(&c->raw.grp, &z, &q, &c->raw.d, mbedtls_ctr_drbg_random,
                                          &g_drbg);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&z, out, 32);
    mbedtls_mpi_free(&z);
    mbedtls_ecp_point_free(&q);
    return ret;
}

static void ec_setup(struct ec_ctx *c, enum pl_curve curve)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *peer = NULL;
    uint8_t d[32], pub[65];

    memset(c, 0, sizeof(*c));
    c->curve = curve;
    if (pl_eckey_generate(curve, &rng, &c->key) != PL_OK ||
        pl_eckey_generate(curve, &rng, &peer) != PL_OK || pl_eckey_public(peer, c->peer) != PL_OK ||
        pl_ecdsa_sign(c->key, g_msg, sizeof(g_msg), &rng, c->sig) != PL_OK ||
        pl_eckey_private(c->key, d) != PL_OK || pl_eckey_public(c->key, pub) != PL_OK)
        die("key setup");
    pl_eckey_free(peer);
    mbedtls_ecp_keypair_init(&c->raw);
    if (mbedtls_ecp_group_load(&c->raw.grp, curve == PL_CURVE_P256 ? MBEDTLS_ECP_DP_SECP256R1
                                                                   : MBEDTLS_ECP_DP_BP256R1) != 0 ||
        mbedtls_mpi_read_binary(&c->raw.d, d, 32) != 0 ||
        mbedtls_ecp_point_read_binary(&c->raw.grp, &c->raw.Q, pub, 65) != 0)
        die("raw key setup");
    memset(d, 0, sizeof(d));
    /* Warm both sides once (mbedTLS caches the generator's comb table per group). */
    if (ours_sign(c) != 0 || raw_sign(c) != 0 || ours_verify(c) != 0 || raw_verify(c) != 0)
        die("warm-up");
}

static void ec_teardown(struct ec_ctx *c)
{
    pl_eckey_free(c->key);
    mbedtls_ecp_keypair_free(&c->raw);
}

/* ------------------------------------------------------------------ BSP wrap */

struct bsp_ctx {
    struct pl_bsp bsp;            /* ours */
    struct pl_bsp_keys raw_keys;  /* raw: MCV, S-ENC, S-MAC */
    uint32_t raw_counter;
    uint8_t pt[PL_BSP_MAX_PLAIN_ENC];
    uint8_t out[PL_BSP_MAX_SEGMENT];
};

static int ours_wrap(void *p)
{
    struct bsp_ctx *c = p;
    struct pl_wr w;

    pl_wr_init_fixed(&w, c->out, sizeof(c->out));
    return pl_bsp_wrap(&c->bsp, 0x86, true, c->pt, sizeof(c->pt), &w);
}

static int raw_wrap(void *p)
{
    struct bsp_ctx *c = p;
    const size_t len = sizeof(c->pt), body = (len / 16 + 1) * 16, content = body + 8;
    uint8_t ctr[16] = {0}, icv[16], mac[16];
    uint8_t *seg = c->out;
    mbedtls_aes_context aes;
    mbedtls_cipher_context_t cm;
    int ret;

    seg[0] = 0x86;
    seg[1] = 0x82;
    seg[2] = (uint8_t)(content >> 8);
    seg[3] = (uint8_t)content;
    memcpy(seg + 4, c->pt, len);
    seg[4 + len] = 0x80;
    memset(seg + 4 + len + 1, 0, body - len - 1);
    ctr[12] = (uint8_t)(c->raw_counter >> 24);
    ctr[13] = (uint8_t)(c->raw_counter >> 16);
    ctr[14] = (uint8_t)(c->raw_counter >> 8);
    ctr[15] = (uint8_t)c->raw_counter;

    mbedtls_aes_init(&aes);
    ret = mbedtls_aes_setkey_enc(&aes, c->raw_keys.s_enc, 128);
    if (ret == 0)
        ret = mbedtls_aes_crypt_ecb(&aes, MBEDTLS_AES_ENCRYPT, ctr, icv);
    if (ret == 0)
        ret = mbedtls_aes_crypt_cbc(&aes, MBEDTLS_AES_ENCRYPT, body, icv, seg + 4, seg + 4);
    mbedtls_aes_free(&aes);

    mbedtls_cipher_init(&cm);
    if (ret == 0)
        ret = mbedtls_cipher_setup(&cm, mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_128_ECB));
    if (ret == 0)
        ret = mbedtls_cipher_cmac_starts(&cm, c->raw_keys.s_mac, 128);
    if (ret == 0)
        ret = mbedtls_cipher_cmac_update(&cm, c->raw_keys.mcv, 16);
    if (ret == 0)
        ret = mbedtls_cipher_cmac_update(&cm, seg, 4 + body);
    if (ret == 0)
        ret = mbedtls_cipher_cmac_finish(&cm, mac);
    mbedtls_cipher_free(&cm);
    if (ret != 0)
        return ret;
    memcpy(seg + 4 + body, mac, 8);
    memcpy(c->raw_keys.mcv, mac, 16);
    c->raw_counter++;
    return 0;
}

static void bsp_bench(void)
{
    struct bsp_ctx *c = calloc(1, sizeof(*c));
    struct pl_bsp_keys k = {{0}, {0}, {0}};
    uint8_t ours_seg[PL_BSP_MAX_SEGMENT];
    double best_o = 0, best_r = 0;

    if (c == NULL || pl_rng_system_fill(NULL, (uint8_t *)&k, sizeof(k)) != PL_OK ||
        pl_rng_system_fill(NULL, c->pt, sizeof(c->pt)) != PL_OK)
        die("bsp setup");
    pl_bsp_init(&c->bsp, &k);
    c->raw_keys = k;
    c->raw_counter = 1;
    /* The raw path must produce the very same segment. */
    if (ours_wrap(c) != 0)
        die("wrap");
    memcpy(ours_seg, c->out, sizeof(ours_seg));
    if (raw_wrap(c) != 0 || memcmp(ours_seg, c->out, sizeof(ours_seg)) != 0)
        die("raw wrap equals ours");

    for (int i = 0; i < ROUNDS; i++) {
        double o = rate(ours_wrap, c), r = rate(raw_wrap, c);

        best_o = o > best_o ? o : best_o;
        best_r = r > best_r ? r : best_r;
    }
    printf("%-34s %12.1f %12.1f %8.3fx   (%.1f / %.1f MB/s plaintext)\n",
           "BSP wrap '86' 1007 B (1020 B seg)", best_o, best_r, best_o / best_r,
           best_o * PL_BSP_MAX_PLAIN_ENC / 1e6, best_r * PL_BSP_MAX_PLAIN_ENC / 1e6);
    pl_bsp_wipe(&c->bsp);
    free(c);
}

int main(int argc, char **argv)
{
    static const enum pl_curve curves[] = {PL_CURVE_P256, PL_CURVE_BP256R1};
    static const unsigned char pers[] = "provline bench_crypto raw";

    if (argc > 1) {
        g_seconds = strtod(argv[1], NULL);
        if (!(g_seconds > 0.0 && g_seconds < 60.0)) {
            fprintf(stderr, "usage: %s [seconds per measurement]\n", argv[0]);
            return 2;
        }
    }
    mbedtls_entropy_init(&g_entropy);
    mbedtls_ctr_drbg_init(&g_drbg);
    if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy, pers, sizeof(pers) - 1))
        die("raw DRBG seed");

    printf("provline crypto wrappers vs raw mbedTLS %s, %.2f s per measurement, best of %d\n",
           "2.28", g_seconds, ROUNDS);
    printf("%-34s %12s %12s %9s\n", "operation", "ours ops/s", "raw ops/s", "ours/raw");
    for (size_t i = 0; i < 2; i++) {
        struct ec_ctx c;
        char name[64];

        ec_setup(&c, curves[i]);
        snprintf(name, sizeof(name), "ECDSA sign   %s", pl_curve_name(curves[i]));
        compare(name, ours_sign, &c, raw_sign, &c);
        snprintf(name, sizeof(name), "ECDSA verify %s", pl_curve_name(curves[i]));
        compare(name, ours_verify, &c, raw_verify, &c);
        snprintf(name, sizeof(name), "ECDH         %s", pl_curve_name(curves[i]));
        compare(name, ours_ecdh, &c, raw_ecdh, &c);
        ec_teardown(&c);
    }
    bsp_bench();

    mbedtls_ctr_drbg_free(&g_drbg);
    mbedtls_entropy_free(&g_entropy);
    return 0;
}
