#pragma once
// Fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL) end with one line on stderr
// (fatal_signal.cpp says which end how).

namespace resnet::cli {

void install_fatal_signal_handlers();

}  // namespace resnet::cli
