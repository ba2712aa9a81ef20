/* X.509 certificates of the GSMA RSP PKI and their chain verification.
 *
 * GSMA SGP.22 v2.5 §4.5.2 (certificate profiles: CI, EUM, eUICC, SM-DP+ roles and the
 * id-rspRole certificatePolicies OIDs of RSPDefinitions.asn), §4.5.2.2 (eUICC name
 * constraints); GSMA SGP.32 v1.2 §2.6 (CERT.EIM.ECDSA, eIM (D)TLS certificates);
 * IETF RFC 5280 §4.1, §4.2 (certificate and extension syntax), §6.1 (path validation).
 *
 * Parsing uses mbedTLS 2.28 (mbedtls_x509_crt) behind an opaque handle, after a strict
 * DER pass (der.h) over the whole certificate. The extensions mbedTLS 2.28 does not
 * expose (subject/authority key identifier, certificatePolicies OIDs, nameConstraints)
 * are read by provline's own DER walker.
 *
 * Chain verification is provline's own, not mbedtls_x509_crt_verify(), because:
 *  - validity is checked against a caller-supplied `now` (mbedTLS uses the wall clock),
 *    so tests and offline tools can inject time;
 *  - the GSMA role is enforced through certificatePolicies (id-rspRole-*), and the
 *    EUM's nameConstraints with the SGP.22 semantics (the eUICC subject must carry the
 *    constrained organisation, and its serialNumber, the EID, must start with the
 *    constrained serialNumber, the EIN prefix), which RFC 5280 verifiers do not do.
 *
 * Accepted algorithms: ECDSA with SHA-256 signatures, EC keys on NIST P-256 or
 * brainpoolP256r1 (SGP.22 v2.5 §2.6.5). Anything else fails verification. */
#ifndef PROVLINE_PROTOCOL_X509_H
#define PROVLINE_PROTOCOL_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"

/* Hard caps: a certificate of the RSP PKI is well under 1 KiB. */
#define PL_CERT_MAX_DER 8192u          /* DER bytes of one certificate */
#define PL_CERT_MAX_PEM 16384u         /* PEM input, headers included */
#define PL_CERT_MAX_INTERMEDIATES 4u   /* CA certificates between leaf and root */
#define PL_CERT_MAX_POLICIES 8u        /* certificatePolicies entries kept per cert */
#define PL_CERT_KEYID_MAX 64u          /* longest key identifier accepted */
#define PL_CERT_EID_LEN 16u            /* EID: 32 digits, packed */

/* A parsed certificate (opaque). */
struct pl_cert;

/* The role a chain is verified for. See pl_cert_verify_chain() for what each checks. */
enum pl_cert_role {
    PL_CERT_ROLE_EUM = 1,        /* CERT.EUM.ECDSA itself: CI -> EUM (the leaf is a CA) */
    PL_CERT_ROLE_EUICC = 2,      /* CERT.EUICC.ECDSA: CI -> EUM -> eUICC */
    PL_CERT_ROLE_DPPB = 3,       /* CERT.DPpb.ECDSA, the SM-DPf binding cert: CI -> DPpb */
    PL_CERT_ROLE_EIM = 4,        /* CERT.EIM.ECDSA, eUICC package signing (SGP.32) */
    PL_CERT_ROLE_TLS_SERVER = 5, /* (D)TLS server certificate (ESipa, Key Maker) */
};
const char *pl_cert_role_name(enum pl_cert_role role); /* "EUM", "eUICC", ...; never NULL */

/* Parses one certificate, DER or PEM ("-----BEGIN CERTIFICATE-----", one block,
 * nothing but whitespace around it). Copies buf. DER must be strict (X.690 §10): no
 * indefinite or non-minimal lengths, no trailing bytes. An unknown critical extension
 * is a parse error (RFC 5280 §4.2).
 * Returns owned *out (free with pl_cert_free), PL_ERR_INVAL on NULL arguments,
 * PL_ERR_CERT on anything that is not one well-formed certificate, PL_ERR_NOMEM. */
PL_MUST_CHECK int pl_cert_parse(const uint8_t *buf, size_t len, struct pl_cert **out);
void pl_cert_free(struct pl_cert *cert); /* accepts NULL */

/* The certificate's DER bytes as received (for PEM input: the decoded DER). Borrows:
 * valid while cert lives. Use these bytes, never a re-encoding, wherever a signature
 * or a hash covers the certificate. */
void pl_cert_der(const struct pl_cert *cert, const uint8_t **der, size_t *len);

/* Curve of the subject public key; PL_CURVE_NONE if it is not an EC key on P-256 or
 * brainpoolP256r1. */
enum pl_curve pl_cert_curve(const struct pl_cert *cert);
/* The subject public key as an uncompressed point (04 || X || Y).
 * PL_ERR_UNSUPPORTED if the key is not on a supported curve. */
PL_MUST_CHECK int pl_cert_public_point(const struct pl_cert *cert, uint8_t out[PL_EC_PUB_LEN]);
/* The subject public key as a crypto.h key; returns owned *out (pl_eckey_free).
 * PL_ERR_UNSUPPORTED if the key is not on a supported curve. */
PL_MUST_CHECK int pl_cert_public_key(const struct pl_cert *cert, struct pl_eckey **out);

/* subjectKeyIdentifier / authorityKeyIdentifier.keyIdentifier (RFC 5280 §4.2.1.1-2),
 * copied into out. PL_ERR_NOT_FOUND if absent, PL_ERR_OVERFLOW if cap is too small. */
PL_MUST_CHECK int pl_cert_subject_key_id(const struct pl_cert *cert, uint8_t *out, size_t cap,
                                         size_t *len);
PL_MUST_CHECK int pl_cert_authority_key_id(const struct pl_cert *cert, uint8_t *out, size_t cap,
                                           size_t *len);

/* notBefore / notAfter in seconds since 1970-01-01T00:00:00Z (GeneralizedTime
 * 99991231235959Z, the SGP.22 "no expiry" of eUICC certs, is 253402300799). */
void pl_cert_validity(const struct pl_cert *cert, int64_t *not_before, int64_t *not_after);

/* Subject / issuer as text ("C=ES, O=RSP Test EUM, CN=EUM Test"), NUL-terminated.
 * PL_ERR_OVERFLOW if cap is too small. For logs and operators, not for comparisons. */
PL_MUST_CHECK int pl_cert_subject(const struct pl_cert *cert, char *out, size_t cap);
PL_MUST_CHECK int pl_cert_issuer(const struct pl_cert *cert, char *out, size_t cap);
/* The subject's serialNumber attribute (2.5.4.5) as text; in CERT.EUICC it is the EID
 * (SGP.22 v2.5 §4.5.2.1.0.3). PL_ERR_NOT_FOUND if absent, PL_ERR_OVERFLOW if too long
 * for cap, PL_ERR_CERT if it holds a NUL byte. */
PL_MUST_CHECK int pl_cert_subject_serial(const struct pl_cert *cert, char *out, size_t cap);
/* The EID of a CERT.EUICC: the subject serialNumber, 32 hex digits, packed into 16
 * bytes. PL_ERR_NOT_FOUND if absent, PL_ERR_CERT if it is not 32 hex digits. */
PL_MUST_CHECK int pl_cert_eid(const struct pl_cert *cert, uint8_t eid[PL_CERT_EID_LEN]);
/* basicConstraints cA = TRUE. */
bool pl_cert_is_ca(const struct pl_cert *cert);

/* Verifies leaf -> intermediates[0] -> ... -> intermediates[n-1] -> root for `role` at
 * time `now`. The path is given in order: intermediates[0] issued the leaf, root
 * issued intermediates[n-1] (or the leaf when n == 0). Borrows everything.
 *
 * Checks, and the error each failure returns:
 * PL_ERR_CERT_USAGE, the certificates do not fit their place or the role:
 *  - every certificate carries an EC key on P-256 or brainpoolP256r1;
 *  - root and intermediates: basicConstraints cA TRUE, keyUsage with keyCertSign, and
 *    pathLenConstraint respected (RFC 5280 §4.2.1.9; the leaf does not count);
 *  - leaf: keyUsage digitalSignature and no keyCertSign, and not a CA, except for
 *    PL_CERT_ROLE_EUM, whose leaf is the EUM: CA with keyCertSign and pathLen 0;
 *  - GSMA roles through certificatePolicies (SGP.22 v2.5 §4.5.2; id-rspRole =
 *    2.23.146.1.2.1): EUM leaf .2 (eum); eUICC leaf .1 (euicc) with its issuer .2 (eum);
 *    DPpb leaf .5 (dp-pb); and for these three roles the root .0 (ci). A certificate
 *    may not carry an id-rspRole OID other than the one its place requires;
 *  - eIM (SGP.32 v1.2 defines no eIM role OID): accepted by keyUsage
 *    digitalSignature; it must carry no id-rspRole OID at all (a certificate that
 *    claims an SGP.22 role belongs to someone else);
 *  - TLS server: keyUsage, if present, with digitalSignature; extendedKeyUsage, if
 *    present, with serverAuth; an id-rspRole OID, if any, must be dp-tls or ds-tls;
 *  - eUICC: subject serialNumber of 32 hex digits (the EID), and the EUM's
 *    nameConstraints, if present, satisfied in the SGP.22 sense (see the top of this
 *    file). Name constraints anywhere else, or in forms other than permitted
 *    directoryNames, are not supported and fail closed.
 * PL_ERR_CERT_CHAIN, the path does not lead to the root:
 *  - the number of intermediates is wrong for the role (EUM and DPpb: 0, eUICC: 1,
 *    eIM and TLS: at most PL_CERT_MAX_INTERMEDIATES);
 *  - an issuer name differs (byte for byte) from its issuer's subject, or the
 *    authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier;
 *  - a signature is not ECDSA-SHA256 or does not verify; a self-issued root must also
 *    verify its own signature.
 * PL_ERR_CERT_VALIDITY: `now` is before notBefore or after notAfter of any certificate
 * in the path, root included.
 * PL_ERR_INVAL on NULL arguments or n over PL_CERT_MAX_INTERMEDIATES. */
PL_MUST_CHECK int pl_cert_verify_chain(const struct pl_cert *leaf,
                                       const struct pl_cert *const *intermediates, size_t n,
                                       const struct pl_cert *root, enum pl_cert_role role,
                                       time_t now);

#endif
