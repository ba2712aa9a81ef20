/* Unit: strict base64 (protocol/b64.h) - the RFC 4648 §10 test vectors both ways, and every
 * kind of non-canonical input refused: characters outside the alphabet, bad length, padding
 * in the middle, non-zero unused bits, a size cap. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/b64.h"

/* RFC 4648 §10 (the empty string aside: this API refuses an empty encoding). */
static const struct {
    const char *raw, *b64;
} vec[] = {{"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
           {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};

Test(b64, rfc4648_vectors_both_ways)
{
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        size_t n = strlen(vec[i].raw), len = 0;
        char out[16];
        uint8_t *dec = NULL;
        cr_assert_eq(pl_b64_len(n), strlen(vec[i].b64));
        cr_assert_eq(pl_b64_encode((const uint8_t *)vec[i].raw, n, out, sizeof(out)), PL_OK);
        cr_assert_str_eq(out, vec[i].b64);
        cr_assert_eq(pl_b64_decode(vec[i].b64, strlen(vec[i].b64), 64, &dec, &len), PL_OK);
        cr_assert_eq(len, n);
        cr_assert_eq(memcmp(dec, vec[i].raw, n), 0);
        free(dec);
    }
}

Test(b64, every_byte_value_round_trips)
{
    uint8_t all[256];
    char enc[400];
    uint8_t *dec = NULL;
    size_t len = 0;
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (uint8_t)i;
    cr_assert_eq(pl_b64_encode(all, sizeof(all), enc, sizeof(enc)), PL_OK);
    cr_assert_eq(pl_b64_decode(enc, strlen(enc), sizeof(all), &dec, &len), PL_OK);
    cr_assert_eq(len, sizeof(all));
    cr_assert_eq(memcmp(dec, all, len), 0);
    free(dec);
    /* one byte over the cap */
    cr_assert_eq(pl_b64_decode(enc, strlen(enc), sizeof(all) - 1, &dec, &len), PL_ERR_OVERFLOW);
    cr_assert_null(dec);
}

Test(b64, non_canonical_input_is_refused)
{
    static const char *const bad[] = {
        "",         /* empty */
        "Zg=",      /* length not a multiple of 4 */
        "Zg",       /* padding missing */
        "Zh==",     /* non-zero unused bits (canonical: Zg==) */
        "Zm9=",     /* non-zero unused bits (canonical: Zm8=) */
        "Zg==Zm9v", /* padding in the middle */
        "Z=g=",     /* padding before data */
        "Zm9\n",    /* a newline: not in the alphabet */
        "Zm 9",     /* a space */
        "Zm-_",     /* the URL-safe alphabet */
        "====",     /* padding only */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *dec = (uint8_t *)1;
        size_t len = 99;
        int rc = pl_b64_decode(bad[i], strlen(bad[i]), 64, &dec, &len);
        cr_assert_eq(rc, PL_ERR_MALFORMED, "'%s' gave %d", bad[i], rc);
        cr_assert_null(dec, "'%s'", bad[i]);
        cr_assert_eq(len, 0u);
    }
    /* an embedded NUL */
    uint8_t *dec = NULL;
    size_t len = 0;
    cr_assert_eq(pl_b64_decode("Zm\0v", 4, 64, &dec, &len), PL_ERR_MALFORMED);
    /* arguments */
    char out[4];
    cr_assert_eq(pl_b64_encode((const uint8_t *)"foo", 3, out, sizeof(out)), PL_ERR_INVAL);
    cr_assert_eq(pl_b64_decode(NULL, 4, 64, &dec, &len), PL_ERR_INVAL);
}
