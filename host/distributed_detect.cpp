#include "ringscan/distributed_detect.hpp"


#include <algorithm>
#include <chrono>
#include <numeric>
#include <unordered_map>

#include "detection_run.hpp"
#include "distributed_evidence.hpp"
#include "evidence_math.hpp"
#include "faiss_util.hpp"
#include "parallel.hpp"
#include "request_index.hpp"
#include "ringscan/account_profiles.hpp"
#include "ringscan/error.hpp"
#include "ringscan/sizes.hpp"
#include "self_join.hpp"

namespace ringscan {
namespace {

/// Embedding bytes a rank reads and sends on in one round of the order stage: its share is
/// read in rounds, so it never holds both all it read and all it received.
constexpr int64_t kRoundBytes = int64_t{64} << 20;
/// Visitors of a unit of the request index searched together (a multiple of the join's
/// query batch, so the chunks' searches find what one search of all would).
constexpr int64_t kChunkVisitors = 16 * kJoinQueryBatch;

/// Which canonical requests and accounts each rank holds: rank i has requests
/// [row_first[i], row_first[i + 1]), all those of accounts [account_first[i], account_first[i + 1]).
struct Shares {
  std::vector<int64_t> account_first, row_first;

  /// Whole accounts, about R / N requests each.
  Shares(const CanonicalRequests& c, int n) : account_first(n + 1), row_first(n + 1) {
    const int64_t R = c.num_requests, A = c.num_accounts;
    for (int i = 0; i < n; ++i) {
      const int64_t target = int64_t(double(R) * i / n);
      account_first[i] = std::lower_bound(c.account_offsets.begin(), c.account_offsets.begin() + A, target) -
                         c.account_offsets.begin();
      row_first[i] = c.account_offsets[account_first[i]];
    }
    account_first[n] = A;
    row_first[n] = R;
  }
  int owner(int64_t row) const {
    return int(std::upper_bound(row_first.begin(), row_first.end(), row) - row_first.begin()) - 1;
  }
  int64_t rows(int rank) const { return row_first[rank + 1] - row_first[rank]; }
};

/// The input rows rank `rank` of `ranks` reads the embeddings of: [first, first + rows).
std::pair<int64_t, int64_t> read_share(int64_t R, int rank, int ranks) {
  const int64_t first = int64_t(double(R) * rank / ranks), last = int64_t(double(R) * (rank + 1) / ranks);
  return {first, last - first};
}

/// Appends the bytes of `n` values at `v` to `out`.
template <class T>
void append(Bytes& out, const T* v, int64_t n) {
  const char* p = reinterpret_cast<const char*>(v);
  out.insert(out.end(), p, p + n * int64_t(sizeof(T)));
}

/// One distributed detection: the group, this rank's share and the stages' bookkeeping.
class DistributedDetection {
  /// A step of this rank's own, then the agreement of every rank on how it went.
  template <class Step>
  auto local(Step&& step) {
    return on_every_rank(group_, [&]() -> decltype(step()) {
      try {
        return step();
      } catch (const std::bad_alloc&) {
        throw OutOfMemory(std::string(stage_) +
                          ": out of memory (std::bad_alloc); lower --memory-budget to be refused up front, or add ranks");
      }
    });
  }
  /// A stage of the run: timed on every rank (rank 0's times are reported), named in errors.
  template <class Run>
  auto stage(const char* name, const char* label, Run&& run) {
    stage_ = label;
    return run_->timed(name, label, std::forward<Run>(run));
  }

 public:
  DistributedDetection(ProcessGroup& group, const DistributedInput& input, const DetectOptions& options,
                       const Context& ctx)
      : group_(group), input_(input), options_(options), ctx_(ctx), me_(group.rank()), ranks_(group.size()) {}

  DetectionResult run() {
    const auto started = std::chrono::steady_clock::now();
    const InputShape shape = local([&] { return input_.shape(); });
    R_ = shape.num_requests;
    D_ = shape.dim;
    const auto [first, rows] = read_share(R_, me_, ranks_);
    // The first round's read brings every dataset but the other embeddings; later rounds
    // read more embeddings alone.
    rounds_ = order_rounds(shape);
    data_ = local([&] { return input_.load(round_read(first, rows, 0)); });
    const double load_seconds = seconds_since(started);
    run_ = local([&] { return std::make_unique<DetectionRun>(options_, ctx_, input_.path, data_.account_ids); });

    stage("order", "order", [&] { order(first, rows); });
    mark("order");
    run_->resolve(stage("background", "background similarity", [&] { return background(); }));
    mark("background");
    // Known indicators' prompts are matched where the rows are.
    if (!options_.known_indicators.empty()) {
      stage("indicator_prompts", "indicator matching", [&] { indicator_prompt_hits(); });
      mark("indicator_prompts");
    }
    // The content profiles of this rank's accounts, before the request index frees the rows.
    content_ = stage("account_content", "account profiles", [&] { return account_content_share(); });
    bool exact = true;
    std::vector<RequestPair> pairs =
        stage("request_index", "request index", [&] { return request_index(&exact); });
    mark("request_index");
    // Rank 0 alone holds the pairs and runs the account stages; the others wait for it.
    const PromptGroups groups =
        local([&] { return me_ == 0 ? run_->prompt_groups(c_, std::move(pairs)) : PromptGroups{}; });
    const AccountProfiles profiles = stage("account_profiles", "account profiles", [&] { return account_profiles(); });
    mark("account_profiles");
    // The account index's join and the candidate pairs' evidence run on every rank; the other
    // ranks serve rank 0 until it lets them go.
    DistributedPairEvaluation evaluation(group_, ctx_);
    if (options_.collect_indicators) evaluation.hold_rows(&unit_, lo_, D_);
    DetectionResult result = local([&] {
      if (me_ != 0) {
        evaluation.serve();
        return DetectionResult{};
      }
      run_->evaluate_pairs_with([&](const AccountProfiles& p, const EvidenceCalibration& c) { return evaluation.evaluator(p, c); });
      run_->join_accounts_with(evaluation.account_join());
      if (options_.collect_indicators) run_->fetch_rows_with(evaluation.request_rows());
      DetectionResult finished;
      try {
        finished = run_->finish(c_, groups, profiles, exact);
      } catch (...) {
        if (!group_.stopped_together()) evaluation.release();
        throw;
      }
      evaluation.release();
      return finished;
    });
    mark("evidence_graph");
    add_distribution_statistics(result);
    if (me_ == 0) result.stage_seconds.insert(result.stage_seconds.begin(), {"load", load_seconds});
    return result;
  }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  /// Records the bytes this rank sent during the stage just ended.
  void mark(const char* stage) {
    exchanged_.emplace_back(stage, group_.bytes_sent() - sent_before_);
    sent_before_ = group_.bytes_sent();
  }

  /// Rounds of the order stage: every rank's share split so a round reads at most
  /// kRoundBytes of embeddings (the same count on every rank).
  int64_t order_rounds(const InputShape& shape) const {
    const int64_t largest = read_share(R_, ranks_ - 1, ranks_).second + 1;
    const int64_t bytes = saturating_multiply(saturating_multiply(largest, shape.dim), 4);
    return std::max<int64_t>(1, (bytes + kRoundBytes - 1) / kRoundBytes);
  }
  /// What round `k` of this rank's share [first, first + rows) reads.
  LoadOptions round_read(int64_t first, int64_t rows, int64_t k) const {
    LoadOptions o;
    o.embeddings_only = k > 0;
    o.embedding_first = first + rows * k / rounds_;
    o.embedding_rows = first + rows * (k + 1) / rounds_ - o.embedding_first;
    return o;
  }

  /// The canonical order on every rank, and this rank's accounts' rows, unit length, in
  /// unit_: each round reads a part of the rank's share and sends every row to the rank
  /// that holds its account.
  void order(int64_t first, int64_t rows) {
    c_ = local([&] { return canonical_bookkeeping(data_, ctx_, [](int64_t) -> const float* { return nullptr; }); });
    shares_ = std::make_unique<Shares>(c_, ranks_);
    lo_ = shares_->row_first[me_];
    hi_ = shares_->row_first[me_ + 1];
    const int64_t D = D_;
    // Where each input row sits in the order before ties of (account, time) are broken:
    // breaking them moves rows only within an account, so never to another rank.
    std::vector<int64_t> position = local([&] {
      // This rank's rows, where every row goes, and a round's reads, sends and receipts.
      ctx_.require_memory(saturating_add(saturating_multiply((hi_ - lo_) * D, 4),
                                         saturating_add(saturating_multiply(R_, 8), 3 * kRoundBytes)),
                          "order (this rank's share of the requests)");
      std::vector<int64_t> p(R_);
      for (int64_t r = 0; r < R_; ++r) p[c_.request_row[r]] = r;
      return p;
    });
    local([&] { unit_.assign(size_t((hi_ - lo_) * D), 0.0f); });
    for (int64_t k = 0; k < rounds_; ++k) {
      const LoadOptions part = round_read(first, rows, k);
      std::vector<Bytes> out = local([&] {
        Dataset more;
        if (k > 0) more = input_.load(part);
        const std::vector<float>& embeddings = k == 0 ? data_.embeddings : more.embeddings;
        std::vector<Bytes> parts(ranks_);
        for (int64_t i = 0; i < part.embedding_rows; ++i) {
          const int64_t row = part.embedding_first + i;
          Bytes& b = parts[shares_->owner(position[row])];
          append(b, &row, 1);
          append(b, embeddings.data() + i * D, D);
        }
        // The other datasets of the first read stay: the tokens are put in order below.
        if (k == 0) std::vector<float>().swap(data_.embeddings);
        return parts;
      });
      const std::vector<Bytes> got = group_.all_to_all(std::move(out));
      local([&] {
        const int64_t record = 8 + 4 * D;
        for (const Bytes& b : got)
          for (size_t at = 0; at + size_t(record) <= b.size(); at += size_t(record)) {
            int64_t row;
            std::memcpy(&row, b.data() + at, 8);
            const int64_t p = position[row];
            if (p < lo_ || p >= hi_) throw InternalError("order: a rank was sent a row it does not hold");
            std::memcpy(&unit_[(p - lo_) * D], b.data() + at + 8, size_t(4 * D));
          }
      });
    }
    // Ties broken where the rows are; everyone learns the order.
    std::vector<int64_t> mine = local([&] {
      const std::vector<int64_t> before(c_.request_row.begin() + lo_, c_.request_row.begin() + hi_);
      break_ties(c_, lo_, hi_, [&](int64_t row) { return &unit_[(position[row] - lo_) * D]; });
      // The rows of a run whose order changed move with it.
      std::vector<float> moved;
      for (int64_t r = lo_; r < hi_;) {
        int64_t e = r + 1;
        while (e < hi_ && c_.request_owner[e] == c_.request_owner[r] && (c_.time.empty() || c_.time[e] == c_.time[r]))
          ++e;
        if (e - r > 1 && !std::equal(before.begin() + (r - lo_), before.begin() + (e - lo_), c_.request_row.begin() + r)) {
          moved.resize(size_t((e - r) * D));
          for (int64_t i = r; i < e; ++i)
            std::copy_n(&unit_[(position[c_.request_row[i]] - lo_) * D], D, &moved[(i - r) * D]);
          std::copy(moved.begin(), moved.end(), unit_.begin() + (r - lo_) * D);
        }
        r = e;
      }
      for (int64_t r = 0; r < hi_ - lo_; ++r) write_unit_row(&unit_[r * D], &unit_[r * D], D);
      return std::vector<int64_t>(c_.request_row.begin() + lo_, c_.request_row.begin() + hi_);
    });
    const std::vector<int64_t> order = unpack_all<int64_t>(group_.all_gather(pack(mine)));
    local([&] {
      RINGSCAN_ASSERT(int64_t(order.size()) == R_, "order: every rank's rows");
      c_.request_row = order;
      copy_request_tokens(c_, data_);
      // What the result needs of the input beyond the order: its account ids.
      data_ = Dataset{};
    });
  }

  /// The unit rows of canonical requests `rows` (ascending), fetched from the ranks that
  /// hold them: one exchange of the rows asked for, one of their vectors.
  std::vector<Bytes> fetch_rows(const std::vector<std::vector<int64_t>>& wanted) {
    std::vector<Bytes> asks(ranks_);
    for (int r = 0; r < ranks_; ++r) asks[r] = pack(wanted[r]);
    const std::vector<Bytes> asked = group_.all_to_all(std::move(asks));
    std::vector<Bytes> replies = local([&] {
      std::vector<Bytes> out(ranks_);
      for (int r = 0; r < ranks_; ++r)
        for (int64_t row : unpack<int64_t>(asked[r])) {
          if (row < lo_ || row >= hi_) throw InternalError("a rank was asked for a row it does not hold");
          append(out[r], &unit_[(row - lo_) * D_], D_);
        }
      return out;
    });
    return group_.all_to_all(std::move(replies));
  }

  /// background_similarity over the ranks: each rank takes the sampled pairs whose first
  /// request it holds, fetching the second's row where another rank holds it.
  BackgroundSimilarity background() {
    const auto pairs = local([&] { return background_pairs(c_); });
    std::vector<std::vector<int64_t>> wanted(ranks_);
    local([&] {
      for (const auto& [a, b] : pairs)
        if (a >= lo_ && a < hi_ && (b < lo_ || b >= hi_)) wanted[shares_->owner(b)].push_back(b);
      for (auto& w : wanted) {
        std::sort(w.begin(), w.end());
        w.erase(std::unique(w.begin(), w.end()), w.end());
      }
    });
    local([&] {
      int64_t rows = 0;
      for (const auto& w : wanted) rows += int64_t(w.size());
      ctx_.require_memory(saturating_multiply(rows, 4 * D_), "background similarity (rows fetched from other ranks)");
    });
    const std::vector<Bytes> got = fetch_rows(wanted);
    std::vector<float> cosines = local([&] {
      std::vector<float> out;
      for (const auto& [a, b] : pairs) {
        if (a < lo_ || a >= hi_) continue;
        const float* y;
        if (b >= lo_ && b < hi_) {
          y = &unit_[(b - lo_) * D_];
        } else {
          const int r = shares_->owner(b);
          const int64_t i = std::lower_bound(wanted[r].begin(), wanted[r].end(), b) - wanted[r].begin();
          y = reinterpret_cast<const float*>(got[r].data()) + i * D_;
        }
        out.push_back(dot_product(&unit_[(a - lo_) * D_], y, D_));
      }
      return out;
    });
    // Percentiles are order statistics: the cosines' order across ranks does not matter.
    return background_from_cosines(unpack_all<float>(group_.all_gather(pack(cosines))));
  }

  /// The rows at `positions` (ascending canonical requests) of the matrix x [local rows x
  /// width], gathered in order from every rank to `root` (every rank when root < 0).
  std::vector<float> gather_rows(const std::vector<int64_t>& positions, const float* x, int64_t width, int root = -1) {
    const std::vector<float> mine = local([&] {
      std::vector<float> out;
      for (auto p = std::lower_bound(positions.begin(), positions.end(), lo_); p != positions.end() && *p < hi_; ++p)
        out.insert(out.end(), x + (*p - lo_) * width, x + (*p - lo_ + 1) * width);
      return out;
    });
    return unpack_all<float>(root < 0 ? group_.all_gather(pack(mine)) : group_.gather(pack(mine), root));
  }

  /// The request index over the ranks: the projection and the top-level centroids trained on
  /// the samples one process would take, every rank assigning its own rows to cells, each
  /// top-level cell searched by one rank (join_top_cell) with its members and visitors
  /// sent there, and the cells' representatives joined on rank 0.
  std::vector<RequestPair> request_index(bool* exact) {
    const RequestIndexPlan plan = local([&] { return request_index_plan(R_, D_, run_->resolved(), host_self_join()); });
    *exact = plan.exact;
    if (R_ < 2) return {};
    if (plan.exact || joins_in_one_cell(R_, plan.exact)) return request_index_in_one_process();
    const int64_t n = hi_ - lo_, dr = plan.reduced;
    ThreadScope threads(ctx_.threads);
    // The projected share and a round's rows sent, received and copied out.
    local([&] {
      ctx_.require_memory(saturating_add(saturating_multiply(n, 4 * dr), 3 * kRoundBytes),
                          "request index (this rank's share)");
    });
    std::vector<float> reduced;
    if (plan.project) {
      // Trained once, on rank 0, on the sample one process takes; the others load it.
      const std::vector<float> sample =
          gather_rows(strided_positions(R_, std::min<int64_t>(R_, kProjectionSample)), unit_.data(), D_, 0);
      RequestProjection projection(D_, dr);
      const std::vector<uint8_t> trained = local([&] {
        if (me_ != 0) return std::vector<uint8_t>{};
        projection.train(sample.data(), int64_t(sample.size()) / D_);
        return projection.saved();
      });
      const std::vector<uint8_t> shared = unpack<uint8_t>(group_.broadcast(pack(trained), 0));
      local([&] {
        if (me_ != 0) projection.load(shared);
        reduced.resize(size_t(n * dr));
        projection.apply(unit_.data(), n, reduced.data());
      });
    }
    const float* x = plan.project ? reduced.data() : unit_.data();
    const int64_t top = top_level_cells(R_), probes = std::min(kTopLevelProbes, top);
    const std::vector<float> sample = gather_rows(kmeans_sample_positions(R_, top), x, dr);
    std::vector<int64_t> cell = local([&] {
      std::vector<float> centroids;
      faiss_call("request index", [&] { centroids = kmeans_on_sample(sample.data(), int64_t(sample.size()) / dr, dr, top, kTopLevelSeed); });
      std::vector<int64_t> out;
      faiss_call("request index", [&] { out = nearest_cells(x, dr, nullptr, n, centroids.data(), top, probes); });
      return out;
    });
    const LeafUnits units = leaf_units(x, dr, cell, top, probes);
    const std::vector<std::vector<int64_t>> batches = round_batches(units, dr);
    int64_t rounds = 0;
    for (int r = 0; r < ranks_; ++r) rounds = std::max<int64_t>(rounds, int64_t(batches[r].size()) - 1);
    std::vector<RequestPair> pairs;
    Bytes representatives;  // records: unit, id, x row, unit row
    for (int64_t t = 0; t < rounds; ++t) {
      // Every rank sends each the rows of this round's units that it holds.
      std::vector<Bytes> out = local([&] {
        std::vector<Bytes> parts(ranks_);
        for (int r = 0; r < ranks_; ++r)
          for (int64_t b = batch_range(batches[r], t).first; b < batch_range(batches[r], t).second; ++b) {
            // An item's rows: all its unit's members, and the visitors of its chunk.
            const int64_t item = units.assigned[r][b], u = units.item_unit[item], chunk = units.item_chunk[item];
            for (int64_t at = units.visits.offsets[u]; at < units.visits.offsets[u + 1]; ++at) {
              const int64_t v = units.visits.ids[at], i = units.row[v], id = lo_ + i;
              const int64_t flags = units.member[v] | int64_t(units.position[v] / kChunkVisitors == chunk) << 1;
              if (flags == 0) continue;
              append(parts[r], &item, 1);
              append(parts[r], &flags, 1);
              append(parts[r], &id, 1);
              append(parts[r], x + i * dr, dr);
              append(parts[r], &unit_[i * D_], D_);
            }
          }
        return parts;
      });
      const std::vector<Bytes> got = group_.all_to_all(std::move(out));
      local([&] {
        const auto [b0, b1] = batch_range(batches[me_], t);
        std::vector<std::vector<RequestPair>> found(b1 - b0);
        std::vector<Bytes> reps(b1 - b0);
        const ReceivedUnits received(got, record_bytes(dr));
        SerialBlasScope serial_blas;
        faiss_call("request index", [&] {
          detail::parallel_for(b1 - b0, 1, [&](int64_t k) {
            const int64_t item = units.assigned[me_][b0 + k];
            join_received_item(item, units.item_unit[item], units.item_chunk[item] == 0, received, plan, dr, found[k],
                               reps[k]);
          });
        });
        for (auto& f : found) pairs.insert(pairs.end(), f.begin(), f.end());
        for (auto& r : reps) representatives.insert(representatives.end(), r.begin(), r.end());
        ctx_.report("request index", t + 1, rounds);
      });
    }
    // The rows are no longer needed, but for the ring indicators' exemplars: rank 0 gathers
    // the pairs into their room.
    std::vector<float>().swap(reduced);
    if (!options_.collect_indicators) std::vector<float>().swap(unit_);
    // The representatives, in top-cell order as one process concatenates them, joined on
    // rank 0 with every pair.
    const std::vector<Bytes> all_reps = group_.gather(representatives, 0);
    Bytes mine = pack(pairs);
    std::vector<RequestPair>().swap(pairs);
    std::vector<Bytes> all_pairs = group_.gather(mine, 0);
    Bytes().swap(mine);
    return local([&] {
      std::vector<RequestPair> out;
      if (me_ != 0) return out;
      out = unpack_all<RequestPair>(std::move(all_pairs));
      join_gathered_representatives(all_reps, plan, dr, out);
      make_canonical(out);
      return out;
    });
  }

  /// Bytes of one row sent to the rank that searches a unit: unit, member flag, id, the
  /// searched (projected) row and the unit row the pairs are verified with.
  int64_t record_bytes(int64_t dr) const { return 3 * 8 + 4 * (dr + D_); }

  /// The units of the distributed search: each top-level cell joined whole, or, when it is
  /// large, each of its leaf cells, as join_top_cell refines it. Units are numbered in (top
  /// cell, leaf) order, the order one process finds their representatives in.
  struct LeafUnits {
    int64_t count = 0;
    std::vector<int64_t> row, member;        ///< per visit of this rank: local row, member flag
    CellLists visits;                        ///< this rank's visits by unit, rows ascending
    std::vector<int64_t> members, visitors;  ///< [units] over every rank
    std::vector<int64_t> position;           ///< per visit: its place among its unit's visitors
    /// Work items: unit u's visitors in chunks of kChunkVisitors, each searched among all
    /// of u's members; items first_item[u] .. first_item[u + 1].
    std::vector<int64_t> first_item, item_unit, item_chunk;
    std::vector<std::vector<int64_t>> assigned;  ///< items each rank searches, in order
    int64_t items() const { return int64_t(item_unit.size()); }
    /// Rows (members and the chunk's visitors) item k is sent.
    int64_t rows(int64_t k) const {
      const int64_t u = item_unit[k], first = item_chunk[k] * kChunkVisitors;
      return members[u] + std::min(kChunkVisitors, visitors[u] - first);
    }
  };

  LeafUnits leaf_units(const float* x, int64_t dr, const std::vector<int64_t>& cell, int64_t top, int64_t probes) {
    const int64_t n = hi_ - lo_;
    LeafUnits u;
    // This rank's visitors of each top cell (ascending rows) and its members there.
    CellLists visiting;
    const std::vector<int64_t> mine = local([&] {
      visiting = group_by_cell(cell.data(), nullptr, n, probes, probes, top);
      std::vector<int64_t> members(top, 0);
      for (int64_t i = 0; i < n; ++i) ++members[cell[i * probes]];
      return members;
    });
    // Members of each top cell on every rank, and those on the ranks before this one: a
    // member's position in its cell's member list (ascending ids) is where it sits there.
    std::vector<int64_t> members(top, 0), before(top, 0);
    {
      const std::vector<Bytes> all = group_.all_gather(pack(mine));
      for (int r = 0; r < ranks_; ++r) {
        const std::vector<int64_t> v = unpack<int64_t>(all[r]);
        for (int64_t c = 0; c < top; ++c) {
          members[c] += v[c];
          if (r < me_) before[c] += v[c];
        }
      }
    }
    std::vector<int64_t> leaves(top), first_unit(top + 1, 0);
    for (int64_t c = 0; c < top; ++c) {
      leaves[c] = leaf_cells(members[c]);
      first_unit[c + 1] = first_unit[c] + (leaves[c] >= 2 ? leaves[c] : 1);
    }
    u.count = first_unit[top];
    const std::vector<std::vector<float>> centroids = leaf_centroids(x, dr, cell, probes, visiting, members, before, leaves);
    // Each visit's units: its leaf cells in a refined top cell (its nearest leaf centroids).
    local([&] {
      std::vector<int64_t> unit_of;
      for (int64_t c = 0; c < top; ++c) {
        const int64_t* rows = visiting.ids.data() + visiting.offsets[c];
        const int64_t nv = visiting.offsets[c + 1] - visiting.offsets[c];
        // A visitor visits its kLeafProbes nearest leaves; it is a member of the nearest only.
        const int64_t lp = leaves[c] >= 2 ? std::min(kLeafProbes, leaves[c]) : 1;
        std::vector<int64_t> leaf(nv * lp, 0);
        if (leaves[c] >= 2)
          faiss_call("request index", [&] { leaf = nearest_cells(x, dr, rows, nv, centroids[c].data(), leaves[c], lp); });
        for (int64_t j = 0; j < nv; ++j)
          for (int64_t p = 0; p < lp; ++p) {
            u.row.push_back(rows[j]);
            u.member.push_back(p == 0 && cell[rows[j] * probes] == c);
            unit_of.push_back(first_unit[c] + leaf[j * lp + p]);
          }
      }
      u.visits = group_by_cell(unit_of.data(), nullptr, int64_t(unit_of.size()), 1, 1, u.count);
    });
    // Sizes of every unit over all ranks, then the units to ranks: largest first to the
    // least loaded (ties: the lowest rank), the same on every rank.
    std::vector<int64_t> sizes(2 * u.count, 0);
    for (int64_t k = 0; k < u.count; ++k)
      for (int64_t at = u.visits.offsets[k]; at < u.visits.offsets[k + 1]; ++at) {
        sizes[k] += u.member[u.visits.ids[at]];
        ++sizes[u.count + k];
      }
    u.members.assign(u.count, 0);
    u.visitors.assign(u.count, 0);
    std::vector<int64_t> visitors_before(u.count, 0);
    {
      const std::vector<Bytes> all = group_.all_gather(pack(sizes));
      for (int r = 0; r < ranks_; ++r) {
        const std::vector<int64_t> v = unpack<int64_t>(all[r]);
        for (int64_t k = 0; k < u.count; ++k) {
          u.members[k] += v[k];
          u.visitors[k] += v[u.count + k];
          if (r < me_) visitors_before[k] += v[u.count + k];
        }
      }
    }
    // A unit's visitors ascend with the rank: this rank's come after those before it.
    u.position.assign(u.row.size(), 0);
    for (int64_t k = 0; k < u.count; ++k)
      for (int64_t at = u.visits.offsets[k]; at < u.visits.offsets[k + 1]; ++at)
        u.position[u.visits.ids[at]] = visitors_before[k] + (at - u.visits.offsets[k]);
    u.first_item.assign(u.count + 1, 0);
    for (int64_t k = 0; k < u.count; ++k) {
      const int64_t chunks = std::max<int64_t>(1, (u.visitors[k] + kChunkVisitors - 1) / kChunkVisitors);
      u.first_item[k + 1] = u.first_item[k] + chunks;
      for (int64_t c = 0; c < chunks; ++c) {
        u.item_unit.push_back(k);
        u.item_chunk.push_back(c);
      }
    }
    std::vector<int64_t> order(u.items());
    std::iota(order.begin(), order.end(), 0);
    auto cost = [&](int64_t k) {
      const double chunk = double(u.rows(k) - u.members[u.item_unit[k]]);
      return double(u.members[u.item_unit[k]]) * chunk + chunk;
    };
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cost(a) != cost(b) ? cost(a) > cost(b) : a < b; });
    std::vector<double> load(ranks_, 0.0);
    u.assigned.assign(ranks_, {});
    for (int64_t k : order) {
      const int r = int(std::min_element(load.begin(), load.end()) - load.begin());
      load[r] += cost(k);
      u.assigned[r].push_back(k);
    }
    return u;
  }

  /// The leaf centroids of every refined top cell: k-means on the members one process
  /// samples (kmeans_sample_positions of the cell's member list), trained on the rank that
  /// owns the cell (c mod ranks) and shared with all.
  std::vector<std::vector<float>> leaf_centroids(const float* x, int64_t dr, const std::vector<int64_t>& cell,
                                                 int64_t probes, const CellLists& visiting,
                                                 const std::vector<int64_t>& members,
                                                 const std::vector<int64_t>& before, const std::vector<int64_t>& leaves) {
    const int64_t top = int64_t(leaves.size());
    std::vector<Bytes> parts = local([&] {
      std::vector<Bytes> out(ranks_);
      for (int64_t c = 0; c < top; ++c) {
        if (leaves[c] < 2) continue;
        const std::vector<int64_t> at = kmeans_sample_positions(members[c], leaves[c]);
        auto next = std::lower_bound(at.begin(), at.end(), before[c]);
        int64_t position = before[c];
        for (int64_t v = visiting.offsets[c]; v < visiting.offsets[c + 1] && next != at.end(); ++v) {
          const int64_t i = visiting.ids[v];
          if (cell[i * probes] != c) continue;  // a visitor, not a member
          if (position++ == *next) {
            append(out[c % ranks_], &c, 1);
            append(out[c % ranks_], x + i * dr, dr);
            ++next;
          }
        }
      }
      return out;
    });
    const std::vector<Bytes> got = group_.all_to_all(std::move(parts));
    const Bytes trained = local([&] {
      Bytes out;
      const int64_t record = 8 + 4 * dr;
      for (int64_t c = me_; c < top; c += ranks_) {
        if (leaves[c] < 2) continue;
        std::vector<float> sample;
        for (const Bytes& b : got)  // by rank: the sample in member order
          for (size_t at = 0; at + size_t(record) <= b.size(); at += size_t(record)) {
            int64_t k;
            std::memcpy(&k, b.data() + at, 8);
            if (k != c) continue;
            const float* v = reinterpret_cast<const float*>(b.data() + at + 8);
            sample.insert(sample.end(), v, v + dr);
          }
        std::vector<float> centroids;
        faiss_call("request index", [&] {
          centroids = kmeans_on_sample(sample.data(), int64_t(sample.size()) / dr, dr, leaves[c], kTopLevelSeed + uint64_t(c));
        });
        append(out, &c, 1);
        append(out, centroids.data(), int64_t(centroids.size()));
      }
      return out;
    });
    std::vector<std::vector<float>> centroids(top);
    for (const Bytes& b : group_.all_gather(trained))
      for (size_t at = 0; at < b.size();) {
        int64_t c;
        std::memcpy(&c, b.data() + at, 8);
        const size_t floats = size_t(leaves[c] * dr);
        const float* v = reinterpret_cast<const float*>(b.data() + at + 8);
        centroids[c].assign(v, v + floats);
        at += 8 + floats * 4;
      }
    return centroids;
  }

  /// Each rank's items split into rounds of at most kRoundBytes of rows received (an item
  /// larger than that makes a round of its own): batches[r][t] .. batches[r][t + 1] index
  /// into assigned[r]. The same on every rank.
  std::vector<std::vector<int64_t>> round_batches(const LeafUnits& u, int64_t dr) const {
    std::vector<std::vector<int64_t>> batches(ranks_);
    for (int r = 0; r < ranks_; ++r) {
      batches[r].push_back(0);
      int64_t bytes = 0;
      for (int64_t b = 0; b < int64_t(u.assigned[r].size()); ++b) {
        const int64_t size = u.rows(u.assigned[r][b]) * record_bytes(dr);
        if (bytes > 0 && bytes + size > kRoundBytes) {
          batches[r].push_back(b);
          bytes = 0;
        }
        bytes += size;
      }
      batches[r].push_back(int64_t(u.assigned[r].size()));
    }
    return batches;
  }
  /// Round t's units of one rank, [first, second) of its assigned list (empty past its end).
  static std::pair<int64_t, int64_t> batch_range(const std::vector<int64_t>& b, int64_t t) {
    if (t + 1 >= int64_t(b.size())) return {b.back(), b.back()};
    return {b[t], b[t + 1]};
  }

  /// The rows received for each unit in a round: where each unit's records lie in what each
  /// rank sent (records of one unit are contiguous, ranks' ids ascend with the rank).
  struct ReceivedUnits {
    std::unordered_map<int64_t, std::vector<std::pair<const char*, int64_t>>> spans;  ///< unit -> (start, records)
    ReceivedUnits(const std::vector<Bytes>& got, int64_t record) {
      for (const Bytes& b : got)
        for (size_t at = 0; at + size_t(record) <= b.size(); at += size_t(record)) {
          int64_t u;
          std::memcpy(&u, b.data() + at, 8);
          auto& list = spans[u];
          if (!list.empty() && list.back().first + list.back().second * record == b.data() + at)
            ++list.back().second;
          else
            list.emplace_back(b.data() + at, 1);
        }
    }
  };

  /// Searches work item `item` (of unit u) from the rows received for it (ascending ids): its
  /// chunk's visitors among all of u's members, as one process's join_top_cell searches
  /// those queries of that cell or leaf; pairs, and with `representative` the unit's
  /// representative, come back in ids.
  void join_received_item(int64_t item, int64_t u, bool representative, const ReceivedUnits& received,
                          const RequestIndexPlan& plan, int64_t dr, std::vector<RequestPair>& pairs, Bytes& reps) const {
    const int64_t record = record_bytes(dr);
    std::vector<int64_t> ids, members, queries;
    std::vector<float> xs, units;
    const auto found = received.spans.find(item);
    if (found != received.spans.end())
      for (const auto& [start, count] : found->second)
        for (int64_t j = 0; j < count; ++j) {
          const char* at = start + j * record;
          int64_t head[3];
          std::memcpy(head, at, sizeof head);
          if (head[1] & 1) members.push_back(int64_t(ids.size()));
          if (head[1] & 2) queries.push_back(int64_t(ids.size()));
          ids.push_back(head[2]);
          const float* v = reinterpret_cast<const float*>(at + sizeof head);
          xs.insert(xs.end(), v, v + dr);
          units.insert(units.end(), v + dr, v + dr + D_);
        }
    const JoinFilter accept = verified_cosine(units.data(), D_, plan.tau);
    const CellJoin join{xs.data(), dr, plan.radius, plan.cap, accept, plan.tiers};
    std::vector<int64_t> rep;
    if (representative)
      join_leaf(join, members.data(), int64_t(members.size()), queries.data(), int64_t(queries.size()), pairs, rep);
    else
      join(members.data(), int64_t(members.size()), queries.data(), int64_t(queries.size()), pairs);
    for (RequestPair& p : pairs) {
      p.first = ids[p.first];
      p.second = ids[p.second];
    }
    for (int64_t r : rep) {
      const int64_t head[3] = {u, 0, ids[r]};
      append(reps, head, 3);
      append(reps, &xs[r * dr], dr);
      append(reps, &units[r * D_], D_);
    }
  }

  /// join_representatives over the representatives every rank found (rank 0).
  void join_gathered_representatives(const std::vector<Bytes>& all, const RequestIndexPlan& plan, int64_t dr,
                                     std::vector<RequestPair>& pairs) const {
    const int64_t record = 3 * 8 + 4 * (dr + D_);
    struct Rep {
      int64_t cell, sequence, id;
      const char* vectors;
    };
    std::vector<Rep> reps;
    for (const Bytes& b : all)
      for (size_t at = 0; at + size_t(record) <= b.size(); at += size_t(record)) {
        int64_t head[3];
        std::memcpy(head, b.data() + at, sizeof head);
        reps.push_back({head[0], head[1], head[2], b.data() + at + sizeof head});
      }
    std::sort(reps.begin(), reps.end(), [](const Rep& a, const Rep& b) {
      return a.cell != b.cell ? a.cell < b.cell : a.sequence < b.sequence;
    });
    const int64_t n = int64_t(reps.size());
    std::vector<int64_t> ids(n);
    std::vector<float> xs(n * dr), units(n * D_);
    std::unordered_map<int64_t, int64_t> index;
    for (int64_t i = 0; i < n; ++i) {
      ids[i] = reps[i].id;
      index[reps[i].id] = i;
      std::memcpy(&xs[i * dr], reps[i].vectors, size_t(4 * dr));
      std::memcpy(&units[i * D_], reps[i].vectors + 4 * dr, size_t(4 * D_));
    }
    // join_representatives asks with request ids.
    const JoinFilter accept = [&](int64_t q, int64_t other, float, float* sim) {
      *sim = dot_product(&units[index.at(q) * D_], &units[index.at(other) * D_], D_);
      return *sim >= plan.tau;
    };
    const CellJoin join{xs.data(), dr, plan.radius, plan.cap, accept, plan.tiers};
    faiss_call("request index", [&] { join_representatives(xs.data(), ids, join, ctx_, "request index", pairs); });
  }

  /// The known indicators' prompt hits of this rank's requests, gathered on rank 0 in request
  /// order (the ranks hold ascending ranges of requests) for the indicator matching.
  void indicator_prompt_hits() {
    const std::vector<int64_t> flat = local([&] {
      check_indicator_width(options_.known_indicators, D_, options_.known_indicators_source);
      std::vector<int64_t> out;
      for (const auto& [account, ring] :
           ringscan::indicator_prompt_hits(unit_.data(), lo_, hi_ - lo_, D_, c_.request_owner, options_.known_indicators,
                                           run_->resolved().duplicate_similarity, ctx_)) {
        out.push_back(account);
        out.push_back(ring);
      }
      return out;
    });
    std::vector<Bytes> all = group_.gather(pack(flat), 0);
    local([&] {
      if (me_ != 0) return;
      const std::vector<int64_t> hits = unpack_all<int64_t>(std::move(all));
      PromptHits pairs(hits.size() / 2);
      for (std::size_t i = 0; i < pairs.size(); ++i) pairs[i] = {hits[2 * i], hits[2 * i + 1]};
      run_->indicator_prompt_hits_from(std::move(pairs));
    });
  }

  /// Small inputs (one cell): every row to rank 0, which runs the one-process index.
  std::vector<RequestPair> request_index_in_one_process() {
    std::vector<Bytes> all = group_.gather(pack(unit_), 0);
    return local([&] {
      std::vector<RequestPair> out;
      if (me_ != 0) return out;
      c_.unit_embeddings = unpack_all<float>(std::move(all));
      out = near_duplicate_pairs(c_, run_->resolved(), ctx_);
      c_.unit_embeddings = {};
      return out;
    });
  }

  /// The content profiles of this rank's accounts.
  std::vector<float> account_content_share() {
    return local([&] {
      const int64_t a0 = shares_->account_first[me_], a1 = shares_->account_first[me_ + 1];
      ctx_.require_memory(saturating_multiply(a1 - a0, 4 * D_), "account profiles (this rank's accounts)");
      std::vector<float> out(size_t((a1 - a0) * D_));
      ThreadScope threads(ctx_.threads);
      account_content(c_, unit_.data(), lo_, a0, a1, out.data());
      return out;
    });
  }

  /// Every rank's content profiles, put together on rank 0 with the rest of the profiles.
  AccountProfiles account_profiles() {
    std::vector<Bytes> all = group_.gather(pack(content_), 0);
    std::vector<float>().swap(content_);
    return local([&] {
      if (me_ != 0) return AccountProfiles{};
      return ringscan::account_profiles(c_, options_, ctx_, unpack_all<float>(std::move(all)));
    });
  }

  /// The ranks, the bytes each stage sent over all of them, and each rank's peak memory.
  void add_distribution_statistics(DetectionResult& result) {
    std::vector<double> mine;
    for (const auto& [stage, bytes] : exchanged_) mine.push_back(double(bytes));
    mine.push_back(double(peak_resident_bytes()));
    const std::vector<Bytes> all = group_.gather(pack(mine), 0);
    if (me_ != 0) return;
    result.statistics.emplace_back("ranks", double(ranks_));
    for (std::size_t s = 0; s < exchanged_.size(); ++s) {
      double sum = 0;
      for (const Bytes& b : all) sum += unpack<double>(b)[s];
      result.statistics.emplace_back("exchanged_bytes." + exchanged_[s].first, sum);
    }
    for (int r = 0; r < ranks_; ++r)
      result.statistics.emplace_back("rank_peak_resident_bytes." + std::to_string(r), unpack<double>(all[r]).back());
  }

  ProcessGroup& group_;
  const DistributedInput& input_;
  const DetectOptions& options_;
  const Context& ctx_;
  const int me_, ranks_;
  int64_t R_ = 0, D_ = 0, rounds_ = 1, lo_ = 0, hi_ = 0;
  Dataset data_;
  std::unique_ptr<DetectionRun> run_;
  CanonicalRequests c_;
  std::unique_ptr<Shares> shares_;
  std::vector<float> unit_;     ///< [hi_ - lo_ x D] this rank's canonical requests, unit length
  std::vector<float> content_;  ///< content profiles of this rank's accounts
  std::vector<std::pair<std::string, int64_t>> exchanged_;
  int64_t sent_before_ = 0;
  const char* stage_ = "load";
};

}  // namespace

void check_distributed_options(const DetectOptions& options) {
  if (options.device == Device::Cuda)
    throw InvalidInput("--device cuda: a distributed run uses the CPU backend on every rank (its request index "
                       "is not distributed on the device yet); use --device cpu or auto");
}

int64_t estimate_distributed_memory(const InputShape& shape, const DetectOptions& options, int ranks) {
  InputShape share = shape;
  share.num_requests = shape.num_requests / std::max(1, ranks) + 1;
  // Every rank holds the requests' bookkeeping (accounts, times, order, tokens), and a round
  // of the exchanges' buffers (read, sent, received).
  const int64_t bookkeeping = saturating_multiply(std::max<int64_t>(shape.num_requests, 0), 48);
  return saturating_add(saturating_add(estimate_detection_memory(share, options), bookkeeping), 3 * kRoundBytes);
}

DetectionResult detect_rings_distributed(ProcessGroup& group, const DistributedInput& input,
                                         const DetectOptions& options, const Context& ctx) {
  on_every_rank(group, [&] {
    validate_detect_options(options);
    check_distributed_options(options);
  });
  DetectOptions cpu = options;
  cpu.device = Device::Cpu;
  return DistributedDetection(group, input, cpu, ctx).run();
}

}  // namespace ringscan
