/* Seed generator for tests/fuzz/corpus/ipa_esipa_rsp/ (fuzz target tests/fuzz/fuzz_ipa_esipa_rsp.c):
 * one flags byte (see the target) followed by a GetEimPackageResponse 'BF4F' built with the
 * protocol encoders (GSMA SGP.32 v1.2 §6.3.2.6): noEimPackageAvailable, eidNotFound, signed
 * PSMO / eCO eUICC Packages (a throw-away key), IpaEuiccDataRequests (every tag, bad tags),
 * ProfileDownloadTriggerRequests, and three malformed bodies. Not built by CMake; run once:
 *   gcc -std=c11 -I protocol/include -o /tmp/gen tests/vectors/gen/ipa_esipa_rsp_seeds.c \
 *       build/protocol/libprovline_protocol.a -lmbedtls -lmbedx509 -lmbedcrypto
 *   /tmp/gen tests/fuzz/corpus/ipa_esipa_rsp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provline/protocol/crypto.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"

static const char *dir;
static int n;
static void out(uint8_t flags, const uint8_t *p, size_t len, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%02d-%s", dir, n++, name);
    FILE *f = fopen(path, "wb");
    fputc(flags, f);
    fwrite(p, 1, len, f);
    fclose(f);
}
static void wrap(uint8_t flags, enum pl_sgp32_eim_package_kind k, const uint8_t *p, size_t len, int64_t err, const char *name)
{
    struct pl_sgp32_esipa_eim_msg m;
    struct pl_wr w;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    m.get_eim_package.kind = k;
    m.get_eim_package.raw.p = p;
    m.get_eim_package.raw.len = len;
    m.get_eim_package.error_code = err;
    pl_wr_init_dyn(&w, 1 << 16);
    if (pl_sgp32_esipa_eim_msg_encode(&m, &w) != PL_OK) { fprintf(stderr, "enc %s\n", name); exit(1); }
    out(flags, w.buf, w.len, name);
    pl_wr_free(&w);
}
int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen CORPUS-DIR\n");
        return 2;
    }
    dir = argv[1];
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *k = NULL;
    if (pl_eckey_generate(PL_CURVE_P256, &rng, &k)) return 1;
    static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x63};
    wrap(0, PL_SGP32_EIM_PACKAGE_ERROR, NULL, 0, 1, "no-package");
    wrap(0, PL_SGP32_EIM_PACKAGE_ERROR, NULL, 0, 2, "eid-not-found");
    struct pl_sgp32_euicc_package *pkg = calloc(1, sizeof(*pkg));
    pkg->eim_id = pl_sgp32_str("eim.fuzz");
    memcpy(pkg->eid, eid, 16);
    pkg->counter = 7;
    pkg->eim_txid = pl_sgp32_str("T");
    pkg->kind = PL_SGP32_PACKAGE_PSMO;
    pkg->n_ops = 2;
    pkg->psmo[0].kind = PL_SGP32_PSMO_ENABLE;
    memset(pkg->psmo[0].enable.iccid, 0x98, 10);
    pkg->psmo[1].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 16);
    int64_t tok = 1;
    if (pl_sgp32_euicc_package_request_sign(pkg, &tok, k, &rng, &w)) return 2;
    wrap(1, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, "psmo-acks");
    wrap(0x04, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, "psmo-lost");
    wrap(0x0C, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, "psmo-lost-found");
    wrap(0x10, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, "psmo-card-io");
    wrap(0x02, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, "psmo-refused");
    pl_wr_reset(&w);
    pkg->kind = PL_SGP32_PACKAGE_ECO;
    pkg->n_ops = 1;
    memset(&pkg->eco[0], 0, sizeof(pkg->eco[0]));
    pkg->eco[0].kind = PL_SGP32_ECO_LIST_EIM;
    pkg->eim_txid.p = NULL;
    if (pl_sgp32_euicc_package_request_sign(pkg, NULL, k, &rng, &w)) return 3;
    wrap(0x03, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, "eco-timeout");
    pl_wr_reset(&w);
    static const uint8_t tags[] = {0xA0, 0x81, 0xA2, 0xBF, 0x20, 0xBF, 0x22, 0x83, 0x84, 0xA5, 0xA6, 0xA8, 0xA9, 0x87};
    struct pl_sgp32_ipa_euicc_data_request q;
    memset(&q, 0, sizeof(q));
    q.tag_list.p = tags;
    q.tag_list.len = sizeof(tags);
    q.eim_txid = pl_sgp32_str("EDR");
    q.has_epr_search = true;
    q.epr_seq = 3;
    q.notif_search = PL_SGP32_NOTIF_SEARCH_SEQ;
    q.notif_seq = 2;
    if (pl_sgp32_ipa_euicc_data_request_encode(&q, &w)) return 4;
    wrap(1, PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, w.buf, w.len, 0, "edr-all");
    pl_wr_reset(&w);
    static const uint8_t bad[] = {0xBF, 0x20, 0x5A, 0x9F};
    q.tag_list.p = bad;
    q.tag_list.len = sizeof(bad);
    q.has_epr_search = false;
    q.notif_search = PL_SGP32_NOTIF_SEARCH_PMO;
    q.notif_events = 3;
    static const uint8_t ski[4] = {1, 2, 3, 4};
    q.euicc_ci_pkid.p = ski;
    q.euicc_ci_pkid.len = 4;
    if (pl_sgp32_ipa_euicc_data_request_encode(&q, &w)) return 5;
    wrap(0, PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, w.buf, w.len, 0, "edr-bad-tags");
    pl_wr_reset(&w);
    struct pl_sgp32_profile_download_trigger_request t;
    memset(&t, 0, sizeof(t));
    t.kind = PL_SGP32_PDD_ACTIVATION_CODE;
    t.activation_code = pl_sgp32_str("1$smdp.example$AC");
    t.eim_txid = pl_sgp32_str("P");
    if (pl_sgp32_profile_download_trigger_request_encode(&t, &w)) return 6;
    wrap(0, PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER, w.buf, w.len, 0, "pdt-ac");
    pl_wr_reset(&w);
    t.kind = PL_SGP32_PDD_CONTACT_SMDS;
    t.smds_address = pl_sgp32_str("smds.example");
    t.eim_txid.p = NULL;
    if (pl_sgp32_profile_download_trigger_request_encode(&t, &w)) return 7;
    wrap(2, PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER, w.buf, w.len, 0, "pdt-smds");
    static const uint8_t ack_pkg[] = {0xBF, 0x4F, 0x06, 0xBF, 0x53, 0x03, 0x80, 0x01, 0x01};
    out(0, ack_pkg, sizeof(ack_pkg), "acks-not-allowed");
    static const uint8_t junk[] = {0xBF, 0x4F, 0x80, 0x01};
    out(0, junk, sizeof(junk), "indefinite");
    out(0, NULL, 0, "empty");
    pl_wr_free(&w);
    free(pkg);
    pl_eckey_free(k);
    return 0;
}
