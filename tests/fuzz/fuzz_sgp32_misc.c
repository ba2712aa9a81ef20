/* Fuzz target: the other SGP.32 decoders (GSMA SGP.32 v1.2 §2.11, §5.9.4, §5.9.18):
 * EimConfigurationData, AddInitialEim request/response, GetEimConfigurationData
 * request/response, IpaEuiccDataRequest/Response, ProfileDownloadTrigger request/result,
 * EimAcknowledgements. Every input goes through every decoder; accepted inputs must
 * re-encode idempotently (sgp32_fuzz.h). */
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "sgp32_fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WRAP(name, type)                                                                           \
    static int dec_##name(const uint8_t *b, size_t n, void *o)                                     \
    {                                                                                              \
        return pl_sgp32_##name##_decode(b, n, o);                                                  \
    }                                                                                              \
    static int enc_##name(const void *o, struct pl_wr *w)                                          \
    {                                                                                              \
        return pl_sgp32_##name##_encode((const type *)o, w);                                       \
    }
WRAP(eim_config, struct pl_sgp32_eim_config)
WRAP(add_initial_eim_request, struct pl_sgp32_add_initial_eim_request)
WRAP(add_initial_eim_response, struct pl_sgp32_add_initial_eim_response)
WRAP(get_eim_config_request, struct pl_sgp32_get_eim_config_request)
WRAP(get_eim_config_response, struct pl_sgp32_get_eim_config_response)
WRAP(ipa_euicc_data_request, struct pl_sgp32_ipa_euicc_data_request)
WRAP(ipa_euicc_data_response, struct pl_sgp32_ipa_euicc_data_response)
WRAP(profile_download_trigger_request, struct pl_sgp32_profile_download_trigger_request)
WRAP(profile_download_trigger_result, struct pl_sgp32_profile_download_trigger_result)
WRAP(eim_acknowledgements, struct pl_sgp32_eim_acknowledgements)

struct target {
    size_t size;
    int (*dec)(const uint8_t *, size_t, void *);
    int (*enc)(const void *, struct pl_wr *);
};

static const struct target targets[] = {
    {sizeof(struct pl_sgp32_eim_config), dec_eim_config, enc_eim_config},
    {sizeof(struct pl_sgp32_add_initial_eim_request), dec_add_initial_eim_request,
     enc_add_initial_eim_request},
    {sizeof(struct pl_sgp32_add_initial_eim_response), dec_add_initial_eim_response,
     enc_add_initial_eim_response},
    {sizeof(struct pl_sgp32_get_eim_config_request), dec_get_eim_config_request,
     enc_get_eim_config_request},
    {sizeof(struct pl_sgp32_get_eim_config_response), dec_get_eim_config_response,
     enc_get_eim_config_response},
    {sizeof(struct pl_sgp32_ipa_euicc_data_request), dec_ipa_euicc_data_request,
     enc_ipa_euicc_data_request},
    {sizeof(struct pl_sgp32_ipa_euicc_data_response), dec_ipa_euicc_data_response,
     enc_ipa_euicc_data_response},
    {sizeof(struct pl_sgp32_profile_download_trigger_request), dec_profile_download_trigger_request,
     enc_profile_download_trigger_request},
    {sizeof(struct pl_sgp32_profile_download_trigger_result), dec_profile_download_trigger_result,
     enc_profile_download_trigger_result},
    {sizeof(struct pl_sgp32_eim_acknowledgements), dec_eim_acknowledgements,
     enc_eim_acknowledgements},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        uint8_t *obj = malloc(2 * targets[i].size);
        if (!obj)
            break;
        if (targets[i].dec(buf, size, obj) == PL_OK) {
            if (i == 6) { /* IpaEuiccDataResponse: walk its list views */
                const struct pl_sgp32_ipa_euicc_data_response *r = (const void *)obj;
                sgp32_fuzz_walk(&r->data.notifications);
                sgp32_fuzz_walk(&r->data.epr_list);
            }
            sgp32_fuzz_idempotent(obj, obj + targets[i].size, targets[i].dec, targets[i].enc);
        }
        free(obj);
    }
    free(buf);
    return 0;
}
