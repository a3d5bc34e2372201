#pragma once

// The message envelope: how hosts read the queue entries (Redis Stream entries) they consume.
// Pure decoding, apart from the host actors (hosts.cpp) that act on the result; tests/fuzz
// drives it with arbitrary entries.

#include "convoy/actors/instance_actor.hpp"
#include "convoy/persistence/message_box.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace convoy::runtime {

/// A step or generation number: decimal digits only, within 32 bits.
std::optional<uint32_t> parse_step(const std::string& text);

/// A processing host's entry (`kind` start, result, timer, message, signal, cancel or evict, for
/// `instance`) as the message its instance actor receives, or why it is dropped.
std::variant<instance_message, std::string> decode_instance_message(const persistence::queue_entry& e);

/// A message a receive host publishes (`kind` publish): its type, JSON body and properties.
struct published_message {
  std::string type;
  std::string body; ///< JSON text ("null" when the entry has none)
  std::map<std::string, std::string> properties;
  /// False when the type, the body or the properties are not acceptable; the properties are
  /// then empty (the message is kept as unrouted).
  bool well_formed = true;
};

published_message decode_published(const persistence::queue_entry& e);

} // namespace convoy::runtime
