#include "distributed_evidence.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "isolated_reader.hpp"
#include "ringscan/error.hpp"

namespace ringscan {
namespace {

/// What rank 0 tells the others next.
enum class Message : int64_t { Release = 0, State = 1, Pairs = 2, Join = 3, Rows = 4 };

/// Every field of the profiles and the calibration, in one order for both ends: the pair
/// evaluation reads a view of them (pair_evidence.hpp).
template <class Archive, class P, class C>
void evaluation_state(Archive& a, P& p, C& c) {
  a(p.num_accounts, p.dim, p.feature_dim, p.content, p.behaviour, p.request_offsets, p.request_time, p.days,
    p.bucket_offsets, p.active_buckets, p.bucket_idf, p.timing_norm, p.has_timing);
  a(c.num_accounts, c.feature_dim, c.total_prompts, c.distinct_prompts, c.group_mass, c.feature_rank, c.feature_tie,
    c.categorical, c.feature_weight, c.feature_lift, c.feature_names, c.behaviour_null.values,
    c.behaviour_null.tail_start, c.behaviour_null.tail_scale, c.behaviour_null.tail_log_share, c.behaviour_present,
    c.anchor_pairs, c.has_timing, c.first_time, c.last_time, c.has_infrastructure, c.infrastructure_kinds,
    c.proposing_users, c.token_offsets, c.account_tokens, c.token_kind, c.token_users, c.seed, c.seed_prior,
    c.content_null.values, c.content_null.tail_start, c.content_null.tail_scale, c.content_null.tail_log_share,
    c.signals, c.index_penalty, c.edge_threshold, c.weak_edge_threshold, c.notes);
}

/// One pair to evaluate as it travels.
struct PairRow {
  int64_t first, second;
  float shared;
};

Bytes header(Message m) {
  const int64_t v = int64_t(m);
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

Message read_header(const Bytes& b) {
  int64_t v = -1;
  if (b.size() != sizeof v) throw InternalError("distributed pair evaluation: malformed message");
  std::memcpy(&v, b.data(), sizeof v);
  if (v < 0 || v > 4) throw InternalError("distributed pair evaluation: unknown message " + std::to_string(v));
  return Message(v);
}

/// Every rank's status, then its `part`, gathered at rank 0; there the first failing rank's
/// error is thrown, its message prefixed with `what` and the rank. Elsewhere: nothing.
std::vector<Bytes> gathered_or_thrown(ProcessGroup& group, const std::exception_ptr& failure, const Bytes& part,
                                      const std::string& what) {
  const std::vector<Bytes> status = group.gather(failure_status(failure), 0);
  std::vector<Bytes> parts = group.gather(part, 0);
  for (std::size_t r = 0; r < status.size(); ++r)
    if (!status[r].empty()) throw_failure_status(status[r], what + " on rank " + std::to_string(r) + ": ");
  return parts;
}

/// Evaluates `rows` with `evaluate`: their evidence as bytes.
Bytes evaluated(const PairEvaluator& evaluate, const std::vector<PairRow>& rows) {
  const int64_t n = int64_t(rows.size());
  std::vector<int64_t> first(size_t(n), 0), second(size_t(n), 0);
  std::vector<float> shared(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i) first[i] = rows[i].first, second[i] = rows[i].second, shared[i] = rows[i].shared;
  std::vector<PairEvidence> out(static_cast<size_t>(n));
  evaluate(first.data(), second.data(), shared.data(), n, out.data());
  return pack(out);
}

/// What every rank's share of an account join needs: the rows and the join's shape.
struct JoinTask {
  int64_t n = 0, d = 0, cap = 0;
  bool exact = false;
  std::vector<float> rows;
};

template <class Archive, class T>
void join_task(Archive& a, T& t) {
  a(t.n, t.d, t.cap, t.exact, t.rows);
}

/// This rank's share of the kNN join of `task`, keeping every neighbour.
std::vector<RequestPair> joined_share(const JoinTask& t, const JoinFilter& accept, const Context& ctx, const char* stage,
                                      int part, int parts) {
  return ivf_self_join_share(t.rows.data(), t.n, t.d, t.exact, -1.0f, t.cap, accept, ctx, stage, NeighbourTiers{},
                             part, parts);
}

}  // namespace

SelfJoin DistributedPairEvaluation::account_join() {
  SelfJoin join;
  join.run = [this](const float* x, int64_t n, int64_t d, bool exact, float radius, int64_t cap,
                    const JoinFilter& accept, const Context& ctx, const char* stage,
                    const NeighbourTiers& tiers) -> std::vector<RequestPair> {
    RINGSCAN_EXPECTS(radius < 0 && tiers.near < 0, "the ranks share kNN joins that keep every neighbour");
    const int ranks = group_.size();
    JoinTask task;
    task.n = n;
    task.d = d;
    task.cap = cap;
    task.exact = exact;
    task.rows.assign(x, x + n * d);
    isolation::Encoder e;
    join_task(e, task);
    group_.wait_for_all();
    group_.broadcast(header(Message::Join), 0);
    group_.broadcast(Bytes(e.bytes().begin(), e.bytes().end()), 0);
    std::exception_ptr failure;
    std::vector<RequestPair> mine;
    try {
      mine = joined_share(task, accept, ctx, stage, 0, ranks);
    } catch (...) {
      failure = std::current_exception();
    }
    std::vector<Bytes> found = gathered_or_thrown(group_, failure, pack(mine), stage);
    std::vector<RequestPair> pairs = unpack_all<RequestPair>(std::move(found));
    make_canonical(pairs);
    return pairs;
  };
  return join;
}

PairEvaluator DistributedPairEvaluation::evaluator(const AccountProfiles& profiles,
                                                   const EvidenceCalibration& calibration) {
  return [this, &profiles, &calibration](const int64_t* first, const int64_t* second, const float* shared, int64_t n,
                                         PairEvidence* out) {
    const int ranks = group_.size();
    if (!sent_state_) {
      isolation::Encoder e;
      evaluation_state(e, profiles, calibration);
      group_.wait_for_all();
      group_.broadcast(header(Message::State), 0);
      group_.broadcast(Bytes(e.bytes().begin(), e.bytes().end()), 0);
      sent_state_ = true;
    }
    // Contiguous shares, so the evidence comes back in the pairs' order.
    std::vector<Bytes> parts(static_cast<size_t>(ranks));
    for (int r = 0; r < ranks; ++r) {
      const int64_t lo = n * r / ranks, hi = n * (r + 1) / ranks;
      std::vector<PairRow> rows(static_cast<size_t>(hi - lo));
      for (int64_t i = lo; i < hi; ++i) rows[size_t(i - lo)] = {first[i], second[i], shared[i]};
      parts[size_t(r)] = pack(rows);
    }
    group_.wait_for_all();
    group_.broadcast(header(Message::Pairs), 0);
    const std::vector<Bytes> mine = group_.all_to_all(std::move(parts));
    std::exception_ptr failure;
    Bytes result;
    try {
      result = evaluated(host_pair_evaluator(profiles, calibration), unpack<PairRow>(mine[0]));
    } catch (...) {
      failure = std::current_exception();
    }
    // Each rank's status, then its evidence.
    std::vector<Bytes> evidence = gathered_or_thrown(group_, failure, result, "evaluating candidate pairs");
    const std::vector<PairEvidence> all = unpack_all<PairEvidence>(std::move(evidence));
    if (int64_t(all.size()) != n) throw InternalError("distributed pair evaluation: evidence of " +
                                                      std::to_string(all.size()) + " pairs for " + std::to_string(n));
    std::copy(all.begin(), all.end(), out);
  };
}

Bytes DistributedPairEvaluation::held_rows(const std::vector<int64_t>& requests) const {
  const int64_t held = rows_ && dim_ > 0 ? int64_t(rows_->size()) / dim_ : 0;
  const auto lo = std::lower_bound(requests.begin(), requests.end(), rows_first_);
  const auto hi = std::lower_bound(lo, requests.end(), rows_first_ + held);
  Bytes out(size_t((hi - lo) * dim_) * sizeof(float));
  char* at = out.data();
  for (auto q = lo; q != hi; ++q, at += dim_ * sizeof(float))
    std::memcpy(at, rows_->data() + (*q - rows_first_) * dim_, size_t(dim_) * sizeof(float));
  return out;
}

RequestRows DistributedPairEvaluation::request_rows() {
  return [this](const std::vector<int64_t>& requests) {
    group_.wait_for_all();
    group_.broadcast(header(Message::Rows), 0);
    group_.broadcast(pack(requests), 0);
    std::exception_ptr failure;
    Bytes mine;
    try {
      mine = held_rows(requests);
    } catch (...) {
      failure = std::current_exception();
    }
    std::vector<Bytes> found = gathered_or_thrown(group_, failure, mine, "ring indicators");
    // The ranks hold ascending ranges of requests: their rows come in the requests' order.
    return unpack_all<float>(std::move(found));
  };
}

void DistributedPairEvaluation::release() {
  group_.wait_for_all();
  group_.broadcast(header(Message::Release), 0);
}

void DistributedPairEvaluation::serve() {
  const ThreadScope threads(ctx_.threads);
  AccountProfiles profiles;
  EvidenceCalibration calibration;
  bool have_state = false;
  std::exception_ptr state_failure;
  for (;;) {
    group_.wait_for_all();
    const Message m = read_header(group_.broadcast(Bytes(), 0));
    if (m == Message::Release) return;
    if (m == Message::State) {
      const Bytes state = group_.broadcast(Bytes(), 0);
      try {
        ctx_.require_memory(int64_t(state.size()), "the account profiles rank 0 shares for the pair evaluation");
        const std::string bytes(state.begin(), state.end());
        isolation::Decoder d(bytes, "the account profiles from rank 0");
        evaluation_state(d, profiles, calibration);
        d.finish();
        have_state = true;
      } catch (...) {
        state_failure = std::current_exception();
      }
      continue;
    }
    if (m == Message::Join) {
      const Bytes payload = group_.broadcast(Bytes(), 0);
      std::exception_ptr failure;
      std::vector<RequestPair> found;
      try {
        ctx_.require_memory(2 * int64_t(payload.size()), "the account profiles rank 0 shares for the account index");
        JoinTask task;
        {
          const std::string bytes(payload.begin(), payload.end());
          isolation::Decoder d(bytes, "the account index's rows from rank 0");
          join_task(d, task);
          d.finish();
        }
        if (task.n < 0 || task.d < 0 || int64_t(task.rows.size()) != task.n * task.d)
          throw InternalError("distributed account index: malformed rows from rank 0");
        const JoinFilter keep_all = [](int64_t, int64_t, float, float*) { return true; };
        found = joined_share(task, keep_all, ctx_, "account index", group_.rank(), group_.size());
      } catch (...) {
        failure = std::current_exception();
      }
      gathered_or_thrown(group_, failure, pack(found), "account index");
      continue;
    }
    if (m == Message::Rows) {
      const Bytes asked = group_.broadcast(Bytes(), 0);
      std::exception_ptr failure;
      Bytes rows;
      try {
        const std::vector<int64_t> requests = unpack<int64_t>(asked);
        ctx_.require_memory(int64_t(requests.size()) * dim_ * 4, "the rows rank 0 asks for (ring indicators)");
        rows = held_rows(requests);
      } catch (...) {
        failure = std::current_exception();
      }
      gathered_or_thrown(group_, failure, rows, "ring indicators");
      continue;
    }
    const std::vector<Bytes> mine = group_.all_to_all(std::vector<Bytes>(size_t(group_.size())));
    std::exception_ptr failure = state_failure;
    Bytes result;
    if (!failure) try {
        if (!have_state) throw InternalError("distributed pair evaluation: pairs before the profiles");
        result = evaluated(host_pair_evaluator(profiles, calibration), unpack<PairRow>(mine[0]));
      } catch (...) {
        failure = std::current_exception();
      }
    gathered_or_thrown(group_, failure, result, "evaluating candidate pairs");
  }
}

}  // namespace ringscan
