#pragma once
// Test helpers shared by the registry storage tests: a scratch directory under
// /tmp removed at the end, and a store opened in it.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "routing/roaring_compat.h"
#include "routing/store.h"
#include "tests/test_support.h"

namespace relay::testing {

using temp_dir = relay::test::temp_dir;

inline std::unique_ptr<store> open_store(const std::string& path, store_options o = {}) {
  o.block_cache_bytes = 8u << 20;
  auto s = store::open(path, o);
  if (!s) {
    ADD_FAILURE() << "open " << path << ": " << s.err().message;
    return nullptr;
  }
  return std::move(*s);
}

inline roaring::Roaring bitmap_of(std::initializer_list<uint32_t> v) {
  roaring::Roaring r;
  for (uint32_t x : v) r.add(x);
  return r;
}

inline std::vector<uint32_t> to_vector(const roaring::Roaring& r) {
  std::vector<uint32_t> out(r.cardinality());
  r.toUint32Array(out.data());
  return out;
}

}  // namespace relay::testing
