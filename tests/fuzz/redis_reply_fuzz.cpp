// libFuzzer target: hiredis' reply reader as the Redis client uses it, then the client's and
// the MessageBox's decoding of what it read. The first byte sets how the rest (RESP bytes, as a
// server would send them) is cut into reads (1-64 bytes, or all at once), so replies split
// across reads are covered.
//
// Properties, per reply: the owned copy (`to_value`) has the reply's shape; written back as
// RESP and read again it is the same value; and every MessageBox decoder accepts it without
// escaping exceptions: `classify` says ok exactly for non-errors, a journal that decodes holds
// exactly the entries the reply carried (the format is canonical) and a corrupt one is named,
// queue entries rejected for size carry no fields, and an instance record read back, written
// as its fields again, parses to itself. A reader error comes with a message.

#include "convoy/persistence/internal/replies.hpp"
#include "convoy/persistence/keys.hpp"
#include "fuzz/fuzz_support.hpp"

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace {

using namespace convoy;
using namespace convoy::persistence;

using reader_ptr = std::unique_ptr<redisReader, void (*)(redisReader*)>;

/// A reader bounded as every reader of the client is.
reader_ptr make_reader() {
  reader_ptr reader(redisReaderCreate(), &redisReaderFree);
  internal::bound_reader(reader.get());
  return reader;
}

void same_shape(const redisReply* r, const redis_value& v, int depth = 0) {
  if (depth > 16)
    fuzz::fail("a reply nested deeper than hiredis allows");
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      if (v.kind != redis_value::type::integer || v.integer != r->integer)
        fuzz::fail("an integer reply converted to something else");
      return;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      if (v.str != std::string_view(r->str, r->len))
        fuzz::fail("a string reply converted to other bytes");
      return;
    case REDIS_REPLY_ARRAY:
      if (!v.is_array() || v.elements.size() != r->elements)
        fuzz::fail("an array reply converted to another number of elements");
      for (size_t i = 0; i < r->elements; ++i)
        same_shape(r->element[i], v.elements[i], depth + 1);
      return;
    default:
      if (!v.is_nil())
        fuzz::fail("a nil reply converted to something else");
  }
}

void to_resp(const redis_value& v, std::string& out) {
  switch (v.kind) {
    case redis_value::type::nil: out += "$-1\r\n"; return;
    case redis_value::type::integer: out += ":" + std::to_string(v.integer) + "\r\n"; return;
    case redis_value::type::status: out += "+" + v.str + "\r\n"; return;
    case redis_value::type::error: out += "-" + v.str + "\r\n"; return;
    case redis_value::type::string:
      out += "$" + std::to_string(v.str.size()) + "\r\n" + v.str + "\r\n";
      return;
    case redis_value::type::array:
      out += "*" + std::to_string(v.elements.size()) + "\r\n";
      for (const auto& e : v.elements)
        to_resp(e, out);
      return;
  }
}

bool operator_equal(const redis_value& a, const redis_value& b) {
  if (a.kind != b.kind || a.integer != b.integer || a.str != b.str
      || a.elements.size() != b.elements.size())
    return false;
  for (size_t i = 0; i < a.elements.size(); ++i)
    if (!operator_equal(a.elements[i], b.elements[i]))
      return false;
  return true;
}

void round_trip(const redis_value& v) {
  std::string resp;
  to_resp(v, resp);
  auto reader = make_reader();
  void* again = nullptr;
  if (redisReaderFeed(reader.get(), resp.data(), resp.size()) != REDIS_OK
      || redisReaderGetReply(reader.get(), &again) != REDIS_OK || again == nullptr)
    fuzz::fail("a converted reply written back as RESP does not read again");
  std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(again),
                                                     &freeReplyObject);
  if (!operator_equal(internal::to_value(owned.get()), v))
    fuzz::fail("a converted reply written back as RESP reads as another value");
}

redis_value bulk(std::string text) {
  redis_value v;
  v.kind = redis_value::type::string;
  v.str = std::move(text);
  return v;
}

/// An instance record as the HGETALL of its hash would return it.
redis_value record_fields(const instance_record& r) {
  redis_value flat;
  flat.kind = redis_value::type::array;
  auto put = [&](const char* k, std::string value) {
    flat.elements.push_back(bulk(k));
    flat.elements.push_back(bulk(std::move(value)));
  };
  put("type", r.type);
  put("version", std::to_string(r.version));
  put("host", r.host);
  put("status", std::string(to_string(r.status)));
  put("epoch", std::to_string(r.epoch));
  put("seq", std::to_string(r.seq));
  put("owner", r.owner);
  put("steps", std::to_string(r.steps));
  put("input", r.input);
  put("result", r.result);
  put("error", r.error);
  put("created", std::to_string(r.created_ms));
  put("updated", std::to_string(r.updated_ms));
  put("query", r.query_state);
  put("generation", std::to_string(r.generation));
  put("parent", r.parent);
  return flat;
}

bool same_record(const instance_record& a, const instance_record& b) {
  return a.id == b.id && a.type == b.type && a.version == b.version && a.host == b.host
         && a.status == b.status && a.epoch == b.epoch && a.seq == b.seq && a.owner == b.owner
         && a.steps == b.steps && a.input == b.input && a.result == b.result
         && a.error == b.error && a.query_state == b.query_state
         && a.generation == b.generation && a.parent == b.parent
         && a.created_ms == b.created_ms && a.updated_ms == b.updated_ms;
}

void decoders(const redis_value& v) {
  (void) v.to_text();
  (void) v.outcome_unknown();
  if ((internal::classify(v) == store_status::ok) == v.is_error())
    fuzz::fail("classify: ok for an error, or not ok for a non-error");

  std::vector<journal_entry> journal;
  auto err = internal::decode_journal(v, "inst-1", journal);
  if (err.empty()) {
    if (journal.size() != v.elements.size())
      fuzz::fail("a decoded journal holds another number of entries than the reply");
    for (size_t i = 0; i < journal.size(); ++i)
      if (encode(journal[i]) != v.elements[i].str)
        fuzz::fail("a decoded journal entry does not encode to the bytes it came from");
  } else if (err.find("inst-1") == std::string::npos) {
    fuzz::fail("a corrupt journal's error does not name the instance: " + err);
  }

  for (const auto& e : internal::parse_entries(v))
    if (!e.error.empty() && !e.fields.empty())
      fuzz::fail("a queue entry rejected for its size still carries fields");

  auto rec = parse_instance_record("inst-1", v);
  if (rec.id != "inst-1")
    fuzz::fail("a parsed instance record lost its id");
  auto size_error = check_record_size("inst-1", v);
  if (size_error.empty() && v.is_array())
    for (const auto& e : v.elements)
      if (e.str.size() > max_payload_bytes)
        fuzz::fail("check_record_size let a field over the limit through");
  if (!same_record(parse_instance_record("inst-1", record_fields(rec)), rec))
    fuzz::fail("an instance record written as its fields parses to another record");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  size_t chunk = data[0] % 65; // 0: everything in one read
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (chunk == 0)
    chunk = rest.size() + 1;
  auto reader = make_reader();
  size_t replies = 0;
  while (!rest.empty() || chunk > 0) {
    auto piece = rest.substr(0, chunk);
    rest.remove_prefix(piece.size());
    if (redisReaderFeed(reader.get(), piece.data(), piece.size()) != REDIS_OK)
      fuzz::fail("redisReaderFeed failed");
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader.get(), &reply) != REDIS_OK) {
        if (reader->err == 0 || reader->errstr[0] == '\0')
          fuzz::fail("a reader error without a message");
        return 0; // the connection would be dropped here
      }
      if (reply == nullptr)
        break;
      std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(reply),
                                                         &freeReplyObject);
      auto v = internal::to_value(owned.get());
      same_shape(owned.get(), v);
      round_trip(v);
      decoders(v);
      if (++replies > 64)
        return 0;
    }
    if (rest.empty())
      break;
  }
  return 0;
}
