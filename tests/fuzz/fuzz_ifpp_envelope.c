/* Fuzz target: provline's IFPP package envelope 'FF70' decoder (protocol/ifpp_envelope.h,
 * docs/ifpp-es10f.md §2). Any input is rejected with an error or decoded into views that
 * lie inside it; a decoded package re-encodes to exactly the input (strict DER is
 * canonical, so the signed bytes the station checks are the bytes it forwards). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/ifpp_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *buf, size_t size, const void *p, size_t len)
{
    const uint8_t *q = p;
    if (len == 0)
        return;
    if (!q || q < buf || q > buf + size || len > (size_t)(buf + size - q))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact bounds for ASan */
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    struct pl_ifpp_pkg *pkg = malloc(sizeof(*pkg));
    if (!pkg) {
        free(buf);
        return 0;
    }
    if (pl_ifpp_pkg_decode(buf, size, pkg) == PL_OK) {
        inside(buf, size, pkg->tid, pkg->tid_len);
        inside(buf, size, pkg->bpp, pkg->bpp_len);
        inside(buf, size, pkg->signed_raw, pkg->signed_raw_len);
        for (size_t i = 0; i < pkg->dpf_chain.n; i++)
            inside(buf, size, pkg->dpf_chain.cert[i].der, pkg->dpf_chain.cert[i].len);
        if (pkg->raw != buf || pkg->raw_len != size || pkg->tid_len == 0 || pkg->dpf_chain.n == 0
            || pkg->dpf_chain.n > PL_IFPP_CHAIN_MAX
            || memchr(pkg->batch_id, '\0', sizeof(pkg->batch_id)) == NULL)
            abort();
        struct pl_wr w;
        pl_wr_init_dyn(&w, PL_IFPP_PKG_MAX);
        if (pl_ifpp_pkg_encode(pkg, &w) != PL_OK || w.len != size || memcmp(w.buf, buf, size) != 0)
            abort();
        pl_wr_free(&w);
        uint8_t otpk[PL_EC_PUB_LEN] = {0x04};
        int sink = pl_ifpp_pkg_check_target(pkg, pkg->eid, pkg->otk_id, otpk);
        sink |= pl_ifpp_pkg_check_time(pkg, 0);
        (void)sink;
    }
    free(pkg);
    free(buf);
    return 0;
}
