#pragma once
// Open rates by segment × local hour × channel, for channel mode `best`
// (DESIGN §6). A segment is the user's values of the configured attributes
// (default gender + age band). The lead loads it at start-up from the
// engagement cube (every row since a lookback, through add()) and keeps it
// live with add() as messages are sent and opened. Channel totals over all
// segments and hours are kept too: they centre the prior of channel_choice.
//
// Memory: per segment seen, 25 hours (0..23 + unknown) × 3 channels × 16 bytes
// = 1.2 KB; default attributes give at most 3 × 7 = 21 segments per gender value.
// Thread: the core thread only. Lookups do not allocate.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/channel.h"
#include "routing/engagement_dims.h"

namespace relay {

// Which attributes make a segment (bit set).
enum segment_attribute : uint8_t {
  seg_gender = 1,
  seg_age_band = 2,
  seg_region = 4,
  seg_occupation = 8,
};
inline constexpr uint8_t kDefaultSegmentAttributes = seg_gender | seg_age_band;

struct open_counts {
  uint64_t sent = 0;
  uint64_t opened = 0;
};

// find() of a segment never counted.
inline constexpr int32_t kNoSegment = -1;
inline constexpr int kHourSlots = 25;  // 0..23, 24 = unknown hour

class segment_model {
 public:
  explicit segment_model(uint8_t attributes = kDefaultSegmentAttributes);

  uint8_t attributes() const { return attributes_; }

  // Counts `n` sends or opens (other counts are ignored) under the dims'
  // segment, local hour and channel, and in the channel's totals.
  void add(const engagement_dims& dims, engagement_count what, uint64_t n);

  // The segment of `dims` (only the configured attributes matter);
  // kNoSegment when nothing was ever counted for it.
  int32_t find(const engagement_dims& dims) const;
  // Counts of one cell; zero when the segment is kNoSegment.
  open_counts cell(int32_t segment, uint8_t local_hour, channel ch) const;
  // All segments and hours.
  const open_counts& total(channel ch) const { return totals_[static_cast<size_t>(ch)]; }

  size_t segment_count() const { return cells_.size(); }
  // "gender=f age_band=30-39" (explain; allocates).
  std::string describe(int32_t segment) const;

 private:
  struct key {
    std::string gender, region, occupation;
    uint8_t age_band = kAgeBandUnknown;
  };
  struct key_view {
    std::string_view gender, region, occupation;
    uint8_t age_band = kAgeBandUnknown;
  };
  struct key_hash {
    using is_transparent = void;
    size_t operator()(const key_view& k) const;
    size_t operator()(const key& k) const {
      return (*this)(key_view{k.gender, k.region, k.occupation, k.age_band});
    }
  };
  struct key_eq {
    using is_transparent = void;
    static key_view view(const key& k) { return {k.gender, k.region, k.occupation, k.age_band}; }
    static key_view view(const key_view& k) { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      const key_view x = view(a), y = view(b);
      return x.age_band == y.age_band && x.gender == y.gender && x.region == y.region &&
             x.occupation == y.occupation;
    }
  };
  using cells = std::array<std::array<open_counts, kChannelCount>, kHourSlots>;

  key_view view_of(const engagement_dims& dims) const;

  uint8_t attributes_;
  std::unordered_map<key, int32_t, key_hash, key_eq> index_;
  std::vector<key> keys_;
  std::vector<cells> cells_;
  std::array<open_counts, kChannelCount> totals_{};
};

inline int hour_slot(uint8_t local_hour) { return local_hour < 24 ? local_hour : 24; }

}  // namespace relay
