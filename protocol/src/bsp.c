/* BSP (formerly SCP03t): session key derivation and segment protection.
 *  - GSMA SGP.22 v2.5 §2.6.4.2 / Annex G: sharedInfo, X9.63 KDF, MCV0 | S-ENC | S-MAC.
 *  - GSMA SGP.22 v2.5 §2.6.4.3-2.6.4.5 (reference/IFPP.md §5.4): AES-128-CBC with
 *    ICV = AES(S-ENC, block counter as a 16-byte big-endian integer), padding 80 00..;
 *    C-MAC = AES-CMAC(S-MAC, MCV || tag || length || data), first 8 bytes sent, the
 *    full 16 bytes chain into the next MCV. The counter starts at 1 and advances once
 *    per segment, MAC-only segments included.
 *  - SGP.22 §2.5.3: a segment is at most 1020 bytes including tag, length and MAC.
 *  - ITU-T X.690 §8.1.3, §10.1: the length field is a minimal DER definite length;
 *    the MAC covers the tag and length bytes exactly as transmitted. */
#include <mbedtls/aes.h>
#include <string.h>

#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/sym.h"

#define PL_BSP_MCV_LEN 16u
#define PL_BSP_KEY_TYPE_AES 0x88u /* SGP.22 §2.6.4.2 keyType */
#define PL_BSP_KEY_LEN_16 0x10u   /* keyLength: 16 bytes */
#define PL_BSP_EID_LEN 16u
#define PL_BSP_HOST_ID_MAX 16u

PL_MUST_CHECK int pl_bsp_derive(const uint8_t z[32], const uint8_t *host_id, size_t host_id_len,
                                const uint8_t eid[16], struct pl_bsp_keys *out)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t info[2 + 1 + PL_BSP_HOST_ID_MAX + 1 + PL_BSP_EID_LEN];
    uint8_t km[3 * PL_AES_KEY_LEN];
    size_t n = 0;

    if (z == NULL || host_id == NULL || eid == NULL || out == NULL)
        return PL_ERR_INVAL;
    /* hostId is an OCTET STRING of 1..16 bytes (SGP.22 §5.7.13 ControlRefTemplate). */
    if (host_id_len == 0 || host_id_len > PL_BSP_HOST_ID_MAX)
        return PL_ERR_INVAL;

    /* sharedInfo = keyType || keyLength || len(hostId) || hostId || len(EID) || EID */
    info[n++] = PL_BSP_KEY_TYPE_AES;
    info[n++] = PL_BSP_KEY_LEN_16;
    info[n++] = (uint8_t)host_id_len;
    memcpy(info + n, host_id, host_id_len);
    n += host_id_len;
    info[n++] = (uint8_t)PL_BSP_EID_LEN;
    memcpy(info + n, eid, PL_BSP_EID_LEN);
    n += PL_BSP_EID_LEN;

    rc = pl_x963_kdf_sha256(z, 32, info, n, km, sizeof(km));
    if (rc != PL_OK)
        goto out;
    /* Annex G: MCV0 = KM[0:16], S-ENC = KM[16:32], S-MAC = KM[32:48]. */
    memcpy(out->mcv, km, PL_BSP_MCV_LEN);
    memcpy(out->s_enc, km + 16, PL_AES_KEY_LEN);
    memcpy(out->s_mac, km + 32, PL_AES_KEY_LEN);
    rc = PL_OK;
out:
    pl_memzero(km, sizeof(km));
    return rc;
}

void pl_bsp_init(struct pl_bsp *b, const struct pl_bsp_keys *keys)
{
    if (b == NULL)
        return;
    pl_memzero(b, sizeof(*b));
    if (keys != NULL)
        b->k = *keys;
    b->counter = 1;
}

void pl_bsp_replace(struct pl_bsp *b, const struct pl_bsp_keys *keys)
{
    /* ReplaceSessionKeys (SGP.22 §5.5.4 'BF26'): new PPK-ENC/PPK-MAC and initial MCV;
     * the block counter restarts at 1. */
    pl_bsp_init(b, keys);
}

void pl_bsp_wipe(struct pl_bsp *b)
{
    if (b != NULL)
        pl_memzero(b, sizeof(*b));
}

void pl_bsp_keys_wipe(struct pl_bsp_keys *k)
{
    if (k != NULL)
        pl_memzero(k, sizeof(*k));
}

/* ICV = AES-ECB(S-ENC, counter as a 16-byte big-endian integer). */
static int pl_bsp_icv(const struct pl_bsp *b, uint8_t icv[PL_AES_BLOCK])
{
    uint8_t ctr[PL_AES_BLOCK] = {0};

    ctr[12] = (uint8_t)(b->counter >> 24);
    ctr[13] = (uint8_t)(b->counter >> 16);
    ctr[14] = (uint8_t)(b->counter >> 8);
    ctr[15] = (uint8_t)b->counter;
    return pl_aes128_ecb_block(b->k.s_enc, ctr, icv);
}

/* Size of the DER length field for a content length. */
static size_t pl_bsp_len_size(size_t len)
{
    if (len < 0x80)
        return 1;
    if (len <= 0xff)
        return 2;
    return 3; /* len < 65536 always holds: segments are at most 1020 bytes */
}

/* A received segment being checked: the TLV bytes up to (excluding) the MAC, in a
 * local buffer so the caller's writer changes only on success. */
struct pl_bsp_seg {
    uint8_t buf[PL_BSP_MAX_SEGMENT];
    size_t hdr;  /* tag + length bytes */
    size_t body; /* ciphertext or plaintext bytes */
};

/* full = CMAC(S-MAC, MCV || seg[0 .. hdr+body]). */
static int pl_bsp_mac(const struct pl_bsp *b, const uint8_t *tlv, size_t n,
                      uint8_t full[PL_AES_BLOCK])
{
    struct pl_iov iov[2] = {{b->k.mcv, PL_BSP_MCV_LEN}, {tlv, n}};

    return pl_aes_cmac(b->k.s_mac, iov, 2, full);
}

/* Encrypts body in place: AES-128-CBC under S-ENC with ICV = AES(S-ENC, counter), one
 * key schedule for both. */
static int pl_bsp_encrypt(const struct pl_bsp *b, uint8_t *body, size_t len)
{
    int rc = PL_ERR_CRYPTO;
    mbedtls_aes_context aes;
    uint8_t ctr[PL_AES_BLOCK] = {0};
    uint8_t icv[PL_AES_BLOCK];

    ctr[12] = (uint8_t)(b->counter >> 24);
    ctr[13] = (uint8_t)(b->counter >> 16);
    ctr[14] = (uint8_t)(b->counter >> 8);
    ctr[15] = (uint8_t)b->counter;
    mbedtls_aes_init(&aes);
    if (mbedtls_aes_setkey_enc(&aes, b->k.s_enc, 128) != 0 ||
        mbedtls_aes_crypt_ecb(&aes, MBEDTLS_AES_ENCRYPT, ctr, icv) != 0 ||
        mbedtls_aes_crypt_cbc(&aes, MBEDTLS_AES_ENCRYPT, len, icv, body, body) != 0)
        goto out;
    rc = PL_OK;
out:
    pl_memzero(icv, sizeof(icv));
    mbedtls_aes_free(&aes);
    return rc;
}

PL_MUST_CHECK int pl_bsp_wrap(struct pl_bsp *b, uint8_t tag, bool encrypt, const uint8_t *pt,
                              size_t len, struct pl_wr *out)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t *seg;
    uint8_t mac[PL_AES_BLOCK];
    size_t content, total, pad, hdr, body;

    if (b == NULL || out == NULL || (pt == NULL && len != 0))
        return PL_ERR_INVAL;
    if (b->counter == 0)
        return PL_ERR_STATE; /* the 32-bit counter wrapped: the session is spent */
    rc = pl_wr_status(out);
    if (rc != PL_OK)
        return rc;
    if (len > (encrypt ? PL_BSP_MAX_PLAIN_ENC : PL_BSP_MAX_PLAIN_MAC))
        return PL_ERR_OVERFLOW;

    /* Padding: always 80, then 00 up to a multiple of 16 (1..16 bytes). */
    pad = encrypt ? PL_AES_BLOCK - len % PL_AES_BLOCK : 0;
    body = len + pad;
    content = body + PL_BSP_MAC_LEN;
    hdr = 1 + pl_bsp_len_size(content);
    total = hdr + content;
    if (total > PL_BSP_MAX_SEGMENT)
        return PL_ERR_OVERFLOW;

    /* Built and encrypted in place in the output. */
    seg = pl_wr_reserve(out, total);
    if (seg == NULL)
        return pl_wr_status(out);
    seg[0] = tag;
    if (content < 0x80) {
        seg[1] = (uint8_t)content;
    } else if (content <= 0xff) {
        seg[1] = 0x81;
        seg[2] = (uint8_t)content;
    } else {
        seg[1] = 0x82;
        seg[2] = (uint8_t)(content >> 8);
        seg[3] = (uint8_t)content;
    }
    if (len != 0)
        memcpy(seg + hdr, pt, len);
    if (encrypt) {
        seg[hdr + len] = 0x80;
        memset(seg + hdr + len + 1, 0, pad - 1);
        rc = pl_bsp_encrypt(b, seg + hdr, body);
        if (rc != PL_OK)
            goto out;
    }
    rc = pl_bsp_mac(b, seg, hdr + body, mac);
    if (rc != PL_OK)
        goto out;
    memcpy(seg + hdr + body, mac, PL_BSP_MAC_LEN);
    /* Committed: chain the full MAC and move the counter. */
    memcpy(b->k.mcv, mac, PL_BSP_MCV_LEN);
    b->counter++;
    rc = PL_OK;
out:
    if (rc != PL_OK) {
        /* Never leave plaintext behind in the caller's buffer. */
        pl_memzero(seg, total);
        pl_wr_fail(out, rc);
    }
    pl_memzero(mac, sizeof(mac));
    return rc;
}

/* Parses tag and DER length of a received segment; on success hdr and content hold
 * the header size and the content length, which spans exactly the rest of the TLV. */
static int pl_bsp_parse_header(uint8_t tag, const uint8_t *tlv, size_t tlv_len, size_t *hdr,
                               size_t *content)
{
    struct pl_rd r;
    uint8_t t, l0, b1, b2;
    size_t len;

    pl_rd_init(&r, tlv, tlv_len);
    if (pl_rd_u8(&r, &t) != PL_OK || pl_rd_u8(&r, &l0) != PL_OK)
        return PL_ERR_MALFORMED;
    if (t != tag)
        return PL_ERR_MALFORMED;
    if (l0 < 0x80) {
        len = l0;
    } else if (l0 == 0x81) {
        if (pl_rd_u8(&r, &b1) != PL_OK || b1 < 0x80)
            return PL_ERR_MALFORMED; /* truncated or not minimal */
        len = b1;
    } else if (l0 == 0x82) {
        if (pl_rd_u8(&r, &b1) != PL_OK || pl_rd_u8(&r, &b2) != PL_OK || b1 == 0)
            return PL_ERR_MALFORMED; /* truncated or not minimal */
        len = ((size_t)b1 << 8) | b2;
    } else {
        return PL_ERR_MALFORMED; /* indefinite (80) or longer than any segment */
    }
    if (len != pl_rd_left(&r))
        return PL_ERR_MALFORMED; /* truncated, or bytes after the TLV */
    *hdr = tlv_len - pl_rd_left(&r);
    *content = len;
    return PL_OK;
}

PL_MUST_CHECK int pl_bsp_unwrap(struct pl_bsp *b, uint8_t tag, bool encrypted, const uint8_t *tlv,
                                size_t tlv_len, struct pl_wr *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_bsp_seg seg;
    struct pl_rd r;
    uint8_t icv[PL_AES_BLOCK];
    uint8_t mac[PL_AES_BLOCK];
    uint8_t rx_mac[PL_BSP_MAC_LEN];
    size_t content, plain;

    if (b == NULL || out == NULL || (tlv == NULL && tlv_len != 0))
        return PL_ERR_INVAL;
    if (b->counter == 0)
        return PL_ERR_STATE;
    rc = pl_wr_status(out);
    if (rc != PL_OK)
        return rc;
    if (tlv_len > PL_BSP_MAX_SEGMENT)
        return PL_ERR_OVERFLOW;
    rc = pl_bsp_parse_header(tag, tlv, tlv_len, &seg.hdr, &content);
    if (rc != PL_OK)
        return rc;
    if (content < PL_BSP_MAC_LEN)
        return PL_ERR_MALFORMED;
    seg.body = content - PL_BSP_MAC_LEN;
    if (encrypted && (seg.body == 0 || seg.body % PL_AES_BLOCK != 0))
        return PL_ERR_MALFORMED;

    /* Copy the segment out of the untrusted buffer through the reader. */
    pl_rd_init(&r, tlv, tlv_len);
    if (pl_rd_copy(&r, seg.buf, seg.hdr + seg.body) != PL_OK ||
        pl_rd_copy(&r, rx_mac, sizeof(rx_mac)) != PL_OK) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }

    /* Authenticate first (over the bytes as received); nothing is decrypted or
     * changed unless the MAC is right. */
    rc = pl_bsp_mac(b, seg.buf, seg.hdr + seg.body, mac);
    if (rc != PL_OK)
        goto out;
    if (!pl_ct_equal(mac, rx_mac, PL_BSP_MAC_LEN)) {
        rc = PL_ERR_BAD_MAC;
        goto out;
    }

    plain = seg.body;
    if (encrypted) {
        rc = pl_bsp_icv(b, icv);
        if (rc != PL_OK)
            goto out;
        rc = pl_aes128_cbc_decrypt(b->k.s_enc, icv, seg.buf + seg.hdr, seg.body,
                                   seg.buf + seg.hdr);
        if (rc != PL_OK)
            goto out;
        /* Strip 80 00..: the 80 must sit in the last block, zeros after it only. */
        while (plain > seg.body - PL_AES_BLOCK && seg.buf[seg.hdr + plain - 1] == 0x00)
            plain--;
        if (plain == seg.body - PL_AES_BLOCK || seg.buf[seg.hdr + plain - 1] != 0x80) {
            rc = PL_ERR_BAD_PADDING;
            goto out;
        }
        plain--;
    }

    pl_wr_bytes(out, seg.buf + seg.hdr, plain);
    rc = pl_wr_status(out);
    if (rc != PL_OK)
        goto out;
    memcpy(b->k.mcv, mac, PL_BSP_MCV_LEN);
    b->counter++;
    rc = PL_OK;
out:
    pl_memzero(&seg, sizeof(seg));
    pl_memzero(icv, sizeof(icv));
    pl_memzero(mac, sizeof(mac));
    return rc;
}
