/* Unit tests: symmetric primitives (sym.h): ANSI X9.63 KDF SHA-256 (NIST CAVS
 * ansx963_2001), AES-128-CBC (SP 800-38A F.2.1/F.2.2), AES-128 block (FIPS 197 C.1,
 * SP 800-38A F.1.1), AES-CMAC (RFC 4493 §4). Vectors in tests/vectors/. */
#include <criterion/criterion.h>
#include <string.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/sym.h"
#include "vecfile.h"

/* ---------------------------------------------------------------- X9.63 KDF */

Test(x963, nist_cavs_vectors)
{
    struct pl_vec_file *vf = pl_vec_load("x963kdf_sha256.txt");
    size_t with_info = 0;

    cr_assert_geq(vf->nrec, 7, "expected the 7 CAVS records, got %zu", vf->nrec);
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        uint8_t z[64], info[64], want[256], got[256];
        size_t zl = pl_vec_hex(r, "Z", z, sizeof(z));
        size_t il = pl_vec_hex(r, "SharedInfo", info, sizeof(info));
        size_t wl = pl_vec_hex(r, "key_data", want, sizeof(want));

        with_info += il > 0;
        memset(got, 0xee, sizeof(got));
        cr_assert_eq(pl_x963_kdf_sha256(z, zl, il ? info : NULL, il, got, wl), PL_OK);
        cr_expect_arr_eq(got, want, wl, "record at line %u", r->line);
        cr_expect_eq(got[wl], 0xee, "wrote past the output (line %u)", r->line);
    }
    cr_expect_geq(with_info, 2, "the vectors must exercise SharedInfo");
    pl_vec_free(vf);
}

Test(x963, shorter_output_is_prefix)
{
    static const uint8_t z[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t info[] = {0x88, 0x10, 0x01, 0xaa};
    uint8_t full[100], part[100];
    static const size_t lens[] = {1, 15, 16, 31, 32, 33, 48, 64, 65, 99};

    cr_assert_eq(pl_x963_kdf_sha256(z, sizeof(z), info, sizeof(info), full, sizeof(full)), PL_OK);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        memset(part, 0, sizeof(part));
        cr_assert_eq(pl_x963_kdf_sha256(z, sizeof(z), info, sizeof(info), part, lens[i]), PL_OK);
        cr_expect_arr_eq(part, full, lens[i], "len %zu", lens[i]);
    }
}

Test(x963, first_block_is_sha256_of_z_ctr_info)
{
    static const uint8_t z[] = {0xde, 0xad, 0xbe, 0xef};
    static const uint8_t info[] = {0x01, 0x02};
    static const uint8_t ctr1[] = {0, 0, 0, 1};
    static const uint8_t ctr2[] = {0, 0, 0, 2};
    uint8_t kdf[64], h[32];
    struct pl_iov iov[3] = {{z, sizeof(z)}, {ctr1, 4}, {info, sizeof(info)}};

    cr_assert_eq(pl_x963_kdf_sha256(z, sizeof(z), info, sizeof(info), kdf, sizeof(kdf)), PL_OK);
    cr_assert_eq(pl_sha256_iov(iov, 3, h), PL_OK);
    cr_expect_arr_eq(kdf, h, 32);
    iov[1].p = ctr2;
    cr_assert_eq(pl_sha256_iov(iov, 3, h), PL_OK);
    cr_expect_arr_eq(kdf + 32, h, 32);
}

Test(x963, different_info_different_key)
{
    static const uint8_t z[32] = {7};
    uint8_t a[16], b[16];
    static const uint8_t i1[] = {1}, i2[] = {2};

    cr_assert_eq(pl_x963_kdf_sha256(z, sizeof(z), i1, 1, a, 16), PL_OK);
    cr_assert_eq(pl_x963_kdf_sha256(z, sizeof(z), i2, 1, b, 16), PL_OK);
    cr_expect_neq(memcmp(a, b, 16), 0);
}

Test(x963, rejects_bad_arguments)
{
    static const uint8_t z[4] = {1, 2, 3, 4};
    uint8_t out[16];

    cr_expect_eq(pl_x963_kdf_sha256(NULL, 4, NULL, 0, out, 16), PL_ERR_INVAL);
    cr_expect_eq(pl_x963_kdf_sha256(z, 0, NULL, 0, out, 16), PL_ERR_INVAL);
    cr_expect_eq(pl_x963_kdf_sha256(z, 4, NULL, 3, out, 16), PL_ERR_INVAL);
    cr_expect_eq(pl_x963_kdf_sha256(z, 4, NULL, 0, NULL, 16), PL_ERR_INVAL);
    cr_expect_eq(pl_x963_kdf_sha256(z, 4, NULL, 0, NULL, 0), PL_OK);
}

/* ---------------------------------------------------------------- AES block */

Test(aes, ecb_block_vectors)
{
    struct pl_vec_file *vf = pl_vec_load("aes128_ecb.txt");

    cr_assert_geq(vf->nrec, 3);
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        uint8_t key[16], pt[16], ct[16], got[16];

        pl_vec_hex_n(r, "Key", key, 16);
        pl_vec_hex_n(r, "Plaintext", pt, 16);
        pl_vec_hex_n(r, "Ciphertext", ct, 16);
        cr_assert_eq(pl_aes128_ecb_block(key, pt, got), PL_OK);
        cr_expect_arr_eq(got, ct, 16, "record at line %u", r->line);
        /* in place */
        memcpy(got, pt, 16);
        cr_assert_eq(pl_aes128_ecb_block(key, got, got), PL_OK);
        cr_expect_arr_eq(got, ct, 16);
    }
    pl_vec_free(vf);
}

Test(aes, ecb_rejects_null)
{
    uint8_t b[16] = {0};

    cr_expect_eq(pl_aes128_ecb_block(NULL, b, b), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_ecb_block(b, NULL, b), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_ecb_block(b, b, NULL), PL_ERR_INVAL);
}

/* ---------------------------------------------------------------- AES-CBC */

Test(aes, cbc_sp800_38a)
{
    struct pl_vec_file *vf = pl_vec_load("aes128_cbc_sp800_38a.txt");

    cr_assert_geq(vf->nrec, 1);
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        uint8_t key[16], iv[16], iv_copy[16], pt[64], ct[64], got[64];
        size_t n;

        pl_vec_hex_n(r, "Key", key, 16);
        pl_vec_hex_n(r, "IV", iv, 16);
        n = pl_vec_hex(r, "Plaintext", pt, sizeof(pt));
        cr_assert_eq(pl_vec_hex(r, "Ciphertext", ct, sizeof(ct)), n);
        memcpy(iv_copy, iv, 16);

        /* F.2.1 encrypt */
        cr_assert_eq(pl_aes128_cbc_encrypt(key, iv, pt, n, got), PL_OK);
        cr_expect_arr_eq(got, ct, n, "encrypt, line %u", r->line);
        cr_expect_arr_eq(iv, iv_copy, 16, "the caller's IV must not change");
        /* F.2.2 decrypt */
        cr_assert_eq(pl_aes128_cbc_decrypt(key, iv, ct, n, got), PL_OK);
        cr_expect_arr_eq(got, pt, n, "decrypt, line %u", r->line);
        /* in place, both directions */
        memcpy(got, pt, n);
        cr_assert_eq(pl_aes128_cbc_encrypt(key, iv, got, n, got), PL_OK);
        cr_expect_arr_eq(got, ct, n);
        cr_assert_eq(pl_aes128_cbc_decrypt(key, iv, got, n, got), PL_OK);
        cr_expect_arr_eq(got, pt, n);
        /* chaining: the second block alone uses the first ciphertext block as IV */
        cr_assert_eq(pl_aes128_cbc_encrypt(key, ct, pt + 16, 16, got), PL_OK);
        cr_expect_arr_eq(got, ct + 16, 16);
    }
    pl_vec_free(vf);
}

Test(aes, cbc_rejects_partial_blocks)
{
    uint8_t key[16] = {0}, iv[16] = {0}, buf[48] = {0};

    cr_expect_eq(pl_aes128_cbc_encrypt(key, iv, buf, 15, buf), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_cbc_encrypt(key, iv, buf, 17, buf), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_cbc_decrypt(key, iv, buf, 47, buf), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_cbc_encrypt(NULL, iv, buf, 16, buf), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_cbc_decrypt(key, NULL, buf, 16, buf), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_cbc_encrypt(key, iv, NULL, 16, buf), PL_ERR_INVAL);
    cr_expect_eq(pl_aes128_cbc_encrypt(key, iv, NULL, 0, NULL), PL_OK);
}

/* ---------------------------------------------------------------- AES-CMAC */

Test(cmac, rfc4493_examples)
{
    struct pl_vec_file *vf = pl_vec_load("aes_cmac_rfc4493.txt");

    cr_assert_eq(vf->nrec, 4, "RFC 4493 has 4 examples");
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        uint8_t key[16], m[64], t[16], got[16];
        size_t n;
        struct pl_iov iov;

        pl_vec_hex_n(r, "K", key, 16);
        n = pl_vec_hex(r, "M", m, sizeof(m));
        pl_vec_hex_n(r, "T", t, 16);
        iov.p = n ? m : NULL;
        iov.len = n;
        cr_assert_eq(pl_aes_cmac(key, &iov, 1, got), PL_OK);
        cr_expect_arr_eq(got, t, 16, "example at line %u", r->line);
        /* zero iovs = empty message */
        if (n == 0) {
            cr_assert_eq(pl_aes_cmac(key, NULL, 0, got), PL_OK);
            cr_expect_arr_eq(got, t, 16);
        }
    }
    pl_vec_free(vf);
}

Test(cmac, scatter_list_matches_one_buffer)
{
    struct pl_vec_file *vf = pl_vec_load("aes_cmac_rfc4493.txt");
    const struct pl_vec_rec *r = &vf->rec[3]; /* example 4, 64 bytes */
    uint8_t key[16], m[64], t[16], got[16];

    pl_vec_hex_n(r, "K", key, 16);
    pl_vec_hex_n(r, "M", m, 64);
    pl_vec_hex_n(r, "T", t, 16);
    /* every split into three parts, including empty parts */
    for (size_t a = 0; a <= 64; a += 5) {
        for (size_t b = a; b <= 64; b += 7) {
            struct pl_iov iov[3] = {{m, a}, {m + a, b - a}, {m + b, 64 - b}};

            cr_assert_eq(pl_aes_cmac(key, iov, 3, got), PL_OK);
            cr_expect_arr_eq(got, t, 16, "split %zu/%zu", a, b);
        }
    }
    pl_vec_free(vf);
}

Test(cmac, detects_changes)
{
    uint8_t key[16] = {1}, msg[40] = {2}, ref[16], got[16];
    struct pl_iov iov = {msg, sizeof(msg)};

    cr_assert_eq(pl_aes_cmac(key, &iov, 1, ref), PL_OK);
    msg[39] ^= 1;
    cr_assert_eq(pl_aes_cmac(key, &iov, 1, got), PL_OK);
    cr_expect_neq(memcmp(ref, got, 16), 0, "flipped message bit");
    msg[39] ^= 1;
    key[15] ^= 0x80;
    cr_assert_eq(pl_aes_cmac(key, &iov, 1, got), PL_OK);
    cr_expect_neq(memcmp(ref, got, 16), 0, "other key");
    iov.len = 39;
    key[15] ^= 0x80;
    cr_assert_eq(pl_aes_cmac(key, &iov, 1, got), PL_OK);
    cr_expect_neq(memcmp(ref, got, 16), 0, "truncated message");
}

Test(cmac, rejects_bad_arguments)
{
    uint8_t key[16] = {0}, mac[16];
    struct pl_iov bad = {NULL, 3};

    cr_expect_eq(pl_aes_cmac(NULL, NULL, 0, mac), PL_ERR_INVAL);
    cr_expect_eq(pl_aes_cmac(key, NULL, 0, NULL), PL_ERR_INVAL);
    cr_expect_eq(pl_aes_cmac(key, NULL, 2, mac), PL_ERR_INVAL);
    cr_expect_eq(pl_aes_cmac(key, &bad, 1, mac), PL_ERR_INVAL);
}
