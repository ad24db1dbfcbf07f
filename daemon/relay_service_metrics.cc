// relayd's /metrics: what ops watch (DESIGN §10). Built on the core thread
// from the live state and the counters column family.

#include <map>
#include <tuple>

#include "daemon/relay_service.h"
#include "routing/counters.h"

namespace relay {
namespace {

metric_family family(std::string name, std::string help, std::string type) {
  return metric_family{std::move(name), std::move(help), std::move(type), {}};
}

}  // namespace

std::vector<metric_family> relay_service::metrics() const {
  std::vector<metric_family> out;
  const auto& in = intake_->stats();
  const auto& fan = fanout_->stats();

  auto jobs = family("relay_jobs_total", "Jobs read from the jobs topic, by what became of them.", "counter");
  jobs.samples = {{{{"result", "accepted"}}, double(in.accepted)},
                  {{{"result", "duplicate"}}, double(in.duplicates)},
                  {{{"result", "dead_lettered"}}, double(in.dead_lettered)}};
  out.push_back(std::move(jobs));
  auto active = family("relay_jobs_active", "Accepted jobs not yet finished.", "gauge");
  active.samples = {{{}, double(fanout_->active_jobs())}};
  out.push_back(std::move(active));

  // Totals since the data directory was created, from the counters CF,
  // summed over companies: one series per carrier and channel.
  std::map<std::pair<std::string, std::string>, std::map<counter_kind, uint64_t>> by_connector;
  if (auto rows = read_counters(*db_)) {
    for (const counter_row& r : *rows) {
      if (r.carrier.empty()) continue;
      by_connector[{r.carrier, r.channel}][r.kind] += r.value;
    }
  }
  const std::pair<counter_kind, const char*> kinds[] = {
      {counter_kind::sent, "sent"},         {counter_kind::failed, "failed"},
      {counter_kind::delivered, "delivered"}, {counter_kind::opened, "opened"},
      {counter_kind::clicked, "clicked"}};
  auto messages = family("relay_messages_total",
                         "Messages by carrier, channel and event (sent counts once per recipient; "
                         "delivered, opened and clicked once per message).",
                         "counter");
  for (const auto& [key, counts] : by_connector) {
    for (const auto& [kind, name] : kinds) {
      auto it = counts.find(kind);
      messages.samples.push_back({{{"carrier", key.first}, {"channel", key.second}, {"event", name}},
                                  double(it == counts.end() ? 0 : it->second)});
    }
  }
  out.push_back(std::move(messages));

  auto in_flight = family("relay_connector_in_flight", "Messages submitted to a connector without a final outcome.", "gauge");
  auto capacity = family("relay_connector_capacity", "A connector's in-flight window (limits.connector_queue).", "gauge");
  auto outbox = family("relay_outbox_depth", "Recipients waiting in a connector's outbox (slow or down carrier).", "gauge");
  auto submits = family("relay_connector_submits_total", "Plug-in submits by outcome (retries included).", "counter");
  for (size_t k = 0; k < connectors_.size(); ++k) {
    if (!connectors_[k]) continue;
    const connector& c = *connectors_[k];
    const std::vector<std::pair<std::string, std::string>> labels{{"carrier", c.carrier_id()},
                                                                   {"channel", std::string(to_string(c.chan()))}};
    in_flight.samples.push_back({labels, double(c.in_flight())});
    capacity.samples.push_back({labels, double(c.capacity())});
    outbox.samples.push_back({labels, double(fanout_->outboxes()[k].depth)});
    const connector_stats st = c.stats();
    for (const auto& [name, v] : {std::pair<const char*, uint64_t>{"accepted", st.accepted},
                                  {"retried", st.retried}, {"failed", st.failed}}) {
      auto l = labels;
      l.emplace_back("outcome", name);
      submits.samples.push_back({std::move(l), double(v)});
    }
  }
  out.push_back(std::move(in_flight));
  out.push_back(std::move(capacity));
  out.push_back(std::move(outbox));
  out.push_back(std::move(submits));

  auto recipients = family("relay_recipients_total", "Recipients of jobs by outcome.", "counter");
  recipients.samples = {{{{"outcome", "sent"}}, double(fan.recipients_sent)},
                        {{{"outcome", "failed"}}, double(fan.recipients_failed)},
                        {{{"outcome", "no_route"}}, double(fan.recipients_no_route)},
                        {{{"outcome", "queued"}}, double(fan.recipients_queued)}};
  out.push_back(std::move(recipients));

  const auto& d = delivery_->stats();
  auto carrier_events = family("relay_carrier_events_total",
                               "Delivery, read, open and click reports received, by how they counted.", "counter");
  carrier_events.samples = {{{{"result", "counted"}}, double(d.counted)},
                            {{{"result", "repeated"}}, double(d.repeated)},
                            {{{"result", "unmatched"}}, double(d.unmatched)},
                            {{{"result", "inbound"}}, double(d.inbound)}};
  out.push_back(std::move(carrier_events));

  auto events = family("relay_events_published_total", "Events queued for the events topic.", "counter");
  events.samples = {{{}, double(events_->published())}};
  out.push_back(std::move(events));
  auto dropped = family("relay_events_dropped_total", "Events that could not be queued for Kafka.", "counter");
  dropped.samples = {{{}, double(events_->dropped())}};
  out.push_back(std::move(dropped));
  return out;
}

}  // namespace relay
