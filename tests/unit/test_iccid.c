/* Unit: ICCID codings (protocol/iccid.h). SAIP ProfileHeader (natural order) <-> SGP.22 /
 * EF.ICCID (nibbles swapped, ETSI TS 102 221 §13.2); text both ways; bad text refused.
 * The TS.48 profiles themselves are checked in unit.bpp_bind (header vs EF.ICCID). */
#include <criterion/criterion.h>
#include <string.h>

#include "provline/protocol/iccid.h"

Test(iccid, swap_is_its_own_inverse)
{
    static const uint8_t header[PL_ICCID_LEN] = {0x89, 0x49, 0x44, 0x99, 0x99,
                                                    0x99, 0x99, 0x90, 0x02, 0x3F};
    static const uint8_t ef[PL_ICCID_LEN] = {0x98, 0x94, 0x44, 0x99, 0x99,
                                                0x99, 0x99, 0x09, 0x20, 0xF3};
    uint8_t a[PL_ICCID_LEN], b[PL_ICCID_LEN];
    pl_iccid_swap(header, a);
    cr_assert_eq(memcmp(a, ef, sizeof(a)), 0);
    pl_iccid_swap(a, b);
    cr_assert_eq(memcmp(b, header, sizeof(b)), 0);
}

Test(iccid, text_and_parse_round_trip)
{
    static const struct {
        const char *text;
        uint8_t ef[PL_ICCID_LEN];
    } v[] = {
        {"8949449999999990023", {0x98, 0x94, 0x44, 0x99, 0x99, 0x99, 0x99, 0x09, 0x20, 0xF3}},
        {"89000123456789012341", {0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14}},
        {"894400000000000010", {0x98, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xFF}},
        /* 19 digits: the last byte's high nibble is the F filler */
        {"8944000000000000101", {0x98, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xF1}},
        /* an F inside is kept, so the text names the same bytes */
        {"989444999999990920F3", {0x89, 0x49, 0x44, 0x99, 0x99, 0x99, 0x99, 0x90, 0x02, 0x3F}},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char t[PL_ICCID_TEXT_MAX];
        uint8_t b[PL_ICCID_LEN];
        pl_iccid_text(v[i].ef, t);
        cr_assert_str_eq(t, v[i].text);
        cr_assert_eq(pl_iccid_parse(v[i].text, b), PL_OK, "%s", v[i].text);
        cr_assert_eq(memcmp(b, v[i].ef, sizeof(b)), 0, "%s", v[i].text);
    }
    /* a non-digit nibble other than F prints as F */
    static const uint8_t odd[PL_ICCID_LEN] = {0x98, 0x44, 0, 0, 0, 0, 0, 0, 0x01, 0xA1};
    char t[PL_ICCID_TEXT_MAX];
    pl_iccid_text(odd, t);
    cr_assert_str_eq(t, "8944000000000000101");
    /* lower-case f parses */
    uint8_t b[PL_ICCID_LEN];
    cr_assert_eq(pl_iccid_parse("894944999999999002f", b), PL_OK);
}

Test(iccid, bad_text_is_refused)
{
    static const char *const bad[] = {
        "89494499999999900",     /* 17 digits */
        "894944999999999002312", /* 21 characters */
        "89494499999999900A3",   /* a letter other than F */
        "8949449999999990 23",   /* a space */
        "",                      /* empty */
        "FFFFFFFFFFFFFFFFFFFF",  /* no digits */
    };
    uint8_t b[PL_ICCID_LEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(pl_iccid_parse(bad[i], b), PL_ERR_INVAL, "'%s'", bad[i]);
    cr_assert_eq(pl_iccid_parse(NULL, b), PL_ERR_INVAL);
}
