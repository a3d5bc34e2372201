// The operator's control verbs: convoy orch suspend | resume | terminate (one instance or a
// filter) and convoy orch purge. Every change is one Redis Function call (lua/convoy.lua).
#include "cli.hpp"
#include "output.hpp"

#include "convoy/actors/clock.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include <unistd.h>

namespace convoy::cli {

namespace {

/// Who acts, for the audit trail: $USER@hostname.
std::string operator_name() {
  std::string user = std::getenv("USER") ? std::getenv("USER") : "operator";
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0')
    return user + "@" + host;
  return user;
}

/// The text after a CONVOY_* code, on one line and not too long.
std::string after_code(const std::string& error) {
  auto space = error.find(' ');
  auto text = space == std::string::npos ? error : error.substr(space + 1);
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (text.size() > 300)
    text = text.substr(0, 297) + "...";
  return text;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

/// The past tense the output uses.
std::string done_word(const std::string& verb) {
  return verb == "suspend" ? "suspended" : verb == "resume" ? "resumed" : "terminated";
}

persistence::message_box::control_outcome apply(persistence::message_box& box,
                                                const std::string& verb, const std::string& id,
                                                const std::string& reason,
                                                const std::string& by) {
  if (verb == "suspend")
    return box.suspend(id, reason, by);
  if (verb == "resume")
    return box.resume(id, reason, by);
  return box.terminate(id, reason, by);
}

/// Whether `verb` applies to an instance in status `s` at all (bulk selection).
bool eligible(const std::string& verb, instance_status s) {
  if (verb == "resume")
    return s == instance_status::suspended_resumable;
  if (verb == "suspend")
    return !is_final(s) && s != instance_status::suspended_resumable;
  return !is_final(s) || s == instance_status::suspended; // terminate
}

/// Shows how far a long operation got, on stderr: one line rewritten on a terminal, else a
/// line every 2 s (none for an operation that ends sooner).
class progress {
public:
  progress(std::string what, size_t total)
    : what_(std::move(what)), total_(total), tty_(::isatty(STDERR_FILENO) == 1) {}

  void update(size_t done) {
    if (total_ == 0)
      return;
    if (tty_) {
      std::cerr << "\r" << what_ << ": " << done << "/" << total_ << std::flush;
      if (done == total_)
        std::cerr << "\n";
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_ >= std::chrono::seconds(2) || (done == total_ && printed_)) {
      std::cerr << what_ << ": " << done << "/" << total_ << "\n";
      last_ = now;
      printed_ = true;
    }
  }

private:
  std::string what_;
  size_t total_;
  bool tty_;
  bool printed_ = false;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

/// Asks before changing `n` instances: --yes skips it; without a terminal it refuses.
/// Returns 0 to go on, else the exit code (after printing why).
int confirm(const std::string& question, bool yes) {
  if (yes)
    return 0;
  if (::isatty(STDIN_FILENO) != 1) {
    std::cerr << "convoy: " << question
              << " refused: no terminal to confirm on (pass --yes to confirm)\n";
    return 2;
  }
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer == "y" || answer == "Y" || answer == "yes")
    return 0;
  std::cerr << "convoy: not confirmed; nothing changed\n";
  return 1;
}

/// Every instance (newest first) that matches `filter` and `keep`, at most `limit` (0 = all).
template <class Keep>
std::optional<std::vector<instance_record>> scan(const target& t, persistence::message_box& box,
                                                 const instance_filter& filter, size_t limit,
                                                 Keep keep, int& code) {
  std::vector<instance_record> out;
  constexpr size_t page = 1000;
  for (size_t skip = 0;; skip += page) {
    auto listed = box.list_instances(skip, page, std::chrono::seconds(10));
    if (!listed.error.empty()) {
      code = box_error(t, listed.error);
      return std::nullopt;
    }
    for (auto& r : listed.instances) {
      if ((filter.status.empty() || to_string(r.status) == filter.status)
          && (filter.type.empty() || r.type == filter.type)
          && (filter.owner.empty() || r.owner == filter.owner) && keep(r))
        out.push_back(std::move(r));
      if (limit > 0 && out.size() >= limit)
        return out;
    }
    if (listed.instances.size() < page)
      return out;
  }
}

std::string filter_text(const instance_filter& f) {
  std::string out;
  auto add = [&out](const char* name, const std::string& v) {
    if (!v.empty())
      out += std::string(out.empty() ? "" : ", ") + name + "=" + v;
  };
  add("status", f.status);
  add("type", f.type);
  add("host", f.owner);
  return out.empty() ? "all" : out;
}

} // namespace

std::optional<int64_t> parse_age(const std::string& text) {
  if (text.empty())
    return std::nullopt;
  int64_t n = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), n);
  if (res.ec != std::errc{} || n < 0)
    return std::nullopt;
  std::string_view unit(res.ptr, static_cast<size_t>(text.data() + text.size() - res.ptr));
  if (unit == "ms")
    return n;
  if (unit == "s")
    return n * 1000;
  if (unit == "m")
    return n * 60'000;
  if (unit == "h")
    return n * 3'600'000;
  if (unit == "d")
    return n * 86'400'000;
  return std::nullopt;
}

int run_orch_control(const target& t, const std::string& verb, const std::string& id,
                     const std::string& reason, output_format fmt) {
  if (!persistence::valid_name(id)) {
    std::cerr << "convoy: '" << id << "' is not a valid instance id ([A-Za-z0-9._:-], 1-128)\n";
    return 2;
  }
  auto box = open_box(t);
  auto out = apply(*box, verb, id, reason, operator_name());
  const auto& err = out.error;
  if (starts_with(err, "CONVOY_NO_INSTANCE")) {
    std::cerr << "convoy: no instance '" << id << "' in the MessageBox at "
              << t.endpoint.address() << "\n";
    return 4;
  }
  if (starts_with(err, "CONVOY_FINAL")) {
    std::cerr << "convoy: cannot " << verb << " instance '" << id << "': " << after_code(err)
              << "\n";
    return 5;
  }
  if (starts_with(err, "CONVOY_NOT_RESUMABLE")) {
    std::cerr << "convoy: cannot resume instance '" << id << "': " << after_code(err) << "\n";
    return 5;
  }
  if (starts_with(err, "CONVOY_NOT_SUSPENDED")) {
    std::cerr << "convoy: cannot resume instance '" << id << "': " << after_code(err) << "\n";
    return 1;
  }
  if (!err.empty())
    return box_error(t, err);
  bool already = verb == "suspend" && out.detail == "ALREADY";
  if (fmt != output_format::text) {
    json j{{"id", id}, {"action", done_word(verb)}, {"reason", reason}, {"already", already}};
    if (verb == "resume")
      j["parked_delivered"] = std::atoll(out.detail.c_str());
    print_json(j, fmt);
    return 0;
  }
  if (already)
    std::cout << id << " was suspended already\n";
  else if (verb == "resume")
    std::cout << "resumed " << id << " (" << out.detail << " parked messages delivered)\n";
  else
    std::cout << done_word(verb) << " " << id << ": " << reason << "\n";
  return 0;
}

int run_orch_bulk(const target& t, const std::string& verb, const instance_filter& filter,
                  size_t limit, const std::string& reason, bool yes, output_format fmt) {
  auto box = open_box(t);
  int code = 0;
  auto matched = scan(t, *box, filter, limit,
                      [&verb](const instance_record& r) { return eligible(verb, r.status); },
                      code);
  if (!matched)
    return code;
  auto n = matched->size();
  if (n > 0) {
    auto question = verb + " " + std::to_string(n) + " instance" + (n == 1 ? "" : "s")
                    + " (" + filter_text(filter) + ")?";
    if (auto refused = confirm(question, yes))
      return refused;
  }
  auto by = operator_name();
  progress shown(done_word(verb).substr(0, done_word(verb).size() - 2) + "ing", n);
  size_t changed = 0, skipped = 0, done = 0;
  json failures = json::array();
  for (const auto& r : *matched) {
    auto out = apply(*box, verb, r.id, reason, by);
    if (out.error.empty() && out.detail != "ALREADY")
      ++changed;
    else if (out.error.empty() || starts_with(out.error, "CONVOY_"))
      ++skipped; // changed meanwhile (finished, resumed, purged): nothing to do
    else
      failures.push_back({{"id", r.id}, {"error", out.error}});
    shown.update(++done);
  }
  if (fmt != output_format::text) {
    print_json(json{{"action", done_word(verb)},
                    {"matched", n},
                    {"changed", changed},
                    {"skipped", skipped},
                    {"failed", failures}},
               fmt);
  } else {
    std::cout << done_word(verb) << " " << changed << " of " << n << " matching instance"
              << (n == 1 ? "" : "s");
    if (skipped > 0)
      std::cout << " (" << skipped << " changed meanwhile)";
    std::cout << "\n";
    for (const auto& f : failures)
      std::cout << "  failed: " << f["id"].get<std::string>() << ": "
                << f["error"].get<std::string>() << "\n";
  }
  return failures.empty() ? 0 : 3;
}

int run_orch_purge(const target& t, const std::string& status, const std::string& older_than,
                   bool yes, output_format fmt) {
  int64_t age_ms = 0;
  if (!older_than.empty()) {
    auto parsed = parse_age(older_than);
    if (!parsed) {
      std::cerr << "convoy: --older-than '" << older_than
                << "' is not a duration such as 90s, 30m, 1h or 7d\n";
      return 2;
    }
    age_ms = *parsed;
  }
  std::vector<std::string> statuses{"completed", "failed", "cancelled", "terminated"};
  if (!status.empty())
    statuses = {status};
  auto cutoff = wall_clock_ms() - age_ms;
  auto box = open_box(t);
  int code = 0;
  auto matched = scan(t, *box, instance_filter{}, 0,
                      [&](const instance_record& r) {
                        return std::find(statuses.begin(), statuses.end(), to_string(r.status))
                                 != statuses.end()
                               && r.updated_ms < cutoff;
                      },
                      code);
  if (!matched)
    return code;
  auto n = matched->size();
  if (n > 0) {
    auto question = "purge " + std::to_string(n) + " finished instance" + (n == 1 ? "" : "s")
                    + (older_than.empty() ? "" : " older than " + older_than) + "?";
    if (auto refused = confirm(question, yes))
      return refused;
  }
  progress shown("purging", n);
  size_t purged = 0, done = 0;
  for (const auto& r : *matched) {
    auto out = box->purge(r.id, statuses, cutoff);
    if (!out.error.empty())
      return box_error(t, out.error);
    if (out.detail == "1")
      ++purged;
    shown.update(++done);
  }
  if (fmt != output_format::text)
    print_json(json{{"purged", purged}, {"matched", n}}, fmt);
  else
    std::cout << "purged " << purged << " finished instance" << (purged == 1 ? "" : "s") << "\n";
  return 0;
}

} // namespace convoy::cli
