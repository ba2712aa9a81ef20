/* ES8+ / GSMA SGP.22 v2.5 §2.5.4 Bound Profile Package generation (profile binding),
 * as the SM-DPf does it for SGP.41 in-factory provisioning: reference/IFPP.md §5.1-§5.5
 * (BPP layout, smdpSign over the ISCR signed part incl. otPK.EUICC, session keys, BSP),
 * §6.1 (the OTK the package is bound to). SAIP ProfileHeader: TCA eUICC Profile Package
 * Interoperable Format (PEDefinitions.asn, shared/asn1/), ProfileElement header [0].
 *
 * Pure: no I/O, no global state. Every ephemeral and session key is created and wiped
 * inside one call; nothing secret is returned. */
#ifndef PROVLINE_PROTOCOL_BPP_BIND_H
#define PROVLINE_PROTOCOL_BPP_BIND_H

#include "provline/protocol/bpp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_BIND_EID_LEN 16u
/* Largest UPP accepted: PL_BPP_MAX_86 segments of PL_BSP_MAX_PLAIN_ENC bytes. */
#define PL_BIND_UPP_MAX (1024u * 1007u)
/* Largest BPP pl_bpp_bind() can produce (UPP, per-segment overhead, header). */
#define PL_BIND_BPP_MAX (PL_BIND_UPP_MAX + 1024u * 32u + 8192u)

/* The ICCID of a SAIP UPP: the first ProfileElement must be `header` ([0] constructed,
 * 'A0'), a ProfileHeader { major-version [0], minor-version [1], profileType [2]
 * OPTIONAL, iccid [3] OCTET STRING (SIZE(10)), ... } (AUTOMATIC TAGS). Strict DER; every
 * top-level ProfileElement must be a well-formed DER TLV, with nothing after the last.
 * Gives the ICCID in SGP.22 coding (EF.ICCID, nibble-swapped: what StoreMetadata '5A' and
 * ProfileInfo carry), converted from the header's natural digit order (provline/protocol/
 * iccid.h; TS.48: header 89 49 44 .. 02 3F -> 98 94 44 .. 20 F3, text 8949449999999990023).
 * PL_ERR_DER_TAG if the first element is not a ProfileHeader, PL_ERR_DER_VALUE for a
 * bad field, other DER errors for malformed input. Borrows upp. */
PL_MUST_CHECK int pl_upp_iccid(const uint8_t *upp, size_t len, uint8_t iccid[PL_ICCID_LEN]);

struct pl_bind_params {
    enum pl_curve curve;           /* curve of dp_key, the OTK and the ephemeral key */
    const struct pl_eckey *dp_key; /* SM-DPf binding key (CERT.DPpb's key); borrowed */
    const uint8_t *euicc_otpk;     /* otPK.EUICC, PL_EC_PUB_LEN bytes, verified by the caller */
    const uint8_t *eid;            /* PL_BIND_EID_LEN bytes */
    const uint8_t *host_id;        /* 1..PL_BPP_HOST_ID_MAX bytes */
    size_t host_id_len;
    const uint8_t *tid; /* transactionId, 1..PL_BPP_TID_MAX bytes, unique */
    size_t tid_len;
    const uint8_t *upp; /* the Unprotected Profile Package (SAIP DER); borrowed */
    size_t upp_len;
    /* StoreMetadata: the ICCID always comes from the UPP's ProfileHeader. */
    const char *spn;          /* serviceProviderName, NULL = "" */
    const char *profile_name; /* profileName, NULL = "" */
    int profile_class;        /* -1 absent, else 0 test, 1 provisioning, 2 operational */
    /* ConfigureISDP dpProprietaryData.dpOid contents octets; NULL = no 'B8'. */
    const uint8_t *dp_oid;
    size_t dp_oid_len;
    bool replace_session_keys; /* add 'A2' ReplaceSessionKeys with fresh PPKs */
    const struct pl_rng *rng;  /* ephemeral key, signature nonce, PPKs */
};

/* Binds the UPP to one eUICC one-time key and appends the DER 'BF36' BPP to out:
 *  1. fresh ephemeral otSK/otPK.DP on `curve` (PFS, SGP.41 GENS06);
 *  2. ISCR 'BF23' with smdpSign = ECDSA(dp_key) over 82 01 01 || 80 tid || A6 crt ||
 *     5F49 otPK.DP || 5F49 otPK.EUICC;
 *  3. Z = ECDH(otSK.DP, otPK.EUICC); MCV0 | S-ENC | S-MAC = X9.63(Z, hostId, EID);
 *  4. 'A0': ConfigureISDP 'BF24' encrypted+MACed in '87';
 *     'A1': StoreMetadata 'BF25' MAC-only in '88' segments;
 *     'A2' (optional): ReplaceSessionKeys 'BF26' {fresh MCV, PPK-ENC, PPK-MAC} in '87';
 *     'A3': the UPP in '86' segments of at most PL_BSP_MAX_PLAIN_ENC plaintext bytes
 *     (each TLV at most PL_BSP_MAX_SEGMENT bytes), under the PPKs when 'A2' is present.
 * Every key created here is wiped before returning, on every path.
 * PL_ERR_INVAL for bad parameters (sizes, NULLs, a dp_key curve other than `curve`, a
 * dp_key without private part), PL_ERR_BAD_KEY if otPK.EUICC is not on the curve,
 * PL_ERR_OVERFLOW if the UPP needs more than PL_BPP_MAX_86 segments; UPP parse errors
 * as pl_upp_iccid(). On error nothing is appended and out is marked failed with the
 * error (writer errors are sticky, wr.h). */
PL_MUST_CHECK int pl_bpp_bind(const struct pl_bind_params *p, struct pl_wr *out);

#endif
