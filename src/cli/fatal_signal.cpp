// The last line of a crash. oneDNN can fault while it builds a primitive's code when the
// address space runs out under `ulimit -v` (reproduced: a resnet20 run at 300 MB, inside
// dnnl_primitive_create); that is memory running out, so it ends like any other
// out-of-memory: one line and status 1. Any other fault is a bug: one line naming the
// signal, then the default action (a core dump where enabled).

#include "fatal_signal.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>

namespace resnet::cli {

namespace {

void write_line(const char* text) {
  // write(2) only: async-signal-safe.
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

void on_fatal_signal(int sig) {
  rlimit limit{};
  const bool address_space_limited =
      ::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
  if (address_space_limited && (sig == SIGSEGV || sig == SIGBUS)) {
    write_line(
        "resnet: error: out of memory: the process faulted with its address space limited "
        "(ulimit -v); raise the limit or use a smaller --batch\n");
    ::_exit(1);
  }
  write_line(sig == SIGSEGV  ? "resnet: internal error: segmentation fault\n"
             : sig == SIGBUS ? "resnet: internal error: bus error\n"
             : sig == SIGFPE ? "resnet: internal error: arithmetic exception\n"
                             : "resnet: internal error: illegal instruction\n");
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_fatal_signal_handlers() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return;  // the sanitizers' own handlers report faults with their stacks
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return;
#endif
#endif
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  // The handler runs on its own stack: a fault from stack exhaustion still gets its line.
  static char alternate_stack[64 * 1024];
  stack_t stack{};
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof alternate_stack;
  if (::sigaltstack(&stack, nullptr) == 0) action.sa_flags = SA_ONSTACK;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::sigaction(sig, &action, nullptr);
}

}  // namespace resnet::cli
