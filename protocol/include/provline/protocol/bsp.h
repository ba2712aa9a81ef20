/* SGP.22 v2.5 §2.6.4 / Annex G: BSP session keys and segment protection (SCP03t).
 * See reference/IFPP.md §5.3-5.4. */
#ifndef PROVLINE_PROTOCOL_BSP_H
#define PROVLINE_PROTOCOL_BSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#define PL_BSP_MAX_SEGMENT 1020u     /* whole TLV incl. tag, length and MAC */
#define PL_BSP_MAX_PLAIN_ENC 1007u   /* plaintext per encrypted segment */
#define PL_BSP_MAX_PLAIN_MAC 1008u   /* plaintext per MAC-only segment */
#define PL_BSP_MAC_LEN 8u

struct pl_bsp_keys {
    uint8_t mcv[16];
    uint8_t s_enc[16];
    uint8_t s_mac[16];
};

/* sharedInfo = 88 10 || len(hostId) hostId || len(EID) EID; X9.63 KDF, 48 bytes out:
 * MCV0 | S-ENC | S-MAC. */
PL_MUST_CHECK int pl_bsp_derive(const uint8_t z[32], const uint8_t *host_id, size_t host_id_len,
                                const uint8_t eid[16], struct pl_bsp_keys *out);

/* A BSP session: keys, the running MAC chaining value and the block counter. */
struct pl_bsp {
    struct pl_bsp_keys k;
    uint32_t counter; /* next ICV counter, starts at 1, +1 per segment */
};
void pl_bsp_init(struct pl_bsp *b, const struct pl_bsp_keys *keys);
/* ReplaceSessionKeys: new keys and MCV, counter restarts at 1. */
void pl_bsp_replace(struct pl_bsp *b, const struct pl_bsp_keys *keys);
void pl_bsp_wipe(struct pl_bsp *b);
void pl_bsp_keys_wipe(struct pl_bsp_keys *k);

/* Protects one segment and appends tag || len || (ct or pt) || mac8 to out.
 * encrypt=false for MAC-only segments ('88'). PL_ERR_OVERFLOW if the TLV would
 * exceed PL_BSP_MAX_SEGMENT. */
PL_MUST_CHECK int pl_bsp_wrap(struct pl_bsp *b, uint8_t tag, bool encrypt, const uint8_t *pt,
                              size_t len, struct pl_wr *out);
/* Verifies and opens one received segment given as a full TLV (tag must match).
 * Appends the plaintext (padding removed when encrypted) to out. On a MAC failure
 * PL_ERR_BAD_MAC and the session state is unchanged; bad padding PL_ERR_BAD_PADDING;
 * structure errors PL_ERR_MALFORMED / PL_ERR_OVERFLOW. */
PL_MUST_CHECK int pl_bsp_unwrap(struct pl_bsp *b, uint8_t tag, bool encrypted, const uint8_t *tlv,
                                size_t tlv_len, struct pl_wr *out);

#endif
