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

/// Look-alikes of generated data (/accounts/role) that were reported in rings.
struct LookalikeAccusations {
  int64_t team_accounts = 0;          ///< company-team members in reported rings
  int64_t crowd_accounts = 0;         ///< trending-topic crowd members in reported rings
  int64_t viral_sharer_accounts = 0;  ///< viral-prompt sharers in reported rings
  int64_t template_app_accounts = 0;  ///< users of an app on one public prompt template in reported rings
  int64_t proxy_customer_accounts = 0;  ///< ordinary customers of a proxy service in reported rings
  int64_t other_innocent_accounts = 0;  ///< other accounts of no planted ring in reported rings
  int64_t mostly_innocent_rings = 0;  ///< reported rings of which half or more are in no planted ring
};

/// Counts, for generated data, the look-alikes each reported ring holds; `roles` [A] holds
/// AccountRole values (generate.hpp) aligned with `reported_ring` and `truth_label`.
LookalikeAccusations lookalike_accusations(const std::vector<int64_t>& reported_ring,
                                           const std::vector<int64_t>& truth_label,
                                           const std::vector<int64_t>& roles);

/// Compares reported ring ids with planted labels, both [A] aligned on the same accounts.
/// -1 means "not in a ring" on both sides; for the ARI every -1 account is its own singleton.
Evaluation evaluate_rings(const std::vector<int64_t>& reported_ring,
                          const std::vector<int64_t>& truth_label);

}  // namespace ringscan
