#pragma once
// relayctl's engagement commands (DESIGN §6): `stats --by`, `user`, `explain`.
// They read relayd's database as a RocksDB secondary, so they work while
// relayd runs and never write to it. Each returns the process exit status:
// 0 done, 1 a failure or an unknown job/user (one line on stderr), 2 bad
// arguments (one line on stderr naming what is wrong and what is valid).
//
// Used by relayctl_main.cc only; in relay_daemon's library because the
// daemon's CMake globs daemon/*.cc (relayd links none of it).
//
// `now` is passed in (relayctl's wall clock) so output is a function of the
// database and the arguments.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.h"
#include "daemon/engagement_settings.h"
#include "routing/clock.h"
#include "routing/engagement.h"
#include "routing/result.h"
#include "routing/store.h"

namespace relay::ctl {

// relayd's database as a fresh secondary (caught up at open).
result<std::unique_ptr<store>> open_secondary(const config& cfg);

// Prints "relayctl: <message>" on stderr; returns 1.
int fail(std::string_view message);
// Likewise for a bad argument; returns 2.
int bad_argument(std::string_view message);

// `--since` / `--until`: a duration back from `now` ("7d", "12h"), an RFC 3339
// date-time ("2026-11-23T09:00:00+09:00", "...Z"; seconds optional; no
// offset means UTC) or a date ("2026-11-23", its 00:00 UTC).
result<sys_time> parse_time_argument(std::string_view text, sys_time now);

// "2026-11-23T01:00:00.000Z (5m ago)" / "(in 59m 58s)".
std::string describe_time(sys_time t, sys_time now);
// "41.7% (5/12)"; "-" when nothing was sent.
std::string open_rate_text(uint64_t opened, uint64_t sent);

// Prints an aligned table on stdout: the first `text_columns` columns left-
// aligned, the rest (numbers) right-aligned, two spaces between columns.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, size_t text_columns);

struct stats_options {
  std::string by;       // comma-separated engagement dimensions; empty = one total row
  std::string company;  // filters; empty = all
  std::string carrier;
  std::string channel;
  std::string since, until;  // as parse_time_argument; empty = unbounded
  bool json = false;
};

// `relayctl stats --by DIMS ...`: the engagement cube grouped by DIMS.
int stats_by(const config& cfg, const stats_options& o, sys_time now);

// `relayctl user USER_ID`: one user's engagement record.
int user(const config& cfg, std::string_view user_id, bool json, sys_time now);

// `relayctl explain JOB_ID USER_ID`: the job's messages to the user, its
// pending timers, and why the channel was chosen.
int explain(const config& cfg, std::string_view job_id, std::string_view user_id, bool json,
            sys_time now);

}  // namespace relay::ctl
