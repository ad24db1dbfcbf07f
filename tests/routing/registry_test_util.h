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

namespace relay::testing {

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = "/tmp/relay-registry-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

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
