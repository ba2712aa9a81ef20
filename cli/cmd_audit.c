/* `provline audit`: the station audit trail (station/audit.h, docs/audit-trail.md).
 * reference/IFPP.md §6.3 (per-station hash chain h_n = SHA-256(h_{n-1} || record_n));
 * ARCHITECTURE.md §5 ("any edit or deletion is detected by verify").
 *
 *   provline audit verify FILE [--keymaker-cert CERT.der]
 *       recomputes the chain of FILE (and its FILE.head sidecar, checkpoints, anchor);
 *       prints "OK ..." with counts and exits 0, or "FAIL ..." naming the first bad record
 *       and exits 1. With --keymaker-cert every checkpoint must carry a valid Key Maker
 *       signature by that certificate's key (the reference Key Maker signs with its SM-DPf
 *       key: pass its CERT.DPpb, the PKI's dpf.der; docs/station-keymaker-protocol.md §5.5).
 *       Usage errors exit 2. */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/x509.h"
#include "provline/station/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CERT_FILE_MAX 8192u

static void usage(FILE *out)
{
    fprintf(out, "usage: provline audit verify FILE [--keymaker-cert CERT.der]\n");
}

static int load_key(const char *path, struct pl_eckey **key)
{
    uint8_t buf[CERT_FILE_MAX];
    struct pl_cert *cert = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return PL_ERR_IO;
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool more = !feof(f);
    fclose(f);
    if (n == 0 || more)
        return PL_ERR_CONFIG;
    int rc = pl_cert_parse(buf, n, &cert);
    if (rc == PL_OK)
        rc = pl_cert_public_key(cert, key);
    pl_cert_free(cert);
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    const char *file = NULL, *cert = NULL;
    struct pl_audit_verify_opts opts = {NULL};
    struct pl_eckey *key = NULL;
    struct pl_audit_report rep;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keymaker-cert") == 0 && i + 1 < argc) {
            cert = argv[++i];
        } else if (argv[i][0] == '-' || file != NULL) {
            usage(stderr);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (file == NULL) {
        usage(stderr);
        return 2;
    }
    if (cert != NULL) {
        int rc = load_key(cert, &key);
        if (rc) {
            fprintf(stderr, "provline audit verify: %s: %s\n", cert, pl_strerror(rc));
            return 1;
        }
        opts.keymaker_key = key;
    }
    int rc = pl_audit_verify_ex(file, &opts, &rep);
    pl_eckey_free(key);
    if (rc) {
        fprintf(stderr, "provline audit verify: %s: cannot read: %s\n", file, pl_strerror(rc));
        return 1;
    }
    if (!rep.ok) {
        printf("FAIL %s: first bad record seq=%llu (%s): %s\n", file,
               (unsigned long long)rep.bad_seq, pl_audit_fault_name(rep.fault), rep.detail);
        return 1;
    }
    char station[2 * PL_AUDIT_STATION_KEY_LEN + 1] = "-";
    if (rep.has_station_key
        && pl_hex_encode(rep.station_key, PL_AUDIT_STATION_KEY_LEN, station, sizeof(station))
               != PL_OK)
        snprintf(station, sizeof(station), "-");
    printf("OK %s: records=%llu first=%llu last=%llu anchor=%llu head=%llu checkpoints=%llu "
           "checkpoints_before_anchor=%llu signatures_verified=%llu signatures_unchecked=%llu "
           "station_key=%s\n",
           file, (unsigned long long)rep.records, (unsigned long long)rep.first_seq,
           (unsigned long long)rep.last_seq, (unsigned long long)rep.anchor_seq,
           (unsigned long long)rep.head_seq, (unsigned long long)rep.checkpoints,
           (unsigned long long)rep.checkpoints_before_anchor,
           (unsigned long long)rep.signatures_verified,
           (unsigned long long)rep.signatures_unchecked, station);
    return 0;
}

int pl_cli_audit(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    fprintf(stderr, "provline audit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
