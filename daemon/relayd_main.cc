// relayd: the relay daemon.
//   relayd --config FILE          run
//   relayd --check-config FILE    validate FILE and exit (0 valid, 1 invalid)

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "daemon/config.h"
#include "daemon/relay_service.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: relayd --config FILE\n"
               "       relayd --check-config FILE\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c" || arg == "--check-config") && i + 1 < argc) {
      check_only = check_only || arg == "--check-config";
      config_path = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "relayd: unknown argument '%s'\n", arg.c_str());
      return usage();
    }
  }
  if (config_path.empty()) return usage();

  auto cfg = relay::load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "relayd: %s\n", cfg.err().message.c_str());
    return 1;
  }
  if (check_only) {
    std::printf("%s: ok (%zu carriers)\n", config_path.c_str(), cfg->carriers.size());
    return 0;
  }

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));

  std::error_code ec;
  std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) exe = argv[0];
  relay::relay_service service(std::move(*cfg), exe);
  if (auto r = service.start(); !r) {
    spdlog::critical("start-up failed: {}", r.err().message);
    std::fprintf(stderr, "relayd: %s\n", r.err().message.c_str());
    return 1;
  }
  return service.run();
}
