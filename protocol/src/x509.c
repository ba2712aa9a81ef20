/* X.509 certificates of the GSMA RSP PKI and chain verification.
 *
 * GSMA SGP.22 v2.5 §4.5.2.1.0.x (certificate descriptions: CI, EUM, eUICC, SM-DP+),
 * §4.5.2.2 (certificate verification, incl. the EUM/eUICC name-constraint check) and
 * the id-rspRole OIDs of RSPDefinitions.asn; GSMA SGP.32 v1.2 §2.6 (eIM certificates);
 * IETF RFC 5280 §4.1, §4.2 (syntax), §6.1 (path validation).
 *
 * mbedTLS 2.28 parses the certificate (signature, key, names, basicConstraints,
 * keyUsage, extendedKeyUsage, validity). provline's own DER walker (der.h) reads what
 * 2.28 does not expose: subject/authority key identifiers, the certificatePolicies
 * OIDs and the nameConstraints. Verification is provline's own (see x509.h). */
#include "provline/protocol/x509.h"

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/der.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"

/* A borrowed span of the certificate's own DER. */
struct pl_span {
    const uint8_t *p;
    size_t len;
};

struct pl_cert {
    mbedtls_x509_crt crt; /* owns the copy of the DER (crt.raw) */
    struct pl_span ski;   /* subjectKeyIdentifier, empty if absent */
    struct pl_span aki;   /* authorityKeyIdentifier.keyIdentifier, empty if absent */
    struct pl_span nc;    /* nameConstraints extnValue contents, empty if absent */
    bool has_nc;
    struct pl_span policies[PL_CERT_MAX_POLICIES]; /* policyIdentifier OID contents */
    size_t n_policies;
    int64_t not_before;
    int64_t not_after;
    enum pl_curve curve;
    uint8_t pub[PL_EC_PUB_LEN];
};

/* ---- OIDs (contents octets) ---- */

static const uint8_t oid_ski[] = {0x55, 0x1D, 0x0E};      /* 2.5.29.14 */
static const uint8_t oid_aki[] = {0x55, 0x1D, 0x23};      /* 2.5.29.35 */
static const uint8_t oid_policies[] = {0x55, 0x1D, 0x20}; /* 2.5.29.32 */
static const uint8_t oid_nc[] = {0x55, 0x1D, 0x1E};       /* 2.5.29.30 */
static const uint8_t oid_serial_number[] = {0x55, 0x04, 0x05}; /* 2.5.4.5 */
/* id-rspRole = 2.23.146.1.2.1 (RSPDefinitions.asn: id-rsp 2.23.146.1, cert-objects 2,
 * rspRole 1); one more arc gives the role. */
static const uint8_t oid_rsp_role[] = {0x67, 0x81, 0x12, 0x01, 0x02, 0x01};

enum rsp_role {
    RSP_ROLE_NONE = -1,
    RSP_ROLE_CI = 0,
    RSP_ROLE_EUICC = 1,
    RSP_ROLE_EUM = 2,
    RSP_ROLE_DP_TLS = 3,
    RSP_ROLE_DP_AUTH = 4,
    RSP_ROLE_DP_PB = 5,
    RSP_ROLE_DS_TLS = 6,
    RSP_ROLE_DS_AUTH = 7,
};

static bool span_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

const char *pl_cert_role_name(enum pl_cert_role role)
{
    switch (role) {
    case PL_CERT_ROLE_EUM: return "EUM";
    case PL_CERT_ROLE_EUICC: return "eUICC";
    case PL_CERT_ROLE_DPPB: return "SM-DPf binding (DPpb)";
    case PL_CERT_ROLE_EIM: return "eIM";
    case PL_CERT_ROLE_TLS_SERVER: return "TLS server";
    }
    return "unknown role";
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse,
 * era/year-of-era decomposition; valid for any year in mbedTLS' 0..9999 range). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2 ? 1 : 0;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t x509_time_to_unix(const mbedtls_x509_time *t)
{
    return days_from_civil(t->year, t->mon, t->day) * 86400 + (int64_t)t->hour * 3600
           + (int64_t)t->min * 60 + (int64_t)t->sec;
}

/* ---- extension walker (RFC 5280 §4.1, §4.2) ---- */

static int ext_ski(struct pl_cert *c, const struct pl_tlv *val)
{
    struct pl_tlv ki;
    /* SubjectKeyIdentifier ::= KeyIdentifier ::= OCTET STRING */
    if (pl_der_parse_one(val->value, val->len, PL_TAG_OCTET_STRING, &ki) != PL_OK)
        return PL_ERR_CERT;
    if (ki.len == 0 || ki.len > PL_CERT_KEYID_MAX)
        return PL_ERR_CERT;
    c->ski.p = ki.value;
    c->ski.len = ki.len;
    return PL_OK;
}

static int ext_aki(struct pl_cert *c, const struct pl_tlv *val)
{
    struct pl_tlv seq, t;
    struct pl_der outer, d;
    bool present;

    /* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL,
     *   authorityCertIssuer [1] OPTIONAL, authorityCertSerialNumber [2] OPTIONAL } */
    pl_der_init(&outer, val->value, val->len);
    if (pl_der_expect(&outer, PL_TAG_SEQUENCE, &seq) != PL_OK || pl_der_finish(&outer) != PL_OK
        || pl_der_enter(&outer, &seq, &d) != PL_OK)
        return PL_ERR_CERT;
    if (pl_der_optional(&d, 0x80u, &t, &present) != PL_OK)
        return PL_ERR_CERT;
    if (present) {
        if (t.len == 0 || t.len > PL_CERT_KEYID_MAX)
            return PL_ERR_CERT;
        c->aki.p = t.value;
        c->aki.len = t.len;
    }
    if (pl_der_optional(&d, 0xA1u, &t, &present) != PL_OK)
        return PL_ERR_CERT;
    if (pl_der_optional(&d, 0x82u, &t, &present) != PL_OK)
        return PL_ERR_CERT;
    return pl_der_finish(&d) == PL_OK ? PL_OK : PL_ERR_CERT;
}

static int ext_policies(struct pl_cert *c, const struct pl_tlv *val)
{
    struct pl_tlv seq, info, oid, qual;
    struct pl_der outer, d, pi;
    bool present;

    /* certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
     * PolicyInformation ::= SEQUENCE { policyIdentifier OID, policyQualifiers SEQ OPT } */
    pl_der_init(&outer, val->value, val->len);
    if (pl_der_expect(&outer, PL_TAG_SEQUENCE, &seq) != PL_OK || pl_der_finish(&outer) != PL_OK
        || pl_der_enter(&outer, &seq, &d) != PL_OK)
        return PL_ERR_CERT;
    if (pl_der_done(&d))
        return PL_ERR_CERT;
    while (!pl_der_done(&d)) {
        if (c->n_policies >= PL_CERT_MAX_POLICIES)
            return PL_ERR_CERT;
        if (pl_der_expect(&d, PL_TAG_SEQUENCE, &info) != PL_OK
            || pl_der_enter(&d, &info, &pi) != PL_OK
            || pl_der_expect(&pi, PL_TAG_OID, &oid) != PL_OK || pl_der_check_oid(&oid) != PL_OK
            || pl_der_optional(&pi, PL_TAG_SEQUENCE, &qual, &present) != PL_OK
            || pl_der_finish(&pi) != PL_OK)
            return PL_ERR_CERT;
        c->policies[c->n_policies].p = oid.value;
        c->policies[c->n_policies].len = oid.len;
        c->n_policies++;
    }
    return PL_OK;
}

/* Walks TBSCertificate.extensions of c->crt.raw and records the fields above. The
 * walk repeats mbedTLS' structural checks on purpose: these fields come from here. */
static int walk_extensions(struct pl_cert *c)
{
    struct pl_der top, cert, tbs, exts, list, ext;
    struct pl_tlv t, e, oid, crit, val;
    bool present, seen_ski = false, seen_aki = false, seen_pol = false;

    pl_der_init(&top, c->crt.raw.p, c->crt.raw.len);
    if (pl_der_expect(&top, PL_TAG_SEQUENCE, &t) != PL_OK || pl_der_enter(&top, &t, &cert) != PL_OK
        || pl_der_expect(&cert, PL_TAG_SEQUENCE, &t) != PL_OK
        || pl_der_enter(&cert, &t, &tbs) != PL_OK)
        return PL_ERR_CERT;
    /* version [0], serialNumber, signature, issuer, validity, subject, spki */
    if (pl_der_optional(&tbs, 0xA0u, &t, &present) != PL_OK
        || pl_der_expect(&tbs, PL_TAG_INTEGER, &t) != PL_OK)
        return PL_ERR_CERT;
    for (int i = 0; i < 5; i++) {
        if (pl_der_expect(&tbs, PL_TAG_SEQUENCE, &t) != PL_OK)
            return PL_ERR_CERT;
    }
    /* issuerUniqueID [1], subjectUniqueID [2] (IMPLICIT BIT STRING) */
    if (pl_der_optional(&tbs, 0x81u, &t, &present) != PL_OK
        || pl_der_optional(&tbs, 0x82u, &t, &present) != PL_OK)
        return PL_ERR_CERT;
    if (pl_der_optional(&tbs, 0xA3u, &t, &present) != PL_OK)
        return PL_ERR_CERT;
    if (pl_der_finish(&tbs) != PL_OK)
        return PL_ERR_CERT;
    if (!present)
        return PL_OK;
    if (pl_der_enter(&tbs, &t, &exts) != PL_OK || pl_der_expect(&exts, PL_TAG_SEQUENCE, &t) != PL_OK
        || pl_der_finish(&exts) != PL_OK || pl_der_enter(&exts, &t, &list) != PL_OK)
        return PL_ERR_CERT;
    while (!pl_der_done(&list)) {
        /* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
         *                          extnValue OCTET STRING } */
        if (pl_der_expect(&list, PL_TAG_SEQUENCE, &e) != PL_OK
            || pl_der_enter(&list, &e, &ext) != PL_OK
            || pl_der_expect(&ext, PL_TAG_OID, &oid) != PL_OK
            || pl_der_optional(&ext, PL_TAG_BOOLEAN, &crit, &present) != PL_OK
            || pl_der_expect(&ext, PL_TAG_OCTET_STRING, &val) != PL_OK
            || pl_der_finish(&ext) != PL_OK)
            return PL_ERR_CERT;
        int rc = PL_OK;
        if (span_eq(oid.value, oid.len, oid_ski, sizeof(oid_ski))) {
            rc = seen_ski ? PL_ERR_CERT : ext_ski(c, &val);
            seen_ski = true;
        } else if (span_eq(oid.value, oid.len, oid_aki, sizeof(oid_aki))) {
            rc = seen_aki ? PL_ERR_CERT : ext_aki(c, &val);
            seen_aki = true;
        } else if (span_eq(oid.value, oid.len, oid_policies, sizeof(oid_policies))) {
            rc = seen_pol ? PL_ERR_CERT : ext_policies(c, &val);
            seen_pol = true;
        } else if (span_eq(oid.value, oid.len, oid_nc, sizeof(oid_nc))) {
            rc = c->has_nc ? PL_ERR_CERT : PL_OK;
            c->has_nc = true;
            c->nc.p = val.value;
            c->nc.len = val.len;
        }
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

/* mbedTLS calls this for extensions it does not know, and for certificatePolicies
 * with OIDs other than anyPolicy. Returning 0 accepts the extension even if critical;
 * provline reads and enforces these itself. Anything else critical is refused. */
static int ext_cb(void *ctx, mbedtls_x509_crt const *crt, mbedtls_x509_buf const *oid,
                  int critical, const unsigned char *p, const unsigned char *end)
{
    (void)ctx;
    (void)crt;
    (void)critical;
    (void)p;
    (void)end;
    if (span_eq(oid->p, oid->len, oid_policies, sizeof(oid_policies))
        || span_eq(oid->p, oid->len, oid_nc, sizeof(oid_nc))
        || span_eq(oid->p, oid->len, oid_ski, sizeof(oid_ski))
        || span_eq(oid->p, oid->len, oid_aki, sizeof(oid_aki)))
        return 0;
    return MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE;
}

/* ---- parse ---- */

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

static bool is_space(uint8_t b)
{
    return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

/* Skips ASCII whitespace; returns true if only whitespace was left. */
static bool skip_space(struct pl_rd *r)
{
    uint8_t b;
    while (pl_rd_peek_u8(r, &b) == PL_OK && is_space(b)) {
        if (pl_rd_skip(r, 1) != PL_OK)
            return false;
    }
    return pl_rd_done(r);
}

/* If buf is one PEM certificate block, decodes it into *pem (caller frees) and sets
 * *is_pem. */
static int pem_decode(const uint8_t *buf, size_t len, mbedtls_pem_context *pem, bool *is_pem)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_rd r;
    const uint8_t *hdr;
    char *text = NULL;
    size_t used = 0;

    *is_pem = false;
    pl_rd_init(&r, buf, len);
    (void)skip_space(&r);
    if (pl_rd_left(&r) < sizeof(pem_begin) - 1)
        return PL_OK;
    if (pl_rd_bytes(&r, sizeof(pem_begin) - 1, &hdr) != PL_OK)
        return PL_OK;
    if (memcmp(hdr, pem_begin, sizeof(pem_begin) - 1) != 0)
        return PL_OK;
    *is_pem = true;
    if (len > PL_CERT_MAX_PEM)
        return PL_ERR_CERT;
    /* mbedtls_pem_read_buffer() wants a NUL-terminated string without NULs. */
    pl_rd_init(&r, buf, len);
    (void)skip_space(&r);
    size_t start = r.pos;
    size_t n = len - start;
    text = malloc(n + 1);
    if (!text)
        return PL_ERR_NOMEM;
    if (pl_rd_copy(&r, text, n) != PL_OK) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }
    text[n] = '\0';
    if (strlen(text) != n) {
        rc = PL_ERR_CERT;
        goto out;
    }
    if (mbedtls_pem_read_buffer(pem, pem_begin, pem_end, (const unsigned char *)text, NULL, 0,
                                &used)
        != 0) {
        rc = PL_ERR_CERT;
        goto out;
    }
    /* used counts the block and the line break after the footer; only whitespace may
     * follow. */
    if (used > n) {
        rc = PL_ERR_CERT;
        goto out;
    }
    pl_rd_init(&r, (const uint8_t *)text, n);
    if (pl_rd_skip(&r, used) != PL_OK || !skip_space(&r)) {
        rc = PL_ERR_CERT;
        goto out;
    }
    rc = PL_OK;
out:
    free(text);
    return rc;
}

static int extract_key(struct pl_cert *c)
{
    c->curve = PL_CURVE_NONE;
    mbedtls_pk_type_t type = mbedtls_pk_get_type(&c->crt.pk);
    if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECDSA)
        return PL_OK;
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(c->crt.pk);
    if (!kp)
        return PL_OK;
    enum pl_curve curve;
    switch (kp->grp.id) {
    case MBEDTLS_ECP_DP_SECP256R1: curve = PL_CURVE_P256; break;
    case MBEDTLS_ECP_DP_BP256R1: curve = PL_CURVE_BP256R1; break;
    default: return PL_OK;
    }
    size_t olen = 0;
    if (mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                                       c->pub, sizeof(c->pub))
            != 0
        || olen != PL_EC_PUB_LEN)
        return PL_ERR_CERT;
    c->curve = curve;
    return PL_OK;
}

int pl_cert_parse(const uint8_t *buf, size_t len, struct pl_cert **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_cert *c = NULL;
    mbedtls_pem_context pem;
    bool is_pem = false;
    struct pl_tlv tlv;

    if (!out)
        return PL_ERR_INVAL;
    *out = NULL;
    if (!buf && len)
        return PL_ERR_INVAL;
    mbedtls_pem_init(&pem);
    if (len == 0) {
        rc = PL_ERR_CERT;
        goto out;
    }
    if ((rc = pem_decode(buf, len, &pem, &is_pem)) != PL_OK)
        goto out;
    const uint8_t *der = is_pem ? pem.buf : buf;
    size_t der_len = is_pem ? pem.buflen : len;
    if (der_len == 0 || der_len > PL_CERT_MAX_DER) {
        rc = PL_ERR_CERT;
        goto out;
    }
    /* Strict DER over the whole certificate, exactly one SEQUENCE and nothing after. */
    if (pl_der_parse_one(der, der_len, PL_TAG_SEQUENCE, &tlv) != PL_OK
        || pl_der_validate(der, der_len, PL_DER_MAX_DEPTH) != PL_OK) {
        rc = PL_ERR_CERT;
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    mbedtls_x509_crt_init(&c->crt);
    int mrc = mbedtls_x509_crt_parse_der_with_ext_cb(&c->crt, der, der_len, 1, ext_cb, NULL);
    if (mrc != 0) {
        rc = mrc == MBEDTLS_ERR_X509_ALLOC_FAILED ? PL_ERR_NOMEM : PL_ERR_CERT;
        goto out;
    }
    if (c->crt.raw.len != der_len || (rc = walk_extensions(c)) != PL_OK
        || (rc = extract_key(c)) != PL_OK) {
        rc = PL_ERR_CERT;
        goto out;
    }
    c->not_before = x509_time_to_unix(&c->crt.valid_from);
    c->not_after = x509_time_to_unix(&c->crt.valid_to);
    *out = c;
    c = NULL;
    rc = PL_OK;
out:
    pl_cert_free(c);
    mbedtls_pem_free(&pem);
    return rc;
}

void pl_cert_free(struct pl_cert *cert)
{
    if (!cert)
        return;
    mbedtls_x509_crt_free(&cert->crt);
    pl_memzero(cert, sizeof(*cert));
    free(cert);
}

/* ---- accessors ---- */

void pl_cert_der(const struct pl_cert *cert, const uint8_t **der, size_t *len)
{
    *der = cert->crt.raw.p;
    *len = cert->crt.raw.len;
}

enum pl_curve pl_cert_curve(const struct pl_cert *cert)
{
    return cert->curve;
}

int pl_cert_public_point(const struct pl_cert *cert, uint8_t out[PL_EC_PUB_LEN])
{
    if (!cert || !out)
        return PL_ERR_INVAL;
    if (cert->curve == PL_CURVE_NONE)
        return PL_ERR_UNSUPPORTED;
    memcpy(out, cert->pub, PL_EC_PUB_LEN);
    return PL_OK;
}

int pl_cert_public_key(const struct pl_cert *cert, struct pl_eckey **out)
{
    if (!cert || !out)
        return PL_ERR_INVAL;
    *out = NULL;
    if (cert->curve == PL_CURVE_NONE)
        return PL_ERR_UNSUPPORTED;
    return pl_eckey_from_public(cert->curve, cert->pub, out);
}

static int copy_span(const struct pl_span *s, uint8_t *out, size_t cap, size_t *len)
{
    if (!out || !len)
        return PL_ERR_INVAL;
    *len = 0;
    if (s->len == 0)
        return PL_ERR_NOT_FOUND;
    if (s->len > cap)
        return PL_ERR_OVERFLOW;
    memcpy(out, s->p, s->len);
    *len = s->len;
    return PL_OK;
}

int pl_cert_subject_key_id(const struct pl_cert *cert, uint8_t *out, size_t cap, size_t *len)
{
    if (!cert)
        return PL_ERR_INVAL;
    return copy_span(&cert->ski, out, cap, len);
}

int pl_cert_authority_key_id(const struct pl_cert *cert, uint8_t *out, size_t cap, size_t *len)
{
    if (!cert)
        return PL_ERR_INVAL;
    return copy_span(&cert->aki, out, cap, len);
}

void pl_cert_validity(const struct pl_cert *cert, int64_t *not_before, int64_t *not_after)
{
    if (not_before)
        *not_before = cert->not_before;
    if (not_after)
        *not_after = cert->not_after;
}

static int dn_text(const mbedtls_x509_name *dn, char *out, size_t cap)
{
    if (!out || cap == 0)
        return PL_ERR_INVAL;
    int n = mbedtls_x509_dn_gets(out, cap, dn);
    if (n < 0) {
        out[0] = '\0';
        return n == MBEDTLS_ERR_X509_BUFFER_TOO_SMALL ? PL_ERR_OVERFLOW : PL_ERR_CERT;
    }
    return PL_OK;
}

int pl_cert_subject(const struct pl_cert *cert, char *out, size_t cap)
{
    if (!cert)
        return PL_ERR_INVAL;
    return dn_text(&cert->crt.subject, out, cap);
}

int pl_cert_issuer(const struct pl_cert *cert, char *out, size_t cap)
{
    if (!cert)
        return PL_ERR_INVAL;
    return dn_text(&cert->crt.issuer, out, cap);
}

/* The first subject attribute of type oid (contents octets), or NULL. */
static const mbedtls_x509_name *find_attr(const mbedtls_x509_name *dn, const uint8_t *oid,
                                          size_t oid_len)
{
    for (; dn; dn = dn->next) {
        if (span_eq(dn->oid.p, dn->oid.len, oid, oid_len))
            return dn;
    }
    return NULL;
}

int pl_cert_subject_serial(const struct pl_cert *cert, char *out, size_t cap)
{
    if (!cert || !out || cap == 0)
        return PL_ERR_INVAL;
    out[0] = '\0';
    const mbedtls_x509_name *a =
        find_attr(&cert->crt.subject, oid_serial_number, sizeof(oid_serial_number));
    if (!a)
        return PL_ERR_NOT_FOUND;
    if (a->val.len >= cap)
        return PL_ERR_OVERFLOW;
    if (a->val.len && memchr(a->val.p, 0, a->val.len))
        return PL_ERR_CERT;
    if (a->val.len)
        memcpy(out, a->val.p, a->val.len);
    out[a->val.len] = '\0';
    return PL_OK;
}

int pl_cert_eid(const struct pl_cert *cert, uint8_t eid[PL_CERT_EID_LEN])
{
    char text[2 * PL_CERT_EID_LEN + 1];
    size_t n = 0;

    if (!cert || !eid)
        return PL_ERR_INVAL;
    int rc = pl_cert_subject_serial(cert, text, sizeof(text));
    if (rc == PL_ERR_OVERFLOW)
        return PL_ERR_CERT;
    if (rc != PL_OK)
        return rc;
    if (strlen(text) != 2 * PL_CERT_EID_LEN
        || pl_hex_decode(text, eid, PL_CERT_EID_LEN, &n) != PL_OK || n != PL_CERT_EID_LEN)
        return PL_ERR_CERT;
    return PL_OK;
}

bool pl_cert_is_ca(const struct pl_cert *cert)
{
    return (cert->crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) && cert->crt.ca_istrue;
}

/* ---- verification ---- */

/* The id-rspRole arcs a certificate carries, as a bit set (bit n = role n); roles
 * beyond the defined ones, or multi-arc suffixes, count as bit 31 ("other"). */
static uint32_t rsp_roles(const struct pl_cert *c)
{
    uint32_t set = 0;
    for (size_t i = 0; i < c->n_policies; i++) {
        const struct pl_span *p = &c->policies[i];
        if (p->len <= sizeof(oid_rsp_role) || memcmp(p->p, oid_rsp_role, sizeof(oid_rsp_role)) != 0)
            continue;
        if (p->len == sizeof(oid_rsp_role) + 1 && p->p[sizeof(oid_rsp_role)] <= RSP_ROLE_DS_AUTH)
            set |= 1u << p->p[sizeof(oid_rsp_role)];
        else
            set |= 1u << 31;
    }
    return set;
}

#define ROLE_BIT(r) (1u << (r))

/* The certificate's id-rspRole set must be exactly {want}. */
static bool has_only_role(const struct pl_cert *c, enum rsp_role want)
{
    return rsp_roles(c) == ROLE_BIT(want);
}

static bool has_ku(const struct pl_cert *c, unsigned int bits)
{
    return (c->crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE) && (c->crt.key_usage & bits) == bits;
}

/* Root and intermediates: CA, keyCertSign, pathLen allows `below` intermediate CAs
 * between this certificate and the leaf. */
static int check_ca(const struct pl_cert *c, size_t below)
{
    if (!pl_cert_is_ca(c) || !has_ku(c, MBEDTLS_X509_KU_KEY_CERT_SIGN))
        return PL_ERR_CERT_USAGE;
    /* mbedTLS stores pathLenConstraint + 1; 0 means no constraint. */
    if (c->crt.max_pathlen > 0 && below > (size_t)(c->crt.max_pathlen - 1))
        return PL_ERR_CERT_USAGE;
    return PL_OK;
}

/* An end-entity certificate: not a CA, digitalSignature without keyCertSign. */
static int check_end_entity(const struct pl_cert *c, bool ku_required)
{
    if (pl_cert_is_ca(c))
        return PL_ERR_CERT_USAGE;
    if (!(c->crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE))
        return ku_required ? PL_ERR_CERT_USAGE : PL_OK;
    if (!has_ku(c, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) || (c->crt.key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN))
        return PL_ERR_CERT_USAGE;
    return PL_OK;
}

static int check_leaf(const struct pl_cert *leaf, enum pl_cert_role role)
{
    int rc;
    switch (role) {
    case PL_CERT_ROLE_EUM:
        /* SGP.22 §4.5.2.1.0.2: CA, keyCertSign, pathLenConstraint 0, id-rspRole-eum. */
        if ((rc = check_ca(leaf, 0)) != PL_OK)
            return rc;
        if (leaf->crt.max_pathlen != 1 || !has_only_role(leaf, RSP_ROLE_EUM))
            return PL_ERR_CERT_USAGE;
        return PL_OK;
    case PL_CERT_ROLE_EUICC:
        /* SGP.22 §4.5.2.1.0.3: digitalSignature, id-rspRole-euicc, serialNumber = EID. */
        if ((rc = check_end_entity(leaf, true)) != PL_OK)
            return rc;
        if (!has_only_role(leaf, RSP_ROLE_EUICC))
            return PL_ERR_CERT_USAGE;
        uint8_t eid[PL_CERT_EID_LEN];
        if (pl_cert_eid(leaf, eid) != PL_OK)
            return PL_ERR_CERT_USAGE;
        return PL_OK;
    case PL_CERT_ROLE_DPPB:
        /* SGP.22 §4.5.2.1.0.4: CERT.DPpb, digitalSignature, id-rspRole-dp-pb. */
        if ((rc = check_end_entity(leaf, true)) != PL_OK)
            return rc;
        return has_only_role(leaf, RSP_ROLE_DP_PB) ? PL_OK : PL_ERR_CERT_USAGE;
    case PL_CERT_ROLE_EIM:
        /* SGP.32 v1.2 defines no role OID for CERT.EIM.ECDSA: digitalSignature, and no
         * SGP.22 role claimed. */
        if ((rc = check_end_entity(leaf, true)) != PL_OK)
            return rc;
        return rsp_roles(leaf) == 0 ? PL_OK : PL_ERR_CERT_USAGE;
    case PL_CERT_ROLE_TLS_SERVER: {
        if ((rc = check_end_entity(leaf, false)) != PL_OK)
            return rc;
        if (mbedtls_x509_crt_check_extended_key_usage(&leaf->crt, MBEDTLS_OID_SERVER_AUTH,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))
            != 0)
            return PL_ERR_CERT_USAGE;
        uint32_t roles = rsp_roles(leaf);
        if (roles & ~(ROLE_BIT(RSP_ROLE_DP_TLS) | ROLE_BIT(RSP_ROLE_DS_TLS)))
            return PL_ERR_CERT_USAGE;
        return PL_OK;
    }
    }
    return PL_ERR_INVAL;
}

/* Number of intermediates a role's path must (or may) have. */
static bool path_shape_ok(enum pl_cert_role role, size_t n)
{
    switch (role) {
    case PL_CERT_ROLE_EUM:
    case PL_CERT_ROLE_DPPB: return n == 0;
    case PL_CERT_ROLE_EUICC: return n == 1;
    case PL_CERT_ROLE_EIM:
    case PL_CERT_ROLE_TLS_SERVER: return n <= PL_CERT_MAX_INTERMEDIATES;
    }
    return false;
}

static bool is_gsma_role(enum pl_cert_role role)
{
    return role == PL_CERT_ROLE_EUM || role == PL_CERT_ROLE_EUICC || role == PL_CERT_ROLE_DPPB;
}

/* ---- SGP.22 name constraints (EUM -> eUICC) ---- */

/* Does the subject carry an attribute of this type whose value equals (or, for
 * serialNumber, starts with) want? */
static bool subject_satisfies(const mbedtls_x509_name *subject, const struct pl_tlv *type,
                              const struct pl_tlv *want)
{
    bool prefix = span_eq(type->value, type->len, oid_serial_number, sizeof(oid_serial_number));
    for (const mbedtls_x509_name *a = subject; a; a = a->next) {
        if (!span_eq(a->oid.p, a->oid.len, type->value, type->len))
            continue;
        if (prefix) {
            if (a->val.len >= want->len && memcmp(a->val.p, want->value, want->len) == 0)
                return true;
        } else if (span_eq(a->val.p, a->val.len, want->value, want->len)) {
            return true;
        }
    }
    return false;
}

/* One permitted directoryName: every attribute of it must be matched by the subject.
 * Returns PL_OK (matches), PL_ERR_CERT_USAGE (does not match or unsupported). */
static int match_dirname(const mbedtls_x509_name *subject, const struct pl_tlv *name)
{
    struct pl_der n, rdn, atv;
    struct pl_tlv set, seq, type, value, seqn;
    struct pl_der outer;

    /* directoryName [4] EXPLICIT Name; Name ::= SEQUENCE OF RDN (SET OF ATV) */
    pl_der_init(&outer, name->value, name->len);
    if (pl_der_expect(&outer, PL_TAG_SEQUENCE, &seqn) != PL_OK || pl_der_finish(&outer) != PL_OK
        || pl_der_enter(&outer, &seqn, &n) != PL_OK)
        return PL_ERR_CERT_USAGE;
    if (pl_der_done(&n))
        return PL_ERR_CERT_USAGE;
    while (!pl_der_done(&n)) {
        if (pl_der_expect(&n, PL_TAG_SET, &set) != PL_OK || pl_der_enter(&n, &set, &rdn) != PL_OK)
            return PL_ERR_CERT_USAGE;
        while (!pl_der_done(&rdn)) {
            if (pl_der_expect(&rdn, PL_TAG_SEQUENCE, &seq) != PL_OK
                || pl_der_enter(&rdn, &seq, &atv) != PL_OK
                || pl_der_expect(&atv, PL_TAG_OID, &type) != PL_OK
                || pl_der_next(&atv, &value) != PL_OK || pl_der_finish(&atv) != PL_OK)
                return PL_ERR_CERT_USAGE;
            if (!subject_satisfies(subject, &type, &value))
                return PL_ERR_CERT_USAGE;
        }
    }
    return PL_OK;
}

/* SGP.22 v2.5 §4.5.2.2: the eUICC certificate must fall within the EUM's name
 * constraints. Only permittedSubtrees of directoryNames are understood (what SGP.22
 * uses); anything else fails closed. */
static int check_euicc_name_constraints(const struct pl_cert *eum, const struct pl_cert *euicc)
{
    struct pl_der outer, nc, subtrees, st;
    struct pl_tlv seq, permitted, sub, base;
    bool matched = false;

    if (!eum->has_nc)
        return PL_OK;
    /* NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL,
     *                                excludedSubtrees  [1] GeneralSubtrees OPTIONAL } */
    pl_der_init(&outer, eum->nc.p, eum->nc.len);
    if (pl_der_expect(&outer, PL_TAG_SEQUENCE, &seq) != PL_OK || pl_der_finish(&outer) != PL_OK
        || pl_der_enter(&outer, &seq, &nc) != PL_OK
        || pl_der_expect(&nc, 0xA0u, &permitted) != PL_OK || pl_der_finish(&nc) != PL_OK
        || pl_der_enter(&nc, &permitted, &subtrees) != PL_OK)
        return PL_ERR_CERT_USAGE;
    if (pl_der_done(&subtrees))
        return PL_ERR_CERT_USAGE;
    while (!pl_der_done(&subtrees)) {
        /* GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0,
         *                               maximum [1] OPTIONAL }; DER omits minimum 0
         * and RFC 5280 forbids maximum, so base must be alone. */
        if (pl_der_expect(&subtrees, PL_TAG_SEQUENCE, &sub) != PL_OK
            || pl_der_enter(&subtrees, &sub, &st) != PL_OK
            || pl_der_expect(&st, 0xA4u, &base) != PL_OK || pl_der_finish(&st) != PL_OK)
            return PL_ERR_CERT_USAGE;
        if (match_dirname(&euicc->crt.subject, &base) == PL_OK)
            matched = true;
    }
    return matched ? PL_OK : PL_ERR_CERT_USAGE;
}

/* ---- links ---- */

static int check_signature(const struct pl_cert *child, const struct pl_cert *issuer)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t hash[PL_SHA256_LEN];
    mbedtls_ecdsa_context ecdsa;

    mbedtls_ecdsa_init(&ecdsa);
    if (child->crt.sig_md != MBEDTLS_MD_SHA256 || child->crt.sig_pk != MBEDTLS_PK_ECDSA
        || issuer->curve == PL_CURVE_NONE) {
        rc = PL_ERR_CERT_CHAIN;
        goto out;
    }
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(issuer->crt.pk);
    if (!kp || mbedtls_sha256_ret(child->crt.tbs.p, child->crt.tbs.len, hash, 0) != 0
        || mbedtls_ecdsa_from_keypair(&ecdsa, kp) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    if (mbedtls_ecdsa_read_signature(&ecdsa, hash, sizeof(hash), child->crt.sig.p,
                                     child->crt.sig.len)
        != 0) {
        rc = PL_ERR_CERT_CHAIN;
        goto out;
    }
    rc = PL_OK;
out:
    mbedtls_ecdsa_free(&ecdsa);
    return rc;
}

/* child was issued by issuer: names, key identifiers, signature (RFC 5280 §6.1.3). */
static int check_link(const struct pl_cert *child, const struct pl_cert *issuer)
{
    if (!span_eq(child->crt.issuer_raw.p, child->crt.issuer_raw.len, issuer->crt.subject_raw.p,
                 issuer->crt.subject_raw.len))
        return PL_ERR_CERT_CHAIN;
    if (child->aki.len && issuer->ski.len
        && !span_eq(child->aki.p, child->aki.len, issuer->ski.p, issuer->ski.len))
        return PL_ERR_CERT_CHAIN;
    return check_signature(child, issuer);
}

static int check_time(const struct pl_cert *c, int64_t now)
{
    if (now < c->not_before || now > c->not_after)
        return PL_ERR_CERT_VALIDITY;
    return PL_OK;
}

int pl_cert_verify_chain(const struct pl_cert *leaf, const struct pl_cert *const *intermediates,
                         size_t n, const struct pl_cert *root, enum pl_cert_role role, time_t now)
{
    int rc = PL_ERR_INTERNAL;
    const struct pl_cert *path[PL_CERT_MAX_INTERMEDIATES + 2];

    if (!leaf || !root || (n && !intermediates) || n > PL_CERT_MAX_INTERMEDIATES)
        return PL_ERR_INVAL;
    if (role < PL_CERT_ROLE_EUM || role > PL_CERT_ROLE_TLS_SERVER)
        return PL_ERR_INVAL;
    /* path[0] = leaf, path[1..n] = intermediates, path[n+1] = root */
    path[0] = leaf;
    for (size_t i = 0; i < n; i++) {
        if (!intermediates[i])
            return PL_ERR_INVAL;
        path[i + 1] = intermediates[i];
    }
    path[n + 1] = root;

    /* 1. Every certificate fits its place and the role (PL_ERR_CERT_USAGE). */
    for (size_t i = 0; i < n + 2; i++) {
        if (path[i]->curve == PL_CURVE_NONE)
            return PL_ERR_CERT_USAGE;
    }
    if ((rc = check_leaf(leaf, role)) != PL_OK)
        return rc;
    if (!path_shape_ok(role, n))
        return PL_ERR_CERT_CHAIN;
    /* path[i] for i >= 1 is a CA with i - 1 intermediate CAs below it. */
    for (size_t i = 1; i < n + 2; i++) {
        if ((rc = check_ca(path[i], i - 1)) != PL_OK)
            return rc;
        /* Name constraints are understood only on the EUM of an eUICC path. */
        if (path[i]->has_nc && !(role == PL_CERT_ROLE_EUICC && i == 1))
            return PL_ERR_CERT_USAGE;
    }
    if (role == PL_CERT_ROLE_EUICC) {
        if (!has_only_role(path[1], RSP_ROLE_EUM)
            || (rc = check_euicc_name_constraints(path[1], leaf)) != PL_OK)
            return PL_ERR_CERT_USAGE;
    }
    if (is_gsma_role(role) && !has_only_role(root, RSP_ROLE_CI))
        return PL_ERR_CERT_USAGE;

    /* 2. Each certificate was issued by the next one; the root by itself if it says
     * so (PL_ERR_CERT_CHAIN). */
    for (size_t i = 0; i < n + 1; i++) {
        if ((rc = check_link(path[i], path[i + 1])) != PL_OK)
            return rc;
    }
    if (span_eq(root->crt.issuer_raw.p, root->crt.issuer_raw.len, root->crt.subject_raw.p,
                root->crt.subject_raw.len)
        && (rc = check_signature(root, root)) != PL_OK)
        return rc;

    /* 3. Validity at `now` (PL_ERR_CERT_VALIDITY). */
    for (size_t i = 0; i < n + 2; i++) {
        if ((rc = check_time(path[i], (int64_t)now)) != PL_OK)
            return rc;
    }
    return PL_OK;
}
