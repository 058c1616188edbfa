// Infrastructure tokens and payment instruments shared by accounts: which tokens count, the
// candidate pairs they propose, the evidence of a pair, and detection on generated traffic
// whose rings send through proxy pools that ordinary customers use too.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "evidence_math.hpp"
#include "ringscan/error.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/shared_infrastructure.hpp"
#include "tail_probability.hpp"
#include "test_support.hpp"

using namespace ringscan;

namespace {

/// 100 accounts (ids 1..100) of one request each; ip24: accounts 1 and 2 share token 7,
/// account 3 alone uses 8; asn: everybody's is 99; payment: accounts 4 and 5 share card 11.
Dataset small_population() {
  Dataset d;
  d.dim = 2;
  d.infra_dim = 2;
  d.infra_names = {"ip24", "asn"};
  for (int64_t a = 0; a < 100; ++a) {
    d.account_ids.push_back(a + 1);
    d.request_account.push_back(a);
    d.embeddings.insert(d.embeddings.end(), {1.0f, float(a)});
    const int64_t ip = a == 0 || a == 1 ? 7 : a == 2 ? 8 : 0;
    d.request_infra.insert(d.request_infra.end(), {ip, 99});
    d.account_payment.push_back(a == 3 || a == 4 ? 11 : 0);
  }
  return d;
}

Context two_threads() {
  Context ctx;
  ctx.threads = 2;
  return ctx;
}

/// Generated traffic with infrastructure tokens, payment instruments and sign-up times.
GenerateOptions with_infrastructure(int64_t accounts, int64_t dim, uint64_t seed) {
  GenerateOptions g;
  g.accounts = accounts;
  g.dim = dim;
  g.seed = seed;
  g.infrastructure = true;
  return g;
}

}  // namespace

TEST(SharedInfrastructure, KeepsTokensOfTwoOrMoreAccountsAndLeavesWidelyUsedOnesOut) {
  const Context ctx;
  const CanonicalRequests req = canonical_requests(small_population(), ctx);
  const SharedInfrastructure s = shared_infrastructure(req, DetectOptions{}, ctx);
  EXPECT_EQ(s.kind_names, (std::vector<std::string>{"ip24", "asn", "payment"}));
  // (ip24, 7), (asn, 99) and (payment, 11): token 8 has one account.
  ASSERT_EQ(s.num_tokens, 3);
  EXPECT_EQ(s.token_kind, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(s.token_users, (std::vector<int32_t>{2, 100, 2}));
  EXPECT_FALSE(s.is_evidence(1));  // used by all 100 accounts: more than 64 and 2% of them
  EXPECT_EQ(s.evidence_tokens, 2);
  EXPECT_EQ(s.evidence_kinds, 2);
  EXPECT_EQ(std::vector<int64_t>(s.account_tokens.begin() + s.account_offsets[0],
                                 s.account_tokens.begin() + s.account_offsets[1]),
            (std::vector<int64_t>{0}));
  EXPECT_EQ(s.account_offsets[2], s.account_offsets[3]);  // account 3's token is its own
  EXPECT_EQ(infrastructure_pairs(s, ctx), (std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {3, 4}}));
}

TEST(SharedInfrastructure, ATokenOfMoreAccountsThanTheIndexProposesIsEvidenceButProposesNoPairs) {
  // 40 accounts share one address: more than the 2k + 1 = 33 accounts whose pairs a token
  // proposes (k = 16 account neighbours), fewer than the 64 above which it is common.
  const Context ctx;
  Dataset d = small_population();
  for (int64_t a = 0; a < 100; ++a) d.request_infra[a * 2] = a < 40 ? 5 : 0;
  d.account_payment.assign(100, 0);
  const SharedInfrastructure s = shared_infrastructure(canonical_requests(d, ctx), DetectOptions{}, ctx);
  EXPECT_EQ(s.proposing_users, 33);
  EXPECT_EQ(s.evidence_tokens, 1);
  EXPECT_TRUE(infrastructure_pairs(s, ctx).empty());
}

TEST(SharedInfrastructure, IsAbsentWithoutTokensOrPayment) {
  const Context ctx;
  Dataset d = small_population();
  d.infra_dim = 0;
  d.infra_names.clear();
  d.request_infra.clear();
  d.account_payment.clear();
  const SharedInfrastructure s = shared_infrastructure(canonical_requests(d, ctx), DetectOptions{}, ctx);
  EXPECT_FALSE(s.present());
  EXPECT_TRUE(infrastructure_pairs(s, ctx).empty());
}

TEST(SharedInfrastructureSurprise, CountsTheRarestSharedTokenOfEachKindWithItsTries) {
  // Tokens 0-2 of kind 0 (2, 50 and 50 users), token 3 of kind 1 (3 users); 10,000 accounts.
  const std::vector<int32_t> kind{0, 0, 0, 1}, users{2, 50, 50, 3};
  const std::vector<int64_t> x{0, 1, 2, 3}, y{0, 1, 2};
  int32_t rarest = 0;
  const float s = shared_infrastructure_surprise(x.data(), 4, y.data(), 3, kind.data(), users.data(), 10000, 2, &rarest);
  EXPECT_EQ(rarest, 2);
  // Kind 0: the 2-user token, three tries each; kind 1: not shared.
  const double sum = -std::log(3.0 * 1.0 / 9999.0);
  EXPECT_NEAR(s, -log_gamma_tail(2.0, sum), 1e-3);
  // Two tokens of a proxy service's 50 users are no more than one of them is.
  const std::vector<int64_t> proxy{1, 2};
  const float both = shared_infrastructure_surprise(proxy.data(), 2, proxy.data(), 2, kind.data(), users.data(), 10000,
                                                    2, &rarest);
  const float one = shared_infrastructure_surprise(proxy.data(), 1, proxy.data(), 1, kind.data(), users.data(), 10000,
                                                   2, &rarest);
  EXPECT_LE(both, one);
  EXPECT_LT(both, s);
  // A token of one kind and a token of another add up.
  const std::vector<int64_t> two_kinds{0, 3};
  EXPECT_GT(shared_infrastructure_surprise(two_kinds.data(), 2, two_kinds.data(), 2, kind.data(), users.data(), 10000,
                                           2, &rarest),
            s);
}

TEST(SharedInfrastructureSurprise, IsZeroWithoutASharedToken) {
  const std::vector<int32_t> kind{0, 0, 1}, users{2, 2, 2};
  const std::vector<int64_t> x{0}, y{1, 2};
  int32_t rarest = 7;
  EXPECT_EQ(shared_infrastructure_surprise(x.data(), 1, y.data(), 2, kind.data(), users.data(), 1000, 2, &rarest), 0.0f);
  EXPECT_EQ(rarest, 0);
  EXPECT_EQ(shared_infrastructure_surprise(x.data(), 1, y.data(), 0, kind.data(), users.data(), 1000, 2, &rarest), 0.0f);
}

// Rings without times: the sub-groups of a ring split across capabilities share no prompt,
// and their proxy pool, script fingerprint, cards and sign-up burst are what joins them.
// Half the rings rent their proxies from a service 5% of ordinary customers use as well;
// teams share an office line, a company card and an internal tool. Seed 9405 is none the
// defaults were chosen on; without its infrastructure datasets its ring recall is 0.67.
TEST(SharedInfrastructure, JoinsRingsWithoutTimesAndAccusesNoCustomerOfTheirProxies) {
  const Context ctx = two_threads();
  GenerateOptions g = with_infrastructure(4000, 64, 9405);
  g.times = false;
  std::vector<int64_t> roles;
  const Dataset d = generate_in_memory(g, ctx, &roles);
  ASSERT_EQ(d.infra_dim, 3);
  const DetectionResult r = detect_rings(d, DetectOptions{}, ctx);
  for (const std::string& note : r.notes) EXPECT_EQ(note.find("infrastructure evidence off"), std::string::npos) << note;
  const Evaluation e = evaluate_rings(r.ring, d.labels);
  const LookalikeAccusations l = lookalike_accusations(r.ring, d.labels, roles);
  ASSERT_GE(e.planted_rings, 3);
  EXPECT_GE(e.ring_recall, 0.95);
  EXPECT_GE(e.account_precision, 0.99);
  EXPECT_GE(e.account_recall, 0.95);
  EXPECT_EQ(l.team_accounts, 0);
  EXPECT_EQ(l.other_innocent_accounts, 0);
  EXPECT_EQ(l.mostly_innocent_rings, 0);
  // The report names what the members share and when they signed up.
  int64_t listed = 0;
  for (const Ring& ring : r.rings) {
    listed += !ring.shared_tokens.empty();
    for (const SharedTokenExample& t : ring.shared_tokens) {
      EXPECT_TRUE(t.kind == "ip24" || t.kind == "asn" || t.kind == "client_fingerprint" || t.kind == "payment") << t.kind;
      EXPECT_GE(t.accounts_in_ring, 2);
      EXPECT_LE(t.accounts_in_ring, ring.size);
      EXPECT_GE(t.accounts_overall, t.accounts_in_ring);
    }
    EXPECT_LE(ring.sign_up_first, ring.sign_up_last);
  }
  EXPECT_EQ(listed, int64_t(r.rings.size()));
}

class InfrastructurePermutation : public ::testing::TestWithParam<double> {};

// With a proxy network (the weak core) and without.
TEST_P(InfrastructurePermutation, LeavesLabelsScoresAndTokensUnchanged) {
  Context ctx;
  ctx.threads = 2;
  GenerateOptions g = with_infrastructure(2000, 32, 9411);
  g.proxy_network = GetParam();
  const Dataset d = generate_in_memory(g, ctx);
  std::vector<int64_t> new_row;
  const Dataset p = ringscan::testing::permuted(d, 3, &new_row);
  const DetectionResult a = detect_rings(d, DetectOptions{}, ctx);
  ctx.threads = 1;
  const DetectionResult b = detect_rings(p, DetectOptions{}, ctx);
  ASSERT_FALSE(a.rings.empty());
  for (int64_t i = 0; i < d.num_accounts(); ++i) {
    const int64_t j = new_row[i];
    ASSERT_EQ(b.account_ids[j], a.account_ids[i]);
    EXPECT_EQ(b.cluster[j], a.cluster[i]);
    EXPECT_EQ(b.ring[j], a.ring[i]);
    EXPECT_EQ(b.ring_score[j], a.ring_score[i]);
  }
  ASSERT_EQ(a.rings.size(), b.rings.size());
  for (std::size_t k = 0; k < a.rings.size(); ++k) {
    ASSERT_EQ(a.rings[k].shared_tokens.size(), b.rings[k].shared_tokens.size());
    for (std::size_t t = 0; t < a.rings[k].shared_tokens.size(); ++t)
      EXPECT_EQ(a.rings[k].shared_tokens[t].token, b.rings[k].shared_tokens[t].token);
  }
  double weak_cores = 0;
  for (const auto& [name, value] : a.statistics)
    if (name == "weak_core_clusters") weak_cores = value;
  EXPECT_EQ(weak_cores > 0, GetParam() > 0);
}
INSTANTIATE_TEST_SUITE_P(WithAndWithoutAProxyNetwork, InfrastructurePermutation, ::testing::Values(0.0, 0.1),
                         [](const ::testing::TestParamInfo<double>& info) {
                           return info.param > 0 ? std::string("ProxyNetwork") : std::string("NoNetwork");
                         });

namespace {

std::string written(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(Allowlist, ReadsAccountsAndTokensAndNamesTheLineOfABadEntry) {
  const std::string path = written("allow.txt", "# verified enterprises\n  42\n\nip24:1234\npayment: 99\n-7\n");
  const Allowlist a = read_allowlist(path);
  EXPECT_EQ(a.accounts, (std::vector<int64_t>{42, -7}));
  EXPECT_EQ(a.tokens, (std::vector<std::pair<std::string, int64_t>>{{"ip24", 1234}, {"payment", 99}}));
  for (const auto& [text, problem] : std::vector<std::pair<std::string, std::string>>{
           {"12\nabc\n", "line 2: 'abc' is not an account id"},
           {"ip24:\n", "line 1: 'ip24:' has no integer token value"},
           {":5\n", "has no token kind"},
           {"asn:0\n", "token 0, which means unknown"},
           {"12x\n", "is not an account id"}}) {
    const std::string bad = written("bad-allow.txt", text);
    try {
      read_allowlist(bad);
      ADD_FAILURE() << "accepted " << text;
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(problem), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(read_allowlist(::testing::TempDir() + "no-such-allowlist.txt"), InvalidInput);
}

// A ring with strong evidence of every kind, whose fingerprint the allowlist names (as an
// enterprise's API key would be): none of the accounts that used it is in a ring, though
// without the allowlist they are; an allowed account id leaves its own ring alone otherwise.
TEST(Allowlist, KeepsTheUsersOfAnAllowedTokenAndAllowedAccountsOutOfEveryRing) {
  const Context ctx = two_threads();
  const Dataset d = generate_in_memory(with_infrastructure(3000, 32, 9412), ctx);
  const DetectionResult plain = detect_rings(d, DetectOptions{}, ctx);
  ASSERT_GE(plain.rings.size(), 2u);
  const Ring& first = plain.rings[0];
  ASSERT_FALSE(first.shared_tokens.empty());
  const SharedTokenExample token = first.shared_tokens[0];
  ASSERT_GE(token.accounts_in_ring, 3);

  // The accounts (rows of d) that used the token.
  const int64_t K = d.infra_dim;
  const int64_t kind = std::find(d.infra_names.begin(), d.infra_names.end(), token.kind) - d.infra_names.begin();
  std::vector<uint8_t> user(d.num_accounts(), 0);
  for (int64_t r = 0; r < d.num_requests(); ++r)
    if (kind < K && d.request_infra[r * K + kind] == token.token) user[d.request_account[r]] = 1;
  for (int64_t a = 0; a < d.num_accounts(); ++a)
    if (kind == K && d.account_payment[a] == token.token) user[a] = 1;
  int64_t users_in_rings = 0;
  for (int64_t a = 0; a < d.num_accounts(); ++a) users_in_rings += user[a] && plain.ring[a] >= 0;
  ASSERT_GE(users_in_rings, 3);

  DetectOptions o;
  o.allow.tokens = {{token.kind, token.token}};
  o.allow.accounts = {plain.rings[1].members[0]};
  const DetectionResult allowed = detect_rings(d, o, ctx);
  for (int64_t a = 0; a < d.num_accounts(); ++a) {
    if (user[a]) EXPECT_EQ(allowed.ring[a], -1) << "account " << d.account_ids[a];
    if (d.account_ids[a] == o.allow.accounts[0]) EXPECT_EQ(allowed.ring[a], -1);
  }
  double allowed_accounts = 0;
  for (const auto& [name, value] : allowed.statistics)
    if (name == "allowed_accounts") allowed_accounts = value;
  EXPECT_GE(allowed_accounts, double(users_in_rings + 1));
  // The second ring is still reported, without the allowed account.
  bool second_kept = false;
  for (const Ring& r : allowed.rings)
    second_kept |= std::find(r.members.begin(), r.members.end(), plain.rings[1].members[1]) != r.members.end();
  EXPECT_TRUE(second_kept);
}

TEST(Seeds, ReadsAccountIdsAndNamesTheLineOfABadEntry) {
  EXPECT_EQ(read_seed_accounts(written("seeds.txt", "# known\n17\n\n -3 \n")), (std::vector<int64_t>{17, -3}));
  try {
    read_seed_accounts(written("bad-seeds.txt", "17\nip24:5\n"));
    ADD_FAILURE() << "accepted a token as a seed";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("bad-seeds.txt: line 2: 'ip24:5' is not an account id"), std::string::npos)
        << e.what();
  }
}

namespace {

/// An HDF5 file with the given one-dimensional datasets (int64, or float64 when `floats`).
std::string hdf5_lists(const std::string& name, const std::vector<std::pair<std::string, std::vector<int64_t>>>& sets,
                       bool floats = false) {
  const std::string path = ::testing::TempDir() + name;
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  for (const auto& [set, values] : sets) {
    const hsize_t rows = values.size();
    const hid_t space = H5Screate_simple(1, &rows, nullptr);
    const hid_t type = floats ? H5T_IEEE_F64LE : H5T_STD_I64LE;
    const hid_t d = H5Dcreate2(file, set.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<double> as_double(values.begin(), values.end());
    if (!values.empty())
      H5Dwrite(d, floats ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
               floats ? static_cast<const void*>(as_double.data()) : static_cast<const void*>(values.data()));
    H5Dclose(d);
    H5Sclose(space);
  }
  H5Pclose(lcpl);
  H5Fclose(file);
  return path;
}

void expect_refused(const std::function<void()>& read, const std::string& path, const std::string& problem) {
  try {
    read();
    ADD_FAILURE() << "accepted " << path;
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(problem), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Seeds, ReadFromAnHdf5DatasetOrTheRingsOfAnEarlierOutput) {
  EXPECT_EQ(read_seed_accounts(hdf5_lists("seeds.h5", {{"/seeds", {5, 9}}})), (std::vector<int64_t>{5, 9}));
  const std::string earlier = hdf5_lists("earlier.out.h5", {{"/accounts/id", {1, 2, 3}}, {"/accounts/ring", {0, -1, 4}}});
  EXPECT_EQ(read_seed_accounts(earlier), (std::vector<int64_t>{1, 3}));
  const std::string none = hdf5_lists("no-seeds.h5", {{"/other", {1}}});
  expect_refused([&] { read_seed_accounts(none); }, none, "no /seeds dataset");
  const std::string floats = hdf5_lists("float-seeds.h5", {{"/seeds", {1, 2}}}, true);
  expect_refused([&] { read_seed_accounts(floats); }, floats, "/seeds: not an integer dataset");
  const std::string uneven = hdf5_lists("uneven.out.h5", {{"/accounts/id", {1, 2}}, {"/accounts/ring", {0}}});
  expect_refused([&] { read_seed_accounts(uneven); }, uneven, "/accounts/ring has 1 rows for 2 accounts");
  const std::string big = hdf5_lists("big-seeds.h5", {{"/seeds", std::vector<int64_t>(100, 7)}});
  EXPECT_THROW(read_seed_accounts(big, 512), BudgetExceeded);
}

TEST(Allowlist, ReadsAccountsAndTokensOfAnHdf5Group) {
  const Allowlist a = read_allowlist(hdf5_lists("allow.h5", {{"/allow/accounts", {42}}, {"/allow/ip24", {1234, 5}}}));
  EXPECT_EQ(a.accounts, (std::vector<int64_t>{42}));
  EXPECT_EQ(a.tokens, (std::vector<std::pair<std::string, int64_t>>{{"ip24", 1234}, {"ip24", 5}}));
  const std::string zero = hdf5_lists("allow-zero.h5", {{"/allow/asn", {3, 0}}});
  expect_refused([&] { read_allowlist(zero); }, zero, "/allow/asn: row 1 is token 0");
  const std::string none = hdf5_lists("allow-none.h5", {{"/accounts", {1}}});
  expect_refused([&] { read_allowlist(none); }, none, "no /allow group");
  const std::string empty = hdf5_lists("allow-empty.h5", {{"/allow/accounts", {}}});
  expect_refused([&] { read_allowlist(empty); }, empty, "holds no accounts and no tokens");
  const std::string floats = hdf5_lists("allow-floats.h5", {{"/allow/ip24", {1}}}, true);
  expect_refused([&] { read_allowlist(floats); }, floats, "not an integer dataset");
}

// Seeds holding a tenth of one ring mark the ring that holds them; seeds that are ordinary
// customers do not put them in a ring (the prior raises the odds of their pairs, the
// evidence must still be there).
TEST(Seeds, MarkTheRingThatHoldsThemAndPutNoInnocentSeedInARing) {
  const Context ctx = two_threads();
  GenerateOptions g = with_infrastructure(3000, 32, 9413);
  g.light_rings = true;
  std::vector<int64_t> roles;
  const Dataset d = generate_in_memory(g, ctx, &roles);
  // The largest planted ring, and its first tenth; five ordinary customers.
  std::map<int64_t, std::vector<int64_t>> members;
  for (int64_t a = 0; a < d.num_accounts(); ++a)
    if (d.labels[a] >= 0) members[d.labels[a]].push_back(d.account_ids[a]);
  auto largest = std::max_element(members.begin(), members.end(),
                                  [](const auto& x, const auto& y) { return x.second.size() < y.second.size(); });
  DetectOptions o;
  const std::size_t known = std::max<std::size_t>(1, largest->second.size() / 10);
  o.seeds.assign(largest->second.begin(), largest->second.begin() + known);
  std::vector<int64_t> innocent;
  for (int64_t a = 0; a < d.num_accounts() && innocent.size() < 5; ++a)
    if (roles[a] == int64_t(AccountRole::Legit)) innocent.push_back(d.account_ids[a]);
  o.seeds.insert(o.seeds.end(), innocent.begin(), innocent.end());

  const DetectionResult r = detect_rings(d, o, ctx);
  int64_t marked = 0;
  for (const Ring& ring : r.rings) {
    int64_t seeds = 0;
    for (const int64_t id : ring.members) seeds += std::count(o.seeds.begin(), o.seeds.end(), id);
    EXPECT_EQ(ring.seeds, seeds);
    for (const int64_t id : innocent) EXPECT_EQ(std::count(ring.members.begin(), ring.members.end(), id), 0);
    // The ring that holds the seeds: most of the planted ring.
    if (seeds > 0) {
      int64_t overlap = 0;
      for (const int64_t id : ring.members) overlap += std::count(largest->second.begin(), largest->second.end(), id);
      EXPECT_GE(2 * overlap, int64_t(largest->second.size()));
      ++marked;
    }
  }
  EXPECT_EQ(marked, 1);
}
