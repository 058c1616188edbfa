// HDF5 input and output: validated loading, file summaries, atomic result writing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/dataset.hpp"
#include "ringscan/result.hpp"

namespace ringscan {

struct LoadOptions {
  bool load_labels = false;      ///< read /accounts/label (evaluate only; detect never does)
  int64_t chunk_rows = 1 << 16;  ///< requests per hyperslab read
  /// The embeddings of requests [embedding_first, embedding_first + embedding_rows) only
  /// (-1: every request's); the other datasets are read whole. A process of a distributed
  /// run reads its share of the largest dataset this way.
  int64_t embedding_first = 0;
  int64_t embedding_rows = -1;
  /// Read those embeddings alone (the file's layout still checked): the Dataset holds no
  /// accounts or other request columns. A rank reads its share in rounds this way.
  bool embeddings_only = false;
  /// Also read /requests/id (reports only; detect never reads it).
  bool load_request_ids = false;
};

/// Longest text of /requests/text read, in bytes (1 MiB).
constexpr int64_t kMostRequestTextBytes = int64_t{1} << 20;

/// The texts of requests `rows` (row numbers of the input) from /requests/text, in the order
/// asked for; empty when the input has no texts. Every text of the dataset is read and
/// checked (UTF-8, at most kMostRequestTextBytes), in blocks, so a bad one anywhere is an
/// InvalidInput naming its row; only the texts asked for are kept.
std::vector<std::string> read_request_texts(const std::string& path, const std::vector<int64_t>& rows);

/// Reads and validates an input file; throws InvalidInput naming file, dataset and problem.
/// Memory is checked against ctx.memory_budget from the declared shapes before allocating.
Dataset load_dataset(const std::string& path, const Context& ctx, const LoadOptions& options = {});

/// Declared shapes of an input file, read from its headers alone (no data is read), for the
/// up-front memory estimate of `detect`.
struct InputShape {
  std::string path;
  int64_t num_requests = 0;     ///< R
  int64_t num_accounts = 0;     ///< A; 0 when accounts are derived (unknown until loaded)
  int64_t dim = 0;              ///< D
  int64_t feature_dim = 0;      ///< B
  int64_t embedding_bytes = 4;  ///< bytes per stored embedding value (2: float16)
  bool has_time = false;
  bool accounts_derived = false;  ///< no /accounts/id: accounts come from /requests/account
};

/// Opens `path`, checks its identity and schema layout (types, ranks, agreeing lengths) and
/// returns the declared shapes without reading any data; throws InvalidInput like load_dataset.
InputShape read_input_shape(const std::string& path);

/// One dataset of a file as seen by `info`.
struct DatasetSummary {
  std::string name;             ///< "/requests/embedding"
  std::string type;             ///< "float16", "int64", ...
  std::vector<int64_t> shape;
};

/// Description of a valid input file (`ringscan info`).
struct InputSummary {
  std::string path;
  int64_t version = 0;
  int64_t num_requests = 0;
  int64_t num_accounts = 0;
  int64_t dim = 0;
  int64_t feature_dim = 0;
  std::vector<std::string> feature_names;
  bool has_time = false, has_features = false, has_labels = false;
  bool has_infra = false, has_payment = false, has_created = false, accounts_derived = false;
  std::vector<std::string> infra_names;  ///< [K] kinds of /requests/infra, when present
  int64_t time_min = 0, time_max = 0;
  int64_t labelled_rings = 0;         ///< distinct label values >= 0
  int64_t labelled_accounts = 0;      ///< accounts with label >= 0
  int64_t accounts_without_requests = 0;
  int64_t zero_norm_embeddings = 0;
  int64_t memory_bytes = 0;           ///< bytes the loaded data takes in memory
  std::vector<DatasetSummary> datasets;
};

/// Validates `path` fully (as `detect` would load it) and describes it.
InputSummary describe_input(const std::string& path, const Context& ctx);

/// Leaves HDF5's shutdown to the end of the process, for programs (not for code embedded in
/// another program that uses HDF5). A file HDF5 could not close, because the disk filled
/// while it was written, would otherwise make HDF5 print "infinite loop closing library" at
/// exit, after the error that says what happened. Call before any other ringscan call.
void leave_hdf5_shutdown_to_exit();

/// Writes the output file of the data contract atomically: to a locked temporary file beside
/// `path`, synced and renamed into place only on success; an existing file is untouched on
/// failure, and a process killed at any point leaves either the old or the new file.
void write_detection_output(const std::string& path, const DetectionResult& result);

/// Per-account labels read back from an output file (for `evaluate`).
struct DetectionLabels {
  std::vector<int64_t> account_ids;
  std::vector<int64_t> cluster;
  std::vector<int64_t> ring;
};
DetectionLabels read_detection_labels(const std::string& path);

/// The reported rings of a detect output as a graph (`ringscan export`): every account's
/// ring and score, and the evidence edges inside rings (edges' accounts as rows of
/// account_ids). Outputs of versions that did not write /ring_edges are refused.
struct RingGraph {
  std::vector<int64_t> account_ids, ring;
  std::vector<float> ring_score;
  std::vector<RingEdge> edges;
};
RingGraph read_ring_graph(const std::string& path);

/// The rings of a detect output, ranked, with their columns, members (from /accounts/ring)
/// and, when the output has /ring_prompts, their shared prompt groups. Shared tokens,
/// sign-up spans and seeds are not stored in the output and stay empty.
std::vector<Ring> read_rings(const std::string& path);

/// What a detection output holds (`ringscan info`): provenance, parameters, timings, notes
/// and the rings table, ranked as written.
struct OutputSummary {
  std::string path, tool_version, backend, input;
  int64_t accounts = 0, accounts_in_rings = 0;
  std::vector<std::string> parameter_names, parameter_values;
  std::vector<std::string> timing_names;
  std::vector<double> timing_seconds;
  std::vector<std::string> statistic_names;
  std::vector<double> statistic_values;
  std::vector<std::string> notes;
  std::vector<int64_t> ring_id, ring_size;
  std::vector<float> ring_score, ring_shared;
};
OutputSummary describe_detection_output(const std::string& path);

/// The "format" attribute of a ringscan file: "ringscan" (input) or "ringscan-output".
std::string read_file_format(const std::string& path);

/// Ground truth: account ids and /accounts/label of an input file; throws if absent.
struct TruthLabels {
  std::vector<int64_t> account_ids;
  std::vector<int64_t> label;
  std::vector<int64_t> role;  ///< /accounts/role (AccountRole of generated data), or empty
  std::vector<int64_t> ring_style;  ///< /accounts/ring_style (RingStyle of generated data), or empty
};
TruthLabels read_truth_labels(const std::string& path, const Context& ctx);

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
void write_file_atomically(const std::string& path, const std::string& text);

/// Removes the temporary files that writers killed half-way left beside `path`
/// (PATH.tmp.*): a writer holds a lock on its temporary file until it is renamed into place,
/// so a file whose lock can be taken belongs to no live run. Returns how many were removed.
/// Every atomic write calls it first; `detect` also calls it before loading.
int64_t remove_stale_temporaries(const std::string& path);

// --- Isolated reading of untrusted files --------------------------------------------------
// The HDF5 library itself crashes (segfault, abort) or hangs on some malformed files. The
// *_isolated readers run the reader above in a forked child process that parses and
// validates the file and hands the arrays to the caller (embeddings through shared memory,
// the rest over a pipe); a crash, a hang or memory exhaustion there becomes an InvalidInput
// naming the file instead of ending the caller. The child uses one OpenMP thread and no
// BLAS; call them from one thread at a time.

/// Limits of the child process that reads an untrusted file.
struct IsolationLimits {
  /// Wall time after which the child is killed, in seconds; 0: 60 s plus 1 s per 20 MB of file.
  double timeout_seconds = 0;
};

/// load_dataset in a child process; the same Dataset, or InvalidInput when the child
/// crashed, timed out or ran out of the memory the budget allows (address-space limit of
/// ctx.memory_budget plus 1 GiB, not applied under AddressSanitizer).
Dataset load_dataset_isolated(const std::string& path, const Context& ctx,
                              const LoadOptions& options = {}, const IsolationLimits& limits = {});
/// describe_input in a child process (see load_dataset_isolated).
InputSummary describe_input_isolated(const std::string& path, const Context& ctx,
                                     const IsolationLimits& limits = {});
/// read_input_shape in a child process (see load_dataset_isolated).
InputShape read_input_shape_isolated(const std::string& path, const Context& ctx,
                                     const IsolationLimits& limits = {});
/// read_truth_labels in a child process (see load_dataset_isolated).
TruthLabels read_truth_labels_isolated(const std::string& path, const Context& ctx,
                                       const IsolationLimits& limits = {});
/// read_detection_labels in a child process (see load_dataset_isolated).
DetectionLabels read_detection_labels_isolated(const std::string& path, const Context& ctx,
                                               const IsolationLimits& limits = {});
/// read_rings in a child process (see load_dataset_isolated).
std::vector<Ring> read_rings_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits = {});
/// read_request_texts in a child process (see load_dataset_isolated).
std::vector<std::string> read_request_texts_isolated(const std::string& path, const std::vector<int64_t>& rows,
                                                     const Context& ctx, const IsolationLimits& limits = {});
/// read_ring_graph in a child process (see load_dataset_isolated).
RingGraph read_ring_graph_isolated(const std::string& path, const Context& ctx, const IsolationLimits& limits = {});
OutputSummary describe_detection_output_isolated(const std::string& path, const Context& ctx,
                                                 const IsolationLimits& limits = {});
std::string read_file_format_isolated(const std::string& path, const Context& ctx,
                                      const IsolationLimits& limits = {});

}  // namespace ringscan
