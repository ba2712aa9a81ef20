/* The readable parts of a sealed package (pkginfo.h). GSMA SGP.22 v2.5 §2.5.4, §2.6.4,
 * Annex G; reference/IFPP.md §5.1, §5.4, §7 case 14. Untrusted bytes only through the DER
 * reader and the protocol/ decoders. */
#include "provline/station/pkginfo.h"

#include <stdlib.h>
#include <string.h>

#include "provline/protocol/bpp.h"
#include "provline/protocol/bsp.h"
#include "provline/protocol/der.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/wr.h"

#define SEG88_MAC_LEN 8u

int pl_pkginfo_iccid(const uint8_t *bpp, size_t len, uint8_t iccid[PL_PKGINFO_ICCID_LEN])
{
    struct pl_bpp *b = NULL;
    struct pl_smr *smr = NULL;
    struct pl_wr w;
    int rc = PL_ERR_INTERNAL;

    pl_wr_init_dyn(&w, (size_t)PL_BPP_MAX_88 * 1020u);
    b = malloc(sizeof(*b));
    smr = malloc(sizeof(*smr));
    if (b == NULL || smr == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = pl_bpp_decode(bpp, len, b)) != PL_OK)
        goto out;
    if (b->n88 == 0) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    for (size_t i = 0; i < b->n88; i++) {
        struct pl_tlv t;
        if ((rc = pl_der_parse_one(b->seq88[i].tlv, b->seq88[i].len, 0x88u, &t)) != PL_OK)
            goto out;
        if (t.len < SEG88_MAC_LEN) {
            rc = PL_ERR_MALFORMED;
            goto out;
        }
        (void)pl_wr_bytes(&w, t.value, t.len - SEG88_MAC_LEN);
    }
    if ((rc = pl_wr_status(&w)) != PL_OK)
        goto out;
    if (pl_smr_decode(w.buf, w.len, smr) != PL_OK) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    memcpy(iccid, smr->iccid, PL_PKGINFO_ICCID_LEN);
    rc = PL_OK;
out:
    pl_wr_free(&w);
    free(smr);
    free(b);
    return rc;
}

int pl_pkginfo_envelope_iccid(const uint8_t *env, size_t len, uint8_t iccid[PL_PKGINFO_ICCID_LEN])
{
    struct pl_ifpp_pkg *pkg = malloc(sizeof(*pkg));
    int rc;
    if (pkg == NULL)
        return PL_ERR_NOMEM;
    rc = pl_ifpp_pkg_decode(env, len, pkg);
    if (rc == PL_OK)
        rc = pl_pkginfo_iccid(pkg->bpp, pkg->bpp_len, iccid);
    free(pkg);
    return rc;
}
