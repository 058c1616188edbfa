// The `ringscan` command: generate, detect, evaluate, info.
//
// Exit codes: 0 success; 2 invalid usage (command line) or invalid input, including a job
// over its memory budget; 1 any other failure. Every error is one line on stderr,
// "ringscan: error: <message>". Results go to stdout, progress and logs to stderr, so that
// `ringscan evaluate ... > metrics.json` stays clean.
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fmt/core.h>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__has_include)
#if __has_include(<faiss/Index.h>)
// Only the version macros are used: the executable does not link FAISS itself (the library
// does, privately), and the headers are the ones the library was built against.
#include <faiss/Index.h>
#define RINGSCAN_CLI_HAVE_FAISS_VERSION 1
#endif
#endif

#include "cli/progress.hpp"
#include "utc_text.hpp"
#include "ringscan/backend.hpp"
#include "ringscan/context.hpp"
#include "ringscan/distributed_detect.hpp"
#include "ringscan/error.hpp"
#include "ringscan/evaluate.hpp"
#include "ringscan/export.hpp"
#include "ringscan/ring_report.hpp"
#include "ringscan/fault_injection.hpp"
#include "ringscan/generate.hpp"
#include "ringscan/indicators.hpp"
#include "ringscan/io.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/process_group.hpp"
#include "ringscan/report.hpp"

#ifndef RINGSCAN_VERSION
#define RINGSCAN_VERSION "unknown"
#endif

namespace {

using ringscan::Context;
using ringscan::InvalidInput;
using ringscan::cli::Progress;
using ringscan::cli::format_count;
namespace fs = std::filesystem;

// Options every data-processing subcommand takes.
struct CommonArgs {
  int threads = 0;
  std::string memory_budget;  // empty: Context::default_memory_budget()
  bool quiet = false;
};

// CLI11's own range validators print the whole double range in their message.
CLI::Validator number_check(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](std::string& text) -> std::string {
        try {
          std::size_t pos = 0;
          const double v = std::stod(text, &pos);
          if (pos == text.size() && (v > 0 || (allow_zero && v == 0))) return {};
        } catch (const std::exception&) {
        }
        return std::string("must be a ") + (allow_zero ? "non-negative" : "positive") +
               " number, got '" + text + "'";
      },
      allow_zero ? ">=0" : ">0");
}

// Option groups of --help, in the order they are shown.
constexpr const char* kInput = "Input";
constexpr const char* kEvidence = "Evidence";
constexpr const char* kClustering = "Clustering";
constexpr const char* kOutput = "Output";
constexpr const char* kResources = "Resources";

void add_common_options(CLI::App* sub, CommonArgs& args) {
  sub->add_option("--threads", args.threads, "CPU threads (0: all cores; more than the cores: capped)")
      ->check(number_check(true))
      ->capture_default_str()
      ->group(kResources);
  sub->add_option("--memory-budget", args.memory_budget,
                  "Memory the job may hold, e.g. 512M, 8G, 1.5GiB (default: 80% of RAM)")
      ->type_name("SIZE")
      ->default_str(ringscan::format_size(Context::default_memory_budget()))
      ->group(kResources);
  sub->add_flag("-q,--quiet", args.quiet, "No progress output on stderr")->group(kOutput);
}

/// Puts the named options of `sub` under `group` in --help.
void group_options(CLI::App* sub, const char* group, std::initializer_list<const char*> names) {
  for (const char* name : names) sub->get_option(name)->group(group);
}

/// "1 ring", "2 rings".
std::string count_of(int64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

/// The cores this process may run on.
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max(1, int(std::thread::hardware_concurrency()));
}

/// The threads a job runs on: more than the cores only slow it down (and tens of thousands
/// exhaust the stacks' address space), so they are capped, with a word.
int capped_threads(int requested) {
  const int cores = usable_cores();
  if (requested <= cores) return requested;
  spdlog::warn("--threads {} is more than the {} cores this process may use; using {}", requested, cores, cores);
  return cores;
}

// How the subcommands that read files treat them: untrusted, parsed in a child process.
struct ReadArgs {
  bool no_isolation = false;
  double timeout_seconds = 0;

  ringscan::IsolationLimits limits() const { return {timeout_seconds}; }

  // Each read, in a child process unless --no-isolation: the one place that choice is made.
  ringscan::InputShape shape(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_input_shape(path)
                        : ringscan::read_input_shape_isolated(path, ctx, limits());
  }
  ringscan::Dataset dataset(const std::string& path, const Context& ctx, const ringscan::LoadOptions& options = {}) const {
    return no_isolation ? ringscan::load_dataset(path, ctx, options)
                        : ringscan::load_dataset_isolated(path, ctx, options, limits());
  }
  ringscan::InputSummary summary(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::describe_input(path, ctx)
                        : ringscan::describe_input_isolated(path, ctx, limits());
  }
  ringscan::DetectionLabels detection_labels(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_detection_labels(path)
                        : ringscan::read_detection_labels_isolated(path, ctx, limits());
  }
  ringscan::RingGraph ring_graph(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_ring_graph(path) : ringscan::read_ring_graph_isolated(path, ctx, limits());
  }
  std::vector<ringscan::Ring> rings(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_rings(path) : ringscan::read_rings_isolated(path, ctx, limits());
  }
  std::vector<std::string> request_texts(const std::string& path, const std::vector<int64_t>& rows,
                                         const Context& ctx) const {
    return no_isolation ? ringscan::read_request_texts(path, rows)
                        : ringscan::read_request_texts_isolated(path, rows, ctx, limits());
  }
  ringscan::TruthLabels truth_labels(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_truth_labels(path, ctx)
                        : ringscan::read_truth_labels_isolated(path, ctx, limits());
  }
  std::string format(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_file_format(path)
                        : ringscan::read_file_format_isolated(path, ctx, limits());
  }
  ringscan::Allowlist allowlist(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_allowlist(path, ctx.memory_budget)
                        : ringscan::read_allowlist_isolated(path, ctx, limits());
  }
  std::vector<int64_t> seed_accounts(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::read_seed_accounts(path, ctx.memory_budget)
                        : ringscan::read_seed_accounts_isolated(path, ctx, limits());
  }
  ringscan::OutputSummary output_summary(const std::string& path, const Context& ctx) const {
    return no_isolation ? ringscan::describe_detection_output(path)
                        : ringscan::describe_detection_output_isolated(path, ctx, limits());
  }
};

void add_read_options(CLI::App* sub, ReadArgs& args) {
  sub->add_flag("--no-isolation", args.no_isolation,
                "Parse input files in this process, not in a child process (a file that "
                "crashes HDF5 then crashes ringscan)")
      ->group(kInput);
  sub->add_option("--read-timeout", args.timeout_seconds,
                  "Seconds allowed for reading an input file (0: 60 s + 1 s per 20 MB)")
      ->type_name("SECONDS")
      ->check(number_check(true))
      ->capture_default_str()
      ->group(kInput);
}

// The job's resources from the command line; made first in every subcommand, so that a bad
// budget is refused before any file is touched.
Context make_context(const CommonArgs& args, Progress& progress) {
  Context ctx;
  ctx.threads = capped_threads(args.threads);
  ctx.memory_budget = args.memory_budget.empty() ? Context::default_memory_budget()
                                                 : ringscan::parse_size(args.memory_budget);
  ctx.progress = progress.callback();
  return ctx;
}

// Fails before any work when a result could not be written at the end (a missing
// directory, no permission): a long detection should not be lost to a typo in -o.
void require_writable(const std::string& path, const std::string& what) {
  RINGSCAN_EXPECTS(!path.empty(), what + ": empty path");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  RINGSCAN_EXPECTS(fs::is_directory(dir, ec),
                   "cannot write " + what + " '" + path + "': directory '" + dir.string() +
                       "' does not exist");
  RINGSCAN_EXPECTS(access(dir.c_str(), W_OK | X_OK) == 0,
                   "cannot write " + what + " '" + path + "': directory '" + dir.string() +
                       "' is not writable");
  RINGSCAN_EXPECTS(!fs::is_directory(path, ec),
                   "cannot write " + what + " '" + path + "': it is a directory");
}

// True when both paths name the same file: an existing one (through symlinks and hard
// links), or the same place for one not yet written.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  std::error_code ea, eb;
  const fs::path pa = fs::weakly_canonical(fs::absolute(a, ea), ea);
  const fs::path pb = fs::weakly_canonical(fs::absolute(b, eb), eb);
  return !ea && !eb && pa == pb;
}

/// An output path of a command (what it is, e.g. "--json", and the path; empty: none).
struct OutputPath {
  std::string what, path;
};

// Refuses, before anything is read or written, a command one of whose outputs would replace
// one of its inputs or another of its outputs: a result must never clobber its own input.
void refuse_overwriting(const std::vector<OutputPath>& outputs, const std::vector<std::string>& inputs) {
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const OutputPath& o = outputs[i];
    if (o.path.empty()) continue;
    for (const std::string& in : inputs)
      RINGSCAN_EXPECTS(!same_file(o.path, in), o.what + " '" + o.path + "' is the input file '" + in +
                                                   "'; refusing to overwrite it");
    for (std::size_t j = 0; j < i; ++j)
      RINGSCAN_EXPECTS(outputs[j].path.empty() || !same_file(o.path, outputs[j].path),
                       o.what + " '" + o.path + "' is also the " + outputs[j].what + " '" + outputs[j].path +
                           "'; give each output its own path");
  }
}

/// Why a device, or a driver, is there but the CUDA backend cannot use it; empty otherwise.
/// Worth saying, since `--device auto` then runs on the CPU (a machine with neither is
/// simply a CPU machine).
std::string unused_gpu_problem(const ringscan::BuildInfo& info) {
  if (info.cuda_devices == 0 && info.cuda_error.empty()) return "";
  return ringscan::cuda_backend_problem(info);
}

std::string version_text() {
  const ringscan::BuildInfo info = ringscan::build_info();
  std::string text = std::string("ringscan ") + RINGSCAN_VERSION + "\n";
  text += std::string("backends: cpu") + (info.cuda_compiled ? ", cuda" : "") + "\n";
  if (info.cuda_compiled) {
    text += "CUDA devices: " + std::to_string(info.cuda_devices);
    if (!info.cuda_device_names.empty()) text += " (" + info.cuda_device_names + ")";
    text += "\n";
    if (const std::string problem = unused_gpu_problem(info); !problem.empty())
      text += "CUDA backend unusable here: " + problem + "\n";
  } else {
    text += "CUDA devices: not probed (CUDA backend not compiled in)\n";
  }
#ifdef RINGSCAN_CLI_HAVE_FAISS_VERSION
  text += fmt::format("FAISS {}.{}.{}\n", FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR,
                      FAISS_VERSION_PATCH);
#endif
  if (info.cuda_compiled)
    text += std::string("device kNN: ") +
            (info.faiss_gpu ? "FAISS has GPU indices, but ringscan uses its own cuBLAS kNN"
                            : "ringscan's own cuBLAS kNN (the FAISS found at build time has no GPU indices)") +
            ", exact up to " + std::to_string(ringscan::kDeviceExactJoinRows) + " rows, over a k-means partition above" +
            "\n";
  text.pop_back();  // CLI11 adds the final newline
  return text;
}

std::string format_utc(int64_t unix_seconds) { return ringscan::detail::utc_text(unix_seconds, "%Y-%m-%d %H:%M:%S UTC"); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s + "]";
}

// ---------------------------------------------------------------------------------------
// generate

struct GenerateArgs {
  std::string output;
  ringscan::GenerateOptions options;
  bool no_shuffle = false;
  CommonArgs common;
};

CLI::App* add_generate(CLI::App& app, GenerateArgs& a) {
  CLI::App* sub = app.add_subcommand(
      "generate", "Write a synthetic input file with planted rings and hard look-alikes");
  sub->option_defaults()->always_capture_default();
  auto& o = a.options;
  sub->add_option("-o,--output", a.output, "Input file to create (HDF5)")->required();
  sub->add_option("--accounts", o.accounts, "Total accounts")->check(number_check(false));
  sub->add_option("--dim", o.dim, "Embedding width D")->check(number_check(false));
  sub->add_option("--seed", o.seed, "Random seed (the file is a function of it)");
  sub->add_option("--requests-per-account", o.requests_per_account,
                  "Mean requests per account (heavy-tailed)");
  sub->add_option("--ring-fraction", o.ring_fraction, "Share of accounts in rings");
  sub->add_option("--lookalike-fraction", o.lookalike_fraction,
                  "Share of accounts in look-alike teams and trending crowds");
  sub->add_option("--viral-prompts", o.viral_prompts,
                  "Prompts pasted by many unrelated accounts");
  sub->add_option("--days", o.days, "Time span of the traffic in days");
  sub->add_flag("--float16", o.float16, "Store embeddings as IEEE half floats");
  sub->add_flag("--no-shuffle", a.no_shuffle,
                "Write requests grouped by account instead of interleaved");
  // Regimes of the robustness matrix: each takes away or blurs one kind of evidence.
  sub->add_flag("--ring-population-behaviour", o.ring_population_behaviour,
                "Ring members' clients vary as widely as the population's (no scripted client)");
  sub->add_option("--noise-features", o.noise_features,
                  "Extra behaviour columns of pure noise")->check(number_check(true));
  sub->add_flag("--no-features{false}", o.features, "Leave /accounts/features out");
  sub->add_flag("--no-times{false}", o.times, "Leave /requests/time out");
  sub->add_flag("--ring-sessions", o.ring_sessions,
                "Rings work in sessions of 1-3 hours instead of bursts of 5-25 minutes");
  sub->add_flag("--light-rings", o.light_rings, "Ring members send 2-5 requests each");
  sub->add_flag("--infra", o.infrastructure,
                "Write infrastructure tokens (/requests/infra: ip24, asn, client_fingerprint), payment "
                "instruments and sign-up times");
  sub->add_option("--operator-seed", o.operator_seed,
                  "Seed of the operators and their world (topics, ring prompt pools, proxies, cards): files "
                  "with one operator seed hold the same operators' rings in new accounts (default: the seed)");
  sub->add_option("--proxy-network", o.proxy_network,
                  "Share of accounts run by one proxy network: 1-3 requests a day, mostly resold ordinary "
                  "traffic, all through a proxy service ordinary customers use too (needs --infra)")
      ->check(number_check(true));
  sub->add_option("--ring-cover", o.ring_cover,
                  "Share of cover traffic of every ring (default: 0-35% per ring)")
      ->check(number_check(true))
      ->default_str("0-0.35 per ring");
  add_common_options(sub, a.common);
  group_options(sub, kOutput, {"--output", "--float16", "--no-shuffle"});
  group_options(sub, "Population", {"--accounts", "--dim", "--seed", "--requests-per-account", "--ring-fraction",
                                    "--lookalike-fraction", "--viral-prompts", "--days", "--infra",
                                    "--operator-seed"});
  group_options(sub, "Regimes (each takes away or blurs one kind of evidence)",
                {"--ring-population-behaviour", "--noise-features", "--no-features", "--no-times", "--ring-sessions",
                 "--light-rings", "--ring-cover", "--proxy-network"});
  return sub;
}

int run_generate(GenerateArgs& a) {
  ringscan::validate_generate_options(a.options);
  Progress progress = Progress::for_stderr(a.common.quiet);
  const Context ctx = make_context(a.common, progress);
  require_writable(a.output, "output");
  a.options.shuffle = !a.no_shuffle;
  const ringscan::GenerateSummary s = ringscan::generate_dataset(a.output, a.options, ctx);
  progress.finish();
  std::cout << fmt::format(
      "wrote {}: {}, {}, {} ({}), {}, {}, {} ({})\n", a.output, count_of(s.accounts, "account"),
      count_of(s.requests, "request"), count_of(s.rings, "ring"), count_of(s.ring_accounts, "account"),
      count_of(s.teams, "team"), count_of(s.crowds, "crowd"), count_of(s.viral_prompts, "viral prompt"),
      count_of(s.viral_accounts, "account"));
  return 0;
}

// ---------------------------------------------------------------------------------------
// detect

struct DetectArgs {
  std::string input, output, report, allow, seeds, indicators_in, indicators_out;
  std::string device = "auto";
  std::string device_memory_budget;  // empty: 90% of the device's free memory
  ringscan::DetectOptions options;
  CommonArgs common;
  ReadArgs read;
};

CLI::App* add_detect(CLI::App& app, DetectArgs& a) {
  CLI::App* sub = app.add_subcommand("detect", "Find coordinated account rings in an input file");
  sub->option_defaults()->always_capture_default();
  auto& o = a.options;
  // Added group by group: --help shows the groups in the order of their first option.
  sub->add_option("INPUT", a.input, "Input file (HDF5, schema ringscan v1)")
      ->required()
      ->check(CLI::ExistingFile)
      ->group(kInput);
  add_read_options(sub, a.read);
  sub->add_option("--allow", a.allow,
                  "Allowlist: accounts and tokens known to be legitimate, one a line (an account id, or "
                  "KIND:VALUE such as ip24:1234 or payment:99) or an HDF5 file (/allow/accounts, /allow/KIND); "
                  "their tokens give no evidence and their accounts are never in a ring")
      ->group(kInput);
  sub->add_option("--seeds", a.seeds,
                  "Accounts known to be in rings, one id a line, or an HDF5 file (/seeds, or an earlier detect "
                  "output's ring members): their pairs are held to 1,000 expected false edges per million "
                  "instead of --false-edges, and the rings that hold them are marked")
      ->group(kInput);
  sub->add_option("--indicators-in", a.indicators_in,
                  "Indicators of rings found elsewhere (written by --indicators-out): accounts that send two of "
                  "their prompts, or one and use one of their tokens, are flagged (/accounts/indicator_ring)")
      ->check(CLI::ExistingFile)
      ->group(kInput);
  sub->add_option("--false-edges", o.false_edges_per_million,
               "Expected edges between independent accounts per million candidate pairs "
               "(an edge needs ln(10^6 / this) nats)")
      ->group(kEvidence);
  sub->add_option("--duplicate-similarity", o.duplicate_similarity, "Similarity at which two prompts are near-duplicates: a cosine measured from the file's median "
               "unrelated pair (m), that is the cosine m + this x (1 - m)")
      ->group(kEvidence);
  sub->add_option("--template-similarity", o.template_similarity,
               "Lowest similarity of template groups (prompts with no near-duplicate), measured as "
               "--duplicate-similarity is; 0: from the file")
      ->group(kEvidence);
  sub->add_option("--duplicate-neighbours", o.duplicate_neighbours, "k of the request kNN")->group(kEvidence);
  sub->add_option("--max-prompt-share", o.max_prompt_share,
               "Prompt groups sent by more than this share of accounts are no evidence")
      ->group(kEvidence);
  sub->add_option("--time-window", o.time_window_seconds, "Co-activity window of the timing profiles (seconds)")
      ->type_name("SECONDS")
      ->group(kEvidence);
  sub->add_option("--account-neighbours", o.account_neighbours, "k of each account kNN")->group(kEvidence);
  sub->add_option("--min-core-degree", o.min_core_degree, "Edges an account needs to be a cluster core")
      ->group(kClustering);
  sub->add_flag("--no-merge{false}", o.merge_clusters, "Do not merge clusters that carry evidence together")
      ->group(kClustering);
  sub->add_option("--min-ring-size", o.min_ring_size, "Smallest ring reported")->group(kClustering);
  sub->add_option("--ring-threshold", o.ring_threshold,
               "Lower bound of the members' shared-prompt share that makes a cluster a ring")
      ->group(kClustering);
  sub->add_option("-o,--output", a.output, "Output file to write (HDF5)")->required()->group(kOutput);
  sub->add_option("--report", a.report, "Also write the JSON report of the rings here")->group(kOutput);
  sub->add_option("--report-examples", o.report_examples, "Shared-prompt examples per ring in the report")
      ->group(kOutput);
  sub->add_option("--indicators-out", a.indicators_out,
                  "Also write every ring's shareable indicators here (JSON: prompt exemplars, rare tokens, "
                  "active and sign-up spans; docs/indicators.md)")
      ->group(kOutput);
  sub->add_option("--device", a.device, "Backend: auto (CUDA when built in and a device is present), cpu, cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->group(kResources);
  sub->add_option("--device-memory-budget", a.device_memory_budget, "GPU memory the CUDA stages may hold, e.g. 40G")
      ->type_name("SIZE")
      ->default_str("90% of free")
      ->group(kResources);
  sub->add_option("--exact-request-limit", o.exact_request_limit, "Exact request index up to this many, IVF above")
      ->group(kResources);
  sub->add_option("--reduced-dim", o.reduced_dim, "Projection width of the IVF request index")->group(kResources);
  sub->add_option("--exact-account-limit", o.exact_account_limit, "Exact account indices up to this many, IVF above")
      ->group(kResources);
  add_common_options(sub, a.common);
  return sub;
}

void print_top_rings(const ringscan::DetectionResult& r, std::ostream& out) {
  int64_t ring_accounts = 0;
  for (const int64_t v : r.ring) ring_accounts += v >= 0;
  out << fmt::format("{} among {} ({} in rings), backend {}\n", count_of(int64_t(r.rings.size()), "ring"),
                     count_of(int64_t(r.account_ids.size()), "account"), count_of(ring_accounts, "account"),
                     r.backend);
  if (r.rings.empty()) return;
  const std::size_t shown = std::min<std::size_t>(r.rings.size(), 10);
  out << fmt::format(
      "top {} (ring = value in /accounts/ring; shared: share of the members' requests in prompts they "
      "share, score: its 99% lower bound; sync, behav: mean evidence of the ring's edges, nats):\n",
      shown);
  out << fmt::format("{:>5} {:>6} {:>6} {:>7} {:>6} {:>6} {:>7} {:>9}  {}\n", "ring", "size",
                     "score", "shared", "sync", "behav", "divers", "requests", "members");
  constexpr std::size_t kMembersShown = 6;
  for (std::size_t i = 0; i < shown; ++i) {
    const ringscan::Ring& g = r.rings[i];
    std::string members;
    for (std::size_t m = 0; m < std::min(kMembersShown, g.members.size()); ++m)
      members += (m ? " " : "") + std::to_string(g.members[m]);
    if (g.members.size() > kMembersShown)
      members += fmt::format(" ... (+{})", g.members.size() - kMembersShown);
    out << fmt::format("{:>5} {:>6} {:>6.3f} {:>7.2f} {:>6.1f} {:>6.1f} {:>7.3f} {:>9}  {}\n",
                       g.id, g.size, g.score, g.shared_prompt_strength, g.synchrony,
                       g.behaviour_tightness, g.prompt_diversity,
                       format_count(static_cast<int64_t>(g.volume)), members);
    // The strongest shared-prompt group is the most legible evidence for a reviewer.
    if (!g.examples.empty()) {
      const ringscan::SharedPromptExample& e = g.examples.front();
      out << fmt::format(
          "{:>5} evidence: {} ({} shown in the report); strongest sent by {} of {} members and "
          "{} overall (idf {:.2f}), e.g. request rows",
          "", count_of(g.shared_groups, "shared prompt group"), g.examples.size(), e.accounts_in_ring, g.size,
          count_of(e.accounts_overall, "account"), e.idf);
      for (std::size_t k = 0; k < std::min<std::size_t>(e.request_rows.size(), 3); ++k)
        out << ' ' << e.request_rows[k];
      out << '\n';
    }
    if (g.seeds > 0)
      out << fmt::format("{:>5} seeds: {} of its {} members were known (--seeds)\n", "", g.seeds, g.size);
    if (!g.shared_tokens.empty()) {
      const ringscan::SharedTokenExample& t = g.shared_tokens.front();
      out << fmt::format("{:>5} infrastructure: {} {} used by {} of {} members and {} overall", "", t.kind, t.token,
                         t.accounts_in_ring, g.size, count_of(t.accounts_overall, "account"));
      if (g.sign_up_first != 0)
        out << fmt::format("; signed up within {:.1f} days", double(g.sign_up_last - g.sign_up_first) / 86400.0);
      out << '\n';
    }
  }
  if (r.rings.size() > shown) out << fmt::format("... and {} more\n", r.rings.size() - shown);
}

void print_indicator_matches(const ringscan::DetectionResult& r, const std::string& source, std::ostream& out) {
  if (r.indicator_matches.empty()) return;
  std::map<int64_t, std::pair<int64_t, int64_t>> by_ring;  // indicator ring -> (accounts, in rings)
  for (std::size_t i = 0; i < r.indicator_matches.size(); ++i)
    if (const int64_t ring = r.indicator_matches[i].ring; ring >= 0) {
      ++by_ring[ring].first;
      by_ring[ring].second += r.ring[i] >= 0;
    }
  out << fmt::format("indicators of {}: {} matched", source, count_of(int64_t(by_ring.size()), "ring"));
  for (const auto& [ring, m] : by_ring)
    out << fmt::format("; ring {}: {} ({} in reported rings)", ring, count_of(m.first, "account"), m.second);
  out << " (/accounts/indicator_ring)\n";
}

int run_detect(DetectArgs& a, ringscan::ProcessGroup* group) {
  // Started by mpirun or srun as one of several ranks: a distributed detection, of which
  // rank 0 reports and writes the output.
  const bool distributed = group != nullptr && group->size() > 1;
  const bool writer = !distributed || group->rank() == 0;
  Progress progress = Progress::for_stderr(a.common.quiet);
  Context ctx = make_context(a.common, progress);
  ringscan::InputShape shape;
  const auto prepare = [&] {
    // Everything the command line says is checked before any file is read: on a large input
    // a typo would otherwise surface minutes later.
    a.options.device = ringscan::parse_device(a.device);
    ringscan::validate_detect_options(a.options);
    if (!a.allow.empty()) a.options.allow = a.read.allowlist(a.allow, ctx);
    if (!a.seeds.empty()) {
      a.options.seeds = a.read.seed_accounts(a.seeds, ctx);
      a.options.seeds_source = a.seeds;
    }
    if (!a.device_memory_budget.empty()) ctx.device_memory_budget = ringscan::parse_size(a.device_memory_budget);
    if (!a.indicators_in.empty()) {
      a.options.known_indicators = ringscan::read_indicators(a.indicators_in, ctx.memory_budget);
      a.options.known_indicators_source = a.indicators_in;
    }
    a.options.collect_indicators = !a.indicators_out.empty();
    if (distributed) ringscan::check_distributed_options(a.options);
    refuse_overwriting({{"output", a.output}, {"report", a.report}, {"indicators", a.indicators_out}},
                       {a.input, a.indicators_in});
    if (writer) {
      require_writable(a.output, "output");
      if (!a.report.empty()) require_writable(a.report, "report");
      if (!a.indicators_out.empty()) require_writable(a.indicators_out, "indicators");
    }
    // The backend is checked before loading: a large input takes minutes to read.
    ringscan::make_backend(a.options.device);
    if (a.options.device == ringscan::Device::Auto && !distributed)
      if (const std::string problem = unused_gpu_problem(ringscan::build_info()); !problem.empty())
        spdlog::warn("--device auto: {}; running on the CPU backend", problem);

    // What a killed earlier run left beside the outputs goes now, not after a long detection.
    if (writer) {
      ringscan::remove_stale_temporaries(a.output);
      if (!a.report.empty()) ringscan::remove_stale_temporaries(a.report);
      if (!a.indicators_out.empty()) ringscan::remove_stale_temporaries(a.indicators_out);
    }
    // Refused up front, from the declared shapes (each rank's share over ranks), rather than
    // after minutes of loading. The headers are untrusted too: read in the child unless
    // isolation is off.
    shape = a.read.shape(a.input, ctx);
    ringscan::check_indicator_width(a.options.known_indicators, shape.dim, a.options.known_indicators_source);
    ringscan::require_detection_memory(shape, a.options, ctx, distributed ? group->size() : 1);
  };
  // Over ranks, every rank checks alike and they agree: rank 0 reports an error once, and
  // every rank exits with it.
  if (distributed)
    ringscan::on_every_rank(*group, prepare);
  else
    prepare();
  ringscan::DetectionResult result;
  if (distributed) {
    const ringscan::DistributedInput input{
        a.input, [&] { return shape; },
        [&](const ringscan::LoadOptions& share) { return a.read.dataset(a.input, ctx, share); }};
    result = ringscan::detect_rings_distributed(*group, input, a.options, ctx);
    if (!writer) return 0;
  } else {
    // Scoped so the requests are freed before the output is written; the pipeline takes
    // the embeddings over instead of copying them.
    const auto started = std::chrono::steady_clock::now();
    ringscan::Dataset data = a.read.dataset(a.input, ctx);
    const double load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    result = ringscan::detect_rings(std::move(data), a.options, ctx);
    result.stage_seconds.insert(result.stage_seconds.begin(), {"load", load_seconds});
  }
  // What this input does not let the detector see is said, whether or not rings are found.
  for (const auto& note : result.notes) spdlog::warn("{}", note);
  // The detection is the job's peak; writing adds a few buffers.
  result.statistics.emplace_back("peak_resident_bytes", double(ringscan::peak_resident_bytes()));
  if (result.input_path.empty()) result.input_path = a.input;

  const int64_t writes = 1 + !a.report.empty() + !a.indicators_out.empty();
  int64_t written = 0;
  ctx.report("write", written, writes);
  ringscan::write_detection_output(a.output, result);
  ctx.report("write", ++written, writes);
  if (!a.report.empty()) {
    ringscan::write_file_atomically(a.report, ringscan::report_json(result, 2));
    ctx.report("write", ++written, writes);
  }
  if (!a.indicators_out.empty()) {
    ringscan::write_indicators(a.indicators_out, result.indicators);
    ctx.report("write", ++written, writes);
  }
  progress.finish();

  print_top_rings(result, std::cout);
  print_indicator_matches(result, a.indicators_in, std::cout);
  std::cout << "wrote " << a.output << (a.report.empty() ? "" : ", " + a.report)
            << (a.indicators_out.empty() ? "" : ", " + a.indicators_out) << "\n";
  return 0;
}

// ---------------------------------------------------------------------------------------
// evaluate

struct EvaluateArgs {
  std::string output, truth, json;
  CommonArgs common;
  ReadArgs read;
};

CLI::App* add_evaluate(CLI::App& app, EvaluateArgs& a) {
  CLI::App* sub = app.add_subcommand(
      "evaluate", "Compare the rings of a detect output with the ground truth of an input file");
  sub->add_option("OUTPUT", a.output, "Output file of detect (HDF5)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--truth", a.truth, "Input file with /accounts/label")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--json", a.json, "Also write the metrics (JSON) to this file");
  add_common_options(sub, a.common);
  add_read_options(sub, a.read);
  group_options(sub, kInput, {"OUTPUT", "--truth"});
  group_options(sub, kOutput, {"--json"});
  return sub;
}

/// For each account of the output, its row in the truth file; the two account sets must be
/// equal.
std::vector<std::size_t> align_truth(const ringscan::DetectionLabels& det,
                                     const ringscan::TruthLabels& truth, const std::string& output,
                                     const std::string& truth_path) {
  const std::string both = " (output '" + output + "', truth '" + truth_path + "')";
  RINGSCAN_EXPECTS(truth.account_ids.size() == truth.label.size(),
                   "truth file has " + std::to_string(truth.account_ids.size()) +
                       " account ids but " + std::to_string(truth.label.size()) + " labels" +
                       both);
  RINGSCAN_EXPECTS(det.account_ids.size() == det.ring.size(),
                   "output file has " + std::to_string(det.account_ids.size()) +
                       " account ids but " + std::to_string(det.ring.size()) + " ring labels" +
                       both);
  RINGSCAN_EXPECTS(det.account_ids.size() == truth.account_ids.size(),
                   "the output has " + std::to_string(det.account_ids.size()) +
                       " accounts and the truth " + std::to_string(truth.account_ids.size()) +
                       ": the account sets differ" + both);
  std::unordered_map<int64_t, std::size_t> row;
  row.reserve(truth.account_ids.size());
  for (std::size_t i = 0; i < truth.account_ids.size(); ++i)
    RINGSCAN_EXPECTS(row.emplace(truth.account_ids[i], i).second,
                     "account id " + std::to_string(truth.account_ids[i]) +
                         " appears twice in the truth" + both);
  std::vector<std::size_t> aligned(det.account_ids.size());
  std::vector<char> used(truth.account_ids.size(), 0);
  for (std::size_t i = 0; i < det.account_ids.size(); ++i) {
    const auto it = row.find(det.account_ids[i]);
    RINGSCAN_EXPECTS(it != row.end(), "account id " + std::to_string(det.account_ids[i]) +
                                          " is in the output but not in the truth: the "
                                          "account sets differ" + both);
    RINGSCAN_EXPECTS(!used[it->second], "account id " + std::to_string(det.account_ids[i]) +
                                            " appears twice in the output" + both);
    used[it->second] = 1;
    aligned[i] = it->second;
  }
  return aligned;
}

int run_evaluate(EvaluateArgs& a) {
  Progress progress = Progress::for_stderr(a.common.quiet);
  const Context ctx = make_context(a.common, progress);
  refuse_overwriting({{"--json", a.json}}, {a.output, a.truth});
  if (!a.json.empty()) require_writable(a.json, "metrics");
  const ringscan::DetectionLabels det = a.read.detection_labels(a.output, ctx);
  const ringscan::TruthLabels truth = a.read.truth_labels(a.truth, ctx);
  const std::vector<std::size_t> rows = align_truth(det, truth, a.output, a.truth);
  std::vector<int64_t> labels(rows.size()), roles;
  for (std::size_t i = 0; i < rows.size(); ++i) labels[i] = truth.label[rows[i]];
  if (!truth.role.empty())
    for (std::size_t i = 0; i < rows.size(); ++i) roles.push_back(truth.role[rows[i]]);
  const ringscan::Evaluation ev = ringscan::evaluate_rings(det.ring, labels);
  progress.finish();

  nlohmann::ordered_json j;
  j["output"] = a.output;
  j["truth"] = a.truth;
  j["accounts"] = det.account_ids.size();
  j["ring_recall"] = ev.ring_recall;
  j["account_precision"] = ev.account_precision;
  j["account_recall"] = ev.account_recall;
  j["adjusted_rand_index"] = ev.adjusted_rand_index;
  j["planted_rings"] = ev.planted_rings;
  j["reported_rings"] = ev.reported_rings;
  j["found_rings"] = ev.found_rings;
  j["false_ring_accounts"] = ev.false_ring_accounts;
  // The style of each planted ring, where the truth file says (generated data).
  std::map<int64_t, int64_t> style_of_label;
  if (!truth.ring_style.empty())
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (labels[i] >= 0) style_of_label.emplace(labels[i], truth.ring_style[rows[i]]);
  std::map<std::string, std::pair<int64_t, int64_t>> by_style;  // name -> (found, planted)
  nlohmann::ordered_json per_ring = nlohmann::ordered_json::array();
  for (const ringscan::RingMatch& m : ev.matches) {
    nlohmann::ordered_json e;
    e["truth_label"] = m.truth_label;
    e["truth_size"] = m.truth_size;
    e["best_ring"] = m.best_ring;
    e["jaccard"] = m.jaccard;
    e["found"] = m.found;
    if (const auto it = style_of_label.find(m.truth_label); it != style_of_label.end()) {
      const std::string style = ringscan::ring_style_name(it->second);
      e["style"] = style;
      by_style[style].first += m.found;
      ++by_style[style].second;
    }
    per_ring.push_back(std::move(e));
  }
  if (!by_style.empty()) {
    nlohmann::ordered_json recall;
    for (const auto& [style, counts] : by_style) recall[style] = double(counts.first) / double(counts.second);
    j["ring_recall_by_style"] = std::move(recall);
  }
  if (!roles.empty()) {
    // Generated data says what every account is: count the look-alikes accused.
    const ringscan::LookalikeAccusations l = ringscan::lookalike_accusations(det.ring, labels, roles);
    j["lookalikes_reported"] = {{"team_accounts", l.team_accounts},
                                {"crowd_accounts", l.crowd_accounts},
                                {"viral_sharer_accounts", l.viral_sharer_accounts},
                                {"template_app_accounts", l.template_app_accounts},
                                {"proxy_customer_accounts", l.proxy_customer_accounts},
                                {"other_innocent_accounts", l.other_innocent_accounts},
                                {"mostly_innocent_rings", l.mostly_innocent_rings}};
  }
  j["per_ring"] = std::move(per_ring);
  const std::string text = j.dump(2) + "\n";
  if (!a.json.empty()) ringscan::write_file_atomically(a.json, text);
  std::cout << text;
  return 0;
}

// ---------------------------------------------------------------------------------------
// info

// ---------------------------------------------------------------------------------------
// export

struct ExportArgs {
  std::string output, input, format = "graphml", path;
  CommonArgs common;
  ReadArgs read;
};

CLI::App* add_export(CLI::App& app, ExportArgs& a) {
  CLI::App* sub = app.add_subcommand(
      "export", "Write the evidence graph of a detect output's rings for graph tools (GraphML, Neo4j CSV)");
  sub->add_option("OUTPUT", a.output, "Output file of detect (HDF5)")->required()->check(CLI::ExistingFile);
  sub->add_option("--input", a.input, "The input detect read: the members' behaviour features go on the nodes")
      ->check(CLI::ExistingFile);
  sub->add_option("--format", a.format,
                  "graphml: one GraphML file (Gephi, Cytoscape, networkx); csv: a directory with accounts.csv "
                  "and evidence.csv under Neo4j's import headers")
      ->check(CLI::IsMember({"graphml", "csv"}))
      ->capture_default_str();
  sub->add_option("-o,--output", a.path, "File (graphml) or directory (csv) to write")->required();
  add_common_options(sub, a.common);
  add_read_options(sub, a.read);
  group_options(sub, kInput, {"OUTPUT", "--input"});
  group_options(sub, kOutput, {"--format", "-o"});
  return sub;
}

int run_export(ExportArgs& a) {
  Progress progress = Progress::for_stderr(a.common.quiet);
  const Context ctx = make_context(a.common, progress);
  const bool csv = a.format == "csv";
  const std::string accounts = a.path + "/accounts.csv", evidence = a.path + "/evidence.csv";
  if (csv) {
    std::error_code ec;
    std::filesystem::create_directories(a.path, ec);
    if (ec) throw ringscan::InternalError(a.path + ": cannot create the directory: " + ec.message());
    refuse_overwriting({{"accounts", accounts}, {"evidence", evidence}}, {a.output, a.input});
    require_writable(accounts, "accounts");
    require_writable(evidence, "evidence");
  } else {
    refuse_overwriting({{"output", a.path}}, {a.output, a.input});
    require_writable(a.path, "output");
  }
  const ringscan::RingGraph graph = a.read.ring_graph(a.output, ctx);
  ringscan::Dataset input;
  if (!a.input.empty()) {
    // Everything but the embeddings: the accounts' features are what the nodes carry.
    ringscan::LoadOptions features;
    features.embedding_rows = 0;
    input = a.read.dataset(a.input, ctx, features);
  }
  const ringscan::Dataset* with = a.input.empty() ? nullptr : &input;
  int64_t members = 0;
  for (const int64_t r : graph.ring) members += r >= 0;
  if (csv) {
    const ringscan::RingGraphCsv files = ringscan::ring_graph_csv(graph, with);
    ringscan::write_file_atomically(accounts, files.accounts);
    ringscan::write_file_atomically(evidence, files.evidence);
  } else {
    ringscan::write_file_atomically(a.path, ringscan::ring_graph_graphml(graph, with));
  }
  progress.finish();
  std::cout << "wrote " << (csv ? accounts + ", " + evidence : a.path) << ": " << members << " ring members, "
            << graph.edges.size() << " evidence edges\n";
  return 0;
}

// ---------------------------------------------------------------------------------------
// report

struct ReportArgs {
  std::string output, input, path;
  int64_t top = 20;
  CommonArgs common;
  ReadArgs read;
};

CLI::App* add_report(CLI::App& app, ReportArgs& a) {
  CLI::App* sub = app.add_subcommand(
      "report", "Write a self-contained HTML page of a detect output's rings and their evidence, for analysts");
  sub->add_option("OUTPUT", a.output, "Output file of detect (HDF5)")->required()->check(CLI::ExistingFile);
  sub->add_option("--input", a.input,
                  "The input detect read: timelines, behaviour features, request ids and texts come from it")
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--output", a.path, "HTML file to write")->required();
  sub->add_option("--top", a.top, "Rings drawn in detail; the rest are listed in the overview")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}))
      ->capture_default_str();
  add_common_options(sub, a.common);
  add_read_options(sub, a.read);
  group_options(sub, kInput, {"OUTPUT", "--input"});
  group_options(sub, kOutput, {"-o", "--top"});
  return sub;
}

int run_report(ReportArgs& a) {
  Progress progress = Progress::for_stderr(a.common.quiet);
  const Context ctx = make_context(a.common, progress);
  refuse_overwriting({{"output", a.path}}, {a.output, a.input});
  require_writable(a.path, "output");
  const ringscan::OutputSummary summary = a.read.output_summary(a.output, ctx);
  const ringscan::RingGraph graph = a.read.ring_graph(a.output, ctx);
  const std::vector<ringscan::Ring> rings = a.read.rings(a.output, ctx);
  ringscan::RingReportOptions options;
  options.top = a.top;
  ringscan::RingReportSources sources;
  sources.output = &summary;
  sources.graph = &graph;
  sources.rings = &rings;
  ringscan::Dataset input;
  if (!a.input.empty()) {
    ringscan::LoadOptions load;
    load.embedding_rows = 0;  // the report draws no embeddings
    load.load_request_ids = true;
    input = a.read.dataset(a.input, ctx, load);
    sources.input = &input;
    const std::vector<int64_t> rows = ringscan::report_example_rows(rings, options);
    const std::vector<std::string> texts = a.read.request_texts(a.input, rows, ctx);
    for (std::size_t i = 0; i < texts.size(); ++i) sources.texts.emplace(rows[i], texts[i]);
  }
  ringscan::write_file_atomically(a.path, ringscan::ring_report_html(sources, options));
  progress.finish();
  std::cout << "wrote " << a.path << ": " << rings.size() << " rings, the top "
            << std::min<int64_t>(a.top, int64_t(rings.size())) << " in detail\n";
  return 0;
}

struct InfoArgs {
  std::string input;
  bool json = false;
  CommonArgs common;
  ReadArgs read;
};

CLI::App* add_info(CLI::App& app, InfoArgs& a) {
  CLI::App* sub = app.add_subcommand("info", "Validate an input file or a detect output and describe it");
  sub->add_option("FILE", a.input, "Input file or output of detect (HDF5)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_flag("--json", a.json, "Print the description as JSON");
  add_common_options(sub, a.common);
  add_read_options(sub, a.read);
  group_options(sub, kInput, {"FILE"});
  group_options(sub, kOutput, {"--json"});
  return sub;
}

nlohmann::ordered_json info_json(const ringscan::InputSummary& s) {
  nlohmann::ordered_json j;
  j["path"] = s.path;
  j["valid"] = true;
  j["version"] = s.version;
  j["requests"] = s.num_requests;
  j["accounts"] = s.num_accounts;
  j["accounts_derived"] = s.accounts_derived;
  j["dim"] = s.dim;
  j["feature_dim"] = s.feature_dim;
  j["feature_names"] = s.feature_names;
  j["has_time"] = s.has_time;
  if (s.has_time) {
    j["time_min"] = s.time_min;
    j["time_max"] = s.time_max;
  }
  j["has_features"] = s.has_features;
  j["has_labels"] = s.has_labels;
  if (s.has_labels) {
    j["labelled_rings"] = s.labelled_rings;
    j["labelled_accounts"] = s.labelled_accounts;
  }
  j["has_infra"] = s.has_infra;
  if (s.has_infra) j["infra_names"] = s.infra_names;
  j["has_payment"] = s.has_payment;
  j["has_created"] = s.has_created;
  j["accounts_without_requests"] = s.accounts_without_requests;
  j["zero_norm_embeddings"] = s.zero_norm_embeddings;
  j["memory_bytes"] = s.memory_bytes;
  nlohmann::ordered_json datasets = nlohmann::ordered_json::array();
  for (const ringscan::DatasetSummary& d : s.datasets)
    datasets.push_back({{"name", d.name}, {"type", d.type}, {"shape", d.shape}});
  j["datasets"] = std::move(datasets);
  return j;
}

void print_info(const ringscan::InputSummary& s, std::ostream& out) {
  out << fmt::format("{}: valid ringscan input (schema version {})\n", s.path, s.version);
  std::size_t width = 0;
  for (const auto& d : s.datasets) width = std::max(width, d.name.size());
  out << "datasets:\n";
  for (const auto& d : s.datasets)
    out << fmt::format("  {:<{}}  {:<8} {}\n", d.name, width, d.type, shape_text(d.shape));
  const auto row = [&out](const std::string& key, const std::string& value) {
    out << fmt::format("  {:<26} {}\n", key, value);
  };
  out << "contents:\n";
  row("requests", std::to_string(s.num_requests));
  row("accounts", std::to_string(s.num_accounts) +
                      (s.accounts_derived ? " (derived from /requests/account)" : ""));
  row("embedding dim", std::to_string(s.dim));
  if (s.has_time) {
    const double days = static_cast<double>(s.time_max - s.time_min) / 86400.0;
    row("time span", format_utc(s.time_min) + " .. " + format_utc(s.time_max) +
                         fmt::format(" ({:.1f} days)", days));
  } else {
    row("time span", "no /requests/time (no timing evidence)");
  }
  if (s.has_features) {
    std::string names;
    for (std::size_t i = 0; i < s.feature_names.size(); ++i)
      names += (i ? ", " : "") + s.feature_names[i];
    row("behaviour features", std::to_string(s.feature_dim) + (names.empty() ? "" : ": " + names));
  } else {
    row("behaviour features", "none");
  }
  row("labels", s.has_labels ? fmt::format("{} rings, {} accounts labelled", s.labelled_rings,
                                           s.labelled_accounts)
                             : "none");
  row("infrastructure tokens", s.has_infra ? fmt::format("{}", fmt::join(s.infra_names, ", ")) : "none");
  row("payment instruments", s.has_payment ? "yes" : "no");
  row("sign-up times", s.has_created ? "yes" : "no");
  row("accounts without requests", std::to_string(s.accounts_without_requests));
  row("zero-norm embeddings", std::to_string(s.zero_norm_embeddings));
  row("memory when loaded", ringscan::format_size(s.memory_bytes));
}

nlohmann::ordered_json output_info_json(const ringscan::OutputSummary& s) {
  nlohmann::ordered_json j;
  j["path"] = s.path;
  j["valid"] = true;
  j["kind"] = "detection output";
  j["tool_version"] = s.tool_version;
  j["backend"] = s.backend;
  j["input"] = s.input;
  j["accounts"] = s.accounts;
  j["accounts_in_rings"] = s.accounts_in_rings;
  j["rings"] = s.ring_id.size();
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < s.parameter_names.size(); ++i) params[s.parameter_names[i]] = s.parameter_values[i];
  j["parameters"] = std::move(params);
  nlohmann::ordered_json timings = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < s.timing_names.size(); ++i) timings[s.timing_names[i]] = s.timing_seconds[i];
  j["stage_seconds"] = std::move(timings);
  nlohmann::ordered_json stats = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < s.statistic_names.size(); ++i) stats[s.statistic_names[i]] = s.statistic_values[i];
  j["statistics"] = std::move(stats);
  j["notes"] = s.notes;
  nlohmann::ordered_json rings = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < s.ring_id.size(); ++i)
    rings.push_back({{"id", s.ring_id[i]}, {"size", s.ring_size[i]}, {"score", ringscan::json_number(s.ring_score[i])},
                     {"shared_prompt_strength", ringscan::json_number(s.ring_shared[i])}});
  j["ring_table"] = std::move(rings);
  return j;
}

void print_output_info(const ringscan::OutputSummary& s, std::ostream& out) {
  out << fmt::format("{}: valid ringscan detection output (written by ringscan {})\n", s.path, s.tool_version);
  const auto row = [&out](const std::string& key, const std::string& value) {
    out << fmt::format("  {:<26} {}\n", key, value);
  };
  row("input", s.input);
  row("backend", s.backend);
  row("accounts", std::to_string(s.accounts));
  row("rings", count_of(int64_t(s.ring_id.size()), "ring") + ", " + count_of(s.accounts_in_rings, "account") +
                   " in rings");
  if (!s.ring_size.empty()) {
    const auto [smallest, largest] = std::minmax_element(s.ring_size.begin(), s.ring_size.end());
    row("ring sizes", fmt::format("{} to {} accounts", *smallest, *largest));
  }
  double total = 0;
  std::string stages;
  for (std::size_t i = 0; i < s.timing_names.size(); ++i) {
    total += s.timing_seconds[i];
    stages += fmt::format("{}{} {:.2f}", i ? ", " : "", s.timing_names[i], s.timing_seconds[i]);
  }
  row("time (s)", fmt::format("{:.2f} in all: {}", total, stages));
  out << "parameters:\n";
  for (std::size_t i = 0; i < s.parameter_names.size(); ++i) row(s.parameter_names[i], s.parameter_values[i]);
  if (!s.notes.empty()) {
    out << "notes:\n";
    for (const auto& n : s.notes) out << "  " << n << "\n";
  }
  if (s.ring_id.empty()) return;
  const std::size_t shown = std::min<std::size_t>(s.ring_id.size(), 10);
  out << fmt::format("top {} of {} (ring, size, score, shared):\n", shown, count_of(int64_t(s.ring_id.size()), "ring"));
  for (std::size_t i = 0; i < shown; ++i)
    out << fmt::format("  {:>5} {:>6} {:>6.3f} {:>7.2f}\n", s.ring_id[i], s.ring_size[i], s.ring_score[i],
                       s.ring_shared[i]);
}

int run_info(InfoArgs& a) {
  Progress progress = Progress::for_stderr(a.common.quiet);
  const Context ctx = make_context(a.common, progress);
  // Inputs and outputs of detect are told apart by their "format" attribute.
  if (a.read.format(a.input, ctx) == "ringscan-output") {
    const ringscan::OutputSummary s = a.read.output_summary(a.input, ctx);
    progress.finish();
    if (a.json)
      std::cout << output_info_json(s).dump(2) << "\n";
    else
      print_output_info(s, std::cout);
    return 0;
  }
  const ringscan::InputSummary s = a.read.summary(a.input, ctx);
  progress.finish();
  if (a.json)
    std::cout << info_json(s).dump(2) << "\n";
  else
    print_info(s, std::cout);
  return 0;
}

void setup_logging(bool quiet) {
  // Logs go to stderr: stdout carries results (JSON for evaluate and info --json).
  // Unnamed, like spdlog's own default logger, so that no name the library might register
  // is taken.
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("", std::move(sink));
  logger->set_pattern("ringscan: %l: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(quiet ? spdlog::level::warn : spdlog::level::info);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug overrides, for diagnosis
}

/// False on the ranks of a distributed run but rank 0, which reports for every rank.
bool g_reports_errors = true;

void print_error(const char* message) {
  if (!g_reports_errors) return;
  std::cout.flush();
  std::fprintf(stderr, "ringscan: error: %s\n", message);
}

/// Reports an error and gives the exit status `code`. In a distributed run every rank
/// learned an error of a step they agreed on, rank 0 reports it and all exit with it; an
/// error of one rank alone (writing the output, say) is reported by that rank, which stops
/// the others through MPI: they would otherwise wait for it forever.
int failed(ringscan::ProcessGroup* group, const std::string& message, int code) {
  if (group == nullptr || group->size() < 2 || group->stopped_together()) {
    print_error(message.c_str());
    return code;
  }
  g_reports_errors = true;
  print_error(("rank " + std::to_string(group->rank()) + ": " + message).c_str());
  group->abort(code);
  return code;
}

int run_main(int argc, char** argv, ringscan::ProcessGroup* group);

}  // namespace

int main(int argc, char** argv) {
  ringscan::leave_hdf5_shutdown_to_exit();
  // Started by mpirun or srun: MPI is initialised before anything else reads the arguments.
  std::unique_ptr<ringscan::ProcessGroup> group;
  try {
    group = ringscan::launched_process_group(&argc, &argv);
  } catch (const ringscan::InvalidInput& e) {
    print_error(e.what());
    return 2;
  } catch (const std::exception& e) {
    print_error(e.what());
    return 1;
  }
  if (group && group->rank() != 0) g_reports_errors = false;
  return run_main(argc, argv, group.get());
}

namespace {

int run_main(int argc, char** argv, ringscan::ProcessGroup* group) {
  CLI::App app{"ringscan: finds coordinated account rings (distillation farms) among the "
               "accounts of an LLM API"};
  app.name("ringscan");
  // Set before the subcommands are added: they copy it.
  // The command whose --help to point at: CLI11 reports errors from the top.
  static std::string command = "ringscan";
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    // One line, as every other error: CLI11's own messages may span several.
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';
    while (!what.empty() && what.back() == ' ') what.pop_back();
    return "ringscan: error: " + what + " (" + command + " --help lists the options)\n";
  });
  app.get_formatter()->column_width(36);
  app.set_version_flag("--version", version_text, "Print version, backends and devices");
  app.require_subcommand(1);

  GenerateArgs generate_args;
  DetectArgs detect_args;
  EvaluateArgs evaluate_args;
  InfoArgs info_args;
  ExportArgs export_args;
  ReportArgs report_args;
  CLI::App* generate = add_generate(app, generate_args);
  CLI::App* detect = add_detect(app, detect_args);
  CLI::App* evaluate = add_evaluate(app, evaluate_args);
  CLI::App* info = add_info(app, info_args);
  CLI::App* exporter = add_export(app, export_args);
  CLI::App* reporter = add_report(app, report_args);

  // A misspelt command would otherwise read as a missing one.
  const auto is_command = [&app](const char* name) {
    try {
      return app.get_subcommand(name) != nullptr;
    } catch (const CLI::Error&) {
      return false;
    }
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    print_error((std::string("unknown command '") + argv[1] +
                 "' (commands: generate, detect, evaluate, info, export, report; ringscan --help describes them)")
                    .c_str());
    return 2;
  }
  if (argc > 1 && argv[1][0] != '-') command = std::string("ringscan ") + argv[1];
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here with code 0; every real parse error is usage: 2. Under
    // mpirun every rank parses the same line: rank 0 alone prints.
    if (!g_reports_errors) return e.get_exit_code() == 0 ? 0 : 2;
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    // e.g. the version callback failing to probe devices
    print_error(e.what());
    return 1;
  }

  try {
#ifdef RINGSCAN_TEST_FAULT_HOOK
    // Test hook, compiled into the fault tests' build of the command only: e.g.
    // RINGSCAN_TEST_FAULT=write:3 fails the third write of an output with ENOSPC; see
    // ringscan/fault_injection.hpp.
    if (const char* faults = std::getenv("RINGSCAN_TEST_FAULT"))
      ringscan::testing::set_fault_injection(std::string(faults));
#endif
    if (group != nullptr && group->size() > 1 && !*detect) {
      print_error((command + " runs in one process; only detect runs over the ranks of mpirun or srun").c_str());
      return 2;
    }
    if (*generate) {
      setup_logging(generate_args.common.quiet);
      return run_generate(generate_args);
    }
    if (*detect) {
      // The other ranks' progress and warnings would repeat rank 0's.
      if (group != nullptr && group->rank() != 0) detect_args.common.quiet = true;
      setup_logging(detect_args.common.quiet);
      return run_detect(detect_args, group);
    }
    if (*evaluate) {
      setup_logging(evaluate_args.common.quiet);
      return run_evaluate(evaluate_args);
    }
    if (*info) {
      setup_logging(info_args.common.quiet);
      return run_info(info_args);
    }
    if (*exporter) {
      setup_logging(export_args.common.quiet);
      return run_export(export_args);
    }
    if (*reporter) {
      setup_logging(report_args.common.quiet);
      return run_report(report_args);
    }
    print_error("no subcommand");  // unreachable: require_subcommand(1)
    return 2;
  } catch (const InvalidInput& e) {  // also BudgetExceeded
    return failed(group, e.what(), 2);
  } catch (const std::bad_alloc&) {
    return failed(group, "out of memory (lower --memory-budget to fail early, or split the input)", 1);
  } catch (const std::exception& e) {
    return failed(group, e.what(), 1);
  } catch (...) {
    return failed(group, "unknown failure", 1);
  }
}

}  // namespace
