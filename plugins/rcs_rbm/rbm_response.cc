#include "plugins/rcs_rbm/rbm_response.h"

#include "plugins/rcs_rbm/json.h"

namespace relay::rcs_rbm {

namespace {

std::string_view status_for(int http_status) {
  switch (http_status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 408:
      return "DEADLINE_EXCEEDED";
    case 409:
      return "ALREADY_EXISTS";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 500:
      return "INTERNAL";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return "HTTP_ERROR";
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool valid_status_word(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || c == '_' || is_digit(c))) return false;
  }
  return true;
}

}  // namespace

std::string mask_numbers(std::string_view text, size_t limit) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    if (text[j] == '+') ++j;
    const size_t digits_from = j;
    while (j < text.size() && is_digit(text[j])) ++j;
    if (j - digits_from >= 7) {
      out += "<number>";
      i = j;
    } else if (j > i) {
      out.append(text.substr(i, j - i));
      i = j;
    } else {
      const unsigned char c = static_cast<unsigned char>(text[i]);
      out += c < 0x20 ? ' ' : static_cast<char>(c);  // keep the detail on one line
      ++i;
    }
  }
  if (out.size() > limit) {
    size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

api_error parse_api_error(int http_status, std::string_view body, std::string_view msisdn) {
  api_error e;
  e.code = http_status;
  json doc;
  std::string ignored;
  if (parse_json(body, doc, ignored) && doc.is_object()) {
    if (const json* err = doc.find("error"); err != nullptr && err->is_object()) {
      std::string status = err->get_string("status");
      if (valid_status_word(status)) e.status = std::move(status);
      std::string message = err->get_string("message");
      if (!msisdn.empty()) {
        for (size_t at; (at = message.find(msisdn)) != std::string::npos;)
          message.replace(at, msisdn.size(), "<number>");
      }
      e.message = mask_numbers(message);
    }
  }
  if (e.status.empty()) e.status = std::string(status_for(http_status));
  return e;
}

std::string error_detail(const api_error& e) {
  std::string d = "RBM " + std::to_string(e.code) + " " + e.status;
  if (!e.message.empty()) d += ": " + e.message;
  return d;
}

bool is_transient_status(int http_status) {
  return http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599);
}

std::string message_name(std::string_view msisdn, std::string_view message_id) {
  return "phones/" + std::string(msisdn) + "/agentMessages/" + std::string(message_id);
}

send_outcome classify_send(int http_status, std::string_view body, std::string_view msisdn,
                           std::string_view message_id) {
  send_outcome o;
  if (http_status >= 200 && http_status <= 299) {
    o.status = RELAY_SUBMIT_ACCEPTED;
    // The name is phones/{msisdn}/agentMessages/{messageId}: when the answer
    // carries exactly that, skip parsing the whole echoed message (hot path).
    std::string expected = message_name(msisdn, message_id);
    if (body.find("\"name\":\"" + expected + "\"") != std::string_view::npos) {
      o.carrier_ref = std::move(expected);
      return o;
    }
    json doc;
    std::string ignored;
    if (parse_json(body, doc, ignored) && doc.is_object()) o.carrier_ref = doc.get_string("name");
    if (o.carrier_ref.empty()) o.carrier_ref = std::move(expected);
    return o;
  }
  const api_error e = parse_api_error(http_status, body, msisdn);
  if (http_status == 409 && e.status == "ALREADY_EXISTS") {
    // A resend of a messageId the API already has: the first send went out.
    o.status = RELAY_SUBMIT_ACCEPTED;
    o.carrier_ref = message_name(msisdn, message_id);
    o.detail = "duplicate";
    return o;
  }
  // 401: an expired bearer token (service-account tokens live an hour) is
  // fixed by the next token, not by dropping the message.
  o.status = is_transient_status(http_status) || http_status == 401 ? RELAY_SUBMIT_RETRY
                                                                    : RELAY_SUBMIT_FAILED;
  o.detail = error_detail(e);
  return o;
}

}  // namespace relay::rcs_rbm
