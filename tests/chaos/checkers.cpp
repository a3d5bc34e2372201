// The checkers C1-C7 of HA-TEST-PLAN.md over one run's history. Each is one pass (or a few)
// over the operations, the sink's arrivals and the final journals: O(n).

#include "history.hpp"
#include "replay_check.hpp"

#include "convoy/actors/journal.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <unordered_map>

namespace convoy::chaos {

namespace {

/// Occurrences of `needle` in `file` from byte `from` on.
int64_t count_in_file(const std::string& file, const std::string& needle, size_t from = 0) {
  std::ifstream in(file);
  in.seekg(static_cast<std::streamoff>(from));
  int64_t n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos)
      ++n;
  return n;
}

/// Up to `limit` examples, for the report.
void add_example(json& list, const std::string& what, size_t limit = 10) {
  if (list.size() < limit)
    list.push_back(what);
}

/// C4's journal evidence: in a chaos instance's journal every operation (a sink call, a
/// sleep) has one `scheduled` entry and one outcome. An entry written twice means two writers
/// were both accepted (a stale owner's write got through): a fork. A completed instance
/// whose journal lacks an outcome, or holds fewer calls than its steps, lost points.
struct journal_shape {
  int64_t duplicated = 0;  ///< (step, event) pairs present more than once
  int64_t missing = 0;     ///< operations of a completed instance without their entries
  int64_t undecodable = 0;
};

journal_shape shape_of(const instance_track& t) {
  journal_shape s;
  std::set<std::pair<uint32_t, uint8_t>> seen;
  std::set<uint32_t> scheduled, closed;
  int64_t calls = 0;
  for (const auto& bytes : t.journal) {
    auto decoded = decode_journal_entry(bytes);
    if (!std::holds_alternative<journal_entry>(decoded)) {
      ++s.undecodable;
      continue;
    }
    const auto& e = std::get<journal_entry>(decoded);
    if (!seen.emplace(e.step, static_cast<uint8_t>(e.event)).second) {
      ++s.duplicated;
      continue;
    }
    if (e.event == entry_event::scheduled) {
      scheduled.insert(e.step);
      calls += e.op == op_kind::call ? 1 : 0;
    } else {
      closed.insert(e.step);
    }
  }
  if (t.final_status == "completed") {
    for (auto step : scheduled)
      s.missing += closed.count(step) ? 0 : 1;
    s.missing += std::max<int64_t>(0, t.expected_steps - calls);
  }
  return s;
}

/// Owners per (instance, epoch) from the nodes' logs: every claim is logged as "instance ID
/// (TYPE vN) started|rehydrated on node NODE with epoch E". A claim bumps the epoch atomically,
/// so two nodes logging one epoch for one instance means one of them was granted it by a
/// store that lost it afterwards (or a stale master): two owners that both pass the fence.
struct epoch_owners {
  int64_t claims = 0;
  int64_t conflicts = 0;
  std::vector<std::string> examples;
};

epoch_owners owners_from_logs(const std::vector<std::string>& logs) {
  epoch_owners out;
  std::unordered_map<std::string, std::string> owner; // "instance#epoch" -> node
  for (const auto& file : logs) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      auto i = line.find(" instance ");
      auto n = line.find(" on node ");
      auto e = line.find(" with epoch ");
      if (i == std::string::npos || n == std::string::npos || e == std::string::npos || n > e
          || (line.find(") started", i) == std::string::npos
              && line.find(") rehydrated", i) == std::string::npos))
        continue;
      auto id_end = line.find(' ', i + 10);
      auto id = line.substr(i + 10, id_end - i - 10);
      auto node = line.substr(n + 9, e - n - 9);
      auto epoch_end = line.find(',', e);
      auto epoch = line.substr(e + 12, epoch_end == std::string::npos ? std::string::npos
                                                                     : epoch_end - e - 12);
      ++out.claims;
      auto [it, fresh] = owner.emplace(id + "#" + epoch, node);
      if (!fresh && it->second != node) {
        ++out.conflicts;
        if (out.examples.size() < 5)
          out.examples.push_back(id + ": epoch " + epoch + " claimed by " + it->second + " and "
                                 + node + " (" + line.substr(0, 12) + ")");
      }
    }
  }
  return out;
}

} // namespace

json percentiles(std::vector<double> xs) {
  if (xs.empty())
    return json{{"n", 0}, {"p50", nullptr}, {"p99", nullptr}, {"max", nullptr}};
  std::sort(xs.begin(), xs.end());
  auto at = [&](double q) {
    auto i = static_cast<size_t>(q * static_cast<double>(xs.size() - 1) + 0.5);
    return xs[std::min(i, xs.size() - 1)];
  };
  return json{{"n", xs.size()}, {"p50", at(0.50)}, {"p99", at(0.99)}, {"max", xs.back()}};
}

json run_checkers(const run_history& h, const check_limits& limits) {
  json out;

  // Arrivals by instance (in arrival order) and the distinct keys per (instance, step).
  std::unordered_map<std::string, std::vector<const arrival*>> by_instance;
  std::map<std::pair<std::string, int>, std::set<std::string>> keys;
  int64_t raw = 0, foreign = 0;
  for (const auto& a : h.arrivals) {
    by_instance[a.instance].push_back(&a);
    keys[{a.instance, a.step}].insert(a.key);
    ++raw;
    if (!h.instances.count(a.instance))
      ++foreign;
  }

  // -- C1: acknowledged messages and persistence points in the final state --------------------
  {
    int64_t acknowledged = 0, missing = 0, points_missing = 0;
    json examples = json::array();
    for (const auto& [id, t] : h.instances) {
      if (!t.acknowledged)
        continue;
      ++acknowledged;
      if (!t.found) {
        ++missing;
        add_example(examples, id + ": acknowledged (202) but not in the MessageBox");
      }
    }
    for (const auto& [id, t] : h.instances)
      if (t.found)
        if (auto s = shape_of(t); s.missing > 0) {
          points_missing += s.missing;
          add_example(examples, id + ": completed with " + std::to_string(s.missing)
                                  + " steps missing from its journal");
        }
    const auto lost = missing + points_missing + h.rollbacks;
    out["C1"] = json{{"invariant", "every acknowledged message / persistence point is in the "
                                   "final state"},
                     {"acknowledged_messages", acknowledged},
                     {"acknowledged_messages_missing", missing},
                     {"journal_points_missing", points_missing},
                     {"rollbacks_detected_by_nodes", h.rollbacks},
                     {"lost", lost},
                     {"examples", examples},
                     {"pass", lost == 0}};
  }

  // -- C2: step sequences never go backwards --------------------------------------------------
  {
    int64_t regressions = 0, across = 0;
    json examples = json::array();
    for (const auto& [id, t] : h.instances) {
      regressions += t.regressions;
      across += t.regressions_across_failover;
      if (t.regressions > 0)
        add_example(examples, id + ": " + std::to_string(t.regressions) + " regressions, first "
                                + t.first_regression);
    }
    out["C2"] = json{{"invariant", "an instance's sampled seq/steps never goes backwards on one "
                                   "master"},
                     {"regressions", regressions},
                     {"regressions_across_failover", across},
                     {"note", "across_failover: a sample read on a master that then died showed "
                              "progress the promoted replica did not hold; such a point was "
                              "never acknowledged (replicated durability waits for a replica), "
                              "the node wrote it again"},
                     {"examples", examples},
                     {"pass", regressions == 0}};
  }

  // -- C3: side effects per (instance, step) ---------------------------------------------------
  {
    int64_t expected = 0, lost = 0, dup_after_dedupe = 0, wrong_results = 0;
    json examples = json::array();
    for (const auto& [id, t] : h.instances) {
      if (!t.found || t.final_status != "completed")
        continue;
      for (int s = 0; s < t.expected_steps; ++s) {
        ++expected;
        auto k = keys.find({id, s});
        if (k == keys.end()) {
          ++lost;
          add_example(examples, id + " step " + std::to_string(s) + ": never reached the sink");
        } else if (k->second.size() > 1) {
          dup_after_dedupe += static_cast<int64_t>(k->second.size()) - 1;
          add_example(examples, id + " step " + std::to_string(s) + ": "
                                  + std::to_string(k->second.size())
                                  + " distinct idempotency keys");
        }
      }
      for (const auto* a : by_instance[id])
        if (a->step < 0 || a->step >= t.expected_steps) {
          ++dup_after_dedupe;
          add_example(examples, id + ": an arrival for step " + std::to_string(a->step)
                                  + " beyond its " + std::to_string(t.expected_steps));
        }
      auto result = json::parse(t.final_result, nullptr, false);
      if (!result.is_object() || result.value("steps", -1) != t.expected_steps) {
        ++wrong_results;
        add_example(examples, id + ": result " + t.final_result + ", expected "
                                + std::to_string(t.expected_steps) + " steps");
      }
    }
    int64_t distinct = 0;
    for (const auto& [k, v] : keys)
      distinct += static_cast<int64_t>(v.size());
    out["C3"] = json{{"invariant", "after dedupe by idempotency key exactly one effect per "
                                   "(instance, step)"},
                     {"expected_effects", expected},
                     {"raw_arrivals", raw},
                     {"raw_duplicates", raw - distinct},
                     {"effects_missing", lost},
                     {"duplicate_effects_after_dedupe", dup_after_dedupe},
                     {"wrong_results", wrong_results},
                     {"arrivals_of_unknown_instances", foreign},
                     {"examples", examples},
                     {"pass", lost == 0 && dup_after_dedupe == 0 && wrong_results == 0}};
  }

  // -- C4: fencing ---------------------------------------------------------------------------------
  {
    int64_t rejected = 0, stale_epoch_errors = 0;
    for (const auto& log : h.node_logs) {
      rejected += count_in_file(log, "fenced, a newer owner holds it");
      stale_epoch_errors += count_in_file(log, "CONVOY_STALE_EPOCH");
    }
    int64_t forks = 0, conflicts = 0, undecodable = 0, conflicts_across_failover = 0;
    json examples = json::array();
    for (const auto& [id, t] : h.instances) {
      conflicts += t.epoch_owner_conflicts;
      conflicts_across_failover += t.epoch_owner_conflicts_across_failover;
      if (t.epoch_owner_conflicts > 0)
        add_example(examples, id + ": one epoch held by two owners");
      if (!t.found)
        continue;
      auto s = shape_of(t);
      forks += s.duplicated;
      undecodable += s.undecodable;
      if (s.duplicated > 0)
        add_example(examples, id + ": " + std::to_string(s.duplicated)
                                + " journal entries written twice (two writers accepted)");
    }
    json zombies = json::array();
    for (const auto& f : h.faults)
      if (f.type == "F2" && f.injected && f.target >= 0
          && static_cast<size_t>(f.target) < h.node_logs.size())
        zombies.push_back(json{
          {"node", f.target + 1},
          {"stale_writes_rejected_after_wake",
           count_in_file(h.node_logs[static_cast<size_t>(f.target)], "fenced, a newer owner holds it",
                         f.log_offset)}});
    const auto logged = owners_from_logs(h.node_logs);
    conflicts += logged.conflicts;
    for (const auto& x : logged.examples)
      add_example(examples, x);
    for (const auto& id : h.probe_accepted)
      add_example(examples, id + ": the probe's stale-epoch persistence point was accepted");
    const auto accepted = forks + undecodable + static_cast<int64_t>(h.probe_accepted.size());
    out["C4"] = json{{"invariant", "no write accepted from a stale epoch; no two owners with one "
                                   "epoch"},
                     {"note", "stale_writes_rejected counts the nodes' 'fenced' log lines: with "
                              "competing consumers an instance's next message often goes to "
                              "another node, whose claim fences the previous owner, so most are "
                              "routine; accepted = journal entries written twice + probe writes "
                              "accepted"},
                     {"stale_writes_rejected", rejected},
                     {"stale_epoch_errors_logged", stale_epoch_errors},
                     {"stale_writes_accepted", accepted},
                     {"journal_entries_written_twice", forks},
                     {"journal_entries_undecodable", undecodable},
                     {"two_owners_one_epoch", conflicts},
                     {"two_owners_one_epoch_across_failover_unacknowledged",
                      conflicts_across_failover},
                     {"claims_logged", logged.claims},
                     {"two_owners_one_epoch_in_logs", logged.conflicts},
                     {"fencing_probe",
                      json{{"what", "after quiescence, a persistence point with the owner epoch "
                                    "one below the record's, written for completed instances "
                                    "through the MessageBox's own function"},
                           {"attempted", h.probe_attempted},
                           {"rejected_stale_epoch", h.probe_rejected},
                           {"accepted", h.probe_accepted.size()}}},
                     {"zombies", zombies},
                     {"examples", examples},
                     {"pass", accepted == 0 && conflicts == 0}};
  }

  // -- C5: liveness and recovery -------------------------------------------------------------------
  {
    int64_t stuck = 0;
    json examples = json::array();
    for (const auto& [id, t] : h.instances)
      if (t.acknowledged && (!t.found || t.final_status != "completed")) {
        ++stuck;
        add_example(examples, id + ": " + (t.found ? t.final_status : std::string("missing"))
                                + " after the settle deadline");
      }
    std::vector<int64_t> ack_times;
    for (const auto& op : h.operations)
      if (op.result == outcome::ok)
        ack_times.push_back(op.complete_ms);
    std::sort(ack_times.begin(), ack_times.end());
    std::vector<double> fault_recovery, instance_recovery;
    std::map<std::string, std::vector<double>> by_type;
    json faults = json::array();
    for (const auto& f : h.faults) {
      if (!f.injected)
        continue;
      std::vector<double> per_instance;
      for (const auto& id : f.affected) {
        auto i = by_instance.find(id);
        if (i == by_instance.end())
          continue;
        for (const auto* a : i->second)
          if (a->t_ms > f.at_ms) {
            per_instance.push_back(static_cast<double>(a->t_ms - f.at_ms));
            break;
          }
      }
      int64_t first_ack = -1;
      for (const auto& op : h.operations)
        if (op.result == outcome::ok && op.invoke_ms >= f.at_ms
            && (first_ack < 0 || op.complete_ms < first_ack))
          first_ack = op.complete_ms;
      // The write-unavailable window: the longest time without an acknowledgement that
      // overlaps the fault (from injection to 5 s after it healed).
      const int64_t window_end = (f.healed_ms >= 0 ? f.healed_ms : f.at_ms) + 5000;
      int64_t gap = 0, prev = f.at_ms;
      for (auto t : ack_times) {
        if (t < f.at_ms)
          continue;
        gap = std::max(gap, t - prev);
        prev = t;
        if (t > window_end)
          break;
      }
      json one{{"type", f.type},
               {"at_s", static_cast<double>(f.at_ms) / 1000.0},
               {"held_s", f.healed_ms >= 0 ? static_cast<double>(f.healed_ms - f.at_ms) / 1000.0
                                          : -1.0},
               {"affected_instances", f.affected.size()},
               {"first_acknowledged_after_ms", first_ack >= 0 ? first_ack - f.at_ms : -1},
               {"longest_time_without_acknowledgement_ms", gap},
               {"recovery_ms", percentiles(per_instance)}};
      if (f.target >= 0)
        one["node"] = f.target + 1;
      if (f.redis_port != 0) {
        one["redis_port"] = f.redis_port;
        one["failover_ms"] = f.failover_ms;
        one["promoted"] = f.new_master;
      }
      if (!f.cut.empty())
        one["cut"] = f.cut;
      for (const auto& [name, value] : f.figures)
        one[name] = value;
      if (!f.note.empty())
        one["note"] = f.note;
      if (!per_instance.empty()) {
        auto worst = *std::max_element(per_instance.begin(), per_instance.end());
        fault_recovery.push_back(worst);
        by_type[f.type].push_back(worst);
        instance_recovery.insert(instance_recovery.end(), per_instance.begin(),
                                 per_instance.end());
      }
      faults.push_back(std::move(one));
    }
    json types = json::object();
    for (auto& [type, xs] : by_type)
      types[type] = percentiles(xs);
    const bool in_time =
      h.settled_ms >= 0 && h.settled_ms - h.last_heal_ms <= limits.settle_ms;
    out["C5"] = json{{"invariant", "every instance completes within T after the last fault "
                                   "heals"},
                     {"T_ms", limits.settle_ms},
                     {"stuck", stuck},
                     {"completed_after_last_heal_ms",
                      h.settled_ms >= 0 ? h.settled_ms - h.last_heal_ms : -1},
                     {"recovery_ms_per_fault", percentiles(fault_recovery)},
                     {"recovery_ms_per_instance", percentiles(instance_recovery)},
                     {"recovery_ms_by_type", types},
                     {"recovery_note", "per instance in flight at the fault (F1, F2: those the "
                                       "node owned): injection to its next sink arrival; per "
                                       "fault: the worst of those"},
                     {"faults", faults},
                     {"examples", examples},
                     {"pass", stuck == 0 && in_time}};
  }

  // -- C6: determinism -------------------------------------------------------------------------------
  {
    int64_t replayed = 0, mismatches = 0;
    json examples = json::array();
    for (const auto& [id, t] : h.instances) {
      if (!t.found || t.final_status != "completed")
        continue;
      ++replayed;
      auto problems = replay_problems(id, t.final_input, t.final_result, t.journal);
      if (!problems.empty()) {
        ++mismatches;
        add_example(examples, id + ": " + problems.front());
      }
    }
    out["C6"] = json{{"invariant", "replaying each finished journal gives the same commands"},
                     {"replayed", replayed},
                     {"mismatches", mismatches},
                     {"examples", examples},
                     {"pass", mismatches == 0}};
  }

  // -- C7: bounded resources --------------------------------------------------------------------------
  {
    int64_t violations = 0;
    if (h.max_rss_mb > limits.rss_cap_mb)
      ++violations;
    if (h.max_queue > limits.queue_cap)
      ++violations;
    out["C7"] = json{{"invariant", "RSS and queue lengths under their caps"},
                     {"rss_cap_mb", limits.rss_cap_mb},
                     {"max_rss_mb", h.max_rss_mb},
                     {"max_rss_mb_by_node", h.max_rss_by_node},
                     {"queue_cap", limits.queue_cap},
                     {"max_queue", h.max_queue},
                     {"max_queue_by_host", h.max_queue_by_host},
                     {"throttled_samples", h.throttled_samples},
                     {"violations", violations},
                     {"pass", violations == 0}};
  }
  return out;
}

} // namespace convoy::chaos
