/* Fuzz target: every ES10f decoder (protocol/es10f.h, docs/ifpp-es10f.md §4-§6) on the same
 * arbitrary bytes, as the eUICC (requests) and the FPA / Key Maker (responses) see them.
 * Each input is rejected with an error or decoded into views inside it; whatever decodes
 * re-encodes to exactly the input (strict DER is canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/es10f.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *g_buf;
static size_t g_size;

static void inside(const void *p, size_t len)
{
    const uint8_t *q = p;
    if (len == 0)
        return;
    if (!q || q < g_buf || q > g_buf + g_size || len > (size_t)(g_buf + g_size - q))
        abort();
}

static void same(struct pl_wr *w, int rc)
{
    if (rc != PL_OK || w->len != g_size || (g_size && memcmp(w->buf, g_buf, g_size) != 0))
        abort();
    pl_wr_reset(w);
}

static void chain_inside(const struct pl_ifpp_chain *c)
{
    if (c->n == 0 || c->n > PL_IFPP_CHAIN_MAX)
        abort();
    for (size_t i = 0; i < c->n; i++)
        inside(c->cert[i].der, c->cert[i].len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact bounds for ASan */
    struct pl_es10f_info *info = malloc(sizeof(*info));
    if (!buf || !info) {
        free(buf);
        free(info);
        return 0;
    }
    if (size)
        memcpy(buf, data, size);
    g_buf = buf;
    g_size = size;
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX + PL_ES10F_LOAD_REQ_MAX);

    if (pl_es10f_get_info_req_decode(buf, size) == PL_OK)
        same(&w, pl_es10f_get_info_req_encode(&w));

    if (pl_es10f_get_info_rsp_decode(buf, size, info) == PL_OK) {
        inside(info->cert_euicc.der, info->cert_euicc.len);
        inside(info->cert_eum.der, info->cert_eum.len);
        if (info->n_otk > PL_ES10F_OTK_MAX)
            abort();
        if (info->n_otk && pl_es10f_info_find_otk(info, info->otk[0].otk_id) != &info->otk[0])
            abort();
        same(&w, pl_es10f_get_info_rsp_encode(info, &w));
    }

    struct pl_es10f_load_req lr;
    if (pl_es10f_load_req_decode(buf, size, &lr) == PL_OK) {
        inside(lr.tid, lr.tid_len);
        chain_inside(&lr.dpf_chain);
        same(&w, pl_es10f_load_req_encode(&lr, &w));
    }

    struct pl_es10f_load_rsp lp;
    if (pl_es10f_load_rsp_decode(buf, size, &lp) == PL_OK) {
        inside(lp.pir, lp.pir_len);
        same(&w, pl_es10f_load_rsp_encode(&lp, &w));
    }

    struct pl_es10f_delete_otks_req dq;
    if (pl_es10f_delete_otks_req_decode(buf, size, &dq) == PL_OK) {
        inside(dq.token.tid, dq.token.tid_len);
        inside(dq.signed_raw, dq.signed_raw_len);
        chain_inside(&dq.signer_chain);
        int sink = pl_es10f_counter_check(0, dq.token.counter);
        (void)sink;
        same(&w, pl_es10f_delete_otks_req_encode(&dq, &w));
    }

    struct pl_es10f_delete_otks_rsp dr;
    if (pl_es10f_delete_otks_rsp_decode(buf, size, &dr) == PL_OK) {
        if (dr.ok) {
            inside(dr.receipt.tid, dr.receipt.tid_len);
            inside(dr.signed_raw, dr.signed_raw_len);
            if (dr.receipt.n_deleted > PL_ES10F_OTK_MAX)
                abort();
        } else if (dr.error < 1 || dr.error > 127 || !pl_es10f_dotk_error_name(dr.error)) {
            abort();
        }
        same(&w, pl_es10f_delete_otks_rsp_encode(&dr, &w));
    }

    pl_wr_free(&w);
    free(info);
    free(buf);
    return 0;
}
