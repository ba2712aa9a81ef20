/* ICCIDs in their two codings (ITU-T E.118 digits, BCD):
 *  - SAIP ProfileHeader.iccid (TCA eUICC Profile Package v2.3 §8.1.1): the digits in their
 *    natural order, two per byte, high nibble first, padded with 'F' (as pySim's
 *    personalization and the GSMA TS.48 test profiles write it: 89 49 44 ... 02 3F);
 *  - SGP.22 Iccid ([APPLICATION 26] '5A' in StoreMetadata, ProfileInfo, SGP.32 PSMOs):
 *    "as coded in EF.ICCID" (ETSI TS 102 221 §13.2), the nibbles of each byte swapped
 *    (98 94 44 ... 20 F3).
 * Everything past the UPP carries the SGP.22 coding; the text form is the digits in
 * natural order with the trailing 'F' padding dropped ("8949449999999990023"). */
#ifndef PROVLINE_PROTOCOL_ICCID_H
#define PROVLINE_PROTOCOL_ICCID_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

#define PL_ICCID_LEN    10u
#define PL_ICCID_TEXT_MAX 21u /* 20 characters and the NUL */

/* ProfileHeader (natural order) -> SGP.22 / EF.ICCID coding, and back (the same swap). */
void pl_iccid_swap(const uint8_t in[PL_ICCID_LEN], uint8_t out[PL_ICCID_LEN]);

/* The text of an SGP.22-coded ICCID: every nibble in digit order, a non-digit nibble as 'F'
 * (so the text always maps back to the same bytes), trailing 'F' dropped. */
void pl_iccid_text(const uint8_t iccid[PL_ICCID_LEN], char out[PL_ICCID_TEXT_MAX]);

/* Parses text into SGP.22 coding: at most 20 characters of digits and 'F'/'f' (padding,
 * wherever it stands), at least 18 digits, 'F'-padded to 20. PL_ERR_INVAL otherwise. */
PL_MUST_CHECK int pl_iccid_parse(const char *text, uint8_t iccid[PL_ICCID_LEN]);

#endif
