/* Benchmark: a whole line on this machine (`provline demo`: reference Key Maker, one station,
 * virtual devices half on pty serial, half on CoAP), measured from the station's side:
 *  - CPU: the station's CPU time per device against the time the device's package takes on
 *    the wire of the fastest fixture link (921600 baud, 8N1 = 92 160 B/s; ARCHITECTURE.md
 *    §6; the profile's size is used, a lower bound of the package's). The ratio says how many fixtures one station core keeps busy at full wire speed:
 *    it must be well above 1 so the fixtures, not the station, limit the line.
 *  - memory: the station's peak RSS (getrusage(2) ru_maxrss, as `provline demo` reports it
 *    from wait4) against a budget of 64 MiB for a line PC (docs/station.8.md): ratio below 1.
 *  - the line's wall-clock throughput, for the record (bound by the pty pacing and the
 *    machine, not a limit).
 * Usage: bench_line [devices per run (2..20: one TS.48 profile each, default 8)] [runs
 * (default 3)]
 * The programs are taken from ../bin next to this binary (build-release/bin). */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WIRE_BYTES_PER_S (921600.0 / 10.0) /* 8N1 */
#define RSS_BUDGET_KIB   (64.0 * 1024.0)
#define RUNS_MAX         16

struct run {
    double wall_s, dev_per_s, cpu_s, rss_kib, pkg_bytes;
    unsigned devices;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs the demo once and reads its report lines. 0 on success. */
static int one_run(const char *provline, unsigned n, struct run *r)
{
    char cmd[PATH_MAX + 128], line[1024];
    double user = -1, sys = -1, bytes = 0;
    unsigned ok = 0, sized = 0;
    FILE *p;

    memset(r, 0, sizeof(*r));
    snprintf(cmd, sizeof(cmd), "'%s' demo --devices %u --coap %u 2>&1", provline, n, n / 2);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    while (fgets(line, sizeof(line), p) != NULL) {
        const char *s;
        if ((s = strstr(line, "station finished in ")) != NULL)
            (void)sscanf(s, "station finished in %lf s (%lf devices/s)", &r->wall_s,
                         &r->dev_per_s);
        else if ((s = strstr(line, "station peak RSS: ")) != NULL)
            (void)sscanf(s, "station peak RSS: %lf KiB, CPU %lf s user + %lf s system",
                         &r->rss_kib, &user, &sys);
        else if (strstr(line, "  OK   ") != NULL && (s = strstr(line, " B)")) != NULL) {
            const char *b = s;
            while (b > line && b[-1] != '(')
                b--;
            bytes += strtod(b, NULL);
            sized++;
        }
        if (strstr(line, "line OK") != NULL)
            ok = 1;
    }
    if (pclose(p) != 0 || !ok || user < 0 || sys < 0 || sized == 0 || r->wall_s <= 0)
        return -1;
    r->cpu_s = user + sys;
    r->devices = n;
    r->pkg_bytes = bytes / sized;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 8u;
    unsigned runs = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 3u;
    char self[PATH_MAX], provline[PATH_MAX + 32];
    double cpu[RUNS_MAX], rss[RUNS_MAX], wall[RUNS_MAX], dps[RUNS_MAX], pkg = 0;
    ssize_t len;

    if (n < 2 || n > 20 || runs < 1 || runs > RUNS_MAX) {
        fprintf(stderr, "usage: bench_line [devices 2..20] [runs 1..%d]\n", RUNS_MAX);
        return 2;
    }
    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return 1;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return 1;
    *slash = '\0';
    snprintf(provline, sizeof(provline), "%s/../bin/provline", self);

    for (unsigned i = 0; i < runs; i++) {
        struct run r;
        if (one_run(provline, n, &r) != 0) {
            fprintf(stderr, "bench_line: run %u: the demo failed (run '%s demo' to see why)\n",
                    i + 1, provline);
            return 1;
        }
        cpu[i] = r.cpu_s / n;
        rss[i] = r.rss_kib;
        wall[i] = r.wall_s;
        dps[i] = r.dev_per_s;
        pkg = r.pkg_bytes;
    }
    qsort(cpu, runs, sizeof(double), cmp_double);
    qsort(rss, runs, sizeof(double), cmp_double);
    qsort(wall, runs, sizeof(double), cmp_double);
    qsort(dps, runs, sizeof(double), cmp_double);
    double wire_s = pkg / WIRE_BYTES_PER_S;
    double cpu_med = cpu[runs / 2], rss_max = rss[runs - 1];

    printf("line of %u devices (%u serial, %u CoAP), %u runs, medians unless said\n", n,
           n - n / 2, n / 2, runs);
    printf("station wall time           %8.2f s     (%.2f devices/s)\n", wall[runs / 2],
           dps[runs / 2]);
    /* The profile's size: its package (BPP, envelope, framing) is larger, so the wire time
     * here is a lower bound and the ratio a conservative one. */
    printf("station CPU per device      %8.1f ms    profile %.0f B >= %.1f ms on a 921600-baud "
           "wire  =  %6.1fx line rate\n",
           cpu_med * 1e3, pkg, wire_s * 1e3, cpu_med > 0 ? wire_s / cpu_med : 0.0);
    printf("station peak RSS (max)      %8.1f MiB   budget %.0f MiB                        "
           "=  %6.3fx budget\n",
           rss_max / 1024.0, RSS_BUDGET_KIB / 1024.0, rss_max / RSS_BUDGET_KIB);
    return 0;
}
