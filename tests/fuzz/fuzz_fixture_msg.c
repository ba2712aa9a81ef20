/* Fuzz target: fixture request decoding (protocol/proto/fx_msg.h, fixture.proto) and the FPA
 * handling it (ipa/fpa.h) against a scripted dummy card; docs/fixture-protocol.md §3-§4.
 *
 * Input: u16be F | L bytes: one fixture message | card script, where L = F & 0x7FFF and the
 * top bit of F selects the basic channel (fpa.h basic_channel). The dummy card answers
 * MANAGE CHANNEL, SELECT and each complete STORE DATA command (its last block) from the
 * script, one entry per command; other STORE DATA blocks get 9000 and GET RESPONSE serves the
 * pending data. Entries: 00 = 9000 without data; 01 n(u16be) data = data then 9000 (61xx and
 * GET RESPONSE when longer than 256); 02 sw(u16be) = that status word; 03 = transport error.
 * An exhausted script answers 9000 without data.
 *
 * Invariants: the FPA always answers with one message that decodes and passes the checks,
 * carries the request's id (or 0 when the request could not be decoded) and is a response;
 * when the answer says nothing of a package was sent (BAD_PACKAGE, EID_MISMATCH, any stage
 * before HEADER, malformed requests) no STORE DATA block of a package reached the card;
 * the same bytes again get the same answer without any APDU; nothing leaks. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/ipa/fpa.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/apdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct card {
    const uint8_t *script;
    size_t len, pos;
    uint8_t pending[65536 + 16];
    size_t pend_len, pend_off;
    size_t apdus;
    size_t package_blocks;
    bool in_package;
};

static bool package_tag(const uint8_t *p, size_t n)
{
    if (n >= 2 && ((p[0] == 0xFF && p[1] == 0x71) || (p[0] == 0xBF && p[1] == 0x36)))
        return true;
    return n >= 1 && (p[0] == 0xA0 || p[0] == 0xA1 || p[0] == 0xA2 || p[0] == 0xA3 || p[0] == 0x86
                      || p[0] == 0x87 || p[0] == 0x88);
}

static int put(uint8_t *r, size_t cap, size_t *rlen, const uint8_t *d, size_t n, uint16_t sw)
{
    if (n + 2 > cap)
        return PL_ERR_OVERFLOW;
    if (n)
        memcpy(r, d, n);
    r[n] = (uint8_t)(sw >> 8);
    r[n + 1] = (uint8_t)sw;
    *rlen = n + 2;
    return PL_OK;
}

/* Serves up to 256 pending bytes; 61xx while more remain. */
static int serve(struct card *c, size_t le, uint8_t *r, size_t cap, size_t *rlen)
{
    size_t left = c->pend_len - c->pend_off;
    size_t n = left < le ? left : le;
    const uint8_t *p = c->pending + c->pend_off;
    c->pend_off += n;
    left -= n;
    uint16_t sw = left == 0 ? 0x9000u : (uint16_t)(0x6100u | (left >= 256 ? 0u : left));
    return put(r, cap, rlen, p, n, sw);
}

/* The next script entry as an answer. */
static int answer(struct card *c, bool chan, uint8_t *r, size_t cap, size_t *rlen)
{
    uint8_t kind = 0;
    if (c->pos < c->len)
        kind = c->script[c->pos++];
    switch (kind % 4u) {
    case 1: {
        size_t n = 0;
        if (c->pos + 2 <= c->len) {
            n = (size_t)c->script[c->pos] << 8 | c->script[c->pos + 1];
            c->pos += 2;
        }
        if (n > c->len - c->pos)
            n = c->len - c->pos;
        memcpy(c->pending, c->script + c->pos, n);
        c->pos += n;
        if (chan) {
            static const uint8_t one = 1;
            return put(r, cap, rlen, &one, 1, 0x9000u);
        }
        c->pend_len = n;
        c->pend_off = 0;
        if (n == 0)
            return put(r, cap, rlen, NULL, 0, 0x9000u);
        return put(r, cap, rlen, NULL, 0, (uint16_t)(0x6100u | (n >= 256 ? 0u : n)));
    }
    case 2: {
        uint16_t sw = 0x6A80u;
        if (c->pos + 2 <= c->len) {
            sw = (uint16_t)(c->script[c->pos] << 8 | c->script[c->pos + 1]);
            c->pos += 2;
        }
        if ((sw >> 8) == 0x61u || sw == 0x9000u)
            sw = 0x6F00u;
        return put(r, cap, rlen, NULL, 0, sw);
    }
    case 3:
        return PL_ERR_IO;
    default:
        if (chan) {
            static const uint8_t one = 1;
            return put(r, cap, rlen, &one, 1, 0x9000u);
        }
        return put(r, cap, rlen, NULL, 0, 0x9000u);
    }
}

static int transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *r, size_t cap,
                    size_t *rlen)
{
    struct card *c = user;
    c->apdus++;
    if (clen < 4)
        return put(r, cap, rlen, NULL, 0, 0x6700u);
    uint8_t ins = capdu[1];
    if (ins == PL_INS_GET_RESPONSE) {
        size_t le = clen >= 5 ? (capdu[4] == 0 ? 256u : capdu[4]) : 256u;
        return serve(c, le, r, cap, rlen);
    }
    if (ins == PL_INS_MANAGE_CHANNEL)
        return answer(c, capdu[2] == 0x00, r, cap, rlen);
    if (ins == PL_INS_SELECT)
        return answer(c, false, r, cap, rlen);
    if (ins == PL_INS_STORE_DATA && clen >= 5) {
        if (capdu[3] == 0)
            c->in_package = package_tag(capdu + 5, clen - 5);
        if (c->in_package)
            c->package_blocks++;
        if (capdu[2] != PL_ES10_P1_LAST)
            return put(r, cap, rlen, NULL, 0, 0x9000u);
        return answer(c, false, r, cap, rlen);
    }
    return put(r, cap, rlen, NULL, 0, 0x6D00u);
}

/* True when the answer says no byte of a package can have reached the card. */
static bool nothing_sent(const provline_fixture_Msg *m)
{
    if (m->which_body != PL_FX_ERROR)
        return false;
    const provline_fixture_Error *e = &m->body.error;
    return e->stage == provline_fixture_Stage_STAGE_REQUEST
           || e->stage == provline_fixture_Stage_STAGE_SESSION
           || e->stage == provline_fixture_Stage_STAGE_GET_EID
           || e->code == provline_fixture_ErrorCode_ERROR_EID_MISMATCH
           || e->code == provline_fixture_ErrorCode_ERROR_BAD_PACKAGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct card *c = calloc(1, sizeof(*c));
    provline_fixture_Msg *m = malloc(sizeof(*m));
    struct pl_fpa *f = NULL;
    struct pl_fpa_config cfg;
    struct pl_wr r1, r2;
    uint64_t id = 0;
    unsigned which = 0;

    if (c == NULL || m == NULL)
        abort();
    size_t l = size >= 2 ? ((size_t)(data[0] & 0x7Fu) << 8 | data[1]) : 0;
    if (l > size - (size >= 2 ? 2 : size))
        l = size >= 2 ? size - 2 : 0;
    uint8_t *req = malloc(l ? l : 1);
    if (req == NULL)
        abort();
    if (l)
        memcpy(req, data + 2, l);
    c->script = size >= 2 ? data + 2 + l : data;
    c->len = size >= 2 ? size - 2 - l : 0;

    pl_fpa_config_init(&cfg);
    cfg.apdu.transmit = transmit;
    cfg.apdu.user = c;
    cfg.basic_channel = size >= 2 && (data[0] & 0x80u);
    if (pl_fpa_new(&cfg, &f) != PL_OK)
        abort();
    pl_wr_init_dyn(&r1, PL_FX_MSG_MAX);
    pl_wr_init_dyn(&r2, PL_FX_MSG_MAX);

    if (pl_fpa_handle(f, req, l, &r1) != PL_OK)
        abort();
    if (pl_fx_msg_decode(r1.buf, r1.len, m) != PL_OK)
        abort(); /* the FPA's answers always pass the checks */
    if (pl_fx_msg_peek(req, l, &id, &which) != PL_OK)
        id = 0;
    if (m->request_id != id && m->request_id != 0)
        abort();
    if (m->which_body != PL_FX_ERROR && m->which_body != pl_fx_response_for(which))
        abort();
    if (nothing_sent(m) && c->package_blocks != 0)
        abort(); /* package bytes reached the card although the answer says none did */
    bool cached = m->request_id != 0 && pl_fx_is_request(which)
                  && !(m->which_body == PL_FX_ERROR
                       && (m->body.error.code == provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST
                           || m->body.error.code
                                  == provline_fixture_ErrorCode_ERROR_UNSUPPORTED_VERSION));
    pl_fx_msg_release(m);

    /* A resend of the same bytes. */
    size_t apdus = c->apdus;
    if (pl_fpa_handle(f, req, l, &r2) != PL_OK)
        abort();
    if (cached && (c->apdus != apdus || r1.len != r2.len || memcmp(r1.buf, r2.buf, r1.len) != 0))
        abort(); /* a resend must be answered from the store, the card untouched */

    pl_wr_free(&r1);
    pl_wr_free(&r2);
    pl_fpa_free(f);
    free(req);
    free(m);
    free(c);
    return 0;
}
