#include "convoy/runtime/envelope.hpp"

#include <charconv>

namespace convoy::runtime {

std::optional<uint32_t> parse_step(const std::string& text) {
  uint32_t value = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), value);
  if (res.ec != std::errc{} || res.ptr != text.data() + text.size())
    return std::nullopt;
  return value;
}

std::variant<instance_message, std::string> decode_instance_message(const persistence::queue_entry& e) {
  const auto& kind = e.field("kind");
  instance_message m;
  m.message_id = e.id;
  if (!e.error.empty())
    return e.error;
  if (e.fields.empty())
    return std::string("was deleted while pending");
  if (kind == "start") {
    m.what = instance_message::kind::start;
  } else if (kind == "result" || kind == "timer") {
    auto step = parse_step(e.field("step"));
    if (!step)
      return std::string("has no valid step");
    m.what = kind == "result" ? instance_message::kind::result : instance_message::kind::timer;
    m.step = *step;
    m.generation = parse_step(e.field("gen")).value_or(0);
    m.ok = kind == "timer" || e.field("ok") == "1";
    m.payload = kind == "result" ? e.field("payload") : std::string("null");
  } else if (kind == "message" || kind == "signal" || kind == "cancel") {
    m.what = kind == "message"  ? instance_message::kind::message
             : kind == "signal" ? instance_message::kind::signal
                                : instance_message::kind::cancel;
    m.channel = e.field("channel");
    m.payload = e.field("payload").empty() ? std::string("null") : e.field("payload");
    if (!json::accept(m.payload))
      return std::string("carries a payload that is not valid JSON");
  } else if (kind == "evict") {
    // An operator suspended or terminated the instance; the payload is the epoch it bumped to.
    m.what = instance_message::kind::evict;
    m.payload = e.field("payload");
  } else {
    return std::string("is of an unknown kind");
  }
  if (!persistence::valid_name(e.field("instance")))
    return std::string("names no valid instance");
  return m;
}

published_message decode_published(const persistence::queue_entry& e) {
  published_message out;
  out.type = e.field("type");
  out.body = e.field("body").empty() ? std::string("null") : e.field("body");
  auto props_json = json::parse(e.field("props").empty() ? "{}" : e.field("props"), nullptr, false);
  bool props_ok = props_json.is_object();
  if (props_ok)
    for (auto& [k, v] : props_json.items()) {
      if (!v.is_string() || k.find_first_of("&=") != std::string::npos) {
        props_ok = false;
        break;
      }
      out.properties[k] = v.get<std::string>();
    }
  if (!json::accept(out.body) || !props_ok || !persistence::valid_name(out.type)) {
    out.well_formed = false;
    out.properties.clear();
  }
  return out;
}

} // namespace convoy::runtime
