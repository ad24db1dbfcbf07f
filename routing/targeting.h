#pragma once
// Resolves a job's `to` into the set of recipient ordinals: only users
// registered with the job's company (and service, when given) are ever in the
// set. Listed users who are not registered come back by id so they can be
// reported as `rejected: not_registered`.

#include "routing/roaring_compat.h"

#include <string>
#include <vector>

#include "routing/clock.h"
#include "routing/job.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay {

struct target_resolution {
  roaring::Roaring recipients;              // ordinals, fan-out goes in ascending order
  std::vector<std::string> not_registered;  // to.users entries not registered (or unknown)
};

// Attribute fields a `where` test may name. `age` is derived from
// birth_year and the clock's current year (age = year - birth_year).
bool is_targetable_attribute(std::string_view field);

// `now` decides the current year for `age`. Unknown attributes are an
// errc::invalid_argument naming the field.
result<target_resolution> resolve_target(store& db, const job& j, sys_time now);

}  // namespace relay
