// sms_smpp: relay's SMPP 3.4 carrier plug-in (an ESME bound as transceiver).
// This file is only the C ABI: config parsing and the entry points. The
// protocol lives in smpp_pdu / sms_text / delivery_receipt (sms_smpp_core)
// and the connection in smpp_connector. See README.md.

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "plugins/common/abi_support.h"
#include "plugins/sms_smpp/smpp_config.h"
#include "plugins/sms_smpp/smpp_connector.h"
#include "relay/plugin.h"

namespace {

using relay::plugin_abi::write_error;


std::string str(relay_str s) {
  return s.data != nullptr ? std::string(s.data, s.size) : std::string();
}

void* on_create(const relay_host* host, const relay_kv* config, size_t config_count, char* error,
                size_t error_size) {
  try {
    if (host == nullptr || host->struct_size < sizeof(relay_host) ||
        host->callback_submit_done == nullptr || host->callback_log == nullptr ||
        host->callback_emit_event == nullptr) {
      write_error(error, error_size, "sms_smpp: the host's relay_host table is incomplete");
      return nullptr;
    }
    std::vector<std::pair<std::string, std::string>> kv;
    for (size_t i = 0; i < config_count; ++i)
      kv.emplace_back(str(config[i].key), str(config[i].value));
    sms_smpp::smpp_config cfg;
    if (std::string why = sms_smpp::parse_config(kv, cfg); !why.empty()) {
      write_error(error, error_size, why);
      return nullptr;
    }
    auto c = std::make_unique<sms_smpp::connector>(host, std::move(cfg));
    c->start();
    return c.release();
  } catch (const std::exception& e) {
    write_error(error, error_size, std::string("sms_smpp: ") + e.what());
  } catch (...) {
    write_error(error, error_size, "sms_smpp: unexpected error");
  }
  return nullptr;
}

void on_destroy(void* instance) {
  try {
    delete static_cast<sms_smpp::connector*>(instance);
  } catch (...) {
  }
}

void on_submit(void* instance, uint64_t submit_id, const relay_message* message) {
  auto* c = static_cast<sms_smpp::connector*>(instance);
  try {
    c->submit(submit_id, *message);
  } catch (...) {
    try {
      c->done(submit_id, RELAY_SUBMIT_RETRY, {}, "sms_smpp could not queue the message");
    } catch (...) {
    }
  }
}

const relay_plugin kTable = {
    RELAY_PLUGIN_ABI_VERSION,
    sizeof(relay_plugin),
    "sms_smpp",
    "1.0.0",
    &on_create,
    &on_destroy,
    &on_submit,
    nullptr,  // no webhooks: receipts and replies arrive over the SMPP bind
};

}  // namespace

extern "C" RELAY_PLUGIN_EXPORT const relay_plugin* relay_plugin_entry(void) { return &kTable; }
