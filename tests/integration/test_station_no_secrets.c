/* Integration: after a run, nothing the station stored - its journal (and WAL), its audit
 * trail (and head sidecar), its package directory, its log - holds any part of a profile in
 * clear text or any key of the run. The UPP plaintexts come from the Key Maker's database;
 * the session keys are derived here, as the eUICC derives them, from a copy of each eUICC's
 * state taken before the run (it still holds the one-time secret keys: docs/software-
 * euicc.md §2) and the package's ISCR: Z = ECDH(otSK.EUICC, otPK.DP), X9.63 KDF -> MCV0,
 * S-ENC, S-MAC (SGP.22 v2.5 §2.6.4, Annex G), and with ReplaceSessionKeys the PPK-ENC,
 * PPK-MAC and MCV of the decrypted 'A2'. Decrypting every segment of the BPP with them back
 * to the exact UPP proves the keys are the run's. ARCHITECTURE.md §2, §5 ("a station never
 * writes a clear-text profile or a session key anywhere"); reference/IFPP.md §7 case 14. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pl_euicc_test.h"
#include "pl_line.h"
#include "pl_test.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/ifpp_envelope.h"

#define N_DEV 2u
#define WIN 32u           /* a profile window this long must never appear */
#define WIN_DISTINCT 8u   /* windows of fewer distinct bytes are filler (runs of FF, 00) that
                           * any file holds; they carry no profile content */
#define SECRETS_MAX 64u

struct secret {
    uint8_t v[32];
    size_t len;
    char what[48];
};

struct hunt {
    uint8_t (*win)[WIN]; /* sorted windows of every UPP */
    size_t n_win, cap_win;
    struct secret sec[SECRETS_MAX];
    size_t n_sec;
};

static int win_cmp(const void *a, const void *b)
{
    return memcmp(a, b, WIN);
}

static void add_upp(struct hunt *h, const uint8_t *upp, size_t len)
{
    for (size_t i = 0; i + WIN <= len; i++) {
        bool seen[256] = {false};
        unsigned distinct = 0;
        for (size_t k = 0; k < WIN; k++) {
            if (!seen[upp[i + k]]) {
                seen[upp[i + k]] = true;
                distinct++;
            }
        }
        if (distinct < WIN_DISTINCT)
            continue;
        if (h->n_win == h->cap_win) {
            h->cap_win = h->cap_win ? 2 * h->cap_win : 4096;
            h->win = realloc(h->win, h->cap_win * WIN);
            cr_assert_not_null(h->win);
        }
        memcpy(h->win[h->n_win++], upp + i, WIN);
    }
}

static void add_secret(struct hunt *h, const uint8_t *v, size_t len, const char *what)
{
    cr_assert_lt(h->n_sec, SECRETS_MAX);
    cr_assert_leq(len, sizeof(h->sec[0].v));
    memcpy(h->sec[h->n_sec].v, v, len);
    h->sec[h->n_sec].len = len;
    snprintf(h->sec[h->n_sec].what, sizeof(h->sec[0].what), "%s", what);
    h->n_sec++;
}

/* Returns a description of the first finding in buf, or NULL. */
static const char *scan(const struct hunt *h, const uint8_t *buf, size_t len, size_t *at)
{
    for (size_t i = 0; i + WIN <= len; i++) {
        if (bsearch(buf + i, h->win, h->n_win, WIN, win_cmp) != NULL) {
            *at = i;
            return "a 32-byte window of a profile plaintext (UPP)";
        }
    }
    for (size_t s = 0; s < h->n_sec; s++)
        for (size_t i = 0; i + h->sec[s].len <= len; i++)
            if (memcmp(buf + i, h->sec[s].v, h->sec[s].len) == 0) {
                *at = i;
                return h->sec[s].what;
            }
    return NULL;
}

static unsigned scan_tree(const struct hunt *h, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned files = 0;
    cr_assert_not_null(d, "%s", dir);
    while ((e = readdir(d)) != NULL) {
        char path[1200];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        cr_assert_eq(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            files += scan_tree(h, path);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        size_t len = 0, at = 0;
        uint8_t *buf = pl_test_read_file(path, &len);
        cr_assert_not_null(buf, "%s", path);
        const char *found = scan(h, buf, len, &at);
        cr_assert_null(found, "%s holds %s at offset %zu", path, found, at);
        free(buf);
        files++;
    }
    closedir(d);
    return files;
}

/* otSK of otkId otk from a software eUICC state file (docs/software-euicc.md §2). */
static void state_otsk(const char *path, uint16_t otk, uint8_t otsk[32])
{
    size_t len = 0;
    uint8_t *f = pl_test_read_file(path, &len);
    struct pl_der body, list;
    struct pl_tlv t;
    uint32_t n;
    bool found = false;

    cr_assert_not_null(f);
    cr_assert_gt(len, 12u + 32u);
    cr_assert_eq(memcmp(f, "PLEU", 4), 0);
    n = (uint32_t)f[8] << 24 | (uint32_t)f[9] << 16 | (uint32_t)f[10] << 8 | f[11];
    cr_assert_leq((size_t)n + 12u, len);
    pl_der_init(&body, f + 12, n);
    while (!pl_der_done(&body)) {
        cr_assert_eq(pl_der_next(&body, &t), PL_OK);
        if (t.tag != 0xA0u)
            continue;
        cr_assert_eq(pl_der_enter(&body, &t, &list), PL_OK);
        while (!pl_der_done(&list)) {
            struct pl_tlv o, fld;
            struct pl_der od;
            uint64_t id = 0;
            bool have = false;
            uint8_t sk[32];
            cr_assert_eq(pl_der_next(&list, &o), PL_OK);
            cr_assert_eq(pl_der_enter(&list, &o, &od), PL_OK);
            while (!pl_der_done(&od)) {
                cr_assert_eq(pl_der_next(&od, &fld), PL_OK);
                if (fld.tag == 0x80u)
                    cr_assert_eq(pl_der_get_uint(&fld, &id), PL_OK);
                if (fld.tag == 0x83u && fld.len == 32u) {
                    memcpy(sk, fld.value, 32);
                    have = true;
                }
            }
            if (id == otk && have) {
                memcpy(otsk, sk, 32);
                found = true;
            }
        }
    }
    free(f);
    cr_assert(found, "no otSK for otkId %u in %s", otk, path);
}

/* Derives the run's keys of one package as the eUICC does, checks them by decrypting the
 * whole BPP back to the UPP, and adds every key and the UPP to the hunt. */
static void package_secrets(struct hunt *h, const uint8_t *env, size_t env_len, uint16_t otk,
                            const char *prerun_state, const uint8_t *upp, size_t upp_len)
{
    struct pl_ifpp_pkg *pkg = malloc(sizeof(*pkg));
    struct pl_bpp *bpp = malloc(sizeof(*bpp));
    struct pl_eckey *sk = NULL;
    struct pl_bsp_keys keys;
    struct pl_bsp b;
    struct pl_wr out, rsk_pt;
    uint8_t otsk[32], z[32];

    cr_assert(pkg != NULL && bpp != NULL);
    cr_assert_eq(pl_ifpp_pkg_decode(env, env_len, pkg), PL_OK);
    cr_assert_eq(pl_bpp_decode(pkg->bpp, pkg->bpp_len, bpp), PL_OK);
    state_otsk(prerun_state, otk, otsk);
    cr_assert_eq(pl_eckey_from_private(pkg->curve, otsk, &sk), PL_OK);
    cr_assert_eq(pl_ecdh(sk, bpp->iscr.smdp_otpk, z), PL_OK);
    pl_eckey_free(sk);
    cr_assert_eq(pl_bsp_derive(z, bpp->iscr.host_id, bpp->iscr.host_id_len, pkg->eid, &keys),
                 PL_OK);
    add_secret(h, otsk, 32, "an eUICC one-time secret key (otSK)");
    add_secret(h, z, 32, "the ECDH shared secret Z");
    add_secret(h, keys.mcv, 16, "MCV0");
    add_secret(h, keys.s_enc, 16, "the session key S-ENC");
    add_secret(h, keys.s_mac, 16, "the session key S-MAC");

    pl_wr_init_dyn(&out, 2u * 1024u * 1024u);
    pl_wr_init_dyn(&rsk_pt, 4096);
    pl_bsp_init(&b, &keys);
    for (size_t i = 0; i < bpp->n87_first; i++)
        cr_assert_eq(pl_bsp_unwrap(&b, 0x87, true, bpp->first87[i].tlv, bpp->first87[i].len,
                                   &rsk_pt),
                     PL_OK, "the derived keys do not open 'A0'");
    pl_wr_reset(&rsk_pt);
    for (size_t i = 0; i < bpp->n88; i++)
        cr_assert_eq(pl_bsp_unwrap(&b, 0x88, false, bpp->seq88[i].tlv, bpp->seq88[i].len,
                                   &rsk_pt),
                     PL_OK);
    pl_wr_reset(&rsk_pt);
    cr_assert(bpp->has_second87, "the Key Maker was run with --rsk: 'A2' expected");
    for (size_t i = 0; i < bpp->n87_second; i++)
        cr_assert_eq(pl_bsp_unwrap(&b, 0x87, true, bpp->second87[i].tlv, bpp->second87[i].len,
                                   &rsk_pt),
                     PL_OK);
    struct pl_rsk rsk;
    cr_assert_eq(pl_rsk_decode(rsk_pt.buf, rsk_pt.len, &rsk), PL_OK);
    add_secret(h, rsk.ppk_enc, 16, "the profile protection key PPK-ENC");
    add_secret(h, rsk.ppk_mac, 16, "the profile protection key PPK-MAC");
    add_secret(h, rsk.mcv, 16, "the ReplaceSessionKeys MCV");
    struct pl_bsp_keys ppk;
    memcpy(ppk.mcv, rsk.mcv, 16);
    memcpy(ppk.s_enc, rsk.ppk_enc, 16);
    memcpy(ppk.s_mac, rsk.ppk_mac, 16);
    pl_bsp_replace(&b, &ppk);
    for (size_t i = 0; i < bpp->n86; i++)
        cr_assert_eq(pl_bsp_unwrap(&b, 0x86, true, bpp->seq86[i].tlv, bpp->seq86[i].len, &out),
                     PL_OK);
    cr_assert_eq(out.len, upp_len, "the decrypted BPP is not the UPP");
    cr_assert_eq(memcmp(out.buf, upp, upp_len), 0, "the decrypted BPP is not the UPP");
    add_upp(h, upp, upp_len);
    pl_wr_free(&out);
    pl_wr_free(&rsk_pt);
    free(bpp);
    free(pkg);
}

Test(station_no_secrets, storage_holds_no_profile_and_no_key, .timeout = 300)
{
    struct pl_line l;
    struct hunt h;
    char prerun[N_DEV][700];
    int status = -1;
    sqlite3 *km = NULL;
    sqlite3_stmt *st = NULL;

    memset(&h, 0, sizeof(h));
    cr_assert_eq(pl_line_init(&l), 0);
    l.km_args[l.n_km_args++] = "--rsk"; /* ReplaceSessionKeys: PPKs to look for as well */
    cr_assert_eq(pl_line_km_start(&l), 0);
    for (size_t i = 0; i < N_DEV; i++) {
        cr_assert_eq(pl_line_add_device(&l, i == 1, 3), 0);
        snprintf(prerun[i], sizeof(prerun[i]), "%s/prerun%zu.euicc", l.dir, i);
        cr_assert_eq(pl_et_copy(l.dev[i].euicc, prerun[i]), 0);
        cr_assert_eq(pl_line_dev_start(&l, i), 0);
    }
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0);
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, 120000, &status), 0, "station did not finish");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), (int)N_DEV);
    for (size_t i = 0; i < N_DEV; i++)
        (void)pl_line_dev_stop(&l, i, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);

    /* Every package of the run: its UPP, its keys. */
    cr_assert_eq(sqlite3_open_v2(l.km_db, &km, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(km,
                                    "SELECT k.eid, k.otk_id, k.envelope, p.upp FROM package k"
                                    " JOIN profile p ON p.id = k.profile_id",
                                    -1, &st, NULL),
                 SQLITE_OK);
    size_t n_pkg = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *eid = sqlite3_column_blob(st, 0);
        size_t dev = N_DEV;
        for (size_t i = 0; i < N_DEV; i++)
            if (memcmp(eid, l.dev[i].eid, 16) == 0)
                dev = i;
        cr_assert_lt(dev, N_DEV);
        package_secrets(&h, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                        (uint16_t)sqlite3_column_int(st, 1), prerun[dev],
                        sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3));
        n_pkg++;
    }
    sqlite3_finalize(st);
    sqlite3_close(km);
    cr_assert_geq(n_pkg, N_DEV);
    qsort(h.win, h.n_win, WIN, win_cmp);
    cr_assert_gt(h.n_win, 1000u, "too few profile windows to mean anything");

    /* The hunt finds what it looks for: the Key Maker's database holds the UPPs, and a
     * file holding a key is caught. */
    size_t len = 0, at = 0;
    uint8_t *kmdb = pl_test_read_file(l.km_db, &len);
    cr_assert_not_null(kmdb);
    cr_assert_not_null(scan(&h, kmdb, len, &at), "the scanner misses a UPP it must find");
    free(kmdb);
    uint8_t probe[64] = {0};
    memcpy(probe + 7, h.sec[3].v, h.sec[3].len);
    cr_assert_not_null(scan(&h, probe, sizeof(probe), &at), "the scanner misses a key");

    /* Everything the station wrote: journal (+WAL/SHM), audit (+head), package directory. */
    unsigned files = scan_tree(&h, l.st_dir);
    cr_assert_geq(files, 3u, "journal and audit files expected");
    /* Its log too. */
    uint8_t *log = pl_test_read_file(l.st_log, &len);
    cr_assert_not_null(log);
    const char *found = scan(&h, log, len, &at);
    cr_assert_null(found, "the station log holds %s", found);
    free(log);
    free(h.win);
    pl_line_free(&l);
}
