/* Default RNG behind the struct pl_rng seam (STYLE.md §7.3 rule 9): NIST SP 800-90A
 * CTR_DRBG (AES-256) seeded from the OS entropy source through mbedTLS 2.28.
 * GSMA SGP.22 v2.5 §2.6.5 needs fresh randomness for one-time keys (otSK.DP.ECKA)
 * and for the scalar blinding in ECDSA/ECDH.
 *
 * One generator per thread (C11 _Thread_local), so no lock and no state shared
 * between threads. A process that forks inherits a copy of its parent's generator;
 * the generator remembers the pid it was seeded in and reseeds from fresh entropy
 * when it finds itself in another process, so parent and child never emit the same
 * stream. */
#define _POSIX_C_SOURCE 200809L

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>

#include "provline/protocol/crypto.h"

struct pl_sysrng {
    bool seeded;
    pid_t pid;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

static _Thread_local struct pl_sysrng pl_tls_rng;

/* Personalisation string: separates this DRBG instance from any other user of the
 * same entropy source (SP 800-90A §8.7.1). */
static const unsigned char pl_rng_pers[] = "provline pl_rng_system";

static int pl_sysrng_seed(struct pl_sysrng *s)
{
    pid_t pid = getpid();

    if (s->seeded && s->pid == pid)
        return PL_OK;
    if (s->seeded) {
        /* Forked: mix the new pid in as additional input and draw fresh entropy. */
        if (mbedtls_ctr_drbg_reseed(&s->drbg, (const unsigned char *)&pid, sizeof(pid)) != 0)
            return PL_ERR_CRYPTO;
        s->pid = pid;
        return PL_OK;
    }
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    if (mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, pl_rng_pers,
                              sizeof(pl_rng_pers) - 1) != 0) {
        mbedtls_ctr_drbg_free(&s->drbg);
        mbedtls_entropy_free(&s->entropy);
        return PL_ERR_CRYPTO;
    }
    s->seeded = true;
    s->pid = pid;
    return PL_OK;
}

PL_MUST_CHECK int pl_rng_system_fill(void *user, uint8_t *buf, size_t len)
{
    struct pl_sysrng *s = &pl_tls_rng;
    int rc;

    (void)user;
    if (buf == NULL && len != 0)
        return PL_ERR_INVAL;
    rc = pl_sysrng_seed(s);
    if (rc != PL_OK)
        return rc;
    while (len > 0) {
        size_t chunk = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;

        if (mbedtls_ctr_drbg_random(&s->drbg, buf, chunk) != 0)
            return PL_ERR_CRYPTO;
        buf += chunk;
        len -= chunk;
    }
    return PL_OK;
}
