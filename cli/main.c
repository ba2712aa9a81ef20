/* provline: the umbrella command. The CLI owns process-wide state (stdout, exit). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct pl_cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct pl_cli_cmd cmds[] = {
    {"demo", pl_cli_demo, "run a whole provisioning line on this machine (embedded defaults)"},
    {"pki", pl_cli_pki, "test PKI: `pki init DIR` creates CI, EUM, SM-DPf, eIM and TLS keys/certs"},
    {"audit", pl_cli_audit, "station audit trail: `audit verify FILE` recomputes the hash chain"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: provline <command> [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(out, "  %-8s %s\n", cmds[i].name, cmds[i].help);
    fprintf(out, "  %-8s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("provline 0.1.0 (SGP.22 v2.5 BPP, SGP.32 v1.2, SGP.41 v1.0 IFPP profile)\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "provline: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
