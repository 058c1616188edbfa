// Builds without MPI (RINGSCAN_MPI=OFF, or no MPI found): no process is ever in a group,
// and one started by mpirun or srun as one of several says so rather than run the whole
// detection on every rank, each writing the same output.
#include <cstdlib>
#include <string>

#include "ringscan/error.hpp"
#include "ringscan/process_group.hpp"

namespace ringscan {

std::unique_ptr<ProcessGroup> launched_process_group(int*, char***) {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* size = std::getenv(name);
    if (size != nullptr && std::atoi(size) > 1)
      throw InvalidInput(std::string("started as one of ") + size +
                         " ranks, but this build of ringscan has no MPI (configure with -DRINGSCAN_MPI=ON and "
                         "an MPI library installed, e.g. Debian's libopenmpi-dev)");
  }
  return nullptr;
}

bool built_with_mpi() { return false; }

}  // namespace ringscan
