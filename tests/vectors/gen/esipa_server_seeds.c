/* Writes the seed corpus of fuzz.esipa_server (tests/fuzz/corpus/esipa_server/) with
 * provline's own encoders: one input per ESipa function and result arm the eIM handles
 * (GetEimPackage with and without notifyStateChange, ProvideEimPackageResult with a signed
 * EPR, EPE, unsigned EPE, ePRAndNotifications, IpaEuiccData, download-trigger result, IPA
 * error, HandleNotification with a PIR, a relay request, a malformed body). The first byte of
 * each seed selects the transport identity in the fuzz target (0 none, 1 the device's EID,
 * 2 another EID). Signatures are made with a fresh key: structurally valid, not trusted.
 * GSMA SGP.32 v1.2 §6.3. Not part of the build. Usage, from the repository root after a dev
 * build:
 *   cc -std=c11 -Iprotocol/include tests/vectors/gen/esipa_server_seeds.c \
 *      build/protocol/libprovline_protocol.a -lmbedtls -lmbedx509 -lmbedcrypto \
 *      -o /tmp/s && /tmp/s tests/fuzz/corpus/esipa_server
 */
#define _POSIX_C_SOURCE 200809L
#include "provline/protocol/hex.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *DIR_;
static uint8_t EID[16];
static struct pl_eckey *K;
static struct pl_rng RNG;

static void out(const char *name, uint8_t first, const uint8_t *b, size_t n)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", DIR_, name);
    FILE *f = fopen(p, "wb");
    fputc(first, f);
    fwrite(b, 1, n, f);
    fclose(f);
}

static void msg(const char *name, uint8_t first, const struct pl_sgp32_esipa_ipa_msg *m)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 20);
    if (pl_sgp32_esipa_ipa_msg_encode(m, &w) != PL_OK || pl_wr_status(&w) != PL_OK) {
        fprintf(stderr, "encode %s\n", name);
        exit(1);
    }
    out(name, first, w.buf, w.len);
    pl_wr_free(&w);
}

static struct pl_wr epr(int kind)
{
    static uint8_t txid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    struct pl_wr w;
    pl_wr_init_dyn(&w, 65536);
    r->kind = kind;
    r->eim_id = pl_sgp32_str("eim.provline.test");
    r->counter = 1;
    r->eim_txid.p = txid;
    r->eim_txid.len = 16;
    r->seq_number = 10;
    r->n_results = 1;
    r->results[0].kind = PL_SGP32_RESULT_ENABLE;
    r->error_code = 4;
    if (pl_sgp32_euicc_package_result_sign(r, NULL, K, &RNG, &w) != PL_OK)
        exit(2);
    free(r);
    return w;
}

static struct pl_wr pir(void)
{
    static const uint8_t tid[4] = {1, 2, 3, 4};
    static const uint8_t oid[3] = {0x88, 0x37, 0x01};
    static const uint8_t aid[16] = {0xA0, 0,    0,    5,    0x59, 0x10, 0x10, 0xFF,
                                    0xFF, 0xFF, 0xFF, 0x89, 0,    0,    0x10, 0};
    static const uint8_t sima[3] = {0x30, 0x01, 0x00};
    struct pl_pir *p = calloc(1, sizeof(*p));
    struct pl_wr w;
    pl_wr_init_dyn(&w, 65536);
    p->tid = tid;
    p->tid_len = 4;
    p->meta.seq = 11;
    p->meta.ops = PL_NOTIF_EV_INSTALL;
    snprintf(p->meta.addr, sizeof(p->meta.addr), "smdp.example.com");
    p->meta.has_iccid = true;
    memset(p->meta.iccid, 0x98, 10);
    p->smdp_oid = oid;
    p->smdp_oid_len = 3;
    p->success = true;
    p->aid = aid;
    p->aid_len = 16;
    p->sima = sima;
    p->sima_len = 3;
    if (pl_pir_encode(p, K, &RNG, &w) != PL_OK)
        exit(3);
    free(p);
    return w;
}

int main(int argc, char **argv)
{
    DIR_ = argv[1];
    (void)argc;
    RNG = PL_RNG_SYSTEM;
    size_t n;
    if (pl_hex_decode("89049032000000000000000000012345", EID, 16, &n)
        || pl_eckey_generate(PL_CURVE_P256, &RNG, &K))
        return 9;
    struct pl_sgp32_esipa_ipa_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(m.get_eim_package.eid, EID, 16);
    msg("get_eim_package", 0, &m);
    msg("get_eim_package_peer_other", 2, &m);
    m.get_eim_package.notify_state_change = true;
    m.get_eim_package.has_state_change_cause = true;
    m.get_eim_package.state_change_cause = 3;
    m.get_eim_package.has_rplmn = true;
    memcpy(m.get_eim_package.rplmn, "\x62\xF2\x10", 3);
    msg("get_eim_package_state_change", 1, &m);

    struct pl_wr e = epr(PL_SGP32_EPR_RESULT_SIGNED), x = epr(PL_SGP32_EPR_ERROR_SIGNED),
                 u = epr(PL_SGP32_EPR_ERROR_UNSIGNED), p = pir();
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    m.provide_result.has_eid = true;
    memcpy(m.provide_result.eid, EID, 16);
    m.provide_result.result.kind = PL_SGP32_EIM_RESULT_EPR;
    m.provide_result.result.euicc_package_result.p = e.buf;
    m.provide_result.result.euicc_package_result.len = e.len;
    msg("provide_epr", 0, &m);
    m.provide_result.result.euicc_package_result.p = x.buf;
    m.provide_result.result.euicc_package_result.len = x.len;
    msg("provide_epe", 1, &m);
    m.provide_result.result.euicc_package_result.p = u.buf;
    m.provide_result.result.euicc_package_result.len = u.len;
    msg("provide_epe_unsigned", 0, &m);
    m.provide_result.result.kind = PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS;
    m.provide_result.result.euicc_package_result.p = e.buf;
    m.provide_result.result.euicc_package_result.len = e.len;
    m.provide_result.result.notifications.p = p.buf;
    m.provide_result.result.notifications.len = p.len;
    m.provide_result.result.notifications.count = 1;
    msg("provide_epr_and_notifications", 0, &m);

    struct pl_sgp32_ipa_euicc_data_response *d = calloc(1, sizeof(*d));
    static uint8_t txid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    d->data.eim_txid.p = txid;
    d->data.eim_txid.len = 16;
    d->data.epr_list.p = e.buf;
    d->data.epr_list.len = e.len;
    d->data.epr_list.count = 1;
    d->data.notifications.p = p.buf;
    d->data.notifications.len = p.len;
    d->data.notifications.count = 1;
    struct pl_wr dw;
    pl_wr_init_dyn(&dw, 65536);
    if (pl_sgp32_ipa_euicc_data_response_encode(d, &dw))
        return 4;
    m.provide_result.has_eid = false;
    m.provide_result.result.kind = PL_SGP32_EIM_RESULT_IPA_EUICC_DATA;
    m.provide_result.result.ipa_euicc_data_response.p = dw.buf;
    m.provide_result.result.ipa_euicc_data_response.len = dw.len;
    msg("provide_ipa_euicc_data_peer", 1, &m);

    struct pl_sgp32_profile_download_trigger_result t;
    memset(&t, 0, sizeof(t));
    t.eim_txid.p = txid;
    t.eim_txid.len = 16;
    t.profile_installation_result.p = p.buf;
    t.profile_installation_result.len = p.len;
    struct pl_wr tw;
    pl_wr_init_dyn(&tw, 65536);
    if (pl_sgp32_profile_download_trigger_result_encode(&t, &tw))
        return 5;
    m.provide_result.has_eid = true;
    m.provide_result.result.kind = PL_SGP32_EIM_RESULT_PDT_RESULT;
    m.provide_result.result.pdt_result.p = tw.buf;
    m.provide_result.result.pdt_result.len = tw.len;
    msg("provide_pdt_result", 0, &m);
    m.provide_result.result.kind = PL_SGP32_EIM_RESULT_ERROR;
    m.provide_result.result.error_txid.p = txid;
    m.provide_result.result.error_txid.len = 16;
    m.provide_result.result.error_code = 1;
    msg("provide_ipa_error", 0, &m);

    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_HANDLE_NOTIFICATION;
    m.handle_notification.pending_notification.p = p.buf;
    m.handle_notification.pending_notification.len = p.len;
    msg("handle_notification_pir_peer", 1, &m);

    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_INITIATE_AUTHENTICATION;
    memset(m.initiate_auth.euicc_challenge, 0x11, 16);
    msg("initiate_authentication", 0, &m);
    static const uint8_t junk[] = {0xBF, 0x4F, 0x05, 0x5A, 0x10, 0x00};
    out("malformed", 0, junk, sizeof(junk));
    return 0;
}
