#include "routing/channel_choice.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace relay {
namespace {

// The channels of `order` in order, once each, with their reachability.
// Kept small: the hot path fills only this; the per-channel numbers go to
// `detail` only when explain asks for them.
struct candidates {
  std::array<channel, kChannelCount> ch{};
  std::array<int8_t, kChannelCount> position{};
  uint8_t reachable = 0;  // bit i: ch[i] is reachable
  int n = 0;
  bool ok(int i) const { return (reachable >> i) & 1; }
};

candidates collect(const choice_input& in) {
  candidates c;
  uint8_t seen = 0;
  for (size_t i = 0; i < in.order.size() && c.n < kChannelCount; ++i) {
    const channel ch = in.order[i];
    if (seen & channel_bit(ch)) continue;
    seen |= channel_bit(ch);
    c.ch[c.n] = ch;
    c.position[c.n] = static_cast<int8_t>(std::min<size_t>(i, 127));
    if (in.reachable & channel_bit(ch)) c.reachable |= uint8_t(1u << c.n);
    ++c.n;
  }
  return c;
}

int first_reachable(const candidates& c) {
  for (int i = 0; i < c.n; ++i) {
    if (c.ok(i)) return i;
  }
  return -1;
}

int pick_preferred(const choice_input& in, const candidates& c, channel_score* detail) {
  int best = -1;
  uint32_t best_opened = 0;
  double best_rate = 0;
  for (int i = 0; i < c.n; ++i) {
    const auto k = static_cast<size_t>(c.ch[i]);
    const uint32_t sent = in.user != nullptr ? in.user->sent[k] : 0;
    const uint32_t opened = in.user != nullptr ? in.user->opened[k] : 0;
    if (detail != nullptr) {
      detail[i].user_sent = sent;
      detail[i].user_opened = opened;
    }
    if (!c.ok(i) || opened == 0) continue;
    const double rate = double(opened) / double(std::max(sent, opened));
    // Most opens, then the higher open rate; earlier in order wins ties.
    if (best < 0 || opened > best_opened || (opened == best_opened && rate > best_rate)) {
      best = i;
      best_opened = opened;
      best_rate = rate;
    }
  }
  return best >= 0 ? best : first_reachable(c);
}

int pick_best(const choice_input& in, const segment_model& model, const choice_params& p,
              const candidates& c, channel_score* detail) {
  const int32_t segment = in.dims != nullptr ? model.find(*in.dims) : kNoSegment;
  const uint8_t hour = in.dims != nullptr ? in.dims->local_hour : kUnknownHour;
  std::array<open_counts, kChannelCount> cell{};
  uint64_t cell_sends = 0;
  for (int i = 0; i < c.n; ++i) {
    cell[i] = model.cell(segment, hour, c.ch[i]);
    if (c.ok(i)) cell_sends += cell[i].sent;
  }
  const double w = p.prior_weight > 0 ? p.prior_weight : 0;
  const double log_t = std::log1p(double(cell_sends));
  int best = -1;
  double best_score = 0;
  for (int i = 0; i < c.n; ++i) {
    if (!c.ok(i) && detail == nullptr) continue;
    const open_counts& overall = model.total(c.ch[i]);
    // Laplace-smoothed overall rate: a channel never used anywhere starts at 0.5.
    const double prior = (double(overall.opened) + 1) / (double(overall.sent) + 2);
    const double n = double(cell[i].sent) + w;
    const double mean = n > 0 ? (double(cell[i].opened) + w * prior) / n : prior;
    const double bonus = n > 0 ? p.explore * std::sqrt(log_t / n) : 0;
    const double score = mean + bonus;
    if (detail != nullptr) {
      channel_score& d = detail[i];
      d.cell = cell[i];
      d.overall = overall;
      d.prior_mean = prior;
      d.posterior_mean = mean;
      d.bonus = bonus;
      d.score = score;
    }
    if (c.ok(i) && (best < 0 || score > best_score)) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

// The decision. `detail` (explain only) receives one score per candidate.
choice decide(const choice_input& in, const segment_model& model, const choice_params& p,
              candidates& c, channel_score* detail) {
  c = collect(in);
  if (detail != nullptr) {
    for (int i = 0; i < c.n; ++i) {
      detail[i].ch = c.ch[i];
      detail[i].order_position = c.position[i];
      detail[i].reachable = c.ok(i);
    }
  }
  choice out;
  int pick = -1;
  switch (in.mode) {
    case channel_mode::simultaneous:
      for (int i = 0; i < c.n; ++i) {
        if (c.ok(i)) out.channels[out.count++] = c.ch[i];
      }
      return out;
    case channel_mode::preferred:
      pick = pick_preferred(in, c, detail);
      break;
    case channel_mode::best:
      pick = pick_best(in, model, p, c, detail);
      break;
    case channel_mode::specified:
    case channel_mode::fallback:
    case channel_mode::resend:
      pick = first_reachable(c);
      break;
  }
  if (pick >= 0) out.channels[out.count++] = c.ch[pick];
  return out;
}

std::string list_order(const candidates& c) {
  std::string s = "[";
  for (int i = 0; i < c.n; ++i) {
    if (i > 0) s += ", ";
    s += to_string(c.ch[i]);
    if (!c.ok(i)) s += " (unreachable)";
  }
  return s + "]";
}

std::string fmt(const char* f, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

choice choose_channel(const choice_input& in, const segment_model& model, const choice_params& p) {
  candidates c;
  return decide(in, model, p, c, nullptr);
}

std::optional<channel> next_fallback(std::span<const channel> order, uint8_t reachable,
                                     uint8_t tried) {
  for (channel ch : order) {
    if ((reachable & channel_bit(ch)) && !(tried & channel_bit(ch))) return ch;
  }
  return std::nullopt;
}

choice_explanation explain_channel(const choice_input& in, const segment_model& model,
                                   const choice_params& p) {
  candidates c;
  std::array<channel_score, kChannelCount> detail{};
  choice_explanation e;
  e.picked = decide(in, model, p, c, detail.data());
  e.scores.assign(detail.begin(), detail.begin() + c.n);
  std::string& r = e.reason;
  r = std::string(to_string(in.mode)) + ": ";
  if (e.picked.empty()) {
    r += "no channel of order " + list_order(c) + " is reachable";
    return e;
  }
  const channel first = e.picked.channels[0];
  const channel_score* chosen = nullptr;
  for (const channel_score& s : e.scores) {
    if (s.ch == first) chosen = &s;
  }
  switch (in.mode) {
    case channel_mode::simultaneous:
      r += "every reachable channel of order " + list_order(c);
      break;
    case channel_mode::specified:
    case channel_mode::resend:
    case channel_mode::fallback:
      r +=
          std::string(to_string(first)) + ", the first reachable channel of order " + list_order(c);
      if (in.mode == channel_mode::fallback) r += "; later steps follow order";
      break;
    case channel_mode::preferred:
      if (chosen->user_opened == 0) {
        r += std::string(to_string(first)) +
             ": the user opened nothing yet, so the first reachable of order " + list_order(c);
        break;
      }
      r += std::string(to_string(first)) + ", the channel this user opens most:";
      for (const channel_score& s : e.scores) {
        if (!s.reachable) continue;
        r += " " + std::string(to_string(s.ch)) + " opened " + std::to_string(s.user_opened) +
             " of " + std::to_string(s.user_sent) + " sent;";
      }
      r.pop_back();
      break;
    case channel_mode::best: {
      const int32_t segment = in.dims != nullptr ? model.find(*in.dims) : kNoSegment;
      const uint8_t hour = in.dims != nullptr ? in.dims->local_hour : kUnknownHour;
      r += std::string(to_string(first)) + " has the highest score for " + model.describe(segment) +
           " at " + (hour < 24 ? fmt("%02.0fh", hour) : std::string("unknown hour")) +
           " (score = posterior open rate + exploration bonus; prior weight " +
           fmt("%g", p.prior_weight) + " sends):";
      for (const channel_score& s : e.scores) {
        if (!s.reachable) continue;
        r += " " + std::string(to_string(s.ch)) + " " + fmt("%.4f", s.score) + " = " +
             fmt("%.4f", s.posterior_mean) + " (opened " + std::to_string(s.cell.opened) + " of " +
             std::to_string(s.cell.sent) + " here, prior " + fmt("%.4f", s.prior_mean) + " from " +
             std::to_string(s.overall.opened) + "/" + std::to_string(s.overall.sent) +
             " overall) + " + fmt("%.4f", s.bonus) + ";";
      }
      r.pop_back();
      break;
    }
  }
  return e;
}

}  // namespace relay
