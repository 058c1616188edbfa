// The `ringscan._ringscan` extension: the library's detect, load, generate and evaluate on
// numpy arrays. The Python package (python/ringscan) checks dtypes and shapes, converts to
// C-contiguous float32/int64 and shapes the results; this layer copies the arrays into the
// library's structures, runs the library without the GIL and maps its errors to Python.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ringscan/context.hpp"
#include "ringscan/dataset.hpp"
#include "ringscan/error.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/io.hpp"
#include "ringscan/indicators.hpp"
#include "ringscan/pipeline.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using Int64Array = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using FloatMatrix = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Int64Matrix = nb::ndarray<const int64_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

/// A numpy array that owns a copy of `values` (the library's vectors are moved into it).
template <class T>
nb::ndarray<nb::numpy, T, nb::ndim<1>> to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule free_when_done(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T, nb::ndim<1>>(owned->data(), {owned->size()}, free_when_done);
}

template <class T>
nb::ndarray<nb::numpy, T, nb::ndim<2>> to_numpy(std::vector<T>&& values, size_t rows, size_t cols) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule free_when_done(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T, nb::ndim<2>>(owned->data(), {rows, cols}, free_when_done);
}

/// Progress from the library's threads to a Python callable: the GIL is taken for each call,
/// and the first exception the callable raises stops further calls and is raised after the
/// run (it cannot cross the library's parallel regions).
class ProgressRelay {
 public:
  explicit ProgressRelay(nb::object callback) : callback_(std::move(callback)) {}
  ringscan::ProgressFn function() {
    if (callback_.is_none()) return {};
    return [this](const std::string& stage, int64_t done, int64_t total) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failed_) return;
      nb::gil_scoped_acquire gil;
      try {
        callback_(stage, done, total);
      } catch (nb::python_error& e) {
        failed_ = true;
        error_ = std::make_unique<nb::python_error>(std::move(e));
      }
    };
  }
  /// Raises the callback's exception, if it raised one (with the GIL held).
  void rethrow() {
    if (error_) {
      error_->restore();
      throw nb::python_error();
    }
  }

 private:
  nb::object callback_;
  std::mutex mutex_;
  bool failed_ = false;
  std::unique_ptr<nb::python_error> error_;
};

ringscan::Context make_context(int threads, const std::string& memory_budget, const std::string& device_memory_budget) {
  ringscan::Context ctx;
  ctx.threads = threads;
  ctx.memory_budget =
      memory_budget.empty() ? ringscan::Context::default_memory_budget() : ringscan::parse_size(memory_budget);
  if (!device_memory_budget.empty()) ctx.device_memory_budget = ringscan::parse_size(device_memory_budget);
  return ctx;
}

/// DetectOptions from the keyword options the Python layer passes on (names as in the CLI,
/// with underscores); an unknown name is a ValueError.
/// The allowlist option: None, a path (read as `--allow` reads it), or a dict with
/// "accounts" (ids) and "tokens" ((kind, value) pairs).
ringscan::Allowlist allowlist(nb::handle value) {
  if (value.is_none()) return {};
  if (nb::isinstance<nb::str>(value)) return ringscan::read_allowlist(nb::cast<std::string>(value));
  if (!nb::isinstance<nb::dict>(value))
    throw ringscan::InvalidInput("allow: expected a path or a dict with 'accounts' and 'tokens'");
  ringscan::Allowlist a;
  a.source = "arrays";
  for (const auto& [key, entries] : nb::cast<nb::dict>(value)) {
    const std::string field = nb::cast<std::string>(key);
    if (field == "accounts") a.accounts = nb::cast<std::vector<int64_t>>(entries);
    else if (field == "tokens") a.tokens = nb::cast<std::vector<std::pair<std::string, int64_t>>>(entries);
    else throw ringscan::InvalidInput("allow: unknown key '" + field + "' (expected 'accounts' and 'tokens')");
  }
  for (const auto& [kind, token] : a.tokens)
    if (token == 0) throw ringscan::InvalidInput("allow: token " + kind + ":0 means unknown");
  return a;
}

/// The seeds option: a path (read as `--seeds` reads it) or account ids.
std::vector<int64_t> seed_accounts(nb::handle value) {
  if (nb::isinstance<nb::str>(value)) return ringscan::read_seed_accounts(nb::cast<std::string>(value));
  return nb::cast<std::vector<int64_t>>(value);
}

ringscan::DetectOptions detect_options(const nb::dict& given) {
  ringscan::DetectOptions o;
  for (const auto& [key, value] : given) {
    const std::string name = nb::cast<std::string>(key);
    if (name == "device") o.device = ringscan::parse_device(nb::cast<std::string>(value));
    else if (name == "duplicate_similarity") o.duplicate_similarity = nb::cast<float>(value);
    else if (name == "template_similarity") o.template_similarity = nb::cast<float>(value);
    else if (name == "duplicate_neighbours") o.duplicate_neighbours = nb::cast<int64_t>(value);
    else if (name == "exact_request_limit") o.exact_request_limit = nb::cast<int64_t>(value);
    else if (name == "reduced_dim") o.reduced_dim = nb::cast<int64_t>(value);
    else if (name == "max_prompt_share") o.max_prompt_share = nb::cast<float>(value);
    else if (name == "time_window") o.time_window_seconds = nb::cast<int64_t>(value);
    else if (name == "account_neighbours") o.account_neighbours = nb::cast<int64_t>(value);
    else if (name == "exact_account_limit") o.exact_account_limit = nb::cast<int64_t>(value);
    else if (name == "false_edges") o.false_edges_per_million = nb::cast<double>(value);
    else if (name == "min_core_degree") o.min_core_degree = nb::cast<int64_t>(value);
    else if (name == "merge") o.merge_clusters = nb::cast<bool>(value);
    else if (name == "min_ring_size") o.min_ring_size = nb::cast<int64_t>(value);
    else if (name == "ring_threshold") o.ring_threshold = nb::cast<float>(value);
    else if (name == "report_examples") o.report_examples = nb::cast<int64_t>(value);
    else if (name == "allow") o.allow = allowlist(value);
    else if (name == "seeds") o.seeds = value.is_none() ? std::vector<int64_t>{} : seed_accounts(value);
    else if (name == "indicators_out") o.collect_indicators = !value.is_none();
    else if (name == "indicators_in") {
      if (value.is_none()) continue;
      o.known_indicators_source = nb::cast<std::string>(value);
      o.known_indicators = ringscan::read_indicators(o.known_indicators_source, 0);
    } else throw ringscan::InvalidInput("unknown option '" + name + "'");
  }
  ringscan::validate_detect_options(o);
  return o;
}

nb::dict result_dict(ringscan::DetectionResult&& r) {
  nb::dict out;
  out["account_id"] = to_numpy(std::move(r.account_ids));
  out["cluster"] = to_numpy(std::move(r.cluster));
  out["ring"] = to_numpy(std::move(r.ring));
  out["ring_score"] = to_numpy(std::move(r.ring_score));
  nb::list rings;
  for (ringscan::Ring& g : r.rings) {
    nb::list examples;
    for (ringscan::SharedPromptExample& e : g.examples) {
      nb::dict x;
      x["ring_accounts"] = e.accounts_in_ring;
      x["accounts_overall"] = e.accounts_overall;
      x["idf"] = e.idf;
      x["request_rows"] = e.request_rows;
      examples.append(x);
    }
    nb::dict ring;
    ring["id"] = g.id;
    ring["cluster"] = g.cluster;
    ring["size"] = g.size;
    ring["score"] = g.score;
    ring["shared_prompt_strength"] = g.shared_prompt_strength;
    ring["shared_prompt_groups"] = g.shared_groups;
    ring["synchrony"] = g.synchrony;
    ring["behaviour_tightness"] = g.behaviour_tightness;
    ring["prompt_diversity"] = g.prompt_diversity;
    ring["volume"] = g.volume;
    ring["internal_edge_weight"] = g.internal_edge_weight;
    ring["members"] = to_numpy(std::move(g.members));
    ring["examples"] = examples;
    nb::list tokens;
    for (ringscan::SharedTokenExample& t : g.shared_tokens) {
      nb::dict x;
      x["kind"] = t.kind;
      x["token"] = t.token;
      x["ring_accounts"] = t.accounts_in_ring;
      x["accounts_overall"] = t.accounts_overall;
      tokens.append(x);
    }
    ring["shared_tokens"] = tokens;
    ring["seeds"] = g.seeds;
    ring["sign_up"] = g.sign_up_first != 0 ? nb::cast(std::make_pair(g.sign_up_first, g.sign_up_last)) : nb::none();
    rings.append(ring);
  }
  out["rings"] = rings;
  out["backend"] = r.backend;
  nb::dict parameters, seconds, statistics;
  for (const auto& [k, v] : r.parameters) parameters[k.c_str()] = v;
  for (const auto& [k, v] : r.stage_seconds) seconds[k.c_str()] = v;
  for (const auto& [k, v] : r.statistics) statistics[k.c_str()] = v;
  out["parameters"] = parameters;
  out["stage_seconds"] = seconds;
  out["statistics"] = statistics;
  out["notes"] = r.notes;
  if (!r.indicator_matches.empty()) {
    std::vector<int64_t> ring, prompts, tokens;
    for (const ringscan::IndicatorMatch& m : r.indicator_matches) {
      ring.push_back(m.ring);
      prompts.push_back(m.prompt_hits);
      tokens.push_back(m.token_hits);
    }
    out["indicator_ring"] = to_numpy(std::move(ring));
    out["indicator_prompt_hits"] = to_numpy(std::move(prompts));
    out["indicator_token_hits"] = to_numpy(std::move(tokens));
  }
  return out;
}

nb::dict detect(const Int64Array& account, const FloatMatrix& embedding, std::optional<Int64Array> time,
                std::optional<Int64Array> account_ids, std::optional<FloatMatrix> features,
                std::vector<std::string> feature_names, std::vector<std::string> categorical,
                std::optional<Int64Matrix> infra, std::vector<std::string> infra_names,
                std::optional<Int64Array> payment, std::optional<Int64Array> created, const nb::dict& options,
                int threads, const std::string& memory_budget, const std::string& device_memory_budget,
                nb::object progress) {
  ringscan::DatasetArrays in;
  in.num_requests = int64_t(account.shape(0));
  in.request_account = account.data();
  if (int64_t(embedding.shape(0)) != in.num_requests)
    throw ringscan::InvalidInput("arrays: embedding has " + std::to_string(embedding.shape(0)) + " rows but account has " +
                                 std::to_string(in.num_requests) + " entries");
  in.dim = int64_t(embedding.shape(1));
  in.embeddings = embedding.data();
  if (time) {
    if (int64_t(time->shape(0)) != in.num_requests)
      throw ringscan::InvalidInput("arrays: time has " + std::to_string(time->shape(0)) + " entries but account has " +
                                   std::to_string(in.num_requests));
    in.request_time = time->data();
  }
  if (account_ids) {
    in.num_accounts = int64_t(account_ids->shape(0));
    in.account_ids = account_ids->data();
  }
  if (features) {
    if (!account_ids) throw ringscan::InvalidInput("arrays: features: given without account_ids (whose order its rows follow)");
    if (int64_t(features->shape(0)) != in.num_accounts)
      throw ringscan::InvalidInput("arrays: features has " + std::to_string(features->shape(0)) +
                                   " rows but account_ids has " + std::to_string(in.num_accounts) + " entries");
    in.feature_dim = int64_t(features->shape(1));
    in.features = features->data();
  }
  in.feature_names = std::move(feature_names);
  in.categorical_features = std::move(categorical);
  if (infra) {
    if (int64_t(infra->shape(0)) != in.num_requests)
      throw ringscan::InvalidInput("arrays: infra has " + std::to_string(infra->shape(0)) + " rows but account has " +
                                   std::to_string(in.num_requests) + " entries");
    in.infra_dim = int64_t(infra->shape(1));
    in.infra = infra->data();
  }
  in.infra_names = std::move(infra_names);
  for (auto [array, name, to] : {std::make_tuple(&payment, "payment", &in.payment),
                                 std::make_tuple(&created, "created", &in.created)}) {
    if (!*array) continue;
    if (!account_ids)
      throw ringscan::InvalidInput(std::string("arrays: ") + name + ": given without account_ids (whose order it follows)");
    if (int64_t((*array)->shape(0)) != in.num_accounts)
      throw ringscan::InvalidInput(std::string("arrays: ") + name + " has " + std::to_string((*array)->shape(0)) +
                                   " entries but account_ids has " + std::to_string(in.num_accounts));
    *to = (*array)->data();
  }
  const ringscan::DetectOptions o = detect_options(options);
  ringscan::Context ctx = make_context(threads, memory_budget, device_memory_budget);
  ProgressRelay relay(std::move(progress));
  ctx.progress = relay.function();
  ringscan::DetectionResult result;
  {
    nb::gil_scoped_release no_gil;
    ringscan::Dataset data = ringscan::dataset_from_arrays(in);
    result = ringscan::detect_rings(std::move(data), o, ctx);
  }
  relay.rethrow();
  if (options.contains("indicators_out") && !options["indicators_out"].is_none())
    ringscan::write_indicators(nb::cast<std::string>(options["indicators_out"]), result.indicators);
  return result_dict(std::move(result));
}

/// The arrays of a Dataset (and, for generated data, roles and ring styles).
nb::dict dataset_dict(ringscan::Dataset&& d, std::vector<int64_t>&& roles = {}, std::vector<int64_t>&& styles = {}) {
  nb::dict out;
  const size_t R = d.request_account.size(), D = size_t(d.dim), A = d.account_ids.size();
  // Requests carry account ids, as a caller's arrays do, not the Dataset's rows.
  std::vector<int64_t> account(R);
  for (size_t r = 0; r < R; ++r) account[r] = d.account_ids[size_t(d.request_account[r])];
  out["account"] = to_numpy(std::move(account));
  out["embedding"] = to_numpy(std::move(d.embeddings), R, D);
  out["time"] = d.request_time.empty() ? nb::none() : nb::cast(to_numpy(std::move(d.request_time)));
  out["account_ids"] = to_numpy(std::move(d.account_ids));
  if (d.feature_dim > 0) {
    std::vector<std::string> categorical;
    for (size_t f = 0; f < d.feature_categorical.size(); ++f)
      if (d.feature_categorical[f]) categorical.push_back(d.feature_names[f]);
    out["features"] = to_numpy(std::move(d.features), A, size_t(d.feature_dim));
    out["feature_names"] = d.feature_names;
    out["categorical_features"] = categorical;
  } else {
    out["features"] = nb::none();
    out["feature_names"] = std::vector<std::string>{};
    out["categorical_features"] = std::vector<std::string>{};
  }
  if (d.infra_dim > 0) {
    out["infra"] = to_numpy(std::move(d.request_infra), R, size_t(d.infra_dim));
    out["infra_names"] = d.infra_names;
  } else {
    out["infra"] = nb::none();
    out["infra_names"] = std::vector<std::string>{};
  }
  out["payment"] = d.account_payment.empty() ? nb::none() : nb::cast(to_numpy(std::move(d.account_payment)));
  out["created"] = d.account_created.empty() ? nb::none() : nb::cast(to_numpy(std::move(d.account_created)));
  out["label"] = d.labels.empty() ? nb::none() : nb::cast(to_numpy(std::move(d.labels)));
  out["role"] = roles.empty() ? nb::none() : nb::cast(to_numpy(std::move(roles)));
  out["ring_style"] = styles.empty() ? nb::none() : nb::cast(to_numpy(std::move(styles)));
  return out;
}

nb::dict load(const std::string& path, bool labels, const std::string& memory_budget) {
  const ringscan::Context ctx = make_context(0, memory_budget, "");
  ringscan::LoadOptions options;
  options.load_labels = labels;
  ringscan::Dataset d;
  {
    nb::gil_scoped_release no_gil;
    d = ringscan::load_dataset(path, ctx, options);
  }
  return dataset_dict(std::move(d));
}

ringscan::GenerateOptions generate_options(const nb::dict& given) {
  ringscan::GenerateOptions g;
  for (const auto& [key, value] : given) {
    const std::string name = nb::cast<std::string>(key);
    if (name == "accounts") g.accounts = nb::cast<int64_t>(value);
    else if (name == "dim") g.dim = nb::cast<int64_t>(value);
    else if (name == "seed") g.seed = nb::cast<uint64_t>(value);
    else if (name == "requests_per_account") g.requests_per_account = nb::cast<double>(value);
    else if (name == "ring_fraction") g.ring_fraction = nb::cast<double>(value);
    else if (name == "lookalike_fraction") g.lookalike_fraction = nb::cast<double>(value);
    else if (name == "viral_prompts") g.viral_prompts = nb::cast<int64_t>(value);
    else if (name == "days") g.days = nb::cast<int64_t>(value);
    else if (name == "ring_population_behaviour") g.ring_population_behaviour = nb::cast<bool>(value);
    else if (name == "noise_features") g.noise_features = nb::cast<int64_t>(value);
    else if (name == "features") g.features = nb::cast<bool>(value);
    else if (name == "times") g.times = nb::cast<bool>(value);
    else if (name == "ring_sessions") g.ring_sessions = nb::cast<bool>(value);
    else if (name == "light_rings") g.light_rings = nb::cast<bool>(value);
    else if (name == "ring_cover") g.ring_cover = nb::cast<double>(value);
    else if (name == "float16") g.float16 = nb::cast<bool>(value);
    else if (name == "shuffle") g.shuffle = nb::cast<bool>(value);
    else if (name == "infrastructure") g.infrastructure = nb::cast<bool>(value);
    else if (name == "proxy_network") g.proxy_network = nb::cast<double>(value);
    else if (name == "operator_seed") g.operator_seed = nb::cast<uint64_t>(value);
    else throw ringscan::InvalidInput("generate: unknown option '" + name + "'");
  }
  ringscan::validate_generate_options(g);
  return g;
}

nb::object generate(const nb::dict& options, std::optional<std::string> path, int threads) {
  const ringscan::GenerateOptions g = generate_options(options);
  const ringscan::Context ctx = make_context(threads, "", "");
  if (path) {
    {
      nb::gil_scoped_release no_gil;
      ringscan::generate_dataset(*path, g, ctx);
    }
    return nb::none();
  }
  std::vector<int64_t> roles, styles;
  ringscan::Dataset d;
  {
    nb::gil_scoped_release no_gil;
    d = ringscan::generate_in_memory(g, ctx, &roles, &styles);
  }
  return dataset_dict(std::move(d), std::move(roles), std::move(styles));
}

nb::dict evaluate(const Int64Array& ring, const Int64Array& truth) {
  if (ring.shape(0) != truth.shape(0))
    throw ringscan::InvalidInput("evaluate: " + std::to_string(ring.shape(0)) + " ring labels but " +
                                 std::to_string(truth.shape(0)) + " truth labels");
  const std::vector<int64_t> r(ring.data(), ring.data() + ring.shape(0)), t(truth.data(), truth.data() + truth.shape(0));
  const ringscan::Evaluation e = ringscan::evaluate_rings(r, t);
  nb::dict out;
  out["ring_recall"] = e.ring_recall;
  out["account_precision"] = e.account_precision;
  out["account_recall"] = e.account_recall;
  out["adjusted_rand_index"] = e.adjusted_rand_index;
  out["planted_rings"] = e.planted_rings;
  out["reported_rings"] = e.reported_rings;
  out["found_rings"] = e.found_rings;
  out["false_ring_accounts"] = e.false_ring_accounts;
  nb::list matches;
  for (const ringscan::RingMatch& m : e.matches) {
    nb::dict x;
    x["truth_label"] = m.truth_label;
    x["truth_size"] = m.truth_size;
    x["best_ring"] = m.best_ring;
    x["jaccard"] = m.jaccard;
    x["found"] = m.found;
    matches.append(x);
  }
  out["per_ring"] = matches;
  return out;
}

}  // namespace

NB_MODULE(_ringscan, m) {
  m.doc() = "ringscan's library on numpy arrays (use the `ringscan` package, not this module)";
  // Python exception classes with two bases each, so that callers may catch ringscan.Error
  // or the builtin they expect (ValueError for bad input, MemoryError for memory).
  static nb::object error = nb::steal(PyErr_NewException("ringscan.Error", PyExc_Exception, nullptr));
  static nb::object invalid = nb::steal(PyErr_NewException(
      "ringscan.InvalidInputError", nb::make_tuple(error, nb::handle(PyExc_ValueError)).ptr(), nullptr));
  static nb::object budget = nb::steal(PyErr_NewException(
      "ringscan.MemoryBudgetError", nb::make_tuple(error, nb::handle(PyExc_MemoryError)).ptr(), nullptr));
  static nb::object out_of_memory = nb::steal(PyErr_NewException(
      "ringscan.OutOfMemoryError", nb::make_tuple(error, nb::handle(PyExc_MemoryError)).ptr(), nullptr));
  m.attr("Error") = error;
  m.attr("InvalidInputError") = invalid;
  m.attr("MemoryBudgetError") = budget;
  m.attr("OutOfMemoryError") = out_of_memory;
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ringscan::BudgetExceeded& e) {
      PyErr_SetString(budget.ptr(), e.what());
    } catch (const ringscan::InvalidInput& e) {
      PyErr_SetString(invalid.ptr(), e.what());
    } catch (const ringscan::OutOfMemory& e) {
      PyErr_SetString(out_of_memory.ptr(), e.what());
    } catch (const ringscan::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(out_of_memory.ptr(), "out of memory (std::bad_alloc)");
    }
  });

  m.def("detect", &detect, "account"_a, "embedding"_a, "time"_a.none(), "account_ids"_a.none(), "features"_a.none(),
        "feature_names"_a, "categorical_features"_a, "infra"_a.none(), "infra_names"_a, "payment"_a.none(),
        "created"_a.none(), "options"_a, "threads"_a, "memory_budget"_a,
        "device_memory_budget"_a, "progress"_a.none());
  m.def("load", &load, "path"_a, "labels"_a, "memory_budget"_a);
  m.def("generate", &generate, "options"_a, "path"_a.none(), "threads"_a);
  m.def("evaluate", &evaluate, "ring"_a, "truth"_a);
  m.def("backends", [] {
    const ringscan::BuildInfo info = ringscan::build_info();
    nb::dict out;
    out["cuda_compiled"] = info.cuda_compiled;
    out["cuda_devices"] = info.cuda_devices;
    out["version"] = RINGSCAN_VERSION;
    return out;
  });
}
