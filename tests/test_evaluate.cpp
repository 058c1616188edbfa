// evaluate_rings against hand-computed figures. ARI values are worked out in the comments
// with the pair-count formula: ARI = (S - E) / (M - E), S = sum C(n_ij, 2) over cells,
// a = sum C(rows, 2), b = sum C(cols, 2), E = a b / C(n, 2), M = (a + b) / 2; accounts with
// label -1 are singletons and contribute nothing to S, a or b.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ringscan/error.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"

namespace {

using ringscan::evaluate_rings;
using ringscan::Evaluation;
using V = std::vector<int64_t>;

TEST(Evaluate, PerfectMatchWithArbitraryIds) {
  // Ids differ between the sides (and are large): only the partition matters.
  const V reported{0, 0, 0, 1, 1, 1, -1, -1};
  const V truth{5000000000LL, 5000000000LL, 5000000000LL, 7, 7, 7, -1, -1};
  const Evaluation ev = evaluate_rings(reported, truth);
  EXPECT_EQ(ev.planted_rings, 2);
  EXPECT_EQ(ev.reported_rings, 2);
  EXPECT_EQ(ev.found_rings, 2);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.adjusted_rand_index, 1.0);
  EXPECT_EQ(ev.false_ring_accounts, 0);
  ASSERT_EQ(ev.matches.size(), 2u);
  // Sorted by planted label.
  EXPECT_EQ(ev.matches[0].truth_label, 7);
  EXPECT_EQ(ev.matches[0].truth_size, 3);
  EXPECT_EQ(ev.matches[0].best_ring, 1);
  EXPECT_DOUBLE_EQ(ev.matches[0].jaccard, 1.0);
  EXPECT_TRUE(ev.matches[0].found);
  EXPECT_EQ(ev.matches[1].truth_label, 5000000000LL);
  EXPECT_EQ(ev.matches[1].best_ring, 0);
  EXPECT_TRUE(ev.matches[1].found);
}

TEST(Evaluate, OneRingMissed) {
  const V truth{0, 0, 0, 1, 1, 1, -1, -1};
  const V reported{2, 2, 2, -1, -1, -1, -1, -1};
  const Evaluation ev = evaluate_rings(reported, truth);
  EXPECT_EQ(ev.planted_rings, 2);
  EXPECT_EQ(ev.reported_rings, 1);
  EXPECT_EQ(ev.found_rings, 1);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 0.5);
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 0.5);
  EXPECT_EQ(ev.false_ring_accounts, 0);
  ASSERT_EQ(ev.matches.size(), 2u);
  EXPECT_EQ(ev.matches[0].best_ring, 2);
  EXPECT_TRUE(ev.matches[0].found);
  EXPECT_EQ(ev.matches[1].truth_label, 1);
  EXPECT_EQ(ev.matches[1].best_ring, -1);
  EXPECT_DOUBLE_EQ(ev.matches[1].jaccard, 0.0);
  EXPECT_FALSE(ev.matches[1].found);
  // n = 8, C(8,2) = 28; S = C(3,2) = 3; a = 3; b = 3 + 3 = 6; E = 18/28 = 9/14; M = 9/2.
  // ARI = (3 - 9/14) / (9/2 - 9/14) = (33/14) / (54/14) = 11/18.
  EXPECT_NEAR(ev.adjusted_rand_index, 11.0 / 18.0, 1e-12);
}

TEST(Evaluate, RingSplitInTwoHalvesIsFound) {
  // A planted ring of 8 reported as two rings of 4: Jaccard 4/8 = 0.5 for each, which
  // counts as found; the tie goes to the smaller reported id.
  const V truth{0, 0, 0, 0, 0, 0, 0, 0, -1, -1};
  const V reported{4, 4, 4, 4, 3, 3, 3, 3, -1, -1};
  const Evaluation ev = evaluate_rings(reported, truth);
  EXPECT_EQ(ev.planted_rings, 1);
  EXPECT_EQ(ev.reported_rings, 2);
  EXPECT_EQ(ev.found_rings, 1);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 1.0);
  ASSERT_EQ(ev.matches.size(), 1u);
  EXPECT_EQ(ev.matches[0].truth_size, 8);
  EXPECT_EQ(ev.matches[0].best_ring, 3);
  EXPECT_DOUBLE_EQ(ev.matches[0].jaccard, 0.5);
  EXPECT_TRUE(ev.matches[0].found);
  // n = 10, C(10,2) = 45; S = 6 + 6 = 12; a = 12; b = 28; E = 336/45; M = 20.
  // ARI = (540 - 336) / (900 - 336) = 204/564 = 17/47.
  EXPECT_NEAR(ev.adjusted_rand_index, 17.0 / 47.0, 1e-12);
}

TEST(Evaluate, RingSplitInThirdsIsNotFound) {
  const V truth{1, 1, 1, 1, 1, 1, 1, 1, 1};
  const V reported{0, 0, 0, 1, 1, 1, 2, 2, 2};
  const Evaluation ev = evaluate_rings(reported, truth);
  EXPECT_EQ(ev.found_rings, 0);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 0.0);
  ASSERT_EQ(ev.matches.size(), 1u);
  EXPECT_NEAR(ev.matches[0].jaccard, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(ev.matches[0].best_ring, 0);
  EXPECT_FALSE(ev.matches[0].found);
  // Both sides have the same account set in rings.
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 1.0);
}

TEST(Evaluate, FalseRingReported) {
  const V truth{0, 0, 0, -1, -1, -1, -1, -1};
  const V reported{0, 0, 0, 1, 1, 1, -1, -1};
  const Evaluation ev = evaluate_rings(reported, truth);
  EXPECT_EQ(ev.planted_rings, 1);
  EXPECT_EQ(ev.reported_rings, 2);
  EXPECT_EQ(ev.found_rings, 1);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 1.0);
  EXPECT_EQ(ev.false_ring_accounts, 3);
  EXPECT_DOUBLE_EQ(ev.account_precision, 0.5);
  EXPECT_DOUBLE_EQ(ev.account_recall, 1.0);
  // Mirror image of OneRingMissed: a = 6, b = 3, S = 3, same ARI 11/18.
  EXPECT_NEAR(ev.adjusted_rand_index, 11.0 / 18.0, 1e-12);
}

TEST(Evaluate, AdjustedRandIndexKnownValue) {
  // Textbook example (the value scikit-learn gives, no -1 involved):
  // truth {0,1,2},{3,4,5}; reported {0,1},{2,3},{4,5}.
  // Cells 2,1,1,2: S = 2; a = 3; b = 6; C(6,2) = 15; E = 18/15 = 1.2; M = 4.5.
  // ARI = 0.8 / 3.3 = 8/33.
  const V truth{0, 0, 0, 1, 1, 1};
  const V reported{0, 0, 1, 1, 2, 2};
  EXPECT_NEAR(evaluate_rings(reported, truth).adjusted_rand_index, 8.0 / 33.0, 1e-12);
}

TEST(Evaluate, AdjustedRandIndexTreatsUnlabelledAsSingletons) {
  // truth {0,1},{2,3}, 4 and 5 alone; reported {0,1,2}, the rest alone.
  // S = C(2,2) = 1; a = 3; b = 1 + 1 = 2; C(6,2) = 15; E = 6/15 = 0.4; M = 2.5.
  // ARI = 0.6 / 2.1 = 2/7. (Were -1 one cluster, the value would be 8/33 instead.)
  const V truth{0, 0, 1, 1, -1, -1};
  const V reported{0, 0, 0, -1, -1, -1};
  EXPECT_NEAR(evaluate_rings(reported, truth).adjusted_rand_index, 2.0 / 7.0, 1e-12);
}

TEST(Evaluate, AdjustedRandIndexBelowChance) {
  // truth {0,1},{2,3}; reported {0,2},{1,3}: S = 0; a = b = 2; E = 4/6; M = 2.
  // ARI = (0 - 2/3) / (2 - 2/3) = -1/2.
  const V truth{0, 0, 1, 1};
  const V reported{0, 1, 0, 1};
  EXPECT_NEAR(evaluate_rings(reported, truth).adjusted_rand_index, -0.5, 1e-12);
}

TEST(Evaluate, AdjustedRandIndexMatchesPairCountingByBruteForce) {
  // O(n^2) reference: classify every account pair as together/apart on each side (a -1
  // account is never together with anyone) and apply ARI = (S - E) / (M - E) to the counts.
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(-1, 6);
  const int n = 300;
  V truth(n), reported(n);
  for (int i = 0; i < n; ++i) {
    truth[i] = pick(rng);
    // Reported agrees with the truth two times in three, so the ARI is well above zero.
    reported[i] = (rng() % 3 != 0) ? truth[i] : pick(rng);
  }
  double both = 0, in_reported = 0, in_truth = 0, total = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      const bool r = reported[i] >= 0 && reported[i] == reported[j];
      const bool t = truth[i] >= 0 && truth[i] == truth[j];
      both += r && t;
      in_reported += r;
      in_truth += t;
      total += 1;
    }
  }
  const double expected = in_reported * in_truth / total;
  const double ari = (both - expected) / (0.5 * (in_reported + in_truth) - expected);
  EXPECT_NEAR(evaluate_rings(reported, truth).adjusted_rand_index, ari, 1e-12);
}

TEST(Evaluate, EmptyInput) {
  const Evaluation ev = evaluate_rings({}, {});
  EXPECT_EQ(ev.planted_rings, 0);
  EXPECT_EQ(ev.reported_rings, 0);
  EXPECT_EQ(ev.found_rings, 0);
  EXPECT_EQ(ev.false_ring_accounts, 0);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.adjusted_rand_index, 1.0);
  EXPECT_TRUE(ev.matches.empty());
}

TEST(Evaluate, NoRingsOnEitherSide) {
  // All singletons on both sides: identical partitions, nothing planted, nothing accused.
  const Evaluation ev = evaluate_rings(V(5, -1), V(5, -1));
  EXPECT_DOUBLE_EQ(ev.ring_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 1.0);
  EXPECT_DOUBLE_EQ(ev.adjusted_rand_index, 1.0);
}

TEST(Evaluate, NothingReportedButRingsPlanted) {
  const Evaluation ev = evaluate_rings(V(6, -1), V{0, 0, 0, -1, -1, -1});
  EXPECT_EQ(ev.found_rings, 0);
  EXPECT_DOUBLE_EQ(ev.ring_recall, 0.0);
  // No account accused: precision is 1 by definition; the miss shows in the recall.
  EXPECT_DOUBLE_EQ(ev.account_precision, 1.0);
  EXPECT_DOUBLE_EQ(ev.account_recall, 0.0);
  // S = 0, a = 0, b = 3: E = 0, M = 1.5, ARI = 0.
  EXPECT_DOUBLE_EQ(ev.adjusted_rand_index, 0.0);
}

TEST(Evaluate, MisalignedInputsAreRejected) {
  EXPECT_THROW(evaluate_rings(V{0, 0}, V{0}), ringscan::InvalidInput);
}

}  // namespace

TEST(LookalikeAccusations, CountsLookalikesByRoleAndMostlyInnocentRings) {
  using R = ringscan::AccountRole;
  // Ring 0: two true members and a team member. Ring 1: a crowd member, a viral sharer and
  // one true member (two of three innocent). Account 6 is a team member left alone.
  const std::vector<int64_t> reported = {0, 0, 0, 1, 1, 1, -1};
  const std::vector<int64_t> truth = {4, 4, -1, -1, -1, 5, -1};
  const std::vector<int64_t> roles = {int64_t(R::Ring), int64_t(R::Ring), int64_t(R::Team),
                                      int64_t(R::Crowd), int64_t(R::ViralSharer), int64_t(R::Ring),
                                      int64_t(R::Team)};
  const auto a = ringscan::lookalike_accusations(reported, truth, roles);
  EXPECT_EQ(a.team_accounts, 1);
  EXPECT_EQ(a.crowd_accounts, 1);
  EXPECT_EQ(a.viral_sharer_accounts, 1);
  EXPECT_EQ(a.other_innocent_accounts, 0);
  EXPECT_EQ(a.mostly_innocent_rings, 1);
}
