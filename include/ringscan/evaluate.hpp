// Quality of a detection against ground truth.
#pragma once
#include <cstdint>
#include <vector>

namespace ringscan {

/// How one planted ring was matched.
struct RingMatch {
  int64_t truth_label = 0;      ///< planted ring id
  int64_t truth_size = 0;
  int64_t best_ring = -1;       ///< reported ring with the highest Jaccard, -1 if none
  double jaccard = 0;
  bool found = false;           ///< jaccard >= 0.5
};

struct Evaluation {
  int64_t planted_rings = 0, reported_rings = 0, found_rings = 0;
  double ring_recall = 0;        ///< found / planted (1 if nothing planted)
  double account_precision = 0;  ///< of accounts reported in rings, share truly in rings
  double account_recall = 0;     ///< of accounts truly in rings, share reported
  double adjusted_rand_index = 0;  ///< between reported rings and planted rings (-1 = singleton)
  int64_t false_ring_accounts = 0; ///< reported accounts with no planted ring
  std::vector<RingMatch> matches;
};

/// Compares reported ring ids with planted labels, both [A] aligned on the same accounts.
/// -1 means "not in a ring" on both sides; for the ARI every -1 account is its own singleton.
Evaluation evaluate_rings(const std::vector<int64_t>& reported_ring,
                          const std::vector<int64_t>& truth_label);

}  // namespace ringscan
