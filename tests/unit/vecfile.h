/* Reader for the "name = value" record files in tests/vectors/ (the NIST CAVS .rsp
 * layout): '#' starts a comment line, a blank line ends a record, values are hex unless
 * a test says otherwise. Header-only (static inline) and for Criterion tests only. */
#ifndef PL_TEST_VECFILE_H
#define PL_TEST_VECFILE_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/hex.h"

#define PL_VEC_MAX_FIELDS 16
#define PL_VEC_MAX_RECS 64

struct pl_vec_field {
    const char *name;
    const char *value;
};

struct pl_vec_rec {
    size_t n;
    unsigned line; /* line of the record's first field */
    struct pl_vec_field f[PL_VEC_MAX_FIELDS];
};

struct pl_vec_file {
    char *text;
    char path[512];
    size_t nrec;
    struct pl_vec_rec rec[PL_VEC_MAX_RECS];
};

static inline char *pl_vec_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* Loads tests/vectors/<name>; returns a heap object (free with pl_vec_free). */
static inline struct pl_vec_file *pl_vec_load(const char *name)
{
    struct pl_vec_file *vf = calloc(1, sizeof(*vf));
    char rel[256];
    size_t len = 0;
    unsigned lineno = 0;
    char *line;

    cr_assert_not_null(vf);
    snprintf(rel, sizeof(rel), "tests/vectors/%s", name);
    pl_test_src(vf->path, sizeof(vf->path), rel);
    vf->text = (char *)pl_test_read_file(vf->path, &len);
    cr_assert_not_null(vf->text, "cannot read %s", vf->path);
    line = vf->text;
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        char *eq, *t;

        if (nl != NULL)
            *nl = '\0';
        lineno++;
        t = pl_vec_trim(line);
        if (*t == '\0') {
            if (vf->nrec < PL_VEC_MAX_RECS && vf->rec[vf->nrec].n > 0)
                vf->nrec++;
        } else if (*t != '#' && *t != '[') {
            struct pl_vec_rec *r;

            cr_assert_lt(vf->nrec, PL_VEC_MAX_RECS, "%s: too many records", vf->path);
            r = &vf->rec[vf->nrec];
            eq = strchr(t, '=');
            cr_assert_not_null(eq, "%s:%u: expected 'name = value'", vf->path, lineno);
            *eq = '\0';
            cr_assert_lt(r->n, PL_VEC_MAX_FIELDS, "%s:%u: too many fields", vf->path, lineno);
            if (r->n == 0)
                r->line = lineno;
            r->f[r->n].name = pl_vec_trim(t);
            r->f[r->n].value = pl_vec_trim(eq + 1);
            r->n++;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (vf->nrec < PL_VEC_MAX_RECS && vf->rec[vf->nrec].n > 0)
        vf->nrec++;
    return vf;
}

static inline void pl_vec_free(struct pl_vec_file *vf)
{
    if (vf == NULL)
        return;
    free(vf->text);
    free(vf);
}

static inline const char *pl_vec_get(const struct pl_vec_rec *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->f[i].name, name) == 0)
            return r->f[i].value;
    }
    cr_assert_fail("record at line %u has no field '%s'", r->line, name);
    return NULL;
}

/* Decodes field name as hex into out; returns the byte count. */
static inline size_t pl_vec_hex(const struct pl_vec_rec *r, const char *name, uint8_t *out,
                                size_t cap)
{
    size_t n = 0;
    const char *v = pl_vec_get(r, name);

    cr_assert_eq(pl_hex_decode_loose(v, out, cap, &n), PL_OK, "line %u: bad hex in '%s'",
                 r->line, name);
    return n;
}

/* Like pl_vec_hex but the value must have exactly want bytes. */
static inline void pl_vec_hex_n(const struct pl_vec_rec *r, const char *name, uint8_t *out,
                                size_t want)
{
    size_t n = pl_vec_hex(r, name, out, want);

    cr_assert_eq(n, want, "line %u: '%s' has %zu bytes, want %zu", r->line, name, n, want);
}

#endif
