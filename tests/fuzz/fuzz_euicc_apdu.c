/* Fuzz target: the software eUICC's APDU entry point (sim/euicc.h pl_euicc_apdu), i.e.
 * ISO/IEC 7816-4 MANAGE CHANNEL / SELECT / GET RESPONSE, STORE DATA reassembly and every
 * ES10 handler behind it (IFPP.md §5.7, §6.2), fed arbitrary APDU sequences.
 *
 * A template eUICC (P-256, 2 OTKs) and one package bound to its OTK 1 are made once per
 * process; each input runs on a fresh copy of the template file (on /dev/shm when
 * available, so the tearing-safe writes stay cheap). Input:
 *   byte 0   flags: bit 0 open a session first (MANAGE CHANNEL + SELECT ISD-R, channel 1);
 *            bits 1-5 how many valid load commands (header, then BPP segments) to send
 *            first, so the fuzzer starts inside a load; bits 6-7 fail_write_at (0 = off).
 *   then     APDUs as [len u8][len bytes] until the input ends.
 * Checked: pl_euicc_apdu never returns a positive value, answers at least a status word
 * on PL_OK, and after the run the file reopens to a consistent state: no load marked in
 * progress, no more profiles than consumed OTKs, and no profile while every OTK is FREE. */
#define _POSIX_C_SOURCE 200809L
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/protocol/apdu.h"
#include "provline/sim/euicc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;
static char dir[256];
static char template_path[320];
static char work_path[320];
static uint8_t *tmpl;
static size_t tmpl_len;
static struct pl_wr load_cmds[40]; /* header + segments of a valid load */
static size_t n_load_cmds;

static void cleanup(void)
{
    for (size_t i = 0; i < n_load_cmds; i++)
        pl_wr_free(&load_cmds[i]);
    free(tmpl);
    if (dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return;
    }
}

static void init_once(void)
{
    struct pl_et t;
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    struct pl_et_pkg p;
    size_t upp_len, n;

    /* pl_et_init makes the PKI in /tmp; the state files live on /dev/shm if we can. */
    if (pl_et_init(&t, PL_CURVE_P256) != PL_OK)
        abort();
    snprintf(dir, sizeof(dir), "/dev/shm/pl-fuzz-euicc.%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0)
        snprintf(dir, sizeof(dir), "%s", t.dir);
    snprintf(template_path, sizeof(template_path), "%s/template.state", dir);
    snprintf(work_path, sizeof(work_path), "%s/work.state", dir);
    if (pl_euicc_mint(t.pki, PL_CURVE_P256, NULL, 2, template_path, &t.rng) != PL_OK)
        abort();
    pl_euicc_opts_init(&o);
    if (pl_euicc_open(template_path, &o, &e) != PL_OK)
        abort();
    uint8_t *upp = pl_et_upp("TS48V1-A-UNIQUE.der", &upp_len);
    if (!upp || pl_et_bind_for(&t, e, 1, upp, upp_len, false, &p) != PL_OK)
        abort();
    pl_euicc_close(e);
    free(upp);
    struct pl_bpp_span *s = pl_et_segments(p.bpp.buf, p.bpp.len, &n);
    if (!s)
        abort();
    pl_wr_init_dyn(&load_cmds[0], p.hdr.len);
    if (pl_wr_bytes(&load_cmds[0], p.hdr.buf, p.hdr.len) != PL_OK)
        abort();
    n_load_cmds = 1;
    for (size_t i = 0; i < n && n_load_cmds < sizeof(load_cmds) / sizeof(load_cmds[0]); i++) {
        pl_wr_init_dyn(&load_cmds[n_load_cmds], s[i].len);
        if (pl_wr_bytes(&load_cmds[n_load_cmds], s[i].p, s[i].len) != PL_OK)
            abort();
        n_load_cmds++;
    }
    free(s);
    pl_et_pkg_free(&p);
    tmpl = pl_test_read_file(template_path, &tmpl_len);
    if (!tmpl)
        abort();
    if (strncmp(dir, "/dev/shm/", 9) == 0) {
        pl_et_free(&t); /* the PKI is no longer needed */
    } else {
        pl_pki_free(t.pki); /* dir is t.dir: removed at exit */
    }
    atexit(cleanup);
    ready = true;
}

static void reset_file(void)
{
    FILE *f = fopen(work_path, "wb");
    if (!f || fwrite(tmpl, 1, tmpl_len, f) != tmpl_len)
        abort();
    fclose(f);
}

static void check_consistent(void)
{
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    if (pl_euicc_open(work_path, &o, &e) != PL_OK)
        abort();
    if (pl_euicc_load_in_progress(e))
        abort();
    size_t consumed = 0, free_otks = 0;
    for (size_t i = 0; i < pl_euicc_otk_count(e); i++) {
        struct pl_euicc_otk_info oi;
        if (pl_euicc_otk_get(e, i, &oi) != PL_OK)
            abort();
        consumed += oi.state == PL_EUICC_OTK_CONSUMED;
        free_otks += oi.state == PL_EUICC_OTK_FREE;
    }
    if (pl_euicc_profile_count(e) > consumed)
        abort();
    if (free_otks == pl_euicc_otk_count(e) && pl_euicc_profile_count(e) != 0)
        abort();
    if (pl_euicc_factory_mode(e) != (free_otks > 0))
        abort();
    pl_euicc_close(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    uint8_t r[PL_APDU_RAPDU_MAX];
    size_t rl;
    unsigned ch = 1;

    if (!ready)
        init_once();
    if (size == 0)
        return 0;
    reset_file();
    pl_euicc_opts_init(&o);
    o.fail_write_at = (unsigned)(data[0] >> 6);
    if (pl_euicc_open(work_path, &o, &e) != PL_OK)
        abort();
    if ((data[0] & 1u) && pl_et_session(e, &ch) != PL_OK)
        abort();
    size_t pre = (data[0] >> 1) & 0x1Fu;
    for (size_t i = 0; i < pre && i < n_load_cmds && !pl_euicc_is_dead(e); i++) {
        struct pl_wr rsp;
        uint16_t sw;
        pl_wr_init_dyn(&rsp, 1 << 16);
        int rc = pl_et_es10(e, ch, load_cmds[i].buf, load_cmds[i].len, &rsp, &sw);
        pl_wr_free(&rsp);
        if (rc != PL_OK)
            break;
    }
    size_t off = 1;
    while (off < size && !pl_euicc_is_dead(e)) {
        size_t n = data[off++];
        if (n > size - off)
            n = size - off;
        int rc = pl_euicc_apdu(e, data + off, n, r, sizeof(r), &rl);
        off += n;
        if (rc > 0)
            abort();
        if (rc == PL_OK && (rl < 2 || rl > sizeof(r)))
            abort();
    }
    pl_euicc_close(e);
    check_consistent();
    return 0;
}
