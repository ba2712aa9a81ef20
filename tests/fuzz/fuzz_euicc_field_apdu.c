/* Fuzz target: the software eUICC's APDU entry point in field mode (sim/euicc.h
 * pl_euicc_apdu after production), i.e. every SGP.32 v1.2 ES10b handler of an IoT eUICC
 * (LoadEuiccPackage with its PSMOs and eCOs, AddInitialEim, GetEimConfigurationData,
 * GetCerts, GetEuiccInfo1/2, ListProfileInfo, RetrieveNotificationsList, NotificationSent,
 * ...) behind ISO/IEC 7816-4 channels and STORE DATA reassembly, and the card reset.
 *
 * A template eUICC (P-256, 2 OTKs) is taken through production once per process (one TS.48
 * profile on OTK 1, DeleteRemainingOtks) and given the test PKI's eIM with AddInitialEim
 * (association token 1). Each input runs on a fresh copy of the template file (on /dev/shm
 * when available). Because the fuzzer cannot forge the eIM's signature, the harness signs
 * package bodies for it, so the operations themselves are reached. Input:
 *   byte 0   flags: bit 0 open a session first (MANAGE CHANNEL + SELECT ISD-R);
 *            bit 1 the lose_result_after_enable knob; bits 2-3 fail_write_at (0 = off);
 *            bits 4-7 how many prepared valid packages (enable, listProfileInfo, addEim,
 *            setFallbackAttribute, listEim, disable, delete) to send first.
 *   then     records [type u8][len u8][len bytes] until the input ends; type mod 5:
 *            0 one raw APDU; 1 one ES10 request (STORE DATA blocks of 120 bytes on the
 *            session's channel); 2 a psmoList body, 3 an ecoList body: the harness wraps it
 *            in EuiccPackageSigned {eimId, EID, the next counter} and signs it as the eIM
 *            (token 1); 4 a card reset (len ignored, no bytes).
 * Checked: pl_euicc_apdu never returns a positive value and answers at least a status word
 * on PL_OK; afterwards the file reopens and is consistent: factory mode off, no load in
 * progress, at most one profile and it was never duplicated, at most one enabled and one
 * fallback profile, eIM counters and counts within their bounds. */
#define _POSIX_C_SOURCE 200809L
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/sim/euicc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EIM_ID   "eim1.provline.test"
#define N_PREP   7u
#define CTR_BASE 100u /* counters of the prepared packages: 1..N_PREP; the fuzzer's: above */

static bool ready;
static struct pl_et T;
static char dir[256];
static char template_path[320];
static char work_path[320];
static uint8_t *tmpl;
static size_t tmpl_len;
static uint8_t EID[16];
static uint8_t ICCID[10];
static struct pl_wr prep[N_PREP];
static struct pl_rng rng;

static void cleanup(void)
{
    for (size_t i = 0; i < N_PREP; i++)
        pl_wr_free(&prep[i]);
    free(tmpl);
    if (dir[0] && strncmp(dir, "/dev/shm/", 9) == 0) {
        char tmp[340];
        snprintf(tmp, sizeof(tmp), "%s.tmp", work_path);
        (void)unlink(template_path);
        (void)unlink(work_path);
        (void)unlink(tmp);
        (void)rmdir(dir);
    }
    pl_et_free(&T);
}

static void must(int rc)
{
    if (rc != PL_OK)
        abort();
}

/* The prepared packages, counters 1..N_PREP. */
static void prepare(void)
{
    static const int64_t token = 1;
    struct pl_sgp32_euicc_package *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    for (uint32_t i = 0; i < N_PREP; i++) {
        memset(p, 0, sizeof(*p));
        p->eim_id = pl_sgp32_str(EIM_ID);
        memcpy(p->eid, EID, 16);
        p->counter = i + 1;
        p->n_ops = 1;
        p->kind = PL_SGP32_PACKAGE_PSMO;
        switch (i) {
        case 0:
            p->psmo[0].kind = PL_SGP32_PSMO_ENABLE;
            memcpy(p->psmo[0].enable.iccid, ICCID, 10);
            break;
        case 1:
            p->psmo[0].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
            break;
        case 2:
            p->kind = PL_SGP32_PACKAGE_ECO;
            p->eco[0].kind = PL_SGP32_ECO_ADD_EIM;
            must(pl_et_eim_config(&T, "eim2.provline.test", false, true, &p->eco[0].eim_config));
            break;
        case 3:
            p->psmo[0].kind = PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE;
            memcpy(p->psmo[0].profile.iccid, ICCID, 10);
            break;
        case 4:
            p->kind = PL_SGP32_PACKAGE_ECO;
            p->eco[0].kind = PL_SGP32_ECO_LIST_EIM;
            break;
        case 5:
            p->psmo[0].kind = PL_SGP32_PSMO_DISABLE;
            memcpy(p->psmo[0].profile.iccid, ICCID, 10);
            break;
        default:
            p->psmo[0].kind = PL_SGP32_PSMO_DELETE;
            memcpy(p->psmo[0].profile.iccid, ICCID, 10);
            break;
        }
        pl_wr_init_dyn(&prep[i], 1 << 16);
        must(pl_sgp32_euicc_package_request_sign(p, &token, pl_pki_key(T.pki, PL_PKI_EIM), &rng,
                                                 &prep[i]));
    }
    free(p);
}

static void init_once(void)
{
    static const char *const upps[] = {"TS48V1-A-UNIQUE.der"};
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    unsigned ch;

    rng = PL_RNG_SYSTEM;
    must(pl_et_init(&T, PL_CURVE_P256));
    snprintf(dir, sizeof(dir), "/dev/shm/pl-fuzz-euicc-field.%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0)
        snprintf(dir, sizeof(dir), "%s", T.dir);
    snprintf(template_path, sizeof(template_path), "%s/template.state", dir);
    snprintf(work_path, sizeof(work_path), "%s/work.state", dir);
    must(pl_euicc_mint(T.pki, PL_CURVE_P256, NULL, 2, template_path, &T.rng));
    pl_euicc_opts_init(&o);
    must(pl_euicc_open(template_path, &o, &e));
    must(pl_et_session(e, &ch));
    must(pl_et_produce(&T, e, ch, upps, 1));
    pl_euicc_get_eid(e, EID);
    struct pl_euicc_profile_info pi;
    must(pl_euicc_profile_get(e, 0, &pi));
    memcpy(ICCID, pi.iccid, 10);
    /* AddInitialEim: the PKI's eIM, certificate, token requested */
    struct pl_sgp32_add_initial_eim_request *q = calloc(1, sizeof(*q));
    struct pl_wr req, rsp;
    uint16_t sw;
    if (!q)
        abort();
    q->n_eims = 1;
    must(pl_et_eim_config(&T, EIM_ID, true, true, &q->eims[0]));
    pl_wr_init_dyn(&req, 1 << 16);
    pl_wr_init_dyn(&rsp, 1 << 16);
    must(pl_sgp32_add_initial_eim_request_encode(q, &req));
    must(pl_et_es10(e, ch, req.buf, req.len, &rsp, &sw));
    if (pl_euicc_eim_count(e) != 1)
        abort();
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    free(q);
    pl_euicc_close(e);
    prepare();
    tmpl = pl_test_read_file(template_path, &tmpl_len);
    if (!tmpl)
        abort();
    atexit(cleanup);
    ready = true;
}

static void reset_file(void)
{
    FILE *f = fopen(work_path, "wb");
    if (!f || fwrite(tmpl, 1, tmpl_len, f) != tmpl_len)
        abort();
    fclose(f);
}

/* BF51 { 30 { 80 eimId, 5A EID, 81 counter, A0|A1 { body } }, 5F37 sig } signed as the eIM
 * over the EuiccPackageSigned TLV followed by '84 01 01' (token 1). */
static int wrap_signed(bool eco, uint32_t counter, const uint8_t *body, size_t len,
                       struct pl_wr *out)
{
    static const uint8_t token_tlv[3] = {0x84, 0x01, 0x01};
    uint8_t sig[PL_ECDSA_SIG_LEN];
    struct pl_wr s;
    int rc;
    pl_wr_init_dyn(&s, 1 << 16);
    size_t m = pl_der_begin(&s, PL_TAG_SEQUENCE);
    pl_der_put_tlv(&s, 0x80u, EIM_ID, strlen(EIM_ID));
    pl_der_put_tlv(&s, 0x5Au, EID, sizeof(EID));
    pl_der_put_uint(&s, 0x81u, counter);
    pl_der_put_tlv(&s, eco ? 0xA1u : 0xA0u, body, len);
    pl_der_end(&s, m);
    pl_wr_bytes(&s, token_tlv, sizeof(token_tlv));
    if ((rc = pl_wr_status(&s)))
        goto out;
    if ((rc = pl_ecdsa_sign(pl_pki_key(T.pki, PL_PKI_EIM), s.buf, s.len, &rng, sig)))
        goto out;
    m = pl_der_begin(out, 0xBF51u);
    pl_wr_bytes(out, s.buf, s.len - sizeof(token_tlv));
    pl_der_put_tlv(out, 0x5F37u, sig, sizeof(sig));
    pl_der_end(out, m);
    rc = pl_wr_status(out);
out:
    pl_wr_free(&s);
    return rc;
}

static void check_consistent(void)
{
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    if (pl_euicc_open(work_path, &o, &e) != PL_OK)
        abort();
    if (pl_euicc_factory_mode(e) || pl_euicc_load_in_progress(e))
        abort();
    size_t n_enabled = 0, n_fallback = 0;
    if (pl_euicc_profile_count(e) > 1)
        abort();
    for (size_t i = 0; i < pl_euicc_profile_count(e); i++) {
        struct pl_euicc_profile_info pi;
        if (pl_euicc_profile_get(e, i, &pi) != PL_OK || memcmp(pi.iccid, ICCID, 10) != 0)
            abort();
        n_enabled += pi.enabled;
        n_fallback += pi.fallback;
    }
    if (n_enabled > 1 || n_fallback > 1)
        abort();
    if (pl_euicc_eim_count(e) > PL_EUICC_MAX_EIMS || pl_euicc_epr_count(e) > PL_EUICC_MAX_EPRS)
        abort();
    for (size_t i = 0; i < pl_euicc_eim_count(e); i++) {
        struct pl_euicc_eim_info info;
        if (pl_euicc_eim_get(e, i, &info) != PL_OK || info.counter > PL_EUICC_COUNTER_MAX)
            abort();
    }
    if (pl_euicc_awaiting_reset(e))
        abort(); /* RAM-only: an open is a reset */
    pl_euicc_close(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    uint8_t r[PL_APDU_RAPDU_MAX];
    struct pl_wr req, rsp;
    size_t rl;
    unsigned ch = 0;
    uint32_t counter = CTR_BASE;

    if (!ready)
        init_once();
    if (size == 0)
        return 0;
    reset_file();
    pl_euicc_opts_init(&o);
    o.lose_result_after_enable = (data[0] & 2u) != 0;
    o.fail_write_at = (unsigned)((data[0] >> 2) & 3u);
    if (pl_euicc_open(work_path, &o, &e) != PL_OK)
        abort();
    if ((data[0] & 1u) && pl_et_session(e, &ch) != PL_OK)
        abort();
    pl_wr_init_dyn(&req, 1 << 16);
    pl_wr_init_dyn(&rsp, 1 << 16);
    size_t pre = data[0] >> 4;
    for (size_t i = 0; i < pre && i < N_PREP && !pl_euicc_is_dead(e); i++) {
        uint16_t sw;
        pl_wr_reset(&rsp);
        if (pl_et_es10(e, ch, prep[i].buf, prep[i].len, &rsp, &sw) == PL_ERR_INVAL)
            abort();
    }
    size_t off = 1;
    while (off + 2 <= size && !pl_euicc_is_dead(e)) {
        uint8_t type = data[off] % 5u;
        size_t n = data[off + 1];
        off += 2;
        if (n > size - off)
            n = size - off;
        const uint8_t *body = data + off;
        off += n;
        uint16_t sw;
        int rc;
        switch (type) {
        case 0:
            rc = pl_euicc_apdu(e, body, n, r, sizeof(r), &rl);
            if (rc > 0 || (rc == PL_OK && (rl < 2 || rl > sizeof(r))))
                abort();
            break;
        case 1:
            pl_wr_reset(&rsp);
            rc = pl_et_es10(e, ch, body, n, &rsp, &sw);
            if (rc > 0)
                abort();
            break;
        case 2:
        case 3:
            pl_wr_reset(&req);
            if (wrap_signed(type == 3, counter++, body, n, &req) != PL_OK)
                break;
            pl_wr_reset(&rsp);
            rc = pl_et_es10(e, ch, req.buf, req.len, &rsp, &sw);
            if (rc > 0)
                abort();
            break;
        default:
            rc = pl_euicc_reset(e);
            if (rc != PL_OK && !pl_euicc_is_dead(e))
                abort();
            if (rc == PL_OK && pl_euicc_awaiting_reset(e))
                abort();
            ch = 0;
            if ((data[0] & 1u) && !pl_euicc_is_dead(e) && pl_et_session(e, &ch) != PL_OK)
                ch = 0;
            break;
        }
    }
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    pl_euicc_close(e);
    check_consistent();
    return 0;
}
