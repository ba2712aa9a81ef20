/* ES10c.GetEID (GSMA SGP.22 v2.5 §5.7.20), the device side's codec, shared by the FPA (the
 * EID check before a package: reference/IFPP.md §6.3) and the IPA (SGP.32 v1.2 §6.3.2.6):
 *   GetEuiccDataRequest  'BF3E' { tagList '5C' = '5A' }
 *   GetEuiccDataResponse 'BF3E' { eidValue '5A' OCTET STRING (SIZE(16)) }
 * ASN.1: shared/asn1/RSPDefinitions.asn (GetEuiccDataRequest/Response). */
#ifndef PROVLINE_PROTOCOL_ES10C_H
#define PROVLINE_PROTOCOL_ES10C_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#define PL_ES10C_EID_LEN 16u

/* Appends the request; w's status. */
PL_MUST_CHECK int pl_es10c_get_eid_req(struct pl_wr *w);
/* Strict DER: exactly one 'BF3E' holding exactly one 16-byte '5A'. DER errors otherwise. */
PL_MUST_CHECK int pl_es10c_get_eid_rsp_decode(const uint8_t *p, size_t len,
                                              uint8_t eid[PL_ES10C_EID_LEN]);

#endif
