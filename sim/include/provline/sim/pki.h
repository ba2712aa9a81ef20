/* Test PKI generator for a lab line: a throw-away GSMA-shaped RSP PKI (CI, EUM,
 * SM-DPf binding, eIM, sample eUICC) plus a small TLS PKI, generated on demand.
 *
 * Certificate profiles follow GSMA SGP.22 v2.5 §4.5.2.1.0.x (CI, EUM, eUICC, SM-DP+
 * binding) with the id-rspRole certificatePolicies of RSPDefinitions.asn; the eIM
 * signing certificate follows GSMA SGP.32 v1.2 §2.6 (CERT.EIM.ECDSA; no role OID is
 * defined for it); TLS server certificates follow RFC 5280 §4.2.1.6 / §4.2.1.12.
 * Decision record: docs/decisions/0008-test-pki.md. NEVER a production trust anchor.
 *
 * Layout of one PKI directory (pl_pki_init):
 *   ci.key ci.crt ci.der                 CI root: CA, keyCertSign+cRLSign, id-rspRole-ci, SKI
 *   eum.key eum.crt eum.der              EUM: CA pathLen 0, keyCertSign, id-rspRole-eum, signed by CI
 *   dpf.key dpf.crt dpf.der              SM-DPf binding (CERT.DPpb): digitalSignature, id-rspRole-dp-pb
 *   eim.key eim.crt eim.der              eIM package signing: digitalSignature, signed by CI
 *   euicc-sample.key/.crt/.der           one CERT.EUICC (EID PL_PKI_SAMPLE_EID), signed by EUM
 *   tls-ca.key tls-ca.crt tls-ca.der     TLS CA: CA pathLen 0, keyCertSign+cRLSign
 *   keymaker-tls.key/.crt/.der           TLS server: serverAuth, SAN DNS:localhost IP:127.0.0.1
 *   eim-tls.key/.crt/.der                TLS server: serverAuth, SAN DNS:localhost IP:127.0.0.1
 * .key = PEM SEC1 "EC PRIVATE KEY" (mode 0600), .crt = PEM, .der = DER.
 * The RSP certificates use the requested curve; the TLS ones are always P-256, because
 * GnuTLS (libcoap's DTLS backend on Debian) has no brainpool curves.
 *
 * Files are written here (sim/ is lab tooling); nothing is printed. */
#ifndef PROVLINE_SIM_PKI_H
#define PROVLINE_SIM_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/x509.h"

#define PL_PKI_EID_LEN 16u
/* EID of euicc-sample: EUM prefix 89049032, check digits per SGP.29 (mod 97 == 1). */
#define PL_PKI_SAMPLE_EID "89049032000000000000000000000163"
/* notAfter of every minted CERT.EUICC: GeneralizedTime 99991231235959Z. */
#define PL_PKI_EUICC_NOT_AFTER ((int64_t)253402300799)
#define PL_PKI_PATH_MAX 4096u

struct pl_pki;

enum pl_pki_item {
    PL_PKI_CI = 0,
    PL_PKI_EUM = 1,
    PL_PKI_DPF = 2,
    PL_PKI_EIM = 3,
    PL_PKI_EUICC_SAMPLE = 4,
    PL_PKI_TLS_CA = 5,
    PL_PKI_KEYMAKER_TLS = 6,
    PL_PKI_EIM_TLS = 7,
};
#define PL_PKI_ITEMS 8

enum pl_pki_file {
    PL_PKI_FILE_KEY = 0, /* <name>.key, PEM private key */
    PL_PKI_FILE_CRT = 1, /* <name>.crt, PEM certificate */
    PL_PKI_FILE_DER = 2, /* <name>.der, DER certificate */
};

/* File base name of an item ("ci", "eum", "dpf", "eim", "euicc-sample", "tls-ca",
 * "keymaker-tls", "eim-tls"); NULL for an unknown item. */
const char *pl_pki_item_name(enum pl_pki_item item);

/* How an item's chain is verified: *issuer is the item that signed it (the item itself
 * for the roots CI and TLS CA, which have no role), *role its pl_cert_role, and
 * *intermediate the one CA between issuer and item (the EUM for euicc-sample), or -1.
 * Returns PL_ERR_NOT_FOUND for the roots (nothing to verify but the root itself). */
PL_MUST_CHECK int pl_pki_item_chain(enum pl_pki_item item, enum pl_pki_item *root,
                                    int *intermediate, enum pl_cert_role *role);

/* Creates a whole PKI in dir (created with mode 0700 if missing; its parent must
 * exist). `now` sets the validity: notBefore = now - 1 day; CA certs last 20 years,
 * leaf certs 10 years, CERT.EUICC until 9999-12-31. rng is borrowed.
 * PL_ERR_EXISTS if dir already holds a PKI (ci.key), PL_ERR_IO on file errors (what
 * was written is removed again), PL_ERR_INVAL on a bad curve or `now`. */
PL_MUST_CHECK int pl_pki_init(const char *dir, enum pl_curve curve, const struct pl_rng *rng,
                              time_t now);

/* Loads every key and certificate of a PKI made by pl_pki_init. Returns owned *out
 * (pl_pki_free). PL_ERR_IO / PL_ERR_NOT_FOUND on missing files, PL_ERR_CERT or
 * PL_ERR_BAD_KEY on unreadable ones, PL_ERR_BAD_KEY if a key does not match its cert. */
PL_MUST_CHECK int pl_pki_load(const char *dir, struct pl_pki **out);
void pl_pki_free(struct pl_pki *pki); /* accepts NULL; zeroises the private keys */

/* Curve of the RSP part (the CI's key). */
enum pl_curve pl_pki_curve(const struct pl_pki *pki);
const char *pl_pki_dir(const struct pl_pki *pki);
/* Borrowed; valid while pki lives. NULL for an unknown item. */
const struct pl_cert *pl_pki_cert(const struct pl_pki *pki, enum pl_pki_item item);
const struct pl_eckey *pl_pki_key(const struct pl_pki *pki, enum pl_pki_item item);
/* Path of one file of an item, NUL-terminated. PL_ERR_OVERFLOW if cap is too small. */
PL_MUST_CHECK int pl_pki_path(const struct pl_pki *pki, enum pl_pki_item item,
                              enum pl_pki_file file, char *out, size_t cap);

/* Verifies the chain of every item (pl_pki_item_chain) with pl_cert_verify_chain at
 * `now`. On failure returns its error and, if failed != NULL, the failing item. */
PL_MUST_CHECK int pl_pki_verify(const struct pl_pki *pki, time_t now,
                                enum pl_pki_item *failed);

/* Mints an eUICC: a fresh key on the PKI's curve and a CERT.EUICC signed by the EUM
 * key (SGP.22 v2.5 §4.5.2.1.0.3): subject C, O (the EUM's organisation),
 * serialNumber = the EID as 32 uppercase hex digits, CN; keyUsage digitalSignature
 * (critical), certificatePolicies id-rspRole-euicc (critical), AKI = EUM SKI, SKI;
 * notBefore = now - 1 day, notAfter 9999-12-31T23:59:59Z.
 * Returns owned *key_out (pl_eckey_free) and the DER in cert_der (*len bytes).
 * PL_ERR_OVERFLOW if cap is too small (PL_CERT_MAX_DER is always enough). */
PL_MUST_CHECK int pl_pki_mint_euicc_with(const struct pl_pki *pki,
                                         const uint8_t eid[PL_PKI_EID_LEN],
                                         const struct pl_rng *rng, time_t now,
                                         struct pl_eckey **key_out, uint8_t *cert_der,
                                         size_t cap, size_t *len);
/* The same from a PKI directory; `curve` must be the PKI's curve (else PL_ERR_INVAL). */
PL_MUST_CHECK int pl_pki_mint_euicc(const char *pki_dir, enum pl_curve curve,
                                    const uint8_t eid[PL_PKI_EID_LEN], const struct pl_rng *rng,
                                    time_t now, struct pl_eckey **key_out, uint8_t *cert_der,
                                    size_t cap, size_t *len);

#endif
