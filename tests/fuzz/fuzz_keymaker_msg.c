/* Fuzz target: the station <-> Key Maker frame decoder (protocol/proto/km_msg.h, nanopb
 * keymaker.proto; docs/station-keymaker-protocol.md). Any frame must be refused with an
 * error or decode into a message that passes the checks, re-encodes, and decodes again
 * to the same encoding; nothing may leak (pointer fields are released). */
#include "provline/proto/km_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    provline_keymaker_Msg *m = malloc(sizeof(*m));
    provline_keymaker_Msg *m2 = malloc(sizeof(*m2));
    struct pl_wr w1, w2;

    if (!buf || !m || !m2)
        abort();
    memcpy(buf, data, size);
    pl_wr_init_dyn(&w1, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&w2, PL_KM_FRAME_MAX);
    if (pl_km_msg_decode(buf, size, m) == PL_OK) {
        if (pl_km_msg_check(m) != PL_OK)
            abort();
        (void)pl_km_body_name(m->which_body);
        if (pl_km_msg_encode(m, &w1) != PL_OK)
            abort();
        if (pl_km_msg_decode(w1.buf, w1.len, m2) != PL_OK)
            abort();
        if (pl_km_msg_encode(m2, &w2) != PL_OK)
            abort();
        if (w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len) != 0)
            abort(); /* encoding of a decoded message is canonical */
        pl_km_msg_release(m2);
        pl_km_msg_release(m);
    }
    pl_wr_free(&w1);
    pl_wr_free(&w2);
    free(m2);
    free(m);
    free(buf);
    return 0;
}
