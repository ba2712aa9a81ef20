/* Test helpers for the fixture link; see fixture_testutil.h. */
#define _POSIX_C_SOURCE 200809L
#include "fixture_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/x509.h"

/* ------------------------------------------------------------------ files ---- */

int pl_ft_dir_new(char *out, size_t cap)
{
    char tmpl[] = "/tmp/plfixture.XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return -1;
    snprintf(out, cap, "%s", tmpl);
    return 0;
}

int pl_ft_mint(struct pl_et *t, const char *dir, const char *name, unsigned n, char *path,
               size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    return pl_euicc_mint(t->pki, t->curve, NULL, n, path, &t->rng);
}

/* ------------------------------------------------------------------ packages ---- */

int pl_ft_pkg_make(struct pl_et *t, const uint8_t eid[16], const uint8_t otpk[65],
                   uint16_t otk_id, const char *upp_name, struct pl_ft_pkg *out)
{
    struct pl_et_pkg b;
    struct pl_ifpp_pkg pkg;
    size_t upp_len = 0;
    const uint8_t *der;
    size_t der_len;
    int rc;

    memset(out, 0, sizeof(*out));
    pl_wr_init_dyn(&out->env, 256 * 1024);
    pl_wr_init_dyn(&out->hdr, 64 * 1024);
    pl_wr_init_dyn(&out->bpp, 256 * 1024);
    uint8_t *upp = pl_et_upp(upp_name, &upp_len);
    if (upp == NULL)
        return PL_ERR_IO;
    rc = pl_et_bind(t, eid, otpk, otk_id, upp, upp_len, true, &b);
    free(upp);
    if (rc != PL_OK) {
        pl_et_pkg_free(&b);
        return rc;
    }
    memset(&pkg, 0, sizeof(pkg));
    if ((rc = t->rng.fill(t->rng.user, pkg.package_id, sizeof(pkg.package_id))) != PL_OK)
        goto out;
    snprintf(pkg.batch_id, sizeof(pkg.batch_id), "fixture-test");
    memcpy(pkg.eid, eid, 16);
    pkg.otk_id = otk_id;
    if ((rc = pl_sha256(otpk, PL_EC_PUB_LEN, pkg.otpk_hash)) != PL_OK)
        goto out;
    pkg.tid = b.tid;
    pkg.tid_len = b.tid_len;
    pkg.curve = t->curve;
    pkg.not_after = (uint64_t)time(NULL) + 3600;
    pkg.key_maker_seq = otk_id;
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_DPF), &der, &der_len);
    pkg.dpf_chain.n = 1;
    pkg.dpf_chain.cert[0].der = der;
    pkg.dpf_chain.cert[0].len = der_len;
    pkg.bpp = b.bpp.buf;
    pkg.bpp_len = b.bpp.len;
    if ((rc = pl_ifpp_pkg_encode_sign(&pkg, pl_pki_key(t->pki, PL_PKI_DPF), &t->rng, &out->env)))
        goto out;
    if ((rc = pl_wr_bytes(&out->hdr, b.hdr.buf, b.hdr.len)) != PL_OK
        || (rc = pl_wr_bytes(&out->bpp, b.bpp.buf, b.bpp.len)) != PL_OK)
        goto out;
    memcpy(out->eid, eid, 16);
    out->otk_id = otk_id;
    memcpy(out->tid, b.tid, b.tid_len);
    out->tid_len = b.tid_len;
out:
    pl_et_pkg_free(&b);
    return rc;
}

int pl_ft_pkg_for(struct pl_et *t, const struct pl_euicc *e, uint16_t otk_id,
                  const char *upp_name, struct pl_ft_pkg *out)
{
    uint8_t eid[16];
    struct pl_euicc_otk_info oi;
    int rc = pl_euicc_otk_by_id(e, otk_id, &oi);
    if (rc != PL_OK) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    pl_euicc_get_eid(e, eid);
    return pl_ft_pkg_make(t, eid, oi.pk, otk_id, upp_name, out);
}

int pl_ft_pkg_for_path(struct pl_et *t, const char *path, uint16_t otk_id, const char *upp_name,
                       struct pl_ft_pkg *out)
{
    struct pl_euicc_opts o;
    struct pl_euicc *e = NULL;
    pl_euicc_opts_init(&o);
    int rc = pl_euicc_open(path, &o, &e);
    if (rc != PL_OK) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    rc = pl_ft_pkg_for(t, e, otk_id, upp_name, out);
    pl_euicc_close(e);
    return rc;
}

void pl_ft_pkg_free(struct pl_ft_pkg *p)
{
    pl_wr_free(&p->env);
    pl_wr_free(&p->hdr);
    pl_wr_free(&p->bpp);
}

/* ------------------------------------------------------------------ requests ---- */

static void msg_init(provline_fixture_Msg *m, uint64_t id, unsigned which)
{
    pl_fx_msg_init(m);
    m->version = PL_FX_VERSION;
    m->request_id = id;
    m->which_body = (pb_size_t)which;
}

static int finish(provline_fixture_Msg *m, struct pl_wr *w, int rc)
{
    if (rc == PL_OK)
        rc = pl_fx_msg_encode(m, w);
    pl_fx_msg_release(m);
    return rc;
}

int pl_ft_req_identify(uint64_t id, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_IDENTIFY);
    return finish(&m, w, PL_OK);
}

int pl_ft_req_upload_otks(uint64_t id, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_UPLOAD_OTKS);
    return finish(&m, w, PL_OK);
}

int pl_ft_req_load_env(uint64_t id, const uint8_t *env, size_t len, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_LOAD_PACKAGE);
    return finish(&m, w, pl_fx_set_blob(&m.body.load_package.envelope, env, len));
}

int pl_ft_req_load_parts(uint64_t id, const uint8_t eid[16], const uint8_t *hdr, size_t hdr_len,
                         const uint8_t *bpp, size_t bpp_len, struct pl_wr *w)
{
    provline_fixture_Msg m;
    int rc;
    msg_init(&m, id, PL_FX_LOAD_PACKAGE);
    provline_fixture_LoadPackageRequest *q = &m.body.load_package;
    if ((rc = PL_FX_SET_BYTES(q->eid, eid, 16)) == PL_OK
        && (rc = pl_fx_set_blob(&q->header, hdr, hdr_len)) == PL_OK)
        rc = pl_fx_set_blob(&q->bpp, bpp, bpp_len);
    return finish(&m, w, rc);
}

int pl_ft_req_fetch(uint64_t id, bool has_seq, uint64_t seq, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_FETCH_RESULTS);
    m.body.fetch_results.has_seq_number = has_seq;
    m.body.fetch_results.seq_number = seq;
    return finish(&m, w, PL_OK);
}

int pl_ft_req_notif_sent(uint64_t id, uint64_t seq, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_NOTIFICATION_SENT);
    m.body.notification_sent.seq_number = seq;
    return finish(&m, w, PL_OK);
}

int pl_ft_req_delete_otks(uint64_t id, const uint8_t *raw, size_t len, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_DELETE_OTKS);
    return finish(&m, w, pl_fx_set_blob(&m.body.delete_otks.request, raw, len));
}

int pl_ft_req_configure_eim(uint64_t id, const uint8_t *raw, size_t len, struct pl_wr *w)
{
    provline_fixture_Msg m;
    msg_init(&m, id, PL_FX_CONFIGURE_EIM);
    return finish(&m, w, pl_fx_set_blob(&m.body.configure_initial_eim.request, raw, len));
}

int pl_ft_add_initial_eim(const char *eim_id, struct pl_wr *w)
{
    struct pl_sgp32_add_initial_eim_request *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return PL_ERR_NOMEM;
    q->n_eims = 1;
    q->eims[0].eim_id.p = (const uint8_t *)eim_id;
    q->eims[0].eim_id.len = strlen(eim_id);
    q->eims[0].has_counter = true;
    q->eims[0].counter = 0;
    int rc = pl_sgp32_add_initial_eim_request_encode(q, w);
    free(q);
    return rc;
}

/* -------------------------------------------------------------- counting card ---- */

static bool package_tag(const uint8_t *p, size_t n)
{
    if (n >= 2 && ((p[0] == 0xFF && p[1] == 0x71) || (p[0] == 0xBF && p[1] == 0x36)))
        return true;
    return n >= 1 && (p[0] == 0xA0 || p[0] == 0xA1 || p[0] == 0xA2 || p[0] == 0xA3
                      || p[0] == 0x86 || p[0] == 0x87 || p[0] == 0x88);
}

int pl_ft_card_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                        size_t rcap, size_t *rlen)
{
    struct pl_ft_card *c = user;
    c->apdus++;
    if (c->fail_at > 0 && (size_t)c->fail_at == c->apdus)
        return PL_ERR_IO;
    if (clen >= 5 && capdu[1] == PL_INS_STORE_DATA) {
        c->store_data++;
        const uint8_t *data = capdu + 5;
        size_t n = clen - 5;
        if (capdu[3] == 0) /* P2 = block 0: a new command */
            c->in_package = package_tag(data, n);
        if (c->in_package)
            c->package_blocks++;
    }
    return pl_euicc_transmit(c->e, capdu, clen, rapdu, rcap, rlen);
}

/* -------------------------------------------------------------- child process ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int pl_ft_vdevice_start(struct pl_ft_proc *p, const char *const *argv, const char *err_path,
                        int wait_ms)
{
    char bin[1024];
    const char *dir = getenv("PL_BIN_DIR");
    int pfd[2];
    size_t argc = 0;

    memset(p, 0, sizeof(*p));
    p->pid = -1;
    p->out_fd = -1;
    snprintf(p->err_path, sizeof(p->err_path), "%s", err_path);
    snprintf(bin, sizeof(bin), "%s/provline-vdevice", dir ? dir : PL_TEST_BINDIR "/bin");
    while (argv[argc] != NULL)
        argc++;
    char **av = calloc(argc + 1, sizeof(*av));
    if (av == NULL || pipe(pfd) != 0) {
        free(av);
        return -1;
    }
    av[0] = bin;
    for (size_t i = 1; i < argc; i++)
        av[i] = (char *)(uintptr_t)argv[i];
    pid_t pid = fork();
    if (pid < 0) {
        free(av);
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        int efd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (efd >= 0) {
            dup2(efd, 2);
            close(efd);
        }
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(bin, av);
        _exit(127);
    }
    free(av);
    close(pfd[1]);
    p->pid = pid;
    p->out_fd = pfd[0];
    /* Wait for "READY ...\n". */
    size_t n = 0;
    uint64_t end = now_ms() + (uint64_t)wait_ms;
    while (n + 1 < sizeof(p->ready)) {
        uint64_t t = now_ms();
        if (t >= end)
            break;
        struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(end - t));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t got = read(p->out_fd, p->ready + n, 1);
        if (got <= 0)
            break;
        if (p->ready[n] == '\n') {
            p->ready[n] = '\0';
            if (strncmp(p->ready, "READY", 5) == 0)
                return 0;
            n = 0;
            continue;
        }
        n++;
    }
    p->ready[n] = '\0';
    (void)pl_ft_proc_stop(p, 1000);
    return -1;
}

int pl_ft_proc_wait(struct pl_ft_proc *p, int wait_ms, int *status)
{
    uint64_t end = now_ms() + (uint64_t)wait_ms;
    if (p->pid <= 0)
        return -1;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = -1;
            if (p->out_fd >= 0)
                close(p->out_fd);
            p->out_fd = -1;
            if (status)
                *status = st;
            return 0;
        }
        if (r < 0 || now_ms() >= end)
            return -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int pl_ft_proc_stop(struct pl_ft_proc *p, int wait_ms)
{
    int st = 0;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    if (pl_ft_proc_wait(p, wait_ms, &st) == 0)
        return st;
    kill(p->pid, SIGKILL);
    if (pl_ft_proc_wait(p, 5000, &st) == 0)
        return st;
    return -1;
}

int pl_ft_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}
