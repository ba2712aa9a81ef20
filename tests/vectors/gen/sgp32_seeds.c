/* Writes the seed corpora of the SGP.32 fuzz targets (tests/fuzz/corpus/{esipa,
 * euicc_package,sgp32_misc}/) with provline's own encoders: every vector of
 * tests/vectors/sgp32/ accepted by its decoder is re-encoded (so the seed is encoder output),
 * plus messages built from scratch, among them a package signed with the SGP.26 eIM key.
 * Not part of the build. Usage, from the repository root after a dev build:
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iprotocol/include tests/vectors/gen/sgp32_seeds.c \
 *      build/protocol/libprovline_protocol.a -lmbedx509 -lmbedcrypto -lpthread -o /tmp/s && /tmp/s
 */
#include "provline/protocol/hex.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int written;

static void put(const char *corpus, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "tests/fuzz/corpus/%s/%s.der", corpus, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    written++;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *b = malloc(1 << 20);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

/* Re-encodes one vector with the matching encoder. */
static void from_vector(const char *file)
{
    char path[512], dec[64] = "", exp[32] = "";
    size_t len, h = 0, n;
    snprintf(path, sizeof(path), "tests/vectors/sgp32/%s", file);
    uint8_t *text = slurp(path, &len);
    char *hex = malloc(len + 1);
    uint8_t *der = malloc(len);
    text[len] = 0;
    for (char *line = (char *)text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (line[0] == '#') {
            sscanf(line, "# decoder: %63s", dec);
            sscanf(line, "# expect: %31s", exp);
        } else {
            for (char *c = line; *c && *c != '#'; c++)
                if (*c != ' ' && *c != '\t')
                    hex[h++] = *c;
        }
        line = nl ? nl + 1 : NULL;
    }
    hex[h] = 0;
    if (pl_hex_decode(hex, der, len, &n) != PL_OK || strcmp(exp, "ok") != 0)
        goto out;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 20);
    void *o = calloc(1, 1 << 16);
    int rc = -1;
    const char *corpus = "sgp32_misc";
#define TRY(nm, fn, type)                                                                          \
    if (strcmp(dec, nm) == 0 && pl_sgp32_##fn##_decode(der, n, o) == PL_OK)                        \
    rc = pl_sgp32_##fn##_encode((const type *)o, &w)
    if (strcmp(dec, "euicc_package_request") == 0
        && pl_sgp32_euicc_package_request_decode(der, n, o) == PL_OK) {
        const struct pl_sgp32_euicc_package_request *r = o;
        rc = pl_sgp32_euicc_package_request_encode(&r->pkg, r->signature.p, r->signature.len, &w);
        corpus = "euicc_package";
    }
    if (strcmp(dec, "euicc_package_result") == 0
        && pl_sgp32_euicc_package_result_decode(der, n, o) == PL_OK) {
        const struct pl_sgp32_euicc_package_result *r = o;
        rc = pl_sgp32_euicc_package_result_encode(r, r->signature.p, r->signature.len, &w);
        corpus = "euicc_package";
    }
    if (strncmp(dec, "esipa", 5) == 0)
        corpus = "esipa";
    TRY("eim_configuration_data", eim_config, struct pl_sgp32_eim_config);
    TRY("add_initial_eim_request", add_initial_eim_request,
        struct pl_sgp32_add_initial_eim_request);
    TRY("add_initial_eim_response", add_initial_eim_response,
        struct pl_sgp32_add_initial_eim_response);
    TRY("get_eim_configuration_data_request", get_eim_config_request,
        struct pl_sgp32_get_eim_config_request);
    TRY("get_eim_configuration_data_response", get_eim_config_response,
        struct pl_sgp32_get_eim_config_response);
    TRY("ipa_euicc_data_request", ipa_euicc_data_request, struct pl_sgp32_ipa_euicc_data_request);
    TRY("ipa_euicc_data_response", ipa_euicc_data_response,
        struct pl_sgp32_ipa_euicc_data_response);
    TRY("profile_download_trigger_request", profile_download_trigger_request,
        struct pl_sgp32_profile_download_trigger_request);
    TRY("profile_download_trigger_result", profile_download_trigger_result,
        struct pl_sgp32_profile_download_trigger_result);
    TRY("eim_acknowledgements", eim_acknowledgements, struct pl_sgp32_eim_acknowledgements);
    TRY("esipa_ipa_to_eim", esipa_ipa_msg, struct pl_sgp32_esipa_ipa_msg);
    TRY("esipa_eim_to_ipa", esipa_eim_msg, struct pl_sgp32_esipa_eim_msg);
#undef TRY
    if (rc != PL_OK) {
        fprintf(stderr, "%s: decoder %s failed\n", file, dec);
        exit(1);
    }
    char name[256];
    snprintf(name, sizeof(name), "vec_%.*s", (int)(strlen(file) - 4), file);
    put(corpus, name, w.buf, w.len);
    pl_wr_free(&w);
    free(o);
out:
    free(der);
    free(hex);
    free(text);
}

static void signed_package(void)
{
    size_t len;
    uint8_t *pem = slurp("tests/data/sgp26/variant-o/SK_S_EIMsign_ECDSA_NIST.pem", &len);
    struct pl_eckey *k = NULL;
    if (!pem || pl_eckey_parse(pem, len, &k) != PL_OK)
        exit(1);
    struct pl_sgp32_euicc_package pkg;
    memset(&pkg, 0, sizeof(pkg));
    pkg.eim_id = pl_sgp32_str("eim.example");
    pkg.eid[0] = 0x89;
    pkg.counter = 12;
    pkg.n_ops = 2;
    pkg.psmo[0].kind = PL_SGP32_PSMO_ENABLE;
    pkg.psmo[0].enable.rollback = true;
    pkg.psmo[1].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    const struct pl_rng rng = PL_RNG_SYSTEM;
    const int64_t token = 0x1234;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_euicc_package_request_sign(&pkg, &token, k, &rng, &w) != PL_OK)
        exit(1);
    put("euicc_package", "enc_signed_request", w.buf, w.len);

    /* the same package inside GetEimPackageResponse and TransferEimPackageRequest */
    struct pl_sgp32_esipa_eim_msg m;
    struct pl_wr w2;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    m.get_eim_package.kind = PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST;
    m.get_eim_package.raw.p = w.buf;
    m.get_eim_package.raw.len = w.len;
    pl_wr_init_dyn(&w2, 1 << 16);
    if (pl_sgp32_esipa_eim_msg_encode(&m, &w2) != PL_OK)
        exit(1);
    put("esipa", "enc_get_eim_package_response_signed", w2.buf, w2.len);
    pl_wr_free(&w2);
    m.kind = PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE;
    m.transfer_request = m.get_eim_package;
    pl_wr_init_dyn(&w2, 1 << 16);
    if (pl_sgp32_esipa_eim_msg_encode(&m, &w2) != PL_OK)
        exit(1);
    put("esipa", "enc_transfer_request_signed", w2.buf, w2.len);
    pl_wr_free(&w2);
    pl_wr_free(&w);
    pl_eckey_free(k);
    free(pem);

    /* an eUICC-signed result */
    pem = slurp("tests/data/sgp26/variant-o/SK_EUICC_SIG_NIST.pem", &len);
    if (!pem || pl_eckey_parse(pem, len, &k) != PL_OK)
        exit(1);
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    r->kind = PL_SGP32_EPR_RESULT_SIGNED;
    r->eim_id = pl_sgp32_str("eim.example");
    r->counter = 12;
    r->seq_number = 3;
    r->n_results = 2;
    r->results[0].kind = PL_SGP32_RESULT_ENABLE;
    r->results[1].kind = PL_SGP32_RESULT_ROLLBACK;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_euicc_package_result_sign(r, &token, k, &rng, &w) != PL_OK)
        exit(1);
    put("euicc_package", "enc_signed_result", w.buf, w.len);
    struct pl_sgp32_esipa_ipa_msg im;
    memset(&im, 0, sizeof(im));
    im.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    im.provide_result.has_eid = true;
    im.provide_result.result.kind = PL_SGP32_EIM_RESULT_EPR;
    im.provide_result.result.euicc_package_result.p = w.buf;
    im.provide_result.result.euicc_package_result.len = w.len;
    pl_wr_init_dyn(&w2, 1 << 16);
    if (pl_sgp32_esipa_ipa_msg_encode(&im, &w2) != PL_OK)
        exit(1);
    put("esipa", "enc_provide_result_signed", w2.buf, w2.len);
    pl_wr_free(&w2);
    pl_wr_free(&w);
    free(r);
    pl_eckey_free(k);
    free(pem);
}

static void misc(void)
{
    struct pl_wr w;
    struct pl_sgp32_esipa_ipa_msg im;
    struct pl_sgp32_esipa_eim_msg em;
    static const uint8_t tx[] = {1, 2};

    memset(&im, 0, sizeof(im));
    im.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_esipa_ipa_msg_encode(&im, &w) != PL_OK)
        exit(1);
    put("esipa", "enc_get_eim_package_minimal", w.buf, w.len);
    pl_wr_free(&w);

    memset(&em, 0, sizeof(em));
    em.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    em.provide_result.kind = PL_SGP32_PROVIDE_RSP_ERROR;
    em.provide_result.error_code = 2;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_esipa_eim_msg_encode(&em, &w) != PL_OK)
        exit(1);
    put("esipa", "enc_provide_result_response_error", w.buf, w.len);
    pl_wr_free(&w);

    memset(&em, 0, sizeof(em));
    em.kind = PL_SGP32_ESIPA_CANCEL_SESSION;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_esipa_eim_msg_encode(&em, &w) != PL_OK)
        exit(1);
    put("esipa", "enc_cancel_session_ok", w.buf, w.len);
    pl_wr_free(&w);

    struct pl_sgp32_profile_download_trigger_request pdt;
    memset(&pdt, 0, sizeof(pdt));
    pdt.kind = PL_SGP32_PDD_CONTACT_SMDS;
    pdt.smds_address = pl_sgp32_str("lpa.ds.example");
    pdt.eim_txid.p = tx;
    pdt.eim_txid.len = 2;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_profile_download_trigger_request_encode(&pdt, &w) != PL_OK)
        exit(1);
    put("sgp32_misc", "enc_pdt_contact_smds", w.buf, w.len);
    pl_wr_free(&w);

    struct pl_sgp32_ipa_euicc_data_request edr;
    memset(&edr, 0, sizeof(edr));
    edr.tag_list.p = (const uint8_t *)"\xA2";
    edr.tag_list.len = 1;
    edr.notif_search = PL_SGP32_NOTIF_SEARCH_PMO;
    edr.notif_events = PL_SGP32_NOTIF_INSTALL | PL_SGP32_NOTIF_DELETE;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_ipa_euicc_data_request_encode(&edr, &w) != PL_OK)
        exit(1);
    put("sgp32_misc", "enc_edr_pmo", w.buf, w.len);
    pl_wr_free(&w);
}

int main(void)
{
    DIR *d = opendir("tests/vectors/sgp32");
    struct dirent *e;
    if (!d)
        return 1;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".hex") == 0)
            from_vector(e->d_name);
    }
    closedir(d);
    signed_package();
    misc();
    printf("wrote %d seeds\n", written);
    return 0;
}
