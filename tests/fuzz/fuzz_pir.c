/* Fuzz target: the SGP.22 ProfileInstallationResult decoder (protocol/src/pir.c) and the
 * NotificationMetadata it embeds. A decoded PIR must re-encode its 'BF27' to exactly the
 * received bytes the signature covers, and a decoded metadata to exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/pir.h"
#include "provline/protocol/wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    struct pl_pir p;
    struct pl_notif_meta m;
    struct pl_wr w;
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);

    if (pl_pir_decode(buf, size, &p) == PL_OK) {
        if (!p.tbs || !p.sig || p.raw_len != size || p.meta.ops != PL_NOTIF_EV_INSTALL)
            abort();
        if (p.success && (p.aid_len < PL_PIR_AID_MIN || p.aid_len > PL_PIR_AID_MAX))
            abort();
        if (!p.success && (p.cmd_id < 0 || p.reason < 0))
            abort();
        (void)pl_pir_cmd_name(p.cmd_id);
        (void)pl_pir_reason_name(p.reason);
        pl_wr_init_dyn(&w, size + 16);
        if (pl_pir_encode_data(&p, &w) != PL_OK || w.len != p.tbs_len
            || memcmp(w.buf, p.tbs, w.len) != 0)
            abort();
        pl_wr_free(&w);
    }
    if (pl_notif_meta_decode(buf, size, &m) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        if (pl_notif_meta_encode(&m, &w) != PL_OK || w.len != size || memcmp(w.buf, buf, size))
            abort();
        pl_wr_free(&w);
    }
    free(buf);
    return 0;
}
