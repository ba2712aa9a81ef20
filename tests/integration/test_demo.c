/* integration.demo: `provline demo` (the README's first command) runs a whole line on one
 * machine and proves it from each eUICC's own state. PL_TEST_SLOW */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"

static char out[1 << 16];

Test(demo, whole_line_on_one_machine, .timeout = 300)
{
    char tmp[256], cmd[1024];
    cr_assert_eq(pl_test_tmpdir(tmp, sizeof(tmp)), 0);
    const char *bin = getenv("PL_BIN_DIR");
    cr_assert_not_null(bin);
    snprintf(cmd, sizeof(cmd), "'%s/provline' demo --dir '%s/line' --devices 4 2>&1", bin, tmp);
    int rc = pl_test_run(cmd, out, sizeof(out));
    cr_assert_eq(rc, 0, "demo failed:\n%s", out);
    cr_assert(strstr(out, "4 of 4 devices provisioned and locked"), "%s", out);
    cr_assert(strstr(out, "line OK"), "%s", out);
    /* Two serial and two CoAP devices took part. */
    size_t serial = 0, coap = 0;
    for (const char *p = out; (p = strstr(p, "OK   serial")) != NULL; p++)
        serial++;
    for (const char *p = out; (p = strstr(p, "OK   coap")) != NULL; p++)
        coap++;
    cr_assert_eq(serial, 2u, "%s", out);
    cr_assert_eq(coap, 2u, "%s", out);
    /* The artefacts it names exist: the batch report lists four devices. */
    char path[512];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/line/batch-report.csv", tmp);
    char *csv = (char *)pl_test_read_file(path, &len);
    cr_assert_not_null(csv, "no batch report");
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += csv[i] == '\n';
    cr_assert_geq(lines, 5u, "%s", csv); /* header + 4 rows */
    free(csv);
    /* ... the eIM batch holds four installed devices, signed checkpoints verified. */
    snprintf(path, sizeof(path), "%s/line/eim-batch.json", tmp);
    char *batch = (char *)pl_test_read_file(path, &len);
    cr_assert_not_null(batch, "no eIM batch:\n%s", out);
    cr_assert(strstr(batch, "provline-station-batch/1") != NULL, "%s", batch);
    size_t installed = 0;
    for (const char *p = batch; (p = strstr(p, "\"status\": \"installed\"")) != NULL; p++)
        installed++;
    cr_assert_eq(installed, 4u, "%s", batch);
    free(batch);
    cr_assert(strstr(out, "signatures_unchecked=0") != NULL, "%s", out);
    pl_test_rmtree(tmp);
}

Test(demo, refuses_bad_arguments)
{
    char cmd[512];
    const char *bin = getenv("PL_BIN_DIR");
    snprintf(cmd, sizeof(cmd), "'%s/provline' demo --devices 0 2>&1", bin);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
    snprintf(cmd, sizeof(cmd), "'%s/provline' demo --devices 2 --coap 3 2>&1", bin);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
    snprintf(cmd, sizeof(cmd), "'%s/provline' demo --bogus 2>&1", bin);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
    /* More devices than distinct profiles: refused before any device starts. */
    char tmp[256];
    cr_assert_eq(pl_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(cmd, sizeof(cmd), "'%s/provline' demo --devices 21 --dir '%s/line' 2>&1", bin, tmp);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "holds 20 distinct profiles") != NULL, "%s", out);
    cr_assert(strstr(out, "use --devices 20 or less") != NULL, "%s", out);
    cr_assert(strstr(out, "OK   serial") == NULL, "%s", out);
    pl_test_rmtree(tmp);
}
