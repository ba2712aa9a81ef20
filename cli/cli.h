/* The `provline` umbrella command: one function per sub-command family.
 * Each takes the arguments after its own name (argv[0] = the sub-command) and
 * returns a process exit status (0 ok, 1 failure, 2 usage). */
#ifndef PROVLINE_CLI_H
#define PROVLINE_CLI_H

int pl_cli_demo(int argc, char **argv);
int pl_cli_pki(int argc, char **argv);
int pl_cli_audit(int argc, char **argv);

#endif
