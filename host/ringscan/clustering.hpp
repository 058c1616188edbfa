// Stage 6: clustering of the evidence graph: core test, union-find components, canonical labels.
#pragma once
#include <cstdint>
#include <vector>

#include <utility>

#include "ringscan/account_profiles.hpp"
#include "ringscan/context.hpp"
#include "ringscan/near_duplicates.hpp"
#include "ringscan/request_order.hpp"
#include "ringscan/evidence_calibration.hpp"
#include "ringscan/evidence_graph.hpp"
#include "ringscan/pipeline.hpp"
#include "ringscan/shared_infrastructure.hpp"

namespace ringscan {

struct Clustering {
  std::vector<int64_t> label;  ///< [A] cluster of each canonical account, -1 = none
  int64_t num_clusters = 0;    ///< labels are 0..C-1, numbered by their smallest account
};

/// Accounts with >= min_core_degree edges are cores; cores joined by an edge share a cluster;
/// every other account joins the cluster of its strongest core neighbour through an edge with
/// shared-prompt evidence, if any.
Clustering cluster_accounts(const EvidenceGraph& graph, const DetectOptions& options,
                            const Context& ctx);

/// What merge_clusters did.
struct MergeSummary {
  int64_t light_members = 0;  ///< accounts outside clusters that joined one as light members
  float first_threshold = 0;  ///< the first round's merge threshold (merge_threshold_nats), nats
};

/// A pair of clusters as merge_clusters judges it: their labels (first < second) and the
/// evidence they carry together, nats.
struct ClusterPairEvidence {
  int64_t first, second;
  float evidence;
};

/// Refinement: merges clusters, and accounts outside clusters, on the evidence they carry
/// together: the prompt groups both sent (against the chance of that for groups of their
/// masses and volumes: a cluster of fifty light accounts drawing on one pool shares many of
/// its groups with each member left out, though no pair shares much), the co-activity of
/// their coordinated requests (those in groups two or more members sent: cover traffic left
/// out), and their behaviour medians (an operator's one scripted client). Judged as one
/// pair's evidence (evidence_math.hpp) against the merge threshold, which counts the pairs a
/// round judges (merge_threshold_nats), over rounds until nothing merges. Pairs are proposed
/// by shared groups (one side a cluster), and pairs of clusters are all judged while a
/// round's clusters and their requests are few enough (else those the account index links);
/// without a shared group, both clusters must be held together by prompts (half their
/// members share a group with another member), so that look-alikes cannot chain rings
/// together. An account outside clusters that no merge takes joins the cluster it shares
/// kLightMemberGroups groups with when that evidence alone reaches the weak edge threshold
/// and the cluster owns its traffic as a weak core would (the light member of a ring: a few
/// requests, each a prompt of the ring's own); the likeliest such cluster, so that one
/// account cannot join two. Labels stay canonical; `*summary` (when given) receives
/// what the merge did.
Clustering merge_clusters(const Clustering& clusters, const CanonicalRequests& req, const PromptGroups& groups,
                          const EvidenceCalibration& calibration,
                          const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                          const DetectOptions& options, const Context& ctx, MergeSummary* summary = nullptr);

/// The pairs of clusters that the first round of merge_clusters judges on `clusters`, with
/// their evidence: what its threshold weighs (for diagnostics and the calibration's tests).
std::vector<ClusterPairEvidence> judged_cluster_pairs(const Clustering& clusters, const CanonicalRequests& req,
                                                      const PromptGroups& groups, const EvidenceCalibration& calibration,
                                                      const std::vector<std::pair<int64_t, int64_t>>& account_pairs,
                                                      const Context& ctx);

/// Labels the components of `root` ([A]: an account's component root, -1 for none) that have
/// `min_size` members or more, from `first_label` on in the order of their smallest member,
/// into `label` (the others' entries are left alone); returns the next free label.
int64_t label_components(const std::vector<int64_t>& root, int64_t min_size, int64_t first_label,
                         std::vector<int64_t>& label);

/// Weak edges to other members that a member of a weak core needs.
constexpr int64_t kWeakCoreDegree = 2;
/// Distinct prompt groups an account outside clusters shares with a cluster from which it
/// joins it as a light member with the senders' share a weak core asks for ...
constexpr int64_t kLightMemberGroups = 2;
/// ... and the share of the senders the cluster must hold when the account shares one group
/// with it: one shared prompt is one coincidence, unless the prompt is the cluster's own (at
/// a third, as for two groups, a viral prompt's sharers joined rings on the real-text
/// fixture; at a half, ordinary users with one copy of a ring's prompt did). Chosen on the
/// tuning files (docs/robustness.md).
constexpr double kLightMemberOneGroupSenders = 2.0 / 3.0;
/// Without infrastructure: the share of a weak core member's requests that must lie in the
/// prompt groups it shares with other members (a member works mostly for the ring) ...
constexpr double kWeakCoreOwnTraffic = 0.5;
/// ... and the share of those groups' senders the core must hold (the prompts are the
/// ring's own, not a public template's or a trending topic's, whose users are a few of many).
constexpr double kWeakCoreOwnSenders = 1.0 / 3.0;

/// Clusters for networks that no pair betrays (hundreds of light accounts, each sharing a
/// template or two with a few others, behind one proxy service; a ring of light accounts
/// drawing a few requests each from one pool): among the accounts outside `clusters`, the
/// largest set in which every member
///   - has kWeakCoreDegree weak edges to members (`weak_graph`, EvidenceCalibration): chance
///     gives an account about kChanceWeakDegree of them, far below what a random graph needs
///     to hold such a core;
///   - and shows a second kind of evidence. With infrastructure: it shares evidence tokens
///     (infrastructure or payment) with more members than its tokens' users explain, by the
///     weak threshold's nats (Poisson). Without: its traffic is the core's, kWeakCoreOwnTraffic
///     of its requests in the groups it shares with members, and those groups are the core's,
///     kWeakCoreOwnSenders of their senders outside `clusters` members (senders in clusters
///     are other rings', as when two operators fill one template). Users of a public app's
///     template or of a trending topic send them amid their own work, beside many other
///     users; a network whose accounts carry mostly ordinary traffic needs the
///     infrastructure test. One shared group can hold a core: a light ring's members may
///     each send little but one rare template.
/// With times, a component holding two or more timing cores (members joined by weak edges
/// whose synchrony alone reaches the weak threshold) is cut around them: two operators who
/// fill one template are told apart by when they work.
/// Its components of min_ring_size or more become clusters, which merge_clusters and the
/// ring scoring judge like any other. Labels stay canonical; `*found` receives the number of
/// clusters added, `*cut` (when given) the number of components cut at timing cores.
Clustering with_weak_cores(Clustering clusters, const EvidenceGraph& weak_graph, const CanonicalRequests& req,
                           const PromptGroups& groups, const SharedInfrastructure& infra,
                           const EvidenceCalibration& calibration, const DetectOptions& options, int64_t* found,
                           int64_t* cut = nullptr);

/// `clusters` without the accounts flagged in `drop` [A] (the allowlist's): they and any
/// cluster left with one member get -1; labels stay canonical.
Clustering without_accounts(Clustering clusters, const std::vector<uint8_t>& drop);

}  // namespace ringscan
