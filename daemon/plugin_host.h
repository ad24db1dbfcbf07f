#pragma once
// Loads plug-in shared libraries and checks them against the ABI
// (plugins/include/relay/plugin.h) before anything of theirs runs.

#include <map>
#include <memory>
#include <string>

#include "relay/plugin.h"
#include "routing/result.h"

namespace relay {

// One dlopen'ed plug-in library. Stays loaded while any instance of it lives.
class plugin_library {
 public:
  // Loads `path`, resolves relay_plugin_entry and validates the table:
  // ABI major equal to the host's, struct_size large enough, on_create /
  // on_destroy / on_submit present. Errors say which and what was found, e.g.
  // "plugins/old.so: plug-in ABI 2.0 is not supported by this relay (ABI 1.0)".
  static result<std::shared_ptr<plugin_library>> load(const std::string& path);

  // Wraps a table linked into the calling binary (unit tests' fake
  // plug-ins), validated like a loaded one; `name` stands in for the path.
  static result<std::shared_ptr<plugin_library>> from_table_for_test(const relay_plugin* table,
                                                                     const std::string& name);
  ~plugin_library();

  const relay_plugin& table() const { return *table_; }
  const std::string& path() const { return path_; }

 private:
  plugin_library() = default;
  void* handle_ = nullptr;
  const relay_plugin* table_ = nullptr;
  std::string path_;
};

// Finds plug-ins by name in a directory (<dir>/<name>.so), loading each once.
class plugin_loader {
 public:
  explicit plugin_loader(std::string plugins_dir);
  result<std::shared_ptr<plugin_library>> get(const std::string& name);
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<std::string, std::shared_ptr<plugin_library>> loaded_;
};

// The default plug-in directory for a relayd/relayctl binary at `exe_path`:
// <exe_dir>/plugins when it exists (build tree), else <exe_dir>/../lib/relay/plugins.
std::string default_plugins_dir(const std::string& exe_path);

}  // namespace relay
