// Indicators of reported rings: taken from a run, written and read as JSON, and matched
// against another input (include/ringscan/indicators.hpp, docs/indicators.md).
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "faiss_util.hpp"
#include "parallel.hpp"
#include "ringscan/error.hpp"
#include "ringscan/indicators.hpp"
#include "ringscan/io.hpp"
#include "ringscan/ring_indicators.hpp"

namespace ringscan {
namespace {

constexpr const char* kFormat = "ringscan-indicators";
constexpr int64_t kVersion = 1;
/// Requests compared with the prompts at once, on a grid of canonical indices (a batch's
/// rows, scores and indices are held per thread).
constexpr int64_t kMatchBatch = 4096;
/// Batches between two progress reports.
constexpr int64_t kMatchRound = 64;

/// Each ring member's (canonical account, ring index), for the accounts of reported rings.
std::vector<std::pair<int64_t, int64_t>> ring_members(const Clustering& clusters, const std::vector<Ring>& rings) {
  std::vector<int64_t> ring_of_cluster(clusters.num_clusters, -1);
  for (std::size_t i = 0; i < rings.size(); ++i) ring_of_cluster[rings[i].cluster] = int64_t(i);
  std::vector<std::pair<int64_t, int64_t>> members;
  for (int64_t a = 0; a < int64_t(clusters.label.size()); ++a)
    if (clusters.label[a] >= 0 && ring_of_cluster[clusters.label[a]] >= 0)
      members.emplace_back(a, ring_of_cluster[clusters.label[a]]);
  return members;
}

/// (ring, key) -> members that have the key, for keys with two or more members, ordered per
/// ring by members (descending), then by `rarer` (ascending), then key; at most `limit`.
template <class Rarer>
std::vector<std::vector<std::pair<int64_t, int64_t>>> shared_by_members(
    std::vector<std::pair<int64_t, int64_t>> entries, int64_t rings, int64_t limit, Rarer&& rarer) {
  std::sort(entries.begin(), entries.end());
  std::vector<std::vector<std::pair<int64_t, int64_t>>> out(rings);  // (key, members)
  for (std::size_t i = 0; i < entries.size();) {
    std::size_t j = i;
    while (j < entries.size() && entries[j] == entries[i]) ++j;
    if (j - i >= 2) out[entries[i].first].emplace_back(entries[i].second, int64_t(j - i));
    i = j;
  }
  for (auto& keys : out) {
    std::sort(keys.begin(), keys.end(), [&](const auto& x, const auto& y) {
      if (x.second != y.second) return x.second > y.second;
      const int64_t rx = rarer(x.first), ry = rarer(y.first);
      return rx != ry ? rx < ry : x.first < y.first;
    });
    if (int64_t(keys.size()) > limit) keys.resize(limit);
  }
  return out;
}

[[noreturn]] void malformed(const std::string& path, const std::string& where, const std::string& problem) {
  throw InvalidInput(path + ": indicators: " + where + ": " + problem);
}

int64_t integer_field(const nlohmann::json& j, const char* name, const std::string& path, const std::string& where) {
  if (!j.contains(name)) malformed(path, where, std::string("no '") + name + "'");
  const auto& v = j.at(name);
  if (!v.is_number_integer()) malformed(path, where + "." + name, "not an integer");
  return v.get<int64_t>();
}

}  // namespace

Indicators ring_indicators(const CanonicalRequests& req, const PromptGroups& groups, const SharedInfrastructure& infra,
                           const Clustering& clusters, const std::vector<Ring>& rings, const Context& ctx,
                           const RequestRows& rows) {
  Indicators out;
  out.dim = req.dim;
  const int64_t n = int64_t(rings.size()), D = req.dim;
  const auto members = ring_members(clusters, rings);
  ctx.require_memory(int64_t(members.size()) * 64 + n * kIndicatorPrompts * D * 12, "ring indicators");

  // Prompt groups and tokens two or more members have.
  std::vector<std::pair<int64_t, int64_t>> group_entries, token_entries;
  std::vector<int64_t> mine;
  for (const auto& [a, ring] : members) {
    account_evidence_groups(req, groups, a, mine);
    for (const int64_t g : mine) group_entries.emplace_back(ring, g);
    if (!infra.account_offsets.empty())
      for (int64_t i = infra.account_offsets[a]; i < infra.account_offsets[a + 1]; ++i)
        token_entries.emplace_back(ring, infra.account_tokens[i]);
  }
  const auto ring_groups = shared_by_members(std::move(group_entries), n, kIndicatorPrompts,
                                             [&](int64_t g) { return groups.accounts_in(g); });
  const auto ring_tokens = shared_by_members(std::move(token_entries), n, kIndicatorTokens,
                                             [&](int64_t t) { return infra.accounts_of(t); });

  out.rings.resize(n);
  std::vector<std::map<int64_t, int64_t>> slot(n);  // group -> exemplar row
  for (int64_t i = 0; i < n; ++i) {
    RingIndicator& r = out.rings[i];
    r.ring = rings[i].id;
    r.size = rings[i].size;
    r.score = rings[i].score;
    r.sign_up_first = rings[i].sign_up_first;
    r.sign_up_last = rings[i].sign_up_last;
    r.prompts.assign(ring_groups[i].size() * D, 0.0f);
    for (std::size_t k = 0; k < ring_groups[i].size(); ++k) slot[i][ring_groups[i][k].first] = int64_t(k);
    for (const auto& [t, count] : ring_tokens[i])
      r.tokens.push_back({infra.kind_names[infra.token_kind[t]], infra.token_value[t], count, infra.accounts_of(t)});
  }
  // The members' requests in the exemplars' groups (ascending: members are), each with its
  // ring and exemplar, and the span of their requests.
  std::vector<int64_t> wanted;
  std::vector<std::pair<int64_t, int64_t>> exemplar_of;  // [wanted] (ring, exemplar)
  for (const auto& [a, ring] : members)
    for (int64_t q = req.account_offsets[a]; q < req.account_offsets[a + 1]; ++q) {
      if (!req.time.empty()) {
        RingIndicator& r = out.rings[ring];
        r.first_seen = r.first_seen == 0 ? req.time[q] : std::min(r.first_seen, req.time[q]);
        r.last_seen = std::max(r.last_seen, req.time[q]);
      }
      const auto at = slot[ring].find(groups.group_of_request[q]);
      if (at == slot[ring].end()) continue;
      wanted.push_back(q);
      exemplar_of.emplace_back(ring, at->second);
    }
  ctx.require_memory(int64_t(wanted.size()) * D * 4, "ring indicators (the exemplars' requests)");
  std::vector<float> fetched;
  if (rows) {
    fetched = rows(wanted);
    if (int64_t(fetched.size()) != int64_t(wanted.size()) * D)
      throw InternalError("ring indicators: " + std::to_string(fetched.size() / std::max<int64_t>(D, 1)) + " rows for " +
                          std::to_string(wanted.size()) + " requests");
  }
  auto row_of = [&](std::size_t i) { return rows ? &fetched[i * D] : &req.unit_embeddings[wanted[i] * D]; };
  // Sums of the members' requests per exemplar, in request order.
  std::vector<std::vector<double>> sums(n);
  for (int64_t i = 0; i < n; ++i) sums[i].assign(out.rings[i].prompts.size(), 0.0);
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const float* e = row_of(i);
    double* s = &sums[exemplar_of[i].first][exemplar_of[i].second * D];
    for (int64_t d = 0; d < D; ++d) s[d] += e[d];
  }
  for (int64_t i = 0; i < n; ++i) {
    RingIndicator& r = out.rings[i];
    for (int64_t k = 0; k < r.num_prompts(D); ++k) {
      const double* s = &sums[i][k * D];
      double norm = 0;
      for (int64_t d = 0; d < D; ++d) norm += s[d] * s[d];
      const double inv = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
      for (int64_t d = 0; d < D; ++d) r.prompts[k * D + d] = float(s[d] * inv);
    }
  }
  return out;
}

void check_indicator_width(const Indicators& known, int64_t dim, const std::string& source) {
  if (!known.empty() && known.dim != dim)
    throw InvalidInput(source + ": indicators: prompts of width " + std::to_string(known.dim) +
                       ", but the input's embeddings are " + std::to_string(dim) + " wide (another embedding model?)");
}

PromptHits indicator_prompt_hits(const float* rows, int64_t first, int64_t count, int64_t D,
                                 const std::vector<int64_t>& request_owner, const Indicators& known, float similarity,
                                 const Context& ctx) {
  PromptHits hits;
  // The prompts, flattened, with the ring each belongs to.
  std::vector<float> prompts;
  std::vector<int64_t> prompt_ring;
  for (std::size_t i = 0; i < known.rings.size(); ++i) {
    const RingIndicator& r = known.rings[i];
    prompts.insert(prompts.end(), r.prompts.begin(), r.prompts.end());
    prompt_ring.insert(prompt_ring.end(), std::size_t(r.num_prompts(D)), int64_t(i));
  }
  const int64_t P = int64_t(prompt_ring.size());
  if (P == 0 || count <= 0) return hits;
  const int threads = ctx.threads > 0 ? ctx.threads : 1;
  ctx.require_memory(int64_t(threads) * kMatchBatch * (4 * D + 12) + P * D * 4, "indicator matching");
  // Batches on the grid of canonical indices, each full (positions outside this call's
  // requests hold copies of its first): FAISS compares a few rows without BLAS, and OpenBLAS
  // small products with other kernels, so a row's score would otherwise depend on how many
  // rows share its batch. Single-threaded BLAS, whose split of a product is fixed.
  const int64_t b0 = first / kMatchBatch, b1 = (first + count - 1) / kMatchBatch + 1;
  std::vector<PromptHits> found(size_t(b1 - b0));
  {
    SerialBlasScope serial_blas;
    ThreadScope scope(ctx.threads);
    // Rounds of batches, progress reported between them.
    for (int64_t k0 = b0; k0 < b1; k0 += kMatchRound) {
      faiss_call("indicator matching", [&] {
        detail::parallel_for(std::min(kMatchRound, b1 - k0), 1, [&](int64_t j) {
          const int64_t k = k0 - b0 + j;
          const int64_t start = (b0 + k) * kMatchBatch;
          const int64_t lo = std::max(first, start), hi = std::min(first + count, start + kMatchBatch);
          std::vector<float> batch(static_cast<size_t>(kMatchBatch * D)), score(static_cast<size_t>(kMatchBatch));
          std::vector<int64_t> nearest(static_cast<size_t>(kMatchBatch));
          for (int64_t i = 0; i < kMatchBatch; ++i) {
            const int64_t q = start + i >= lo && start + i < hi ? start + i : lo;
            std::copy_n(rows + (q - first) * D, D, &batch[size_t(i * D)]);
          }
          faiss::knn_inner_product(batch.data(), prompts.data(), size_t(D), size_t(kMatchBatch), size_t(P), 1,
                                   score.data(), nearest.data());
          for (int64_t q = lo; q < hi; ++q)
            if (nearest[q - start] >= 0 && score[q - start] >= similarity)
              found[size_t(k)].emplace_back(request_owner[q], prompt_ring[nearest[q - start]]);
        });
      });
      ctx.report("indicator matching", std::min(first + count, (k0 + kMatchRound) * kMatchBatch) - first, count);
    }
  }
  for (const PromptHits& f : found) hits.insert(hits.end(), f.begin(), f.end());
  return hits;
}

std::vector<IndicatorMatch> match_indicators(const CanonicalRequests& req, const Indicators& known, float similarity,
                                             const std::string& source, const Context& ctx,
                                             const PromptHits* prompt_hits_found) {
  const int64_t A = req.num_accounts, R = req.num_requests, D = req.dim;
  std::vector<IndicatorMatch> matches(A);
  if (known.empty()) return matches;
  check_indicator_width(known, D, source);
  ctx.require_memory(A * 64, "indicator matching");

  // (account, indicator ring) hits: requests near a prompt, tokens used.
  PromptHits found_here;
  if (!prompt_hits_found)
    found_here = indicator_prompt_hits(req.unit_embeddings.data(), 0, R, D, req.request_owner, known, similarity, ctx);
  const PromptHits& prompt_hits = prompt_hits_found ? *prompt_hits_found : found_here;
  std::vector<std::pair<int64_t, int64_t>> token_hits;
  // Tokens by (column of this input, value); payment is the column after the infra columns.
  std::map<std::string, int64_t> column;
  for (int64_t k = 0; k < req.infra_dim; ++k) column[req.infra_names[k]] = k;
  if (!req.payment.empty()) column["payment"] = req.infra_dim;
  std::unordered_map<int64_t, std::vector<std::pair<int64_t, int64_t>>> rings_of_value;  // value -> (column, ring)
  for (std::size_t i = 0; i < known.rings.size(); ++i)
    for (const SharedTokenExample& t : known.rings[i].tokens)
      if (const auto c = column.find(t.kind); c != column.end()) rings_of_value[t.token].emplace_back(c->second, int64_t(i));
  auto used = [&](int64_t a, int64_t col, int64_t value) {
    if (const auto it = rings_of_value.find(value); it != rings_of_value.end())
      for (const auto& [c, ring] : it->second)
        if (c == col) token_hits.emplace_back(a, ring);
  };
  if (!rings_of_value.empty())
    for (int64_t a = 0; a < A; ++a) {
      if (!req.payment.empty() && req.payment[a] != 0) used(a, req.infra_dim, req.payment[a]);
      for (int64_t q = req.account_offsets[a]; q < req.account_offsets[a + 1]; ++q)
        for (int64_t k = 0; k < req.infra_dim; ++k)
          if (req.infra[q * req.infra_dim + k] != 0) used(a, k, req.infra[q * req.infra_dim + k]);
    }
  std::sort(token_hits.begin(), token_hits.end());
  token_hits.erase(std::unique(token_hits.begin(), token_hits.end()), token_hits.end());

  // Per (account, ring): prompt hits and whether a token was used; the best ring per account.
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> hits;
  for (const auto& key : prompt_hits) ++hits[key].first;
  for (const auto& key : token_hits) hits[key].second = 1;
  for (const auto& [key, h] : hits) {
    const auto [a, ring] = key;
    if (!(h.first >= 2 || (h.first >= 1 && h.second >= 1))) continue;
    IndicatorMatch& m = matches[a];
    // Rings come in file order per account: only strictly more hits replace a match.
    if (m.ring < 0 || h.first + h.second > m.prompt_hits + m.token_hits) {
      m.ring = known.rings[ring].ring;
      m.prompt_hits = h.first;
      m.token_hits = h.second;
    }
  }
  return matches;
}

void write_indicators(const std::string& path, const Indicators& indicators) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["source"] = indicators.source;
  j["dim"] = indicators.dim;
  j["rings"] = ordered_json::array();
  for (const RingIndicator& r : indicators.rings) {
    ordered_json e;
    e["ring"] = r.ring;
    e["size"] = r.size;
    e["score"] = r.score;
    e["first_seen"] = r.first_seen;
    e["last_seen"] = r.last_seen;
    e["sign_up_first"] = r.sign_up_first;
    e["sign_up_last"] = r.sign_up_last;
    e["tokens"] = ordered_json::array();
    for (const SharedTokenExample& t : r.tokens)
      e["tokens"].push_back(
          {{"kind", t.kind}, {"value", t.token}, {"ring_accounts", t.accounts_in_ring}, {"accounts_overall", t.accounts_overall}});
    e["prompts"] = ordered_json::array();
    for (int64_t k = 0; k < r.num_prompts(indicators.dim); ++k)
      e["prompts"].push_back(std::vector<float>(r.prompts.begin() + k * indicators.dim,
                                                r.prompts.begin() + (k + 1) * indicators.dim));
    j["rings"].push_back(std::move(e));
  }
  write_file_atomically(path, j.dump() + "\n");
}

Indicators read_indicators(const std::string& path, int64_t memory_budget) {
  std::error_code error;
  const auto bytes = std::filesystem::file_size(path, error);
  if (error) throw InvalidInput(path + ": cannot read the indicators file: " + error.message());
  // A parsed JSON document takes some ten times its text.
  if (memory_budget > 0 && double(bytes) * 10 > double(memory_budget))
    throw BudgetExceeded(path + ": indicators file of " + std::to_string(bytes) +
                         " bytes needs about ten times that to read, over the memory budget");
  std::ifstream in(path);
  if (!in) throw InvalidInput(path + ": cannot open the indicators file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidInput(path + ": indicators: not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) malformed(path, "top level", "not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat)
    malformed(path, "format", std::string("not \"") + kFormat + "\" (not a ringscan indicators file)");
  if (integer_field(j, "version", path, "top level") != kVersion)
    malformed(path, "version", "version " + std::to_string(j["version"].get<int64_t>()) + " is not supported (this ringscan reads 1)");
  Indicators out;
  out.dim = integer_field(j, "dim", path, "top level");
  if (out.dim < 1 || out.dim > 65536) malformed(path, "dim", "must be in [1, 65536]");
  if (j.contains("source") && j["source"].is_string()) out.source = j["source"].get<std::string>();
  if (!j.contains("rings") || !j["rings"].is_array()) malformed(path, "rings", "missing or not an array");
  for (std::size_t i = 0; i < j["rings"].size(); ++i) {
    const auto& e = j["rings"][i];
    const std::string where = "rings[" + std::to_string(i) + "]";
    if (!e.is_object()) malformed(path, where, "not an object");
    RingIndicator r;
    r.ring = integer_field(e, "ring", path, where);
    r.size = e.contains("size") ? integer_field(e, "size", path, where) : 0;
    const std::pair<const char*, int64_t RingIndicator::*> spans[] = {{"first_seen", &RingIndicator::first_seen},
                                                                      {"last_seen", &RingIndicator::last_seen},
                                                                      {"sign_up_first", &RingIndicator::sign_up_first},
                                                                      {"sign_up_last", &RingIndicator::sign_up_last}};
    for (const auto& [name, field] : spans)
      if (e.contains(name)) r.*field = integer_field(e, name, path, where);
    if (e.contains("score")) {
      if (!e["score"].is_number()) malformed(path, where + ".score", "not a number");
      r.score = e["score"].get<float>();
    }
    if (e.contains("tokens")) {
      if (!e["tokens"].is_array()) malformed(path, where + ".tokens", "not an array");
      for (std::size_t k = 0; k < e["tokens"].size(); ++k) {
        const auto& t = e["tokens"][k];
        const std::string at = where + ".tokens[" + std::to_string(k) + "]";
        if (!t.is_object() || !t.contains("kind") || !t["kind"].is_string() || t["kind"].get<std::string>().empty())
          malformed(path, at, "needs a non-empty string 'kind'");
        SharedTokenExample token;
        token.kind = t["kind"].get<std::string>();
        token.token = integer_field(t, "value", path, at);
        if (token.token == 0) malformed(path, at + ".value", "token 0 means unknown");
        if (t.contains("ring_accounts")) token.accounts_in_ring = integer_field(t, "ring_accounts", path, at);
        if (t.contains("accounts_overall")) token.accounts_overall = integer_field(t, "accounts_overall", path, at);
        r.tokens.push_back(std::move(token));
      }
    }
    if (e.contains("prompts")) {
      if (!e["prompts"].is_array()) malformed(path, where + ".prompts", "not an array");
      for (std::size_t k = 0; k < e["prompts"].size(); ++k) {
        const auto& p = e["prompts"][k];
        const std::string at = where + ".prompts[" + std::to_string(k) + "]";
        if (!p.is_array() || int64_t(p.size()) != out.dim)
          malformed(path, at, "expected " + std::to_string(out.dim) + " numbers (dim)");
        double norm = 0;
        for (const auto& x : p) {
          if (!x.is_number() || !std::isfinite(x.get<double>())) malformed(path, at, "holds a value that is not a finite number");
          r.prompts.push_back(x.get<float>());
          norm += x.get<double>() * x.get<double>();
        }
        if (!(norm > 0)) malformed(path, at, "is a zero vector");
        // Unit length, whatever precision the file was written with.
        const float inv = float(1.0 / std::sqrt(norm));
        for (int64_t d = 0; d < out.dim; ++d) r.prompts[r.prompts.size() - out.dim + d] *= inv;
      }
    }
    out.rings.push_back(std::move(r));
  }
  return out;
}

}  // namespace ringscan
