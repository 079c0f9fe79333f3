/* The test node's pod sandbox: sleeps forever, exits 0 on SIGINT/SIGTERM, reaps zombies on SIGCHLD. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigdown(int signo) { (void)signo; _exit(0); }
static void sigreap(int signo) { (void)signo; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') { puts("pause uspace-test 1"); return 0; }
  if (getpid() != 1) fprintf(stderr, "Warning: pause should be the first process\n");
  struct sigaction sa = {0};
  sa.sa_handler = sigdown;
  if (sigaction(SIGINT, &sa, NULL) < 0) return 1;
  if (sigaction(SIGTERM, &sa, NULL) < 0) return 2;
  struct sigaction sr = {0};
  sr.sa_handler = sigreap;
  sr.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &sr, NULL) < 0) return 3;
  for (;;) pause();
  return 42;
}
