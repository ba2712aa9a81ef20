/* What the untrusted station may read from a sealed package without any key: the envelope's
 * routing fields (ifpp_envelope.h) and the ICCID of the StoreMetadata the BPP carries in its
 * '88' segments, which the BSP protects with a MAC only (no encryption).
 *
 * Sources: GSMA SGP.22 v2.5 §2.5.4 (BoundProfilePackage: "sequenceOf88" holds the
 * StoreMetadataRequest, MAC-only), §2.6.4 / Annex G (each '88' segment = plaintext || MAC of
 * 8 bytes); reference/IFPP.md §5.1, §5.4, §7 case 14 (the ICCID/SPN in '88' is visible to
 * the station: non-secret, PII-relevant). The MAC is not checked here (the station has no
 * key): the value is for reports only, never for a decision. */
#ifndef PROVLINE_STATION_PKGINFO_H
#define PROVLINE_STATION_PKGINFO_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

#define PL_PKGINFO_ICCID_LEN 10u

/* ICCID (10 bytes, as in '5A': nibble-swapped BCD) of the StoreMetadataRequest 'BF25' that
 * the '88' segments of bpp (one whole 'BF36' TLV) carry. PL_ERR_MALFORMED when the segments
 * do not hold one StoreMetadataRequest, DER/BPP decoding errors otherwise. */
PL_MUST_CHECK int pl_pkginfo_iccid(const uint8_t *bpp, size_t len,
                                   uint8_t iccid[PL_PKGINFO_ICCID_LEN]);

/* The same from a whole IfppPackage 'FF70' envelope (decoded strictly first). */
PL_MUST_CHECK int pl_pkginfo_envelope_iccid(const uint8_t *env, size_t len,
                                            uint8_t iccid[PL_PKGINFO_ICCID_LEN]);

#endif
