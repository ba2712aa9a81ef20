/* Unit tests: bounds-checked reader/writer, strict DER layer, hex helpers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/der.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/wr.h"

static int err_from_name(const char *s)
{
    static const struct {
        const char *name;
        int err;
    } map[] = {
        {"ok", PL_OK},
        {"indefinite", PL_ERR_DER_INDEFINITE},
        {"nonminimal", PL_ERR_DER_NONMINIMAL},
        {"length", PL_ERR_DER_LENGTH},
        {"trailing", PL_ERR_DER_TRAILING},
        {"depth", PL_ERR_DER_DEPTH},
        {"toobig", PL_ERR_DER_TOOBIG},
        {"tag", PL_ERR_DER_TAG},
        {"truncated", PL_ERR_TRUNCATED},
        {"value", PL_ERR_DER_VALUE},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, s) == 0)
            return map[i].err;
    cr_assert_fail("unknown expectation '%s' in vector file", s);
    return 1;
}

Test(der, vector_file)
{
    char path[512];
    FILE *f = fopen(pl_test_src(path, sizeof(path), "tests/vectors/der_strict.txt"), "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char line[4096];
    int cases = 0, lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        char name[32];
        int off = 0;
        cr_assert_eq(sscanf(line, "%31s %n", name, &off), 1);
        uint8_t buf[2048];
        size_t len;
        cr_assert_eq(pl_hex_decode_loose(line + off, buf, sizeof(buf), &len), PL_OK, "line %d", lineno);
        int want = err_from_name(name);
        int got = pl_der_validate(buf, len, 0);
        cr_expect_eq(got, want, "line %d (%s): got %d (%s), want %d (%s)", lineno, line, got,
                     pl_strerror(got), want, pl_strerror(want));
        cases++;
    }
    fclose(f);
    cr_assert_geq(cases, 40, "only %d cases read", cases);
}

Test(der, distinct_errors_required_by_spec)
{
    /* The five rejections the foundation issue names must be distinct codes. */
    int e[] = {PL_ERR_DER_INDEFINITE, PL_ERR_DER_NONMINIMAL, PL_ERR_DER_LENGTH, PL_ERR_DER_TRAILING,
               PL_ERR_DER_DEPTH};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_lt(e[i], 0);
        cr_assert_neq(strcmp(pl_strerror(e[i]), "unknown error"), 0);
        for (size_t j = i + 1; j < 5; j++)
            cr_assert_neq(e[i], e[j]);
    }
}

Test(der, multibyte_tags_and_raw)
{
    /* BF51 { 80 01 05, 5F37 02 aabb } */
    const uint8_t in[] = {0xbf, 0x51, 0x08, 0x80, 0x01, 0x05, 0x5f, 0x37, 0x02, 0xaa, 0xbb};
    struct pl_tlv t, c;
    struct pl_der d, child;
    pl_der_init(&d, in, sizeof(in));
    cr_assert_eq(pl_der_next(&d, &t), PL_OK);
    cr_assert_eq(t.tag, 0xBF51u);
    cr_assert(t.constructed);
    cr_assert_eq(t.raw, in);
    cr_assert_eq(t.raw_len, sizeof(in));
    cr_assert_eq(pl_der_finish(&d), PL_OK);
    cr_assert_eq(pl_der_enter(&d, &t, &child), PL_OK);
    cr_assert_eq(child.depth, 1u);
    uint64_t v;
    cr_assert_eq(pl_der_expect(&child, 0x80, &c), PL_OK);
    cr_assert_eq(pl_der_get_uint(&c, &v), PL_OK);
    cr_assert_eq(v, 5u);
    bool present;
    cr_assert_eq(pl_der_optional(&child, 0x81, &c, &present), PL_OK);
    cr_assert_not(present);
    cr_assert_eq(pl_der_expect(&child, 0x80, &c), PL_ERR_DER_TAG); /* cursor unchanged */
    cr_assert_eq(pl_der_expect(&child, 0x5F37, &c), PL_OK);
    cr_assert_eq(c.len, 2u);
    cr_assert_eq(c.raw_len, 5u);
    cr_assert(pl_der_done(&child));
    cr_assert_eq(pl_der_next(&child, &c), PL_ERR_TRUNCATED);
}

Test(der, child_cannot_run_past_parent)
{
    /* A 30 03 { 04 05 ... } inner length claims more than the parent holds, even though
     * the outer buffer has the bytes: the child must refuse. */
    const uint8_t in[] = {0x30, 0x03, 0x04, 0x05, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
    struct pl_der d, child;
    struct pl_tlv t, c;
    pl_der_init(&d, in, sizeof(in));
    cr_assert_eq(pl_der_next(&d, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&d, &t, &child), PL_OK);
    cr_assert_eq(pl_der_next(&child, &c), PL_ERR_DER_LENGTH);
    cr_assert_eq(pl_der_finish(&d), PL_ERR_DER_TRAILING);
}

Test(der, enter_primitive_and_depth_limit)
{
    const uint8_t prim[] = {0x04, 0x01, 0x00};
    const uint8_t cons[] = {0x30, 0x02, 0x30, 0x00};
    struct pl_der d, child, grand;
    struct pl_tlv t;
    pl_der_init(&d, prim, sizeof(prim));
    cr_assert_eq(pl_der_next(&d, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&d, &t, &child), PL_ERR_DER_TAG);
    pl_der_init_limits(&d, cons, sizeof(cons), 1, 100);
    cr_assert_eq(pl_der_next(&d, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&d, &t, &child), PL_OK);
    cr_assert_eq(pl_der_next(&child, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&child, &t, &grand), PL_ERR_DER_DEPTH);
    /* The size cap is per reader. */
    const uint8_t big[] = {0x04, 0x81, 0x80};
    pl_der_init_limits(&d, big, sizeof(big), 4, 0x7f);
    cr_assert_eq(pl_der_next(&d, &t), PL_ERR_DER_TOOBIG);
}

Test(der, parse_one)
{
    const uint8_t in[] = {0x5a, 0x01, 0x01, 0x00};
    struct pl_tlv t;
    cr_assert_eq(pl_der_parse_one(in, 3, 0x5a, &t), PL_OK);
    cr_assert_eq(pl_der_parse_one(in, 3, 0x5b, &t), PL_ERR_DER_TAG);
    cr_assert_eq(pl_der_parse_one(in, 4, 0x5a, &t), PL_ERR_DER_TRAILING);
    cr_assert_eq(pl_der_parse_one(in, 2, 0, &t), PL_ERR_DER_LENGTH);
    cr_assert_eq(pl_der_parse_one(NULL, 0, 0, &t), PL_ERR_TRUNCATED);
}

static void roundtrip_int(int64_t v, const char *hex)
{
    uint8_t buf[16];
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_der_put_int(&w, PL_TAG_INTEGER, v), PL_OK);
    char out[40];
    cr_assert_eq(pl_hex_encode(buf, w.len, out, sizeof(out)), PL_OK);
    cr_assert_str_eq(out, hex, "int %lld", (long long)v);
    struct pl_tlv t;
    int64_t back;
    cr_assert_eq(pl_der_parse_one(buf, w.len, PL_TAG_INTEGER, &t), PL_OK);
    cr_assert_eq(pl_der_get_int(&t, &back), PL_OK);
    cr_assert_eq(back, v);
}

Test(der, integers)
{
    roundtrip_int(0, "020100");
    roundtrip_int(127, "02017f");
    roundtrip_int(128, "02020080");
    roundtrip_int(255, "020200ff");
    roundtrip_int(256, "02020100");
    roundtrip_int(-1, "0201ff");
    roundtrip_int(-128, "020180");
    roundtrip_int(-129, "0202ff7f");
    roundtrip_int(INT64_MAX, "02087fffffffffffffff");
    roundtrip_int(INT64_MIN, "02088000000000000000");

    uint8_t buf[16];
    struct pl_wr w;
    struct pl_tlv t;
    uint64_t u;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_der_put_uint(&w, 0x80, UINT64_MAX), PL_OK);
    cr_assert_eq(w.len, 11u);
    cr_assert_eq(pl_der_parse_one(buf, w.len, 0x80, &t), PL_OK);
    cr_assert_eq(pl_der_get_uint(&t, &u), PL_OK);
    cr_assert_eq(u, UINT64_MAX);
    int64_t i;
    cr_assert_eq(pl_der_get_int(&t, &i), PL_ERR_OVERFLOW);
    const uint8_t neg[] = {0x02, 0x01, 0x80};
    cr_assert_eq(pl_der_parse_one(neg, 3, 2, &t), PL_OK);
    cr_assert_eq(pl_der_get_uint(&t, &u), PL_ERR_DER_VALUE);
}

Test(der, begin_end_long_lengths)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 20);
    size_t outer = pl_der_begin(&w, 0xBF36);
    size_t inner = pl_der_begin(&w, 0xA3);
    uint8_t blob[300];
    memset(blob, 0x5a, sizeof(blob));
    pl_der_put_tlv(&w, 0x86, blob, sizeof(blob));
    pl_der_put_tlv(&w, 0x86, blob, 10);
    cr_assert_eq(pl_der_end(&w, inner), PL_OK);
    cr_assert_eq(pl_der_end(&w, outer), PL_OK);
    cr_assert_eq(pl_wr_status(&w), PL_OK);
    /* 86 82 012c (300) + 86 0a (10): inner content 304+12 = 316 -> A3 82 013c */
    cr_assert_eq(pl_der_validate(w.buf, w.len, 0), PL_OK);
    struct pl_tlv t, a3;
    struct pl_der d, c;
    cr_assert_eq(pl_der_parse_one(w.buf, w.len, 0xBF36, &t), PL_OK);
    pl_der_init(&d, w.buf, w.len);
    cr_assert_eq(pl_der_next(&d, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&d, &t, &c), PL_OK);
    cr_assert_eq(pl_der_expect(&c, 0xA3, &a3), PL_OK);
    cr_assert_eq(a3.len, 316u);
    cr_assert_eq(a3.raw[1], 0x82);
    pl_wr_free(&w);
}

Test(der, strings_bits_bool_null_oid)
{
    struct pl_tlv t;
    char s[8];
    const uint8_t good[] = {0x0c, 0x03, 0xe2, 0x82, 0xac}; /* EURO SIGN */
    const uint8_t overlong[] = {0x0c, 0x02, 0xc0, 0xaf};
    const uint8_t surrogate[] = {0x0c, 0x03, 0xed, 0xa0, 0x80};
    const uint8_t nul[] = {0x0c, 0x01, 0x00};
    cr_assert_eq(pl_der_parse_one(good, sizeof(good), PL_TAG_UTF8, &t), PL_OK);
    cr_assert_eq(pl_der_get_utf8(&t, s, sizeof(s)), PL_OK);
    cr_assert_str_eq(s, "\xe2\x82\xac");
    cr_assert_eq(pl_der_get_utf8(&t, s, 3), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_der_parse_one(overlong, sizeof(overlong), 0, &t), PL_OK);
    cr_assert_eq(pl_der_get_utf8(&t, s, sizeof(s)), PL_ERR_DER_VALUE);
    cr_assert_eq(pl_der_parse_one(surrogate, sizeof(surrogate), 0, &t), PL_OK);
    cr_assert_eq(pl_der_get_utf8(&t, s, sizeof(s)), PL_ERR_DER_VALUE);
    cr_assert_eq(pl_der_parse_one(nul, sizeof(nul), 0, &t), PL_OK);
    cr_assert_eq(pl_der_get_utf8(&t, s, sizeof(s)), PL_ERR_DER_VALUE);

    const uint8_t bits_ok[] = {0x03, 0x02, 0x07, 0x80};
    const uint8_t bits_pad[] = {0x03, 0x02, 0x07, 0x81};
    const uint8_t bits_bad[] = {0x03, 0x01, 0x01};
    const uint8_t *b;
    size_t n;
    unsigned unused;
    cr_assert_eq(pl_der_parse_one(bits_ok, 4, 3, &t), PL_OK);
    cr_assert_eq(pl_der_get_bits(&t, &b, &n, &unused), PL_OK);
    cr_assert_eq(n, 1u);
    cr_assert_eq(unused, 7u);
    cr_assert_eq(pl_der_parse_one(bits_pad, 4, 3, &t), PL_OK);
    cr_assert_eq(pl_der_get_bits(&t, &b, &n, &unused), PL_ERR_DER_VALUE);
    cr_assert_eq(pl_der_parse_one(bits_bad, 3, 3, &t), PL_OK);
    cr_assert_eq(pl_der_get_bits(&t, &b, &n, &unused), PL_ERR_DER_VALUE);

    struct pl_wr w;
    uint8_t buf[32];
    bool bv;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    pl_der_put_bool(&w, 0x01, true);
    pl_der_put_null(&w, 0x05);
    pl_der_put_utf8(&w, 0x0c, "ok");
    cr_assert_eq(pl_wr_status(&w), PL_OK);
    cr_assert_eq(w.len, 3u + 2u + 4u);
    cr_assert_eq(pl_der_parse_one(buf, 3, 0x01, &t), PL_OK);
    cr_assert_eq(pl_der_get_bool(&t, &bv), PL_OK);
    cr_assert(bv);
    cr_assert_eq(pl_der_parse_one(buf + 3, 2, 0x05, &t), PL_OK);
    cr_assert_eq(pl_der_get_null(&t), PL_OK);

    const uint8_t oid_trunc[] = {0x06, 0x02, 0x2b, 0x86};
    cr_assert_eq(pl_der_parse_one(oid_trunc, 4, 6, &t), PL_OK);
    cr_assert_eq(pl_der_check_oid(&t), PL_ERR_DER_VALUE);

    const uint8_t fixed[] = {0x5a, 0x02, 0x01, 0x02};
    uint8_t two[2], three[3];
    const uint8_t *p;
    cr_assert_eq(pl_der_parse_one(fixed, 4, 0x5a, &t), PL_OK);
    cr_assert_eq(pl_der_get_fixed(&t, two, 2), PL_OK);
    cr_assert_eq(pl_der_get_fixed(&t, three, 3), PL_ERR_DER_VALUE);
    cr_assert_eq(pl_der_get_octets(&t, 3, 10, &p, &n), PL_ERR_DER_VALUE);
    cr_assert_eq(pl_der_get_octets(&t, 1, 2, &p, &n), PL_OK);
    cr_assert_eq(n, 2u);
}

Test(der, encoder_rejects_bad_tags_and_sticks)
{
    uint8_t buf[4];
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_der_put_tlv(&w, 0x1F, "x", 1), PL_ERR_INVAL); /* invalid tag encoding */
    cr_assert_eq(pl_der_put_null(&w, 0x05), PL_ERR_INVAL);        /* sticky */
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_der_put_tlv(&w, 0x04, "abcdef", 6), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_wr_status(&w), PL_ERR_OVERFLOW);
}

Test(rd, bounds)
{
    const uint8_t in[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct pl_rd r, sub;
    uint8_t b;
    uint16_t h;
    uint32_t x;
    uint64_t q;
    const uint8_t *p;
    pl_rd_init(&r, in, sizeof(in));
    cr_assert_eq(pl_rd_u8(&r, &b), PL_OK);
    cr_assert_eq(b, 1);
    cr_assert_eq(pl_rd_u16be(&r, &h), PL_OK);
    cr_assert_eq(h, 0x0203);
    cr_assert_eq(pl_rd_sub(&r, 4, &sub), PL_OK);
    cr_assert_eq(pl_rd_u32be(&sub, &x), PL_OK);
    cr_assert_eq(x, 0x04050607u);
    cr_assert_eq(pl_rd_u8(&sub, &b), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_rd_u64be(&r, &q), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_rd_left(&r), 2u); /* failed read did not move */
    cr_assert_eq(pl_rd_bytes(&r, 3, &p), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_rd_bytes(&r, 2, &p), PL_OK);
    cr_assert_eq(p[1], 9);
    cr_assert(pl_rd_done(&r));
    cr_assert_eq(pl_rd_skip(&r, 1), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_rd_sub(&r, 1, &sub), PL_ERR_TRUNCATED);
    pl_rd_init(&r, NULL, 5);
    cr_assert_eq(pl_rd_left(&r), 0u);
}

Test(wr, fixed_dynamic_gap_take)
{
    uint8_t buf[4];
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_wr_u32be(&w, 0x01020304u), PL_OK);
    cr_assert_eq(pl_wr_u8(&w, 5), PL_ERR_OVERFLOW);
    cr_assert_eq(w.len, 4u);
    cr_assert_null(pl_wr_reserve(&w, 1));

    pl_wr_init_dyn(&w, 10);
    cr_assert_eq(pl_wr_bytes(&w, "abcdefgh", 8), PL_OK);
    cr_assert_eq(pl_wr_insert_gap(&w, 2, 2), PL_OK);
    cr_assert_eq(memcmp(w.buf, "ab\0\0cdefgh", 10), 0);
    cr_assert_eq(pl_wr_u8(&w, 1), PL_ERR_OVERFLOW); /* hard maximum */
    size_t n;
    cr_assert_null(pl_wr_take(&w, &n));            /* failed writer gives nothing */
    pl_wr_free(&w);

    pl_wr_init_dyn(&w, 1 << 16);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(pl_wr_u16be(&w, (uint16_t)i), PL_OK);
    uint8_t *p = pl_wr_take(&w, &n);
    cr_assert_not_null(p);
    cr_assert_eq(n, 2000u);
    cr_assert_eq(p[1998], 0x03);
    cr_assert_eq(p[1999], 0xe7);
    free(p);
    pl_wr_free(&w);
}

Test(hex, strict_and_loose)
{
    uint8_t out[8];
    size_t n;
    char s[32];
    cr_assert_eq(pl_hex_decode("00ffA5", out, sizeof(out), &n), PL_OK);
    cr_assert_eq(n, 3u);
    cr_assert_eq(out[2], 0xa5);
    cr_assert_eq(pl_hex_decode("0", out, sizeof(out), &n), PL_ERR_MALFORMED);
    cr_assert_eq(pl_hex_decode("zz", out, sizeof(out), &n), PL_ERR_MALFORMED);
    cr_assert_eq(pl_hex_decode("00 11", out, sizeof(out), &n), PL_ERR_MALFORMED);
    cr_assert_eq(pl_hex_decode("001122334455667788", out, sizeof(out), &n), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_hex_decode_loose("00 11:22\n33", out, sizeof(out), &n), PL_OK);
    cr_assert_eq(n, 4u);
    cr_assert_eq(pl_hex_decode_loose("0 011", out, sizeof(out), &n), PL_ERR_MALFORMED);
    cr_assert_eq(pl_hex_encode(out, 4, s, sizeof(s)), PL_OK);
    cr_assert_str_eq(s, "00112233");
    cr_assert_eq(pl_hex_encode(out, 4, s, 8), PL_ERR_OVERFLOW);
}

Test(der, read_header_only)
{
    /* BF36 82 0400 with no contents present: the header alone is accepted. */
    const uint8_t hdr[] = {0xbf, 0x36, 0x82, 0x04, 0x00};
    const uint8_t bad[] = {0xbf, 0x36, 0x82, 0x00, 0x40};
    const uint8_t indef[] = {0xa3, 0x80};
    struct pl_rd r;
    uint32_t tag;
    size_t len;
    pl_rd_init(&r, hdr, sizeof(hdr));
    cr_assert_eq(pl_der_read_header(&r, PL_DER_MAX_LEN, &tag, &len), PL_OK);
    cr_assert_eq(tag, 0xBF36u);
    cr_assert_eq(len, 0x400u);
    cr_assert(pl_rd_done(&r));
    pl_rd_init(&r, bad, sizeof(bad));
    cr_assert_eq(pl_der_read_header(&r, PL_DER_MAX_LEN, &tag, &len), PL_ERR_DER_NONMINIMAL);
    cr_assert_eq(r.pos, 0u);
    pl_rd_init(&r, indef, sizeof(indef));
    cr_assert_eq(pl_der_read_header(&r, PL_DER_MAX_LEN, &tag, &len), PL_ERR_DER_INDEFINITE);
    pl_rd_init(&r, hdr, sizeof(hdr));
    cr_assert_eq(pl_der_read_header(&r, 0x3ff, &tag, &len), PL_ERR_DER_TOOBIG);
    cr_assert(pl_der_utf8_valid((const uint8_t *)"abc", 3));
    cr_assert_not(pl_der_utf8_valid((const uint8_t *)"\xc0\xaf", 2));
}

/* pl_der_read_tag: identifiers back to back, as in a tagList (X.690 §8.1.2, DER-minimal). */
Test(der, read_tag_for_tag_lists)
{
    static const uint8_t list[] = {0x5A, 0xBF, 0x20, 0x9F, 0x70, 0xA0};
    static const uint32_t want[] = {0x5Au, 0xBF20u, 0x9F70u, 0xA0u};
    struct pl_rd r;
    uint32_t tag = 0;
    pl_rd_init(&r, list, sizeof(list));
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(pl_der_read_tag(&r, &tag), PL_OK);
        cr_assert_eq(tag, want[i]);
    }
    cr_assert_eq(pl_der_read_tag(&r, &tag), PL_ERR_TRUNCATED);
    static const struct {
        uint8_t b[4];
        size_t n;
        int rc;
    } bad[] = {
        {{0x00}, 1, PL_ERR_DER_TAG},                     /* end-of-contents */
        {{0x9F, 0x1E}, 2, PL_ERR_DER_NONMINIMAL},        /* fits the low-tag form */
        {{0xBF, 0x80, 0x01}, 3, PL_ERR_DER_NONMINIMAL},  /* leading zero septet */
        {{0xBF, 0x81}, 2, PL_ERR_TRUNCATED},             /* continuation missing */
        {{0xBF, 0x81, 0x81, 0x01}, 4, PL_ERR_DER_TAG},   /* over three octets */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pl_rd_init(&r, bad[i].b, bad[i].n);
        int rc = pl_der_read_tag(&r, &tag);
        cr_assert_eq(rc, bad[i].rc, "case %zu: %d", i, rc);
    }
}
