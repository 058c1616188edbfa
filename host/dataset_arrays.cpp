// A Dataset from arrays in memory (dataset.hpp, dataset_from_arrays): the loader's checks,
// applied to arrays instead of a file's datasets.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>

#include "ringscan/dataset.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

/// The index of the first element of v [n] that is not finite, or n.
int64_t first_not_finite(const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return i;
  return n;
}

}  // namespace

Dataset dataset_from_arrays(const DatasetArrays& in) {
  const std::string& src = in.source;
  auto fail = [&src](const std::string& array, const std::string& problem) {
    throw InvalidInput(src + ": " + array + ": " + problem);
  };
  const int64_t R = in.num_requests, D = in.dim;
  if (R < 0) fail("account", "negative length");
  if (in.request_account == nullptr && R > 0) fail("account", "missing (required)");
  if (in.embeddings == nullptr && R > 0) fail("embedding", "missing (required)");
  if (D < 1) fail("embedding", "width " + std::to_string(D) + ": needs at least one column");
  Dataset d;
  d.source = src;
  d.dim = D;
  if (const int64_t bad = first_not_finite(in.embeddings, R * D); bad < R * D)
    fail("embedding", "row " + std::to_string(bad / D) + " column " + std::to_string(bad % D) + " is not finite");
  d.embeddings.assign(in.embeddings, in.embeddings + R * D);
  if (in.request_time != nullptr) d.request_time.assign(in.request_time, in.request_time + R);

  // Accounts: given, or the distinct ids of the requests, ascending.
  if (in.account_ids != nullptr) {
    d.account_ids.assign(in.account_ids, in.account_ids + in.num_accounts);
  } else {
    if (in.features != nullptr) fail("features", "given without account_ids (whose order its rows follow)");
    if (in.payment != nullptr) fail("payment", "given without account_ids (whose order it follows)");
    if (in.created != nullptr) fail("created", "given without account_ids (whose order it follows)");
    d.account_ids.assign(in.request_account, in.request_account + R);
    std::sort(d.account_ids.begin(), d.account_ids.end());
    d.account_ids.erase(std::unique(d.account_ids.begin(), d.account_ids.end()), d.account_ids.end());
    d.accounts_derived = true;
  }
  const int64_t A = d.num_accounts();
  std::unordered_map<int64_t, int64_t> row;
  row.reserve(size_t(A));
  for (int64_t a = 0; a < A; ++a)
    if (!row.emplace(d.account_ids[a], a).second)
      fail("account_ids", "id " + std::to_string(d.account_ids[a]) + " appears twice");
  d.request_account.resize(R);
  for (int64_t r = 0; r < R; ++r) {
    const auto it = row.find(in.request_account[r]);
    if (it == row.end())
      fail("account", "request " + std::to_string(r) + " has account " + std::to_string(in.request_account[r]) +
                          ", which is not in account_ids");
    d.request_account[r] = it->second;
  }

  if (in.features != nullptr) {
    const int64_t B = in.feature_dim;
    if (B < 1) fail("features", "width " + std::to_string(B) + ": needs at least one column");
    if (const int64_t bad = first_not_finite(in.features, A * B); bad < A * B)
      fail("features", "row " + std::to_string(bad / B) + " column " + std::to_string(bad % B) + " is not finite");
    d.feature_dim = B;
    d.features.assign(in.features, in.features + A * B);
    d.feature_names = in.feature_names;
    if (d.feature_names.empty())
      for (int64_t f = 0; f < B; ++f) d.feature_names.push_back("f" + std::to_string(f));
    if (int64_t(d.feature_names.size()) != B)
      fail("feature_names", std::to_string(d.feature_names.size()) + " names for " + std::to_string(B) + " columns");
    if (std::set<std::string>(d.feature_names.begin(), d.feature_names.end()).size() != d.feature_names.size())
      fail("feature_names", "a name appears twice");
    d.feature_categorical.assign(B, 0);
    for (const std::string& name : in.categorical_features) {
      const auto at = std::find(d.feature_names.begin(), d.feature_names.end(), name);
      if (at == d.feature_names.end()) fail("categorical_features", "'" + name + "' is not a feature name");
      d.feature_categorical[at - d.feature_names.begin()] = 1;
    }
  } else if (!in.feature_names.empty() || !in.categorical_features.empty()) {
    fail("feature_names", "given without features");
  }

  if (in.infra != nullptr) {
    const int64_t K = in.infra_dim;
    if (K < 1) fail("infra", "width " + std::to_string(K) + ": needs at least one column");
    d.infra_dim = K;
    d.request_infra.assign(in.infra, in.infra + R * K);
    d.infra_names = in.infra_names;
    if (d.infra_names.empty()) d.infra_names = default_infra_names(K);
    if (int64_t(d.infra_names.size()) != K)
      fail("infra_names", std::to_string(d.infra_names.size()) + " names for " + std::to_string(K) + " columns");
    if (std::set<std::string>(d.infra_names.begin(), d.infra_names.end()).size() != d.infra_names.size())
      fail("infra_names", "a name appears twice");
  } else if (!in.infra_names.empty()) {
    fail("infra_names", "given without infra");
  }
  if (in.payment != nullptr) d.account_payment.assign(in.payment, in.payment + A);
  if (in.created != nullptr) {
    d.account_created.assign(in.created, in.created + A);
    for (int64_t a = 0; a < A; ++a)
      if (d.account_created[a] < 0)
        fail("created", "entry " + std::to_string(a) + ": sign-up time " + std::to_string(d.account_created[a]) +
                            " is negative (unix seconds, 0 when unknown)");
  }
  return d;
}

}  // namespace ringscan
