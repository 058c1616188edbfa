// The request index's plan and parts (near_duplicate_pairs), shared by the one-process index
// and the distributed one (distributed_detect.cpp), so both search the same way and find
// the same pairs.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "ringscan/pipeline.hpp"
#include "self_join.hpp"

namespace faiss {
struct PCAMatrix;
}

namespace ringscan {

/// How R requests of D dimensions are searched.
struct RequestIndexPlan {
  float tau = 0;          ///< the lowest cosine a pair is kept at (join_similarity)
  bool exact = true;      ///< one cell: every pair compared
  bool project = false;   ///< searched in a PCA projection of `reduced` dimensions
  int64_t reduced = 0;    ///< search width (D when not projected)
  float radius = 0;       ///< squared distance candidates are taken within
  int64_t cap = 0;        ///< neighbours a request keeps
  NeighbourTiers tiers;   ///< below the near-duplicate cosine, a few neighbours suffice
};
RequestIndexPlan request_index_plan(int64_t R, int64_t D, const DetectOptions& options, const SelfJoin& join);

/// The filter that verifies a candidate in full dimension: cosine of the unit rows
/// rows[q] and rows[other] [.. x D], kept at `tau` or above, valued by it.
JoinFilter verified_cosine(const float* unit_rows, int64_t D, float tau);

/// Rows i * step of n, at most `want`: the projection's training sample.
std::vector<int64_t> strided_positions(int64_t n, int64_t want);
/// Rows the request projection trains on (at most this many).
constexpr int64_t kProjectionSample = 65536;

/// The request index's PCA projection: trained on a sample, applied to rows in batches.
class RequestProjection {
 public:
  RequestProjection(int64_t dim, int64_t reduced);
  ~RequestProjection();
  void train(const float* sample, int64_t n);
  /// out [n x reduced] = the projection of rows [n x dim], in parallel batches.
  void apply(const float* rows, int64_t n, float* out) const;
  /// The trained projection as bytes, and back (a distributed index trains it once).
  std::vector<uint8_t> saved() const;
  void load(const std::vector<uint8_t>& bytes);

 private:
  std::unique_ptr<faiss::PCAMatrix> pca_;
  int64_t dim_, reduced_;
};

}  // namespace ringscan
