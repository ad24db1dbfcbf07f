#include "daemon/plugin_host.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <vector>

namespace relay {
namespace {

namespace fs = std::filesystem;

// The table size a plug-in of ABI 1.0 must have: everything up to and
// including on_webhook. Later minors only append fields.
constexpr size_t kMinPluginTableSize =
    offsetof(relay_plugin, on_webhook) + sizeof(relay_plugin::on_webhook);

std::string abi_text(uint32_t version) {
  return std::to_string(version >> 16) + "." + std::to_string(version & 0xffffu);
}

std::string dl_error_text() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

// A plug-in name becomes a file name; refuse anything that could leave the
// plug-in directory.
bool plain_name(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

// "file_sink, sms_smpp" for the *.so files in `dir`, or "none".
std::string available_plugins(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".so") names.push_back(p.stem().string());
  }
  if (names.empty()) return "none";
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// "" when `table` is usable by this host, else why not.
std::string check_table(const relay_plugin* table) {
  if (table == nullptr) return RELAY_PLUGIN_ENTRY_SYMBOL " returned no table";
  // abi_version is the first field in every ABI version, so it is safe to read
  // before we know the layout; nothing else is until the major matches.
  if ((table->abi_version >> 16) != RELAY_PLUGIN_ABI_MAJOR) {
    return "plug-in ABI " + abi_text(table->abi_version) + " is not supported by this relay (ABI " +
           abi_text(RELAY_PLUGIN_ABI_VERSION) + ")";
  }
  if (table->struct_size < kMinPluginTableSize) {
    return "plug-in table is " + std::to_string(table->struct_size) + " bytes; ABI " +
           abi_text(table->abi_version) + " needs at least " + std::to_string(kMinPluginTableSize) +
           " (built against a broken relay/plugin.h?)";
  }
  std::string missing;
  auto require = [&](bool present, const char* name) {
    if (present) return;
    if (!missing.empty()) missing += ", ";
    missing += name;
  };
  require(table->on_create != nullptr, "on_create");
  require(table->on_destroy != nullptr, "on_destroy");
  require(table->on_submit != nullptr, "on_submit");
  if (!missing.empty()) return "plug-in table lacks required functions: " + missing;
  return "";
}

}  // namespace

result<std::shared_ptr<plugin_library>> plugin_library::load(const std::string& path) {
  // RTLD_NOW: an unresolved symbol fails here, at start-up, not on the first
  // submit. RTLD_LOCAL: two plug-ins may carry conflicting private symbols
  // (their own copies of a protocol library) without seeing each other's.
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return make_error(errc::not_found, path + ": cannot load plug-in: " + dl_error_text());
  }
  // From here on every error path closes the handle.
  auto fail = [&](std::string message) {
    dlclose(handle);
    return make_error(errc::unsupported, path + ": " + std::move(message));
  };

  dlerror();
  void* sym = dlsym(handle, RELAY_PLUGIN_ENTRY_SYMBOL);
  if (sym == nullptr) {
    return fail("not a relay plug-in (no " RELAY_PLUGIN_ENTRY_SYMBOL " symbol)");
  }
  // dlsym returns an object pointer; POSIX guarantees the round trip to a
  // function pointer.
  auto entry = reinterpret_cast<relay_plugin_entry_fn>(sym);
  const relay_plugin* table = entry();
  if (auto invalid = check_table(table); !invalid.empty()) return fail(std::move(invalid));

  auto lib = std::shared_ptr<plugin_library>(new plugin_library());
  lib->handle_ = handle;
  lib->table_ = table;
  lib->path_ = path;
  return lib;
}

result<std::shared_ptr<plugin_library>> plugin_library::from_table_for_test(
    const relay_plugin* table, const std::string& name) {
  if (auto invalid = check_table(table); !invalid.empty()) {
    return make_error(errc::unsupported, name + ": " + invalid);
  }
  auto lib = std::shared_ptr<plugin_library>(new plugin_library());
  lib->table_ = table;
  lib->path_ = name;
  return lib;
}

plugin_library::~plugin_library() {
  // Instances hold a shared_ptr to their library, so nothing of the plug-in
  // runs after this.
  if (handle_ != nullptr) dlclose(handle_);
}

plugin_loader::plugin_loader(std::string plugins_dir) : dir_(std::move(plugins_dir)) {}

result<std::shared_ptr<plugin_library>> plugin_loader::get(const std::string& name) {
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second;
  if (!plain_name(name)) {
    return make_error(
        errc::invalid_argument,
        "plug-in name \"" + name + "\" must be a plain file name (letters, digits, _ - .)");
  }
  const std::string path = (fs::path(dir_) / (name + ".so")).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    std::error_code dir_ec;
    if (!fs::is_directory(dir_, dir_ec)) {
      return make_error(errc::not_found, "plug-in \"" + name + "\" not found: plugins_dir " + dir_ +
                                             " does not exist or is not a directory");
    }
    return make_error(errc::not_found, "plug-in \"" + name + "\" not found: no " + path +
                                           " (plugins_dir " + dir_ +
                                           " has: " + available_plugins(dir_) + ")");
  }
  auto lib = plugin_library::load(path);
  if (!lib) return lib.err();
  loaded_.emplace(name, *lib);
  return lib;
}

std::string default_plugins_dir(const std::string& exe_path) {
  std::error_code ec;
  fs::path exe(exe_path);
  // A bare name (argv[0] found through PATH) has no directory to start from;
  // ask the kernel where the running binary is.
  if (!exe.has_parent_path()) {
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) exe = self;
  }
  fs::path exe_dir = fs::weakly_canonical(exe, ec).parent_path();
  if (ec || exe_dir.empty()) exe_dir = exe.parent_path();
  if (exe_dir.empty()) exe_dir = ".";
  fs::path beside = exe_dir / "plugins";
  if (fs::is_directory(beside, ec)) return beside.string();
  return (exe_dir / ".." / "lib" / "relay" / "plugins").lexically_normal().string();
}

}  // namespace relay
