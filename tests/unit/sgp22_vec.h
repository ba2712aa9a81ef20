/* Helpers for the SGP.22 vector files tests/vectors/sgp22_*.txt (records: name, func,
 * expect, der; see tests/vectors/README.md). Header-only, for Criterion tests only. */
#ifndef PL_TEST_SGP22_VEC_H
#define PL_TEST_SGP22_VEC_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/err.h"
#include "vecfile.h"

static inline int sgp22_err(const char *name)
{
    static const struct {
        const char *name;
        int err;
    } map[] = {
        {"PL_OK", PL_OK},
        {"PL_ERR_INVAL", PL_ERR_INVAL},
        {"PL_ERR_TRUNCATED", PL_ERR_TRUNCATED},
        {"PL_ERR_MALFORMED", PL_ERR_MALFORMED},
        {"PL_ERR_OVERFLOW", PL_ERR_OVERFLOW},
        {"PL_ERR_UNSUPPORTED", PL_ERR_UNSUPPORTED},
        {"PL_ERR_DER_TAG", PL_ERR_DER_TAG},
        {"PL_ERR_DER_INDEFINITE", PL_ERR_DER_INDEFINITE},
        {"PL_ERR_DER_NONMINIMAL", PL_ERR_DER_NONMINIMAL},
        {"PL_ERR_DER_LENGTH", PL_ERR_DER_LENGTH},
        {"PL_ERR_DER_TRAILING", PL_ERR_DER_TRAILING},
        {"PL_ERR_DER_DEPTH", PL_ERR_DER_DEPTH},
        {"PL_ERR_DER_TOOBIG", PL_ERR_DER_TOOBIG},
        {"PL_ERR_DER_VALUE", PL_ERR_DER_VALUE},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].name, name) == 0)
            return map[i].err;
    cr_assert_fail("unknown expectation '%s'", name);
    return 1;
}

/* The record's der field, decoded into a malloc'd buffer of exactly *len bytes (at least
 * one byte is allocated so ASan sees exact bounds). */
static inline uint8_t *sgp22_der(const struct pl_vec_rec *r, size_t *len)
{
    const char *hex = pl_vec_get(r, "der");
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *tmp = malloc(cap);
    cr_assert_not_null(tmp);
    *len = pl_vec_hex(r, "der", tmp, cap);
    uint8_t *out = malloc(*len ? *len : 1);
    cr_assert_not_null(out);
    memcpy(out, tmp, *len);
    free(tmp);
    return out;
}

/* The record named name in vf (fails the test if absent). */
static inline const struct pl_vec_rec *sgp22_find(const struct pl_vec_file *vf, const char *name)
{
    for (size_t i = 0; i < vf->nrec; i++)
        if (strcmp(pl_vec_get(&vf->rec[i], "name"), name) == 0)
            return &vf->rec[i];
    cr_assert_fail("%s: no record '%s'", vf->path, name);
    return NULL;
}

/* Loads the der of one named record. */
static inline uint8_t *sgp22_load(const char *file, const char *name, size_t *len)
{
    struct pl_vec_file *vf = pl_vec_load(file);
    uint8_t *der = sgp22_der(sgp22_find(vf, name), len);
    pl_vec_free(vf);
    return der;
}

#endif
