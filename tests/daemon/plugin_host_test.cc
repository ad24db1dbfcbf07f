#include "daemon/plugin_host.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/test_support.h"

namespace relay {
namespace {

const std::string kPluginsDir = RELAY_BINARY_DIR "/plugins";
const std::string kAbiInclude = RELAY_SOURCE_DIR "/plugins/include";

// A C plug-in whose table is `table_fields` (the initialiser of a relay_plugin).
std::string plugin_source(const std::string& table_fields) {
  return R"(#include <relay/plugin.h>
#define UNUSED __attribute__((unused))
static UNUSED void* create(const relay_host* h, const relay_kv* c, size_t n, char* e, size_t es) {
  (void)h; (void)c; (void)n; (void)e; (void)es; return 0;
}
static UNUSED void destroy(void* i) { (void)i; }
static UNUSED void submit(void* i, uint64_t id, const relay_message* m) { (void)i; (void)id; (void)m; }
static const relay_plugin table = {)" +
         table_fields + R"(};
RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &table; }
)";
}

class plugin_host_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_cc()) GTEST_SKIP() << "no C compiler (cc) to build test plug-ins";
  }
  // Builds <tmp>/<name>.so from `source`; returns its path.
  std::string build(const std::string& name, const std::string& source) {
    const std::string err = test::compile_c_plugin(dir_.path(), name, source, kAbiInclude);
    EXPECT_EQ(err, "");
    return dir_ / (name + ".so");
  }
  test::temp_dir dir_;
};

TEST(plugin_library_load, loads_the_file_sink_plugin) {
  auto lib = plugin_library::load(kPluginsDir + "/file_sink.so");
  ASSERT_TRUE(lib) << lib.err().message;
  EXPECT_STREQ((*lib)->table().name, "file_sink");
  EXPECT_EQ((*lib)->table().abi_version >> 16, RELAY_PLUGIN_ABI_MAJOR);
  EXPECT_EQ((*lib)->path(), kPluginsDir + "/file_sink.so");
}

TEST_F(plugin_host_test, refuses_a_plugin_built_for_another_abi_major) {
  const std::string path = build(
      "abi2",
      plugin_source(
          "(2u << 16) | 3u, sizeof(relay_plugin), \"abi2\", \"1\", create, destroy, submit, 0"));
  auto lib = plugin_library::load(path);
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.err().message, path + ": plug-in ABI 2.3 is not supported by this relay (ABI 1.1)");
  EXPECT_EQ(lib.err().code, errc::unsupported);
}

TEST_F(plugin_host_test, accepts_a_newer_minor_of_the_same_major) {
  const std::string path = build(
      "minor7",
      plugin_source(
          "(1u << 16) | 7u, sizeof(relay_plugin), \"minor7\", \"1\", create, destroy, submit, 0"));
  auto lib = plugin_library::load(path);
  ASSERT_TRUE(lib) << lib.err().message;
  EXPECT_STREQ((*lib)->table().name, "minor7");
}

TEST_F(plugin_host_test, refuses_a_library_without_the_entry_symbol) {
  const std::string path = build("noentry", "int not_a_plugin(void) { return 1; }\n");
  auto lib = plugin_library::load(path);
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.err().message, path + ": not a relay plug-in (no relay_plugin_entry symbol)");
}

TEST_F(plugin_host_test, refuses_a_table_smaller_than_abi_1_0) {
  const std::string path = build(
      "short",
      plugin_source("RELAY_PLUGIN_ABI_VERSION, 16, \"short\", \"1\", create, destroy, submit, 0"));
  auto lib = plugin_library::load(path);
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.err().message.find(path + ": plug-in table is 16 bytes"), std::string::npos)
      << lib.err().message;
}

TEST_F(plugin_host_test, refuses_a_table_without_required_functions) {
  const std::string path = build(
      "nosubmit",
      plugin_source(
          "RELAY_PLUGIN_ABI_VERSION, sizeof(relay_plugin), \"nosubmit\", \"1\", create, 0, 0, 0"));
  auto lib = plugin_library::load(path);
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.err().message,
            path + ": plug-in table lacks required functions: on_destroy, on_submit");
}

TEST_F(plugin_host_test, refuses_an_entry_that_returns_no_table) {
  const std::string path = build("null", R"(#include <relay/plugin.h>
RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return 0; }
)");
  auto lib = plugin_library::load(path);
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.err().message, path + ": relay_plugin_entry returned no table");
}

TEST(plugin_library_load, reports_a_file_that_is_not_a_shared_library) {
  test::temp_dir dir;
  const std::string path = dir / "garbage.so";
  test::write_file(path, "this is not an ELF file");
  auto lib = plugin_library::load(path);
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.err().message.rfind(path + ": cannot load plug-in: ", 0), 0u) << lib.err().message;
}

TEST(plugin_loader, resolves_a_name_to_dir_slash_name_so_and_loads_it_once) {
  plugin_loader loader(kPluginsDir);
  auto a = loader.get("file_sink");
  ASSERT_TRUE(a) << a.err().message;
  auto b = loader.get("file_sink");
  ASSERT_TRUE(b);
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ((*a)->path(), kPluginsDir + "/file_sink.so");
}

TEST(plugin_loader, a_missing_plugin_error_names_the_directory_and_what_it_has) {
  plugin_loader loader(kPluginsDir);
  auto lib = loader.get("sms_nope");
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.err().code, errc::not_found);
  const std::string& m = lib.err().message;
  EXPECT_NE(m.find("sms_nope"), std::string::npos) << m;
  EXPECT_NE(m.find(kPluginsDir + "/sms_nope.so"), std::string::npos) << m;
  EXPECT_NE(m.find("file_sink"), std::string::npos) << m;  // what is there instead
}

TEST(plugin_loader, a_missing_directory_is_named) {
  plugin_loader loader("/nonexistent/relay/plugins");
  auto lib = loader.get("file_sink");
  ASSERT_FALSE(lib);
  EXPECT_NE(lib.err().message.find("/nonexistent/relay/plugins"), std::string::npos)
      << lib.err().message;
}

TEST(plugin_loader, refuses_names_that_are_paths) {
  plugin_loader loader(kPluginsDir);
  for (const char* name : {"../file_sink", "a/b", "", ".."}) {
    auto lib = loader.get(name);
    ASSERT_FALSE(lib) << name;
    EXPECT_EQ(lib.err().code, errc::invalid_argument) << name;
  }
}

TEST(default_plugins_dir, is_the_plugins_folder_beside_the_binary_in_a_build_tree) {
  EXPECT_EQ(default_plugins_dir(RELAY_BINARY_DIR "/relayd"),
            std::filesystem::weakly_canonical(kPluginsDir).string());
}

TEST(default_plugins_dir, is_lib_relay_plugins_beside_bin_when_installed) {
  test::temp_dir dir;
  std::filesystem::create_directories(dir / "bin");
  EXPECT_EQ(default_plugins_dir(dir / "bin/relayd"),
            std::filesystem::weakly_canonical(dir.path()).string() + "/lib/relay/plugins");
}

}  // namespace
}  // namespace relay
