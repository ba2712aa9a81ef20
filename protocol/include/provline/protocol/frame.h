/* Serial frame codec for the station <-> fixture link (pure: no I/O, no clock).
 *
 * Sources:
 *  - COBS: S. Cheshire, M. Baker, "Consistent Overhead Byte Stuffing",
 *    IEEE/ACM Transactions on Networking 7(2), April 1999.
 *  - CRC-32: ISO/IEC 3309 / ITU-T V.42 / IEEE 802.3 polynomial 0x04C11DB7, reflected,
 *    init and xorout 0xFFFFFFFF ("CRC-32/ISO-HDLC" in the reveng CRC catalogue),
 *    check value CRC("123456789") = 0xCBF43926.
 *  - provline's own format, specified byte by byte in docs/serial-framing.md.
 *
 * On the wire one frame is
 *
 *     0x00 | COBS( header(14) | payload(len) | crc32be(4) ) | 0x00
 *
 * COBS removes every 0x00 from the frame body, so 0x00 only ever appears as a delimiter
 * and a receiver resynchronises at the next 0x00 after line noise or a cut frame.
 * The CRC covers header and payload. The payload is at most PL_FRAME_MAX_PAYLOAD bytes;
 * longer messages are split into several DATA frames by the link layer (link.h).
 */
#ifndef PROVLINE_PROTOCOL_FRAME_H
#define PROVLINE_PROTOCOL_FRAME_H

#include "provline/protocol/err.h"

#include <stddef.h>
#include <stdint.h>

#define PL_FRAME_VERSION     1u
#define PL_FRAME_DELIM       0x00u
#define PL_FRAME_MAX_PAYLOAD 4096u
#define PL_FRAME_HDR_LEN     14u
#define PL_FRAME_CRC_LEN     4u
/* Largest frame body before COBS: header + payload + CRC. */
#define PL_FRAME_RAW_MAX (PL_FRAME_HDR_LEN + PL_FRAME_MAX_PAYLOAD + PL_FRAME_CRC_LEN)
/* Worst-case COBS output for n input bytes: one code byte per started run of 254. */
#define PL_FRAME_COBS_MAX(n) ((n) + (n) / 254u + 1u)
/* Largest encoded frame on the wire, both delimiters included. */
#define PL_FRAME_ENC_MAX (PL_FRAME_COBS_MAX(PL_FRAME_RAW_MAX) + 2u)
/* Encoded size of a frame without payload (ACK, NAK, RESET, RESET_ACK). */
#define PL_FRAME_CTRL_ENC_MAX (PL_FRAME_COBS_MAX(PL_FRAME_HDR_LEN + PL_FRAME_CRC_LEN) + 2u)

enum pl_frame_type {
    PL_FRAME_DATA = 1,      /* a fragment of a message; seq numbered */
    PL_FRAME_ACK = 2,       /* "I have every DATA frame up to and including seq" */
    PL_FRAME_NAK = 3,       /* "I saw a damaged frame; I expect seq next" */
    PL_FRAME_RESET = 4,     /* "I (src) start a session; forget what you knew of me" */
    PL_FRAME_RESET_ACK = 5, /* "I accepted the RESET of dst" */
};

/* Flag bits; every other bit must be zero. */
#define PL_FRAME_F_MORE 0x01u /* DATA: more fragments of this message follow */

struct pl_frame_hdr {
    uint8_t type;  /* enum pl_frame_type */
    uint8_t flags; /* PL_FRAME_F_* */
    uint8_t seq;
    uint32_t src; /* sender's session id */
    uint32_t dst; /* receiver's session id as the sender knows it (0 = unknown) */
    uint16_t len; /* payload length, <= PL_FRAME_MAX_PAYLOAD */
};

/* CRC-32/ISO-HDLC. Start with crc = 0 and feed the running value back in to continue. */
uint32_t pl_crc32_update(uint32_t crc, const uint8_t *p, size_t n);
uint32_t pl_crc32(const uint8_t *p, size_t n);

/* COBS-encodes n bytes of in (borrowed) into out (no delimiters). Needs
 * PL_FRAME_COBS_MAX(n) bytes of room, else PL_ERR_OVERFLOW. */
PL_MUST_CHECK int pl_frame_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                                       size_t *out_len);
/* Decodes one COBS block sequence (no delimiters). PL_ERR_MALFORMED on a 0x00 in the input or
 * a code byte that runs past the end; PL_ERR_OVERFLOW when out is too small. */
PL_MUST_CHECK int pl_frame_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                                       size_t *out_len);

/* Encodes one frame, delimiters included, into out (cap >= PL_FRAME_ENC_MAX is always
 * enough). h->len is the payload length; payload is borrowed (may be NULL when len is 0).
 * PL_ERR_INVAL on an unknown type, unknown flag bits or len > PL_FRAME_MAX_PAYLOAD;
 * PL_ERR_OVERFLOW when out is too small. */
PL_MUST_CHECK int pl_frame_encode(const struct pl_frame_hdr *h, const uint8_t *payload,
                                  uint8_t *out, size_t cap, size_t *out_len);

/* Parses one decoded frame body (header | payload | crc, as COBS-decoded). On success *h is
 * filled and *payload points into raw (borrowed, h->len bytes; NULL when h->len is 0).
 * Errors: PL_ERR_OVERFLOW (n > PL_FRAME_RAW_MAX), PL_ERR_TRUNCATED (shorter than header + CRC,
 * or shorter than its length field says), PL_ERR_MALFORMED (CRC mismatch, longer than its
 * length field says, bad version, unknown type or flag bits). Before the CRC verifies, the
 * length field is only compared with n (to tell a cut frame from a damaged one). */
PL_MUST_CHECK int pl_frame_parse(const uint8_t *raw, size_t n, struct pl_frame_hdr *h,
                                 const uint8_t **payload);

/* Receiver counters. Every rejected frame is counted in exactly one of the error fields. */
struct pl_frame_rx_stats {
    uint64_t frames;    /* good frames delivered */
    uint64_t bad_crc;   /* CRC mismatch */
    uint64_t truncated; /* cut frames: too short, COBS block cut by a delimiter, short payload */
    uint64_t malformed; /* trailing bytes, bad version, unknown type or flags */
    uint64_t oversize;  /* more than PL_FRAME_RAW_MAX decoded bytes before a delimiter */
    uint64_t skipped;   /* bytes dropped while hunting for a delimiter or after an oversize */
};

/* Incremental decoder. Caller-owned; init cannot fail; holds no heap memory. */
struct pl_frame_rx {
    uint8_t buf[PL_FRAME_RAW_MAX]; /* decoded body of the frame being received */
    size_t len;                    /* decoded bytes in buf */
    uint8_t state;                 /* internal */
    uint8_t blk_left;              /* COBS: data bytes left in the current block */
    uint8_t blk_zero;              /* COBS: the current block ends in an implied 0x00 */
    uint8_t have_code;             /* COBS: the segment's first code byte was seen */
    struct pl_frame_rx_stats stats;
};

/* Called once per good frame; h and payload are borrowed for the call only. */
typedef void (*pl_frame_cb)(void *user, const struct pl_frame_hdr *h, const uint8_t *payload);

void pl_frame_rx_init(struct pl_frame_rx *rx);
/* Feeds n bytes (borrowed) from the line. Skips bytes until the first delimiter, then
 * decodes frames as delimiters arrive, calling cb (may be NULL) for each good frame and
 * counting each bad one. Bytes may arrive in any chunking. Returns the number of good
 * frames delivered by this call. Never reads outside bytes[0..n) or writes outside rx. */
size_t pl_frame_rx_feed(struct pl_frame_rx *rx, const uint8_t *bytes, size_t n, pl_frame_cb cb,
                        void *user);
/* Sum of the error counters (everything except frames and skipped). */
uint64_t pl_frame_rx_errors(const struct pl_frame_rx *rx);

#endif
