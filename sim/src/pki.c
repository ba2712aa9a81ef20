/* Test PKI generator (lab tooling, never a production trust anchor).
 *
 * GSMA SGP.22 v2.5 §4.5.2.1.0.x: certificate descriptions of CERT.CI, CERT.EUM,
 * CERT.EUICC and CERT.DPpb, with the id-rspRole certificatePolicies OIDs of
 * RSPDefinitions.asn (2.23.146.1.2.1.x); GSMA SGP.32 v1.2 §2.6: CERT.EIM.ECDSA (no role
 * OID defined); RFC 5280 §4.2.1.6 (subjectAltName) and §4.2.1.12 (extKeyUsage) for
 * the TLS server certificates. Decision record: docs/decisions/0008-test-pki.md.
 *
 * Keys and certificates are made with mbedTLS 2.28 (mbedtls_ecp_gen_key,
 * mbedtls_x509write_crt_*, mbedtls_pk_write_key_pem). 2.28 has no writer for
 * certificatePolicies, extKeyUsage or subjectAltName, so those extensions are added as
 * fixed DER through mbedtls_x509write_crt_set_extension(). */
#define _POSIX_C_SOURCE 200809L

#include "provline/sim/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"

#define PKI_FILE_MAX (64u * 1024u)
#define PKI_KEY_PEM_MAX 1024u
#define PKI_NAME_MAX 256u
#define DAY ((int64_t)86400)
#define YEAR (365 * DAY)

/* ---- certificate profiles ---- */

/* id-rspRole arcs (RSPDefinitions.asn). */
#define RSP_ROLE_NONE (-1)
#define RSP_ROLE_CI 0
#define RSP_ROLE_EUICC 1
#define RSP_ROLE_EUM 2
#define RSP_ROLE_DP_PB 5

struct profile {
    enum pl_pki_item item;
    enum pl_pki_item issuer; /* == item: self-signed */
    bool tls;                /* TLS part: always P-256 */
    bool ca;
    int pathlen;             /* CA only; -1 = no constraint */
    unsigned int ku;         /* keyUsage bits (MBEDTLS_X509_KU_*) */
    int rsp_role;            /* id-rspRole arc in certificatePolicies, or RSP_ROLE_NONE */
    bool server;             /* extKeyUsage serverAuth + subjectAltName localhost */
    int64_t lifetime;
    const char *subject;     /* mbedTLS name string; %s = curve name */
};

static const struct profile profiles[] = {
    {PL_PKI_CI, PL_PKI_CI, false, true, -1,
     MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN, RSP_ROLE_CI, false, 20 * YEAR,
     "CN=provline Test CI %s,OU=TEST ONLY,O=provline,C=XX"},
    {PL_PKI_EUM, PL_PKI_CI, false, true, 0, MBEDTLS_X509_KU_KEY_CERT_SIGN, RSP_ROLE_EUM, false,
     20 * YEAR, "C=XX,O=provline Test EUM,CN=provline Test EUM %s"},
    {PL_PKI_DPF, PL_PKI_CI, false, false, 0, MBEDTLS_X509_KU_DIGITAL_SIGNATURE, RSP_ROLE_DP_PB,
     false, 10 * YEAR, "O=provline,CN=provline Test SM-DPf %s"},
    {PL_PKI_EIM, PL_PKI_CI, false, false, 0, MBEDTLS_X509_KU_DIGITAL_SIGNATURE, RSP_ROLE_NONE,
     false, 10 * YEAR, "O=provline,CN=provline Test eIM %s"},
    {PL_PKI_TLS_CA, PL_PKI_TLS_CA, true, true, 0,
     MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN, RSP_ROLE_NONE, false, 20 * YEAR,
     "CN=provline Test TLS CA,OU=TEST ONLY,O=provline,C=XX"},
    {PL_PKI_KEYMAKER_TLS, PL_PKI_TLS_CA, true, false, 0, MBEDTLS_X509_KU_DIGITAL_SIGNATURE,
     RSP_ROLE_NONE, true, 10 * YEAR, "CN=localhost,OU=Key Maker,O=provline"},
    {PL_PKI_EIM_TLS, PL_PKI_TLS_CA, true, false, 0, MBEDTLS_X509_KU_DIGITAL_SIGNATURE,
     RSP_ROLE_NONE, true, 10 * YEAR, "CN=localhost,OU=eIM,O=provline"},
};
#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

/* CERT.EUICC subject (SGP.22 style, as in SGP.26): the EUM's organisation, the EID as
 * serialNumber. */
static const char euicc_subject_fmt[] = "C=XX,O=provline Test EUM,serialNumber=%s,CN=provline Test eUICC";

static const char *const item_names[PL_PKI_ITEMS] = {
    "ci", "eum", "dpf", "eim", "euicc-sample", "tls-ca", "keymaker-tls", "eim-tls",
};
static const char *const file_ext[] = {".key", ".crt", ".der"};

const char *pl_pki_item_name(enum pl_pki_item item)
{
    if ((int)item < 0 || (int)item >= PL_PKI_ITEMS)
        return NULL;
    return item_names[item];
}

int pl_pki_item_chain(enum pl_pki_item item, enum pl_pki_item *root, int *intermediate,
                      enum pl_cert_role *role)
{
    if (!root || !intermediate || !role)
        return PL_ERR_INVAL;
    *intermediate = -1;
    switch (item) {
    case PL_PKI_CI:
    case PL_PKI_TLS_CA:
        *root = item;
        return PL_ERR_NOT_FOUND;
    case PL_PKI_EUM: *root = PL_PKI_CI; *role = PL_CERT_ROLE_EUM; return PL_OK;
    case PL_PKI_DPF: *root = PL_PKI_CI; *role = PL_CERT_ROLE_DPPB; return PL_OK;
    case PL_PKI_EIM: *root = PL_PKI_CI; *role = PL_CERT_ROLE_EIM; return PL_OK;
    case PL_PKI_EUICC_SAMPLE:
        *root = PL_PKI_CI;
        *intermediate = PL_PKI_EUM;
        *role = PL_CERT_ROLE_EUICC;
        return PL_OK;
    case PL_PKI_KEYMAKER_TLS:
    case PL_PKI_EIM_TLS:
        *root = PL_PKI_TLS_CA;
        *role = PL_CERT_ROLE_TLS_SERVER;
        return PL_OK;
    }
    return PL_ERR_INVAL;
}

/* ---- helpers ---- */

struct pl_pki {
    char dir[PL_PKI_PATH_MAX];
    enum pl_curve curve;
    struct pl_cert *cert[PL_PKI_ITEMS];
    struct pl_eckey *key[PL_PKI_ITEMS];
};

/* mbedTLS f_rng over the pl_rng seam. */
static int f_rng(void *p, unsigned char *buf, size_t len)
{
    struct pl_rng *rng = p;
    return rng->fill(rng->user, buf, len) == PL_OK ? 0 : MBEDTLS_ERR_ECP_RANDOM_FAILED;
}

static int curve_group(enum pl_curve curve, mbedtls_ecp_group_id *gid)
{
    switch (curve) {
    case PL_CURVE_P256: *gid = MBEDTLS_ECP_DP_SECP256R1; return PL_OK;
    case PL_CURVE_BP256R1: *gid = MBEDTLS_ECP_DP_BP256R1; return PL_OK;
    case PL_CURVE_NONE: break;
    }
    return PL_ERR_INVAL;
}

static int gen_key(mbedtls_pk_context *pk, enum pl_curve curve, struct pl_rng *rng)
{
    mbedtls_ecp_group_id gid;
    if (curve_group(curve, &gid) != PL_OK)
        return PL_ERR_INVAL;
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return PL_ERR_NOMEM;
    if (mbedtls_ecp_gen_key(gid, mbedtls_pk_ec(*pk), f_rng, rng) != 0)
        return PL_ERR_CRYPTO;
    return PL_OK;
}

/* An mbedTLS EC private key as a crypto.h key (owned). */
static int pk_to_eckey(const mbedtls_pk_context *pk, enum pl_curve curve, struct pl_eckey **out)
{
    uint8_t d[PL_EC_PRIV_LEN];
    int rc = PL_ERR_BAD_KEY;
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(*pk);
    if (kp && mbedtls_mpi_write_binary(&kp->d, d, sizeof(d)) == 0)
        rc = pl_eckey_from_private(curve, d, out);
    pl_memzero(d, sizeof(d));
    return rc;
}

/* A crypto.h private key as an mbedTLS key pair (pk initialised by the caller). */
static int eckey_to_pk(const struct pl_eckey *k, enum pl_curve curve, mbedtls_pk_context *pk)
{
    int rc = PL_ERR_BAD_KEY;
    uint8_t d[PL_EC_PRIV_LEN];
    uint8_t pub[PL_EC_PUB_LEN];
    mbedtls_ecp_group_id gid;

    if (curve_group(curve, &gid) != PL_OK || pl_eckey_curve(k) != curve)
        return PL_ERR_BAD_KEY;
    if ((rc = pl_eckey_private(k, d)) != PL_OK || (rc = pl_eckey_public(k, pub)) != PL_OK)
        goto out;
    rc = PL_ERR_BAD_KEY;
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        goto out;
    mbedtls_ecp_keypair *kp = mbedtls_pk_ec(*pk);
    if (!kp || mbedtls_ecp_read_key(gid, kp, d, sizeof(d)) != 0
        || mbedtls_ecp_point_read_binary(&kp->grp, &kp->Q, pub, sizeof(pub)) != 0
        || mbedtls_ecp_check_pub_priv(kp, kp) != 0)
        goto out;
    rc = PL_OK;
out:
    pl_memzero(d, sizeof(d));
    return rc;
}

/* "YYYYMMDDhhmmss" (UTC) as mbedtls_x509write_crt_set_validity() wants it. */
static int x509_time(int64_t t, char out[16])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year < 70)
        return PL_ERR_INVAL;
    int n = snprintf(out, 16, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n == 14 ? PL_OK : PL_ERR_INVAL;
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, const char *ext)
{
    int n = snprintf(out, cap, "%s/%s%s", dir, name, ext);
    if (n < 0 || (size_t)n >= cap)
        return PL_ERR_OVERFLOW;
    return PL_OK;
}

/* Creates path exclusively (never follows or replaces anything) with exactly `mode`. */
static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? PL_ERR_EXISTS : PL_ERR_IO;
    int rc = PL_OK;
    if (fchmod(fd, mode) != 0)
        rc = PL_ERR_IO;
    const uint8_t *p = data;
    size_t off = 0;
    while (rc == PL_OK && off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = PL_ERR_IO;
            break;
        }
        off += (size_t)w;
    }
    if (rc == PL_OK && fsync(fd) != 0)
        rc = PL_ERR_IO;
    if (close(fd) != 0 && rc == PL_OK)
        rc = PL_ERR_IO;
    if (rc != PL_OK)
        (void)unlink(path);
    return rc;
}

/* Reads a whole (small) file, NUL-terminated; caller zeroises and frees. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
    int rc = PL_ERR_IO;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    buf = malloc(PKI_FILE_MAX + 1);
    if (!buf) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    size_t n = fread(buf, 1, PKI_FILE_MAX + 1, f);
    if (ferror(f) || n > PKI_FILE_MAX) {
        rc = n > PKI_FILE_MAX ? PL_ERR_OVERFLOW : PL_ERR_IO;
        goto out;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
    rc = PL_OK;
out:
    if (buf) {
        pl_memzero(buf, PKI_FILE_MAX + 1);
        free(buf);
    }
    fclose(f);
    return rc;
}

/* ---- issuing ---- */

struct issue_req {
    const char *subject;
    const char *issuer_name;
    mbedtls_pk_context *subject_key;
    mbedtls_pk_context *issuer_key;
    bool self_signed;
    bool ca;
    int pathlen;
    unsigned int ku;
    int rsp_role;
    bool server;
    int64_t not_before;
    int64_t not_after;
};

/* DER of certificatePolicies { PolicyInformation { id-rspRole-<role> } }. */
static void policy_der(int role, uint8_t out[13])
{
    static const uint8_t head[12] = {0x30, 0x0B, 0x30, 0x09, 0x06, 0x07,
                                     0x67, 0x81, 0x12, 0x01, 0x02, 0x01};
    memcpy(out, head, sizeof(head));
    out[12] = (uint8_t)role;
}
/* ExtKeyUsageSyntax { id-kp-serverAuth 1.3.6.1.5.5.7.3.1 } */
static const uint8_t eku_server_der[] = {0x30, 0x0A, 0x06, 0x08, 0x2B, 0x06, 0x01,
                                         0x05, 0x05, 0x07, 0x03, 0x01};
/* GeneralNames { dNSName "localhost", iPAddress 127.0.0.1 } */
static const uint8_t san_localhost_der[] = {0x30, 0x11, 0x82, 0x09, 'l',  'o',  'c',
                                            'a',  'l',  'h',  'o',  's',  't',  0x87,
                                            0x04, 0x7F, 0x00, 0x00, 0x01};

static int issue(const struct issue_req *q, struct pl_rng *rng, uint8_t *out, size_t cap,
                 size_t *len)
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    uint8_t serial_bytes[16];
    uint8_t pol[13];
    char nb[16], na[16];
    uint8_t *buf = NULL;
    const size_t bufcap = PL_CERT_MAX_DER;

    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    if ((rc = x509_time(q->not_before, nb)) != PL_OK || (rc = x509_time(q->not_after, na)) != PL_OK)
        goto out;
    /* RFC 5280 §4.1.2.2: positive, at most 20 octets, unique per issuer: 16 random
     * bytes with the top bit cleared and the next one set (no leading zero). */
    if (rng->fill(rng->user, serial_bytes, sizeof(serial_bytes)) != PL_OK) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    serial_bytes[0] = (uint8_t)((serial_bytes[0] & 0x7Fu) | 0x40u);
    rc = PL_ERR_CRYPTO;
    if (mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof(serial_bytes)) != 0)
        goto out;
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, q->subject_key);
    mbedtls_x509write_crt_set_issuer_key(&w, q->issuer_key);
    if (mbedtls_x509write_crt_set_serial(&w, &serial) != 0
        || mbedtls_x509write_crt_set_validity(&w, nb, na) != 0
        || mbedtls_x509write_crt_set_subject_name(&w, q->subject) != 0
        || mbedtls_x509write_crt_set_issuer_name(&w, q->issuer_name) != 0)
        goto out;
    /* SGP.22 §4.5.2.2: every certificate has an SKI, all but the CI an AKI. */
    if (mbedtls_x509write_crt_set_subject_key_identifier(&w) != 0)
        goto out;
    if (!q->self_signed && mbedtls_x509write_crt_set_authority_key_identifier(&w) != 0)
        goto out;
    /* basicConstraints only on CAs (critical, as mbedTLS writes it for cA TRUE). */
    if (q->ca && mbedtls_x509write_crt_set_basic_constraints(&w, 1, q->pathlen) != 0)
        goto out;
    if (mbedtls_x509write_crt_set_key_usage(&w, q->ku) != 0) /* critical */
        goto out;
    if (q->rsp_role != RSP_ROLE_NONE) {
        policy_der(q->rsp_role, pol);
        if (mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_CERTIFICATE_POLICIES,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_CERTIFICATE_POLICIES),
                                                1, pol, sizeof(pol))
            != 0)
            goto out;
    }
    if (q->server) {
        if (mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                0, eku_server_der, sizeof(eku_server_der))
                != 0
            || mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                   0, san_localhost_der, sizeof(san_localhost_der))
                   != 0)
            goto out;
    }
    buf = malloc(bufcap);
    if (!buf) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* mbedtls_x509write_crt_der() writes at the end of the buffer. */
    int n = mbedtls_x509write_crt_der(&w, buf, bufcap, f_rng, rng);
    if (n <= 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    if ((size_t)n > cap) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }
    memcpy(out, buf + bufcap - (size_t)n, (size_t)n);
    *len = (size_t)n;
    rc = PL_OK;
out:
    free(buf);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    return rc;
}

/* Copies tmpl into out with each "%s" replaced by arg (the templates are constants of
 * this file; no printf-style format strings are built at run time). */
static int subject_of(const char *tmpl, const char *arg, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return PL_ERR_OVERFLOW;
    for (size_t i = 0; tmpl[i]; i++) {
        const char *src = &tmpl[i];
        size_t len = 1;
        if (tmpl[i] == '%' && tmpl[i + 1] == 's') {
            src = arg;
            len = strlen(arg);
            i++;
        }
        if (len >= cap - n)
            return PL_ERR_OVERFLOW;
        memcpy(out + n, src, len);
        n += len;
    }
    out[n] = '\0';
    return PL_OK;
}

static const struct profile *profile_of(enum pl_pki_item item)
{
    for (size_t i = 0; i < N_PROFILES; i++) {
        if (profiles[i].item == item)
            return &profiles[i];
    }
    return NULL;
}

static int item_subject(enum pl_pki_item item, enum pl_curve curve, char *out, size_t cap)
{
    const struct profile *p = profile_of(item);
    if (!p)
        return PL_ERR_INVAL;
    return subject_of(p->subject, pl_curve_name(p->tls ? PL_CURVE_P256 : curve), out, cap);
}

/* Issues a CERT.EUICC for subject_key under the EUM. */
static int issue_euicc(enum pl_curve curve, mbedtls_pk_context *eum_key,
                       mbedtls_pk_context *subject_key, const uint8_t eid[PL_PKI_EID_LEN],
                       struct pl_rng *rng, int64_t now, uint8_t *out, size_t cap, size_t *len)
{
    char eid_hex[2 * PL_PKI_EID_LEN + 1];
    char subject[PKI_NAME_MAX], issuer[PKI_NAME_MAX];
    int rc;

    if ((rc = pl_hex_encode(eid, PL_PKI_EID_LEN, eid_hex, sizeof(eid_hex))) != PL_OK)
        return rc;
    for (size_t i = 0; eid_hex[i]; i++) {
        if (eid_hex[i] >= 'a' && eid_hex[i] <= 'f')
            eid_hex[i] = (char)(eid_hex[i] - 'a' + 'A');
    }
    if ((rc = subject_of(euicc_subject_fmt, eid_hex, subject, sizeof(subject))) != PL_OK
        || (rc = item_subject(PL_PKI_EUM, curve, issuer, sizeof(issuer))) != PL_OK)
        return rc;
    struct issue_req q = {
        .subject = subject,
        .issuer_name = issuer,
        .subject_key = subject_key,
        .issuer_key = eum_key,
        .self_signed = false,
        .ca = false,
        .pathlen = 0,
        .ku = MBEDTLS_X509_KU_DIGITAL_SIGNATURE,
        .rsp_role = RSP_ROLE_EUICC,
        .server = false,
        .not_before = now - DAY,
        .not_after = PL_PKI_EUICC_NOT_AFTER,
    };
    return issue(&q, rng, out, cap, len);
}

static int check_now(time_t now)
{
    /* notBefore = now - 1 day must be after 1970; CA certs must end before 9999. */
    int64_t t = (int64_t)now;
    if (t < DAY || t > PL_PKI_EUICC_NOT_AFTER - 21 * YEAR)
        return PL_ERR_INVAL;
    return PL_OK;
}

/* ---- pl_pki_init ---- */

struct gen_item {
    mbedtls_pk_context pk;
    uint8_t der[PL_CERT_MAX_DER];
    size_t der_len;
};

static void remove_items(const char *dir)
{
    char path[PL_PKI_PATH_MAX];
    for (int i = 0; i < PL_PKI_ITEMS; i++) {
        for (size_t f = 0; f < 3; f++) {
            if (join_path(path, sizeof(path), dir, item_names[i], file_ext[f]) == PL_OK)
                (void)unlink(path);
        }
    }
}

static int write_item(const char *dir, enum pl_pki_item item, struct gen_item *g)
{
    int rc = PL_ERR_INTERNAL;
    char path[PL_PKI_PATH_MAX];
    unsigned char *pem = NULL;
    const size_t pem_cap = 2 * PL_CERT_MAX_DER;
    size_t olen = 0;

    pem = malloc(pem_cap);
    if (!pem)
        return PL_ERR_NOMEM;
    /* Private key first, SEC1 PEM, 0600. */
    if (mbedtls_pk_write_key_pem(&g->pk, pem, pem_cap) != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    if ((rc = join_path(path, sizeof(path), dir, item_names[item], ".key")) != PL_OK
        || (rc = write_file(path, pem, strlen((const char *)pem), 0600)) != PL_OK)
        goto out;
    pl_memzero(pem, pem_cap);
    if (mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                 g->der, g->der_len, pem, pem_cap, &olen)
        != 0) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    if ((rc = join_path(path, sizeof(path), dir, item_names[item], ".crt")) != PL_OK
        || (rc = write_file(path, pem, strlen((const char *)pem), 0644)) != PL_OK
        || (rc = join_path(path, sizeof(path), dir, item_names[item], ".der")) != PL_OK
        || (rc = write_file(path, g->der, g->der_len, 0644)) != PL_OK)
        goto out;
    rc = PL_OK;
out:
    pl_memzero(pem, pem_cap);
    free(pem);
    return rc;
}

static int prepare_dir(const char *dir)
{
    struct stat st;
    char path[PL_PKI_PATH_MAX];

    if (mkdir(dir, 0700) != 0) {
        if (errno != EEXIST)
            return PL_ERR_IO;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return PL_ERR_IO;
    }
    for (int i = 0; i < PL_PKI_ITEMS; i++) {
        for (size_t f = 0; f < 3; f++) {
            if (join_path(path, sizeof(path), dir, item_names[i], file_ext[f]) != PL_OK)
                return PL_ERR_OVERFLOW;
            if (lstat(path, &st) == 0)
                return PL_ERR_EXISTS;
            if (errno != ENOENT)
                return PL_ERR_IO;
        }
    }
    return PL_OK;
}

int pl_pki_init(const char *dir, enum pl_curve curve, const struct pl_rng *rng_in, time_t now)
{
    int rc = PL_ERR_INTERNAL;
    struct gen_item *g = NULL;
    struct pl_rng rng;
    mbedtls_ecp_group_id gid;
    char subject[PKI_NAME_MAX], issuer[PKI_NAME_MAX];
    uint8_t eid[PL_PKI_EID_LEN];
    size_t eid_len = 0;
    bool wrote = false;

    if (!dir || !rng_in || !rng_in->fill || curve_group(curve, &gid) != PL_OK)
        return PL_ERR_INVAL;
    if ((rc = check_now(now)) != PL_OK)
        return rc;
    rng = *rng_in;
    g = calloc(PL_PKI_ITEMS, sizeof(*g));
    if (!g)
        return PL_ERR_NOMEM;
    for (int i = 0; i < PL_PKI_ITEMS; i++)
        mbedtls_pk_init(&g[i].pk);
    if ((rc = prepare_dir(dir)) != PL_OK)
        goto out;

    /* Keys, then certificates in issuing order (the profile table is ordered so that
     * every issuer comes before what it signs). */
    for (size_t i = 0; i < N_PROFILES; i++) {
        const struct profile *p = &profiles[i];
        if ((rc = gen_key(&g[p->item].pk, p->tls ? PL_CURVE_P256 : curve, &rng)) != PL_OK)
            goto out;
    }
    if ((rc = gen_key(&g[PL_PKI_EUICC_SAMPLE].pk, curve, &rng)) != PL_OK)
        goto out;
    for (size_t i = 0; i < N_PROFILES; i++) {
        const struct profile *p = &profiles[i];
        if ((rc = item_subject(p->item, curve, subject, sizeof(subject))) != PL_OK
            || (rc = item_subject(p->issuer, curve, issuer, sizeof(issuer))) != PL_OK)
            goto out;
        struct issue_req q = {
            .subject = subject,
            .issuer_name = issuer,
            .subject_key = &g[p->item].pk,
            .issuer_key = &g[p->issuer].pk,
            .self_signed = p->item == p->issuer,
            .ca = p->ca,
            .pathlen = p->pathlen,
            .ku = p->ku,
            .rsp_role = p->rsp_role,
            .server = p->server,
            .not_before = (int64_t)now - DAY,
            .not_after = (int64_t)now + p->lifetime,
        };
        if ((rc = issue(&q, &rng, g[p->item].der, sizeof(g[p->item].der), &g[p->item].der_len))
            != PL_OK)
            goto out;
    }
    if ((rc = pl_hex_decode(PL_PKI_SAMPLE_EID, eid, sizeof(eid), &eid_len)) != PL_OK)
        goto out;
    if ((rc = issue_euicc(curve, &g[PL_PKI_EUM].pk, &g[PL_PKI_EUICC_SAMPLE].pk, eid, &rng,
                          (int64_t)now, g[PL_PKI_EUICC_SAMPLE].der,
                          sizeof(g[PL_PKI_EUICC_SAMPLE].der), &g[PL_PKI_EUICC_SAMPLE].der_len))
        != PL_OK)
        goto out;

    wrote = true;
    for (int i = 0; i < PL_PKI_ITEMS; i++) {
        if ((rc = write_item(dir, (enum pl_pki_item)i, &g[i])) != PL_OK)
            goto out;
    }
    rc = PL_OK;
out:
    if (rc != PL_OK && wrote)
        remove_items(dir);
    if (g) {
        for (int i = 0; i < PL_PKI_ITEMS; i++)
            mbedtls_pk_free(&g[i].pk);
        pl_memzero(g, PL_PKI_ITEMS * sizeof(*g));
        free(g);
    }
    return rc;
}

/* ---- pl_pki_load ---- */

static bool item_is_tls(enum pl_pki_item item)
{
    const struct profile *p = profile_of(item);
    return p && p->tls;
}

static int load_item(struct pl_pki *pki, enum pl_pki_item item)
{
    int rc = PL_ERR_INTERNAL;
    char path[PL_PKI_PATH_MAX];
    uint8_t *crt = NULL, *der = NULL, *key = NULL;
    size_t crt_len = 0, der_len = 0, key_len = 0;
    const uint8_t *raw;
    size_t raw_len;
    uint8_t pub_cert[PL_EC_PUB_LEN], pub_key[PL_EC_PUB_LEN];
    mbedtls_ecp_group_id gid;
    mbedtls_pk_context pk;
    enum pl_curve want = item_is_tls(item) ? PL_CURVE_P256 : pki->curve;

    mbedtls_pk_init(&pk);

    if ((rc = join_path(path, sizeof(path), pki->dir, item_names[item], ".crt")) != PL_OK
        || (rc = read_file(path, &crt, &crt_len)) != PL_OK
        || (rc = join_path(path, sizeof(path), pki->dir, item_names[item], ".der")) != PL_OK
        || (rc = read_file(path, &der, &der_len)) != PL_OK
        || (rc = join_path(path, sizeof(path), pki->dir, item_names[item], ".key")) != PL_OK
        || (rc = read_file(path, &key, &key_len)) != PL_OK)
        goto out;
    if ((rc = pl_cert_parse(crt, crt_len, &pki->cert[item])) != PL_OK)
        goto out;
    /* The .der must be the very same certificate as the .crt. */
    pl_cert_der(pki->cert[item], &raw, &raw_len);
    if (raw_len != der_len || memcmp(raw, der, der_len) != 0) {
        rc = PL_ERR_CERT;
        goto out;
    }
    if (pl_cert_curve(pki->cert[item]) != want) {
        rc = PL_ERR_CERT;
        goto out;
    }
    /* mbedtls_pk_parse_key() wants the terminating NUL counted for PEM. */
    if (mbedtls_pk_parse_key(&pk, key, key_len + 1, NULL, 0) != 0
        || mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY || curve_group(want, &gid) != PL_OK) {
        rc = PL_ERR_BAD_KEY;
        goto out;
    }
    const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(pk);
    if (!kp || kp->grp.id != gid) {
        rc = PL_ERR_BAD_KEY;
        goto out;
    }
    if ((rc = pk_to_eckey(&pk, want, &pki->key[item])) != PL_OK)
        goto out;
    if ((rc = pl_eckey_public(pki->key[item], pub_key)) != PL_OK
        || (rc = pl_cert_public_point(pki->cert[item], pub_cert)) != PL_OK)
        goto out;
    if (memcmp(pub_key, pub_cert, PL_EC_PUB_LEN) != 0) {
        rc = PL_ERR_BAD_KEY;
        goto out;
    }
    rc = PL_OK;
out:
    mbedtls_pk_free(&pk);
    free(crt);
    free(der);
    if (key) {
        pl_memzero(key, key_len);
        free(key);
    }
    return rc;
}

/* The curve of the RSP part: that of ci.crt. */
static int pki_curve(const char *dir, enum pl_curve *curve)
{
    int rc = PL_ERR_INTERNAL;
    char path[PL_PKI_PATH_MAX];
    uint8_t *crt = NULL;
    size_t len = 0;
    struct pl_cert *ci = NULL;

    if ((rc = join_path(path, sizeof(path), dir, item_names[PL_PKI_CI], ".crt")) != PL_OK
        || (rc = read_file(path, &crt, &len)) != PL_OK
        || (rc = pl_cert_parse(crt, len, &ci)) != PL_OK)
        goto out;
    *curve = pl_cert_curve(ci);
    rc = *curve == PL_CURVE_NONE ? PL_ERR_CERT : PL_OK;
out:
    pl_cert_free(ci);
    free(crt);
    return rc;
}

int pl_pki_load(const char *dir, struct pl_pki **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_pki *pki = NULL;

    if (!dir || !out)
        return PL_ERR_INVAL;
    *out = NULL;
    pki = calloc(1, sizeof(*pki));
    if (!pki)
        return PL_ERR_NOMEM;
    int n = snprintf(pki->dir, sizeof(pki->dir), "%s", dir);
    if (n < 0 || (size_t)n >= sizeof(pki->dir)) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }
    if ((rc = pki_curve(dir, &pki->curve)) != PL_OK)
        goto out;
    for (int i = 0; i < PL_PKI_ITEMS; i++) {
        if ((rc = load_item(pki, (enum pl_pki_item)i)) != PL_OK)
            goto out;
    }
    *out = pki;
    pki = NULL;
    rc = PL_OK;
out:
    pl_pki_free(pki);
    return rc;
}

void pl_pki_free(struct pl_pki *pki)
{
    if (!pki)
        return;
    for (int i = 0; i < PL_PKI_ITEMS; i++) {
        pl_cert_free(pki->cert[i]);
        pl_eckey_free(pki->key[i]);
    }
    pl_memzero(pki, sizeof(*pki));
    free(pki);
}

enum pl_curve pl_pki_curve(const struct pl_pki *pki)
{
    return pki->curve;
}

const char *pl_pki_dir(const struct pl_pki *pki)
{
    return pki->dir;
}

const struct pl_cert *pl_pki_cert(const struct pl_pki *pki, enum pl_pki_item item)
{
    if (!pki || (int)item < 0 || (int)item >= PL_PKI_ITEMS)
        return NULL;
    return pki->cert[item];
}

const struct pl_eckey *pl_pki_key(const struct pl_pki *pki, enum pl_pki_item item)
{
    if (!pki || (int)item < 0 || (int)item >= PL_PKI_ITEMS)
        return NULL;
    return pki->key[item];
}

int pl_pki_path(const struct pl_pki *pki, enum pl_pki_item item, enum pl_pki_file file,
                char *out, size_t cap)
{
    if (!pki || !out || (int)item < 0 || (int)item >= PL_PKI_ITEMS || (int)file < 0
        || (int)file > PL_PKI_FILE_DER)
        return PL_ERR_INVAL;
    return join_path(out, cap, pki->dir, item_names[item], file_ext[file]);
}

int pl_pki_verify(const struct pl_pki *pki, time_t now, enum pl_pki_item *failed)
{
    if (!pki)
        return PL_ERR_INVAL;
    for (int i = 0; i < PL_PKI_ITEMS; i++) {
        enum pl_pki_item root;
        enum pl_cert_role role;
        int inter;
        int rc = pl_pki_item_chain((enum pl_pki_item)i, &root, &inter, &role);
        if (rc == PL_ERR_NOT_FOUND)
            continue; /* a root: checked as the anchor of the chains below it */
        if (rc != PL_OK)
            return rc;
        const struct pl_cert *im[1];
        size_t n = 0;
        if (inter >= 0)
            im[n++] = pki->cert[inter];
        rc = pl_cert_verify_chain(pki->cert[i], im, n, pki->cert[root], role, now);
        if (rc != PL_OK) {
            if (failed)
                *failed = (enum pl_pki_item)i;
            return rc;
        }
    }
    return PL_OK;
}

/* ---- minting eUICCs ---- */

int pl_pki_mint_euicc_with(const struct pl_pki *pki, const uint8_t eid[PL_PKI_EID_LEN],
                           const struct pl_rng *rng_in, time_t now, struct pl_eckey **key_out,
                           uint8_t *cert_der, size_t cap, size_t *len)
{
    int rc = PL_ERR_INTERNAL;
    mbedtls_pk_context key;
    mbedtls_pk_context eum;
    struct pl_rng rng;
    struct pl_cert *minted = NULL;
    size_t der_len = 0;

    if (!pki || !eid || !rng_in || !rng_in->fill || !key_out || !cert_der || !len)
        return PL_ERR_INVAL;
    *key_out = NULL;
    *len = 0;
    if ((rc = check_now(now)) != PL_OK)
        return rc;
    rng = *rng_in;
    mbedtls_pk_init(&key);
    mbedtls_pk_init(&eum);
    if ((rc = eckey_to_pk(pki->key[PL_PKI_EUM], pki->curve, &eum)) != PL_OK
        || (rc = gen_key(&key, pki->curve, &rng)) != PL_OK
        || (rc = issue_euicc(pki->curve, &eum, &key, eid, &rng, (int64_t)now, cert_der, cap,
                             &der_len))
               != PL_OK)
        goto out;
    /* The issuer name was rebuilt from the EUM profile: check the new certificate
     * really chains to this PKI (else the directory was not made by this generator). */
    if ((rc = pl_cert_parse(cert_der, der_len, &minted)) != PL_OK)
        goto out;
    const struct pl_cert *im[1] = {pki->cert[PL_PKI_EUM]};
    if ((rc = pl_cert_verify_chain(minted, im, 1, pki->cert[PL_PKI_CI], PL_CERT_ROLE_EUICC,
                                   now))
        != PL_OK)
        goto out;
    if ((rc = pk_to_eckey(&key, pki->curve, key_out)) != PL_OK)
        goto out;
    *len = der_len;
    rc = PL_OK;
out:
    if (rc != PL_OK && der_len)
        pl_memzero(cert_der, der_len);
    pl_cert_free(minted);
    mbedtls_pk_free(&key);
    mbedtls_pk_free(&eum);
    return rc;
}

int pl_pki_mint_euicc(const char *pki_dir, enum pl_curve curve, const uint8_t eid[PL_PKI_EID_LEN],
                      const struct pl_rng *rng, time_t now, struct pl_eckey **key_out,
                      uint8_t *cert_der, size_t cap, size_t *len)
{
    struct pl_pki *pki = NULL;
    if (!pki_dir || !key_out || !len)
        return PL_ERR_INVAL;
    *key_out = NULL;
    *len = 0;
    int rc = pl_pki_load(pki_dir, &pki);
    if (rc != PL_OK)
        return rc;
    if (pl_pki_curve(pki) != curve)
        rc = PL_ERR_INVAL;
    else
        rc = pl_pki_mint_euicc_with(pki, eid, rng, now, key_out, cert_der, cap, len);
    pl_pki_free(pki);
    return rc;
}
