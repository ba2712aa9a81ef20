/* Fuzz target: the SGP.22 ES10b notification messages (protocol/src/notif.c). Every decoder
 * runs on every input; what decodes must re-encode to exactly the input (except
 * OtherSignedNotification, whose encoder signs afresh). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/notif.h"
#include "provline/protocol/wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(struct pl_wr *w, int rc, const uint8_t *buf, size_t size)
{
    if (rc != PL_OK || w->len != size || (size && memcmp(w->buf, buf, size) != 0))
        abort();
    pl_wr_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    struct pl_notif_rnl_rsp *rnl = malloc(sizeof(*rnl));
    struct pl_notif_list_rsp *lst = malloc(sizeof(*lst));
    struct pl_wr w;
    if (!buf || !rnl || !lst)
        goto out;
    if (size)
        memcpy(buf, data, size);

    struct pl_notif_rnl_req rq;
    if (pl_notif_rnl_req_decode(buf, size, &rq) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_notif_rnl_req_encode(&rq, &w), buf, size);
    }
    if (pl_notif_rnl_rsp_decode(buf, size, rnl) == PL_OK) {
        if (rnl->n > PL_NOTIF_LIST_MAX)
            abort();
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_notif_rnl_rsp_encode(rnl, &w), buf, size);
    }
    struct pl_notif_list_req lq;
    if (pl_notif_list_req_decode(buf, size, &lq) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_notif_list_req_encode(&lq, &w), buf, size);
    }
    if (pl_notif_list_rsp_decode(buf, size, lst) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_notif_list_rsp_encode(lst, &w), buf, size);
    }
    uint64_t seq;
    if (pl_notif_sent_req_decode(buf, size, &seq) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_notif_sent_req_encode(seq, &w), buf, size);
    }
    int64_t st;
    if (pl_notif_sent_rsp_decode(buf, size, &st) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_notif_sent_rsp_encode(st, &w), buf, size);
    }
    struct pl_notif_other o;
    if (pl_notif_other_decode(buf, size, &o) == PL_OK) {
        if (!o.sig || !o.meta.raw || o.raw_len != size)
            abort();
    }
out:
    free(lst);
    free(rnl);
    free(buf);
    return 0;
}
