/* Unit tests: serial frame codec (protocol/src/frame.c), format in docs/serial-framing.md.
 * Vectors: tests/vectors/serial_frame.txt (CRC-32/ISO-HDLC check value, COBS worked examples
 * from Cheshire & Baker, frames from an independent model). */
#include "pl_test.h"
#include "provline/protocol/frame.h"
#include "provline/protocol/hex.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

struct got_frame {
    struct pl_frame_hdr h;
    uint8_t payload[PL_FRAME_MAX_PAYLOAD];
};

struct sink {
    struct got_frame *frames;
    size_t n, cap;
};

static void sink_cb(void *user, const struct pl_frame_hdr *h, const uint8_t *payload)
{
    struct sink *s = user;
    cr_assert_lt(s->n, s->cap, "more frames than expected");
    s->frames[s->n].h = *h;
    if (h->len)
        memcpy(s->frames[s->n].payload, payload, h->len);
    s->n++;
}

static void sink_init(struct sink *s, size_t cap)
{
    s->frames = calloc(cap, sizeof(*s->frames));
    cr_assert_not_null(s->frames);
    s->n = 0;
    s->cap = cap;
}

static void sink_free(struct sink *s)
{
    free(s->frames);
    s->frames = NULL;
}

/* Deterministic PRNG (xorshift64*), so every run sees the same bytes. */
static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static size_t encode(uint8_t type, uint8_t flags, uint8_t seq, const uint8_t *payload, size_t len,
                     uint8_t *out)
{
    struct pl_frame_hdr h = {.type = type,
                             .flags = flags,
                             .seq = seq,
                             .src = 0x01020304u,
                             .dst = 0xA0B0C0D0u,
                             .len = (uint16_t)len};
    size_t n = 0;
    cr_assert_eq(pl_frame_encode(&h, payload, out, PL_FRAME_ENC_MAX, &n), PL_OK);
    return n;
}

/* Builds a frame by hand (any header values, any length) with a correct CRC and COBS. */
static size_t encode_raw(const uint8_t *hdr14, const uint8_t *payload, size_t len, uint8_t *out,
                         size_t cap)
{
    size_t raw_len = PL_FRAME_HDR_LEN + len + PL_FRAME_CRC_LEN;
    uint8_t *raw = malloc(raw_len);
    cr_assert_not_null(raw);
    memcpy(raw, hdr14, PL_FRAME_HDR_LEN);
    if (len)
        memcpy(raw + PL_FRAME_HDR_LEN, payload, len);
    uint32_t crc = pl_crc32(raw, PL_FRAME_HDR_LEN + len);
    raw[raw_len - 4] = (uint8_t)(crc >> 24);
    raw[raw_len - 3] = (uint8_t)(crc >> 16);
    raw[raw_len - 2] = (uint8_t)(crc >> 8);
    raw[raw_len - 1] = (uint8_t)crc;
    size_t n = 0;
    cr_assert_geq(cap, PL_FRAME_COBS_MAX(raw_len) + 2);
    out[0] = 0;
    cr_assert_eq(pl_frame_cobs_encode(raw, raw_len, out + 1, cap - 2, &n), PL_OK);
    out[n + 1] = 0;
    free(raw);
    return n + 2;
}

static void make_hdr(uint8_t *hdr, uint8_t ver, uint8_t type, uint8_t flags, uint16_t len)
{
    const uint8_t h[PL_FRAME_HDR_LEN] = {
        ver, type, flags, 5, 1, 2, 3, 4, 5, 6, 7, 8, (uint8_t)(len >> 8), (uint8_t)len};
    memcpy(hdr, h, sizeof(h));
}

static size_t hexarg(const char *s, uint8_t *out, size_t cap)
{
    if (strcmp(s, "-") == 0)
        return 0;
    size_t n = 0;
    cr_assert_eq(pl_hex_decode(s, out, cap, &n), PL_OK, "bad hex in vector: %.40s", s);
    return n;
}

/* ---- vectors ---- */

Test(frame, vector_file)
{
    char path[512];
    FILE *f = fopen(pl_test_src(path, sizeof(path), "tests/vectors/serial_frame.txt"), "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static char line[8192], a[8192], b[8192];
    static uint8_t in[4096], want[4096], got[PL_FRAME_ENC_MAX];
    int crcs = 0, cobs = 0, frames = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        if (sscanf(line, "crc32 %8191s %8191s", a, b) == 2) {
            size_t n = hexarg(a, in, sizeof(in));
            unsigned long crc = strtoul(b, NULL, 16);
            cr_expect_eq(pl_crc32(in, n), (uint32_t)crc, "crc32 of %s", a);
            /* byte-wise continuation gives the same value */
            uint32_t c = 0;
            for (size_t i = 0; i < n; i++)
                c = pl_crc32_update(c, in + i, 1);
            cr_expect_eq(c, (uint32_t)crc);
            crcs++;
        } else if (sscanf(line, "cobs %8191s %8191s", a, b) == 2) {
            size_t n = hexarg(a, in, sizeof(in));
            size_t wn = hexarg(b, want, sizeof(want));
            size_t gn = 0;
            cr_assert_eq(pl_frame_cobs_encode(in, n, got, sizeof(got), &gn), PL_OK);
            cr_expect_eq(gn, wn, "cobs %s: length %zu, want %zu", a, gn, wn);
            cr_expect_eq(memcmp(got, want, wn), 0, "cobs %s", a);
            cr_expect_leq(gn, PL_FRAME_COBS_MAX(n));
            size_t dn = 0;
            cr_assert_eq(pl_frame_cobs_decode(want, wn, got, sizeof(got), &dn), PL_OK);
            cr_expect_eq(dn, n);
            cr_expect_eq(memcmp(got, in, n), 0);
            cobs++;
        } else {
            unsigned type, flags, seq;
            unsigned long src, dst;
            char p[8192];
            cr_assert_eq(sscanf(line, "frame %u %u %u %lx %lx %8191s %8191s", &type, &flags, &seq,
                                &src, &dst, p, b),
                         7, "bad vector line: %.60s", line);
            size_t n = hexarg(p, in, sizeof(in));
            size_t wn = hexarg(b, want, sizeof(want));
            struct pl_frame_hdr h = {.type = (uint8_t)type,
                                     .flags = (uint8_t)flags,
                                     .seq = (uint8_t)seq,
                                     .src = (uint32_t)src,
                                     .dst = (uint32_t)dst,
                                     .len = (uint16_t)n};
            size_t gn = 0;
            cr_assert_eq(pl_frame_encode(&h, n ? in : NULL, got, sizeof(got), &gn), PL_OK);
            cr_expect_eq(gn, wn, "frame line %d: length %zu, want %zu", frames, gn, wn);
            cr_expect_eq(memcmp(got, want, wn), 0, "frame line %d differs", frames);
            /* and the decoder reads the wire bytes back */
            struct sink s;
            sink_init(&s, 2);
            struct pl_frame_rx rx;
            pl_frame_rx_init(&rx);
            cr_expect_eq(pl_frame_rx_feed(&rx, want, wn, sink_cb, &s), 1);
            cr_expect_eq(s.frames[0].h.type, type);
            cr_expect_eq(s.frames[0].h.flags, flags);
            cr_expect_eq(s.frames[0].h.seq, seq);
            cr_expect_eq(s.frames[0].h.src, (uint32_t)src);
            cr_expect_eq(s.frames[0].h.dst, (uint32_t)dst);
            cr_expect_eq(s.frames[0].h.len, n);
            cr_expect_eq(memcmp(s.frames[0].payload, in, n), 0);
            sink_free(&s);
            frames++;
        }
    }
    fclose(f);
    cr_expect_geq(crcs, 3);
    cr_expect_geq(cobs, 10);
    cr_expect_geq(frames, 6);
}

Test(frame, crc32_check_value)
{
    /* CRC-32/ISO-HDLC check value (reveng catalogue): CRC("123456789") = 0xCBF43926 */
    const uint8_t msg[] = "123456789";
    cr_assert_eq(pl_crc32(msg, 9), 0xCBF43926u);
    cr_assert_eq(pl_crc32_update(pl_crc32(msg, 4), msg + 4, 5), 0xCBF43926u);
    cr_assert_eq(pl_crc32(NULL, 0), 0u);
}

/* ---- round trips ---- */

Test(frame, round_trip_sizes_and_contents)
{
    static const size_t sizes[] = {0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 1000, 4095, 4096};
    static uint8_t payload[PL_FRAME_MAX_PAYLOAD];
    static uint8_t wire[PL_FRAME_ENC_MAX];
    rng_state = 0x1234;
    for (int pattern = 0; pattern < 4; pattern++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            size_t n = sizes[i];
            switch (pattern) {
            case 0:
                memset(payload, 0x00, n);
                break;
            case 1:
                memset(payload, 0xFF, n);
                break;
            case 2:
                fill_random(payload, n);
                break;
            default:
                for (size_t k = 0; k < n; k++)
                    payload[k] = (k % 3 == 0) ? 0 : (uint8_t)k;
                break;
            }
            size_t wn = encode(PL_FRAME_DATA, PL_FRAME_F_MORE, (uint8_t)i, payload, n, wire);
            cr_assert_leq(wn, PL_FRAME_ENC_MAX);
            cr_assert_eq(wire[0], 0);
            cr_assert_eq(wire[wn - 1], 0);
            for (size_t k = 1; k + 1 < wn; k++)
                cr_assert_neq(wire[k], 0, "0x00 inside the frame at %zu", k);
            struct sink s;
            sink_init(&s, 1);
            struct pl_frame_rx rx;
            pl_frame_rx_init(&rx);
            cr_assert_eq(pl_frame_rx_feed(&rx, wire, wn, sink_cb, &s), 1);
            cr_assert_eq(s.frames[0].h.type, PL_FRAME_DATA);
            cr_assert_eq(s.frames[0].h.flags, PL_FRAME_F_MORE);
            cr_assert_eq(s.frames[0].h.seq, (uint8_t)i);
            cr_assert_eq(s.frames[0].h.src, 0x01020304u);
            cr_assert_eq(s.frames[0].h.dst, 0xA0B0C0D0u);
            cr_assert_eq(s.frames[0].h.len, n);
            cr_assert_eq(memcmp(s.frames[0].payload, payload, n), 0, "pattern %d size %zu", pattern,
                         n);
            cr_assert_eq(pl_frame_rx_errors(&rx), 0);
            cr_assert_eq(rx.stats.skipped, 0);
            sink_free(&s);
        }
    }
}

Test(frame, every_frame_type_round_trips)
{
    uint8_t wire[PL_FRAME_CTRL_ENC_MAX];
    for (uint8_t t = PL_FRAME_DATA; t <= PL_FRAME_RESET_ACK; t++) {
        struct pl_frame_hdr h = {.type = t, .seq = 200, .src = 7, .dst = 0};
        size_t wn = 0;
        cr_assert_eq(pl_frame_encode(&h, NULL, wire, sizeof(wire), &wn), PL_OK,
                     "a control frame fits in PL_FRAME_CTRL_ENC_MAX");
        struct sink s;
        sink_init(&s, 1);
        struct pl_frame_rx rx;
        pl_frame_rx_init(&rx);
        cr_assert_eq(pl_frame_rx_feed(&rx, wire, wn, sink_cb, &s), 1);
        cr_assert_eq(s.frames[0].h.type, t);
        cr_assert_eq(s.frames[0].h.seq, 200);
        cr_assert_eq(s.frames[0].h.src, 7);
        cr_assert_eq(s.frames[0].h.len, 0);
        sink_free(&s);
    }
}

/* ---- resync: garbage, splits ---- */

Test(frame, garbage_before_between_and_after_frames)
{
    static uint8_t stream[64 * 1024];
    static uint8_t payloads[8][600];
    size_t n = 0;
    rng_state = 77;
    /* noise before the first frame, without and with zeros */
    for (int i = 0; i < 300; i++)
        stream[n++] = (uint8_t)(rnd() | 1);
    for (int f = 0; f < 8; f++) {
        fill_random(payloads[f], sizeof(payloads[f]));
        n += encode(PL_FRAME_DATA, 0, (uint8_t)f, payloads[f], sizeof(payloads[f]), stream + n);
        /* noise between frames: random bytes, some zeros, sometimes a fake delimiter run */
        size_t g = 1 + rnd() % 200;
        for (size_t k = 0; k < g; k++)
            stream[n++] = (uint8_t)rnd();
        if (f % 3 == 0)
            stream[n++] = 0;
    }
    struct sink s;
    sink_init(&s, 8);
    struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, stream, n, sink_cb, &s), 8);
    for (int f = 0; f < 8; f++) {
        cr_assert_eq(s.frames[f].h.seq, f);
        cr_assert_eq(memcmp(s.frames[f].payload, payloads[f], sizeof(payloads[f])), 0);
    }
    cr_assert_eq(rx.stats.frames, 8);
    cr_assert_geq(rx.stats.skipped, 300, "leading noise is skipped while hunting");
    cr_assert_gt(pl_frame_rx_errors(&rx), 0, "noise segments between frames are counted");
    sink_free(&s);
}

Test(frame, split_feeds_byte_by_byte_and_random_chunks)
{
    static uint8_t stream[128 * 1024];
    static uint8_t payloads[20][PL_FRAME_MAX_PAYLOAD];
    static size_t lens[20];
    size_t n = 0;
    rng_state = 99;
    for (int f = 0; f < 20; f++) {
        lens[f] = rnd() % (PL_FRAME_MAX_PAYLOAD + 1);
        fill_random(payloads[f], lens[f]);
        if (f % 4 == 0)
            memset(payloads[f], 0, lens[f] / 2);
        n += encode(PL_FRAME_DATA, 0, (uint8_t)f, payloads[f], lens[f], stream + n);
    }
    for (int mode = 0; mode < 2; mode++) {
        struct sink s;
        sink_init(&s, 20);
        struct pl_frame_rx rx;
        pl_frame_rx_init(&rx);
        size_t delivered = 0;
        for (size_t off = 0; off < n;) {
            size_t chunk = mode == 0 ? 1 : 1 + rnd() % 700;
            if (chunk > n - off)
                chunk = n - off;
            delivered += pl_frame_rx_feed(&rx, stream + off, chunk, sink_cb, &s);
            off += chunk;
        }
        cr_assert_eq(delivered, 20);
        for (int f = 0; f < 20; f++) {
            cr_assert_eq(s.frames[f].h.seq, f);
            cr_assert_eq(s.frames[f].h.len, lens[f]);
            cr_assert_eq(memcmp(s.frames[f].payload, payloads[f], lens[f]), 0);
        }
        cr_assert_eq(pl_frame_rx_errors(&rx), 0);
        sink_free(&s);
    }
}

/* ---- damage is detected ---- */

/* Flips bits of the middle frame of good|bad|good, one at a time: the damaged frame must never
 * be delivered, the damage must be counted and the frame after it must decode. stride 1 flips
 * every bit; a larger stride flips every bit of the first and last 64 bytes and every
 * stride-th bit in between. */
static void check_bitflips(size_t payload_len, size_t stride)
{
    static uint8_t payload[PL_FRAME_MAX_PAYLOAD];
    static uint8_t good_a[PL_FRAME_ENC_MAX], bad[PL_FRAME_ENC_MAX], good_c[PL_FRAME_ENC_MAX];
    rng_state = 4242 + payload_len;
    fill_random(payload, payload_len);
    for (size_t k = 0; k < payload_len; k += 17)
        payload[k] = 0; /* zeros in the body exercise COBS runs */
    size_t na = encode(PL_FRAME_DATA, 0, 0, payload, payload_len, good_a);
    size_t nb = encode(PL_FRAME_DATA, 0, 1, payload, payload_len, bad);
    size_t nc = encode(PL_FRAME_DATA, 0, 2, payload, payload_len, good_c);
    static uint8_t orig[PL_FRAME_ENC_MAX];
    memcpy(orig, bad, nb);
    struct sink s;
    sink_init(&s, 3);
    for (size_t bit = 0; bit < nb * 8; bit++) {
        if (stride > 1 && bit >= 64 * 8 && bit < (nb - 64) * 8 && bit % stride != 0)
            continue;
        memcpy(bad, orig, nb);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct pl_frame_rx rx;
        pl_frame_rx_init(&rx);
        s.n = 0;
        size_t d = pl_frame_rx_feed(&rx, good_a, na, sink_cb, &s);
        d += pl_frame_rx_feed(&rx, bad, nb, sink_cb, &s);
        d += pl_frame_rx_feed(&rx, good_c, nc, sink_cb, &s);
        cr_assert_eq(d, 2, "bit %zu of %zu: %zu frames delivered", bit, nb * 8, d);
        cr_assert_eq(s.frames[0].h.seq, 0);
        cr_assert_eq(s.frames[1].h.seq, 2, "bit %zu: the damaged frame got through", bit);
        cr_assert_gt(pl_frame_rx_errors(&rx), 0, "bit %zu: damage not counted", bit);
    }
    sink_free(&s);
}

Test(frame, every_single_bit_flip_is_detected)
{
    check_bitflips(0, 1);
    check_bitflips(40, 1);
    check_bitflips(300, 1); /* crosses a 254-byte COBS run */
    check_bitflips(1000, 1);
}

Test(frame, bit_flips_in_a_max_size_frame_are_detected)
{
    /* header, COBS runs at both ends, and a 1-in-13 sample of the rest */
    check_bitflips(PL_FRAME_MAX_PAYLOAD, 13);
}

Test(frame, oversize_frame_rejected_then_resync)
{
    static uint8_t payload[PL_FRAME_MAX_PAYLOAD + 1];
    static uint8_t wire[2 * PL_FRAME_ENC_MAX];
    uint8_t hdr[PL_FRAME_HDR_LEN];
    memset(payload, 0x5A, sizeof(payload));
    /* a well-formed frame with a correct CRC, one byte over the limit */
    make_hdr(hdr, PL_FRAME_VERSION, PL_FRAME_DATA, 0, PL_FRAME_MAX_PAYLOAD + 1);
    size_t n = encode_raw(hdr, payload, PL_FRAME_MAX_PAYLOAD + 1, wire, sizeof(wire));
    n += encode(PL_FRAME_ACK, 0, 9, NULL, 0, wire + n);
    struct sink s;
    sink_init(&s, 1);
    struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, wire, n, sink_cb, &s), 1);
    cr_assert_eq(s.frames[0].h.type, PL_FRAME_ACK, "the frame after the oversize one decodes");
    cr_assert_eq(rx.stats.oversize, 1);
    cr_assert_eq(pl_frame_rx_errors(&rx), 1);
    sink_free(&s);

    /* the encoder refuses it, the parser too */
    struct pl_frame_hdr h = {.type = PL_FRAME_DATA, .len = PL_FRAME_MAX_PAYLOAD + 1};
    size_t wn = 0;
    cr_assert_eq(pl_frame_encode(&h, payload, wire, sizeof(wire), &wn), PL_ERR_INVAL);
    const uint8_t *p = NULL;
    cr_assert_eq(pl_frame_parse(wire, PL_FRAME_RAW_MAX + 1, &h, &p), PL_ERR_OVERFLOW);
}

Test(frame, endless_noise_without_delimiter_counts_one_oversize)
{
    static uint8_t noise[100000];
    uint8_t good[PL_FRAME_CTRL_ENC_MAX];
    memset(noise, 0x55, sizeof(noise));
    noise[0] = 0; /* the decoder is synchronised when the noise starts */
    struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    struct sink s;
    sink_init(&s, 1);
    cr_assert_eq(pl_frame_rx_feed(&rx, noise, sizeof(noise), sink_cb, &s), 0);
    cr_assert_eq(rx.stats.oversize, 1);
    cr_assert_gt(rx.stats.skipped, 90000);
    size_t n = encode(PL_FRAME_NAK, 0, 3, NULL, 0, good);
    cr_assert_eq(pl_frame_rx_feed(&rx, good, n, sink_cb, &s), 1);
    cr_assert_eq(s.frames[0].h.type, PL_FRAME_NAK);
    cr_assert_eq(s.frames[0].h.seq, 3);
    sink_free(&s);
}

Test(frame, truncated_frames_are_counted)
{
    static uint8_t payload[700];
    static uint8_t full[PL_FRAME_ENC_MAX], stream[3 * PL_FRAME_ENC_MAX];
    memset(payload, 0x33, sizeof(payload));
    size_t fn = encode(PL_FRAME_DATA, 0, 1, payload, sizeof(payload), full);
    /* cut at every length: the cut frame is followed by a complete one */
    for (size_t cut = 1; cut < fn - 1; cut += 7) {
        memcpy(stream, full, cut);
        memcpy(stream + cut, full, fn);
        struct sink s;
        sink_init(&s, 2);
        struct pl_frame_rx rx;
        pl_frame_rx_init(&rx);
        cr_assert_eq(pl_frame_rx_feed(&rx, stream, cut + fn, sink_cb, &s), 1, "cut %zu", cut);
        cr_assert_eq(s.frames[0].h.len, sizeof(payload));
        if (cut > 1)
            cr_assert_eq(rx.stats.truncated, 1, "cut %zu counted as truncated", cut);
        sink_free(&s);
    }
    /* a runt: one COBS run of two bytes */
    const uint8_t runt[] = {0x00, 0x03, 0x01, 0x02, 0x00};
    struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, runt, sizeof(runt), NULL, NULL), 0);
    cr_assert_eq(rx.stats.truncated, 1);
    /* a COBS run cut by a delimiter */
    const uint8_t cut_run[] = {0x00, 0x09, 0x01, 0x02, 0x00};
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, cut_run, sizeof(cut_run), NULL, NULL), 0);
    cr_assert_eq(rx.stats.truncated, 1);
}

Test(frame, malformed_headers_with_valid_crc_are_rejected)
{
    uint8_t hdr[PL_FRAME_HDR_LEN], wire[256];
    const uint8_t pl[4] = {1, 2, 3, 4};
    struct {
        uint8_t ver, type, flags;
        uint16_t len;
        size_t real_len;
        const char *what;
    } cases[] = {
        {2, PL_FRAME_DATA, 0, 4, 4, "version 2"},
        {0, PL_FRAME_DATA, 0, 4, 4, "version 0"},
        {1, 0, 0, 4, 4, "type 0"},
        {1, 6, 0, 4, 4, "type 6"},
        {1, 0xFF, 0, 4, 4, "type 255"},
        {1, PL_FRAME_DATA, 0x02, 4, 4, "unknown flag"},
        {1, PL_FRAME_DATA, 0x80, 4, 4, "unknown high flag"},
        {1, PL_FRAME_DATA, 0, 3, 4, "trailing byte after the payload"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make_hdr(hdr, cases[i].ver, cases[i].type, cases[i].flags, cases[i].len);
        size_t n = encode_raw(hdr, pl, cases[i].real_len, wire, sizeof(wire));
        struct pl_frame_rx rx;
        pl_frame_rx_init(&rx);
        cr_assert_eq(pl_frame_rx_feed(&rx, wire, n, NULL, NULL), 0, "%s", cases[i].what);
        cr_assert_eq(rx.stats.malformed, 1, "%s", cases[i].what);
        /* the same body through pl_frame_parse */
        static uint8_t raw[512];
        size_t rn = 0;
        cr_assert_eq(pl_frame_cobs_decode(wire + 1, n - 2, raw, sizeof(raw), &rn), PL_OK);
        struct pl_frame_hdr h;
        const uint8_t *p;
        cr_assert_eq(pl_frame_parse(raw, rn, &h, &p), PL_ERR_MALFORMED, "%s", cases[i].what);
    }
    /* length field larger than the body: truncated */
    make_hdr(hdr, 1, PL_FRAME_DATA, 0, 5);
    size_t n = encode_raw(hdr, pl, 4, wire, sizeof(wire));
    struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, wire, n, NULL, NULL), 0);
    cr_assert_eq(rx.stats.truncated, 1);
    /* and a correct one for contrast */
    make_hdr(hdr, 1, PL_FRAME_DATA, PL_FRAME_F_MORE, 4);
    n = encode_raw(hdr, pl, 4, wire, sizeof(wire));
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, wire, n, NULL, NULL), 1);
}

Test(frame, parse_reports_crc_damage)
{
    uint8_t wire[PL_FRAME_ENC_MAX], raw[PL_FRAME_RAW_MAX];
    const uint8_t pl[3] = {9, 8, 7};
    size_t n = encode(PL_FRAME_DATA, 0, 0, pl, sizeof(pl), wire);
    size_t rn = 0;
    cr_assert_eq(pl_frame_cobs_decode(wire + 1, n - 2, raw, sizeof(raw), &rn), PL_OK);
    struct pl_frame_hdr h;
    const uint8_t *p = NULL;
    cr_assert_eq(pl_frame_parse(raw, rn, &h, &p), PL_OK);
    cr_assert_eq(h.len, 3);
    cr_assert_eq(memcmp(p, pl, 3), 0);
    raw[PL_FRAME_HDR_LEN + 1] ^= 0x40;
    cr_assert_eq(pl_frame_parse(raw, rn, &h, &p), PL_ERR_MALFORMED);
    cr_assert_eq(pl_frame_parse(raw, 10, &h, &p), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_frame_parse(NULL, 0, &h, &p), PL_ERR_TRUNCATED);
    /* the decoder counts the same damage as a CRC error */
    wire[1 + PL_FRAME_HDR_LEN + 2] ^= 0x01; /* a payload byte (no zeros before it) */
    struct pl_frame_rx rx;
    pl_frame_rx_init(&rx);
    cr_assert_eq(pl_frame_rx_feed(&rx, wire, n, NULL, NULL), 0);
    cr_assert_eq(rx.stats.bad_crc, 1);
}

Test(frame, encoder_argument_errors)
{
    uint8_t out[PL_FRAME_ENC_MAX];
    const uint8_t pl[8] = {0};
    size_t n = 0;
    struct pl_frame_hdr h = {.type = PL_FRAME_DATA, .len = 8};
    cr_assert_eq(pl_frame_encode(&h, pl, out, sizeof(out), &n), PL_OK);
    cr_assert_eq(pl_frame_encode(&h, NULL, out, sizeof(out), &n), PL_ERR_INVAL);
    cr_assert_eq(pl_frame_encode(&h, pl, out, n - 1, &n), PL_ERR_OVERFLOW);
    h.type = 0;
    cr_assert_eq(pl_frame_encode(&h, pl, out, sizeof(out), &n), PL_ERR_INVAL);
    h.type = 6;
    cr_assert_eq(pl_frame_encode(&h, pl, out, sizeof(out), &n), PL_ERR_INVAL);
    h.type = PL_FRAME_ACK;
    h.flags = 0x10;
    cr_assert_eq(pl_frame_encode(&h, pl, out, sizeof(out), &n), PL_ERR_INVAL);
    /* COBS helpers */
    uint8_t small[4];
    cr_assert_eq(pl_frame_cobs_encode(pl, 8, small, sizeof(small), &n), PL_ERR_OVERFLOW);
    const uint8_t with_zero[] = {0x02, 0x11, 0x00};
    cr_assert_eq(pl_frame_cobs_decode(with_zero, 3, out, sizeof(out), &n), PL_ERR_MALFORMED);
    const uint8_t run_past_end[] = {0x05, 0x11, 0x22};
    cr_assert_eq(pl_frame_cobs_decode(run_past_end, 3, out, sizeof(out), &n), PL_ERR_MALFORMED);
    const uint8_t ok[] = {0x03, 0x11, 0x22, 0x02, 0x33};
    cr_assert_eq(pl_frame_cobs_decode(ok, 5, small, 3, &n), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_frame_cobs_decode(ok, 5, small, 4, &n), PL_OK);
    cr_assert_eq(n, 4);
}
