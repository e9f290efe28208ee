#pragma once
// The communicator of the process's run: MPI's world when this build has MPI (CMake found
// it) and the process was started by an MPI launcher (mpirun), otherwise the single
// process. This file and world.cpp are the only ones that know about MPI.

#include <memory>
#include <string>

#include "resnet/dist/communicator.h"

namespace resnet::mpi {

// Initializes MPI when launched by mpirun; every collective waits at most
// `timeout_seconds` before aborting every rank. Finalizes MPI when destroyed.
std::unique_ptr<dist::Communicator> world(double timeout_seconds);

// For `resnet --version`: "MPI (Open MPI v4.1.4)" or "no MPI".
std::string support();

}  // namespace resnet::mpi
