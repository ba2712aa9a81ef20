/* Fuzz target: SGP.32 ESipa messages in both directions (EsipaMessageFromIpaToEim and
 * EsipaMessageFromEimToIpa, GSMA SGP.32 v1.2 §6.3), then the eIM Packages and results they
 * carry raw, with the decoders the eIM and the IPA would apply next. Accepted inputs must
 * re-encode idempotently (sgp32_fuzz.h). */
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "sgp32_fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dec_ipa(const uint8_t *b, size_t n, void *o)
{
    return pl_sgp32_esipa_ipa_msg_decode(b, n, o);
}

static int enc_ipa(const void *o, struct pl_wr *w)
{
    return pl_sgp32_esipa_ipa_msg_encode(o, w);
}

static int dec_eim(const uint8_t *b, size_t n, void *o)
{
    return pl_sgp32_esipa_eim_msg_decode(b, n, o);
}

static int enc_eim(const void *o, struct pl_wr *w)
{
    return pl_sgp32_esipa_eim_msg_encode(o, w);
}

/* The nested decoders; results are only exercised, not required to succeed. */
static void nested(struct pl_sgp32_buf raw)
{
    if (raw.p == NULL)
        return;
    void *scratch = malloc(sizeof(struct pl_sgp32_euicc_package_result)
                           + sizeof(struct pl_sgp32_euicc_package_request));
    if (!scratch)
        return;
    int sink = pl_sgp32_euicc_package_result_decode(raw.p, raw.len, scratch);
    sink |= pl_sgp32_euicc_package_request_decode(raw.p, raw.len, scratch);
    sink |= pl_sgp32_ipa_euicc_data_response_decode(raw.p, raw.len, scratch);
    sink |= pl_sgp32_ipa_euicc_data_request_decode(raw.p, raw.len, scratch);
    sink |= pl_sgp32_profile_download_trigger_result_decode(raw.p, raw.len, scratch);
    sink |= pl_sgp32_profile_download_trigger_request_decode(raw.p, raw.len, scratch);
    sink |= pl_sgp32_eim_acknowledgements_decode(raw.p, raw.len, scratch);
    (void)sink;
    free(scratch);
}

static void ipa_children(const struct pl_sgp32_esipa_ipa_msg *m)
{
    const struct pl_sgp32_eim_package_result *r = NULL;
    if (m->kind == PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE)
        r = &m->transfer_response;
    else if (m->kind == PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT)
        r = &m->provide_result.result;
    else if (m->kind == PL_SGP32_ESIPA_HANDLE_NOTIFICATION
             && m->handle_notification.is_provide_result)
        r = &m->handle_notification.provide_result.result;
    if (r == NULL)
        return;
    nested(r->euicc_package_result);
    nested(r->ipa_euicc_data_response);
    nested(r->pdt_result);
    sgp32_fuzz_walk(&r->notifications);
}

static void eim_children(const struct pl_sgp32_esipa_eim_msg *m)
{
    if (m->kind == PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE)
        nested(m->transfer_request.raw);
    else if (m->kind == PL_SGP32_ESIPA_GET_EIM_PACKAGE)
        nested(m->get_eim_package.raw);
    else if (m->kind == PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT)
        nested(m->provide_result.acknowledgements);
    else if (m->kind == PL_SGP32_ESIPA_AUTHENTICATE_CLIENT)
        nested(m->authenticate_client.profile_download_trigger);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    struct pl_sgp32_esipa_ipa_msg *im = malloc(2 * sizeof(*im));
    struct pl_sgp32_esipa_eim_msg *em = malloc(2 * sizeof(*em));
    if (!buf || !im || !em)
        goto out;
    memcpy(buf, data, size);
    if (pl_sgp32_esipa_ipa_msg_decode(buf, size, im) == PL_OK) {
        ipa_children(im);
        sgp32_fuzz_idempotent(im, im + 1, dec_ipa, enc_ipa);
    }
    if (pl_sgp32_esipa_eim_msg_decode(buf, size, em) == PL_OK) {
        eim_children(em);
        sgp32_fuzz_idempotent(em, em + 1, dec_eim, enc_eim);
    }
out:
    free(em);
    free(im);
    free(buf);
    return 0;
}
