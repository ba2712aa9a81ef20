/* Fuzz target: arbitrary request bodies into the eIM's ESipa request handler
 * (pl_eim_esipa_handle: EsipaMessageFromIpaToEim decoding, GetEimPackage,
 * ProvideEimPackageResult with every result arm, HandleNotification, relays), no network.
 * GSMA SGP.32 v1.2 §6.3; docs/eim-engine.md.
 *
 * One engine over a SQLite store in a temp dir (tests/support/eim_test_env.c) lives for the
 * whole run; the first byte of each input chooses the transport identity (none, the
 * registered EID, another EID), the rest is the body. Operations are queued again whenever
 * the device's queue runs dry, so result bodies meet packages in flight.
 * Invariants checked: the handler never fails without a status, a 2.04 answer is one
 * strictly valid EsipaMessageFromEimToIpa (or empty), other statuses carry no body, and the
 * device's counter never goes down. */
#define _POSIX_C_SOURCE 200809L

#include "eim_test_env.h"
#include "provline/protocol/sgp32_esipa.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pl_eimt *ENV;
static uint32_t LAST_COUNTER;

static void cleanup(void)
{
    if (ENV != NULL) {
        pl_eimt_free(ENV);
        free(ENV);
        ENV = NULL;
    }
}

static void refill(void)
{
    struct pl_eim_op_summary s[4];
    size_t n = 0;
    unsigned mask = (1u << PL_EIM_OPS_QUEUED) | (1u << PL_EIM_OPS_CLAIMED) | (1u << PL_EIM_OPS_SENT)
                    | (1u << PL_EIM_OPS_REQUERY);
    if (pl_eim_store_op_list(ENV->store, ENV->eid, mask, s, 4, &n) != PL_OK || n > 0)
        return;
    (void)pl_eimt_enqueue(ENV, PL_EIM_OP_ENABLE, "{\"iccid\":\"89001012012341234012\"}");
    (void)pl_eimt_enqueue(ENV, PL_EIM_OP_IPA_EUICC_DATA_REQUEST, NULL);
    (void)pl_eimt_enqueue(ENV, PL_EIM_OP_LIST_PROFILE_INFO, NULL);
    (void)pl_eimt_enqueue(ENV, PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER, "{\"contactDefaultSmdp\":true}");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ENV == NULL) {
        ENV = calloc(1, sizeof(*ENV));
        if (ENV == NULL || pl_eimt_init(ENV, 1000) != PL_OK)
            abort();
        atexit(cleanup);
    }
    refill();
    if (size == 0)
        return 0;
    uint8_t other[16];
    memcpy(other, ENV->eid, 16);
    other[15] ^= 0x5A;
    const uint8_t *peer = (data[0] & 3) == 1 ? ENV->eid : (data[0] & 3) == 2 ? other : NULL;
    /* time moves on, so timeouts and requeries happen too */
    ENV->now_ms += (int64_t)(data[0] >> 2) * 100;

    struct pl_wr w;
    enum pl_eim_esipa_code code = 0;
    pl_wr_init_dyn(&w, 1u << 20);
    if (pl_eim_esipa_handle(ENV->eng, peer, data + 1, size - 1, 0, &w, &code) != PL_OK)
        abort();
    switch (code) {
    case PL_EIM_ESIPA_CHANGED:
        if (w.len > 0) {
            struct pl_sgp32_esipa_eim_msg *m = malloc(sizeof(*m));
            if (m == NULL || pl_sgp32_esipa_eim_msg_decode(w.buf, w.len, m) != PL_OK)
                abort();
            free(m);
        }
        break;
    case PL_EIM_ESIPA_BAD_REQUEST:
    case PL_EIM_ESIPA_FORBIDDEN:
    case PL_EIM_ESIPA_TOO_LARGE:
        if (w.len != 0)
            abort();
        break;
    case PL_EIM_ESIPA_INCOMPLETE:
    case PL_EIM_ESIPA_SERVER_ERROR:
    default:
        abort(); /* a SQLite store in a temp dir does not fail */
    }
    pl_wr_free(&w);
    uint32_t c = pl_eimt_store_counter(ENV);
    if (c < LAST_COUNTER)
        abort();
    LAST_COUNTER = c;
    return 0;
}
