#include "routing/segment_model.h"

#include <functional>

namespace relay {

segment_model::segment_model(uint8_t attributes) : attributes_(attributes) {}

size_t segment_model::key_hash::operator()(const key_view& k) const {
  std::hash<std::string_view> h;
  size_t x = h(k.gender);
  x = x * 0x9e3779b97f4a7c15ull + h(k.region);
  x = x * 0x9e3779b97f4a7c15ull + h(k.occupation);
  return x * 0x9e3779b97f4a7c15ull + k.age_band;
}

segment_model::key_view segment_model::view_of(const engagement_dims& d) const {
  key_view k;
  if (attributes_ & seg_gender) k.gender = d.gender;
  if (attributes_ & seg_age_band) k.age_band = d.age_band;
  if (attributes_ & seg_region) k.region = d.region;
  if (attributes_ & seg_occupation) k.occupation = d.occupation;
  return k;
}

void segment_model::add(const engagement_dims& dims, engagement_count what, uint64_t n) {
  if (n == 0 || (what != engagement_count::sent && what != engagement_count::opened)) return;
  const key_view k = view_of(dims);
  int32_t id;
  if (auto it = index_.find(k); it != index_.end()) {
    id = it->second;
  } else {
    id = static_cast<int32_t>(cells_.size());
    key owned{std::string(k.gender), std::string(k.region), std::string(k.occupation), k.age_band};
    keys_.push_back(owned);
    index_.emplace(std::move(owned), id);
    cells_.emplace_back();
  }
  open_counts& c = cells_[id][hour_slot(dims.local_hour)][static_cast<size_t>(dims.ch)];
  open_counts& t = totals_[static_cast<size_t>(dims.ch)];
  if (what == engagement_count::sent) {
    c.sent += n;
    t.sent += n;
  } else {
    c.opened += n;
    t.opened += n;
  }
}

int32_t segment_model::find(const engagement_dims& dims) const {
  auto it = index_.find(view_of(dims));
  return it == index_.end() ? kNoSegment : it->second;
}

open_counts segment_model::cell(int32_t segment, uint8_t local_hour, channel ch) const {
  if (segment < 0 || static_cast<size_t>(segment) >= cells_.size()) return {};
  return cells_[segment][hour_slot(local_hour)][static_cast<size_t>(ch)];
}

std::string segment_model::describe(int32_t segment) const {
  if (segment < 0 || static_cast<size_t>(segment) >= keys_.size()) return "(new segment)";
  const key& k = keys_[segment];
  std::string out;
  auto part = [&](std::string_view name, std::string_view value) {
    if (!out.empty()) out.push_back(' ');
    out.append(name).push_back('=');
    out.append(value.empty() ? "?" : value);
  };
  if (attributes_ & seg_gender) part("gender", k.gender);
  if (attributes_ & seg_age_band) part("age_band", age_band_label(k.age_band));
  if (attributes_ & seg_region) part("region", k.region);
  if (attributes_ & seg_occupation) part("occupation", k.occupation);
  return out.empty() ? "(all users)" : out;
}

}  // namespace relay
