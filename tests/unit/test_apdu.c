/* Unit tests: ISO 7816-4 APDUs and the ES10 STORE DATA transport (protocol/src/apdu.c),
 * host side against a fake card (a transmit callback that records every C-APDU), card
 * side reassembly and 61xx response chunking. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/apdu.h"
#include "provline/protocol/wr.h"

/* ---- codec ---- */

static size_t enc(const struct pl_capdu *c, uint8_t *buf, size_t cap, int *rc)
{
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, cap);
    *rc = pl_apdu_encode(c, &w);
    return w.len;
}

Test(apdu, encode_cases)
{
    uint8_t buf[300], data[255];
    int rc;
    size_t n;
    memset(data, 0xAB, sizeof(data));

    struct pl_capdu c1 = {.cla = 0x00, .ins = 0x70, .p1 = 0x80, .p2 = 0x01};
    n = enc(&c1, buf, sizeof(buf), &rc);
    cr_assert_eq(rc, PL_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(buf, "\x00\x70\x80\x01", 4), 0);

    struct pl_capdu c2 = {.cla = 0x80, .ins = 0xC0, .le = 256};
    n = enc(&c2, buf, sizeof(buf), &rc);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(buf, "\x80\xC0\x00\x00\x00", 5), 0, "Le 256 is sent as 00");

    struct pl_capdu c3 = {.cla = 0x81, .ins = 0xE2, .p1 = 0x91, .data = data, .lc = 3};
    n = enc(&c3, buf, sizeof(buf), &rc);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(buf, "\x81\xE2\x91\x00\x03\xAB\xAB\xAB", 8), 0);

    struct pl_capdu c4 = {.cla = 0x01, .ins = 0xA4, .p1 = 0x04, .data = data, .lc = 255, .le = 1};
    n = enc(&c4, buf, sizeof(buf), &rc);
    cr_assert_eq(rc, PL_OK);
    cr_assert_eq(n, 4 + 1 + 255 + 1);
    cr_assert_eq(buf[4], 0xFF);
    cr_assert_eq(buf[260], 0x01);

    struct pl_capdu bad = {.data = data, .lc = 256};
    enc(&bad, buf, sizeof(buf), &rc);
    cr_assert_eq(rc, PL_ERR_INVAL, "Lc 256 needs extended length");
    bad = (struct pl_capdu){.le = 257};
    enc(&bad, buf, sizeof(buf), &rc);
    cr_assert_eq(rc, PL_ERR_INVAL);
    bad = (struct pl_capdu){.lc = 2};
    enc(&bad, buf, sizeof(buf), &rc);
    cr_assert_eq(rc, PL_ERR_INVAL, "data NULL with Lc");
    enc(&c4, buf, 10, &rc);
    cr_assert_eq(rc, PL_ERR_OVERFLOW);
}

Test(apdu, parse_cases)
{
    struct pl_capdu c;
    static const uint8_t a1[] = {0x00, 0x70, 0x80, 0x01};
    static const uint8_t a2[] = {0x80, 0xC0, 0x00, 0x00, 0x00};
    static const uint8_t a3[] = {0x81, 0xE2, 0x11, 0x05, 0x02, 0xBF, 0x2B};
    static const uint8_t a4[] = {0x01, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00, 0x10};

    cr_assert_eq(pl_apdu_parse(a1, sizeof(a1), &c), PL_OK);
    cr_assert(c.lc == 0 && c.le == 0 && c.p2 == 0x01);
    cr_assert_eq(pl_apdu_parse(a2, sizeof(a2), &c), PL_OK);
    cr_assert(c.lc == 0 && c.le == 256);
    cr_assert_eq(pl_apdu_parse(a3, sizeof(a3), &c), PL_OK);
    cr_assert(c.lc == 2 && c.le == 0 && c.p1 == 0x11 && c.p2 == 0x05);
    cr_assert_eq(c.data, a3 + 5);
    cr_assert_eq(pl_apdu_parse(a4, sizeof(a4), &c), PL_OK);
    cr_assert(c.lc == 2 && c.le == 16);

    static const uint8_t shrt[] = {0x00, 0x70, 0x80};
    cr_assert_eq(pl_apdu_parse(shrt, sizeof(shrt), &c), PL_ERR_MALFORMED);
    cr_assert_eq(pl_apdu_parse(NULL, 0, &c), PL_ERR_MALFORMED);
    static const uint8_t lc_long[] = {0x80, 0xE2, 0x91, 0x00, 0x05, 0x01, 0x02};
    cr_assert_eq(pl_apdu_parse(lc_long, sizeof(lc_long), &c), PL_ERR_MALFORMED, "Lc past the end");
    static const uint8_t two_extra[] = {0x80, 0xE2, 0x91, 0x00, 0x01, 0x01, 0x00, 0x00};
    cr_assert_eq(pl_apdu_parse(two_extra, sizeof(two_extra), &c), PL_ERR_MALFORMED);
    static const uint8_t ext[] = {0x80, 0xE2, 0x91, 0x00, 0x00, 0x01, 0x00, 0x01};
    cr_assert_eq(pl_apdu_parse(ext, sizeof(ext), &c), PL_ERR_UNSUPPORTED, "extended length");
    cr_assert_eq(c.data, NULL, "cleared on error");
}

Test(apdu, rapdu_codec)
{
    struct pl_rapdu r;
    uint8_t big[259] = {0};
    static const uint8_t ok[] = {0x01, 0x02, 0x90, 0x00};

    cr_assert_eq(pl_rapdu_parse(ok, sizeof(ok), &r), PL_OK);
    cr_assert_eq(r.len, 2);
    cr_assert_eq(r.sw, 0x9000);
    cr_assert_eq(pl_rapdu_parse(ok + 2, 2, &r), PL_OK);
    cr_assert_eq(r.len, 0);
    cr_assert_eq(pl_rapdu_parse(ok, 1, &r), PL_ERR_MALFORMED);
    cr_assert_eq(pl_rapdu_parse(big, 259, &r), PL_ERR_MALFORMED, "over 256 data bytes");
    cr_assert_eq(pl_rapdu_parse(big, 258, &r), PL_OK);

    uint8_t buf[8];
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_rapdu_encode(ok, 2, 0x6310, &w), PL_OK);
    cr_assert_eq(memcmp(buf, "\x01\x02\x63\x10", 4), 0);
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_rapdu_encode(big, 257, 0x9000, &w), PL_ERR_INVAL);
}

Test(apdu, class_byte)
{
    uint8_t cla;
    unsigned ch;
    uint8_t base;
    cr_assert_eq(pl_apdu_cla(0x80, 0, &cla), PL_OK);
    cr_assert_eq(cla, 0x80);
    cr_assert_eq(pl_apdu_cla(0x80, 3, &cla), PL_OK);
    cr_assert_eq(cla, 0x83);
    cr_assert_eq(pl_apdu_cla(0x80, 4, &cla), PL_OK);
    cr_assert_eq(cla, 0xC0);
    cr_assert_eq(pl_apdu_cla(0x00, 19, &cla), PL_OK);
    cr_assert_eq(cla, 0x4F);
    cr_assert_eq(pl_apdu_cla(0x00, 20, &cla), PL_ERR_INVAL);
    cr_assert_eq(pl_apdu_cla(0x40, 0, &cla), PL_ERR_INVAL);
    for (unsigned b = 0; b < 2; b++) {
        for (unsigned i = 0; i <= PL_APDU_MAX_CHANNEL; i++) {
            cr_assert_eq(pl_apdu_cla(b ? 0x80 : 0x00, i, &cla), PL_OK);
            cr_assert_eq(pl_apdu_cla_parse(cla, &ch, &base), PL_OK);
            cr_assert_eq(ch, i);
            cr_assert_eq(base, b ? 0x80 : 0x00);
        }
    }
    cr_assert_eq(pl_apdu_cla_parse(0x84, &ch, &base), PL_ERR_UNSUPPORTED, "secure messaging");
    cr_assert_eq(pl_apdu_cla_parse(0x90, &ch, &base), PL_ERR_UNSUPPORTED, "command chaining");
    cr_assert_eq(pl_apdu_cla_parse(0xE0, &ch, &base), PL_ERR_UNSUPPORTED, "SM, further class");
    cr_assert_eq(pl_apdu_cla_parse(0x20, &ch, &base), PL_ERR_UNSUPPORTED, "reserved");
    cr_assert_eq(pl_apdu_cla_parse(0xFF, &ch, &base), PL_ERR_UNSUPPORTED);
}

/* ---- fake card ---- */

#define FAKE_MAX_LOG 2048

struct fake_card {
    /* log of C-APDUs */
    size_t n;
    uint8_t capdu[FAKE_MAX_LOG][PL_APDU_CAPDU_MAX];
    size_t clen[FAKE_MAX_LOG];
    /* card side under test */
    struct pl_es10_rx rx;
    struct pl_es10_tx tx;
    const uint8_t *response; /* the answer to the next complete request */
    size_t response_len;
    /* scripted behaviour */
    int fail_at;            /* C-APDU index that gets sw_fail (-1: never) */
    uint16_t sw_fail;
    int io_error_at;        /* C-APDU index that gets a transport error (-1: never) */
    bool endless_61;        /* answer every APDU with 61 10 */
    bool ack_data;          /* intermediate blocks answer 'AA' 9000 */
    uint16_t final_sw;      /* SW for the last block when the response is empty */
    int short_rapdu_at;     /* answer a 1-byte R-APDU */
    uint8_t gr_cla_seen;
};

static struct fake_card *fake_new(void)
{
    struct fake_card *f = calloc(1, sizeof(*f));
    cr_assert_not_null(f);
    pl_es10_rx_init(&f->rx, 0);
    f->fail_at = -1;
    f->io_error_at = -1;
    f->short_rapdu_at = -1;
    f->final_sw = PL_SW_OK;
    return f;
}

static void fake_free(struct fake_card *f)
{
    pl_es10_rx_free(&f->rx);
    free(f);
}

static int fake_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                         size_t rcap, size_t *rlen)
{
    struct fake_card *f = user;
    struct pl_wr w;
    size_t idx = f->n;
    bool complete = false;

    cr_assert_geq(rcap, PL_APDU_RAPDU_MAX);
    cr_assert_lt(f->n, FAKE_MAX_LOG);
    cr_assert_leq(clen, PL_APDU_CAPDU_MAX);
    memcpy(f->capdu[f->n], capdu, clen);
    f->clen[f->n] = clen;
    f->n++;
    pl_wr_init_fixed(&w, rapdu, rcap);
    if ((int)idx == f->io_error_at)
        return PL_ERR_IO;
    if ((int)idx == f->short_rapdu_at) {
        rapdu[0] = 0x90;
        *rlen = 1;
        return PL_OK;
    }
    if ((int)idx == f->fail_at) {
        cr_assert_eq(pl_rapdu_encode(NULL, 0, f->sw_fail, &w), PL_OK);
        *rlen = w.len;
        return PL_OK;
    }
    if (f->endless_61) {
        cr_assert_eq(pl_rapdu_encode((const uint8_t *)"\x01", 1, 0x6110, &w), PL_OK);
        *rlen = w.len;
        return PL_OK;
    }
    if (clen >= 2 && capdu[1] == PL_INS_GET_RESPONSE) {
        unsigned ch;
        size_t le;
        f->gr_cla_seen = capdu[0];
        cr_assert_eq(pl_es10_get_response_parse(capdu, clen, &ch, &le), PL_OK);
        int rc = pl_es10_tx_next(&f->tx, le, &w);
        if (rc == PL_ERR_STATE)
            rc = pl_rapdu_encode(NULL, 0, PL_SW_CONDITIONS, &w);
        cr_assert_eq(rc, PL_OK);
        *rlen = w.len;
        return PL_OK;
    }
    int rc = pl_es10_rx_feed(&f->rx, capdu, clen, &complete);
    if (rc != PL_OK) {
        cr_assert_eq(pl_rapdu_encode(NULL, 0, pl_es10_rx_sw(rc), &w), PL_OK);
    } else if (!complete) {
        if (f->ack_data)
            cr_assert_eq(pl_rapdu_encode((const uint8_t *)"\xAA", 1, PL_SW_OK, &w), PL_OK);
        else
            cr_assert_eq(pl_rapdu_encode(NULL, 0, PL_SW_OK, &w), PL_OK);
    } else if (f->response_len == 0) {
        cr_assert_eq(pl_rapdu_encode(NULL, 0, f->final_sw, &w), PL_OK);
    } else {
        cr_assert_eq(pl_es10_tx_start(&f->tx, f->response, f->response_len, &w), PL_OK);
    }
    *rlen = w.len;
    return PL_OK;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7u);
}

Test(es10, store_data_blocks_and_long_response)
{
    struct fake_card *f = fake_new();
    struct pl_apdu_ops ops = {fake_transmit, f};
    uint8_t req[300], rsp_data[600];
    struct pl_wr rsp;
    uint16_t sw = 0;

    fill(req, sizeof(req), 1);
    fill(rsp_data, sizeof(rsp_data), 9);
    f->response = rsp_data;
    f->response_len = sizeof(rsp_data);
    pl_wr_init_dyn(&rsp, 4096);
    cr_assert_eq(pl_es10_transceive(&ops, 1, req, sizeof(req), 0, &rsp, &sw), PL_OK);
    cr_assert_eq(sw, PL_SW_OK);

    /* Three STORE DATA blocks of 120, 120, 60 bytes (default mss), case 3, then
     * GET RESPONSE 256, 256, 88. */
    cr_assert_eq(f->n, 6);
    static const uint8_t p1[] = {0x11, 0x11, 0x91};
    static const size_t lc[] = {120, 120, 60};
    size_t off = 0;
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(f->clen[i], 5 + lc[i], "block %zu: case 3, no Le", i);
        cr_assert_eq(f->capdu[i][0], 0x81, "CLA = 0x80 | channel");
        cr_assert_eq(f->capdu[i][1], 0xE2);
        cr_assert_eq(f->capdu[i][2], p1[i]);
        cr_assert_eq(f->capdu[i][3], i, "P2 = block number");
        cr_assert_eq(f->capdu[i][4], lc[i]);
        cr_assert_eq(memcmp(&f->capdu[i][5], req + off, lc[i]), 0);
        off += lc[i];
    }
    static const uint8_t le[] = {0x00, 0x00, 0x58};
    for (size_t i = 0; i < 3; i++) {
        const uint8_t want[5] = {0x81, 0xC0, 0x00, 0x00, le[i]};
        cr_assert_eq(f->clen[3 + i], 5);
        cr_assert_eq(memcmp(f->capdu[3 + i], want, 5), 0, "GET RESPONSE %zu", i);
    }
    cr_assert_eq(rsp.len, sizeof(rsp_data));
    cr_assert_eq(memcmp(rsp.buf, rsp_data, sizeof(rsp_data)), 0);

    /* The card side reassembled the request exactly. */
    const uint8_t *got;
    size_t glen;
    cr_assert_eq(pl_es10_rx_data(&f->rx, &got, &glen), PL_OK);
    cr_assert_eq(glen, sizeof(req));
    cr_assert_eq(memcmp(got, req, sizeof(req)), 0);
    pl_wr_free(&rsp);
    fake_free(f);
}

Test(es10, block_sizes_and_channels)
{
    uint8_t req[600];
    fill(req, sizeof(req), 3);
    static const struct {
        size_t len, mss;
        unsigned channel;
        size_t blocks;
        uint8_t cla;
    } cases[] = {
        {240, 120, 0, 2, 0x80}, {241, 120, 2, 3, 0x82}, {1, 0, 3, 1, 0x83},
        {255, 255, 4, 1, 0xC0}, {256, 255, 19, 2, 0xCF}, {600, 1, 0, 600, 0x80},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct fake_card *f = fake_new();
        struct pl_apdu_ops ops = {fake_transmit, f};
        int rc = pl_es10_transceive(&ops, cases[k].channel, req, cases[k].len, cases[k].mss,
                                    NULL, NULL);
        if (cases[k].len > PL_ES10_MAX_BLOCKS * (cases[k].mss ? cases[k].mss : 120)) {
            cr_assert_eq(rc, PL_ERR_OVERFLOW, "case %zu", k);
            cr_assert_eq(f->n, 0, "nothing sent");
            fake_free(f);
            continue;
        }
        cr_assert_eq(rc, PL_OK, "case %zu", k);
        cr_assert_eq(f->n, cases[k].blocks, "case %zu", k);
        for (size_t i = 0; i < f->n; i++) {
            cr_assert_eq(f->capdu[i][0], cases[k].cla);
            cr_assert_eq(f->capdu[i][2], i + 1 == f->n ? 0x91 : 0x11);
            cr_assert_eq(f->capdu[i][3], (uint8_t)i);
        }
        fake_free(f);
    }
}

Test(es10, transceive_errors)
{
    uint8_t req[300];
    uint16_t sw = 1;
    struct pl_wr rsp;
    fill(req, sizeof(req), 5);

    /* An error SW on block 1 stops the transfer there. */
    struct fake_card *f = fake_new();
    struct pl_apdu_ops ops = {fake_transmit, f};
    f->fail_at = 1;
    f->sw_fail = 0x6A88;
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, sizeof(req), 0, NULL, &sw), PL_ERR_CARD_SW);
    cr_assert_eq(sw, 0x6A88);
    cr_assert_eq(f->n, 2, "block 2 never sent");
    fake_free(f);

    /* The transport's error is returned as is; sw stays 0. */
    f = fake_new();
    ops.user = f;
    f->io_error_at = 0;
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 10, 0, NULL, &sw), PL_ERR_IO);
    cr_assert_eq(sw, 0);
    fake_free(f);

    /* A one-byte R-APDU. */
    f = fake_new();
    ops.user = f;
    f->short_rapdu_at = 0;
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 10, 0, NULL, &sw), PL_ERR_MALFORMED);
    fake_free(f);

    /* A card answering 61xx forever: bounded. */
    f = fake_new();
    ops.user = f;
    f->endless_61 = true;
    pl_wr_init_dyn(&rsp, 1u << 20);
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 10, 0, &rsp, &sw), PL_ERR_OVERFLOW);
    cr_assert_eq(f->n, 1 + PL_APDU_MAX_GET_RESPONSE);
    pl_wr_free(&rsp);
    fake_free(f);

    /* A response larger than the caller allows. */
    uint8_t big[1000];
    fill(big, sizeof(big), 0);
    f = fake_new();
    ops.user = f;
    f->response = big;
    f->response_len = sizeof(big);
    pl_wr_init_dyn(&rsp, 500);
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 10, 0, &rsp, &sw), PL_ERR_OVERFLOW);
    pl_wr_free(&rsp);
    fake_free(f);

    /* Bad arguments: nothing is sent. */
    f = fake_new();
    ops.user = f;
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 0, 0, NULL, &sw), PL_ERR_INVAL);
    cr_assert_eq(pl_es10_transceive(&ops, 0, NULL, 4, 0, NULL, &sw), PL_ERR_INVAL);
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 10, 256, NULL, &sw), PL_ERR_INVAL);
    cr_assert_eq(pl_es10_transceive(&ops, 20, req, 10, 0, NULL, &sw), PL_ERR_INVAL);
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 257, 1, NULL, &sw), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_es10_transceive(NULL, 0, req, 10, 0, NULL, &sw), PL_ERR_INVAL);
    cr_assert_eq(f->n, 0);
    fake_free(f);
}

Test(es10, status_words_and_intermediate_data)
{
    uint8_t req[200];
    uint16_t sw = 0;
    struct pl_wr rsp;
    fill(req, sizeof(req), 7);

    /* '91xx' (proactive command pending) is a normal ending: success, SW reported. */
    struct fake_card *f = fake_new();
    struct pl_apdu_ops ops = {fake_transmit, f};
    f->final_sw = 0x9110;
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, sizeof(req), 0, NULL, &sw), PL_OK);
    cr_assert_eq(sw, 0x9110);
    fake_free(f);

    /* '6300' and '9100'-like values other than 9000/91xx are errors. */
    f = fake_new();
    ops.user = f;
    f->final_sw = 0x6300;
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, sizeof(req), 0, NULL, &sw), PL_ERR_CARD_SW);
    cr_assert_eq(sw, 0x6300);
    fake_free(f);

    /* Data returned with 9000 on an intermediate block is kept, in order. */
    f = fake_new();
    ops.user = f;
    f->ack_data = true;
    f->response = (const uint8_t *)"\xBF\x2B\x00";
    f->response_len = 3;
    pl_wr_init_dyn(&rsp, 64);
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, sizeof(req), 0, &rsp, &sw), PL_OK);
    cr_assert_eq(rsp.len, 4);
    cr_assert_eq(memcmp(rsp.buf, "\xAA\xBF\x2B\x00", 4), 0);
    pl_wr_free(&rsp);
    fake_free(f);
}

/* ---- card side ---- */

static size_t store_data(uint8_t *buf, uint8_t cla, uint8_t p1, uint8_t p2, const uint8_t *d,
                         size_t n)
{
    struct pl_capdu c = {.cla = cla, .ins = 0xE2, .p1 = p1, .p2 = p2, .data = d, .lc = n};
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, PL_APDU_CAPDU_MAX);
    cr_assert_eq(pl_apdu_encode(&c, &w), PL_OK);
    return w.len;
}

Test(es10_rx, in_order_and_restart)
{
    struct pl_es10_rx rx;
    uint8_t a[PL_APDU_CAPDU_MAX], d[100];
    bool done = true;
    const uint8_t *p;
    size_t n;

    fill(d, sizeof(d), 1);
    pl_es10_rx_init(&rx, 0);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_ERR_STATE);
    n = store_data(a, 0x80, 0x11, 0, d, 40);
    cr_assert_eq(pl_es10_rx_feed(&rx, a, n, &done), PL_OK);
    cr_assert_not(done);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_ERR_STATE, "not complete yet");
    n = store_data(a, 0x80, 0x11, 1, d + 40, 40);
    cr_assert_eq(pl_es10_rx_feed(&rx, a, n, &done), PL_OK);
    n = store_data(a, 0x80, 0x91, 2, d + 80, 20);
    cr_assert_eq(pl_es10_rx_feed(&rx, a, n, &done), PL_OK);
    cr_assert(done);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_OK);
    cr_assert_eq(n, 100);
    cr_assert_eq(memcmp(p, d, 100), 0);

    /* A new block 0 starts over; so does one in the middle of a request. */
    n = store_data(a, 0x80, 0x11, 0, d, 10);
    cr_assert_eq(pl_es10_rx_feed(&rx, a, n, &done), PL_OK);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_ERR_STATE, "previous data dropped");
    n = store_data(a, 0x80, 0x91, 0, d + 50, 5);
    cr_assert_eq(pl_es10_rx_feed(&rx, a, n, &done), PL_OK);
    cr_assert(done);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_OK);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(p, d + 50, 5), 0);

    /* A case 4 STORE DATA (with Le) is accepted too; channel 5 (CLA C1). */
    struct pl_capdu c = {.cla = 0xC1, .ins = 0xE2, .p1 = 0x91, .p2 = 0, .data = d, .lc = 3, .le = 256};
    struct pl_wr w;
    pl_wr_init_fixed(&w, a, sizeof(a));
    cr_assert_eq(pl_apdu_encode(&c, &w), PL_OK);
    cr_assert_eq(pl_es10_rx_feed(&rx, a, w.len, &done), PL_OK);
    cr_assert(done);
    cr_assert_eq(rx.channel, 5);
    pl_es10_rx_free(&rx);
}

Test(es10_rx, rejects)
{
    struct pl_es10_rx rx;
    uint8_t a[PL_APDU_CAPDU_MAX], d[200];
    bool done;
    size_t n;
    const uint8_t *p;

    fill(d, sizeof(d), 2);
    pl_es10_rx_init(&rx, 100);

#define FEED(cla, p1, p2, len, want)                                                       \
    do {                                                                                   \
        n = store_data(a, (cla), (p1), (p2), d, (len));                                    \
        int rc_ = pl_es10_rx_feed(&rx, a, n, &done);                                       \
        cr_expect_eq(rc_, (want), "line %d: %d %s", __LINE__, rc_, pl_strerror(rc_));      \
    } while (0)

    /* Out of order: 0 then 2. */
    FEED(0x80, 0x11, 0, 10, PL_OK);
    FEED(0x80, 0x11, 2, 10, PL_ERR_STATE);
    /* After an error the request is gone: block 1 has nothing to continue. */
    FEED(0x80, 0x11, 1, 10, PL_ERR_STATE);
    /* Duplicate block. */
    FEED(0x80, 0x11, 0, 10, PL_OK);
    FEED(0x80, 0x11, 1, 10, PL_OK);
    FEED(0x80, 0x11, 1, 10, PL_ERR_STATE);
    /* First block not 0. */
    FEED(0x80, 0x91, 3, 10, PL_ERR_STATE);
    /* Continuation on another channel. */
    FEED(0x80, 0x11, 0, 10, PL_OK);
    FEED(0x81, 0x11, 1, 10, PL_ERR_STATE);
    /* After the last block, a continuation is out of place. */
    FEED(0x80, 0x91, 0, 10, PL_OK);
    FEED(0x80, 0x11, 1, 10, PL_ERR_STATE);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_ERR_STATE, "the error dropped it");
    /* Bad P1 values. */
    FEED(0x80, 0x01, 0, 10, PL_ERR_INVAL);
    FEED(0x80, 0x81, 0, 10, PL_ERR_INVAL);
    FEED(0x80, 0x90, 0, 10, PL_ERR_INVAL);
    FEED(0x80, 0x10, 0, 10, PL_ERR_INVAL);
    /* Interindustry class, secure messaging. */
    FEED(0x00, 0x91, 0, 10, PL_ERR_UNSUPPORTED);
    FEED(0x84, 0x91, 0, 10, PL_ERR_UNSUPPORTED);
    /* Total over the cap (100): 60 + 41. */
    FEED(0x80, 0x11, 0, 60, PL_OK);
    FEED(0x80, 0x91, 1, 41, PL_ERR_OVERFLOW);
    FEED(0x80, 0x11, 0, 60, PL_OK);
    FEED(0x80, 0x91, 1, 40, PL_OK);
    cr_assert(done);
    cr_assert_eq(pl_es10_rx_data(&rx, &p, &n), PL_OK);
    cr_assert_eq(n, 100);
#undef FEED

    /* Wrong INS; no data (case 2); extended length; garbage. */
    static const uint8_t ins[] = {0x80, 0xE4, 0x91, 0x00, 0x01, 0x00};
    cr_assert_eq(pl_es10_rx_feed(&rx, ins, sizeof(ins), &done), PL_ERR_UNSUPPORTED);
    static const uint8_t nodata[] = {0x80, 0xE2, 0x91, 0x00, 0x00};
    cr_assert_eq(pl_es10_rx_feed(&rx, nodata, sizeof(nodata), &done), PL_ERR_MALFORMED);
    static const uint8_t ext[] = {0x80, 0xE2, 0x91, 0x00, 0x00, 0x00, 0x01, 0xAA};
    cr_assert_eq(pl_es10_rx_feed(&rx, ext, sizeof(ext), &done), PL_ERR_UNSUPPORTED);
    cr_assert_eq(pl_es10_rx_feed(&rx, ext, 3, &done), PL_ERR_MALFORMED);
    cr_assert_not(done);
    pl_es10_rx_free(&rx);

    cr_assert_eq(pl_es10_rx_sw(PL_OK), 0x9000);
    cr_assert_eq(pl_es10_rx_sw(PL_ERR_STATE), PL_SW_CONDITIONS);
    cr_assert_eq(pl_es10_rx_sw(PL_ERR_INVAL), PL_SW_WRONG_P1P2);
    cr_assert_eq(pl_es10_rx_sw(PL_ERR_OVERFLOW), PL_SW_MEMORY);
    cr_assert_eq(pl_es10_rx_sw(PL_ERR_MALFORMED), PL_SW_WRONG_LENGTH);
    cr_assert_eq(pl_es10_rx_sw(PL_ERR_UNSUPPORTED), PL_SW_INS_UNSUPPORTED);
    cr_assert_eq(pl_es10_rx_sw(PL_ERR_IO), PL_SW_UNKNOWN);
}

/* The full 256 blocks P2 allows (mss 255: 65280 bytes), at the default cap. */
Test(es10_rx, max_blocks)
{
    uint8_t *req = malloc(256u * 255u);
    cr_assert_not_null(req);
    fill(req, 256u * 255u, 4);
    struct fake_card *f = fake_new();
    struct pl_apdu_ops ops = {fake_transmit, f};
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 256u * 255u, 255, NULL, NULL), PL_OK);
    cr_assert_eq(f->n, 256);
    const uint8_t *p;
    size_t n;
    cr_assert_eq(pl_es10_rx_data(&f->rx, &p, &n), PL_OK);
    cr_assert_eq(n, 256u * 255u);
    cr_assert_eq(memcmp(p, req, n), 0);
    cr_assert_eq(pl_es10_transceive(&ops, 0, req, 256u * 255u + 1, 255, NULL, NULL), PL_ERR_OVERFLOW);
    fake_free(f);
    free(req);
}

Test(es10_tx, chunks)
{
    struct pl_es10_tx tx;
    uint8_t data[600], buf[PL_APDU_RAPDU_MAX];
    struct pl_wr w;
    fill(data, sizeof(data), 3);

    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_start(&tx, NULL, 0, &w), PL_OK);
    cr_assert_eq(w.len, 2);
    cr_assert_eq(memcmp(buf, "\x90\x00", 2), 0);
    cr_assert_not(pl_es10_tx_pending(&tx));
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_next(&tx, 0, &w), PL_ERR_STATE);

    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_start(&tx, data, sizeof(data), &w), PL_OK);
    cr_assert_eq(memcmp(buf, "\x61\x00", 2), 0, "256 or more available: 61 00");
    cr_assert(pl_es10_tx_pending(&tx));
    /* 16 bytes, then 256, 256, 72. */
    static const struct {
        size_t le, got;
        uint16_t sw;
    } steps[] = {{16, 16, 0x6100}, {0, 256, 0x6100}, {256, 256, 0x6148}, {0x48, 72, 0x9000}};
    size_t off = 0;
    for (size_t i = 0; i < 4; i++) {
        pl_wr_init_fixed(&w, buf, sizeof(buf));
        cr_assert_eq(pl_es10_tx_next(&tx, steps[i].le, &w), PL_OK);
        cr_assert_eq(w.len, steps[i].got + 2, "step %zu", i);
        cr_assert_eq(memcmp(buf, data + off, steps[i].got), 0);
        uint16_t sw = (uint16_t)(buf[steps[i].got] << 8 | buf[steps[i].got + 1]);
        cr_assert_eq(sw, steps[i].sw, "step %zu: %04x", i, sw);
        off += steps[i].got;
    }
    cr_assert_not(pl_es10_tx_pending(&tx));
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_next(&tx, 0, &w), PL_ERR_STATE);

    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_start(&tx, data, 5, &w), PL_OK);
    cr_assert_eq(memcmp(buf, "\x61\x05", 2), 0);
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_next(&tx, 257, &w), PL_ERR_INVAL);
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_es10_tx_start(&tx, NULL, 5, &w), PL_ERR_INVAL);
    cr_assert_not(pl_es10_tx_pending(&tx));
}

Test(es10_tx, get_response_parse)
{
    unsigned ch;
    size_t le;
    static const uint8_t a[] = {0x80, 0xC0, 0x00, 0x00, 0x00};
    static const uint8_t b[] = {0xC2, 0xC0, 0x00, 0x00, 0x10};
    static const uint8_t iso[] = {0x01, 0xC0, 0x00, 0x00, 0x1C};
    static const uint8_t bad_ins[] = {0x80, 0xC2, 0x00, 0x00, 0x00};
    static const uint8_t bad_p1[] = {0x80, 0xC0, 0x01, 0x00, 0x00};
    static const uint8_t no_le[] = {0x80, 0xC0, 0x00, 0x00};
    static const uint8_t data[] = {0x80, 0xC0, 0x00, 0x00, 0x01, 0x00};

    cr_assert_eq(pl_es10_get_response_parse(a, sizeof(a), &ch, &le), PL_OK);
    cr_assert(ch == 0 && le == 256);
    cr_assert_eq(pl_es10_get_response_parse(b, sizeof(b), &ch, &le), PL_OK);
    cr_assert(ch == 6 && le == 16);
    cr_assert_eq(pl_es10_get_response_parse(iso, sizeof(iso), &ch, &le), PL_OK);
    cr_assert(ch == 1 && le == 0x1C);
    cr_assert_eq(pl_es10_get_response_parse(bad_ins, sizeof(bad_ins), &ch, &le), PL_ERR_UNSUPPORTED);
    cr_assert_eq(pl_es10_get_response_parse(bad_p1, sizeof(bad_p1), &ch, &le), PL_ERR_INVAL);
    cr_assert_eq(pl_es10_get_response_parse(no_le, sizeof(no_le), &ch, &le), PL_ERR_MALFORMED);
    cr_assert_eq(pl_es10_get_response_parse(data, sizeof(data), &ch, &le), PL_ERR_MALFORMED);
}

/* ---- channel management and SELECT against a scripted card ---- */

struct script {
    size_t n;
    uint8_t capdu[8][PL_APDU_CAPDU_MAX];
    size_t clen[8];
    const uint8_t *answers[8];
    size_t alen[8];
};

static int script_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                           size_t rcap, size_t *rlen)
{
    struct script *s = user;
    cr_assert_lt(s->n, 8);
    memcpy(s->capdu[s->n], capdu, clen);
    s->clen[s->n] = clen;
    cr_assert_leq(s->alen[s->n], rcap);
    memcpy(rapdu, s->answers[s->n], s->alen[s->n]);
    *rlen = s->alen[s->n];
    s->n++;
    return PL_OK;
}

Test(apdu, manage_channel_and_select)
{
    struct script s = {0};
    struct pl_apdu_ops ops = {script_transmit, &s};
    unsigned ch = 99;
    uint16_t sw = 0;

    s.answers[0] = (const uint8_t *)"\x02\x90\x00";
    s.alen[0] = 3;
    cr_assert_eq(pl_apdu_open_channel(&ops, &ch, &sw), PL_OK);
    cr_assert_eq(ch, 2);
    cr_assert_eq(s.clen[0], 5);
    cr_assert_eq(memcmp(s.capdu[0], "\x00\x70\x00\x00\x01", 5), 0);

    /* SELECT ISD-R on channel 2: 02 A4 04 00 10 <AID> 00, then 61 1C -> 02 C0 00 00 1C. */
    static uint8_t fci[0x1C + 2];
    memset(fci, 0x6F, sizeof(fci));
    fci[0x1C] = 0x90;
    fci[0x1D] = 0x00;
    s.answers[1] = (const uint8_t *)"\x61\x1C";
    s.alen[1] = 2;
    s.answers[2] = fci;
    s.alen[2] = sizeof(fci);
    struct pl_wr w;
    pl_wr_init_dyn(&w, 256);
    cr_assert_eq(pl_apdu_select_aid(&ops, ch, pl_apdu_isdr_aid, PL_ISDR_AID_LEN, &w, &sw), PL_OK);
    cr_assert_eq(sw, 0x9000);
    cr_assert_eq(s.clen[1], 5 + 16 + 1);
    cr_assert_eq(memcmp(s.capdu[1], "\x02\xA4\x04\x00\x10", 5), 0);
    cr_assert_eq(memcmp(s.capdu[1] + 5,
                        "\xA0\x00\x00\x05\x59\x10\x10\xFF\xFF\xFF\xFF\x89\x00\x00\x01\x00", 16),
                 0);
    cr_assert_eq(s.capdu[1][21], 0x00);
    cr_assert_eq(memcmp(s.capdu[2], "\x02\xC0\x00\x00\x1C", 5), 0);
    cr_assert_eq(w.len, 0x1C);
    pl_wr_free(&w);

    s.answers[3] = (const uint8_t *)"\x90\x00";
    s.alen[3] = 2;
    cr_assert_eq(pl_apdu_close_channel(&ops, ch, &sw), PL_OK);
    cr_assert_eq(s.clen[3], 4);
    cr_assert_eq(memcmp(s.capdu[3], "\x00\x70\x80\x02", 4), 0);

    /* Failures: no channel available, a bogus channel number, SELECT not found. */
    s.answers[4] = (const uint8_t *)"\x6A\x81";
    s.alen[4] = 2;
    cr_assert_eq(pl_apdu_open_channel(&ops, &ch, &sw), PL_ERR_CARD_SW);
    cr_assert_eq(sw, 0x6A81);
    cr_assert_eq(ch, 0);
    s.answers[5] = (const uint8_t *)"\x00\x90\x00";
    s.alen[5] = 3;
    cr_assert_eq(pl_apdu_open_channel(&ops, &ch, &sw), PL_ERR_MALFORMED);
    s.answers[6] = (const uint8_t *)"\x6A\x82";
    s.alen[6] = 2;
    cr_assert_eq(pl_apdu_select_aid(&ops, 1, pl_apdu_isdr_aid, 16, NULL, &sw), PL_ERR_CARD_SW);
    cr_assert_eq(sw, PL_SW_NOT_FOUND);
    cr_assert_eq(pl_apdu_select_aid(&ops, 1, pl_apdu_isdr_aid, 17, NULL, &sw), PL_ERR_INVAL);
    cr_assert_eq(pl_apdu_close_channel(&ops, 0, &sw), PL_ERR_INVAL);
    cr_assert_eq(s.n, 7);
}
