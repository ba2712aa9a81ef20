/* Unit: the ES10c.GetEID codec (protocol/es10c.h), GSMA SGP.22 v2.5 §5.7.20: the request's
 * exact bytes, a good answer, and every malformed answer refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "provline/protocol/es10c.h"

static const uint8_t EID[16] = {0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23,
                                0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35};

Test(es10c, request_bytes)
{
    uint8_t b[16];
    struct pl_wr w;
    static const uint8_t want[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    pl_wr_init_fixed(&w, b, sizeof(b));
    cr_assert_eq(pl_es10c_get_eid_req(&w), PL_OK);
    cr_assert_eq(w.len, sizeof(want));
    cr_assert_eq(memcmp(b, want, sizeof(want)), 0);
    pl_wr_init_fixed(&w, b, 4); /* too small: the writer's error */
    cr_assert_eq(pl_es10c_get_eid_req(&w), PL_ERR_OVERFLOW);
}

Test(es10c, response_decode)
{
    uint8_t rsp[21] = {0xBF, 0x3E, 0x12, 0x5A, 0x10};
    uint8_t eid[16];
    memcpy(rsp + 5, EID, 16);
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(rsp, sizeof(rsp), eid), PL_OK);
    cr_assert_eq(memcmp(eid, EID, 16), 0);

    uint8_t bad[24];
    /* trailing byte after the TLV */
    memcpy(bad, rsp, sizeof(rsp));
    bad[21] = 0x00;
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(bad, 22, eid), PL_ERR_DER_TRAILING);
    /* another outer tag */
    memcpy(bad, rsp, sizeof(rsp));
    bad[1] = 0x3F;
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(bad, sizeof(rsp), eid), PL_ERR_DER_TAG);
    /* a 15-byte eidValue */
    static const uint8_t short_eid[] = {0xBF, 0x3E, 0x11, 0x5A, 0x0F, 1, 2, 3, 4, 5,
                                        6,    7,    8,    9,    10,   11, 12, 13, 14, 15};
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(short_eid, sizeof(short_eid), eid), PL_ERR_DER_VALUE);
    /* a second member after the eidValue */
    uint8_t extra[23] = {0xBF, 0x3E, 0x14, 0x5A, 0x10};
    memcpy(extra + 5, EID, 16);
    extra[21] = 0x80;
    extra[22] = 0x00;
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(extra, sizeof(extra), eid), PL_ERR_DER_TRAILING);
    /* empty, and truncated */
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(rsp, 0, eid), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_es10c_get_eid_rsp_decode(rsp, sizeof(rsp) - 1, eid), PL_ERR_DER_LENGTH);
}
