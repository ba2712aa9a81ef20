/* Helpers for the SGP.32 codec tests (header-only, Criterion tests only). */
#ifndef PL_TEST_SGP32_H
#define PL_TEST_SGP32_H

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SGP32_TEST_WR_MAX (64u * 1024u)

/* A view of a C string literal. */
#define S(lit) pl_sgp32_str(lit)

static inline struct pl_sgp32_buf sgp32_bytes(const uint8_t *p, size_t len)
{
    struct pl_sgp32_buf b = {p, len};
    return b;
}

/* Decodes loose hex into a malloc'd buffer (the test frees it). */
static inline uint8_t *sgp32_hex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *b = malloc(cap);
    cr_assert_not_null(b);
    cr_assert_eq(pl_hex_decode_loose(hex, b, cap, len), PL_OK, "bad hex: %s", hex);
    return b;
}

static inline void sgp32_assert_hex(const uint8_t *p, size_t len, const char *hex)
{
    size_t n;
    uint8_t *want = sgp32_hex(hex, &n);
    char got[2 * 4096 + 1];
    if (len <= 4096 && pl_hex_encode(p, len, got, sizeof(got)) != PL_OK)
        got[0] = 0;
    cr_assert(n == len && memcmp(want, p, n) == 0, "encoding mismatch\n got: %s\nwant: %s",
              len <= 4096 ? got : "(long)", hex);
    free(want);
}

/* Reads a test file (PL_TEST_SRCDIR-relative) into a malloc'd buffer. */
static inline uint8_t *sgp32_file(const char *rel, size_t *len)
{
    char path[512];
    uint8_t *b = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

static inline struct pl_eckey *sgp32_key(const char *rel)
{
    size_t len;
    uint8_t *pem = sgp32_file(rel, &len);
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_eckey_parse(pem, len, &k), PL_OK, "key %s", rel);
    free(pem);
    return k;
}

/* Public key of an X.509 certificate file. */
static inline struct pl_eckey *sgp32_cert_key(const char *rel)
{
    size_t len;
    uint8_t *der = sgp32_file(rel, &len);
    struct pl_cert *c = NULL;
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_cert_parse(der, len, &c), PL_OK, "cert %s", rel);
    cr_assert_eq(pl_cert_public_key(c, &k), PL_OK);
    pl_cert_free(c);
    free(der);
    return k;
}

#define SGP32_EIM_SK     "tests/data/sgp26/variant-o/SK_S_EIMsign_ECDSA_NIST.pem"
#define SGP32_EIM_CERT   "tests/data/sgp26/variant-o/CERT_S_EIMsign_ECDSA_NIST.der"
#define SGP32_EUICC_SK   "tests/data/sgp26/variant-o/SK_EUICC_SIG_NIST.pem"
#define SGP32_EUICC_CERT "tests/data/sgp26/variant-o/CERT_EUICC_SIG_NIST.der"
#define SGP32_EUM_CERT   "tests/data/sgp26/variant-o/CERT_EUM_SIG_NIST.der"

/* Bump arena for the hex-building helpers below: every string they return stays valid for
 * the whole test (Criterion runs each test in its own process). */
static inline char *sgp32_arena(size_t n)
{
    static char arena[8u * 1024u * 1024u];
    static size_t used;
    cr_assert_leq(n, sizeof(arena) - used, "sgp32 test arena exhausted");
    char *p = arena + used;
    used += n;
    return p;
}

/* Decodes loose hex into arena memory (valid for the whole test, never freed). */
static inline uint8_t *sgp32_hex_arena(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *b = (uint8_t *)sgp32_arena(cap);
    cr_assert_eq(pl_hex_decode_loose(hex, b, cap, len), PL_OK, "bad hex: %s", hex);
    return b;
}

/* Builds the hex of one TLV from a hex tag and hex contents (spaces allowed), computing the
 * DER length with code independent of the codec under test. */
static inline const char *T(const char *tag, const char *content)
{
    size_t n = 0, cl = strlen(content), tl = strlen(tag), nl = 0, pos;
    unsigned lb[3];
    static const char hx[] = "0123456789abcdef";
    char *clean = sgp32_arena(cl + 1);
    for (const char *c = content; *c; c++) {
        if (*c != ' ')
            clean[n++] = *c;
    }
    clean[n] = 0;
    cr_assert_eq(n % 2, 0, "odd hex contents for tag %s", tag);
    size_t len = n / 2;
    if (len < 0x80) {
        lb[nl++] = (unsigned)len;
    } else if (len < 0x100) {
        lb[nl++] = 0x81;
        lb[nl++] = (unsigned)len;
    } else {
        cr_assert_lt(len, 0x10000);
        lb[nl++] = 0x82;
        lb[nl++] = (unsigned)(len >> 8);
        lb[nl++] = (unsigned)(len & 0xFF);
    }
    char *out = sgp32_arena(tl + 2 * nl + n + 1);
    memcpy(out, tag, tl);
    pos = tl;
    for (size_t i = 0; i < nl; i++) {
        out[pos++] = hx[(lb[i] >> 4) & 0xF];
        out[pos++] = hx[lb[i] & 0xF];
    }
    memcpy(out + pos, clean, n + 1);
    return out;
}

/* Concatenates two hex strings. */
static inline const char *CAT(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = sgp32_arena(la + lb + 1);
    memcpy(out, a, la);
    memcpy(out + la, b, lb + 1);
    return out;
}

/* A hex string of n copies of the byte pair hh. */
static inline const char *REP(const char *hh, size_t n)
{
    char *out = sgp32_arena(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hh, 2);
    out[2 * n] = 0;
    return out;
}

/* Decodes hex with fn and expects err; fn(buf, len, obj). */
#define SGP32_EXPECT_DECODE(fn, type, hex, err, name)                                              \
    do {                                                                                           \
        size_t n_;                                                                                 \
        uint8_t *b_ = sgp32_hex(hex, &n_);                                                         \
        type *o_ = calloc(1, sizeof(type));                                                        \
        int rc_ = fn(b_, n_, o_);                                                                  \
        cr_expect_eq(rc_, (err), "%s: got %d (%s), want %d (%s)", name, rc_, pl_strerror(rc_),     \
                     (err), pl_strerror(err));                                                     \
        free(o_);                                                                                  \
        free(b_);                                                                                  \
    } while (0)

/* First occurrence of needle in hay (memmem is not ISO C). */
static inline uint8_t *sgp32_find(uint8_t *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    }
    return NULL;
}

static inline bool sgp32_buf_is(struct pl_sgp32_buf b, const char *s)
{
    return b.p != NULL && b.len == strlen(s) && memcmp(b.p, s, b.len) == 0;
}

#endif
