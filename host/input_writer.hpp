// Streaming writer of input files (schema `ringscan` v1), used by `generate` and tests.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringscan {

enum class EmbeddingType { Float16, Float32 };

/// Creates the file at a temporary path; commit() renames it to `path`. Destroying an
/// uncommitted writer removes the temporary file.
class InputFileWriter {
 public:
  InputFileWriter(const std::string& path, int64_t dim, EmbeddingType type, bool with_time);
  ~InputFileWriter();
  InputFileWriter(const InputFileWriter&) = delete;
  InputFileWriter& operator=(const InputFileWriter&) = delete;

  /// Adds /requests/infra [R x K], one column per name (attribute `names`); before the first
  /// append_requests.
  void declare_infra(const std::vector<std::string>& names);
  /// Appends n requests: account [n], embedding [n x dim] float32, time [n] (may be null
  /// when the writer has no time), infra [n x K] (null unless declare_infra was called).
  void append_requests(const int64_t* account, const float* embedding, const int64_t* time,
                       int64_t n, const int64_t* infra = nullptr);
  /// Writes /accounts/id [A], /accounts/features [A x B] with attribute names (B may be 0),
  /// and /accounts/label [A] when labels is non-empty.
  void write_accounts(const std::vector<int64_t>& ids, const std::vector<float>& features,
                      int64_t feature_dim, const std::vector<std::string>& feature_names,
                      const std::vector<int64_t>& labels);
  /// Writes an extra int64 [A] column /accounts/<name> (ignored by detect, e.g. "role").
  void write_account_column(const std::string& name, const std::vector<int64_t>& values);
  /// Flushes, closes and renames into place.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringscan
