/* ISO/IEC 7816-4 short APDUs (§5.1 command/response pairs, §5.4.1 class byte and logical
 * channels, §7.1.2 MANAGE CHANNEL, §7.1.1 SELECT, §7.6.1 GET RESPONSE) and the ES10 transport
 * of GSMA SGP.22 v2.5 §5.7 (GlobalPlatform Card Spec §11.11 STORE DATA, P1 '11'/'91', P2 =
 * block number), as lpac implements it. provline reference: IFPP.md §5.7.
 *
 * Host side: pl_es10_transceive() over an APDU seam. Card side (software eUICC):
 * struct pl_es10_rx reassembles STORE DATA blocks, struct pl_es10_tx emits a long
 * response through '61xx' / GET RESPONSE. */
#ifndef PROVLINE_PROTOCOL_APDU_H
#define PROVLINE_PROTOCOL_APDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/wr.h"

/* Status words used here. */
#define PL_SW_OK 0x9000u
#define PL_SW_WRONG_LENGTH 0x6700u
#define PL_SW_CONDITIONS 0x6985u   /* conditions of use not satisfied */
#define PL_SW_WRONG_DATA 0x6A80u
#define PL_SW_NOT_FOUND 0x6A82u
#define PL_SW_WRONG_P1P2 0x6A86u
#define PL_SW_INS_UNSUPPORTED 0x6D00u
#define PL_SW_CLA_UNSUPPORTED 0x6E00u
#define PL_SW_MEMORY 0x6A84u       /* not enough memory space */
#define PL_SW_UNKNOWN 0x6F00u      /* no precise diagnosis */

#define PL_APDU_MAX_LC 255u   /* short APDUs only */
#define PL_APDU_MAX_LE 256u   /* Le byte 00 means 256 */
#define PL_APDU_CAPDU_MAX (5u + PL_APDU_MAX_LC + 1u)
#define PL_APDU_RAPDU_MAX (PL_APDU_MAX_LE + 2u)
#define PL_APDU_MAX_CHANNEL 19u

#define PL_INS_STORE_DATA 0xE2u
#define PL_INS_GET_RESPONSE 0xC0u
#define PL_INS_MANAGE_CHANNEL 0x70u
#define PL_INS_SELECT 0xA4u

/* A short command APDU. Case 1: lc == 0, le == 0; case 2: lc == 0, le 1..256;
 * case 3: lc 1..255, le == 0; case 4: lc 1..255, le 1..256. data borrows. */
struct pl_capdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data;
    size_t lc;
    size_t le; /* 0: no Le field; 256 is sent as 00 */
};
/* Appends the APDU. PL_ERR_INVAL for lc > 255, le > 256, or data NULL with lc > 0. */
PL_MUST_CHECK int pl_apdu_encode(const struct pl_capdu *c, struct pl_wr *w);
/* Parses a short C-APDU (cases 1-4). Extended length (Lc byte 00 followed by more) is
 * PL_ERR_UNSUPPORTED; any other length mismatch PL_ERR_MALFORMED. data borrows p. */
PL_MUST_CHECK int pl_apdu_parse(const uint8_t *p, size_t len, struct pl_capdu *out);

/* A response APDU: data (borrowed) then SW1 SW2. */
struct pl_rapdu {
    const uint8_t *data;
    size_t len;
    uint16_t sw;
};
/* PL_ERR_MALFORMED if shorter than 2 bytes or longer than PL_APDU_RAPDU_MAX. */
PL_MUST_CHECK int pl_rapdu_parse(const uint8_t *p, size_t len, struct pl_rapdu *out);
/* Appends data || SW (len <= 256). */
PL_MUST_CHECK int pl_rapdu_encode(const uint8_t *data, size_t len, uint16_t sw, struct pl_wr *w);

/* Class byte for a logical channel (ISO 7816-4 §5.4.1): base is 0x00 (interindustry) or
 * 0x80 (proprietary, GP); channels 0-3 use b2b1, channels 4-19 the further-interindustry
 * form b7=1, b4..b1 = channel - 4. No secure messaging. */
PL_MUST_CHECK int pl_apdu_cla(uint8_t base, unsigned channel, uint8_t *cla);
/* Inverse: the channel and base (0x00 or 0x80) of a class byte. PL_ERR_UNSUPPORTED for
 * secure-messaging bits, chaining bit or the reserved class 0xFF. */
PL_MUST_CHECK int pl_apdu_cla_parse(uint8_t cla, unsigned *channel, uint8_t *base);

/* ---- host side: the APDU seam (STYLE.md §7.3 rule 9) ---- */

/* transmit sends one C-APDU and receives one R-APDU (data || SW1 SW2, at most rcap bytes,
 * rcap >= PL_APDU_RAPDU_MAX). Returns PL_OK or a negative pl_err (I/O, timeout, ...). */
struct pl_apdu_ops {
    int (*transmit)(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t rcap,
                    size_t *rlen);
    void *user;
};

/* Most GET RESPONSE rounds one command may take (bounds a card answering '61xx' forever). */
#define PL_APDU_MAX_GET_RESPONSE 1024u

/* Sends one C-APDU and collects its response data, following '61xx' with GET RESPONSE
 * (CLA gr_cla, INS C0, P1 P2 00 00, Le = xx; 00 = 256). Data is appended to rsp (may be
 * NULL to discard). The final SW goes to *sw (may be NULL). A final SW other than '9000'
 * or '91xx' (TS 102 221 §10.2.1.1: normal ending, proactive command pending) returns
 * PL_ERR_CARD_SW. */
PL_MUST_CHECK int pl_apdu_transceive(const struct pl_apdu_ops *ops, const struct pl_capdu *c,
                                     uint8_t gr_cla, struct pl_wr *rsp, uint16_t *sw);

/* ISD-R AID (SGP.22 §2.2.3) */
#define PL_ISDR_AID_LEN 16u
extern const uint8_t pl_apdu_isdr_aid[PL_ISDR_AID_LEN];

/* MANAGE CHANNEL open (00 70 00 00 01): the card assigns *channel (1..19). */
PL_MUST_CHECK int pl_apdu_open_channel(const struct pl_apdu_ops *ops, unsigned *channel, uint16_t *sw);
/* MANAGE CHANNEL close on the basic channel (00 70 80 channel), channel 1..19. */
PL_MUST_CHECK int pl_apdu_close_channel(const struct pl_apdu_ops *ops, unsigned channel, uint16_t *sw);
/* SELECT by DF name (CLA(channel) A4 04 00 Lc AID 00); the FCI goes to fci (may be NULL). */
PL_MUST_CHECK int pl_apdu_select_aid(const struct pl_apdu_ops *ops, unsigned channel,
                                     const uint8_t *aid, size_t aid_len, struct pl_wr *fci,
                                     uint16_t *sw);

#define PL_ES10_MSS_DEFAULT 120u /* lpac es10x_mss */
#define PL_ES10_MSS_MAX 255u
#define PL_ES10_MAX_BLOCKS 256u  /* P2 is one byte */
#define PL_ES10_P1_MORE 0x11u    /* more blocks, BER-TLV data */
#define PL_ES10_P1_LAST 0x91u    /* last block */

/* Sends one ES10 request (a DER TLV) to the ISD-R on channel as STORE DATA blocks:
 * CLA = 0x80|channel (pl_apdu_cla), INS E2, P1 '11' (more) / '91' (last), P2 = block number
 * from 0, at most mss data bytes per block (0 = PL_ES10_MSS_DEFAULT, max 255), no Le (case
 * 3, as lpac). '61xx' is followed by GET RESPONSE (same CLA, 'C0'), and every block's
 * response data is appended to rsp. An error SW on any block stops the transfer with
 * PL_ERR_CARD_SW and *sw set (sw may be NULL). PL_ERR_OVERFLOW if the request needs more
 * than 256 blocks or the response exceeds rsp's maximum. */
PL_MUST_CHECK int pl_es10_transceive(const struct pl_apdu_ops *ops, unsigned channel,
                                     const uint8_t *req, size_t req_len, size_t mss,
                                     struct pl_wr *rsp, uint16_t *sw);

/* ---- card side ---- */

#define PL_ES10_RX_MAX_DEFAULT (64u * 1024u + 1024u)

/* Reassembles one ES10 request from STORE DATA C-APDUs. Owns a heap buffer capped at max. */
struct pl_es10_rx {
    struct pl_wr buf;
    size_t max;
    unsigned channel;  /* channel of the command in progress */
    unsigned next;     /* expected P2 */
    bool active;       /* a block 0 was accepted and the last block not yet seen */
    bool complete;     /* the last block arrived; data is available */
};
/* max = 0 selects PL_ES10_RX_MAX_DEFAULT. Cannot fail. */
void pl_es10_rx_init(struct pl_es10_rx *rx, size_t max);
/* Drops any partial or complete request (zeroised). */
void pl_es10_rx_reset(struct pl_es10_rx *rx);
void pl_es10_rx_free(struct pl_es10_rx *rx);
/* Feeds one C-APDU. A block with P2 = 0 starts a new request (discarding any previous
 * one); others must continue the one in progress on the same channel with the next P2.
 * *complete is set when P1 = '91' arrived. On any error the request in progress is dropped.
 * Errors: PL_ERR_MALFORMED (not a short APDU, no data), PL_ERR_UNSUPPORTED (CLA not
 * proprietary or with SM, INS not E2), PL_ERR_INVAL (P1 not '11'/'91'), PL_ERR_STATE (P2 out
 * of order, a gap, or a continuation with nothing in progress / on another channel),
 * PL_ERR_OVERFLOW (total over max). */
PL_MUST_CHECK int pl_es10_rx_feed(struct pl_es10_rx *rx, const uint8_t *capdu, size_t len,
                                  bool *complete);
/* The reassembled request (borrowed from rx; valid until the next feed/reset). PL_ERR_STATE
 * unless complete. */
PL_MUST_CHECK int pl_es10_rx_data(const struct pl_es10_rx *rx, const uint8_t **p, size_t *len);
/* A status word a card would answer for a pl_es10_rx_feed() error. */
uint16_t pl_es10_rx_sw(int err);

/* Emits a response of any length as '61xx' + GET RESPONSE chunks of at most 256 bytes.
 * Borrows the response buffer until done. */
struct pl_es10_tx {
    struct pl_rd rd;
};
/* Starts a response and writes the R-APDU answering the last STORE DATA block: '9000'
 * when len == 0, otherwise '61xx' with no data (xx = min(len, 256) mod 256). */
PL_MUST_CHECK int pl_es10_tx_start(struct pl_es10_tx *tx, const uint8_t *rsp, size_t len,
                                   struct pl_wr *rapdu);
bool pl_es10_tx_pending(const struct pl_es10_tx *tx);
/* Answers one GET RESPONSE with Le (1..256; 0 = 256): min(Le, left) bytes then '61xx'
 * if more remains, else '9000'. PL_ERR_STATE if nothing is pending. */
PL_MUST_CHECK int pl_es10_tx_next(struct pl_es10_tx *tx, size_t le, struct pl_wr *rapdu);
/* Parses a GET RESPONSE C-APDU (CLA 0x00 or 0x80 class on any channel, INS C0, P1 P2 00 00,
 * case 2): its channel and Le (1..256). */
PL_MUST_CHECK int pl_es10_get_response_parse(const uint8_t *capdu, size_t len, unsigned *channel,
                                             size_t *le);

#endif
