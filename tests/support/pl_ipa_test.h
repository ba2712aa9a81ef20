/* Test helpers for the IPA (ipa/include/provline/ipa/ipa.h): a software eUICC taken through
 * production (one profile loaded by IFPP, factory mode closed, the initial eIM added), eIM
 * Packages signed with the test PKI's eIM key, and the seqNumbers an eIM would acknowledge.
 * GSMA SGP.32 v1.2 §2.11, §5.9.4, §6.3. Never linked into a product. */
#ifndef PL_IPA_TEST_H
#define PL_IPA_TEST_H

#include "pl_euicc_test.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_IT_UPP "TS48V2-SAIP2-1-BERTLV-UNIQUE.der"

struct pl_it_eim {
    const char *eim_id;
    const char *eim_fqdn;
    bool has_token; /* the token the eUICC handed out at AddInitialEim */
    int64_t token;
};

/* Production on an open eUICC with exactly one FREE OTK: loads PL_IT_UPP with OTK 1 (its PIR
 * stays pending), then AddInitialEim {eim->eim_id, eim->eim_fqdn, counter 0, token asked
 * for, eimPublicKeyData = the PKI's eIM certificate}. Fills eim->has_token / token and the
 * profile's ICCID. 0 or a pl_err. */
int pl_it_produce(struct pl_et *t, struct pl_euicc *e, struct pl_it_eim *eim, uint8_t iccid[10]);
/* The same with another TS.48 UPP from tests/data/ts48 (upp: its file name). */
int pl_it_produce_upp(struct pl_et *t, struct pl_euicc *e, struct pl_it_eim *eim,
                      const char *upp_name, uint8_t iccid[10]);

/* A GetEimPackageResponse carrying an EuiccPackageRequest with the n PSMOs, signed with key
 * over the eIM's token. txid may be NULL. Appended to out. */
int pl_it_psmo_response(const struct pl_it_eim *eim, const struct pl_eckey *key,
                        const uint8_t eid[16], uint32_t counter, const char *txid,
                        const struct pl_sgp32_psmo *ops, size_t n, const struct pl_rng *rng,
                        struct pl_wr *out);
/* noEimPackageAvailable (or another eimPackageError code). */
int pl_it_error_response(int64_t code, struct pl_wr *out);

/* The seqNumbers of the signed results and notifications inside a ProvideEimPackageResult's
 * result (EPR, ePRAndNotifications, IpaEuiccData). */
int pl_it_result_seqs(const struct pl_sgp32_eim_package_result *res, uint32_t *seqs, size_t cap,
                      size_t *n);
/* ProvideEimPackageResultResponse: eimAcknowledgements of the n seqs, or emptyResponse. */
int pl_it_ack_response(const uint32_t *seqs, size_t n, struct pl_wr *out);

#endif
