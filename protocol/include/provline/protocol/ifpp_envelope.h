/* provline's IFPP package envelope "IfppPackage" ('FF70'): the sealed unit the Key Maker
 * (SM-DPf) issues and the untrusted station carries to one eUICC.
 *
 * PROVLINE'S OWN FORMAT until GSMA SGP.42 is public. Wire description and ASN.1 module:
 * docs/ifpp-es10f.md §2; rationale: docs/decisions/0004-ifpp-envelope-and-es10f.md.
 * Sources: IFPP.md §6.1 (objects), §5.1-§5.2 (the SGP.22 v2.5 §2.5.4 BoundProfilePackage,
 * carried byte-exact inside), §7 cases 20 and 22; ARCHITECTURE.md §4 steps 3-4.
 *
 *   IfppPackage 'FF70' {
 *     packageSigned 'FF79' {
 *       version '80' (1), packageId '81' (16 B), batchId '82' UTF8String (1..64 B),
 *       eid '83' (16 B), otkId '84' INTEGER (0..65535), otkPkHash '85' SHA-256(otPK) (32 B),
 *       transactionId '86' (1..16 B, = the ISCR transactionId inside bpp),
 *       curve '87' INTEGER (1 P-256, 2 brainpoolP256r1), notAfter '88' INTEGER (Unix
 *       seconds, UTC), keyMakerSeq '89' INTEGER (0..2^64-1),
 *       dpfChain 'AA' SEQUENCE (1..5) OF Certificate ('30', CERT.DPf first),
 *       bpp 'BF36' (the SGP.22 BoundProfilePackage, byte-exact) },
 *     envSignature '5F37' (64 B r||s: ECDSA-SHA256 by the Key Maker over the whole
 *                          received 'FF79' TLV) }
 *
 * Decoded packages are views: variable-length fields borrow the input buffer (valid as
 * long as it is), fixed-size fields are copied into the struct. The station checks
 * envSignature for routing and hygiene only; the eUICC trusts only smdpSign and the BSP
 * MACs inside bpp (IFPP.md §6.1).
 *
 * Errors of the decoders (all strict DER, der.h): a missing field PL_ERR_TRUNCATED, an
 * unexpected tag PL_ERR_DER_TAG, bytes after the last field PL_ERR_DER_TRAILING; a primitive
 * field of the wrong size or out of its range PL_ERR_DER_VALUE; a list with more elements
 * than its cap, or a certificate / BPP over its cap, PL_ERR_OVERFLOW; a whole input over
 * PL_IFPP_PKG_MAX PL_ERR_DER_TOOBIG; an unknown version or curve PL_ERR_UNSUPPORTED;
 * envelope transactionId != ISCR transactionId PL_ERR_MALFORMED. */
#ifndef PROVLINE_PROTOCOL_IFPP_ENVELOPE_H
#define PROVLINE_PROTOCOL_IFPP_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

/* Tags: private class, clear of every GSMA tag (docs/ifpp-es10f.md §1). */
#define PL_TAG_IFPP_PACKAGE        0xFF70u /* [PRIVATE 112] IfppPackage */
#define PL_TAG_IFPP_PACKAGE_SIGNED 0xFF79u /* [PRIVATE 121] IfppPackageSigned */
#define PL_TAG_IFPP_SIGNATURE      0x5F37u /* [APPLICATION 55], as GSMA signatures */
#define PL_TAG_IFPP_BPP            0xBF36u /* SGP.22 BoundProfilePackage */

#define PL_IFPP_PKG_VERSION    1u
#define PL_IFPP_EID_LEN        16u
#define PL_IFPP_PACKAGE_ID_LEN 16u
#define PL_IFPP_BATCH_ID_MAX   64u /* bytes of UTF-8, without the NUL */
#define PL_IFPP_TID_MAX        16u /* SGP.22 TransactionId ::= OCTET STRING (SIZE(1..16)) */
/* Caps (memory bounds; docs/ifpp-es10f.md §1.3). */
#define PL_IFPP_CERT_MAX  8192u /* one certificate, whole '30' TLV (x509.h PL_CERT_MAX_DER) */
#define PL_IFPP_CHAIN_MAX 5u    /* leaf + up to 4 intermediates (x509.h) */
#define PL_IFPP_BPP_MAX   (2u * 1024u * 1024u)            /* whole 'BF36' TLV */
#define PL_IFPP_PKG_MAX   (PL_IFPP_BPP_MAX + 64u * 1024u) /* whole 'FF70' TLV */

/* One certificate: a whole DER '30' TLV. Borrowed. */
struct pl_ifpp_cert {
    const uint8_t *der;
    size_t len;
};

/* SEQUENCE (SIZE(1..PL_IFPP_CHAIN_MAX)) OF Certificate, leaf first, then the certificate
 * that issued it, and so on (the CI root is never included). */
struct pl_ifpp_chain {
    size_t n;
    struct pl_ifpp_cert cert[PL_IFPP_CHAIN_MAX];
};

/* Appends `tag` { cert[0] .. cert[n-1] } (tag is the context tag of the field, e.g. 'AA').
 * Each certificate must be exactly one strictly valid DER '30' TLV of at most
 * PL_IFPP_CERT_MAX bytes, n in 1..PL_IFPP_CHAIN_MAX; else PL_ERR_INVAL. Copies the bytes. */
PL_MUST_CHECK int pl_ifpp_chain_encode(struct pl_wr *w, uint32_t tag,
                                       const struct pl_ifpp_chain *c);
/* Decodes the contents of a chain TLV already read by the caller from `parent` (which gives
 * the depth limit). Borrows tlv's buffer. Each element must be a '30' TLV passing
 * pl_der_validate (structure only; x509.h parses and verifies certificates). */
PL_MUST_CHECK int pl_ifpp_chain_decode(const struct pl_der *parent, const struct pl_tlv *tlv,
                                       struct pl_ifpp_chain *out);

/* The package. For encoding fill every field except raw/signed_raw; for decoding every
 * field is set. */
struct pl_ifpp_pkg {
    uint8_t package_id[PL_IFPP_PACKAGE_ID_LEN]; /* copied; random, unique per package */
    char batch_id[PL_IFPP_BATCH_ID_MAX + 1];    /* copied; UTF-8, NUL-terminated, 1..64 B */
    uint8_t eid[PL_IFPP_EID_LEN];               /* copied */
    uint16_t otk_id;
    uint8_t otpk_hash[PL_SHA256_LEN]; /* copied; SHA-256 of the 65-byte otPK */
    const uint8_t *tid;               /* borrowed; 1..16 B */
    size_t tid_len;
    enum pl_curve curve;            /* curve of the binding: otPK, otPK.DP and CERT.DPf's key */
    uint64_t not_after;             /* last second (Unix time, UTC) at which loading may start */
    uint64_t key_maker_seq;         /* Key Maker's monotonic issue number for the station */
    struct pl_ifpp_chain dpf_chain; /* borrowed */
    const uint8_t *bpp;             /* borrowed: the whole 'BF36' TLV, byte-exact */
    size_t bpp_len;
    uint8_t env_sig[PL_ECDSA_SIG_LEN]; /* copied; r||s */
    /* Set by the decoder only (ignored by the encoders): */
    const uint8_t *raw; /* the whole 'FF70' TLV as received */
    size_t raw_len;
    const uint8_t *signed_raw; /* the whole 'FF79' TLV as received: what envSignature covers */
    size_t signed_raw_len;
};

/* Decodes exactly one 'FF70' spanning [p, p+len). Borrows p (see the struct for what is
 * copied). Checks structure, sizes, every certificate's and the BPP's DER structure, and
 * that transactionId equals the transactionId of the BPP's 'BF23' (bpp.h decodes the BPP
 * in full). Does not verify the signature (pl_ifpp_pkg_verify). On error *out is
 * unspecified. */
PL_MUST_CHECK int pl_ifpp_pkg_decode(const uint8_t *p, size_t len, struct pl_ifpp_pkg *out);

/* Appends the signed part, the 'FF79' TLV (the bytes envSignature covers). PL_ERR_INVAL
 * for a field out of range: empty, over-long or invalid UTF-8 batch_id, bad tid length,
 * unknown curve, chain as pl_ifpp_chain_encode, bpp not one strictly valid 'BF36' TLV of
 * at most PL_IFPP_BPP_MAX bytes, or tid != the BPP's ISCR transactionId. Copies. */
PL_MUST_CHECK int pl_ifpp_pkg_encode_tbs(const struct pl_ifpp_pkg *in, struct pl_wr *w);
/* Appends the whole 'FF70' with in->env_sig as the signature (for an external signer, e.g.
 * an HSM that signed pl_ifpp_pkg_encode_tbs() output). */
PL_MUST_CHECK int pl_ifpp_pkg_encode(const struct pl_ifpp_pkg *in, struct pl_wr *w);
/* Appends the whole 'FF70', signing the signed part with km_key (ECDSA-SHA256, r||s) as
 * it is written (in->env_sig is ignored). Borrows key and rng. */
PL_MUST_CHECK int pl_ifpp_pkg_encode_sign(const struct pl_ifpp_pkg *in,
                                          const struct pl_eckey *km_key, const struct pl_rng *rng,
                                          struct pl_wr *w);

/* Verifies envSignature with the Key Maker's public key over the received 'FF79' bytes
 * (signed_raw). PL_OK or PL_ERR_BAD_SIGNATURE; PL_ERR_INVAL if pkg was not decoded. */
PL_MUST_CHECK int pl_ifpp_pkg_verify(const struct pl_ifpp_pkg *pkg, const struct pl_eckey *km_pub);

/* Station hygiene before spending anything on a device (IFPP.md §6.3, §7 case 22): the
 * package is for this eUICC (eid) and this one-time key (otk_id, and SHA-256(otpk) equals
 * otkPkHash). otpk is the 65-byte otPK from a verified GetIfppInfo OTK entry.
 * PL_OK or PL_ERR_DENIED (not this device or key). */
PL_MUST_CHECK int pl_ifpp_pkg_check_target(const struct pl_ifpp_pkg *pkg,
                                           const uint8_t eid[PL_IFPP_EID_LEN], uint16_t otk_id,
                                           const uint8_t otpk[PL_EC_PUB_LEN]);
/* PL_OK while now <= notAfter, else PL_ERR_EXPIRED (IFPP.md §7 case 20). now: Unix seconds. */
PL_MUST_CHECK int pl_ifpp_pkg_check_time(const struct pl_ifpp_pkg *pkg, uint64_t now);

#endif
