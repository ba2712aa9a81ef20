/* Secret handling: zeroisation and constant-time comparison.
 * STYLE.md §7.3 rule 5 (key material is zeroised after use); SGP.22 v2.5 §2.6.5
 * (MAC checks must not leak where the first difference is). */
#include "provline/protocol/secret.h"

#include <mbedtls/platform_util.h>

void pl_memzero(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
    /* mbedtls_platform_zeroize writes through a volatile function pointer, so the
     * compiler cannot prove the stores dead and drop them. */
    mbedtls_platform_zeroize(p, n);
}

bool pl_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *pa = a;
    const volatile uint8_t *pb = b;
    uint8_t diff = 0;

    /* Touch every byte regardless of where the buffers differ: the running time
     * depends only on n. */
    for (size_t i = 0; i < n; i++)
        diff = (uint8_t)(diff | (uint8_t)(pa[i] ^ pb[i]));
    return diff == 0;
}
