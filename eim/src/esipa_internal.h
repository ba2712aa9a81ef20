/* Internal: pieces the ESipa functions share (GSMA SGP.32 v1.2 §6.3.2). Never included
 * outside eim/src. */
#ifndef PROVLINE_EIM_ESIPA_INTERNAL_H
#define PROVLINE_EIM_ESIPA_INTERNAL_H

#include "eim_engine_internal.h"
#include "provline/protocol/sgp32_esipa.h"

#include <stdint.h>

/* Processes a ProvideEimPackageResult body. PL_OK with *err_code 0 (accepted; acks filled,
 * eid_out set) or with *err_code the provideEimPackageResultError to answer; PL_ERR_DENIED
 * or a fatal error otherwise. */
PL_MUST_CHECK int pl_eimi_provide(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                                  const struct pl_sgp32_provide_eim_package_result *req,
                                  struct pl_eimi_acks *acks, int64_t *err_code,
                                  uint8_t eid_out[PL_EIM_EID_LEN]);
/* Appends BF50 {eimAcknowledgements} (acks plus the EID's unacknowledged items) or
 * BF50 {emptyResponse}, then marks them acknowledged. */
PL_MUST_CHECK int pl_eimi_ack_answer(struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN],
                                     struct pl_eimi_acks *acks, struct pl_wr *rsp);

#endif
