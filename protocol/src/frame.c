/* Serial frame codec: COBS framing, CRC-32, incremental decoder (pure, no I/O).
 *
 * Sources: S. Cheshire, M. Baker, "Consistent Overhead Byte Stuffing", IEEE/ACM ToN 7(2),
 * 1999 (COBS); ITU-T V.42 / ISO/IEC 3309 CRC-32 (CRC-32/ISO-HDLC, reflected polynomial
 * 0xEDB88320, init/xorout 0xFFFFFFFF, check 0xCBF43926); the frame layout is provline's own,
 * docs/serial-framing.md. Untrusted bytes are read only through pl_rd (STYLE.md §7.3 rule 3).
 */
#include "provline/protocol/frame.h"

#include "provline/protocol/rd.h"

#include <stdbool.h>
#include <string.h>

/* Table for the reflected polynomial 0xEDB88320: entry i is the CRC register after shifting
 * the byte i through 8 rounds. Generated offline by that definition; the check value in
 * tests/unit/test_frame.c verifies it. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t pl_crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return ~c;
}

uint32_t pl_crc32(const uint8_t *p, size_t n)
{
    return pl_crc32_update(0, p, n);
}

/* ---- COBS encoder (our own bytes) ---- */

/* Streaming COBS writer: code is the length+1 of the run being written, code_pos where its
 * code byte goes. A run closes at a 0x00 in the input (the zero is implied by a code < 0xFF)
 * or after 254 non-zero bytes (code 0xFF, no implied zero). The output is canonical: input
 * that ends right after a full run gets no extra empty run. */
struct cobs_wr {
    uint8_t *out;
    size_t cap;
    size_t pos;
    size_t code_pos;
    uint8_t code;
    bool last_full; /* the last closed run was a full 254-byte run (code 0xFF) */
    bool overflow;
};

static void cobs_begin(struct cobs_wr *c, uint8_t *out, size_t cap, size_t start)
{
    c->out = out;
    c->cap = cap;
    c->code_pos = start;
    c->pos = start + 1;
    c->code = 1;
    c->last_full = false;
    c->overflow = start >= cap;
}

static void cobs_close_run(struct cobs_wr *c)
{
    c->last_full = c->code == 0xFF;
    if (c->code_pos < c->cap)
        c->out[c->code_pos] = c->code;
    else
        c->overflow = true;
    c->code_pos = c->pos++;
    c->code = 1;
}

static void cobs_put(struct cobs_wr *c, uint8_t b)
{
    if (b == 0) {
        cobs_close_run(c);
        return;
    }
    if (c->pos < c->cap)
        c->out[c->pos] = b;
    else
        c->overflow = true;
    c->pos++;
    c->code++;
    if (c->code == 0xFF)
        cobs_close_run(c);
}

static void cobs_put_bytes(struct cobs_wr *c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cobs_put(c, p[i]);
}

/* Writes the last code byte; returns the end position (one past the last byte). */
static size_t cobs_end(struct cobs_wr *c)
{
    if (c->code == 1 && c->last_full)
        return c->code_pos; /* drop the empty run reserved after a full one */
    if (c->code_pos < c->cap)
        c->out[c->code_pos] = c->code;
    else
        c->overflow = true;
    return c->pos;
}

int pl_frame_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if ((!in && n) || !out || !out_len)
        return PL_ERR_INVAL;
    if (cap < PL_FRAME_COBS_MAX(n))
        return PL_ERR_OVERFLOW;
    struct cobs_wr c;
    cobs_begin(&c, out, cap, 0);
    cobs_put_bytes(&c, in, n);
    size_t end = cobs_end(&c);
    if (c.overflow)
        return PL_ERR_INTERNAL;
    *out_len = end;
    return PL_OK;
}

/* ---- COBS decoder state machine (untrusted bytes) ---- */

/* One COBS step on a non-zero byte. Returns the byte to append (0..255) or -1 for none. */
static int cobs_step(uint8_t *blk_left, uint8_t *blk_zero, uint8_t *have_code, uint8_t b)
{
    if (!*have_code) {
        *have_code = 1;
        *blk_left = (uint8_t)(b - 1u);
        *blk_zero = b != 0xFF;
        return -1;
    }
    if (*blk_left > 0) {
        (*blk_left)--;
        return b;
    }
    /* b is the next code byte: the previous run ended with an implied zero unless it was a
     * full 254-byte run. */
    int emit = *blk_zero ? 0 : -1;
    *blk_left = (uint8_t)(b - 1u);
    *blk_zero = b != 0xFF;
    return emit;
}

int pl_frame_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if ((!in && n) || (!out && cap) || !out_len)
        return PL_ERR_INVAL;
    struct pl_rd r;
    pl_rd_init(&r, in, n);
    uint8_t left = 0, zero = 0, have = 0, b;
    size_t len = 0;
    while (pl_rd_u8(&r, &b) == PL_OK) {
        if (b == 0)
            return PL_ERR_MALFORMED;
        int v = cobs_step(&left, &zero, &have, b);
        if (v < 0)
            continue;
        if (len >= cap)
            return PL_ERR_OVERFLOW;
        out[len++] = (uint8_t)v;
    }
    if (left > 0)
        return PL_ERR_MALFORMED;
    *out_len = len;
    return PL_OK;
}

/* ---- frame encode / parse ---- */

static bool type_known(uint8_t t)
{
    switch (t) {
    case PL_FRAME_DATA:
    case PL_FRAME_ACK:
    case PL_FRAME_NAK:
    case PL_FRAME_RESET:
    case PL_FRAME_RESET_ACK:
        return true;
    default:
        return false;
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int pl_frame_encode(const struct pl_frame_hdr *h, const uint8_t *payload, uint8_t *out, size_t cap,
                    size_t *out_len)
{
    if (!h || !out || !out_len || (!payload && h->len))
        return PL_ERR_INVAL;
    if (!type_known(h->type) || (h->flags & (uint8_t)~PL_FRAME_F_MORE)
        || h->len > PL_FRAME_MAX_PAYLOAD)
        return PL_ERR_INVAL;
    size_t raw = PL_FRAME_HDR_LEN + (size_t)h->len + PL_FRAME_CRC_LEN;
    if (cap < PL_FRAME_COBS_MAX(raw) + 2u)
        return PL_ERR_OVERFLOW;

    uint8_t hdr[PL_FRAME_HDR_LEN];
    hdr[0] = (uint8_t)PL_FRAME_VERSION;
    hdr[1] = h->type;
    hdr[2] = h->flags;
    hdr[3] = h->seq;
    put_be32(hdr + 4, h->src);
    put_be32(hdr + 8, h->dst);
    hdr[12] = (uint8_t)(h->len >> 8);
    hdr[13] = (uint8_t)h->len;
    uint32_t crc = pl_crc32_update(0, hdr, sizeof(hdr));
    crc = pl_crc32_update(crc, payload, h->len);
    uint8_t tail[PL_FRAME_CRC_LEN];
    put_be32(tail, crc);

    out[0] = PL_FRAME_DELIM;
    struct cobs_wr c;
    cobs_begin(&c, out, cap, 1);
    cobs_put_bytes(&c, hdr, sizeof(hdr));
    cobs_put_bytes(&c, payload, h->len);
    cobs_put_bytes(&c, tail, sizeof(tail));
    size_t end = cobs_end(&c);
    if (c.overflow || end >= cap)
        return PL_ERR_INTERNAL;
    out[end] = PL_FRAME_DELIM;
    *out_len = end + 1;
    return PL_OK;
}

enum reject {
    REJ_NONE = 0,
    REJ_TRUNCATED,
    REJ_MALFORMED,
    REJ_CRC,
    REJ_OVERSIZE,
};

static enum reject frame_check(const uint8_t *raw, size_t n, struct pl_frame_hdr *h,
                               const uint8_t **payload)
{
    if (n > PL_FRAME_RAW_MAX)
        return REJ_OVERSIZE;
    if (n < PL_FRAME_HDR_LEN + PL_FRAME_CRC_LEN)
        return REJ_TRUNCATED;
    struct pl_rd r;
    pl_rd_init(&r, raw, n);
    struct pl_rd hr;
    uint8_t ver, type, flags, seq;
    uint32_t src, dst, crc_wire;
    uint16_t len;
    const uint8_t *pl = NULL;
    if (pl_rd_sub(&r, PL_FRAME_HDR_LEN, &hr) != PL_OK || pl_rd_u8(&hr, &ver) != PL_OK
        || pl_rd_u8(&hr, &type) != PL_OK || pl_rd_u8(&hr, &flags) != PL_OK
        || pl_rd_u8(&hr, &seq) != PL_OK || pl_rd_u32be(&hr, &src) != PL_OK
        || pl_rd_u32be(&hr, &dst) != PL_OK || pl_rd_u16be(&hr, &len) != PL_OK)
        return REJ_TRUNCATED;
    size_t body = n - PL_FRAME_HDR_LEN - PL_FRAME_CRC_LEN;
    if (len > body)
        return REJ_TRUNCATED;
    if (len < body)
        return REJ_MALFORMED;
    if (pl_rd_bytes(&r, len, &pl) != PL_OK || pl_rd_u32be(&r, &crc_wire) != PL_OK)
        return REJ_TRUNCATED;
    if (pl_crc32(raw, n - PL_FRAME_CRC_LEN) != crc_wire)
        return REJ_CRC;
    if (ver != PL_FRAME_VERSION || !type_known(type) || (flags & (uint8_t)~PL_FRAME_F_MORE))
        return REJ_MALFORMED;
    h->type = type;
    h->flags = flags;
    h->seq = seq;
    h->src = src;
    h->dst = dst;
    h->len = len;
    *payload = len ? pl : NULL;
    return REJ_NONE;
}

int pl_frame_parse(const uint8_t *raw, size_t n, struct pl_frame_hdr *h, const uint8_t **payload)
{
    if ((!raw && n) || !h || !payload)
        return PL_ERR_INVAL;
    switch (frame_check(raw, n, h, payload)) {
    case REJ_NONE:
        return PL_OK;
    case REJ_TRUNCATED:
        return PL_ERR_TRUNCATED;
    case REJ_OVERSIZE:
        return PL_ERR_OVERFLOW;
    case REJ_MALFORMED:
    case REJ_CRC:
        return PL_ERR_MALFORMED;
    default:
        return PL_ERR_INTERNAL;
    }
}

/* ---- incremental decoder ---- */

enum rx_state {
    RX_HUNT = 0, /* before the first delimiter: we may have joined mid-frame */
    RX_BODY,     /* inside a segment */
    RX_DISCARD,  /* segment too long: drop bytes until the next delimiter */
};

void pl_frame_rx_init(struct pl_frame_rx *rx)
{
    memset(rx, 0, sizeof(*rx));
    rx->state = RX_HUNT;
}

static void rx_segment_reset(struct pl_frame_rx *rx)
{
    rx->len = 0;
    rx->blk_left = 0;
    rx->blk_zero = 0;
    rx->have_code = 0;
    rx->state = RX_BODY;
}

/* A delimiter closed the current segment: validate it and deliver or count it. */
static size_t rx_segment_end(struct pl_frame_rx *rx, pl_frame_cb cb, void *user)
{
    size_t delivered = 0;
    if (!rx->have_code) {
        /* empty segment (two delimiters in a row): the normal gap between frames */
    } else if (rx->blk_left > 0) {
        rx->stats.truncated++; /* a COBS run was cut short by the delimiter */
    } else {
        struct pl_frame_hdr h;
        const uint8_t *payload = NULL;
        switch (frame_check(rx->buf, rx->len, &h, &payload)) {
        case REJ_NONE:
            rx->stats.frames++;
            delivered = 1;
            if (cb)
                cb(user, &h, payload);
            break;
        case REJ_TRUNCATED:
            rx->stats.truncated++;
            break;
        case REJ_CRC:
            rx->stats.bad_crc++;
            break;
        case REJ_OVERSIZE:
            rx->stats.oversize++;
            break;
        case REJ_MALFORMED:
        default:
            rx->stats.malformed++;
            break;
        }
    }
    rx_segment_reset(rx);
    return delivered;
}

size_t pl_frame_rx_feed(struct pl_frame_rx *rx, const uint8_t *bytes, size_t n, pl_frame_cb cb,
                        void *user)
{
    if (!rx)
        return 0;
    struct pl_rd r;
    pl_rd_init(&r, bytes, n);
    size_t delivered = 0;
    uint8_t b;
    while (pl_rd_u8(&r, &b) == PL_OK) {
        if (b == PL_FRAME_DELIM) {
            if (rx->state == RX_BODY)
                delivered += rx_segment_end(rx, cb, user);
            else
                rx_segment_reset(rx); /* HUNT or DISCARD ends here */
            continue;
        }
        if (rx->state != RX_BODY) {
            rx->stats.skipped++;
            continue;
        }
        int v = cobs_step(&rx->blk_left, &rx->blk_zero, &rx->have_code, b);
        if (v < 0)
            continue;
        if (rx->len >= sizeof(rx->buf)) {
            /* Longer than any valid frame: count once, then skip to the next delimiter. */
            rx->stats.oversize++;
            rx->state = RX_DISCARD;
            continue;
        }
        rx->buf[rx->len++] = (uint8_t)v;
    }
    return delivered;
}

uint64_t pl_frame_rx_errors(const struct pl_frame_rx *rx)
{
    return rx->stats.bad_crc + rx->stats.truncated + rx->stats.malformed + rx->stats.oversize;
}
