// libFuzzer target: the message envelope (runtime/envelope.hpp), how hosts read the queue
// entries they consume. The input is NUL-separated: the entry's id, then field names and
// values alternately (an odd last part is ignored); an id starting with '!' stands for an
// entry rejected when read back (its error is the rest of the id, its fields dropped).
//
// Properties: no exception escapes; a dropped entry says why; a decoded instance message
// names a valid instance, keeps the entry's id, carries the step the entry gave (digits only)
// and a JSON payload for messages, signals and cancellations; a published message that is
// well formed has a valid type, a JSON body and properties free of '&' and '=', and one that
// is not has no properties.

#include "convoy/runtime/envelope.hpp"
#include "fuzz/fuzz_support.hpp"

#include <cstdint>
#include <string_view>
#include <variant>

using namespace convoy;
using namespace convoy::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = fuzz::split({reinterpret_cast<const char*>(data), size}, '\0');
  persistence::queue_entry e;
  e.id = parts[0];
  for (size_t i = 1; i + 1 < parts.size(); i += 2)
    e.fields[parts[i]] = parts[i + 1];
  if (fuzz::starts_with(e.id, "!")) {
    e.error = e.id.substr(1).empty() ? "is too large" : e.id.substr(1);
    e.fields.clear();
  }

  auto decoded = decode_instance_message(e);
  if (auto* why = std::get_if<std::string>(&decoded)) {
    if (why->empty())
      fuzz::fail("an entry dropped without a reason");
  } else {
    const auto& m = std::get<instance_message>(decoded);
    if (m.message_id != e.id)
      fuzz::fail("a decoded message lost its entry's id");
    if (!persistence::valid_name(e.field("instance")))
      fuzz::fail("a decoded message for an invalid instance name");
    using kind = instance_message::kind;
    if (m.what == kind::result || m.what == kind::timer) {
      if (parse_step(e.field("step")) != std::optional<uint32_t>(m.step))
        fuzz::fail("a decoded result or timer carries another step than its entry");
      if (e.field("step").find_first_not_of("0123456789") != std::string::npos)
        fuzz::fail("a step that is not only digits was accepted");
    }
    if ((m.what == kind::message || m.what == kind::signal || m.what == kind::cancel)
        && !json::accept(m.payload))
      fuzz::fail("a decoded message, signal or cancellation with a payload that is not JSON");
  }

  auto published = decode_published(e);
  if (published.well_formed) {
    if (!persistence::valid_name(published.type) || !json::accept(published.body))
      fuzz::fail("a well-formed published message with an invalid type or body");
    for (const auto& [k, v] : published.properties)
      if (k.find_first_of("&=") != std::string::npos)
        fuzz::fail("a published property name with '&' or '='");
  } else if (!published.properties.empty()) {
    fuzz::fail("a malformed published message kept its properties");
  }
  return 0;
}
