// The input data of one detection job, in memory, validated.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ringscan {

/// Requests and accounts as read from an input file (schema `ringscan` version 1).
/// Arrays keep the file's order; `request_account` maps each request to its account's row.
struct Dataset {
  std::string source;                       ///< path the data came from (for messages)
  std::vector<int64_t> account_ids;         ///< [A] unique account ids, file order
  bool accounts_derived = false;            ///< true when /accounts/id was absent
  std::vector<int64_t> request_account;     ///< [R] row in account_ids of each request
  int64_t dim = 0;                          ///< D, embedding width
  std::vector<float> embeddings;            ///< [R x D] row-major, as stored (not normalised)
  int64_t embedding_first = 0;              ///< request the first row of `embeddings` belongs to
                                            ///< (a share of the requests: LoadOptions)
  std::vector<int64_t> request_time;        ///< [R] unix seconds, or empty
  int64_t feature_dim = 0;                  ///< B, behaviour vector width (0 if absent)
  std::vector<float> features;              ///< [A x B] row-major, or empty
  std::vector<std::string> feature_names;   ///< [B] or empty
  std::vector<uint8_t> feature_categorical; ///< [B] 1 for a categorical column, or empty (none)
  std::vector<int64_t> labels;              ///< [A] ground-truth ring id (-1 none); evaluate only
  int64_t infra_dim = 0;                    ///< K, infrastructure token kinds (0 if absent)
  std::vector<int64_t> request_infra;       ///< [R x K] hashed infrastructure tokens (0 = unknown), or empty
  std::vector<std::string> infra_names;     ///< [K] names of the token kinds ("ip24", "asn"), or empty
  std::vector<int64_t> account_payment;     ///< [A] hashed payment instrument (0 = unknown), or empty
  std::vector<int64_t> account_created;     ///< [A] sign-up time, unix seconds (0 = unknown), or empty
  std::vector<int64_t> request_ids;         ///< [R] the provider's request ids (reports only), or empty

  int64_t num_accounts() const { return static_cast<int64_t>(account_ids.size()); }
  int64_t num_requests() const { return static_cast<int64_t>(request_account.size()); }
  bool has_time() const { return !request_time.empty(); }
  bool has_features() const { return feature_dim > 0; }
};

/// Arrays in memory that make a Dataset (the Python package's way in). Pointers are borrowed
/// for the call; optional arrays are null when absent.
struct DatasetArrays {
  std::string source = "arrays";       ///< names the data in messages
  int64_t num_requests = 0;            ///< R
  const int64_t* request_account = nullptr;  ///< [R] account id of each request (required)
  int64_t dim = 0;                     ///< D
  const float* embeddings = nullptr;   ///< [R x D] row-major (required)
  const int64_t* request_time = nullptr;  ///< [R] unix seconds, or null
  int64_t num_accounts = 0;            ///< A of account_ids (0: derived from request_account)
  const int64_t* account_ids = nullptr;   ///< [A] unique ids, or null (derived, ascending)
  int64_t feature_dim = 0;             ///< B
  const float* features = nullptr;     ///< [A x B] row-major in account_ids' order, or null
  std::vector<std::string> feature_names;        ///< [B] or empty
  std::vector<std::string> categorical_features;  ///< names of categorical columns
  int64_t infra_dim = 0;               ///< K
  const int64_t* infra = nullptr;      ///< [R x K] infrastructure tokens (0 = unknown), or null
  std::vector<std::string> infra_names;  ///< [K] or empty (infra0, infra1, ...)
  const int64_t* payment = nullptr;    ///< [A] payment instruments (0 = unknown), or null
  const int64_t* created = nullptr;    ///< [A] sign-up times, unix seconds (0 = unknown), or null
};

/// Names of K unnamed token columns of /requests/infra: "infra" for one, else "infra0",
/// "infra1", ...
std::vector<std::string> default_infra_names(int64_t kinds);

/// Copies the arrays into a Dataset with the checks the loader makes on a file (InvalidInput
/// naming the array and the first bad element): lengths agree, embeddings and features are
/// finite, account ids unique, every request's account among them, feature and token kind
/// names unique, sign-up times not negative.
Dataset dataset_from_arrays(const DatasetArrays& arrays);

}  // namespace ringscan
