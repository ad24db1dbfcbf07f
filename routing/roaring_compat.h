#pragma once
// relay spells CRoaring's C++ bitmap `roaring::Roaring` (its namespace since
// CRoaring 0.3). Debian bookworm ships 0.2.66, which declares the class at
// global scope; this alias makes both spellings work there. Include this
// instead of <roaring/roaring.hh>. Drop the alias when moving to CRoaring >= 0.3.

#include <roaring/roaring.hh>

namespace roaring {
using ::Roaring;
}  // namespace roaring
