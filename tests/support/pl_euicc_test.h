/* Test helpers for the software eUICC (sim/euicc.h): a throw-away test PKI, minted eUICCs,
 * packages bound with the SM-DPf binder (bpp_bind.h) plus their ES10f header, and the
 * ES10 STORE DATA transport over pl_euicc_transmit. Never linked into a product. */
#ifndef PL_EUICC_TEST_H
#define PL_EUICC_TEST_H

#include "provline/protocol/bpp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/wr.h"
#include "provline/sim/euicc.h"
#include "provline/sim/pki.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A lab line: a temp directory holding a test PKI. */
struct pl_et {
    char dir[256];
    enum pl_curve curve;
    struct pl_pki *pki;
    struct pl_rng rng;
};
/* Creates dir + PKI on curve. 0 or a pl_err. */
int pl_et_init(struct pl_et *t, enum pl_curve curve);
void pl_et_free(struct pl_et *t);
/* Mints an eUICC with n OTKs into t->dir/name; its path goes to path. eid may be NULL. */
int pl_et_mint(struct pl_et *t, const char *name, unsigned n, const uint8_t *eid, char *path,
               size_t cap);
/* Copies a file (state snapshots). 0 on success. */
int pl_et_copy(const char *from, const char *to);
/* A TS.48 UPP from tests/data/ts48 (malloc'd). NULL on error. */
uint8_t *pl_et_upp(const char *name, size_t *len);

/* One package: the ES10f header 'FF71' and the BPP 'BF36' bound to (eid, otPK). */
struct pl_et_pkg {
    uint16_t otk_id;
    uint8_t tid[16];
    size_t tid_len;
    struct pl_wr hdr;
    struct pl_wr bpp;
};
/* Binds upp for (eid, otpk) with the PKI's SM-DPf key; the header names hdr_otk_id. A fresh
 * random transactionId. rsk: add ReplaceSessionKeys. */
int pl_et_bind(struct pl_et *t, const uint8_t eid[16], const uint8_t otpk[PL_EC_PUB_LEN],
               uint16_t hdr_otk_id, const uint8_t *upp, size_t upp_len, bool rsk,
               struct pl_et_pkg *out);
/* Binds for OTK otk_id of an open eUICC (reads its EID and otPK). */
int pl_et_bind_for(struct pl_et *t, const struct pl_euicc *e, uint16_t otk_id, const uint8_t *upp,
                   size_t upp_len, bool rsk, struct pl_et_pkg *out);
/* Re-encodes the header with another otkId / dpfChain (the chain's certs as DER). */
int pl_et_header(uint16_t otk_id, const uint8_t *tid, size_t tid_len, const uint8_t *const *certs,
                 const size_t *cert_lens, size_t n_certs, struct pl_wr *out);
void pl_et_pkg_free(struct pl_et_pkg *p);

/* MANAGE CHANNEL open + SELECT ISD-R; *ch = the channel. */
int pl_et_session(struct pl_euicc *e, unsigned *ch);
/* One ES10 request via pl_es10_transceive (mss 120); response data appended to rsp;
 * *sw the final status word. Returns the transceive result. */
int pl_et_es10(struct pl_euicc *e, unsigned ch, const uint8_t *req, size_t len, struct pl_wr *rsp,
               uint16_t *sw);
/* Sends the header then each segment (spans of the BPP as pl_bpp_segments gives them, or any
 * list) until a response carries data (the PIR) or a call fails. *sent = segments sent
 * (header not counted). pir gets the response data, if any. Returns PL_OK or the failing
 * call's error. */
int pl_et_send(struct pl_euicc *e, unsigned ch, const uint8_t *hdr, size_t hdr_len,
               const struct pl_bpp_span *spans, size_t n, struct pl_wr *pir, uint16_t *sw,
               size_t *sent);
/* Splits a BPP into its ES10b segments (malloc'd array, *n entries). */
struct pl_bpp_span *pl_et_segments(const uint8_t *bpp, size_t len, size_t *n);
/* Header + all segments of pkg. */
int pl_et_load(struct pl_euicc *e, unsigned ch, const struct pl_et_pkg *p, struct pl_wr *pir,
               uint16_t *sw);

/* Decodes a PIR and verifies it with the eUICC's CERT.EUICC. 0 = valid. */
int pl_et_pir_check(const struct pl_euicc *e, const uint8_t *p, size_t len, struct pl_pir *out);
/* Verifies with a given CERT.EUICC (DER). */
int pl_et_pir_check_cert(const uint8_t *cert, size_t cert_len, const uint8_t *p, size_t len,
                         struct pl_pir *out);

/* Builds a DeleteRemainingOtks request 'FF74' signed with key, the chain = certs. */
int pl_et_dotk_req(const uint8_t eid[16], uint64_t counter, uint32_t op, const struct pl_eckey *key,
                   const uint8_t *cert, size_t cert_len, struct pl_wr *out);

/* ---- field mode (SGP.32) ---- */

/* Takes an open eUICC through production on channel ch: binds and loads each UPP of
 * upp_names (tests/data/ts48) on OTK 1, 2, ... (each PIR verified as a success and left
 * pending), then a Key-Maker-signed DeleteRemainingOtks (counter 1): factory mode ends and
 * the IPA Services open. The eUICC needs more OTKs than UPPs. */
int pl_et_produce(struct pl_et *t, struct pl_euicc *e, unsigned ch, const char *const *upp_names,
                  size_t n_upps);

/* The test PKI's eIM (eim.crt) as EimConfigurationData: eimId id, eimIdType FQDN,
 * eimFqdn id; eimPublicKeyData the certificate (cert = true) or its SubjectPublicKeyInfo;
 * associationToken present (-1: "compute one") when ask_token. Views borrow t's PKI and
 * id. */
int pl_et_eim_config(const struct pl_et *t, const char *id, bool cert, bool ask_token,
                     struct pl_sgp32_eim_config *cfg);
/* The SubjectPublicKeyInfo TLV inside a DER certificate (a view into der). */
int pl_et_cert_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len);

/* Decodes a 'BF51' EuiccPackageResult and, unless it is the unsigned arm, verifies its
 * signature with the eUICC's CERT.EUICC and the association token (NULL: none). 0 =
 * decoded (and verified). res borrows p. */
int pl_et_epr_check(const struct pl_euicc *e, const uint8_t *p, size_t len, const int64_t *token,
                    struct pl_sgp32_euicc_package_result *res);

#endif
