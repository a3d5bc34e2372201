#include "convoy/persistence/message_box.hpp"

#include "convoy/persistence/internal/function_library.hpp"
#include "convoy/actors/clock.hpp"

#include <algorithm>
#include <charconv>

namespace convoy::persistence {

namespace {

template <class T>
T to_number(const std::string& text, T fallback = 0) {
  T value = fallback;
  auto res = std::from_chars(text.data(), text.data() + text.size(), value);
  return res.ec == std::errc{} ? value : fallback;
}

store_status classify(const redis_value& v) {
  if (!v.is_error())
    return store_status::ok;
  if (v.outcome_unknown())
    return store_status::unavailable;
  if (v.str.rfind("CONVOY_STALE_EPOCH", 0) == 0)
    return store_status::stale_epoch;
  return store_status::rejected;
}

/// Turns an XREADGROUP / XAUTOCLAIM entry list into queue entries. Entries whose body was
/// deleted (nil) are returned with no fields so the caller can acknowledge them.
std::vector<queue_entry> parse_entries(const redis_value& list) {
  std::vector<queue_entry> out;
  if (!list.is_array())
    return out;
  for (const auto& e : list.elements) {
    if (!e.is_array() || e.elements.size() != 2)
      continue;
    queue_entry entry;
    entry.id = e.elements[0].str;
    const auto& kv = e.elements[1];
    for (size_t i = 0; kv.is_array() && i + 1 < kv.elements.size(); i += 2)
      entry.fields[kv.elements[i].str] = kv.elements[i + 1].str;
    out.push_back(std::move(entry));
  }
  return out;
}

/// Decodes a journal read back as a list reply into `out`; returns "" or what is corrupt.
std::string decode_journal(const redis_value& list, const std::string& instance_id,
                           std::vector<journal_entry>& out) {
  out.reserve(list.elements.size());
  for (size_t i = 0; i < list.elements.size(); ++i) {
    auto decoded = decode_journal_entry(list.elements[i].str);
    if (auto err = std::get_if<decode_error>(&decoded))
      return "journal entry " + std::to_string(i) + " of " + instance_id + " is corrupt: "
             + err->message;
    out.push_back(std::get<journal_entry>(std::move(decoded)));
  }
  return {};
}

} // namespace

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == ':' || c == '-';
  });
}

const std::string& queue_entry::field(const std::string& name) const {
  static const std::string empty;
  auto i = fields.find(name);
  return i == fields.end() ? empty : i->second;
}

instance_record parse_instance_record(const std::string& id, const redis_value& flat) {
  instance_record rec;
  rec.id = id;
  for (size_t i = 0; flat.is_array() && i + 1 < flat.elements.size(); i += 2) {
    const auto& k = flat.elements[i].str;
    const auto& v = flat.elements[i + 1].str;
    if (k == "type")
      rec.type = v;
    else if (k == "version")
      rec.version = to_number<uint32_t>(v);
    else if (k == "host")
      rec.host = v;
    else if (k == "status")
      rec.status = parse_instance_status(v).value_or(instance_status::suspended);
    else if (k == "epoch")
      rec.epoch = to_number<uint64_t>(v);
    else if (k == "seq")
      rec.seq = to_number<uint64_t>(v);
    else if (k == "owner")
      rec.owner = v;
    else if (k == "steps")
      rec.steps = to_number<uint32_t>(v);
    else if (k == "input")
      rec.input = v;
    else if (k == "result")
      rec.result = v;
    else if (k == "error")
      rec.error = v;
    else if (k == "created")
      rec.created_ms = to_number<int64_t>(v);
    else if (k == "updated")
      rec.updated_ms = to_number<int64_t>(v);
    else if (k == "query")
      rec.query_state = v;
    else if (k == "generation")
      rec.generation = to_number<uint32_t>(v);
    else if (k == "parent")
      rec.parent = v;
  }
  return rec;
}

message_box::message_box(message_box_config config)
  : config_(std::move(config)),
    keys_(config_.prefix),
    commands_(std::make_unique<redis_connection>(loop_, config_.endpoint)) {
}

message_box::~message_box() {
  // Connections go before the loop that runs them.
  {
    std::lock_guard<std::mutex> guard(readers_mtx_);
    readers_.clear();
  }
  commands_.reset();
}

std::string message_box::prepare(const std::vector<std::string>& hosts,
                                  std::chrono::milliseconds timeout) {
  auto version = commands_->run({"FCALL", "convoy_version", "0"}, timeout);
  if (version.outcome_unknown())
    return "cannot reach Redis at " + config_.endpoint.address() + ": "
           + version.str.substr(connection_error_prefix.size());
  if (version.is_error() || version.integer != internal::function_library_version) {
    auto loaded
      = commands_->run({"FUNCTION", "LOAD", "REPLACE", std::string(internal::function_library)},
                       timeout);
    if (loaded.is_error())
      return "cannot load Convoy's Redis functions into " + config_.endpoint.address() + ": "
             + loaded.str;
  }
  for (const auto& host : hosts) {
    auto made = commands_->run(
      {"XGROUP", "CREATE", keys_.queue(host), host, "0", "MKSTREAM"}, timeout);
    if (made.is_error() && made.str.rfind("BUSYGROUP", 0) != 0)
      return "cannot create the queue of host '" + host + "': " + made.str;
  }
  return {};
}

void message_box::claim(const std::string& instance_id, const std::string& owner,
                        std::function<void(claim_result)> done) {
  commands_->command(
    {"FCALL", "convoy_claim", "2", keys_.instance(instance_id), keys_.journal(instance_id), owner,
     std::to_string(wall_clock_ms())},
    [instance_id, done = std::move(done)](redis_value v) {
      claim_result out;
      out.status = classify(v);
      if (out.status != store_status::ok) {
        out.error = v.str;
        done(std::move(out));
        return;
      }
      if (!v.is_array() || v.elements.size() != 2) {
        out.status = store_status::rejected;
        out.error = "convoy_claim answered with an unexpected reply";
        done(std::move(out));
        return;
      }
      out.record = parse_instance_record(instance_id, v.elements[0]);
      out.error = decode_journal(v.elements[1], instance_id, out.journal);
      // On a corrupt journal the record (with its new epoch) stays, so the owner can
      // suspend the instance.
      if (!out.error.empty())
        out.status = store_status::rejected;
      done(std::move(out));
    });
}

void message_box::write(checkpoint cp, std::function<void(store_status, std::string)> done) {
  std::vector<std::string> argv{"FCALL",
                                "convoy_checkpoint",
                                "5",
                                keys_.instance(cp.instance_id),
                                keys_.journal(cp.instance_id),
                                keys_.timers(),
                                keys_.tracking(),
                                keys_.queue(cp.host),
                                std::to_string(cp.epoch),
                                std::to_string(cp.seq),
                                std::to_string(wall_clock_ms()),
                                std::string(to_string(cp.status)),
                                std::to_string(cp.steps),
                                cp.result,
                                cp.error,
                                cp.host,
                                keys_.prefix(),
                                std::to_string(cp.generation),
                                cp.reset ? "1" : "0",
                                cp.new_input,
                                cp.query_state ? *cp.query_state : std::string(1, '\0')};
  argv.push_back(std::to_string(cp.entries.size()));
  for (const auto& e : cp.entries)
    argv.push_back(encode(e));
  argv.push_back(std::to_string(cp.activities.size()));
  for (auto& a : cp.activities) {
    argv.push_back("send");
    argv.push_back(std::to_string(a.step));
    argv.push_back(std::move(a.activity));
    argv.push_back(std::move(a.args));
    argv.push_back(std::move(a.idempotency_key));
    argv.push_back(std::move(a.options));
  }
  argv.push_back(std::to_string(cp.timers.size()));
  for (const auto& t : cp.timers) {
    argv.push_back(std::to_string(t.due_ms));
    argv.push_back(std::to_string(t.step));
  }
  argv.push_back(std::to_string(cp.cancelled_timers.size()));
  for (const auto& t : cp.cancelled_timers)
    argv.push_back(std::to_string(t.step));
  argv.push_back(std::to_string(cp.children.size()));
  for (auto& c : cp.children) {
    argv.push_back(std::to_string(c.step));
    argv.push_back(std::move(c.child_id));
    argv.push_back(std::move(c.type));
    argv.push_back(std::move(c.input));
    argv.push_back(c.awaited ? "1" : "0");
    argv.push_back(std::to_string(c.version));
  }
  argv.push_back(std::to_string(cp.subscriptions.size()));
  for (auto& [key, shape] : cp.subscriptions) {
    argv.push_back(key);
    argv.push_back(shape);
  }
  argv.push_back(std::to_string(cp.acks.size()));
  for (auto& id : cp.acks)
    argv.push_back(std::move(id));
  if (config_.level == durability::local) {
    commands_->command(std::move(argv), [done = std::move(done)](redis_value v) {
      done(classify(v), v.is_error() ? v.str : std::string{});
    });
    return;
  }
  // Replicated: WAIT right behind the write on the same connection. It covers every earlier
  // write of the connection, so pipelined persistence points of many instances share the
  // replication round trip.
  auto written = std::make_shared<redis_value>();
  commands_->command(std::move(argv), [written](redis_value v) { *written = std::move(v); });
  auto replicas = config_.replicas;
  commands_->command({"WAIT", std::to_string(replicas), std::to_string(config_.wait_timeout.count())},
                     [written, replicas, done = std::move(done)](redis_value w) {
                       if (written->is_error()) {
                         done(classify(*written), written->str);
                       } else if (w.is_error()) {
                         done(store_status::unavailable, "WAIT failed: " + w.str);
                       } else if (w.integer < replicas) {
                         done(store_status::unavailable,
                              "not acknowledged: WAIT saw " + std::to_string(w.integer) + " of "
                                + std::to_string(replicas) + " replicas");
                       } else {
                         done(store_status::ok, {});
                       }
                     });
}

void message_box::ack(const std::string& host, std::vector<std::string> message_ids) {
  if (message_ids.empty())
    return;
  std::vector<std::string> xack{"XACK", keys_.queue(host), host};
  std::vector<std::string> xdel{"XDEL", keys_.queue(host)};
  for (auto& id : message_ids) {
    xack.push_back(id);
    xdel.push_back(std::move(id));
  }
  commands_->command(std::move(xack), [](redis_value) {});
  commands_->command(std::move(xdel), [](redis_value) {});
}

redis_connection& message_box::reader(const std::string& host, const std::string& consumer) {
  std::lock_guard<std::mutex> guard(readers_mtx_);
  auto& conn = readers_[host + "/" + consumer];
  if (!conn)
    conn = std::make_unique<redis_connection>(loop_, config_.endpoint);
  return *conn;
}

void message_box::read_queue(const std::string& host, const std::string& consumer, size_t count,
                             std::chrono::milliseconds block, bool own_pending,
                             entries_callback done) {
  std::vector<std::string> argv{"XREADGROUP", "GROUP", host, consumer, "COUNT",
                                std::to_string(count)};
  if (!own_pending) {
    argv.push_back("BLOCK");
    argv.push_back(std::to_string(block.count()));
  }
  argv.push_back("STREAMS");
  argv.push_back(keys_.queue(host));
  argv.push_back(own_pending ? "0" : ">");
  reader(host, consumer).command(std::move(argv), [done = std::move(done)](redis_value v) {
    if (v.is_error()) {
      done({}, v.str);
      return;
    }
    if (v.is_nil() || v.elements.empty() || v.elements[0].elements.size() != 2) {
      done({}, {});
      return;
    }
    done(parse_entries(v.elements[0].elements[1]), {});
  });
}

void message_box::reclaim_queue(const std::string& host, const std::string& consumer,
                                std::chrono::milliseconds min_idle, size_t count,
                                entries_callback done) {
  commands_->command({"XAUTOCLAIM", keys_.queue(host), host, consumer,
                      std::to_string(min_idle.count()), "0-0", "COUNT", std::to_string(count)},
                     [done = std::move(done)](redis_value v) {
                       if (v.is_error()) {
                         done({}, v.str);
                         return;
                       }
                       if (!v.is_array() || v.elements.size() < 2) {
                         done({}, {});
                         return;
                       }
                       done(parse_entries(v.elements[1]), {});
                     });
}

void message_box::activate(const std::string& receive_host, const std::string& message_id,
                           const std::string& instance_id, const std::string& type,
                           uint32_t version, const std::string& input,
                           const std::string& processing_host, done_callback done) {
  commands_->command({"FCALL", "convoy_activate", "5", keys_.instance(instance_id),
                      keys_.instances(), keys_.queue(processing_host), keys_.queue(receive_host),
                      keys_.tracking(), instance_id, type, std::to_string(version), input,
                      processing_host, std::to_string(wall_clock_ms()), receive_host, message_id,
                      keys_.prefix()},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

void message_box::complete_activity(const std::string& send_host, const std::string& message_id,
                                    const std::string& instance_id, uint32_t step,
                                    uint32_t generation, bool ok, const std::string& payload,
                                    const std::string& reply_host, done_callback done) {
  commands_->command({"FCALL", "convoy_complete_activity", "2", keys_.queue(send_host),
                      keys_.queue(reply_host), send_host, message_id, instance_id,
                      std::to_string(step), ok ? "1" : "0", payload, std::to_string(generation)},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

void message_box::retry_activity(const std::string& send_host, const std::string& message_id,
                                 int64_t due_ms, const std::map<std::string, std::string>& next,
                                 done_callback done) {
  auto fields = json::array();
  for (const auto& [k, v] : next) {
    fields.push_back(k);
    fields.push_back(v);
  }
  auto member = json{{"q", send_host}, {"f", fields}}.dump();
  commands_->command({"FCALL", "convoy_retry_activity", "2", keys_.queue(send_host),
                      keys_.delayed(), send_host, message_id, std::to_string(due_ms), member},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

void message_box::publish(const std::string& receive_host, const std::string& message_id,
                          const std::string& type, const std::string& body,
                          const std::map<std::string, std::string>& properties,
                          const std::optional<activation>& act,
                          std::function<void(publish_outcome)> done) {
  std::vector<std::string> argv{"FCALL",
                                "convoy_publish",
                                "2",
                                keys_.queue(receive_host),
                                keys_.tracking(),
                                keys_.prefix(),
                                receive_host,
                                message_id,
                                body,
                                type,
                                std::to_string(wall_clock_ms()),
                                act ? act->orchestration_type : "",
                                act ? std::to_string(act->version) : "0",
                                act ? act->instance_id : "",
                                act ? act->host : "processing",
                                act ? act->correlation_key : "",
                                act ? act->correlation_shape : "",
                                std::to_string(properties.size())};
  for (const auto& [k, v] : properties) {
    argv.push_back(k);
    argv.push_back(v);
  }
  commands_->command(std::move(argv), [done = std::move(done)](redis_value v) {
    publish_outcome out;
    if (v.is_error())
      out.error = v.str;
    else if (v.is_array() && v.elements.size() == 2) {
      out.outcome = v.elements[0].str;
      out.instance = v.elements[1].str;
    } else
      out.error = "convoy_publish answered with an unexpected reply";
    done(std::move(out));
  });
}

void message_box::fire_timers(int64_t now_ms, size_t limit,
                              std::function<void(int64_t, std::string)> done) {
  commands_->command({"FCALL", "convoy_fire_timers", "2", keys_.timers(), keys_.delayed(),
                      std::to_string(now_ms), std::to_string(limit), keys_.prefix()},
                     [done = std::move(done)](redis_value v) {
                       done(v.integer, v.is_error() ? v.str : std::string{});
                     });
}

std::string message_box::submit(const std::string& receive_host, const std::string& type,
                                const std::string& input_json, const std::string& instance_id,
                                std::chrono::milliseconds timeout) {
  auto v = commands_->run({"XADD", keys_.queue(receive_host), "*", "v", "1", "kind", "submit",
                           "type", type, "input", input_json, "id", instance_id},
                          timeout);
  return v.is_error() ? v.str : std::string{};
}

std::string message_box::submit_message(const std::string& receive_host, const std::string& type,
                                        const std::string& body_json,
                                        const std::map<std::string, std::string>& properties,
                                        const std::string& activation_id,
                                        std::chrono::milliseconds timeout) {
  json props = properties;
  auto v = commands_->run({"XADD", keys_.queue(receive_host), "*", "v", "1", "kind", "publish",
                           "type", type, "body", body_json, "props", props.dump(), "id",
                           activation_id},
                          timeout);
  return v.is_error() ? v.str : std::string{};
}

std::string message_box::send_to_instance(const std::string& instance_id, const std::string& kind,
                                          const std::string& name, const std::string& payload_json,
                                          std::chrono::milliseconds timeout) {
  auto v = commands_->run({"FCALL", "convoy_send_to_instance", "1", keys_.instance(instance_id),
                           keys_.prefix(), kind, name, payload_json},
                          timeout);
  return v.is_error() ? v.str : std::string{};
}

message_box::message_list message_box::list_stream(const std::string& key, size_t limit,
                                                   std::chrono::milliseconds timeout) {
  message_list out;
  auto v = commands_->run({"XREVRANGE", key, "+", "-", "COUNT", std::to_string(limit)}, timeout);
  if (v.is_error()) {
    out.error = v.str;
    return out;
  }
  out.entries = parse_entries(v);
  return out;
}

message_box::instance_list message_box::list_instances(size_t limit,
                                                       std::chrono::milliseconds timeout) {
  instance_list out;
  auto ids = commands_->run(
    {"ZREVRANGE", keys_.instances(), "0", std::to_string(limit == 0 ? 0 : limit - 1)}, timeout);
  if (ids.is_error()) {
    out.error = ids.str;
    return out;
  }
  std::vector<std::vector<std::string>> reads;
  for (const auto& id : ids.elements)
    reads.push_back({"HGETALL", keys_.instance(id.str)});
  auto records = commands_->run_all(std::move(reads), timeout);
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].is_error()) {
      out.error = records[i].str;
      return out;
    }
    if (!records[i].elements.empty())
      out.instances.push_back(parse_instance_record(ids.elements[i].str, records[i]));
  }
  return out;
}

instance_description message_box::describe(const std::string& instance_id,
                                           std::chrono::milliseconds timeout) {
  instance_description out;
  auto replies = commands_->run_all({{"HGETALL", keys_.instance(instance_id)},
                                     {"LRANGE", keys_.journal(instance_id), "0", "-1"}},
                                    timeout);
  for (const auto& r : replies)
    if (r.is_error()) {
      out.error = r.str;
      return out;
    }
  if (replies[0].elements.empty())
    return out;
  out.found = true;
  out.record = parse_instance_record(instance_id, replies[0]);
  out.error = decode_journal(replies[1], instance_id, out.journal);
  return out;
}

std::string message_box::server_version(std::chrono::milliseconds timeout) {
  auto info = commands_->run({"INFO", "server"}, timeout);
  if (info.is_error())
    return "error: " + info.str;
  auto pos = info.str.find("redis_version:");
  if (pos == std::string::npos)
    return "unknown";
  auto end = info.str.find_first_of("\r\n", pos);
  return info.str.substr(pos + 14, end - pos - 14);
}

} // namespace convoy::persistence
