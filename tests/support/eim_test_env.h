/* Test support for the eIM engine and its ESipa server (never linked into a product):
 * a throw-away test PKI, a SQLite store with its counter guard, an engine on a fake clock,
 * and a scripted "IPA + eUICC" that speaks ESipa with the protocol codecs and signs results
 * with a minted eUICC key (GSMA SGP.32 v1.2 §2.11, §6.3; reference/EIM.md §6 item 3).
 *
 * The player keeps the eUICC's own replay state (last accepted counterValue, next
 * seqNumber) and verifies every eIM signature the way an eUICC must before "executing". */
#ifndef PL_EIM_TEST_ENV_H
#define PL_EIM_TEST_ENV_H

#include "provline/eim/engine.h"
#include "provline/eim/esipa_server.h"
#include "provline/eim/store.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "provline/sim/pki.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_EIMT_EIM_ID  "eim.provline.test"
#define PL_EIMT_EID_HEX "89049032000000000000000000012345"
#define PL_EIMT_LOG_MAX 16384u

/* Sends one ESipa body and returns the answer (malloc'd, *rsp may be NULL when empty). */
typedef int (*pl_eimt_exchange_fn)(void *user, const uint8_t *req, size_t len, uint8_t **rsp,
                                   size_t *rsp_len, int *code);

struct pl_eimt {
    char dir[256];
    char store_path[320];
    char guard_path[320];
    struct pl_pki *pki;
    struct pl_eim_store *store;
    struct pl_eim_engine *eng;
    int64_t now_ms; /* the fake wall clock of store and engine */
    struct pl_eckey *eim_pub;
    /* the device */
    uint8_t eid[16];
    struct pl_eckey *euicc_key;
    uint8_t euicc_cert[4096];
    size_t euicc_cert_len;
    /* the eUICC's replay state */
    uint32_t euicc_counter; /* highest counterValue accepted */
    uint32_t euicc_seq;     /* next seqNumber it assigns */
    bool has_token;
    int64_t token;
    /* transport (default: pl_eim_esipa_handle in process) */
    pl_eimt_exchange_fn exchange;
    void *exchange_user;
    char log[PL_EIMT_LOG_MAX]; /* engine log lines, newline separated (truncated) */
};

/* Creates everything in a fresh temp dir; registers the device (EID PL_EIMT_EID_HEX) with
 * its certificates, association (eimId PL_EIMT_EIM_ID, no token) and PSK identity
 * "dev-0163" / key 16 x 0x42. result_timeout_ms 0 = engine default. */
int pl_eimt_init(struct pl_eimt *t, uint64_t result_timeout_ms);
void pl_eimt_free(struct pl_eimt *t);
/* A second store handle on the same database (for durability checks). */
int pl_eimt_open_store(const struct pl_eimt *t, struct pl_eim_store **out);

/* Queues an operation with JSON params (NULL: none). Returns the id (> 0) or a negative. */
int64_t pl_eimt_enqueue(struct pl_eimt *t, enum pl_eim_op_kind kind, const char *params);

/* ESipa as the IPA. Each returns the decoded answer in *m, borrowing *buf (free() it). */
int pl_eimt_get_package(struct pl_eimt *t, bool notify, struct pl_sgp32_esipa_eim_msg *m,
                        uint8_t **buf);
int pl_eimt_provide(struct pl_eimt *t, const struct pl_sgp32_eim_package_result *r,
                    struct pl_sgp32_esipa_eim_msg *m, uint8_t **buf);
/* Raw exchange (any body). */
int pl_eimt_raw(struct pl_eimt *t, const uint8_t *req, size_t len, uint8_t **rsp, size_t *rsp_len,
                int *code);

/* As the eUICC: decodes a BF51, verifies the eIM signature (token as configured) and the
 * counter (must exceed the last accepted, which then moves). *req borrows bf51.
 * PL_ERR_BAD_SIGNATURE / PL_ERR_REPLAY like a real eUICC. */
int pl_eimt_euicc_accept(struct pl_eimt *t, const uint8_t *bf51, size_t len,
                         struct pl_sgp32_euicc_package_request *req);
/* Builds the signed EPR answering req with the given results (seqNumber = the next one).
 * key NULL: the device key. der_sig: the signature as a DER ECDSA-Sig-Value. */
int pl_eimt_epr(struct pl_eimt *t, const struct pl_sgp32_euicc_package_request *req,
                const struct pl_sgp32_euicc_result *results, size_t n, const struct pl_eckey *key,
                bool der_sig, uint8_t **out, size_t *out_len);
/* The same for an EPE (euiccPackageErrorSigned) with error code. */
int pl_eimt_epe(struct pl_eimt *t, const struct pl_sgp32_euicc_package_request *req, int64_t code,
                uint8_t **out, size_t *out_len);
/* Provides an EPR / EPE as ProvideEimPackageResult {eidValue, euiccPackageResult}. */
int pl_eimt_provide_epr(struct pl_eimt *t, const uint8_t *epr, size_t len,
                        struct pl_sgp32_esipa_eim_msg *m, uint8_t **buf);

/* A signed PIR 'BF37' (success, iccid, seqNumber = the next one). */
int pl_eimt_pir(struct pl_eimt *t, const uint8_t iccid[10], uint8_t **out, size_t *out_len);
/* A signed OtherSignedNotification '30' for event (PL_NOTIF_EV_*) on iccid. */
int pl_eimt_other_notif(struct pl_eimt *t, uint8_t event, const uint8_t iccid[10], uint8_t **out,
                        size_t *out_len);

/* Store views. */
int pl_eimt_op(struct pl_eimt *t, int64_t id, struct pl_eim_op *op);
/* The device's profiles_json / eims_json (malloc'd copy, "" when none). */
char *pl_eimt_profiles(struct pl_eimt *t);
char *pl_eimt_eims(struct pl_eimt *t);
uint32_t pl_eimt_store_counter(struct pl_eimt *t);
/* Text of an ICCID in BCD as the engine prints it. */
void pl_eimt_iccid(const char *digits, uint8_t out[10]);

#endif
