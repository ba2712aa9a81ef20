/* Software eUICC manufacturing: what the EUM does in SAS-UP before IFPP (SGP.41 v1.0
 * EUICCF01 "eUICC can store one or more pre-provisioned OTKs", GENS14): EID, SK.EUICC.SIG
 * + CERT.EUICC (SGP.22 v2.5 §4.5.2.1.0.3) from the test PKI's EUM, CERT.EUM, CERT.CI,
 * N one-time key pairs, factoryMode = true. EID check digits: GSMA SGP.29 (mod 97).
 * provline reference: IFPP.md §6.1-§6.2; docs/software-euicc.md §1. */
#include "euicc_internal.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/x509.h"
#include "provline/sim/pki.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int copy_cert(const struct pl_cert *c, uint8_t **out, size_t *len)
{
    const uint8_t *der;
    size_t n;
    if (!c)
        return PL_ERR_INVAL;
    pl_cert_der(c, &der, &n);
    if (n == 0 || n > PL_EUICC_CERT_MAX)
        return PL_ERR_CERT;
    *out = malloc(n);
    if (!*out)
        return PL_ERR_NOMEM;
    memcpy(*out, der, n);
    *len = n;
    return PL_OK;
}

/* A random EID: "89049032" + 22 random digits + 2 check digits such that the 32-digit
 * number is 1 mod 97 (SGP.29). Packed two digits per byte, first digit high. */
static int random_eid(const struct pl_rng *rng, uint8_t eid[PL_EUICC_EID_LEN])
{
    static const uint8_t prefix[8] = {8, 9, 0, 4, 9, 0, 3, 2};
    uint8_t d[32];
    uint8_t rnd[22];
    int rc = rng->fill(rng->user, rnd, sizeof(rnd));
    if (rc)
        return rc;
    memcpy(d, prefix, sizeof(prefix));
    for (size_t i = 0; i < sizeof(rnd); i++)
        d[8 + i] = (uint8_t)(rnd[i] % 10u); /* slight bias is fine for a test EID */
    d[30] = d[31] = 0;
    unsigned m = 0;
    for (size_t i = 0; i < 32; i++)
        m = (m * 10u + d[i]) % 97u;
    unsigned check = 98u - m;
    d[30] = (uint8_t)(check / 10u);
    d[31] = (uint8_t)(check % 10u);
    for (size_t i = 0; i < PL_EUICC_EID_LEN; i++)
        eid[i] = (uint8_t)((d[2 * i] << 4) | d[2 * i + 1]);
    return PL_OK;
}

static bool eid_is_bcd(const uint8_t eid[PL_EUICC_EID_LEN])
{
    for (size_t i = 0; i < PL_EUICC_EID_LEN; i++)
        if ((eid[i] >> 4) > 9 || (eid[i] & 0x0Fu) > 9)
            return false;
    return true;
}

int pl_euicc_mint(const struct pl_pki *pki, enum pl_curve curve, const uint8_t *eid,
                  unsigned n_otks, const char *path, const struct pl_rng *rng)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_euicc_state st;
    struct pl_eckey *sk = NULL, *otk = NULL;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    struct pl_rng sysrng = PL_RNG_SYSTEM;

    memset(&st, 0, sizeof(st));
    if (!rng)
        rng = &sysrng;
    if (!pki || !path || n_otks == 0 || n_otks > PL_EUICC_MAX_OTKS
        || (curve != PL_CURVE_P256 && curve != PL_CURVE_BP256R1) || pl_pki_curve(pki) != curve
        || (eid && !eid_is_bcd(eid))) {
        rc = PL_ERR_INVAL;
        goto out;
    }
    st.curve = curve;
    if (eid)
        memcpy(st.eid, eid, PL_EUICC_EID_LEN);
    else if ((rc = random_eid(rng, st.eid)))
        goto out;

    cert = malloc(PL_CERT_MAX_DER);
    if (!cert) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = pl_pki_mint_euicc_with(pki, st.eid, rng, time(NULL), &sk, cert, PL_CERT_MAX_DER,
                                     &cert_len)))
        goto out;
    if (cert_len > PL_EUICC_CERT_MAX) {
        rc = PL_ERR_CERT;
        goto out;
    }
    if ((rc = pl_eckey_private(sk, st.sk)))
        goto out;
    st.cert_euicc = cert;
    st.cert_euicc_len = cert_len;
    cert = NULL;
    if ((rc = copy_cert(pl_pki_cert(pki, PL_PKI_EUM), &st.cert_eum, &st.cert_eum_len))
        || (rc = copy_cert(pl_pki_cert(pki, PL_PKI_CI), &st.cert_ci, &st.cert_ci_len)))
        goto out;

    st.otk = calloc(n_otks, sizeof(*st.otk));
    if (!st.otk) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (unsigned i = 0; i < n_otks; i++) {
        struct pl_euicc_otk *o = &st.otk[i];
        if ((rc = pl_eckey_generate(curve, rng, &otk)))
            goto out;
        if ((rc = pl_eckey_private(otk, o->sk)) || (rc = pl_eckey_public(otk, o->pk)))
            goto out;
        pl_eckey_free(otk);
        otk = NULL;
        o->id = (uint16_t)(i + 1u);
        o->state = PL_EUICC_OTK_FREE;
        st.n_otk++;
    }
    st.factory_mode = true;
    st.isdp_next = 0;
    rc = pl_euicc_state_write(path, &st, false);
out:
    pl_eckey_free(otk);
    pl_eckey_free(sk);
    free(cert);
    pl_euicc_state_free(&st);
    return rc;
}
