// Stage 5 on the GPU: candidates from shared prompts and the account index, their evidence
// and the symmetric CSR graph, by the portable construction (host/portable/evidence_graph.hpp)
// on thrust::cuda. The per-pair logic is evaluate_pair (host/pair_evidence.hpp), shared with
// the CPU stage; one thread per pair.
#include <thrust/system/cuda/execution_policy.h>

#include <algorithm>
#include <string>

#include "cuda_check.cuh"
#include "cuda_stages.hpp"
#include "device_budget.hpp"
#include "device_buffer.cuh"
#include "thrust_errors.cuh"
#include "pair_evidence.hpp"
#include "portable/evidence_graph.hpp"

namespace ringscan::cuda {
namespace {

constexpr int kThreads = 256;
// Pairs per launch when the pairs live on the host: at most this many (about 48 MiB of pair
// arrays), fewer when the device memory budget says so, and at least kLeastBatch.
constexpr int64_t kBatch = int64_t(1) << 20;
constexpr int64_t kLeastBatch = 1024;
constexpr int64_t kBytesPerPair = 8 + 8 + 4 + int64_t(sizeof(PairEvidence));

__global__ void evaluate_pairs_kernel(ProfilesView view, const int64_t* first,
                                      const int64_t* second, const float* shared, int64_t n,
                                      PairEvidence* out) {
  // 64-bit grid-stride loop: n may exceed 2^31 over the whole job.
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = evaluate_pair(view, first[i], second[i], shared[i]);
}

/// The profiles and calibration evaluate_pair reads, copied to the device.
class DeviceProfiles {
 public:
  DeviceProfiles(const AccountProfiles& p, const EvidenceCalibration& c)
      : content_(p.content), offsets_(p.request_offsets), times_(p.request_time), mass_(c.group_mass),
        prompts_(c.distinct_prompts), rank_(c.feature_rank), tie_(c.feature_tie), weight_(c.feature_weight),
        categorical_(c.categorical),
        behaviour_null_(c.behaviour_null.values), content_null_(c.content_null.values),
        token_offsets_(c.token_offsets), account_tokens_(c.account_tokens), token_kind_(c.token_kind),
        token_users_(c.token_users), seed_(c.seed), view_(host_view(p, c)) {
    view_.content = content_.data();
    view_.request_offsets = offsets_.data();
    view_.request_time = p.request_time.empty() ? nullptr : times_.data();
    view_.group_mass = mass_.data();
    view_.distinct_prompts = prompts_.data();
    view_.feature_rank = rank_.data();
    view_.feature_tie = tie_.data();
    view_.feature_weight = weight_.data();
    view_.categorical = categorical_.data();
    view_.behaviour_null.values = behaviour_null_.data();
    view_.content_null.values = content_null_.data();
    if (c.has_infrastructure) {
      view_.token_offsets = token_offsets_.data();
      view_.account_tokens = account_tokens_.data();
      view_.token_kind = token_kind_.data();
      view_.token_users = token_users_.data();
    }
    if (!c.seed.empty()) view_.seed = seed_.data();
  }
  /// Device bytes the profiles and calibration take once copied.
  static int64_t bytes_for(const AccountProfiles& p, const EvidenceCalibration& c) {
    return int64_t(4 * (p.content.size() + c.group_mass.size() + c.feature_rank.size() + c.feature_tie.size() +
                        c.feature_weight.size() + c.behaviour_null.values.size() + c.content_null.values.size() +
                        c.token_kind.size() + c.token_users.size()) +
                   8 * (p.request_offsets.size() + p.request_time.size() + c.distinct_prompts.size() +
                        c.token_offsets.size() + c.account_tokens.size()) +
                   c.categorical.size() + c.seed.size());
  }
  /// out[i] = evidence of (first[i], second[i]), which share shared[i] groups; device arrays.
  void evaluate(const int64_t* first, const int64_t* second, const float* shared, int64_t n,
                PairEvidence* out) const {
    if (n <= 0) return;
    const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65535);
    evaluate_pairs_kernel<<<unsigned(blocks), kThreads>>>(view_, first, second, shared, n, out);
    RINGSCAN_CUDA_TRY(cudaGetLastError());
  }

 private:
  DeviceBuffer<float> content_;
  DeviceBuffer<int64_t> offsets_, times_;
  DeviceBuffer<float> mass_;
  DeviceBuffer<int64_t> prompts_;
  DeviceBuffer<float> rank_, tie_, weight_;
  DeviceBuffer<uint8_t> categorical_;
  DeviceBuffer<float> behaviour_null_, content_null_;
  DeviceBuffer<int64_t> token_offsets_, account_tokens_;
  DeviceBuffer<int32_t> token_kind_, token_users_;
  DeviceBuffer<uint8_t> seed_;
  ProfilesView view_;
};

}  // namespace

/// The profiles on the device and the buffers of one batch of pairs (two account ids, the
/// shared count, the evidence), allocated once and reused by every batch.
struct DevicePairEvaluator::Profiles {
  DeviceProfiles device;
  int64_t batch;
  DeviceBuffer<int64_t> first, second;
  DeviceBuffer<float> shared;
  DeviceBuffer<PairEvidence> pairs;
  Profiles(const AccountProfiles& p, const EvidenceCalibration& c, int64_t batch)
      : device(p, c), batch(batch), first(batch), second(batch), shared(batch), pairs(batch) {}
};

DevicePairEvaluator::DevicePairEvaluator(const AccountProfiles& profiles, const EvidenceCalibration& calibration,
                                         int64_t device_budget) {
  const int64_t batch = batch_within_budget(device_budget, double(DeviceProfiles::bytes_for(profiles, calibration)),
                                            kBytesPerPair, kBatch, kLeastBatch, "pair evidence on the device");
  profiles_.reset(new Profiles(profiles, calibration, batch));
}

DevicePairEvaluator::~DevicePairEvaluator() = default;

int64_t DevicePairEvaluator::batch() const { return profiles_->batch; }

int64_t DevicePairEvaluator::profile_bytes(const AccountProfiles& profiles, const EvidenceCalibration& calibration) {
  return DeviceProfiles::bytes_for(profiles, calibration);
}

int64_t DevicePairEvaluator::bytes_per_pair() { return kBytesPerPair; }

void DevicePairEvaluator::evaluate(const int64_t* first, const int64_t* second, const float* shared,
                                   int64_t n, PairEvidence* out) const {
  Profiles& p = *profiles_;
  for (int64_t start = 0; start < n; start += p.batch) {
    const int64_t m = std::min(p.batch, n - start);
    p.first.upload(first + start, m);
    p.second.upload(second + start, m);
    p.shared.upload(shared + start, m);
    p.device.evaluate(p.first.data(), p.second.data(), p.shared.data(), m, p.pairs.data());
    RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
    p.pairs.download(out + start, m);
  }
}

std::vector<PairEvidence> evaluate_pairs(const AccountProfiles& profiles, const EvidenceCalibration& calibration,
                                         const int64_t* first, const int64_t* second, const float* shared, int64_t n,
                                         int64_t device_budget) {
  std::vector<PairEvidence> result(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (n > 0)
    DevicePairEvaluator(profiles, calibration, device_budget).evaluate(first, second, shared, n, result.data());
  return result;
}

EvidenceGraph evidence_graph(const PromptGroups& groups, const AccountProfiles& profiles,
                             const EvidenceCalibration& calibration,
                             const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                             int64_t device_budget) {
  // The inputs, counted before they are copied; the construction gets the rest of the budget.
  const int64_t held =
      int64_t(8 * (groups.account_offsets.size() + groups.group_accounts.size() + 2 * account_pairs.size()) +
              groups.common.size()) +
      DeviceProfiles::bytes_for(profiles, calibration);
  require_device_memory(double(held), device_budget, "evidence graph on the device, for its inputs,");
  const DeviceBuffer<int64_t> offsets(groups.account_offsets), accounts(groups.group_accounts);
  const DeviceBuffer<uint8_t> common(groups.common);
  std::vector<int64_t> host_first(account_pairs.size()), host_second(account_pairs.size());
  for (std::size_t i = 0; i < account_pairs.size(); ++i) {
    host_first[i] = account_pairs[i].first;
    host_second[i] = account_pairs[i].second;
  }
  const DeviceBuffer<int64_t> first(host_first), second(host_second);
  const DeviceProfiles device(profiles, calibration);
  const portable::GroupArrays g{groups.num_groups, offsets.data(), accounts.data(), common.data()};
  EvidenceGraph graph = run_thrust("evidence graph on the device", [&] {
    return portable::build_evidence_graph<DeviceMemory>(
        thrust::cuda::par, g, first.data(), second.data(), first.size(), profiles.num_accounts,
        edge_rule(calibration),
        [&](const int64_t* a, const int64_t* b, const float* w, int64_t n, PairEvidence* out) {
          device.evaluate(a, b, w, n, out);
        },
        std::max<int64_t>(1, device_budget - held));
  });
  RINGSCAN_CUDA_TRY(cudaDeviceSynchronize());
  return graph;
}

}  // namespace ringscan::cuda
