/* Unit tests: decoding of the hand-built SGP.32 DER vectors in tests/vectors/sgp32/
 * (annotated hex; headers "# decoder:" and "# expect:"; see tests/vectors/README.md).
 * Every file is decoded with its decoder and must give the expected result; accepted
 * vectors must re-encode to the identical bytes (they are canonical DER). A few vectors
 * also get field-by-field checks. */
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "sgp32_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoder table ---- */

static int d_req(const uint8_t *b, size_t n, void *o)
{
    return pl_sgp32_euicc_package_request_decode(b, n, o);
}
static int e_req(const void *o, struct pl_wr *w)
{
    const struct pl_sgp32_euicc_package_request *r = o;
    return pl_sgp32_euicc_package_request_encode(&r->pkg, r->signature.p, r->signature.len, w);
}
static int d_res(const uint8_t *b, size_t n, void *o)
{
    return pl_sgp32_euicc_package_result_decode(b, n, o);
}
static int e_res(const void *o, struct pl_wr *w)
{
    const struct pl_sgp32_euicc_package_result *r = o;
    return pl_sgp32_euicc_package_result_encode(r, r->signature.p, r->signature.len, w);
}
#define WRAP(name, type)                                                                           \
    static int d_##name(const uint8_t *b, size_t n, void *o)                                       \
    {                                                                                              \
        return pl_sgp32_##name##_decode(b, n, o);                                                  \
    }                                                                                              \
    static int e_##name(const void *o, struct pl_wr *w)                                            \
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
WRAP(esipa_ipa_msg, struct pl_sgp32_esipa_ipa_msg)
WRAP(esipa_eim_msg, struct pl_sgp32_esipa_eim_msg)

struct decoder {
    const char *name;
    size_t size;
    int (*decode)(const uint8_t *, size_t, void *);
    int (*encode)(const void *, struct pl_wr *);
};

static const struct decoder decoders[] = {
    {"euicc_package_request", sizeof(struct pl_sgp32_euicc_package_request), d_req, e_req},
    {"euicc_package_result", sizeof(struct pl_sgp32_euicc_package_result), d_res, e_res},
    {"eim_configuration_data", sizeof(struct pl_sgp32_eim_config), d_eim_config, e_eim_config},
    {"add_initial_eim_request", sizeof(struct pl_sgp32_add_initial_eim_request),
     d_add_initial_eim_request, e_add_initial_eim_request},
    {"add_initial_eim_response", sizeof(struct pl_sgp32_add_initial_eim_response),
     d_add_initial_eim_response, e_add_initial_eim_response},
    {"get_eim_configuration_data_request", sizeof(struct pl_sgp32_get_eim_config_request),
     d_get_eim_config_request, e_get_eim_config_request},
    {"get_eim_configuration_data_response", sizeof(struct pl_sgp32_get_eim_config_response),
     d_get_eim_config_response, e_get_eim_config_response},
    {"ipa_euicc_data_request", sizeof(struct pl_sgp32_ipa_euicc_data_request),
     d_ipa_euicc_data_request, e_ipa_euicc_data_request},
    {"ipa_euicc_data_response", sizeof(struct pl_sgp32_ipa_euicc_data_response),
     d_ipa_euicc_data_response, e_ipa_euicc_data_response},
    {"profile_download_trigger_request", sizeof(struct pl_sgp32_profile_download_trigger_request),
     d_profile_download_trigger_request, e_profile_download_trigger_request},
    {"profile_download_trigger_result", sizeof(struct pl_sgp32_profile_download_trigger_result),
     d_profile_download_trigger_result, e_profile_download_trigger_result},
    {"eim_acknowledgements", sizeof(struct pl_sgp32_eim_acknowledgements), d_eim_acknowledgements,
     e_eim_acknowledgements},
    {"esipa_ipa_to_eim", sizeof(struct pl_sgp32_esipa_ipa_msg), d_esipa_ipa_msg, e_esipa_ipa_msg},
    {"esipa_eim_to_ipa", sizeof(struct pl_sgp32_esipa_eim_msg), d_esipa_eim_msg, e_esipa_eim_msg},
};

static int err_by_name(const char *s)
{
    static const struct {
        const char *name;
        int err;
    } map[] = {
        {"ok", PL_OK},
        {"DER_TAG", PL_ERR_DER_TAG},
        {"DER_VALUE", PL_ERR_DER_VALUE},
        {"DER_TRAILING", PL_ERR_DER_TRAILING},
        {"DER_NONMINIMAL", PL_ERR_DER_NONMINIMAL},
        {"DER_LENGTH", PL_ERR_DER_LENGTH},
        {"MALFORMED", PL_ERR_MALFORMED},
        {"OVERFLOW", PL_ERR_OVERFLOW},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].name, s) == 0)
            return map[i].err;
    }
    cr_assert_fail("unknown expectation '%s'", s);
    return 1;
}

/* ---- vector file reader ---- */

struct vec {
    char decoder[64];
    char expect[32];
    uint8_t *der;
    size_t len;
};

static void header(const char *line, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0)
        return;
    const char *v = line + kl;
    size_t n = strcspn(v, " \r\n");
    cr_assert_lt(n, cap);
    memcpy(out, v, n);
    out[n] = 0;
}

/* Reads tests/vectors/sgp32/<file>: headers, then hex with '#' comments to end of line. */
static void load(const char *file, struct vec *v)
{
    char rel[256];
    size_t len;
    snprintf(rel, sizeof(rel), "tests/vectors/sgp32/%s", file);
    uint8_t *text = sgp32_file(rel, &len);
    char *hex = sgp32_arena(len + 1);
    size_t h = 0;
    memset(v, 0, sizeof(*v));
    for (char *line = (char *)text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (line[0] == '#') {
            header(line, "# decoder: ", v->decoder, sizeof(v->decoder));
            header(line, "# expect: ", v->expect, sizeof(v->expect));
        } else {
            for (char *c = line; *c && *c != '#'; c++) {
                if (*c != ' ' && *c != '\t' && *c != '\r')
                    hex[h++] = *c;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    hex[h] = 0;
    free(text);
    cr_assert_neq(v->decoder[0], 0, "%s: no '# decoder:' header", file);
    cr_assert_neq(v->expect[0], 0, "%s: no '# expect:' header", file);
    v->der = sgp32_hex_arena(hex, &v->len);
}

static const struct decoder *find_decoder(const char *name)
{
    for (size_t i = 0; i < sizeof(decoders) / sizeof(decoders[0]); i++) {
        if (strcmp(decoders[i].name, name) == 0)
            return &decoders[i];
    }
    cr_assert_fail("unknown decoder '%s'", name);
    return NULL;
}

/* Decodes one vector into a heap object (returned, caller frees) and checks expectations. */
static void *run(const char *file, struct vec *v)
{
    load(file, v);
    const struct decoder *dec = find_decoder(v->decoder);
    void *obj = calloc(1, dec->size);
    cr_assert_not_null(obj);
    int want = err_by_name(v->expect);
    int rc = dec->decode(v->der, v->len, obj);
    cr_expect_eq(rc, want, "%s: got %d (%s), want %s", file, rc, pl_strerror(rc), v->expect);
    if (rc == PL_OK && want == PL_OK) {
        struct pl_wr w;
        pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
        cr_expect_eq(dec->encode(obj, &w), PL_OK, "%s: re-encode", file);
        cr_expect(w.len == v->len && memcmp(w.buf, v->der, v->len) == 0, "%s: re-encoding differs",
                  file);
        pl_wr_free(&w);
    }
    return obj;
}

Test(sgp32_vectors, every_file)
{
    char path[512];
    DIR *d = opendir(pl_test_src(path, sizeof(path), "tests/vectors/sgp32"));
    cr_assert_not_null(d, "cannot open %s", path);
    int n = 0, neg = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".hex") != 0)
            continue;
        struct vec v;
        free(run(e->d_name, &v));
        n++;
        if (strcmp(v.expect, "ok") != 0)
            neg++;
    }
    closedir(d);
    cr_assert_geq(n, 30, "only %d vectors", n);
    cr_assert_geq(neg, 5, "only %d negative vectors", neg);
}

/* ---- field checks on selected vectors ---- */

Test(sgp32_vectors, psmo_request_fields)
{
    struct vec v;
    struct pl_sgp32_euicc_package_request *r = run("euicc_package_request_psmo.hex", &v);
    cr_assert(sgp32_buf_is(r->pkg.eim_id, "eim.example"));
    cr_assert_eq(r->pkg.eid[0], 0x89);
    cr_assert_eq(r->pkg.counter, 7);
    cr_assert_eq(r->pkg.kind, PL_SGP32_PACKAGE_PSMO);
    cr_assert_eq(r->pkg.n_ops, 9);
    static const enum pl_sgp32_psmo_kind kinds[] = {
        PL_SGP32_PSMO_ENABLE,
        PL_SGP32_PSMO_DISABLE,
        PL_SGP32_PSMO_DELETE,
        PL_SGP32_PSMO_LIST_PROFILE_INFO,
        PL_SGP32_PSMO_GET_RAT,
        PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE,
        PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE,
        PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE,
        PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS,
    };
    for (size_t i = 0; i < 9; i++)
        cr_assert_eq(r->pkg.psmo[i].kind, kinds[i], "psmo %zu", i);
    cr_assert(r->pkg.psmo[0].enable.rollback);
    cr_assert_eq(r->pkg.psmo[0].enable.iccid[9], 0x39);
    cr_assert_eq(r->pkg.psmo[3].list_profile_info.search, PL_SGP32_SEARCH_ICCID);
    cr_assert(r->pkg.psmo[5].configure_immediate_enable.immediate_enable_flag);
    cr_assert(sgp32_buf_is(r->pkg.psmo[5].configure_immediate_enable.default_smdp_address,
                           "smdp.example.com"));
    cr_assert(sgp32_buf_is(r->pkg.psmo[8].set_default_dp_address.default_dp_address, "dp.example"));
    cr_assert_eq(r->signed_raw.len, 3 + 0xA8);
    free(r);
}

Test(sgp32_vectors, eco_request_certificate)
{
    struct vec v;
    size_t cl;
    uint8_t *cert = sgp32_file(SGP32_EIM_CERT, &cl);
    struct pl_sgp32_euicc_package_request *r = run("euicc_package_request_eco.hex", &v);
    cr_assert_eq(r->pkg.kind, PL_SGP32_PACKAGE_ECO);
    cr_assert_eq(r->pkg.n_ops, 4);
    cr_assert_eq(r->pkg.counter, 128);
    const struct pl_sgp32_eim_config *c = &r->pkg.eco[0].eim_config;
    cr_assert_eq(r->pkg.eco[0].kind, PL_SGP32_ECO_ADD_EIM);
    cr_assert_eq(c->association_token, 128);
    cr_assert_eq(c->supported_protocol,
                 PL_SGP32_PROTO_RETRIEVE_HTTPS | PL_SGP32_PROTO_RETRIEVE_COAPS);
    cr_assert(c->indirect_profile_download);
    cr_assert_eq(c->eim_public_key_data.kind, PL_SGP32_KEY_CERT);
    cr_assert_eq(c->eim_public_key_data.body.len, cl - 4);
    cr_assert_eq(memcmp(c->eim_public_key_data.body.p, cert + 4, cl - 4), 0);
    cr_assert(sgp32_buf_is(r->pkg.eco[1].delete_eim_id, "eim3"));
    cr_assert_eq(r->pkg.eco[2].kind, PL_SGP32_ECO_UPDATE_EIM);
    cr_assert_eq(r->pkg.eco[2].eim_config.counter, 100);
    cr_assert_eq(r->pkg.eco[3].kind, PL_SGP32_ECO_LIST_EIM);
    free(cert);
    free(r);
}

Test(sgp32_vectors, result_fields)
{
    struct vec v;
    struct pl_sgp32_euicc_package_result *r = run("euicc_package_result_signed.hex", &v);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(r->seq_number, 42);
    cr_assert_eq(r->n_results, 16);
    cr_assert_eq(r->results[2].code, PL_SGP32_RC_RETURN_FALLBACK_PROFILE);
    cr_assert_eq(r->results[3].kind, PL_SGP32_RESULT_LIST_PROFILE_INFO);
    cr_assert_eq(r->results[3].list.count, 1);
    cr_assert_eq(r->results[4].kind, PL_SGP32_RESULT_GET_RAT);
    cr_assert_eq(r->results[6].association_token, 300);
    cr_assert_eq(r->results[7].code, PL_SGP32_ADD_EIM_COUNTER_OUT_OF_RANGE);
    cr_assert_eq(r->results[10].n_eims, 1);
    cr_assert_eq(r->results[11].kind, PL_SGP32_RESULT_ROLLBACK);
    cr_assert_eq(r->results[14].kind, PL_SGP32_RESULT_PROCESSING_TERMINATED);
    cr_assert_eq(r->results[15].kind, PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS);
    free(r);
}

Test(sgp32_vectors, esipa_fields)
{
    struct vec v;
    struct pl_sgp32_esipa_ipa_msg *m = run("esipa_cancel_session_request.hex", &v);
    cr_assert_eq(m->kind, PL_SGP32_ESIPA_CANCEL_SESSION);
    cr_assert_eq(m->cancel_session.cancel_session_response.len, 3);
    free(m);
    m = run("esipa_get_eim_package_request.hex", &v);
    cr_assert_eq(m->get_eim_package.state_change_cause, PL_SGP32_STATE_CHANGE_FALLBACK);
    cr_assert(m->get_eim_package.notify_state_change);
    free(m);
    m = run("esipa_provide_eim_package_result.hex", &v);
    cr_assert_eq(m->provide_result.result.kind, PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS);
    cr_assert_eq(m->provide_result.result.notifications.count, 1);
    free(m);
    struct pl_sgp32_esipa_eim_msg *e = run("esipa_get_eim_package_response_none.hex", &v);
    cr_assert_eq(e->get_eim_package.kind, PL_SGP32_EIM_PACKAGE_ERROR);
    cr_assert_eq(e->get_eim_package.error_code, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
    free(e);
}
