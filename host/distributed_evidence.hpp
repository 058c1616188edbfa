// The account stages' work spread over the ranks of a distributed run: rank 0 runs the
// account stages and hands every other rank a share of the account index's join (top-level
// cells) and of each batch of candidate pairs' evidence (contiguous, so the evidence comes
// back in the order one process computes it), and asks them for the rows of requests they
// hold (the ring indicators' exemplars).
#pragma once
#include <cstdint>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/process_group.hpp"
#include "ringscan/ring_indicators.hpp"
#include "self_join.hpp"
#include "stage_variants.hpp"

namespace ringscan {

class DistributedPairEvaluation {
 public:
  DistributedPairEvaluation(ProcessGroup& group, const Context& ctx) : group_(group), ctx_(ctx) {}

  /// Rank 0: an evaluator that sends the profiles and calibration to the other ranks (once),
  /// then splits each call's pairs among all ranks. A rank's failure is thrown here, of its
  /// kind, naming the rank. The profiles and calibration must outlive the evaluator.
  PairEvaluator evaluator(const AccountProfiles& profiles, const EvidenceCalibration& calibration);
  /// Rank 0: the account index's join, its top-level cells spread over all ranks
  /// (ivf_self_join_share), with the pairs one process finds. For kNN joins that keep every
  /// neighbour (the account index's); a rank's failure is thrown naming the rank.
  SelfJoin account_join();
  /// This rank's unit rows of canonical requests [first, first + rows->size() / dim), which
  /// rank 0 may ask for through request_rows; they must outlive serve() and the run.
  void hold_rows(const std::vector<float>* rows, int64_t first, int64_t dim) {
    rows_ = rows;
    rows_first_ = first;
    dim_ = dim;
  }
  /// Rank 0: the rows of canonical requests (ascending, distinct) from the ranks that hold
  /// them (hold_rows), in the requests' order. A rank's failure is thrown naming the rank.
  RequestRows request_rows();
  /// Rank 0: lets the other ranks go; called once the account stages are over, also when
  /// they failed (not when every rank already stopped together).
  void release();
  /// The other ranks: evaluate what rank 0 sends until it lets them go. Waits without
  /// spinning meanwhile. A failure is sent to rank 0, which reports it.
  void serve();

 private:
  ProcessGroup& group_;
  const Context& ctx_;
  bool sent_state_ = false;
  const std::vector<float>* rows_ = nullptr;
  int64_t rows_first_ = 0, dim_ = 0;
  /// The rows of `requests` (ascending) this rank holds, one after another.
  Bytes held_rows(const std::vector<int64_t>& requests) const;
};

}  // namespace ringscan
