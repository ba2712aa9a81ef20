/* Fuzz target: the station's reading of a sealed package without keys (station/src/
 * pkginfo.c): the ICCID of the MAC-only '88' StoreMetadata, from a whole 'BF36' BPP and from
 * a whole 'FF70' envelope. Whatever the input, no crash, no read outside it; when an ICCID is
 * returned, the input is a BPP (or envelope) the strict decoders accept and the ICCID is the
 * same through both paths. Seeds: BPPs of the bpp corpus, a TS.48 envelope. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/bpp.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/station/pkginfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    uint8_t iccid[PL_PKGINFO_ICCID_LEN], again[PL_PKGINFO_ICCID_LEN];
    struct pl_bpp *bpp = malloc(sizeof(*bpp));
    struct pl_ifpp_pkg *pkg = malloc(sizeof(*pkg));
    if (buf == NULL || bpp == NULL || pkg == NULL)
        goto out;
    if (size)
        memcpy(buf, data, size);
    if (pl_pkginfo_iccid(buf, size, iccid) == PL_OK && pl_bpp_decode(buf, size, bpp) != PL_OK)
        abort(); /* an ICCID from something that is not a BPP */
    if (pl_pkginfo_envelope_iccid(buf, size, iccid) == PL_OK) {
        if (pl_ifpp_pkg_decode(buf, size, pkg) != PL_OK)
            abort();
        if (pl_pkginfo_iccid(pkg->bpp, pkg->bpp_len, again) != PL_OK
            || memcmp(iccid, again, sizeof(iccid)) != 0)
            abort();
    }
out:
    free(pkg);
    free(bpp);
    free(buf);
    return 0;
}
