// Detection over the ranks of a distributed job (mpirun, srun). Each rank reads the
// embeddings of a share of the requests, the requests are moved so that each account's sit
// on one rank, and the request stages (order, background, request index, content profiles)
// run on the ranks' shares with their data exchanged by collectives; the account stages then
// run on rank 0, which alone holds no embeddings by then. The result equals one process's
// on the same file and options (the request index's cells are searched by the same code
// whichever rank owns them).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "ringscan/io.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/process_group.hpp"

namespace ringscan {

/// How the ranks read the input: its declared shapes, and its datasets with the embeddings of
/// a share of the requests only (LoadOptions' embedding range).
struct DistributedInput {
  std::string path;
  std::function<InputShape()> shape;
  std::function<Dataset(const LoadOptions&)> load;
};

/// Options a distributed run cannot honour yet; throws InvalidInput naming them.
void check_distributed_options(const DetectOptions& options);

/// One rank's estimated peak memory for `shape` over `ranks` ranks: its share of the
/// embeddings and of the request index, the bookkeeping every rank holds, and on rank 0 the
/// account stages.
int64_t estimate_distributed_memory(const InputShape& shape, const DetectOptions& options, int ranks);

/// detect_rings over every rank of `group` (each calls it): the result on rank 0, with the
/// bytes each stage exchanged and each rank's peak memory among its statistics; an empty
/// result elsewhere. A failure on any rank throws on every rank, naming the rank.
DetectionResult detect_rings_distributed(ProcessGroup& group, const DistributedInput& input,
                                         const DetectOptions& options, const Context& ctx);

}  // namespace ringscan
